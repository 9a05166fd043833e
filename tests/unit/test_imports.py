"""`smlaunch --help`, `validate`, `schema` and shell completion never import sagemaker, boto3 or torch."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("sagemaker", "boto3", "botocore", "torch", "rich")

PROBE = """
import atexit, sys
from smlaunch.cli import main
atexit.register(lambda: print("HEAVY=" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr))
code = main({argv!r})
"""


def heavy_modules_after(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The heavy modules loaded by ``smlaunch ARGV`` (reported at exit: shell completion ends in sys.exit)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
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


def test_shell_completion_imports_nothing_heavy():
    lines = {
        "smlaunch validate job.yaml --set smp.": "4",
        "smlaunch plan --instance-type ml.p": "3",
        "smlaunch plan --model gpt2-": "3",
        "smlaunch init --preset gpt2-": "3",
        "smlaunch submit job.yaml --set cluster.": "4",
        "smlaunch local job.yaml --set training.": "4",
        "smlaunch ": "1",
    }
    for words, cword in lines.items():
        env = {"_SMLAUNCH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": cword}
        assert heavy_modules_after([], env) == "", words
    assert heavy_modules_after([], {"_SMLAUNCH_COMPLETE": "bash_source"}) == ""


def test_import_smlaunch_is_light():
    proc = subprocess.run(
        [sys.executable, "-c", f"import smlaunch, sys; print([m for m in {HEAVY!r} if m in sys.modules])"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "[]"
