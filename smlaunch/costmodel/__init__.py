"""Estimate per-GPU memory, step time, throughput and cost of a job spec; find configurations that fit.

    estimate(spec) -> Estimate            memory breakdown, verdict against the GPU, step time, tokens/s, cost
    memory_findings(spec) -> [Finding]    MEM001 when the estimate exceeds the GPU, with checked fixes
    plan(...) -> PlanResult               every valid configuration of a model on a cluster, fastest first

The model lives in :mod:`~smlaunch.costmodel.memory` (terms and constants with their sources) and
:mod:`~smlaunch.costmodel.throughput`; the search in :mod:`~smlaunch.costmodel.planner`. Pure Python and
cheap to import: ``validate`` loads it for the memory rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from smlaunch.catalog import INSTANCES, SPOT_PRICE_FRACTION, Instance
from smlaunch.costmodel.jobtime import SOURCES as JOB_TIME_SOURCES
from smlaunch.costmodel.jobtime import JobTime, job_time
from smlaunch.costmodel.memory import (
    Knobs,
    MemoryEstimate,
    estimate_memory,
    model_params,
    model_state_bytes,
    stage_params,
)
from smlaunch.costmodel.throughput import NATIVE_GEMM_EFFICIENCY, Run, Throughput, estimate_throughput
from smlaunch.engines import BY_NAME
from smlaunch.layout import Layout, resolve
from smlaunch.spec.models import JobSpec

__all__ = ["Estimate", "estimate", "find_instance", "knobs_from_spec", "memory_findings", "plan"]


def find_instance(instance_type: str) -> Instance | None:
    """The catalog's instance (smlaunch.catalog, the one hardware catalog), else None."""
    return INSTANCES.get(instance_type)


HEADROOM = 0.10
"""Share of GPU memory that a verdict keeps free: the cost model's measured memory error is within 8.1% on 49 GPU
runs (benchmarks/estimator_accuracy.md), so a configuration estimated at 99% of the GPU may not fit. The planner,
MEM001's fixes and the MEM002 warning all use it."""


CALIBRATED_NATIVE_GPUS = frozenset(NATIVE_GEMM_EFFICIENCY)
"""GPUs the native-runtime model is fitted on; elsewhere its estimates say they are extrapolated."""


