"""Step time, tokens/s and cost of one configuration.

    flops/token   = 6·N + 12·L·h·s            (PaLM App. B; nanoGPT ``estimate_mfu``; N without position embeddings)
    recompute     + 2·N_blocks + 4·L·h·s       (one extra forward of every checkpointed layer: +1/3 of layer FLOPs)
    compute time  = FLOPs per GPU / (peak x efficiency(GPU) x gemm_efficiency(tokens per microbatch))
    bubble        = (p - 1) / (m + p - 1)      (GPipe / 1F1B; Narayanan et al. 2021 §2.2; a < p in flight: x a/p busy)
    step time     = compute / (1 - bubble) + tensor-parallel + exposed data-parallel + pipeline + offload comm

Communication times use ring collectives, 2·(n-1)/n · bytes / bandwidth, over NVLink inside a node and the
instance's network (EFA) across nodes, where the node's NICs are shared by its GPUs. Tensor parallelism moves
4 all-reduces (or all-gather + reduce-scatter pairs) of b·s·h 16-bit values per layer per microbatch, 6 with
recompute (Korthikanti et al. 2022 §4.2.2); it is not overlapped. Data-parallel gradient reduction (all-reduce,
or reduce-scatter + all-gather when the optimizer is sharded: the same volume) over rdp overlaps with backward:
only ``DP_EXPOSED`` of it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from smlaunch.catalog import SPOT_PRICE_FRACTION, Gpu, Instance
from smlaunch.estimate.memory import Knobs, checkpoint_group, padded_vocab

COMPUTE_EFFICIENCY: dict[str, float] = {
    # Fraction of the dense 16-bit peak reached by the compute of a step (before bubble and communication).
    # A100: SMP v1 reached 141 TFLOP/s/GPU = 45% of 312 end to end on GPT-2 30B (AWS ML blog, Oct 2022,
    # pytorch-parallel.md §11); Megatron 52% (HFU, Narayanan et al. 2021). 0.50 before comm and bubble.
    "A100-SXM4-40GB": 0.50,
    "A100-SXM4-80GB": 0.50,
    # H100/H200 under the native entry point: nanoGPT + compile measured 39.7-44.3% MFU on one H100
    # (pytorch-parallel.md §11); recalibrated from benchmarks/gpu_measurements.json when present
    # (benchmarks/estimator_accuracy.md says which constant came from which measurement).
    "H100-SXM5-80GB": 0.40,
    "H200-SXM-141GB": 0.40,
}
DEFAULT_EFFICIENCY = 0.35
"""V100/T4/A10G and anything else: Megatron-era V100 runs reached ~30-40% of peak."""
GEMM_HALF_TOKENS = 512
"""Tokens per microbatch at which GEMMs run at half their large-batch efficiency: eff = x / (x + 512)."""
DP_EXPOSED = 0.5
"""Share of data-parallel gradient communication not hidden behind backward (DDP bucketed overlap)."""
SHARDED_OPTIMIZER_COMM = 1.05
"""Reduce-scatter + all-gather moves the all-reduce volume; SMP's sharded path adds ~5% (assumption)."""
PCIE_GBPS = 16.0
"""Host-device bandwidth per GPU for offloaded activations (PCIe gen4 x16 shared by two GPUs on p4d), GB/s."""
OFFLOAD_EXPOSED = 0.3
"""Share of the offload traffic not hidden by ``activation_loading_horizon`` prefetching (assumption)."""
H200_141GB = Gpu("H200-SXM-141GB", 139.8, 989.0, True, 450.0)
"""Estimator-side H200 (not in the catalog): 143771 MiB reported, dense bf16 989 TFLOP/s (pytorch-parallel.md §10)."""


@dataclass(frozen=True, slots=True)
class Throughput:
    """Step time and its parts (seconds), tokens/s, MFU and cost."""

    step_time_s: float
    compute_s: float
    bubble_fraction: float
    tp_comm_s: float
    dp_comm_s: float
    pp_comm_s: float
    offload_s: float
    tokens_per_s: float
    flops_per_token: float
    mfu: float
    efficiency: float
    time_s: float
    cost_usd: float
    spot_cost_usd: float


def flops_per_token(k: Knobs) -> float:
    """6·N + 12·L·h·s with N = blocks + token embedding (the tied LM head's matmul is real work)."""
    h = k.hidden_width
    n = k.num_layers * (12 * h * h + 13 * h) + k.vocab_size * h + 2 * h
    return 6 * n + 12 * k.num_layers * h * k.seq_length


def recompute_flops_per_token(k: Knobs) -> float:
    """One more forward of the checkpointed blocks: 2·N_blocks + 4·L·h·s (zero without checkpointing)."""
    if checkpoint_group(k.checkpointing, k.stage_layers) == 0:
        return 0.0
    h = k.hidden_width
    return k.num_layers * (2 * (12 * h * h + 13 * h) + 4 * h * k.seq_length)


def bubble_fraction(pp: int, microbatches: int, active: int | None = None) -> float:
    """Idle share of a pipelined step: (p - 1) / (m + p - 1).

    With fewer microbatches in flight than stages (``active_microbatches`` a < p) at most a stages work at
    once, so the busy share is further scaled by a / p.
    """
    busy = 1 - (pp - 1) / (microbatches + pp - 1)
    if active is not None and active < pp:
        busy *= active / pp
    return 1 - busy


