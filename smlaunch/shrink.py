"""Fit a job spec onto this machine: one host, the same tensor x pipeline layout, a model small enough to run.

``adapt(spec, nproc=..., device=..., shrink="auto")`` returns the spec ``smlaunch local`` renders and the list
of :class:`Change` s it made (printed as a before -> after table). What is kept and why:

- ``tensor_parallel_degree`` and ``pipeline_parallel_degree``: the point of a local run is the layout.
- ``microbatches``, the pipeline schedule, activation checkpointing, sharding flags: same code paths.
- The cluster becomes one host with ``nproc`` processes (data parallel = nproc / (tp x pp)).

With ``shrink="auto"`` a model larger than the local budget (:data:`CPU_BUDGET_PARAMS` on CPU,
:data:`GPU_BUDGET_PARAMS` per tp x pp group on GPUs) is shrunk, keeping every divisibility the layout needs:

    heads  = round_up(min(heads, 4), tp)           heads % tp == 0
    hidden = heads x min(head_dim, 16)             hidden % heads == 0 (and so hidden % tp == 0)
    layers = pp x max(1, 2 // pp)                  layers >= pp, layers % pp == 0
    seq    = min(seq, 64), a multiple of tp        sequence parallelism splits it over tp
    vocab  = round_up(256, 128 x tp)               already padded (the model pads to 128 x tp); synthetic data only
    batch  = microbatches (the smallest batch_size % microbatches == 0, rule SMP008)
    max_steps = 5 (``--steps`` overrides)

e.g. GPT-2 60B (74 x 8192, 64 heads, tp 8 x pp 2): 2 layers x 128 hidden, 8 heads, seq 64, batch 4, 5 steps.
fp16/bf16 are turned off on CPU in every mode (no half-precision autocast for these kernels there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from smlaunch.layout import resolve
from smlaunch.spec.models import JobSpec

CPU_BUDGET_PARAMS = 20_000_000
"""Largest model ``--shrink auto`` leaves alone on CPU (a few seconds per step with 2-16 processes)."""

GPU_BUDGET_PARAMS = 400_000_000
"""Largest model per tp x pp group ``--shrink auto`` leaves alone on GPUs (~6.4 GB of fp32 Adam state per GPU)."""

SHRUNK_STEPS = 5
"""max_steps of a shrunk run unless ``--steps`` says otherwise."""

Shrink = Literal["auto", "none"]


@dataclass(frozen=True)
class Change:
    """One value the local run changes: ``field`` (dotted), ``before`` -> ``after``, and why."""

    field: str
    before: Any
    after: Any
    reason: str


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def padded_vocab(vocab_size: int, tp: int) -> int:
    """The vocabulary the entry point's model allocates: a multiple of 128 x tp."""
    return _round_up(vocab_size, 128 * tp)


def needs_shrinking(spec: JobSpec, *, device: str) -> bool:
    """True when the model is over the local budget for ``device`` ("cpu" or "cuda")."""
    smp = spec.smp
    if device == "cpu":
        return spec.model.num_params() > CPU_BUDGET_PARAMS or spec.model.seq_length > 256
    return spec.model.num_params() > GPU_BUDGET_PARAMS * smp.tensor_parallel_degree * smp.pipeline_parallel_degree