def usable_gib(instance: Instance) -> float:
    """GPU memory a plan or a fix may fill: capacity less :data:`HEADROOM`."""
    return instance.gpu.memory_gib * (1 - HEADROOM)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Memory, verdict and speed of one spec on its cluster."""

    knobs: Knobs
    layout: Layout
    instance: Instance
    memory: MemoryEstimate
    throughput: Throughput
    job: JobTime
    script: str | None = None
    """The spec's own entry point (``entry_point.script``), None for smlaunch's: its estimate rests on assumptions."""

    @property
    def time_s(self) -> float:
        """The whole job, submit to end: start-up, steps, checkpoints, final save (:mod:`.jobtime`)."""
        return self.job.total_s

    @property
    def cost_usd(self) -> float | None:
        """On-demand cost of the billed time (everything after provisioning) on every node; None when the
        catalog has no sourced price for the instance."""
        if self.instance.price is None:
            return None
        return self.job.billed_s / 3600 * self.layout.num_nodes * self.instance.price.usd_per_hour

    @property
    def spot_cost_usd(self) -> float | None:
        return None if self.cost_usd is None else self.cost_usd * SPOT_PRICE_FRACTION

    @property
    def gpu_memory_gib(self) -> float:
        return self.instance.gpu.memory_gib

    @property
    def headroom_gib(self) -> float:
        return self.gpu_memory_gib - self.memory.total_gib

    @property
    def fits(self) -> bool:
        return self.headroom_gib >= 0

    @property
    def extrapolated(self) -> list[str]:
        """Where this estimate leaves what its model was measured on (benchmarks/estimator_accuracy.md: the native
        runtime on 1 to 4 H100/H200 of one node, NVLink); [] inside it. SMP v1 runs only on SageMaker, so its
        model is fitted to AWS's published figures instead (smp-best-practices.txt) and carries no such note."""
        if self.knobs.runtime != "native":
            return []
        gpu, lay, notes = self.instance.gpu, self.layout, []
        if gpu.name not in CALIBRATED_NATIVE_GPUS:
            notes.append(
                f"{gpu.name}: the native model is measured on H100/H200 only; here it scales by the {gpu.name}'s "
                f"datasheet peak ({gpu.peak_tflops_16bit:g} TFLOP/s) and memory bandwidth ({gpu.hbm_tbps:g} TB/s)"
            )
        if lay.num_nodes > 1:
            notes.append(
                f"{lay.num_nodes} nodes: measured on one node; the all-reduces between nodes are modelled from "
                f"{self.instance.network_gbps:g} Gbit/s of network, not measured"
            )
        if not gpu.nvlink and lay.tp > 1:
            notes.append(f"tensor parallelism over PCIe ({gpu.nvlink_gbps:g} GB/s per GPU) is modelled, not measured")
        return notes

    @property
    def assumptions(self) -> list[str]:
        """What the estimate assumes of an own script: the cost model is built on smlaunch's GPT-2 entry points."""
        if self.script is None:
            return []
        lm_head = "replicated on every tensor-parallel rank" if self.knobs.runtime != "native" else "vocab-parallel"
        return [
            f"{self.script} is assumed to train smlaunch's GPT-2 (the spec's model: shape, tied embeddings, "
            "learned positions, GELU MLP of 4 x width) with AdamW over fp32 master weights",
            f"its LM head and loss are assumed {lm_head}, and its activations those of smlaunch's blocks under "
            "training.activation_checkpointing; its data loading, logging and checkpoint costs are not modelled",
        ]

    @property
    def fits_with_margin(self) -> bool:
        """Fits with :data:`HEADROOM` of the GPU to spare (what plans and fixes promise)."""
        return self.memory.total_gib <= usable_gib(self.instance)

    def to_dict(self) -> dict:
        """The ``estimate --format json`` contract."""
        t, lay = self.throughput, self.layout
        return {
            "memory_gib_per_gpu": round(self.memory.total_gib, 3),
            "gpu_memory_gib": self.gpu_memory_gib,
            "fits": self.fits,
            "headroom_gib": round(self.headroom_gib, 3),
            "headroom_pct": round(100 * self.headroom_gib / self.gpu_memory_gib, 2),
            "breakdown": {k: round(v, 3) for k, v in self.memory.breakdown.items()},
            "allocated_gib": round(self.memory.allocated_gib, 3),
            "host_offloaded_gib": round(self.memory.host_offloaded_gib, 3),
            "step_time_s": round(t.step_time_s, 4),
            "tokens_per_s": round(t.tokens_per_s, 1),
            "time_s": round(self.time_s, 1),
            "train_time_s": round(t.time_s, 1),
            "job_time_s": {name: round(v, 1) for name, v in self.job.terms.items()},
            "job_time_sources": dict(JOB_TIME_SOURCES),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 2),
            "spot_cost_usd": None if self.spot_cost_usd is None else round(self.spot_cost_usd, 2),
            "price": None if self.instance.price is None else asdict(self.instance.price),
            "mfu": round(t.mfu, 4),
            "bubble_fraction": round(t.bubble_fraction, 4),
            "flops_per_token": t.flops_per_token,
            "step_breakdown_s": {
                "compute": round(t.compute_s, 4),
                "tensor_parallel_comm": round(t.tp_comm_s, 4),
                "data_parallel_comm_exposed": round(t.dp_comm_s, 4),
                "pipeline_comm": round(t.pp_comm_s, 4),
                "offload": round(t.offload_s, 4),
            },
            "instance_type": self.instance.name,
            "gpu": self.instance.gpu.name,
            "engine": "torch" if self.knobs.runtime == "native" else "smp",
            "extrapolated": self.extrapolated,
            "assumptions": self.assumptions,
            "layout": lay.to_dict(),
        }


