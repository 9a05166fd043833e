"""Step time, tokens/s and cost of one configuration.

    flops/token   = 6·N + 12·L·h·s            (PaLM App. B; nanoGPT ``estimate_mfu``; N without position embeddings)
    recompute     + 2·N_blocks + 4·L·h·s       (one extra forward of every checkpointed layer: +1/3 of layer FLOPs)
    compute time  = FLOPs per GPU / (peak x efficiency(GPU) x gemm_efficiency(tokens per microbatch))
    bubble        = (p - 1) / (m + p - 1)      (GPipe / 1F1B; Narayanan et al. 2021 §2.2; a < p in flight: x a/p busy)
    step time     = compute / (1 - bubble) + tensor-parallel + exposed data-parallel + pipeline + offload comm

Native runtime (``runtime="native"``, the PyTorch entry point; constants below, fits in
benchmarks/estimator_accuracy.md): matmuls at ``NATIVE_GEMM_EFFICIENCY``, plus the non-matmul kernels and the loss
as HBM traffic, plus exposed host (CPU dispatch) time of DTensor tensor parallelism and of the pipeline schedule,
all per pipeline slot; plus the un-overlapped DDP all-reduce and the bandwidth-bound clip + AdamW step:

    step = (gemm + non-gemm + tp comm + host) / (1 - bubble) + dp comm + optimizer

Communication times use ring collectives, 2·(n-1)/n · bytes / bandwidth, over NVLink inside a node and the
instance's network (EFA) across nodes, where the node's NICs are shared by the data-parallel groups that
cross it (a group with m ranks per node reduces hierarchically at m x the per-GPU share). Tensor parallelism moves
4 all-reduces (or all-gather + reduce-scatter pairs) of b·s·h 16-bit values per layer per microbatch, 6 with
recompute (Korthikanti et al. 2022 §4.2.2); it is not overlapped. Data-parallel gradient reduction (all-reduce,
or reduce-scatter + all-gather when the optimizer is sharded: the same volume) over rdp overlaps with backward:
only ``DP_EXPOSED`` of it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from smlaunch.catalog import Gpu, Instance
from smlaunch.costmodel.memory import (
    Knobs,
    checkpoint_group,
    native_logits_elements,
    native_tp_input_cast,
    padded_vocab,
    stage_params,
)

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
SMP_MEMORY_MODE_EXTRA_ALLREDUCES = 1.0
"""ASSUMPTION (no SMP run of ours measures it). SMP's ``optimize: memory`` keeps each layer's activations
distributed over the tp ranks (smp-v1.md §3: ``speed`` "means less communication but duplicated activations"), so
every layer all-gathers its input before attention and reduce-scatters its output after, forward and backward:
counted as one more b·s·h all-reduce volume per layer per microbatch than ``speed``'s 4 (6 with recompute)."""
PCIE_GBPS = 16.0
"""Host-device bandwidth per GPU for offloaded activations (PCIe gen4 x16 shared by two GPUs on p4d), GB/s."""
OFFLOAD_EXPOSED = 0.3
"""Share of the offload traffic not hidden by ``activation_loading_horizon`` prefetching (assumption)."""
# ---- PyTorch-native entry point (runtime="native"): see benchmarks/estimator_accuracy.md for the fits ----------
NATIVE_GEMM_EFFICIENCY: dict[str, float] = {
    # FITTED (runtime="native" only; the SMP path keeps COMPUTE_EFFICIENCY): fraction of the dense 16-bit peak
    # that the matmuls reach, before the GEMM size penalty. The non-matmul work is the separate bandwidth term
    # below, so this is higher than an end-to-end MFU (cuBLAS bf16 GEMMs of these shapes: ~65-80% of peak).
    "H100-SXM5-80GB": 0.705,
    "H200-SXM-141GB": 0.785,
}
NATIVE_NON_GEMM_BYTES_SBH = {False: 543.0, True: 351.0}
"""FITTED (eager: False, compiled: True). Non-matmul time per layer, as HBM bytes per s·b·h (forward +
backward): LayerNorms, casts, GELU, residual adds and their gradients (counting the eager kernels gives ~230),
plus what flash attention costs beyond its FLOPs at GEMM efficiency (at s = 1024; it scales with s, which the
measurements do not vary). Inductor fuses most elementwise kernels: compiled / eager = 0.65."""
NATIVE_LOSS_BYTES_PER_LOGIT = {False: 46.0, True: 8.0}
"""HBM bytes per logit element of the loss, forward + backward. Eager (counted): upcast (2+4), log-softmax
(4+4+4), nll gradient fill (4), log-softmax backward (4+4+4), downcast (4+2), lm_head's read of the gradient (2).
Compiled head + loss (counted, fused): read the 16-bit logits twice and write their 16-bit gradient, + reductions."""
OPTIMIZER_BYTES_PER_PARAM = {
    # HBM bytes per parameter of clip + AdamW (counted from the kernels' reads and writes, fp32 everywhere).
    # clip_grads_: _foreach_norm reads g (4), _foreach_mul_ reads and writes g (8).
    # fused AdamW: one kernel reads p, g, m, v and writes p, m, v (28).
    # foreach AdamW: mul_ p (8), lerp_ m <- g (12), mul_ v (8), addcmul_ v <- g, g (12), sqrt v -> t (8),
    # div_ t (8), add_ t (8), addcdiv_ p <- m, t (16) = 80.
    "fused": 12 + 28,
    "foreach": 12 + 80,
}
DDP_FLAT_BYTES_PER_PARAM = 24
"""DDP semantics in parallelize.py: flatten the fp32 grads (read + write, 8), divide (8), copy back (8)."""
NATIVE_HOST_TP_LAYER_S = {False: 5.55e-3, True: 1.59e-3}
"""FITTED. Exposed host time per layer per microbatch (forward + backward) of a tensor-parallel block whose
DTensor ops are dispatched eagerly (False) or from a per-block compiled graph (True): DTensor's Python dispatch
and redistribution (~0.1-0.3 ms per op) outruns the GPU kernels, so the GPU waits for the CPU."""
NATIVE_HOST_SP_FACTOR = 2.03
"""FITTED (one pair: 774M tp2 ``optimize`` memory vs speed, eager). Sequence parallelism adds DTensor ops per layer
(SequenceParallel norms, two PrepareModuleInput all-gathers and their backward reduce-scatters)."""
NATIVE_HOST_PP_MICROBATCH_S = 18.0e-3
"""FITTED. Exposed time per microbatch on a pipeline stage (torch.distributed.pipelining, eager): the schedule's
Python, per-microbatch autograd.backward call and point-to-point handshakes. Per microbatch, not per layer: the
three pipeline runs (18, 18, 9 layers per stage) imply 13-20 ms per microbatch, but 0.8-1.9 ms per layer."""
NATIVE_HOST_RECOMPUTE_FACTOR = 1.48
"""FITTED. Host time of a checkpointed tensor-parallel layer relative to a plain one: the recomputed forward
(a third more ops) plus torch.utils.checkpoint's saved-tensor hooks on DTensors."""
NATIVE_HOST_FSDP_LAYER_S = {False: 0.98e-3, True: 5.38e-3}
"""FITTED. Exposed time per layer per microbatch of FSDP2 (``shard_optimizer_state`` with rdp > 1; key: tp > 1,
i.e. parameters that are 2-D (dp, tp) DTensors): fully_shard's per-block pre-forward / post-backward hooks, the
all-gather copy-in/copy-out and reduce-scatter bookkeeping, run on the host (the collectives' bandwidth is the
separate data-parallel term). 1-D: the two tp = 1 FSDP runs (774M dp2, 2.7B dp2) give 0.79 and 0.83 ms per
layer over the rest of the model. 2-D: the three current-code tp2 x dp2 runs (774M; 2.7B twice) give 4.5-5.3 ms
per layer: every hook and redistribution handles DTensors on the 2-D mesh."""


