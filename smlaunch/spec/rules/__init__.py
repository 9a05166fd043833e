"""The rulebook: SMP v1 best practices checked against a typed spec before any money is spent.

Each rule is a small pure function of the spec and its :class:`~smlaunch.layout.Layout`, registered with an id,
a kebab-case name and a severity. It yields ``hit(field, message, fix)``: the dotted field to change, a message
that shows the arithmetic, and the smallest fix as YAML-ish text. :func:`check` runs them all (the layout is
computed once), fills rule id, severity and YAML line, and returns a :class:`Report`, errors first.

Groups: ``CLU`` cluster and instance, ``SMP`` SMP v1 parameters and parallel arithmetic, ``MOD`` model shape
vs degrees, ``JOB`` framework, spot, data and estimator settings, ``ENG`` what ``engine: torch`` needs, ``ENT``
what an own script (``entry_point:``) needs of the spec, ``API`` what CreateTrainingJob would refuse. A rule
names the engines it is about (``engines=``); SMP v1's own rules are silent under ``engine: torch``. The memory
verdict (``MEM``) is the cost model's (:mod:`smlaunch.costmodel.fixes`); :func:`smlaunch.validation.validate`
composes the two, so the rulebook never imports the cost model.
Sources: smp-v1.md §3, §4.3, §5, §9 and AWS's "model parallel best practices" page.
"""

from __future__ import annotations

from collections.abc import Iterable

from smlaunch.layout import Layout, resolve
from smlaunch.spec.findings import Report
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules.registry import RULES, Rule, hit, rule, rule_ids

# Importing a group registers its rules; registration order is report order within a severity.
# isort: off
from smlaunch.spec.rules import cluster  # noqa: F401
from smlaunch.spec.rules import parallel  # noqa: F401
from smlaunch.spec.rules import sharding  # noqa: F401
from smlaunch.spec.rules import model  # noqa: F401
from smlaunch.spec.rules import job  # noqa: F401
from smlaunch.spec.rules import engine  # noqa: F401
from smlaunch.spec.rules import script  # noqa: F401
from smlaunch.spec.rules import api  # noqa: F401
# isort: on

__all__ = ["RULES", "Rule", "check", "hit", "rule", "rule_ids"]


def check(
    spec: JobSpec, *, select: Iterable[str] | None = None, ignore: Iterable[str] = (), lay: Layout | None = None
) -> Report:
    """Run the rules (all, or the ``select``ed ids, minus ``ignore``) and return the report, errors first."""
    chosen = list(RULES) if select is None else list(select)
    unknown = [i for i in [*chosen, *ignore] if i not in RULES]
    if unknown:
        raise ValueError(f"unknown rule id(s): {', '.join(unknown)}; known: {', '.join(RULES)}")
    lay = lay or resolve(spec)
    findings = [f for rule_id in chosen if rule_id not in set(ignore) for f in RULES[rule_id](spec, lay)]
    findings.sort(key=lambda f: f.severity != "error")  # stable: declaration order within a severity
    source = spec.source.name if spec.source is not None else "<spec>"
    return Report(source, tuple(findings), summary=lay.summary())
