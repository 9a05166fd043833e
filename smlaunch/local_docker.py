"""``smlaunch local --docker``: SageMaker's own local mode (SDK v2 ``LocalSession``) for a planned local run."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smlaunch.errors import LocalRunError, MissingDependency
from smlaunch.local_results import LocalRun
from smlaunch.targets import sagemaker_v2

if TYPE_CHECKING:  # pragma: no cover
    from smlaunch.local import LocalPlan


def docker_missing(
    *, which: Callable[[str], str | None] = shutil.which, run: Callable[..., Any] = subprocess.run
) -> str | None:
    """What SageMaker local mode lacks here ("docker", "docker compose"), or None when both exist."""
    if which("docker") is None:
        return "the `docker` CLI is not on PATH"
    try:
        if run(["docker", "compose", "version"], capture_output=True, timeout=20).returncode == 0:
            return None
    except (OSError, subprocess.SubprocessError):
        pass
    return None if which("docker-compose") else "neither `docker compose` (v2 plugin) nor `docker-compose` works"


def run_docker(plan: LocalPlan, *, missing: Callable[[], str | None] = docker_missing) -> LocalRun:
    """SageMaker's own local mode (``instance_type="local"``): the DLC image under docker compose.

    Needs Docker, docker compose, AWS credentials and network access to pull the image from ECR; SMP v1 itself
    does not run there (no smdistributed binary on CPU images, one GPU host at most), so this is a container
    smoke test. ``missing`` is injectable for tests.
    """
    lack = missing()
    if lack:
        raise LocalRunError(
            f"--docker runs SageMaker local mode, which needs Docker and Docker Compose: {lack}",
            fix="install Docker Engine with the compose plugin, or drop --docker to run under torchrun here",
        )
    try:
        from sagemaker.local import LocalSession
        from sagemaker.pytorch import PyTorch
    except ImportError as exc:
        raise MissingDependency("--docker needs the SageMaker SDK", fix="pip install 'smlaunch[sagemaker]'") from exc
    session = LocalSession()
    session.config = {"local": {"local_code": True, "container_root": str(plan.run_dir)}}
    kwargs = sagemaker_v2.estimator_kwargs(plan.request)
    kwargs.update(
        instance_type="local_gpu" if plan.device == "cuda" else "local",
        instance_count=1,
        role=kwargs.get("role") or "arn:aws:iam::111111111111:role/smlaunch-local",
    )
    for key in ("volume_size", "max_run", "subnets", "security_group_ids", "output_path", "checkpoint_s3_uri"):
        kwargs.pop(key, None)
    estimator = PyTorch(**kwargs, sagemaker_session=session)
    start = time.monotonic()
    returncode = 0
    try:
        estimator.fit({c: f"file://{p}" for c, p in plan.channels.items()}, job_name=plan.job_name)
    except Exception as exc:  # the SDK raises many types; the message is what the user needs
        returncode, failure = 1, f"{type(exc).__name__}: {exc}"
    else:
        failure = None
    return LocalRun(
        plan=plan,
        returncode=returncode,
        wall_s=time.monotonic() - start,
        steps=[],
        metrics=None,
        failure=failure,
        failed_rank=None,
        error_tail="",
    )
