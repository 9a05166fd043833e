"""Submit a spec as a SageMaker training job, and follow the job: the notebook API behind ``smlaunch submit``.

    job = submit("job.yaml")                     # JobHandle (or DryRun with dry_run=True)
    job.status().status                          # 'InProgress'
    for host, when, line in job.logs(follow=True): ...
    job = attach("gpt2-30b-20260101-120000-1a2b3c4d")

``submit`` is :func:`prepare` (rules, estimate, cost cap, render, job name; pure) followed by :func:`launch`
(the backend's one side effect). Nothing here prompts: the CLI asks for confirmation between the two.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smlaunch.backends import Backend, Submission
from smlaunch.errors import PlanError, SubmitError, ValidationFailed
from smlaunch.request import LaunchRequest, render
from smlaunch.spec.findings import Report
from smlaunch.spec.models import JobSpec

TERMINAL = ("Completed", "Failed", "Stopped")
MAX_JOB_NAME = 63
MAX_TAGS = 50
"""Tags per SageMaker resource."""


@dataclass(frozen=True)
class Prepared:
    """A checked, rendered job that is ready to launch (see :func:`prepare`)."""

    spec: JobSpec
    report: Report
    estimate: Any  # smlaunch.costmodel.Estimate, or None when the instance type is unknown to the cost model
    request: LaunchRequest
    job_name: str

    @property
    def cost_usd(self) -> float | None:
        """Estimated cost of the run (the spot price when spot is enabled)."""
        if self.estimate is None:
            return None
        est = self.estimate
        return est.spot_cost_usd if self.request.use_spot_instances else est.cost_usd

    def source_line(self) -> str:
        """What goes up as sourcedir.tar.gz: ``train_gpt_simple.py in /w/gpt2: 9 files, 152.3 KiB (left out: ...)``."""
        r = self.request
        if not r.own_script:
            return f"{r.entry_point} (smlaunch's entry points)"
        from smlaunch.source_tree import scan

        return f"{r.entry_point} in {r.source_dir}: {scan(Path(r.source_dir)).summary()}"

    def summary_lines(self) -> list[str]:
        """What the user confirms: layout, memory verdict, time and cost, warnings."""
        r, est = self.request, self.estimate
        spot = " (spot)" if r.use_spot_instances else ""
        lines = [
            f"job       {self.job_name}",
            f"cluster   {r.instance_count} x {r.instance_type}{spot} in {region_used(r.region)}",
            f"layout    {self.report.summary}" if self.report.summary else "",
        ]
        if est is not None:
            verdict = "fits" if est.fits else "DOES NOT FIT"
            t = est.throughput
            lines += [
                f"memory    {est.memory.total_gib:.1f} / {est.gpu_memory_gib:.0f} GiB per GPU: {verdict}",
                f"estimate  {t.step_time_s:.3f} s/step, {t.tokens_per_s:,.0f} tokens/s; "
                f"{self.spec.training.max_steps} steps in ~{_duration(t.time_s)}; whole job "
                f"~{_duration(est.time_s)} (start-up, model build, checkpoints), {_dollars(self.cost_usd)}",
            ]
        else:
            lines.append("estimate  (no estimate for this instance type)")
        lines.append(f"source    {self.source_line()}")
        lines += [f"warning   {f.rule} {f.field}: {f.message}" for f in self.report.warnings]
        return [line for line in lines if line]


@dataclass(frozen=True)
class DryRun:
    """What ``submit(dry_run=True)`` returns: the exact CreateTrainingJob request, sent nowhere."""

    prepared: Prepared
    submission: Submission

    @property
    def job_name(self) -> str:
        return self.submission.job_name

    @property
    def request(self) -> dict[str, Any]:
        """The CreateTrainingJob request, as the SDK would send it."""
        return self.submission.request

    def to_yaml(self, *, show_secrets: bool = False) -> str:
        """The request as YAML; secret-looking environment values as ``****`` unless ``show_secrets``."""
        import yaml

        from smlaunch.secret_values import masked_call

        request = self.request if show_secrets else masked_call(self.request)
        return yaml.safe_dump(_plain(request), sort_keys=True, width=120)


@dataclass(frozen=True)
class JobStatus:
    """The interesting part of DescribeTrainingJob."""

    name: str
    status: str
    secondary_status: str | None = None
    failure_reason: str | None = None
    billable_seconds: int | None = None
    history: tuple[dict[str, Any], ...] = ()
    instance_type: str | None = None
    instance_count: int | None = None
    creation_time: datetime | None = None
    end_time: datetime | None = None
    max_steps: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    diagnosis: Any = field(default=None, compare=False)
    """Why a Failed or Stopped job ended (:class:`smlaunch.diagnosis.Diagnosis`): set by :meth:`JobHandle.status`;
    None while the job runs, once it completed, and on a status made from a describe alone."""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_describe(cls, d: dict[str, Any]) -> JobStatus:
        resources = d.get("ResourceConfig", {})
        max_steps = d.get("HyperParameters", {}).get("max_steps")
        return cls(
            name=d["TrainingJobName"],
            status=d.get("TrainingJobStatus", "Unknown"),
            secondary_status=d.get("SecondaryStatus"),
            failure_reason=d.get("FailureReason"),
            billable_seconds=d.get("BillableTimeInSeconds"),
            history=tuple(d.get("SecondaryStatusTransitions", [])),
            instance_type=resources.get("InstanceType"),
            instance_count=resources.get("InstanceCount"),
            creation_time=d.get("CreationTime"),
            end_time=d.get("TrainingEndTime"),
            max_steps=int(str(max_steps).strip('"')) if max_steps is not None else None,
            raw=d,
        )


class JobHandle:
    """A SageMaker training job: status, logs, wait, stop."""

    def __init__(self, name: str, *, backend: Backend) -> None:
        self.name = name
        self.backend = backend

    def __repr__(self) -> str:
        return f"JobHandle({self.name!r})"

    @property
    def console_url(self) -> str:
        return self.backend.console_url(self.name)

    def describe(self) -> dict[str, Any]:
        """The raw DescribeTrainingJob response."""
        return self.backend.describe(self.name)

    def status(self) -> JobStatus:
        """The job's status; a Failed or Stopped job's carries its :attr:`~JobStatus.diagnosis`."""
        described = self.describe()
        status = JobStatus.from_describe(described)
        if status.status in ("Failed", "Stopped"):
            status = replace(status, diagnosis=self._diagnosis(described))
        return status

    def diagnose(self):
        """Why the job failed or stopped (:class:`smlaunch.diagnosis.Diagnosis`); None while it runs or once it
        completed."""
        return self.status().diagnosis

    def _diagnosis(self, described: dict[str, Any]):
        from smlaunch.diagnosis.sources import job_diagnosis

        return job_diagnosis(self.backend, described)

    def logs(
        self, follow: bool = False, *, poll_s: float = 5.0, on_status: Callable[[JobStatus], None] | None = None
    ) -> Iterator[tuple[str, datetime, str]]:
        """``(host, timestamp, line)`` of every host, in time order; ``follow`` keeps going until the job ends.

        While following, ``on_status`` sees the job's status at every poll.
        """
        hook = None if on_status is None else (lambda described: on_status(JobStatus.from_describe(described)))
        return self.backend.log_events(self.name, follow=follow, poll_s=poll_s, on_status=hook)

    def wait(
        self,
        *,
        poll_s: float = 30.0,
        timeout_s: float | None = None,
        on_update: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Poll until the job is Completed, Failed or Stopped; ``on_update`` sees every new secondary status."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        seen = None
        while True:
            status = self.status()
            if on_update and (status.status, status.secondary_status) != seen:
                on_update(status)
                seen = (status.status, status.secondary_status)
            if status.done:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise SubmitError(f"{self.name} is still {status.status} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def stop(self) -> None:
        """Ask SageMaker to stop the job (it goes Stopping, then Stopped)."""
        self.backend.stop(self.name)


def job_name_for(request: LaunchRequest, *, now: datetime | None = None) -> str:
    """``<name>-<UTC YYYYMMDD-HHMMSS>-<fingerprint>``, at most 63 characters."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    suffix = f"-{stamp}-{request.fingerprint()}"
    return request.name[: MAX_JOB_NAME - len(suffix)].rstrip("-") + suffix


