"""Run entrypoints/train_gpt2.py under real torchrun processes (CPU, gloo) for the integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "entrypoints" / "train_gpt2.py"

# a tiny GPT-2: 4 blocks, width 64, 4 heads, 32 tokens, vocab 512 (= a multiple of 128 * tp for tp <= 4, so every
# layout pads to the same vocabulary and initialises identical weights from the seed)
TINY = {"num_layers": 4, "hidden_width": 64, "num_heads": 4, "seq_length": 32, "vocab_size": 512}


def write_pattern_data(train_dir: Path, *, num_tokens: int = 40_000, seed: int = 0) -> Path:
    """One uint16 shard of a noisy periodic sequence: learnable, so losses fall quickly and differ step to step."""
    train_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.tile(rng.integers(0, TINY["vocab_size"], size=61), num_tokens // 61 + 1)[:num_tokens]
    noise = rng.random(num_tokens) < 0.1
    base[noise] = rng.integers(0, TINY["vocab_size"], size=int(noise.sum()))
    base.astype("<u2").tofile(train_dir / "shard_000.bin")
    return train_dir


def hyperparameters(**overrides) -> list[str]:
    hp = {**TINY, "max_steps": 6, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "seed": 7, "synthetic": 0}
    hp.update(overrides)
    return [a for k, v in hp.items() for a in (f"--{k}", str(v))]


def _env(base: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "RANK", "WORLD_SIZE", "LOCAL_RANK"))}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", SAGEMAKER_BASE_DIR=str(base))
    return env


def command(nproc: int, args: list[str]) -> list[str]:
    if nproc == 1:  # also covers the "works without torchrun" path
        return [sys.executable, str(TRAIN), *args]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(TRAIN),
        *args,
    ]


def paths(base: Path) -> list[str]:
    return [
        "--checkpoint-dir",
        str(base / "ck"),
        "--model-dir",
        str(base / "model"),
        "--output-data-dir",
        str(base / "out"),
    ]


def run(nproc: int, base: Path, args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(nproc, [*args, *paths(base)]),
        env=_env(base),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(nproc: int, base: Path, args: list[str]) -> subprocess.Popen:
    """Started in its own process group, so the test can signal torchrun and all its workers."""
    return subprocess.Popen(
        command(nproc, [*args, *paths(base)]),
        env=_env(base),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_step(proc: subprocess.Popen, step: int, *, timeout: float = 90) -> list[str]:
    """Read stdout until the contract line `step=<step> ...` appears; returns the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(f"step={step} "):
            return lines
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"never reached step={step}:\n{''.join(lines[-40:])}")


def _descendants(pid: int) -> list[int]:
    """Child pids, recursively, from /proc (torchrun starts its workers in their own sessions)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and every worker at once, like a lost instance."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)
    if proc.stdout is not None:
        proc.stdout.close()


def metrics(base: Path) -> dict:
    return json.loads((base / "out" / "metrics.json").read_text())
