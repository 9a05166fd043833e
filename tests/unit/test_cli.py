"""The foundation commands through the real console entry point: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from smlaunch.cli import COMMANDS, cli, main
from smlaunch.spec.load import load_spec
from smlaunch.templates import STARTERS


def run(*args: str) -> tuple[int, str, str]:
    """Run ``smlaunch ARGS`` the way a user does (a separate process); return (code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "smlaunch", *args], check=False, capture_output=True, text=True, timeout=60
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def job(tmp_path):
    path = tmp_path / "job.yaml"
    code, out, _ = run("init", "--preset", "gpt2-60b", "-o", str(path))
    assert code == 0 and f"wrote {path}" in out
    return path


FROZEN_CLI = {
    "init": ["force", "name", "output", "preset"],
    "validate": ["files", "output_format", "overrides", "strict"],
    "schema": ["force", "output"],
    "render": ["file", "output_format", "overrides", "show_secrets"],
    "estimate": ["file", "output_format", "overrides"],
    "plan": [
        "engine", "force", "global_batch", "instance_count", "instance_type", "max_steps", "model", "output",
        "output_format", "seq_length", "top", "vary_batch",
    ],
    "submit": ["dry_run", "file", "force", "job_name", "max_cost", "overrides", "show_secrets", "wait", "yes"],
    "status": ["job", "output_format", "region"],
    "logs": ["follow", "job", "poll_s", "region"],
    "stop": ["job", "region"],
    "list": ["max_results", "name_contains", "output_format", "region", "status"],
    "local": ["data", "docker", "file", "force", "hosts", "image", "nproc", "overrides", "run_dir", "shrink", "steps"],
}  # fmt: skip


def test_cli_commands_and_options_are_frozen():
    """Growing the CLI is a deliberate diff of this table (torchtitan's test_no_new_cli_options)."""
    import click

    ctx = click.Context(cli)
    actual = {name: sorted(p.name for p in cli.get_command(ctx, name).params) for name in COMMANDS}
    assert actual == FROZEN_CLI
    assert list(COMMANDS) == list(FROZEN_CLI)


@pytest.mark.parametrize("preset", sorted(STARTERS))
def test_every_starter_template_validates_clean(preset, tmp_path):
    path = tmp_path / f"{preset}.yaml"
    CliRunner().invoke(cli, ["init", "--preset", preset, "-o", str(path)])
    code, out, err = run("validate", "--strict", str(path))
    assert code == 0, out + err
    assert f"{path}: valid (0 errors, 0 warnings)" in out


def test_validate_reports_rule_errors_with_field_line_and_fix(job):
    code, out, err = run("validate", str(job), "--set", "smp.microbatches=3")
    assert code == 1
    assert f"{job}: invalid" in out
    assert "SMP" in out and "training.batch_size (line 29)" in out
    assert "batch_size(56) is not divisible by microbatches(3)" in out
    assert "fix: --set training.batch_size=57 (a multiple of microbatches 3)" in out  # worded for the shell
    assert "Traceback" not in out + err


def test_validate_json_contract(job):
    code, out, _ = run("validate", str(job), "--format", "json", "--set", "smp.tensor_parallel_degree=16")
    assert code == 1
    report = json.loads(out)
    assert set(report) == {"valid", "errors", "warnings", "file"} and report["valid"] is False
    finding = next(f for f in report["errors"] if f["field"] == "smp.tensor_parallel_degree")
    assert set(finding) == {"rule", "field", "line", "message", "fix", "cli_fix"}
    assert finding["fix"] == "set smp.tensor_parallel_degree: 8"  # the spec's wording
    assert finding["cli_fix"] == "--set smp.tensor_parallel_degree=8"  # the command line's
    assert finding["line"] == 19
    assert "tensor_parallel_degree(16) > GPUs per instance(8) on ml.p4d.24xlarge" in finding["message"]


