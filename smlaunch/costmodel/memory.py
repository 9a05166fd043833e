"""Per-GPU memory of one training step, term by term, for SMP v1 (and, for the accuracy check, PyTorch-native).

Everything is computed for the *worst* GPU: the first pipeline stage (embeddings plus the most microbatches in
flight), or the last stage (the LM head's logits) when that is larger. Symbols: L layers, h width, a heads,
s sequence length, V vocabulary (padded), t tensor-parallel degree, p pipeline degree, b samples of one
microbatch as the tensor-parallel group sees them.

Terms (bytes; the breakdown reports GiB):

* ``parameters``, ``gradients``, ``optimizer_state``, ``master_gradients``: mixed-precision Adam keeps 16-bit
  parameters (2 B) and gradients (2 B) plus fp32 master weights and two fp32 moments (12 B) per parameter, the
  16 bytes/parameter of the ZeRO paper (Rajbhandari et al. 2020, §3.1). apex/Megatron's FP16_Optimizer, which
  SMP's ``DistributedOptimizer`` follows, also keeps an fp32 ``.grad`` on every master weight (4 B; Megatron's
  distributed-optimizer guide counts it, 18-20 B/parameter). ``shard_optimizer_state`` divides the 12 + 4
  bytes by rdp (SMP shards over the *reduced* data-parallel group: tp ranks hold different parameters);
  ``sharded_data_parallel_degree`` d > 1 (MiCS/ZeRO-3) divides all 20 bytes by d. Without fp16/bf16 the model
  trains in fp32: 4 + 4 B of weights and gradients, 8 B of moments, no master copy.
* ``activations``: Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models",
  eq. 1-2): one layer stores s·b·h·(34 + 5·a·s/h) bytes in 16-bit training; with tensor parallelism but without
  sequence parallelism s·b·h·(10 + 24/t + 5·a·s/(h·t)) (SMP ``optimize: speed``); with sequence parallelism
  (SMP ``optimize: memory``: distributed LayerNorm, "no redundant activations") everything divided by t. A
  checkpointed layer keeps only its 16-bit input, 2·s·b·h (/t with sequence parallelism). Per microbatch a stage
  of n layers stores n full layers (``none``), n inputs (``each``), ceil(n/k) inputs (``group_k``) or 1 input
  (``contiguous``); this is multiplied by the microbatches in flight (``active_microbatches`` when p > 1; one
  otherwise). ``offload_activations`` (with checkpointing and microbatches > 1) keeps only the checkpoints of the
  microbatch being computed and the one being prefetched on the GPU; the rest is reported as
  ``host_offloaded_gib``.
* ``recompute_buffers``: in backward one checkpointed segment is recomputed at a time and holds its full
  activations: 1 layer (``each``), k layers (``group_k``), the whole stage (``contiguous``). So with one
  microbatch in flight ``each`` < ``group_k`` < ``none``; grouping wins only when many microbatches are in
  flight (n·(1 - 1/k) checkpoints saved per microbatch against k - 1 extra layers recomputed).
* ``logits``: the LM head output b·s·V (the SMP entry point keeps the head whole: :data:`SMP_REPLICATED_EMBEDDING`)
  in 16 bits, its fp32 upcast for the loss and its fp32
  gradient: 10 bytes per element (Megatron's cross-entropy; nanoGPT's ``F.cross_entropy`` under autocast).
* ``communication_buffers``: DDP/SMP gradient buckets (2 x 25 MiB, ``bucket_cap_mb=25``) and, with t > 1 or
  p > 1, two 16-bit b·s·h buffers for the tensor-parallel all-gather / pipeline send-receive.
* Native runtime (``runtime="native"``): :mod:`smlaunch.costmodel.native_memory`, the peak over the moments of a step
  (forward/backward, loss, end of backward, optimizer step) of what entrypoints/parallelize.py keeps; the
  NATIVE_* constants below say which were counted from the code and which were fitted.
* ``framework_overhead``: CUDA context, cuBLAS workspace and NCCL communicators (not visible to
  ``torch.cuda.max_memory_allocated``) plus caching-allocator fragmentation; constants below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

GIB = 1024**3

ZERO_STATE_BYTES = 12
"""fp32 master weights + Adam m + v per parameter (ZeRO paper §3.1: K = 12)."""
MASTER_GRAD_BYTES = 4
"""fp32 ``.grad`` of each master weight in apex/Megatron FP16_Optimizer (Megatron distributed-optimizer doc)."""
KORTHIKANTI_SBH = 34
"""Bytes per s·b·h of one transformer layer without recompute (Korthikanti et al. 2022, §4.1, eq. 1)."""
KORTHIKANTI_ATTN = 5
"""Bytes per a·s²·b of one layer: softmax output (2), dropout mask (1), dropout output (2) (same source)."""
CHECKPOINT_BYTES_SBH = 2
"""A checkpointed layer keeps its 16-bit input: 2·s·b·h bytes (same source, §5)."""
LOGITS_BYTES = 10
"""Per logit element: 16-bit logits (2) + fp32 copy for the loss (4) + fp32 gradient (4)."""
DDP_BUCKET_BYTES = 2 * 25 * 2**20
"""Two gradient buckets of ``bucket_cap_mb=25`` (smp.DistributedModel and torch DDP default)."""
OFFLOAD_RESIDENT_MICROBATCHES = 2
"""With offloading, checkpoints of the running microbatch and of the one being prefetched stay on the GPU."""
CUDA_CONTEXT_GIB = 0.75
"""CUDA context + cuBLAS/cuDNN workspaces per process: 0.5-1 GiB on A100/H100 with CUDA 11-13 (nvidia-smi)."""
NCCL_GIB_PER_GROUP = 0.25
"""NCCL communicator buffers per process group of size > 1 (NCCL_BUFFSIZE 4 MiB x channels x peers)."""
FRAGMENTATION = 0.05
"""PyTorch caching-allocator fragmentation: reserved exceeds allocated by ~5% in steady state."""
VOCAB_PAD_MULTIPLE = 128
"""Vocabulary padded to a multiple of 128·t (entrypoints/model.py ``padded_vocab_size``)."""


@dataclass(frozen=True, slots=True)
class Knobs:
    """The flat inputs of the estimate: model shape, degrees and switches. Built from a spec or by the planner."""

    num_layers: int
    hidden_width: int
    num_heads: int
    seq_length: int
    vocab_size: int
    tp: int = 1
    pp: int = 1
    rdp: int = 1
    microbatch_size: int = 1
    """Samples per microbatch per rank (``batch_size / microbatches``)."""
    microbatches: int = 1
    active_microbatches: int = 1
    prescaled_batch: bool = False
    shard_optimizer_state: bool = False
    sharded_data_parallel_degree: int = 1
    checkpointing: str = "none"
    offload_activations: bool = False
    optimize: str = "memory"
    precision: str = "fp16"
    """fp16 | bf16 (mixed precision) | fp32."""
    runtime: str = "smp"
    """smp: SMP v1 on SageMaker; native: the PyTorch-native entry point (FSDP2/DDP, SDPA flash attention)."""
    pipeline: str = "interleaved"
    """interleaved (1F1B) | simple (GPipe). Only the native model distinguishes them (SMP's in-flight cap rules)."""
    compiled: bool = False
    """Native only: ``--compile 1`` (each block torch.compile'd; on a plain single-stage model also head + loss)."""
    optimizer: str = "fused"
    """Native only: fused | foreach AdamW. The entry point now uses fused AdamW for all parameters; before, it
    used foreach AdamW when parameters were DTensors (tp > 1 or FSDP2), which needs a temporary and more passes."""
    tp_input_cast: bool = True
    """Native, tp > 1, 16-bit: the LayerNorm outputs are cast to the autocast dtype *before* attn and mlp
    (entrypoints/model.py ``Block.matmul_input_dtype``, set by parallelize()), so the saved matmul inputs and the
    input-gradient collectives are 2-byte. False: the entry point before commit 4dc78cd (bench_before/), where
    autocast cast the fp32 LayerNorm output inside each Linear (fp32 input gradients, one cast per projection)."""
    tp_fused_input: bool = True
    """Native, tp > 1: attn and mlp take their input as one DTensor (``PrepareModuleInput``), so the input
    gradients of q, k, v (and c_fc) are all-reduced once per module: 2 backward all-reduces per layer. False: the
    entry point before 4dc78cd without sequence parallelism, where each of q, k, v and c_fc converted its own input
    and all-reduced its own input gradient (4 per layer). Sequence parallelism always used PrepareModuleInput."""

    @property
    def group_batch(self) -> int:
        """Samples per microbatch as one tensor-parallel group computes them: x t unless prescaled (SMP gathers)."""
        return self.microbatch_size * (1 if self.prescaled_batch else self.tp)

    @property
    def stage_layers(self) -> int:
        return math.ceil(self.num_layers / self.pp)

    @property
    def in_flight(self) -> int:
        """Microbatches whose activations stage 0 holds at once."""
        if self.pp == 1:
            return 1
        if self.runtime == "native":  # 1F1B (warm-up depth pp on stage 0) when a >= pp, else GPipe rounds of a
            return self.native_round if not self.one_f_one_b else self.pp
        return max(1, min(self.active_microbatches, self.microbatches))

    @property
    def one_f_one_b(self) -> bool:
        """Native: one Schedule1F1B over all microbatches (parallelize.py ``_rounds``), else GPipe rounds."""
        a = self.active_microbatches
        return self.pipeline == "interleaved" and self.microbatches >= self.pp and (a <= 0 or a >= self.pp)

    @property
    def native_round(self) -> int:
        """Native GPipe: microbatches per round (``active_microbatches``, 0 = all of them)."""
        a = self.active_microbatches
        return max(1, self.microbatches if a <= 0 else min(a, self.microbatches))

    @property
    def sequence_parallel(self) -> bool:
        return self.tp > 1 and self.optimize == "memory"


def padded_vocab(vocab_size: int, tp: int) -> int:
    multiple = VOCAB_PAD_MULTIPLE * tp
    return (vocab_size + multiple - 1) // multiple * multiple


SMP_REPLICATED_EMBEDDING = True
"""entrypoints/smp_train.py registers only the transformer ``Block`` for SMP tensor parallelism
(``smp.tp_register_with_module``); the token embedding and the LM head tied to it stay whole on every
tensor-parallel rank (SMP's TP docs: weight-shared modules are not distributed). Under ``runtime="smp"`` each
rank therefore holds V x h embedding parameters and computes b x s x V logits (smp-v1-audit.md §5, defect A).
tests/integration/test_smp_path.py ties this to what the entry point registers."""


def embedding_params(k: Knobs) -> float:
    """Token-embedding (= tied LM head) parameters on one rank: whole under SMP, vocab-parallel natively."""
    replicated = k.runtime == "smp" and SMP_REPLICATED_EMBEDDING
    return padded_vocab(k.vocab_size, k.tp) * k.hidden_width / (1 if replicated else k.tp)


def stage_params(k: Knobs) -> float:
    """Parameters on the first pipeline stage of one tensor-parallel rank (blocks + embeddings)."""
    h, t = k.hidden_width, k.tp
    # 12h² weights and 7h column-parallel biases split over t; c_proj biases (2h) and LayerNorms (4h) replicated
    per_block = (12 * h * h + 7 * h) / t + 6 * h
    return k.stage_layers * per_block + embedding_params(k) + k.seq_length * h + 2 * h


def model_params(k: Knobs) -> float:
    """Parameters of the whole model (tied embeddings, learned positions; vocabulary padded for k.tp)."""
    h = k.hidden_width
    return k.num_layers * (12 * h * h + 13 * h) + (padded_vocab(k.vocab_size, k.tp) + k.seq_length) * h + 2 * h


def replicated_params(k: Knobs) -> float:
    """Of :func:`stage_params`, those every tensor-parallel rank holds whole (SMP: embeddings, positions)."""
    if k.runtime != "smp" or k.tp == 1:
        return 0.0
    return embedding_params(k) + k.seq_length * k.hidden_width if SMP_REPLICATED_EMBEDDING else 0.0


def model_state_bytes(k: Knobs) -> dict[str, float]:
    """Parameters, gradients and optimizer state of one GPU (bytes)."""
    n = stage_params(k)
    if k.runtime == "native":
        from smlaunch.costmodel.native_memory import native_state_bytes

        return native_state_bytes(k, n)
    sdp = k.sharded_data_parallel_degree
    if k.precision == "fp32":
        weights, master, state = 4, 0, 8
    else:
        weights, master, state = 2, MASTER_GRAD_BYTES, ZERO_STATE_BYTES
    wdiv = sdp if sdp > 1 else 1
    # the sharded state of a parameter is split over the ranks that hold it: rdp for tensor-parallel weights,
    # dp = rdp x tp for the replicated ones (SMP counts tp ranks in dp)
    whole = replicated_params(k)
    if sdp > 1:
        sharded = n / sdp
    elif k.shard_optimizer_state:
        sharded = (n - whole) / k.rdp + whole / (k.rdp * k.tp)
    else:
        sharded = n
    return {
        "parameters": n * weights / wdiv,
        "gradients": n * weights / wdiv,
        "optimizer_state": sharded * state,
        "master_gradients": sharded * master,
    }


def layer_activation_bytes(k: Knobs) -> tuple[float, float]:
    """(full activations of one layer, its checkpointed input) for one microbatch, bytes per GPU."""
    s, b, h, a, t = k.seq_length, k.group_batch, k.hidden_width, k.num_heads, k.tp
    sbh = s * b * h
    scale = 2 if k.precision == "fp32" else 1  # fp32 training stores 4-byte activations
    if k.runtime == "native":
        from smlaunch.costmodel.native_memory import native_layer_activation_bytes

        return native_layer_activation_bytes(k, sbh, scale)
    attn = KORTHIKANTI_ATTN * a * s / h
    if t == 1 or k.sequence_parallel:
        full = sbh * (KORTHIKANTI_SBH + attn) / t
    else:
        full = sbh * (10 + 24 / t + attn / t)
    ckpt = CHECKPOINT_BYTES_SBH * sbh / (t if k.sequence_parallel else 1)
    return full * scale, ckpt * scale


def checkpoint_group(strategy: str, layers: int) -> int:
    """Layers per checkpointed segment: 0 = no checkpointing, 1 = each, n = group_n, all = contiguous."""
    if strategy == "none":
        return 0
    if strategy == "each":
        return 1
    if strategy == "contiguous":
        return layers
    return min(int(strategy.removeprefix("group_")), layers)


def activation_bytes(k: Knobs, *, layers: int, in_flight: int) -> dict[str, float]:
    """Stored activations (x in flight), recompute working set and offloaded bytes for a stage of ``layers``."""
    full, ckpt = layer_activation_bytes(k)
    group = checkpoint_group(k.checkpointing, layers)
    if group == 0:
        stored, recompute = layers * full, 0.0
    else:
        stored, recompute = math.ceil(layers / group) * ckpt, group * full
    resident, host = in_flight, 0
    if k.offload_activations and group and k.microbatches > 1 and k.runtime == "smp":
        resident = min(in_flight, OFFLOAD_RESIDENT_MICROBATCHES)
        host = in_flight - resident
    return {"activations": stored * resident, "recompute_buffers": recompute, "host": stored * host}


def logits_bytes(k: Knobs) -> float:
    """The LM head's logits of one microbatch: full-vocabulary under SMP (:data:`SMP_REPLICATED_EMBEDDING`)."""
    return k.group_batch * k.seq_length * embedding_params(k) / k.hidden_width * LOGITS_BYTES


def comm_bytes(k: Knobs) -> float:
    if k.runtime == "native":
        flat = stage_params(k) * 4 if (k.rdp > 1 and not k.shard_optimizer_state) else 0.0
        return flat  # DDP-semantics flat gradient copy; no DDP buckets in the native entry point
    extra = 2 * 2 * k.group_batch * k.seq_length * k.hidden_width if (k.tp > 1 or k.pp > 1) else 0
    return DDP_BUCKET_BYTES + extra


def overhead_gib(k: Knobs, allocated_gib: float) -> float:
    """CUDA context + NCCL communicators (tp, pp, rdp groups of size > 1) + allocator fragmentation."""
    groups = sum(1 for size in (k.tp, k.pp, k.rdp) if size > 1)
    return CUDA_CONTEXT_GIB + NCCL_GIB_PER_GROUP * groups + FRAGMENTATION * allocated_gib


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Per-GPU memory: ``breakdown`` in GiB (framework overhead included), total, and offloaded host memory."""

    breakdown: dict[str, float]
    total_gib: float
    allocated_gib: float
    """What ``torch.cuda.max_memory_allocated`` would report: the total less context, NCCL and fragmentation."""
    host_offloaded_gib: float


def estimate_memory(k: Knobs) -> MemoryEstimate:
    """The per-GPU peak of the worse of the first stage (embeddings, most in flight) and the last (logits)."""
    if k.runtime == "native":
        from smlaunch.costmodel.native_memory import estimate_native_memory

        return estimate_native_memory(k)
    state = model_state_bytes(k)
    n = k.stage_layers
    first = activation_bytes(k, layers=n, in_flight=k.in_flight)
    last = activation_bytes(k, layers=n, in_flight=1)
    logits = logits_bytes(k)
    if k.pp == 1:
        acts, logit_term = first, logits
    elif sum(first.values()) - first["host"] >= sum(last.values()) - last["host"] + logits:
        acts, logit_term = first, 0.0
    else:
        acts, logit_term = last, logits
    terms = {
        **state,
        "activations": acts["activations"],
        "recompute_buffers": acts["recompute_buffers"],
        "logits": logit_term,
        "communication_buffers": comm_bytes(k),
    }
    breakdown = {name: value / GIB for name, value in terms.items()}
    allocated = sum(breakdown.values())
    breakdown["framework_overhead"] = overhead_gib(k, allocated)
    return MemoryEstimate(breakdown, sum(breakdown.values()), allocated, acts["host"] / GIB)


def with_changes(k: Knobs, **changes) -> Knobs:
    """A copy of ``k`` with some knobs changed (the planner's and the fix-finder's edit)."""
    return replace(k, **changes)


# The native runtime's terms, re-exported for the throughput model and the accuracy benchmark.
from smlaunch.costmodel.native_memory import (  # noqa: E402
    estimate_native_memory,
    native_logits_bytes,
    native_logits_elements,
    native_tp_input_cast,
)

__all__ = [
    "GIB", "Knobs", "MemoryEstimate", "checkpoint_group", "estimate_memory", "estimate_native_memory",
    "model_state_bytes", "native_logits_bytes", "native_logits_elements", "native_tp_input_cast", "padded_vocab",
    "stage_params", "with_changes",
]  # fmt: skip
