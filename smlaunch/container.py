"""The container a SageMaker training job sees, emulated in a directory: files, ``SM_*`` environment and argv.

``smlaunch local`` lays out ``<run_dir>`` as ``/opt/ml`` and points the entry point at it with
``SAGEMAKER_BASE_DIR`` (sagemaker-contract.md §5-§7)::

    <run_dir>/input/config/hyperparameters.json   every value a JSON-encoded string, as SDK v2 sends it
    <run_dir>/input/config/resourceconfig.json    one host, algo-1 (:func:`resource_config` writes N for Docker)
    <run_dir>/input/config/inputdataconfig.json   one entry per channel (File mode)
    <run_dir>/input/data/<channel>                symlink to the local data
    <run_dir>/code                                copy of the entry points (the toolkit's sourcedir)
    <run_dir>/model  output/  output/data  output/intermediate  checkpoints/

The environment and argv follow sagemaker-training 5.1.4 (``Environment.to_env_vars``, ``mapping.to_cmd_args``):
hyperparameters are JSON-decoded, ``sagemaker_*`` keys split off, every value that is not a string JSON-dumped
with sorted keys and no spaces. ``engine: torch`` is launched as the toolkit's ``TorchDistributedRunner`` launches
it: :func:`torchrun_options` (nnodes, nproc_per_node, and with several hosts master_addr/master_port/node_rank) and
:func:`torch_distributed_environment` (what its ``_setup`` exports). tests/integration/test_local_conformance.py
checks this module against the toolkit itself. Pure except :func:`write_tree` (and :func:`num_gpus`, which asks
nvidia-smi like the toolkit).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smlaunch.request import LaunchRequest

HOST = "algo-1"
GROUP = "homogeneousCluster"
LOG_LEVEL = 20

RESERVED_SAGEMAKER_KEYS = frozenset(
    {
        # params.SAGEMAKER_HYPERPARAMETERS: split off, never in SM_FRAMEWORK_PARAMS
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_region",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "sagemaker_enable_cloudwatch_metrics",
        "default_user_module_name",
        "_tuning_objective_metric",
        "sagemaker_s3_output",
    }
)
DISTRIBUTION_FLAGS = (
    "sagemaker_mpi_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
    "sagemaker_torch_distributed_enabled",
)


@dataclass(frozen=True)
class Container:
    """What one emulated container run is made of: its base directory and the three config files."""

    base_dir: Path
    hyperparameters: dict[str, str]
    resource_config: dict[str, Any]
    input_data_config: dict[str, dict[str, str]]

    def path(self, *parts: str) -> str:
        return str(self.base_dir.joinpath(*parts))


TORCHRUN_MASTER_PORT = "7777"
"""sagemaker_training.torch_distributed.MASTER_PORT (5.1.4)."""
EFA_NCCL_INSTANCES = frozenset(
    # sagemaker_training 5.1.4 SM_EFA_NCCL_INSTANCES: the runner sets FI_PROVIDER=efa on these
    {"ml.g4dn.8xlarge", "ml.g4dn.12xlarge", "ml.g5.48xlarge", "ml.p3dn.24xlarge", "ml.p4d.24xlarge",
     "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.trn1.32xlarge", "ml.p6e-gb200.36xlarge"}
)  # fmt: skip
EFA_RDMA_INSTANCES = frozenset(
    # sagemaker_training 5.1.4 SM_EFA_RDMA_INSTANCES: FI_EFA_USE_DEVICE_RDMA=1 and RDMAV_FORK_SAFE=1 on these
    {"ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.trn1.32xlarge",
     "ml.p6e-gb200.36xlarge"}
)  # fmt: skip


def hyperparameters_json(
    request: LaunchRequest, *, job_name: str, region: str, submit_dir: str, processes_per_host: int
) -> dict[str, str]:
    """hyperparameters.json as SDK v2 writes it: user keys, the distribution's keys (SMP v1: smp-v1.md §4.1;
    torch_distributed: its enabled flag), then the script-mode keys ``_prepare_for_training`` adds; every value
    ``json.dumps``-ed."""
    values: dict[str, Any] = dict(request.hyperparameters)
    if request.engine == "torch":
        values["sagemaker_torch_distributed_enabled"] = True
    else:
        values.update(
            {
                "sagemaker_mpi_enabled": True,
                "sagemaker_mpi_num_of_processes_per_host": processes_per_host,
                "sagemaker_mpi_custom_mpi_options": request.custom_mpi_options,
                "mp_parameters": dict(request.mp_parameters),
                "sagemaker_distributed_dataparallel_enabled": False,
            }
        )
    values.update(
        {
            "sagemaker_instance_type": request.instance_type,
            "sagemaker_submit_directory": submit_dir,
            "sagemaker_program": request.entry_point,
            "sagemaker_container_log_level": LOG_LEVEL,
            "sagemaker_job_name": job_name,
            "sagemaker_region": region,
        }
    )
    return {str(k): json.dumps(v) for k, v in values.items()}


def resource_config(instance_type: str, *, hosts: int = 1, current: int = 0) -> dict[str, Any]:
    """resourceconfig.json of host ``algo-{current + 1}`` of a job on ``hosts`` hosts (algo-1 ... algo-N)."""
    names = [f"algo-{i + 1}" for i in range(hosts)]
    return {
        "current_host": names[current],
        "current_instance_type": instance_type,
        "current_group_name": GROUP,
        "hosts": names,
        "instance_groups": [{"instance_group_name": GROUP, "instance_type": instance_type, "hosts": names}],
        "network_interface_name": "eth0",
    }


def torchrun_options(resources: dict[str, Any], *, processes_per_host: int) -> list[str]:
    """The launcher options ``TorchDistributedRunner._create_command`` puts between ``torchrun`` and the entry
    point: ``--nnodes H --nproc_per_node N``, and with H > 1 ``--master_addr <first host> --master_port 7777
    --node_rank <index of this host>``."""
    hosts = list(resources["hosts"])
    options = ["--nnodes", str(len(hosts)), "--nproc_per_node", str(processes_per_host)]
    if len(hosts) > 1:
        rank = hosts.index(resources["current_host"])
        options += ["--master_addr", hosts[0], "--master_port", TORCHRUN_MASTER_PORT, "--node_rank", str(rank)]
    return options


def torch_distributed_environment(resources: dict[str, Any]) -> dict[str, str]:
    """What ``TorchDistributedRunner._setup`` exports before it starts torchrun: EFA settings by instance type,
    NCCL's socket interface and protocol."""
    instance_type = resources.get("current_instance_type", "local")
    env = {}
    if instance_type in EFA_NCCL_INSTANCES:
        env["FI_PROVIDER"] = "efa"
    if instance_type in EFA_RDMA_INSTANCES:
        env.update({"FI_EFA_USE_DEVICE_RDMA": "1", "RDMAV_FORK_SAFE": "1"})
    env.update({"NCCL_SOCKET_IFNAME": str(resources.get("network_interface_name", "eth0")), "NCCL_PROTO": "simple"})
    return env


