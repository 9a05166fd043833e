"""Train GPT-2 from a job.yaml rendered by smlaunch: SMP v1 on SageMaker, native PyTorch under torchrun elsewhere.

The hyperparameters, data format, log line, metrics.json and failure file are fixed by docs/entrypoint-contract.md.
With --engine smp and `smdistributed.modelparallel.torch` importable, this hands the parsed arguments to
`smp_train.main(args)`; otherwise (--engine torch, or no SMP here) it runs the native path (parallelize.py:
DeviceMesh + TP + pipelining + FSDP2), gloo on CPU, NCCL on GPU.

Single process, CPU, synthetic tokens (no torchrun needed):
    python entrypoints/train_gpt2.py --synthetic 1 --num_layers 4 --hidden_width 64 --num_heads 4 --seq_length 64 \
        --vocab_size 512 --batch_size 8 --max_steps 20 --checkpoint-dir /tmp/ck --model-dir /tmp/m \
        --output-data-dir /tmp/o

Two GPUs, tensor parallel with sequence parallelism, bf16:
    torchrun --standalone --nproc_per_node=2 entrypoints/train_gpt2.py --synthetic 1 --tensor_parallel_degree 2 \
        --optimize memory --bf16 1 --batch_size 16 --prescaled_batch 1 --max_steps 50

Four processes, tp=2 x pp=2, 4 microbatches, 1F1B, checkpoint every block:
    torchrun --standalone --nproc_per_node=4 entrypoints/train_gpt2.py --synthetic 1 --tensor_parallel_degree 2 \
        --pipeline_parallel_degree 2 --microbatches 4 --pipeline interleaved --activation_checkpointing 1 \
        --activation_strategy each --batch_size 8

Batch arithmetic (world = pp * dp * tp; dp = world / (pp * tp) is SMP's rdp):
    prescaled_batch=1: group batch = batch_size;        global batch = dp * batch_size
    prescaled_batch=0: group batch = tp * batch_size;   global batch = dp * tp * batch_size = (world / pp) * batch_size
    tokens per step = global batch * seq_length; microbatch = group batch / microbatches.
    e.g. 8 GPUs, tp=2, pp=2, batch_size=8, prescaled=1: dp=2, global 16 x 1024 = 16,384 tokens, microbatch 8/4 = 2.

Checkpoints: DCP to <checkpoint-dir>/step_<N> every checkpoint_every_steps, at the end, and when SIGTERM arrives
(spot interruption; the run then exits 143). A checkpoint counts only once its COMPLETE marker exists (written last);
a start resumes from the newest complete one: model, optimizer, loss scale and step (the data depends only on the
step, so a resumed run sees the same batches). Native-only extras outside the contract: --compile 1 torch.compiles
the whole forward + loss on a plain single-stage model, else each block; --precision fp8 swaps the blocks' Linear
layers for torchao float8 ones (fp8.py; needs --bf16 1 and tp 1, compiles on CUDA); --final_save 0 (benchmarks)
skips the end-of-run checkpoint and model save; levers.py's SMLAUNCH_* switches (benchmarks). On CUDA the loss
reaches the host every 10 steps (steplog.py): the log lines of a window come together, one per step, and SIGTERM
is honoured then.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import traceback

import runtime
import torch
from checkpointing import latest_checkpoint, load_checkpoint, resume_vocab_size, save_checkpoint, save_model
from levers import Levers
from steplog import StepLog

# fmt: off
CONTRACT_INTS = {  # docs/entrypoint-contract.md; defaults = GPT-2 124M
    "num_layers": 12, "hidden_width": 768, "num_heads": 12, "seq_length": 1024, "vocab_size": 50257,
    "batch_size": 8, "max_steps": 100, "warmup_steps": 10, "seed": 1234, "checkpoint_every_steps": 0,
    "tensor_parallel_degree": 1, "pipeline_parallel_degree": 1, "microbatches": 1, "active_microbatches": 0,
    "activation_loading_horizon": 4, "sharded_data_parallel_degree": 1,
}
CONTRACT_FLOATS = {"lr": 6e-4, "min_lr": 6e-5, "weight_decay": 0.1, "grad_clip": 1.0, "gpu_peak_tflops": 0.0}
CONTRACT_BOOLS = {  # 0/1
    "activation_checkpointing": 0, "synthetic": 0, "prescaled_batch": 0, "shard_optimizer_state": 0,
    "offload_activations": 0, "ddp": 1, "fp16": 0, "bf16": 0, "delayed_parameter_initialization": 0,
    "compile": 0, "final_save": 0,  # compile: native only (torch.compile); final_save: the full model at the end
}
CONTRACT_STRS = {"activation_strategy": "each", "optimize": "speed", "pipeline": "interleaved",
                 "placement_strategy": "cluster", "engine": "smp",
                 "precision": ""}  # precision fp8: torchao float8 GEMMs in the blocks (native only, fp8.py)
# fmt: on


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for k, v in CONTRACT_INTS.items():
        p.add_argument(f"--{k}", type=int, default=v)
    for k, v in CONTRACT_FLOATS.items():
        p.add_argument(f"--{k}", type=float, default=v)
    for k, v in CONTRACT_BOOLS.items():
        p.add_argument(f"--{k}", type=int, choices=(0, 1), default=v)
    for k, v in CONTRACT_STRS.items():
        p.add_argument(f"--{k}", type=str, default=v)
    base = runtime.base_dir()
    p.add_argument("--train-dir", "--train_dir", dest="train_dir", default=os.environ.get("SM_CHANNEL_TRAIN"))
    p.add_argument(
        "--model-dir",
        "--model_dir",
        dest="model_dir",
        default=os.environ.get("SM_MODEL_DIR") or os.path.join(base, "model"),
    )
    p.add_argument(
        "--output-data-dir",
        "--output_data_dir",
        dest="output_data_dir",
        default=os.environ.get("SM_OUTPUT_DATA_DIR") or os.path.join(base, "output", "data"),
    )
    p.add_argument(
        "--checkpoint-dir", "--checkpoint_dir", dest="checkpoint_dir", default=os.path.join(base, "checkpoints")
    )
    args, _unknown = p.parse_known_args(argv)  # the toolkit adds --mp_parameters and sagemaker_* keys
    mp = os.environ.get("SM_HP_MP_PARAMETERS")
    if mp:  # SMP's launch-time parameters win over the argv mirrors
        for smp_key, value in json.loads(mp).items():
            key = "pipeline_parallel_degree" if smp_key == "partitions" else smp_key
            if hasattr(args, key):
                setattr(args, key, int(value) if isinstance(value, bool) else value)
    return args


def smp_available() -> bool:
    try:
        import smdistributed.modelparallel.torch  # noqa: F401
    except ImportError:
        return False
    return True


def init_distributed() -> tuple[torch.device, int]:
    """torchrun env, or a one-process group when started plainly; returns (device, global rank)."""
    import torch.distributed as dist

    if "RANK" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device, dist.get_rank()


def native_notes(args) -> list[str]:
    """SMP settings the native path cannot honour; printed (not fatal), so nothing is silently ignored."""
    notes = []
    if args.sharded_data_parallel_degree > 1:
        notes.append("sharded_data_parallel_degree > 1 has no native mapping; shard_optimizer_state=1 gives FSDP2")
    if args.delayed_parameter_initialization:
        notes.append("delayed_parameter_initialization: the native path builds the whole model, then shards it")
    if args.offload_activations and not args.activation_checkpointing:
        notes.append("offload_activations needs activation_checkpointing=1: nothing is offloaded")
    elif args.offload_activations:
        notes.append(f"activation_loading_horizon={args.activation_loading_horizon}: no native prefetch")
    return notes


def train_native(args) -> None:
    import torch.distributed as dist
    from data import TokenSource
    from mesh import Layout, build_mesh

    device, rank = init_distributed()
    world = dist.get_world_size()
    layout = Layout.from_args(args, world_size=world)
    mesh = build_mesh(layout, device_type=device.type)
    for note in native_notes(args) if rank == 0 else []:
        print(f"note: {note}", flush=True)
    source = TokenSource(
        args.train_dir,
        seq_length=args.seq_length,
        vocab_size=args.vocab_size,
        seed=args.seed,
        synthetic=bool(args.synthetic),
    )  # before the model: a missing channel fails fast
    found = latest_checkpoint(args.checkpoint_dir)
    pm, optimizer, flops_per_token = build_native(
        args, layout=layout, mesh=mesh, device=device, resume_from=found[1] if found else None
    )
    start_step, checkpoint = 0, None
    if found:
        start_step, saved = load_checkpoint(pm, optimizer, found[1])
        checkpoint = found[1]
        now = {"tp": layout.tp, "pp": layout.pp, "dp": layout.dp}
        changed = ", ".join(f"{k} {saved[k]} -> {now[k]}" for k in now if saved and saved.get(k) != now[k])
        if rank == 0:
            note = f" (layout changed: {changed}; resharded)" if changed else ""
            print(f"resumed from {found[1]} at step {start_step}{note}", flush=True)

    stop = {"signal": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(signal=True))
    tokens_per_step = layout.global_batch * args.seq_length
    peak = runtime.peak_flops(args, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    log = StepLog(
        every=Levers.from_env().steps_per_sync(device.type),
        start_step=start_step,
        device=device,
        divisor=layout.dp * layout.tp,
        rank=rank,
        stats={"tokens_per_step": tokens_per_step, "flops_per_token": flops_per_token, "world": world, "peak": peak},
    )
    step = start_step
    profiler = Profiler(args.max_steps, enabled=rank == 0)
    while step < args.max_steps:
        profiler.maybe_start(step)
        log.add(step + 1, native_step(args, pm, optimizer, source, step, layout=layout, mesh=mesh))
        step += 1
        every = args.checkpoint_every_steps
        saving = (every and step % every == 0) or step == args.max_steps
        stopping = log.due(step, force=saving or step == profiler.first) and log.flush(stop["signal"])
        if stopping or saving:
            checkpoint = save_checkpoint(pm, optimizer, step, args.checkpoint_dir)
        if stopping:
            if rank == 0:
                print(f"SIGTERM: checkpoint {checkpoint} written at step {step}; exiting", flush=True)
            shutdown()
            _exit(143)

    profiler.stop()
    if args.final_save:
        save_model(pm, args.model_dir)
    finish(
        args,
        layout=layout,
        world=world,
        device=device,
        losses=log.losses,
        times=log.times,
        start_step=start_step,
        tokens_per_step=tokens_per_step,
        flops_per_token=flops_per_token,
        checkpoint=checkpoint,
    )
    shutdown()


def build_native(args, *, layout, mesh, device, resume_from=None):
    """The parallel model of this rank's stage, its optimizer, and the whole model's FLOPs per token.

    Resuming keeps the checkpoint's padded vocabulary (its padding depends on the tp it was written with)."""
    from model import GPT, GPTConfig
    from parallelize import parallelize

    config = GPTConfig(args.num_layers, args.hidden_width, args.num_heads, args.seq_length, args.vocab_size)
    vocab = config.padded_vocab_size(layout.tp)
    if resume_from:
        vocab = resume_vocab_size(resume_from, tp=layout.tp, padded=vocab, vocab_size=args.vocab_size)
    torch.manual_seed(args.seed)
    Levers.from_env().apply_sdpa()
    # Built whole on the host (4 B/param of CPU memory per process, the same init on every layout and device);
    # parallelize() moves only this rank's stage, TP and FSDP shards to the GPU, which never holds the whole model.
    model = GPT(config, padded_vocab_size=vocab)
    flops_per_token = model.flops_per_token()
    # fp8 on a GPU is always compiled: without inductor its scaling and casts are extra passes over HBM (fp8.py)
    compile = bool(args.compile) or (layout.fp8 and device.type == "cuda")
    pm = parallelize(model, mesh=mesh, layout=layout, device=device, compile=compile)
    del model  # blocks of other stages are freed
    # fused on CPU too, so the CPU tests run the GPU's optimizer path
    optimizer = pm.optimizer(lr=args.lr, weight_decay=args.weight_decay, fused=True)
    return pm, optimizer, flops_per_token


