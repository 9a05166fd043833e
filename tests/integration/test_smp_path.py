"""The SMP v1 path of entrypoints/train_gpt2.py, run against the recording fake in tests/fakes (one CPU process).

Each run is a subprocess with tests/fakes on PYTHONPATH; the fake appends every smp call to SMP_FAKE_CALLS_FILE.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKES = os.path.join(REPO, "tests", "fakes")
SAMPLE = os.path.join(REPO, "smlaunch", "data", "sample")
LOG_LINE = re.compile(
    r"^step=(\d+) loss=([0-9.eE+-]+) step_time_s=([0-9.eE+-]+) tokens_per_s=([0-9.eE+-]+) "
    r"mfu=([0-9.eE+-]+) mem_gib=([0-9.eE+-]+)$"
)
pytestmark = pytest.mark.integration
TINY = {  # a 2-layer GPT on the byte-level sample data
    "num_layers": 2,
    "hidden_width": 64,
    "num_heads": 4,
    "seq_length": 64,
    "vocab_size": 256,
    "batch_size": 8,
    "lr": 3e-3,
    "min_lr": 3e-4,
    "warmup_steps": 2,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "seed": 1,
}


class Run:
    """One entry-point run: its process result, recorded smp calls, log lines and metrics."""

    def __init__(self, tmp, proc):
        self.tmp, self.proc = tmp, proc
        calls_file = os.path.join(tmp, "calls.jsonl")
        self.calls = (
            [json.loads(line) for line in Path(calls_file).read_text().splitlines()]
            if os.path.exists(calls_file)
            else []
        )
        self.names = [c["name"] for c in self.calls]
        self.steps = [LOG_LINE.match(line) for line in proc.stdout.splitlines() if line.startswith("step=")]
        metrics = os.path.join(tmp, "out", "metrics.json")
        self.metrics = json.loads(Path(metrics).read_text()) if os.path.exists(metrics) else None

    def first(self, name: str) -> dict:
        return next(c for c in self.calls if c["name"] == name)

    def failure(self) -> str:
        return Path(self.tmp, "base", "output", "failure").read_text()


def command(tmp, **hp) -> list[str]:
    argv = [sys.executable, os.path.join(REPO, "entrypoints", "train_gpt2.py")]
    for key, value in {**TINY, **hp}.items():
        argv += [f"--{key}", str(value)]
    return [
        *argv,
        "--train-dir",
        SAMPLE,
        "--checkpoint-dir",
        os.path.join(tmp, "ck"),
        "--model-dir",
        os.path.join(tmp, "model"),
        "--output-data-dir",
        os.path.join(tmp, "out"),
        "--mp_parameters",
        "partitions=1",
    ]  # what the toolkit appends; parse_known_args must ignore it


def environment(tmp, mp_parameters=None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_"))}
    env.update(
        PYTHONPATH=FAKES,
        SMP_FAKE_CALLS_FILE=os.path.join(tmp, "calls.jsonl"),
        SAGEMAKER_BASE_DIR=os.path.join(tmp, "base"),
        OMP_NUM_THREADS="1",
    )
    if mp_parameters is not None:
        env["SM_HP_MP_PARAMETERS"] = json.dumps(mp_parameters)
    return env


def train(tmp, *, mp_parameters=None, **hp) -> Run:
    tmp = str(tmp)
    if os.path.exists(os.path.join(tmp, "calls.jsonl")):
        os.remove(os.path.join(tmp, "calls.jsonl"))
    proc = subprocess.run(
        command(tmp, **hp),
        env=environment(tmp, mp_parameters),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Run(tmp, proc)


RUN20 = {
    "max_steps": 20,
    "microbatches": 2,
    "prescaled_batch": 1,
    "activation_checkpointing": 1,
    "activation_strategy": "contiguous",
    "checkpoint_every_steps": 10,
    "delayed_parameter_initialization": 1,
    "optimize": "speed",
    "final_save": 1,
}


@pytest.fixture(scope="module")
def run20(tmp_path_factory):
    """20 steps: 2 microbatches, prescaled batch (rdp sharding), contiguous checkpointing, checkpoint every 10."""
    run = train(tmp_path_factory.mktemp("run20"), **RUN20)
    assert run.proc.returncode == 0, run.proc.stderr
    return run


def test_call_order_follows_train_gpt_simple(run20):
    order = [
        "init",
        "model_creation",
        "DistributedModel",
        "set_activation_checkpointing",
        "DistributedOptimizer",
        "step",
        "DistributedOptimizer.step",
        "save_checkpoint",
        "barrier",
    ]
    positions = [run20.names.index(name) for name in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
    assert "resume_from_checkpoint" not in run20.names  # nothing to resume on a fresh checkpoint dir


def test_init_config_carries_the_smp_parameters(run20):
    config = run20.first("init")["args"][0]
    assert config["microbatches"] == 2
    assert config["pipeline_parallel_degree"] == 1 and config["tensor_parallel_degree"] == 1
    assert config["prescaled_batch"] is True and config["ddp"] is True
    assert config["delayed_parameter_initialization"] is True and config["optimize"] == "speed"
    assert config["fp16"] is False and config["bf16"] is False
    assert "active_microbatches" not in config  # 0 = unset: SMP's own default (pp + 2) applies
    creation = run20.first("model_creation")["kwargs"]
    assert creation == {"tensor_parallelism": False, "dtype": "torch.float32"}
    optimizer = run20.first("DistributedOptimizer")["kwargs"]
    assert optimizer["dynamic_loss_scale"] is True and optimizer["static_loss_scale"] is None
    assert optimizer["dynamic_loss_args"] == {"scale_window": 1000, "min_scale": 1, "delayed_shift": 2}


def test_activation_checkpointing_strategy_and_module(run20):
    call = run20.first("set_activation_checkpointing")
    assert call["args"] == ["Sequential"] and call["kwargs"]["strategy"] == "contiguous"


def test_microbatches_split_the_rank_batch(run20):
    steps = [c for c in run20.calls if c["name"] == "step"]
    assert len(steps) == 20
    assert steps[0]["kwargs"]["microbatches"] == 2
    assert steps[0]["kwargs"]["inputs"]["x"]["tensor"] == [8, 64]  # the rank's batch; the fake splits it 2 x 4
    assert run20.names.count("DistributedModel.backward") == 2 * 20


def test_prescaled_batch_shards_data_by_rdp(run20):
    assert "rdp_rank" in run20.names and "rdp_size" in run20.names
    assert "dp_rank" not in run20.names


def test_dp_sharding_without_prescaled_batch(tmp_path):
    run = train(tmp_path, max_steps=1, prescaled_batch=0)
    assert run.proc.returncode == 0, run.proc.stderr
    assert "dp_rank" in run.names and "rdp_rank" not in run.names
    assert "set_activation_checkpointing" not in run.names  # activation_checkpointing defaults to 0
    saves = [c["args"][1] for c in run.calls if c["name"] == "save_checkpoint"]
    assert saves == ["step_00000001"]  # the last partial checkpoint; the full model only with final_save


def test_log_lines_metrics_and_loss_decrease(run20):
    assert [int(m.group(1)) for m in run20.steps] == list(range(1, 21))
    losses = [float(m.group(2)) for m in run20.steps]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5, losses
    metrics = run20.metrics
    assert metrics["backend"] == "smp" and metrics["world_size"] == 1
    assert metrics["layout"] == {"tp": 1, "pp": 1, "dp": 1}
    assert metrics["steps"] == 20 and metrics["start_step"] == 0 and len(metrics["losses"]) == 20
    assert metrics["first_loss"] == pytest.approx(losses[0], abs=1e-4)
    assert metrics["last_loss"] == pytest.approx(losses[-1], abs=1e-4)
    assert metrics["first_loss"] > math.log(256) - 0.3  # starts near uniform over the byte vocabulary
    assert metrics["tokens_per_s"] > 0 and len(metrics["peak_mem_gib_per_rank"]) == 1
    assert metrics["checkpoint"].endswith("step_00000020_partial")


def test_checkpoints_and_model_are_saved(run20):
    ck = os.path.join(run20.tmp, "ck")
    assert sorted(os.listdir(ck)) == ["newest", "step_00000010_partial", "step_00000020_partial"]
    assert Path(ck, "newest").read_text() == "step_00000020"
    saves = [c for c in run20.calls if c["name"] == "save_checkpoint"]
    assert [(c["args"][1], c["kwargs"]["partial"], c["kwargs"]["user_content"]) for c in saves] == [
        ("step_00000010", True, {"step": 10}),
        ("step_00000020", True, {"step": 20}),
        ("fullmodel.pt", False, {"step": 20}),
    ]
    weights = torch.load(os.path.join(run20.tmp, "model", "fullmodel.pt"))
    assert weights["wte.weight"].shape == (256, 64)


def test_rerun_resumes_exactly(run20, tmp_path):
    """Restart from the step-10 checkpoint: steps 11..20 reproduce the first run's losses."""
    shutil.copytree(os.path.join(run20.tmp, "ck"), tmp_path / "ck")
    (tmp_path / "ck" / "newest").write_text("step_00000010")
    run = train(tmp_path, **RUN20)  # the very same hyperparameters, or the losses could not match
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.names.index("resume_from_checkpoint") < run.names.index("step")
    assert run.first("resume_from_checkpoint")["kwargs"]["tag"] is None  # found through `newest`
    assert run.metrics["start_step"] == 10 and run.metrics["steps"] == 10
    assert [int(m.group(1)) for m in run.steps] == list(range(11, 21))
    assert run.metrics["losses"] == pytest.approx(run20.metrics["losses"][10:], rel=1e-5)


