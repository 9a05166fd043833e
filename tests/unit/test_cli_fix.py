"""A finding's fix, worded for the command line: ``set a.b: 1`` -> ``--set a.b=1``, and pasted back it fixes the spec.

Every fix the rulebook produces for the failing cases of test_rules.py (one or more per rule), plus the memory
rule's, is rewritten by :func:`cli_fix`; each alternative's ``--set`` arguments, applied with ``load_spec``,
give a spec in which that rule no longer fires.
"""

from __future__ import annotations

import copy
import re
import shlex

import pytest

import smlaunch
from smlaunch.costmodel.fixes import memory_findings
from smlaunch.layout import resolve
from smlaunch.spec.findings import Finding, cli_fix, fix_overrides
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import RULES, rule_ids
from tests.unit.test_api_limits import FAILING as FAILING_API
from tests.unit.test_rules import BASE, FAILING
from tests.unit.test_rules_engine import FAILING as FAILING_ENGINE
from tests.unit.test_rules_engine import TORCH_BASE
from tests.unit.test_rules_script import FAILING as FAILING_SCRIPT
from tests.unit.test_rules_script import SCRIPT_BASE
from tests.unit.test_rules_smp_docs import FAILING as FAILING_DOCS

MEMORY = [  # (overrides of BASE that do not fit, a part of the fix)
    ({"training.activation_checkpointing": "none"}, "set training.activation_checkpointing: each"),
    ({"training.batch_size": 512}, "set training.batch_size: "),
    ({"smp.tensor_parallel_degree": 2}, "set smp.tensor_parallel_degree: 8"),
    (
        {"smp.partitions": 2, "smp.microbatches": 4, "smp.tensor_parallel_degree": 4, "training.batch_size": 256},
        "set smp.pipeline_parallel_degree: 4",
    ),
]
NO_SINGLE_CHANGE = {"model.preset": "gpt2-60b", "cluster.instance_count": 1, "smp.fp16": True}
NOT_BY_SET = {"JOB007", "JOB008", "ENT003", "ENT004", "API001"}
"""Rules whose only fix is to remove a key (``remove sagemaker.environment.X``) or to write a mapping, or (API001)
to write a value only the user knows (a bucket's real name): no ``--set`` makes it."""


def _failing_spec(overrides, base=BASE):
    return load_spec(copy.deepcopy(base), overrides)


def _findings(rule_id, spec):
    if rule_id not in RULES:  # MEM001 is the cost model's verdict, composed by smlaunch.validation
        return [f for f in memory_findings(spec) if f.rule == rule_id]
    return RULES[rule_id](spec, resolve(spec))


CASES = (
    [
        (rule_id, overrides, field, BASE)
        for rule_id, overrides, _, field, _, _ in [*FAILING, *FAILING_DOCS, *FAILING_API]
    ]
    + [(rule_id, overrides, field, TORCH_BASE) for rule_id, overrides, _, field, _, _ in FAILING_ENGINE]
    + [(rule_id, overrides, field, SCRIPT_BASE) for rule_id, overrides, _, field, _, _ in FAILING_SCRIPT]
    + [("MEM001", {"smp.fp16": True, **overrides}, None, BASE) for overrides, _ in MEMORY]  # BASE trains in fp32
)


def _set_args(text: str) -> list[str]:
    """The VALUEs of every ``--set VALUE`` in a CLI-worded fix, as the shell passes them."""
    return [shlex.split(arg)[0] for arg in re.findall(r"--set ((?:'[^']*'|[^\s'()])+)", text)]


