"""The native path's layout: degrees and batch arithmetic from the hyperparameters, and the device mesh.

Self-contained (never imports smlaunch). The batch semantics are smlaunch's ``layout.batch_readers``, restated
here because the entry point cannot import it: ``batch_size`` is per model-parallel group when
``prescaled_batch`` (the tp ranks of a group share it), per data-parallel rank otherwise (docs/entrypoint-contract.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from torch.distributed.device_mesh import DeviceMesh, init_device_mesh


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    batch_size: int = 1
    microbatches: int = 1
    active_microbatches: int = 0  # 0 = no cap
    prescaled_batch: bool = True
    pipeline: str = "interleaved"  # interleaved | simple
    optimize: str = "speed"  # speed | memory
    placement_strategy: str = "cluster"  # cluster | spread
    activation_checkpointing: str = "none"  # none | each | contiguous | group_<n>
    offload_activations: bool = False
    shard_optimizer_state: bool = False
    bf16: bool = False
    fp16: bool = False
    fp8: bool = False  # --precision fp8: torchao float8 GEMMs in the blocks (fp8.py), under bf16 autocast

    @classmethod
    def from_args(cls, args, *, world_size: int) -> Layout:
        tp, pp = args.tensor_parallel_degree, args.pipeline_parallel_degree
        if world_size % (tp * pp):
            raise ValueError(f"world_size({world_size}) % (tp({tp}) * pp({pp})) != 0")
        ac = args.activation_strategy if args.activation_checkpointing else "none"
        layout = cls(
            tp=tp,
            pp=pp,
            dp=world_size // (tp * pp),
            batch_size=args.batch_size,
            microbatches=args.microbatches,
            active_microbatches=args.active_microbatches,
            prescaled_batch=bool(args.prescaled_batch),
            pipeline=args.pipeline,
            optimize=args.optimize,
            placement_strategy=args.placement_strategy,
            activation_checkpointing=ac,
            offload_activations=bool(args.offload_activations),
            shard_optimizer_state=bool(args.shard_optimizer_state),
            bf16=bool(args.bf16),
            fp16=bool(args.fp16),
            fp8=args.precision == "fp8",
        )
        if args.precision not in ("", "fp8"):
            raise ValueError(f"precision={args.precision!r}; expected fp8 or nothing")
        layout.validate(args.num_layers, args.num_heads, args.hidden_width)
        return layout

    @property
    def group_batch(self) -> int:
        """Samples one model-parallel group trains on per step (see the module docstring)."""
        return self.batch_size if self.prescaled_batch else self.tp * self.batch_size

    @property
    def global_batch(self) -> int:
        return self.dp * self.group_batch

    def validate(self, num_layers: int, num_heads: int, hidden_width: int) -> None:
        problems = []
        if self.group_batch % self.microbatches:
            problems.append(f"group batch({self.group_batch}) % microbatches({self.microbatches}) != 0")
        if num_heads % self.tp:
            problems.append(f"num_heads({num_heads}) % tp({self.tp}) != 0")
        if num_layers < self.pp:
            problems.append(f"num_layers({num_layers}) < pp({self.pp})")
        if self.pipeline not in ("interleaved", "simple"):
            problems.append(f"pipeline={self.pipeline!r}; expected interleaved | simple")
        if self.optimize not in ("speed", "memory"):
            problems.append(f"optimize={self.optimize!r}; expected speed | memory")
        if self.placement_strategy not in ("cluster", "spread"):
            problems.append(f"placement_strategy={self.placement_strategy!r}; expected cluster | spread")
        if self.bf16 and self.fp16:
            problems.append("bf16 and fp16 are exclusive")
        if self.fp8 and not self.bf16:
            problems.append("precision fp8 runs under bf16 autocast: set bf16=1")
        if self.fp8 and self.tp > 1:
            problems.append(f"precision fp8 with tp({self.tp}): float8 layers are not tensor-parallel here; use tp 1")
        _ = ac_groups(self.activation_checkpointing, list(range(num_layers)))  # raises on a bad strategy
        if problems:
            raise ValueError("; ".join(problems))


def build_mesh(layout: Layout, *, device_type: str) -> DeviceMesh:
    """3-D (pp, dp, tp) mesh; dim order from placement_strategy (right-most varies fastest)."""
    names = ("dp", "pp", "tp") if layout.placement_strategy == "cluster" else ("tp", "pp", "dp")
    sizes = {"dp": layout.dp, "pp": layout.pp, "tp": layout.tp}
    return init_device_mesh(device_type, tuple(sizes[n] for n in names), mesh_dim_names=names)


def ac_groups(strategy: str, block_ids: list) -> list[list]:
    """Blocks per checkpoint segment: [] for none."""
    if strategy == "none":
        return []
    if strategy == "each":
        return [[b] for b in block_ids]
    if strategy == "contiguous":
        return [list(block_ids)] if block_ids else []
    if strategy.startswith("group_") and strategy[6:].isdigit() and int(strategy[6:]) > 0:
        n = int(strategy[6:])
        return [block_ids[i : i + n] for i in range(0, len(block_ids), n)]
    raise ValueError(f"activation_strategy={strategy!r}; expected each | contiguous | group_<n>")


def split_blocks(num_layers: int, pp: int) -> list[list[int]]:
    """Contiguous near-equal runs of block indices, earlier stages get the extra block."""
    base, extra = divmod(num_layers, pp)
    sizes = [base + (i < extra) for i in range(pp)]
    starts = list(itertools.accumulate([0, *sizes]))
    return [list(range(starts[i], starts[i + 1])) for i in range(pp)]
