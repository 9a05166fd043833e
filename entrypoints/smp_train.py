"""GPT-2 training on SageMaker model parallelism v1 (`smdistributed.modelparallel.torch`), nanoGPT-plain.

`train_gpt2.py` calls `main(args)` when `import smdistributed.modelparallel.torch` works (inside the SMP DLCs, or
with tests/fakes on PYTHONPATH). SageMaker starts one process per GPU through mpirun; the SMP config comes from
`$SM_HP_MP_PARAMETERS` (it wins over the dict built here from the argv mirrors).

The order follows AWS's train_gpt_simple.py: smp.init -> set_device -> model inside smp.model_creation ->
smp.DistributedModel -> activation checkpointing -> smp.DistributedOptimizer -> resume -> @smp.step loop -> checkpoints.

Batch arithmetic (docs/entrypoint-contract.md, batch_size):
    prescaled_batch=1: every rank of a TP group reads the same batch_size samples; data is sharded by rdp
                       global batch = rdp_size * batch_size, rdp = world / (pp * tp)
    prescaled_batch=0: every rank (TP ranks included) reads its own batch_size samples; sharded by dp
                       global batch = dp_size * batch_size, dp = world / pp
    each smp.step splits the per-rank batch into `microbatches` (batch_size % microbatches == 0)
    e.g. 16 x p4d (world 128), tp=8, pp=1, prescaled, batch_size=32: 16 * 32 = 512 samples * 512 tokens per step
"""

from __future__ import annotations

import os
import signal
import sys
import time

import runtime
import smdistributed.modelparallel.torch as smp
import torch
from data import TokenSource
from model import GPT, Block, GPTConfig

SMP_MIRRORS = (  # script hyperparameters passed to smp.init under the same names
    "tensor_parallel_degree",
    "pipeline_parallel_degree",
    "microbatches",
    "active_microbatches",
    "optimize",
    "pipeline",
    "placement_strategy",
    "activation_loading_horizon",
    "sharded_data_parallel_degree",
)
SMP_FLAGS = (  # 0/1 script hyperparameters passed to smp.init as bools
    "ddp",
    "prescaled_batch",
    "shard_optimizer_state",
    "offload_activations",
    "fp16",
    "bf16",
    "delayed_parameter_initialization",
)
CHECKPOINT_TAG = "step_{step:08d}"


def smp_config(args) -> dict:
    """The smp.init dict from the argv mirrors (SM_HP_MP_PARAMETERS overrides it inside smp.init)."""
    config = {key: getattr(args, key) for key in SMP_MIRRORS}
    config.update({key: bool(getattr(args, key)) for key in SMP_FLAGS})
    if not config["active_microbatches"]:  # 0 = unset: SMP defaults it to pp + 2
        del config["active_microbatches"]
    return config


def model_dtype(args) -> torch.dtype:
    """fp16/bf16 as SMP does them: the parameter dtype given to smp.model_creation."""
    if args.fp16 and args.bf16:
        raise ValueError("fp16 and bf16 cannot both be enabled")
    if args.fp16:
        return torch.float16
    return torch.bfloat16 if args.bf16 else torch.get_default_dtype()


def model_config(args) -> GPTConfig:
    """The model's shape from the hyperparameters."""
    return GPTConfig(
        num_layers=args.num_layers,
        hidden_width=args.hidden_width,
        num_heads=args.num_heads,
        seq_length=args.seq_length,
        vocab_size=args.vocab_size,
    )


def build_model(args) -> GPT:
    """Create the GPT inside smp.model_creation (TP when tp > 1, delayed init per the config)."""
    config = model_config(args)
    torch.manual_seed(args.seed)
    if smp.tp_size() > 1:
        register_block_for_tp()
    with smp.model_creation(tensor_parallelism=smp.tp_size() > 1, dtype=model_dtype(args)):
        return GPT(config, padded_vocab_size=config.padded_vocab_size(smp.tp_size()))


def full_model_flops_per_token(args) -> float:
    """Training FLOPs per token of the whole model, from its shape. SMP replaces each distributed block with its
    tensor-parallel shard, so counting the wrapped module's parameters would read tp times too low (AWS's example
    counts ``p.ds_shape``, the full shape, for the same reason)."""
    config = model_config(args)
    return GPT.flops_per_token_of(config, config.padded_vocab_size(smp.tp_size()))


