"""One pipeline stage of the native path and how it is split: its tensor-parallel plan, FSDP2 wrapping and the
pipeline's gradient-reduction groups (see parallelize.py for the whole picture). Self-contained (never imports
smlaunch)."""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from model import GPT
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    RowwiseParallel,
    SequenceParallel,
)
from torch.utils.checkpoint import checkpoint


class Stage(nn.Module):
    """The part of a GPT one pipeline stage runs (the whole model when pp = 1). FQNs match GPT's."""

    def __init__(self, model: GPT, *, first: bool, last: bool, block_ids: list[int]) -> None:
        super().__init__()
        self.first, self.last = first, last
        if first:
            self.wte, self.wpe, self.drop = model.wte, model.wpe, model.drop
        self.blocks = nn.ModuleDict({str(i): model.blocks[i] for i in block_ids})
        if last:
            self.ln_f, self.lm_head = model.ln_f, model.lm_head
        self.ac_groups: list[list[str]] = []
        self.offload = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.run_blocks(self.embed(x) if self.first else x)
        return self.head(x) if self.last else x

    def embed(self, idx: torch.Tensor) -> torch.Tensor:  # same arithmetic as GPT.embed
        return self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.ln_f(x))

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        if not self.ac_groups:
            return self._run(x, list(self.blocks))
        for group in self.ac_groups:
            offload = (
                torch.autograd.graph.save_on_cpu(pin_memory=x.is_cuda) if self.offload else contextlib.nullcontext()
            )
            with offload:  # saves exactly the segment input (what checkpoint keeps) on the host
                x = checkpoint(self._run, x, group, use_reentrant=False)
        return x

    def _run(self, x: torch.Tensor, names: list[str]) -> torch.Tensor:
        for name in names:
            x = self.blocks[name](x)
        return x


def tp_plan(stage: Stage, *, sequence_parallel: bool, vocab_parallel_loss: bool) -> dict:
    sp = sequence_parallel
    plan = {}
    if stage.first:
        plan["wte"] = RowwiseParallel(input_layouts=Replicate())  # output Replicate; wpe added after
        if sp:
            plan["drop"] = PrepareModuleInput(
                input_layouts=(Replicate(),), desired_input_layouts=(Shard(1),), use_local_output=True
            )
    seq_in = (Shard(1),) if sp else (Replicate(),)
    for name in stage.blocks:
        p = f"blocks.{name}"
        plan[f"{p}.attn.q"] = ColwiseParallel()
        plan[f"{p}.attn.k"] = ColwiseParallel()
        plan[f"{p}.attn.v"] = ColwiseParallel()
        plan[f"{p}.attn.c_proj"] = RowwiseParallel(output_layouts=Shard(1) if sp else Replicate())
        plan[f"{p}.mlp.c_fc"] = ColwiseParallel()
        plan[f"{p}.mlp.c_proj"] = RowwiseParallel(output_layouts=Shard(1) if sp else Replicate())
        if sp:
            plan[f"{p}.ln_1"] = SequenceParallel()
            plan[f"{p}.ln_2"] = SequenceParallel()
        # q, k and v (and c_fc) see one DTensor input: their three Partial input-gradients are summed locally and
        # all-reduced (SP: reduce-scattered) once, instead of once per projection
        plan[f"{p}.attn"] = PrepareModuleInput(input_layouts=seq_in, desired_input_layouts=(Replicate(),))
        plan[f"{p}.mlp"] = PrepareModuleInput(input_layouts=seq_in, desired_input_layouts=(Replicate(),))
    if stage.last:
        if sp:
            plan["ln_f"] = SequenceParallel()
        plan["lm_head"] = ColwiseParallel(
            input_layouts=Shard(1) if sp else Replicate(),
            output_layouts=Shard(-1) if vocab_parallel_loss else Replicate(),
            use_local_output=not vocab_parallel_loss,
        )
    return plan


def fsdp_wrap(stage: Stage, dp_mesh: DeviceMesh) -> None:
    from torch.distributed.fsdp import fully_shard

    for block in stage.blocks.values():
        fully_shard(block, mesh=dp_mesh, reshard_after_forward=False)
    fully_shard(stage, mesh=dp_mesh, reshard_after_forward=False)  # embeddings, head (tied pair stays together)


def pipeline_reduce_groups(mesh: DeviceMesh, pp: int):
    """(all stages, first+last stage) process groups at this rank's (dp, tp) coordinate.

    Separate from mesh["pp"]'s group, which carries the schedules' point-to-point traffic: a collective on the same
    gloo group as a still-draining isend/irecv mixes their messages.
    """
    ranks = mesh.mesh.movedim(mesh.mesh_dim_names.index("pp"), -1).reshape(-1, pp)
    row_group = end_group = None
    for row in ranks.tolist():  # every rank creates every group, in the same order
        g_row, g_end = dist.new_group(row), dist.new_group([row[0], row[-1]])
        if dist.get_rank() in row:
            row_group = g_row
            end_group = g_end if dist.get_rank() in (row[0], row[-1]) else None
    return row_group, end_group
