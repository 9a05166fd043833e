"""The one staging of the code for ``submit`` (``sourcedir.tar.gz``) and ``local`` (``<run>/code``): a clean copy,
never the folder itself. What is staged, left out and refused: :mod:`smlaunch.source_tree`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from smlaunch.errors import SubmitError
from smlaunch.source_tree import MAX_FILE_BYTES, Manifest, SourceTooLarge, human_bytes, scan, stage


@contextlib.contextmanager
def staged_source(source_dir: str | Path, entry_point: str, *, own: bool = False) -> Iterator[Path]:
    """A temporary copy of ``source_dir``: what ``sourcedir.tar.gz`` is built from and ``local`` runs.

    smlaunch's entry points: only the top-level ``*.py`` files (no tests); a file over the size cap is an error.
    An own script (``own``): the whole folder less :mod:`smlaunch.source_tree`'s exclusions (VCS, caches, virtual
    environments, secret-looking, oversized and non-regular files); a symlink or hard link that leaves it is
    refused. ``.git``, ``.env`` and keys never leave the machine.
    """
    src = Path(source_dir)
    field = "entry_point.source_dir" if own else None
    if not src.is_dir():
        raise SubmitError(
            f"entry_point.source_dir {src} is not a directory" if own else f"entry points folder {src} is missing",
            field=field,
            fix="set entry_point.source_dir to your training script's folder" if own else "reinstall smlaunch",
        )
    try:
        manifest = scan(src, entry_points=not own)
    except SourceTooLarge as exc:
        raise SubmitError(str(exc), field=field, fix="point it at the script's folder") from None
    _check(manifest, src, entry_point, own=own)
    try:
        with stage(manifest) as dest:
            yield dest
    except SourceTooLarge as exc:  # a file changed between the scan and the copy
        raise SubmitError(str(exc), field=field, fix="run again once source_dir is settled") from None


def _check(manifest: Manifest, src: Path, entry_point: str, *, own: bool) -> None:
    """Refuse links that leave the folder, an oversized entry point file, a missing or excluded entry point."""
    if manifest.escaping_links:
        rel, target = manifest.escaping_links[0]
        what = target if target.startswith("hard link") else f"a symlink to {target}"
        raise SubmitError(
            f"{src / rel} is {what}, outside source_dir: smlaunch uploads only what is in it",
            field="entry_point.source_dir",
            fix="replace the link with a copy inside source_dir (or remove it)",
        )
    if manifest.too_large and not own:
        rel, size = manifest.too_large[0]
        raise SubmitError(
            f"entry point file {src / rel} is {human_bytes(size)}, over the {MAX_FILE_BYTES // 1024**2} MiB cap",
            fix="remove it from the entry points folder (data belongs in a channel), or reinstall smlaunch",
        )
    if entry_point not in {rel for rel, _ in manifest.files}:
        raise SubmitError(
            f"entry point {entry_point} is not uploaded from {src} (missing or excluded)",
            field="entry_point.script" if own else None,
            fix="set entry_point.script to a file inside source_dir" if own else "reinstall smlaunch",
        )