def knobs_from_spec(spec: JobSpec, lay: Layout | None = None) -> Knobs:
    """The estimator's flat inputs for ``spec``."""
    lay = lay or resolve(spec)
    m, smp = spec.model, spec.smp
    native = BY_NAME[spec.engine].runtime == "native"
    return Knobs(
        num_layers=m.num_layers,
        hidden_width=m.hidden_width,
        num_heads=m.num_heads,
        seq_length=m.seq_length,
        vocab_size=m.vocab_size,
        tp=lay.tp,
        pp=lay.pp,
        rdp=lay.rdp,
        microbatch_size=lay.microbatch_size,
        microbatches=lay.microbatches,
        active_microbatches=lay.active_microbatches,
        prescaled_batch=lay.prescaled_batch,
        shard_optimizer_state=smp.shard_optimizer_state,
        sharded_data_parallel_degree=1 if native else smp.sharded_data_parallel_degree,
        checkpointing=spec.training.activation_checkpointing,
        offload_activations=smp.offload_activations,
        optimize=smp.optimize,
        precision="fp16" if smp.fp16 else ("bf16" if smp.bf16 else "fp32"),
        runtime=BY_NAME[spec.engine].runtime,
        pipeline=smp.pipeline,
    )


def estimate_knobs(
    k: Knobs,
    lay: Layout,
    instance: Instance,
    max_steps: int,
    *,
    checkpoint_every_steps: int = 0,
    delayed_init: bool = False,
    final_save: bool = False,
) -> Estimate:
    """Estimate from flat knobs (the planner's and the fix finder's path; ``estimate`` for specs)."""
    mem = estimate_memory(k)
    offloaded_per_mb = mem.host_offloaded_gib * 1024**3 / max(k.in_flight - 2, 1)
    run = Run(instance, lay.num_nodes, lay.world, lay.tokens_per_step, max_steps)
    tput = estimate_throughput(k, run, offloaded_bytes_per_mb=offloaded_per_mb)
    job = job_time_of(
        k,
        lay,
        tput,
        max_steps,
        checkpoint_every_steps=checkpoint_every_steps,
        delayed_init=delayed_init,
        final_save=final_save,
    )
    return Estimate(k, lay, instance, mem, tput, job)


def job_time_of(
    k: Knobs,
    lay: Layout,
    tput: Throughput,
    max_steps: int,
    *,
    checkpoint_every_steps: int = 0,
    delayed_init: bool = False,
    final_save: bool = False,
) -> JobTime:
    """The whole-job phases of a configuration (:func:`smlaunch.costmodel.jobtime.job_time`)."""
    state = model_state_bytes(k)
    return job_time(
        step_time_s=tput.step_time_s,
        max_steps=max_steps,
        total_params=model_params(k),
        rank_params=stage_params(k),
        ranks_per_node=lay.gpus_per_node,
        rank_checkpoint_bytes=state["parameters"] + state["optimizer_state"],
        checkpoint_every_steps=checkpoint_every_steps,
        delayed_init=delayed_init,
        final_save=final_save,
    )


def estimate(spec: JobSpec) -> Estimate:
    """Estimate ``spec``. Raises PlanError when its instance type is unknown to the cost model."""
    from smlaunch.errors import PlanError

    instance = find_instance(spec.cluster.instance_type)
    if instance is None:
        known = ", ".join(sorted(INSTANCES))
        raise PlanError(f"no GPU data for instance type {spec.cluster.instance_type!r}", fix=f"use one of {known}")
    lay = resolve(spec)
    est = estimate_knobs(knobs_from_spec(spec, lay), lay, instance, spec.training.max_steps, **job_options(spec))
    return replace(est, script=spec.entry_point.script) if spec.entry_point else est


def job_options(spec: JobSpec) -> dict[str, int | bool]:
    """The spec's settings that change whole-job time but not a step (keywords of :func:`estimate_knobs`)."""
    return {
        "checkpoint_every_steps": spec.training.checkpoint_every_steps,
        "delayed_init": spec.smp.delayed_parameter_initialization and spec.engine == "smp",
        "final_save": bool(getattr(spec.training, "final_save", False)),
    }


def memory_findings(spec: JobSpec, *, estimate: Estimate | None = None) -> list:
    """``MEM001`` when the estimate exceeds the GPU's memory, with the cheapest checked fixes; else []."""
    from smlaunch.costmodel.fixes import memory_findings as _findings

    return _findings(spec, estimate=estimate)


def plan(*args, **kwargs):
    """See :func:`smlaunch.costmodel.planner.plan`."""
    from smlaunch.costmodel.planner import plan as _plan

    return _plan(*args, **kwargs)
