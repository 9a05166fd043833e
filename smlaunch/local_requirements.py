"""An own script's requirements.txt in a local run, as the SageMaker container treats it: installed before the
script starts (the toolkit runs ``pip install -r requirements.txt``).

Requirements this environment already satisfies are not installed again; the rest go into ``<run>/site-packages``
(on the run's ``PYTHONPATH``) with ``pip install --target``. A package pip cannot get (offline, or no such
release) is a :class:`~smlaunch.errors.LocalRunError` naming it, before any rank starts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from smlaunch.errors import LocalRunError

_PIP_FAILED = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the requirement)\s+(\S+)"
)


def unsatisfied(lines: list[str]) -> list[str]:
    """The requirement lines this environment does not satisfy (options such as ``--index-url`` are kept)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging ships with pip's toolchain
        return lines
    needed = []
    for line in lines:
        if line.startswith("-"):
            needed.append(line)
            continue
        try:
            req = Requirement(line)
            have = metadata.version(req.name)
        except (InvalidRequirement, metadata.PackageNotFoundError):
            needed.append(line)
            continue
        if req.url or not req.specifier.contains(have, prereleases=True):
            needed.append(line)
    return needed


def install_requirements(requirements: Path, target: Path) -> list[str]:
    """Install what ``requirements`` asks for and this environment lacks into ``target``; returns those lines."""
    if not requirements.is_file():
        return []
    lines = [ln.split(" #")[0].strip() for ln in requirements.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    needed = unsatisfied(lines)
    if not [ln for ln in needed if not ln.startswith("-")]:
        return []
    target.mkdir(parents=True, exist_ok=True)
    wanted = target.parent / "requirements.local.txt"
    wanted.write_text("\n".join(needed) + "\n")
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"]
    proc = subprocess.run(
        [*cmd, "--target", str(target), "-r", str(wanted)],
        check=False,
        cwd=requirements.parent,
        capture_output=True,
        text=True,
        errors="replace",
    )
    if proc.returncode:
        output = proc.stdout + proc.stderr
        names = sorted(set(_PIP_FAILED.findall(output)))
        last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "pip failed")
        what = ", ".join(names) if names else ", ".join(ln for ln in needed if not ln.startswith("-"))
        raise LocalRunError(
            f"requirements.txt: {what} cannot be installed for the local run (pip: {last})",
            field="entry_point.source_dir",
            fix=f"install {what} into this environment first (it is then used as is), or make it reachable "
            "to pip (an index, or a wheel path in requirements.txt)",
        )
    return needed
