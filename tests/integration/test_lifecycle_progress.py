"""The lifecycle modules import no AWS SDK: checked in a fresh interpreter (a subprocess).

The pure lifecycle tests (step-line parser, ETA, job names, RecordingBackend) are in tests/unit/test_lifecycle.py.
"""

from __future__ import annotations

import subprocess
import sys


def test_lifecycle_modules_import_no_sdk():
    code = (
        "import sys, smlaunch.jobs, smlaunch.backends, smlaunch.progress\n"
        "for c in ('submit', 'status', 'logs', 'stop', 'list'): __import__(f'smlaunch.cli.{c}_cmd')\n"
        "heavy = [m for m in ('sagemaker', 'boto3', 'botocore', 'rich') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
