"""What of an own script's ``source_dir`` goes up as ``sourcedir.tar.gz`` (and into a local run's ``code/``).

    manifest = scan(Path("./gpt2"))       # files, what is excluded and why, links that leave the folder
    with stage(manifest) as copy: ...     # a clean copy holding exactly manifest.files

The folder is uploaded whole, requirements.txt included (the container installs it), except
:data:`EXCLUDED_DIRS` (VCS folders, caches, virtual environments, credential folders), :data:`SECRET_FILES`
(``.env`` and other secret-looking files), compiled files, and files over :data:`MAX_FILE_BYTES` (a warning).
A symlink that leaves the folder is refused; a symlinked directory is not followed (what it points to inside the
folder is uploaded where it lies). smlaunch's own entry points are staged by :mod:`smlaunch.backends.source`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
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


class SourceTooLarge(Exception):
    """source_dir holds more than :data:`MAX_FILES` entries."""


@dataclass(frozen=True)
class Manifest:
    root: Path
    files: tuple[tuple[str, int], ...]
    """(relative path, bytes) of every file that goes up, sorted."""
    excluded: tuple[tuple[str, str], ...]
    """(relative path, reason) of what is left out: a folder is listed once, not its contents."""
    too_large: tuple[tuple[str, int], ...]
    escaping_links: tuple[tuple[str, str], ...]
    """(relative path, target) of symlinks that leave the folder: refused."""

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


def scan(root: Path) -> Manifest:
    """Walk ``root`` (not following symlinked folders) and sort each entry into uploaded or left out."""
    root = root.resolve()
    files: list[tuple[str, int]] = []
    excluded: list[tuple[str, str]] = []
    too_large: list[tuple[str, int]] = []
    escaping: list[tuple[str, str]] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        seen += len(dirnames) + len(filenames)
        if seen > MAX_FILES:
            raise SourceTooLarge(
                f"source_dir {root} holds more than {MAX_FILES:,} files and folders (after the exclusions): "
                "smlaunch uploads code, not a home folder or a dataset"
            )
        for name in sorted(dirnames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    escaping.append((rel, str(target)))
                else:
                    excluded.append((rel, "symlinked folder (its target is uploaded where it lies)"))
                dirnames.remove(name)
            elif name in EXCLUDED_DIRS or (path / "pyvenv.cfg").is_file() or _secret(name):
                excluded.append((rel, "folder"))
                dirnames.remove(name)
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                escaping.append((rel, str(path.resolve())))
            elif _secret(name):
                excluded.append((rel, "secret-looking file"))
            elif any(fnmatch.fnmatch(name, p) for p in OTHER_FILES) or not path.is_file():
                excluded.append((rel, "compiled or system file"))
            elif (size := path.stat().st_size) > MAX_FILE_BYTES:
                too_large.append((rel, size))
            else:
                files.append((rel, size))
    return Manifest(root, tuple(sorted(files)), tuple(excluded), tuple(too_large), tuple(escaping))


@contextlib.contextmanager
def stage(manifest: Manifest) -> Iterator[Path]:
    """A temporary copy holding exactly ``manifest.files`` (symlinked files inside the folder as plain copies)."""
    with tempfile.TemporaryDirectory(prefix="smlaunch-src-") as tmp:
        dest = Path(tmp) / "source"
        dest.mkdir()
        copy_into(manifest, dest)
        yield dest


def copy_into(manifest: Manifest, dest: Path) -> None:
    """Copy ``manifest.files`` from its root into ``dest``."""
    for rel, _ in manifest.files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest.root / rel, target)
