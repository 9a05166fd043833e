"""The Python API: the functions the CLI and notebooks both call.

spec = load_spec("job.yaml", overrides=["training.max_steps=10"])
report = validate(spec)          # rulebook findings (errors and warnings, with fixes)
est = estimate(spec)             # memory per GPU, tokens/s, cost
request = render(spec)           # what SageMaker will receive
job = submit(spec)               # a SageMaker training job (JobHandle)
run = run_local(spec)            # the same job on this machine, under torchrun
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from smlaunch.errors import SpecError
from smlaunch.render import LaunchRequest
from smlaunch.render import render as _render
from smlaunch.spec.findings import Finding, Report
from smlaunch.spec.load import load_spec
from smlaunch.spec.models import JobSpec

__all__ = ["load_spec", "render", "validate", "validate_file"]


def validate(spec: JobSpec) -> Report:
    """Check ``spec`` against the rulebook (SMP v1 best practices and the memory estimate).

    >>> report = validate(load_spec("job.yaml"))  # doctest: +SKIP
    >>> [f"{f.rule} {f.field}: {f.fix}" for f in report.errors]  # doctest: +SKIP
    """
    from smlaunch.layout import layout
    from smlaunch.spec.rules import check

    report = check(spec)
    return replace(report, summary=layout(spec).summary())


def validate_file(path: str | os.PathLike, *, overrides: Iterable[str] | Mapping[str, Any] = ()) -> Report:
    """Like :func:`validate`, from a file; a spec that cannot be read becomes a report with one ``SPEC`` error."""
    try:
        spec = load_spec(path, overrides)
    except SpecError as exc:
        finding = Finding("SPEC", "error", exc.field or "", exc.message, exc.fix or "", None)
        return Report(str(path), (finding,), unreadable=True)
    return replace(validate(spec), source=str(path))


def render(spec: JobSpec) -> LaunchRequest:
    """Render ``spec`` into the launch request that ``submit`` and ``run_local`` both use (pure).

    >>> render(load_spec("job.yaml")).estimator_kwargs()["distribution"]  # doctest: +SKIP
    """
    return _render(spec)
