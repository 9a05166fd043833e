"""The SageMaker SDK v2 target: a :class:`~smlaunch.request.LaunchRequest` as ``sagemaker.pytorch.PyTorch``
keyword arguments (SMP v1 through ``distribution``) and the arguments of its ``fit()``.

Pure: no SDK import. The SageMaker backend builds ``PyTorch(**estimator_kwargs(request), sagemaker_session=...)``,
``smlaunch render`` prints :func:`call`, and the recording backend records it.
"""

from __future__ import annotations

from typing import Any

from smlaunch.errors import RenderError
from smlaunch.request import METRIC_NAMES, LaunchRequest

name = "sagemaker-v2"

OWNED_KEYS: dict[str, str] = {
    # PyTorch estimator keyword -> where the job.yaml sets it instead (`backticks`: a spec field).
    "entry_point": "`entry_point.script`",
    "source_dir": "`entry_point.source_dir`",
    "dependencies": "`entry_point.source_dir` (uploaded whole)",
    "distribution": "`engine:` and `smp:`",
    "hyperparameters": "`training:`, `model:` and `entry_point.hyperparameters`",
    "instance_type": "`cluster.instance_type`",
    "instance_count": "`cluster.instance_count`",
    "instance_groups": "`cluster:`",
    "volume_size": "`cluster.volume_size_gb`",
    "max_run": "`cluster.max_run_hours`",
    "use_spot_instances": "`cluster.spot.enabled`",
    "max_wait": "`cluster.spot.max_wait_hours`",
    "role": "`sagemaker.role`",
    "sagemaker_session": "`sagemaker.region`",
    "framework_version": "`sagemaker.framework_version`",
    "py_version": "`sagemaker.py_version`",
    "image_uri": "`sagemaker.image_uri`",
    "environment": "`sagemaker.environment`",
    "tags": "`sagemaker.tags`",
    "subnets": "`sagemaker.subnets`",
    "security_group_ids": "`sagemaker.security_group_ids`",
    "volume_kms_key": "`sagemaker.volume_kms_key`",
    "output_kms_key": "`sagemaker.output_kms_key`",
    "enable_network_isolation": "`sagemaker.enable_network_isolation`",
    "encrypt_inter_container_traffic": "`sagemaker.encrypt_inter_container_traffic`",
    "output_path": "`output.s3_path`",
    "checkpoint_s3_uri": "`output.checkpoint_s3_uri`",
    "checkpoint_local_path": "smlaunch (/opt/ml/checkpoints, the entry point's contract)",
    "base_job_name": "`name`",
    "metric_definitions": "smlaunch (metrics parsed from the entry point's step line)",
    "debugger_hook_config": "smlaunch (off, as AWS's SMP notebooks do)",
    "disable_profiler": "smlaunch (off, as AWS's SMP notebooks do)",
}

METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"Name": "train:step", "Regex": r"step=([0-9]+) "},
    *({"Name": f"train:{metric}", "Regex": rf"{metric}=([0-9.eE+-]+)"} for metric in METRIC_NAMES),
)
"""SageMaker metrics from the entry point's per-step log line (docs/entrypoint-contract.md)."""

NUMBER = "([0-9.eE+-]+)"
SCRIPT_METRICS: dict[str, tuple[dict[str, str], ...]] = {
    # entry_point.arguments -> the metrics of that script's log; an explicit mapping's script is unknown: none
    "smlaunch": METRIC_DEFINITIONS,
    # train_gpt_simple.py, rank 0 every logging_freq steps:
    # "(12s), Batch 9 Loss: 7.1, Speed: 3.2 samples/sec, TFLOPS/GPU: 101.5"
    "aws-smp-gpt2": (
        {"Name": "train:step", "Regex": r"Batch ([0-9]+) Loss"},
        {"Name": "train:loss", "Regex": rf"Loss: {NUMBER},"},
        {"Name": "train:samples_per_s", "Regex": rf"Speed: {NUMBER} samples/sec"},
        {"Name": "train:tflops_per_gpu", "Regex": rf"TFLOPS/GPU: {NUMBER}"},
    ),
    "mapping": (),
}

ENGINES = ("smp", "torch")
"""Engines this target can launch: SMP v1 (``smdistributed.modelparallel`` under MPI) and the PyTorch-native
engine (the toolkit's TorchDistributedRunner: torchrun)."""


def owned_key_hint(key: str) -> str:
    """Where the user sets owned ``key`` instead: "set it under `cluster.max_run_hours`" or "it comes from ..."."""
    where = OWNED_KEYS[key]
    return f"set it under {where}" if where.startswith("`") else f"it comes from {where}"


