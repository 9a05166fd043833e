"""A backend that records launch requests instead of sending them: for tests, docs and notebooks.

    >>> backend = RecordingBackend()
    >>> job = smlaunch.jobs.submit(spec, backend=backend)                  # doctest: +SKIP
    >>> backend.requests[0].mp_parameters["partitions"]                  # doctest: +SKIP
    >>> backend.calls[0]["estimator"]["distribution"]["smdistributed"]   # doctest: +SKIP

What it records is the target adapter's output (:func:`smlaunch.targets.sagemaker_v2.call`): the exact
``PyTorch`` keyword arguments and ``fit()`` arguments the SageMaker backend passes to the SDK.

Jobs it "creates" start ``InProgress``; tests move them with :meth:`RecordingBackend.set_status` and feed
log lines with :meth:`RecordingBackend.add_log`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from smlaunch.errors import JobNotFound
from smlaunch.request import LaunchRequest
from smlaunch.targets import sagemaker_v2


class RecordingBackend:
    """Records every submitted :class:`LaunchRequest` and the adapter's call for it; keeps fake job state.

    ``requests``: the LaunchRequests, in submit order; ``calls``: the target's call for each (``{"estimator":
    PyTorch kwargs, "fit": fit() kwargs with the job name}``); ``submissions``: what :meth:`submit` returned.
    Dry runs are returned but not recorded.
    """

    def __init__(self, region: str | None = "us-east-1", *, target: ModuleType = sagemaker_v2) -> None:
        self.region = region
        self.target = target
        self.requests: list[LaunchRequest] = []
        self.calls: list[dict[str, Any]] = []
        self.submissions: list = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[tuple[str, datetime, str]]] = {}
        self.stopped: list[str] = []

    def submit(self, request: LaunchRequest, *, job_name: str, dry_run: bool = False):
        from smlaunch.backends import Submission

        call = self.target.call(request, job_name=job_name)
        submission = Submission(job_name, call, region=self.region, dry_run=dry_run, call=call)
        if dry_run:
            return submission
        self.requests.append(request)
        self.calls.append(call)
        self.submissions.append(submission)
        self.jobs[job_name] = _described(job_name, call["estimator"])
        return submission

    def set_status(self, job_name: str, status: str, secondary: str | None = None, **fields: Any) -> None:
        """Move a recorded job to ``status`` (and ``secondary``, appended to the transitions)."""
        job = self.describe(job_name)
        job["TrainingJobStatus"] = status
        if secondary:
            job["SecondaryStatus"] = secondary
            job["SecondaryStatusTransitions"].append({"Status": secondary, "StartTime": datetime.now(UTC)})
        job.update(fields)

    def add_log(self, job_name: str, line: str, *, host: str = "algo-1") -> None:
        """Append one log line of ``host``."""
        self.logs.setdefault(job_name, []).append((host, datetime.now(UTC), line))

    def describe(self, job_name: str) -> dict[str, Any]:
        if job_name not in self.jobs:
            raise JobNotFound(f"no training job named {job_name!r} (recording backend)")
        return self.jobs[job_name]

    def list_jobs(
        self, *, status: str | None = None, name_contains: str | None = None, max_results: int = 50
    ) -> list[dict[str, Any]]:
        jobs = [
            j
            for j in self.jobs.values()
            if (status is None or j["TrainingJobStatus"] == status)
            and (name_contains is None or name_contains in j["TrainingJobName"])
        ]
        return sorted(jobs, key=lambda j: j["CreationTime"], reverse=True)[:max_results]

    def stop(self, job_name: str) -> None:
        self.set_status(job_name, "Stopping", "Stopping")
        self.stopped.append(job_name)

    def log_events(
        self, job_name: str, *, follow: bool = False, poll_s: float = 5.0, on_status: Any = None
    ) -> Iterator[tuple[str, datetime, str]]:
        described = self.describe(job_name)
        if follow and on_status is not None:
            on_status(described)
        yield from sorted(self.logs.get(job_name, []), key=lambda e: (e[1], e[0]))

    def console_url(self, job_name: str) -> str:
        from smlaunch.backends import console_url

        return console_url(self.region, job_name)


def _described(job_name: str, estimator: dict[str, Any]) -> dict[str, Any]:
    """A new job's ``DescribeTrainingJob`` answer, from the estimator keyword arguments it was created with."""
    now = datetime.now(UTC)
    return {
        "TrainingJobName": job_name,
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "SecondaryStatusTransitions": [{"Status": "Starting", "StartTime": now}],
        "CreationTime": now,
        "HyperParameters": {k: str(v) for k, v in estimator["hyperparameters"].items()},
        "ResourceConfig": {
            "InstanceType": estimator["instance_type"],
            "InstanceCount": estimator["instance_count"],
            "VolumeSizeInGB": estimator["volume_size"],
        },
    }