@dataclass(frozen=True, slots=True)
class Throughput:
    """Step time and its parts (seconds), tokens/s, MFU and the steps' time (whole-job time and cost:
    :class:`smlaunch.costmodel.Estimate`)."""

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
    return 1 - busy_fraction(pp, microbatches, active)


def busy_fraction(pp: int, microbatches: int, active: int | None = None) -> float:
    """1 - :func:`bubble_fraction`, computed directly as m / (m + p - 1) (x a / p): never 0 for positive
    degrees (``1 - bubble`` rounds to 0 at a pipeline degree of 1e9+7, and the step time divides by it)."""
    busy = microbatches / (microbatches + pp - 1)
    if active is not None and active < pp:
        busy *= active / pp
    return busy


def native_bubble_fraction(k: Knobs) -> float:
    """Native schedules (parallelize.py ``_rounds``): one 1F1B over all m microbatches, (p - 1) / (m + p - 1); or
    GPipe rounds of r microbatches, each paying its own fill and drain: idle share 1 - m / sum(r_i + p - 1)."""
    return 1 - native_busy_fraction(k)


def native_busy_fraction(k: Knobs) -> float:
    """1 - :func:`native_bubble_fraction`, computed directly (no rounding to 0 for huge degrees)."""
    if k.pp <= 1:
        return 1.0
    m = k.microbatches
    if k.one_f_one_b:
        return busy_fraction(k.pp, m)
    r = max(k.native_round, 1)
    full, rest = divmod(m, r)  # full rounds of r, then one of the rest: counted, not listed (m may be 2^31)
    return m / (full * (r + k.pp - 1) + (rest + k.pp - 1 if rest else 0))


