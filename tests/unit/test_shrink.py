"""smlaunch.shrink: local runs keep the tp x pp layout and every divisibility it needs."""

from __future__ import annotations

import itertools

import pytest
import yaml

from smlaunch.request import render
from smlaunch.shrink import CPU_BUDGET_PARAMS, adapt, padded_vocab
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter


def template(preset: str, **overrides):
    return load_spec(yaml.safe_load(starter(preset)), overrides)


def check_layout(spec) -> None:
    """What the entry point's Layout.validate and model need."""
    m, smp, t = spec.model, spec.smp, spec.training
    tp, pp = smp.tensor_parallel_degree, smp.pipeline_parallel_degree
    group_batch = t.batch_size if smp.prescaled_batch else tp * t.batch_size
    assert m.num_heads % tp == 0
    assert m.hidden_width % m.num_heads == 0
    assert m.num_layers >= pp and m.num_layers % pp == 0
    assert m.seq_length % tp == 0
    assert group_batch % smp.microbatches == 0
    assert t.warmup_steps <= t.max_steps


@pytest.mark.parametrize("preset", ["gpt2-10b", "gpt2-30b", "gpt2-60b"])
def test_reference_templates_shrink_on_cpu_keeping_the_layout(preset):
    spec = template(preset)
    tp, pp = spec.smp.tensor_parallel_degree, spec.smp.pipeline_parallel_degree
    local, changes = adapt(spec, nproc=tp * pp, device="cpu")
    check_layout(local)
    assert (local.smp.tensor_parallel_degree, local.smp.pipeline_parallel_degree) == (tp, pp)
    assert local.smp.microbatches == spec.smp.microbatches
    assert local.model.num_params() < CPU_BUDGET_PARAMS
    assert local.training.max_steps == 5
    assert local.smp.fp16 is False and local.smp.bf16 is False
    assert local.cluster.instance_count == 1 and local.cluster.processes_per_host == tp * pp
    fields = {c.field for c in changes}
    assert {"model.num_layers", "model.hidden_width", "smp.fp16", "training.max_steps"} <= fields


def test_60b_shrinks_to_the_documented_shape():
    local, changes = adapt(template("gpt2-60b"), nproc=16, device="cpu")
    m = local.model
    assert (m.num_layers, m.hidden_width, m.num_heads, m.seq_length, m.vocab_size) == (2, 128, 8, 64, 1024)
    assert local.training.batch_size == 4  # prescaled, 4 microbatches of 1
    assert padded_vocab(m.vocab_size, 8) == m.vocab_size
    before_after = {c.field: (c.before, c.after) for c in changes}
    assert before_after["model.num_layers"] == (74, 2)
    assert before_after["cluster.processes_per_host"] == (8, 16)


def test_small_model_is_left_alone():
    spec = template("gpt2-tiny-local")
    local, changes = adapt(spec, nproc=4, device="cpu")
    assert changes == []
    assert render(local).hyperparameters == render(spec).hyperparameters


def test_shrink_none_keeps_the_model_but_not_fp16_on_cpu():
    spec = template("gpt2-30b")
    local, changes = adapt(spec, nproc=8, device="cpu", shrink="none")
    assert local.model == spec.model
    assert local.training.max_steps == spec.training.max_steps
    assert [c.field for c in changes] == ["cluster.instance_count", "smp.fp16"]


def test_fp16_is_kept_on_gpus():
    spec = template("gpt2-30b")
    local, _ = adapt(spec, nproc=8, device="cuda", shrink="none")
    assert local.smp.fp16 is True


def test_steps_override_and_warmup_follows():
    spec = template("gpt2-tiny-local")
    local, changes = adapt(spec, nproc=4, device="cpu", steps=10)
    assert (local.training.max_steps, local.training.warmup_steps) == (10, 2)
    assert [c.reason for c in changes if c.field == "training.max_steps"] == ["--steps"]


def test_real_data_keeps_the_vocabulary():
    spec = template("gpt2-60b", **{"data.train": "local:sample"})
    local, changes = adapt(spec, nproc=16, device="cpu")
    assert local.model.vocab_size == 50000
    assert any(c.field == "model.vocab_size" and c.reason.startswith("kept") for c in changes)


def test_mp_parameters_keep_their_keys():
    spec = template("gpt2-60b")
    local, _ = adapt(spec, nproc=16, device="cpu")
    before, after = render(spec).mp_parameters, render(local).mp_parameters
    assert list(before) == list(after)
    assert {k for k in before if before[k] != after[k]} == {"fp16"}


@pytest.mark.parametrize(
    ("tp", "pp", "mb", "prescaled"), list(itertools.product([1, 2, 4, 8], [1, 2, 3, 4], [1, 2, 4, 6], [True, False]))
)
def test_every_layout_stays_valid(tp, pp, mb, prescaled):
    heads = 8 * tp
    batch = mb * 8 * (1 if prescaled else tp)
    spec = template(
        "gpt2-60b",
        **{
            "smp.tensor_parallel_degree": tp,
            "smp.pipeline_parallel_degree": pp,
            "smp.microbatches": mb,
            "smp.active_microbatches": None,
            "smp.prescaled_batch": prescaled,
            "model.num_heads": heads,
            "model.hidden_width": heads * 128,
            "model.num_layers": 8 * pp,
            "training.batch_size": batch,
        },
    )
    local, _ = adapt(spec, nproc=tp * pp, device="cpu")
    check_layout(local)
    assert local.model.num_params() < CPU_BUDGET_PARAMS
