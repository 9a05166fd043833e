"""Stopping a local run: SIGINT/SIGTERM/SIGHUP forwarded to torchrun, its process group killed when it does not stop,
and a watchdog that stops the group when ``smlaunch`` itself dies (SIGKILL, a crash): no rank outlives the run.

torchrun runs in its own session (``start_new_session``), so neither a terminal's signals nor the death of its
parent reach it or the ranks. :class:`Stopper` ties their life to ours:

- SIGINT, SIGTERM and SIGHUP (the terminal closed) of smlaunch are forwarded to torchrun as SIGTERM (the entry
  point checkpoints and exits 143); the group is killed after ``grace_s`` or on a second signal;
- any other exit of the ``with`` block (an exception) kills the group;
- a watchdog process (:data:`WATCHDOG`, in a session of its own so that no terminal signal reaches it) polls its
  parent; when smlaunch is gone, it sends torchrun's group and torchrun's children, the ranks, SIGTERM (they
  checkpoint and exit), then SIGKILL once the ranks are gone (torchrun, with nobody left to report to, does not
  always exit by itself) or ``grace_s`` has passed. The ranks are signalled by pid: torchrun starts each in a
  session of its own, so its group alone misses them, and once torchrun is killed they are orphans. It exits by
  itself when the group is gone and is killed when the run ends normally.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

WATCHDOG = """
import os, signal, sys, time
parent, group, grace = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def stat(pid):
    # (state, ppid, pgrp) of a live process, or None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (fields[0], int(fields[1]), int(fields[2]))
def alive():
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
while os.getppid() == parent:
    if not alive():
        sys.exit(0)
    time.sleep(0.2)
# the ranks: torchrun's children (each in a session of its own since torch 2.x) and the rest of its group, taken
# before torchrun goes (they are reparented then); None where there is no /proc to tell
procs = [n for n in os.listdir("/proc") if n.isdigit()] if os.path.isdir("/proc") else None
ranks = None if procs is None else [
    int(n) for n in procs if int(n) != group and (st := stat(n)) and group in (st[1], st[2])
]
def signal_all(sig):
    for pid in ranks or ():
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass
signal_all(signal.SIGTERM)
deadline = time.monotonic() + grace
while time.monotonic() < deadline and (alive() if ranks is None else any(stat(pid) for pid in ranks)):
    time.sleep(0.2)
signal_all(signal.SIGKILL)
"""
"""The watchdog's program (``python -c``; no smlaunch import, so it starts in milliseconds)."""

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopper:
    """Forward SIGINT/SIGTERM/SIGHUP to torchrun as SIGTERM; kill its process group after ``grace_s`` or a second
    signal; always kill leftovers on exit; a watchdog stops the group if we die. Handlers are installed only in
    the main thread."""

    def __init__(self, proc: subprocess.Popen, grace_s: float) -> None:
        self.proc, self.grace_s = proc, grace_s
        self.interrupted = False
        self._old: dict[int, Any] = {}
        self._timer: threading.Timer | None = None
        self._watchdog: subprocess.Popen | None = None

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(self.proc.pid), str(self.grace_s)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._timer:
            self._timer.cancel()
        if self.proc.poll() is None:  # an exception in the reader: never leave ranks behind
            self.kill()
            self.proc.wait()
        else:
            self.kill()  # a rank that outlived torchrun (its group lives on while any member does)
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()

    def _handle(self, signum: int, frame: object) -> None:
        if self.interrupted:
            self.kill()
            return
        self.interrupted = True
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return
        self._timer = threading.Timer(self.grace_s, self.kill)
        self._timer.daemon = True
        self._timer.start()

    def kill(self) -> None:
        """SIGKILL torchrun's group and its children (each rank runs in a session of its own)."""
        for pid in children(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc; none where there is no /proc)."""
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if name.isdigit() and fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(name))
    return found
