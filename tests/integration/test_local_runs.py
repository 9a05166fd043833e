"""`smlaunch local` end to end: the real entry point under torchrun on CPU/gloo.

The three reference templates run shrunk with their tp x pp layout (10B: tp 4 = 4 ranks, 30B: tp 8 = 8 ranks,
60B: tp 8 x pp 2 = 16 ranks) for 2 steps; the tiny template trains 50 steps through the CLI and its loss drops;
a genuine data error (a token id >= vocab_size) fails with the rank and the reason; Ctrl-C stops every rank.
On a 2-core machine the whole file takes about 3-4 minutes (most of it the 16-rank run).
"""

from __future__ import annotations

import array
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from smlaunch.local import run_local
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter

pytestmark = pytest.mark.integration


def smlaunch(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smlaunch", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "160"},
    )


@pytest.mark.parametrize(
    ("preset", "ranks", "tp", "pp"),
    [
        ("gpt2-10b", 4, 4, 1),
        ("gpt2-30b", 8, 8, 1),
        ("gpt2-60b", 16, 8, 2),
        ("gpt2-30b-p5", 8, 1, 8),  # engine: torch, the toolkit's torchrun options
    ],
)
def test_reference_template_runs_shrunk_with_its_layout(tmp_path, preset, ranks, tp, pp):
    spec = load_spec(yaml.safe_load(starter(preset)))
    start = time.monotonic()
    run = run_local(spec, steps=2, run_dir=tmp_path / "run")
    wall = time.monotonic() - start
    assert run.ok, f"{run.failure}\n{run.error_tail}"
    assert run.plan.nproc == ranks
    assert run.metrics["world_size"] == ranks
    assert run.metrics["layout"] == {"tp": tp, "pp": pp, "dp": 1}
    assert run.metrics["steps"] == 2 and [s["step"] for s in run.steps] == [1, 2]
    assert len(run.metrics["peak_mem_gib_per_rank"]) == ranks
    assert ("--nnodes" in run.plan.command()) is (spec.engine == "torch")
    print(f"\n{preset}: {ranks} ranks, 2 steps, {wall:.1f}s wall")


def test_tiny_template_trains_50_steps_from_the_cli_and_loss_drops(tmp_path):
    init = smlaunch("init", "--preset", "gpt2-tiny-local", "-o", "job.yaml", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    start = time.monotonic()
    proc = smlaunch("local", "job.yaml", "--run-dir", "run", cwd=tmp_path)
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import json

    metrics = json.loads((tmp_path / "run" / "output" / "data" / "metrics.json").read_text())
    assert metrics["steps"] == 50
    assert metrics["last_loss"] < metrics["first_loss"] - 1.0, (metrics["first_loss"], metrics["last_loss"])
    assert "Local run" in proc.stdout and "run directory" in proc.stdout
    assert (tmp_path / "run" / "logs" / "console.log").is_file()
    print(f"\ngpt2-tiny-local: 4 ranks, 50 steps, {wall:.1f}s wall")


def test_bad_data_fails_with_rank_and_reason(tmp_path):
    data = tmp_path / "tokens"
    data.mkdir()
    (data / "train_000.bin").write_bytes(array.array("H", [7, 300, 12] * 400).tobytes())  # 300 >= vocab 256
    job = tmp_path / "job.yaml"
    job.write_text(starter("gpt2-tiny-local"))
    proc = smlaunch("local", str(job), "--data", str(data), "--steps", "3", "--run-dir", "run", cwd=tmp_path)
    assert proc.returncode == 1
    assert "local run failed (rank " in proc.stdout
    assert "DataError" in proc.stderr and "token id 300 >= vocab_size(256)" in proc.stderr
    failure = (tmp_path / "run" / "output" / "failure").read_text()
    assert failure.startswith("rank ") and "token id 300 >= vocab_size(256)" in failure


def test_s3_channel_without_data_fails_before_anything_starts(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(starter("gpt2-tiny-local").replace("local:sample", "s3://bucket/tokens"))
    proc = smlaunch("local", str(job), "--run-dir", "run", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "data.train is s3://bucket/tokens: a local run cannot read S3" in proc.stderr
    assert "--data DIR" in proc.stderr
    assert not (tmp_path / "run").exists()


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_ctrl_c_stops_every_rank(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(starter("gpt2-tiny-local"))
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smlaunch", "local", str(job), "--steps", "500", "--run-dir", str(run_dir)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    console = run_dir / "logs" / "console.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (console.is_file() and "step=2 " in console.read_text()):
        time.sleep(0.5)
    assert console.is_file() and "step=2 " in console.read_text(), "no step within 120 s"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    time.sleep(1)
    assert processes_mentioning(str(run_dir)) == []
