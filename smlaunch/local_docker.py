"""``smlaunch local --docker``: the planned local run in SageMaker's own local mode (SDK v2 ``LocalSession``).

``cluster.instance_count`` containers (``algo-1`` ... ``algo-N``) on one Docker network, started by the SDK's
docker compose file; inside each, the real sagemaker-training toolkit reads ``/opt/ml/input/config`` and launches
the entry point (torchrun for ``engine: torch``, MPI for ``engine: smp``). What differs from a real job is said:

- no AWS: the boto session carries placeholder credentials and a placeholder region, refuses every request it is
  asked to send (:func:`refuse_aws`), and the SDK's telemetry is opted out; channels and outputs are ``file://``;
- the processes per container come from the local plan (``sagemaker_mpi_num_of_processes_per_host``, the toolkit's
  own knob: a CPU container would otherwise start one process);
- the image is one on this machine (``docker/build-local-image.sh`` builds one offline); nothing is pulled.

The containers' output is split by host into ``<run>/logs/<host>.log``; the artifacts the SDK gathers
(``model.tar.gz``, ``output.tar.gz`` under ``<run>/artifacts``) are unpacked into ``<run>/model`` and
``<run>/output`` so that the summary reads them as it reads an emulated run. Containers and the network are
removed on every exit (success, failure, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import contextlib
import gc
import math
import shutil
import signal
import subprocess
import tarfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smlaunch.backends.sagemaker_sdk import SDK_CONFIG, boto, root_logging_kept, sdk
from smlaunch.errors import LocalRunError, SmlaunchError
from smlaunch.local_docker_image import check_image
from smlaunch.local_docker_stream import HostLines
from smlaunch.local_results import LocalRun, _collect
from smlaunch.targets import sagemaker_v2

if TYPE_CHECKING:  # pragma: no cover
    from smlaunch.local import LocalPlan

PLACEHOLDER_REGION = "us-east-1"
"""The region a LocalSession must name; nothing is sent to it."""
PLACEHOLDER_ROLE = "arn:aws:iam::111111111111:role/smlaunch-local"
PLACEHOLDER_KEY = "smlaunch-local-no-aws"
"""The access key and secret the containers see (the SDK copies the session's credentials into them): never the
user's real ones."""
NOT_LOCAL = ("volume_size", "max_run", "subnets", "security_group_ids", "checkpoint_s3_uri", "volume_kms_key",
             "output_kms_key", "use_spot_instances", "max_wait", "framework_version", "py_version")  # fmt: skip
"""Estimator keywords that describe the real cluster, not a local container (the image is given instead)."""


def docker_missing(
    *, which: Callable[[str], str | None] = shutil.which, run: Callable[..., Any] = subprocess.run
) -> str | None:
    """What SageMaker local mode lacks here (the docker CLI, docker compose, a running daemon), or None."""
    if which("docker") is None:
        return "the `docker` CLI is not on PATH"
    if _compose_command(which=which, run=run) is None:
        return "neither `docker compose` (v2 plugin) nor `docker-compose` works"
    try:
        info = run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "`docker info` did not answer"
    if info.returncode != 0:
        return "the Docker daemon is not running (`docker info` fails; start it: dockerd &, or systemctl start docker)"
    return None


def _compose_command(
    *, which: Callable[[str], str | None] = shutil.which, run: Callable[..., Any] = subprocess.run
) -> list[str] | None:
    """The compose command the SDK will use: ``docker compose`` when the plugin answers, else ``docker-compose``."""
    try:
        if run(["docker", "compose", "version"], capture_output=True, timeout=20).returncode == 0:
            return ["docker", "compose"]
    except (OSError, subprocess.SubprocessError):
        pass
    return ["docker-compose"] if which("docker-compose") else None


def resolve_hosts(tp: int, pp: int, hosts: int, *, nproc: int | None, num_gpus: int) -> tuple[int, str, list[str]]:
    """(processes in all, "cpu", notes) for ``hosts`` containers: the fewest processes that fill every host
    evenly and are a multiple of tp x pp (lcm), or ``nproc`` when it is a multiple of both."""
    group = tp * pp
    if nproc is None:
        nproc = math.lcm(group, hosts)
    elif nproc < 1 or nproc % group or nproc % hosts:
        raise LocalRunError(
            f"--nproc {nproc} must be a multiple of tp({tp}) x pp({pp}) = {group} and of the {hosts} hosts",
            fix=f"use --nproc {math.lcm(group, hosts)} (or a multiple of it)",
        )
    notes = [f"{hosts} containers x {nproc // hosts} process(es) (tp x pp = {group})"]
    if num_gpus:
        notes.append("SageMaker local mode runs GPUs in one container only (local_gpu with instance_count > 1 is "
                     "refused by the SDK): the containers run on CPU (gloo)")  # fmt: skip
    return nproc, "cpu", notes


def refuse_aws(event_name: str = "", **_: Any) -> None:
    """A botocore ``before-send`` handler: local mode makes no AWS call, so any request is an error."""
    operation = event_name.removeprefix("before-send.").replace(".", " ") or "a request"
    raise LocalRunError(
        f"smlaunch local --docker makes no AWS calls, but SageMaker local mode tried one: {operation}",
        fix="use an image that is on this machine (docker images), file:// data and outputs, and no s3:// URIs",
    )


def local_session(run_dir: Path, region: str | None) -> Any:
    """A ``LocalSession`` that cannot reach AWS: placeholder credentials and region, every request refused, no
    telemetry, no user SDK config (which could point at S3); its container files go under ``<run>/sagemaker``."""
    boto3, _ = boto()
    sdk()  # quiet: no config INFO lines, no v2 deprecation banner
    from sagemaker.local import LocalSession

    boto_session = boto3.Session(
        aws_access_key_id=PLACEHOLDER_KEY,
        aws_secret_access_key=PLACEHOLDER_KEY,
        region_name=region or PLACEHOLDER_REGION,
    )
    boto_session.events.register("before-send", refuse_aws)
    session = LocalSession(boto_session=boto_session, sagemaker_config=SDK_CONFIG)
    root = run_dir / "sagemaker"
    root.mkdir(parents=True, exist_ok=True)
    session.config = {"local": {"local_code": True, "container_root": str(root)}}
    return session


def estimator_kwargs(plan: LocalPlan, image: str, code: Path) -> dict[str, Any]:
    """``PyTorch(...)`` keywords: the rendered job with the local image, ``local``/``local_gpu``, one container per
    host, the plan's processes per host, the staged code and ``file://`` outputs."""
    kwargs = sagemaker_v2.estimator_kwargs(plan.request)
    for key in NOT_LOCAL:
        kwargs.pop(key, None)
    per_host = plan.nproc // plan.hosts
    hyperparameters = dict(kwargs["hyperparameters"])
    distribution = dict(kwargs.get("distribution") or {})
    if "mpi" in distribution:
        distribution["mpi"] = {**distribution["mpi"], "processes_per_host": per_host}
    else:
        hyperparameters["sagemaker_mpi_num_of_processes_per_host"] = per_host
    kwargs.update(
        image_uri=image,
        instance_type="local_gpu" if plan.device == "cuda" else "local",
        instance_count=plan.hosts,
        role=PLACEHOLDER_ROLE,
        source_dir=str(code),
        hyperparameters=hyperparameters,
        distribution=distribution,
        output_path=f"file://{plan.run_dir / 'artifacts'}",
        tags=None,
    )
    return kwargs


def run_docker(
    plan: LocalPlan,
    *,
    image: str | None = None,
    on_step: Callable[[dict[str, float | int]], None] | None = None,
    on_line: Callable[[str, str], None] | None = None,
    missing: Callable[[], str | None] = docker_missing,
) -> LocalRun:
    """Run ``plan`` in SageMaker local mode; returns when every container has exited and all are removed.

    ``image`` defaults to the newest image ``docker/build-local-image.sh`` built here. ``on_line(host, text)`` sees
    every line of every container; ``missing`` is injectable for tests.
    """
    lack = missing()
    if lack:
        raise LocalRunError(
            f"--docker runs SageMaker local mode, which needs Docker and Docker Compose: {lack}",
            fix="install Docker Engine with compose (apt-get install docker.io docker-compose), or drop --docker "
            "to run under torchrun here",
        )
    image = check_image(image, engine=plan.request.engine)
    code = _stage_code(plan)
    session = local_session(plan.run_dir, plan.request.region)
    with root_logging_kept():
        estimator = sdk().pytorch.PyTorch(**estimator_kwargs(plan, image, code), sagemaker_session=session)
    lines = HostLines(plan.run_dir / "logs", on_step=on_step, on_line=on_line)
    start, returncode, failure, stop = time.monotonic(), 0, None, _Interrupt()
    with _sdk_pipe():  # around the except clauses too: a failure's traceback holds the pipe until it is dropped
        try:
            with lines, _interrupts(stop), contextlib.redirect_stdout(lines), root_logging_kept():
                estimator.fit({c: f"file://{p}" for c, p in plan.channels.items()}, job_name=plan.job_name)
        except KeyboardInterrupt:
            returncode = 130
        except SmlaunchError:
            raise
        except Exception as exc:  # the SDK raises RuntimeError/ValueError/...; its message is what the user needs
            returncode, failure = 1, f"{type(exc).__name__}: {exc}"
        finally:
            with _signals_held():  # a second Ctrl-C must not leave the containers running
                compose_down(plan.run_dir / "sagemaker")
    interrupted = returncode == 130 or stop.signalled is not None
    if interrupted:  # the SDK's own cleanup may raise over the interrupt: the user's Ctrl-C is what happened
        returncode, failure = 130, None
    _unpack_artifacts(plan.run_dir)
    run = _collect(
        plan, returncode, wall_s=time.monotonic() - start, steps=lines.steps, console=lines.console(),
        interrupted=interrupted,
    )  # fmt: skip
    if run.ok or interrupted:
        return run
    reason = lines.failure_line() or run.reason or failure  # the failed host's own exception line first
    return run if reason is None else _with_reason(run, reason)


def _with_reason(run: LocalRun, reason: str) -> LocalRun:
    from dataclasses import replace

    return replace(run, reason=reason)


def _stage_code(plan: LocalPlan) -> Path:
    """``<run>/code``: what the SDK mounts as ``/opt/ml/code`` (the staged own script, or smlaunch's entry points);
    stale outputs of an earlier run in the same directory are removed first."""
    from smlaunch.backends.source import staged_source
    from smlaunch.resources import entrypoints_dir

    for stale in ("code", "model", "output", "artifacts", "sagemaker", "logs"):
        shutil.rmtree(plan.run_dir / stale, ignore_errors=True)
    code = plan.run_dir / "code"
    req = plan.request
    source = req.source_dir if req.own_script else str(entrypoints_dir())
    with staged_source(source, req.entry_point, own=req.own_script) as staged:
        shutil.copytree(staged, code)
    return code


def compose_down(root: Path, *, timeout_s: int = 10) -> None:
    """Stop and remove every container and the network of each compose file under ``root`` (idempotent)."""
    compose = _compose_command() or ["docker-compose"]
    for compose_file in sorted(root.glob("*/docker-compose.yaml")):
        subprocess.run(
            [*compose, "-f", str(compose_file), "down", "--remove-orphans", "--timeout", str(timeout_s)],
            capture_output=True,
            timeout=120 + timeout_s,
            check=False,
        )


def _unpack_artifacts(run_dir: Path) -> None:
    """``artifacts/model.tar.gz`` -> ``model/``, ``artifacts/output.tar.gz`` -> ``output/`` (as the job wrote them)."""
    for name, dest in (("model.tar.gz", "model"), ("output.tar.gz", "output")):
        archive = run_dir / "artifacts" / name
        if archive.is_file():
            (run_dir / dest).mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive) as tar:
                tar.extractall(run_dir / dest, filter="data")


