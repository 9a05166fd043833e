"""The spec a job was submitted with, stored in its tags so that a job name alone is enough to diagnose it.

``smlaunch:spec:0``, ``smlaunch:spec:1``, ...: base64 of the zlib-compressed JSON of the spec's model, cluster,
smp, training, data and output sections and its image settings, without defaults (about 400 characters, two tags
of at most 256). The rest of ``sagemaker:`` (role, environment, tags, network, keys) is not stored: the
environment may hold secrets, and the diagnosis needs none of it.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from smlaunch.spec.models import JobSpec

TAG_PREFIX = "smlaunch:spec:"
TAG_VALUE_MAX = 256
"""SageMaker's (and AWS's) longest tag value."""
_SECTIONS = {"name", "engine", "model", "cluster", "smp", "training", "data", "output"}
_IMAGE = {"framework_version", "py_version", "image_uri"}


def spec_tags(spec: JobSpec) -> dict[str, str]:
    """The tags that store ``spec`` (what :func:`spec_from_tags` reads back)."""
    data = spec.model_dump(mode="json", exclude_defaults=True, include=_SECTIONS)
    image = spec.sagemaker.model_dump(mode="json", include=_IMAGE)
    data["sagemaker"] = {k: v for k, v in image.items() if v is not None}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    blob = base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    parts = [blob[i : i + TAG_VALUE_MAX] for i in range(0, len(blob), TAG_VALUE_MAX)]
    return {f"{TAG_PREFIX}{i}": part for i, part in enumerate(parts)}


def spec_from_tags(tags: dict[str, str] | list[dict[str, Any]]) -> JobSpec | None:
    """The stored spec, or None when the tags hold none (a job not submitted by smlaunch) or it no longer loads."""
    if isinstance(tags, list):
        tags = {t["Key"]: t["Value"] for t in tags}
    parts = sorted((int(k[len(TAG_PREFIX) :]), v) for k, v in tags.items() if k.startswith(TAG_PREFIX))
    if not parts or [i for i, _ in parts] != list(range(len(parts))):
        return None
    try:
        data = json.loads(zlib.decompress(base64.b64decode("".join(v for _, v in parts))))
        return JobSpec.model_validate(data)
    except Exception:  # (a stored spec from another version of smlaunch: diagnose without it)
        return None
