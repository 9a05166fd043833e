"""A local run's directory and channel names: what ``smlaunch local`` may write into, and replace.

A run lays out ``<run>/code`` and ``<run>/input/data/<channel>`` afresh each time (the code is staged again, each
channel is linked again), so it only runs in a folder that is new, empty, or a run directory (one it marked with
:data:`MARKER`, or one with a run's ``input/config/hyperparameters.json``). Channel names are SageMaker's
(``[A-Za-z0-9.-_]{1,64}``) and never ``.`` or ``..``, since each becomes a folder under ``input/data``.
"""

from __future__ import annotations

import re
from pathlib import Path

from smlaunch.errors import LocalRunError

MARKER = ".smlaunch-run"
"""The file that marks a folder as a run directory of ``smlaunch local``."""

CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
"""SageMaker's ChannelName (botocore's service model: pattern ``[A-Za-z0-9\\.\\-_]+``, at most 64 characters)."""


def check_channel_name(name: str) -> None:
    """A channel name SageMaker takes and that stays one folder under ``input/data``."""
    if not CHANNEL_NAME.fullmatch(name) or name in (".", ".."):
        raise LocalRunError(
            f"data channel name {name!r} is not valid: 1-64 letters, digits, '.', '-' or '_', not '.' or '..'",
            field=f"data.{name}",
            fix="name the channel like train or validation: --data validation=DIR",
        )


def is_run_dir(path: Path) -> bool:
    return (path / MARKER).is_file() or (path / "input" / "config" / "hyperparameters.json").is_file()


def claim_run_dir(run_dir: Path) -> None:
    """Create or reuse ``run_dir`` and mark it; refuse a file or a non-empty folder that is not a run directory."""
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise LocalRunError(f"--run-dir {run_dir} is not a folder", fix="choose a new or empty folder for --run-dir")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not is_run_dir(run_dir):
        shown = ", ".join(sorted(p.name for p in run_dir.iterdir())[:5])
        raise LocalRunError(
            f"--run-dir {run_dir} is a non-empty folder ({shown}, ...) that is not a smlaunch run directory: a run "
            "replaces its code/ and input/data/<channel>/",
            fix="choose a new or empty folder for --run-dir (or an earlier run's directory to run there again)",
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MARKER).write_text("a `smlaunch local` run directory: code/ and input/data/ are replaced each run\n")
