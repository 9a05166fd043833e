# ruff: noqa: F811  (pytest fixtures imported by name and used as arguments)
"""``smlaunch submit`` end to end: the real SageMaker SDK v2 over real HTTP against moto in server mode.

Nothing here reaches AWS: ``no_network`` (autouse) fails any test that resolves or connects to a host other
than 127.0.0.1. moto 5.2 reports every job ``Completed`` and has no StopTrainingJob; the lifecycle tests use
a small in-process extension of moto (``aws_fixtures._extend_moto`` / ``set_job_status``), not Stubber, so
stop and status transitions also go through real HTTP.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from smlaunch import jobs
from smlaunch.errors import JobNotFound, SubmitError, ValidationFailed
from smlaunch.request import render
from smlaunch.resources import entrypoints_dir
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter
from tests.golden_files import ROOT as GOLDEN_ROOT
from tests.golden_files import assert_golden
from tests.integration.aws_fixtures import (  # noqa: F401  (fixtures)
    REGION,
    ROLE,
    aws_env,
    moto_server,
    no_network,
    set_job_status,
)

pytestmark = pytest.mark.integration
GOLDEN = GOLDEN_ROOT / "create_training_job"
BUCKET = "smlaunch-test"


@pytest.fixture(autouse=True)
def _guard(no_network):
    return no_network


def spec_for(preset: str = "gpt2-tiny-local", *overrides: str, output: bool = True):
    data = yaml.safe_load(starter(preset))
    sets = [f"sagemaker.role={ROLE}", f"sagemaker.region={REGION}", "cluster.instance_type=ml.p4d.24xlarge"]
    if preset == "gpt2-tiny-local":
        sets.append(f"data.train=s3://{BUCKET}/tokens/")
    if output:
        sets += [f"output.s3_path=s3://{BUCKET}/output", f"output.checkpoint_s3_uri=s3://{BUCKET}/ckpt"]
    return load_spec(data, [*sets, *overrides])


def backend(**kwargs):
    from smlaunch.backends.sagemaker import SageMakerBackend

    return SageMakerBackend(REGION, backoff_s=0.0, max_attempts=3, **kwargs)


def client(service):
    import boto3

    return boto3.client(service, region_name=REGION)


def make_bucket():
    client("s3").create_bucket(Bucket=BUCKET)


def run_cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """Run ``smlaunch ARGS`` through ``smlaunch.cli.main`` (the console script) under click's CliRunner."""
    from smlaunch.cli import main

    with CliRunner().isolation(input=input) as (out, err, _):
        code = main(list(args))
    stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    assert "Traceback" not in stdout + stderr
    return code, stdout, stderr


def tiny_job_file(tmp_path: Path, *extra: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(starter("gpt2-tiny-local", name="tiny"))
    return str(path)


TINY_SETS = [
    "--set", f"sagemaker.role={ROLE}", "--set", f"sagemaker.region={REGION}",
    "--set", "cluster.instance_type=ml.p4d.24xlarge", "--set", f"output.s3_path=s3://{BUCKET}/output",
    "--set", f"data.train=s3://{BUCKET}/tokens/",
]  # fmt: skip


# ------------------------------------------------------------------------------------------ submit


def test_submit_creates_the_job_over_http(aws_env):
    make_bucket()
    spec = spec_for(
        "gpt2-60b", f"data.train=s3://{BUCKET}/tokens/", "cluster.spot.enabled=true", "sagemaker.tags.team=ml"
    )
    handle = jobs.submit(spec, backend=backend(), force=True)
    job = client("sagemaker").describe_training_job(TrainingJobName=handle.name)

    hp = job["HyperParameters"]
    mp = json.loads(hp["mp_parameters"])
    assert mp["partitions"] == 2 and mp["tensor_parallel_degree"] == 8 and mp["microbatches"] == 4
    assert hp["sagemaker_mpi_enabled"] == "true"
    assert hp["sagemaker_mpi_num_of_processes_per_host"] == "8"
    assert json.loads(hp["sagemaker_mpi_custom_mpi_options"]).startswith("--mca btl_vader_single_copy_mechanism")
    assert hp["sagemaker_program"] == '"train_gpt2.py"'
    assert hp["max_steps"] == str(spec.training.max_steps) and hp["pipeline_parallel_degree"] == "2"
    assert hp["synthetic"] == "0"
    assert job["ResourceConfig"] == {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 32, "VolumeSizeInGB": 500}
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/pytorch-training:1.13.1-gpu-py39")
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] >= job["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert job["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/ckpt"
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/tokens/"
    assert {"Key": "team", "Value": "ml"} in client("sagemaker").list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]

    # the source tarball landed in S3 and holds exactly the entry point's files
    key = f"{handle.name}/source/sourcedir.tar.gz"
    assert json.loads(hp["sagemaker_submit_directory"]) == f"s3://{BUCKET}/{key}"
    body = client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = sorted(tar.getnames())
    assert names == sorted(p.name for p in entrypoints_dir().glob("*.py"))


