"""Engine rules (``ENG``): what ``engine: torch`` (the PyTorch-native engine under torchrun) needs of a spec
that SMP v1 rules do not check: its instances and images, and the ``smp:`` knobs it has no use for.

Sources: :mod:`smlaunch.engines` (the SDK's torch_distributed framework list, the oldest image our native code runs
on, the instance families) and entrypoints/parallelize.py (what the native engine does with each knob).
"""

from __future__ import annotations

from collections.abc import Iterator

from smlaunch.engines import (
    SMP_ONLY_KNOBS,
    TORCH_DEFAULT,
    TORCH_DISTRIBUTED_GPU_FRAMEWORKS,
    TORCH_FAMILIES,
    TORCH_OLDEST,
    TORCH_TOO_OLD_REASON,
    full_framework_version,
    torch_runs_on,
    version_key,
)
from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules import arith as fx
from smlaunch.spec.rules.registry import Hit, hit, rule

TORCH_ONLY = ("torch",)


@rule("ENG001", "smp-knob-without-native-meaning", "warning", engines=TORCH_ONLY)
def _smp_only_knobs(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """An ``smp:`` knob that only SMP v1 reads, set in a file that runs on the torch engine, is ignored there."""
    for name in sorted(spec.smp.model_fields_set & set(SMP_ONLY_KNOBS)):
        yield hit(
            f"smp.{name}",
            f"smp.{name} has no meaning under engine: torch and is ignored: {SMP_ONLY_KNOBS[name]}",
            f"remove smp.{name} (or set engine: smp)",
        )
    if "custom_mpi_options" in spec.sagemaker.model_fields_set:
        yield hit(
            "sagemaker.custom_mpi_options",
            "sagemaker.custom_mpi_options has no meaning under engine: torch and is ignored: torchrun, not mpirun, "
            "starts the processes",
            "remove sagemaker.custom_mpi_options (or set engine: smp)",
        )


@rule("ENG002", "torch-no-sharded-data-parallel", "error", engines=TORCH_ONLY)
def _sharded_dp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Sharded data parallelism (``sharded_data_parallel_degree`` > 1) is SMP's; the torch engine shards with
    FSDP2 (``shard_optimizer_state``), which the estimate would otherwise not count."""
    sdp = spec.smp.sharded_data_parallel_degree
    if sdp > 1:
        yield hit(
            "smp.sharded_data_parallel_degree",
            f"sharded_data_parallel_degree({sdp}) under engine: torch: the native engine has no SMP sharded data "
            "parallelism; FSDP2 over the data-parallel ranks is smp.shard_optimizer_state",
            "set smp.sharded_data_parallel_degree: 1 and smp.shard_optimizer_state: true",
        )


@rule("ENG003", "instance-supports-torch-engine", "error", engines=TORCH_ONLY)
def _torch_instance(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """The torch engine runs on p5, p5e, p5en (H100/H200), p4d, p4de (A100), g5 (A10G) and g6 (L4)."""
    inst = lay.instance
    if inst is None or torch_runs_on(inst.name):
        return
    alt = fx.alternative_instance(inst, engine="torch")
    families = ", ".join(f.rstrip(".") for f in TORCH_FAMILIES)
    smp = " (or engine: smp for SMP v1, which runs on it)" if inst.smp_v1 else ""
    yield hit(
        "cluster.instance_type",
        f"{inst.name} ({inst.num_gpus} x {inst.gpu.name}) is not an instance of the torch engine "
        f"(families: {families})",
        f"set cluster.instance_type: {alt.name} ({alt.num_gpus} x {alt.gpu.name}){smp}",
    )


@rule("ENG004", "torch-framework-supported", "error", engines=TORCH_ONLY)
def _torch_framework(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """framework_version is one of the SDK's torch_distributed GPU versions, written out in full (the SDK compares
    the string), not older than the oldest our native code runs on, with its image's py_version."""
    sm = spec.sagemaker
    if sm.image_uri:  # the SDK ignores framework_version and py_version with a custom image
        return
    fw, py = sm.framework_version.strip(), sm.py_version
    newest = max(TORCH_DISTRIBUTED_GPU_FRAMEWORKS, key=version_key)
    fix = (
        f"set sagemaker.framework_version: {TORCH_DEFAULT} "
        f"(with sagemaker.py_version: {TORCH_DISTRIBUTED_GPU_FRAMEWORKS[TORCH_DEFAULT]})"
    )
    full = full_framework_version(fw)
    if fw not in TORCH_DISTRIBUTED_GPU_FRAMEWORKS:
        if full in TORCH_DISTRIBUTED_GPU_FRAMEWORKS:
            yield hit(
                "sagemaker.framework_version",
                f"framework_version {fw} is the SDK's alias for {full}, but its torch_distributed check compares the "
                f"string with its list ({', '.join(TORCH_DISTRIBUTED_GPU_FRAMEWORKS)}) and raises",
                f"set sagemaker.framework_version: {full}",
            )
        else:
            yield hit(
                "sagemaker.framework_version",
                f"framework_version {fw} is not a torch_distributed GPU version of the SDK (newest: {newest}; "
                f"supported from {TORCH_OLDEST} on: "
                f"{', '.join(v for v in TORCH_DISTRIBUTED_GPU_FRAMEWORKS if _new_enough(v))})",
                fix,
            )
        return
    if version_key(fw) < version_key(TORCH_OLDEST):
        yield hit("sagemaker.framework_version", f"framework_version {fw}: {TORCH_TOO_OLD_REASON}", fix)
        return
    want = TORCH_DISTRIBUTED_GPU_FRAMEWORKS[fw]
    if want is not None and py != want:
        yield hit(
            "sagemaker.py_version",
            f"py_version {py} does not match framework_version {fw}: its PyTorch training image is {want}",
            f"set sagemaker.py_version: {want}",
        )


def _new_enough(version: str) -> bool:
    return version_key(version) >= version_key(TORCH_OLDEST)


@rule("ENG005", "fsdp-needs-replicas", "warning", engines=TORCH_ONLY)
def _fsdp_replicas(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """shard_optimizer_state (FSDP2) shards over the model replicas (rdp); with one replica it does nothing."""
    if spec.smp.shard_optimizer_state and lay.rdp == 1 and lay.world % (lay.tp * lay.pp) == 0:
        yield hit(
            "smp.shard_optimizer_state",
            f"shard_optimizer_state with rdp = world({lay.world}) / (tp({lay.tp}) x pp({lay.pp})) = 1: FSDP2 "
            "shards over the model replicas, and there is only one",
            f"set smp.shard_optimizer_state: false (or cluster.instance_count: {2 * spec.cluster.instance_count} "
            "for two replicas)",
        )
