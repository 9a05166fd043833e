"""`smlaunch local` runs that fail, under real torchrun (CPU/gloo), and what they report.

Failures are injected from outside the entry points: tests/fakes/failures/sitecustomize.py (on PYTHONPATH) kills a
rank with SIGKILL or caps every rank's address space; an out-of-memory comes from an impossible allocation (an
embedding of 16,777,216 x 8,192 fp32 = 512 GiB) under that cap; data errors come from the --data directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from smlaunch.templates import starter

pytestmark = pytest.mark.integration
FAKES = Path(__file__).resolve().parents[1] / "fakes" / "failures"


def smlaunch(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(FAKES), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "smlaunch", "local", "job.yaml", "--steps", "2", "--run-dir", "run", *args],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": path, **env},
    )  # fmt: skip


@pytest.fixture
def job(tmp_path) -> Path:
    (tmp_path / "job.yaml").write_text(starter("gpt2-tiny-local"))
    return tmp_path


def test_a_rank_killed_by_sigkill_is_named_with_its_signal(job):
    proc = smlaunch(cwd=job, SMLAUNCH_TEST_KILL_RANK="1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ChildFailedError" not in proc.stderr
    expected = "error: local run failed (exit 1): rank 1 was killed by SIGKILL (signal 9): out of host memory?"
    assert expected in proc.stderr
    assert "diagnosis  host-oom: rank 1 was killed by SIGKILL (signal 9)" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_an_impossible_allocation_is_an_out_of_memory(job):
    proc = smlaunch(
        "--shrink", "none", "--force", "--set", "model.vocab_size=16777216", "--set", "model.hidden_width=8192",
        "--set", "model.num_heads=64", "--set", "model.num_layers=2", cwd=job, SMLAUNCH_TEST_ADDRESS_SPACE_GIB="24",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # every rank makes the same allocation: the rank named is the one torchrun saw fail first
    assert re.search(r"diagnosis  host-oom: rank \d ran out of host memory: tried to allocate 512.0 GiB", proc.stdout)
    assert re.search(r"error: local run failed \(exit 1\): rank \d ran out of host memory", proc.stderr)
    assert "DefaultCPUAllocator: can't allocate memory" in proc.stdout


def test_a_data_path_that_does_not_exist_fails_before_any_rank_starts(job):
    proc = smlaunch("--data", str(job / "no-such-dir"), cwd=job)
    assert proc.returncode == 1
    assert f"data.train: {job / 'no-such-dir'} is not a directory" in proc.stderr
    assert not (job / "run" / "logs").exists()


def test_an_empty_data_directory_is_diagnosed_as_the_train_channel(job):
    (job / "empty").mkdir()
    proc = smlaunch("--data", str(job / "empty"), cwd=job)
    assert proc.returncode == 1
    assert "diagnosis  data-missing: the train data channel is empty" in proc.stdout, proc.stdout
    assert "  field    data.train" in proc.stdout


def test_a_crash_after_a_rerun_does_not_blame_the_earlier_runs_metrics(job):
    first = smlaunch(cwd=job)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (job / "run" / "output" / "data" / "metrics.json").is_file()
    again = smlaunch(cwd=job, SMLAUNCH_TEST_KILL_RANK="1")
    assert again.returncode == 1
    assert "metrics.json was written" not in again.stderr + again.stdout
    assert "rank 1 was killed by SIGKILL (signal 9)" in again.stderr
