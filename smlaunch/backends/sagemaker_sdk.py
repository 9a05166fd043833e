"""The SageMaker SDK v2 and boto3, imported lazily (about 3 s), and the sessions smlaunch submits through.

- :func:`sdk` / :func:`boto`: the imports, or :class:`MissingDependency` with the install hint;
- :func:`sdk_session`: a ``sagemaker.Session`` whose ``CreateTrainingJob`` goes to a callback;
- :class:`DryRunSession`: a boto3 session whose every call is answered locally (nothing leaves the machine);
- :func:`config_validated_once`: skips the SDK's repeated validation of smlaunch's constant config.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from smlaunch.errors import MissingDependency, SubmitError

INSTALL_HINT = "pip install 'smlaunch[sagemaker]'"
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
"""The SDK config of every session: telemetry off (``fit()`` would otherwise call an S3 telemetry URL)."""


def sdk() -> Any:
    """Import the SageMaker SDK v2 quietly, or raise MissingDependency."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    quiet_sdk_logging()
    try:
        import sagemaker
        import sagemaker.pytorch
    except ImportError as exc:
        raise MissingDependency(
            f"`smlaunch submit` needs the SageMaker Python SDK v2 ({exc.name or exc} is not installed)",
            fix=INSTALL_HINT,
        ) from None
    if int(sagemaker.__version__.split(".")[0]) >= 3:
        raise MissingDependency(
            f"sagemaker {sagemaker.__version__} is SDK v3, which has no PyTorch estimator for SMP v1",
            fix=INSTALL_HINT,
        )
    return sagemaker


QUIET_LOGGERS = ("sagemaker", "botocore", "boto3", "s3transfer", "urllib3")
"""Loggers whose records never reach the terminal: smlaunch says what failed itself, in one message (the SDK logs
"Please check the troubleshooting guide ..." before every error it re-raises, and its config loader INFO lines)."""


def quiet_sdk_logging() -> None:
    """The SDK's and botocore's loggers keep to themselves unless the application configured logging.

    Each gets a NullHandler and stops propagating: Python's last-resort stderr handler never prints their
    warnings and errors, the SDK skips installing its own stdout handler, and the root handler that some SDK
    modules install with ``logging.basicConfig(level=INFO)`` when they are imported (see
    :func:`root_logging_kept`) never sees them. An application that wants them sets ``propagate`` back.
    """
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        logger.propagate = False
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """Undo what SDK imports do to the root logger while we submit (``sagemaker.experiments._metrics`` calls
    ``logging.basicConfig(level=logging.INFO)`` on import): its handlers and level are put back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def boto() -> tuple[Any, Any]:
    """``(boto3, botocore)``, or raise MissingDependency."""
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise MissingDependency("boto3 is not installed", fix=INSTALL_HINT) from None
    return boto3, botocore


class CreateInterceptor:
    """Stands in for the SDK session's sagemaker client: ``create_training_job`` goes to ``on_create``."""

    def __init__(self, client: Any, on_create: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._client = client
        self._on_create = on_create

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return self._on_create(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def sdk_session(boto_session: Any, bucket: str, on_create: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """A ``sagemaker.Session`` on ``boto_session`` (default bucket ``bucket``); CreateTrainingJob -> ``on_create``."""
    sagemaker = sdk()
    client = boto_session.client("sagemaker", region_name=boto_session.region_name)
    return sagemaker.Session(
        boto_session=boto_session,
        sagemaker_client=CreateInterceptor(client, on_create),
        default_bucket=bucket,
        sagemaker_config=SDK_CONFIG,
    )


@contextlib.contextmanager
def config_validated_once() -> Iterator[None]:
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


class DryRunSession:
    """A boto3 session that answers every call locally: S3 writes are recorded, CreateTrainingJob captured."""

    ANSWERS: ClassVar[dict[str, dict[str, Any]]] = {
        "s3.PutObject": {"ETag": '"dry-run"'},
        "s3.HeadBucket": {},
        "s3.HeadObject": {},
        "s3.CreateBucket": {},
        "s3.GetBucketLocation": {"LocationConstraint": None},
    }

    def __init__(self, region: str) -> None:
        boto3, _ = boto()
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
        """The CreateTrainingJob answer of a dry run (the request itself is captured by the caller), after
        botocore's own parameter validation of it (a live call runs the same before sending)."""
        from smlaunch.backends.sagemaker_preflight import validate_request

        validate_request(params)
        return {"TrainingJobArn": f"arn:aws:sagemaker:dry-run:000000000000:training-job/{params['TrainingJobName']}"}
