"""The two training engines behind one spec: what each launches with, which images and instances it runs on,
and which ``smp:`` knobs mean something to it. Pure data, cheap to import.

``engine: smp`` (the default) is SMP v1: ``smdistributed.modelparallel`` under MPI, PyTorch <= 2.0 DLCs, p3/p4d.
``engine: torch`` is the PyTorch-native entry point (entrypoints/parallelize.py: tensor and sequence parallelism,
``torch.distributed.pipelining``, FSDP2, DCP checkpoints) launched by the SageMaker toolkit's
``TorchDistributedRunner`` (torchrun) from SDK v2's ``distribution={"torch_distributed": {"enabled": True}}``.
Both read the same layout names (:mod:`smlaunch.layout`); the knobs in :data:`SMP_ONLY_KNOBS` have no native
meaning and are reported (ENG001) when a file sets them under ``engine: torch``.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("smp", "torch")
"""The values of the spec's top-level ``engine`` key."""
DEFAULT_ENGINE = "smp"

FRAMEWORK_ALIASES: dict[str, str] = {
    # The SDK's own short names for PyTorch training images: sagemaker-python-sdk (2.257.7)
    # src/sagemaker/image_uri_config/pytorch.json, "training" -> "version_aliases" (image_uris._version_for_config
    # resolves them). AWS's GPT-2 notebook passes "1.12", i.e. 1.12.1. "2.0" is 2.0.1, which has no SMP v1 DLC.
    "0.4": "0.4.0", "1.0": "1.0.0", "1.1": "1.1.0", "1.2": "1.2.0", "1.3": "1.3.1", "1.4": "1.4.0",
    "1.5": "1.5.0", "1.6": "1.6.0", "1.7": "1.7.1", "1.8": "1.8.1", "1.9": "1.9.1", "1.10": "1.10.2",
    "1.11": "1.11.0", "1.12": "1.12.1", "1.13": "1.13.1", "2.0": "2.0.1", "2.1": "2.1.0", "2.2": "2.2.0",
    "2.3": "2.3.0", "2.4": "2.4.0", "2.5": "2.5.1", "2.6": "2.6.0", "2.7": "2.7.1", "2.8": "2.8.0",
}  # fmt: skip


def full_framework_version(version: str) -> str:
    """``1.12`` -> ``1.12.1``: the full PyTorch version the SDK picks for an alias; other values unchanged."""
    return FRAMEWORK_ALIASES.get(version.strip(), version.strip())


TORCH_DISTRIBUTED_GPU_FRAMEWORKS: dict[str, str | None] = {
    # sagemaker-python-sdk 2.257.7: src/sagemaker/fw_utils.py TORCH_DISTRIBUTED_GPU_SUPPORTED_FRAMEWORK_VERSIONS
    # (the SDK's torch_distributed validation for GPU instances), each with the py_version of its training image
    # (src/sagemaker/image_uri_config/pytorch.json, "training"). None: the SDK lists the version but has no training
    # image entry for it. tests/unit/test_engines.py compares this with the installed SDK.
    "1.13.1": "py39",
    "2.0.0": "py310",
    "2.0.1": "py310",
    "2.1.0": "py310",
    "2.1.2": None,
    "2.2.0": "py310",
    "2.3.0": "py311",
    "2.3.1": None,
    "2.4.1": None,
    "2.5.1": "py311",
    "2.6.0": "py312",
    "2.7.1": "py312",
    "2.8.0": "py312",
}

TORCH_OLDEST = "2.8.0"
"""The oldest torch_distributed GPU image the native entry point runs on. The CPU parallel tests
(tests/integration/test_native_parallel.py) pass under torch 2.8.0; under 2.7.1 the 1F1B pipeline schedule
(``pipeline: interleaved``) hangs, and under 2.6.0 pipeline stages with tensor parallelism fail in backward
(benchmarks/results.md, "Oldest PyTorch for engine: torch")."""
TORCH_TOO_OLD_REASON = (
    "the native entry point needs PyTorch >= 2.8: under 2.7.1 its 1F1B pipeline schedule (pipeline: interleaved) "
    "hangs, and under 2.6.0 pipeline stages with tensor parallelism fail in backward (`detach_()` of a view)"
)
TORCH_DEFAULT = "2.8.0"
"""The newest torch_distributed GPU image the SDK supports; the ``engine: torch`` default."""

