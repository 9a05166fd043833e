"""The source that becomes ``sourcedir.tar.gz``: a clean copy of the entry points, never the whole directory."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from smlaunch.errors import SubmitError

SOURCE_EXCLUDE = re.compile(r"^(test_.*|.*_test|conftest|setup)\.py$")
"""Top-level ``*.py`` files that are not shipped: tests, conftest, setup."""


@contextlib.contextmanager
def staged_source(source_dir: str, entry_point: str) -> Iterator[Path]:
    """A temporary copy of ``source_dir`` holding only its top-level ``*.py`` files (no tests).

    ``sourcedir.tar.gz`` is built from this copy, so ``.git``, ``.env``, keys, caches and notebooks
    next to the entry points never leave the machine.
    """
    src = Path(source_dir)
    if not (src / entry_point).is_file():
        raise SubmitError(f"entry point {entry_point} not found in {src}", fix="reinstall smlaunch")
    with tempfile.TemporaryDirectory(prefix="smlaunch-src-") as tmp:
        dest = Path(tmp) / "source"
        dest.mkdir()
        for path in sorted(src.glob("*.py")):
            if path.is_file() and not path.is_symlink() and not SOURCE_EXCLUDE.match(path.name):
                shutil.copyfile(path, dest / path.name)
        yield dest
