"""The rulebook: SMP v1 best practices checked against a typed spec before any money is spent.

Each rule is a small pure function of the spec and its :class:`~smlaunch.layout.Layout`, registered with an id,
a kebab-case name and a severity. It yields ``hit(field, message, fix)``: the dotted field to change, a message
that shows the arithmetic, and the smallest fix as YAML-ish text. :func:`check` runs them all (the layout is
computed once), fills rule id, severity and YAML line, and returns a :class:`Report`, errors first.

Groups: ``CLU`` cluster and instance, ``SMP`` SMP v1 parameters and parallel arithmetic, ``MOD`` model shape
vs degrees, ``JOB`` framework, spot, data and estimator settings, ``MEM`` memory fit (:mod:`smlaunch.estimate`).
Sources: smp-v1.md §3, §4.3, §5, §9 and AWS's "model parallel best practices" page.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Iterator

from smlaunch.catalog import INSTANCES, SUPPORTED_FRAMEWORKS
from smlaunch.layout import Layout, layout
from smlaunch.spec import _fixes as fx
from smlaunch.spec._fixes import RULES, Hit, Rule, hit, rule, rule_ids
from smlaunch.spec.findings import Finding, Report
from smlaunch.spec.models import JobSpec

__all__ = ["RULES", "Rule", "check", "hit", "rule", "rule_ids"]


def check(spec: JobSpec, *, select: Iterable[str] | None = None, ignore: Iterable[str] = ()) -> Report:
    """Run the rules (all, or the ``select``ed ids, minus ``ignore``) and return the report, errors first."""
    chosen = list(RULES) if select is None else list(select)
    unknown = [i for i in [*chosen, *ignore] if i not in RULES]
    if unknown:
        raise ValueError(f"unknown rule id(s): {', '.join(unknown)}; known: {', '.join(RULES)}")
    lay = layout(spec)
    findings = [f for rule_id in chosen if rule_id not in set(ignore) for f in RULES[rule_id](spec, lay)]
    findings.sort(key=lambda f: f.severity != "error")  # stable: declaration order within a severity
    source = spec.source.name if spec.source is not None else "<spec>"
    return Report(source, tuple(findings), summary=lay.summary())


def _per_node(spec: JobSpec, lay: Layout) -> tuple[int, str] | None:
    """Ranks per node and how to name them, or None when the instance is unknown (CLU001 reports it)."""
    if lay.instance is None:
        return None
    gpus = lay.instance.num_gpus
    if lay.gpus_per_node < gpus:
        return lay.gpus_per_node, f"processes_per_host({lay.gpus_per_node})"
    return gpus, f"GPUs per instance({gpus})"


def _tp_nodes(spec: JobSpec, lay: Layout, strategy: str) -> int:
    """How many nodes the first tensor-parallel group spans under ``strategy`` (cluster keeps it on one)."""
    if strategy not in ("spread", "TPD") or lay.tp == 1:
        return 1
    stride = max(lay.world // lay.tp, 1)  # TPD: data-parallel ranks are neighbours, tp ranks world/tp apart
    return len({(t * stride) // max(lay.gpus_per_node, 1) for t in range(lay.tp)})


# ---------------------------------------------------------------------------------------------------- cluster


@rule("CLU001", "instance-known", "error")
def _instance_known(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """The instance type is in smlaunch's catalog."""
    name = spec.cluster.instance_type
    if lay.instance is None:
        close = difflib.get_close_matches(name, INSTANCES, n=1, cutoff=0.6)
        guess = close[0] if close else "ml.p4d.24xlarge"
        hint = f"did you mean {guess}?" if close else f"known: {', '.join(INSTANCES)}"
        yield hit(
            "cluster.instance_type",
            f"instance_type {name} is not in smlaunch's catalog; {hint}",
            f"set cluster.instance_type: {guess}",
        )