def test_source_tarball_holds_only_entry_point_files(aws_env, tmp_path):
    make_bucket()
    src = tmp_path / "src"
    for rel in ["train_gpt2.py", "model.py", ".env", "id_rsa", "key.pem", ".git/config", "__pycache__/model.pyc",
                "test_model.py", "conftest.py", ".pytest_cache/x", "notes.ipynb", "data/x.bin"]:  # fmt: skip
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("SECRET=1" if not rel.endswith(".py") else "print('hi')\n")
    request = replace(render(spec_for()), source_dir=str(src))
    submission = backend().submit(request, job_name="tarball-check")
    body = client("s3").get_object(Bucket=BUCKET, Key="tarball-check/source/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.getnames()) == ["model.py", "train_gpt2.py"]
    assert submission.source_files == ("model.py", "train_gpt2.py")


def test_default_bucket_is_created_by_the_sdk(aws_env):
    make_bucket()  # the data bucket
    handle = jobs.submit(spec_for("gpt2-tiny-local", output=False), backend=backend(), force=True)
    job = client("sagemaker").describe_training_job(TrainingJobName=handle.name)
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://sagemaker-{REGION}-123456789012/"


def test_dry_run_sends_nothing_and_needs_no_credentials(aws_env, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    dry = jobs.submit(spec_for("gpt2-30b"), dry_run=True, backend=backend())
    assert isinstance(dry, jobs.DryRun)
    assert dry.request["TrainingJobName"] == dry.job_name
    assert json.loads(dry.request["HyperParameters"]["mp_parameters"])["tensor_parallel_degree"] == 8
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert client("s3").list_buckets()["Buckets"] == []


def test_dry_run_and_recording_backend_go_through_the_same_adapter(aws_env):
    from smlaunch.backends import RecordingBackend
    from smlaunch.targets import sagemaker_v2

    prepared = jobs.prepare(spec_for("gpt2-30b", "sagemaker.tags.team=ml"), job_name="same-call", force=True)
    dry = jobs.launch(prepared, backend=backend(), dry_run=True)
    recording = RecordingBackend()
    jobs.launch(prepared, backend=recording)
    call = sagemaker_v2.call(prepared.request, job_name="same-call")
    assert dry.submission.call == recording.calls[0] == call
    estimator, sent = call["estimator"], dry.request
    smp = estimator["distribution"]["smdistributed"]["modelparallel"]["parameters"]
    assert json.loads(sent["HyperParameters"]["mp_parameters"]) == smp
    assert sent["ResourceConfig"]["InstanceCount"] == estimator["instance_count"]
    assert sent["StoppingCondition"]["MaxRuntimeInSeconds"] == estimator["max_run"]
    fingerprint = {"Key": "smlaunch:fingerprint", "Value": prepared.request.fingerprint()}
    assert sent["Tags"] == [*estimator["tags"], fingerprint]  # the request's fingerprint: idempotent retries


@pytest.mark.parametrize("preset", ["gpt2-10b", "gpt2-30b", "gpt2-60b", "gpt2-xl-p5", "gpt2-30b-p5"])
def test_golden_create_training_job(preset, aws_env):
    """The CreateTrainingJob request of each reference template (SMLAUNCH_UPDATE_GOLDEN=1 regenerates)."""
    spec = load_spec(yaml.safe_load(starter(preset)), [f"sagemaker.role={ROLE}", f"sagemaker.region={REGION}"])
    dry = jobs.submit(spec, dry_run=True, backend=backend(), force=True)
    text = json.dumps(dry.request, indent=2, sort_keys=True, default=str)
    text = text.replace(dry.job_name, "<job-name>").replace(f"sagemaker-{REGION}-123456789012", "<bucket>")
    text = text.replace(f'"{dry.prepared.request.fingerprint()}"', '"<fingerprint>"')  # hashes the source path
    assert_golden(GOLDEN / f"{preset}.json", text + "\n")


def test_the_torch_engine_submits_a_torchrun_job_through_the_sdks_own_validation(aws_env):
    """engine: torch on 4 x p5: the SDK's torch_distributed checks pass (GPU instance, framework 2.8.0 in its list,
    py312), and moto stores one job launched by torchrun with no SMP or MPI in it."""
    make_bucket()
    spec = spec_for("gpt2-30b-p5", "cluster.instance_type=ml.p5.48xlarge", f"data.train=s3://{BUCKET}/tokens/")
    handle = jobs.submit(spec, backend=backend(), force=True)
    job = client("sagemaker").describe_training_job(TrainingJobName=handle.name)
    hp = job["HyperParameters"]
    assert hp["sagemaker_torch_distributed_enabled"] == "true"
    assert not {k for k in hp if k.startswith(("mp_", "sagemaker_mpi", "sagemaker_distributed_dataparallel"))}
    assert hp["engine"] == '"torch"' and hp["pipeline_parallel_degree"] == "8" and hp["bf16"] == "1"
    assert job["ResourceConfig"]["InstanceType"] == "ml.p5.48xlarge" and job["ResourceConfig"]["InstanceCount"] == 4
    image = job["AlgorithmSpecification"]["TrainingImage"]
    assert image.endswith(":2.8.0-gpu-py312") and "pytorch-training" in image
    jobs_listed = client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs_listed] == [handle.name]


def test_the_sdk_itself_refuses_an_alias_that_eng004_refuses(aws_env):
    """ENG004 says the SDK compares the raw framework_version string: the SDK, asked directly, raises on "2.8"."""
    from sagemaker.pytorch import PyTorch

    with pytest.raises(ValueError, match="framework_version"):
        PyTorch(
            entry_point="train_gpt2.py", source_dir=str(entrypoints_dir()), role=ROLE, framework_version="2.8",
            py_version="py312", instance_type="ml.p5.48xlarge", instance_count=1,
            distribution={"torch_distributed": {"enabled": True}},
        )  # fmt: skip


def test_retry_after_connection_error_creates_exactly_one_job(aws_env):
    """The first CreateTrainingJob reaches moto (the job exists), then the connection 'drops'."""
    import boto3
    from botocore.exceptions import ConnectionClosedError

    make_bucket()
    session = boto3.Session(region_name=REGION)
    sent, failed = [], []

    def count(request, **_):
        if request.headers.get("X-Amz-Target", b"").endswith(b"CreateTrainingJob"):
            sent.append(request.url)

    def drop_once(**_):
        if not failed:
            failed.append(1)
            raise ConnectionClosedError(endpoint_url=aws_env)

    session.events.register("before-send.sagemaker", count)
    session.events.register("after-call.sagemaker.CreateTrainingJob", drop_once)
    handle = jobs.submit(spec_for(), backend=backend(boto_session=session), force=True)
    assert failed and len(sent) == 1
    assert [j["TrainingJobName"] for j in client("sagemaker").list_training_jobs()["TrainingJobSummaries"]] == [
        handle.name
    ]


def test_throttled_create_is_retried(aws_env):
    import boto3
    from botocore.exceptions import ClientError

    make_bucket()
    session = boto3.Session(region_name=REGION)
    throttled = []

    def throttle_once(**_):
        if not throttled:
            throttled.append(1)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                              "CreateTrainingJob")  # fmt: skip

    session.events.register("before-call.sagemaker.CreateTrainingJob", throttle_once)
    handle = jobs.submit(spec_for(), backend=backend(boto_session=session), force=True)
    assert throttled and handle.status().status == "Completed"


