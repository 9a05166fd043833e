"""AWS errors as smlaunch errors: every botocore / SDK failure becomes one :class:`SubmitError` (never a traceback),
and what the submit may retry (throttling, 5xx, dropped connections)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from smlaunch.backends.sagemaker_sdk import boto
from smlaunch.errors import JobNotFound, SubmitError

THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
              "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
              "SlowDown"}  # fmt: skip
"""Error codes AWS answers when it throttles a caller."""

S3_OPERATIONS = ("HeadBucket", "PutObject", "ListBuckets", "CreateBucket")
EXPIRED = ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException")


@contextlib.contextmanager
def aws_errors(
    *, job_name: str | None = None, instance_type: str | None = None, count: int | None = None
) -> Iterator[None]:
    """Turn botocore/SDK errors into one :class:`SubmitError` each (never a traceback)."""
    _, botocore = boto()
    exc_mod = botocore.exceptions
    from boto3.exceptions import S3UploadFailedError

    try:
        yield
    except S3UploadFailedError as exc:
        raise upload_failed(str(exc)) from None
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
    service = "s3" if operation in S3_OPERATIONS else "sagemaker"
    if job_name and service == "sagemaker" and _is_missing_job(code, message):
        return JobNotFound(
            f"no training job named {job_name!r} in this account and region",
            fix="`smlaunch list` shows the jobs of this region; pass --region if the job ran elsewhere",
        )
    if code in ("AccessDenied", "AccessDeniedException", "403", "Forbidden"):
        return _denied(service, operation, message)
    if code == "ResourceLimitExceeded":
        return _quota(message, instance_type, count)
    if code in ("ValidationException", "ValidationError"):
        return _invalid(operation, message)
    if code == "ResourceInUse":
        return SubmitError(f"{message} ", fix="choose another --job-name (or leave it out for a fresh one)")
    if code in THROTTLING or status >= 500:
        return SubmitError(
            f"{operation} kept failing with {code or status} after retries: {message}",
            fix="AWS is throttling this account; try again in a few minutes"
            if code in THROTTLING
            else f"AWS answered with a server error ({status}); try again in a few minutes",
        )
    if code in EXPIRED:
        return SubmitError(f"AWS credentials rejected ({code})", fix="refresh them: `aws sso login` or a new profile")
    return SubmitError(f"{operation} failed: {code}: {message}")


UPLOAD = re.compile(r"Failed to upload (?P<file>.+?) to (?P<dest>\S+?): .*?\((?P<code>[^)]+)\)(?P<rest>.*)", re.S)
"""boto3's ``S3UploadFailedError`` text: ``Failed to upload F to BUCKET/KEY: An error occurred (CODE) when ...``."""


def upload_failed(text: str) -> SubmitError:
    """One line for an S3 upload that failed (the SDK uploads ``sourcedir.tar.gz`` before it creates the job)."""
    match = UPLOAD.match(text)
    if not match:
        return SubmitError(f"uploading to S3 failed: {text.splitlines()[0] if text else 'no reason given'}")
    dest, code = match["dest"], match["code"]
    reason = match["rest"].rpartition(":")[2].strip()
    bucket = dest.split("/", 1)[0]
    if code in ("403", "AccessDenied", "Forbidden"):
        fix = f"grant s3:PutObject on arn:aws:s3:::{bucket}/* to the identity you submit with"
    elif (code.isdigit() and int(code) >= 500) or code in ("InternalError", "ServiceUnavailable", *THROTTLING):
        fix = "S3 answered with a server error; try again in a few minutes"
    else:
        fix = "check the bucket (output.s3_path) and your access to it"
    return SubmitError(f"uploading the source to s3://{dest} failed: {code}" + (f" ({reason})" if reason else ""),
                       fix=fix)  # fmt: skip


def retryable(exc: Exception, botocore: Any) -> bool:
    """Whether a failed call may be tried again: dropped connections, throttling, 5xx."""
    errors = botocore.exceptions
    if isinstance(exc, errors.ConnectionError | errors.HTTPClientError):
        return True
    if isinstance(exc, errors.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return code in THROTTLING or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return False


def _is_missing_job(code: str, message: str) -> bool:
    return "Could not find" in message or "does not exist" in message or code == "ResourceNotFound"


def _denied(service: str, operation: str, message: str) -> SubmitError:
    action = f"{service}:{operation}" if operation != "HeadBucket" else "s3:ListBucket"
    return SubmitError(
        f"AWS denied {action}: {message or 'access denied'}",
        fix=f"grant {action} to the identity you submit with"
        + (" (and iam:PassRole on sagemaker.role)" if operation == "CreateTrainingJob" else ""),
    )


def _quota(message: str, instance_type: str | None, count: int | None) -> SubmitError:
    quota = f"{instance_type} for training job usage" if instance_type else "the instance type's training quota"
    return SubmitError(
        f"SageMaker quota exceeded: {message}",
        fix=f"raise the Service Quotas value 'Amazon SageMaker > {quota}'"
        + (f" to at least {count}" if count else "")
        + " (spot jobs: '... for spot training job usage'), or use fewer instances",
    )


def _invalid(operation: str, message: str) -> SubmitError:
    field = re.search(r"at '([\w.]+)'", message)
    return SubmitError(
        f"SageMaker rejected {operation}: {message}",
        field=field.group(1) if field else None,
        fix=f"check the value of `{field.group(1)}` in the request (`smlaunch submit --dry-run` prints it)"
        if field
        else "`smlaunch submit --dry-run` prints the request",
    )
