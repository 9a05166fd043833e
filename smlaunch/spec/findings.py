"""A rule's verdict on a spec: :class:`Finding`, and the :class:`Report` of all findings for one spec."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: which rule, which field (dotted path), the YAML line, the arithmetic, the fix."""

    rule: str
    severity: Severity
    field: str
    message: str
    fix: str
    line: int | None = None

    def to_dict(self) -> dict:
        """The JSON form of ``validate --format json``: rule, field, line, message, fix."""
        data = asdict(self)
        del data["severity"]
        return data


@dataclass(frozen=True)
class Report:
    """The findings for one spec, errors first."""

    source: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    summary: str = ""
    """The layout in one line (see :meth:`smlaunch.layout.Layout.summary`), when the spec parsed."""
    unreadable: bool = False
    """True when the file could not be read or parsed (its one finding has rule ``SPEC``)."""

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def valid(self) -> bool:
        """True when no finding is an error (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict:
        """``{"valid": bool, "errors": [...], "warnings": [...]}``."""
        return {
            "valid": self.valid,
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
        }