def test_validate_many_files_exit_code_is_the_worst(job, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [")
    code, out, err = run("validate", str(job), str(broken))
    assert code == 2
    assert f"{job}: valid" in out
    assert f"error: {broken}: YAML syntax error at line 2, column 1: did not find expected node content" in out
    assert "Traceback" not in out + err


def test_validate_unknown_key_exit_2_with_suggestion(job):
    code, out, _ = run("validate", str(job), "--set", "smp.partitons=2")
    assert code == 2
    assert "smp.partitons" in out and "did you mean 'smp.partitions'?" in out


def test_strict_fails_on_warnings(job):
    code, _, _ = run(
        "validate", "--strict", str(job), "--set", "smp.microbatches=8", "--set", "smp.active_microbatches=9"
    )
    assert code == 1


def test_init_refuses_to_overwrite(job):
    code, _, err = run("init", "--preset", "gpt2-10b", "-o", str(job))
    assert code == 1 and f"error: {job} exists" in err and "--force" in err


def test_init_writes_to_stdout_by_default():
    result = CliRunner().invoke(cli, ["init", "--preset", "gpt2-30b"])
    assert result.exit_code == 0 and "preset: gpt2-30b" in result.output


def test_schema_is_json_schema_and_accepts_partitions():
    code, out, _ = run("schema")
    schema = json.loads(out)
    assert code == 0 and schema["additionalProperties"] is False
    assert {"name", "model", "cluster", "smp", "training", "data", "output", "sagemaker"} <= set(schema["properties"])
    smp = schema["$defs"]["SmpSpec"]["properties"]
    assert "partitions" in smp and "pipeline_parallel_degree" in smp and "microbatches" in smp


def test_render_prints_estimator_kwargs_and_is_deterministic(job):
    code, first, _ = run("render", str(job), "--format", "json")
    _, second, _ = run("render", str(job), "--format", "json")
    assert code == 0 and first == second
    payload = json.loads(first)
    params = payload["estimator"]["distribution"]["smdistributed"]["modelparallel"]["parameters"]
    assert params["partitions"] == 2
    assert payload["estimator"]["hyperparameters"]["prescaled_batch"] == 1


def test_render_warns_about_rule_errors_on_stderr(job):
    code, out, err = run("render", str(job), "--set", "smp.microbatches=3")
    assert code == 0 and "breaks 1 rule(s)" in err and "distribution:" in out


def test_spec_errors_exit_2_without_traceback_and_debug_shows_it(tmp_path):
    missing = str(tmp_path / "missing.yaml")
    assert main(["render", missing]) == 2
    code, _, err = run("render", missing)
    assert code == 2 and "no such file" in err and "Traceback" not in err
    proc = subprocess.run(
        [sys.executable, "-m", "smlaunch", "render", missing],
        check=False,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "SMLAUNCH_DEBUG": "1"},
    )
    assert "Traceback" in proc.stderr


def test_templates_from_init_load(tmp_path):
    for preset in STARTERS:
        path = tmp_path / f"{preset}.yaml"
        CliRunner().invoke(cli, ["init", "--preset", preset, "-o", str(path)])
        assert load_spec(path).name == preset


def test_a_cli_fix_pasted_back_fixes_the_spec(job):
    _, out, _ = run("validate", str(job), "--format", "json", "--set", "smp.microbatches=3")
    (finding,) = json.loads(out)["errors"]
    args = shlex.split(finding["cli_fix"].split(" (", 1)[0])
    assert args == ["--set", "training.batch_size=57"]
    code, out, _ = run("validate", str(job), "--set", "smp.microbatches=3", *args)
    assert code == 0, out


def test_submit_refusal_words_fixes_for_the_command_line(job):
    code, _, err = run("submit", str(job), "--dry-run", "--set", "smp.microbatches=3")
    assert code == 1
    assert "error: 1 rule error(s) in the spec; not submitting" in err
    assert "SMP008 training.batch_size: batch_size(56) is not divisible by microbatches(3)" in err
    assert "fix: --set training.batch_size=57 (a multiple of microbatches 3)" in err
    assert "Traceback" not in err