def prepare(
    spec: JobSpec | str | os.PathLike | dict,
    *,
    max_cost: float | None = None,
    force: bool = False,
    job_name: str | None = None,
    overrides: Any = (),
) -> Prepared:
    """Load, check (rulebook), estimate, apply the cost cap, render and name the job. Pure: sends nothing.

    The estimate is computed once here and shared by the summary and the cost cap.
    """
    from smlaunch.spec.load import load_spec

    if not isinstance(spec, JobSpec):
        spec = load_spec(spec, overrides)
    est = _estimate(spec)
    report = _checked(spec, estimate=est, force=force)
    request = render(spec)
    name = job_name or job_name_for(request)
    request = replace(request, tags={**request.tags, **_stored_spec_tags(spec, request)})
    prepared = Prepared(spec, report, est, request, name)
    cost = prepared.cost_usd
    if max_cost is not None and cost is not None and cost > max_cost:
        raise SubmitError(
            f"estimated cost ${cost:,.2f} exceeds --max-cost ${max_cost:,.2f}",
            fix="lower training.max_steps or cluster.instance_count, enable cluster.spot, or raise --max-cost",
        )
    return prepared


def launch(prepared: Prepared, *, backend: Backend | None = None, dry_run: bool = False, wait: bool = False):
    """Send a prepared job to ``backend`` (default: SageMaker in the spec's region)."""
    backend = backend or _sagemaker_backend(prepared.request.region)
    submission = backend.submit(prepared.request, job_name=prepared.job_name, dry_run=dry_run)
    if dry_run:
        return DryRun(prepared, submission)
    handle = JobHandle(prepared.job_name, backend=backend)
    if wait:
        handle.wait()
    return handle


