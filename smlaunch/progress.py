"""Training progress from the entry point's per-step log line (docs/entrypoint-contract.md).

The entry point prints, on global rank 0, one line per step::

    step=12 loss=4.1234 step_time_s=0.153 tokens_per_s=53123 mfu=0.412 mem_gib=12.31

:func:`parse_step_line` turns such a line (anywhere inside a longer log line, e.g. behind an MPI rank
prefix) into numbers; :class:`Progress` keeps the latest ones and an ETA for ``max_steps``. Pure: no I/O,
no rich; ``smlaunch submit --wait``, ``smlaunch logs --follow`` and ``smlaunch local`` render it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STEP_LINE = re.compile(
    r"(?:^|[\s\]:>,])step=(?P<step>\d+)\s+loss=(?P<loss>\S+)\s+step_time_s=(?P<step_time_s>\S+)"
    r"\s+tokens_per_s=(?P<tokens_per_s>\S+)(?:\s+mfu=(?P<mfu>\S+))?(?:\s+mem_gib=(?P<mem_gib>\S+))?"
)
FLOAT_FIELDS = ("loss", "step_time_s", "tokens_per_s", "mfu", "mem_gib")


def parse_step_line(line: str) -> dict[str, float | int] | None:
    """The metrics of one step line, or None when ``line`` is not one.

    >>> parse_step_line("step=12 loss=4.1234 step_time_s=0.153 tokens_per_s=53123 mfu=0.412 mem_gib=12.31")
    {'step': 12, 'loss': 4.1234, 'step_time_s': 0.153, 'tokens_per_s': 53123.0, 'mfu': 0.412, 'mem_gib': 12.31}
    """
    match = _STEP_LINE.search(line)
    if match is None:
        return None
    metrics: dict[str, float | int] = {"step": int(match["step"])}
    for name in FLOAT_FIELDS:
        value = match[name]
        if value is None:
            continue
        try:
            metrics[name] = float(value)
        except ValueError:  # "loss=nan" parses; anything else is not our line
            return None
    return metrics


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``1h02m``; ``75`` -> ``1m15s``; None -> ``?``."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass
class Progress:
    """The latest step metrics of a run and its ETA for ``max_steps``.

    The ETA uses the mean step time of the last ``window`` steps (the first steps include tracing and
    warm-up, so a running window beats the overall mean).
    """

    max_steps: int | None = None
    window: int = 20
    latest: dict[str, float | int] = field(default_factory=dict)
    _times: list[float] = field(default_factory=list)

    def update(self, line: str) -> bool:
        """Feed one log line; True when it was a step line."""
        metrics = parse_step_line(line)
        if metrics is None:
            return False
        self.latest = metrics
        if "step_time_s" in metrics:
            self._times = [*self._times, float(metrics["step_time_s"])][-self.window :]
        return True

    @property
    def step(self) -> int | None:
        return int(self.latest["step"]) if self.latest else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left until ``max_steps``, or None before the first step line (or without max_steps)."""
        if self.max_steps is None or self.step is None or not self._times:
            return None
        remaining = max(0, self.max_steps - self.step)
        return remaining * sum(self._times) / len(self._times)

    def summary(self, *, eta: bool = True) -> str:
        """``step 12/100  loss 4.1234  53,123 tok/s  mfu 41.2%  ETA 13s`` (empty before the first step); ``eta=False``
        leaves the ETA out (a job that has ended has none)."""
        if not self.latest:
            return ""
        m = self.latest
        total = f"/{self.max_steps}" if self.max_steps else ""
        parts = [f"step {m['step']}{total}", f"loss {m['loss']:.4f}", f"{m['tokens_per_s']:,.0f} tok/s"]
        if "mfu" in m:
            parts.append(f"mfu {100 * m['mfu']:.1f}%")
        if self.max_steps and eta:
            parts.append(f"ETA {format_duration(self.eta_s)}")
        return "  ".join(parts)
