"""entrypoints/levers.py, the fused q/k/v GEMM in model.py and steplog.py's windowed loss logging (issue 20)."""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.distributed as dist

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "entrypoints"))

from levers import Levers  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from steplog import WARM_STEPS, StepLog  # noqa: E402


def test_fused_qkv_gives_the_same_loss_and_gradients():
    torch.manual_seed(0)
    model = GPT(GPTConfig(num_layers=2, hidden_width=32, num_heads=4, seq_length=16, vocab_size=100))
    x = torch.randint(0, 100, (2, 16))
    results = []
    for fused in (False, True):
        for block in model.blocks:
            block.attn.fused_qkv = fused
        model.zero_grad()
        _, loss = model(x, x)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (l0, g0), (l1, g1) = results
    torch.testing.assert_close(l1, l0)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_levers_defaults_and_bad_values():
    lv = Levers.from_env({})
    assert (lv.compile_scope, lv.fused_qkv, lv.sdpa) == ("model", True, "auto")
    assert lv.steps_per_sync("cuda") == 10 and lv.steps_per_sync("cpu") == 1
    assert Levers.from_env({"SMLAUNCH_LOG_EVERY": "4"}).steps_per_sync("cpu") == 4
    assert Levers.from_env({"SMLAUNCH_COMPILE_MODE": "reduce-overhead"}).compile_kwargs() == {"mode": "reduce-overhead"}
    with pytest.raises(ValueError, match="SMLAUNCH_SDPA='fast'"):
        Levers.from_env({"SMLAUNCH_SDPA": "fast"})
    with pytest.raises(ValueError, match="SMLAUNCH_COMPILE_SCOPE"):
        Levers.from_env({"SMLAUNCH_COMPILE_SCOPE": "layer"})


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_steplog_windows_print_every_step_once(one_process_group, capsys):
    stats = {"tokens_per_step": 100, "flops_per_token": 1.0, "world": 1, "peak": 0.0}
    log = StepLog(every=4, start_step=0, device="cpu", divisor=1, rank=0, stats=stats)
    flushed, stop = [], False
    for step in range(1, 12):
        log.add(step, torch.tensor(float(step)))
        if log.due(step, force=step == 11):
            flushed.append(step)
            stop = log.flush(stop_signal=step == 11)
    assert flushed == [*range(1, WARM_STEPS + 1), 7, 11]  # warm steps alone, then windows of 4 (the last forced)
    assert stop is True
    assert log.losses == [float(s) for s in range(1, 12)]
    assert len(log.times) == 11 and log.times[3] == log.times[6]  # a window's steps share its average time
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step=")]
    assert [int(ln.split()[0][5:]) for ln in lines] == list(range(1, 12))
