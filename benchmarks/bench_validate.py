"""Cold start of `smlaunch validate` on a reference template: a fresh interpreter per run, as a user types it.

    python benchmarks/bench_validate.py            # 30 runs, prints min / median / p90 in seconds
    python benchmarks/bench_validate.py --runs 50

Target (issue 2): median < 0.3 s on the project's 2-core machines.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--preset", default="gpt2-60b")
    args = parser.parse_args()

    from smlaunch.templates import starter

    job = Path(tempfile.mkdtemp()) / "job.yaml"
    job.write_text(starter(args.preset))
    command = [sys.executable, "-m", "smlaunch", "validate", str(job)]
    subprocess.run(command, check=True, capture_output=True)  # warm the OS file cache and .pyc files
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    times.sort()
    p90 = times[int(0.9 * (len(times) - 1))]
    print(f"python {platform.python_version()} on {platform.machine()}, {args.runs} runs: validate {args.preset}")
    print(f"min {times[0]:.3f} s  median {statistics.median(times):.3f} s  p90 {p90:.3f} s")


if __name__ == "__main__":
    main()
