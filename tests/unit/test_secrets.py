"""Secret-looking environment values: JOB008 finds them by name and by value shape, `render` and
`submit --dry-run` mask them unless --show-secrets, and the warning reaches every command that uses the spec."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from smlaunch.secret_values import MASK, mask, masked_call, secret_reason
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import check
from smlaunch.templates import starter

GITHUB = "ghp_" + "x7Kq2mV9pL4wR8tY1uB6nC3jH5gF0dSaZ2eQ"
SLACK_HOOK = "https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/abcdefghijklmnopqrstuvwx"
SECRETS = {
    "DATABASE_URL": "postgres://app:hunter2@db.internal:5432/app",
    "GH": GITHUB,
    "GH_FINE": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "NOTIFY": SLACK_HOOK,
    "BOT": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
    "MY_ID": "AKIAABCDEFGHIJKLMNOP",
    "SESSION_ID": "ASIAABCDEFGHIJKLMNOP",
    "OPENAI": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
    "AWS_SECRET": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "RANDOM_VALUE": "Zq8vP2mX9kL4wR7tY1uB6nC3jH5gF0dS",
    "HF_TOKEN": "hf_abc123",  # by name
}
PLAIN = {
    "NCCL_DEBUG": "INFO",
    "TOKENIZERS_PARALLELISM": "false",
    "KMS_KEY_ID": "alias/x",
    "MY_KEY": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "GIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "RUN_ID": "0b8f4e2a-1c3d-4e5f-9a7b-112233445566",
    "DATA": "s3://bucket/prefix/with/a/longish/name12345",
    "MODEL": "meta-llama/Llama-2-7b-chat-hf",
    "NAME": "gpt2-tiny-local-20261203-173406-42de2aff",
    "CAMEL": "ThisIsAVeryLongCamelCaseIdentifierName",
    "IMAGE": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.0.0-gpu-py310",
    "SHARDS": "/opt/ml/input/data/train/shard_000001.bin",
    "EMPTY_TOKEN": "",
}


@pytest.mark.parametrize(("name", "value"), SECRETS.items(), ids=list(SECRETS))
def test_secret_shapes_are_found(name, value):
    reason = secret_reason(name, value)
    assert reason and value not in reason


@pytest.mark.parametrize(("name", "value"), PLAIN.items(), ids=list(PLAIN))
def test_ordinary_values_are_not_secrets(name, value):
    assert secret_reason(name, value) is None


def test_reasons_say_what_was_found():
    assert secret_reason("DATABASE_URL", SECRETS["DATABASE_URL"]) == "its value is a URL with a password in it"
    assert secret_reason("X", GITHUB) == "its value is shaped like a GitHub token"
    assert secret_reason("X", SLACK_HOOK) == "its value is shaped like a Slack webhook"
    assert secret_reason("KMS_ALIAS", "AKIAABCDEFGHIJKLMNOP") == "its value is shaped like an AWS access key id"


def test_mask_keeps_all_but_the_secret_of_a_url():
    assert mask(SECRETS["DATABASE_URL"]) == f"postgres://app:{MASK}@db.internal:5432/app"
    assert mask(GITHUB) == MASK and mask(SLACK_HOOK) == MASK
    request = {"Environment": {"A": GITHUB, "B": "1"}, "estimator": {"environment": {"C": GITHUB}}}
    masked = masked_call(request)
    assert masked == {"Environment": {"A": MASK, "B": "1"}, "estimator": {"environment": {"C": MASK}}}
    assert request["Environment"]["A"] == GITHUB  # the input is left as it is


def spec_with(env):
    data = yaml.safe_load(starter("gpt2-tiny-local"))
    data["sagemaker"] = {**(data.get("sagemaker") or {}), "environment": env}
    return load_spec(data)


def test_job008_finds_values_by_shape_and_never_echoes_them():
    report = check(spec_with({**SECRETS, **PLAIN}), select=["JOB008"])
    assert sorted(f.field.rsplit(".", 1)[1] for f in report.findings) == sorted(SECRETS)
    text = repr(report.to_dict())
    assert not [v for v in SECRETS.values() if v in text]


def cli(*args, env=None):
    import os

    proc = subprocess.run([sys.executable, "-m", "smlaunch", *args], check=False, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def job(tmp_path):
    path = tmp_path / "job.yaml"
    text = starter("gpt2-tiny-local").replace(
        "sagemaker:\n", "sagemaker:\n  environment:\n    DATABASE_URL: ${DB_URL}\n    NOTIFY: " + SLACK_HOOK + "\n", 1
    )
    path.write_text(text)
    return path


def test_render_masks_secrets_from_the_file_and_the_shell(job):
    code, out, err = cli("render", str(job), "--format", "json", env={"DB_URL": SECRETS["DATABASE_URL"]})
    assert code == 0, err
    env = json.loads(out)["estimator"]["environment"]
    assert env["DATABASE_URL"] == f"postgres://app:{MASK}@db.internal:5432/app" and env["NOTIFY"] == MASK
    assert "hunter2" not in out + err and SLACK_HOOK not in out + err
    assert "JOB008" in err  # the warning comes with the render
    code, out, _ = cli("render", str(job), "--format", "json", "--show-secrets",
                       env={"DB_URL": SECRETS["DATABASE_URL"]})  # fmt: skip
    env = json.loads(out)["estimator"]["environment"]
    assert env["DATABASE_URL"] == SECRETS["DATABASE_URL"] and env["NOTIFY"] == SLACK_HOOK


def test_dry_run_masks_unless_show_secrets(job):
    sets = ["--set", "sagemaker.role=arn:aws:iam::123456789012:role/R", "--set", "sagemaker.region=us-east-1",
            "--set", "data.train=s3://bucket/train/", "--set", "cluster.instance_type=ml.p4d.24xlarge"]  # fmt: skip
    base = {"DB_URL": SECRETS["DATABASE_URL"], "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    code, out, err = cli("submit", str(job), *sets, "--dry-run", "--force", env=base)
    assert code == 0, err
    sent = yaml.safe_load(out)["Environment"]
    assert sent["DATABASE_URL"].endswith(f":{MASK}@db.internal:5432/app") and sent["NOTIFY"] == MASK
    assert "hunter2" not in out + err and "JOB008" in err
    code, out, err = cli("submit", str(job), *sets, "--dry-run", "--force", "--show-secrets", env=base)
    assert code == 0, err
    assert yaml.safe_load(out)["Environment"]["DATABASE_URL"] == SECRETS["DATABASE_URL"]


def test_estimate_warns_on_stderr_and_keeps_its_json_clean(job):
    code, out, err = cli("estimate", str(job), "--format", "json", env={"DB_URL": SECRETS["DATABASE_URL"]})
    assert code == 0, err
    assert "breakdown" in json.loads(out)  # stdout stays one JSON document
    assert "JOB008" in err and "sagemaker.environment" in err
    assert "hunter2" not in out + err and SLACK_HOOK not in out + err


def test_local_warns_before_it_runs(tmp_path, monkeypatch):
    """`local` validates the spec as submit does and prints JOB008 with the plan, before any rank starts (the plan
    is printed by the CLI's own function; nothing runs here)."""
    import io

    from rich.console import Console

    from smlaunch.cli.local_cmd import print_plan
    from smlaunch.local import plan_local

    monkeypatch.setenv("DB_URL", SECRETS["DATABASE_URL"])
    path = tmp_path / "job.yaml"
    path.write_text(starter("gpt2-tiny-local").replace("sagemaker:\n", "sagemaker:\n  environment:\n"
                                                       "    DATABASE_URL: ${DB_URL}\n", 1))  # fmt: skip
    plan = plan_local(load_spec(path), run_dir=tmp_path / "run", num_gpus=0)
    out = io.StringIO()
    print_plan(Console(file=out, width=200), plan)
    assert "JOB008 sagemaker.environment.DATABASE_URL" in out.getvalue()
    assert "hunter2" not in out.getvalue()
