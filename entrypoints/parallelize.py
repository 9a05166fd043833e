"""Native PyTorch parallelism for model.GPT: the SMP v1 knobs mapped to DeviceMesh, TP, pipelining and FSDP2.

    layout = Layout.from_args(args, world_size=dist.get_world_size())
    mesh = build_mesh(layout, device_type="cuda")
    pm = parallelize(model, mesh=mesh, layout=layout)           # model: a full GPT built with the same seed everywhere
    loss = pm.forward_backward(x, y)                             # x, y: this model-parallel group's batch
    norm = pm.clip_grads_(max_norm); optimizer.step()

Layout and mesh
- world = pp * dp * tp; dp is what is left: world / (pp * tp) (SMP's rdp).
- Mesh dims are ordered by `placement_strategy`, the right-most letter varying fastest, as in SMP:
  cluster = "DPT" -> dims ("dp", "pp", "tp"): tp ranks are neighbours (one NVLink island);
  spread  = "TPD" -> dims ("tp", "pp", "dp"): dp ranks are neighbours.
- Global rank 0 is always on the first pipeline stage; the loss lives on the last stage.

Batch semantics (`prescaled_batch`, SMP's meaning; data is sharded only over the dp ranks)
- prescaled_batch=1: `batch_size` B is the batch of one model-parallel group (all tp and pp ranks of a group see
  the same B samples). dp rank r reads global rows [r*B, (r+1)*B). Global batch = dp * B.
- prescaled_batch=0: `batch_size` B is per SMP dp rank, where SMP's dp = world / pp counts tp ranks. In SMP each tp
  rank reads its own B rows and SMP all-gathers them across tp, so a group trains on tp * B rows. Natively every tp
  rank of dp rank r reads the same tp * B rows [r*tp*B, (r+1)*tp*B) directly (the data source is indexed by global
  row, so this is exactly the set of rows SMP's all-gather would produce, in tp-rank order, with no communication).
  Global batch = dp * tp * B = (world / pp) * B.
- The group batch is split into `microbatches` equal microbatches (it must divide).

Pipeline (pp > 1, torch.distributed.pipelining)
- `model.blocks` is split into pp contiguous, near-equal runs; stage 0 also owns wte/wpe, the last stage
  ln_f/lm_head and the loss. The tied wte/lm_head weight exists on both end stages; their gradients are summed
  over a (first, last) process group after backward, so both copies stay identical.
- pipeline=simple -> ScheduleGPipe; pipeline=interleaved -> Schedule1F1B (SMP's "interleaved" is 1F1B-like,
  not Megatron's virtual stages).
- active_microbatches A (exact semantics): no stage ever holds the activations of more than A microbatches at once.
  1F1B holds at most pp - stage_index <= pp microbatches, so with pipeline=interleaved and A >= pp the whole
  step is one 1F1B schedule. Otherwise the step runs as ceil(M / A) consecutive GPipe rounds of at most A
  microbatches each (gradients accumulate over rounds; a pipeline flush between rounds is the price of the cap).
  A = 0 means no cap. With pp = 1 microbatches run one after another (gradient accumulation), so at most one is
  in flight and A has no further effect.
- Losses are mean over all tokens of the group batch: each microbatch loss is divided by M (scale_grads=False).

Tensor parallel (tp > 1, applied on the 1-D mesh["tp"], so loss_parallel also works on torch 2.11)
- q/k/v and mlp.c_fc colwise, attn.c_proj and mlp.c_proj rowwise, wte rowwise (vocab-sharded), lm_head colwise,
  wte and lm_head re-tied after sharding (both Shard(0) on the vocab dim).
- optimize=memory adds sequence parallelism: LayerNorms SequenceParallel, the residual stream sharded on the
  sequence dim (positions are added before `drop`, whose input is re-laid out Replicate -> Shard(1)).
  optimize=speed keeps norms and the residual stream replicated.
- attn and mlp take their input as one DTensor (PrepareModuleInput), so q/k/v's input gradients are all-reduced
  once per block, not three times; under bf16/fp16 that input is cast to the autocast dtype first, so the
  backward all-reduces (SP: the all-gathers and reduce-scatters) move 2-byte, not 4-byte, activations.
- With pp = 1 the head keeps vocab-sharded logits and the loss runs under loss_parallel(); with pp > 1 the logits
  are gathered (Replicate) because stage outputs cross the pipeline as plain tensors.

Data parallel (dp > 1)
- shard_optimizer_state=1: FSDP2 fully_shard per block and on the stage root over mesh["dp"] with
  reshard_after_forward=False: parameters stay gathered between forward and backward, gradients are
  reduce-scattered and optimizer state lives only on the owning dp rank (ZeRO-2, a superset of SMP's ZeRO-1).
  Works with TP (2-D DTensors) and with PP on gloo/CPU and NCCL.
- shard_optimizer_state=0: DDP semantics: after backward all gradients are flattened and all-reduced (mean) over
  mesh["dp"] in one call; every dp rank keeps full optimizer state.

Activation checkpointing (per stage, on that stage's blocks; torch.utils.checkpoint, use_reentrant=False)
- each: one checkpoint per block; contiguous: one per stage; group_<n>: runs of n blocks (never crossing stages).
- offload_activations: the checkpointed activations (each segment's input) are stored on the host with
  torch.autograd.graph.save_on_cpu (pinned on CUDA) and brought back on demand during backward.
  activation_loading_horizon has no native equivalent (no prefetch).

Compile (native-only --compile 1): on a plain single-stage model (tp = pp = 1, no FSDP) the whole forward + loss is
one torch.compile graph; otherwise each block is torch.compile'd after TP and activation checkpointing, before FSDP
(torchtitan's order). levers.py holds the benchmark switches (compile scope and mode, fused q/k/v, SDPA backend).

Optimizer: AdamW, weight decay on matrices only, fused (on CPU as well, so the tests run the GPU's kernel path;
also over DTensors), with DTensor and plain parameters in separate groups (the multi-tensor kernels refuse a mix).
Gradient clipping computes the global norm over all stages (each DTensor reduced over its sharded mesh dims only,
the tied copy counted once) and scales the gradients by a device-side factor, so no host sync is needed for it.

Mixed precision: bf16/fp16 autocast over fp32 master weights; --precision fp8 also swaps the blocks' Linear layers for
torchao's Float8Linear (fp8.py) and always compiles. fp16 uses a dynamic loss scale (x2 every 1000 clean
steps, /2 and skip the step on inf/nan), applied inside the loss so it also works across pipeline stages.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from fp8 import to_float8
from levers import Levers
from mesh import Layout, ac_groups, split_blocks
from model import GPT, lm_loss
from stage import Stage, fsdp_wrap, pipeline_reduce_groups, tp_plan
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor
from torch.distributed.tensor.parallel import (
    loss_parallel,
    parallelize_module,
)


class ParallelModel:
    """A parallelized Stage plus the step logic that depends on the layout."""

    def __init__(
        self, stage: Stage, *, mesh: DeviceMesh, layout: Layout, device: torch.device, config, vocab_size: int
    ) -> None:
        self.stage, self.mesh, self.layout, self.device = stage, mesh, layout, device
        self.config, self.vocab_size = config, vocab_size  # GPTConfig, padded vocab
        self.fsdp = layout.dp > 1 and layout.shard_optimizer_state
        self.vocab_parallel_loss = layout.tp > 1 and layout.pp == 1
        self.loss_scale = 2.0**16 if layout.fp16 else 1.0
        self._good_steps = 0
        self._schedules: dict[int, object] = {}
        # every rank takes part in creating the groups; middle stages get None
        self.forward_loss = lambda x, y: lm_loss(self.stage(x), y)  # torch.compile'd by parallelize() when asked
        self._pp_group, self._end_group = pipeline_reduce_groups(mesh, layout.pp) if layout.pp > 1 else (None, None)

    # ---- forward + backward -------------------------------------------------------------------------------
    def _autocast(self):
        if self.layout.bf16 or self.layout.fp16:
            dtype = torch.bfloat16 if self.layout.bf16 else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return contextlib.nullcontext()

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Run one step's forward and backward on the group batch; the mean loss on the last stage, else None."""
        if self.layout.pp == 1:
            return self._step_single_stage(x, y)
        return self._step_pipeline(x, y)

    def _step_single_stage(self, x, y):
        m = self.layout.microbatches
        total = torch.zeros((), device=self.device)
        for i, (xm, ym) in enumerate(zip(x.tensor_split(m), y.tensor_split(m), strict=False)):
            if self.fsdp:
                self.stage.set_requires_gradient_sync(i == m - 1)
            lp = loss_parallel() if self.vocab_parallel_loss else contextlib.nullcontext()
            with lp:  # loss_parallel must also cover backward
                with self._autocast():
                    loss = self.forward_loss(xm, ym) / m
                (loss * self.loss_scale).backward()
            total += (loss.full_tensor() if isinstance(loss, DTensor) else loss).detach()
        self._sync_grads()
        return total

    def _rounds(self) -> list[int]:
        m, a, pp = self.layout.microbatches, self.layout.active_microbatches, self.layout.pp
        if self.layout.pipeline == "interleaved" and m >= pp and (a == 0 or a >= pp):
            return [m]  # one 1F1B schedule: in flight <= pp <= a
        a = m if a == 0 else min(a, m)
        return [a] * (m // a) + ([m % a] if m % a else [])

    def _schedule(self, n: int):
        if n not in self._schedules:
            from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

            layout = self.layout
            # explicit shapes: runtime shape inference would run the TP collectives on meta tensors
            stage = PipelineStage(
                self.stage,
                self.mesh["pp"].get_local_rank(),
                layout.pp,
                self.device,
                input_args=self._boundary(first=self.stage.first, n=n),
                output_args=self._boundary(first=False, n=n, output=True),
                group=self.mesh["pp"].get_group(),
            )
            one_f_one_b = layout.pipeline == "interleaved" and n == layout.microbatches and n >= layout.pp
            cls = Schedule1F1B if one_f_one_b else ScheduleGPipe
            m = layout.microbatches

            def loss_fn(logits, target):
                return lm_loss(logits, target) * (self.loss_scale / m)

            self._schedules[n] = cls(stage, n, loss_fn=loss_fn, scale_grads=False)
        return self._schedules[n]

    def _boundary(self, *, first: bool, n: int, output: bool = False) -> tuple[torch.Tensor]:
        """Example (meta) tensor crossing a stage boundary for one microbatch of a round of n."""
        layout, cfg = self.layout, self.config
        mb = layout.group_batch // layout.microbatches
        if output and self.stage.last:
            dtype = torch.bfloat16 if layout.bf16 else torch.float16 if layout.fp16 else torch.float32
            return (torch.empty(mb, cfg.seq_length, self.vocab_size, dtype=dtype, device="meta", requires_grad=True),)
        if first:
            return (torch.empty(mb, cfg.seq_length, dtype=torch.long, device="meta"),)
        seq = cfg.seq_length // layout.tp if layout.optimize == "memory" and layout.tp > 1 else cfg.seq_length
        return (torch.empty(mb, seq, cfg.hidden_width, device="meta", requires_grad=True),)  # grads flow back

    def _step_pipeline(self, x, y):
        mb = x.shape[0] // self.layout.microbatches
        losses: list[torch.Tensor] = []
        done = 0
        for n in self._rounds():
            sched = self._schedule(n)
            round_losses: list[torch.Tensor] = []  # step() resets the list it is given
            xs, ys = x[done * mb : (done + n) * mb], y[done * mb : (done + n) * mb]
            with self._autocast():
                if self.stage.first:
                    sched.step(xs)
                elif self.stage.last:
                    sched.step(target=ys, losses=round_losses)
                else:
                    sched.step()
            losses += round_losses
            done += n
        self._sync_grads()
        if not self.stage.last:
            return None
        return torch.stack([loss.detach().float() for loss in losses]).sum() / self.loss_scale

    # ---- gradients ----------------------------------------------------------------------------------------
    def _grads(self):
        return [p.grad for p in self.stage.parameters() if p.grad is not None]

    @staticmethod
    def _local(t: torch.Tensor) -> torch.Tensor:
        return t.to_local() if isinstance(t, DTensor) else t

    @torch.no_grad()
    def _sync_grads(self) -> None:
        for p in self.stage.parameters():  # e.g. a vocab-sharded embedding's backward yields a Replicate grad
            if isinstance(p.grad, DTensor) and p.grad.placements != p.placements:
                p.grad = p.grad.redistribute(p.device_mesh, p.placements)
        if self.layout.dp > 1 and not self.fsdp:  # DDP semantics: one flat all-reduce (mean) over dp
            grads = [self._local(g) for g in self._grads()]
            flat = torch._utils._flatten_dense_tensors(grads)
            dist.all_reduce(flat, group=self.mesh["dp"].get_group())
            flat /= self.layout.dp
            for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads), strict=False):
                g.copy_(synced)
        if self._end_group is not None:  # tied wte (first stage) / lm_head (last stage)
            tied = self.stage.wte.weight if self.stage.first else self.stage.lm_head.weight
            dist.all_reduce(self._local(tied.grad), group=self._end_group)

    @torch.no_grad()
    def grad_norm(self) -> torch.Tensor:
        """Global L2 norm of the (loss-scaled) gradients over all stages, each parameter counted once."""
        grouped: dict[tuple, list[torch.Tensor]] = {}
        groups: dict[tuple, list] = {}
        for p in self.stage.parameters():
            if p.grad is None or (self.layout.pp > 1 and self.stage.last and p is self.stage.lm_head.weight):
                continue  # the last stage's tied copy equals the first stage's wte gradient
            g, key, pgs = p.grad, ("plain",), []
            if isinstance(g, DTensor):
                # sharded dims (FSDP+TP's _StridedShard is not is_shard() on 2.13: test "not replicated")
                dims = [i for i, pl in enumerate(g.placements) if not (pl.is_replicate() or pl.is_partial())]
                mesh = g.device_mesh  # key by structure, not object identity: same keys, same order on every rank
                key, pgs = (mesh.ndim, mesh.mesh_dim_names, tuple(dims)), [mesh.get_group(d) for d in dims]
            grouped.setdefault(key, []).append(self._local(g))
            groups[key] = pgs
        total = torch.zeros((), device=self.device)
        for key, tensors in grouped.items():  # same keys in the same order on every rank of a stage
            s = torch.stack(torch._foreach_norm(tensors)).float().pow(2).sum()
            for pg in groups[key]:
                dist.all_reduce(s, group=pg)
            total += s
        if self.layout.pp > 1:
            dist.all_reduce(total, group=self._pp_group)
        return total.sqrt()

    @torch.no_grad()
    def clip_grads_(self, max_norm: float) -> tuple[torch.Tensor, bool]:
        """Unscale (fp16) and clip in one multiply; returns (unscaled norm, step_ok). step_ok=False: skip the step.

        Without fp16 nothing here waits for the GPU: the clip factor stays a device tensor.
        """
        scale = self.loss_scale  # the scale this step's backward used
        norm = self.grad_norm() / scale
        if self.layout.fp16:
            if not bool(torch.isfinite(norm)):
                self.loss_scale /= 2
                self._good_steps = 0
                return norm, False
            self._good_steps += 1
            if self._good_steps % 1000 == 0:
                self.loss_scale *= 2
        if max_norm <= 0 and scale == 1.0:
            return norm, True
        coef = torch.full((), 1.0 / scale, device=self.device)
        if max_norm > 0:
            coef = coef * torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        torch._foreach_mul_([self._local(g) for g in self._grads()], coef)
        return norm, True

    def optimizer(self, *, lr: float, weight_decay: float, fused: bool) -> torch.optim.AdamW:
        """AdamW; weight decay on matrices only. One group per (decay, device mesh): the fused/foreach kernels refuse
        a mix of DTensor and plain parameters (plain ones remain under TP: wpe, and the norms without SP), and torch
        2.7's refuse DTensors on different meshes in one group (FSDP2 + TP: the (dp, tp) blocks beside dp-only ones)."""
        groups: dict[tuple, list] = {}
        for p in self.stage.parameters():
            mesh = p.device_mesh if isinstance(p, DTensor) else None
            groups.setdefault((p.dim() >= 2, id(mesh)), []).append(p)
        extra = {"fused": True} if fused else {"foreach": True}
        return torch.optim.AdamW(
            [{"params": ps, "weight_decay": weight_decay if decay else 0.0} for (decay, _), ps in groups.items()],
            lr=lr,
            betas=(0.9, 0.95),
            eps=1e-8,
            **extra,
        )


