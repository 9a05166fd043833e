"""Why the planner chose a configuration, in the best-practices page's terms; and the page's extrapolation.

The page (seeds/smp-best-practices.txt): use the fewest features that fit ("adding more model parallelism or
memory saving features does not usually improve performance"), keep tensor parallelism inside a node (a power
of two up to the GPUs per node), run pipeline parallelism across nodes, use prescaled_batch with tp x pp, and
to extrapolate from a reference configuration "lower batch size first. If the model still doesn't fit, try
increasing the degree of tensor parallelism" (:func:`refit`).
"""

from __future__ import annotations

from dataclasses import replace

from smlaunch.catalog import Instance
from smlaunch.costmodel.memory import Knobs, estimate_memory


def _fits_without(k: Knobs, capacity: float, **changes) -> tuple[bool, float]:
    gib = estimate_memory(replace(k, **changes)).total_gib
    return gib <= capacity, gib


def _feature_notes(k: Knobs, capacity: float) -> list[str]:
    notes = []
    checks = [
        ("optimizer state sharding over rdp", k.shard_optimizer_state, {"shard_optimizer_state": False}),
        (
            f"activation checkpointing ({k.checkpointing})",
            k.checkpointing != "none",
            {"checkpointing": "none", "offload_activations": False},
        ),
        ("activation offloading", k.offload_activations, {"offload_activations": False}),
    ]
    for name, on, off in checks:
        if not on:
            continue
        fits, gib = _fits_without(k, capacity, **off)
        if fits:
            notes.append(
                f"{name} is on although it would fit without it ({gib:.1f} GiB): the estimate ranks it at least as fast"
            )
        else:
            notes.append(f"{name} is needed: without it {gib:.1f} GiB > {capacity:.0f} GiB")
    return notes


def explain(best, options: list, instance: Instance) -> str:
    """One paragraph: the choice, its numbers, and each feature justified by memory or speed."""
    k: Knobs = best.estimate.knobs
    est = best.estimate
    gpus, capacity = instance.num_gpus, instance.gpu.memory_gib
    parts = [
        f"Fastest of {len(options)} configurations that fit: {est.throughput.tokens_per_s:,.0f} tokens/s at "
        f"{est.memory.total_gib:.1f} of {capacity:.0f} GiB per GPU."
    ]
    if k.tp > 1:
        parts.append(
            f"Tensor parallelism {k.tp} is a power of two inside one {instance.name} ({gpus} GPUs), so its "
            "per-layer all-reduces stay on NVLink."
        )
    else:
        parts.append("The model fits without tensor parallelism, so there is none (fewest features that fit).")
    if k.pp > 1:
        where = "across nodes" if k.tp * k.pp > gpus else "inside a node"
        parts.append(
            f"Pipeline parallelism {k.pp} runs {where} with {k.microbatches} microbatches "
            f"({est.throughput.bubble_fraction:.0%} bubble) and {k.active_microbatches} in flight"
            + (", with prescaled_batch as the page recommends for tp x pp." if k.tp > 1 else ".")
        )
    elif k.tp > 1 and k.prescaled_batch:
        parts.append("prescaled_batch gives each tensor-parallel group one batch, larger GEMMs per rank.")
    if k.checkpointing == "none":
        parts.append(
            "Activation checkpointing is off: the activations fit, which saves the recompute "
            "(one more forward, about a third of the layer FLOPs)."
        )
    notes = _feature_notes(k, capacity)
    if notes:
        parts.append("; ".join(n[0].upper() + n[1:] for n in notes) + ".")
    fewer = [o for o in options if _features(o.knobs) < _features(k)]
    if fewer:
        f = max(fewer, key=lambda o: o.tokens_per_s)
        parts.append(
            f"The fastest configuration with fewer features (tp {f.knobs.tp}, pp {f.knobs.pp}, "
            f"{f.knobs.checkpointing} checkpointing) reaches {f.tokens_per_s:,.0f} tokens/s."
        )
    return " ".join(parts)


def _features(k: Knobs) -> int:
    return sum((k.tp > 1, k.pp > 1, k.shard_optimizer_state, k.checkpointing != "none", k.offload_activations))


def refit(spec) -> tuple[dict, list[str]]:
    """The page's extrapolation: lower ``training.batch_size`` first; if even the smallest batch does not fit,
    raise ``smp.tensor_parallel_degree`` (a power of two inside the node) and lower the batch again.

    Returns the ``{dotted field: value}`` changes and the steps taken, in order. Raises PlanError if nothing fits.
    """
    from smlaunch.costmodel import estimate
    from smlaunch.errors import PlanError

    changes: dict = {}
    steps: list[str] = []
    tp = spec.smp.tensor_parallel_degree
    gpus = spec.cluster.gpus_per_host or 1
    micro = spec.smp.microbatches
    while tp <= gpus:
        trial = _with(spec, {"smp.tensor_parallel_degree": tp})
        if estimate(trial).fits:
            return changes, steps
        batch = _largest_fitting_batch(trial, micro, estimate)
        if batch is not None:
            steps.append(f"lower training.batch_size to {batch}")
            changes["training.batch_size"] = batch
            return changes, steps
        steps.append(f"batch_size {micro} still does not fit at tensor_parallel_degree {tp}")
        tp *= 2
        if tp <= gpus:
            steps.append(f"raise smp.tensor_parallel_degree to {tp}")
            changes["smp.tensor_parallel_degree"] = tp
    raise PlanError(f"no batch size fits even at tensor_parallel_degree {gpus}", fix="add pipeline stages")


def _largest_fitting_batch(spec, micro: int, estimate) -> int | None:
    """The largest multiple of ``micro`` below the spec's batch that fits, by bisection (memory grows with the
    batch): O(log batch) estimates, where walking down from a 32,000,000 typo took minutes."""
    lo, hi, best = 1, (spec.training.batch_size - 1) // micro, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if estimate(_with(spec, {"training.batch_size": mid * micro})).fits:
            best, lo = mid * micro, mid + 1
        else:
            hi = mid - 1
    return best


def _with(spec, changes: dict):
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        spec = spec.model_copy(update={section: getattr(spec, section).model_copy(update={key: value})})
    return spec
