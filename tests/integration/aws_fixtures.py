"""Fixtures for the moto-backed AWS tests (import them explicitly from a test module).

- ``moto_server`` (session): moto in server mode on 127.0.0.1 and a free port, started once. It is extended
  in-process (the server runs in this process, so the patch reaches it) with the two things moto 5.2 lacks:
  ``StopTrainingJob`` and job status transitions. ``set_job_status`` moves a job; every created job starts
  ``Completed`` as in plain moto.
- ``aws_env``: fake credentials, ``AWS_ENDPOINT_URL`` pointing at the server, moto state reset per test.
- ``no_network``: fails the test when anything resolves or connects to a host other than 127.0.0.1.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _extend_moto() -> None:
    """StopTrainingJob for moto's SageMaker (InProgress -> Stopping; the test moves it on)."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def stop_training_job(self, training_job_name: str) -> None:
        job = self.training_jobs[training_job_name]  # KeyError -> moto's 500; the describe before covers it
        job.training_job_status = "Stopping"
        job.secondary_status = "Stopping"
        job.secondary_status_transitions.append({"Status": "Stopping", "StartTime": job.creation_time})

    def stop_training_job_response(self) -> ActionResult:
        self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
        return ActionResult({})

    SageMakerModelBackend.stop_training_job = stop_training_job
    SageMakerResponse.stop_training_job = stop_training_job_response


def set_job_status(name: str, status: str, secondary: str, *, failure_reason: str | None = None,
                   billable: int | None = None) -> None:  # fmt: skip
    """Move a moto job (the server runs in this process)."""
    from moto.sagemaker.models import sagemaker_backends

    job = sagemaker_backends[ACCOUNT][REGION].training_jobs[name]
    job.training_job_status = status
    job.secondary_status = secondary
    job.secondary_status_transitions.append({"Status": secondary, "StartTime": job.creation_time,
                                             "StatusMessage": f"moved to {secondary} by the test"})  # fmt: skip
    if failure_reason is not None:
        job.failure_reason = failure_reason
    if billable is not None:
        job.billable_time_in_seconds = billable


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    _extend_moto()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch, tmp_path):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    return moto_server


@pytest.fixture
def no_network(monkeypatch):
    """Refuse (and fail the test on) any name lookup or connection to a non-loopback host."""
    attempts: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOOPBACK and not str(host).startswith("127."):
            attempts.append(str(host))
            raise OSError(f"test guard: no network to {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        host = address[0]
        if host not in LOOPBACK and not str(host).startswith("127."):
            attempts.append(str(host))
            raise OSError(f"test guard: no network to {host}")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield attempts
    assert not attempts, f"a request tried to leave 127.0.0.1: {sorted(set(attempts))}"
