# ruff: noqa: F811  (pytest fixtures imported by name and used as arguments)
"""Your own script end to end: a small recorder script (tests/fakes/own_script) run with ``smlaunch local`` under
real torchrun, and submitted through the real SDK to moto (the uploaded tarball checked), with the aws-smp-gpt2
argument mapping, a requirements.txt and files that must not go up.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from smlaunch import arguments as am
from smlaunch import jobs
from smlaunch.errors import LocalRunError
from smlaunch.local import run_local
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter
from tests.integration.aws_fixtures import REGION, ROLE, aws_env, moto_server, no_network  # noqa: F401
from tests.integration.test_submit_moto import BUCKET, backend, client, make_bucket, run_cli

pytestmark = pytest.mark.integration
FAKE = Path(__file__).resolve().parents[1] / "fakes" / "own_script"
UPLOADED = ["helper.py", "record_args.py", "requirements.txt", "wheels/tinypkg-1.0-py3-none-any.whl"]


def wheel(path: Path) -> None:
    """A minimal pure-Python wheel (tinypkg 1.0): pip installs it offline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = "tinypkg-1.0.dist-info"
    files = {
        "tinypkg/__init__.py": "VALUE = 'from requirements.txt'\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "gpt2"
    src.mkdir()
    for name in ("record_args.py", "helper.py"):
        shutil.copy(FAKE / name, src / name)
    wheel(src / "wheels" / "tinypkg-1.0-py3-none-any.whl")
    (src / "requirements.txt").write_text("pyyaml  # already here: not installed again\n"
                                          "./wheels/tinypkg-1.0-py3-none-any.whl\n")  # fmt: skip
    (src / ".env").write_text("AWS_SECRET_ACCESS_KEY=not-for-upload\n")
    (src / ".git").mkdir()
    (src / ".git" / "config").write_text("[core]\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"\0")
    return src


def own_spec(src: Path, *overrides: str, data=None):
    job = yaml.safe_load(starter("gpt2-tiny-local"))
    job["entry_point"] = {
        "script": "record_args.py",
        "source_dir": str(src),
        "arguments": "aws-smp-gpt2",
        "hyperparameters": {"logging_freq": 1},
    }
    job["data"] = data or {"train": "local:sample", "test": "local:sample"}
    return load_spec(job, list(overrides))


def test_local_runs_the_script_with_the_toolkits_arguments_and_environment(source, tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: the wheel in source_dir is all pip may use
    run = run_local(own_spec(source), steps=2, run_dir=tmp_path / "run")
    assert run.ok, f"{run.reason}\n{run.error_tail}"
    records = sorted((run.run_dir / "output" / "data").glob("record-*.json"))
    assert len(records) == run.plan.nproc == 4  # tp 2 x pp 2 ranks
    record = json.loads(records[0].read_text())
    assert record["argv"] == run.plan.argv()
    names = {a[2:] for a in record["argv"][::2]}
    assert "mp_parameters" in names  # the toolkit passes it to SMP scripts too (parse_known_args drops it)
    assert names - {"mp_parameters"} <= {*am.AWS_SMP_GPT2_PARSER, "logging_freq"} and "pipeline" not in names
    argv = dict(zip(record["argv"][::2], record["argv"][1::2], strict=True))
    assert argv["--train_batch_size"] == str(run.plan.spec.training.batch_size)
    assert argv["--max_steps"] == "2" and argv["--logging_freq"] == "1"
    assert (argv["--tensor_parallel_degree"], argv["--pipeline_parallel_degree"]) == ("2", "2")
    env = record["env"]
    assert env["SM_CHANNEL_TRAIN"] == str(run.run_dir / "input" / "data" / "train")
    assert env["SM_CHANNEL_TEST"] == str(run.run_dir / "input" / "data" / "test")
    assert env["SM_USER_ENTRY_POINT"] == "record_args.py" and env["WORLD_SIZE"] == "4"
    assert json.loads(env["SM_HPS"])["train_batch_size"] == run.plan.spec.training.batch_size
    assert record["files"] == UPLOADED  # no .env, .git or __pycache__ in the run's code/
    assert (record["helper"], record["tinypkg"]) == ("helper module", "from requirements.txt")
    assert (run.run_dir / "site-packages" / "tinypkg" / "__init__.py").is_file()
    assert not (run.run_dir / "site-packages" / "yaml").exists()  # satisfied here: not installed again

    from rich.console import Console

    from smlaunch.cli.local_cmd import print_result

    console = Console(record=True, width=200)
    print_result(console, run)
    summary = console.export_text()
    assert "record_args.py exited 0 on every rank" in summary and "output/data/ (4 files)" in summary


def test_a_requirement_pip_cannot_get_offline_is_named(source, tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    (source / "requirements.txt").write_text("smlaunch-no-such-package==9.9\n")
    with pytest.raises(LocalRunError, match=r"requirements\.txt: smlaunch-no-such-package==9\.9 cannot be installed"):
        run_local(own_spec(source), steps=1, run_dir=tmp_path / "run")


def test_submit_uploads_the_folder_less_exclusions_and_names_the_scripts_arguments(aws_env, source):
    make_bucket()
    data = {"train": f"s3://{BUCKET}/gpt2/train", "test": f"s3://{BUCKET}/gpt2/test"}
    sets = [f"sagemaker.role={ROLE}", f"sagemaker.region={REGION}", "cluster.instance_type=ml.p4d.24xlarge"]
    spec = own_spec(source, *sets, f"output.s3_path=s3://{BUCKET}/out", data=data)
    prepared = jobs.prepare(spec, force=True)
    assert prepared.source_line().startswith(f"record_args.py in {source}: 4 files, ")
    assert "left out: .git/, __pycache__/, .env" in prepared.source_line()
    handle = jobs.launch(prepared, backend=backend())
    job = client("sagemaker").describe_training_job(TrainingJobName=handle.name)
    hp = job["HyperParameters"]
    assert hp["sagemaker_program"] == '"record_args.py"'
    assert hp["train_batch_size"] == str(spec.training.batch_size) and hp["max_context_width"] == "128"
    assert "pipeline" not in hp and "batch_size" not in hp and "seq_length" not in hp
    assert json.loads(hp["mp_parameters"])["partitions"] == 2  # SMP still in the distribution
    key = f"{handle.name}/source/sourcedir.tar.gz"
    body = client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(m.name for m in tar.getmembers() if m.isfile()) == UPLOADED


def test_submit_dry_run_prints_what_goes_up(aws_env, source, tmp_path):
    job = yaml.safe_load(starter("gpt2-tiny-local"))
    job["entry_point"] = {"script": "record_args.py", "source_dir": "./gpt2", "arguments": "aws-smp-gpt2"}
    job["data"] = {"train": f"s3://{BUCKET}/gpt2/train"}  # no test channel: ENT001 names data.test
    job["sagemaker"] = {"role": ROLE, "region": REGION}
    job["cluster"]["instance_type"] = "ml.p4d.24xlarge"
    path = source.parent / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    code, _, err = run_cli("submit", str(path), "--dry-run")
    assert code == 1 and "ENT001" in err and "data.test" in err
    code, _, err = run_cli("submit", str(path), "--dry-run", "--set", f"data.test=s3://{BUCKET}/gpt2/test")
    assert code == 0, err
    assert f"source    record_args.py in {source}: 4 files" in err