def input_data_config(channels: list[str]) -> dict[str, dict[str, str]]:
    """inputdataconfig.json: File mode, fully replicated, one entry per channel."""
    entry = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    return {name: dict(entry) for name in sorted(channels)}


def decode_hyperparameters(encoded: dict[str, str]) -> dict[str, Any]:
    """``read_hyperparameters``: each value JSON-decoded, kept raw when it is not JSON."""
    decoded = {}
    for key, value in encoded.items():
        try:
            decoded[key] = json.loads(value)
        except (ValueError, TypeError):
            decoded[key] = value
    return decoded


def user_args(hyperparameters: dict[str, Any]) -> list[str]:
    """``mapping.to_cmd_args``: sorted ``--key value``; dicts as ``k=v,...``, bools as ``True``/``False``."""
    args = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        if hasattr(value, "items"):
            value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        args += [f"--{key}" if len(str(key)) > 1 else f"-{key}", "" if value is None else str(value)]
    return args


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def training_env(container: Container, *, num_gpus: int, num_cpus: int, job_name: str | None) -> dict[str, Any]:
    """The toolkit's ``Environment`` as a dict (``SM_TRAINING_ENV``), for a one-host, homogeneous job."""
    decoded = decode_hyperparameters(container.hyperparameters)
    sagemaker = {k: v for k, v in decoded.items() if k in RESERVED_SAGEMAKER_KEYS or k.startswith("sagemaker_")}
    hps = {k: v for k, v in decoded.items() if k not in sagemaker}
    framework = {k: v for k, v in sagemaker.items() if k not in RESERVED_SAGEMAKER_KEYS}
    resources = container.resource_config
    groups = resources.get("instance_groups", [])
    distributed = (
        [resources.get("current_group_name", GROUP)] if any(framework.get(f) for f in DISTRIBUTION_FLAGS) else []
    )
    hosts = list(resources["hosts"])
    program = sagemaker.get("sagemaker_program")
    return {
        "additional_framework_parameters": framework,
        "channel_input_dirs": {c: container.path("input", "data", c) for c in container.input_data_config},
        "current_host": resources["current_host"],
        "current_instance_group": resources.get("current_group_name", GROUP),
        "current_instance_group_hosts": next(
            (g["hosts"] for g in groups if g["instance_group_name"] == resources.get("current_group_name")), []
        ),
        "current_instance_type": resources.get("current_instance_type", "local"),
        "distribution_hosts": [h for g in groups if g["instance_group_name"] in distributed for h in g["hosts"]]
        if groups
        else hosts,
        "distribution_instance_groups": distributed,
        "framework_module": None,
        "hosts": hosts,
        "hyperparameters": hps,
        "input_config_dir": container.path("input", "config"),
        "input_data_config": container.input_data_config,
        "input_dir": container.path("input"),
        "instance_groups": [g["instance_group_name"] for g in groups],
        "instance_groups_dict": {g["instance_group_name"]: g for g in groups},
        "is_hetero": len(groups) > 1,
        "is_master": True,
        "is_modelparallel_enabled": None,  # the toolkit reads SM_HP_MP_PARAMETERS before it exports it
        "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": job_name,
        "log_level": sagemaker.get("sagemaker_container_log_level", LOG_LEVEL),
        "master_hostname": hosts[0],
        "model_dir": container.path("model"),
        "module_dir": str(sagemaker.get("sagemaker_submit_directory", container.path("code"))),
        "module_name": program[:-3] if program and program.endswith(".py") else program,
        "network_interface_name": resources.get("network_interface_name", "eth0"),
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "num_neurons": 0,
        "output_data_dir": container.path("output", "data"),
        "output_dir": container.path("output"),
        "output_intermediate_dir": container.path("output", "intermediate"),
        "resource_config": resources,
        "topology": resources.get("topology", []),
        "user_entry_point": program,
    }


