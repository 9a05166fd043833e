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
def staged_source(source_dir: str, entry_point: str, *, own: bool = False) -> Iterator[Path]:
    """A temporary copy of ``source_dir`` that ``sourcedir.tar.gz`` is built from.

    smlaunch's entry points: only the top-level ``*.py`` files (no tests). An own script (``own``): the whole
    folder less :mod:`smlaunch.source_tree`'s exclusions (VCS, caches, virtual environments, secret-looking and
    oversized files); a symlink that leaves it is refused. ``.git``, ``.env`` and keys never leave the machine.
    """
    if own:
        with _staged_own(Path(source_dir), entry_point) as dest:
            yield dest
        return
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


@contextlib.contextmanager
def _staged_own(src: Path, entry_point: str) -> Iterator[Path]:
    from smlaunch.source_tree import SourceTooLarge, scan, stage

    if not src.is_dir():
        raise SubmitError(
            f"entry_point.source_dir {src} is not a directory",
            field="entry_point.source_dir",
            fix="set entry_point.source_dir to your training script's folder",
        )
    try:
        manifest = scan(src)
    except SourceTooLarge as exc:
        raise SubmitError(str(exc), field="entry_point.source_dir", fix="point it at the script's folder") from None
    if manifest.escaping_links:
        rel, target = manifest.escaping_links[0]
        raise SubmitError(
            f"{src / rel} is a symlink to {target}, outside source_dir: smlaunch uploads only what is in it",
            field="entry_point.source_dir",
            fix="replace the link with a copy inside source_dir (or remove it)",
        )
    if entry_point not in {rel for rel, _ in manifest.files}:
        raise SubmitError(
            f"entry point {entry_point} is not uploaded from {src} (missing or excluded)",
            field="entry_point.script",
            fix="set entry_point.script to a file inside source_dir",
        )
    with stage(manifest) as dest:
        yield dest
