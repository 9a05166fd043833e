"""Render a spec into a target-neutral :class:`LaunchRequest`: what to run, not how an SDK spells it.

Pure and deterministic: nothing here touches the environment, the network, stdout or the SDK. Each value
that both SMP and the entry point need is written once in the spec and rendered to both places: the SMP
``parameters`` (:meth:`SmpSpec.to_mp_parameters`) and the entry point's hyperparameters
(docs/entrypoint-contract.md), booleans as 0/1 because the SageMaker toolkit would pass Python bools as
``True``/``False`` strings. A target adapter (:mod:`smlaunch.targets`) turns the request into one SDK's call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from smlaunch.catalog import peak_tflops
from smlaunch.errors import RenderError
from smlaunch.spec.models import JobSpec

ENTRY_POINT = "train_gpt2.py"

FINGERPRINT_TAG = "smlaunch:fingerprint"
"""The tag every submitted job carries: the request it was created from (:meth:`LaunchRequest.fingerprint`)."""
METRIC_NAMES = ("loss", "step_time_s", "tokens_per_s", "mfu", "mem_gib")
"""Fields of the entry point's per-step log line (docs/entrypoint-contract.md): ``step=.. loss=.. ...``."""


@dataclass(frozen=True, kw_only=True)
class LaunchRequest:
    """Everything needed to launch the job, independent of the SDK (target) that will launch it."""

    name: str
    """The job's name in the spec (job names add a timestamp and :meth:`fingerprint`)."""
    engine: str = "smp"
    """The training engine (:mod:`smlaunch.engines`): ``smp`` (SMP v1, ``smdistributed.modelparallel`` under MPI)
    or ``torch`` (the PyTorch-native entry point under torchrun)."""

    # the program: entry point, its arguments, the engine's parameters
    entry_point: str
    source_dir: str
    hyperparameters: dict[str, Any]
    """The entry point's arguments, sorted by name, booleans as 0/1 (:mod:`smlaunch.arguments`)."""
    mp_parameters: dict[str, Any]
    """The SMP (model-parallel) parameters; empty for ``engine: torch``."""
    processes_per_host: int
    custom_mpi_options: str

    # data and outputs
    inputs: dict[str, str]
    """Data channels: name -> URI, sorted by name."""
    output_path: str | None
    checkpoint_s3_uri: str | None

    # resources
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_run_s: int
    use_spot_instances: bool
    max_wait_s: int | None

    # image, identity, environment
    framework_version: str
    py_version: str
    image_uri: str | None
    role: str | None
    region: str | None
    environment: dict[str, str]
    tags: dict[str, str]
    """Resource tags: key -> value, sorted by key."""

    # network and encryption
    subnets: list[str]
    security_group_ids: list[str]
    volume_kms_key: str | None
    output_kms_key: str | None
    enable_network_isolation: bool
    encrypt_inter_container_traffic: bool

    own_script: bool = False
    """True for the spec's ``entry_point:`` (its ``source_dir`` is uploaded whole, less :mod:`smlaunch.source_tree`'s
    exclusions); False for smlaunch's own entry points."""
    arguments: str = "smlaunch"
    """How the spec's values are named for the script: ``smlaunch``, ``aws-smp-gpt2`` or ``mapping``."""

    extra_target_kwargs: dict[str, Any] = field(default_factory=dict)
    """The user's ``sagemaker.extra_estimator_kwargs``: passed to the target's call as they are."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able) of the whole request."""
        return asdict(self)

    def fingerprint(self) -> str:
        """A short stable hash of the request (job names; idempotent retries)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def hyperparameters(spec: JobSpec) -> dict[str, Any]:
    """The entry point's hyperparameters (docs/entrypoint-contract.md), booleans as 0/1, sorted by key."""
    smp, training, model = spec.smp, spec.training, spec.model
    strategy = training.activation_checkpointing
    values: dict[str, Any] = {
        "engine": spec.engine,
        "num_layers": model.num_layers,
        "hidden_width": model.hidden_width,
        "num_heads": model.num_heads,
        "seq_length": model.seq_length,
        "vocab_size": model.vocab_size,
        "batch_size": training.batch_size,
        "max_steps": training.max_steps,
        "lr": training.lr,
        "min_lr": training.min_lr,
        "warmup_steps": training.warmup_steps,
        "weight_decay": training.weight_decay,
        "grad_clip": training.grad_clip,
        "seed": training.seed,
        "activation_checkpointing": strategy != "none",
        "activation_strategy": "each" if strategy == "none" else strategy,
        "checkpoint_every_steps": training.checkpoint_every_steps,
        "final_save": training.final_save,
        "gpu_peak_tflops": peak_tflops(spec.cluster.instance_type, _precision(smp)) or 0.0,
        "synthetic": "train" not in spec.data,
        "tensor_parallel_degree": smp.tensor_parallel_degree,
        "pipeline_parallel_degree": smp.pipeline_parallel_degree,
        "microbatches": smp.microbatches,
        "active_microbatches": smp.resolved_active_microbatches,
        "prescaled_batch": smp.prescaled_batch,
        "shard_optimizer_state": smp.shard_optimizer_state,
        "offload_activations": smp.offload_activations,
        "activation_loading_horizon": smp.activation_loading_horizon,
        "optimize": smp.optimize,
        "pipeline": smp.pipeline,
        "placement_strategy": smp.placement_strategy,
        "ddp": smp.ddp,
        "fp16": smp.fp16,
        "bf16": smp.bf16,
        "delayed_parameter_initialization": smp.delayed_parameter_initialization,
        "sharded_data_parallel_degree": smp.sharded_data_parallel_degree,
    }
    return {k: int(v) if isinstance(v, bool) else v for k, v in sorted(values.items())}


