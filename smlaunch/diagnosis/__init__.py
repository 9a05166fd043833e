"""Failure post-mortem: why a job failed or stopped, on which host and rank, which spec field to change and how.

    diagnosis = job.status().diagnosis        # a Failed or Stopped SageMaker job (smlaunch.jobs.JobHandle)
    diagnosis = run.diagnosis                  # a failed local run (smlaunch.local_results.LocalRun)
    diagnosis.cause, diagnosis.field, diagnosis.fix, diagnosis.evidence

:func:`diagnose` is pure: it reads a :class:`FailureContext` (FailureReason, secondary status, each host's last log
lines, the stored spec) and tries the causes in order, the most specific first: what SageMaker itself reports
(capacity, run-time limit, spot, a stop on request, data, S3 access), then the processes' own output (out of
memory, a signal, SMP, the image, the network, NCCL, a Python exception). A peer's NCCL error after one rank's
exception is a knock-on error, so the exception comes before NCCL. Nothing matched: ``unknown``, with the last
lines of each host. :mod:`smlaunch.diagnosis.sources` builds the context from a SageMaker job or a local run.
"""

from __future__ import annotations

from collections.abc import Callable

from smlaunch.diagnosis import platform, runtime
from smlaunch.diagnosis.context import FailureContext
from smlaunch.diagnosis.model import Diagnosis, Evidence

Cause = Callable[[FailureContext], Diagnosis | None]

CAUSES: tuple[Cause, ...] = (
    platform.capacity,
    platform.max_runtime,
    platform.spot_interrupted,
    platform.stopped_on_request,
    platform.data_missing,
    platform.s3_access_denied,
    runtime.cuda_oom,
    runtime.host_oom,
    runtime.smp_config,
    platform.image_mismatch,
    runtime.network,
    runtime.python_exception,
    runtime.nccl_timeout,
    runtime.nccl_error,
    runtime.killed_by_signal,
)
"""The causes, in the order they are tried."""


def diagnose(ctx: FailureContext) -> Diagnosis:
    """The first cause of :data:`CAUSES` that matches ``ctx``, else ``unknown`` with each host's last lines."""
    for cause in CAUSES:
        found = cause(ctx)
        if found is not None:
            return found
    return runtime.unknown(ctx)


__all__ = ["CAUSES", "Diagnosis", "Evidence", "FailureContext", "diagnose"]
