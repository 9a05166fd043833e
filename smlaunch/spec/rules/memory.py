"""The memory rule (``MEM``): the estimate of :mod:`smlaunch.estimator` against the GPU."""

from __future__ import annotations

from collections.abc import Iterable

from smlaunch.layout import Layout
from smlaunch.spec._fixes import rule
from smlaunch.spec.findings import Finding
from smlaunch.spec.models import JobSpec


@rule("MEM001", "memory-fits", "error")
def _memory(spec: JobSpec, lay: Layout) -> Iterable[Finding]:
    """The per-rank memory estimate fits the GPU (smlaunch.estimator; nothing while it is not installed)."""
    try:
        from smlaunch.estimator import memory_findings
    except ModuleNotFoundError as exc:
        if exc.name != "smlaunch.estimator":
            raise
        return []
    return memory_findings(spec)
