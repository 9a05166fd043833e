"""The resolved layout of a spec: world size, degrees and batch arithmetic, computed once, in SMP v1's terms.

Every part of smlaunch that needs a derived number (rules, cost model, planner, shrink, local runs, rendering)
reads it from :func:`resolve`; nothing else recomputes dp, rdp or the global batch.

SMP v1 counts tensor-parallel ranks as data parallel (smp-v1.md §6):

    world = instance_count x processes_per_host
    dp    = world / pp             (``smp.dp_size()``)
    rdp   = world / (pp x tp)      (``smp.rdp_size()``, "reduced" data parallel: model replicas)

``training.batch_size`` is per model-parallel group when ``prescaled_batch`` (the tp ranks of a group see the
same samples), per dp rank otherwise (:func:`batch_readers`, the one place that says so), so one step is

    prescaled:  global_batch = rdp x batch_size
    otherwise:  global_batch = dp  x batch_size   (each tp rank of a group gets different samples)

Example, the 60B reference: 32 x 8 = 256 GPUs, tp 8, pp 2 -> dp 128, rdp 16; batch 56 prescaled ->
896 samples/step, 4 microbatches of 14, 896 x 512 = 458,752 tokens/step.
"""

from __future__ import annotations

from dataclasses import dataclass

from smlaunch.catalog import INSTANCES, Instance
from smlaunch.spec.models import JobSpec


def batch_readers(*, world: int, tp: int, pp: int, prescaled: bool) -> int:
    """How many ranks read their own ``training.batch_size`` samples per step: rdp when prescaled, else dp.

    The batch-size semantics of both engines live here and nowhere else (the entry points, which never import
    smlaunch, shard their data the same way: docs/entrypoint-contract.md).

    >>> batch_readers(world=256, tp=8, pp=2, prescaled=True), batch_readers(world=256, tp=8, pp=2, prescaled=False)
    (16, 128)
    """
    dp = max(world // pp, 1)
    return max(dp // tp, 1) if prescaled else dp


@dataclass(frozen=True, slots=True)
class Layout:
    """Every derived number of a spec. Degrees that do not divide evenly are floored; rules report them."""

    instance: Instance | None
    num_nodes: int
    gpus_per_node: int
    """Processes per node (``cluster.processes_per_host``, default the instance's GPU count)."""
    world: int
    tp: int
    pp: int
    dp: int
    rdp: int
    microbatches: int
    active_microbatches: int
    prescaled_batch: bool
    batch_size: int
    """``training.batch_size`` as written: per model-parallel group (prescaled) or per dp rank."""
    global_batch: int
    microbatch_size: int
    """Samples per microbatch per batch reader (``batch_size / microbatches``, floored, at least 1)."""
    seq_length: int
    tokens_per_step: int

    @property
    def batch_readers(self) -> int:
        """Ranks that read their own batch: rdp when prescaled, dp otherwise."""
        return self.global_batch // max(self.batch_size, 1)

    @property
    def replica_batch(self) -> int:
        """Samples per step of one model replica (tp x pp ranks): ``global_batch / rdp``."""
        return self.global_batch // self.rdp

    @property
    def group_microbatch(self) -> int:
        """Samples per microbatch as one tensor-parallel group computes them (x tp unless prescaled)."""
        return self.microbatch_size * (1 if self.prescaled_batch else self.tp)

    def summary(self) -> str:
        """One line with the key numbers, nanoGPT style."""
        return (
            f"{self.num_nodes} x {self.gpus_per_node} = {self.world} GPUs: tp {self.tp} x pp {self.pp} x rdp "
            f"{self.rdp} (dp {self.dp}); {self.global_batch} samples/step in {self.microbatches} microbatch(es) "
            f"of {self.microbatch_size}; {self.tokens_per_step:,} tokens/step"
        )

    def to_dict(self) -> dict[str, int | bool]:
        """The ``layout`` object of every ``--format json`` output."""
        return {
            "world": self.world,
            "tp": self.tp,
            "pp": self.pp,
            "dp": self.dp,
            "rdp": self.rdp,
            "microbatches": self.microbatches,
            "active_microbatches": self.active_microbatches,
            "global_batch": self.global_batch,
            "microbatch_size": self.microbatch_size,
            "tokens_per_step": self.tokens_per_step,
        }


def layout_of(
    *,
    instance: Instance | None,
    num_nodes: int,
    gpus_per_node: int,
    tp: int,
    pp: int,
    microbatches: int,
    active_microbatches: int,
    prescaled_batch: bool,
    batch_size: int,
    seq_length: int,
) -> Layout:
    """The layout of explicit values (the planner's candidates); :func:`resolve` for a spec."""
    world = num_nodes * gpus_per_node
    dp = max(world // pp, 1)
    global_batch = batch_readers(world=world, tp=tp, pp=pp, prescaled=prescaled_batch) * batch_size
    return Layout(
        instance=instance,
        num_nodes=num_nodes,
        gpus_per_node=gpus_per_node,
        world=world,
        tp=tp,
        pp=pp,
        dp=dp,
        rdp=max(dp // tp, 1),
        microbatches=microbatches,
        active_microbatches=active_microbatches,
        prescaled_batch=prescaled_batch,
        batch_size=batch_size,
        global_batch=global_batch,
        microbatch_size=max(batch_size // microbatches, 1),
        seq_length=seq_length,
        tokens_per_step=global_batch * seq_length,
    )


def resolve(spec: JobSpec) -> Layout:
    """Resolve the layout of ``spec`` (pure, cheap; never fails, even for specs that break rules)."""
    smp, cluster = spec.smp, spec.cluster
    return layout_of(
        instance=INSTANCES.get(cluster.instance_type),
        num_nodes=cluster.instance_count,
        gpus_per_node=cluster.gpus_per_host or 1,
        tp=smp.tensor_parallel_degree,
        pp=smp.pipeline_parallel_degree,
        microbatches=smp.microbatches,
        active_microbatches=smp.resolved_active_microbatches,
        prescaled_batch=smp.prescaled_batch,
        batch_size=spec.training.batch_size,
        seq_length=spec.model.seq_length,
    )
