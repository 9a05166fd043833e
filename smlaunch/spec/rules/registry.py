"""The rule registry of :mod:`smlaunch.spec.rules`: :func:`rule` registers, :data:`RULES` holds, :func:`hit` reports.

Pure and cheap to import; ``smlaunch validate`` must cold-start fast. The arithmetic behind the fixes is in
:mod:`smlaunch.spec.rules.arith`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from smlaunch.engines import ENGINES
from smlaunch.layout import Layout
from smlaunch.spec.findings import Finding, Severity
from smlaunch.spec.load import dotted
from smlaunch.spec.models import JobSpec


class Hit(NamedTuple):
    """What a rule yields; :class:`Rule` turns it into a :class:`Finding`."""

    path: tuple[str, ...]
    message: str
    fix: str


def hit(field: str | tuple[str, ...], message: str, fix: str) -> Hit:
    """A broken rule at ``field`` (dotted string, or a tuple when a key may contain dots)."""
    return Hit(tuple(field.split(".")) if isinstance(field, str) else field, message, fix)


RuleFunc = Callable[[JobSpec, Layout], Iterable["Hit | Finding"]]


@dataclass(frozen=True)
class Rule:
    """A registered rule. Calling it returns complete findings (rule id, severity and line filled)."""

    id: str
    name: str
    severity: Severity
    func: RuleFunc
    engines: tuple[str, ...] = ENGINES
    """The engines (``spec.engine``) the rule is about; it is silent for the others."""

    @property
    def summary(self) -> str:
        """First line of the rule's docstring."""
        return (self.func.__doc__ or "").strip().splitlines()[0]

    def __call__(self, spec: JobSpec, lay: Layout) -> list[Finding]:
        if spec.engine not in self.engines:
            return []
        found = []
        for item in self.func(spec, lay):
            if isinstance(item, Finding):  # e.g. from smlaunch.costmodel: keeps its own id and severity
                line = item.line if item.line is not None else _line(spec, tuple(item.field.split(".")))
                found.append(replace(item, line=line))
            else:
                found.append(
                    Finding(self.id, self.severity, dotted(item.path), item.message, item.fix, _line(spec, item.path))
                )
        return found


SMP_ONLY = ("smp",)
"""``engines=`` of a rule about SMP v1 itself (its parameters, images or instances)."""

RULES: dict[str, Rule] = {}
"""Every rule, by id, in declaration order (the order of a report within one severity)."""


def rule(
    rule_id: str, name: str, severity: Severity, *, engines: tuple[str, ...] = ENGINES
) -> Callable[[RuleFunc], Rule]:
    """Register a rule function under ``rule_id`` (e.g. ``SMP001``) and ``name`` (e.g. ``tp-power-of-two``), for
    the ``engines`` it is about (default: both)."""

    def register(func: RuleFunc) -> Rule:
        if rule_id in RULES or any(r.name == name for r in RULES.values()):
            raise ValueError(f"rule {rule_id} / {name} is registered twice")
        RULES[rule_id] = Rule(rule_id, name, severity, func, tuple(engines))
        return RULES[rule_id]

    return register


def rule_ids() -> list[str]:
    """Ids of all registered rules, in declaration order."""
    return list(RULES)


def _line(spec: JobSpec, path: tuple[str, ...]) -> int | None:
    return spec.source.line_of(path) if spec.source is not None else None
