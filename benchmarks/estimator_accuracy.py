"""Predicted vs measured peak memory and step time for the GPU runs in benchmarks/gpu_measurements.json.

    python benchmarks/estimator_accuracy.py              # writes benchmarks/estimator_accuracy.{md,json}
    python benchmarks/estimator_accuracy.py --calibrate  # refits the FITTED native step-time constants first
                                                         # (prints them; paste into throughput.py to keep)

Each measured configuration (a PyTorch-native run of entrypoints/train_gpt2.py on H100/H200) becomes a job spec
(ml.p5.48xlarge for H100, the estimator-side ml.p5e.48xlarge for H200, one host, processes_per_host = num_gpus),
then the estimator's knobs with ``runtime="native"`` and what the run did (``compiled``, ``pipeline``, the
in-flight cap, the AdamW variant): smlaunch/estimate/memory.py ``estimate_native_memory`` and the native terms of
throughput.py. Predicted memory is the *allocated* peak (no CUDA context, NCCL or fragmentation:
``torch.cuda.max_memory_allocated`` does not see them). Targets: memory within 10%, step time within 25%, on
every configuration.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import smlaunch.estimate.memory as memory_model  # noqa: E402
from smlaunch.estimate import estimate_knobs, find_instance, knobs_from_spec  # noqa: E402
from smlaunch.estimate.throughput import NATIVE_GEMM_EFFICIENCY  # noqa: E402
from smlaunch.estimate.throughput import Run, estimate_throughput  # noqa: E402
from smlaunch.layout import layout  # noqa: E402
from smlaunch.spec.load import load_spec  # noqa: E402

MEASUREMENTS = ROOT / "benchmarks" / "gpu_measurements.json"
OUT_MD = ROOT / "benchmarks" / "estimator_accuracy.md"
OUT_JSON = ROOT / "benchmarks" / "estimator_accuracy.json"
MEM_TARGET, STEP_TARGET = 0.10, 0.25
SHAPE_KEYS = ("num_layers", "hidden_width", "num_heads", "seq_length", "vocab_size")


def instance_for(device: str) -> str:
    return "ml.p5e.48xlarge" if "H200" in device.upper() else "ml.p5.48xlarge"


def model_of(m: dict) -> dict:
    shape = m.get("model") if isinstance(m.get("model"), dict) else m
    return {key: shape[key] for key in SHAPE_KEYS if key in shape} or {"preset": m["model"]}


def spec_of(m: dict):
    smp = {
        "tensor_parallel_degree": m.get("tp", 1), "pipeline_parallel_degree": m.get("pp", 1),
        "microbatches": m.get("microbatches", 1), "prescaled_batch": bool(m.get("prescaled_batch", True)),
        "shard_optimizer_state": bool(m.get("shard_optimizer_state", False)), "ddp": True,
        "bf16": bool(m.get("bf16", True)), "optimize": m.get("optimize", "memory"),
    }
    if m.get("active_microbatches"):
        smp["active_microbatches"] = m["active_microbatches"]
    return load_spec({
        "name": "accuracy", "model": model_of(m),
        "cluster": {"instance_type": instance_for(m["device"]), "instance_count": 1,
                    "processes_per_host": m["num_gpus"]},
        "smp": smp,
        "training": {"batch_size": m["batch_size"], "max_steps": 1,
                     "activation_checkpointing": m.get("activation_checkpointing") or "none"},
    })


def optimizer_of(m: dict) -> str:
    """AdamW variant of the run. Runs before "pass 5" of the H200 session used the committed parallelize.py, which
    fell back to foreach AdamW when parameters were DTensors (tp > 1 or FSDP2); pass 5 and later runs are fused
    for all parameters (their ``run`` field says so). An explicit ``optimizer`` field wins."""
    if m.get("optimizer"):
        return m["optimizer"]
    dtensor = m.get("tp", 1) > 1 or (m.get("shard_optimizer_state") and m.get("dp", 1) > 1)
    return "foreach" if dtensor and "fused AdamW also over DTensor" not in m.get("run", "") else "fused"


def native_knobs(m: dict) -> dict:
    """What the native entry point ran: compile, schedule, in-flight cap (0 = none), AdamW variant, precision."""
    return {
        "runtime": "native", "precision": "bf16" if m.get("bf16", True) else "fp32",
        "compiled": bool(m.get("compile", False)), "pipeline": m.get("pipeline", "interleaved"),
        "active_microbatches": m.get("active_microbatches") or 0, "optimizer": optimizer_of(m),
    }


THROUGHPUT = sys.modules["smlaunch.estimate.throughput"]


def unmodeled(m: dict) -> str:
    """Why a configuration is left out of the step-time fit ('' = it is in). Only FSDP2 (one run, with TP): its
    per-block hooks on 2-D DTensors cost host time that no other run isolates, so a constant fitted to it would
    match it by construction and predict nothing."""
    if m.get("shard_optimizer_state") and m.get("dp", 1) > 1:
        return "FSDP2 host cost not modelled (one run)"
    return ""


def prepared(m: dict):
    spec = spec_of(m)
    lay = layout(spec)
    k = replace(knobs_from_spec(spec, lay), **native_knobs(m))
    return k, lay, find_instance(spec.cluster.instance_type)


def predict(m: dict) -> dict:
    k, lay, instance = prepared(m)
    est = estimate_knobs(k, lay, instance, 1)
    return {"mem_gib": est.memory.allocated_gib, "step_time_s": est.throughput.step_time_s,
            "tokens_per_step": lay.tokens_per_step, "gpu": instance.gpu.name, "breakdown": est.memory.breakdown}


def compare(measurements: list[dict]) -> list[dict]:
    rows = []
    for m in measurements:
        p = predict(m)
        mem_err = p["mem_gib"] / m["peak_mem_gib"] - 1
        step_err = p["step_time_s"] / m["step_time_s"] - 1
        rows.append({
            "config": label(m), "device": m["device"], "num_gpus": m["num_gpus"],
            "measured_peak_mem_gib": m["peak_mem_gib"], "predicted_mem_gib": round(p["mem_gib"], 3),
            "mem_error": round(mem_err, 4), "measured_step_time_s": m["step_time_s"],
            "predicted_step_time_s": round(p["step_time_s"], 4), "step_error": round(step_err, 4),
            "mem_ok": abs(mem_err) <= MEM_TARGET, "step_ok": abs(step_err) <= STEP_TARGET,
            "predicted_breakdown_gib": {k: round(v, 3) for k, v in p["breakdown"].items()},
            "tokens_per_step_predicted": p["tokens_per_step"],
            "tokens_per_step_measured": round(m.get("tokens_per_s", 0) * m["step_time_s"]),
            "command": m.get("command", ""),
        })
    return rows


def label(m: dict) -> str:
    shape = model_of(m)
    name = shape.get("preset") or f"L{shape['num_layers']}xH{shape['hidden_width']}xS{shape['seq_length']}"
    return (f"{name} tp{m.get('tp', 1)} pp{m.get('pp', 1)} dp{m.get('dp', 1)} b{m['batch_size']} "
            f"m{m.get('microbatches', 1)} ckpt={m.get('activation_checkpointing') or 'none'} "
            f"shard={int(bool(m.get('shard_optimizer_state')))}")


FITTED = [  # (name, read, write): the step-time constants marked FITTED in smlaunch/estimate/throughput.py
    ("NATIVE_GEMM_EFFICIENCY[H100]", lambda: NATIVE_GEMM_EFFICIENCY["H100-SXM5-80GB"],
     lambda v: NATIVE_GEMM_EFFICIENCY.__setitem__("H100-SXM5-80GB", v)),
    ("NATIVE_GEMM_EFFICIENCY[H200]", lambda: NATIVE_GEMM_EFFICIENCY["H200-SXM-141GB"],
     lambda v: NATIVE_GEMM_EFFICIENCY.__setitem__("H200-SXM-141GB", v)),
    ("NATIVE_NON_GEMM_BYTES_SBH[eager]", lambda: THROUGHPUT.NATIVE_NON_GEMM_BYTES_SBH[False],
     lambda v: THROUGHPUT.NATIVE_NON_GEMM_BYTES_SBH.__setitem__(False, v)),
    ("NATIVE_NON_GEMM_BYTES_SBH[compiled]", lambda: THROUGHPUT.NATIVE_NON_GEMM_BYTES_SBH[True],
     lambda v: THROUGHPUT.NATIVE_NON_GEMM_BYTES_SBH.__setitem__(True, v)),
    ("NATIVE_HOST_TP_LAYER_S[eager]", lambda: THROUGHPUT.NATIVE_HOST_TP_LAYER_S[False],
     lambda v: THROUGHPUT.NATIVE_HOST_TP_LAYER_S.__setitem__(False, v)),
    ("NATIVE_HOST_TP_LAYER_S[compiled]", lambda: THROUGHPUT.NATIVE_HOST_TP_LAYER_S[True],
     lambda v: THROUGHPUT.NATIVE_HOST_TP_LAYER_S.__setitem__(True, v)),
    ("NATIVE_HOST_SP_FACTOR", lambda: THROUGHPUT.NATIVE_HOST_SP_FACTOR,
     lambda v: setattr(THROUGHPUT, "NATIVE_HOST_SP_FACTOR", v)),
    ("NATIVE_HOST_PP_MICROBATCH_S", lambda: THROUGHPUT.NATIVE_HOST_PP_MICROBATCH_S,
     lambda v: setattr(THROUGHPUT, "NATIVE_HOST_PP_MICROBATCH_S", v)),
    ("NATIVE_HOST_RECOMPUTE_FACTOR", lambda: THROUGHPUT.NATIVE_HOST_RECOMPUTE_FACTOR,
     lambda v: setattr(THROUGHPUT, "NATIVE_HOST_RECOMPUTE_FACTOR", v)),
]


def calibrate(measurements: list[dict]) -> dict[str, float]:
    """Refit the FITTED step-time constants: minimise the worst |log(predicted / measured)| step time (+ 1% of
    the RMS, to break ties) over the measured configurations except :func:`unmodeled` ones, by multiplicative
    coordinate descent from the current values. Pure Python; deterministic."""
    cases = []
    for m in measurements:
        if unmodeled(m):
            continue
        k, lay, instance = prepared(m)
        cases.append((k, Run(instance, lay.num_nodes, lay.world, lay.tokens_per_step, 1), m["step_time_s"]))

    def loss() -> float:
        errs = [math.log(estimate_throughput(k, run).step_time_s / t) for k, run, t in cases]
        return max(abs(e) for e in errs) + 0.01 * math.sqrt(sum(e * e for e in errs) / len(errs))

    best, step = loss(), 0.2
    while step > 1e-3:
        improved = False
        for _name, read, write in FITTED:
            for factor in (1 + step, 1 / (1 + step)):
                old = read()
                write(old * factor)
                trial = loss()
                if trial < best - 1e-12:
                    best, improved = trial, True
                else:
                    write(old)
        if not improved:
            step /= 2
    return {name: read() for name, read, _ in FITTED}


def write(rows: list[dict], fitted: dict[str, float] | None) -> None:
    OUT_JSON.write_text(json.dumps({"targets": {"memory": MEM_TARGET, "step_time": STEP_TARGET},
                                    "calibrated_efficiency": fitted, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Estimator accuracy on real GPUs", "",
        "Generated by `python benchmarks/estimator_accuracy.py" + (" --calibrate" if fitted else "") + "` from "
        "`benchmarks/gpu_measurements.json`. Memory: predicted allocated bytes vs `torch.cuda.max_memory_allocated` "
        f"(target ±{MEM_TARGET:.0%}); step time: predicted vs measured median (target ±{STEP_TARGET:.0%}).", "",
        "| config | device | GPUs | mem meas. GiB | mem pred. GiB | err | step meas. s | step pred. s | err |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['device']} | {r['num_gpus']} | {r['measured_peak_mem_gib']:.2f} | "
            f"{r['predicted_mem_gib']:.2f} | {r['mem_error']:+.1%}{'' if r['mem_ok'] else ' ✗'} | "
            f"{r['measured_step_time_s']:.4f} | {r['predicted_step_time_s']:.4f} | "
            f"{r['step_error']:+.1%}{'' if r['step_ok'] else ' ✗'} |")
    if fitted:
        lines += ["", "Calibrated compute efficiency (smlaunch/estimate/throughput.py COMPUTE_EFFICIENCY): "
                  + ", ".join(f"{g} {e:.3f}" for g, e in fitted.items())]
    lines += ["", "Reproduce each measurement:", ""]
    lines += [f"- {r['config']}: `{r['command']}`" for r in rows if r["command"]]
    OUT_MD.write_text("\n".join(lines) + "\n")


def write_missing(path: Path) -> None:
    """Say plainly that there is nothing to compare; invent no numbers."""
    OUT_JSON.write_text(json.dumps({"status": "no measurements", "measurements": str(path.relative_to(ROOT)),
                                    "rows": []}, indent=2) + "\n")
    OUT_MD.write_text(
        "# Estimator accuracy on real GPUs\n\n"
        f"**No measurements yet**: `{path.relative_to(ROOT)}` did not exist when this file was generated, so the "
        "estimator has not been compared with real GPUs and no constant has been calibrated from them. The H100/H200 "
        "compute efficiencies in `smlaunch/estimate/throughput.py` are still the priors from "
        "`pytorch-parallel.md` §11 (nanoGPT + compile on one H100: 39.7-44.3% MFU).\n\n"
        "When the file exists, reproduce with:\n\n"
        "    python benchmarks/estimator_accuracy.py --calibrate\n\n"
        "It builds a spec per measured configuration (ml.p5.48xlarge for H100, the estimator-side ml.p5e.48xlarge "
        "for H200), predicts with the native-runtime memory model and writes the comparison table here and in "
        "`estimator_accuracy.json` (targets: memory within 10%, step time within 25%).\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--measurements", type=Path, default=MEASUREMENTS)
    args = parser.parse_args()
    if not args.measurements.exists():
        print(f"{args.measurements} does not exist: no measurements to compare against")
        write_missing(args.measurements)
        return 1
    data = json.loads(args.measurements.read_text())
    measurements = data if isinstance(data, list) else data.get("measurements", data.get("runs", []))
    fitted = calibrate(measurements) if args.calibrate else None
    rows = compare(measurements)
    write(rows, fitted)
    for r in rows:
        print(f"{r['config']:<60} mem {r['mem_error']:+.1%} step {r['step_error']:+.1%}")
    return 0 if all(r["mem_ok"] and r["step_ok"] for r in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
