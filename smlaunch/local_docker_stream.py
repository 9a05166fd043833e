"""The containers' output, as docker compose prints it (``algo-2-x7k2p  | line``), split by host.

SageMaker local mode writes every container's lines to ``sys.stdout``; :class:`HostLines` stands in for it
during the run: each line goes to ``<run>/logs/<host>.log`` (``algo-1``, ``algo-2``, ...; compose's own lines to
``compose.log``), ``algo-1``'s step lines feed the progress display, and the last lines of each host are kept for
the summary and the failure reason.
"""

from __future__ import annotations

import io
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from smlaunch.local_results import _exception_line, _parse_step

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HOST_LINE = re.compile(r"^(?:[a-z0-9]+-)?(algo-\d+)-[a-z0-9]+\s*\|\s?(.*)$")
"""compose v1 names a line by its container (``hel6fdqc32-algo-1-v1i8y``), v2 by its service (``algo-1-v1i8y``)."""
COMPOSE = "compose"
"""The pseudo-host of docker compose's own lines (creating, attaching, exited with code ...)."""
_EXITED = re.compile(r"\b(algo-\d+)-[a-z0-9]+ exited with code (\d+)")
"""compose's ``x6nd-algo-2-i7t5x exited with code 1``: the first non-zero one is where the job broke."""
LAUNCHERS = ("ChildFailedError", "ExecuteUserScriptError", "CalledProcessError")
"""What torchrun and the toolkit raise *because* a rank failed: a host's reason is the rank's own exception."""
STEP_HOST = "algo-1"
"""The host of global rank 0, whose step lines the progress display follows."""


def split_host(line: str) -> tuple[str, str]:
    """``("algo-2", "text")`` from compose's ``k3j2-algo-2-x7k2p  | text`` (colours and CRs dropped); else compose's."""
    clean = _ANSI.sub("", line).replace("\r", "")
    match = _HOST_LINE.match(clean)
    return (match[1], match[2]) if match else (COMPOSE, clean)


class HostLines(io.TextIOBase):
    """A write-only text stream that files each line under its host."""

    def __init__(
        self,
        logs_dir: Path,
        *,
        on_step: Callable[[dict[str, float | int]], None] | None = None,
        on_line: Callable[[str, str], None] | None = None,
        keep: int = 200,
    ) -> None:
        super().__init__()
        self.logs_dir = logs_dir
        self.on_step, self.on_line = on_step, on_line
        self.steps: list[dict[str, float | int]] = []
        self.tails: dict[str, deque[str]] = {}
        self.counts: dict[str, int] = {}
        self.exits: list[tuple[str, int]] = []
        """(host, exit code) in the order compose saw the containers exit."""
        self._keep = keep
        self._files: dict[str, IO[str]] = {}
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, raw: str) -> None:
        host, text = split_host(raw)
        if host == COMPOSE and not text.strip():
            return
        if host not in self._files:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self._files[host] = open(self.logs_dir / f"{host}.log", "a", encoding="utf-8")
            self.tails[host] = deque(maxlen=self._keep)
        self._files[host].write(text + "\n")
        self._files[host].flush()
        self.tails[host].append(text)
        self.counts[host] = self.counts.get(host, 0) + 1
        if host == COMPOSE and (exited := _EXITED.search(text)):
            self.exits.append((exited[1], int(exited[2])))
        if host == STEP_HOST and (metrics := _parse_step(text)) is not None:
            self.steps.append(metrics)
            if self.on_step:
                self.on_step(metrics)
        if self.on_line:
            self.on_line(host, text)

    def close(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        super().close()

    def hosts(self) -> list[str]:
        """The container hosts that printed anything, in order (``algo-1``, ``algo-2``, ...)."""
        return sorted((h for h in self.tails if h != COMPOSE), key=lambda h: int(h.rpartition("-")[2]))

    def console(self) -> str:
        """Every host's kept lines, host by host (what the failure is searched in)."""
        return "".join(f"{host} | {line}\n" for host in [*self.hosts(), COMPOSE] for line in self.tails.get(host, ()))

    def failure_line(self) -> str | None:
        """``algo-2: RuntimeError: ...``: the last exception line, with its message where one has it, of the host
        that failed first (the first non-zero exit compose saw), else of the first host that printed one."""
        failed = [host for host, code in self.exits if code]
        for host in dict.fromkeys([*failed, *self.hosts()]):
            tail = list(self.tails.get(host, ()))
            found = [line for i in reversed(range(len(tail))) if (line := _exception_line(_rejoined(tail, i)))]
            found = [line for line in found if not line.startswith(LAUNCHERS)]
            if found:
                return f"{host}: {next((line for line in found if ': ' in line), found[0])}"
        return None


def _rejoined(lines: list[str], i: int) -> str:
    """Line ``i``, with the ``: message`` the toolkit's stream reader may have split off onto the next lines
    (``RuntimeError`` / ``:`` / ``boom``)."""
    text, rest = lines[i].strip(), [line.strip() for line in lines[i + 1 : i + 3]]
    if ":" in text or not rest or not rest[0].startswith(":"):
        return text
    if rest[0] == ":" and len(rest) > 1:
        return f"{text}: {rest[1]}"
    return text + rest[0]