# ------------------------------------------------------------------------------------------ pre-flight


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("sagemaker.role=MyRole", "not an IAM role ARN"),
        ("data.train=local:data/tokens", "local path"),
        ("output.checkpoint_s3_uri=s3:/bad", "not an S3 URI"),
        ("sagemaker.framework_version=0.1.0", "no PyTorch training image"),
        ("output.s3_path=s3://no-such-bucket/out", "does not exist"),
    ],
)
def test_preflight_refuses(override, match, aws_env):
    make_bucket()
    with pytest.raises(SubmitError, match=match):
        jobs.submit(spec_for("gpt2-tiny-local", override), backend=backend(), force=True)
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_aws_errors_become_one_message():
    from botocore.exceptions import ClientError

    from smlaunch.backends.sagemaker_errors import translate

    def err(code, message, op="CreateTrainingJob"):
        return ClientError({"Error": {"Code": code, "Message": message}}, op)

    denied = translate(err("AccessDeniedException", "User x is not authorized"))
    assert "sagemaker:CreateTrainingJob" in denied.message and "iam:PassRole" in denied.fix
    quota = translate(err("ResourceLimitExceeded", "limit 0"), instance_type="ml.p4d.24xlarge", count=16)
    assert "ml.p4d.24xlarge for training job usage" in quota.fix and "16" in quota.fix
    invalid = translate(err("ValidationException", "1 validation error: Value 'x' at 'roleArn' failed"))
    assert invalid.field == "roleArn"
    missing = translate(err("ValidationException", "Could not find training job 'nope'", "DescribeTrainingJob"),
                        job_name="nope")  # fmt: skip
    assert isinstance(missing, JobNotFound)


