"""Which image ``smlaunch local --docker`` runs, and whether it can run the job, asked before any container starts.

Nothing is pulled (no registry, no ECR login: local mode here makes no AWS call), so the image must be on this
machine: ``--image`` names it, else the newest image ``docker/build-local-image.sh`` built (label
``org.smlaunch.inputs``). One short ``docker run`` reads what the image has: the ``train`` entry SageMaker
starts, torch, and smdistributed (``engine: smp`` needs it; only SageMaker's SMP GPU images carry it).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from smlaunch.errors import LocalRunError

BUILD_SCRIPT = "docker/build-local-image.sh"
BUILT_LABEL = "org.smlaunch.inputs"
_PROBE = (
    "import importlib.util as u, json, shutil; "
    "print(json.dumps({m: u.find_spec(m) is not None for m in ('torch', 'sagemaker_training', 'smdistributed')}"
    " | {'train': shutil.which('train') is not None}))"
)


def newest_built_image(*, run: Callable[..., Any] = subprocess.run) -> str | None:
    """The newest image built by the build script (``docker images`` lists newest first), or None."""
    listing = run(
        ["docker", "images", "--filter", f"label={BUILT_LABEL}", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    tags = [line for line in listing.stdout.split() if not line.endswith(":<none>")]
    return tags[0] if listing.returncode == 0 and tags else None


def probe(image: str, *, run: Callable[..., Any] = subprocess.run) -> dict[str, bool] | None:
    """What ``image`` has (torch, sagemaker_training, smdistributed, train), or None when it is not here."""
    if run(["docker", "image", "inspect", image], capture_output=True, timeout=60, check=False).returncode:
        return None
    proc = run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"torch": False, "sagemaker_training": False, "smdistributed": False, "train": False}
    return {key: bool(found.get(key)) for key in ("torch", "sagemaker_training", "smdistributed", "train")}


def check_image(image: str | None, *, engine: str, run: Callable[..., Any] = subprocess.run) -> str:
    """The image to run: ``image`` or the newest built one, checked to carry what ``engine`` needs."""
    if image is None:
        image = newest_built_image(run=run)
        if image is None:
            raise LocalRunError(
                "--docker needs a SageMaker training image on this machine, and none was given or built here",
                fix=f"build one offline with {BUILD_SCRIPT} (it prints the tag), or pass --image with a PyTorch "
                "training image you have pulled (README: 'Docker local mode')",
            )
    found = probe(image, run=run)
    if found is None:
        raise LocalRunError(
            f"image {image} is not on this machine, and smlaunch local --docker pulls nothing (no registry, no "
            "ECR login)",
            fix=f"build one with {BUILD_SCRIPT}, or pull it first (ECR: aws ecr get-login-password | docker login "
            "...; docker pull IMAGE)",
        )
    lacking = [name for name in ("train", "sagemaker_training", "torch") if not found[name]]
    if lacking:
        raise LocalRunError(
            f"image {image} does not follow SageMaker's training contract: it lacks {', '.join(lacking)}",
            fix=f"use a SageMaker PyTorch training image, or one built by {BUILD_SCRIPT}",
        )
    if engine == "smp" and not found["smdistributed"]:
        raise LocalRunError(
            f"engine: smp needs smdistributed.modelparallel, which image {image} does not have (only SageMaker's "
            "SMP v1 GPU images carry it)",
            field="engine",
            fix="set engine: torch (--set engine=torch) to run this layout with the PyTorch-native engine, or drop "
            "--docker to rehearse the SMP path under torchrun here",
        )
    return image
