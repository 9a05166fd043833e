"""Rules, spec fields and schema from the SMP v1 docs audit (shared/reference/smp-v1-audit.md §1-§3).

Every rule added or extended here has a failing and a passing case (FAILING / PASSING below, in the format of
test_rules.py, whose coverage test counts both files). Then: the printed arithmetic of every message over random
layouts (hypothesis), SpecErrors for sections and limits, fp16_params, final_save, and the JSON Schema against
the shipped templates.
"""

from __future__ import annotations

import ast
import copy
import itertools
import math
import operator
import re

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from smlaunch.catalog import INSTANCES
from smlaunch.errors import SpecError
from smlaunch.layout import Layout, resolve
from smlaunch.spec.load import OPTIONAL_SECTIONS, load_spec
from smlaunch.spec.models import PLACEMENTS, JobSpec, SmpSpec
from smlaunch.spec.rules import RULES, check, rule_ids
from smlaunch.spec.rules.arith import FRAMEWORK_ALIASES, full_framework_version
from smlaunch.spec.schema import json_schema
from smlaunch.templates import STARTERS, starter
from tests.unit.test_rules import BASE, NO_TP, OFFLOAD, SDP, run, spec_of

NO_SHARDING_FEATURES = {**NO_TP, "smp.prescaled_batch": False}