def register_block_for_tp() -> None:
    """Tell SMP that our pre-LayerNorm GPT-2 `Block` is an `smp.nn.DistributedTransformerLayer`.

    SMP v1 splits only the modules it knows (Hugging Face GPT-2, BERT, ...) or that are registered; an
    unregistered custom block would be replicated on every tensor-parallel rank. The hooks translate the
    block's constructor and forward to the distributed layer's (SMP docs, "tp_register_with_module": the
    init hook's signature must match `Block.__init__` exactly; the layer takes and returns a tuple
    `(hidden_states, attention_mask)`, the mask an additive [N, 1, 1, S] tensor; causality comes from
    `causal_mask_size`). The token embedding and the tied head stay replicated.
    """

    def init_hook(config: GPTConfig):
        return (), {
            "num_attention_heads": config.num_heads,
            "attention_head_size": config.hidden_width // config.num_heads,
            "hidden_size": config.hidden_width,
            "intermediate_size": 4 * config.hidden_width,
            "attention_dropout_prob": 0.0,
            "hidden_dropout_prob": 0.0,
            "activation": "gelu",
            "layernorm_epsilon": 1e-5,
            "initializer_range": 0.02,
            "use_normal_initialization": True,
            "causal_mask_size": config.seq_length,
            "pre_layernorm": True,
            "post_layernorm": False,
        }

    def forward_hook(x: torch.Tensor):
        no_mask = torch.zeros(x.shape[0], 1, 1, x.shape[1], dtype=x.dtype, device=x.device)
        return ((x, no_mask),), {}

    def return_hook(outputs):
        return outputs[0]

    smp.tp_register_with_module(Block, smp.nn.DistributedTransformerLayer, init_hook, forward_hook, return_hook)


def build_optimizer(module: torch.nn.Module, args) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (nanoGPT), created after smp.DistributedModel as SMP requires."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": args.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))


@smp.step
def train_step(model, x, y):
    """One microbatch: forward, then SMP's backward (the loss scale and 1/microbatches are SMP's)."""
    _, loss = model(x, y)
    model.backward(loss)
    return loss


def check_batch(args) -> None:
    """smp.step splits each rank's batch into microbatches, so they must divide it (fail before building)."""
    if args.batch_size % args.microbatches:
        raise ValueError(
            f"batch_size({args.batch_size}) is not divisible by microbatches({args.microbatches}): "
            f"smp.step splits each rank's batch into microbatches"
        )


def data_shard(args) -> tuple[int, int]:
    """(shard_index, num_shards): rdp under prescaled_batch (TP ranks share a batch), else dp."""
    if args.prescaled_batch:
        return smp.rdp_rank(), smp.rdp_size()
    return smp.dp_rank(), smp.dp_size()


def clip_gradients(model, optimizer, args) -> None:
    """Global grad-norm clip: FP16 master grads under fp16 (as the AWS example), else the model's grads."""
    if args.grad_clip <= 0:
        return
    if args.fp16:
        optimizer.clip_master_grads(args.grad_clip)
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    sq_norm = sum(g.float().pow(2).sum() for g in grads) if grads else torch.zeros(())
    if smp.mp_size() > 1:  # each mp rank holds part of the model (TP-replicated params are counted tp times)
        torch.distributed.all_reduce(sq_norm, group=smp.get_mp_process_group())
    coef = args.grad_clip / (float(sq_norm) ** 0.5 + 1e-6)
    if coef < 1.0:
        for g in grads:
            g.mul_(coef)


def agree(loss: float, stopping: bool) -> tuple[float, bool]:
    """(mean loss over the data shards, whether any rank got SIGTERM), from one allgather over the world.

    Every data shard is held by the same number of ranks (its pp stages, and its tp ranks under prescaled_batch),
    so the mean over all ranks is the mean over the shards.
    """
    gathered = smp.allgather((loss, stopping), smp.CommGroup.WORLD)
    return sum(v[0] for v in gathered) / len(gathered), any(v[1] for v in gathered)


def resume(args) -> int:
    """Resume from `<checkpoint_dir>/newest` when it exists; returns the step to start at."""
    if not os.path.exists(os.path.join(args.checkpoint_dir, "newest")):
        return 0
    user_content = smp.resume_from_checkpoint(args.checkpoint_dir, tag=None, partial=True)
    return int(user_content["step"])


def save(model, optimizer, args, *, step: int) -> str:
    """Partial (per mp-rank) checkpoint after `step` steps; returns its folder."""
    tag = CHECKPOINT_TAG.format(step=step)
    smp.save_checkpoint(
        args.checkpoint_dir,
        tag,
        partial=True,
        model=model,
        optimizer=optimizer,
        user_content={"step": step},
        num_kept_partial_checkpoints=2,
    )
    return os.path.join(args.checkpoint_dir, f"{tag}_partial")


class StopFlag:
    """Set by SIGTERM (SageMaker stop or spot interruption): the loop checkpoints and exits."""

    def __init__(self) -> None:
        self.stop = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.stop = True


