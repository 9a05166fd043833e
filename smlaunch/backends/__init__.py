"""Backends launch a :class:`~smlaunch.request.LaunchRequest` and manage the job it becomes.

    Backend (protocol)
    ├── SageMakerBackend   smlaunch.backends.sagemaker: SDK v2 ``PyTorch(**sagemaker_v2.estimator_kwargs(request))``
    │   ├── sagemaker_preflight  offline and online checks before anything is created
    │   ├── sagemaker_errors     botocore / SDK errors -> one SubmitError each; what is retryable
    │   ├── sagemaker_sdk        the lazy SDK imports, the SDK session, the dry-run session
    │   └── source               the clean copy of the entry points that becomes sourcedir.tar.gz
    │   (the sagemaker*.py modules are the only ones that import sagemaker / boto3 / botocore, in functions)
    └── RecordingBackend   smlaunch.backends.recording: records requests and the adapter's call, for tests,
                           docs and notebooks

Both go through the same target adapter (:mod:`smlaunch.targets.sagemaker_v2`): what the recording backend records
is exactly what the SageMaker backend passes to the SDK.

Job state crosses this boundary in SageMaker's own shapes (the ``DescribeTrainingJob`` and
``ListTrainingJobs`` dicts), so a fake backend speaks the same language as the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from smlaunch.request import LaunchRequest

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
"""CloudWatch log group of every training job; streams are ``<job>/algo-N-<epoch seconds>``."""


@dataclass(frozen=True)
class Submission:
    """What a backend sent (or, on a dry run, would send): the service request, the adapter's call, the source."""

    job_name: str
    request: dict[str, Any]
    """The request sent to the service: ``CreateTrainingJob`` (SageMaker), or the adapter's call (recording)."""
    source_uri: str | None = None
    source_files: tuple[str, ...] = ()
    """The files of ``sourcedir.tar.gz``, relative to its root."""
    source_bytes: int = 0
    region: str | None = None
    dry_run: bool = False
    uploads: tuple[str, ...] = field(default_factory=tuple)
    """S3 URIs the submit wrote (or, on a dry run, would have written)."""
    call: dict[str, Any] = field(default_factory=dict)
    """The target adapter's call for the request (:func:`smlaunch.targets.sagemaker_v2.call`, with the job name)."""


class Backend(Protocol):
    """What :mod:`smlaunch.jobs` needs from a place that runs training jobs."""

    region: str | None

    def submit(self, request: LaunchRequest, *, job_name: str, dry_run: bool = False) -> Submission: ...

    def describe(self, job_name: str) -> dict[str, Any]: ...

    def list_jobs(
        self, *, status: str | None = None, name_contains: str | None = None, max_results: int = 50
    ) -> list[dict[str, Any]]: ...

    def stop(self, job_name: str) -> None: ...

    def log_events(
        self, job_name: str, *, follow: bool = False, poll_s: float = 5.0, on_status: Any = None
    ) -> Iterator[tuple[str, datetime, str]]: ...

    def console_url(self, job_name: str) -> str: ...


def console_url(region: str | None, job_name: str) -> str:
    """The SageMaker console page of a training job."""
    region = region or "us-east-1"
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_name}"


def host_of(stream_name: str) -> str:
    """``job/algo-3-1700000000`` -> ``algo-3`` (the stream's host)."""
    tail = stream_name.rsplit("/", 1)[-1]
    head, sep, last = tail.rpartition("-")
    return head if sep and last.isdigit() and head else tail


from smlaunch.backends.recording import RecordingBackend  # noqa: E402  (needs the names above)

__all__ = ["LOG_GROUP", "Backend", "RecordingBackend", "Submission", "console_url", "host_of"]