# (rule, overrides, severity, field, part of the message, fix)
FAILING = [
    (  # audit DEFECT C: pp > 1 with several replicas mixes model and data parallelism
        "SMP016",
        {**NO_TP, "smp.partitions": 8, "smp.ddp": False, "cluster.instance_count": 2},
        "error",
        "smp.ddp",
        "pipeline_parallel_degree(8) with rdp(2) = world(16) / (pp(8) x tp(1)) model replicas mixes model and "
        "data parallelism, which requires ddp",
        "set smp.ddp: true",
    ),
    (  # GEN offload_activations: microbatches AND active_microbatches > 1
        "SMP012",
        {**OFFLOAD, "smp.active_microbatches": 1},
        "error",
        "smp.active_microbatches",
        "offload_activations with active_microbatches(1) of microbatches(4)",
        "set smp.active_microbatches: 2 (or remove it: the default is min(pp + 2, microbatches) = min(4, 4) = 4), "
        "or smp.offload_activations: false",
    ),
    (  # audit DEFECT B
        "SMP026",
        {"smp.auto_partition": False, "smp.partitions": 2},
        "error",
        "smp.auto_partition",
        "auto_partition false with pipeline_parallel_degree(2): smlaunch's entry point places no module in an "
        "smp.partition context, so SMP puts all num_layers(48) blocks, the embedding and the head on "
        "default_partition(0); the other 1 stage(s) hold nothing",
        "set smp.auto_partition: true",
    ),
    (
        "SMP026",
        {"smp.auto_partition": False, "smp.default_partition": 1, "smp.partitions": 2},
        "error",
        "smp.auto_partition",
        "on default_partition(1)",
        "set smp.auto_partition: true",
    ),
    (  # one replica, tp 8: sharding covers only the replicated embedding and head
        "SMP027",
        {"cluster.instance_count": 1},
        "warning",
        "smp.shard_optimizer_state",
        "shard_optimizer_state with rdp(1) = world(8) / (pp(1) x tp(8)): the tensor-parallel blocks' optimizer "
        "state has no other replica to shard over; only the replicated embedding and head, (vocab_size(50000) + "
        "seq_length(512)) x hidden_width(7168) = 362,070,016 of 29,961,566,208 parameters (1.2%), are sharded, "
        "over dp(8) = world(8) / pp(1): it saves little memory",
        "set smp.shard_optimizer_state: false (or cluster.instance_count: 2 for rdp 2)",
    ),
    (
        "CLU006",
        {"cluster.instance_type": "ml.p3dn.24xlarge", "smp.bf16": True},
        "error",
        "smp.bf16",
        "bf16 on ml.p3dn.24xlarge (8 x V100-SXM2-32GB): the V100-SXM2-32GB has no bfloat16 support",
        "set smp.bf16: false and smp.fp16: true",
    ),
    (
        "CLU006",
        {"cluster.instance_type": "ml.g4dn.12xlarge", "smp.tensor_parallel_degree": 4, "smp.bf16": True},
        "error",
        "smp.bf16",
        "bf16 on ml.g4dn.12xlarge (4 x T4): the T4 has no bfloat16 support (SMP v1 instances with it: "
        "ml.p4d.24xlarge, ml.p4de.24xlarge)",
        "set smp.bf16: false and smp.fp16: true",
    ),
    (  # audit GAP G
        "JOB009",
        {"training.checkpoint_every_steps": 50, "output.checkpoint_s3_uri": None},
        "warning",
        "output.checkpoint_s3_uri",
        "checkpoint_every_steps(50) with max_steps(100): 2 checkpoint(s) written to /opt/ml/checkpoints, which "
        "SageMaker copies to S3 only with output.checkpoint_s3_uri: they are lost when the job ends",
        "set output.checkpoint_s3_uri: s3://<bucket>/gpt2-30b/checkpoints",
    ),
    (  # the SDK's alias: "1.12" is 1.12.1, whose DLC is py38
        "JOB001",
        {"sagemaker.framework_version": "1.12"},
        "error",
        "sagemaker.py_version",
        "py_version py39 does not match framework_version 1.12 (the SDK's alias for 1.12.1): its SMP v1 DLC is py38",
        "set sagemaker.py_version: py38",
    ),
    (  # "2.0" is 2.0.1, not the SMP v1 DLC 2.0.0
        "JOB001",
        {"sagemaker.framework_version": "2.0", "sagemaker.py_version": "py310"},
        "error",
        "sagemaker.framework_version",
        "framework_version 2.0 (the SDK's alias for 2.0.1) has no SMP v1 DLC",
        "set sagemaker.framework_version: 2.0.0 (with sagemaker.py_version: py310)",
    ),
    (
        "JOB002",
        {"sagemaker.framework_version": "1.9", "sagemaker.py_version": "py38"},
        "error",
        "smp.tensor_parallel_degree",
        "smp.tensor_parallel_degree needs smdistributed-modelparallel 1.6+, but framework_version 1.9 (the SDK's "
        "alias for 1.9.1) ships SMP 1.4",
        "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39",
    ),
    (
        "JOB002",
        {
            **NO_SHARDING_FEATURES,
            "smp.fp16_params": True,
            "sagemaker.framework_version": "1.9.1",
            "sagemaker.py_version": "py38",
        },
        "error",
        "smp.fp16_params",
        "smp.fp16_params needs smdistributed-modelparallel 1.6+, but framework_version 1.9.1 ships SMP 1.4",
        "set sagemaker.framework_version: 1.13.1 and sagemaker.py_version: py39",
    ),
]

# (rule, overrides): the boundary that must pass
PASSING = [
    ("SMP016", {**NO_TP, "smp.partitions": 8, "smp.ddp": False, "cluster.instance_count": 1}),  # rdp 1: no DP
    ("SMP016", {**NO_TP, "smp.partitions": 8, "smp.ddp": True, "cluster.instance_count": 2}),
    ("SMP012", {**OFFLOAD, "smp.active_microbatches": 2}),
    ("SMP015", {"cluster.instance_count": 1}),  # rdp 1 but dp 8: SMP027's warning, not this error
    ("SMP026", {"smp.auto_partition": False}),  # AWS's 30B notebook cell: auto_partition False, partitions 1
    ("SMP026", {"smp.partitions": 2}),
    ("SMP027", {"cluster.instance_count": 2}),
    ("SMP027", {"cluster.instance_count": 1, "smp.shard_optimizer_state": False}),
    ("CLU006", {"smp.bf16": True}),  # A100
    ("CLU006", {"cluster.instance_type": "ml.p3dn.24xlarge", "smp.fp16": True}),
    ("JOB009", {"training.checkpoint_every_steps": 50}),  # BASE sets output.checkpoint_s3_uri
    ("JOB009", {"training.checkpoint_every_steps": 0, "output.checkpoint_s3_uri": None}),
    (  # a local channel: a `smlaunch local` spec, whose checkpoints stay in the run directory
        "JOB009",
        {"training.checkpoint_every_steps": 25, "output.checkpoint_s3_uri": None, "data.train": "local:sample"},
    ),
    ("JOB001", {"sagemaker.framework_version": "1.12", "sagemaker.py_version": "py38"}),
    ("JOB001", {"sagemaker.framework_version": "1.13"}),
    ("JOB002", {"sagemaker.framework_version": "1.13"}),
    ("JOB002", {"smp.fp16_params": True, "sagemaker.framework_version": "1.8.1", "sagemaker.py_version": "py36"}),
    ("SMP023", {**SDP, "sagemaker.framework_version": "1.13"}),
]


