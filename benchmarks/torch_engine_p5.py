"""One rank of an `engine: torch` p5 job, exactly as rendered, on one GPU; next to the estimates of it.

    python benchmarks/torch_engine_p5.py prepare --preset gpt2-xl-p5 --out benchmarks/torch_engine_p5.json
    python3 benchmarks/torch_engine_p5.py run --plan benchmarks/torch_engine_p5.json --out "$OUT"   # on the GPU

`prepare` (here, with smlaunch installed) renders the starter as `submit` would and writes what the SageMaker
toolkit would run on each host: the entry point's argv (hyperparameters.json -> the toolkit's `--key value`
list, smlaunch.container) and its torchrun options, with one process standing in for one of the job's ranks; and
the cost model's estimates of the job (per GPU) and of that one rank alone on an H200 (``ml.p5e.48xlarge``,
``processes_per_host: 1``: no data-parallel gradient buffer, no all-reduce). `run` (on the device, no smlaunch
needed: the entry points never import it) starts `python3 -m torch.distributed.run <options> train_gpt2.py
<argv>` in an emulated /opt/ml under /tmp and copies metrics.json and the console log to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(preset: str, out: Path) -> None:
    import yaml

    from smlaunch import container as ct
    from smlaunch.costmodel import estimate
    from smlaunch.request import render
    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    job = yaml.safe_load(starter(preset))
    spec = load_spec(job)
    request = render(spec)
    hps = ct.hyperparameters_json(
        request, job_name="bench", region="us-east-1", submit_dir="s3://bench/source", processes_per_host=8
    )
    decoded = ct.decode_hyperparameters(hps)
    user = {k: v for k, v in decoded.items() if not (k.startswith("sagemaker_") or k in ct.RESERVED_SAGEMAKER_KEYS)}
    one_rank = load_spec(job, ["cluster.instance_type=ml.p5e.48xlarge", "cluster.processes_per_host=1"])
    plan = {
        "preset": preset,
        "engine": spec.engine,
        "job": {"instance_type": spec.cluster.instance_type, "instance_count": spec.cluster.instance_count},
        "hyperparameters_json": hps,
        "argv": ct.user_args(user),
        "torchrun_options": ct.torchrun_options(ct.resource_config(request.instance_type), processes_per_host=1),
        "estimate_job": estimate(spec).to_dict(),
        "estimate_one_rank_h200": estimate(one_rank).to_dict(),
    }
    out.write_text(json.dumps(plan, indent=2) + "\n")
    print(f"wrote {out}: {' '.join(plan['argv'])}")


def run(plan_path: Path, out: Path) -> None:
    plan = json.loads(plan_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="opt_ml_"))
    for sub in ("input/config", "model", "output/data", "checkpoints"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SM_OUTPUT_DATA_DIR": str(base / "output" / "data"),
           "SM_MODEL_DIR": str(base / "model"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", *plan["torchrun_options"], "--standalone", "train_gpt2.py",
           *plan["argv"]]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT / "entrypoints", env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    (out / "console.log").write_text((proc.stdout + proc.stderr)[-200_000:])
    metrics = base / "output" / "data" / "metrics.json"
    result = {"returncode": proc.returncode, "wall_s": round(wall, 1), "command": cmd}
    if metrics.is_file():
        result["metrics"] = json.loads(metrics.read_text())
    import torch

    result["torch"] = torch.__version__
    result["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    (out / "torch_engine_p5_result.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(base, ignore_errors=True)
    print(json.dumps({k: v for k, v in result.items() if k != "command"}, indent=2)[:4000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--preset", default="gpt2-xl-p5")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "torch_engine_p5.json")
    r = sub.add_parser("run")
    r.add_argument("--plan", type=Path, default=ROOT / "benchmarks" / "torch_engine_p5.json")
    r.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "prepare":
        prepare(args.preset, args.out)
    else:
        run(args.plan, args.out)


if __name__ == "__main__":
    main()
