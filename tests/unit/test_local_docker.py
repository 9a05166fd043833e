"""`smlaunch local --docker` without Docker: the compose-line split, the estimator it builds, the hosts it plans,
the image check, the AWS refusal and the interrupt handling. tests/integration/test_docker_local.py runs it for
real in containers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from smlaunch.cli import cli
from smlaunch.cli.local_cmd import host_rows
from smlaunch.errors import LocalRunError
from smlaunch.local import plan_local
from smlaunch.local_docker import (
    NOT_LOCAL,
    PLACEHOLDER_KEY,
    _Interrupt,
    _interrupts,
    _signals_held,
    estimator_kwargs,
    local_session,
    resolve_hosts,
)
from smlaunch.local_docker_image import check_image
from smlaunch.local_docker_stream import COMPOSE, HostLines, split_host
from smlaunch.local_results import LocalRun
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter


def tiny(**overrides):
    spec = yaml.safe_load(starter("gpt2-tiny-local"))
    return load_spec(spec, [f"{k}={v}" for k, v in overrides.items()])


def docker_plan(tmp_path, hosts=2, **overrides):
    instance = "ml.g5.12xlarge" if overrides.get("engine") == "torch" else "ml.g4dn.12xlarge"
    spec = tiny(**{"cluster.instance_count": hosts, "cluster.instance_type": instance, **overrides})
    return plan_local(spec, run_dir=tmp_path / "run", num_gpus=0, hosts=hosts, steps=5)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hel6fdqc32-algo-1-v1i8y  | step=3 loss=5.1", ("algo-1", "step=3 loss=5.1")),  # compose v1: container
        ("algo-12-v1i8y  | hello", ("algo-12", "hello")),  # compose v2: service
        ("\x1b[36mx7-algo-2-abcde |\x1b[0m RuntimeError: boom\r", ("algo-2", "RuntimeError: boom")),
        ("Creating network sagemaker-local", (COMPOSE, "Creating network sagemaker-local")),
        ("algo-1 is up | not a container line", (COMPOSE, "algo-1 is up | not a container line")),
    ],
)
def test_split_host_names_the_container_of_each_compose_line(line, expected):
    assert split_host(line) == expected


def test_host_lines_file_each_line_under_its_host_and_feed_rank0_steps(tmp_path):
    steps = []
    seen = []
    lines = HostLines(tmp_path / "logs", on_step=steps.append, on_line=lambda h, t: seen.append(h), keep=2)
    lines.write("a-algo-2-x | step=1 loss=9.0 step_time_s=0.1 tokens_per_s=10\na-algo-1-x | step=1 loss=5.")
    lines.write("5 step_time_s=0.1 tokens_per_s=10\nCreating a-algo-1-x ... done\n\n")
    lines.write("a-algo-10-x | ValueError: late\na-algo-2-x | RuntimeError: boom\na-algo-2-x | exit")
    lines.close()
    assert [s["loss"] for s in steps] == [5.5]  # algo-2's step line is not rank 0's
    assert lines.hosts() == ["algo-1", "algo-2", "algo-10"]
    assert (tmp_path / "logs" / "algo-2.log").read_text().splitlines() == [
        "step=1 loss=9.0 step_time_s=0.1 tokens_per_s=10",
        "RuntimeError: boom",
        "exit",
    ]
    assert (tmp_path / "logs" / "compose.log").read_text() == "Creating a-algo-1-x ... done\n"
    assert lines.counts["algo-2"] == 3 and list(lines.tails["algo-2"]) == ["RuntimeError: boom", "exit"]
    assert lines.failure_line() == "algo-2: RuntimeError: boom"
    assert seen.count("algo-2") == 3 and COMPOSE in seen


def test_the_host_compose_saw_fail_first_gives_the_reason(tmp_path):
    with HostLines(tmp_path / "logs") as lines:
        lines.write("p-algo-1-x | torch.distributed.DistNetworkError: peer closed\n")
        lines.write("p-algo-2-x | RuntimeError: out of data\n")
        lines.write("p-algo-2-x | torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n")
        lines.write("p-algo-2-x | sagemaker_training.errors.ExecuteUserScriptError:\n")
        lines.write("p-algo-2-x exited with code 1\nAborting on container exit...\np-algo-1-x exited with code 137\n")
    assert lines.exits == [("algo-2", 1), ("algo-1", 137)]
    assert lines.failure_line() == "algo-2: RuntimeError: out of data"


@pytest.mark.parametrize("split", [["RuntimeError", ":", "boom"], ["RuntimeError", ": boom"], ["RuntimeError: boom"]])
def test_an_exception_line_the_toolkit_split_is_rejoined(tmp_path, split):
    with HostLines(tmp_path / "logs") as lines:
        lines.write("".join(f"p-algo-1-x | {part}\n" for part in ["Traceback (most recent call last):", *split]))
        lines.write("p-algo-1-x | ErrorMessage \"raise RuntimeError('boom')\n")
        lines.write("p-algo-1-x |  RuntimeError\np-algo-1-x | boom\n")  # the toolkit's summary: no colon
    assert lines.failure_line() == "algo-1: RuntimeError: boom"


def test_hosts_spread_the_fewest_processes_evenly(tmp_path):
    assert resolve_hosts(2, 2, 2, nproc=None, num_gpus=0)[:2] == (4, "cpu")
    assert resolve_hosts(2, 1, 3, nproc=None, num_gpus=0)[0] == 6
    nproc, device, notes = resolve_hosts(2, 2, 2, nproc=8, num_gpus=4)
    assert (nproc, device) == (8, "cpu") and "2 containers x 4 process(es)" in notes[0]
    assert "local_gpu" in notes[1]
    with pytest.raises(LocalRunError, match=r"(?s)--nproc 6 must be a multiple of tp\(2\) x pp\(2\) = 4 .*--nproc 4"):
        resolve_hosts(2, 2, 2, nproc=6, num_gpus=0)


def test_estimator_is_the_rendered_job_in_local_containers(tmp_path):
    plan = docker_plan(tmp_path, **{"engine": "torch"})
    kwargs = estimator_kwargs(plan, "img:1", tmp_path / "code")
    assert (kwargs["instance_type"], kwargs["instance_count"], kwargs["image_uri"]) == ("local", 2, "img:1")
    assert kwargs["hyperparameters"]["sagemaker_mpi_num_of_processes_per_host"] == 2
    assert kwargs["hyperparameters"]["max_steps"] == 5 and kwargs["hyperparameters"]["tensor_parallel_degree"] == 2
    assert kwargs["source_dir"] == str(tmp_path / "code")
    assert kwargs["output_path"] == f"file://{plan.run_dir / 'artifacts'}"
    assert kwargs["role"].startswith("arn:aws:iam::") and kwargs["tags"] is None
    assert not set(NOT_LOCAL) & set(kwargs)


def test_smp_estimator_sets_mpi_processes_per_host(tmp_path):
    plan = docker_plan(tmp_path, **{"engine": "smp"})
    kwargs = estimator_kwargs(plan, "img:1", tmp_path / "code")
    assert kwargs["distribution"]["mpi"]["enabled"] is True
    assert kwargs["distribution"]["mpi"]["processes_per_host"] == 2
    assert "sagemaker_mpi_num_of_processes_per_host" not in kwargs["hyperparameters"]


def test_local_session_refuses_every_aws_request(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    session = local_session(tmp_path, None)
    creds = session.boto_session.get_credentials()
    assert creds.access_key == PLACEHOLDER_KEY  # never the user's
    assert session.boto_session.region_name == "us-east-1"
    with pytest.raises(LocalRunError, match=r"makes no AWS calls, but SageMaker local mode tried one: .*sts"):
        session.boto_session.client("sts").get_caller_identity()
    assert session.config["local"]["container_root"] == str(tmp_path / "sagemaker")


def finished(plan) -> LocalRun:
    return LocalRun(plan, 0, 1.0, steps=[], metrics=None, failure=None, failed_rank=None, error_tail="")


class Docker:
    """Answers the docker commands check_image runs, as the daemon would for the images given."""

    def __init__(self, images: dict[str, dict[str, bool]], built: list[str] = ()):
        self.images, self.built = images, list(built)

    def __call__(self, argv, **_):
        if argv[:2] == ["docker", "images"]:
            return subprocess.CompletedProcess(argv, 0, "\n".join(self.built) + "\n", "")
        if argv[:3] == ["docker", "image", "inspect"]:
            return subprocess.CompletedProcess(argv, 0 if argv[3] in self.images else 1, "", "")
        image = argv[argv.index("python3") + 1]
        return subprocess.CompletedProcess(argv, 0, json.dumps(self.images[image]) + "\n", "")


FULL = {"torch": True, "sagemaker_training": True, "smdistributed": False, "train": True}


def test_image_defaults_to_the_newest_built_one():
    docker = Docker({"smlaunch-local-cpu:new": FULL}, built=["smlaunch-local-cpu:new", "smlaunch-local-cpu:old"])
    assert check_image(None, engine="torch", run=docker) == "smlaunch-local-cpu:new"
    with pytest.raises(LocalRunError, match="none was given or built here"):
        check_image(None, engine="torch", run=Docker({}))


def test_image_must_be_here_and_follow_the_training_contract():
    with pytest.raises(LocalRunError, match="image nope:1 is not on this machine"):
        check_image("nope:1", engine="torch", run=Docker({}))
    bare = {**FULL, "train": False, "sagemaker_training": False}
    with pytest.raises(LocalRunError, match="lacks train, sagemaker_training"):
        check_image("bare:1", engine="torch", run=Docker({"bare:1": bare}))


def test_smp_on_an_image_without_smdistributed_names_the_image_and_the_field():
    with pytest.raises(LocalRunError, match="image cpu:1 does not have") as caught:
        check_image("cpu:1", engine="smp", run=Docker({"cpu:1": FULL}))
    assert caught.value.field == "engine"
    assert check_image("smp:1", engine="smp", run=Docker({"smp:1": {**FULL, "smdistributed": True}})) == "smp:1"


def test_ctrl_c_is_remembered_even_when_cleanup_raises_over_it():
    before = signal.getsignal(signal.SIGINT)
    stop = _Interrupt()
    with pytest.raises(RuntimeError), _interrupts(stop):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        finally:
            raise RuntimeError("the SDK's finally gathering artifacts")  # replaces the KeyboardInterrupt
    assert stop.signalled == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def test_signals_wait_while_the_containers_are_removed():
    with _signals_held():
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: the cleanup is not cut short
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_host_rows_show_each_containers_log_and_last_step(tmp_path):
    plan = docker_plan(tmp_path)
    logs = plan.run_dir / "logs"
    logs.mkdir(parents=True)
    (logs / "algo-1.log").write_text("boot\nstep=5 loss=3.5 step_time_s=0.1 tokens_per_s=9\nbye\n")
    (logs / "algo-2.log").write_text("only\n")
    (logs / "compose.log").write_text("Creating\n")
    run = finished(plan)
    assert list(run.host_logs()) == ["algo-1", "algo-2"] and run.log_path == logs
    assert host_rows(run) == [
        ("algo-1", "logs/algo-1.log (3 lines): step=5 loss=3.5 step_time_s=0.1 tokens_per_s=9"),
        ("algo-2", "logs/algo-2.log (1 lines): only"),
    ]


@pytest.mark.parametrize("option", [["--image", "x:1"], ["--hosts", "2"]])
def test_docker_options_need_docker(tmp_path, option):
    job = tmp_path / "job.yaml"
    job.write_text(starter("gpt2-tiny-local"))
    result = CliRunner().invoke(cli, ["local", str(job), *option])
    assert result.exit_code == 2
    assert f"{option[0]} is an option of --docker" in result.output


def test_hosts_zero_is_a_usage_error(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(starter("gpt2-tiny-local"))
    result = CliRunner().invoke(cli, ["local", str(job), "--docker", "--hosts", "0"])
    assert result.exit_code == 2 and "--hosts" in result.output


def test_emulated_run_has_no_host_logs(tmp_path):
    plan = plan_local(tiny(), run_dir=tmp_path / "run", num_gpus=0)
    run = finished(plan)
    assert run.host_logs() == {} and run.log_path == Path(plan.run_dir) / "logs" / "console.log"
