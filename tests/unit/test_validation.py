"""Validation is one pass: the rulebook (pure, no cost model) plus the cost model's memory verdict."""

import subprocess
import sys

from tests.unit.test_rules import spec_of


def test_the_rulebook_never_imports_the_cost_model():
    code = (
        "import sys; from smlaunch.spec.rules import check; "
        "print(any(m.startswith('smlaunch.costmodel') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_validation_composes_rules_and_memory_once(monkeypatch):
    from smlaunch import validation
    from smlaunch.costmodel import estimate

    spec = spec_of({"training.batch_size": 512, "smp.ddp": False})
    est = estimate(spec)
    calls = []
    from smlaunch.costmodel import fixes

    real = fixes.estimate_knobs
    monkeypatch.setattr(fixes, "estimate_knobs", lambda *a, **k: calls.append(a) or real(*a, **k))
    report = validation.validate(spec, estimate=est)
    rules = [f.rule for f in report.findings]
    assert "SMP016" in rules and rules.count("MEM001") == 1
    assert report.summary and report.errors[0].severity == "error"
    assert all(call[0] != est.knobs for call in calls)  # the given estimate is not recomputed; only fixes are


def _30b(*overrides):
    import yaml

    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    return load_spec(yaml.safe_load(starter("gpt2-30b")), list(overrides))


def _near_full_batch():
    """The largest 30B batch that fits a 40 GiB A100 but leaves less than the 10% margin."""
    from smlaunch.costmodel import estimate

    for batch in range(64, 0, -1):
        est = estimate(_30b(f"training.batch_size={batch}"))
        if est.fits:
            assert not est.fits_with_margin, "no batch lands inside the margin"
            return batch
    raise AssertionError("nothing fits")


def test_a_spec_inside_the_margin_is_a_warning_whose_fixes_keep_the_margin():
    from smlaunch import validation
    from smlaunch.costmodel import estimate

    batch = _near_full_batch()
    report = validation.validate(_30b(f"training.batch_size={batch}"))
    (finding,) = [f for f in report.findings if f.rule.startswith("MEM")]
    assert (finding.rule, finding.severity) == ("MEM002", "warning") and report.valid
    assert "under the 10% margin" in finding.message
    first = finding.fix.split(" or ")[0]
    assert first.startswith("set ")
    field, _, value = first.removeprefix("set ").partition(": ")
    fixed = estimate(_30b(f"{field}={value.split(' (')[0]}"))
    assert fixed.fits_with_margin and fixed.memory.total_gib <= 0.9 * fixed.gpu_memory_gib


def test_the_planner_and_the_fixes_share_one_margin():
    from smlaunch.costmodel import HEADROOM, planner

    assert planner.PLAN_HEADROOM == HEADROOM == 0.10


def test_a_job_that_cannot_finish_in_max_run_hours_is_an_error_with_the_hours_it_needs():
    from smlaunch import validation
    from smlaunch.costmodel import estimate

    spec = _30b("training.max_steps=20000", "cluster.max_run_hours=1")
    needed = estimate(spec).job.billed_s / 3600
    (finding,) = [f for f in validation.validate(spec).findings if f.rule == "RUN001"]
    assert finding.severity == "error" and finding.field == "cluster.max_run_hours"
    assert "> cluster.max_run_hours 1 h" in finding.message and "training" in finding.message
    hours = int(finding.fix.removeprefix("set cluster.max_run_hours: "))
    assert needed / 0.9 <= hours < needed / 0.9 + 1
    fixed = validation.validate(_30b("training.max_steps=20000", f"cluster.max_run_hours={hours}"))
    assert not [f for f in fixed.findings if f.rule == "RUN001"]


def test_a_job_close_to_max_run_hours_is_a_warning_and_one_past_28_days_must_be_split():
    from smlaunch import validation
    from smlaunch.costmodel import estimate

    needed_h = estimate(_30b("training.max_steps=20000")).job.billed_s / 3600
    close = validation.validate(_30b("training.max_steps=20000", f"cluster.max_run_hours={needed_h * 1.05:.3f}"))
    assert [(f.rule, f.severity) for f in close.findings if f.rule == "RUN001"] == [("RUN001", "warning")]
    huge = validation.validate(_30b("training.max_steps=9000000", "cluster.max_run_hours=600"))
    (finding,) = [f for f in huge.findings if f.rule == "RUN001"]
    assert finding.fix.startswith("set training.max_steps: ") and "672 h" in finding.fix


def test_prepare_estimates_the_spec_once(monkeypatch):
    from smlaunch import costmodel, jobs

    spec = _30b("sagemaker.role=arn:aws:iam::123456789012:role/R")
    calls = []
    real = costmodel.estimate_knobs
    monkeypatch.setattr(costmodel, "estimate_knobs", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    prepared = jobs.prepare(spec)
    assert len(calls) == 1 and prepared.estimate.knobs == calls[0]
    assert prepared.report.summary and prepared.report.valid


def _60b(*overrides):
    import yaml

    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    return load_spec(yaml.safe_load(starter("gpt2-60b")), list(overrides))


def test_building_the_whole_model_on_every_process_must_fit_the_host():
    from smlaunch import validation

    no_dpi = "smp.delayed_parameter_initialization=false"
    p4d = [f for f in validation.validate(_60b(no_dpi)).findings if f.rule == "HOST001"]
    assert p4d == []  # 8 x 111.8 GiB = 894 GiB of 1,152: 78%
    (tight,) = [f for f in validation.validate(_60b(no_dpi, "model.num_layers=80")).findings if f.rule == "HOST001"]
    assert tight.severity == "warning" and "of the 1,152 GiB of ml.p4d.24xlarge" in tight.message
    (over,) = [
        f
        for f in validation.validate(_60b(no_dpi, "cluster.instance_type=ml.p3dn.24xlarge")).findings
        if f.rule == "HOST001"
    ]
    assert over.severity == "error" and "8 x 111.8 GiB = 894 GiB of the 768 GiB" in over.message
    assert over.fix.startswith("set smp.delayed_parameter_initialization: true")
    fixed = validation.validate(
        _60b("cluster.instance_type=ml.p3dn.24xlarge", "smp.delayed_parameter_initialization=true")
    )
    assert not [f for f in fixed.findings if f.rule == "HOST001"]


def _torch_job(*overrides):
    import yaml

    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    return load_spec(yaml.safe_load(starter("gpt2-xl-p5")), list(overrides))


G5_TP4 = ("cluster.instance_type=ml.g5.12xlarge", "model.preset=gpt2-large", "smp.tensor_parallel_degree=4",
          "smp.microbatches=1", "training.batch_size=8", "training.activation_checkpointing=each",
          "training.max_steps=2000")  # fmt: skip


def test_tensor_parallelism_over_pcie_is_a_warning_with_its_share_and_a_checked_faster_layout():
    from smlaunch import validation
    from smlaunch.costmodel import estimate
    from smlaunch.spec.findings import fix_overrides

    spec = _torch_job(*G5_TP4)
    est = estimate(spec)
    (pcie,) = [f for f in validation.validate(spec).findings if f.rule == "PCI001"]
    share = est.throughput.tp_comm_s / est.throughput.step_time_s
    assert pcie.severity == "warning" and pcie.field == "smp.tensor_parallel_degree"
    assert "A10G has no NVLink" in pcie.message and f"({100 * share:.0f}%)" in pcie.message
    assert f"${share * est.cost_usd:,.2f} of its ${est.cost_usd:,.2f}" in pcie.message
    (change,) = fix_overrides(pcie.fix)
    fixed = _torch_job(*G5_TP4, *change)
    assert not [f for f in validation.validate(fixed).findings if f.rule in ("PCI001", "MEM001", "MEM002")]
    assert estimate(fixed).throughput.tokens_per_s > est.throughput.tokens_per_s


def test_no_pcie_warning_on_nvlink_or_for_a_short_run():
    from smlaunch import validation

    nvlink = _torch_job(*G5_TP4[1:], "cluster.instance_type=ml.p4d.24xlarge")
    short = _torch_job(*G5_TP4, "training.max_steps=5")
    for spec in (nvlink, short):
        assert not [f for f in validation.validate(spec).findings if f.rule == "PCI001"]


def test_the_native_engine_builds_the_whole_model_in_fp32_on_every_process():
    """entrypoints/train_gpt2.py build_native: 4 B/param on the host per process, whatever the precision."""
    import yaml

    from smlaunch import validation
    from smlaunch.spec.load import load_spec
    from smlaunch.templates import starter

    job = yaml.safe_load(starter("gpt2-30b-p5"))
    (over,) = [
        f
        for f in validation.validate(load_spec(job, ["cluster.instance_type=ml.g5.48xlarge"])).findings
        if f.rule == "HOST001"
    ]
    assert over.severity == "error" and over.field == "cluster.instance_type"
    assert "8 x 111.6 GiB = 893 GiB of the 768 GiB of ml.g5.48xlarge" in over.message
    assert over.fix == "set cluster.instance_type: ml.p4d.24xlarge (1,152 GiB of host memory)"
    assert not [f for f in validation.validate(load_spec(job)).findings if f.rule == "HOST001"]  # 2,048 GiB
