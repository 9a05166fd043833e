"""Pre-flight checks of a submit: what SageMaker would otherwise refuse minutes later, or not at all.

- offline (:func:`preflight`, also on dry runs): job name, region, role ARN shape, S3 URI syntax, no ``local:``
  channels, a PyTorch image for the framework and Python versions;
- online (:func:`check_buckets`, not on dry runs): every bucket the job reads or writes answers HeadBucket;
- the request itself (:func:`validate_request`, on dry runs): botocore's own parameter validation of the
  CreateTrainingJob the SDK built, which a live call runs before sending (the dry run captures the request before
  botocore sees it, so without this a MaxRuntimeInSeconds of 0 printed as if it were fine).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from smlaunch.backends.sagemaker_errors import aws_errors
from smlaunch.backends.sagemaker_sdk import boto, sdk
from smlaunch.errors import SubmitError
from smlaunch.request import LaunchRequest

ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<key>.*))?$")
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MISSING_BUCKET = ("404", "NoSuchBucket", "NotFound")


def check_job_name(job_name: str) -> None:
    """SageMaker's training job name rule: 1-63 letters, digits and hyphens."""
    if not JOB_NAME.fullmatch(job_name):
        raise SubmitError(
            f"job name {job_name!r} is not valid for SageMaker",
            fix="1-63 letters, digits and hyphens, starting with a letter or digit",
        )


def preflight(request: LaunchRequest, *, region: str | None) -> None:
    """Offline checks that SageMaker would otherwise fail minutes later (or not at all)."""
    if not region:
        raise SubmitError(
            "no AWS region: set sagemaker.region in the spec, or AWS_DEFAULT_REGION / a profile region",
            field="sagemaker.region",
            fix="--set sagemaker.region=us-east-1",
        )
    _check_role(request.role)
    for channel, uri in request.inputs.items():
        _check_channel(channel, uri)
    _check_s3_uri(request.output_path, "output.s3_path")
    _check_s3_uri(request.checkpoint_s3_uri, "output.checkpoint_s3_uri")
    if not request.image_uri:
        _check_image(request, region)


def buckets_of(request: LaunchRequest) -> list[str]:
    """Every bucket the job reads or writes (data, output, checkpoints), sorted."""
    uris = [*request.inputs.values(), request.output_path, request.checkpoint_s3_uri]
    return sorted({m["bucket"] for uri in uris if uri and (m := S3_URI.fullmatch(uri))})


def bucket_of(uri: str | None) -> str | None:
    """The bucket of an ``s3://`` URI (None for None or a non-S3 URI)."""
    match = S3_URI.fullmatch(uri) if uri else None
    return match["bucket"] if match else None


def check_buckets(s3: Any, request: LaunchRequest, *, region: str | None) -> None:
    """HeadBucket on every bucket of the request: missing or forbidden buckets fail here, not in the job."""
    for bucket in buckets_of(request):
        try:
            with aws_errors():
                _head_bucket(s3, bucket, region)
        except SubmitError as exc:
            if "denied" in exc.message:
                exc = SubmitError(f"no access to S3 bucket {bucket!r}: {exc.message}", fix=exc.fix)
            raise exc from None


def _head_bucket(s3: Any, bucket: str, region: str | None) -> None:
    _, botocore = boto()
    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in MISSING_BUCKET:
            raise SubmitError(
                f"S3 bucket {bucket!r} does not exist (or is in another partition)",
                fix=f"create it (aws s3 mb s3://{bucket} --region {region}) or fix the URI",
            ) from None
        raise


def _check_role(role: str | None) -> None:
    if not role:
        raise SubmitError(
            "sagemaker.role is not set: SageMaker needs an execution role for the job",
            field="sagemaker.role",
            fix="--set sagemaker.role=arn:aws:iam::123456789012:role/SageMakerExecutionRole",
        )
    if not ROLE_ARN.fullmatch(role):
        raise SubmitError(
            f"sagemaker.role {role!r} is not an IAM role ARN",
            field="sagemaker.role",
            fix="use the role's ARN: arn:aws:iam::<12-digit account>:role/<name>",
        )


def _check_channel(channel: str, uri: str) -> None:
    if uri.startswith("local:") or "://" not in uri:
        raise SubmitError(
            f"data.{channel} is a local path ({uri!r}); a SageMaker job reads its data from S3",
            field=f"data.{channel}",
            fix=f"upload it (aws s3 sync <dir> s3://<bucket>/<prefix>/) and set data.{channel}: s3://<bucket>/"
            f"<prefix>/, or drop the channel for synthetic data; `smlaunch local` runs local: paths",
        )
    _check_s3_uri(uri, f"data.{channel}")


def _check_s3_uri(uri: str | None, field: str) -> None:
    if uri is None:
        return
    if not S3_URI.fullmatch(uri) or ".." in uri:
        raise SubmitError(
            f"{field} {uri!r} is not an S3 URI",
            field=field,
            fix="write s3://<bucket>/<prefix> (bucket: 3-63 lower-case letters, digits, '.', '-')",
        )


def _check_image(request: LaunchRequest, region: str) -> None:
    sagemaker = sdk()
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


@functools.cache
def _create_training_job_input() -> Any:
    import botocore.session

    service = botocore.session.get_session().get_service_model("sagemaker")
    return service.operation_model("CreateTrainingJob").input_shape


def validate_request(params: dict[str, Any]) -> None:
    """botocore's parameter validation (types, required members, ranges, lengths) of a CreateTrainingJob request:
    the same ``ParamValidator`` a live ``create_training_job`` runs before it sends anything."""
    import botocore.validate

    report = botocore.validate.ParamValidator().validate(params, _create_training_job_input())
    if report.has_errors():
        raise SubmitError(
            "SageMaker would refuse this CreateTrainingJob request (botocore's parameter validation):\n"
            + report.generate_report(),
            fix="fix the spec field behind each parameter named above (`smlaunch validate` names most of them)",
        )
