"""What CreateTrainingJob would refuse, checked while the spec is typed (offline, before any upload).

The counts, lengths and patterns come from botocore's SageMaker service model (:mod:`smlaunch.spec.service_model`,
read at run time); the rest is what the AWS documentation states: the reserved ``aws:`` tag prefix
(docs.aws.amazon.com/tag-editor "Tag naming limits": keys and values beginning with ``aws:`` are reserved for AWS)
and S3's bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html). The
run-time bounds (MaxRuntimeInSeconds 1 s to 28 days) are typing's: :mod:`smlaunch.spec.fields`.

Each check raises :class:`LimitError` at the field, naming the value, the limit and what to write instead; rule
API001 (:mod:`smlaunch.spec.rules.api`) reports them. Rules, not typing: a fix that suggests a placeholder
(``s3://<bucket>/...``) still loads, and ``render`` of a spec stays possible to inspect.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

from smlaunch.request import FINGERPRINT_TAG
from smlaunch.spec.service_model import known_regions, problem, region_ok, shape

BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
"""A general purpose bucket name: 3-63 lower-case letters, digits, '.' and '-', a letter or digit at both ends."""
OWN_TAG_PREFIX = "smlaunch:"
"""smlaunch's own tags: ``smlaunch:fingerprint`` on every job, ``smlaunch:spec:N`` where the user's leave room."""
_BUCKET_RESERVED = (("xn--", "sthree-", "amzn-s3-demo-"), ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
"""Prefixes and suffixes S3 reserves (bucket naming rules)."""


class LimitError(ValueError):
    """A value CreateTrainingJob refuses: why, the fix, and the spec field when the check knows a closer one than
    the field it was given (``data.train`` of ``data``)."""

    def __init__(self, message: str, fix: str, field: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.message, self.fix, self.field = message, fix, field


def _refuse(what: str, value: str, why: str, fix: str, field: tuple[str, ...] | None = None) -> None:
    shown = repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
    raise LimitError(f"{what} {shown}: {why} (CreateTrainingJob would refuse the job)", fix, field)


def check_text(path: str, what: str, value: str, fix: str) -> None:
    """One string of the request against its shape (length, whole-string pattern)."""
    why = problem(path, value)
    if why:
        _refuse(what, value, why, fix)


def check_count(path: str, what: str, values: Iterable | Mapping, fix: str) -> None:
    values = list(values)
    why = problem(path, values)
    if why:
        raise LimitError(f"{what}: {why} (CreateTrainingJob would refuse the job)", fix)


def tags(value: Mapping[str, str]) -> None:
    """The user's tags, counted with the fingerprint tag smlaunch adds to every job (the stored-spec tags are
    left out when there is no room for them, so they never make a request too big)."""
    limit = problem("Tags", [*value, FINGERPRINT_TAG])
    if limit:
        raise LimitError(
            f"sagemaker.tags: {len(value)} of yours + smlaunch's {FINGERPRINT_TAG} = {limit} (CreateTrainingJob "
            "would refuse the job)",
            f"keep at most {(shape('Tags') or {}).get('max', 50) - 1} tags (smlaunch adds {FINGERPRINT_TAG} to every "
            "job)",
        )
    for key, text in value.items():
        if key.lower().startswith("aws:") or text.lower().startswith("aws:"):
            _refuse("tag", f"{key}: {text}", "the aws: prefix is reserved for AWS's own tags", "rename it")
        if key.startswith(OWN_TAG_PREFIX):
            _refuse("tag", key, f"the {OWN_TAG_PREFIX} prefix is smlaunch's own ({FINGERPRINT_TAG}, smlaunch:spec:N)",
                    "rename it")  # fmt: skip
        check_text("Tags[].Key", "tag key", key, "letters, digits, spaces and _ . : / = + - @ (1-128)")
        check_text("Tags[].Value", f"tag {key!r} value", text, "letters, digits, spaces and _ . : / = + - @ (<= 256)")


def environment(value: Mapping[str, str]) -> None:
    check_count("Environment", "sagemaker.environment", value, "pass the rest as hyperparameters or a config file")
    for key, text in value.items():
        check_text("Environment{key}", "environment variable", key, "letters, digits and _, not starting with a digit")
        check_text("Environment{value}", f"environment variable {key}'s value", text, "keep a long value in S3")


def channels(data: Mapping[str, str]) -> None:
    if data:  # no channels: the request has no InputDataConfig (synthetic data)
        check_count("InputDataConfig", "data", data, "combine channels under one S3 prefix")
    for name, uri in data.items():
        try:
            check_text("InputDataConfig[].ChannelName", "data channel name", name, "letters, digits, '.', '-', '_'")
            if uri.startswith("s3://") or "\n" in uri:
                s3_uri("InputDataConfig[].DataSource.S3DataSource.S3Uri", f"data.{name}", uri)
        except LimitError as exc:
            raise LimitError(exc.message, exc.fix, ("data", name)) from None


def s3_uri(path: str, field: str, uri: str) -> None:
    """An S3 URI of the request: its shape, then (for ``s3://``) the bucket name S3 accepts."""
    fix = "write s3://<bucket>/<prefix>"
    check_text(path, field, uri, fix)
    if not uri.startswith("s3://"):
        _refuse(field, uri, "a SageMaker job reads and writes S3: an s3:// URI", fix)
    bucket = uri[5:].split("/", 1)[0]
    reason = bucket_problem(bucket)
    if reason:
        _refuse(f"{field}'s bucket", bucket, reason, "use the bucket's exact name (lower case, 3-63 characters)")


def bucket_problem(bucket: str) -> str | None:
    """Why S3 refuses ``bucket`` as a general purpose bucket name, or None."""
    if not BUCKET.fullmatch(bucket):
        return "3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "a bucket name has no two adjacent periods and no period next to a hyphen"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        pass
    else:
        return "a bucket name is not an IP address"
    prefixes, suffixes = _BUCKET_RESERVED
    if bucket.startswith(prefixes) or bucket.endswith(suffixes):
        return f"S3 reserves the prefixes {', '.join(prefixes)} and the suffixes {', '.join(suffixes)}"
    return None


def role(value: str) -> None:
    check_text("RoleArn", "sagemaker.role", value, "arn:aws:iam::<12-digit account>:role/<name>")


def region(value: str) -> None:
    if not region_ok(value):
        _refuse("sagemaker.region", value, "not an AWS region name (botocore's partitions)", "e.g. us-east-1")
    known = known_regions()
    if known and value not in known:
        import difflib

        near = difflib.get_close_matches(value, sorted(known), n=1)
        why = "shaped like a region, but no AWS partition botocore knows has it (a newer region needs a newer botocore)"
        _refuse("sagemaker.region", value, why,
                f"use {near[0]}" if near else "e.g. us-east-1")  # fmt: skip


def vpc(subnets: list[str], groups: list[str]) -> None:
    if subnets:
        check_count("VpcConfig.Subnets", "sagemaker.subnets", subnets, "list at most 16 subnets")
    if groups:
        check_count("VpcConfig.SecurityGroupIds", "sagemaker.security_group_ids", groups, "list at most 5 groups")
    for subnet in subnets:
        check_text("VpcConfig.Subnets[]", "subnet", subnet, "a subnet id, subnet-0123456789abcdef0")
    for group in groups:
        check_text("VpcConfig.SecurityGroupIds[]", "security group", group, "a group id, sg-0123456789abcdef0")


def kms_key(path: str, field: str, value: str) -> None:
    check_text(path, field, value, "a KMS key id, key ARN, alias/<name> or alias ARN")


def hyperparameters(sent: Mapping[str, str], own: Iterable[str]) -> None:
    """The hyperparameters the job sends (``sent``: as the SDK serialises them, smlaunch's and the SDK's keys
    included); ``own`` are the user's ``entry_point.hyperparameters``, named in the message."""
    own = set(own)
    check_count("HyperParameters", f"the job's hyperparameters ({len(own & set(sent))} from "
                "entry_point.hyperparameters, the rest smlaunch's and the SDK's)", sent,
                "pass the rest of entry_point.hyperparameters in a config file")  # fmt: skip
    for key, text in sent.items():
        check_text("HyperParameters{key}", "hyperparameter", key, "a shorter name")
        fix = "pass a long value in a file" if key in own else "shorten what sets it"
        check_text("HyperParameters{value}", f"hyperparameter {key}'s value (JSON-encoded, as the SDK sends it)", text,
                   fix)  # fmt: skip


SAGEMAKER_FIELDS = {
    "role": role,
    "region": region,
    "environment": environment,
    "tags": tags,
    "subnets": lambda value: vpc(value, []),
    "security_group_ids": lambda value: vpc([], value),
    "volume_kms_key": lambda value: kms_key("ResourceConfig.VolumeKmsKeyId", "sagemaker.volume_kms_key", value),
    "output_kms_key": lambda value: kms_key("OutputDataConfig.KmsKeyId", "sagemaker.output_kms_key", value),
}
"""The ``sagemaker:`` fields CreateTrainingJob limits -> their check."""
