# ruff: noqa: F811  (pytest fixtures imported by name and used as arguments)
"""``submit`` under faults: the real SDK and botocore, through a fault-injecting proxy on 127.0.0.1, to moto.

The proxy (:mod:`tests.integration.fault_proxy`) drops the connection after forwarding a CreateTrainingJob,
answers 5xx or 403, and answers ResourceInUse for a duplicate job name as SageMaker does (moto would silently
overwrite the job). What must hold: one job per submit whatever fails, a ResourceInUse for our own request is
success, a describe that fails after a create says the job may exist and how to check, an S3 upload that fails is
one line, and nothing of the SDK's logging reaches the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smlaunch import jobs
from smlaunch.errors import SubmitError
from tests.integration.aws_fixtures import (  # noqa: F401  (fixtures)
    REGION,
    ROLE,
    aws_env,
    moto_server,
    no_network,
)
from tests.integration.fault_proxy import FaultProxy
from tests.integration.test_submit_moto import BUCKET, TINY_SETS, backend, make_bucket, spec_for, tiny_job_file

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _guard(no_network):
    return no_network


@pytest.fixture
def proxy(aws_env, monkeypatch):
    """The proxy in front of moto; the SDK talks to it (moto itself stays reachable for the checks)."""
    with FaultProxy(aws_env) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running


def moto(service):
    """A client straight to moto (no proxy, no faults): what really exists."""
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=os.environ["MOTO_URL"])


@pytest.fixture(autouse=True)
def _moto_url(aws_env, monkeypatch):
    monkeypatch.setenv("MOTO_URL", aws_env)


def job_names() -> list[str]:
    return [j["TrainingJobName"] for j in moto("sagemaker").list_training_jobs()["TrainingJobSummaries"]]


@pytest.mark.parametrize("fault", ["drop-after-forward", "500-after-forward", "500", "503"])
def test_a_failed_create_makes_exactly_one_job(proxy, fault):
    """The create reaches SageMaker (or not), the caller sees a failure: smlaunch describes, then creates again
    only when the job is not there. botocore never re-sends CreateTrainingJob itself."""
    make_bucket()
    proxy.fail("CreateTrainingJob", fault)
    handle = jobs.submit(spec_for(), backend=backend(), force=True)
    assert job_names() == [handle.name]
    reached = fault.endswith("after-forward")
    assert proxy.sent["CreateTrainingJob"] == (1 if reached else 2)  # no botocore retry of the create
    assert proxy.sent["DescribeTrainingJob"] >= 1


def test_a_create_that_keeps_failing_gives_up_with_one_message(proxy):
    make_bucket()
    proxy.fail("CreateTrainingJob", "500", times=10)
    with pytest.raises(SubmitError, match="CreateTrainingJob kept failing with InternalFailure"):
        jobs.submit(spec_for(), backend=backend(), force=True, job_name="never-made")
    assert proxy.sent["CreateTrainingJob"] == 3  # the backend's max_attempts, each sent once
    assert job_names() == []


def test_resource_in_use_for_our_own_request_is_success(proxy):
    """Submitting the same request under the same name again (a retry by the user): ResourceInUse, and the job's
    fingerprint tag is ours, so the submit succeeds without a second job."""
    make_bucket()
    prepared = jobs.prepare(spec_for(), job_name="same-request", force=True)
    first = jobs.launch(prepared, backend=backend())
    again = jobs.launch(prepared, backend=backend())
    assert first.name == again.name == "same-request"
    assert proxy.sent["CreateTrainingJob"] == 2 and job_names() == ["same-request"]
    arn = moto("sagemaker").describe_training_job(TrainingJobName="same-request")["TrainingJobArn"]
    tags = {t["Key"]: t["Value"] for t in moto("sagemaker").list_tags(ResourceArn=arn)["Tags"]}
    assert tags["smlaunch:fingerprint"] == prepared.request.fingerprint()


def test_resource_in_use_for_another_request_is_refused(proxy):
    make_bucket()
    jobs.submit(spec_for(), backend=backend(), force=True, job_name="taken")
    other = spec_for("gpt2-tiny-local", "training.max_steps=7")
    with pytest.raises(SubmitError, match="already exists") as caught:
        jobs.submit(other, backend=backend(), force=True, job_name="taken")
    assert "another --job-name" in caught.value.fix
    assert job_names() == ["taken"]


def test_describe_failing_after_a_create_says_the_job_may_exist(proxy):
    make_bucket()
    proxy.fail("CreateTrainingJob", "drop-after-forward")
    proxy.fail("DescribeTrainingJob", "500", times=100)
    with pytest.raises(SubmitError, match="may exist") as caught:
        jobs.submit(spec_for(), backend=backend(), force=True, job_name="maybe-made")
    assert "smlaunch list --name-contains maybe-made" in caught.value.fix
    assert proxy.sent["CreateTrainingJob"] == 1  # never a second create while we cannot tell
    assert job_names() == ["maybe-made"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The console script in a child process: what a terminal really shows (the SDK's log handlers included)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("SMLAUNCH_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "smlaunch", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize(("status", "says"), [("500", "server error"), ("403", "s3:PutObject")])
def test_a_failed_source_upload_is_one_line(proxy, tmp_path: Path, status, says):
    make_bucket()
    proxy.fail("PutObject", status, times=100)
    done = _cli("submit", tiny_job_file(tmp_path), *TINY_SETS, "--yes", "--force", "--job-name", "upload-fails")
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "upload" in errors[0] and f"s3://{BUCKET}/upload-fails/source" in errors[0], text
    assert says in text
    for noise in ("Traceback", "S3UploadFailedError", "troubleshooting guide", " INFO ", "botocore"):
        assert noise not in text, (noise, text)
    assert job_names() == []


def test_a_failed_create_shows_no_sdk_logging(proxy, tmp_path: Path):
    make_bucket()
    proxy.fail("CreateTrainingJob", "403")
    done = _cli("submit", tiny_job_file(tmp_path), *TINY_SETS, "--yes", "--force", "--job-name", "denied")
    text = done.stdout + done.stderr
    assert done.returncode == 1 and "AWS denied sagemaker:CreateTrainingJob" in done.stderr, text
    for noise in ("Traceback", "troubleshooting guide", " INFO ", "botocore"):
        assert noise not in text, (noise, text)


def test_subnets_without_security_groups_is_a_finding(aws_env, tmp_path: Path):
    subnet = ["--set", "sagemaker.subnets=[subnet-0abc]"]
    done = _cli("validate", tiny_job_file(tmp_path), *TINY_SETS, *subnet)
    assert done.returncode == 1 and "sagemaker.security_group_ids" in done.stdout + done.stderr
    done = _cli("submit", tiny_job_file(tmp_path), *TINY_SETS, *subnet, "--yes", "--dry-run")
    text = done.stdout + done.stderr
    assert done.returncode == 1 and "JOB010" in text and "Traceback" not in text and "RuntimeError" not in text
