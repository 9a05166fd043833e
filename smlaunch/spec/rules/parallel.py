"""Parallel-layout rules (``SMP``): degrees, placement, batches, microbatches, sharding, precision."""

from __future__ import annotations

from collections.abc import Iterator

from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules import arith as fx
from smlaunch.spec.rules.registry import SMP_ONLY, Hit, hit, rule
from smlaunch.spec.rules.topology import count_for_rdp, divides, dp_formula, per_node, rdp_formula, tp_nodes


@rule("SMP001", "tp-power-of-two", "warning")
def _tp_power_of_two(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """tensor_parallel_degree should be a power of two (AWS: 2, 4, 8; not 3, 5, 6, 7)."""
    if not fx.is_power_of_two(lay.tp):
        node = per_node(spec, lay)
        best = fx.nearest(fx.powers_of_two_upto(node[0] if node else lay.tp), lay.tp)
        yield hit(
            "smp.tensor_parallel_degree",
            f"tensor_parallel_degree({lay.tp}) is not a power of two: SMP's tensor-parallel kernels and "
            "AWS's guidance expect 2, 4 or 8",
            f"set smp.tensor_parallel_degree: {best}",
        )


@rule("SMP002", "tp-within-node", "error")
def _tp_within_node(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Tensor parallelism must stay inside a node: tp <= GPUs per instance."""
    node = per_node(spec, lay)
    if node is not None and lay.tp > node[0]:
        best = max(p for p in fx.powers_of_two_upto(node[0]) if node[0] % p == 0)
        yield hit(
            "smp.tensor_parallel_degree",
            f"tensor_parallel_degree({lay.tp}) > {node[1]} on {spec.cluster.instance_type}: "
            "tensor parallelism would cross nodes",
            f"set smp.tensor_parallel_degree: {best}",
        )


@rule("SMP003", "world-divisible", "error")
def _world_divisible(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """world = instance_count x processes_per_host must be divisible by tp x pp."""
    mp = lay.tp * lay.pp
    if lay.world % mp == 0:
        return
    count = fx.smallest_count_for(mp, lay.gpus_per_node, lay.num_nodes)
    if lay.pp > 1 and lay.world % lay.tp == 0:
        field, value = "smp.pipeline_parallel_degree", fx.nearest(fx.divisors(lay.world // lay.tp), lay.pp)
    elif lay.world % lay.pp == 0:
        pow2 = [d for d in fx.divisors(lay.world // lay.pp) if fx.is_power_of_two(d)]
        field, value = "smp.tensor_parallel_degree", fx.nearest(pow2, lay.tp)
    else:
        field, value = "cluster.instance_count", count
    also = f" (or cluster.instance_count: {count})" if field != "cluster.instance_count" else ""
    yield hit(
        field,
        f"world({lay.world}) = instance_count({lay.num_nodes}) x processes_per_host({lay.gpus_per_node}) "
        f"is not divisible by tp({lay.tp}) x pp({lay.pp}) = {mp}",
        f"set {field}: {value}{also}",
    )


@rule("SMP004", "pp-divides-gpus-per-host", "warning")
def _pp_divides_host(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """GPUs per host should be divisible by pp (smp-v1.md §3, `partitions`)."""
    if lay.pp > 1 and lay.gpus_per_node % lay.pp:
        best = fx.nearest(fx.divisors(lay.gpus_per_node), lay.pp)
        yield hit(
            "smp.pipeline_parallel_degree",
            f"pipeline_parallel_degree({lay.pp}) does not divide GPUs per host({lay.gpus_per_node}): "
            "pipeline stages map unevenly onto hosts",
            f"set smp.pipeline_parallel_degree: {best}",
        )


@rule("SMP005", "tp-placement-inside-node", "error")
def _placement_spread(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """placement_strategy spread (TPD) with tp > 1 on several nodes puts tensor-parallel ranks on different nodes."""
    strategy = spec.smp.placement_strategy
    nodes = tp_nodes(spec, lay, strategy)
    if strategy == "spread" and nodes > 1 and lay.world % lay.tp == 0:  # else SMP003: world / tp is no rank count
        yield hit(
            "smp.placement_strategy",
            f"placement_strategy spread (= TPD) puts data-parallel ranks on neighbouring GPUs, so the "
            f"tp({lay.tp}) ranks of a tensor-parallel group sit world({lay.world}) / tp({lay.tp}) = "
            f"{lay.world // lay.tp} ranks apart, across {nodes} nodes: keep tensor parallel inside a node "
            "and pipeline across nodes",
            "set smp.placement_strategy: cluster",
        )


@rule("SMP006", "placement-sdk-name", "error", engines=SMP_ONLY)
def _placement_permutation(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """SDK v2 accepts only `cluster` and `spread` as placement_strategy, not D/P/T permutations."""
    strategy = spec.smp.placement_strategy
    if strategy in ("cluster", "spread"):
        return
    if strategy == "DPT":
        meaning, value = "it is `cluster`", "cluster"
    elif strategy == "TPD":
        crosses = tp_nodes(spec, lay, strategy) > 1
        meaning = "it is `spread`" + (", which would put tensor-parallel ranks on different nodes" if crosses else "")
        value = "cluster" if crosses else "spread"
    else:
        meaning, value = "SMP v1 has no SDK name for it", "cluster"
    yield hit(
        "smp.placement_strategy",
        f"placement_strategy {strategy}: SDK v2 raises 'placement_strategy must be a value in: "
        f"['spread', 'cluster']'; {meaning}",
        f"set smp.placement_strategy: {value}",
    )


@rule("SMP007", "prescaled-batch-tp-pp", "warning", engines=SMP_ONLY)
def _prescaled(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Combine tensor and pipeline parallelism with prescaled_batch."""
    if lay.tp > 1 and lay.pp > 1 and not spec.smp.prescaled_batch:
        yield hit(
            "smp.prescaled_batch",
            f"tp({lay.tp}) x pp({lay.pp}) without prescaled_batch: each pipeline microbatch is "
            f"1/{lay.tp} of the model-parallel group's samples, too small for efficient pipelining",
            "set smp.prescaled_batch: true (training.batch_size then counts per model-parallel group)",
        )


@rule("SMP008", "batch-divisible-by-microbatches", "error")
def _batch_microbatches(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """The batch given to smp.step must be divisible by microbatches."""
    batch, micro = lay.batch_size, lay.microbatches
    if batch % micro:
        best = fx.nearest_multiple(batch, micro)
        yield hit(
            "training.batch_size",
            f"batch_size({batch}) is not divisible by microbatches({micro}): {batch} / {micro} = "
            f"{batch / micro:.2f} samples per microbatch",
            f"set training.batch_size: {best} (a multiple of microbatches {micro})",
        )


@rule("SMP009", "active-microbatches-range", "warning")
def _active_microbatches(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """active_microbatches above microbatches is capped by SMP."""
    active = spec.smp.active_microbatches
    if active is not None and active > lay.microbatches:
        yield hit(
            "smp.active_microbatches",
            f"active_microbatches({active}) > microbatches({lay.microbatches}): SMP caps it at "
            f"{lay.microbatches} (the default is pp + 2 = {lay.pp + 2}, also capped)",
            f"set smp.active_microbatches: {lay.microbatches}",
        )


@rule("SMP010", "microbatches-need-pipeline", "warning", engines=SMP_ONLY)
def _microbatches_without_pp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """microbatches > 1 without pipeline parallelism overlaps nothing. SMP v1 only: under ``engine: torch`` the
    microbatches of one stage are gradient accumulation (entrypoints/parallelize.py), the native way to train a
    batch whose activations do not fit at once."""
    if lay.microbatches > 1 and lay.pp == 1:
        yield hit(
            "smp.microbatches",
            f"microbatches({lay.microbatches}) > 1 with pipeline_parallel_degree(1): there is no pipeline to "
            f"fill, the batch just runs in {lay.microbatches} sequential pieces",
            "set smp.microbatches: 1 (or smp.pipeline_parallel_degree: 2)",
        )


@rule("SMP011", "offload-needs-checkpointing", "error")
def _offload_checkpointing(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """offload_activations offloads checkpointed activations: it needs activation checkpointing."""
    if spec.smp.offload_activations and spec.training.activation_checkpointing == "none":
        yield hit(
            "training.activation_checkpointing",
            "offload_activations with activation_checkpointing none: only checkpointed activations are "
            "offloaded, so nothing would be",
            "set training.activation_checkpointing: each (or smp.offload_activations: false)",
        )


@rule("SMP012", "offload-needs-microbatches", "error", engines=SMP_ONLY)
def _offload_microbatches(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """offload_activations needs microbatches > 1 and active_microbatches > 1 (GEN, `offload_activations`).

    Source: SMP v1 parameter table (sagemaker-python-sdk doc/api/training/smd_model_parallel_general.rst):
    "use activation offloading only when (1) the ``microbatches`` and ``active_microbatches`` are greater than 1".
    """
    if not spec.smp.offload_activations:
        return
    if lay.microbatches == 1:
        best = min((d for d in fx.divisors(lay.batch_size) if d > 1), default=2)
        yield hit(
            "smp.microbatches",
            "offload_activations with microbatches(1): offloading and prefetching overlap only across microbatches",
            f"set smp.microbatches: {best} (divides batch_size {lay.batch_size}), or smp.offload_activations: false",
        )
    elif lay.active_microbatches == 1:
        default = min(lay.pp + 2, lay.microbatches)
        yield hit(
            "smp.active_microbatches",
            f"offload_activations with active_microbatches(1) of microbatches({lay.microbatches}): with one "
            "microbatch in flight there is no other one to offload and prefetch behind; SMP documents offloading "
            "only for microbatches and active_microbatches > 1",
            f"set smp.active_microbatches: 2 (or remove it: the default is min(pp + 2, microbatches) = "
            f"min({lay.pp + 2}, {lay.microbatches}) = {default}), or smp.offload_activations: false",
        )


@rule("SMP013", "offload-needs-pipeline", "warning", engines=SMP_ONLY)
def _offload_pipeline(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """offload_activations pays off only with pipeline parallelism."""
    if spec.smp.offload_activations and lay.pp == 1:
        yield hit(
            "smp.offload_activations",
            "offload_activations with pipeline_parallel_degree(1): AWS documents the benefit only with "
            "pipeline parallelism; expect host-transfer cost without a memory win",
            "set smp.offload_activations: false (or smp.pipeline_parallel_degree: 2)",
        )


@rule("SMP014", "activation-loading-horizon", "error", engines=SMP_ONLY)
def _loading_horizon(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """activation_loading_horizon must be > 0."""
    horizon = spec.smp.activation_loading_horizon
    if horizon <= 0:
        yield hit(
            "smp.activation_loading_horizon",
            f"activation_loading_horizon({horizon}) must be > 0 (pipeline tasks to prefetch ahead)",
            "set smp.activation_loading_horizon: 4 (the SMP default)",
        )


@rule("SMP015", "shard-optimizer-needs-dp", "error", engines=SMP_ONLY)
def _shard_optimizer(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """shard_optimizer_state needs data-parallel ranks (dp > 1) to shard over.

    Source: GEN, `shard_optimizer_state`: SMP "shards the optimizer state of all parameters across the data
    parallel processes which hold the same parameter"; with dp = world / pp = 1 no two processes do. A single
    replica with tp > 1 (rdp 1, dp > 1) still shards the replicated parameters: SMP027 (a warning).
    """
    if spec.smp.shard_optimizer_state and lay.dp == 1 and divides(lay):
        yield hit(
            "smp.shard_optimizer_state",
            f"shard_optimizer_state with {dp_formula(lay)}: SMP shards optimizer state over the data-parallel "
            "processes that hold the same parameter, and every process holds a different pipeline stage",
            f"set smp.shard_optimizer_state: false (or cluster.instance_count: {count_for_rdp(lay, 2)} for rdp 2)",
        )


@rule("SMP016", "model-data-parallel-needs-ddp", "error", engines=SMP_ONLY)
def _hybrid_ddp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """ddp must be true when model and data parallelism mix: tp > 1, or pp > 1 with several replicas (rdp > 1).

    Sources: GEN, `ddp`: "Must be set to True if hybrid model/data parallelism is used with
    DistributedDataParallel"; `tensor_parallel_degree`: "If ``tensor_parallel_degree`` is greater than 1, then
    ``ddp`` must be set to ``True``". smp_train.py's fp32/bf16 gradient clipping calls
    ``smp.get_mp_process_group()``, which "Requires ``"ddp": True``" (smd_model_parallel_pytorch.rst).
    """
    if spec.smp.ddp:
        return
    if lay.tp > 1:
        yield hit("smp.ddp", f"tensor_parallel_degree({lay.tp}) > 1 requires ddp, which is false", "set smp.ddp: true")
    elif lay.pp > 1 and lay.rdp > 1 and divides(lay):
        yield hit(
            "smp.ddp",
            f"pipeline_parallel_degree({lay.pp}) with {rdp_formula(lay)} model replicas mixes model and data "
            "parallelism, which requires ddp (SMP: 'Must be set to True if hybrid model/data parallelism is used'), "
            "and ddp is false",
            "set smp.ddp: true",
        )


@rule("SMP017", "ddp-options-need-ddp", "error", engines=SMP_ONLY)
def _ddp_options(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """ddp_port and ddp_dist_backend require ddp."""
    if spec.smp.ddp:
        return
    for name in ("ddp_port", "ddp_dist_backend"):
        value = getattr(spec.smp, name)
        if value is not None:
            yield hit(
                f"smp.{name}",
                f"{name}({value}) requires ddp, which is false (SDK v2 raises)",
                f"remove smp.{name} (or set smp.ddp: true)",
            )
