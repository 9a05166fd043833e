"""Per-GPU memory of the PyTorch-native entry point (``runtime="native"``, entrypoints/parallelize.py).

The peak over the moments of a step of what the entry point keeps; every number is counted from entrypoints/*.py
unless marked "fitted" (benchmarks/estimator_accuracy.md). The SMP v1 terms are in :mod:`smlaunch.costmodel.memory`.
"""

from __future__ import annotations

import math

from smlaunch.costmodel.memory import (
    GIB,
    Knobs,
    MemoryEstimate,
    checkpoint_group,
    layer_activation_bytes,
    overhead_gib,
    padded_vocab,
    stage_params,
)


def native_state_bytes(k: Knobs, n: float) -> dict[str, float]:
    """PyTorch-native entry point (entrypoints/parallelize.py): fp32 weights, fp32 gradients and AdamW moments
    (8 B), all divided by rdp under FSDP2 (``shard_optimizer_state``), whose ``reshard_after_forward=False`` also
    keeps every block's gathered fp32 weights (4 B, unsharded) alive from forward to backward; 16-bit weight
    copies (``master_gradients``, 2 B; see :data:`NATIVE_WEIGHT_COPY_BYTES` for when they exist)."""
    fsdp = k.shard_optimizer_state and k.rdp > 1
    shard = k.rdp if fsdp else 1
    return {
        "parameters": n * 4 / shard + (n * 4 if fsdp else 0),
        "gradients": n * 4 / shard,
        "optimizer_state": n * 8 / shard,
        "master_gradients": n * NATIVE_WEIGHT_COPY_BYTES if _native_weight_copies(k) else 0.0,
    }


NATIVE_WEIGHT_COPY_BYTES = 2
"""16-bit copies of the weights held from forward to backward, without checkpointing only. Eager: autocast caches
the cast of every fp32 leaf weight (thread-local cache, cleared when the ``autocast`` context, which also wraps
backward, exits). Compiled blocks: AOTAutograd saves the cast weights for backward. With checkpointing: none (the
6.7B tp1 ``each`` run peaks at 16 B/param + the tied-gradient copy: 100.12 GiB measured, 99.93 counted; the
compiled 6.7B tp4 ``each`` b8 run stays at its optimizer-step peak, 26.08 GiB, which 2 B/param would exceed)."""
NATIVE_SBH_LN_INPUTS = 8
"""Per s·b·h: the fp32 residual stream saved by ln_1 and ln_2 (2 x 4 B; autocast runs LayerNorm in fp32).
Sharded over t with sequence parallelism (SequenceParallel norms run on the local sequence shard)."""
NATIVE_SBH_CASTS = 8
"""Per s·b·h: the 16-bit casts of the LayerNorm outputs that q, k, v and c_fc each save (autocast casts a
non-leaf input once per op: 3 x 2 + 2). Replicated even with sequence parallelism: they are cast after the
all-gather (PrepareModuleInput Shard(1) -> Replicate) that feeds the column-parallel matmuls."""
NATIVE_SBH_CASTS_TP_INPUT = 4
"""Per s·b·h, tp > 1 with ``tp_input_cast``: Block casts ln_1's and ln_2's output once (2 + 2 B); q, k and v save
the same 16-bit tensor and the fp32 LayerNorm output is not saved (``Tensor.to``'s backward keeps nothing).
Counted from entrypoints/model.py (replaces :data:`NATIVE_SBH_CASTS`, 3 x 2 + 2, under tensor parallelism)."""
NATIVE_SBH_SHARDED = 24
"""Per s·b·h, split over t: q, k, v saved by flash SDPA (6), its output saved by attn.c_proj (2), c_fc's output
saved by GELU (8) and GELU's output saved by mlp.c_proj (8). Flash SDPA keeps no s² scores."""
NATIVE_CHECKPOINT_SBH = 4
"""Native checkpoints keep the block's fp32 residual-stream input: 4·s·b·h (/t with sequence parallelism)."""
NATIVE_COMPILED_ACTIVATION_RATIO = 0.87
"""FITTED. Saved activations of a torch.compile'd block relative to the eager count above (40 B/s·b·h at t = 1):
Inductor fuses the elementwise ops (e.g. one 16-bit cast of ln_1's output instead of three) and its partitioner
chooses what to save, which cannot be counted from the source. Least-squares fit (with 14 B/param fixed and
:data:`NATIVE_COMPILED_LOGITS_BYTES` free) over the 8 distinct compiled single-GPU H100 runs of
benchmarks/gpu_measurements.json (124M b16/32/64, 350M b16, 774M b12, 1.5B b8/12/16): 34.8 B/s·b·h = 0.87 x 40
and 2.03 B per logit; every fitted run within 2%. Held out: the compiled tensor-parallel runs (774M tp2,
6.7B tp2/tp4 b8)."""
NATIVE_LOGITS_BYTES = 12
"""Eager loss, per logit element: the fp32 gradient from nll_loss (4), the saved fp32 log-softmax output (4) and
log-softmax's fp32 input gradient (4) coexist in backward (``lm_loss`` upcasts the 16-bit logits)."""
NATIVE_LOSS_PARALLEL_BYTES = 18
"""tp > 1, pp = 1: ``loss_parallel()``'s DTensor log-softmax (torch/distributed/tensor/parallel/loss.py) keeps
more fp32 temporaries: 16-bit logits (2) + nll gradient (4) + saved output (4) + exp(output) (4) + product (4)."""
NATIVE_COMPILED_LOGITS_BYTES = 2
"""Compiled head + loss (plain single-stage model): only the saved 16-bit logits (2) are on top of the stored
activations at the peak; the fp32 upcast, log-softmax and its gradient are fused (no fp32 tensor of the logits'
size is materialised). FITTED together with :data:`NATIVE_COMPILED_ACTIVATION_RATIO` (2.03 B/element)."""
NATIVE_PIPELINE_OUTPUT_BYTES = 2
"""pp > 1: torch.distributed.pipelining's last stage keeps every microbatch's output (the 16-bit logits) in
``output_chunks`` until the step ends; GPipe also keeps each in-flight microbatch's fp32 log-softmax (4)."""
TIED_GRAD_BYTES = 4
"""End of backward, first stage: the embedding's dense fp32 gradient (4·V·h) before it is summed into the tied
lm_head gradient. With tp > 1 it is full-vocabulary (the vocab-sharded embedding's backward yields a Replicate
DTensor gradient, parallelize.py ``_sync_grads``) and the DTensor accumulation adds its Shard(0) slice and the
sum (2 x 4·V/t·h). Measured extra over 16 B/param: 0.15 GiB at 6.7B tp1 (4·V·h = 0.77), 1.6 / 1.2 GiB at
6.7B tp2 / tp4 with fused AdamW (counted 1.54 / 1.15)."""
FOREACH_TEMP_BYTES = 4
"""foreach AdamW (``optimizer="foreach"``) allocates one fp32 temporary per parameter
(``exp_avg_sq.sqrt() / bias_correction + eps``); fused AdamW allocates none. Measured: 6.7B tp2/tp4 with foreach
peak at 20.0 B/param (62.07 / 31.11 GiB); with fused AdamW at 16 B/param + the tied gradient (51.22 / 26.08)."""


