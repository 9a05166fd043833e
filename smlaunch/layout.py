"""Derived parallel layout of a spec: world size, degrees and batch arithmetic, in SMP v1's terms.

SMP v1 counts tensor-parallel ranks as data parallel (smp-v1.md §6):

    world = instance_count x processes_per_host
    dp    = world / pp             (``smp.dp_size()``)
    rdp   = world / (pp x tp)      (``smp.rdp_size()``, "reduced" data parallel: model replicas)

``training.batch_size`` is per model-parallel group when ``prescaled_batch`` (the tp ranks of a group see the
same samples), per dp rank otherwise, so the samples of one optimizer step are

    prescaled:  global_batch = rdp x batch_size
    otherwise:  global_batch = dp  x batch_size   (each tp rank of a group gets different samples)

Example, the 60B reference: 32 x 8 = 256 GPUs, tp 8, pp 2 -> dp 128, rdp 16; batch 56 prescaled ->
896 samples/step, 4 microbatches of 14, 896 x 512 = 458,752 tokens/step.
"""

from __future__ import annotations

from dataclasses import dataclass

from smlaunch.catalog import INSTANCES, Instance
from smlaunch.spec.models import JobSpec


@dataclass(frozen=True, slots=True)
class Layout:
    """Every derived number of a spec. Degrees that do not divide evenly are floored; rules report them."""

    instance: Instance | None
    num_nodes: int
    gpus_per_node: int
    world: int
    tp: int
    pp: int
    dp: int
    rdp: int
    microbatches: int
    active_microbatches: int
    batch_size: int
    global_batch: int
    microbatch_size: int
    tokens_per_step: int

    def summary(self) -> str:
        """One line with the key numbers, nanoGPT style."""
        return (
            f"{self.num_nodes} x {self.gpus_per_node} = {self.world} GPUs: tp {self.tp} x pp {self.pp} x rdp "
            f"{self.rdp} (dp {self.dp}); {self.global_batch} samples/step in {self.microbatches} microbatch(es) "
            f"of {self.microbatch_size}; {self.tokens_per_step:,} tokens/step"
        )


def layout(spec: JobSpec) -> Layout:
    """Resolve the layout of ``spec`` (pure; never fails, even for specs that break rules)."""
    smp, cluster = spec.smp, spec.cluster
    gpus = cluster.gpus_per_host or 1
    world = cluster.instance_count * gpus
    tp, pp = smp.tensor_parallel_degree, smp.pipeline_parallel_degree
    dp = max(world // pp, 1)
    rdp = max(world // (pp * tp), 1)
    batch = spec.training.batch_size
    global_batch = (rdp if smp.prescaled_batch else dp) * batch
    return Layout(
        instance=INSTANCES.get(cluster.instance_type),
        num_nodes=cluster.instance_count,
        gpus_per_node=gpus,
        world=world,
        tp=tp,
        pp=pp,
        dp=dp,
        rdp=rdp,
        microbatches=smp.microbatches,
        active_microbatches=smp.resolved_active_microbatches,
        batch_size=batch,
        global_batch=global_batch,
        microbatch_size=max(batch // smp.microbatches, 1),
        tokens_per_step=global_batch * spec.model.seq_length,
    )
