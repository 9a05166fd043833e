"""Precision, sharded data parallelism and partitioning rules (``SMP018``-``SMP027``): the second half of the
parallel-layout rules (:mod:`smlaunch.spec.rules.parallel`), registered right after it."""

from __future__ import annotations

from collections.abc import Iterator

from smlaunch.layout import Layout
from smlaunch.spec.models import JobSpec
from smlaunch.spec.rules import arith as fx
from smlaunch.spec.rules.registry import SMP_ONLY, Hit, hit, rule
from smlaunch.spec.rules.topology import count_for_rdp, divides, dp_formula, rdp_formula


@rule("SMP018", "fp16-bf16-exclusive", "error")
def _fp16_bf16(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """fp16 and bf16 are mutually exclusive."""
    if spec.smp.fp16 and spec.smp.bf16:
        yield hit("smp.bf16", "fp16 and bf16 are both true: pick one precision", "set smp.bf16: false (keep fp16)")


@rule("SMP019", "bf16-needs-sharded-dp", "error", engines=SMP_ONLY)
def _bf16_sdp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """In SMP v1, bf16 works only with sharded data parallelism."""
    sdp = spec.smp.sharded_data_parallel_degree
    if spec.smp.bf16 and sdp == 1:
        yield hit(
            "smp.bf16",
            f"bf16 with sharded_data_parallel_degree({sdp}): SMP v1 trains in bf16 only with sharded data parallelism",
            "set smp.bf16: false and smp.fp16: true",
        )


@rule("SMP020", "sharded-dp-divides-dp", "error", engines=SMP_ONLY)
def _sdp_divides(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """sharded_data_parallel_degree must divide the data-parallel degree."""
    sdp = spec.smp.sharded_data_parallel_degree
    if sdp > 1 and lay.dp % sdp and lay.world % lay.pp == 0:  # else SMP003: dp is no whole number
        best = fx.nearest([d for d in fx.divisors(lay.dp) if d > 1] or [1], sdp)
        yield hit(
            "smp.sharded_data_parallel_degree",
            f"sharded_data_parallel_degree({sdp}) does not divide {dp_formula(lay)}",
            f"set smp.sharded_data_parallel_degree: {best}",
        )


@rule("SMP021", "sharded-dp-no-pipeline", "error", engines=SMP_ONLY)
def _sdp_pipeline(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Sharded data parallelism does not combine with pipeline parallelism."""
    sdp = spec.smp.sharded_data_parallel_degree
    if sdp > 1 and lay.pp > 1:
        yield hit(
            "smp.pipeline_parallel_degree",
            f"sharded_data_parallel_degree({sdp}) with pipeline_parallel_degree({lay.pp}): SMP v1 sharded data "
            "parallelism does not support pipeline parallelism",
            "set smp.pipeline_parallel_degree: 1 (or smp.sharded_data_parallel_degree: 1)",
        )


@rule("SMP022", "sharded-dp-no-optimizer-sharding", "error", engines=SMP_ONLY)
def _sdp_shard_optimizer(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Sharded data parallelism already shards optimizer state: no shard_optimizer_state."""
    sdp = spec.smp.sharded_data_parallel_degree
    if sdp > 1 and spec.smp.shard_optimizer_state:
        yield hit(
            "smp.shard_optimizer_state",
            f"shard_optimizer_state with sharded_data_parallel_degree({sdp}): the two are exclusive "
            "(sharded data parallelism shards optimizer state itself)",
            "set smp.shard_optimizer_state: false",
        )


@rule("SMP023", "sharded-dp-tp-needs-pt-1.13.1", "error", engines=SMP_ONLY)
def _sdp_tp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Sharded data parallelism with tp > 1 needs SMP 1.15 on PyTorch 1.13.1."""
    sdp, fw = spec.smp.sharded_data_parallel_degree, spec.sagemaker.framework_version
    if sdp > 1 and lay.tp > 1 and fx.full_framework_version(fw) != "1.13.1":  # "1.13" is the SDK's alias
        yield hit(
            "sagemaker.framework_version",
            f"sharded_data_parallel_degree({sdp}) with tensor_parallel_degree({lay.tp}) on framework_version "
            f"{fw}: SMP v1 supports sharded data parallel with tensor parallel only on PyTorch 1.13.1 (SMP 1.15)",
            "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39 (or smp.tensor_parallel_degree: 1)",
        )


@rule("SMP024", "default-partition-range", "error", engines=SMP_ONLY)
def _default_partition(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """With auto_partition false, default_partition must be a stage: 0 <= default_partition < pp."""
    part = spec.smp.default_partition
    if not spec.smp.auto_partition and part is not None and not 0 <= part < lay.pp:
        yield hit(
            "smp.default_partition",
            f"default_partition({part}) is not a pipeline stage: auto_partition is false and "
            f"pipeline_parallel_degree({lay.pp}) gives stages 0..{lay.pp - 1}",
            f"set smp.default_partition: {min(max(part, 0), lay.pp - 1)}",
        )


@rule("SMP025", "memory-weight-range", "error", engines=SMP_ONLY)
def _memory_weight(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """memory_weight is a fraction in [0, 1]."""
    weight = spec.smp.memory_weight
    if weight is not None and not 0 <= weight <= 1:
        default = 0.2 if spec.smp.optimize == "speed" else 0.8
        yield hit(
            "smp.memory_weight",
            f"memory_weight({weight:g}) is outside [0, 1]",
            f"set smp.memory_weight: {default:g} (the default for optimize {spec.smp.optimize})",
        )


@rule("SMP026", "manual-partition-unplaced", "error", engines=SMP_ONLY)
def _manual_partition(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """auto_partition false with pp > 1: the entry point places no module, so every module lands on one stage.

    Sources: GEN, `default_partition`: "The partition ID to place operations/modules that are not placed in any
    ``smp.partition`` contexts"; smd_model_parallel_pytorch.rst: "Any module that is not placed in any
    ``smp.partition`` context is placed in the ``default_partition``". smlaunch's entry points
    (entrypoints/smp_train.py, train_gpt2.py) never call ``smp.partition`` or ``smp.set_partition``; AWS's
    train_gpt_simple.py pairs manual partitioning with ``smp.set_partition`` per layer. With pp = 1 there is one
    stage anyway (AWS's GPT-2 30B notebook cell sends auto_partition False with partitions 1), so that passes.
    """
    if spec.smp.auto_partition or lay.pp == 1:
        return
    stage = spec.smp.default_partition if spec.smp.default_partition is not None else 0
    yield hit(
        "smp.auto_partition",
        f"auto_partition false with pipeline_parallel_degree({lay.pp}): smlaunch's entry point places no module "
        f"in an smp.partition context, so SMP puts all num_layers({spec.model.num_layers}) blocks, the embedding "
        f"and the head on default_partition({stage}); the other {lay.pp - 1} stage(s) hold nothing",
        "set smp.auto_partition: true",
    )


@rule("SMP027", "shard-optimizer-single-replica", "warning", engines=SMP_ONLY)
def _shard_single_replica(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """shard_optimizer_state with one model replica (rdp 1) but dp > 1 shards only the replicated parameters.

    Source: GEN, `shard_optimizer_state`: state is sharded "across the data parallel processes which hold the same
    parameter". SMP counts tensor-parallel ranks in dp (dp = world / pp, smp-v1.md §6), so the parameters every
    tp rank holds (the embedding and tied head, which smp_train.py keeps replicated) are sharded over dp; the
    tensor-parallel blocks' shards are held by rdp = 1 process each and are not sharded at all.
    """
    if not (spec.smp.shard_optimizer_state and lay.rdp == 1 and lay.dp > 1 and divides(lay)):
        return
    model = spec.model
    replicated = (model.vocab_size + model.seq_length) * model.hidden_width
    total = model.num_params()
    yield hit(
        "smp.shard_optimizer_state",
        f"shard_optimizer_state with {rdp_formula(lay)}: the tensor-parallel blocks' optimizer state has no other "
        f"replica to shard over; only the replicated embedding and head, (vocab_size({model.vocab_size}) + "
        f"seq_length({model.seq_length})) x hidden_width({model.hidden_width}) = {replicated:,} of "
        f"{total:,} parameters ({100 * replicated / total:.1f}%), are sharded, over {dp_formula(lay)}: "
        "it saves little memory",
        f"set smp.shard_optimizer_state: false (or cluster.instance_count: {count_for_rdp(lay, 2)} for rdp 2)",
    )