def _native_weight_copies(k: Knobs) -> bool:
    """Only without checkpointing: a checkpointed segment's saved tensors (the casts included, eager or compiled)
    are dropped after forward and recomputed in backward."""
    return k.precision != "fp32" and checkpoint_group(k.checkpointing, k.stage_layers) == 0


def native_layer_activation_bytes(k: Knobs, sbh: float, scale: int) -> tuple[float, float]:
    """Bytes one layer stores for backward (full, checkpointed) under the native entry point."""
    t = k.tp
    ln = NATIVE_SBH_LN_INPUTS / (t if k.sequence_parallel else 1)
    casts = NATIVE_SBH_CASTS_TP_INPUT if native_tp_input_cast(k) else NATIVE_SBH_CASTS
    full = sbh * (ln + casts + NATIVE_SBH_SHARDED / t) * scale
    if k.compiled:
        full *= NATIVE_COMPILED_ACTIVATION_RATIO
    return full, NATIVE_CHECKPOINT_SBH * sbh / (t if k.sequence_parallel else 1)


def native_tp_input_cast(k: Knobs) -> bool:
    """Whether attn/mlp inputs are cast to 16 bits before the TP layers (see ``Knobs.tp_input_cast``)."""
    return k.runtime == "native" and k.tp > 1 and k.tp_input_cast and k.precision != "fp32"


def native_logits_elements(k: Knobs) -> float:
    """Logit elements of one microbatch on one rank: vocab-sharded only with loss_parallel (tp > 1, pp = 1)."""
    vocab = padded_vocab(k.vocab_size, k.tp)
    return k.group_batch * k.seq_length * (vocab / k.tp if k.pp == 1 else vocab)


def native_logits_bytes(k: Knobs) -> float:
    """Peak bytes of the loss of one microbatch (see the NATIVE_*LOGITS* constants)."""
    if k.tp > 1 and k.pp == 1:
        per = NATIVE_LOSS_PARALLEL_BYTES
    elif k.compiled and k.tp == 1 and k.pp == 1 and not (k.shard_optimizer_state and k.rdp > 1):
        per = NATIVE_COMPILED_LOGITS_BYTES
    else:
        per = NATIVE_LOGITS_BYTES
    return native_logits_elements(k) * per