def parallelize(model: GPT, *, mesh: DeviceMesh, layout: Layout, device: torch.device, compile: bool = False):
    """Cut `model` to this rank's pipeline stage, then TP -> activation checkpointing -> compile -> FSDP."""
    pp_rank = mesh["pp"].get_local_rank()
    block_ids = split_blocks(len(model.blocks), layout.pp)[pp_rank]
    stage = Stage(model, first=pp_rank == 0, last=pp_rank == layout.pp - 1, block_ids=block_ids)
    if layout.tp > 1:
        vocab_parallel_loss = layout.pp == 1
        plan = tp_plan(stage, sequence_parallel=layout.optimize == "memory", vocab_parallel_loss=vocab_parallel_loss)
        parallelize_module(stage, mesh["tp"], plan)
        if layout.bf16 or layout.fp16:  # the stage only runs under ParallelModel._autocast()
            for block in stage.blocks.values():
                block.matmul_input_dtype = torch.bfloat16 if layout.bf16 else torch.float16
        if stage.first and stage.last:
            stage.lm_head.weight = stage.wte.weight  # re-tie: both are Shard(0) over the vocab
    stage.to(device)  # the host-built stage: TP's DTensors are already there, FSDP2 shards from the device
    stage.ac_groups = ac_groups(layout.activation_checkpointing, list(stage.blocks))
    stage.offload = layout.offload_activations and bool(stage.ac_groups)
    plain = layout.tp == 1 and layout.pp == 1 and not (layout.dp > 1 and layout.shard_optimizer_state)
    levers = Levers.from_env()
    for block in stage.blocks.values() if layout.tp == 1 else []:
        block.attn.fused_qkv = levers.fused_qkv and not layout.fp8  # fused F.linear would bypass Float8Linear
    if layout.fp8:  # before compile and FSDP: they wrap what the swap leaves
        to_float8(stage, device=device, recipe=levers.fp8_recipe)
    whole = compile and plain and levers.compile_scope == "model"
    kw = levers.compile_kwargs()
    if compile and not whole:  # per-block compile after TP and AC, before FSDP (torchtitan's order)
        for block in stage.blocks.values():
            block.compile(**kw)
    if layout.dp > 1 and layout.shard_optimizer_state:
        fsdp_wrap(stage, mesh["dp"])
    pm = ParallelModel(stage, mesh=mesh, layout=layout, device=device, config=model.config, vocab_size=model.vocab_size)
    if whole:  # one graph: embedding, every block, ln_f + lm_head + fp32 cross-entropy (as nanoGPT compiles)
        pm.forward_loss = torch.compile(lambda x, y: lm_loss(stage(x), y), **kw)
    elif compile and plain:  # also fuse ln_f + lm_head + fp32 cross-entropy
        head_loss = torch.compile(lambda h, y: lm_loss(stage.head(h), y), **kw)
        pm.forward_loss = lambda x, y: head_loss(stage.run_blocks(stage.embed(x)), y)
    return pm
