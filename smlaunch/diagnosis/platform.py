"""Causes SageMaker reports itself: capacity, the run-time limit, spot interruptions, data channels, S3 access,
the image, a stop on request. Each function returns a :class:`Diagnosis` or None (not this cause).

The strings matched are SageMaker's (FailureReason, secondary status) and the entry point's ``DataError``; the
test data under tests/data/failures/ names the public report each format comes from.
"""

from __future__ import annotations

import re

from smlaunch.diagnosis.context import FailureContext, Line
from smlaunch.diagnosis.model import Diagnosis, evidence

_S3_URL = re.compile(r"s3://[^\s\"')]+")
_CAPACITY = re.compile(r"CapacityError|InsufficientCapacity|Insufficient capacity|temporarily unavailable", re.I)
_QUOTA = re.compile(r"ResourceLimitExceeded|account-level service limit", re.I)
_NO_OBJECTS = re.compile(r"No S3 objects found under S3 URL|NoSuchKey|NoSuchBucket|The specified (?:key|bucket) does")
_DATA_ERROR = re.compile(
    r"training data directory '(?P<dir>[^']+)' (?P<what>does not exist|is empty)|no \*\.bin token shards in "
    r"'(?P<dir2>[^']+)'|(?:FileNotFoundError|No such file or directory).*?(?P<dir3>/opt/ml/input/data/\w+)"
)
_ACCESS = re.compile(r"AccessDenied|Access Denied|\(403\)|: Forbidden|not authorized to perform", re.I)
_IMAGE = re.compile(
    r"No module named '(?:smdistributed|torch|sagemaker_training)|undefined symbol|CannotStartContainerError|"
    r"exec format error|CUDA driver version is insufficient|version `GLIBC|is not supported (?:with|for) "
    r"(?:framework|this) version|no kernel image is available for execution",
    re.I,
)


def _first(lines: list[Line]) -> Line | None:
    return lines[0] if lines else None


def _evidence(lines: list[Line], count: int = 2):
    return tuple(evidence(line.host, line.text) for line in lines[:count])


def capacity(ctx: FailureContext) -> Diagnosis | None:
    """No instances to be had: on-demand capacity, spot capacity, or the account's quota."""
    quota = ctx.search(_QUOTA, logs=False)
    if quota:
        count = ctx.instance_count or "?"
        return Diagnosis(
            "capacity",
            f"the account's quota for {ctx.instance_type or 'this instance type'} (training job usage) is below "
            f"{count} instance(s)",
            "cluster.instance_count",
            "ask for a higher 'ml.* for training job usage' quota in Service Quotas, or lower cluster.instance_count",
            _evidence(quota),
        )
    found = ctx.search(_CAPACITY, logs=False)
    if not found:
        return None
    where = f"{ctx.instance_count or '?'} x {ctx.instance_type or 'the instance type'}"
    if ctx.spot:
        return Diagnosis(
            "capacity",
            f"no spot capacity for {where}",
            "cluster.spot.enabled",
            "submit again later, raise cluster.spot.max_wait_hours so SageMaker waits longer for spot capacity, or "
            "set cluster.spot.enabled: false (on-demand)",
            _evidence(found),
        )
    return Diagnosis(
        "capacity",
        f"SageMaker could not provision {where}",
        "cluster.instance_type",
        "submit again later, or pick another instance type (`smlaunch plan --instance-type ...`) or another region "
        "(sagemaker.region)",
        _evidence(found),
    )


def max_runtime(ctx: FailureContext) -> Diagnosis | None:
    """Stopped at ``MaxRuntimeInSeconds`` (or, on spot, ``MaxWaitTimeInSeconds``)."""
    from smlaunch.diagnosis.fixes import run_time_fix

    statuses = {t.split(":", 1)[0] for t in ctx.transitions} | {ctx.secondary_status or ""}
    reason = ctx.failure_reason or ""
    if "MaxWaitTimeExceeded" in statuses or "MaxWaitTimeExceeded" in reason:
        return Diagnosis(
            "max-runtime",
            "stopped at the spot wait limit (MaxWaitTimeInSeconds) before training finished",
            "cluster.spot.max_wait_hours",
            "raise cluster.spot.max_wait_hours (it includes the time waiting for spot capacity), or set "
            "cluster.spot.enabled: false",
            (evidence("sagemaker", "secondary status: MaxWaitTimeExceeded"),),
        )
    if "MaxRuntimeExceeded" not in statuses and "MaxRuntimeExceeded" not in reason:
        return None
    summary, fix = run_time_fix(ctx)
    return Diagnosis(
        "max-runtime",
        summary,
        "cluster.max_run_hours",
        fix,
        (evidence("sagemaker", "secondary status: MaxRuntimeExceeded"),),
    )