@pytest.mark.parametrize("case", FAILING, ids=[f"{c[0]}-{i}" for i, c in enumerate(FAILING)])
def test_rule_fails(case):
    rule_id, overrides, severity, field, message, fix = case
    findings = run(rule_id, overrides)
    match = [f for f in findings if f.field == field]
    assert match, (rule_id, [f.field for f in findings])
    found = match[0]
    assert (found.rule, found.severity) == (rule_id, severity)
    assert message in found.message
    assert found.fix == fix
    assert RULES[rule_id].severity == severity


@pytest.mark.parametrize(("rule_id", "overrides"), PASSING, ids=[f"{c[0]}-{i}" for i, c in enumerate(PASSING)])
def test_rule_passes(rule_id, overrides):
    assert run(rule_id, overrides) == []


def test_every_rule_here_is_reported_by_check_on_its_failing_case():
    """Through the registry (``check``), in this test alone: no state shared with other tests, no file order."""
    missed = [
        (rule_id, overrides)
        for rule_id, overrides, *_ in FAILING
        if rule_id not in {f.rule for f in check(spec_of(overrides)).findings}
    ]
    assert missed == []


def test_every_rule_has_a_failing_and_a_passing_case_across_both_files():
    from tests.unit import test_api_limits as api
    from tests.unit import test_rules as first
    from tests.unit import test_rules_engine as engine
    from tests.unit import test_rules_script as script

    assert {c[0] for c in first.FAILING + FAILING + engine.FAILING + script.FAILING + api.FAILING} == set(rule_ids())
    assert {c[0] for c in first.PASSING + PASSING + engine.PASSING + script.PASSING + api.PASSING} == set(rule_ids())
    ours = {c[0] for c in FAILING}
    assert ours <= {c[0] for c in PASSING}


def test_every_new_rule_cites_its_source():
    for rule_id in ("SMP012", "SMP015", "SMP016", "SMP026", "SMP027", "CLU006", "JOB009"):
        doc = RULES[rule_id].func.__doc__ or ""
        assert "Source" in doc, rule_id


def test_the_reference_layout_at_one_instance_prints_no_false_rdp():
    """60B's tp 8 x pp 2 on one p4d: world 8 < 16, so SMP003 alone reports it (no `rdp(1) = world(8) / (16)`)."""
    spec = load_spec(yaml.safe_load(starter("gpt2-60b")), {"cluster.instance_count": 1})
    report = check(spec)
    assert "SMP003" in [f.rule for f in report.errors]
    assert not any("rdp(1) = world(8)" in f.message for f in report.findings)


