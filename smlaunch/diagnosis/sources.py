"""Build a :class:`FailureContext` from a SageMaker job (DescribeTrainingJob, its tags, the end of each host's
CloudWatch stream) or from a failed local run (torchrun's root cause, the failure file, each rank's log)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from smlaunch.diagnosis.context import FailureContext
from smlaunch.diagnosis.model import Diagnosis
from smlaunch.diagnosis.stored import spec_from_tags
from smlaunch.errors import SmlaunchError

TAIL_LINES = 40
"""Lines read from the end of each host's stream (or rank's log)."""


def job_diagnosis(backend: Any, described: dict[str, Any]) -> Diagnosis:
    """The diagnosis of a Failed or Stopped job. What cannot be read (logs, tags) is left out, never raised."""
    from smlaunch.diagnosis import diagnose

    return diagnose(job_context(backend, described))


def job_context(backend: Any, described: dict[str, Any]) -> FailureContext:
    name = described["TrainingJobName"]
    resources = described.get("ResourceConfig", {})
    stopping = described.get("StoppingCondition", {})
    start, end = described.get("TrainingStartTime"), described.get("TrainingEndTime")
    hyper = described.get("HyperParameters", {})
    channels = {
        c["ChannelName"]: c.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri", "")
        for c in described.get("InputDataConfig", [])
    }
    spec = spec_from_tags(_tags(backend, described))
    if spec is not None and not channels:
        channels = dict(spec.data)
    return FailureContext(
        name=name,
        status=described.get("TrainingJobStatus", "Unknown"),
        failure_reason=described.get("FailureReason"),
        secondary_status=described.get("SecondaryStatus"),
        transitions=tuple(
            f"{t.get('Status', '?')}: {t.get('StatusMessage', '')}".rstrip(": ")
            for t in described.get("SecondaryStatusTransitions", [])
        ),
        logs=_tails(backend, name),
        spec=spec,
        instance_type=resources.get("InstanceType"),
        instance_count=resources.get("InstanceCount"),
        max_run_s=stopping.get("MaxRuntimeInSeconds"),
        ran_s=(end - start).total_seconds() if start and end and hasattr(end, "__sub__") else None,
        spot=bool(described.get("EnableManagedSpotTraining")),
        checkpoint_uri=described.get("CheckpointConfig", {}).get("S3Uri")
        or (spec.output.checkpoint_s3_uri if spec else None),
        image=described.get("AlgorithmSpecification", {}).get("TrainingImage"),
        channels=channels,
        extra={
            "max_steps": _int(hyper.get("max_steps")),
            "role": described.get("RoleArn"),
            "program": str(hyper.get("sagemaker_program", "")).strip('"') or None,
        },
    )


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip('"'))
    except (TypeError, ValueError):
        return None


def _tags(backend: Any, described: dict[str, Any]) -> dict[str, str]:
    """The job's tags: ListTags on the SageMaker backend, the recorded call on the recording backend."""
    name = described["TrainingJobName"]
    for call in getattr(backend, "calls", ()):
        if call.get("fit", {}).get("job_name") == name:
            return {t["Key"]: t["Value"] for t in call["estimator"].get("tags", [])}
    client = getattr(backend, "client", None)
    if client is None or not described.get("TrainingJobArn"):
        return {}
    try:
        tags = client("sagemaker").list_tags(ResourceArn=described["TrainingJobArn"]).get("Tags", [])
    except Exception:  # (no ListTags permission: diagnose without the stored spec)
        return {}
    return {t["Key"]: t["Value"] for t in tags}


def _tails(backend: Any, name: str, lines: int = TAIL_LINES) -> dict[str, list[str]]:
    """host -> the last ``lines`` of its CloudWatch stream (the newest stream of a host that restarted)."""
    client = getattr(backend, "client", None)
    if client is None:  # the recording backend: every line is in memory
        try:
            events = list(backend.log_events(name))
        except SmlaunchError:
            return {}
        tails: dict[str, list[str]] = {}
        for host, _, text in events:
            tails.setdefault(host, []).append(text)
        return {host: texts[-lines:] for host, texts in tails.items()}
    return _cloudwatch_tails(client("logs"), name, lines)


def _cloudwatch_tails(logs: Any, name: str, lines: int) -> dict[str, list[str]]:
    from smlaunch.backends import LOG_GROUP, host_of

    try:
        pages = logs.get_paginator("describe_log_streams").paginate(
            logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/"
        )
        streams = sorted(s["logStreamName"] for page in pages for s in page.get("logStreams", []))
        tails: dict[str, list[str]] = {}
        for stream in streams:  # algo-1-<epoch>: a later epoch of the same host replaces the earlier
            page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=False, limit=lines)
            tails[host_of(stream)] = [e["message"].rstrip("\n") for e in page.get("events", [])]
        return tails
    except Exception:  # (no log group yet, or no logs:GetLogEvents permission)
        return {}


# -- local runs

_EXITCODE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S)


def local_context(run: Any) -> FailureContext:
    """A failed local run: every rank's log of this run (the newest torchrun run id under logs/ranks; for a
    ``--docker`` run each container's log, by host), torchrun's own lines, the failure file."""
    plan = run.plan
    logs = rank_logs(plan.run_dir / "logs" / "ranks")
    hosts = run.host_logs()
    for host, path in hosts.items():
        logs[host] = path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    compose = run.run_dir / "logs" / "compose.log"
    if hosts and compose.is_file():  # docker compose's own lines: which container exited first, with what code
        logs["compose"] = compose.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    elif run.console_tail:
        logs["torchrun"] = run.console_tail.splitlines()[-TAIL_LINES:]
    return FailureContext(
        name=plan.spec.name,
        status="Failed",
        failure_reason=run.failure,
        logs=logs,
        spec=plan.spec,
        instance_type=None,
        channels={c: str(p) for c, p in plan.channels.items()},
        local=True,
        exit_code=run.exit_code,
        failed_rank=run.failed_rank,
    )


def rank_logs(ranks_dir: Path, lines: int = TAIL_LINES) -> dict[str, list[str]]:
    """``rank N`` -> the end of its stdout and stderr, from the newest torchrun run under ``ranks_dir``
    (``<run_id>/attempt_<n>/<rank>/std{out,err}.log``); an earlier run in the same directory is not read."""
    runs = sorted((p for p in ranks_dir.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if not runs:
        return {}
    attempts = sorted(runs[-1].glob("attempt_*"), key=lambda p: p.stat().st_mtime)
    logs: dict[str, list[str]] = {}
    for rank_dir in sorted(attempts[-1].iterdir() if attempts else (), key=lambda p: p.name):
        if not rank_dir.name.isdigit():
            continue
        texts = []
        for stream in ("stdout.log", "stderr.log"):
            path = rank_dir / stream
            if path.is_file():
                texts += path.read_text(errors="replace").splitlines()
        logs[f"rank {rank_dir.name}"] = texts[-lines:]
    return logs
