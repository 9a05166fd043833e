"""What goes up as ``sourcedir.tar.gz`` and what a local run copies into ``<run>/code``: one staging for both.

    manifest = scan(Path("./gpt2"))                       # an own script's folder
    manifest = scan(entrypoints_dir(), entry_points=True) # smlaunch's entry points: top-level *.py, no tests
    with stage(manifest) as copy: ...                     # a clean copy holding exactly manifest.files

Only regular files inside the folder are staged. Left out (and listed in :meth:`Manifest.summary`):
:data:`EXCLUDED_DIRS` (VCS folders, caches, virtual environments, credential folders; also any folder holding a
``pyvenv.cfg``), :data:`SECRET_FILES` (``.env``, keys, ``credentials*``, ``*secret*`` ...), compiled files,
anything that is not a regular file (FIFOs, sockets, devices, dangling links: skipped, never read), and files
over :data:`MAX_FILE_BYTES` (a warning; for smlaunch's entry points, an error). Refused (an error, nothing is
staged): a symlink that leaves the folder, and a hard link whose other links are not all inside the folder
(``st_nlink`` larger than the links found inside; smlaunch's own entry points are exempt, as installers such as
uv hard-link package files from their cache), more than :data:`MAX_FILES` entries, or more than
:data:`MAX_TOTAL_BYTES` in all. A symlinked directory is not followed (what it points to inside the folder is
staged where it lies); a symlinked file inside the folder is staged as a plain copy.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

EXCLUDED_DIRS = (
    ".git", ".hg", ".svn", ".bzr", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis",
    ".ipynb_checkpoints", ".tox", ".nox", ".venv", "venv", "node_modules", ".idea", ".vscode", ".aws",
    ".ssh", ".gnupg", ".docker", ".kube", "smlaunch-runs",
)  # fmt: skip
"""Folder names never uploaded; so is any folder holding a ``pyvenv.cfg`` (a virtual environment)."""

SECRET_FILES = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "id_rsa*", "id_dsa*",
    "id_ecdsa*", "id_ed25519*", ".netrc", ".pypirc", ".npmrc", ".git-credentials", "credentials", "credentials.*",
    "*secret*", "*.tfstate",
)  # fmt: skip
"""Secret-looking file names (fnmatch, case-insensitive), never uploaded."""

OTHER_FILES = ("*.pyc", "*.pyo", ".DS_Store", "Thumbs.db")

MAX_FILES = 10_000
"""More entries than this in source_dir is an error, not an upload: it is a home folder or a dataset, not code."""

MAX_FILE_BYTES = 50 * 1024**2
"""A file larger than this is left out with a warning: data belongs in a channel (``data:``), not in the code."""

MAX_TOTAL_BYTES = 256 * 1024**2
"""More than this in all (after the exclusions) is an error, not an upload."""

ENTRY_POINT_SKIP = re.compile(r"^(test_.*|.*_test|conftest|setup)\.py$")
"""smlaunch's entry points: top-level ``*.py`` files that are not staged (tests, conftest, setup)."""


class SourceTooLarge(Exception):
    """source_dir holds more than :data:`MAX_FILES` entries or :data:`MAX_TOTAL_BYTES`."""


@dataclass(frozen=True)
class Manifest:
    root: Path
    files: tuple[tuple[str, int], ...]
    """(relative path, bytes) of every file that goes up, sorted."""
    excluded: tuple[tuple[str, str], ...]
    """(relative path, reason) of what is left out: a folder is listed once, not its contents."""
    too_large: tuple[tuple[str, int], ...]
    escaping_links: tuple[tuple[str, str], ...]
    """(relative path, target) of symlinks that leave the folder and of hard links shared with files outside it
    (target: ``hard link (N links, M inside)``): refused."""

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    def summary(self) -> str:
        """``12 files, 184.2 KiB (left out: .git/, .env, data.bin (over 50 MiB))``."""
        left = [f"{p}/" if r == "folder" else p for p, r in self.excluded]
        left += [f"{p} (over {MAX_FILE_BYTES // 1024**2} MiB)" for p, _ in self.too_large]
        text = f"{len(self.files)} file{'s' * (len(self.files) != 1)}, {human_bytes(self.total_bytes)}"
        return text + (f" (left out: {', '.join(left)})" if left else "")


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError  # pragma: no cover


def _secret(name: str) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatch(low, pattern) for pattern in SECRET_FILES)


