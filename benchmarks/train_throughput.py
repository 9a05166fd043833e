"""GPU training throughput of the native entry point (entrypoints/train_gpt2.py) on synthetic tokens.

Each configuration is one real `torchrun` job of train_gpt2.py (bf16 autocast, synthetic data, seq 1024); this
script only launches it and reads its metrics.json. Results go to <out>/gpu_measurements.json (the estimator's
schema, rewritten after every run so a timeout keeps what finished) and a table on stdout.

    python3 benchmarks/train_throughput.py --suite h100 --out "$OUT"      # 1 GPU: GPT-2 124M .. 1.5B, compiled
    python3 benchmarks/train_throughput.py --suite h200x4 --out "$OUT"    # 4 GPUs: TP scaling + estimator grid
    python3 benchmarks/train_throughput.py --suite smoke --out /tmp/b     # CPU/gloo: 2 tiny runs, checks the plumbing

step_time_s is the median over the steps after `warmup` (compile and allocator warm-up excluded);
tokens_per_s = global batch * seq_length / step_time_s; MFU = tokens_per_s * flops_per_token / (num_gpus * 989e12)
with flops_per_token = 6N + 12*L*width*T (PaLM/nanoGPT, no causal halving, recompute not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "entrypoints" / "train_gpt2.py"
PEAK = 989e12

MODELS = {  # num_layers, hidden_width, num_heads
    "gpt2-124m": (12, 768, 12),
    "gpt2-350m": (24, 1024, 16),
    "gpt2-774m": (36, 1280, 20),
    "gpt2-1.5b": (48, 1600, 25),
    "gpt-2.7b": (32, 2560, 32),
    "gpt-6.7b": (32, 4096, 32),
    "tiny": (2, 64, 4),
}


def cfg(
    name,
    model,
    *,
    gpus=1,
    tp=1,
    pp=1,
    batch=8,
    mb=1,
    active=0,
    ac="none",
    shard=0,
    prescaled=1,
    optimize="speed",
    pipeline="interleaved",
    compile=0,
    steps=14,
    warmup=5,
    seq=1024,
):
    return dict(
        name=name,
        model=model,
        gpus=gpus,
        tp=tp,
        pp=pp,
        batch=batch,
        mb=mb,
        active=active,
        ac=ac,
        shard=shard,
        prescaled=prescaled,
        optimize=optimize,
        pipeline=pipeline,
        compile=compile,
        steps=steps,
        warmup=warmup,
        seq=seq,
    )


SUITES = {
    "h100": [
        cfg("124m_b16_eager", "gpt2-124m", batch=16, steps=20, warmup=6),
        cfg("124m_b16_compile", "gpt2-124m", batch=16, compile=1, steps=30, warmup=10),
        cfg("124m_b32_compile", "gpt2-124m", batch=32, compile=1, steps=30, warmup=10),
        cfg("350m_b16_compile", "gpt2-350m", batch=16, compile=1, steps=25, warmup=8),
        cfg("774m_b12_compile", "gpt2-774m", batch=12, compile=1, steps=20, warmup=8),
        cfg("1.5b_b8_compile", "gpt2-1.5b", batch=8, compile=1, steps=20, warmup=8),
        cfg("1.5b_b12_compile", "gpt2-1.5b", batch=12, compile=1, steps=16, warmup=6),
    ],
    "h100b": [  # second pass after removing the per-step grad-norm host sync; larger batches
        cfg("124m_b32_compile", "gpt2-124m", batch=32, compile=1, steps=30, warmup=10),
        cfg("124m_b64_compile", "gpt2-124m", batch=64, compile=1, steps=25, warmup=8),
        cfg("1.5b_b12_compile", "gpt2-1.5b", batch=12, compile=1, steps=16, warmup=6),
        cfg("1.5b_b16_compile", "gpt2-1.5b", batch=16, compile=1, steps=14, warmup=5),
    ],
    "h200x4": [
        # TP scaling of a 6.7B model: same group batch (4 x 1024 tokens) on 1, 2, 4 GPUs
        cfg("6.7b_tp1_each_b4", "gpt-6.7b", batch=4, ac="each", steps=10, warmup=4),
        cfg("6.7b_tp2_each_b4", "gpt-6.7b", gpus=2, tp=2, batch=4, ac="each", steps=10, warmup=4),
        cfg("6.7b_tp4_each_b4", "gpt-6.7b", gpus=4, tp=4, batch=4, ac="each", steps=10, warmup=4),
        # estimator grid
        cfg("774m_tp1_none_b8", "gpt2-774m", batch=8),
        cfg("774m_tp1_each_b8", "gpt2-774m", batch=8, ac="each"),
        cfg("774m_tp2_speed_b8", "gpt2-774m", gpus=2, tp=2, batch=8),
        cfg("774m_tp2_memory_b8", "gpt2-774m", gpus=2, tp=2, batch=8, optimize="memory"),
        cfg("774m_pp2_mb4_1f1b_b8", "gpt2-774m", gpus=2, pp=2, batch=8, mb=4),
        cfg("774m_pp2_mb8_gpipe_b8", "gpt2-774m", gpus=2, pp=2, batch=8, mb=8, pipeline="simple"),
        cfg("774m_pp4_mb8_1f1b_each_b8", "gpt2-774m", gpus=4, pp=4, batch=8, mb=8, ac="each"),
        cfg("774m_dp4_b8", "gpt2-774m", gpus=4, batch=8),
        cfg("2.7b_tp2_pp2_mb4_each_b8", "gpt-2.7b", gpus=4, tp=2, pp=2, batch=8, mb=4, ac="each"),
        cfg("2.7b_tp4_none_b8", "gpt-2.7b", gpus=4, tp=4, batch=8),
        cfg("2.7b_tp2_dp2_shard_b4", "gpt-2.7b", gpus=4, tp=2, batch=4, shard=1),
    ],
    "h200x4c": [  # TP again with per-block torch.compile (eager TP is bound by DTensor's CPU dispatch)
        cfg("6.7b_tp1_each_b4_compile", "gpt-6.7b", batch=4, ac="each", compile=1, steps=10, warmup=4),
        cfg("6.7b_tp2_each_b4_compile", "gpt-6.7b", gpus=2, tp=2, batch=4, ac="each", compile=1, steps=10, warmup=4),
        cfg("6.7b_tp4_each_b4_compile", "gpt-6.7b", gpus=4, tp=4, batch=4, ac="each", compile=1, steps=10, warmup=4),
        cfg("774m_tp2_speed_b8_compile", "gpt2-774m", gpus=2, tp=2, batch=8, compile=1),
        # the same with twice the group batch: does the per-GPU gap shrink (fixed per-step overhead)?
        cfg("6.7b_tp1_each_b8_compile", "gpt-6.7b", batch=8, ac="each", compile=1, steps=10, warmup=4),
        cfg("6.7b_tp2_each_b8_compile", "gpt-6.7b", gpus=2, tp=2, batch=8, ac="each", compile=1, steps=10, warmup=4),
        cfg("6.7b_tp4_each_b8_compile", "gpt-6.7b", gpus=4, tp=4, batch=8, ac="each", compile=1, steps=10, warmup=4),
    ],
    "smoke": [
        cfg("tiny_tp1", "tiny", batch=4, steps=4, warmup=1, seq=64),
        cfg("tiny_tp2_pp1", "tiny", gpus=2, tp=2, batch=4, steps=4, warmup=1, seq=64),
    ],
}


def argv_for(c: dict, workdir: Path) -> list[str]:
    layers, width, heads = MODELS[c["model"]]
    dp = c["gpus"] // (c["tp"] * c["pp"])
    hp = {
        "num_layers": layers,
        "hidden_width": width,
        "num_heads": heads,
        "seq_length": c["seq"],
        "vocab_size": 50257,
        "batch_size": c["batch"],
        "max_steps": c["steps"],
        "warmup_steps": 2,
        "synthetic": 1,
        "seed": 1,
        "tensor_parallel_degree": c["tp"],
        "pipeline_parallel_degree": c["pp"],
        "microbatches": c["mb"],
        "active_microbatches": c["active"],
        "prescaled_batch": c["prescaled"],
        "pipeline": c["pipeline"],
        "optimize": c["optimize"],
        "activation_checkpointing": int(c["ac"] != "none"),
        "activation_strategy": c["ac"] if c["ac"] != "none" else "each",
        "shard_optimizer_state": c["shard"],
        "bf16": int(c.get("bf16", True)),
        "compile": c["compile"],
        "checkpoint_every_steps": 0,
        "final_save": 0,  # no end-of-run DCP checkpoint / model save: tens of GB for the large models, not measured
    }
    assert dp >= 1, c
    args = [a for k, v in hp.items() for a in (f"--{k}", str(v))]
    return [
        *args,
        "--checkpoint-dir",
        str(workdir / "ck"),
        "--model-dir",
        str(workdir / "model"),
        "--output-data-dir",
        str(workdir / "out"),
    ]


def run_one(c: dict, workdir: Path, *, timeout: float) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={c['gpus']}",
        str(TRAIN.relative_to(ROOT)),
        *argv_for(c, workdir),
    ]
    env = dict(
        os.environ,
        TORCH_NCCL_AVOID_RECORD_STREAMS="1",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="4",
        SAGEMAKER_BASE_DIR=str(workdir / "base"),
    )
    t0 = time.time()
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        rc, log = out.returncode, out.stdout[-4000:] + out.stderr[-6000:]
    except subprocess.TimeoutExpired as exc:
        rc, log = 124, f"timeout after {timeout}s\n{(exc.stdout or b'')[-2000:]!r}"
    wall = time.time() - t0
    mpath = workdir / "out" / "metrics.json"
    if rc != 0 or not mpath.exists():
        return {"name": c["name"], "ok": False, "rc": rc, "wall_s": wall, "log": log, "command": " ".join(cmd)}
    return {
        "name": c["name"],
        "ok": True,
        "wall_s": wall,
        "metrics": json.loads(mpath.read_text()),
        "command": " ".join(cmd),
    }


def record(c: dict, res: dict, *, device: str, torch_version: str) -> dict:
    m = res["metrics"]
    layers, width, heads = MODELS[c["model"]]
    times = m["step_times_s"][c["warmup"] :] or m["step_times_s"]
    step_time = statistics.median(times)
    tokens = m["global_batch"] * c["seq"]
    tps = tokens / step_time
    return {
        "name": c["name"],
        "device": device,
        "num_gpus": c["gpus"],
        "model": {
            "num_layers": layers,
            "hidden_width": width,
            "num_heads": heads,
            "seq_length": c["seq"],
            "vocab_size": 50257,
        },
        "tp": c["tp"],
        "pp": c["pp"],
        "dp": m["layout"]["dp"],
        "microbatches": c["mb"],
        "active_microbatches": c["active"],
        "batch_size": c["batch"],
        "prescaled_batch": bool(c["prescaled"]),
        "activation_checkpointing": c["ac"],
        "shard_optimizer_state": bool(c["shard"]),
        "bf16": True,
        "peak_mem_gib": max(m["peak_mem_gib_per_rank"]),
        "step_time_s": step_time,
        "tokens_per_s": tps,
        "tokens_per_s_per_gpu": tps / c["gpus"],
        "mfu": tps * m["flops_per_token"] / (c["gpus"] * PEAK),
        "flops_per_token": m["flops_per_token"],
        "global_batch": m["global_batch"],
        "optimize": c["optimize"],
        "pipeline": c["pipeline"],
        "compile": bool(c["compile"]),
        "timed_steps": len(times),
        "torch": torch_version,
        "date": time.strftime("%Y-%m-%d"),
        "command": res["command"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=sorted(SUITES), required=True)
    p.add_argument("--only", default="", help="comma-separated config names")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/bench"))
    p.add_argument("--timeout", type=float, default=240, help="seconds per run")
    p.add_argument("--budget", type=float, default=560, help="skip runs that would start after this many seconds")
    a = p.parse_args()
    import torch

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    configs = [c for c in SUITES[a.suite] if not a.only or c["name"] in a.only.split(",")]
    records, failures, t_start = [], [], time.time()
    for c in configs:
        if time.time() - t_start > a.budget:
            failures.append({"name": c["name"], "ok": False, "rc": None, "log": "skipped: time budget"})
            continue
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 4
        if c["gpus"] > gpus:
            failures.append({"name": c["name"], "ok": False, "rc": None, "log": f"skipped: needs {c['gpus']} GPUs"})
            continue
        left = a.budget + 30 - (time.time() - t_start)  # never outlive the caller's limit
        res = run_one(c, Path("/tmp/bench_runs") / c["name"], timeout=max(30.0, min(a.timeout, left)))
        if res["ok"]:
            records.append(record(c, res, device=device, torch_version=torch.__version__))
            r = records[-1]
            print(
                f"{r['name']:30s} tok/s {r['tokens_per_s']:>10.0f}  per-GPU {r['tokens_per_s_per_gpu']:>9.0f}  "
                f"MFU {r['mfu']:.3f}  step {r['step_time_s']:.3f}s  mem {r['peak_mem_gib']:.1f} GiB  "
                f"(wall {res['wall_s']:.0f}s)",
                flush=True,
            )
        else:
            failures.append(res)
            print(
                f"{c['name']:30s} FAILED rc={res['rc']} (wall {res['wall_s']:.0f}s)\n{res['log'][-1500:]}", flush=True
            )
        (out / "gpu_measurements.json").write_text(json.dumps(records, indent=1))
        (out / "failures.json").write_text(json.dumps(failures, indent=1))
    print(f"\n{len(records)} measured, {len(failures)} failed/skipped; total {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
