# ruff: noqa: F811  (pytest fixtures imported by name and used as arguments)
"""The diagnosis of failed jobs end to end: the real SDK submits to moto on 127.0.0.1, the job is made to fail
(moto's in-process state, :func:`aws_fixtures.set_job_status`), each host's lines go to moto's CloudWatch Logs, and
``smlaunch status --format json`` / ``logs`` / ``logs --follow`` / ``submit --wait`` read them back by job name
alone (the spec comes from the job's tags).

The failures are tests/data/failures/*.yaml (real error texts, each with its public source).
"""

from __future__ import annotations

import json
import time

import pytest

from smlaunch import jobs
from smlaunch.diagnosis import Diagnosis, Evidence
from tests.integration.aws_fixtures import (  # noqa: F401  (fixtures)
    ACCOUNT,
    REGION,
    aws_env,
    moto_server,
    no_network,
    set_job_status,
)
from tests.integration.test_submit_moto import BUCKET, TINY_SETS, backend, client, make_bucket, run_cli, tiny_job_file
from tests.unit.test_diagnosis_samples import check, load_samples, sample_spec

pytestmark = pytest.mark.integration
SAMPLES = load_samples()
GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture(autouse=True)
def _guard(no_network):
    return no_network


def write_logs(job_name: str, logs: dict[str, list[str]]) -> None:
    """Each host's lines as moto CloudWatch events in ``<job>/algo-N-<epoch>`` streams, one second apart."""
    cw = client("logs")
    try:
        cw.create_log_group(logGroupName=GROUP)
    except cw.exceptions.ResourceAlreadyExistsException:
        pass
    base = int(time.time() * 1000) - 60_000  # CloudWatch refuses events older than 14 days
    for host, lines in logs.items():
        stream = f"{job_name}/{host}-1700000000"
        cw.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        events = [{"timestamp": base + 1000 * i, "message": line} for i, line in enumerate(lines)]
        if events:
            cw.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)


def fail(job_name: str, sample: dict) -> None:
    for status in sample.get("transitions", []):
        set_job_status(job_name, "InProgress", status)
    set_job_status(job_name, sample["status"], sample["secondary"], failure_reason=sample.get("failure_reason"))
    write_logs(job_name, sample.get("logs") or {})


def from_json(data: dict) -> Diagnosis:
    assert set(data) == {"cause", "summary", "field", "fix", "evidence"}
    assert all(set(e) == {"host", "line"} for e in data["evidence"])
    return Diagnosis(data["cause"], data["summary"], data["field"], data["fix"],
                     tuple(Evidence(**e) for e in data["evidence"]))  # fmt: skip


def test_every_sample_is_diagnosed_from_the_job_name_alone(aws_env):
    make_bucket()
    for name, sample in SAMPLES.items():
        job = f"diag-{name.replace('_', '-')}"
        jobs.submit(sample_spec(sample, region=REGION), backend=backend(), force=True, job_name=job)
        fail(job, sample)
        code, out, err = run_cli("status", job, "--format", "json")
        assert code == 0, err
        check(sample, from_json(json.loads(out)["diagnosis"]))


def test_status_text_and_logs_show_the_diagnosis(aws_env):
    make_bucket()
    sample = SAMPLES["nccl_timeout"]
    handle = jobs.submit(sample_spec(sample, region=REGION), backend=backend(), force=True, job_name="diag-text")
    fail(handle.name, sample)
    code, out, _ = run_cli("status", handle.name)
    assert code == 0 and "diagnosis  nccl-timeout: NCCL timeout: ALLREDUCE (SeqNum 1580)" in out
    assert "  field    (none: no spec field maps to this)" in out and "algo-3's log first" in out
    code, out, err = run_cli("logs", handle.name)
    assert code == 0 and out.splitlines()[0].startswith("[algo-1] [1,0]<stdout>:step=40")
    assert "diagnosis  nccl-timeout" in err
    code, out, err = run_cli("logs", handle.name, "--follow", "--poll", "0")
    assert code == 1 and "diagnosis  nccl-timeout" in err
    assert err.strip().splitlines()[-1].startswith("error: diag-text failed: NCCL timeout")
    assert "SMLAUNCH_DEBUG" not in err
    assert out.count("diag-text: Failed") == 1


def test_logs_of_a_job_with_no_streams_say_why(aws_env):
    make_bucket()
    handle = jobs.submit(sample_spec(SAMPLES["capacity"], region=REGION), backend=backend(), force=True,
                         job_name="diag-nostreams")  # fmt: skip
    set_job_status(handle.name, "InProgress", "Starting")
    code, out, err = run_cli("logs", handle.name)
    assert code == 0 and out == ""
    assert "has no log streams yet (InProgress (Starting))" in err
    fail(handle.name, SAMPLES["capacity"])
    code, out, err = run_cli("logs", handle.name)
    assert code == 0 and "ended Failed (Failed) before any instance wrote to CloudWatch" in err
    assert "diagnosis  capacity:" in err


def test_submit_wait_ends_with_the_diagnosis(aws_env, tmp_path, monkeypatch):
    """moto creates jobs Completed; here CreateTrainingJob of one name creates it Failed with an S3 FailureReason."""
    from moto.sagemaker.models import SageMakerModelBackend

    create = SageMakerModelBackend.create_training_job

    def failing_create(self, *args, **kwargs):
        job = create(self, *args, **kwargs)
        found = self.training_jobs.get("wait-fails")
        if found is not None and found.training_job_status == "Completed":
            reason = SAMPLES["s3_access_denied"]["failure_reason"]
            set_job_status("wait-fails", "Failed", "Failed", failure_reason=reason)
        return job

    monkeypatch.setattr(SageMakerModelBackend, "create_training_job", failing_create)
    make_bucket()
    code, out, err = run_cli("submit", tiny_job_file(tmp_path), *TINY_SETS, "-y", "--force", "--wait",
                             "--job-name", "wait-fails")  # fmt: skip
    assert code == 1 and out.count("wait-fails: Failed") == 1
    assert "diagnosis  s3-access-denied: S3 access denied reading from s3://smlaunch-test/tokens/train_000.bin" in err
    assert "field    sagemaker.role" in err and f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole" in err
    assert "error: wait-fails failed: S3 access denied" in err and "SMLAUNCH_DEBUG" not in err
    assert BUCKET in err


def test_the_tags_store_the_spec_and_status_json_of_a_running_job_has_no_diagnosis(aws_env):
    make_bucket()
    sample = SAMPLES["cuda_oom"]
    handle = jobs.submit(sample_spec(sample, region=REGION), backend=backend(), force=True, job_name="diag-tags")
    arn = client("sagemaker").describe_training_job(TrainingJobName=handle.name)["TrainingJobArn"]
    keys = [t["Key"] for t in client("sagemaker").list_tags(ResourceArn=arn)["Tags"]]
    assert "smlaunch:spec:0" in keys
    set_job_status(handle.name, "InProgress", "Training")
    code, out, _ = run_cli("status", handle.name, "--format", "json")
    assert code == 0 and json.loads(out)["diagnosis"] is None