def _kind(path: Path) -> str | None:
    """None for a regular file (or a symlink to one), else why it is not staged."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "dangling or unreadable link"
    return None if stat.S_ISREG(mode) else "not a regular file (FIFO, socket or device)"


class _Walk:
    """The state of one :func:`scan`."""

    def __init__(self, root: Path, entry_points: bool) -> None:
        self.root, self.entry_points = root, entry_points
        self.files: list[tuple[str, int]] = []
        self.excluded: list[tuple[str, str]] = []
        self.too_large: list[tuple[str, int]] = []
        self.escaping: list[tuple[str, str]] = []
        self.inodes: dict[tuple[int, int], list[str]] = {}

    def folder(self, path: Path) -> bool:
        """Whether to walk into ``path`` (else it is recorded as left out or refused)."""
        rel = path.relative_to(self.root).as_posix()
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(self.root):
                self.escaping.append((rel, str(target)))
            else:
                self.excluded.append((rel, "symlinked folder (its target is uploaded where it lies)"))
            return False
        if self.entry_points:
            self.excluded.append((rel, "folder"))  # smlaunch's entry points: top-level files only
            return False
        if path.name in EXCLUDED_DIRS or (path / "pyvenv.cfg").is_file() or _secret(path.name):
            self.excluded.append((rel, "folder"))
            return False
        return True

    def file(self, path: Path) -> None:
        rel, name = path.relative_to(self.root).as_posix(), path.name
        if path.is_symlink() and not path.resolve().is_relative_to(self.root):
            self.escaping.append((rel, str(path.resolve())))
        elif _secret(name):
            self.excluded.append((rel, "secret-looking file"))
        elif any(fnmatch.fnmatch(name, p) for p in OTHER_FILES):
            self.excluded.append((rel, "compiled or system file"))
        elif self.entry_points and (not name.endswith(".py") or ENTRY_POINT_SKIP.match(name)):
            self.excluded.append((rel, "not an entry point file"))
        elif (kind := _kind(path)) is not None:
            self.excluded.append((rel, kind))
        elif (size := path.stat().st_size) > MAX_FILE_BYTES:
            self.too_large.append((rel, size))
        else:
            self.files.append((rel, size))
            info = path.stat()
            if info.st_nlink > 1 and not path.is_symlink():
                self.inodes.setdefault((info.st_dev, info.st_ino), []).append(rel)

    def hard_links_out(self) -> list[tuple[str, str]]:
        """Staged files with more hard links than the folder holds: content shared with a file outside."""
        out = []
        for rels in self.inodes.values():
            links = (self.root / rels[0]).stat().st_nlink
            if links > len(rels) and not self.entry_points:
                out += [(rel, f"hard link ({links} links, {len(rels)} inside)") for rel in rels]
        return out


def scan(root: Path, *, entry_points: bool = False) -> Manifest:
    """Walk ``root`` (not following symlinked folders) and sort each entry into staged, left out or refused.

    ``entry_points``: smlaunch's own entry point folder, of which only the top-level ``*.py`` files (no tests)
    are staged. Raises :class:`SourceTooLarge` past :data:`MAX_FILES` entries or :data:`MAX_TOTAL_BYTES`.
    """
    walk, seen = _Walk(root.resolve(), entry_points), 0
    for dirpath, dirnames, filenames in os.walk(walk.root):
        here = Path(dirpath)
        seen += len(dirnames) + len(filenames)
        if seen > MAX_FILES:
            raise SourceTooLarge(
                f"source_dir {walk.root} holds more than {MAX_FILES:,} files and folders (after the exclusions): "
                "smlaunch uploads code, not a home folder or a dataset"
            )
        dirnames[:] = [name for name in sorted(dirnames) if walk.folder(here / name)]
        for name in sorted(filenames):
            walk.file(here / name)
    total = sum(size for _, size in walk.files)
    if total > MAX_TOTAL_BYTES:
        raise SourceTooLarge(
            f"source_dir {walk.root} holds {human_bytes(total)} to upload (after the exclusions), over the "
            f"{human_bytes(MAX_TOTAL_BYTES)} cap: smlaunch uploads code; data belongs in a channel (data:)"
        )
    escaping = [*walk.escaping, *walk.hard_links_out()]
    return Manifest(walk.root, tuple(sorted(walk.files)), tuple(walk.excluded), tuple(walk.too_large),
                    tuple(sorted(escaping)))  # fmt: skip


@contextlib.contextmanager
def stage(manifest: Manifest) -> Iterator[Path]:
    """A temporary copy holding exactly ``manifest.files`` (symlinked files inside the folder as plain copies)."""
    with tempfile.TemporaryDirectory(prefix="smlaunch-src-") as tmp:
        dest = Path(tmp) / "source"
        dest.mkdir()
        copy_into(manifest, dest)
        yield dest


def copy_into(manifest: Manifest, dest: Path) -> None:
    """Copy ``manifest.files`` from its root into ``dest``: each checked again at the copy (still a regular file
    inside the root), read through a descriptor opened without following a last-moment symlink."""
    for rel, _ in manifest.files:
        source = (manifest.root / rel).resolve()
        if not source.is_relative_to(manifest.root):
            raise SourceTooLarge(f"{manifest.root / rel} now points outside source_dir; nothing was staged")
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as src:
            if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                raise SourceTooLarge(f"{manifest.root / rel} is no longer a regular file; nothing was staged")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(src, out)