def native_step(args, pm, optimizer, source, step: int, *, layout, mesh):
    """One optimizer step, queued without waiting for the GPU: this rank's share of the loss as a device tensor
    (None off the last stage); steplog.StepLog reduces it over the ranks when its window closes."""
    device = pm.device
    for group in optimizer.param_groups:
        group["lr"] = runtime.lr_at(step, args)
    # rows [dp_rank * group_batch, (dp_rank + 1) * group_batch) of the global batch at this step
    dp_rank = mesh["dp"].get_local_rank()
    x, y = source.batch(step, shard_index=dp_rank, num_shards=layout.dp, batch_size=layout.group_batch)
    if device.type == "cuda":  # a copy from pageable memory would wait for the GPU: pin it, copy asynchronously
        x, y = x.pin_memory(), y.pin_memory()
    loss = pm.forward_backward(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
    _norm, ok = pm.clip_grads_(args.grad_clip)
    if ok:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


class Profiler:
    """Benchmark-only (outside the contract): with SMLAUNCH_PROFILE_DIR and SMLAUNCH_PROFILE_STEPS=k set,
    torch.profiler records the last k steps on global rank 0 and writes trace.json + ops.txt to that directory."""

    def __init__(self, max_steps: int, *, enabled: bool) -> None:
        self.dir = os.environ.get("SMLAUNCH_PROFILE_DIR", "")
        self.k = int(os.environ.get("SMLAUNCH_PROFILE_STEPS", "0") or 0)
        self.first = max_steps - self.k
        self.prof = None
        self.enabled = enabled and bool(self.dir) and self.k > 0

    def maybe_start(self, step: int) -> None:
        if self.enabled and self.prof is None and step == self.first:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
            self.prof = profile(activities=acts)
            self.prof.__enter__()

    def stop(self) -> None:
        if self.prof is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.prof.__exit__(None, None, None)
        os.makedirs(self.dir, exist_ok=True)
        self.prof.export_chrome_trace(os.path.join(self.dir, "trace.json"))
        sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        with open(os.path.join(self.dir, "ops.txt"), "w") as f:
            f.write(self.prof.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=70))
        self.prof = None


