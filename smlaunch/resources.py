"""Where the files that ship beside the code live: ``templates/``, ``entrypoints/`` and the sample data.

In a wheel they are packaged as ``smlaunch/_templates`` and ``smlaunch/_entrypoints``; in a source checkout
(editable install, tests) they are the repository's top-level folders.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _find(packaged: str, top_level: str) -> Path:
    inside = PACKAGE_DIR / packaged
    if inside.is_dir():
        return inside
    return PACKAGE_DIR.parent / top_level


def templates_dir() -> Path:
    """The jinja2 job.yaml templates."""
    return _find("_templates", "templates")


def entrypoints_dir() -> Path:
    """The training entry points (SageMaker ``source_dir``)."""
    return _find("_entrypoints", "entrypoints")


def sample_data_dir() -> Path:
    """The tokenized sample dataset (uint16 token shards) used by local runs without data."""
    return PACKAGE_DIR / "data" / "sample"
