"""GPU training throughput of the native entry point (entrypoints/train_gpt2.py) on synthetic tokens.

Each configuration is one real `torchrun` job of train_gpt2.py (bf16 autocast, synthetic data, seq 1024); this
script only launches it and reads its metrics.json. Results go to <out>/gpu_measurements.json (the estimator's
schema, rewritten after every run so a timeout keeps what finished) and a table on stdout.

    python3 benchmarks/train_throughput.py --suite h100 --out "$OUT"      # 1 GPU: GPT-2 124M .. 1.5B, compiled
    python3 benchmarks/train_throughput.py --suite h200x4 --out "$OUT"    # 4 GPUs: TP scaling + estimator grid
    python3 benchmarks/train_throughput.py --suite smoke --out /tmp/b     # CPU/gloo: 2 tiny runs, checks the plumbing

`compile=1` is the entry point's --compile 1: one whole-model graph on a plain single-GPU/DP layout, per-block
otherwise (entrypoints/levers.py; runs before 2026-12-03 compiled per block everywhere). On CUDA the entry point
syncs with the host every 10 steps and gives each step its window's average time (entrypoints/steplog.py).
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
    code="entrypoints",
    profile=0,
):
    return dict(
        code=code,  # folder holding train_gpt2.py (a copy of older code for before/after runs)
        profile=profile,  # the last `profile` steps run under torch.profiler on rank 0 and are not timed
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
    # 2026-11-22, 4 x H200, run concurrently on disjoint GPUs (--parallel): TP before/after the q/k/v all-reduce
    # merge + bf16 input grads, profiles, FSDP grid. code=bench_before is the entry point before the fix, recreate it
    # with `git archive 99fa93e entrypoints | tar -x --strip-components=1 -C bench_before` (mkdir bench_before first);
    # bench_alt is that code plus only the bf16 cast in Block (the same cast as 4dc78cd's model.py, q/k/v separate).
    "h200x4d": [
        cfg(
            "6.7b_tp2_each_b8_compile_before",
            "gpt-6.7b",
            gpus=2,
            tp=2,
            batch=8,
            ac="each",
            compile=1,
            steps=12,
            warmup=4,
            profile=2,
            code="bench_before",
        ),
        cfg(
            "6.7b_tp2_each_b8_compile",
            "gpt-6.7b",
            gpus=2,
            tp=2,
            batch=8,
            ac="each",
            compile=1,
            steps=12,
            warmup=4,
            profile=2,
        ),
        cfg("6.7b_tp1_each_b8_compile", "gpt-6.7b", batch=8, ac="each", compile=1, steps=12, warmup=4, profile=2),
        cfg("6.7b_tp1_each_b4_compile", "gpt-6.7b", batch=4, ac="each", compile=1, steps=12, warmup=4),
        cfg("6.7b_tp2_each_b4_compile", "gpt-6.7b", gpus=2, tp=2, batch=4, ac="each", compile=1, steps=12, warmup=4),
        cfg("774m_dp2_shard_b8", "gpt2-774m", gpus=2, batch=8, shard=1),
        cfg("2.7b_dp2_shard_b4", "gpt-2.7b", gpus=2, batch=4, shard=1),
        cfg("2.7b_tp2_dp2_shard_b4", "gpt-2.7b", gpus=4, tp=2, batch=4, shard=1),
        cfg(
            "6.7b_tp2_each_b4_compile_before",
            "gpt-6.7b",
            gpus=2,
            tp=2,
            batch=4,
            ac="each",
            compile=1,
            steps=12,
            warmup=4,
            code="bench_before",
        ),
        cfg("774m_tp2_dp2_shard_b8", "gpt2-774m", gpus=4, tp=2, batch=8, shard=1),
    ],
    # second call: the final code (cast in Block + PrepareModuleInput) and, as a fallback, bench_alt (cast only,
    # q/k/v still all-reduced separately)
    "h200x4e": [
        cfg(
            "6.7b_tp2_each_b8_compile",
            "gpt-6.7b",
            gpus=2,
            tp=2,
            batch=8,
            ac="each",
            compile=1,
            steps=12,
            warmup=4,
            profile=2,
        ),
        cfg(
            "6.7b_tp2_each_b8_compile_castonly",
            "gpt-6.7b",
            gpus=2,
            tp=2,
            batch=8,
            ac="each",
            compile=1,
            steps=12,
            warmup=4,
            profile=2,
            code="bench_alt",
        ),
        cfg("6.7b_tp2_each_b4_compile", "gpt-6.7b", gpus=2, tp=2, batch=4, ac="each", compile=1, steps=12, warmup=4),
        cfg(
            "6.7b_tp2_each_b4_compile_castonly",
            "gpt-6.7b",
            gpus=2,
            tp=2,
            batch=4,
            ac="each",
            compile=1,
            steps=12,
            warmup=4,
            code="bench_alt",
        ),
        cfg("2.7b_tp2_dp2_shard_b4", "gpt-2.7b", gpus=4, tp=2, batch=4, shard=1),
    ],
    "smoke": [
        cfg("tiny_tp1", "tiny", batch=4, steps=5, warmup=1, seq=64, profile=1),
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


def launch(c: dict, workdir: Path, *, gpu_ids: list[int] | None = None):
    """(command, env) of one torchrun job; gpu_ids pins it to those GPUs (CUDA_VISIBLE_DEVICES)."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={c['gpus']}",
        str((ROOT / c["code"] / "train_gpt2.py").relative_to(ROOT)),
        *argv_for(c, workdir),
    ]
    env = dict(
        os.environ,
        TORCH_NCCL_AVOID_RECORD_STREAMS="1",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="4",
        SAGEMAKER_BASE_DIR=str(workdir / "base"),
    )
    if c["profile"]:
        env.update(SMLAUNCH_PROFILE_DIR=str(workdir / "prof"), SMLAUNCH_PROFILE_STEPS=str(c["profile"]))
    if gpu_ids is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
    return cmd, env