def ring_time(nbytes: float, ranks: int, gbps: float) -> float:
    """Ring all-reduce of ``nbytes`` over ``ranks`` at ``gbps`` GB/s per rank: 2·(n-1)/n · bytes / bw."""
    if ranks <= 1:
        return 0.0
    return 2 * (ranks - 1) / ranks * nbytes / (gbps * 1e9)


def _inter_node_gbps(instance: Instance) -> float:
    """Per-GPU share of the node's network, GB/s."""
    return instance.network_gbps / 8 / instance.num_gpus


def _link_gbps(instance: Instance, span: int) -> float:
    """Bandwidth per GPU of a group of ``span`` consecutive ranks: NVLink if it fits in a node, else network."""
    return instance.gpu.nvlink_gbps if span <= instance.num_gpus else _inter_node_gbps(instance)


def efficiency(k: Knobs, gpu: Gpu, base: float | None = None) -> float:
    """Fraction of peak: the GPU's constant times the GEMM size penalty of small microbatches."""
    tokens = k.group_batch * k.seq_length
    const = COMPUTE_EFFICIENCY.get(gpu.name, DEFAULT_EFFICIENCY) if base is None else base
    return const * tokens / (tokens + GEMM_HALF_TOKENS)


def comm_times(k: Knobs, instance: Instance) -> tuple[float, float, float]:
    """(tensor-parallel, exposed data-parallel, pipeline) communication per step, seconds."""
    s, b, h = k.seq_length, k.group_batch, k.hidden_width
    act_bytes = 2 * s * b * h
    per_layer = 6 if checkpoint_group(k.checkpointing, k.stage_layers) else 4
    tp_link = _link_gbps(instance, k.tp)
    tp = k.stage_layers * k.microbatches * per_layer * ring_time(act_bytes, k.tp, tp_link)
    # data parallel: the gradients of one rank, 16-bit, over rdp replicas (placement "cluster": tp, then pp inner)
    grad_bytes = 4 if k.runtime == "native" else 2  # native all-reduces the fp32 gradients
    grads = (k.num_layers / k.pp * 12 * h * h + padded_vocab(k.vocab_size, k.tp) * h) / k.tp * grad_bytes
    dp_link = _link_gbps(instance, k.tp * k.pp * k.rdp)
    dp = ring_time(grads, k.rdp, dp_link) * (1.0 if k.runtime == "native" else DP_EXPOSED)  # native: one flat
    # all-reduce after backward, nothing overlapped
    if k.shard_optimizer_state or k.sharded_data_parallel_degree > 1:
        dp *= SHARDED_OPTIMIZER_COMM * (1.5 if k.sharded_data_parallel_degree > 1 else 1.0)
    pp = 0.0
    if k.pp > 1:
        pp_link = _link_gbps(instance, k.tp * k.pp)
        pp = 2 * k.microbatches * act_bytes / k.tp / (pp_link * 1e9)
    return tp, dp, pp


def offload_time(k: Knobs, offloaded_bytes_per_mb: float) -> float:
    """Exposed host transfer of offloaded checkpoints: out in forward, back in backward."""
    if not k.offload_activations or offloaded_bytes_per_mb <= 0:
        return 0.0
    return 2 * k.microbatches * offloaded_bytes_per_mb / (PCIE_GBPS * 1e9) * OFFLOAD_EXPOSED


@dataclass(frozen=True, slots=True)
class Run:
    """Cluster and length of a run, for time and cost."""

    instance: Instance
    num_nodes: int
    world: int
    tokens_per_step: int
    max_steps: int


def estimate_throughput(
    k: Knobs, run: Run, *, offloaded_bytes_per_mb: float = 0.0, base_efficiency: float | None = None
) -> Throughput:
    """Step time, tokens/s, MFU and cost of ``k`` on ``run``."""
    fpt = flops_per_token(k)
    hw_flops = (fpt + recompute_flops_per_token(k)) * run.tokens_per_step / run.world
    eff = efficiency(k, run.instance.gpu, base_efficiency)
    compute = hw_flops / (run.instance.gpu.peak_tflops_16bit * 1e12 * eff)
    bubble = bubble_fraction(k.pp, k.microbatches, k.active_microbatches)
    tp, dp, pp = comm_times(k, run.instance)
    off = offload_time(k, offloaded_bytes_per_mb)
    step = (compute + tp + pp + off) / (1 - bubble) + dp
    tokens_per_s = run.tokens_per_step / step
    time_s = step * run.max_steps
    cost = time_s / 3600 * run.num_nodes * run.instance.price_per_hour
    mfu = fpt * tokens_per_s / run.world / (run.instance.gpu.peak_tflops_16bit * 1e12)
    return Throughput(
        step_time_s=step,
        compute_s=compute,
        bubble_fraction=bubble,
        tp_comm_s=tp,
        dp_comm_s=dp,
        pp_comm_s=pp,
        offload_s=off,
        tokens_per_s=tokens_per_s,
        flops_per_token=fpt,
        mfu=mfu,
        efficiency=eff,
        time_s=time_s,
        cost_usd=cost,
        spot_cost_usd=cost * SPOT_PRICE_FRACTION,
    )
