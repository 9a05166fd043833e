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
