"""Cluster and instance rules (``CLU``): the catalog, SMP v1 support, GPUs per host, EFA."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from smlaunch.catalog import INSTANCES
from smlaunch.engines import torch_runs_on
from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules import arith as fx
from smlaunch.spec.rules.registry import SMP_ONLY, Hit, hit, rule


@rule("CLU001", "instance-known", "error")
def _instance_known(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """The instance type is in smlaunch's catalog."""
    name = spec.cluster.instance_type
    if lay.instance is None:
        close = difflib.get_close_matches(name, INSTANCES, n=1, cutoff=0.6)
        guess = close[0] if close else "ml.p4d.24xlarge"
        hint = f"did you mean {guess}?" if close else f"known: {', '.join(INSTANCES)}"
        yield hit(
            "cluster.instance_type",
            f"instance_type {name} is not in smlaunch's catalog; {hint}",
            f"set cluster.instance_type: {guess}",
        )


@rule("CLU002", "instance-supports-smp-v1", "error", engines=SMP_ONLY)
def _instance_smp_v1(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """SMP v1 runs only on p3.16xlarge, p3dn, p4d, p4de and g4dn.12xlarge."""
    inst = lay.instance
    if inst is None or inst.smp_v1:
        return
    if inst.name.startswith("ml.p5"):
        yield hit(
            "cluster.instance_type",
            f"{inst.name}: SMP v1 has no p5 support; the SageMaker SDK raises 'SMModelParallel and "
            "SMDataParallel currently do not support p5 instances'",
            "set engine: torch (the PyTorch-native engine runs on p5), or cluster.instance_type: ml.p4d.24xlarge "
            "(ml.p4de.24xlarge for 80 GB A100s)",
        )
        return
    alt = fx.alternative_instance(inst)
    supported = ", ".join(i.name for i in INSTANCES.values() if i.smp_v1)
    move = f"cluster.instance_type: {alt.name} ({alt.num_gpus} x {alt.gpu.name})"
    yield hit(
        "cluster.instance_type",
        f"{inst.name} is not supported by SMP v1 (supported: {supported})",
        f"set engine: torch (the PyTorch-native engine runs on {inst.name}), or {move}"
        if torch_runs_on(inst.name)
        else f"set {move}",
    )


@rule("CLU003", "processes-fit-gpus", "error")
def _processes_fit(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """processes_per_host <= GPUs per instance: one MPI process drives one GPU."""
    inst, pph = lay.instance, spec.cluster.processes_per_host
    if inst is not None and pph is not None and pph > inst.num_gpus:
        yield hit(
            "cluster.processes_per_host",
            f"processes_per_host({pph}) > GPUs per instance({inst.num_gpus}) on {inst.name}: MPI fails after "
            f"launch ('The number of node-local MPI processes {pph} cannot be larger than the device count "
            f"{inst.num_gpus}')",
            f"set cluster.processes_per_host: {inst.num_gpus} (or remove it: the default is the GPU count)",
        )


@rule("CLU004", "no-idle-gpus", "warning")
def _idle_gpus(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """processes_per_host < GPUs per instance leaves GPUs idle but billed."""
    inst, pph = lay.instance, spec.cluster.processes_per_host
    if inst is not None and pph is not None and pph < inst.num_gpus:
        idle = (inst.num_gpus - pph) * spec.cluster.instance_count
        yield hit(
            "cluster.processes_per_host",
            f"processes_per_host({pph}) < GPUs per instance({inst.num_gpus}) on {inst.name}: "
            f"{idle} GPU(s) idle but billed",
            f"set cluster.processes_per_host: {inst.num_gpus}",
        )


@rule("CLU005", "multi-node-efa", "warning")
def _multi_node_efa(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """A multi-node job wants an instance with EFA."""
    inst = lay.instance
    if inst is not None and lay.num_nodes > 1 and not inst.efa:
        alt = fx.alternative_instance(inst, need_efa=True, engine=spec.engine)
        yield hit(
            "cluster.instance_type",
            f"instance_count({lay.num_nodes}) x {inst.name}, which has no EFA ({inst.network_gbps:g} Gbit/s): "
            "inter-node pipeline and gradient traffic will be slow",
            f"set cluster.instance_type: {alt.name} (EFA, {alt.network_gbps:g} Gbit/s)",
        )


@rule("CLU006", "bf16-needs-gpu-support", "error")
def _bf16_gpu(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """bf16 needs a GPU with bfloat16 support: not V100 (ml.p3, ml.p3dn) or T4 (ml.g4dn).

    Source: the catalog's ``Gpu.supports_bf16`` (NVIDIA: bfloat16 tensor cores arrive with Ampere, compute
    capability 8.0; V100 is 7.0, T4 7.5). PyTorch's ``torch.cuda.is_bf16_supported()`` is False on both.
    """
    inst = lay.instance
    if spec.smp.bf16 and inst is not None and not inst.gpu.supports_bf16:
        bf16 = [i.name for i in INSTANCES.values() if i.smp_v1 and i.gpu.supports_bf16]
        yield hit(
            "smp.bf16",
            f"bf16 on {inst.name} ({inst.num_gpus} x {inst.gpu.name}): the {inst.gpu.name} has no bfloat16 support "
            f"(SMP v1 instances with it: {', '.join(bf16)})",
            "set smp.bf16: false and smp.fp16: true",
        )
