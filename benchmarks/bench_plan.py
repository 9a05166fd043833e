"""Time ``smlaunch plan`` for GPT-2 60B on 32 x ml.p4d.24xlarge (target: < 2 s, median of N runs).

    python benchmarks/bench_plan.py            # in-process, 7 runs, prints the median
    python benchmarks/bench_plan.py --cli      # also times the whole CLI (fresh interpreter) 5 times

Each in-process run clears nothing between runs (the planner caches nothing), so the median is the steady cost of
one plan() call; the CLI timing includes interpreter start-up and imports.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

ARGS = ["--model", "gpt2-60b", "--instance-type", "ml.p4d.24xlarge", "--instance-count", "32"]


def time_inprocess(runs: int, global_batch: int | None) -> list[float]:
    from smlaunch.costmodel import plan

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = plan("gpt2-60b", instance_type="ml.p4d.24xlarge", instance_count=32, global_batch=global_batch)
        times.append(time.perf_counter() - start)
    print(
        f"  considered {result.considered}, feasible {len(result.feasible)}, best tp {result.best.estimate.knobs.tp}"
        f" pp {result.best.estimate.knobs.pp}"
    )
    return times


def time_cli(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "smlaunch", "plan", *ARGS], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cli", action="store_true")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or '?'}")
    for gb in (None, 896):
        times = time_inprocess(args.runs, gb)
        label = "ladder of batch sizes" if gb is None else f"--global-batch {gb}"
        print(
            f"plan() gpt2-60b 32 x p4d ({label}): median {statistics.median(times):.3f} s, "
            f"min {min(times):.3f}, max {max(times):.3f} over {args.runs}"
        )
    if args.cli:
        times = time_cli(5)
        print(f"`smlaunch plan {' '.join(ARGS)}`: median {statistics.median(times):.3f} s over 5")


if __name__ == "__main__":
    main()