# --- item 10: printed arithmetic matches the layout ------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<named>[a-z_]+)\((?P<value>\d[\d,]*(?:\.\d+)?)\)"
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?![\d.])|\d+(?:\.\d+)?)"
    r"|(?P<op>(?<![\w.])x(?![\w.])|[*/+\-])"
    r"|(?P<paren>[()])"
    r"|(?P<eq>=)"
    r"|(?P<ws>\s+)"
    r"|(?P<other>.)"
)
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def layout_values(spec: JobSpec, lay: Layout) -> dict[str, set[float]]:
    """What ``name(value)`` may print for each name the rules use for a layout or spec number."""
    smp, model = spec.smp, spec.model
    values = {
        "world": lay.world,
        "tp": lay.tp,
        "tensor_parallel_degree": lay.tp,
        "pp": lay.pp,
        "pipeline_parallel_degree": lay.pp,
        "dp": lay.dp,
        "rdp": lay.rdp,
        "instance_count": lay.num_nodes,
        "processes_per_host": lay.gpus_per_node,
        "microbatches": lay.microbatches,
        "batch_size": lay.batch_size,
        "num_layers": model.num_layers,
        "num_heads": model.num_heads,
        "hidden_width": model.hidden_width,
        "vocab_size": model.vocab_size,
        "seq_length": model.seq_length,
        "sharded_data_parallel_degree": smp.sharded_data_parallel_degree,
        "default_partition": smp.default_partition or 0,
        "checkpoint_every_steps": spec.training.checkpoint_every_steps,
        "max_steps": spec.training.max_steps,
    }
    found = {name: {float(v)} for name, v in values.items()}
    found["active_microbatches"] = {float(lay.active_microbatches), float(smp.active_microbatches or 0)}
    return found


def _evaluate(text: str) -> float | None:
    text = text.strip()
    if not text or text[0] in "*/+-" or text[-1] in "*/+-(":
        return None
    for candidate in (text, text.lstrip("("), text.rstrip(")")):
        try:
            node = ast.parse(candidate, mode="eval").body
            return _eval_node(node)
        except (SyntaxError, ValueError, ZeroDivisionError):
            continue
    return None


def _eval_node(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval_node(node.left), _eval_node(node.right))
    raise ValueError(ast.dump(node))


def printed_arithmetic(message: str) -> tuple[list[tuple[str, float]], list[tuple[str, str, float, float]]]:
    """The ``name(value)`` pairs of a message and its equations as (left, right, left value, right value)."""
    named: list[tuple[str, float]] = []
    runs: list[list[tuple[str, str, str]]] = [[]]  # (kind, raw text, arithmetic text)
    for match in _TOKEN.finditer(message):
        kind = next(k for k in ("named", "num", "op", "paren", "eq", "ws", "other") if match.group(k) is not None)
        if kind == "named":
            value = match.group("value").replace(",", "")
            named.append((match.group("named"), float(value)))
            runs[-1].append((kind, match.group(0), value))
        elif kind == "num":
            runs[-1].append((kind, match.group(0), match.group(0).replace(",", "")))
        elif kind == "op":
            runs[-1].append((kind, match.group(0), "*" if match.group(0) == "x" else match.group(0)))
        elif kind in ("paren", "eq", "ws"):
            runs[-1].append((kind, match.group(0), match.group(0)))
        else:
            runs.append([])
    equations = []
    for tokens in runs:
        if not any(kind == "eq" for kind, _, _ in tokens):
            continue
        sides: list[tuple[str, str]] = [("", "")]
        for kind, raw, arith in tokens:
            if kind == "eq":
                sides.append(("", ""))
            else:
                sides[-1] = (sides[-1][0] + raw, sides[-1][1] + arith)
        for (left_raw, left), (right_raw, right) in itertools.pairwise(sides):
            a, b = _evaluate(left), _evaluate(right)
            if a is not None and b is not None:
                equations.append((left_raw.strip(), right_raw.strip(), a, b))
    return named, equations


def _close(a: float, b: float, left: str, right: str) -> bool:
    rounded = "." in left or "." in right  # a printed :.2f result
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.006 if rounded else 1e-9)