def estimate_native_memory(k: Knobs) -> MemoryEstimate:
    """Peak ``torch.cuda.max_memory_allocated`` of the native entry point: the largest of four moments of a step,
    each on the stage where it is largest.

    * forward/backward (first stage): states + weight copies + stored activations of the microbatches in flight
      (+ the gradients once a backward has run: 1F1B with m > pp, GPipe's first backward, accumulation m > 1)
      + the recompute working set;
    * loss (last stage, or the only one): the same with one microbatch in flight (1F1B) plus the loss's logits,
      and with pp > 1 the outputs the pipeline keeps (:data:`NATIVE_PIPELINE_OUTPUT_BYTES`);
    * end of backward: 16 B/param + the autocast cache + the tied wte gradient's second copy (4·V/t·h: the
      embedding's dense gradient is summed into the lm_head one) + DDP's flat fp32 gradient copy (4 B/param);
    * optimizer step: 16 B/param + foreach AdamW's temporary (:data:`FOREACH_TEMP_BYTES`) with DTensor params.
    """
    n = stage_params(k)
    state = native_state_bytes(k, n)
    grads = state["gradients"]
    base = {**state, "gradients": 0.0}
    full, ckpt = layer_activation_bytes(k)
    layers = k.stage_layers
    group = checkpoint_group(k.checkpointing, layers)
    stored = layers * full if group == 0 else math.ceil(layers / group) * ckpt
    recompute = group * full if group else 0.0
    phases = _forward_backward_phases(k, base, grads, stored, recompute)
    phases += _end_of_step_phases(k, state, n, group)
    peak = max(phases, key=lambda terms: sum(terms.values()))
    breakdown = {name: value / GIB for name, value in peak.items()}
    allocated = sum(breakdown.values())
    breakdown["framework_overhead"] = overhead_gib(k, allocated)
    return MemoryEstimate(breakdown, sum(breakdown.values()), allocated, 0.0)


_ZERO = {
    "activations": 0.0,
    "recompute_buffers": 0.0,
    "logits": 0.0,
    "communication_buffers": 0.0,
    "temporaries": 0.0,
}


def _forward_backward_phases(
    k: Knobs, base: dict[str, float], grads: float, stored: float, recompute: float
) -> list[dict[str, float]]:
    """The forward/backward moments: the first stage's activations in flight, the last stage's loss."""
    logits_elems = native_logits_elements(k)
    loss = native_logits_bytes(k)
    m = k.microbatches
    zero = _ZERO
    phases = []
    if k.pp == 1:  # microbatches run one after another (gradient accumulation): one in flight
        phases.append(
            {
                **base,
                **zero,
                "gradients": grads if m > 1 else 0.0,
                "activations": stored,
                "recompute_buffers": recompute,
                "logits": loss,
            }
        )
    else:
        if k.one_f_one_b:  # stage 0 warms up pp forwards; after the first backward, forwards resume with grads
            w, first_grads, last_in_flight = k.pp, m > k.pp, 1
            first_acts = max(w * stored + (grads if first_grads else 0.0), grads + (w - 1) * stored)
            last_logits = loss + NATIVE_PIPELINE_OUTPUT_BYTES * logits_elems * m
        else:  # GPipe rounds of r: all r forwards, then all r backwards
            r = k.native_round
            first_acts = max(r * stored + (grads if m > r else 0.0), grads + (r - 1) * stored)
            last_in_flight = r
            kept = (NATIVE_PIPELINE_OUTPUT_BYTES + 4) * logits_elems * (r - 1)
            last_logits = loss + kept + NATIVE_PIPELINE_OUTPUT_BYTES * logits_elems * (m - r + 1)
        phases.append({**base, **zero, "activations": first_acts, "recompute_buffers": recompute})
        phases.append(
            {
                **base,
                **zero,
                "gradients": grads if m > 1 else 0.0,
                "activations": last_in_flight * stored,
                "recompute_buffers": recompute,
                "logits": last_logits,
            }
        )
    return phases


def _end_of_step_phases(k: Knobs, state: dict[str, float], n: float, group: int) -> list[dict[str, float]]:
    """The pipeline's merged outputs, the end of backward, DDP's flat copy and the optimizer step."""
    fsdp = k.shard_optimizer_state and k.rdp > 1
    logits_elems = native_logits_elements(k)
    m = k.microbatches
    zero = _ZERO
    phases = []
    if k.pp > 1:  # the last stage's step() returns torch.cat of its output chunks: both alive, all grads done
        merged = 2 * NATIVE_PIPELINE_OUTPUT_BYTES * logits_elems * m
        phases.append({**state, **zero, "master_gradients": 0.0, "logits": merged})
    cache = state["master_gradients"] if (group == 0 and not k.compiled) else 0.0
    vocab_h = padded_vocab(k.vocab_size, k.tp) * k.hidden_width
    tied = TIED_GRAD_BYTES * vocab_h * (1 + (2 / k.tp if k.tp > 1 else 0)) / (k.rdp if fsdp else 1)
    phases.append({**state, **zero, "master_gradients": cache, "temporaries": tied})
    if k.rdp > 1 and not fsdp:  # DDP semantics: one flat fp32 copy of all gradients, all-reduced
        phases.append({**state, **zero, "master_gradients": 0.0, "communication_buffers": n * 4})
    dtensor = k.optimizer == "foreach"
    phases.append(
        {
            **state,
            **zero,
            "master_gradients": 0.0,
            "parameters": n * 4 / (k.rdp if fsdp else 1),
            "temporaries": FOREACH_TEMP_BYTES * n / (k.rdp if fsdp else 1) if dtensor else 0.0,
        }
    )
    return phases