def submit(
    spec: JobSpec | str | os.PathLike | dict,
    *,
    wait: bool = False,
    dry_run: bool = False,
    max_cost: float | None = None,
    force: bool = False,
    job_name: str | None = None,
    backend: Backend | None = None,
) -> JobHandle | DryRun:
    """Check, render and submit ``spec`` as a SageMaker training job (``smlaunch submit`` without the prompt).

    Raises ValidationFailed on rule errors (unless ``force``), SubmitError over ``max_cost`` or when AWS refuses.
    """
    prepared = prepare(spec, max_cost=max_cost, force=force, job_name=job_name)
    return launch(prepared, backend=backend, dry_run=dry_run, wait=wait)


def attach(job_name: str, *, region: str | None = None, backend: Backend | None = None) -> JobHandle:
    """A handle on an existing job (raises JobNotFound when there is none of that name)."""
    handle = JobHandle(job_name, backend=backend or _sagemaker_backend(region))
    handle.describe()
    return handle


def list_jobs(
    *, status: str | None = None, name_contains: str | None = None, region: str | None = None,
    max_results: int = 50, backend: Backend | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """ListTrainingJobs summaries, newest first."""
    backend = backend or _sagemaker_backend(region)
    return backend.list_jobs(status=status, name_contains=name_contains, max_results=max_results)


def _stored_spec_tags(spec: JobSpec, request: LaunchRequest) -> dict[str, str]:
    """The tags that store the spec for a later diagnosis (:mod:`smlaunch.diagnosis.stored`); none when the user's
    own tags leave no room under SageMaker's 50."""
    from smlaunch.diagnosis.stored import spec_tags

    tags = spec_tags(spec)
    return tags if len(request.tags) + len(tags) <= MAX_TAGS else {}


def region_used(region: str | None) -> str:
    """The region a job goes to: the spec's, else the AWS configuration's (AWS_DEFAULT_REGION, the profile)."""
    if region:
        return region
    try:
        import botocore.session

        found = botocore.session.Session().get_config_variable("region")
    except Exception:  # (a broken AWS config: the submit itself reports it)
        found = None
    return found or "(no region: set sagemaker.region or AWS_DEFAULT_REGION)"


def _sagemaker_backend(region: str | None) -> Backend:
    from smlaunch.backends.sagemaker import SageMakerBackend

    return SageMakerBackend(region)


def _checked(spec: JobSpec, *, estimate: Any, force: bool) -> Report:
    """Rules and the cost model's verdicts, in one pass over ``estimate``; raises ValidationFailed on errors
    unless ``force``."""
    from smlaunch.validation import validate

    report = validate(spec, estimate=estimate)
    if report.errors and not force:
        lines = [f"  {f.rule} {f.field}: {f.message}\n    fix: {f.fix}" for f in report.errors]
        raise ValidationFailed(
            f"{len(report.errors)} rule error(s) in the spec; not submitting\n" + "\n".join(lines),
            findings=report.errors,
        )
    return report


def _estimate(spec: JobSpec) -> Any:
    from smlaunch.costmodel import estimate

    try:
        return estimate(spec)
    except PlanError:
        return None


def _dollars(cost: float | None) -> str:
    return "price unknown" if cost is None else f"~${cost:,.2f}"


def _duration(seconds: float) -> str:
    from smlaunch.progress import format_duration

    return format_duration(seconds)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
