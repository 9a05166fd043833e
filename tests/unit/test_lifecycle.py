# ruff: noqa: F811  (pytest fixtures imported by name and used as arguments)
"""The pure parts of the job lifecycle: the step-line parser, ETA, job names, RecordingBackend, the network guard.

Moved from tests/integration/test_lifecycle_progress.py: nothing here starts a process or a server.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
import yaml

from smlaunch import jobs
from smlaunch.backends import RecordingBackend, host_of
from smlaunch.progress import Progress, format_duration, parse_step_line
from smlaunch.request import render
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter
from tests.integration.aws_fixtures import ROLE, no_network  # noqa: F401  (fixture)

LINE = "step=12 loss=4.1234 step_time_s=0.153 tokens_per_s=53123 mfu=0.412 mem_gib=12.31"


@pytest.fixture(autouse=True)
def _guard(no_network):
    return no_network


def test_parse_step_line():
    assert parse_step_line(LINE) == {
        "step": 12, "loss": 4.1234, "step_time_s": 0.153, "tokens_per_s": 53123.0, "mfu": 0.412, "mem_gib": 12.31,
    }  # fmt: skip
    assert parse_step_line(f"[1,0]<stdout>:{LINE}")["step"] == 12
    assert parse_step_line("substep=3 loss=1 step_time_s=1 tokens_per_s=1") is None
    assert parse_step_line("loading checkpoint step=3") is None


def test_progress_eta():
    progress = Progress(max_steps=100)
    assert progress.eta_s is None and progress.summary() == ""
    assert progress.update(LINE) and not progress.update("hello")
    assert progress.eta_s == pytest.approx(88 * 0.153)
    assert progress.summary() == "step 12/100  loss 4.1234  53,123 tok/s  mfu 41.2%  ETA 13s"
    assert format_duration(3725) == "1h02m" and format_duration(75) == "1m15s"


def test_job_name_and_host():
    spec = load_spec(yaml.safe_load(starter("gpt2-60b", name="a" * 32)), [f"sagemaker.role={ROLE}"])
    name = jobs.job_name_for(render(spec), now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert name == "a" * 32 + "-20260102-030405-" + render(spec).fingerprint() and len(name) <= 63
    assert host_of("job-1/algo-12-1700000000") == "algo-12"


def test_recording_backend_lifecycle():
    spec = load_spec(yaml.safe_load(starter("gpt2-30b")), [f"sagemaker.role={ROLE}"])
    backend = RecordingBackend()
    handle = jobs.submit(spec, backend=backend, job_name="rec-1")
    assert backend.requests[0].mp_parameters["tensor_parallel_degree"] == 8
    assert handle.status().status == "InProgress" and handle.status().max_steps == 100
    backend.add_log("rec-1", LINE, host="algo-2")
    assert [(h, line) for h, _, line in handle.logs()] == [("algo-2", LINE)]
    handle.stop()
    backend.set_status("rec-1", "Stopped", "Stopped")
    assert handle.wait(poll_s=0).status == "Stopped"
    assert [j["TrainingJobName"] for j in jobs.list_jobs(backend=backend, status="Stopped")] == ["rec-1"]


def test_network_guard_refuses_outside_hosts(no_network):
    with pytest.raises(OSError, match="test guard"):
        socket.create_connection(("example.com", 443), timeout=1)
    no_network.clear()  # the attempt above was deliberate