def shrunk_model(spec: JobSpec) -> dict[str, int]:
    """The model shape a shrunk run uses (see the module docstring for the arithmetic)."""
    model, smp = spec.model, spec.smp
    tp, pp = smp.tensor_parallel_degree, smp.pipeline_parallel_degree
    heads = _round_up(min(model.num_heads, 4), tp)
    head_dim = min(model.hidden_width // model.num_heads, 16)
    seq = max(tp, min(model.seq_length, 64) // tp * tp)
    shape = {
        "num_layers": min(model.num_layers, pp * max(1, 2 // pp)),
        "hidden_width": heads * head_dim,
        "num_heads": heads,
        "seq_length": seq,
        "vocab_size": model.vocab_size,
    }
    if "train" not in spec.data:  # synthetic tokens: any vocabulary works; real shards need every id < vocab
        shape["vocab_size"] = min(model.vocab_size, padded_vocab(256, tp))
    return shape


def smallest_batch(spec: JobSpec) -> int:
    """Smallest batch_size whose group batch splits into the spec's microbatches."""
    # the rulebook (SMP008) wants batch_size % microbatches == 0 whether or not the batch is prescaled; the entry
    # point alone would accept tp x batch % microbatches == 0, but the shrunk spec must validate too
    return min(spec.training.batch_size, resolve(spec).microbatches)


def adapt(
    spec: JobSpec,
    *,
    nproc: int,
    device: str,
    shrink: Shrink = "auto",
    steps: int | None = None,
    hosts: int = 1,
) -> tuple[JobSpec, list[Change]]:
    """The spec a local run renders, and what changed. ``device`` is "cpu" or "cuda"; ``nproc`` processes in all,
    spread evenly over ``hosts`` (``--docker`` containers)."""
    changes: list[Change] = []
    reason_steps = "--steps" if steps is not None else "shrunk run"
    per_host = nproc // hosts
    cluster = {"instance_count": hosts, "processes_per_host": per_host}
    smp: dict[str, Any] = {}
    training: dict[str, Any] = {}
    model: dict[str, Any] = {}
    if spec.cluster.instance_count != hosts:
        why = "one local host" if hosts == 1 else f"{hosts} local containers"
        changes.append(Change("cluster.instance_count", spec.cluster.instance_count, hosts, why))
    if spec.cluster.gpus_per_host != per_host:
        lay = resolve(spec)
        dp = nproc // (lay.tp * lay.pp)
        where = "" if hosts == 1 else f" over {hosts} hosts"
        changes.append(
            Change(
                "cluster.processes_per_host",
                spec.cluster.gpus_per_host,
                per_host,
                f"local processes: tp x pp x dp({dp}){where}",
            )
        )
    if device == "cpu":
        for flag in ("fp16", "bf16"):
            if getattr(spec.smp, flag):
                smp[flag] = False
                changes.append(Change(f"smp.{flag}", True, False, "CPU runs in fp32"))
    _fit_sharded_data_parallel(spec, nproc, smp, changes)
    if shrink == "auto" and needs_shrinking(spec, device=device):
        model = shrunk_model(spec)
        budget = CPU_BUDGET_PARAMS if device == "cpu" else GPU_BUDGET_PARAMS
        for key, after in model.items():
            before = getattr(spec.model, key)
            reason = f"model {spec.model.num_params() / 1e9:.1f}B > local budget {budget / 1e6:.0f}M params"
            if key == "vocab_size" and "train" in spec.data:
                reason = "kept: the data's token ids must stay < vocab_size"
            elif key == "vocab_size":
                reason = f"synthetic tokens; already a multiple of 128 x tp({spec.smp.tensor_parallel_degree})"
            if before != after or key == "vocab_size":
                changes.append(Change(f"model.{key}", before, after, reason))
        batch = smallest_batch(spec)
        if batch != spec.training.batch_size:
            training["batch_size"] = batch
            changes.append(
                Change(
                    "training.batch_size",
                    spec.training.batch_size,
                    batch,
                    f"smallest batch with batch_size % microbatches({spec.smp.microbatches}) == 0",
                )
            )
        steps = steps or min(spec.training.max_steps, SHRUNK_STEPS)
    if steps is not None and steps != spec.training.max_steps:
        training["max_steps"] = steps
        changes.append(Change("training.max_steps", spec.training.max_steps, steps, reason_steps))
        warmup = min(spec.training.warmup_steps, steps // 5)
        if warmup != spec.training.warmup_steps:
            training["warmup_steps"] = warmup
            changes.append(Change("training.warmup_steps", spec.training.warmup_steps, warmup, "max_steps // 5"))
    return _copy(spec, cluster=cluster, smp=smp, training=training, model=model), changes


def _fit_sharded_data_parallel(spec: JobSpec, nproc: int, smp: dict[str, Any], changes: list[Change]) -> None:
    """Sharded data parallelism must divide the local dp (SMP020); without it bf16 is refused (SMP019)."""
    sdp = spec.smp.sharded_data_parallel_degree
    if sdp == 1:
        return
    local_dp = max(nproc // spec.smp.pipeline_parallel_degree, 1)
    fitted = math.gcd(sdp, local_dp)
    if fitted != sdp:
        smp["sharded_data_parallel_degree"] = fitted
        changes.append(Change("smp.sharded_data_parallel_degree", sdp, fitted, f"must divide the local dp({local_dp})"))
    if fitted == 1 and spec.smp.bf16 and smp.get("bf16", True):
        smp["bf16"] = False
        changes.append(Change("smp.bf16", True, False, "bf16 needs sharded data parallelism (SMP019)"))


def _copy(spec: JobSpec, **sections: dict[str, Any]) -> JobSpec:
    """``spec`` with sections updated through ``model_copy`` (keeps which fields were set explicitly, so
    ``to_mp_parameters`` emits the same keys)."""
    update = {name: getattr(spec, name).model_copy(update=values) for name, values in sections.items() if values}
    return spec.model_copy(update=update)