def test_rule_errors_refuse_unless_forced(aws_env):
    spec = spec_for("gpt2-tiny-local", "smp.tensor_parallel_degree=3")
    with pytest.raises(ValidationFailed, match="rule error"):
        jobs.submit(spec, dry_run=True, backend=backend())
    assert jobs.submit(spec, dry_run=True, backend=backend(), force=True).job_name


# ------------------------------------------------------------------------------------------ lifecycle


def _write_logs(job_name: str) -> None:
    logs = client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    logs.create_log_group(logGroupName=group)
    base = int(time.time() * 1000) - 60_000
    step = "step=1 loss=9.5000 step_time_s=0.500 tokens_per_s=1000 mfu=0.100 mem_gib=1.00"
    lines = {
        "algo-1": [(0, "starting algo-1"), (20, step), (40, "done algo-1")],
        "algo-2": [(10, "starting algo-2"), (30, "done algo-2")],
    }
    for host, events in lines.items():
        stream = f"{job_name}/{host}-1700000000"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": base + t, "message": m} for t, m in events])  # fmt: skip


def test_status_list_logs(aws_env):
    make_bucket()
    handle = jobs.submit(spec_for(), backend=backend(), force=True)
    other = jobs.submit(spec_for(), backend=backend(), force=True, job_name="other-job")
    _write_logs(handle.name)

    assert [line for _, _, line in handle.logs()] == [
        "starting algo-1", "starting algo-2", "step=1 loss=9.5000 step_time_s=0.500 tokens_per_s=1000 mfu=0.100 "
        "mem_gib=1.00", "done algo-2", "done algo-1",
    ]  # fmt: skip
    assert [host for host, _, _ in handle.logs()] == ["algo-1", "algo-2", "algo-1", "algo-2", "algo-1"]

    code, out, _ = run_cli("logs", handle.name)
    assert code == 0 and out.splitlines()[:2] == ["[algo-1] starting algo-1", "[algo-2] starting algo-2"]
    code, out, _ = run_cli("logs", handle.name, "--follow", "--poll", "0")
    assert code == 0 and "[algo-2] done algo-2" in out and "step 1/" in out and "Completed" in out

    code, out, _ = run_cli("list", "--name-contains", "other")
    assert code == 0 and other.name in out and handle.name not in out
    code, out, _ = run_cli("list", "--format", "json")
    assert {j["TrainingJobName"] for j in json.loads(out)} == {handle.name, other.name}

    code, out, _ = run_cli("status", handle.name)
    assert code == 0 and "Completed" in out and "Starting" in out


