"""Resuming a native run with another layout (issue 20): DCP reshards the checkpoint, or the run stops at once.

The vocabulary is padded to a multiple of 128 * tp, so with vocab 300 a tp=2 checkpoint has a 512-row embedding and
a fresh tp=1 model would have 384 rows (`Size mismatch ... model.wte.weight` before the fix). A resumed run now keeps
the checkpoint's rows and DCP reshards every tensor to the new layout; a shape-changing hyperparameter stops the run
before any step with one message naming the tensor and both shapes. Real torchrun, gloo, synthetic tokens.
"""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from tests.integration import _torchrun as tr

pytestmark = pytest.mark.integration

HP = {"vocab_size": 300, "synthetic": 1, "batch_size": 4, "prescaled_batch": 1}


def test_tp2_checkpoint_resumes_at_tp1_and_matches_uninterrupted(tmp_path):
    whole = tr.run(2, tmp_path / "whole", tr.hyperparameters(max_steps=8, tensor_parallel_degree=2, **HP))
    assert whole.returncode == 0, whole.stderr[-3000:]
    uninterrupted = tr.metrics(tmp_path / "whole")["losses"]

    base = tmp_path / "moved"
    # the same 8-step job (the lr schedule depends on max_steps), checkpointed at 4; its final checkpoint is dropped
    first = tr.run(2, base, tr.hyperparameters(max_steps=8, checkpoint_every_steps=4, tensor_parallel_degree=2, **HP))
    assert first.returncode == 0, first.stderr[-3000:]
    assert (base / "ck" / "step_4" / "COMPLETE").exists()
    shutil.rmtree(base / "ck" / "step_8")
    resumed = tr.run(1, base, tr.hyperparameters(max_steps=8, tensor_parallel_degree=1, **HP))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"resumed from \S+step_4 at step 4 \(layout changed: tp 2 -> 1; resharded\)", resumed.stdout)
    m = tr.metrics(base)
    assert m["start_step"] == 4 and m["layout"] == {"tp": 1, "pp": 1, "dp": 1}
    assert m["losses"] == pytest.approx(uninterrupted[4:], abs=2e-4)  # fp32, other reduction order

    # and back: the tp=1 run's checkpoint (512 rows, kept from tp=2) resumes at tp=2 with 2 processes
    again = tr.run(2, base, tr.hyperparameters(max_steps=10, tensor_parallel_degree=2, **HP))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "at step 8 (layout changed: tp 1 -> 2; resharded)" in again.stdout
    assert tr.metrics(base)["layout"]["tp"] == 2 and len(tr.metrics(base)["losses"]) == 2

    sys.path.insert(0, str(tr.ROOT / "entrypoints"))
    from checkpointing import CheckpointMismatch, resume_vocab_size

    ck = str(base / "ck" / "step_8")
    assert resume_vocab_size(ck, tp=1, padded=384, vocab_size=300) == 512
    with pytest.raises(CheckpointMismatch, match=r"512 rows .* tensor_parallel_degree=3 does not divide"):
        resume_vocab_size(ck, tp=3, padded=768, vocab_size=300)


def test_changed_model_shape_stops_before_training_with_the_tensor_named(tmp_path):
    first = tr.run(1, tmp_path, tr.hyperparameters(max_steps=2, **HP))
    assert first.returncode == 0, first.stderr[-3000:]
    changed = tr.run(
        2, tmp_path, tr.hyperparameters(max_steps=4, tensor_parallel_degree=2, **{**HP, "hidden_width": 128})
    )
    assert changed.returncode != 0
    failure = (tmp_path / "output" / "failure").read_text()
    assert re.match(r"rank [01]: CheckpointMismatch: \S+step_2: model\.\S+ is \[.*\] in the checkpoint but", failure)
    assert "hidden_width" in failure and "start from an empty checkpoint directory" in failure
    assert "step=1 " not in changed.stdout  # stopped before any step