def result(c: dict, workdir: Path, cmd: list[str], rc: int, log: str, wall: float, gpu_ids=None) -> dict:
    command = " ".join(cmd)
    if gpu_ids is not None:
        command = f"CUDA_VISIBLE_DEVICES={','.join(map(str, gpu_ids))} {command}"
    if c["profile"]:
        command = f"SMLAUNCH_PROFILE_DIR=<dir> SMLAUNCH_PROFILE_STEPS={c['profile']} {command}"
    mpath = workdir / "out" / "metrics.json"
    if rc != 0 or not mpath.exists():
        return {"name": c["name"], "ok": False, "rc": rc, "wall_s": wall, "log": log, "command": command}
    return {"name": c["name"], "ok": True, "wall_s": wall, "metrics": json.loads(mpath.read_text()), "command": command}


def run_one(c: dict, workdir: Path, *, timeout: float) -> dict:
    cmd, env = launch(c, workdir)
    t0 = time.time()
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        rc, log = out.returncode, out.stdout[-4000:] + out.stderr[-6000:]
    except subprocess.TimeoutExpired as exc:
        rc, log = 124, f"timeout after {timeout}s\n{(exc.stdout or b'')[-2000:]!r}"
    wall = time.time() - t0
    return result(c, workdir, cmd, rc, log, wall)


