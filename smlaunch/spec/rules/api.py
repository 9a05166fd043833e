"""SageMaker API rules (``API``): what CreateTrainingJob would refuse, found offline by ``validate``.

The limits are botocore's SageMaker service model, read at run time, plus the documented ones
(:mod:`smlaunch.spec.api_limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

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
    if spec.entry_point is not None:
        yield ("entry_point", "hyperparameters"), lambda: api_limits.hyperparameters(spec.entry_point.hyperparameters)


@rule("API001", "sagemaker-api-limits", "error")
def _api_limits(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Tags, environment, channels, VPC ids, KMS keys, S3 URIs and buckets, role ARN, region and hyperparameters
    within CreateTrainingJob's limits (botocore's SageMaker model, whole-string patterns; S3's bucket rules)."""
    for field, check in _checks(spec):
        try:
            check()
        except api_limits.LimitError as exc:
            yield hit(exc.field or field, exc.message, exc.fix)
