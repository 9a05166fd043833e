"""Our native entry point against nanoGPT on one GPU, side by side in one process tree, same model and math.

nanoGPT (karpathy/nanoGPT) never enters this repository: fetch it into the git-ignored folder `.nanogpt/`
(`git show HEAD:model.py > .nanogpt/model.py` from a clone; `.nanogpt/COMMIT` names the commit) and carry that folder
to the device. Its `model.py` runs here as its train.py runs it: the whole model `torch.compile`d, its
`configure_optimizers` (fused AdamW, weight decay 0.1 on matrices, betas 0.9/0.95), bf16 autocast over fp32
weights, grad clip 1.0, `loss.item()` every step (train.py's log_interval = 1), batches pinned and copied
asynchronously. Same GPT-2 shapes as ours: vocab 50304, biases in every Linear and LayerNorm (nanoGPT's
`bias=True`, GPT-2's), dropout 0, seq 1024. Ours is `entrypoints/train_gpt2.py` under torchrun
(benchmarks/train_throughput.py's launcher, synthetic tokens), with levers.py's switches per variant.

    python3 benchmarks/vs_nanogpt.py --suite h200 --out "$OUT"       # device: every pair of the suite
    python3 benchmarks/vs_nanogpt.py --suite smoke --out /tmp/vs     # CPU: tiny shapes, checks the plumbing
    python3 entrypoints/tokenize_text.py $(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')/*.py \
        --tokenizer bytes --out-dir /tmp/vs_text && python3 benchmarks/vs_nanogpt.py --suite fp8loss --out "$OUT"

`fp8` and `fp8loss` need torchao (`pip install --no-deps` its wheel, carried in the git-ignored `.whl/`).

Writes <out>/vs_nanogpt.json: one record per (our variant, nanoGPT) pair measured in this call, keys
{model, batch, gpu, ours_tokens_per_s, nanogpt_tokens_per_s, torch, date, command}; <out>/runs.json: every run with
its step time, peak memory and variant; <out>/profiles.txt: the torch.profiler summaries. tokens/s = batch * seq /
median step time after `warmup` steps (ours: its steps' times, which are window averages, steplog.py).
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train_throughput as tt  # noqa: E402

BEFORE = {"SMLAUNCH_COMPILE_SCOPE": "block", "SMLAUNCH_FUSED_QKV": "0", "SMLAUNCH_LOG_EVERY": "1"}
FP8 = {"--precision": "fp8"}  # keys that start with -- are our entry point's arguments, the others its environment
TEXT = {"--train-dir": "/tmp/vs_text", "--synthetic": "0", "--warmup_steps": "30", "--lr": "6e-4", "--min_lr": "6e-5"}
LOSS_RUNS = [  # the same 300 steps of real text (TEXT: byte tokens of Python's standard library) in bf16 and fp8
    ("ours", "gpt2-124m", 16, 300, 10, TEXT, 0),
    ("ours", "gpt2-124m", 16, 300, 10, {**TEXT, **FP8}, 0),
]
SUITES = {  # (kind, model, batch, steps, warmup, env of our variant or None, profile steps)
    "h200": [
        ("nanogpt", "gpt2-124m", 16, 33, 10, None, 3),
        ("ours", "gpt2-124m", 16, 33, 10, {}, 3),
        ("ours", "gpt2-124m", 16, 30, 10, BEFORE, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {"SMLAUNCH_SDPA": "cudnn"}, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {"SMLAUNCH_FUSED_QKV": "0"}, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {"SMLAUNCH_COMPILE_MODE": "reduce-overhead"}, 0),
        ("nanogpt", "gpt2-1.5b", 8, 16, 6, None, 0),
        ("ours", "gpt2-1.5b", 8, 16, 6, {}, 0),
        ("ours", "gpt2-1.5b", 8, 16, 6, {"SMLAUNCH_SDPA": "cudnn"}, 0),
    ],
    "h200b": [  # second call: the pairs again in the other order (ours first), then levers not measured yet
        ("nanogpt", "gpt2-1.5b", 8, 16, 6, None, 0),
        ("ours", "gpt2-1.5b", 8, 16, 6, {}, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {}, 0),
        ("nanogpt", "gpt2-124m", 16, 30, 10, None, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {"SMLAUNCH_COMPILE_MODE": "reduce-overhead"}, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {"SMLAUNCH_FUSED_QKV": "0"}, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {"SMLAUNCH_SDPA": "flash"}, 0),
    ],
    "fp8": [  # precision fp8 (torchao float8, fp8.py) against bf16 and nanoGPT, both recipes
        ("nanogpt", "gpt2-124m", 16, 30, 10, None, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {}, 0),
        ("ours", "gpt2-124m", 16, 30, 10, FP8, 0),
        ("ours", "gpt2-124m", 16, 30, 10, {**FP8, "SMLAUNCH_FP8_RECIPE": "rowwise"}, 0),
        ("nanogpt", "gpt2-1.5b", 8, 16, 6, None, 0),
        ("ours", "gpt2-1.5b", 8, 16, 6, {}, 0),
        ("ours", "gpt2-1.5b", 8, 16, 6, FP8, 0),
        ("ours", "gpt2-1.5b", 8, 16, 6, {**FP8, "SMLAUNCH_FP8_RECIPE": "rowwise"}, 0),
    ],
    "fp8b": [  # second call: 1.5B in fp8 with its nanoGPT pair, the loss runs, then 1.5B bf16 again
        ("ours", "gpt2-1.5b", 8, 16, 6, FP8, 0),
        ("nanogpt", "gpt2-1.5b", 8, 16, 6, None, 0),
        *LOSS_RUNS,
        ("ours", "gpt2-1.5b", 8, 16, 6, {}, 0),
    ],
    "fp8c": [  # third call: 1.5B in fp8 (whole-model compile ran past 220 s in fp8b), per-block compile first
        ("ours", "gpt2-1.5b", 8, 16, 6, {**FP8, "SMLAUNCH_COMPILE_SCOPE": "block"}, 0),
        ("ours", "gpt2-1.5b", 8, 16, 6, FP8, 0),
    ],
    "fp8loss": LOSS_RUNS,
    "smoke": [
        ("nanogpt", "tiny", 4, 6, 2, None, 0),
        ("ours", "tiny", 4, 6, 2, {}, 0),
    ],
}


def nanogpt_worker(a) -> None:
    """One nanoGPT run in this process; writes its measurement as JSON to a.result."""
    import torch

    sys.path.insert(0, str(Path(a.src).resolve()))
    from model import GPT, GPTConfig  # nanoGPT's model.py

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True  # as train.py sets them
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(1337)
    layers, width, heads = tt.MODELS[a.model]
    conf = GPTConfig(block_size=a.seq, vocab_size=50304, n_layer=layers, n_head=heads, n_embd=width, bias=True)
    model = GPT(conf).to(device)
    optimizer = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device)
    model = torch.compile(model) if cuda else model
    ctx = torch.autocast(device, dtype=torch.bfloat16)

    def get_batch():
        x = torch.randint(50257, (a.batch, a.seq + 1))
        x, y = x[:, :-1].contiguous(), x[:, 1:].contiguous()
        if cuda:
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x, y

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    x, y = get_batch()
    times, losses, prof = [], [], None
    for step in range(a.steps):
        if a.profile and step == a.steps - a.profile:
            prof = start_profiler()
        t0 = time.perf_counter()
        with ctx:
            _, loss = model(x, y)
        x, y = get_batch()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())  # train.py's log line, every step
        times.append(time.perf_counter() - t0)
    if prof is not None:
        stop_profiler(prof, Path(a.result).with_suffix(".trace.json"))
    timed = times[a.warmup : len(times) - a.profile] or times
    step = statistics.median(timed)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    out = {"step_time_s": step, "tokens_per_s": a.batch * a.seq / step, "peak_mem_gib": peak, "losses": losses}
    Path(a.result).write_text(json.dumps(out))


def start_profiler():
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    prof = profile(activities=acts)
    prof.__enter__()
    return prof


def stop_profiler(prof, trace: Path) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    prof.__exit__(None, None, None)
    prof.export_chrome_trace(str(trace))


def run_nanogpt(entry, a, workdir: Path, timeout: float) -> dict:
    _, model, batch, steps, warmup, _, profile = entry
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / "nanogpt.json"
    cmd = [sys.executable, str(Path(__file__).relative_to(tt.ROOT)), "--nanogpt-worker", "--src", a.nanogpt]
    cmd += ["--model", model, "--batch", str(batch), "--seq", str(a.seq), "--steps", str(steps)]
    cmd += ["--warmup", str(warmup), "--profile", str(profile), "--result", str(result)]
    rc, log = _run(cmd, dict(os.environ, PYTHONUNBUFFERED="1"), timeout)
    if rc != 0 or not result.exists():
        return {"ok": False, "rc": rc, "log": log, "command": " ".join(cmd)}
    trace = result.with_suffix(".trace.json")
    return {"ok": True, **json.loads(result.read_text()), "command": " ".join(cmd), "trace": str(trace)}


def run_ours(entry, a, workdir: Path, timeout: float) -> dict:
    _, model, batch, steps, warmup, env_over, profile = entry
    import torch

    cuda = int(torch.cuda.is_available())  # on the CPU (smoke) eager: inductor's C++ build is not the point there
    c = tt.cfg("vs", model, batch=batch, compile=cuda, steps=steps, warmup=warmup, seq=a.seq, profile=profile)
    cmd, env = tt.launch(c, workdir)
    args = {k: v for k, v in env_over.items() if k.startswith("--")}
    env.update({k: v for k, v in env_over.items() if k not in args})
    cmd += [x for kv in args.items() for x in kv]  # after the suite's arguments: the later value wins
    rc, log = _run(cmd, env, timeout)
    command = " ".join([*(f"{k}={v}" for k, v in env_over.items() if k not in args), *cmd])
    mpath = workdir / "out" / "metrics.json"
    if rc != 0 or not mpath.exists():
        return {"ok": False, "rc": rc, "log": log, "command": command}
    m = json.loads(mpath.read_text())
    all_times = m["step_times_s"][: len(m["step_times_s"]) - profile]
    step = statistics.median(all_times[warmup:] or all_times)
    trace = workdir / "prof" / "trace.json"
    return {
        "ok": True,
        "step_time_s": step,
        "tokens_per_s": m["global_batch"] * a.seq / step,
        "peak_mem_gib": max(m["peak_mem_gib_per_rank"]),
        "losses": m["losses"],
        "command": command,
        "trace": str(trace),
    }


def _run(cmd, env, timeout) -> tuple[int, str]:
    try:
        out = subprocess.run(cmd, cwd=tt.ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        return out.returncode, out.stdout[-3000:] + out.stderr[-5000:]
    except subprocess.TimeoutExpired:
        return 124, f"timeout after {timeout:.0f}s"


def pairs(runs: list[dict], *, gpu: str, torch_version: str, command: str) -> list[dict]:
    """One record per our run, against the nanoGPT run of the same model and batch in this call."""
    ref = {(r["model"], r["batch"]): r for r in runs if r["kind"] == "nanogpt" and r["ok"]}
    out = []
    for r in runs:
        n = ref.get((r["model"], r["batch"]))
        if r["kind"] != "ours" or not r["ok"] or n is None:
            continue
        out.append(
            {
                "model": r["model"],
                "batch": r["batch"],
                "gpu": gpu,
                "ours_tokens_per_s": round(r["tokens_per_s"]),
                "nanogpt_tokens_per_s": round(n["tokens_per_s"]),
                "torch": torch_version,
                "date": time.strftime("%Y-%m-%d"),
                "command": f"{command}  # ours: {r['command']}  # nanoGPT: {n['command']}",
            }
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=sorted(SUITES), default="smoke")
    p.add_argument("--only", default="", help="comma-separated indices into the suite")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/vs_nanogpt"))
    p.add_argument("--nanogpt", default=".nanogpt", help="folder holding nanoGPT's model.py")
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--timeout", type=float, default=300, help="seconds per run")
    p.add_argument("--budget", type=float, default=540, help="skip runs that would start after this many seconds")
    p.add_argument("--nanogpt-worker", action="store_true", help=argparse.SUPPRESS)
    for k in ("model", "result", "src"):
        p.add_argument(f"--{k}", help=argparse.SUPPRESS)
    for k in ("batch", "steps", "warmup", "profile"):
        p.add_argument(f"--{k}", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.nanogpt_worker:
        return nanogpt_worker(a)
    if not (Path(a.nanogpt) / "model.py").exists():
        sys.exit(f"no nanoGPT model.py in {a.nanogpt}: fetch karpathy/nanoGPT there first (see this file's docstring)")
    import torch

    out, t_start = Path(a.out), time.time()
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    command = "python3 benchmarks/vs_nanogpt.py " + " ".join(sys.argv[1:])
    runs = []
    suite = SUITES[a.suite]
    picked = [int(i) for i in a.only.split(",")] if a.only else range(len(suite))
    for i in picked:
        entry = suite[i]
        kind, model, batch, *_ = entry
        left = a.budget - (time.time() - t_start)
        if left < 20:
            runs.append({"kind": kind, "model": model, "batch": batch, "ok": False, "log": "skipped: budget"})
            continue
        workdir = Path("/tmp/vs_runs") / f"{i}_{kind}"
        t0 = time.time()
        run = run_nanogpt if kind == "nanogpt" else run_ours
        res = run(entry, a, workdir, timeout=min(a.timeout, left + 30))
        runs.append({"kind": kind, "model": model, "batch": batch, "env": entry[5], **res, "wall_s": time.time() - t0})
        _report(runs[-1], out, profile=entry[6])
        records = pairs(runs, gpu=gpu, torch_version=torch.__version__, command=command)
        (out / "vs_nanogpt.json").write_text(json.dumps(records, indent=1))
        (out / "runs.json").write_text(json.dumps(runs, indent=1))


def _report(r: dict, out: Path, *, profile: int) -> None:
    name = f"{r['kind']:8s} {r['model']} b{r['batch']} {r.get('env') or ''}"
    if not r["ok"]:
        print(f"{name}: FAILED rc={r.get('rc')}\n{r.get('log', '')[-2500:]}", flush=True)
        return
    print(
        f"{name}: {r['tokens_per_s']:,.0f} tok/s, step {r['step_time_s'] * 1e3:.1f} ms, "
        f"{r['peak_mem_gib']:.1f} GiB, wall {r['wall_s']:.0f}s, loss {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f}",
        flush=True,
    )
    trace = Path(r.get("trace", ""))
    if profile and trace.is_file():
        with open(out / "profiles.txt", "a") as f:
            f.write(f"==== {name} (last {profile} steps)\n{tt.analyze_trace(trace, profile)}\n")


if __name__ == "__main__":
    main()