def sm_environment(container: Container, *, num_gpus: int, num_cpus: int, job_name: str | None) -> dict[str, str]:
    """Every ``SM_*`` variable ``Environment.to_env_vars`` exports, plus the plain ones the toolkit sets."""
    env = training_env(container, num_gpus=num_gpus, num_cpus=num_cpus, job_name=job_name)
    sagemaker = decode_hyperparameters(container.hyperparameters)
    values: dict[str, Any] = {
        "hosts": env["hosts"],
        "network_interface_name": env["network_interface_name"],
        "hps": env["hyperparameters"],
        "user_entry_point": env["user_entry_point"],
        "framework_params": env["additional_framework_parameters"],
        "resource_config": env["resource_config"],
        "input_data_config": env["input_data_config"],
        "output_data_dir": env["output_data_dir"],
        "channels": sorted(env["channel_input_dirs"]),
        "current_host": env["current_host"],
        "current_instance_type": env["current_instance_type"],
        "current_instance_group": env["current_instance_group"],
        "current_instance_group_hosts": env["current_instance_group_hosts"],
        "instance_groups": env["instance_groups"],
        "instance_groups_dict": env["instance_groups_dict"],
        "distribution_instance_groups": env["distribution_instance_groups"],
        "is_hetero": env["is_hetero"],
        "module_name": env["module_name"],
        "log_level": env["log_level"],
        "framework_module": env["framework_module"],
        "input_dir": env["input_dir"],
        "input_config_dir": env["input_config_dir"],
        "output_dir": env["output_dir"],
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "num_neurons": 0,
        "model_dir": env["model_dir"],
        "module_dir": env["module_dir"],
        "training_env": env,
        "user_args": user_args(env["hyperparameters"]),
        "output_intermediate_dir": env["output_intermediate_dir"],
    }
    if env["topology"]:
        values["topology"] = env["topology"]
    values.update({f"channel_{name}": path for name, path in env["channel_input_dirs"].items()})
    values.update({f"hp_{key}": value for key, value in env["hyperparameters"].items()})
    exported = {f"SM_{key.upper()}": _env_value(value) for key, value in values.items()}
    exported.update(
        {
            "CURRENT_HOST": env["current_host"],
            "SAGEMAKER_JOB_NAME": str(sagemaker.get("sagemaker_job_name", "")),
            "SAGEMAKER_REGION": str(sagemaker.get("sagemaker_region") or ""),
            "SAGEMAKER_BASE_DIR": str(container.base_dir),
        }
    )
    if job_name:
        exported["TRAINING_JOB_NAME"] = job_name
    return exported


def write_tree(container: Container, *, channels: dict[str, Path], code_from: Path) -> None:
    """Create the directories and config files; link each channel to its data; copy the entry points."""
    base = container.base_dir
    for sub in ("input/config", "input/data", "model", "output/data", "output/intermediate", "checkpoints"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    config = base / "input" / "config"
    for name, data in (
        ("hyperparameters.json", container.hyperparameters),
        ("resourceconfig.json", container.resource_config),
        ("inputdataconfig.json", container.input_data_config),
    ):
        (config / name).write_text(json.dumps(data, indent=2) + "\n")
    for channel, source in channels.items():
        link = base / "input" / "data" / channel
        if link.is_symlink() or link.exists():
            link.unlink() if link.is_symlink() else shutil.rmtree(link)
        try:
            link.symlink_to(source.resolve(), target_is_directory=True)
        except OSError:  # no symlinks (some filesystems): copy
            shutil.copytree(source, link)
    code = base / "code"
    if code.exists():
        shutil.rmtree(code)
    shutil.copytree(code_from, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def num_gpus() -> int:
    """GPUs as the toolkit counts them: ``GPU `` lines of ``nvidia-smi --list-gpus`` (0 without nvidia-smi)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def num_cpus() -> int:
    """CPUs as the toolkit counts them (``multiprocessing.cpu_count``)."""
    return os.cpu_count() or 1
