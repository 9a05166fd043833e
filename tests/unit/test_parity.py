"""CLI and API parity: every ``smlaunch`` command is an API function, and the command goes through it."""

from __future__ import annotations

import inspect

import pytest
from click.testing import CliRunner

import smlaunch
import smlaunch.api
import smlaunch.jobs
from smlaunch.cli import COMMANDS, cli

API_OF_COMMAND = {
    "init": "starter",
    "validate": "validate_file",
    "schema": "json_schema",
    "render": "render",
    "estimate": "estimate",
    "plan": "plan",
    "submit": "submit",
    "status": "attach",  # JobHandle.status()
    "logs": "attach",  # JobHandle.logs()
    "stop": "attach",  # JobHandle.stop()
    "list": "list_jobs",
    "local": "run_local",
}
"""A new command needs its API function here (and a new API function its command, or a place in API_ONLY)."""
API_ONLY = {"load_spec", "validate"}
"""API functions with no command of their own: ``--set`` is load_spec's overrides; ``validate`` takes any spec."""
HANDLE_METHOD = {"status": "status", "logs": "logs", "stop": "stop"}
SPLIT = {
    "submit": ("jobs.prepare(", "jobs.launch("),  # api.submit = prepare + launch; the CLI confirms in between
    "local": ("local.plan_local(", "local.launch("),  # api.run_local = plan_local + launch; the CLI shows the plan
}
"""Commands that call the two halves of their API function, to talk to the user between them."""
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def test_every_command_has_its_api_function_and_back():
    assert set(API_OF_COMMAND) == set(COMMANDS)
    functions = {n for n in smlaunch.__all__ if inspect.isfunction(getattr(smlaunch, n))}
    assert set(API_OF_COMMAND.values()) | API_ONLY == functions
    for name in functions:
        assert getattr(smlaunch, name) is getattr(smlaunch.api, name)
        assert name in smlaunch.api.__all__


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_calls_the_api(command):
    import importlib

    source = inspect.getsource(importlib.import_module(f"smlaunch.cli.{command}_cmd").command.callback)
    if command in SPLIT:
        assert all(part in source for part in SPLIT[command]), command
        return
    assert f"api.{API_OF_COMMAND[command]}(" in source, f"`smlaunch {command}` bypasses smlaunch.api"
    if command in HANDLE_METHOD:
        assert f".{HANDLE_METHOD[command]}(" in source


@pytest.fixture
def job_yaml(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(smlaunch.starter("gpt2-60b"))
    return path


@pytest.fixture
def calls(monkeypatch):
    """Spy on every API function: record the call, then run the real one (attach and list_jobs on a recorder)."""
    backend = smlaunch.RecordingBackend()
    seen: list[str] = []
    for name in set(API_OF_COMMAND.values()):
        real = getattr(smlaunch.api, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            seen.append(_name)
            if _name in ("attach", "list_jobs"):
                kwargs = {k: v for k, v in kwargs.items() if k != "region"} | {"backend": backend}
            return _real(*args, **kwargs)

        monkeypatch.setattr(smlaunch.api, name, spy)
    import yaml

    spec = yaml.safe_load(smlaunch.starter("gpt2-60b"))
    smlaunch.jobs.submit(
        smlaunch.load_spec(spec, {"sagemaker.role": ROLE}), backend=backend, job_name="gpt2-60b-parity"
    )
    return seen


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("init", ["init", "--preset", "gpt2-30b"]),
        ("validate", ["validate", "{job}"]),
        ("schema", ["schema"]),
        ("render", ["render", "{job}"]),
        ("estimate", ["estimate", "{job}", "--format", "json"]),
        ("plan", ["plan", "--model", "gpt2-10b", "--instance-type", "ml.p4d.24xlarge", "--instance-count", "16",
                  "--top", "1", "--format", "json"]),
        ("status", ["status", "gpt2-60b-parity", "--format", "json"]),
        ("logs", ["logs", "gpt2-60b-parity"]),
        ("stop", ["stop", "gpt2-60b-parity"]),
        ("list", ["list", "--format", "json"]),
    ],
)  # fmt: skip
def test_the_command_runs_its_api_function(command, args, calls, job_yaml):
    result = CliRunner().invoke(cli, [a.format(job=job_yaml) for a in args])
    assert result.exit_code == 0, result.output
    assert API_OF_COMMAND[command] in calls
    if command == "list":
        assert "gpt2-60b-parity" in result.output
    if command == "stop":
        assert "Stopping gpt2-60b-parity." in result.output