@pytest.mark.parametrize(
    ("rule_id", "overrides", "field", "base"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_every_cli_fix_pasted_back_removes_the_finding(rule_id, overrides, field, base):
    spec = _failing_spec(overrides, base)
    found = [f for f in _findings(rule_id, spec) if field is None or f.field == field]
    assert found, f"{rule_id} does not fire for {overrides}"
    finding = found[0]
    alternatives = fix_overrides(finding.fix)
    cli = finding.cli_fix
    assert _set_args(cli) == [arg for alternative in alternatives for arg in alternative], cli
    assert not re.search(r"(?<!-)\bset [\w.]+: |\b(?:lower|raise) [\w.]+ to ", cli), cli  # no spec wording left
    if rule_id in NOT_BY_SET:
        assert alternatives == [] and cli == finding.fix
        return
    assert alternatives, f"{rule_id}'s fix names no --set change: {finding.fix!r}"
    data = spec.model_dump(mode="json", exclude_unset=True)
    for alternative in alternatives:
        fixed = smlaunch.load_spec(copy.deepcopy(data), overrides=alternative)
        assert _findings(rule_id, fixed) == [], f"{rule_id}: {alternative} from {cli!r} does not fix it"


def test_every_rule_fix_is_round_tripped():
    assert {c[0] for c in CASES} == {*rule_ids(), "MEM001"}


def test_a_fix_with_no_spec_change_is_kept():
    (finding,) = memory_findings(_failing_spec(NO_SINGLE_CHANGE))
    assert finding.rule == "MEM001"
    assert finding.fix.startswith("no single change fits with 10% to spare; run `smlaunch plan --model gpt2-60b")
    assert finding.cli_fix == finding.fix and fix_overrides(finding.fix) == []


@pytest.mark.parametrize(
    ("fix", "cli"),
    [
        ("set training.batch_size: 24", "--set training.batch_size=24"),
        ("set smp.prescaled_batch: true (training.batch_size then counts per model-parallel group)",
         "--set smp.prescaled_batch=true (training.batch_size then counts per model-parallel group)"),
        ("set smp.bf16: false and smp.fp16: true", "--set smp.bf16=false --set smp.fp16=true"),
        ("set smp.microbatches: 2 (divides batch_size 32), or smp.offload_activations: false",
         "--set smp.microbatches=2 (divides batch_size 32), or --set smp.offload_activations=false"),
        ("set sagemaker.framework_version: 1.13.1 (with sagemaker.py_version: py39)",
         "--set sagemaker.framework_version=1.13.1 (with --set sagemaker.py_version=py39)"),
        ("remove smp.ddp_port (or set smp.ddp: true)", "remove smp.ddp_port (or --set smp.ddp=true)"),
        ("set smp.memory_weight: 0.8 (the default)", "--set smp.memory_weight=0.8 (the default)"),
        ("set name: 'my job'", "--set name='my job'"),
        ('set name: "it\'s"', "--set name='it'\"'\"'s'"),
        ('set smp.placement_strategy: "true"', "--set smp.placement_strategy='\"true\"'"),
        ("set sagemaker.tags: [a, b]", "--set sagemaker.tags='[a, b]'"),
        ("set sagemaker.environment: {A: 1}", "--set sagemaker.environment='{A: 1}'"),
        ("set sagemaker.image_uri: 1.dkr.ecr/gpt2:$TAG", "--set sagemaker.image_uri='1.dkr.ecr/gpt2:$TAG'"),
        ("set data.train: s3://<bucket>/t (or write `data: {}` to train on synthetic tokens)",
         "--set data.train='s3://<bucket>/t' (or write `data: {}` to train on synthetic tokens)"),
        ("lower smp.active_microbatches to 2 (est. 30.0 GiB)", "--set smp.active_microbatches=2 (est. 30.0 GiB)"),
        ("set cluster.processes_per_host: 8 (or remove it: the default is the GPU count)",
         "--set cluster.processes_per_host=8 (or remove it: the default is the GPU count)"),
        ("start with `name: my-job` and the sections model", "start with `name: my-job` and the sections model"),
        ("check the path, or create one with `smlaunch init`", "check the path, or create one with `smlaunch init`"),
        ("", ""),
    ],
)  # fmt: skip
def test_cli_fix_wording(fix, cli):
    assert cli_fix(fix) == cli
    assert Finding("X", "error", "f", "m", fix).cli_fix == cli


def test_quoted_values_reach_load_spec_unchanged():
    """What the shell passes for each --set is what fix_overrides gives, and it loads as the spec's YAML value."""
    import yaml

    for fix in ("set name: 'my job'", 'set smp.placement_strategy: "true"', "set sagemaker.tags: [a, b]"):
        (alternative,) = fix_overrides(fix)
        assert _set_args(cli_fix(fix)) == alternative
        _, _, value = alternative[0].partition("=")
        assert yaml.safe_load(value) == yaml.safe_load(fix.split(": ", 1)[1])


def test_the_notebook_shows_the_spec_wording():
    from smlaunch.display import report_html

    report = smlaunch.validate(_failing_spec({"smp.ddp": False}))
    html = report_html(report)
    assert "set smp.ddp: true" in html and "--set" not in html
