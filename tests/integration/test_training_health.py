"""The shipped demo's training curve (gpt2-tiny-local: tp 2 x pp 2 on 4 CPU processes, the sample text).

Issue 20: at lr 3e-3 the demo's loss jumped 3.65 -> 8.34 at step 8. A single process with the same batch, seed and
hyperparameters jumps at the same step to the same value (8.339), so the parallel layout is not the cause: the
learning rate is (2e-3 with 10 warm-up steps still spiked, 7.82 at step 11). The template now uses lr 1e-3. These
tests run the demo exactly as the README does (`smlaunch local`, real torchrun, gloo) and compare its layout against
one process step by step, so a too-high rate or a parallel bug both show.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from smlaunch import starter
from tests.integration import _torchrun as tr

pytestmark = pytest.mark.integration

SAMPLE = tr.ROOT / "smlaunch" / "data" / "sample"


def test_readme_demo_curve_has_no_spike(tmp_path):
    """`smlaunch init --preset gpt2-tiny-local && smlaunch local job.yaml`: after the fifth step no loss is above the
    first step's, and the curve ends well below where it started."""
    subprocess.run(
        [sys.executable, "-m", "smlaunch", "init", "--preset", "gpt2-tiny-local", "-o", "job.yaml", "--force"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "smlaunch", "local", "job.yaml", "--run-dir", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import json

    losses = json.loads((tmp_path / "run" / "output" / "data" / "metrics.json").read_text())["losses"]
    assert len(losses) == 50
    spikes = [(i + 1, x) for i, x in enumerate(losses) if i >= 5 and x > losses[0]]
    assert not spikes, f"steps above the first step's loss {losses[0]:.3f}: {spikes}"
    assert losses[-1] < losses[0] - 2.0, losses


def _demo_hyperparameters(**overrides) -> list[str]:
    """The template's model and training section as the entry point's argv (engine torch, the sample data)."""
    job = yaml.safe_load(starter("gpt2-tiny-local"))
    m, t, smp = job["model"], job["training"], job["smp"]
    hp = {
        **{k: m[k] for k in ("num_layers", "hidden_width", "num_heads", "seq_length", "vocab_size")},
        **{k: t[k] for k in ("batch_size", "lr", "min_lr", "warmup_steps")},
        "microbatches": smp["microbatches"],
        "active_microbatches": smp["microbatches"],  # as smlaunch renders it
        "weight_decay": 0.01,  # the spec's default, rendered
        "prescaled_batch": 1,
        "activation_checkpointing": int(t["activation_checkpointing"] != "none"),
        "activation_strategy": t["activation_checkpointing"],
        "optimize": "memory",
        "seed": 12345,
        "engine": "torch",
    }
    hp.update(overrides)
    return [*(a for k, v in hp.items() for a in (f"--{k}", str(v))), "--train-dir", str(SAMPLE)]


def test_demo_layout_matches_one_process_for_30_steps(tmp_path):
    """tp 2 x pp 2 against a single process over 30 steps at the template's rate: the same loss at every step."""
    steps = 30
    one = tr.run(1, tmp_path / "one", _demo_hyperparameters(max_steps=steps), timeout=400)
    assert one.returncode == 0, one.stderr[-3000:]
    layout = {"tensor_parallel_degree": 2, "pipeline_parallel_degree": 2}
    par = tr.run(4, tmp_path / "par", _demo_hyperparameters(max_steps=steps, **layout), timeout=600)
    assert par.returncode == 0, par.stderr[-3000:]
    single, parallel = tr.metrics(tmp_path / "one")["losses"], tr.metrics(tmp_path / "par")["losses"]
    assert tr.metrics(tmp_path / "par")["layout"] == {"tp": 2, "pp": 2, "dp": 1}
    assert len(single) == len(parallel) == steps
    assert parallel == pytest.approx(single, abs=2e-3), list(zip(single, parallel, strict=True))
    assert max(single[5:]) < single[0]
