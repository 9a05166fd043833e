"""Stopping a local run: SIGINT/SIGTERM forwarded to torchrun, its process group killed when it does not stop."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import Any


class Stopper:
    """Forward SIGINT/SIGTERM to torchrun as SIGTERM; kill its process group after ``grace_s`` or a second
    signal; always kill leftovers on exit. Handlers are installed only in the main thread."""

    def __init__(self, proc: subprocess.Popen, grace_s: float) -> None:
        self.proc, self.grace_s = proc, grace_s
        self.interrupted = False
        self._old: dict[int, Any] = {}
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._timer:
            self._timer.cancel()
        if self.proc.poll() is None:  # an exception in the reader: never leave ranks behind
            self.kill()
            self.proc.wait()

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
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
