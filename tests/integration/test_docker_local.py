# ruff: noqa: F811  (pytest fixtures imported by name and used as arguments)
"""`smlaunch local --docker` for real: SageMaker local mode (SDK v2 ``LocalSession``) starts one container per host
from the image docker/build-local-image.sh built offline; inside each, the real sagemaker-training toolkit
launches the entry point with torchrun (``engine: torch``).

Needs a Docker daemon, docker compose and the image: without them these tests skip, unless
``SMLAUNCH_REQUIRE_DOCKER=1`` (set by .ci/run, which installs and starts all three), when they fail.
``SMLAUNCH_TEST_IMAGE`` names the image, else the newest one the build script made. About 2 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from smlaunch.cli import cli
from smlaunch.local_docker import PLACEHOLDER_KEY, docker_missing
from smlaunch.local_docker_image import newest_built_image
from smlaunch.templates import starter
from tests.integration.aws_fixtures import no_network  # noqa: F401

pytestmark = pytest.mark.integration
FAKE_KEY = "AKIAFAKEUSERKEY00001"
"""The user's (fake) access key in the test's environment: no file of the run may hold it."""
FAKE_SECRET = "fake-user-secret-never-in-a-container"
TWO_HOSTS = ["--set", "engine=torch", "--set", "cluster.instance_count=2", "--set",
             "cluster.instance_type=ml.g5.12xlarge"]  # fmt: skip


def _unavailable(reason: str):
    if os.environ.get("SMLAUNCH_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SMLAUNCH_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image() -> str:
    lack = docker_missing()
    if lack:
        _unavailable(f"SageMaker local mode cannot run here: {lack}")
    found = os.environ.get("SMLAUNCH_TEST_IMAGE") or newest_built_image()
    if not found:
        _unavailable("no image: run docker/build-local-image.sh (it prints the tag)")
    return found


def docker_objects() -> set[str]:
    """Every container (running or not) and every network on this daemon."""
    containers = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True, check=True)
    networks = subprocess.run(["docker", "network", "ls", "-q", "--no-trunc"], capture_output=True, text=True,
                              check=True)  # fmt: skip
    return {*containers.stdout.split(), *networks.stdout.split()}


@pytest.fixture
def job(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "job.yaml"
    path.write_text(starter("gpt2-tiny-local"))
    return path


def files_holding(root: Path, *needles: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and any(n.encode() in path.read_bytes() for n in needles):
            found.append(str(path.relative_to(root)))
    return found


def test_two_containers_train_the_torch_engine_with_no_aws(image, job, tmp_path, no_network):
    before = docker_objects()
    run_dir = tmp_path / "run"
    args = ["local", str(job), *TWO_HOSTS, "--set", "training.final_save=true", "--docker", "--image", image,
            "--steps", "12", "--run-dir", str(run_dir)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "4 process(es) in 2 containers on CPU = tp 2 x pp 2 x dp 1" in out
    metrics = json.loads((run_dir / "output" / "data" / "metrics.json").read_text())
    assert metrics["world_size"] == 4 and metrics["layout"] == {"tp": 2, "pp": 2, "dp": 1}
    assert metrics["steps"] == 12 and metrics["last_loss"] < metrics["first_loss"]
    emulated = CliRunner().invoke(cli, [*args[: args.index("--docker")], "--steps", "12", "--run-dir",
                                        str(tmp_path / "emulated")])  # fmt: skip
    assert emulated.exit_code == 0, emulated.output
    same = json.loads((tmp_path / "emulated" / "output" / "data" / "metrics.json").read_text())
    assert metrics["losses"] == pytest.approx(same["losses"], abs=1e-4)  # the same layout, in containers
    assert any((run_dir / "model").rglob("*")), "final_save wrote no model artifact"
    for host in ("algo-1", "algo-2"):
        log = (run_dir / "logs" / f"{host}.log").read_text()
        assert "torchrun" in log or "torch.distributed.run" in log, log[-2000:]
        assert f"logs/{host}.log (" in out
    assert "step=12 " in (run_dir / "logs" / "algo-1.log").read_text()
    assert files_holding(run_dir, FAKE_KEY, FAKE_SECRET) == []  # the containers saw placeholders only
    assert files_holding(run_dir / "sagemaker", PLACEHOLDER_KEY)  # ... which the SDK did copy in
    assert docker_objects() == before


def test_a_failing_host_is_named_and_nothing_is_left(image, job, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "fail.py").write_text(
        "import os, time\n"
        "if os.environ['SM_CURRENT_HOST'].startswith('algo-2'):  # local mode: algo-2-<suffix>\n"
        "    raise RuntimeError('boom on the second host')\n"
        "time.sleep(60)\n"
    )
    spec = yaml.safe_load(job.read_text())
    spec["entry_point"] = {"script": "fail.py", "source_dir": str(src)}
    job.write_text(yaml.safe_dump(spec))
    before = docker_objects()
    result = CliRunner().invoke(cli, ["local", str(job), *TWO_HOSTS, "--docker", "--image", image, "--steps", "2",
                                      "--run-dir", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "rank 2 failed: algo-2: RuntimeError: boom on the second host" in str(result.exception)
    assert "algo-1: logs/algo-1.log (" in result.output and "algo-2: logs/algo-2.log (" in result.output
    assert docker_objects() == before


def test_smp_on_the_cpu_image_is_refused_naming_the_image(image, job, tmp_path):
    before = docker_objects()
    result = CliRunner().invoke(cli, ["local", str(job), "--docker", "--image", image, "--run-dir",
                                      str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 1, result.output
    message = str(result.exception)
    assert f"engine: smp needs smdistributed.modelparallel, which image {image} does not have" in message
    assert "--set engine=torch" in message and result.exception.field == "engine"
    assert docker_objects() == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_stops_and_removes_the_containers(image, job, tmp_path, sig):
    before = docker_objects()
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smlaunch", "local", str(job), *TWO_HOSTS, "--docker", "--image", image,
         "--steps", "2000", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = run_dir / "logs" / "algo-1.log"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not (log.is_file() and "step=2 " in log.read_text()):
        time.sleep(0.5)
    assert log.is_file() and "step=2 " in log.read_text(), "no step within 180 s"
    assert len(docker_objects() - before) >= 3  # two containers and their network
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "local run interrupted (exit 130)" in stderr
    assert docker_objects() == before
