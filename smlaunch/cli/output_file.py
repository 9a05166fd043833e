"""``-o FILE`` of ``init``, ``plan`` and ``schema``: never overwrite without ``--force``, never write through a link.

    refuse_existing(path, force=False)      # before the work: one clear error if the file is there
    write_new(path, text, force=False)      # the write itself: O_EXCL (or O_TRUNC with --force), O_NOFOLLOW

A symbolic link at ``path`` (dangling or not) is refused even with ``--force``: writing through it would create or
replace a file elsewhere.
"""

from __future__ import annotations

import errno
import os

from smlaunch.errors import SmlaunchError


def refuse_existing(path: str, *, force: bool) -> None:
    """Raise when ``path`` is a link, a folder, or (without ``force``) an existing file."""
    if os.path.islink(path):
        raise SmlaunchError(
            f"{path} is a symbolic link (to {os.readlink(path)}): smlaunch does not write through links",
            fix="remove the link, or choose another -o path",
        )
    if os.path.isdir(path):
        raise SmlaunchError(f"{path} is a folder", fix="pass a file path to -o")
    if os.path.lexists(path) and not force:
        raise SmlaunchError(f"{path} exists", fix="pass --force to overwrite, or choose another -o path")


def write_new(path: str, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` (UTF-8), checked again at the open itself (no race with the check above)."""
    refuse_existing(path, force=force)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise SmlaunchError(f"{path} exists", fix="pass --force to overwrite, or choose another -o path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SmlaunchError(f"{path} is a symbolic link: smlaunch does not write through links") from None
        raise SmlaunchError(f"cannot write {path}: {exc.strerror}", fix="choose another -o path") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