def test_fp16_uses_smp_fp16_and_fp32_master_weights(tmp_path):
    run = train(tmp_path, max_steps=3, fp16=1)
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.first("init")["args"][0]["fp16"] is True
    assert run.first("model_creation")["kwargs"]["dtype"] == "torch.float16"
    assert all(math.isfinite(loss) for loss in run.metrics["losses"])
    folder = tmp_path / "ck" / "step_00000003_partial"
    model = torch.load(folder / "model_0_0_0.pt")
    assert model["wte.weight"].dtype == torch.float16
    optimizer = torch.load(folder / "optimizer_0_0_0.pt")
    assert optimizer["fp32_from_fp16"][0].dtype == torch.float32
    # dynamic loss scaling from 2**32: the first steps overflow in fp16 and are skipped, as in SMP/Megatron
    assert optimizer["loss_scaler"]["cur_scale"] < 2.0**32


def test_bf16_builds_the_model_in_bf16(tmp_path):
    run = train(tmp_path, max_steps=2, bf16=1)
    assert run.proc.returncode == 0, run.proc.stderr
    config = run.first("init")["args"][0]
    assert config["bf16"] is True and config["fp16"] is False
    assert run.first("model_creation")["kwargs"]["dtype"] == "torch.bfloat16"
    model = torch.load(tmp_path / "ck" / "step_00000002_partial" / "model_0_0_0.pt")
    assert model["wte.weight"].dtype == torch.bfloat16
    assert all(math.isfinite(loss) for loss in run.metrics["losses"])