def refuse_owned_keys(extra: dict[str, Any]) -> None:
    """Raise :class:`RenderError` for the first (sorted) key of ``extra`` that smlaunch renders itself."""
    for key in sorted(extra):
        if key in OWNED_KEYS:
            hint = owned_key_hint(key)
            raise RenderError(
                f"sagemaker.extra_estimator_kwargs.{key}: `{key}` is controlled by smlaunch ({hint})",
                field=f"sagemaker.extra_estimator_kwargs.{key}",
                fix=f"remove sagemaker.extra_estimator_kwargs.{key}; {hint}",
            )


def distribution(request: LaunchRequest) -> dict[str, Any]:
    """The estimator's ``distribution``: for SMP v1 modelparallel with its parameters plus the MPI launcher; for
    the torch engine torchrun (``torch_distributed``), one process per GPU, no ``mpi`` or ``smdistributed``."""
    if request.engine == "torch":
        return {"torch_distributed": {"enabled": True}}
    return {
        "smdistributed": {"modelparallel": {"enabled": True, "parameters": dict(request.mp_parameters)}},
        "mpi": {
            "enabled": True,
            "processes_per_host": request.processes_per_host,
            "custom_mpi_options": request.custom_mpi_options,
        },
    }


def estimator_kwargs(request: LaunchRequest) -> dict[str, Any]:
    """Keyword arguments of ``sagemaker.pytorch.PyTorch`` (SDK v2) for ``request``, without the session."""
    _check_engine(request)
    refuse_owned_keys(request.extra_target_kwargs)
    return {
        **_job_kwargs(request),
        **_image_kwargs(request),
        **_spot_kwargs(request),
        **_optional_kwargs(request),
        **request.extra_target_kwargs,
    }


def fit_kwargs(request: LaunchRequest, *, job_name: str | None = None) -> dict[str, Any]:
    """Keyword arguments of ``PyTorch.fit()``: the data channels (and the job name, when one is given)."""
    kwargs: dict[str, Any] = {"inputs": dict(request.inputs)}
    if job_name is not None:
        kwargs["job_name"] = job_name
    return kwargs


def call(request: LaunchRequest, *, job_name: str | None = None) -> dict[str, Any]:
    """The whole SDK v2 call as plain data: ``{"estimator": PyTorch kwargs, "fit": fit() kwargs}``."""
    return {"estimator": estimator_kwargs(request), "fit": fit_kwargs(request, job_name=job_name)}


def _check_engine(request: LaunchRequest) -> None:
    if request.engine not in ENGINES:
        raise RenderError(
            f"the {name} target launches engine {' or '.join(ENGINES)}, not {request.engine!r}",
            fix="launch this request with a target that supports its engine",
        )


def _job_kwargs(request: LaunchRequest) -> dict[str, Any]:
    """The keywords every job has: code, arguments, SMP, resources, role, environment, tags, network flags."""
    return {
        "entry_point": request.entry_point,
        "source_dir": request.source_dir,
        "role": request.role,
        "instance_type": request.instance_type,
        "instance_count": request.instance_count,
        "volume_size": request.volume_size_gb,
        "max_run": request.max_run_s,
        "hyperparameters": dict(request.hyperparameters),
        "distribution": distribution(request),
        "metric_definitions": [dict(m) for m in SCRIPT_METRICS[request.arguments]],
        "debugger_hook_config": False,
        "disable_profiler": True,
        "environment": dict(request.environment),
        "tags": [{"Key": key, "Value": value} for key, value in request.tags.items()],
        "enable_network_isolation": request.enable_network_isolation,
        "encrypt_inter_container_traffic": request.encrypt_inter_container_traffic,
    }


def _image_kwargs(request: LaunchRequest) -> dict[str, Any]:
    """``image_uri`` when the spec pins one; else the framework and Python versions the SDK resolves."""
    if request.image_uri:
        return {"image_uri": request.image_uri}
    return {"framework_version": request.framework_version, "py_version": request.py_version}


def _spot_kwargs(request: LaunchRequest) -> dict[str, Any]:
    """Managed spot training and its wait limit, only when spot is on."""
    if not request.use_spot_instances:
        return {}
    return {"use_spot_instances": True, "max_wait": request.max_wait_s}


def _optional_kwargs(request: LaunchRequest) -> dict[str, Any]:
    """Output, checkpoint, VPC and KMS keywords, only those that are set."""
    optional = {
        "output_path": request.output_path,
        "checkpoint_s3_uri": request.checkpoint_s3_uri,
        "subnets": list(request.subnets) or None,
        "security_group_ids": list(request.security_group_ids) or None,
        "volume_kms_key": request.volume_kms_key,
        "output_kms_key": request.output_kms_key,
    }
    return {key: value for key, value in optional.items() if value is not None}
