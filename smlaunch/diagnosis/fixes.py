"""Fixes that come from the cost model: the smallest change that fits after a CUDA OOM (the fixes of MEM001,
:mod:`smlaunch.costmodel.fixes`), and the run time a job stopped at ``max_run_hours`` needs.

A job that ran out of GPU memory although its estimate fitted shows the estimate was low: a fix must then bring the
estimate down by at least that much, i.e. to ``usable x estimate / GPU memory`` (the estimate scaled by what the
run proved: it needed at least the whole GPU).
"""

from __future__ import annotations

import math

from smlaunch.diagnosis.context import FailureContext
from smlaunch.progress import format_duration, parse_step_line


def oom_fix(ctx: FailureContext) -> tuple[str | None, str, str]:
    """(field, fix, the estimate in words) for a CUDA OOM."""
    spec = ctx.spec
    fallback = (
        "training.batch_size",
        "lower training.batch_size, or set training.activation_checkpointing: each or raise "
        "smp.tensor_parallel_degree (the job's spec was not stored with it, so the cost model could not size a fix)",
        "",
    )
    if spec is None:
        return fallback
    from smlaunch.costmodel import HEADROOM, usable_gib
    from smlaunch.costmodel.fixes import change_text, find_fixes

    est = _estimate(spec)
    if est is None:
        return fallback
    said = f" (the cost model estimated {est.memory.total_gib:.1f} of {est.gpu_memory_gib:.1f} GiB per GPU)"
    usable = usable_gib(est.instance)
    if not est.fits:
        fixes, target = find_fixes(spec, est), usable
    else:
        target = usable * est.memory.total_gib / est.gpu_memory_gib
        fixes = _fixes_below(spec, est, target)
    if not fixes:
        return (
            None,
            f"no single change brings the estimate under {target:.1f} GiB: run `smlaunch plan` for a layout that "
            "fits, or use more instances or GPUs with more memory",
            said,
        )
    texts = [f"set {change_text({f.path: f.value})} (est. {f.estimate.memory.total_gib:.1f} GiB)" for f in fixes]
    margin = f"each estimated <= {target:.1f} GiB, {100 * HEADROOM:.0f}% under the GPU"
    if est.fits:
        margin += " once scaled by the memory this run proved it needed"
    return ".".join(fixes[0].path), " or ".join(texts) + f" ({margin})", said


def _fixes_below(spec, est, target: float):
    """MEM001's candidate changes whose estimate is <= ``target`` GiB, fastest first, plus the largest batch that
    gets there (the candidates' own batch search stops at the unscaled margin)."""
    from smlaunch.costmodel.fixes import Fix, _candidates, _try, rank_fixes

    found = [f for f in _candidates(spec, est) if f is not None and f.estimate.memory.total_gib <= target]
    step = est.layout.microbatches

    def fitting(units: int) -> Fix | None:
        fix = _try(spec, est, ("training", "batch_size"), units * step)
        return fix if fix is not None and fix.estimate.memory.total_gib <= target else None

    # the largest smaller batch (a multiple of microbatches) that fits: bisection, memory grows with the batch
    low, high, best = 1, (spec.training.batch_size - step) // step, None
    while low <= high:
        mid = (low + high) // 2
        if (fix := fitting(mid)) is not None:
            best, low = fix, mid + 1
        else:
            high = mid - 1
    if best is not None:
        found.append(best)
    return rank_fixes(found, 3)


def last_step(ctx: FailureContext) -> int | None:
    """The last ``step=N ...`` line any host logged."""
    steps = [m["step"] for lines in ctx.logs.values() for line in lines if (m := parse_step_line(line))]
    return int(max(steps)) if steps else None


def run_time_fix(ctx: FailureContext) -> tuple[str, str]:
    """(summary, fix) for a job stopped at MaxRuntimeInSeconds: what it did, what the estimate said, what to set."""
    limit_h = ctx.max_run_s / 3600 if ctx.max_run_s else (ctx.spec.cluster.max_run_hours if ctx.spec else None)
    max_steps = ctx.spec.training.max_steps if ctx.spec is not None else ctx.extra.get("max_steps")
    step = last_step(ctx)
    limit = f"{limit_h:g} h" if limit_h else "its limit"
    done = f" after step {step} of {max_steps}" if step and max_steps else ""
    summary = f"stopped at cluster.max_run_hours ({limit}){done}"
    estimate_s = _estimated_s(ctx)
    if estimate_s is not None:
        summary += f"; the cost model estimated the whole job at ~{format_duration(estimate_s)}"
    ran = ctx.ran_s or (ctx.max_run_s or 0)
    if step and max_steps and ran:
        needed = ran * max_steps / step
        hours = math.ceil(needed * 1.2 / 3600)
        return summary, (
            f"set cluster.max_run_hours: {hours} (at this run's pace the {max_steps} steps need "
            f"~{format_duration(needed)}, plus 20%), or lower training.max_steps; with output.checkpoint_s3_uri a "
            "new job resumes from the last checkpoint"
        )
    if estimate_s is not None:
        hours = math.ceil(estimate_s * 1.2 / 3600)
        return summary, f"set cluster.max_run_hours: {hours} (the estimate plus 20%), or lower training.max_steps"
    return summary, "raise cluster.max_run_hours (SageMaker allows up to 672 h), or lower training.max_steps"


def _estimated_s(ctx: FailureContext) -> float | None:
    est = _estimate(ctx.spec) if ctx.spec is not None else None
    return est.time_s if est is not None else None


def _estimate(spec):
    """The spec's estimate, or None when the cost model cannot make one (a diagnosis never fails on it)."""
    from smlaunch.costmodel.fixes import estimate_if_possible
    from smlaunch.errors import SmlaunchError

    try:
        return estimate_if_possible(spec)
    except (SmlaunchError, ValueError, ZeroDivisionError):
        return None
