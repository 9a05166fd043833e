"""The JSON Schema of job.yaml, for editors (yaml-language-server) and `smlaunch schema`."""

from __future__ import annotations

from typing import Any

from smlaunch.spec.load import OPTIONAL_SECTIONS
from smlaunch.spec.models import JobSpec, ModelSpec


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the job spec, as users write it: it accepts what ``load_spec`` accepts.

    Adjustments to pydantic's schema:

    - model shape keys are optional when a ``preset`` fills them: ``model`` needs a preset or every shape key;
    - SMP's ``partitions`` is listed beside its alias ``pipeline_parallel_degree``;
    - an optional section that holds only comments (``output:`` then commented keys) is YAML null, which the
      loader reads as the section's defaults (``load._drop_empty_sections``), so those sections allow null.
    """
    schema = JobSpec.model_json_schema(by_alias=False, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "smlaunch job spec"
    defs = schema["$defs"]
    model = defs["ModelSpec"]
    model["required"] = []
    model["description"] += " Without a preset, every shape key is required."
    shape = [name for name in ModelSpec.model_fields if name != "preset"]
    model["anyOf"] = [
        {"required": ["preset"], "properties": {"preset": {"type": "string"}}},
        {"required": shape},
    ]
    smp = defs["SmpSpec"]["properties"]
    smp["partitions"] = {**smp["pipeline_parallel_degree"], "description": "SMP's name for pipeline_parallel_degree."}
    for name in OPTIONAL_SECTIONS:
        section = schema["properties"][name]
        schema["properties"][name] = {
            "anyOf": [section, {"type": "null"}],
            "description": " ".join(filter(None, [section.get("description"), "Empty (null) means the defaults."])),
        }
    return schema
