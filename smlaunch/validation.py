"""Validation in one pass: the rulebook's findings, the cost model's verdicts and, for an own script, the findings
that read its files (:mod:`smlaunch.script_check`), for one resolved layout.

    report = validate(spec)                 # rules (smlaunch.spec.rules) + MEM/RUN (smlaunch.costmodel.verdicts)
    report = validate(spec, estimate=est)   # the caller already estimated: nothing is estimated twice

The rulebook is pure layout arithmetic and never imports the cost model; this module is the one place that puts
the two verdicts together, for the API, ``submit`` and ``smlaunch local`` alike.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from smlaunch.layout import resolve
from smlaunch.spec.findings import Finding, Report
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules import check

if TYPE_CHECKING:  # pragma: no cover
    from smlaunch.costmodel import Estimate


def validate(spec: JobSpec, *, estimate: Estimate | None = None) -> Report:
    """Rule findings plus the cost model's verdicts (memory, run time), errors first (stable within a severity).

    ``estimate`` is the cost model's estimate of ``spec`` when the caller has one (``submit`` shows it too).
    """
    from smlaunch.costmodel.verdicts import cost_findings
    from smlaunch.script_check import script_findings

    lay = resolve(spec)
    report = check(spec, lay=lay)
    costs = [_with_line(spec, f) for f in [*cost_findings(spec, estimate=estimate), *script_findings(spec)]]
    findings = sorted([*report.findings, *costs], key=lambda f: f.severity != "error")
    return replace(report, findings=tuple(findings), summary=lay.summary())


def _with_line(spec: JobSpec, finding: Finding) -> Finding:
    if finding.line is not None or spec.source is None:
        return finding
    return replace(finding, line=spec.source.line_of(tuple(finding.field.split("."))))
