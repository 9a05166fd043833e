"""SageMaker API rules (``API``): what CreateTrainingJob would refuse, found offline by ``validate``.

The limits are botocore's SageMaker service model, read at run time, plus the documented ones
(:mod:`smlaunch.spec.api_limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from smlaunch.errors import SmlaunchError
from smlaunch.layout import Layout
from smlaunch.spec import api_limits
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules.registry import Hit, hit, rule


def _checks(spec: JobSpec) -> Iterator[tuple[tuple[str, ...], Callable[[], None]]]:
    """(spec field, its check) for every field of the spec that becomes part of the CreateTrainingJob request."""
    sm, out = spec.sagemaker, spec.output
    for name, check in api_limits.SAGEMAKER_FIELDS.items():
        value = getattr(sm, name)
        if value:
            yield ("sagemaker", name), lambda check=check, value=value: check(value)
    yield ("data",), lambda: api_limits.channels(spec.data)
    for name, path in (("s3_path", "OutputDataConfig.S3OutputPath"), ("checkpoint_s3_uri", "CheckpointConfig.S3Uri")):
        uri = getattr(out, name)
        if uri is not None:
            yield ("output", name), lambda path=path, name=name, uri=uri: api_limits.s3_uri(path, f"output.{name}", uri)
    own = spec.entry_point.hyperparameters if spec.entry_point is not None else {}
    yield ("entry_point", "hyperparameters"), lambda: api_limits.hyperparameters(_sent_hyperparameters(spec), own)


def _sent_hyperparameters(spec: JobSpec) -> dict[str, str]:
    """The HyperParameters the job would send, as SDK v2 serialises them (``container.hyperparameters_json``, the
    SDK's own keys included), with the longest job name and the output path's bucket for the submit directory."""
    from smlaunch.container import hyperparameters_json
    from smlaunch.request import render

    try:
        request = render(spec)
    except SmlaunchError:  # a spec render refuses is reported by the rule that owns the cause
        return {}
    job_name = "j" * 63
    bucket = (spec.output.s3_path or "s3://sagemaker-region-account").rstrip("/")
    return hyperparameters_json(
        request,
        job_name=job_name,
        region=spec.sagemaker.region or "us-east-1",
        submit_dir=f"{bucket}/{job_name}/source/sourcedir.tar.gz",
        processes_per_host=request.processes_per_host,
    )


@rule("API001", "sagemaker-api-limits", "error")
def _api_limits(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Tags, environment, channels, VPC ids, KMS keys, S3 URIs and buckets, role ARN, region and hyperparameters
    within CreateTrainingJob's limits (botocore's SageMaker model, whole-string patterns; S3's bucket rules)."""
    for field, check in _checks(spec):
        try:
            check()
        except api_limits.LimitError as exc:
            yield hit(exc.field or field, exc.message, exc.fix)