class _Interrupt:
    signalled: int | None = None


@contextlib.contextmanager
def _stop_signals(handler: Any) -> Iterator[None]:
    """``handler`` for Ctrl-C and SIGTERM (a closed terminal's kill, a CI timeout) inside the block; none off the
    main thread, where no handler can be installed."""
    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _interrupts(state: _Interrupt) -> contextlib.AbstractContextManager[None]:
    """Ctrl-C and SIGTERM stop the run, and are remembered in ``state.signalled``: the SDK's ``finally``
    (gathering artifacts from containers still running) may raise over the ``KeyboardInterrupt``, and the run must
    still read as interrupted, with its containers removed."""

    def interrupt(signum: int, frame: Any) -> None:
        state.signalled = signum
        raise KeyboardInterrupt

    return _stop_signals(interrupt)


def _signals_held() -> contextlib.AbstractContextManager[None]:
    """Ctrl-C and SIGTERM wait until the block is done (the cleanup that removes containers is not cut short)."""
    return _stop_signals(signal.SIG_IGN)


@contextlib.contextmanager
def _sdk_pipe() -> Iterator[None]:
    """The SDK never closes the stdout pipe of its ``docker compose up`` process (sagemaker/local/image.py
    ``train``): its ResourceWarning, raised when that process is collected, is the SDK's, not a leak of ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ResourceWarning, message=r"unclosed file <_io\.BufferedReader")
        try:
            yield
        finally:
            gc.collect()  # a failed fit's traceback cycle holds the SDK's process until a collection: do it here
