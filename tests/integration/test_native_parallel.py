"""The native (torchrun) training path against a single process: TP, PP, DP/FSDP, checkpointing, resume, failure.

Real torchrun processes on CPU/gloo (at most 4), a 4-block width-64 GPT-2 and a learnable data shard.
Every parallel run trains on the same 8 samples per step as the single-process reference:
  tp2 x pp2, prescaled_batch=1, batch_size 8       -> global 8 (one model-parallel group)
  tp2 x dp2, prescaled_batch=0, batch_size 2       -> global dp * tp * 2 = 8
  pp2 x dp2, prescaled_batch=1, batch_size 4       -> global dp * 4 = 8
"""

from __future__ import annotations

import re
import signal
import sys

import pytest

from tests.integration import _torchrun as tr

pytestmark = pytest.mark.integration

STEPS = 6
TOL = 2e-4  # fp32 with different reduction orders; the losses themselves move by > 0.1 per step here

LAYOUTS = {
    "tp2_pp2_gpipe_rounds_sp_each": (
        4,
        {
            "batch_size": 8,
            "prescaled_batch": 1,
            "tensor_parallel_degree": 2,
            "pipeline_parallel_degree": 2,
            "microbatches": 4,
            "active_microbatches": 2,
            "pipeline": "simple",
            "optimize": "memory",
            "activation_checkpointing": 1,
            "activation_strategy": "each",
        },
    ),
    "tp2_dp2_sharded_contiguous": (
        4,
        {
            "batch_size": 2,
            "prescaled_batch": 0,
            "tensor_parallel_degree": 2,
            "shard_optimizer_state": 1,
            "microbatches": 2,
            "optimize": "memory",
            "activation_checkpointing": 1,
            "activation_strategy": "contiguous",
        },
    ),
    "pp2_dp2_sharded_1f1b_group2_offload": (
        4,
        {
            "batch_size": 4,
            "prescaled_batch": 1,
            "pipeline_parallel_degree": 2,
            "shard_optimizer_state": 1,
            "microbatches": 2,
            "pipeline": "interleaved",
            "activation_checkpointing": 1,
            "activation_strategy": "group_2",
            "offload_activations": 1,
        },
    ),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tr.write_pattern_data(tmp_path_factory.mktemp("data") / "train")


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """Single process, no torchrun, the whole 8-sample batch."""
    base = tmp_path_factory.mktemp("ref")
    out = tr.run(1, base, [*tr.hyperparameters(batch_size=8, max_steps=STEPS), "--train-dir", str(data)])
    assert out.returncode == 0, out.stderr[-3000:]
    losses = tr.metrics(base)["losses"]
    assert len(losses) == STEPS
    assert losses[-1] < losses[0] - 0.1, f"data not learnable enough for a meaningful comparison: {losses}"
    return losses


def test_stage_matches_model_forward():
    """parallelize.Stage (what every native run executes) computes exactly GPT.forward's logits."""
    import torch

    sys.path.insert(0, str(tr.ROOT / "entrypoints"))
    from model import GPT, GPTConfig
    from parallelize import Stage

    torch.manual_seed(0)
    model = GPT(GPTConfig(**tr.TINY))
    idx = torch.randint(0, 512, (2, 32))
    stage = Stage(model, first=True, last=True, block_ids=list(range(4)))
    stage.ac_groups = [["0", "1"], ["2", "3"]]
    torch.testing.assert_close(stage(idx), model(idx)[0], rtol=0, atol=0)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_parallel_losses_match_single_process(name, data, reference, tmp_path):
    nproc, hp = LAYOUTS[name]
    out = tr.run(nproc, tmp_path, [*tr.hyperparameters(max_steps=STEPS, **hp), "--train-dir", str(data)])
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    m = tr.metrics(tmp_path)
    assert m["world_size"] == 4 and m["backend"] == "native"
    assert m["global_batch"] == 8
    assert m["losses"] == pytest.approx(reference, abs=TOL), f"{name}: {m['losses']} vs {reference}"
    assert len(re.findall(r"^step=\d+ loss=", out.stdout, re.M)) == STEPS  # only global rank 0 logs
    assert (tmp_path / "ck" / f"step_{STEPS}" / "COMPLETE").exists()


def test_sigkill_then_resume_matches_uninterrupted(data, tmp_path):
    """tp2 x pp2, checkpoint every 2 steps; SIGKILL after step 5; the restart resumes from the newest COMPLETE
    checkpoint (a torn newer one is ignored) and reproduces the uninterrupted run's losses."""
    nproc, hp = LAYOUTS["tp2_pp2_gpipe_rounds_sp_each"]
    steps = 24
    args = [*tr.hyperparameters(max_steps=steps, checkpoint_every_steps=2, **hp), "--train-dir", str(data)]
    full = tr.run(nproc, tmp_path / "full", args)
    assert full.returncode == 0, full.stderr[-3000:]
    uninterrupted = tr.metrics(tmp_path / "full")["losses"]

    base = tmp_path / "killed"
    proc = tr.start(nproc, base, args)
    tr.wait_for_step(proc, 5)
    tr.kill_all(proc)
    proc.wait(timeout=30)
    assert not (base / "out" / "metrics.json").exists(), "the run finished before the kill"
    complete = [int(d.name[5:]) for d in (base / "ck").iterdir() if (d / "COMPLETE").exists()]
    assert complete, "no checkpoint completed before the kill"
    (base / "ck" / f"step_{steps - 1}").mkdir()  # a torn checkpoint: newest by name, but no COMPLETE marker

    out = tr.run(nproc, base, args)
    assert out.returncode == 0, out.stderr[-3000:]
    m = tr.metrics(base)
    assert m["start_step"] == max(complete) >= 4
    assert re.search(rf"resumed from \S+step_{m['start_step']} at step {m['start_step']}", out.stdout)
    assert len(m["losses"]) == steps - m["start_step"]
    assert m["losses"] == pytest.approx(uninterrupted[m["start_step"] :], abs=1e-6)


def test_sigterm_writes_checkpoint_before_exit(data, tmp_path):
    nproc, hp = 2, {"batch_size": 4, "prescaled_batch": 1, "pipeline_parallel_degree": 2, "microbatches": 2}
    args = [*tr.hyperparameters(max_steps=100000, checkpoint_every_steps=0, **hp), "--train-dir", str(data)]
    proc = tr.start(nproc, tmp_path, args)
    tr.wait_for_step(proc, 3)
    proc.send_signal(signal.SIGTERM)  # to torchrun, which forwards it to the workers (as on a spot interruption)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    match = re.search(r"SIGTERM: checkpoint (\S+) written at step (\d+)", rest)
    assert match, rest[-3000:]
    step = int(match.group(2))
    assert 3 <= step < 100_000
    assert (tmp_path / "ck" / f"step_{step}" / "COMPLETE").exists()
    assert not (tmp_path / "out" / "metrics.json").exists()  # it stopped early rather than finishing


def test_failure_file_names_rank_and_reason(tmp_path):
    missing = tmp_path / "no-such-channel"
    out = tr.run(2, tmp_path, [*tr.hyperparameters(batch_size=2), "--train-dir", str(missing)])
    assert out.returncode != 0
    reason = (tmp_path / "output" / "failure").read_text()
    assert re.match(r"rank [01]: DataError: training data directory '.*no-such-channel' does not exist", reason)
    assert "Traceback" in out.stderr
