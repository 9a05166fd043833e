"""The JSON Schema of job.yaml, for editors (yaml-language-server) and `smlaunch schema`."""

from __future__ import annotations

from typing import Any

from smlaunch.spec.models import JobSpec


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the job spec, as users write it.

    Two adjustments to pydantic's schema: model shape keys are optional (a ``preset`` fills them), and SMP's
    ``partitions`` is listed beside its alias ``pipeline_parallel_degree``.
    """
    schema = JobSpec.model_json_schema(by_alias=False, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "smlaunch job spec"
    defs = schema["$defs"]
    defs["ModelSpec"]["required"] = []
    defs["ModelSpec"]["description"] += " Without a preset, every shape key is required."
    smp = defs["SmpSpec"]["properties"]
    smp["partitions"] = {**smp["pipeline_parallel_degree"], "description": "SMP's name for pipeline_parallel_degree."}
    return schema