def spot_interrupted(ctx: FailureContext) -> Diagnosis | None:
    """A spot interruption with nothing to resume from: the job started over, or ran out of time doing so."""
    interrupted = [t for t in ctx.transitions if t.startswith("Interrupted")]
    if not interrupted:
        return None
    every = ctx.spec.training.checkpoint_every_steps if ctx.spec is not None else None
    if ctx.checkpoint_uri and every != 0:
        return None  # it had checkpoints to resume from: another cause ended it
    lines = tuple(evidence("sagemaker", f"secondary status: {t}") for t in interrupted[:2])
    times = f"{len(interrupted)} time(s)"
    if not ctx.checkpoint_uri:
        return Diagnosis(
            "spot-interrupted",
            f"spot capacity was reclaimed {times} and the job had no checkpoint location, so each restart began "
            "again at step 0",
            "output.checkpoint_s3_uri",
            "set output.checkpoint_s3_uri: s3://<bucket>/checkpoints/<name> and training.checkpoint_every_steps "
            "(e.g. every 10-20 minutes of steps), or set cluster.spot.enabled: false",
            lines,
        )
    return Diagnosis(
        "spot-interrupted",
        f"spot capacity was reclaimed {times}; checkpoints go to {ctx.checkpoint_uri} but only at the end "
        "(training.checkpoint_every_steps: 0), so each restart began again at step 0",
        "training.checkpoint_every_steps",
        "set training.checkpoint_every_steps to about 10-20 minutes of steps (`smlaunch estimate` gives s/step)",
        lines,
    )


def data_missing(ctx: FailureContext) -> Diagnosis | None:
    """A data channel with nothing in it: no S3 objects under its prefix, or an empty / absent directory."""
    found = ctx.search(_NO_OBJECTS, logs=False) or ctx.search(_DATA_ERROR)
    if not found:
        return None
    line = found[0]
    channel, where = _channel_of(ctx, line.text)
    field = f"data.{channel}" if channel else None
    match = _DATA_ERROR.search(line.text)
    empty = match is not None and match["what"] != "does not exist" if match else False
    what = "is empty" if empty else "holds no data"
    return Diagnosis(
        "data-missing",
        f"the {channel or 'input'} data channel {what}: {where}" if where else f"the {channel or 'input'} data "
        f"channel {what}",
        field,
        (f"upload the *.bin token shards (entrypoints/tokenize_text.py makes them) under {where}, or point "
         f"{field} at the prefix that holds them" if field else "check the channel URIs of the job (describe it) "
         "against what is in S3"),
        _evidence(found),
    )  # fmt: skip


def _channel_of(ctx: FailureContext, text: str) -> tuple[str | None, str | None]:
    """(channel, its URI) for a line about a data location: an S3 URL matched to the channels, or a container
    directory ``/opt/ml/input/data/<channel>`` (``.../input/data/<channel>`` locally)."""
    url = _S3_URL.search(text)
    if url:
        wanted = url[0].rstrip("/.")
        for channel, uri in sorted(ctx.channels.items()):
            if uri.rstrip("/") == wanted or wanted.startswith(uri.rstrip("/")):
                return channel, uri
        return None, url[0]
    folder = re.search(r"input/data/(\w+)", text)
    if folder:
        channel = folder[1]
        return channel, ctx.channels.get(channel, f"the {channel} channel")
    return None, None


def s3_access_denied(ctx: FailureContext) -> Diagnosis | None:
    """The job's role may not read a channel or write the output / checkpoints."""
    found = [line for line in ctx.search(_ACCESS) if "s3" in line.text.lower() or "download" in line.text.lower()]
    if not found:
        return None
    text = found[0].text
    url = _S3_URL.search(text)
    bucket = url[0].split("/")[2] if url else "the bucket"
    upload = re.search(r"upload|PutObject|output|checkpoint", text, re.I) is not None
    role = ctx.extra.get("role") or (ctx.spec.sagemaker.role if ctx.spec is not None else None) or "the job's role"
    action = "s3:PutObject" if upload else "s3:GetObject and s3:ListBucket"
    return Diagnosis(
        "s3-access-denied",
        f"S3 access denied {'writing to' if upload else 'reading from'} {url[0] if url else bucket}",
        "sagemaker.role",
        f"give {role} {action} on {bucket} (and kms:Decrypt if the bucket is KMS-encrypted), or check the bucket "
        "policy; `smlaunch submit` checks only that the bucket answers, not what the role may do in it",
        _evidence(found),
    )


def image_mismatch(ctx: FailureContext) -> Diagnosis | None:
    """The image does not run this job: a module missing from it, a binary built for another version."""
    found = ctx.search(_IMAGE)
    if not found:
        return None
    custom = ctx.spec is not None and ctx.spec.sagemaker.image_uri
    field = "sagemaker.image_uri" if custom else "sagemaker.framework_version"
    version = ctx.spec.sagemaker.framework_version if ctx.spec is not None else None
    image = ctx.image or "the training image"
    return Diagnosis(
        "image-mismatch",
        f"the image does not fit the job ({image}): {found[0].text[:160]}",
        field,
        (f"use an image with the libraries the engine needs: SMP v1 needs a PyTorch DLC with smdistributed "
         f"(framework_version 1.13.1 and older; this job: {version or '?'}); `smlaunch validate` checks "
         "framework_version against the engine"),
        _evidence(found),
    )  # fmt: skip


def stopped_on_request(ctx: FailureContext) -> Diagnosis | None:
    """A Stopped job that no limit stopped: StopTrainingJob (``smlaunch stop`` or the console)."""
    if ctx.status != "Stopped":
        return None
    return Diagnosis(
        "stopped",
        "stopped on request (StopTrainingJob: `smlaunch stop` or the console), not by a failure",
        None,
        "nothing to fix; submit again to rerun (with output.checkpoint_s3_uri set it resumes from the last checkpoint)",
        tuple(evidence("sagemaker", f"secondary status: {t}") for t in ctx.transitions[-1:]),
    )
