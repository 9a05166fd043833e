"""What a diagnosis reads: :class:`FailureContext` (one failed or stopped run, SageMaker's or a local one) and the
helpers that pull a host, a rank and a message out of a log line.

A SageMaker job gives its ``FailureReason``, secondary status and transitions, the last lines of each host's
CloudWatch stream (``algo-N``) and the spec stored with it at submit (:mod:`smlaunch.diagnosis.stored`); a local
run gives torchrun's root cause, the failure file and each rank's log (hosts are ``rank N`` there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from smlaunch.spec.models import JobSpec

_PREFIXES = (
    re.compile(r"^\[1,mpirank:(?P<rank>\d+),(?P<host>algo-\d+)\]<std(?:out|err)>:"),  # SageMaker's mpirun
    re.compile(r"^\[1,(?P<rank>\d+)\]<std(?:out|err)>:"),  # mpirun --tag-output
    re.compile(r"^\[(?:default|rank)(?P<rank>\d+)\]:"),  # torchrun --tee / PyTorch's rank prefix
)
SERVICE = "sagemaker"
"""The evidence host of SageMaker's own words: FailureReason and the secondary status messages."""
_RANK_IN_TEXT = re.compile(r"\[(?:PG \S+ )?Rank (?P<rank>\d+)\]|\brank[ =:]+(?P<rank2>\d+)\b", re.I)


@dataclass(frozen=True)
class Line:
    """One log line: the host it came from, the rank its prefix names (if any), and the text without the prefix."""

    host: str
    text: str
    rank: int | None = None


def parse_line(host: str, line: str) -> Line:
    """``[1,mpirank:3,algo-2]<stderr>:boom`` on algo-2 -> Line("algo-2", "boom", rank=3)."""
    text = line.rstrip()
    for pattern in _PREFIXES:
        match = pattern.match(text)
        if match:
            return Line(match.groupdict().get("host") or host, text[match.end() :].strip(), int(match["rank"]))
    return Line(host, text.strip(), None)


def rank_in(line: Line) -> int | None:
    """The rank a line names: its prefix, else ``[Rank 3]`` / ``rank: 3`` in its text."""
    if line.rank is not None:
        return line.rank
    match = _RANK_IN_TEXT.search(line.text)
    if match:
        return int(match["rank"] or match["rank2"])
    return None


@dataclass(frozen=True)
class FailureContext:
    """Everything known about one run that did not complete."""

    name: str
    status: str
    """``Failed`` or ``Stopped`` (SageMaker), ``Failed`` (a local run)."""
    failure_reason: str | None = None
    secondary_status: str | None = None
    transitions: tuple[str, ...] = ()
    """Secondary statuses in order, each ``Status: message``."""
    logs: dict[str, list[str]] = field(default_factory=dict)
    """host -> its last log lines, oldest first (``algo-N``; ``rank N`` for a local run)."""
    spec: JobSpec | None = None
    """The spec the job was submitted with (None when it was not stored, e.g. a job not made by smlaunch)."""
    instance_type: str | None = None
    instance_count: int | None = None
    max_run_s: int | None = None
    ran_s: float | None = None
    """Seconds it ran (training start to end), when known."""
    spot: bool = False
    checkpoint_uri: str | None = None
    image: str | None = None
    channels: dict[str, str] = field(default_factory=dict)
    """Data channel -> URI it was given."""
    local: bool = False
    exit_code: int | None = None
    """The failing process's exit code (negative: the signal that killed it); local runs."""
    failed_rank: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[Line]:
        """Every host's lines, hosts in order (algo-1, algo-2, ..., algo-10), prefixes parsed."""
        return [parse_line(host, text) for host in sorted(self.logs, key=host_order) for text in self.logs[host]]

    def texts(self) -> list[str]:
        """The failure reason and the transitions' messages: what SageMaker itself says."""
        return [t for t in (self.failure_reason, *self.transitions) if t]

    def search(self, pattern: re.Pattern[str], *, logs: bool = True, service: bool = True) -> list[Line]:
        """Lines matching ``pattern``: SageMaker's own texts first (host ``sagemaker``), then every host's log."""
        found = []
        if service:
            host = self.service_host
            found += [Line(host, t.strip()) for text in self.texts() for t in text.splitlines() if pattern.search(t)]
        if logs:
            found += [line for line in self.lines() if pattern.search(line.text)]
        return found

    @property
    def service_host(self) -> str:
        """The evidence host of what the platform says: ``sagemaker``, or the ``failure file`` of a local run."""
        return "failure file" if self.local else SERVICE

    def host(self, rank: int | None) -> str | None:
        """The host a global rank runs on (ranks are laid out host by host), when the layout is known."""
        per_host = self.spec.cluster.gpus_per_host if self.spec is not None else None
        if rank is None or self.local or not per_host:
            return None
        return f"algo-{rank // per_host + 1}"


def host_order(host: str) -> tuple[str, int]:
    """Sort key: ``algo-2`` before ``algo-10``; ``rank 2`` before ``rank 10``."""
    head, _, tail = host.replace(" ", "-").rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (host, -1)