def ring_time(nbytes: float, ranks: int, gbps: float) -> float:
    """Ring all-reduce of ``nbytes`` over ``ranks`` at ``gbps`` GB/s per rank: 2·(n-1)/n · bytes / bw."""
    if ranks <= 1:
        return 0.0
    return 2 * (ranks - 1) / ranks * nbytes / (gbps * 1e9)


def _inter_node_gbps(instance: Instance) -> float:
    """Per-GPU share of the node's network, GB/s."""
    return instance.network_gbps / 8 / instance.num_gpus


def _dp_members_per_node(k: Knobs, instance: Instance) -> int:
    """Ranks of one data-parallel group on one node (placement "cluster": tp, then pp, inside).

    A group with m ranks on each node reduces hierarchically (NCCL rings use every NIC of the node): inside the
    node over NVLink, then m inter-node rings of 1/m of the bytes each, in parallel. Its inter-node bandwidth is
    therefore m x the per-GPU share of the node's network: tp 8 on 8 GPUs leaves m = 1 (8 groups share the NICs),
    pure data parallelism has m = 8 (the whole node's network for one group).
    """
    if k.tp * k.pp * k.rdp <= instance.num_gpus:
        return 1  # the group fits in a node: NVLink, no sharing of the network
    return max(1, instance.num_gpus // (k.tp * k.pp))


def _link_gbps(instance: Instance, span: int) -> float:
    """Bandwidth per GPU of a group of ``span`` consecutive ranks: NVLink if it fits in a node, else network."""
    return instance.gpu.nvlink_gbps if span <= instance.num_gpus else _inter_node_gbps(instance)


def efficiency(k: Knobs, gpu: Gpu, base: float | None = None) -> float:
    """Fraction of peak: the GPU's constant times the GEMM size penalty of small microbatches ."""
    tokens = k.group_batch * k.seq_length
    table = NATIVE_GEMM_EFFICIENCY if k.runtime == "native" else COMPUTE_EFFICIENCY
    const = table.get(gpu.name, COMPUTE_EFFICIENCY.get(gpu.name, DEFAULT_EFFICIENCY)) if base is None else base
    return const * tokens / (tokens + GEMM_HALF_TOKENS)


def native_optimizer_time(k: Knobs, gpu: Gpu) -> float:
    """Clip + AdamW (+ DDP's flat copy) over this rank's parameters, HBM-bandwidth-bound, seconds."""
    fsdp = k.shard_optimizer_state and k.rdp > 1
    n = stage_params(k) / (k.rdp if fsdp else 1)
    per = OPTIMIZER_BYTES_PER_PARAM.get(k.optimizer, OPTIMIZER_BYTES_PER_PARAM["fused"])
    if k.rdp > 1 and not fsdp:
        per += DDP_FLAT_BYTES_PER_PARAM
    return n * per / (gpu.hbm_tbps * 1e12)


def native_elementwise_time(k: Knobs, gpu: Gpu, tokens_per_rank: float) -> float:
    """Non-matmul kernels of a step (bandwidth-bound), seconds: per layer and per logit."""
    h, t = k.hidden_width, k.tp
    layer_bytes = NATIVE_NON_GEMM_BYTES_SBH[k.compiled] * h * k.num_layers / k.pp / t
    if checkpoint_group(k.checkpointing, k.stage_layers):
        layer_bytes *= 4 / 3  # the recomputed forward: a third of forward + backward
    plain = k.compiled and t == 1 and k.pp == 1 and not (k.shard_optimizer_state and k.rdp > 1)
    logit_share = 1 / k.pp  # the loss runs on the last stage only: spread over the pipeline for the average
    per_token_logits = native_logits_elements(k) / (k.group_batch * k.seq_length)
    loss_bytes = NATIVE_LOSS_BYTES_PER_LOGIT[plain] * per_token_logits * logit_share
    return tokens_per_rank * (layer_bytes + loss_bytes) / (gpu.hbm_tbps * 1e12)


def native_host_time(k: Knobs) -> float:
    """Exposed CPU dispatch per step (per pipeline slot sum, before the bubble), seconds: DTensor TP (x SP,
    x recompute), FSDP2's per-block hooks, the pipeline schedule."""
    per_layer = 0.0
    if k.tp > 1:
        per_layer = NATIVE_HOST_TP_LAYER_S[k.compiled] * (NATIVE_HOST_SP_FACTOR if k.sequence_parallel else 1.0)
        if checkpoint_group(k.checkpointing, k.stage_layers):
            per_layer *= NATIVE_HOST_RECOMPUTE_FACTOR
    if k.shard_optimizer_state and k.rdp > 1:
        per_layer += NATIVE_HOST_FSDP_LAYER_S[k.tp > 1]
    per_microbatch = NATIVE_HOST_PP_MICROBATCH_S if k.pp > 1 else 0.0
    return (per_layer * k.stage_layers + per_microbatch) * k.microbatches


def native_tp_comm_bytes_sbh(k: Knobs) -> float:
    """Native TP traffic of one layer per microbatch, as bytes per s·b·h of all-reduce volume (an all-gather or a
    reduce-scatter counts half an all-reduce), counted from entrypoints/stage.py ``tp_plan``:

    * without sequence parallelism: forward, attn.c_proj and mlp.c_proj all-reduce their 16-bit outputs (2 x 2);
      backward, the column-parallel inputs' gradients are all-reduced, once per module with ``tp_fused_input``
      (2), once per projection q, k, v, c_fc without (4), each 2-byte with ``tp_input_cast``, else fp32 (4 B);
      a recomputed forward repeats the forward pair;
    * with sequence parallelism: per module an all-gather of the input (input dtype) and a reduce-scatter of the
      16-bit output, mirrored in backward, and again in a recomputed forward: d_in + d_out per pass.

    Current code: 8 (12 recomputed), the 4 (6) 16-bit all-reduces of Korthikanti et al. 2022; before 4dc78cd: 20
    (24)."""
    d_out = 4 if k.precision == "fp32" else 2
    d_in = d_out if native_tp_input_cast(k) or k.precision == "fp32" else 4
    recompute = bool(checkpoint_group(k.checkpointing, k.stage_layers))
    if k.sequence_parallel:
        return (d_in + d_out) * (3 if recompute else 2)
    inputs = 2 if k.tp_fused_input else 4
    return 2 * d_out + inputs * d_in + (2 * d_out if recompute else 0)


def comm_times(k: Knobs, instance: Instance) -> tuple[float, float, float]:
    """(tensor-parallel, exposed data-parallel, pipeline) communication per step, seconds."""
    s, b, h = k.seq_length, k.group_batch, k.hidden_width
    act_bytes = 2 * s * b * h
    per_layer = 6 if checkpoint_group(k.checkpointing, k.stage_layers) else 4
    tp_link = _link_gbps(instance, k.tp)
    if k.runtime == "native":
        layer_bytes = native_tp_comm_bytes_sbh(k) * s * b * h
        tp = k.stage_layers * k.microbatches * ring_time(layer_bytes, k.tp, tp_link)
    else:
        if k.optimize == "memory":  # SMP distributes activations: more tensor-parallel traffic than "speed"
            per_layer += SMP_MEMORY_MODE_EXTRA_ALLREDUCES
        tp = k.stage_layers * k.microbatches * per_layer * ring_time(act_bytes, k.tp, tp_link)
    # data parallel: the gradients of one rank, 16-bit, over rdp replicas (placement "cluster": tp, then pp inner)
    grad_bytes = 4 if k.runtime == "native" else 2  # native all-reduces the fp32 gradients
    grads = (k.num_layers / k.pp * 12 * h * h + padded_vocab(k.vocab_size, k.tp) * h) / k.tp * grad_bytes
    dp_link = _link_gbps(instance, k.tp * k.pp * k.rdp) * _dp_members_per_node(k, instance)
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
    if k.runtime == "native":
        busy = native_busy_fraction(k)
    else:
        busy = busy_fraction(k.pp, k.microbatches, k.active_microbatches)
    bubble = 1 - busy
    tp, dp, pp = comm_times(k, run.instance)
    off = offload_time(k, offloaded_bytes_per_mb)
    host = opt = 0.0
    if k.runtime == "native":
        # tokens one rank computes per step: the group batch (tp ranks share it, pp ranks pass it on)
        tokens = run.tokens_per_step / max(k.rdp, 1)
        compute += native_elementwise_time(k, run.instance.gpu, tokens)
        host, opt = native_host_time(k), native_optimizer_time(k, run.instance.gpu)
    step = (compute + tp + pp + off + host) / busy + dp + opt
    tokens_per_s = run.tokens_per_step / step
    time_s = step * run.max_steps
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
    )
