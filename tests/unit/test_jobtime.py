"""Whole-job time and cost: start-up, model build, checkpoints and the final save, besides the steps."""

from __future__ import annotations

import pytest
import yaml

from smlaunch.costmodel import estimate
from smlaunch.costmodel import jobtime as jt
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter


def _spec(preset: str, *overrides: str):
    return load_spec(yaml.safe_load(starter(preset)), list(overrides))


def test_terms_add_up_and_billing_leaves_out_provisioning():
    est = estimate(_spec("gpt2-30b"))
    terms = est.job.terms
    assert set(terms) == set(jt.SOURCES)
    assert est.time_s == pytest.approx(sum(terms.values()))
    assert terms["training"] == pytest.approx(est.throughput.time_s)
    hourly = est.layout.num_nodes * est.instance.price_per_hour
    assert est.cost_usd == pytest.approx((est.time_s - terms["provisioning"]) / 3600 * hourly)


def test_model_build_without_delayed_initialization_builds_the_whole_model_per_process():
    slow = estimate(_spec("gpt2-30b", "smp.delayed_parameter_initialization=false")).job.terms["model_build"]
    fast = estimate(_spec("gpt2-30b", "smp.delayed_parameter_initialization=true")).job.terms["model_build"]
    # 30B parameters at the measured 42M/s: about 12 minutes on the CPU; on the GPU, a fraction of a second
    assert 600 < slow < 900 and fast < 1


def _times(**changes):
    base = dict(step_time_s=1.0, max_steps=100, total_params=1e9, rank_params=1e8, ranks_per_node=8,
                rank_checkpoint_bytes=1e9, checkpoint_every_steps=0, delayed_init=True, final_save=False)  # fmt: skip
    return jt.job_time(**{**base, **changes})


def test_checkpoint_saves_are_counted_once_each():
    per_save = 8 * 1e9 / (jt.DISK_WRITE_GBPS * 1e9)
    assert _times().terms["checkpoints"] == pytest.approx(per_save)  # the end-of-training save
    assert _times(checkpoint_every_steps=25).terms["checkpoints"] == pytest.approx(4 * per_save)  # 25 .. 100
    assert _times(checkpoint_every_steps=30).terms["checkpoints"] == pytest.approx(4 * per_save)  # 30, 60, 90, end


def test_final_save_is_opt_in_and_costs_the_upload():
    base = dict(step_time_s=1.0, max_steps=10, total_params=60e9, rank_params=1e9, ranks_per_node=8,
                rank_checkpoint_bytes=0.0, checkpoint_every_steps=0, delayed_init=True)  # fmt: skip
    assert jt.job_time(**base, final_save=False).terms["final_save"] == 0
    # 60B in 16 bits is 120 GB: 20 minutes at the assumed 100 MB/s compress-and-upload
    assert jt.job_time(**base, final_save=True).terms["final_save"] == pytest.approx(1200)
