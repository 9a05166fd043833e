"""The HTML views of smlaunch.display: pure functions, tested on real results without a kernel."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import smlaunch
from smlaunch import display
from smlaunch.jobs import JobStatus


@pytest.fixture(scope="module")
def spec60():
    return smlaunch.load_spec(yaml.safe_load(smlaunch.starter("gpt2-60b")))


def test_report_shows_findings_coloured_with_their_fix(spec60):
    report = smlaunch.validate(spec60, overrides={"smp.microbatches": 3})
    html = display.report_html(report)
    assert "invalid" in html and "(1 error, 0 warnings)" in html
    assert "SMP008" in html and "training.batch_size" in html
    assert "<b>fix:</b> set training.batch_size: 57 (a multiple of microbatches 3)" in html
    assert display.SEVERITY_COLOURS["error"] in html
    assert report.summary in html


def test_report_of_a_valid_spec_has_no_table(spec60):
    html = display.report_html(smlaunch.validate(spec60))
    assert ">valid<" in html and "<table" not in html


def test_report_escapes_text():
    from smlaunch.spec.findings import Finding, Report

    report = Report("<job>", (Finding("R1", "warning", "a.b", "x < y & z", "use <b>", 3),))
    html = display.report_html(report)
    assert "x &lt; y &amp; z" in html and "use &lt;b&gt;" in html and "&lt;job&gt;" in html
    assert "(line 3)" in html and display.SEVERITY_COLOURS["warning"] in html


def test_estimate_draws_the_breakdown_against_the_capacity(spec60):
    est = smlaunch.estimate(spec60)
    html = display.estimate_html(est)
    assert f"GPU capacity {est.gpu_memory_gib:.1f} GiB" in html
    assert html.count("<rect") == sum(1 for v in est.memory.breakdown.values() if v > 0)
    assert f"{est.memory.total_gib:.1f} / {est.gpu_memory_gib:.1f} GiB per GPU" in html
    assert ("fits" if est.fits else "DOES NOT FIT") in html
    assert f"{est.throughput.tokens_per_s:,.0f}" in html
    for term, gib in est.memory.breakdown.items():
        assert (f"{term} {gib:.2f}" in html) == (gib > 0)  # the legend lists the non-zero terms


def test_estimate_that_does_not_fit_is_red(spec60):
    est = smlaunch.estimate(
        spec60, overrides={"smp.tensor_parallel_degree": 1, "training.activation_checkpointing": "none"}
    )
    assert not est.fits
    html = display.estimate_html(est)
    assert "DOES NOT FIT" in html


def test_memory_svg_scales_to_the_larger_of_total_and_capacity():
    svg = display.memory_svg({"parameters": 10.0, "activations": 30.0}, 40.0, width=520)
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="22" width="([\d.]+)"', svg)]
    assert widths[1] == pytest.approx(3 * widths[0], rel=1e-2)
    line_x = float(re.search(r'<line x1="([\d.]+)"', svg).group(1))
    assert line_x == pytest.approx(10 + 500 * 40 / (40 * 1.08), abs=0.1)
    over = display.memory_svg({"parameters": 80.0}, 40.0)
    assert 'fill="#c62828">80.0 GiB' in over


def test_plan_rows_are_ranked(spec60):
    result = smlaunch.plan(spec60, top=4)
    html = display.plan_html(result)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html)[1:]
    assert len(rows) == len(result.candidates)
    ranks = [int(re.sub("<.*?>", "", re.findall(r"<td[^>]*>(.*?)</td>", r)[0])) for r in rows]
    assert ranks == list(range(1, len(rows) + 1))
    speeds = [float(re.sub("<.*?>", "", re.findall(r"<td[^>]*>(.*?)</td>", r)[12]).replace(",", "")) for r in rows]
    assert speeds == sorted(speeds, reverse=True)
    assert html.count('<tr style="background:#e8f5e9">') == 1  # the best row is highlighted
    assert f"{result.considered:,}</b> configurations considered" in html


def test_job_status_shows_status_history_and_failure():
    status = JobStatus(
        "job-1",
        "Failed",
        "Failed",
        failure_reason="AlgorithmError: rank 3 <OOM>",
        history=({"Status": "Starting"}, {"Status": "Training"}, {"Status": "Failed"}),
        instance_type="ml.p4d.24xlarge",
        instance_count=2,
        max_steps=10,
    )
    html = display.job_status_html(status, console_url="https://console/x?a=1&b=2")
    assert "job-1" in html and display.STATUS_COLOURS["Failed"] in html
    assert "Starting &rarr; Training &rarr; Failed" in html
    assert "AlgorithmError: rank 3 &lt;OOM&gt;" in html
    assert "2 x ml.p4d.24xlarge" in html and 'href="https://console/x?a=1&amp;b=2"' in html


def test_job_handle_asks_the_backend(spec60):
    backend = smlaunch.RecordingBackend()
    job = smlaunch.submit(spec60, backend=backend)
    backend.set_status(job.name, "InProgress", "Training")
    html = display.job_html(job)
    assert job.name in html and "InProgress</b> / Training" in html and "console.aws.amazon.com" in html


def test_job_handle_display_never_raises():
    from smlaunch.jobs import JobHandle

    job = JobHandle("gone", backend=smlaunch.RecordingBackend())
    assert "status unavailable: no training job named &#x27;gone&#x27;" in display.job_html(job)


def _run(ok: bool, losses: list[float]):
    plan = SimpleNamespace(
        spec=SimpleNamespace(name="tiny"),
        nproc=4,
        device="cpu",
        changes=[SimpleNamespace(field="training.max_steps", before=50, after=3, reason="--steps")],
    )
    return SimpleNamespace(
        plan=plan,
        ok=ok,
        returncode=0 if ok else 1,
        wall_s=12.3,
        failed_rank=None if ok else 2,
        failure=None if ok else "CUDA out of memory",
        error_tail="",
        run_dir=Path("/tmp/run"),
        metrics={"losses": losses, "tokens_per_s": 2000.0} if ok else None,
        steps=[{"step": i + 1, "loss": v} for i, v in enumerate(losses)],
    )


def test_local_run_shows_the_loss_curve():
    html = display.local_run_html(_run(True, [5.5, 4.0, 3.1]))
    assert "ok</b> in 12.3 s" in html and "loss 5.500 &rarr; <b>3.100</b>" in html
    assert "2,000 tokens/s" in html and "<polyline" in html and "step 3" in html
    assert "training.max_steps</code>: 50 &rarr; 3 (--steps)" in html


def test_local_run_failure_names_rank_and_reason():
    html = display.local_run_html(_run(False, [5.5]))
    assert "failed" in html and "rank 2" in html and "CUDA out of memory" in html


def test_loss_svg_maps_min_and_max_to_the_plot_edges():
    svg = display.loss_svg([4.0, 2.0, float("nan"), 3.0], width=200, height=100)
    points = [tuple(map(float, p.split(","))) for p in re.search(r'points="([^"]+)"', svg).group(1).split()]
    assert len(points) == 3
    assert points[0] == (44.0, 10.0) and points[1][1] == 76.0
    assert display.loss_svg([]) == ""


def test_register_installs_the_formatters_by_name(spec60):
    from IPython.core.formatters import DisplayFormatter

    shell = SimpleNamespace(display_formatter=DisplayFormatter())
    assert display.register(shell) is True
    data, _ = shell.display_formatter.format(smlaunch.validate(spec60))
    assert 'class="smlaunch-report"' in data["text/html"]
    data, _ = shell.display_formatter.format(smlaunch.estimate(spec60))
    assert "GPU capacity" in data["text/html"]
    display.unregister(shell)
    data, _ = shell.display_formatter.format(smlaunch.validate(spec60))
    assert "text/html" not in data


def test_register_without_ipython_is_a_no_op(monkeypatch):
    monkeypatch.setattr(display, "_running_ipython", lambda: None)
    assert display.register() is False
    display.register_if_ipython()


def test_every_formatter_names_a_real_class():
    import importlib

    for (module, name), fn in display.FORMATTERS.items():
        cls = getattr(importlib.import_module(module), name)
        assert cls.__module__ == module and callable(fn)


def test_completed_job_shows_billable_time():
    status = JobStatus(
        "j",
        "Completed",
        "Completed",
        creation_time=datetime.now(UTC),
        billable_seconds=42,
        instance_type="ml.p4d.24xlarge",
        instance_count=1,
    )
    html = display.job_status_html(status)
    assert "billable 42 s" in html and display.STATUS_COLOURS["Completed"] in html
