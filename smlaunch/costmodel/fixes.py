"""The memory rule ``MEM001``: the estimate exceeds the GPU; each suggested fix is re-estimated and fits.

Candidate fixes change one thing, in the best-practices page's terms: lower the batch size, turn on activation
checkpointing, shard the optimizer state, raise tensor parallelism (a power of two inside a node), use
``optimize: memory``, lower ``active_microbatches``, add pipeline stages. The fixes that fit are ranked by
estimated throughput (the cheapest first) and the best three are named.
"""

from __future__ import annotations

from dataclasses import dataclass

from smlaunch.costmodel import (
    HEADROOM,
    Estimate,
    estimate_knobs,
    find_instance,
    job_options,
    knobs_from_spec,
    usable_gib,
)
from smlaunch.layout import Layout, resolve
from smlaunch.spec.findings import Finding
from smlaunch.spec.models import JobSpec

MAX_FIXES = 3


@dataclass(frozen=True, slots=True)
class Fix:
    """One single-field change and its checked estimate."""

    path: tuple[str, str]
    value: object
    text: str
    estimate: Estimate


def layout_ok(spec: JobSpec, lay: Layout) -> bool:
    """The arithmetic the estimate needs; other rules report the rest."""
    m = spec.model
    return (lay.instance is not None or find_instance(spec.cluster.instance_type) is not None) and (
        lay.world % (lay.tp * lay.pp) == 0
        and m.num_heads % lay.tp == 0
        and m.hidden_width % m.num_heads == 0
        and lay.pp <= m.num_layers
        and lay.batch_size % lay.microbatches == 0
    )


def memory_findings(spec: JobSpec, *, estimate: Estimate | None = None) -> list[Finding]:
    """[] when the spec fits with the margin (or cannot be estimated); else MEM001 (it does not fit: an error) or
    MEM002 (it fits with less than :data:`HEADROOM` to spare: a warning), with fixes checked to leave the margin.

    ``estimate``: the caller's estimate of ``spec``, so that validating and estimating cost one estimate.
    """
    est = estimate or estimate_if_possible(spec)
    if est is None or est.fits_with_margin:
        return []
    instance = est.instance
    fixes = find_fixes(spec, est)
    field = ".".join(fixes[0].path) if fixes else "smp.tensor_parallel_degree"
    message, fix = _message(spec, est), _fix_text(spec, fixes, usable_gib(instance))
    rule, severity = ("MEM002", "warning") if est.fits else ("MEM001", "error")
    line = spec.source.line_of(tuple(field.split("."))) if spec.source is not None else None
    return [Finding(rule, severity, field, message, fix, line)]


def estimate_if_possible(spec: JobSpec) -> Estimate | None:
    """The spec's estimate, or None when its instance type or layout cannot be estimated (rules report why)."""
    instance = find_instance(spec.cluster.instance_type)
    lay = resolve(spec)
    if instance is None or not layout_ok(spec, lay):
        return None
    return estimate_knobs(knobs_from_spec(spec, lay), lay, instance, spec.training.max_steps, **job_options(spec))


def _message(spec: JobSpec, est: Estimate) -> str:
    top = sorted(est.memory.breakdown.items(), key=lambda kv: -kv[1])[:3]
    largest = ", ".join(f"{name} {gib:.1f}" for name, gib in top)
    gpu = est.instance.gpu.name
    if est.fits:
        spare = 100 * est.headroom_gib / est.gpu_memory_gib
        return (
            f"estimated {est.memory.total_gib:.1f} GiB per GPU fits {est.gpu_memory_gib:.1f} GiB of {gpu} with "
            f"{spare:.1f}% to spare, under the {100 * HEADROOM:.0f}% margin of the cost model's measured error "
            f"(largest: {largest} GiB)"
        )
    return (
        f"estimated {est.memory.total_gib:.1f} GiB per GPU > {est.gpu_memory_gib:.1f} GiB of {gpu} on "
        f"{est.instance.name} (largest: {largest} GiB)"
    )


def _fix_text(spec: JobSpec, fixes: list[Fix], usable: float) -> str:
    if fixes:
        return " or ".join(f.text for f in fixes) + f" (each leaves {100 * HEADROOM:.0f}% free: <= {usable:.1f} GiB)"
    return (
        f"no single change fits with {100 * HEADROOM:.0f}% to spare; run `smlaunch plan --model "
        f"{spec.model.preset or 'job.yaml'} --instance-type {spec.cluster.instance_type} --instance-count "
        f"{spec.cluster.instance_count}`, or use more instances / an instance with more GPU memory"
    )


