"""The cost model's verdicts on a spec, as findings: GPU memory (MEM001/MEM002), run time (RUN001), host memory
(HOST001).

    cost_findings(spec)                 estimate once, then every verdict that needs it
    cost_findings(spec, estimate=est)   the caller's estimate (submit shows it too)

:func:`smlaunch.validation.validate` adds these to the rulebook's findings.
"""

from __future__ import annotations

import math

from smlaunch.catalog import GIB
from smlaunch.costmodel import Estimate
from smlaunch.costmodel.fixes import estimate_if_possible, memory_findings
from smlaunch.costmodel.memory import model_params
from smlaunch.progress import format_duration
from smlaunch.spec.findings import Finding
from smlaunch.spec.models import JobSpec

MAX_RUN_HOURS = 672
"""SageMaker's longest training job: MaxRuntimeInSeconds <= 2,419,200 s (28 days; sagemaker-contract.md)."""
RUN_TIME_MARGIN = 0.10
"""A job estimated within 10% of cluster.max_run_hours gets a warning: SageMaker stops it at the limit."""


def cost_findings(spec: JobSpec, *, estimate: Estimate | None = None) -> list[Finding]:
    """Memory and run-time verdicts; [] when the spec cannot be estimated (the rules say why)."""
    est = estimate or estimate_if_possible(spec)
    if est is None:
        return []
    return [*memory_findings(spec, estimate=est), *run_time_findings(spec, est), *host_memory_findings(spec, est)]


def run_time_findings(spec: JobSpec, est: Estimate) -> list[Finding]:
    """RUN001: the estimated whole-job time against ``cluster.max_run_hours`` (an error past it, a warning within
    :data:`RUN_TIME_MARGIN`). The clock SageMaker stops runs from the start of training (billed time)."""
    limit_s = spec.cluster.max_run_hours * 3600
    needed_s = est.job.billed_s
    if needed_s <= limit_s * (1 - RUN_TIME_MARGIN):
        return []
    hours = math.ceil(needed_s / (1 - RUN_TIME_MARGIN) / 3600)  # the smallest limit that silences the warning
    terms = ", ".join(f"{name} {format_duration(v)}" for name, v in est.job.terms.items() if v >= 1)
    shown = f"estimated {format_duration(needed_s)} ({terms})"
    if needed_s > limit_s:
        severity, what = (
            "error",
            f"{shown} > cluster.max_run_hours {spec.cluster.max_run_hours:g} h: SageMaker stops it first",
        )
    else:
        severity, what = (
            "warning",
            f"{shown} is within {100 * RUN_TIME_MARGIN:.0f}% of cluster.max_run_hours {spec.cluster.max_run_hours:g} h",
        )
    if hours <= MAX_RUN_HOURS:
        fix = f"set cluster.max_run_hours: {hours}"
    else:
        steps = int(spec.training.max_steps * MAX_RUN_HOURS * 3600 * (1 - RUN_TIME_MARGIN) / needed_s)
        fix = (
            f"set training.max_steps: {max(steps, 1)} (SageMaker's limit is {MAX_RUN_HOURS} h; resume the rest from "
            "the checkpoint in a second job), or add instances"
        )
    line = spec.source.line_of(("cluster", "max_run_hours")) if spec.source is not None else None
    return [Finding("RUN001", severity, "cluster.max_run_hours", what, fix, line)]


HOST_MEMORY_WARN = 0.80
"""Share of an instance's CPU memory the model build may take before a warning: the rest is for the OS, the
data loaders, NCCL and the page cache of the dataset."""


def host_memory_findings(spec: JobSpec, est: Estimate) -> list[Finding]:
    """HOST001: without delayed parameter initialization every process builds the whole model on the CPU
    (entrypoints/smp_train.py under ``smp.model_creation``: 2 bytes per parameter in fp16/bf16, 4 in fp32), so a
    node holds ranks per node x the whole model at once (60B in fp16: 8 x 112 GiB of a p4d's 1,152 GiB)."""
    if spec.smp.delayed_parameter_initialization or est.knobs.runtime != "smp":
        return []
    host = est.instance.host_memory_gib
    per_process = model_params(est.knobs) * (4 if est.knobs.precision == "fp32" else 2) / GIB
    need = est.layout.gpus_per_node * per_process
    if need <= host * HOST_MEMORY_WARN:
        return []
    severity = "error" if need > host else "warning"
    message = (
        f"every process builds the whole model on the CPU before SMP partitions it: {est.layout.gpus_per_node} x "
        f"{per_process:.1f} GiB = {need:,.0f} GiB of the {host:,.0f} GiB of {est.instance.name}"
        + (
            ""
            if severity == "error"
            else f" (over {100 * HOST_MEMORY_WARN:.0f}%: data loaders and the OS need the rest)"
        )
    )
    fix = "set smp.delayed_parameter_initialization: true (each rank creates only its shard, on its GPU)"
    line = spec.source.line_of(("smp", "delayed_parameter_initialization")) if spec.source is not None else None
    return [Finding("HOST001", severity, "smp.delayed_parameter_initialization", message, fix, line)]