def run_parallel(configs: list[dict], *, num_gpus: int, deadline: float, hard_deadline: float):
    """Run the configs concurrently on disjoint GPUs, in list order as GPUs free up; yields (config, result).

    A config that would start after `deadline` is skipped; one still running at `hard_deadline` is killed."""
    free, pending, running = list(range(num_gpus)), list(configs), []
    while pending or running:
        while pending and len(free) >= pending[0]["gpus"] and time.time() < deadline:
            c = pending.pop(0)
            ids, free = free[: c["gpus"]], free[c["gpus"] :]
            workdir = Path("/tmp/bench_runs") / c["name"]
            cmd, env = launch(c, workdir, gpu_ids=ids)
            workdir.parent.mkdir(parents=True, exist_ok=True)
            logf = open(workdir.parent / f"{c['name']}.log", "w")  # closed when the run ends
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
            )
            running.append((c, ids, cmd, proc, logf, time.time()))
        if pending and time.time() >= deadline:
            for c in pending:
                yield c, {"name": c["name"], "ok": False, "rc": None, "log": "skipped: time budget", "command": ""}
            pending = []
        time.sleep(0.5)
        for item in list(running):
            c, ids, cmd, proc, logf, t0 = item
            rc = proc.poll()
            if rc is None and time.time() > hard_deadline:
                os.killpg(proc.pid, 9)
                rc = proc.wait()
            if rc is None:
                continue
            running.remove(item)
            free += ids
            logf.close()
            log = (Path("/tmp/bench_runs") / f"{c['name']}.log").read_text()[-8000:]
            workdir = Path("/tmp/bench_runs") / c["name"]
            yield c, result(c, workdir, cmd, rc, log, time.time() - t0, gpu_ids=ids)


def analyze_trace(path: Path, steps: int) -> str:
    """GPU time breakdown of a torch.profiler chrome trace: kernel classes, busy union, idle, top kernels."""
    ev = json.loads(path.read_text())["traceEvents"]
    kern = [e for e in ev if e.get("cat") == "kernel" and "dur" in e]
    if not kern:
        return "no kernels in trace\n"
    t_start = min(e["ts"] for e in ev if "ts" in e and e.get("ph") == "X")
    t_end = max(e["ts"] + e["dur"] for e in kern)
    window = t_end - t_start

    def klass(name: str) -> str:
        n = name.lower()
        if "nccl" in n:
            return "nccl (TP/DP collectives)"
        if any(k in n for k in ("gemm", "nvjet", "cutlass", "xmma", "sm90_", "cublas")):
            return "matmul (cuBLAS/CUTLASS)"
        if any(k in n for k in ("flash", "fmha", "attention", "sdpa")):
            return "attention (flash)"
        if "adam" in n:
            return "optimizer (fused AdamW)"
        if n.startswith("triton"):
            return "triton (inductor-fused pointwise/norm)"
        return "other eager kernels (embedding, loss, copies, foreach)"

    by_class: dict[str, float] = {}
    by_name: dict[str, list] = {}
    for e in kern:
        by_class[klass(e["name"])] = by_class.get(klass(e["name"]), 0.0) + e["dur"]
        s = by_name.setdefault(e["name"][:90], [0.0, 0])
        s[0] += e["dur"]
        s[1] += 1
    iv = sorted((e["ts"], e["ts"] + e["dur"]) for e in kern)
    busy, cur_s, cur_e = 0.0, iv[0][0], iv[0][1]
    compute_iv = sorted((e["ts"], e["ts"] + e["dur"]) for e in kern if "nccl" not in e["name"].lower())
    for s0, e0 in iv[1:]:
        if s0 > cur_e:
            busy += cur_e - cur_s
            cur_s, cur_e = s0, e0
        else:
            cur_e = max(cur_e, e0)
    busy += cur_e - cur_s
    comp = 0.0
    if compute_iv:
        cs, ce = compute_iv[0]
        for s0, e0 in compute_iv[1:]:
            if s0 > ce:
                comp += ce - cs
                cs, ce = s0, e0
            else:
                ce = max(ce, e0)
        comp += ce - cs
    ms = 1e-3 / steps
    lines = [
        f"profiled steps: {steps}; per step (ms): window {window * ms:.1f}, GPU busy (union of kernels) "
        f"{busy * ms:.1f}, GPU idle {(window - busy) * ms:.1f}, busy with non-NCCL kernels {comp * ms:.1f}, "
        f"NCCL-only (not overlapped with compute) {(busy - comp) * ms:.1f}",
        "kernel time by class (ms/step, sum of kernel durations; streams may overlap):",
    ]
    for k, v in sorted(by_class.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {v * ms:8.1f}  {k}")
    lines.append("top 25 kernels (ms/step, calls/step, name):")
    for name, (t, n) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:25]:
        lines.append(f"  {t * ms:8.2f} {n / steps:6.0f}  {name}")
    return "\n".join(lines) + "\n"


