"""The memory rule (``MEM``): the estimate of :mod:`smlaunch.costmodel` against the GPU."""

from __future__ import annotations

from collections.abc import Iterable

from smlaunch.layout import Layout
from smlaunch.spec.findings import Finding
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules.registry import rule


@rule("MEM001", "memory-fits", "error")
def _memory(spec: JobSpec, lay: Layout) -> Iterable[Finding]:
    """The per-rank memory estimate fits the GPU (smlaunch.costmodel; nothing while it is not installed)."""
    try:
        from smlaunch.costmodel import memory_findings
    except ModuleNotFoundError as exc:
        if exc.name != "smlaunch.costmodel":
            raise
        return []
    return memory_findings(spec)
