"""Starter job.yaml files from the jinja2 templates in ``templates/`` (``smlaunch init``, ``plan -o``)."""

from __future__ import annotations

import json
from typing import Any

from smlaunch.errors import SpecError

STARTERS: dict[str, str] = {
    "gpt2-10b": "GPT-2 10B on 16 x ml.p4d.24xlarge (AWS reference: tp 4, sharded optimizer, prescaled batch 40)",
    "gpt2-30b": "GPT-2 30B on 16 x ml.p4d.24xlarge (AWS reference: tp 8, sharded optimizer, prescaled batch 32)",
    "gpt2-60b": "GPT-2 60B on 32 x ml.p4d.24xlarge (AWS reference: tp 8 x pp 2, 4 microbatches, batch 56)",
    "gpt2-xl-p5": "GPT-2 XL on 1 x ml.p5.48xlarge, engine: torch (torchrun, PyTorch 2.8: 8-way data parallel)",
    "gpt2-30b-p5": "GPT-2 30B on 4 x ml.p5.48xlarge, engine: torch (torchrun, PyTorch 2.8: pp 8, FSDP2 over 4)",
    "gpt2-tiny-local": "A tiny GPT-2 with a tp 2 x pp 2 layout for `smlaunch local` (runs on a laptop CPU)",
}

SCHEMA_HINT = "./job.schema.json"


def _environment():
    import jinja2

    from smlaunch.resources import templates_dir

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def starter(preset: str, *, name: str | None = None) -> str:
    """The commented job.yaml of a starter template (see :data:`STARTERS`)."""
    if preset not in STARTERS:
        import difflib

        close = difflib.get_close_matches(preset, STARTERS, n=1)
        raise SpecError(
            f"no starter template {preset!r}",
            fix=f"use {close[0]!r}" if close else "one of: " + ", ".join(STARTERS),
        )
    template = _environment().get_template(f"{preset}.yaml.j2")
    return template.render(name=name or preset, schema_url=SCHEMA_HINT)


SCALARS = ("name", "engine")
"""Top-level keys that are values, not sections: written on their own lines by job.yaml.j2."""


def render_job_yaml(spec_dict: dict[str, Any], *, header: str) -> str:
    """A commented job.yaml from a dict shaped like the spec; each key commented with its field's description."""
    from smlaunch.spec.models import JobSpec

    sections = []
    for section, value in spec_dict.items():
        if section in SCALARS:
            continue
        model = JobSpec.model_fields[section].annotation
        items = [(key, _yaml_value(v), _describe(model, key)) for key, v in value.items()] if value else []
        sections.append({"name": section if items else f"{section}: {{}}", "items": items})
    template = _environment().get_template("job.yaml.j2")
    return template.render(job=spec_dict, sections=sections, header=header.strip(), schema_url=SCHEMA_HINT)


def _yaml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value) if isinstance(value, (bool, str)) or value is None else str(value)


def _describe(model: Any, key: str) -> str:
    fields = getattr(model, "model_fields", {})
    info = fields.get(key) or next((f for f in fields.values() if f.alias == key), None)
    return (info.description or "") if info else ""
