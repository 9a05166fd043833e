"""CreateTrainingJob, retried by smlaunch and never by botocore: one submit makes at most one job.

A create can reach SageMaker and still fail for the caller: the connection drops after the request was sent, or a
5xx comes back after the job was stored. Sent again, it is refused with ``ResourceInUse`` while the job it made
is running (and a user who then retries under a fresh name makes a second job). So:

1. every request carries a fingerprint tag, :data:`FINGERPRINT_TAG` = ``LaunchRequest.fingerprint()`` (the hash
   that also ends default job names);
2. the create goes through a client that makes exactly one attempt per call (``total_max_attempts: 1``: botocore's
   ``max_attempts: 1`` means one *retry*, two attempts);
3. after a failed attempt that may be retried (dropped connection, throttling, 5xx), DescribeTrainingJob asks
   whether the job exists: it does -> done (if its fingerprint is ours); it does not -> create again (same name);
4. ``ResourceInUse``: the job exists; with our fingerprint it is our own request (a retry) -> success; otherwise
   it is another job of that name -> an error;
5. the describe itself failing after a failed create: the job may exist; the error says how to check.
"""

from __future__ import annotations

import random
import time
from typing import Any

from smlaunch.backends.sagemaker_errors import retryable, translate
from smlaunch.backends.sagemaker_sdk import boto
from smlaunch.errors import JobNotFound, SubmitError
from smlaunch.request import FINGERPRINT_TAG


def with_fingerprint(params: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """``params`` with the fingerprint tag (replacing one already there)."""
    tags = [t for t in params.get("Tags", []) if t.get("Key") != FINGERPRINT_TAG]
    return {**params, "Tags": [*tags, {"Key": FINGERPRINT_TAG, "Value": fingerprint}]}


def fingerprint_of(tags: list[dict[str, str]]) -> str | None:
    return next((t.get("Value") for t in tags if t.get("Key") == FINGERPRINT_TAG), None)


def create_training_job(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Send ``params`` once per attempt (at most ``backend.max_attempts``); see the module docstring."""
    _, botocore = boto()
    name, ours = params["TrainingJobName"], fingerprint_of(params.get("Tags", []))
    client = backend.client("sagemaker", retries=False)
    for attempt in range(1, backend.max_attempts + 1):
        try:
            return client.create_training_job(**params)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceInUse":
                return _in_use(backend, name, ours, exc)
            if not retryable(exc, botocore):
                raise
            failure: Exception = exc
        except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
            failure = exc
        existing = _after_failure(backend, name, failure)
        if existing is not None:  # the failed attempt did create it
            return _ours(backend, existing, ours, failure)
        if attempt == backend.max_attempts:
            raise failure
        time.sleep(backend.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


def _after_failure(backend: Any, name: str, failure: Exception) -> dict[str, Any] | None:
    """DescribeTrainingJob after a failed create: the job, None when it does not exist, or "it may exist"."""
    try:
        return backend.describe(name)
    except JobNotFound:
        return None
    except SubmitError as exc:
        raise may_exist(name, failure, exc) from None


def may_exist(name: str, failure: Exception, describe: SubmitError) -> SubmitError:
    """The create failed and the describe that should tell whether it got through failed too."""
    return SubmitError(
        f"CreateTrainingJob {name} failed ({_short(failure)}) and DescribeTrainingJob could not tell whether it "
        f"went through ({describe.message}): the job may exist",
        fix=f"check with `smlaunch list --name-contains {name}` (or `smlaunch status {name}`) before submitting "
        f"again; submitting again with --job-name {name} is safe (smlaunch recognises its own request and makes no "
        "second job)",
    )


def _in_use(backend: Any, name: str, ours: str | None, exc: Exception) -> dict[str, Any]:
    """ResourceInUse: success if the existing job carries our fingerprint, else the refusal."""
    try:
        existing = backend.describe(name)
    except SubmitError:
        raise translate(exc) from None
    return _ours(backend, existing, ours, exc)


def _ours(backend: Any, existing: dict[str, Any], ours: str | None, exc: Exception) -> dict[str, Any]:
    arn, name = existing["TrainingJobArn"], existing["TrainingJobName"]
    try:
        tags = backend.tags(arn)
    except SubmitError as err:
        raise may_exist(name, exc, err) from None
    if ours is not None and fingerprint_of(tags) == ours:
        return {"TrainingJobArn": arn}
    created = existing.get("CreationTime")
    when = f", created {created:%Y-%m-%d %H:%M:%S %Z}".rstrip() if hasattr(created, "strftime") else ""
    raise SubmitError(
        f"a training job named {name} already exists ({existing.get('TrainingJobStatus', '?')}{when}) and was "
        "created from another request",
        fix="choose another --job-name (or leave it out for a fresh one); "
        f"`smlaunch status {name}` shows the existing job",
    )


def _short(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        return f"{error.get('Code') or status}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)
