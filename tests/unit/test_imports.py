"""`smlaunch --help`, `validate` and `schema` never import the heavy SDKs (sagemaker, boto3, torch)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sagemaker", "boto3", "botocore", "torch", "rich")

PROBE = """
import sys
from smlaunch.cli import main
code = main({argv!r})
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def heavy_modules_after(argv: list[str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")]
    assert line, proc.stderr
    return line[0].removeprefix("HEAVY=")


def test_help_imports_nothing_heavy():
    assert heavy_modules_after(["--help"]) == ""


def test_validate_and_schema_import_nothing_heavy(tmp_path):
    job = tmp_path / "job.yaml"
    from smlaunch.templates import starter

    job.write_text(starter("gpt2-60b"))
    assert heavy_modules_after(["validate", str(job)]) == ""
    assert heavy_modules_after(["schema"]) == ""


def test_import_smlaunch_is_light():
    proc = subprocess.run(
        [sys.executable, "-c", f"import smlaunch, sys; print([m for m in {HEAVY!r} if m in sys.modules])"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "[]"