def train(model, optimizer, source: TokenSource, args, *, start_step: int, device: torch.device) -> dict:
    """The step loop; returns the metrics of this run."""
    shard_index, num_shards = data_shard(args)
    tokens_per_step = num_shards * args.batch_size * args.seq_length  # global tokens per optimizer step
    flops_per_token = full_model_flops_per_token(args)
    sigterm, checkpoint, losses, times = StopFlag(), None, [], []
    model.train()
    step = saved_step = start_step
    stopping = False
    while step < args.max_steps and not stopping:
        t0 = time.perf_counter()
        x, y = source.batch(step, shard_index=shard_index, num_shards=num_shards, batch_size=args.batch_size)
        optimizer.zero_grad(set_to_none=True)
        loss = train_step(model, x.to(device), y.to(device)).reduce_mean()
        clip_gradients(model, optimizer, args)
        for group in optimizer.param_groups:  # after smp.step: SMP loads a resumed optimizer state at its first call
            group["lr"] = runtime.lr_at(step, args)
        optimizer.step()
        loss, stopping = agree(float(loss), sigterm.stop)
        step += 1
        dt = time.perf_counter() - t0
        losses.append(loss)
        times.append(dt)
        if smp.rank() == 0:
            tps = tokens_per_step / dt
            runtime.log_step(
                step=step,
                loss=loss,
                step_time_s=dt,
                tokens_per_s=tps,
                mfu=runtime.mfu(tps, flops_per_token, smp.size(), runtime.peak_flops(args, device)),
                mem_gib=runtime.peak_mem_gib(device),
            )
        if args.checkpoint_every_steps and step % args.checkpoint_every_steps == 0:
            checkpoint, saved_step = save(model, optimizer, args, step=step), step
    if step > saved_step:  # the end of training, or SIGTERM
        checkpoint = save(model, optimizer, args, step=step)
    if stopping:
        if smp.rank() == 0:
            print(f"SIGTERM: checkpoint {checkpoint} written at step {step}; exiting", flush=True)
        smp.barrier()
        sys.exit(143)
    return summarize(
        losses,
        times,
        args,
        start_step=start_step,
        tokens_per_step=tokens_per_step,
        flops_per_token=flops_per_token,
        checkpoint=checkpoint,
        device=device,
    )


def summarize(losses, times, args, *, start_step, tokens_per_step, flops_per_token, checkpoint, device) -> dict:
    """metrics.json content (docs/entrypoint-contract.md), the same keys as the native path's."""
    return runtime.run_metrics(
        backend="smp",
        world=smp.size(),
        layout={"tp": smp.tp_size(), "pp": smp.pp_size(), "dp": smp.rdp_size()},
        losses=losses,
        times=times,
        start_step=start_step,
        global_batch=tokens_per_step // args.seq_length,
        tokens_per_step=tokens_per_step,
        flops_per_token=flops_per_token,
        mems=smp.allgather(runtime.peak_mem_gib(device), smp.CommGroup.WORLD),
        checkpoint=checkpoint,
        peak_flops=runtime.peak_flops(args, device),
    )


def run(args) -> None:
    """Everything between smp.init and the final barrier."""
    smp.init(smp_config(args))
    check_batch(args)
    device = torch.device("cpu")
    if torch.cuda.is_available():
        torch.cuda.set_device(smp.local_rank())
        device = torch.device("cuda", smp.local_rank())
    source = TokenSource(
        args.train_dir,
        seq_length=args.seq_length,
        vocab_size=args.vocab_size,
        seed=args.seed,
        synthetic=bool(args.synthetic),
    )
    model = smp.DistributedModel(build_model(args), trace_device="gpu" if device.type == "cuda" else "cpu")
    if args.activation_checkpointing:
        smp.set_activation_checkpointing(model.get_module().blocks, strategy=args.activation_strategy)
    optimizer = smp.DistributedOptimizer(
        build_optimizer(model.get_module(), args),
        static_loss_scale=None,
        dynamic_loss_scale=True,
        dynamic_loss_args={"scale_window": 1000, "min_scale": 1, "delayed_shift": 2},
    )
    start_step = resume(args)
    if smp.rank() == 0:
        print(
            f"smp: world={smp.size()} tp={smp.tp_size()} pp={smp.pp_size()} dp={smp.dp_size()} "
            f"rdp={smp.rdp_size()} start_step={start_step} max_steps={args.max_steps}",
            flush=True,
        )
    metrics = train(model, optimizer, source, args, start_step=start_step, device=device)
    if metrics["steps"] and args.final_save:  # opt-in (AWS's example too): gathers the whole model to one rank
        smp.save_checkpoint(
            args.model_dir, "fullmodel.pt", partial=False, model=model, user_content={"step": metrics["steps"]}
        )
    if smp.rank() == 0:
        runtime.write_metrics(args.output_data_dir, metrics)
    smp.barrier()


def main(args) -> None:
    """Train; on any exception write `rank N: ExcType: message` to the failure file and re-raise."""
    try:
        run(args)
    except Exception as exc:
        rank = smp.rank() if smp.is_initialized() else int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
        runtime.write_failure(rank, exc)
        raise
