"""The SageMaker backend: a :class:`LaunchRequest` becomes an SDK v2 ``PyTorch`` estimator and its ``fit()``.

Submit, in order:
  1. pre-flight, offline: job name, role ARN shape, region, S3 URI syntax, no ``local:`` channels, image
     resolvable (:mod:`~smlaunch.backends.sagemaker_preflight`);
  2. pre-flight, online (not on dry runs): every bucket the job reads or writes answers HeadBucket;
  3. stage a clean copy of ``entrypoints/`` (top-level ``*.py`` only) as ``source_dir``
     (:mod:`~smlaunch.backends.source`);
  4. ``PyTorch(**sagemaker_v2.estimator_kwargs(request)).fit(**sagemaker_v2.fit_kwargs(request), wait=False)``
     through a session whose ``CreateTrainingJob`` goes through :meth:`SageMakerBackend._create`: botocore never
     re-sends it; smlaunch retries throttling, 5xx and connection errors itself, asking DescribeTrainingJob first
     whether the job exists, and takes ResourceInUse for a job tagged with this request's fingerprint as success
     (:mod:`~smlaunch.backends.sagemaker_create`), so a retry never creates two jobs.

A dry run builds the same estimator on a throw-away boto3 session whose every call is answered locally by a
``before-call`` hook (S3 uploads are recorded, CreateTrainingJob is captured): nothing leaves the machine,
and no credentials are needed. The SDK and boto3 are imported inside functions (about 3 s), through
:mod:`~smlaunch.backends.sagemaker_sdk`; AWS errors become SubmitErrors in :mod:`~smlaunch.backends.sagemaker_errors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from smlaunch.backends import LOG_GROUP, Submission, console_url, host_of
from smlaunch.backends.sagemaker_create import create_training_job, with_fingerprint
from smlaunch.backends.sagemaker_errors import aws_errors
from smlaunch.backends.sagemaker_preflight import bucket_of, check_buckets, check_job_name, preflight
from smlaunch.backends.sagemaker_sdk import (
    DryRunSession,
    boto,
    config_validated_once,
    root_logging_kept,
    sdk,
    sdk_session,
)
from smlaunch.backends.source import staged_source
from smlaunch.errors import SubmitError
from smlaunch.request import LaunchRequest
from smlaunch.targets import sagemaker_v2

TERMINAL = ("Completed", "Failed", "Stopped")

CreateCall = Callable[[dict[str, Any]], dict[str, Any]]
"""A CreateTrainingJob: the request's parameters -> the service's answer."""


class SageMakerBackend:
    """Submit and manage SMP v1 training jobs through the SageMaker SDK v2 and boto3.

    ``boto_session`` defaults to ``boto3.Session(region_name=region)``; ``max_attempts`` and ``retry_mode``
    configure botocore's retries (throttling, 5xx) for every call; CreateTrainingJob is retried by
    :meth:`_create`, which first checks whether the job already exists.
    """

    def __init__(
        self,
        region: str | None = None,
        *,
        boto_session: Any = None,
        max_attempts: int = 6,
        retry_mode: str = "standard",
        backoff_s: float = 1.0,
    ) -> None:
        self._boto_session = boto_session
        self._region = region
        self.max_attempts = max_attempts
        self.retry_mode = retry_mode
        self.backoff_s = backoff_s
        self._clients: dict[tuple[str, bool], Any] = {}

    # -- sessions and clients

    @property
    def boto_session(self) -> Any:
        if self._boto_session is None:
            boto3, _ = boto()
            with aws_errors():
                self._boto_session = boto3.Session(region_name=self._region)
        return self._boto_session

    @property
    def region(self) -> str | None:
        return self._region or self.boto_session.region_name

    def client(self, service: str, *, retries: bool = True) -> Any:
        """A cached client; ``retries=False`` makes exactly one attempt per call."""
        key = (service, retries)
        if key not in self._clients:
            from botocore.config import Config

            attempts = self.max_attempts if retries else 1  # total attempts ("max_attempts" counts retries)
            config = Config(retries={"mode": self.retry_mode, "total_max_attempts": attempts})
            self._clients[key] = self.boto_session.client(service, region_name=self.region, config=config)
        return self._clients[key]

    def console_url(self, job_name: str) -> str:
        return console_url(self.region, job_name)

    # -- submit

    def submit(self, request: LaunchRequest, *, job_name: str, dry_run: bool = False) -> Submission:
        """Create the training job (or, with ``dry_run``, only capture the request it would send)."""
        check_job_name(job_name)
        region = self.region
        preflight(request, region=region)
        boto_session, create, bucket = self._dry_run(request, region) if dry_run else self._live(request)
        captured: dict[str, Any] = {}

        def on_create(params: dict[str, Any]) -> dict[str, Any]:
            params = with_fingerprint(params, request.fingerprint())
            captured.update(params)
            return create(params)

        staged = staged_source(request.source_dir, request.entry_point, own=request.own_script)
        with staged as source, config_validated_once(), root_logging_kept():
            session = sdk_session(boto_session, bucket, on_create)
            estimator = _estimator(replace(request, source_dir=str(source)), session)
            _fit(estimator, request, job_name)
            paths = [p for p in source.rglob("*") if p.is_file()]
            files = tuple(sorted(p.relative_to(source).as_posix() for p in paths))
            size = sum(p.stat().st_size for p in paths)
        uploaded = getattr(estimator, "uploaded_code", None)
        source_uri = uploaded.s3_prefix if uploaded else None
        return Submission(
            job_name, captured, source_uri=source_uri, source_files=files, source_bytes=size, region=region,
            dry_run=dry_run,
            uploads=(source_uri,) if source_uri else (), call=sagemaker_v2.call(request, job_name=job_name),
        )  # fmt: skip

    def _dry_run(self, request: LaunchRequest, region: str) -> tuple[Any, CreateCall, str]:
        """A local-only session, its captured CreateTrainingJob, and the bucket the SDK would default to."""
        fake = DryRunSession(region)
        bucket = bucket_of(request.output_path) or f"sagemaker-{region}-{request.role.split(':')[4]}"
        return fake.session, fake.create, bucket

    def _live(self, request: LaunchRequest) -> tuple[Any, CreateCall, str]:
        """The real session (after the online bucket checks), the retrying CreateTrainingJob, the output bucket."""
        self.check_buckets(request)
        return self.boto_session, self._create, bucket_of(request.output_path) or self._default_bucket()

    def _default_bucket(self) -> str:
        """SageMaker's default bucket, ``sagemaker-<region>-<account>`` (the SDK creates it if missing)."""
        with aws_errors():
            account = self.client("sts").get_caller_identity()["Account"]
        return f"sagemaker-{self.region}-{account}"

    def check_buckets(self, request: LaunchRequest) -> None:
        """HeadBucket on every bucket of the request: missing or forbidden buckets fail here, not in the job."""
        check_buckets(self.client("s3"), request, region=self.region)

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateTrainingJob, retried by hand (:mod:`~smlaunch.backends.sagemaker_create`): one submit, one job."""
        return create_training_job(self, params)

    # -- lifecycle

    def describe(self, job_name: str) -> dict[str, Any]:
        with aws_errors(job_name=job_name):
            return self.client("sagemaker").describe_training_job(TrainingJobName=job_name)

    def tags(self, arn: str) -> list[dict[str, str]]:
        """The tags of a training job (ListTags)."""
        with aws_errors():
            return self.client("sagemaker").list_tags(ResourceArn=arn).get("Tags", [])

    def list_jobs(
        self, *, status: str | None = None, name_contains: str | None = None, max_results: int = 50
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
        if status:
            kwargs["StatusEquals"] = status
        if name_contains:
            kwargs["NameContains"] = name_contains
        jobs: list[dict[str, Any]] = []
        with aws_errors():
            for page in self.client("sagemaker").get_paginator("list_training_jobs").paginate(**kwargs):
                jobs.extend(page.get("TrainingJobSummaries", []))
                if len(jobs) >= max_results:
                    break
        return jobs[:max_results]

    def stop(self, job_name: str) -> None:
        with aws_errors(job_name=job_name):
            self.client("sagemaker").stop_training_job(TrainingJobName=job_name)

    def log_events(
        self, job_name: str, *, follow: bool = False, poll_s: float = 5.0, on_status: Any = None
    ) -> Iterator[tuple[str, datetime, str]]:
        """Every host's CloudWatch lines, interleaved by time; with ``follow``, until the job ends.

        While following, ``on_status`` gets the DescribeTrainingJob response of every poll.
        """
        tokens: dict[str, str | None] = {}
        done = False
        while True:
            if follow:
                described = self.describe(job_name)
                done = described["TrainingJobStatus"] in TERMINAL
                if on_status is not None:
                    on_status(described)
            batch = []
            for stream in self._streams(job_name):
                batch.extend(self._read_stream(stream, tokens))
            batch.sort(key=lambda event: (event[1], event[0]))
            yield from batch
            if not follow or done:
                return
            time.sleep(poll_s)

    def _streams(self, job_name: str) -> list[str]:
        logs = self.client("logs")
        streams: list[str] = []
        with aws_errors():
            try:
                pages = logs.get_paginator("describe_log_streams").paginate(
                    logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/"
                )
                for page in pages:
                    streams.extend(s["logStreamName"] for s in page.get("logStreams", []))
            except logs.exceptions.ResourceNotFoundException:
                return []  # the job has not logged yet
        return sorted(streams)

    def _read_stream(self, stream: str, tokens: dict[str, str | None]) -> list[tuple[str, datetime, str]]:
        logs, host, events = self.client("logs"), host_of(stream), []
        with aws_errors():
            while True:
                kwargs = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
                if tokens.get(stream):
                    kwargs["nextToken"] = tokens[stream]
                page = logs.get_log_events(**kwargs)
                for event in page.get("events", []):
                    when = datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC)
                    events.append((host, when, event["message"].rstrip("\n")))
                token = page.get("nextForwardToken")
                if not page.get("events") or token == tokens.get(stream):
                    tokens[stream] = token or tokens.get(stream)
                    return events
                tokens[stream] = token


def _estimator(request: LaunchRequest, session: Any) -> Any:
    """``PyTorch(**sagemaker_v2.estimator_kwargs(request), sagemaker_session=session)``."""
    sagemaker = sdk()
    kwargs = sagemaker_v2.estimator_kwargs(request)
    try:
        return sagemaker.pytorch.PyTorch(**kwargs, sagemaker_session=session)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise SubmitError(f"the SageMaker SDK refused the estimator arguments: {exc!r}") from None


def _fit(estimator: Any, request: LaunchRequest, job_name: str) -> None:
    """``estimator.fit(**sagemaker_v2.fit_kwargs(request), wait=False)``: uploads the source, creates the job."""
    fit = sagemaker_v2.fit_kwargs(request, job_name=job_name)
    fit["inputs"] = fit["inputs"] or None
    with aws_errors(job_name=None, instance_type=request.instance_type, count=request.instance_count):
        try:
            estimator.fit(**fit, wait=False, logs=False)
        except (ValueError, RuntimeError) as exc:  # the SDK's own checks (p5, mp_parameters, VPC, ...)
            raise SubmitError(f"the SageMaker SDK refused the job: {exc}") from None
