"""`smlaunch local` validates the spec first, as `submit` does, and starts nothing for an invalid one."""

from __future__ import annotations

import copy

import pytest
import yaml

from smlaunch import local
from smlaunch.cli import main
from smlaunch.errors import ValidationFailed
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter

TINY = yaml.safe_load(starter("gpt2-tiny-local"))


def _tiny(**training):
    data = copy.deepcopy(TINY)
    data["training"].update(training)
    return data


def test_an_invalid_spec_is_refused_before_anything_starts(tmp_path):
    spec = load_spec(_tiny(batch_size=7))  # tiny: 2 microbatches, 7 samples do not split (SMP008)
    with pytest.raises(ValidationFailed) as info:
        local.plan_local(spec, run_dir=tmp_path / "run", num_gpus=0)
    assert "SMP008 training.batch_size" in info.value.message and "--force" in info.value.message
    assert not (tmp_path / "run").exists()


def test_cli_refuses_with_exit_1_and_the_fix_and_no_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(_tiny(batch_size=7)))
    assert main(["local", str(path), "--run-dir", str(tmp_path / "run")]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "SMP008" in text and "fix:" in text and "Traceback" not in text
    assert not (tmp_path / "run").exists()


def test_force_runs_anyway_and_says_what_it_overrides(tmp_path):
    spec = load_spec(_tiny(batch_size=7))
    plan = local.plan_local(spec, run_dir=tmp_path / "run", num_gpus=0, force=True)
    assert [(f.rule, f.field) for f in plan.forced] == [("SMP008", "training.batch_size")]


def test_a_valid_spec_plans_with_its_report():
    plan = local.plan_local(load_spec(TINY), num_gpus=0)
    assert plan.report is not None and plan.report.valid and plan.forced == ()


def test_the_shrink_keeps_a_valid_layout_without_prescaled_batch():
    import itertools

    from smlaunch.spec.rules import check
    from smlaunch.validation import validate

    checked = 0
    for tp, pp, mb in itertools.product((1, 2, 4), (1, 2), (1, 2, 4, 8)):
        data = copy.deepcopy(TINY)
        data["model"] = {"preset": "gpt2-medium"}  # large enough to be shrunk
        data["cluster"] = {"instance_type": "ml.p4d.24xlarge", "instance_count": 1}
        data["smp"].update(
            tensor_parallel_degree=tp, pipeline_parallel_degree=pp, microbatches=mb, prescaled_batch=False
        )
        data["smp"].pop("active_microbatches", None)
        data["training"]["batch_size"] = 8 * mb
        spec = load_spec(data)
        if not validate(spec).valid:
            continue
        plan = local.plan_local(spec, num_gpus=0)
        assert [f.rule for f in check(plan.spec).errors if f.rule.startswith(("SMP", "MOD"))] == [], (tp, pp, mb)
        checked += 1
    assert checked >= 10


def test_sharded_data_parallelism_is_fitted_to_the_local_data_parallel_size():
    from smlaunch.spec.rules import check

    data = copy.deepcopy(TINY)
    data["cluster"] = {"instance_type": "ml.p4d.24xlarge", "instance_count": 4}
    data["smp"] = {"sharded_data_parallel_degree": 32, "ddp": True, "bf16": True}
    data["training"]["batch_size"] = 4
    spec = load_spec(data)
    plan = local.plan_local(spec, num_gpus=0, force=True)  # force: the tiny model on 32 A100s may warn or fail rules
    fields = {c.field: c.after for c in plan.changes}
    assert fields["smp.sharded_data_parallel_degree"] == 1 and fields["smp.bf16"] is False
    assert [f.rule for f in check(plan.spec).errors if f.rule.startswith("SMP")] == []
