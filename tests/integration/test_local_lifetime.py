"""`smlaunch local` dies, its ranks die with it: SIGHUP (the terminal closed), SIGTERM and SIGKILL of the parent
leave no torchrun, rank or watchdog process 10 s later. Real processes: the tiny template under torchrun (4 ranks,
CPU/gloo), started by ``python -m smlaunch local`` in a session of its own, as a shell would start it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smlaunch.templates import starter

pytestmark = pytest.mark.integration

LIFETIME_S = 10.0


def processes_of(run_dir: Path, parent: int) -> list[str]:
    """Live processes of a run: working directory in the run directory (torchrun and ranks run in <run>/code),
    the run directory in their command line, or the watchdog of ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
            status = (entry / "status").read_text()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if "State:\tZ" in status:
            continue  # a zombie has exited; only its parent's wait is missing
        watchdog = "os.killpg(group" in cmdline and f" {parent} " in cmdline
        if cwd.startswith(str(run_dir)) or str(run_dir) in cmdline or watchdog:
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def start_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    job = tmp_path / "job.yaml"
    job.write_text(starter("gpt2-tiny-local"))
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smlaunch", "local", str(job), "--steps", "100000", "--run-dir", str(run_dir)],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    console = run_dir / "logs" / "console.log"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (console.is_file() and "step=2 " in console.read_text()):
        assert proc.poll() is None, "smlaunch local exited before training"
        time.sleep(0.5)
    assert console.is_file() and "step=2 " in console.read_text(), "no step within 180 s"
    assert len(processes_of(run_dir, proc.pid)) >= 6  # smlaunch, the watchdog, torchrun, 4 ranks
    return proc, run_dir


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_no_process_outlives_the_parent(tmp_path, sig):
    proc, run_dir = start_run(tmp_path)
    os.kill(proc.pid, sig)
    deadline = time.monotonic() + LIFETIME_S
    left = processes_of(run_dir, proc.pid)
    while left and time.monotonic() < deadline:
        proc.poll()  # reap the parent when it exits
        time.sleep(0.25)
        left = processes_of(run_dir, proc.pid)
    try:
        assert left == [], f"{len(left)} process(es) alive {LIFETIME_S:.0f} s after {sig.name}:\n" + "\n".join(left)
    finally:
        for line in left:  # never leave a run behind for the next test
            try:
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