def _precision(smp) -> str:
    return "fp16" if smp.fp16 else ("bf16" if smp.bf16 else "fp32")


def render(spec: JobSpec) -> LaunchRequest:
    """Render ``spec`` into the :class:`LaunchRequest` that ``submit`` and ``local`` both launch.

    ``sagemaker.extra_estimator_kwargs`` may not set what smlaunch renders itself (the SDK v2 target's
    ``OWNED_KEYS``, the table rule JOB007 reads too).

    >>> request = render(load_spec("templates/gpt2-30b.yaml"))  # doctest: +SKIP
    >>> request.mp_parameters["partitions"]  # doctest: +SKIP
    1
    """
    from smlaunch import arguments
    from smlaunch.resources import entrypoints_dir
    from smlaunch.script_check import source_dir
    from smlaunch.targets import sagemaker_v2

    cluster, sm = spec.cluster, spec.sagemaker
    processes = cluster.gpus_per_host
    if processes is None:
        raise RenderError(
            f"cluster.instance_type {cluster.instance_type!r} is not in smlaunch's catalog, "
            "so its GPU count is unknown",
            field="cluster.processes_per_host",
            fix="set cluster.processes_per_host, or use a catalog instance type (see `smlaunch validate`)",
        )
    sagemaker_v2.refuse_owned_keys(sm.extra_estimator_kwargs)
    max_wait = None
    if cluster.spot.enabled:
        max_wait = int((cluster.spot.max_wait_hours or cluster.max_run_hours + 24) * 3600)
    own = spec.entry_point
    return LaunchRequest(
        name=spec.name,
        engine=spec.engine,
        entry_point=own.script if own else ENTRY_POINT,
        source_dir=str(source_dir(spec) if own else entrypoints_dir()),
        hyperparameters=arguments.arguments(spec),
        own_script=own is not None,
        arguments=arguments.style(spec),
        mp_parameters=spec.smp.to_mp_parameters() if spec.engine == "smp" else {},
        processes_per_host=processes,
        custom_mpi_options=sm.custom_mpi_options,
        instance_type=cluster.instance_type,
        instance_count=cluster.instance_count,
        volume_size_gb=cluster.volume_size_gb,
        max_run_s=int(cluster.max_run_hours * 3600),
        use_spot_instances=cluster.spot.enabled,
        max_wait_s=max_wait,
        framework_version=sm.framework_version,
        py_version=sm.py_version,
        image_uri=sm.image_uri,
        role=sm.role,
        region=sm.region,
        inputs=dict(sorted(spec.data.items())),
        output_path=spec.output.s3_path,
        checkpoint_s3_uri=spec.output.checkpoint_s3_uri,
        environment=dict(sorted(sm.environment.items())),
        tags=dict(sorted(sm.tags.items())),
        subnets=list(sm.subnets),
        security_group_ids=list(sm.security_group_ids),
        volume_kms_key=sm.volume_kms_key,
        output_kms_key=sm.output_kms_key,
        enable_network_isolation=sm.enable_network_isolation,
        encrypt_inter_container_traffic=sm.encrypt_inter_container_traffic,
        extra_target_kwargs=dict(sorted(sm.extra_estimator_kwargs.items())),
    )
