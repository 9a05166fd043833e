"""Calibration against AWS's reference configurations and the best-practices page (seeds/smp-best-practices.txt).

GPT-2, seq 512, vocab 50,000 on ml.p4d.24xlarge (A100 40 GB): 10B tp 4, 30B tp 8, 60B pp 2 x tp 8; each with
optimizer-state sharding, checkpointing of each layer and prescaled batch. They must fit and be in the planner's
feasible set; what the page warns about must not fit; its extrapolation advice must hold.
"""

from __future__ import annotations

import pytest

from smlaunch.costmodel import estimate, memory_findings, plan
from smlaunch.costmodel.explain import refit
from smlaunch.spec.load import load_spec

REFERENCES = {
    # preset: (instances, pp, tp, batch, microbatches, active_microbatches, global batch = rdp x batch)
    "gpt2-10b": (16, 1, 4, 40, 1, None, 32 * 40),
    "gpt2-30b": (16, 1, 8, 32, 1, None, 16 * 32),
    "gpt2-60b": (32, 2, 8, 56, 4, 2, 16 * 56),
}


def reference(preset: str, **override):
    count, pp, tp, batch, micro, active, _ = REFERENCES[preset]
    batch = override.pop("batch", batch)
    data = {
        "name": "ref",
        "model": {"preset": preset},
        "cluster": {"instance_type": "ml.p4d.24xlarge", "instance_count": override.pop("count", count)},
        "smp": {
            "pipeline_parallel_degree": pp,
            "tensor_parallel_degree": override.pop("tp", tp),
            "microbatches": micro,
            "prescaled_batch": True,
            "ddp": True,
            "fp16": True,
            "shard_optimizer_state": override.pop("shard", True),
        },
        "training": {"batch_size": batch, "max_steps": 100, "activation_checkpointing": "each"},
    }
    if active:
        data["smp"]["active_microbatches"] = active
    if "seq" in override:
        data["model"]["seq_length"] = override.pop("seq")
    assert not override
    return load_spec(data)


@pytest.mark.parametrize("preset", sorted(REFERENCES))
def test_reference_configurations_fit_a100_40gb(preset):
    est = estimate(reference(preset))
    assert est.fits, est.memory.breakdown
    assert est.gpu_memory_gib == 40.0
    assert memory_findings(reference(preset)) == []


@pytest.mark.parametrize("preset", sorted(REFERENCES))
def test_reference_configurations_are_in_the_planners_feasible_set(preset):
    count, pp, tp, batch, micro, active, global_batch = REFERENCES[preset]
    result = plan(preset, instance_type="ml.p4d.24xlarge", instance_count=count, global_batch=global_batch, top=1)
    wanted = {
        "tp": tp,
        "pp": pp,
        "microbatches": micro,
        "shard_optimizer_state": True,
        "prescaled_batch": True,
        "activation_checkpointing": "each",
        "batch_size": batch,
        "offload_activations": False,
    }
    if active:
        wanted["active_microbatches"] = active
    matches = [o for o in result.feasible if {k: o.spec_values()[k] for k in wanted} == wanted]
    assert matches, f"{preset} reference not among {len(result.feasible)} feasible options"


@pytest.mark.parametrize("preset", sorted(REFERENCES))
def test_without_model_parallelism_the_models_do_not_fit(preset):
    count = REFERENCES[preset][0]
    spec = load_spec(
        {
            "name": "nomp",
            "model": {"preset": preset},
            "cluster": {"instance_type": "ml.p4d.24xlarge", "instance_count": count},
            "smp": {"shard_optimizer_state": True, "ddp": True, "fp16": True},
            "training": {"batch_size": 4, "max_steps": 10, "activation_checkpointing": "each"},
        }
    )
    assert not estimate(spec).fits
    assert memory_findings(spec)[0].rule == "MEM001"


@pytest.mark.parametrize("count", [1, 2])
def test_30b_with_optimizer_sharding_on_too_few_gpus_does_not_fit(count):
    # "a large model with optimizer state sharding that fits on 16 GPUs won't fit on 8"
    assert not estimate(reference("gpt2-30b", count=count)).fits
    assert estimate(reference("gpt2-30b")).fits


def test_sharding_is_what_makes_the_60b_reference_fit():
    assert not estimate(reference("gpt2-60b", shard=False)).fits


def test_extrapolation_lower_batch_first():
    spec = reference("gpt2-10b", seq=2048)
    assert not estimate(spec).fits
    changes, steps = refit(spec)
    assert list(changes) == ["training.batch_size"] and 0 < changes["training.batch_size"] < 40
    assert steps[0].startswith("lower training.batch_size")


def test_extrapolation_then_raise_tensor_parallelism():
    spec = reference("gpt2-10b", seq=24576)
    changes, steps = refit(spec)
    assert "batch_size 1 still does not fit at tensor_parallel_degree 4" in steps[0]
    assert changes["smp.tensor_parallel_degree"] == 8
    tp_step = steps.index("raise smp.tensor_parallel_degree to 8")
    assert tp_step > 0


def test_memory_rule_fix_at_longer_sequence_lowers_the_batch_first():
    (finding,) = memory_findings(reference("gpt2-10b", seq=2048))
    assert finding.field == "training.batch_size"
    first = finding.fix.split(" or ")[0]
    batch = int(first.removeprefix("set training.batch_size: ").split()[0])
    assert 0 < batch < 40
    assert estimate(reference("gpt2-10b", seq=2048, batch=batch)).fits_with_margin  # the fix keeps the margin
    assert not estimate(reference("gpt2-10b", seq=2048, batch=batch + 1)).fits_with_margin