def record(c: dict, res: dict, *, device: str, torch_version: str) -> dict:
    m = res["metrics"]
    layers, width, heads = MODELS[c["model"]]
    all_times = m["step_times_s"][: len(m["step_times_s"]) - c["profile"]]  # profiled steps are not timed
    times = all_times[c["warmup"] :] or all_times
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
    p.add_argument("--parallel", action="store_true", help="run configs concurrently on disjoint GPUs")
    a = p.parse_args()
    import torch

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    configs = [c for c in SUITES[a.suite] if not a.only or c["name"] in a.only.split(",")]
    records, failures, t_start = [], [], time.time()
    num_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 4

    def handle(c: dict, res: dict) -> None:
        if res["ok"]:
            records.append(record(c, res, device=device, torch_version=torch.__version__))
            r = records[-1]
            if a.parallel:
                r["concurrent"] = "other runs shared the machine on disjoint GPUs"
            print(
                f"{r['name']:34s} tok/s {r['tokens_per_s']:>10.0f}  per-GPU {r['tokens_per_s_per_gpu']:>9.0f}  "
                f"MFU {r['mfu']:.3f}  step {r['step_time_s']:.3f}s  mem {r['peak_mem_gib']:.1f} GiB  "
                f"(wall {res['wall_s']:.0f}s)",
                flush=True,
            )
            trace = Path("/tmp/bench_runs") / c["name"] / "prof" / "trace.json"
            if c["profile"] and trace.exists():
                ops = trace.parent / "ops.txt"
                with open(out / "profiles.txt", "a") as f:
                    f.write(f"==== {c['name']} (rank 0, last {c['profile']} steps)\n")
                    try:
                        f.write(analyze_trace(trace, c["profile"]))
                    except Exception as exc:  # the measurement stands without its profile
                        f.write(f"trace analysis failed: {exc!r}\n")
                    f.write(ops.read_text() if ops.exists() else "no ops.txt\n")
                    f.write("\n")
        else:
            failures.append(res)
            print(f"{c['name']:34s} FAILED rc={res['rc']}\n{res['log'][-1500:]}", flush=True)
        (out / "gpu_measurements.json").write_text(json.dumps(records, indent=1))
        (out / "failures.json").write_text(json.dumps(failures, indent=1))

    if a.parallel:
        fits = [c for c in configs if c["gpus"] <= num_gpus]
        for c in configs:
            if c not in fits:
                handle(c, {"name": c["name"], "ok": False, "rc": None, "log": f"needs {c['gpus']} GPUs", "command": ""})
        runs = run_parallel(fits, num_gpus=num_gpus, deadline=t_start + a.budget, hard_deadline=t_start + a.budget + 60)
        for c, res in runs:
            handle(c, res)
    for c in configs if not a.parallel else []:
        if time.time() - t_start > a.budget:
            failures.append({"name": c["name"], "ok": False, "rc": None, "log": "skipped: time budget"})
            continue
        if c["gpus"] > num_gpus:
            failures.append({"name": c["name"], "ok": False, "rc": None, "log": f"skipped: needs {c['gpus']} GPUs"})
            continue
        left = a.budget + 30 - (time.time() - t_start)  # never outlive the caller's limit
        handle(c, run_one(c, Path("/tmp/bench_runs") / c["name"], timeout=max(30.0, min(a.timeout, left))))
    print(f"\n{len(records)} measured, {len(failures)} failed/skipped; total {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
