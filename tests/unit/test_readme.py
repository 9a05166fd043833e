"""README keeps exactly two set-up commands, and CI runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def setup_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert "smlaunch local" in main_job and "constraints-cpu.txt" in main_job
    assert "pytest" in tests and "constraints-cpu.txt" in tests


def test_ci_runs_the_readme_test_command():
    ci = ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert setup_commands()[1] in ci


def test_cpu_constraints_pin_torch():
    assert "torch==2.13.0" in ROOT.joinpath("constraints-cpu.txt").read_text().split()