def shutdown() -> None:
    """Barrier and tear the process group down. The caller then leaves with os._exit: on CPU/gloo a rank sometimes
    aborted in C++ static destruction after a clean destroy ("terminate called without an active exception")."""
    import torch.distributed as dist

    dist.barrier()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    dist.destroy_process_group()


def finish(args, *, layout, world, device, losses, times, start_step, tokens_per_step, flops_per_token, checkpoint):
    import torch.distributed as dist

    mems = [None] * world
    dist.all_gather_object(mems, runtime.peak_mem_gib(device))
    if dist.get_rank() != 0:
        return
    metrics = runtime.run_metrics(
        backend="native",
        world=world,
        layout={"tp": layout.tp, "pp": layout.pp, "dp": layout.dp},
        losses=losses,
        times=times,
        start_step=start_step,
        global_batch=layout.global_batch,
        tokens_per_step=tokens_per_step,
        flops_per_token=flops_per_token,
        mems=mems,
        checkpoint=checkpoint,
        peak_flops=runtime.peak_flops(args, device),
    )
    runtime.write_metrics(args.output_data_dir, metrics)


def main(argv=None) -> None:
    args = parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    try:
        if args.engine != "torch" and smp_available():
            import smp_train

            if args.precision:
                raise ValueError(f"precision {args.precision} is the torch engine's (torchao); SMP v1 has no float8")

            smp_train.main(args)
        else:
            train_native(args)
            _exit(0)
    except Exception as exc:
        runtime.write_failure(rank, exc)
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)  # don't hang in process-group teardown while other ranks wait in a collective


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