def test_stop_and_status_transitions(aws_env):
    """Stop and the InProgress -> Stopping -> Stopped / Failed transitions, through the moto extension."""
    make_bucket()
    handle = jobs.submit(spec_for(), backend=backend(), force=True)
    set_job_status(handle.name, "InProgress", "Training")
    code, out, _ = run_cli("status", handle.name)
    assert code == 0 and "InProgress (Training)" in out

    code, out, _ = run_cli("stop", handle.name)
    assert code == 0 and f"Stopping {handle.name}." in out
    assert handle.status().status == "Stopping"
    set_job_status(handle.name, "Stopped", "Stopped", billable=1234)
    status = handle.wait(poll_s=0)
    assert (status.status, status.billable_seconds) == ("Stopped", 1234)
    assert [h["Status"] for h in status.history] == ["Starting", "Training", "Stopping", "Stopped"]
    code, out, _ = run_cli("stop", handle.name)
    assert code == 0 and "already ended: Stopped" in out

    failed = jobs.submit(spec_for(), backend=backend(), force=True, job_name="failing-job")
    set_job_status(failed.name, "Failed", "Failed", failure_reason="CUDA out of memory")
    code, out, _ = run_cli("status", failed.name)
    assert "failure    CUDA out of memory" in out
    code, out, err = run_cli("logs", failed.name, "--follow", "--poll", "0")
    assert code == 1 and "failing-job failed: CUDA out of memory" in err


def test_unknown_job(aws_env):
    code, _, err = run_cli("status", "no-such-job")
    assert code == 1 and "no training job named 'no-such-job'" in err
    with pytest.raises(JobNotFound):
        jobs.attach("no-such-job", region=REGION)


# ------------------------------------------------------------------------------------------ CLI submit


def test_cli_submit_needs_confirmation_off_a_terminal(aws_env, tmp_path):
    code, _, err = run_cli("submit", tiny_job_file(tmp_path), *TINY_SETS)
    assert code == 1 and "not an interactive terminal" in err and "--yes" in err


def test_cli_submit_yes(aws_env, tmp_path):
    make_bucket()
    code, out, err = run_cli("submit", tiny_job_file(tmp_path), *TINY_SETS, "--yes", "--force",
                             "--job-name", "cli-job")  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        "Submitted cli-job",
        f"  console: https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/jobs/cli-job",
        f"  smlaunch status cli-job --region {REGION}",
        f"  smlaunch logs cli-job --region {REGION} --follow",
        f"  smlaunch stop cli-job --region {REGION}",
    ]
    assert "memory " in err and "estimate " in err


def test_cli_submit_wait(aws_env, tmp_path):
    make_bucket()
    code, out, err = run_cli("submit", tiny_job_file(tmp_path), *TINY_SETS, "-y", "--force", "--wait",
                             "--job-name", "wait-job")  # fmt: skip
    assert code == 0, err
    assert "wait-job: Completed" in out


def test_cli_submit_max_cost_and_rules(aws_env, tmp_path):
    file = tiny_job_file(tmp_path)
    code, _, err = run_cli("submit", file, *TINY_SETS, "--max-cost", "0.000001", "--yes", "--force")
    assert code == 1 and "exceeds --max-cost" in err
    code, _, err = run_cli("submit", file, *TINY_SETS, "--set", "smp.tensor_parallel_degree=3", "--yes")
    assert code == 1 and "rule error" in err
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_cli_submit_dry_run(aws_env, tmp_path):
    secret = "sagemaker.environment.WANDB_API_KEY=abcdef0123456789abcdef0123456789"
    code, out, err = run_cli("submit", tiny_job_file(tmp_path), *TINY_SETS, "--force", "--dry-run", "--set", secret)
    assert code == 0, err
    request = yaml.safe_load(out)
    assert request["TrainingJobName"].startswith("tiny-")
    assert request["ResourceConfig"]["InstanceType"] == "ml.p4d.24xlarge"
    assert "dry run" in err and "JOB008" in err  # the secret-in-environment warning is surfaced
    assert "testing" not in out + err  # credentials are never printed
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
