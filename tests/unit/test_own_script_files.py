"""An own script's folder: what is uploaded and what is left out (smlaunch.source_tree), and the findings that read
its files (smlaunch.script_check, SRC001-SRC006), on a real folder in tmp_path."""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from smlaunch.backends.source import staged_source
from smlaunch.errors import SubmitError
from smlaunch.script_check import read_parser, script_findings
from smlaunch.source_tree import MAX_FILE_BYTES, scan, stage
from smlaunch.spec.load import load_spec
from smlaunch.validation import validate
from tests.unit.test_rules_script import SCRIPT_BASE

SCRIPT = """\
import argparse
import helper
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--max_steps", type=int)
parser.add_argument("--pipeline_parallel_degree", type=int)
args = parser.{parse}()
"""


def make_tree(root, *, parse="parse_args", extra_imports=""):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(extra_imports + SCRIPT.format(parse=parse))
    (root / "helper.py").write_text("VALUE = 1\n")
    (root / "sub" / "pkg").mkdir(parents=True)
    (root / "sub" / "pkg" / "mod.py").write_text("")
    (root / "requirements.txt").write_text("pyyaml\n")
    for folder in (".git", "__pycache__", ".venv", "myenv"):
        (root / folder).mkdir()
        (root / folder / "f").write_text("x")
    (root / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / ".env").write_text("AWS_SECRET_ACCESS_KEY=abc\n")
    (root / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (root / "helper.cpython-311.pyc").write_bytes(b"\0")
    return root


def spec_for(root, *, arguments="smlaunch", **changes):
    job = copy.deepcopy(SCRIPT_BASE)
    job["entry_point"] = {"script": "train.py", "source_dir": str(root), "arguments": arguments}
    return load_spec(job, changes)


def test_the_folder_goes_up_whole_less_vcs_caches_venvs_and_secrets(tmp_path):
    root = make_tree(tmp_path / "src")
    (root / "link_in.py").symlink_to(root / "helper.py")
    manifest = scan(root)
    assert [rel for rel, _ in manifest.files] == [
        "helper.py", "link_in.py", "requirements.txt", "sub/pkg/mod.py", "train.py",
    ]  # fmt: skip
    assert dict(manifest.excluded) == {
        ".git": "folder",
        ".venv": "folder",
        "__pycache__": "folder",
        "myenv": "folder",
        ".env": "secret-looking file",
        "deploy.pem": "secret-looking file",
        "helper.cpython-311.pyc": "compiled or system file",
    }
    assert manifest.summary().startswith("5 files, ")
    assert "left out: .git/, .venv/, __pycache__/, myenv/, .env, deploy.pem" in manifest.summary()
    with stage(manifest) as copy_dir:
        staged = sorted(p.relative_to(copy_dir).as_posix() for p in copy_dir.rglob("*") if p.is_file())
        assert staged == [rel for rel, _ in manifest.files]
        assert not (copy_dir / "link_in.py").is_symlink()  # a link inside the folder goes up as a copy
        assert (copy_dir / "link_in.py").read_text() == "VALUE = 1\n"


def test_a_symlink_leaving_the_folder_is_refused(tmp_path):
    root = make_tree(tmp_path / "src")
    outside = tmp_path / "secrets.txt"
    outside.write_text("s3cret")
    (root / "notes.txt").symlink_to(outside)
    (root / "shared").symlink_to(tmp_path, target_is_directory=True)
    manifest = scan(root)
    assert {rel for rel, _ in manifest.escaping_links} == {"notes.txt", "shared"}
    assert "notes.txt" not in {rel for rel, _ in manifest.files}
    (found,) = [f for f in script_findings(spec_for(root)) if f.rule == "SRC005"]
    assert (found.severity, found.field) == ("error", "entry_point.source_dir")
    assert "notes.txt -> " in found.message and "shared -> " in found.message
    with pytest.raises(SubmitError, match="outside source_dir"), staged_source(str(root), "train.py", own=True):
        pass


def test_a_file_over_the_limit_is_left_out_with_a_warning(tmp_path):
    root = make_tree(tmp_path / "src")
    with open(root / "weights.bin", "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no 50 MiB written
    manifest = scan(root)
    assert [rel for rel, _ in manifest.too_large] == ["weights.bin"]
    assert "weights.bin (over 50 MiB)" in manifest.summary()
    (found,) = [f for f in script_findings(spec_for(root)) if f.rule == "SRC006"]
    assert found.severity == "warning" and "weights.bin (50.0 MiB)" in found.message


def test_the_parser_is_read_statically(tmp_path):
    root = make_tree(tmp_path / "src")
    parser = read_parser(root / "train.py")
    assert parser.options == {"lr", "max_steps", "pipeline_parallel_degree"} and not parser.known_args
    assert parser.reads_as("pipeline") == ["pipeline_parallel_degree"]
    assert parser.reads_as("lr") == ["lr"] and parser.reads_as("batch_size") == []
    (root / "plain.py").write_text("import sys\nprint(sys.argv)\n")
    assert read_parser(root / "plain.py") is None  # nothing to check against


def test_arguments_the_script_does_not_define_are_findings(tmp_path):
    root = make_tree(tmp_path / "src")
    spec = spec_for(root)  # the smlaunch contract: --pipeline, --batch_size, ... which train.py lacks
    found = {(f.severity, f.message.split(":")[0]): f for f in script_findings(spec) if f.rule == "SRC002"}
    misread = next(f for (sev, _), f in found.items() if "read as --pipeline_parallel_degree" in f.message)
    assert misread.severity == "error" and misread.field == "entry_point.arguments"
    assert "--pipeline (read as --pipeline_parallel_degree)" in misread.message
    toolkit = next(f for f in found.values() if "--mp_parameters" in f.message)
    assert (toolkit.severity, toolkit.field) == ("error", "entry_point.script")
    assert toolkit.fix.startswith("parse the arguments with parse_known_args")
    unknown = next(f for f in found.values() if "parse_args aborts" in f.message and "--batch_size" in f.message)
    assert unknown.severity == "error" and "--batch_size" in unknown.message
    assert unknown.fix.startswith("set entry_point.arguments: aws-smp-gpt2")


def test_parse_known_args_makes_unknown_arguments_a_warning(tmp_path):
    root = make_tree(tmp_path / "src", parse="parse_known_args")
    spec = spec_for(root, arguments={"training.max_steps": "max_steps", "training.lr": "lr"})
    assert [f.rule for f in script_findings(spec) if f.rule == "SRC002"] == []
    spec = spec_for(root, arguments={"training.max_steps": "max_steps", "training.batch_size": "bs"},
                    **{"entry_point.hyperparameters": {"logging": 1}})  # fmt: skip
    found = sorted((f.field, f.severity) for f in script_findings(spec) if f.rule == "SRC002")
    assert found == [("entry_point.arguments", "warning"), ("entry_point.hyperparameters.logging", "warning")]


def test_imports_the_images_lack_need_requirements(tmp_path):
    root = make_tree(tmp_path / "src", extra_imports="import transformers\nfrom datasets import load_dataset\n")
    (found,) = [f for f in script_findings(spec_for(root)) if f.rule == "SRC003"]
    assert found.severity == "warning" and "imports datasets, transformers" in found.message
    assert found.fix == f"add datasets, transformers to {root}/requirements.txt"
    (root / "requirements.txt").write_text("transformers==4.21.0\ndatasets  # for the tokenizer\n")
    assert [f for f in script_findings(spec_for(root)) if f.rule == "SRC003"] == []


def test_smdistributed_under_the_torch_engine_is_an_error(tmp_path):
    root = make_tree(tmp_path / "src", extra_imports="import smdistributed.modelparallel.torch as smp\n")
    spec = spec_for(root, engine="torch", **{"cluster.instance_type": "ml.p5.48xlarge"})
    (found,) = [f for f in script_findings(spec) if f.rule == "SRC003"]
    assert (found.severity, found.field, found.fix) == (
        "error", "engine", "set engine: smp (or remove the smdistributed imports from the script)",
    )  # fmt: skip


def test_requirements_under_network_isolation_warn(tmp_path):
    root = make_tree(tmp_path / "src")
    spec = spec_for(root, **{"sagemaker.enable_network_isolation": True})
    (found,) = [f for f in script_findings(spec) if f.rule == "SRC004"]
    assert found.field == "sagemaker.enable_network_isolation" and "pip-installs" in found.message


def test_a_missing_script_or_folder_is_an_error(tmp_path):
    root = make_tree(tmp_path / "src")
    (missing,) = script_findings(spec_for(tmp_path / "nowhere"))
    assert (missing.rule, missing.field) == ("SRC001", "entry_point.source_dir")
    os.remove(root / "train.py")
    (missing,) = script_findings(spec_for(root))
    assert (missing.rule, missing.field) == ("SRC001", "entry_point.script")


def test_a_relative_source_dir_is_read_from_the_job_files_folder(tmp_path, monkeypatch):
    make_tree(tmp_path / "proj" / "gpt2", extra_imports="import transformers\n")
    job = copy.deepcopy(SCRIPT_BASE)
    job["entry_point"] = {"script": "train.py", "source_dir": "./gpt2", "arguments": "aws-smp-gpt2"}
    (tmp_path / "proj" / "job.yaml").write_text(yaml.safe_dump(job))
    monkeypatch.chdir(tmp_path)  # not the job file's folder
    report = validate(load_spec(tmp_path / "proj" / "job.yaml"))
    assert "SRC003" in {f.rule for f in report.findings}  # it found and read proj/gpt2/train.py
    assert "SRC001" not in {f.rule for f in report.findings}


def test_the_estimate_of_an_own_script_lists_its_assumptions(tmp_path):
    from click.testing import CliRunner

    from smlaunch.cli import cli
    from smlaunch.costmodel import estimate

    root = make_tree(tmp_path / "src")
    own = estimate(spec_for(root))
    assert len(own.assumptions) == 2 and own.assumptions[0].startswith("train.py is assumed to train smlaunch's GPT-2")
    assert "replicated on every tensor-parallel rank" in own.assumptions[1]  # SMP v1: the head stays whole
    assert own.to_dict()["assumptions"] == own.assumptions
    assert estimate(load_spec(copy.deepcopy(SCRIPT_BASE) | {"entry_point": None})).assumptions == []
    job = copy.deepcopy(SCRIPT_BASE)
    job["entry_point"] = {"script": "train.py", "source_dir": str(root), "arguments": "aws-smp-gpt2"}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    result = CliRunner().invoke(cli, ["estimate", str(tmp_path / "job.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "assumption: train.py is assumed to train smlaunch's GPT-2" in result.output


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"script": "t.py", "source_dir": "a\x00b"}, "source_dir is not a usable path"),
        ({"script": "a" * 300 + ".py", "source_dir": "src"}, "script is not a usable path"),
    ],
)
def test_paths_no_filesystem_takes_are_spec_errors(entry, message):
    from smlaunch.errors import SpecError

    job = copy.deepcopy(SCRIPT_BASE)
    job["entry_point"] = entry
    with pytest.raises(SpecError, match=message):
        load_spec(job)


def test_an_unreadable_or_huge_source_dir_is_one_finding(tmp_path, monkeypatch):
    import smlaunch.source_tree as tree

    root = make_tree(tmp_path / "src")
    monkeypatch.setattr(tree, "MAX_FILES", 5)
    (found,) = script_findings(spec_for(root))
    assert (found.rule, found.field) == ("SRC001", "entry_point.source_dir") and "more than 5 files" in found.message
    with pytest.raises(SubmitError, match="more than 5 files"), staged_source(str(root), "train.py", own=True):
        pass


def test_an_unreadable_source_dir_is_one_finding(tmp_path, monkeypatch):
    import smlaunch.script_check as check

    def refuse(root):
        raise PermissionError(13, "Permission denied", str(root))

    root = make_tree(tmp_path / "src")
    monkeypatch.setattr(check, "scan", refuse)
    (found,) = script_findings(spec_for(root))
    assert (found.rule, found.severity, found.field) == ("SRC001", "error", "entry_point.source_dir")
    assert found.message.endswith("cannot be read: Permission denied")
