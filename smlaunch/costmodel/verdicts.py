"""The cost model's verdicts on a spec, as findings: GPU memory (MEM001/MEM002), run time (RUN001), host memory
(HOST001), tensor parallelism over PCIe (PCI001).

    cost_findings(spec)                 estimate once, then every verdict that needs it
    cost_findings(spec, estimate=est)   the caller's estimate (submit shows it too)

:func:`smlaunch.validation.validate` adds these to the rulebook's findings.
"""

from __future__ import annotations

import math

from smlaunch.catalog import GIB, INSTANCES
from smlaunch.costmodel import Estimate
from smlaunch.costmodel.fixes import change_text, estimate_changed, estimate_if_possible, memory_findings
from smlaunch.costmodel.memory import model_params
from smlaunch.engines import torch_runs_on
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
    return [
        *memory_findings(spec, estimate=est),
        *run_time_findings(spec, est),
        *host_memory_findings(spec, est),
        *pcie_findings(spec, est),
    ]


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
    """HOST001: a process that builds the whole model on the CPU before it is cut holds all of it in host memory,
    and a node holds ranks per node x the whole model at once. SMP v1 does so without delayed parameter
    initialization (entrypoints/smp_train.py under ``smp.model_creation``: 2 bytes per parameter in fp16/bf16, 4 in
    fp32; 60B in fp16: 8 x 112 GiB of a p4d's 1,152 GiB); the native entry point always does, in fp32
    (entrypoints/train_gpt2.py ``build_native``: 4 bytes per parameter, then only the rank's shard goes to its GPU).
    """
    native = est.knobs.runtime == "native"
    if not native and spec.smp.delayed_parameter_initialization:
        return []
    host = est.instance.host_memory_gib
    per_process = model_params(est.knobs) * (4 if native or est.knobs.precision == "fp32" else 2) / GIB
    need = est.layout.gpus_per_node * per_process
    if need <= host * HOST_MEMORY_WARN:
        return []
    severity = "error" if need > host else "warning"
    builder = "the PyTorch-native entry point" if native else "SMP"
    message = (
        f"every process builds the whole model on the CPU before {builder} cuts it: {est.layout.gpus_per_node} x "
        f"{per_process:.1f} GiB = {need:,.0f} GiB of the {host:,.0f} GiB of {est.instance.name}"
        + (
            ""
            if severity == "error"
            else f" (over {100 * HOST_MEMORY_WARN:.0f}%: data loaders and the OS need the rest)"
        )
    )
    if not native:
        fix = "set smp.delayed_parameter_initialization: true (each rank creates only its shard, on its GPU)"
        line = spec.source.line_of(("smp", "delayed_parameter_initialization")) if spec.source is not None else None
        return [Finding("HOST001", severity, "smp.delayed_parameter_initialization", message, fix, line)]
    gpus = est.instance.num_gpus
    roomy = [
        i
        for i in INSTANCES.values()
        if torch_runs_on(i.name) and i.num_gpus == gpus and need <= i.host_memory_gib * HOST_MEMORY_WARN
    ]
    if roomy:
        best = min(roomy, key=lambda i: (i.host_memory_gib, i.price_per_hour))
        fix = f"set cluster.instance_type: {best.name} ({best.host_memory_gib:,.0f} GiB of host memory)"
    else:
        fix = f"no {est.instance.num_gpus}-GPU instance of the torch engine has the host memory; use a smaller model"
    line = spec.source.line_of(("cluster", "instance_type")) if spec.source is not None else None
    return [Finding("HOST001", severity, "cluster.instance_type", message, fix, line)]


PCIE_MIN_SHARE = 0.10
PCIE_MIN_SECONDS = 300
"""PCI001 speaks when tensor-parallel traffic over PCIe is at least 10% of a step and 5 minutes of the job: a
smoke test of a few steps on a PCIe instance is not worth a warning."""


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def pcie_findings(spec: JobSpec, est: Estimate) -> list[Finding]:
    """PCI001: tensor parallelism on GPUs without NVLink (g5's A10G, g6's L4, g4dn's T4). Every layer's
    tensor-parallel all-reduces cross PCIe (``Gpu.nvlink_gbps``, one direction per GPU), which the step-time model
    charges (:func:`smlaunch.costmodel.throughput.comm_times`); the warning shows that share of the step, of the
    job and of its cost, and the fastest layout without tensor parallelism that fits: plain data parallelism, or
    pipeline stages, which pass only one activation per microbatch across the bus."""
    lay, inst, t = est.layout, est.instance, est.throughput
    if inst.gpu.nvlink or lay.tp == 1:
        return []
    share = t.tp_comm_s / t.step_time_s
    spent_s = share * est.job.billed_s
    if share < PCIE_MIN_SHARE or spent_s < PCIE_MIN_SECONDS:
        return []
    spent = f"{format_duration(spent_s)} of the job"
    spent += f", ${share * est.cost_usd:,.2f} of its ${est.cost_usd:,.2f}" if est.cost_usd is not None else ""
    message = (
        f"tensor_parallel_degree({lay.tp}) on {inst.name}: {inst.gpu.name} has no NVLink, so every layer's "
        f"tensor-parallel all-reduces cross PCIe ({inst.gpu.nvlink_gbps:g} GB/s per GPU): est. "
        f"{_seconds(t.tp_comm_s)} of each {_seconds(t.step_time_s)} step ({100 * share:.0f}%), {spent}"
    )
    tp, pp = ("smp", "tensor_parallel_degree"), ("smp", "pipeline_parallel_degree")
    options = [{tp: 1}]
    if spec.model.num_layers >= lay.pp * lay.tp and lay.microbatches >= lay.pp * lay.tp:
        options.append({tp: 1, pp: lay.pp * lay.tp})
    better = []
    for changes in options:
        new = estimate_changed(spec, est, changes)
        if new is not None and new.fits_with_margin and new.throughput.tokens_per_s > t.tokens_per_s:
            better.append((new.throughput.tokens_per_s, changes))
    if better:
        speed, changes = max(better, key=lambda b: b[0])
        fix = (
            f"set {change_text(changes)} (est. {speed:,.0f} tokens/s vs {t.tokens_per_s:,.0f}, and it fits), "
            "or an instance with NVLink"
        )
    else:
        fix = (
            "keep it if the model needs it (no layout without tensor parallelism fits and is faster); an instance "
            "with NVLink (p4d, p4de, p5) avoids the cost"
        )
    line = spec.source.line_of(("smp", "tensor_parallel_degree")) if spec.source is not None else None
    return [Finding("PCI001", "warning", "smp.tensor_parallel_degree", message, fix, line)]
