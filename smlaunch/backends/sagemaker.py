"""The SageMaker backend: a :class:`LaunchRequest` becomes an SDK v2 ``PyTorch`` estimator and its ``fit()``.

The only smlaunch module that imports sagemaker, boto3 or botocore (imported inside functions: about 3 s).

Submit, in order:
  1. pre-flight, offline: role ARN shape, region, S3 URI syntax, no ``local:`` channels, image resolvable;
  2. pre-flight, online (not on dry runs): every bucket the job reads or writes answers HeadBucket;
  3. stage a clean copy of ``entrypoints/`` (top-level ``*.py`` only) as ``source_dir``;
  4. ``PyTorch(**request.estimator_kwargs()).fit(inputs, wait=False, job_name=...)`` through a session whose
     ``CreateTrainingJob`` goes through :meth:`SageMakerBackend._create`: it retries throttling, 5xx and
     connection errors itself, and after a failed attempt asks DescribeTrainingJob whether the job exists,
     so a retry never creates two jobs.

A dry run builds the same estimator on a throw-away boto3 session whose every call is answered locally by a
``before-call`` hook (S3 uploads are recorded, CreateTrainingJob is captured): nothing leaves the machine,
and no credentials are needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from smlaunch.backends import LOG_GROUP, Submission, console_url, host_of
from smlaunch.errors import JobNotFound, MissingDependency, SubmitError
from smlaunch.request import LaunchRequest

INSTALL_HINT = "pip install 'smlaunch[sagemaker]'"
ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<key>.*))?$")
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
TERMINAL = ("Completed", "Failed", "Stopped")
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
SOURCE_EXCLUDE = re.compile(r"^(test_.*|.*_test|conftest|setup)\.py$")
THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
              "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
              "SlowDown"}  # fmt: skip


def _sdk() -> Any:
    """Import the SageMaker SDK v2 quietly, or raise MissingDependency."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    try:
        import sagemaker
        import sagemaker.pytorch
    except ImportError as exc:
        raise MissingDependency(
            f"`smlaunch submit` needs the SageMaker Python SDK v2 ({exc.name or exc} is not installed)",
            fix=INSTALL_HINT,
        ) from None
    for name in ("sagemaker", "sagemaker.config", "sagemaker.image_uris", "botocore.credentials"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if int(sagemaker.__version__.split(".")[0]) >= 3:
        raise MissingDependency(
            f"sagemaker {sagemaker.__version__} is SDK v3, which has no PyTorch estimator for SMP v1",
            fix=INSTALL_HINT,
        )
    return sagemaker


def _boto() -> tuple[Any, Any]:
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise MissingDependency("boto3 is not installed", fix=INSTALL_HINT) from None
    return boto3, botocore


# ---------------------------------------------------------------------------------------------- pre-flight


def preflight(request: LaunchRequest, *, region: str | None) -> None:
    """Offline checks that SageMaker would otherwise fail minutes later (or not at all)."""
    if not region:
        raise SubmitError(
            "no AWS region: set sagemaker.region in the spec, or AWS_DEFAULT_REGION / a profile region",
            field="sagemaker.region",
            fix="--set sagemaker.region=us-east-1",
        )
    if not request.role:
        raise SubmitError(
            "sagemaker.role is not set: SageMaker needs an execution role for the job",
            field="sagemaker.role",
            fix="--set sagemaker.role=arn:aws:iam::123456789012:role/SageMakerExecutionRole",
        )
    if not ROLE_ARN.match(request.role):
        raise SubmitError(
            f"sagemaker.role {request.role!r} is not an IAM role ARN",
            field="sagemaker.role",
            fix="use the role's ARN: arn:aws:iam::<12-digit account>:role/<name>",
        )
    for channel, uri in request.inputs.items():
        if uri.startswith("local:") or "://" not in uri:
            raise SubmitError(
                f"data.{channel} is a local path ({uri!r}); a SageMaker job reads its data from S3",
                field=f"data.{channel}",
                fix=f"upload it (aws s3 sync <dir> s3://<bucket>/<prefix>/) and set data.{channel}: s3://<bucket>/"
                f"<prefix>/, or drop the channel for synthetic data; `smlaunch local` runs local: paths",
            )
        _check_s3_uri(uri, f"data.{channel}")
    _check_s3_uri(request.output_path, "output.s3_path")
    _check_s3_uri(request.checkpoint_s3_uri, "output.checkpoint_s3_uri")
    if not request.image_uri:
        _check_image(request, region)


def _check_s3_uri(uri: str | None, field: str) -> None:
    if uri is None:
        return
    if not S3_URI.match(uri) or ".." in uri:
        raise SubmitError(
            f"{field} {uri!r} is not an S3 URI",
            field=field,
            fix="write s3://<bucket>/<prefix> (bucket: 3-63 lower-case letters, digits, '.', '-')",
        )


def _check_image(request: LaunchRequest, region: str) -> None:
    sagemaker = _sdk()
    try:
        sagemaker.image_uris.retrieve(
            "pytorch", region, version=request.framework_version, py_version=request.py_version,
            instance_type=request.instance_type, image_scope="training",
        )  # fmt: skip
    except ValueError as exc:
        raise SubmitError(
            f"no PyTorch training image for framework_version {request.framework_version!r}, "
            f"py_version {request.py_version!r} in {region}: {exc}",
            field="sagemaker.framework_version",
            fix="SMP v1 runs on framework_version 1.13.1 (py39) or 2.0.0 (py310); or set sagemaker.image_uri",
        ) from None


def buckets_of(request: LaunchRequest) -> list[str]:
    """Every bucket the job reads or writes (data, output, checkpoints), sorted."""
    uris = [*request.inputs.values(), request.output_path, request.checkpoint_s3_uri]
    return sorted({m["bucket"] for uri in uris if uri and (m := S3_URI.match(uri))})


# ---------------------------------------------------------------------------------------------- source


@contextlib.contextmanager
def staged_source(source_dir: str, entry_point: str) -> Iterator[Path]:
    """A temporary copy of ``source_dir`` holding only its top-level ``*.py`` files (no tests).

    ``sourcedir.tar.gz`` is built from this copy, so ``.git``, ``.env``, keys, caches and notebooks
    next to the entry points never leave the machine.
    """
    src = Path(source_dir)
    if not (src / entry_point).is_file():
        raise SubmitError(f"entry point {entry_point} not found in {src}", fix="reinstall smlaunch")
    with tempfile.TemporaryDirectory(prefix="smlaunch-src-") as tmp:
        dest = Path(tmp) / "source"
        dest.mkdir()
        for path in sorted(src.glob("*.py")):
            if path.is_file() and not path.is_symlink() and not SOURCE_EXCLUDE.match(path.name):
                shutil.copyfile(path, dest / path.name)
        yield dest


# ---------------------------------------------------------------------------------------------- errors


@contextlib.contextmanager
def aws_errors(*, job_name: str | None = None, instance_type: str | None = None, count: int | None = None):
    """Turn botocore/SDK errors into one :class:`SubmitError` each (never a traceback)."""
    _, botocore = _boto()
    exc_mod = botocore.exceptions
    try:
        yield
    except exc_mod.ClientError as exc:
        raise translate(exc, job_name=job_name, instance_type=instance_type, count=count) from None
    except exc_mod.NoCredentialsError:
        raise SubmitError(
            "no AWS credentials found",
            fix="run `aws configure` or `aws sso login`, or set AWS_PROFILE (credentials are never stored by smlaunch)",
        ) from None
    except exc_mod.NoRegionError as exc:
        raise SubmitError(str(exc), fix="set sagemaker.region in the spec or AWS_DEFAULT_REGION") from None
    except (exc_mod.ConnectionError, exc_mod.HTTPClientError) as exc:
        raise SubmitError(
            f"could not reach AWS: {exc}", fix="check the network, proxy settings and region, then retry"
        ) from None
    except exc_mod.ParamValidationError as exc:
        raise SubmitError(f"invalid request: {exc}") from None


def translate(exc: Any, *, job_name: str | None = None, instance_type: str | None = None,
              count: int | None = None) -> SubmitError:  # fmt: skip
    """One clear :class:`SubmitError` for a botocore ``ClientError``."""
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    operation = getattr(exc, "operation_name", "") or "call"
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    service = "s3" if operation in ("HeadBucket", "PutObject", "ListBuckets", "CreateBucket") else "sagemaker"
    if (
        job_name
        and ("Could not find" in message or "does not exist" in message or code == "ResourceNotFound")
        and service == "sagemaker"
    ):
        return JobNotFound(
            f"no training job named {job_name!r} in this account and region",
            fix="`smlaunch list` shows the jobs of this region; pass --region if the job ran elsewhere",
        )
    if code in ("AccessDenied", "AccessDeniedException", "403", "Forbidden"):
        action = f"{service}:{operation}" if operation != "HeadBucket" else "s3:ListBucket"
        return SubmitError(
            f"AWS denied {action}: {message or 'access denied'}",
            fix=f"grant {action} to the identity you submit with"
            + (" (and iam:PassRole on sagemaker.role)" if operation == "CreateTrainingJob" else ""),
        )
    if code == "ResourceLimitExceeded":
        quota = f"{instance_type} for training job usage" if instance_type else "the instance type's training quota"
        return SubmitError(
            f"SageMaker quota exceeded: {message}",
            fix=f"raise the Service Quotas value 'Amazon SageMaker > {quota}'"
            + (f" to at least {count}" if count else "")
            + " (spot jobs: '... for spot training job usage'), or use fewer instances",
        )
    if code in ("ValidationException", "ValidationError"):
        field = re.search(r"at '([\w.]+)'", message)
        return SubmitError(
            f"SageMaker rejected {operation}: {message}",
            field=field.group(1) if field else None,
            fix=f"check the value of `{field.group(1)}` in the request (`smlaunch submit --dry-run` prints it)"
            if field
            else "`smlaunch submit --dry-run` prints the request",
        )
    if code == "ResourceInUse":
        return SubmitError(f"{message} ", fix="choose another --job-name (or leave it out for a fresh one)")
    if code in THROTTLING or status >= 500:
        return SubmitError(
            f"{operation} kept failing with {code or status} after retries: {message}",
            fix="AWS is throttling this account; try again in a few minutes"
            if code in THROTTLING
            else f"AWS answered with a server error ({status}); try again in a few minutes",
        )
    if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
        return SubmitError(f"AWS credentials rejected ({code})", fix="refresh them: `aws sso login` or a new profile")
    return SubmitError(f"{operation} failed: {code}: {message}")


def _retryable(exc: Exception, botocore: Any) -> bool:
    errors = botocore.exceptions
    if isinstance(exc, errors.ConnectionError | errors.HTTPClientError):
        return True
    if isinstance(exc, errors.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return code in THROTTLING or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return False


# ---------------------------------------------------------------------------------------------- backend


class _CreateInterceptor:
    """Stands in for the SDK session's sagemaker client: ``create_training_job`` goes to ``on_create``."""

    def __init__(self, client: Any, on_create: Any) -> None:
        self._client = client
        self._on_create = on_create

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return self._on_create(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


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
            boto3, _ = _boto()
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

            attempts = self.max_attempts if retries else 1
            config = Config(retries={"mode": self.retry_mode, "max_attempts": attempts})
            self._clients[key] = self.boto_session.client(service, region_name=self.region, config=config)
        return self._clients[key]

    def console_url(self, job_name: str) -> str:
        return console_url(self.region, job_name)

    # -- submit

    def submit(self, request: LaunchRequest, *, job_name: str, dry_run: bool = False) -> Submission:
        """Create the training job (or, with ``dry_run``, only capture the request it would send)."""
        if not JOB_NAME.match(job_name):
            raise SubmitError(
                f"job name {job_name!r} is not valid for SageMaker",
                fix="1-63 letters, digits and hyphens, starting with a letter or digit",
            )
        region = self.region
        preflight(request, region=region)
        if dry_run:
            fake = _DryRunSession(region)
            boto_session, create = fake.session, fake.create
            bucket = _bucket_of(request.output_path) or f"sagemaker-{region}-{request.role.split(':')[4]}"
        else:
            self.check_buckets(request)
            boto_session, create = self.boto_session, self._create
            bucket = _bucket_of(request.output_path) or self._default_bucket()
        captured: dict[str, Any] = {}

        def on_create(params: dict[str, Any]) -> dict[str, Any]:
            captured.update(params)
            return create(params)

        with staged_source(request.source_dir, request.entry_point) as source, _config_validated_once():
            estimator = self._estimator(request, boto_session, bucket, source, on_create)
            with aws_errors(job_name=None, instance_type=request.instance_type, count=request.instance_count):
                try:
                    estimator.fit(inputs=dict(request.inputs) or None, wait=False, logs=False, job_name=job_name)
                except ValueError as exc:  # the SDK's own checks (p5, mp_parameters, ...)
                    raise SubmitError(f"the SageMaker SDK refused the job: {exc}") from None
            files = tuple(sorted(p.name for p in source.iterdir()))
        uploaded = getattr(estimator, "uploaded_code", None)
        source_uri = uploaded.s3_prefix if uploaded else None
        uploads = (source_uri,) if source_uri else ()
        return Submission(job_name, captured, source_uri, files, region, dry_run, uploads)

    def _estimator(self, request: LaunchRequest, boto_session: Any, bucket: str, source: Path, on_create: Any):
        sagemaker = _sdk()
        client = boto_session.client("sagemaker", region_name=boto_session.region_name)
        session = sagemaker.Session(
            boto_session=boto_session,
            sagemaker_client=_CreateInterceptor(client, on_create),
            default_bucket=bucket,
            sagemaker_config=SDK_CONFIG,
        )
        kwargs = request.estimator_kwargs()
        kwargs["source_dir"] = str(source)
        try:
            return sagemaker.pytorch.PyTorch(**kwargs, sagemaker_session=session)
        except (ValueError, TypeError, KeyError) as exc:
            raise SubmitError(f"the SageMaker SDK refused the estimator arguments: {exc!r}") from None

    def _default_bucket(self) -> str:
        """SageMaker's default bucket, ``sagemaker-<region>-<account>`` (the SDK creates it if missing)."""
        with aws_errors():
            account = self.client("sts").get_caller_identity()["Account"]
        return f"sagemaker-{self.region}-{account}"

    def check_buckets(self, request: LaunchRequest) -> None:
        """HeadBucket on every bucket of the request: missing or forbidden buckets fail here, not in the job."""
        _, botocore = _boto()
        s3 = self.client("s3")
        for bucket in buckets_of(request):
            try:
                with aws_errors():
                    try:
                        s3.head_bucket(Bucket=bucket)
                    except botocore.exceptions.ClientError as exc:
                        code = exc.response.get("Error", {}).get("Code", "")
                        if code in ("404", "NoSuchBucket", "NotFound"):
                            raise SubmitError(
                                f"S3 bucket {bucket!r} does not exist (or is in another partition)",
                                fix=f"create it (aws s3 mb s3://{bucket} --region {self.region}) or fix the URI",
                            ) from None
                        raise
            except SubmitError as exc:
                if "denied" in exc.message:
                    exc = SubmitError(f"no access to S3 bucket {bucket!r}: {exc.message}", fix=exc.fix)
                raise exc from None

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateTrainingJob, retried by hand: after a failed attempt, DescribeTrainingJob decides."""
        _, botocore = _boto()
        name = params["TrainingJobName"]
        client = self.client("sagemaker", retries=False)
        for attempt in range(1, self.max_attempts + 1):
            try:
                return client.create_training_job(**params)
            except Exception as exc:
                if not _retryable(exc, botocore):
                    raise
                existing = self._existing(name)
                if existing is not None:  # the failed attempt did create it
                    return {"TrainingJobArn": existing["TrainingJobArn"]}
                if attempt == self.max_attempts:
                    raise
            time.sleep(self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def _existing(self, job_name: str) -> dict[str, Any] | None:
        try:
            return self.describe(job_name)
        except JobNotFound:
            return None

    # -- lifecycle

    def describe(self, job_name: str) -> dict[str, Any]:
        with aws_errors(job_name=job_name):
            return self.client("sagemaker").describe_training_job(TrainingJobName=job_name)

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


@contextlib.contextmanager
def _config_validated_once() -> Iterator[None]:
    """The SDK re-validates its config dict against its JSON schema on every lookup (~0.15 s each, ~20 per
    submit). Ours is a constant that the Session validates once; skip the repeats while we submit."""
    import sagemaker.utils

    original = sagemaker.utils.validate_sagemaker_config

    def validate(config: Any = None, *args: Any, **kwargs: Any) -> Any:
        return None if config == SDK_CONFIG else original(config, *args, **kwargs)

    sagemaker.utils.validate_sagemaker_config = validate
    try:
        yield
    finally:
        sagemaker.utils.validate_sagemaker_config = original


def _bucket_of(uri: str | None) -> str | None:
    match = S3_URI.match(uri) if uri else None
    return match["bucket"] if match else None


class _DryRunSession:
    """A boto3 session that answers every call locally: S3 writes are recorded, CreateTrainingJob captured."""

    ANSWERS: ClassVar[dict[str, dict[str, Any]]] = {
        "s3.PutObject": {"ETag": '"dry-run"'},
        "s3.HeadBucket": {},
        "s3.HeadObject": {},
        "s3.CreateBucket": {},
        "s3.GetBucketLocation": {"LocationConstraint": None},
    }

    def __init__(self, region: str) -> None:
        boto3, _ = _boto()
        self.session = boto3.Session(region_name=region, aws_access_key_id="dry-run", aws_secret_access_key="dry-run")
        self.session.events.register("before-call", self._answer)

    def _answer(self, model: Any, params: dict[str, Any], event_name: str, **_: Any) -> tuple[Any, dict]:
        from botocore.awsrequest import AWSResponse

        key = ".".join(event_name.split(".")[1:3])
        if key == "s3.ListBuckets":
            answer: dict[str, Any] = {"Buckets": []}
        elif key in self.ANSWERS:
            answer = dict(self.ANSWERS[key])
        else:
            raise SubmitError(f"internal: a dry run tried to call {key}; nothing was sent")
        answer["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": {}}
        return AWSResponse(params.get("url", ""), 200, {}, None), answer

    @staticmethod
    def create(params: dict[str, Any]) -> dict[str, Any]:
        return {"TrainingJobArn": f"arn:aws:sagemaker:dry-run:000000000000:training-job/{params['TrainingJobName']}"}
