"""``smlaunch plan``: every valid configuration of a model on a cluster, on every engine that runs there, fastest
first.

Each engine (``--engine smp|torch|auto``; auto: :func:`smlaunch.engines.engines_for` the instance) is searched with
its own runtime in the cost model: SMP v1 in fp16, the PyTorch-native engine in bf16. The search walks tp
(powers of two inside a node), pp (divisors of the GPUs per host), optimizer sharding,
prescaled batch, batch size (to reach ``--global-batch``, or a ladder), microbatches, active microbatches,
checkpointing strategy and offloading. It prunes early: model states are checked once per (tp, pp, sharding),
combinations that the rulebook would flag are never generated, and the full rulebook
(:func:`smlaunch.spec.rules.check`) runs only on the candidates that reach the top K. Ranking: estimated
tokens/s, then less memory.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from smlaunch.catalog import Instance
from smlaunch.costmodel import HEADROOM, Estimate, find_instance, job_time_of, usable_gib
from smlaunch.costmodel.memory import GIB, Knobs, estimate_memory, model_state_bytes
from smlaunch.costmodel.plan_result import Option, PlanCandidate, PlanResult
from smlaunch.costmodel.throughput import Run, estimate_throughput
from smlaunch.engines import BY_NAME, ENGINES, engines_for
from smlaunch.errors import PlanError
from smlaunch.layout import Layout, batch_readers, layout_of

STRATEGIES = ("none", "each", "group_2", "group_4", "contiguous")
BATCH_LADDER = (1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 56, 64, 96, 128)
"""Per-rank (or per model-parallel group, prescaled) batch sizes tried when no --global-batch is given."""
MAX_MICROBATCHES = 32
DEFAULT_MAX_STEPS = 1000
LAYOUT_SECTIONS = ("model", "cluster", "smp", "training")
"""Warnings on these sections disqualify a candidate (plan proposes clean layouts); others (data) do not."""


def resolve_model(model: str | dict, seq_length: int | None) -> dict[str, Any]:
    """A preset name, a job.yaml (its ``model`` section) or a YAML of model keys -> the model section."""
    from smlaunch.catalog import PRESETS

    if isinstance(model, dict):
        section = dict(model.get("model", model))
    elif model in PRESETS:
        section = {"preset": model}
    else:
        section = _model_from_file(model)
    if seq_length is not None:
        section["seq_length"] = seq_length
    from smlaunch.spec.models import ModelSpec

    try:
        ModelSpec.model_validate(section)
    except Exception as exc:  # pydantic ValidationError
        from smlaunch.errors import SpecError

        raise SpecError(f"--model {model}: not a valid model section: {exc}") from None
    return section


def _model_from_file(path: str) -> dict[str, Any]:
    from pathlib import Path

    from smlaunch.catalog import PRESETS
    from smlaunch.errors import SpecError
    from smlaunch.spec.yaml_read import read_mapping

    if not Path(path).is_file():
        raise SpecError(f"--model {path!r}: neither a preset ({', '.join(PRESETS)}) nor a file")
    data, _, _ = read_mapping(path)  # the spec loader's reader (tabs, UTF-16, aliases: its clear errors)
    model = data.get("model", data)
    if not isinstance(model, dict):
        raise SpecError(f"--model {path}: its model section is {type(model).__name__}, not a mapping of model keys")
    return dict(model)


ENGINE_PRECISION = {"smp": "fp16", "torch": "bf16"}
"""What a plan trains in: SMP v1's reference configurations use fp16; the native engine's GPUs all have bf16."""


def _base_knobs(section: dict[str, Any], engine: str = "smp") -> Knobs:
    from smlaunch.spec.models import ModelSpec

    m = ModelSpec.model_validate(section)
    return Knobs(
        m.num_layers, m.hidden_width, m.num_heads, m.seq_length, m.vocab_size,
        precision=ENGINE_PRECISION[engine], runtime=BY_NAME[engine].runtime,
    )  # fmt: skip


def plan_engines(instance: Instance, engine: str) -> list[str]:
    """The engines a plan searches: ``engine``, or with ``auto`` every engine that runs on ``instance``."""
    runs = engines_for(instance.name)
    if engine == "auto":
        if not runs:
            raise PlanError(f"no engine runs on {instance.name}", fix="pick an instance of SMP v1 or of engine: torch")
        return runs
    if engine not in ENGINES:
        raise PlanError(f"--engine {engine}: not an engine", fix=f"use one of {', '.join(ENGINES)} or auto")
    if engine not in runs:
        other = f"--engine {runs[0]}, which runs on it" if runs else "another instance type"
        raise PlanError(f"engine {engine} does not run on {instance.name}", fix=f"use {other}")
    return [engine]


def _powers_of_two(limit: int) -> list[int]:
    return [2**i for i in range(int(math.log2(limit)) + 1)] if limit >= 1 else [1]


def _divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def _microbatch_counts(batch: int, pp: int, *, exhaustive: bool, accumulate: bool = False) -> list[int]:
    """Microbatch counts: without a pipeline 1, or with ``accumulate`` (the native engine's gradient accumulation
    over microbatches) the powers of two that divide the batch; else divisors of the batch >= pp (powers of two
    and multiples of pp only when the batch itself is free to vary, which keeps the ladder search small)."""
    if pp == 1:
        return [m for m in _divisors(batch, MAX_MICROBATCHES) if m & (m - 1) == 0] if accumulate else [1]
    counts = [m for m in _divisors(batch, MAX_MICROBATCHES) if m >= pp]
    if not exhaustive:
        counts = [m for m in counts if m & (m - 1) == 0 or m % pp == 0]
    return counts


def _actives(pp: int, m: int) -> list[int]:
    if pp == 1:
        return [1]
    return sorted({a for a in (1, 2, pp, pp + 2, m) if 1 <= a <= m})


PLAN_HEADROOM = HEADROOM
"""The planner keeps the same margin as the memory verdict (:data:`smlaunch.costmodel.HEADROOM`)."""


def enumerate_options(
    base: Knobs, instance: Instance, num_nodes: int, *, global_batch: int | None, max_steps: int
) -> tuple[list[Option], int]:
    """Every option that passes the layout arithmetic and fits; and how many combinations were considered."""
    gpus = instance.num_gpus
    world = gpus * num_nodes
    capacity = usable_gib(instance)
    options: list[Option] = []
    considered = 0
    for tp in _powers_of_two(gpus):
        if base.num_heads % tp or base.hidden_width % tp or world % tp:
            continue
        for pp in _divisors(gpus, gpus):
            if (world // tp) % pp or pp > base.num_layers or base.num_layers % pp:
                continue
            rdp = world // (tp * pp)
            for shard in (False, True) if rdp > 1 else (False,):
                k0 = replace(base, tp=tp, pp=pp, rdp=rdp, shard_optimizer_state=shard)
                if sum(model_state_bytes(k0).values()) / GIB >= capacity:
                    considered += 1
                    continue
                for prescaled in (True,) if (tp > 1 and pp > 1) else ((False, True) if tp > 1 else (False,)):
                    k1 = replace(k0, prescaled_batch=prescaled)
                    per = batch_readers(world=world, tp=tp, pp=pp, prescaled=prescaled)
                    considered += _walk_batches(
                        k1,
                        per=per,
                        global_batch=global_batch,
                        instance=instance,
                        num_nodes=num_nodes,
                        world=world,
                        max_steps=max_steps,
                        options=options,
                    )
    return options, considered


def _batches(per: int, global_batch: int | None) -> list[int]:
    if global_batch is None:
        return list(BATCH_LADDER)
    return [global_batch // per] if global_batch % per == 0 and global_batch >= per else []


def _walk_batches(k1, *, per, global_batch, instance, num_nodes, world, max_steps, options) -> int:
    considered = 0
    capacity = usable_gib(instance)
    for batch in _batches(per, global_batch):
        fitted, tried = False, False
        micro = _microbatch_counts(batch, k1.pp, exhaustive=global_batch is not None, accumulate=k1.runtime == "native")
        for m in micro:
            if k1.pp > 1 and m < k1.pp:
                continue
            for active in _actives(k1.pp, m):
                for strategy in STRATEGIES:
                    # offloading moves only what exceeds the 2 resident microbatches (memory.py): skip where idle
                    for offload in (False, True) if (strategy != "none" and active > 2) else (False,):
                        considered += 1
                        tried = True
                        k = replace(
                            k1,
                            microbatch_size=batch // m,
                            microbatches=m,
                            active_microbatches=active,
                            checkpointing=strategy,
                            offload_activations=offload,
                        )
                        mem = estimate_memory(k)
                        if mem.total_gib > capacity:
                            continue
                        fitted = True
                        lay = _layout(k, instance, num_nodes, batch)
                        run = Run(instance, num_nodes, world, lay.tokens_per_step, max_steps)
                        per_mb = mem.host_offloaded_gib * GIB / max(k.in_flight - 2, 1)
                        tput = estimate_throughput(k, run, offloaded_bytes_per_mb=per_mb)
                        job = job_time_of(k, lay, tput, max_steps)
                        options.append(Option(Estimate(k, lay, instance, mem, tput, job), batch))
        if tried and not fitted and global_batch is None:
            break  # memory grows with the batch: larger ones cannot fit either
    return considered


def spec_dict(option: Option, *, model: dict, instance_type: str, num_nodes: int, max_steps: int) -> dict:
    """The job.yaml content of ``option`` (plain dict shaped like the spec)."""
    k = option.knobs
    smp: dict[str, Any] = {
        "pipeline_parallel_degree": k.pp,
        "tensor_parallel_degree": k.tp,
        "microbatches": k.microbatches,
    }
    if k.pp > 1:
        smp["active_microbatches"] = k.active_microbatches
    smp.update({"prescaled_batch": k.prescaled_batch, "shard_optimizer_state": k.shard_optimizer_state})
    if option.engine == "smp":
        smp["ddp"] = True  # SMP v1 averages gradients only with ddp; the native engine always does (ENG001)
    smp[k.precision] = True
    if k.offload_activations:
        smp["offload_activations"] = True
    name = f"{model.get('preset', 'gpt2')}-plan".replace(".", "-")
    return {
        "name": name[:32],
        **({"engine": option.engine} if option.engine != "smp" else {}),
        "model": dict(model),
        "cluster": {"instance_type": instance_type, "instance_count": num_nodes},
        "smp": smp,
        "training": {
            "batch_size": option.batch_size,
            "max_steps": max_steps,
            "activation_checkpointing": k.checkpointing,
        },
        "data": {},  # synthetic tokens until the user names a train channel (JOB005 otherwise warns)
    }


def _layout(k: Knobs, instance: Instance, num_nodes: int, batch: int) -> Layout:
    return layout_of(
        instance=instance,
        num_nodes=num_nodes,
        gpus_per_node=instance.num_gpus,
        tp=k.tp,
        pp=k.pp,
        microbatches=k.microbatches,
        active_microbatches=k.active_microbatches,
        prescaled_batch=k.prescaled_batch,
        batch_size=batch,
        seq_length=k.seq_length,
    )


DEFAULT_TOKENS_PER_STEP = 2**19
"""Tokens per optimizer step when neither the spec nor the reference table fixes the batch: GPT-3's 0.5M-token
batch for its smaller models (Brown et al. 2020, Table 2.1)."""
REFERENCE_GLOBAL_BATCH = {"gpt2-10b": 32 * 40, "gpt2-30b": 16 * 32, "gpt2-60b": 16 * 56}
"""The best-practices table's samples per step (rdp x batch_size, prescaled): smp-best-practices.txt."""
MAX_RULE_CHECKS = 400
"""Candidates the rulebook sees before the planner gives up and says which rules removed them."""