def test_launch_time_parameters_win_and_are_checked(tmp_path):
    """SM_HP_MP_PARAMETERS overrides the argv mirrors; pp=2 needs 2 processes, so SMP (and the fake) refuse."""
    run = train(tmp_path, max_steps=1, mp_parameters={"partitions": 2, "microbatches": 2})
    assert run.proc.returncode != 0
    assert run.failure().startswith("rank 0: SMPValidationError: pipeline_parallel_degree(2)")
    assert "does not divide the world size" in run.failure()
    assert "Traceback" in run.proc.stderr


def test_batch_not_divisible_by_microbatches_fails_cleanly(tmp_path):
    run = train(tmp_path, max_steps=1, microbatches=3)
    assert run.proc.returncode != 0
    assert run.failure().startswith("rank 0: ValueError: batch_size(8) is not divisible by microbatches(3)")
    assert "DistributedModel" not in run.names  # fails before building the model


def test_sigterm_checkpoints_and_exits_143(tmp_path):
    tmp = str(tmp_path)
    proc = subprocess.Popen(
        command(tmp, max_steps=10_000, checkpoint_every_steps=0),
        env=environment(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("step=3 "):
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM: checkpoint" in out
    newest = Path(tmp, "ck", "newest").read_text()
    assert int(newest.split("_")[1]) >= 3
    assert not os.path.exists(os.path.join(tmp, "base", "output", "failure"))