@rule("CLU002", "instance-supports-smp-v1", "error")
def _instance_smp_v1(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """SMP v1 runs only on p3.16xlarge, p3dn, p4d, p4de and g4dn.12xlarge."""
    inst = lay.instance
    if inst is None or inst.smp_v1:
        return
    if inst.name.startswith("ml.p5"):
        yield hit(
            "cluster.instance_type",
            f"{inst.name}: SMP v1 has no p5 support; the SageMaker SDK raises 'SMModelParallel and "
            "SMDataParallel currently do not support p5 instances'",
            "set cluster.instance_type: ml.p4d.24xlarge (or ml.p4de.24xlarge for 80 GB A100s), or move to SMP v2",
        )
        return
    alt = fx.alternative_instance(inst)
    supported = ", ".join(i.name for i in INSTANCES.values() if i.smp_v1)
    yield hit(
        "cluster.instance_type",
        f"{inst.name} is not supported by SMP v1 (supported: {supported})",
        f"set cluster.instance_type: {alt.name} ({alt.num_gpus} x {alt.gpu.name})",
    )


@rule("CLU003", "processes-fit-gpus", "error")
def _processes_fit(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """processes_per_host <= GPUs per instance: one MPI process drives one GPU."""
    inst, pph = lay.instance, spec.cluster.processes_per_host
    if inst is not None and pph is not None and pph > inst.num_gpus:
        yield hit(
            "cluster.processes_per_host",
            f"processes_per_host({pph}) > GPUs per instance({inst.num_gpus}) on {inst.name}: MPI fails after "
            f"launch ('The number of node-local MPI processes {pph} cannot be larger than the device count "
            f"{inst.num_gpus}')",
            f"set cluster.processes_per_host: {inst.num_gpus} (or remove it: the default is the GPU count)",
        )


@rule("CLU004", "no-idle-gpus", "warning")
def _idle_gpus(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """processes_per_host < GPUs per instance leaves GPUs idle but billed."""
    inst, pph = lay.instance, spec.cluster.processes_per_host
    if inst is not None and pph is not None and pph < inst.num_gpus:
        idle = (inst.num_gpus - pph) * spec.cluster.instance_count
        yield hit(
            "cluster.processes_per_host",
            f"processes_per_host({pph}) < GPUs per instance({inst.num_gpus}) on {inst.name}: "
            f"{idle} GPU(s) idle but billed",
            f"set cluster.processes_per_host: {inst.num_gpus}",
        )


@rule("CLU005", "multi-node-efa", "warning")
def _multi_node_efa(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """A multi-node job wants an instance with EFA."""
    inst = lay.instance
    if inst is not None and lay.num_nodes > 1 and not inst.efa:
        alt = fx.alternative_instance(inst, need_efa=True)
        yield hit(
            "cluster.instance_type",
            f"instance_count({lay.num_nodes}) x {inst.name}, which has no EFA ({inst.network_gbps:g} Gbit/s): "
            "inter-node pipeline and gradient traffic will be slow",
            f"set cluster.instance_type: {alt.name} (EFA, {alt.network_gbps:g} Gbit/s)",
        )


# ------------------------------------------------------------------------------------------ parallel layout


@rule("SMP001", "tp-power-of-two", "warning")
def _tp_power_of_two(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """tensor_parallel_degree should be a power of two (AWS: 2, 4, 8; not 3, 5, 6, 7)."""
    if not fx.is_power_of_two(lay.tp):
        node = _per_node(spec, lay)
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
    node = _per_node(spec, lay)
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
    nodes = _tp_nodes(spec, lay, strategy)
    if strategy == "spread" and nodes > 1:
        yield hit(
            "smp.placement_strategy",
            f"placement_strategy spread (= TPD) puts data-parallel ranks on neighbouring GPUs, so the "
            f"tp({lay.tp}) ranks of a tensor-parallel group sit world({lay.world}) / tp({lay.tp}) = "
            f"{lay.world // lay.tp} ranks apart, across {nodes} nodes: keep tensor parallel inside a node "
            "and pipeline across nodes",
            "set smp.placement_strategy: cluster",
        )


@rule("SMP006", "placement-sdk-name", "error")
def _placement_permutation(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """SDK v2 accepts only `cluster` and `spread` as placement_strategy, not D/P/T permutations."""
    strategy = spec.smp.placement_strategy
    if strategy in ("cluster", "spread"):
        return
    if strategy == "DPT":
        meaning, value = "it is `cluster`", "cluster"
    elif strategy == "TPD":
        crosses = _tp_nodes(spec, lay, strategy) > 1
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


@rule("SMP007", "prescaled-batch-tp-pp", "warning")
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


@rule("SMP010", "microbatches-need-pipeline", "warning")
def _microbatches_without_pp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """microbatches > 1 without pipeline parallelism overlaps nothing."""
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


@rule("SMP012", "offload-needs-microbatches", "error")
def _offload_microbatches(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """offload_activations needs microbatches > 1 to offload and prefetch in the background."""
    if spec.smp.offload_activations and lay.microbatches == 1:
        best = min((d for d in fx.divisors(lay.batch_size) if d > 1), default=2)
        yield hit(
            "smp.microbatches",
            "offload_activations with microbatches(1): offloading and prefetching overlap only across microbatches",
            f"set smp.microbatches: {best} (divides batch_size {lay.batch_size}), or smp.offload_activations: false",
        )


@rule("SMP013", "offload-needs-pipeline", "warning")
def _offload_pipeline(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """offload_activations pays off only with pipeline parallelism."""
    if spec.smp.offload_activations and lay.pp == 1:
        yield hit(
            "smp.offload_activations",
            "offload_activations with pipeline_parallel_degree(1): AWS documents the benefit only with "
            "pipeline parallelism; expect host-transfer cost without a memory win",
            "set smp.offload_activations: false (or smp.pipeline_parallel_degree: 2)",
        )


@rule("SMP014", "activation-loading-horizon", "error")
def _loading_horizon(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """activation_loading_horizon must be > 0."""
    horizon = spec.smp.activation_loading_horizon
    if horizon <= 0:
        yield hit(
            "smp.activation_loading_horizon",
            f"activation_loading_horizon({horizon}) must be > 0 (pipeline tasks to prefetch ahead)",
            "set smp.activation_loading_horizon: 4 (the SMP default)",
        )


@rule("SMP015", "shard-optimizer-needs-dp", "error")
def _shard_optimizer(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """shard_optimizer_state needs more than one model replica (rdp > 1) to shard over."""
    if spec.smp.shard_optimizer_state and lay.rdp == 1:
        yield hit(
            "smp.shard_optimizer_state",
            f"shard_optimizer_state with rdp(1) = world({lay.world}) / (pp({lay.pp}) x tp({lay.tp})): "
            "sharding only with data parallel ranks, and there is a single model replica",
            f"set smp.shard_optimizer_state: false (or cluster.instance_count: {lay.num_nodes * 2} for rdp 2)",
        )


@rule("SMP016", "tp-needs-ddp", "error")
def _tp_ddp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """tensor_parallel_degree > 1 requires ddp."""
    if lay.tp > 1 and not spec.smp.ddp:
        yield hit("smp.ddp", f"tensor_parallel_degree({lay.tp}) > 1 requires ddp, which is false", "set smp.ddp: true")


@rule("SMP017", "ddp-options-need-ddp", "error")
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


@rule("SMP018", "fp16-bf16-exclusive", "error")
def _fp16_bf16(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """fp16 and bf16 are mutually exclusive."""
    if spec.smp.fp16 and spec.smp.bf16:
        yield hit("smp.bf16", "fp16 and bf16 are both true: pick one precision", "set smp.bf16: false (keep fp16)")


@rule("SMP019", "bf16-needs-sharded-dp", "error")
def _bf16_sdp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """In SMP v1, bf16 works only with sharded data parallelism."""
    sdp = spec.smp.sharded_data_parallel_degree
    if spec.smp.bf16 and sdp == 1:
        yield hit(
            "smp.bf16",
            f"bf16 with sharded_data_parallel_degree({sdp}): SMP v1 trains in bf16 only with sharded data parallelism",
            "set smp.bf16: false and smp.fp16: true",
        )


@rule("SMP020", "sharded-dp-divides-dp", "error")
def _sdp_divides(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """sharded_data_parallel_degree must divide the data-parallel degree."""
    sdp = spec.smp.sharded_data_parallel_degree
    if sdp > 1 and lay.dp % sdp:
        best = fx.nearest([d for d in fx.divisors(lay.dp) if d > 1] or [1], sdp)
        yield hit(
            "smp.sharded_data_parallel_degree",
            f"sharded_data_parallel_degree({sdp}) does not divide dp({lay.dp}) = world({lay.world}) / pp({lay.pp})",
            f"set smp.sharded_data_parallel_degree: {best}",
        )


@rule("SMP021", "sharded-dp-no-pipeline", "error")
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


@rule("SMP022", "sharded-dp-no-optimizer-sharding", "error")
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


@rule("SMP023", "sharded-dp-tp-needs-pt-1.13.1", "error")
def _sdp_tp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Sharded data parallelism with tp > 1 needs SMP 1.15 on PyTorch 1.13.1."""
    sdp, fw = spec.smp.sharded_data_parallel_degree, spec.sagemaker.framework_version
    if sdp > 1 and lay.tp > 1 and fw != "1.13.1":
        yield hit(
            "sagemaker.framework_version",
            f"sharded_data_parallel_degree({sdp}) with tensor_parallel_degree({lay.tp}) on framework_version "
            f"{fw}: SMP v1 supports sharded data parallel with tensor parallel only on PyTorch 1.13.1 (SMP 1.15)",
            "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39 (or smp.tensor_parallel_degree: 1)",
        )


@rule("SMP024", "default-partition-range", "error")
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


@rule("SMP025", "memory-weight-range", "error")
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


# --------------------------------------------------------------------------------------------------- model


@rule("MOD001", "heads-divisible-by-tp", "error")
def _heads_tp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Tensor parallelism splits attention heads: num_heads % tp == 0."""
    heads = spec.model.num_heads
    if heads % lay.tp:
        best = fx.nearest([d for d in fx.divisors(heads) if fx.is_power_of_two(d)], lay.tp)
        yield hit(
            "smp.tensor_parallel_degree",
            f"num_heads({heads}) is not divisible by tensor_parallel_degree({lay.tp}): {heads} / {lay.tp} = "
            f"{heads / lay.tp:.2f} heads per rank",
            f"set smp.tensor_parallel_degree: {best}",
        )


@rule("MOD002", "hidden-divisible-by-tp", "error")
def _hidden_tp(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Tensor parallelism splits the hidden width: hidden_width % tp == 0."""
    hidden = spec.model.hidden_width
    if hidden % lay.tp:
        yield hit(
            "model.hidden_width",
            f"hidden_width({hidden}) is not divisible by tensor_parallel_degree({lay.tp})",
            f"set model.hidden_width: {fx.nearest_multiple(hidden, math.lcm(lay.tp, spec.model.num_heads))}",
        )


@rule("MOD003", "hidden-divisible-by-heads", "error")
def _hidden_heads(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Every head gets hidden_width / num_heads dimensions: hidden_width % num_heads == 0."""
    hidden, heads = spec.model.hidden_width, spec.model.num_heads
    if hidden % heads:
        yield hit(
            "model.hidden_width",
            f"hidden_width({hidden}) is not divisible by num_heads({heads}): {hidden} / {heads} = "
            f"{hidden / heads:.2f} dimensions per head",
            f"set model.hidden_width: {fx.nearest_multiple(hidden, math.lcm(lay.tp, heads))}",
        )


@rule("MOD004", "layers-cover-stages", "error")
def _layers_cover(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Every pipeline stage needs at least one transformer block: num_layers >= pp."""
    layers = spec.model.num_layers
    if layers < lay.pp:
        yield hit(
            "smp.pipeline_parallel_degree",
            f"num_layers({layers}) < pipeline_parallel_degree({lay.pp}): some stages would hold no block",
            f"set smp.pipeline_parallel_degree: {layers} (or model.num_layers: {lay.pp})",
        )


@rule("MOD005", "layers-balanced", "warning")
def _layers_balanced(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """num_layers divisible by pp keeps pipeline stages balanced."""
    layers = spec.model.num_layers
    if lay.pp <= layers and layers % lay.pp:
        best = fx.nearest_multiple(layers, lay.pp)
        yield hit(
            "model.num_layers",
            f"num_layers({layers}) is not divisible by pipeline_parallel_degree({lay.pp}): stages get "
            f"{layers // lay.pp} or {layers // lay.pp + 1} blocks, the slowest sets the pace",
            f"set model.num_layers: {best} (a multiple of pp {lay.pp})",
        )


# ------------------------------------------------------------------------------- framework, spot, data, AWS


@rule("JOB001", "framework-supported", "error")
def _framework(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """(framework_version, py_version) must be one of the SMP v1 PyTorch DLCs."""
    fw, py = spec.sagemaker.framework_version, spec.sagemaker.py_version
    want = SUPPORTED_FRAMEWORKS.get(fw)
    if want is None:
        close = difflib.get_close_matches(fw, SUPPORTED_FRAMEWORKS, n=1, cutoff=0.6)
        best = close[0] if close else "1.13.1"
        yield hit(
            "sagemaker.framework_version",
            f"framework_version {fw} has no SMP v1 DLC (supported: {', '.join(SUPPORTED_FRAMEWORKS)})",
            f"set sagemaker.framework_version: {best} (with sagemaker.py_version: {SUPPORTED_FRAMEWORKS[best]})",
        )
    elif py != want:
        yield hit(
            "sagemaker.py_version",
            f"py_version {py} does not match framework_version {fw}: its SMP v1 DLC is {want}",
            f"set sagemaker.py_version: {want}",
        )


@rule("JOB002", "smp-feature-version", "error")
def _feature_version(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Features need a minimum smdistributed-modelparallel version, fixed by framework_version."""
    fw = spec.sagemaker.framework_version
    have = fx.SMP_OF_FRAMEWORK.get(fw)
    if have is None:
        return  # JOB001 reports an unknown framework
    for field, need, used in fx.FEATURES:
        if used(spec) and have < need:
            yield hit(
                field,
                f"{field} needs smdistributed-modelparallel {need[0]}.{need[1]}+, but framework_version {fw} "
                f"ships SMP {have[0]}.{have[1]}",
                "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39",
            )


@rule("JOB003", "spot-needs-checkpoints", "warning")
def _spot_checkpoint(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Managed spot without checkpoint_s3_uri loses all progress on an interruption."""
    if spec.cluster.spot.enabled and not spec.output.checkpoint_s3_uri:
        yield hit(
            "output.checkpoint_s3_uri",
            "cluster.spot.enabled without output.checkpoint_s3_uri: a spot interruption restarts the job from step 0",
            f"set output.checkpoint_s3_uri: s3://<bucket>/{spec.name}/checkpoints",
        )


@rule("JOB004", "spot-max-wait", "error")
def _spot_wait(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Spot max_wait_hours must be >= max_run_hours (SageMaker's rule)."""
    wait, run = spec.cluster.spot.max_wait_hours, spec.cluster.max_run_hours
    if spec.cluster.spot.enabled and wait is not None and wait < run:
        yield hit(
            "cluster.spot.max_wait_hours",
            f"spot.max_wait_hours({wait:g}) < max_run_hours({run:g}): SageMaker requires max_wait >= max_run",
            f"set cluster.spot.max_wait_hours: {run + 24:g} (max_run_hours + 24, the default)",
        )


@rule("JOB005", "train-channel", "warning")
def _train_channel(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Without a `train` channel the entry point trains on synthetic tokens: fine when chosen (`data: {}`)."""
    chosen = "data" in spec.model_fields_set and not spec.data
    if "train" not in spec.data and not chosen:
        have = f"channels: {', '.join(sorted(spec.data))}" if spec.data else "no data section"
        yield hit(
            "data.train",
            f"no `train` channel in data ({have}): the job trains on synthetic tokens",
            "set data.train: s3://<bucket>/<prefix>/train (or write `data: {}` to train on synthetic tokens)",
        )


@rule("JOB006", "channel-uri", "error")
def _channel_uri(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Data channels are s3://bucket/prefix, local:path or a file path."""
    for channel, uri in spec.data.items():
        if fx.channel_uri_ok(uri):
            continue
        yield hit(
            ("data", channel),
            f"data.{channel} {uri!r} is neither an S3 URI (s3://bucket/prefix) nor a local path",
            f"set data.{channel}: s3://<bucket>/<prefix>/{channel} (or local:<path>)",
        )


@rule("JOB007", "estimator-kwargs-not-owned", "error")
def _owned_kwargs(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """extra_estimator_kwargs must not set keys that smlaunch renders itself."""
    for key in spec.sagemaker.extra_estimator_kwargs:
        if key in fx.OWNED_ESTIMATOR_KWARGS:
            where = fx.OWNED_ESTIMATOR_KWARGS[key]
            section = f"set it under {where}" if where.startswith("`") else f"it comes from {where}"
            yield hit(
                ("sagemaker", "extra_estimator_kwargs", key),
                f"`{key}` is controlled by smlaunch ({section})",
                f"remove sagemaker.extra_estimator_kwargs.{key}; {section}",
            )


@rule("JOB008", "no-secrets-in-environment", "warning")
def _env_secrets(spec: JobSpec, lay: Layout) -> Iterator[Hit]:
    """Environment variables are visible in DescribeTrainingJob: no secrets there."""
    for name, value in spec.sagemaker.environment.items():
        reason = fx.secret_reason(name, value)
        if reason:
            yield hit(
                ("sagemaker", "environment", name),
                f"sagemaker.environment.{name} looks like a secret ({reason}); job environment variables "
                "are stored in plain text and shown by DescribeTrainingJob and the console",
                f"remove sagemaker.environment.{name}; keep the value in AWS Secrets Manager or SSM Parameter "
                "Store and read it in the job (grant sagemaker.role access)",
            )


# -------------------------------------------------------------------------------------------------- memory


@rule("MEM001", "memory-fits", "error")
def _memory(spec: JobSpec, lay: Layout) -> Iterable[Finding]:
    """The per-rank memory estimate fits the GPU (smlaunch.estimate; nothing while it is not installed)."""
    try:
        from smlaunch.estimate import memory_findings
    except ModuleNotFoundError as exc:
        if exc.name != "smlaunch.estimate":
            raise
        return []
    return memory_findings(spec)