def test_printed_arithmetic_parser():
    named, equations = printed_arithmetic("shard with rdp(1) = world(8) / (pp(2) x tp(8)): no; 34 / 4 = 8.50 ok")
    assert named == [("rdp", 1.0), ("world", 8.0), ("pp", 2.0), ("tp", 8.0)]
    assert [(a, b) for _, _, a, b in equations] == [(1.0, 0.5), (8.5, 8.5)]
    _, eqs = printed_arithmetic("(vocab_size(50000) + seq_length(512)) x hidden_width(7168) = 362,070,016 of")
    assert [(a, b) for _, _, a, b in eqs] == [(362070016.0, 362070016.0)]
    assert printed_arithmetic("(the default is pp + 2 = 4, also capped)")[1] == []


RANDOM_LAYOUT = st.fixed_dictionaries(
    {
        "cluster.instance_type": st.sampled_from(sorted(INSTANCES)),
        "cluster.instance_count": st.integers(1, 40),
        "cluster.processes_per_host": st.none() | st.integers(1, 16),
        "smp.tensor_parallel_degree": st.sampled_from([1, 2, 3, 4, 6, 8, 16]),
        "smp.partitions": st.integers(1, 8),
        "smp.microbatches": st.integers(1, 8),
        "smp.active_microbatches": st.none() | st.integers(1, 10),
        "smp.prescaled_batch": st.booleans(),
        "smp.shard_optimizer_state": st.booleans(),
        "smp.ddp": st.booleans(),
        "smp.offload_activations": st.booleans(),
        "smp.fp16": st.booleans(),
        "smp.bf16": st.booleans(),
        "smp.auto_partition": st.booleans(),
        "smp.default_partition": st.none() | st.integers(-1, 4),
        "smp.placement_strategy": st.sampled_from(PLACEMENTS),
        "smp.sharded_data_parallel_degree": st.sampled_from([1, 2, 4, 8, 48]),
        "model.preset": st.sampled_from(["gpt2-small", "gpt2-xl", "gpt2-30b", "gpt2-60b"]),
        "model.num_layers": st.none() | st.integers(1, 80),
        "model.num_heads": st.none() | st.sampled_from([4, 12, 25, 28, 64]),
        "training.batch_size": st.integers(1, 128),
        "training.activation_checkpointing": st.sampled_from(["none", "each"]),
        "training.checkpoint_every_steps": st.integers(0, 60),
        "output.checkpoint_s3_uri": st.none() | st.just("s3://bucket/c"),
        "sagemaker.framework_version": st.sampled_from(["1.13.1", "1.13", "1.12", "2.0.0", "2.0", "1.9.1"]),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RANDOM_LAYOUT)
def test_every_printed_value_and_equation_matches_the_layout(overrides):
    base = copy.deepcopy(BASE)
    base["model"] = {}
    overrides = {k: v for k, v in overrides.items() if v is not None or k.startswith("output.")}
    try:
        spec = spec_of(overrides, base)
    except SpecError:
        assume(False)
    lay = resolve(spec)
    allowed = layout_values(spec, lay)
    for finding in check(spec, lay=lay).findings:
        named, equations = printed_arithmetic(finding.message)
        for name, value in named:
            if name in allowed:
                assert value in allowed[name], (finding.rule, name, value, finding.message)
        for left, right, a, b in equations:
            assert _close(a, b, left, right), (finding.rule, f"{left} = {right}", finding.message)


# --- spec fields and loader messages ---------------------------------------------------------------------------


def test_fp16_params_is_accepted_and_sent_only_when_set():
    assert SmpSpec.model_fields["fp16_params"].default is False  # GEN: bool, default False, >= v1.6
    assert "fp16_params" not in spec_of().smp.to_mp_parameters()
    assert spec_of({"smp.fp16_params": True}).smp.to_mp_parameters()["fp16_params"] is True
    assert spec_of({"smp.fp16_params": False}).smp.to_mp_parameters()["fp16_params"] is False


def test_max_run_hours_is_at_most_28_days():
    assert spec_of({"cluster.max_run_hours": 672}).cluster.max_run_hours == 672
    with pytest.raises(SpecError) as err:
        load_spec(copy.deepcopy(BASE), ["cluster.max_run_hours=700"])
    text = str(err.value)
    assert "cluster.max_run_hours" in text and "less than or equal to 672 (got 700)" in text
    assert "MaxRuntimeInSeconds <= 2,419,200 s" in text and "fix: set cluster.max_run_hours: 672" in text
    assert json_schema()["$defs"]["ClusterSpec"]["properties"]["max_run_hours"]["maximum"] == 672


@pytest.mark.parametrize(
    ("override", "fix"),
    [
        ("cluster.spot=true", "fix: set cluster.spot.enabled: true"),
        ("cluster.spot=false", "fix: set cluster.spot.enabled: false"),
        ("cluster.spot=yes please", "fix: set cluster.spot.enabled: true (or false)"),
    ],
)
def test_a_scalar_for_a_section_with_enabled_suggests_enabled(override, fix):
    with pytest.raises(SpecError) as err:
        load_spec(copy.deepcopy(BASE), [override])
    assert "cluster.spot is a section: did you mean cluster.spot.enabled?" in str(err.value)
    assert fix in str(err.value)


def test_a_scalar_for_a_section_without_enabled_names_its_keys():
    with pytest.raises(SpecError, match=r"output is a section \(a mapping of checkpoint_s3_uri, s3_path\)"):
        load_spec(copy.deepcopy(BASE), ["output=s3://bucket/out"])


def test_framework_version_from_set_keeps_its_text():
    """`--set sagemaker.framework_version=1.10` is "1.10" (alias of 1.10.2), not the float 1.1 (alias of 1.1.0)."""
    spec = load_spec(copy.deepcopy(BASE), ["sagemaker.framework_version=1.10"])
    assert spec.sagemaker.framework_version == "1.10"
    assert full_framework_version("1.10") == "1.10.2" == FRAMEWORK_ALIASES["1.10"]
    assert load_spec(copy.deepcopy(BASE), ["training.max_steps=7"]).training.max_steps == 7


def test_an_unquoted_version_in_yaml_says_quote_it():
    data = copy.deepcopy(BASE)
    data["sagemaker"] = {"framework_version": 1.12}
    with pytest.raises(SpecError, match=r'quote it: sagemaker.framework_version: "1.12"'):
        load_spec(data)


def test_final_save_is_opt_in_and_says_what_it_costs():
    field = JobSpec.model_fields["training"].annotation.model_fields["final_save"]
    assert field.default is False
    assert "120 GB" in field.description and "uploaded" in field.description
    assert spec_of({"training.final_save": True}).training.final_save is True


# --- item 12: the schema accepts what the loader accepts --------------------------------------------------------


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("preset", sorted(STARTERS))
def test_every_starter_passes_the_schema_and_validates_clean(preset, validator):
    data = yaml.safe_load(starter(preset))
    assert [e.message for e in validator.iter_errors(data)] == []
    assert check(load_spec(data)).findings == ()  # no avoidable warnings (JOB009 included)


@pytest.mark.parametrize("section", OPTIONAL_SECTIONS)
def test_a_null_optional_section_passes_both(section, validator):
    data = {**copy.deepcopy(BASE), section: None}
    load_spec(copy.deepcopy(data))  # the loader reads it as the section's defaults
    assert [e.message for e in validator.iter_errors(data)] == []


def test_the_schema_still_rejects_what_the_loader_rejects(validator):
    for section in ("model", "cluster", "training"):
        data = {**copy.deepcopy(BASE), section: None}
        with pytest.raises(SpecError):
            load_spec(copy.deepcopy(data))
        assert list(validator.iter_errors(data))
    no_shape = {**copy.deepcopy(BASE), "model": {"num_layers": 2}}
    with pytest.raises(SpecError):
        load_spec(copy.deepcopy(no_shape))
    assert list(validator.iter_errors(no_shape))
    explicit = {**copy.deepcopy(BASE), "model": {k: 64 for k in ("num_layers", "hidden_width", "num_heads")}}
    explicit["model"].update(seq_length=128, vocab_size=256)
    load_spec(copy.deepcopy(explicit))
    assert [e.message for e in validator.iter_errors(explicit)] == []