def find_fixes(spec: JobSpec, est: Estimate) -> list[Fix]:
    """Single changes that make ``spec`` fit, fastest first."""
    found = [fix for fix in _candidates(spec, est) if fix is not None and fix.estimate.fits_with_margin]
    return rank_fixes(found, MAX_FIXES)


def rank_fixes(found: list[Fix], limit: int) -> list[Fix]:
    """The fastest ``limit`` fixes (least memory breaks a tie), one per spec field."""
    found = sorted(found, key=lambda f: (-f.estimate.throughput.tokens_per_s, f.estimate.memory.total_gib))
    seen, result = set(), []
    for fix in found:
        if fix.path not in seen:
            seen.add(fix.path)
            result.append(fix)
    return result[:limit]


def _try(spec: JobSpec, est: Estimate, path: tuple[str, str], value: object) -> Fix | None:
    new = estimate_changed(spec, est, {path: value})
    if new is None:
        return None
    return Fix(path, value, f"set {change_text({path: value})} (est. {new.memory.total_gib:.1f} GiB)", new)


def estimate_changed(spec: JobSpec, est: Estimate, changes: dict[tuple[str, str], object]) -> Estimate | None:
    """The estimate of ``spec`` with ``changes`` ({(section, field): value}) on ``est``'s instance; None when the
    changed layout cannot be estimated."""
    new_spec = spec
    for (section, name), value in changes.items():
        part = getattr(new_spec, section).model_copy(update={name: value})
        new_spec = new_spec.model_copy(update={section: part})
    lay = resolve(new_spec)
    if not layout_ok(new_spec, lay):
        return None
    return estimate_knobs(
        knobs_from_spec(new_spec, lay), lay, est.instance, spec.training.max_steps, **job_options(new_spec)
    )


def change_text(changes: dict[tuple[str, str], object]) -> str:
    """``smp.tensor_parallel_degree: 1 and smp.pipeline_parallel_degree: 4``: changes as a fix words them."""
    shown = (str(v).lower() if isinstance(v, bool) else v for v in changes.values())
    return " and ".join(f"{'.'.join(path)}: {value}" for path, value in zip(changes, shown, strict=True))


def _candidates(spec: JobSpec, est: Estimate):
    lay, smp, training = est.layout, spec.smp, spec.training
    gpus = lay.gpus_per_node
    yield _largest_batch_that_fits(spec, est)
    if training.activation_checkpointing != "each":
        yield _try(spec, est, ("training", "activation_checkpointing"), "each")
    if not smp.shard_optimizer_state and lay.rdp > 1 and smp.sharded_data_parallel_degree == 1:
        yield _try(spec, est, ("smp", "shard_optimizer_state"), True)
    tp = lay.tp * 2
    while tp <= gpus:
        fix = _try(spec, est, ("smp", "tensor_parallel_degree"), tp)
        if fix and fix.estimate.fits_with_margin:
            yield fix
            break
        tp *= 2
    if lay.tp > 1 and smp.optimize == "speed":
        yield _try(spec, est, ("smp", "optimize"), "memory")
    if lay.pp > 1 and lay.active_microbatches > 1:
        yield _try(spec, est, ("smp", "active_microbatches"), max(1, lay.active_microbatches // 2))
    pp = lay.pp * 2
    if lay.microbatches >= pp:
        yield _try(spec, est, ("smp", "pipeline_parallel_degree"), pp)


def _largest_batch_that_fits(spec: JobSpec, est: Estimate) -> Fix | None:
    """The largest smaller multiple of microbatches that fits, by bisection (memory grows with the batch)."""
    step = est.layout.microbatches
    lo, hi = 0, (spec.training.batch_size - 1) // step  # batch = k x step; k = 0 stands for "nothing fits"
    best = None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        fix = _try(spec, est, ("training", "batch_size"), mid * step)
        if fix is not None and fix.estimate.fits_with_margin:
            lo, best = mid, fix
        else:
            hi = mid - 1
    return best  # the fix at the final lo: lo moves only onto a batch that fits
