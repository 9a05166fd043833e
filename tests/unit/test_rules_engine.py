"""Engine rules: what ``engine: torch`` needs of a spec (ENG001-ENG005) and which rules stay SMP v1's.

TORCH_BASE is test_rules.BASE (the GPT-2 30B reference row on 16 x p4d) moved to ``engine: torch``: the same
layout with no SMP-only knob (``ddp`` dropped), and it has no findings at all. Each failing case changes it the
smallest way that breaks one rule; each passing case sits on the boundary.
"""

from __future__ import annotations

import copy

import pytest

from smlaunch.engines import SMP_ONLY_KNOBS, TORCH_DEFAULT, TORCH_DISTRIBUTED_GPU_FRAMEWORKS, TORCH_OLDEST, version_key
from smlaunch.layout import resolve
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import RULES, check, rule_ids
from tests.unit.rule_cases import assert_cases_cover, assert_fails, runner
from tests.unit.test_rules import BASE

TORCH_BASE = copy.deepcopy(BASE)
TORCH_BASE["engine"] = "torch"
del TORCH_BASE["smp"]["ddp"]
ENGINE_RULES = [r for r in rule_ids() if r.startswith("ENG")]


torch_spec, run = runner(TORCH_BASE)


# (rule, overrides of TORCH_BASE, severity, field, part of the message, fix)
FAILING = [
    (
        "ENG001",
        {"smp.ddp": True},
        "warning",
        "smp.ddp",
        "smp.ddp has no meaning under engine: torch and is ignored: the native engine always averages gradients",
        "remove smp.ddp (or set engine: smp)",
    ),
    (
        "ENG001",
        {"smp.sdp_max_live_parameters": 10**9},
        "warning",
        "smp.sdp_max_live_parameters",
        "smp.sdp_max_live_parameters has no meaning under engine: torch",
        "remove smp.sdp_max_live_parameters (or set engine: smp)",
    ),
    (
        "ENG001",
        {"sagemaker.custom_mpi_options": "-x NCCL_DEBUG=INFO"},
        "warning",
        "sagemaker.custom_mpi_options",
        "torchrun, not mpirun, starts the processes",
        "remove sagemaker.custom_mpi_options (or set engine: smp)",
    ),
    (
        "ENG002",
        {"smp.sharded_data_parallel_degree": 8, "smp.shard_optimizer_state": False},
        "error",
        "smp.sharded_data_parallel_degree",
        "sharded_data_parallel_degree(8) under engine: torch: the native engine has no SMP sharded data parallelism",
        "set smp.sharded_data_parallel_degree: 1 and smp.shard_optimizer_state: true",
    ),
    (
        "ENG003",
        {"cluster.instance_type": "ml.p3dn.24xlarge"},
        "error",
        "cluster.instance_type",
        "ml.p3dn.24xlarge (8 x V100-SXM2-32GB) is not an instance of the torch engine (families: ml.p5, ml.p5e,",
        "set cluster.instance_type: ml.p4d.24xlarge (8 x A100-SXM4-40GB) (or engine: smp for SMP v1, which runs on it)",
    ),
    (
        "ENG003",
        {"cluster.instance_type": "ml.g4dn.12xlarge", "smp.tensor_parallel_degree": 4},
        "error",
        "cluster.instance_type",
        "ml.g4dn.12xlarge (4 x T4) is not an instance of the torch engine",
        "set cluster.instance_type: ml.g6.12xlarge (4 x L4) (or engine: smp for SMP v1, which runs on it)",
    ),
    (
        "ENG004",
        {"sagemaker.framework_version": "2.8"},
        "error",
        "sagemaker.framework_version",
        "framework_version 2.8 is the SDK's alias for 2.8.0, but its torch_distributed check compares the string",
        "set sagemaker.framework_version: 2.8.0",
    ),
    (
        "ENG004",
        {"sagemaker.framework_version": "2.5.1", "sagemaker.py_version": "py311"},
        "error",
        "sagemaker.framework_version",
        "framework_version 2.5.1: the native entry point needs PyTorch >= 2.8: under 2.7.1",
        "set sagemaker.framework_version: 2.8.0 (with sagemaker.py_version: py312)",
    ),
    (
        "ENG004",
        {"sagemaker.framework_version": "2.9.0"},
        "error",
        "sagemaker.framework_version",
        "framework_version 2.9.0 is not a torch_distributed GPU version of the SDK (newest: 2.8.0; supported from "
        "2.8.0 on: 2.8.0)",
        "set sagemaker.framework_version: 2.8.0 (with sagemaker.py_version: py312)",
    ),
    (
        "ENG004",
        {"sagemaker.framework_version": "2.8.0", "sagemaker.py_version": "py310"},
        "error",
        "sagemaker.py_version",
        "py_version py310 does not match framework_version 2.8.0: its PyTorch training image is py312",
        "set sagemaker.py_version: py312",
    ),
    (
        "ENG005",
        {"cluster.instance_count": 1},
        "warning",
        "smp.shard_optimizer_state",
        "shard_optimizer_state with rdp = world(8) / (tp(8) x pp(1)) = 1: FSDP2 shards over the model replicas",
        "set smp.shard_optimizer_state: false (or cluster.instance_count: 2 for two replicas)",
    ),
]

