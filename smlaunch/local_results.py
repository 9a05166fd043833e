"""What a local run produced: :class:`LocalRun`, and reading it from torchrun's output, logs and files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smlaunch.errors import LocalRunError

if TYPE_CHECKING:  # pragma: no cover
    from smlaunch.local import LocalPlan

_RANK_PREFIX = re.compile(r"^\[default(\d+)\]:(.*)$", re.S)
_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.S)


@dataclass
class LocalRun:
    """The outcome of a local run."""

    plan: LocalPlan
    returncode: int
    wall_s: float
    steps: list[dict[str, float | int]]
    metrics: dict[str, Any] | None
    failure: str | None
    failed_rank: int | None
    error_tail: str
    interrupted: bool = False
    reason: str | None = None
    """Why it failed: the failing rank's exception line, else the failure file."""
    exit_code: int | None = None
    """The failing rank's exit code as torchrun saw it (negative: killed by that signal, -9 is SIGKILL)."""
    console_tail: str = ""
    """torchrun's own last lines (its root-cause report), without the ranks' lines."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def run_dir(self) -> Path:
        return self.plan.run_dir

    def outputs(self) -> list[Path]:
        """Files the run wrote under model/ and output/data/, relative to the run directory."""
        found = []
        for sub in ("model", "output/data"):
            root = self.run_dir / sub
            found += sorted(p.relative_to(self.run_dir) for p in root.rglob("*") if p.is_file())
        return found

    def host_logs(self) -> dict[str, Path]:
        """``algo-1`` -> ``<run>/logs/algo-1.log``, ...: each container's output of a ``--docker`` run (empty for
        an emulated run, whose logs are per rank)."""
        found = (p for p in (self.run_dir / "logs").glob("algo-*.log") if p.stem.removeprefix("algo-").isdigit())
        return {p.stem: p for p in sorted(found, key=lambda p: int(p.stem.removeprefix("algo-")))}

    @property
    def log_path(self) -> Path:
        """Where to read what happened: torchrun's console.log, or the logs directory of a ``--docker`` run."""
        logs = self.run_dir / "logs"
        return logs if self.host_logs() else logs / "console.log"

    def raise_for_status(self) -> None:
        """Raise :class:`LocalRunError` (rank, reason, where the logs are) unless the run succeeded."""
        if self.ok:
            return
        if self.interrupted:
            error = LocalRunError(f"local run interrupted (exit {self.returncode}); logs in {self.run_dir / 'logs'}")
            error.exit_code = 130
            raise error
        diagnosis = self.diagnosis
        summary = diagnosis.summary if diagnosis is not None and diagnosis.known else self._reason_line()
        if self.metrics is not None and not self.failure:
            summary += " (after training finished: metrics.json was written, the crash is in shutdown)"
        logs = f"logs: {self.log_path}"
        fix = (
            f"{diagnosis.fix}; {logs}"
            if diagnosis is not None and diagnosis.known
            else (f"see {self.log_path} and {self.run_dir / 'output' / 'failure'}")
        )
        raise LocalRunError(
            f"local run failed (exit {self.returncode}): {summary}",
            field=diagnosis.field if diagnosis is not None else None,
            fix=fix,
        )

    def _reason_line(self) -> str:
        rank = f"rank {self.failed_rank}" if self.failed_rank is not None else "a rank"
        reason = self.reason or (self.error_tail.strip().splitlines() or ["no error message"])[-1]
        return f"{rank} failed: {reason}"

    @property
    def diagnosis(self):
        """Why the run failed (:class:`smlaunch.diagnosis.Diagnosis`), or None when it did not fail (or was
        interrupted)."""
        if self.ok or self.interrupted:
            return None
        cached = self.__dict__.get("_diagnosis")
        if cached is None:
            from smlaunch.diagnosis import diagnose
            from smlaunch.diagnosis.sources import local_context

            cached = self.__dict__["_diagnosis"] = diagnose(local_context(self))
        return cached


def _split_rank(line: str) -> tuple[int | None, str]:
    match = _RANK_PREFIX.match(line)
    return (int(match[1]), match[2]) if match else (None, line)


def _parse_step(text: str) -> dict[str, float | int] | None:
    from smlaunch.progress import parse_step_line

    return parse_step_line(text)


def _collect(
    plan: LocalPlan, returncode: int, *, wall_s: float, steps: list, console: str, interrupted: bool
) -> LocalRun:

    metrics_path = plan.run_dir / "output" / "data" / "metrics.json"
    # this run's only: launch() and run_docker() remove an earlier run's before they start (a time window raced
    # a quick rerun)
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    failure_path = plan.run_dir / "output" / "failure"
    failure = failure_path.read_text().strip() if failure_path.is_file() else None
    failed_rank = exit_code = None  # torchrun's first observed failure; else the rank the failure file names
    if returncode and (match := _ROOT_CAUSE.search(console)):
        failed_rank, exit_code = int(match[1]), int(match[2])
    elif failure and (match := re.match(r"rank (\d+):", failure)):
        failed_rank = int(match[1])
    error_file = plan.run_dir / "logs" / "error.json"
    tail = error_file.read_text() if error_file.is_file() else ""
    if returncode and not tail:
        tail = _rank_stderr_tail(plan.run_dir / "logs" / "ranks", failed_rank) or console[-4000:]
    # every rank writes the same failure file, so it may hold a later rank's knock-on error (a peer hung up):
    # the exception of the first rank torchrun saw fail says what went wrong
    reason = (_exception_line(tail) if returncode else None) or failure
    if exit_code is not None and exit_code < 0:  # killed by a signal: its exception line is torchrun's own
        reason = _signal_text(failed_rank, exit_code)
    if failure and (match := re.match(r"rank \d+: (.*)", failure, re.S)) and reason == match[1]:
        reason = failure.partition(": ")[2]
    if returncode == 0 and metrics is None and not plan.request.own_script:  # smlaunch's entry points write it
        returncode, reason = 1, "the entry point exited 0 without writing output/data/metrics.json"
    return LocalRun(
        plan=plan,
        returncode=returncode,
        wall_s=wall_s,
        steps=steps,
        metrics=metrics,
        failure=failure,
        failed_rank=failed_rank,
        error_tail=tail,
        interrupted=interrupted,
        reason=reason,
        exit_code=exit_code,
        console_tail="\n".join(line for line in console.splitlines() if _split_rank(line)[0] is None),
    )


def _signal_text(rank: int | None, exit_code: int) -> str:
    """``rank 1 was killed by SIGKILL (signal 9)``."""
    import signal

    try:
        name = signal.Signals(-exit_code).name
    except ValueError:
        name = "a signal"
    return f"rank {rank if rank is not None else '?'} was killed by {name} (signal {-exit_code})"


_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*(?:Error|Exception|Interrupt)\b.*)$")


def _exception_line(text: str) -> str | None:
    """The last ``SomeError: message`` line of a traceback (module prefix dropped), or None."""
    for line in reversed(text.strip().splitlines()):
        match = _EXCEPTION_LINE.match(line.strip())
        if match:
            return match[1]
    return None


def _rank_stderr_tail(ranks_dir: Path, rank: int | None, lines: int = 30) -> str:
    """The end of a rank's stderr.log (torchrun's --log-dir layout: <run_id>/attempt_<n>/<rank>/stderr.log)."""
    logs = sorted(
        ranks_dir.glob(f"*/attempt_*/{rank if rank is not None else 0}/stderr.log"), key=lambda p: p.stat().st_mtime
    )
    if not logs:
        return ""
    return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])
