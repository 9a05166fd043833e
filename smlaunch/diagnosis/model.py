"""The result: :class:`Diagnosis` (cause, summary, spec field, fix, evidence) and how it is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_LINE = 300
"""Evidence lines are cut to this many characters (a CUDA OOM message is ~400)."""


@dataclass(frozen=True)
class Evidence:
    """One log line that shows the cause, and the host it came from (``algo-N``, ``rank N``, or ``sagemaker``
    for SageMaker's own FailureReason and status messages)."""

    host: str
    line: str

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "line": self.line}


@dataclass(frozen=True)
class Diagnosis:
    """Why a job failed or stopped: a short ``cause`` id, a one-line ``summary``, the spec ``field`` to change (None
    when no field maps: the ``fix`` then says what to look at next), and the ``evidence`` lines it read."""

    cause: str
    summary: str
    field: str | None
    fix: str
    evidence: tuple[Evidence, ...] = ()

    @property
    def known(self) -> bool:
        return self.cause != "unknown"

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``smlaunch status --format json``: exactly cause, summary, field, fix, evidence."""
        return {
            "cause": self.cause,
            "summary": self.summary,
            "field": self.field,
            "fix": self.fix,
            "evidence": [e.to_dict() for e in self.evidence],
        }

    def text_lines(self) -> list[str]:
        """``diagnosis  cuda-oom: ...`` then field, fix and the evidence, one per line (status, logs, local)."""
        lines = [f"diagnosis  {self.cause}: {self.summary}"]
        lines.append(f"  field    {self.field}" if self.field else "  field    (none: no spec field maps to this)")
        lines.append(f"  fix      {self.fix}")
        if self.evidence:
            title = "last lines (cause unknown)" if not self.known else "evidence"
            lines.append(f"  {title}:")
            lines += [f"    [{e.host}] {e.line}" for e in self.evidence]
        return lines


def evidence(host: str, line: str) -> Evidence:
    """An :class:`Evidence` with ``line`` stripped and cut to :data:`MAX_LINE` characters."""
    text = " ".join(line.split())
    return Evidence(host, text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "...")
