"""The field types and bounds every spec model shares: 32-bit counts, finite floats, SageMaker's run-time range."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_RUN_HOURS = 672
"""SageMaker's limit on a training job's run time: MaxRuntimeInSeconds <= 2,419,200 s = 28 days (CreateTrainingJob
StoppingCondition; botocore's model carries only ``min: 1``, so nothing offline but this bound catches it)."""
INT32_MAX = 2**31 - 1
"""The largest integer of the SageMaker API (its ``integer`` shapes are 32-bit) and of SMP's int parameters."""
MAX_SECONDS = INT32_MAX
"""StoppingCondition's times are 32-bit integers of seconds (MaxRuntimeInSeconds >= 1, MaxWaitTimeInSeconds >= 1)."""

Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]
PositiveInt = Annotated[int, Field(gt=0, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""Every count, degree, size and step of a spec: > 0 and a 32-bit integer (what the API and SMP take)."""
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""No float of a spec may be inf or nan (``.inf`` passed typing and crashed render's ``int(inf)``)."""


def seconds_in_range(field: str, hours: float | None) -> float | None:
    """``hours`` if it is a whole number of seconds SageMaker takes: at least 1 s, at most a 32-bit count."""
    if hours is not None and not 1 <= hours * 3600 < MAX_SECONDS + 1:
        raise ValueError(
            f"{field} is {hours * 3600:.6g} s (rendered as whole seconds): SageMaker's StoppingCondition takes 1 s "
            f"to {MAX_SECONDS:,} s, so {1 / 3600:.6f} to {MAX_SECONDS // 3600:,} hours"
        )
    return hours


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)
