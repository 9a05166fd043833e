"""Small helpers shared by the native and SMP training paths.

Self-contained (never imports smlaunch); see docs/entrypoint-contract.md for the formats.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import statistics
import sys

import torch


def base_dir() -> str:
    """`$SAGEMAKER_BASE_DIR` when set, else `/opt/ml`."""
    return os.environ.get("SAGEMAKER_BASE_DIR") or "/opt/ml"


def failure_path() -> str:
    """`$SM_OUTPUT_DIR/failure`, else `<base>/output/failure`."""
    out = os.environ.get("SM_OUTPUT_DIR") or os.path.join(base_dir(), "output")
    return os.path.join(out, "failure")


def write_failure(rank: int, exc: BaseException) -> None:
    """Write `rank N: ExcType: message` to the failure file (best effort, never raises).

    The first writer wins: when one rank fails, its peers fail next with "connection closed" errors, and those must
    not overwrite the root cause. (A SageMaker container starts without the file.)
    """
    text = f"rank {rank}: {type(exc).__name__}: {exc}"
    try:
        path = failure_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "x") as f:
            f.write(text[:4096] + "\n")
    except FileExistsError:
        pass
    except OSError as err:  # the failure file is advisory; the traceback still goes to stderr
        print(f"could not write failure file: {err}", file=sys.stderr, flush=True)


def log_step(*, step: int, loss: float, step_time_s: float, tokens_per_s: float, mfu: float, mem_gib: float) -> None:
    """Print the contract's per-step line (global rank 0 only is the caller's job)."""
    print(
        f"step={step} loss={loss:.4f} step_time_s={step_time_s:.3f} tokens_per_s={tokens_per_s:.0f} "
        f"mfu={mfu:.3f} mem_gib={mem_gib:.2f}",
        flush=True,
    )


def write_metrics(output_data_dir: str, metrics: dict) -> None:
    """Write `<output_data_dir>/metrics.json` atomically."""
    os.makedirs(output_data_dir, exist_ok=True)
    path = os.path.join(output_data_dir, "metrics.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(metrics, f, indent=2)
    os.replace(tmp, path)


def peak_mem_gib(device) -> float:
    """Peak memory in GiB: CUDA max allocated on a CUDA device, else the process peak RSS."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    if sys.platform == "darwin":
        return rss / 2**30
    return rss / 2**20


PEAK_TFLOPS = (
    # (pattern of torch.cuda.get_device_name(), dense 16-bit tensor-core TFLOP/s, plain FP32 TFLOP/s): NVIDIA
    # datasheets, no sparsity; the same numbers as smlaunch/catalog.py (tests/unit/test_catalog.py checks it).
    (r"H200", 989.0, 67.0),
    (r"H100.*PCIe", 756.0, 51.0),
    (r"H100", 989.0, 67.0),
    (r"A100", 312.0, 19.5),
    (r"V100", 125.0, 15.7),
    (r"A10G", 125.0, 31.2),
    (r"\bL4\b", 121.0, 30.3),
    (r"\bT4\b", 65.0, 8.1),
)
_warned: set[str] = set()


def device_peak_tflops(device_name: str, *, fp32: bool) -> float:
    """The dense peak of a GPU by its CUDA name; 0.0 (and one warning) for a GPU not in :data:`PEAK_TFLOPS`."""
    for pattern, half, single in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            return single if fp32 else half
    if device_name not in _warned:
        _warned.add(device_name)
        print(f"warning: no peak FLOP/s known for {device_name!r}: MFU is reported as 0", file=sys.stderr, flush=True)
    return 0.0


def peak_flops(args, device) -> float:
    """FLOP/s one GPU can do at the run's precision: ``--gpu_peak_tflops`` (smlaunch renders it from its catalog),
    else the device's entry in :data:`PEAK_TFLOPS`; 0.0 on the CPU (MFU is not defined there)."""
    if getattr(args, "gpu_peak_tflops", 0.0) > 0:
        return args.gpu_peak_tflops * 1e12
    dev = torch.device(device)
    if dev.type != "cuda":
        return 0.0
    fp32 = not (getattr(args, "fp16", 0) or getattr(args, "bf16", 0))
    return device_peak_tflops(torch.cuda.get_device_name(dev), fp32=fp32) * 1e12


def mfu(tokens_per_s: float, flops_per_token: float, num_gpus: int, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over `num_gpus * peak_flops` (PaLM formula); 0 if unknown."""
    if num_gpus <= 0 or peak_flops <= 0:
        return 0.0
    return tokens_per_s * flops_per_token / (num_gpus * peak_flops)


def lr_at(step: int, args) -> float:
    """Linear warm-up to lr over warmup_steps, then cosine decay to min_lr at max_steps (nanoGPT)."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    span = max(1, args.max_steps - args.warmup_steps)
    ratio = min(1.0, (step - args.warmup_steps) / span)
    return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (args.lr - args.min_lr)


def run_metrics(
    *,
    backend,
    world,
    layout,
    losses,
    times,
    start_step,
    global_batch,
    tokens_per_step,
    flops_per_token,
    mems,
    checkpoint,
    peak_flops=0.0,
) -> dict:
    """metrics.json (docs/entrypoint-contract.md). Step time: the median after the first quarter of the steps
    (compile and warm-up), at least the first step skipped."""
    warm = times[min(len(times) - 1, max(1, len(times) // 4)) :] if times else [0.0]
    step_time = statistics.median(warm)
    tps = tokens_per_step / step_time if step_time else 0.0
    return {
        "backend": backend,
        "world_size": world,
        "layout": layout,
        "steps": len(losses),
        "start_step": start_step,
        "losses": losses,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "tokens_per_s": tps,
        "step_time_s": step_time,
        "mfu": mfu(tps, flops_per_token, world, peak_flops),
        "peak_mem_gib_per_rank": mems,
        "checkpoint": checkpoint,
        "step_times_s": times,
        "global_batch": global_batch,
        "flops_per_token": flops_per_token,
    }
