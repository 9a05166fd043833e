"""The same tiny job run emulated (torchrun here) and in SageMaker local mode (2 containers), timed side by side.

    python benchmarks/docker_local.py [--repeats 3] [--steps 20] [--image IMAGE]

Both run gpt2-tiny-local with engine: torch on 2 x ml.g5.12xlarge, tp 2 x pp 2 = 4 processes: emulated as one
torchrun of 4 ranks, under --docker as 2 containers x 2 processes (the toolkit's torchrun in each). Wall time is
the whole command (spec load to summary); the image is reused, so its build is timed apart
(``time bash docker/build-local-image.sh``). Prints a Markdown table and writes JSON next to this file.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = ["--set", "engine=torch", "--set", "cluster.instance_count=2", "--set", "cluster.instance_type=ml.g5.12xlarge"]


def run(mode: str, steps: int, image: str | None, workdir: Path, n: int) -> dict:
    extra = ["--docker", *(["--image", image] if image else [])] if mode == "docker" else []
    argv = [sys.executable, "-m", "smlaunch", "local", "job.yaml", *JOB, *extra, "--steps", str(steps),
            "--run-dir", f"{mode}-{n}"]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if proc.returncode:
        raise SystemExit(f"{mode} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    metrics = json.loads((workdir / f"{mode}-{n}" / "output" / "data" / "metrics.json").read_text())
    return {"wall_s": wall, "tokens_per_s": metrics["tokens_per_s"], "first_loss": metrics["first_loss"],
            "last_loss": metrics["last_loss"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--image", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        subprocess.run([sys.executable, "-m", "smlaunch", "init", "--preset", "gpt2-tiny-local", "-o", "job.yaml"],
                       cwd=workdir, check=True, capture_output=True)  # fmt: skip
        results = {mode: [run(mode, args.steps, args.image, workdir, n) for n in range(args.repeats)]
                   for mode in ("emulated", "docker")}  # fmt: skip
    import torch

    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.node()}",
              "python": platform.python_version(), "torch": torch.__version__, "steps": args.steps,
              "results": results}  # fmt: skip
    Path(__file__).with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print("| mode | runs | wall time (median, min-max) | tokens/s (median) | loss first -> last |")
    print("|---|---|---|---|---|")
    for mode, runs in results.items():
        walls = [r["wall_s"] for r in runs]
        print(f"| {mode} | {len(runs)} | {statistics.median(walls):.1f} s ({min(walls):.1f}-{max(walls):.1f}) | "
              f"{statistics.median(r['tokens_per_s'] for r in runs):,.0f} | "
              f"{runs[0]['first_loss']:.4f} -> {runs[0]['last_loss']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