def default_global_batch(section: dict[str, Any]) -> int:
    """The batch every candidate trains when the caller names none: the reference table's, else 0.5M tokens."""
    preset = section.get("preset")
    if preset in REFERENCE_GLOBAL_BATCH and "seq_length" not in section:
        return REFERENCE_GLOBAL_BATCH[preset]
    from smlaunch.spec.models import ModelSpec

    return max(1, DEFAULT_TOKENS_PER_STEP // ModelSpec.model_validate(section).seq_length)


def plan(
    model: str | dict,
    *,
    instance_type: str,
    instance_count: int,
    seq_length: int | None = None,
    global_batch: int | None = None,
    vary_batch: bool = False,
    top: int = 5,
    max_steps: int = DEFAULT_MAX_STEPS,
    engine: str = "auto",
) -> PlanResult:
    """Rank every valid configuration of ``model`` on ``instance_count`` x ``instance_type`` by whole-job time, then
    cost, across the engines of ``engine`` (``smp``, ``torch``, or ``auto``: every engine that runs there).

    Like with like: every candidate trains ``global_batch`` samples per step (default :func:`default_global_batch`);
    ``vary_batch`` lets the batch size vary instead (the fastest per token wins, whatever its batch).
    """
    instance = find_instance(instance_type)
    if instance is None:
        raise PlanError(f"no GPU data for instance type {instance_type!r}", fix="see `smlaunch schema` for types")
    engines = plan_engines(instance, engine)
    section = resolve_model(model, seq_length)
    if global_batch is None and not vary_batch:
        global_batch = default_global_batch(section)
    options, considered = [], 0
    for name in engines:
        found, tried = enumerate_options(
            _base_knobs(section, name), instance, instance_count, global_batch=global_batch, max_steps=max_steps
        )
        options += found
        considered += tried
    if not options:
        raise PlanError(
            _nothing_fits(section, instance, instance_count, global_batch),
            fix="add instances, pick an instance with more GPU memory, or change the batch (--global-batch N, or "
            "--vary-batch)",
        )
    if vary_batch:  # different batches do different work per step: the fastest per token wins
        options.sort(key=lambda o: (-o.tokens_per_s, o.memory_gib))
    else:
        options.sort(key=lambda o: (o.estimate.time_s, o.estimate.cost_usd or 0.0, o.memory_gib, o.engine))
    chosen = _shortlist(options, section=section, instance=instance, count=instance_count, max_steps=max_steps, top=top)
    from smlaunch.costmodel.explain import explain

    return PlanResult(chosen, options, considered, explain(chosen[0], options, instance))


def _shortlist(options, *, section, instance, count, max_steps, top) -> list[PlanCandidate]:
    """The first ``top`` distinct options that the rulebook passes without layout warnings."""
    chosen: list[PlanCandidate] = []
    seen: set[str] = set()
    removed: dict[str, list] = {}
    for checked, option in enumerate(options):
        if checked >= MAX_RULE_CHECKS:
            break
        data = spec_dict(option, model=section, instance_type=instance.name, num_nodes=count, max_steps=max_steps)
        key = _same_configuration(option, data)
        if key in seen:
            continue  # the same configuration written another way, or a feature that changes nothing here
        seen.add(key)
        findings = _rule_findings(data)
        if findings:
            for f in findings:
                removed.setdefault(f.rule, [0, f])[0] += 1
            continue
        chosen.append(PlanCandidate(data, option.estimate))
        if len(chosen) >= top:
            break
    if not chosen:
        raise PlanError(_removed_by(removed, len(seen)), fix=_removed_fix(removed))
    return chosen


def _same_configuration(option: Option, data: dict) -> str:
    """Options that are one configuration in effect share a key: same degrees, microbatches, sharding and batch,
    and the estimate shows the rest changes nothing (more microbatches in flight, offloading or a checkpoint group
    that cost or save nothing here). Enumeration puts the plainer spelling first, so it is the one kept."""
    smp = data["smp"]
    e = option.estimate
    return repr(
        (
            option.engine, smp["tensor_parallel_degree"], smp["pipeline_parallel_degree"], smp["microbatches"],
            smp["prescaled_batch"], smp["shard_optimizer_state"], data["training"]["batch_size"],
            round(e.memory.total_gib, 2), round(e.throughput.tokens_per_s),
        )
    )  # fmt: skip


def _rule_findings(spec_data: dict) -> list:
    """What disqualifies a shortlisted candidate: rulebook errors, or warnings on its layout sections.

    Rules only: the candidate's estimate is the one the search made (the cost model runs once per candidate).
    """
    from smlaunch.spec.load import load_spec
    from smlaunch.spec.rules import check

    report = check(load_spec(spec_data))
    return report.errors or [w for w in report.warnings if w.field.split(".")[0] in LAYOUT_SECTIONS]


def _removed_by(removed: dict[str, list], distinct: int) -> str:
    reasons = "; ".join(
        f"{f.message} ({rule}, {n} of {distinct})" for rule, (n, f) in sorted(removed.items(), key=lambda kv: -kv[1][0])
    )
    return f"every configuration that fits breaks a rule: {reasons}"


def _removed_fix(removed: dict[str, list]) -> str:
    top_rule = max(removed.items(), key=lambda kv: kv[1][0])[1][1] if removed else None
    return top_rule.fix if top_rule is not None else "add instances or pick another instance type"


def _nothing_fits(section: dict, instance: Instance, count: int, global_batch: int | None) -> str:
    what = section.get("preset") or f"{section.get('num_layers')}-layer model"
    batch = f" at global batch {global_batch}" if global_batch else ""
    return (
        f"no configuration of {what}{batch} fits {count} x {instance.name} "
        f"({instance.num_gpus} x {instance.gpu.memory_gib:.0f} GiB)"
    )