SMP_DEFAULT = ("1.13.1", "py39")
"""SMP v1's default image: the newest DLC with smdistributed-modelparallel 1.15 that every feature works on."""

TORCH_FAMILIES = ("ml.p5.", "ml.p5e.", "ml.p5en.", "ml.p4d.", "ml.p4de.", "ml.g5.", "ml.g6.")
"""Instance families the torch engine runs on: H100/H200 (p5, p5e, p5en), A100 (p4d, p4de), A10G (g5), L4 (g6)."""

SMP_ONLY_KNOBS: dict[str, str] = {
    # smp.<field> -> why the native entry point has no use for it (entrypoints/parallelize.py, train_gpt2.py).
    "ddp": "the native engine always averages gradients over the data-parallel ranks (no smp.DistributedModel)",
    "ddp_port": "torchrun's rendezvous chooses the ports",
    "ddp_dist_backend": "the native engine uses NCCL on GPUs (no SMDDP backend)",
    "auto_partition": "pipeline stages get contiguous, equal runs of blocks (no SMP tracing partitioner)",
    "default_partition": "pipeline stages get contiguous, equal runs of blocks (no SMP tracing partitioner)",
    "memory_weight": "there is no auto-partitioner to weigh memory against compute",
    "skip_tracing": "there is no SMP tracing step",
    "deterministic_server": "there is no SMP execution server",
    "fp16_params": "parameters stay fp32 masters under bf16/fp16 autocast",
    "activation_loading_horizon": "offloaded activations come back on demand (torch save_on_cpu, no prefetch)",
    "delayed_parameter_initialization": "the native engine builds the whole model on each rank, then shards it",
    "sdp_reduce_bucket_size": "sharded data parallelism is SMP's; the native engine shards with FSDP2",
    "sdp_param_persistence_threshold": "sharded data parallelism is SMP's; the native engine shards with FSDP2",
    "sdp_max_live_parameters": "sharded data parallelism is SMP's; the native engine shards with FSDP2",
    "sdp_hierarchical_allgather": "sharded data parallelism is SMP's; the native engine shards with FSDP2",
    "sdp_gradient_clipping": "sharded data parallelism is SMP's; training.grad_clip clips natively",
}
"""``smp:`` knobs with no meaning under ``engine: torch`` (ENG001 names each one a file sets)."""


@dataclass(frozen=True, slots=True)
class Engine:
    """One engine: how SageMaker launches it and what the cost model calls its runtime."""

    name: str
    title: str
    launcher: str
    """``mpi`` (SMP v1's mpirun) or ``torchrun`` (the toolkit's TorchDistributedRunner)."""
    runtime: str
    """The cost model's runtime (:class:`smlaunch.costmodel.memory.Knobs`): ``smp`` or ``native``."""
    default_framework: tuple[str, str]
    """(framework_version, py_version) when the spec sets neither."""


SMP = Engine("smp", "SMP v1 (smdistributed.modelparallel)", "mpi", "smp", SMP_DEFAULT)
TORCH = Engine(
    "torch", "PyTorch native (TP/SP, pipelining, FSDP2)", "torchrun", "native",
    (TORCH_DEFAULT, "py312"),
)  # fmt: skip
BY_NAME: dict[str, Engine] = {SMP.name: SMP, TORCH.name: TORCH}


def torch_runs_on(instance_type: str) -> bool:
    """Whether the torch engine runs on ``instance_type`` (one of :data:`TORCH_FAMILIES`)."""
    return instance_type.startswith(TORCH_FAMILIES)


def engines_for(instance_type: str) -> list[str]:
    """The engines that run on ``instance_type``: SMP v1 where the catalog says so, torch on its families."""
    from smlaunch.catalog import INSTANCES

    instance = INSTANCES.get(instance_type)
    found = ["smp"] if instance is not None and instance.smp_v1 else []
    return found + (["torch"] if torch_runs_on(instance_type) else [])


def version_key(version: str) -> tuple[int, ...]:
    """``"2.10.1"`` -> ``(2, 10, 1)`` for ordering; non-numeric parts sort first."""
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))