PASSING = [
    ("ENG001", {"smp.placement_strategy": "cluster", "smp.microbatches": 1, "smp.fp16": False}),
    ("ENG002", {"smp.sharded_data_parallel_degree": 1}),
    ("ENG003", {"cluster.instance_type": "ml.p5.48xlarge"}),
    ("ENG003", {"cluster.instance_type": "ml.g6.12xlarge", "smp.tensor_parallel_degree": 4}),
    ("ENG004", {"sagemaker.framework_version": TORCH_OLDEST, "sagemaker.py_version": "py312"}),
    ("ENG004", {"sagemaker.framework_version": "2.5.1", "sagemaker.image_uri": "1.dkr.ecr.us-east-1.amazonaws.com/x"}),
    ("ENG005", {"cluster.instance_count": 2}),
    ("ENG005", {"cluster.instance_count": 1, "smp.shard_optimizer_state": False}),
]


@pytest.mark.parametrize("case", FAILING, ids=[f"{c[0]}-{i}" for i, c in enumerate(FAILING)])
def test_rule_fails(case):
    assert_fails(run, case)


@pytest.mark.parametrize(("rule_id", "overrides"), PASSING, ids=[f"{c[0]}-{i}" for i, c in enumerate(PASSING)])
def test_rule_passes(rule_id, overrides):
    assert run(rule_id, overrides) == []


def test_every_engine_rule_has_both_cases_and_is_reported_by_check():
    assert_cases_cover(torch_spec, FAILING, PASSING, ENGINE_RULES)


def test_the_torch_base_has_no_findings():
    assert check(torch_spec()).findings == ()


def test_engine_rules_are_silent_under_smp():
    """The failing cases' changes moved back to ``engine: smp`` raise no ENG finding (SMP's rules judge them)."""
    for rule_id, overrides, *_ in FAILING:
        spec = torch_spec({**overrides, "engine": "smp"})
        assert RULES[rule_id](spec, resolve(spec)) == [], (rule_id, overrides)


@pytest.mark.parametrize(
    ("instance_type", "smp_rule_fires"),
    [("ml.p5.48xlarge", True), ("ml.p5en.48xlarge", True), ("ml.g5.48xlarge", True), ("ml.p4d.24xlarge", False)],
)
def test_smp_rejects_what_torch_runs(instance_type, smp_rule_fires):
    """CLU002 (SMP v1's instances) under ``engine: smp``; under ``engine: torch`` the same instance is clean."""
    smp = load_spec(copy.deepcopy(BASE), {"cluster.instance_type": instance_type})
    torch = torch_spec({"cluster.instance_type": instance_type})
    assert ("CLU002" in {f.rule for f in check(smp).findings}) is smp_rule_fires
    assert not {f.rule for f in check(torch).findings} & {"CLU002", "ENG003"}


def test_smp_only_rules_do_not_judge_the_torch_engine():
    """A rule marked SMP-only returns nothing under ``engine: torch`` even when its condition holds."""
    smp_only = [r for r in RULES.values() if r.engines == ("smp",)]
    assert {r.id for r in smp_only} >= {"CLU002", "SMP016", "JOB001", "JOB002"}
    spec = torch_spec({"cluster.instance_type": "ml.p5.48xlarge", "smp.ddp": False})
    assert [r.id for r in smp_only if r(spec, resolve(spec))] == []


def test_every_smp_only_knob_is_a_field_and_each_is_named_when_set():
    from smlaunch.spec.models import SmpSpec

    assert set(SMP_ONLY_KNOBS) <= set(SmpSpec.model_fields)
    defaults = SmpSpec()
    for knob in SMP_ONLY_KNOBS:
        value = getattr(defaults, knob)
        spec = torch_spec({f"smp.{knob}": value})  # even the default value, written out, is named
        assert [f.field for f in run("ENG001", {f"smp.{knob}": value})] == [f"smp.{knob}"], knob
        assert spec.engine == "torch"


def test_the_default_image_is_the_newest_that_the_sdk_lists():
    newest = max(TORCH_DISTRIBUTED_GPU_FRAMEWORKS, key=version_key)
    assert TORCH_DEFAULT == newest
    spec = torch_spec()
    assert (spec.sagemaker.framework_version, spec.sagemaker.py_version) == (newest, "py312")
