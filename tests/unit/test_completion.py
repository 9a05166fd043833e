"""Shell completion through click's real machinery: --set keys, instance types, model and starter presets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.shell_completion import ShellComplete

from smlaunch.catalog import INSTANCES, PRESETS
from smlaunch.cli import cli
from smlaunch.cli.common import spec_keys
from smlaunch.templates import STARTERS


def complete(line: str) -> list[str]:
    """What click completes for ``smlaunch LINE`` (the last word, possibly empty, is the incomplete one)."""
    words = line.split(" ")
    completer = ShellComplete(cli, {}, "smlaunch", "_SMLAUNCH_COMPLETE")
    return [item.value for item in completer.get_completions(words[:-1], words[-1])]


def complete_in_subprocess(line: str, shell: str = "bash") -> list:
    """Run the CLI the way the shell script does: ``_SMLAUNCH_COMPLETE=bash_complete`` with COMP_WORDS/COMP_CWORD."""
    words = ["smlaunch", *line.split(" ")]
    cword = words[-1] if shell == "fish" else str(len(words) - 1)  # fish passes the incomplete word itself
    env = {**os.environ, "_SMLAUNCH_COMPLETE": f"{shell}_complete", "COMP_WORDS": " ".join(words), "COMP_CWORD": cword}
    proc = subprocess.run(
        [sys.executable, "-m", "smlaunch"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    if shell != "bash":  # zsh and fish: type, value, help on three lines per completion
        return proc.stdout.splitlines()
    return [tuple(x.split(",", 1)) for x in proc.stdout.splitlines()]


@pytest.mark.parametrize("command", ["validate job.yaml", "render job.yaml", "estimate job.yaml", "submit job.yaml",
                                     "local job.yaml"])  # fmt: skip
def test_set_completes_sections_then_keys_on_every_command(command):
    sections = complete(f"{command} --set ")
    assert sections == [
        *("name=", "engine=", "model.", "cluster.", "smp.", "training.", "data.", "output.", "sagemaker."),
        "entry_point.",
    ]
    assert complete(f"{command} --set sm") == ["smp."]
    keys = complete(f"{command} --set smp.")
    assert {"smp.microbatches=", "smp.tensor_parallel_degree=", "smp.partitions=", "smp.ddp="} <= set(keys)
    assert all(k.startswith("smp.") and k.endswith("=") and k.count(".") == 1 for k in keys)
    assert complete(f"{command} --set smp.micro") == ["smp.microbatches="]
    assert complete(f"{command} --set cluster.sp") == ["cluster.spot."]
    assert complete(f"{command} --set cluster.spot.") == ["cluster.spot.enabled=", "cluster.spot.max_wait_hours="]
    assert complete(f"{command} --set smp.microbatches=4") == []


def test_every_completed_key_is_accepted_by_load_spec():
    import yaml

    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    base = yaml.safe_load(starter("gpt2-30b"))
    for key in spec_keys():
        if key.endswith("="):
            with pytest.raises(Exception) as caught:  # a nonsense value: a type error, never an unknown key
                load_spec(base, [f"{key}[[bad]]"])
            assert "unknown key" not in str(caught.value), key


def test_instance_types_and_model_presets_for_plan():
    assert complete("plan --instance-type ") == list(INSTANCES)
    assert complete("plan --instance-type ml.p4") == ["ml.p4d.24xlarge", "ml.p4de.24xlarge"]
    assert complete("plan --model ") == list(PRESETS)
    assert complete("plan --model gpt2-3") == ["gpt2-30b"]
    completer = ShellComplete(cli, {}, "smlaunch", "_SMLAUNCH_COMPLETE")
    (item,) = completer.get_completions(["plan", "--model"], "models/my")
    assert (item.type, item.value) == ("file", "models/my")  # not a preset: the shell completes file names


def test_init_presets():
    assert complete("init --preset ") == list(STARTERS)
    assert complete("init --preset gpt2-t") == ["gpt2-tiny-local"]


def test_commands_complete():
    assert complete("") == ["init", "validate", "schema", "render", "estimate", "plan", "submit", "status", "logs",
                            "stop", "list", "local"]  # fmt: skip
    assert complete("st") == ["status", "stop"]


def test_bash_complete_protocol_in_a_subprocess():
    assert complete_in_subprocess("validate job.yaml --set training.b") == [("plain", "training.batch_size=")]
    assert complete_in_subprocess("plan --instance-type ml.g5") == [
        ("plain", name) for name in INSTANCES if name.startswith("ml.g5")
    ]
    assert ("plain", "gpt2-60b") in complete_in_subprocess("init --preset gpt2-")


def test_zsh_and_fish_protocols_in_a_subprocess():
    zsh = complete_in_subprocess("plan --model gpt2-x", shell="zsh")
    assert zsh == ["plain", "gpt2-xl", "_"]
    fish = complete_in_subprocess("validate job.yaml --set training.max_s", shell="fish")
    assert fish == ["plain", "training.max_steps=", "_"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_source_scripts(shell):
    env = {**os.environ, "_SMLAUNCH_COMPLETE": f"{shell}_source"}
    proc = subprocess.run(
        [sys.executable, "-m", "smlaunch"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "_SMLAUNCH_COMPLETE" in proc.stdout, proc.stderr
    if shell == "bash":
        assert "compopt -o nospace" in proc.stdout  # no space after `smp.microbatches=` or `cluster.`


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_real_bash_completes_a_set_key(tmp_path):
    """Source the script in a real bash, call its completion function, read COMPREPLY."""
    shim = tmp_path / "smlaunch"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m smlaunch "$@"\n')
    shim.chmod(0o755)
    script = (
        'eval "$(_SMLAUNCH_COMPLETE=bash_source smlaunch)"\n'
        "COMP_WORDS=(smlaunch validate job.yaml --set smp.micro); COMP_CWORD=4\n"
        "_smlaunch_completion smlaunch 2>/dev/null\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["smp.microbatches="], proc.stderr
