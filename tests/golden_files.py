"""Golden files: compare a rendered text with its file under tests/golden/; a missing file fails.

``SMLAUNCH_UPDATE_GOLDEN=1`` (re)writes the files instead of failing, e.g.
``SMLAUNCH_UPDATE_GOLDEN=1 pytest tests/unit/test_render.py tests/integration/test_submit_moto.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

UPDATE_ENV = "SMLAUNCH_UPDATE_GOLDEN"
ROOT = Path(__file__).resolve().parent / "golden"


def updating() -> bool:
    """True when the run was asked to rewrite the golden files (``SMLAUNCH_UPDATE_GOLDEN=1``)."""
    return os.environ.get(UPDATE_ENV) == "1"


def assert_golden(path: Path, text: str) -> None:
    """``text`` equals the golden file ``path``; a missing file fails (it is never written silently)."""
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not path.exists():
        test_file = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[0] or "tests/"
        pytest.fail(
            f"golden file {path} is missing; regenerate it with `{UPDATE_ENV}=1 pytest {test_file}` "
            "and review the diff",
            pytrace=False,
        )
    assert text == path.read_text(), f"{path.name} differs from the golden file; if intended, rerun with {UPDATE_ENV}=1"
