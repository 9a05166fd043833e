"""HTML views of smlaunch's results for Jupyter: pure functions from a result to an HTML string.

    report_html(report)       findings coloured by severity, each with its fix
    estimate_html(est)        memory breakdown as a stacked bar against the GPU's capacity (inline SVG), speed, cost
    plan_html(result)         the ranked configurations, best first, and why
    job_html(handle)          a training job's status (one DescribeTrainingJob call)
    job_status_html(status)   the same, from a JobStatus
    local_run_html(run)       a local run's outcome and its loss curve (inline SVG)

:func:`register` tells IPython to use them (``display_formatter.formatters["text/html"].for_type_by_name``),
so the classes themselves stay free of display code and nothing is imported until a value is shown. The API
functions of :mod:`smlaunch.api` call :func:`register_if_ipython` when they return, so inside a kernel results
display as HTML without any set-up; ``smlaunch.display.register()`` does it explicitly, and
``smlaunch.display.unregister()`` undoes it. No IPython, matplotlib or rich import is needed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

SEVERITY_COLOURS = {"error": "#c62828", "warning": "#b26a00"}
TERM_COLOURS = {
    "parameters": "#1f77b4",
    "gradients": "#aec7e8",
    "optimizer_state": "#ff7f0e",
    "master_gradients": "#ffbb78",
    "activations": "#2ca02c",
    "recompute_buffers": "#98df8a",
    "logits": "#9467bd",
    "communication_buffers": "#8c564b",
    "framework_overhead": "#7f7f7f",
}
_OTHER_COLOUR = "#bcbd22"
_BOX = "font-family:system-ui,sans-serif;font-size:13px;line-height:1.4"
_CELL = "padding:2px 8px;text-align:{align};border-bottom:1px solid #ddd"


def _td(value: Any, align: str = "right", bold: bool = False) -> str:
    text = f"<b>{escape(str(value))}</b>" if bold else escape(str(value))
    return f'<td style="{_CELL.format(align=align)}">{text}</td>'


def _th(names: Sequence[str], *, left: Sequence[int] = (0,)) -> str:
    cells = "".join(
        f'<th style="{_CELL.format(align="left" if i in left else "right")}">{escape(n)}</th>'
        for i, n in enumerate(names)
    )
    return f"<tr>{cells}</tr>"


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


# -- validation reports


def report_html(report: Any) -> str:
    """A :class:`~smlaunch.spec.findings.Report`: verdict, layout summary, and every finding with its fix."""
    n_err, n_warn = len(report.errors), len(report.warnings)
    verdict, colour = ("valid", "#2e7d32") if report.valid else ("invalid", SEVERITY_COLOURS["error"])
    head = (
        f'<div><b>{escape(report.source)}</b>: <b style="color:{colour}">{verdict}</b> '
        f"({n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)})</div>"
    )
    summary = f'<div style="color:#555">{escape(report.summary)}</div>' if report.summary else ""
    rows = "".join(_finding_row(f) for f in report.findings)
    header = _th(["", "rule", "field", "problem and fix"], left=range(4))
    table = f'<table style="border-collapse:collapse;margin-top:4px">{header}{rows}</table>' if rows else ""
    return f'<div class="smlaunch-report" style="{_BOX}">{head}{summary}{table}</div>'


def _finding_row(f: Any) -> str:
    colour = SEVERITY_COLOURS.get(f.severity, "#555")
    badge = f'<span style="background:{colour};color:white;border-radius:3px;padding:0 5px">{escape(f.severity)}</span>'
    where = escape(f.field) + (f' <span style="color:#777">(line {f.line})</span>' if f.line else "")
    fix = f'<div style="color:#2e7d32;white-space:pre-wrap"><b>fix:</b> {escape(f.fix)}</div>' if f.fix else ""
    cell = "padding:3px 8px;vertical-align:top;border-bottom:1px solid #ddd;text-align:left"
    return (
        f'<tr><td style="{cell}">{badge}</td><td style="{cell}"><code>{escape(f.rule)}</code></td>'
        f'<td style="{cell}"><code>{where}</code></td><td style="{cell}">'
        f'<div style="color:{colour};white-space:pre-wrap">{escape(f.message)}</div>{fix}</td></tr>'
    )


# -- estimates


def memory_svg(breakdown: dict[str, float], capacity_gib: float, *, width: int = 560) -> str:
    """A horizontal stacked bar of the memory terms (GiB) with a dashed line at the GPU's capacity."""
    total = sum(breakdown.values())
    scale_max = max(total, capacity_gib) * 1.08 or 1.0
    bar_w = width - 20
    x_of = lambda gib: 10 + bar_w * gib / scale_max  # noqa: E731
    parts, x = [], 10.0
    for term, gib in breakdown.items():
        if gib <= 0:
            continue
        w = bar_w * gib / scale_max
        colour = TERM_COLOURS.get(term, _OTHER_COLOUR)
        parts.append(
            f'<rect x="{x:.1f}" y="22" width="{w:.1f}" height="26" fill="{colour}">'
            f"<title>{escape(term)}: {gib:.2f} GiB</title></rect>"
        )
        x += w
    cap = x_of(capacity_gib)
    over = total > capacity_gib
    label_anchor = "end" if cap > width / 2 else "start"
    parts.append(
        f'<line x1="{cap:.1f}" y1="12" x2="{cap:.1f}" y2="56" stroke="#c62828" stroke-width="2" '
        f'stroke-dasharray="4,3"/>'
    )
    parts.append(
        f'<text x="{cap + (-4 if label_anchor == "end" else 4):.1f}" y="10" font-size="11" '
        f'text-anchor="{label_anchor}" fill="#c62828">GPU capacity {capacity_gib:.1f} GiB</text>'
    )
    parts.append(
        f'<text x="{x_of(total):.1f}" y="70" font-size="11" text-anchor="middle" '
        f'fill="{"#c62828" if over else "#333"}">{total:.1f} GiB</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="76" '
        f'class="smlaunch-memory">{"".join(parts)}</svg>'
    )


def _legend(breakdown: dict[str, float]) -> str:
    items = []
    for term, gib in breakdown.items():
        if gib <= 0:
            continue
        colour = TERM_COLOURS.get(term, _OTHER_COLOUR)
        items.append(
            f'<span style="margin-right:10px;white-space:nowrap"><span style="display:inline-block;'
            f'width:10px;height:10px;background:{colour}"></span> {escape(term)} {gib:.2f}</span>'
        )
    return f'<div style="font-size:12px">{"".join(items)}</div>'


def _cost_text(est: Any) -> str:
    if est.cost_usd is None:
        return "price unknown"
    return f"${est.cost_usd:,.2f} (spot ${est.spot_cost_usd:,.2f})"


def estimate_html(est: Any) -> str:
    """An :class:`~smlaunch.costmodel.Estimate`: memory bar against the GPU, verdict, step time, tokens/s, cost."""
    mem, t, lay = est.memory, est.throughput, est.layout
    verdict = '<b style="color:#2e7d32">fits</b>' if est.fits else '<b style="color:#c62828">DOES NOT FIT</b>'
    head = (
        f"<div><b>{escape(est.instance.name)}</b> ({escape(est.instance.gpu.name)}): {mem.total_gib:.1f} / "
        f"{est.gpu_memory_gib:.1f} GiB per GPU, {verdict} (headroom {est.headroom_gib:+.1f} GiB)</div>"
        f'<div style="color:#555">{escape(lay.summary())}</div>'
    )
    rows = [
        ("step time", f"{t.step_time_s:.3f} s"),
        ("tokens/s", f"{t.tokens_per_s:,.0f}"),
        ("MFU", f"{100 * t.mfu:.1f}%"),
        ("pipeline bubble", f"{100 * t.bubble_fraction:.1f}%"),
        ("run time", f"{est.time_s / 3600:.2f} h (steps {t.time_s / 3600:.2f} h)"),
        ("cost", _cost_text(est)),
    ]
    if mem.host_offloaded_gib:
        rows.append(("offloaded to host", f"{mem.host_offloaded_gib:.2f} GiB"))
    table = "".join(f"<tr>{_td(k, 'left')}{_td(v)}</tr>" for k, v in rows)
    return (
        f'<div class="smlaunch-estimate" style="{_BOX}">{head}'
        f"{memory_svg(mem.breakdown, est.gpu_memory_gib)}{_legend(mem.breakdown)}"
        f'<table style="border-collapse:collapse;margin-top:4px">{table}</table></div>'
    )


# -- plans


def plan_html(result: Any) -> str:
    """A :class:`~smlaunch.costmodel.plan_result.PlanResult`: the top configurations, fastest first, and why."""
    rows = []
    for rank, cells in enumerate(result.rows(), 1):
        style = ' style="background:#e8f5e9"' if rank == 1 else ""
        rows.append(
            f"<tr{style}>"
            + "".join(_td(v, "left" if i == 8 else "right", rank == 1) for i, v in enumerate(cells))
            + "</tr>"
        )
    head = (
        f"<div><b>{result.considered:,}</b> configurations considered, <b>{len(result.feasible):,}</b> fit; "
        f"top {len(result.candidates)} by estimated tokens/s:</div>"
    )
    return (
        f'<div class="smlaunch-plan" style="{_BOX}">{head}<table style="border-collapse:collapse">'
        f"{_th(result.COLUMNS, left=(8,))}{''.join(rows)}</table>"
        f'<div style="margin-top:4px;max-width:900px">{escape(result.explanation)}</div></div>'
    )


# -- jobs

STATUS_COLOURS = {
    "Completed": "#2e7d32",
    "Failed": "#c62828",
    "Stopped": "#777",
    "Stopping": "#777",
    "InProgress": "#1565c0",
}


def job_status_html(status: Any, *, console_url: str | None = None) -> str:
    """A :class:`~smlaunch.jobs.JobStatus`: name, status (coloured), secondary status, history, failure."""
    colour = STATUS_COLOURS.get(status.status, "#555")
    secondary = f" / {escape(status.secondary_status)}" if status.secondary_status else ""
    parts = [
        f'<div><b>{escape(status.name)}</b>: <b style="color:{colour}">{escape(status.status)}</b>{secondary}</div>'
    ]
    if status.instance_type:
        parts.append(
            f'<div style="color:#555">{status.instance_count} x {escape(status.instance_type)}'
            + (f", max_steps {status.max_steps}" if status.max_steps else "")
            + (f", billable {status.billable_seconds} s" if status.billable_seconds else "")
            + "</div>"
        )
    if status.failure_reason:
        parts.append(f'<div style="color:#c62828;white-space:pre-wrap">{escape(status.failure_reason)}</div>')
    if status.history:
        steps = " &rarr; ".join(escape(str(h.get("Status", "?"))) for h in status.history)
        parts.append(f'<div style="font-size:12px;color:#555">{steps}</div>')
    if console_url:
        parts.append(f'<div><a href="{escape(console_url)}" target="_blank">SageMaker console</a></div>')
    return f'<div class="smlaunch-job" style="{_BOX}">{"".join(parts)}</div>'


def job_html(handle: Any) -> str:
    """A :class:`~smlaunch.jobs.JobHandle`: asks the backend for the job's status (an error is shown, not raised)."""
    try:
        status = handle.status()
    except Exception as exc:  # a display must not raise: show what went wrong instead
        return (
            f'<div class="smlaunch-job" style="{_BOX}"><b>{escape(handle.name)}</b>: '
            f'<span style="color:#c62828">status unavailable: {escape(str(exc))}</span></div>'
        )
    try:
        url = handle.console_url
    except Exception:
        url = None
    return job_status_html(status, console_url=url)


# -- local runs


def loss_svg(losses: Sequence[float], *, width: int = 480, height: int = 180) -> str:
    """The loss per step as an inline SVG line chart (steps 1..n on x, loss on y)."""
    values = [float(v) for v in losses if v is not None and math.isfinite(float(v))]
    if not values:
        return ""
    left, right, top, bottom = 44, 10, 10, 24
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    n = len(values)
    x_of = lambda i: left + (width - left - right) * (i / max(n - 1, 1))  # noqa: E731
    y_of = lambda v: top + (height - top - bottom) * (1 - (v - lo) / span)  # noqa: E731
    points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(values))
    axis = (
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>'
    )
    labels = (
        f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{hi:.2f}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" font-size="10" text-anchor="end">{lo:.2f}</text>'
        f'<text x="{left}" y="{height - 8}" font-size="10">step 1</text>'
        f'<text x="{width - right}" y="{height - 8}" font-size="10" text-anchor="end">step {n}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="smlaunch-loss">'
        f'{axis}{labels}<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{points}"/></svg>'
    )


def run_losses(run: Any) -> list[float]:
    """Every step's loss of a :class:`~smlaunch.local_results.LocalRun` (metrics.json, else the log lines)."""
    if run.metrics and run.metrics.get("losses"):
        return list(run.metrics["losses"])
    return [s["loss"] for s in run.steps if "loss" in s]


def local_run_html(run: Any) -> str:
    """A :class:`~smlaunch.local_results.LocalRun`: ok or failed (rank, reason), wall time, losses, loss curve."""
    losses = run_losses(run)
    if run.ok:
        head = f'<b style="color:#2e7d32">ok</b> in {run.wall_s:.1f} s'
    else:
        who = f"rank {run.failed_rank}" if run.failed_rank is not None else "a rank"
        reason = run.failure or (run.error_tail.strip().splitlines() or [""])[-1]
        head = (
            f'<b style="color:#c62828">failed</b> (exit {run.returncode}, {who}): '
            f'<span style="white-space:pre-wrap">{escape(reason)}</span>'
        )
    plan = run.plan
    parts = [
        f"<div><b>{escape(plan.spec.name)}</b> local run: {head}</div>",
        f'<div style="color:#555">{plan.nproc} process(es) on {escape(plan.device)}; '
        f"{len(losses)} step(s); run dir <code>{escape(str(run.run_dir))}</code></div>",
    ]
    if losses:
        tps = (run.metrics or {}).get("tokens_per_s")
        speed = f"; {tps:,.0f} tokens/s" if isinstance(tps, int | float) else ""
        parts.append(f"<div>loss {losses[0]:.3f} &rarr; <b>{losses[-1]:.3f}</b>{speed}</div>{loss_svg(losses)}")
    if plan.changes:
        items = "".join(
            f"<li><code>{escape(c.field)}</code>: {escape(str(c.before))} &rarr; "
            f"{escape(str(c.after))} ({escape(c.reason)})</li>"
            for c in plan.changes
        )
        parts.append(
            f"<details><summary>{len(plan.changes)} change(s) to fit this machine</summary><ul>{items}</ul></details>"
        )
    return f'<div class="smlaunch-local" style="{_BOX}">{"".join(parts)}</div>'


# -- registration

FORMATTERS: dict[tuple[str, str], Callable[[Any], str]] = {
    ("smlaunch.spec.findings", "Report"): report_html,
    ("smlaunch.costmodel", "Estimate"): estimate_html,
    ("smlaunch.costmodel.plan_result", "PlanResult"): plan_html,
    ("smlaunch.jobs", "JobHandle"): job_html,
    ("smlaunch.jobs", "JobStatus"): job_status_html,
    ("smlaunch.local_results", "LocalRun"): local_run_html,
}
"""(module, class name) -> HTML function; registered by name, so nothing is imported to register."""

_seen: set[int] = set()
"""IPython shells that :func:`register_if_ipython` has handled (an explicit :func:`unregister` sticks)."""


def _html_formatter(ip: Any) -> Any:
    return ip.display_formatter.formatters["text/html"]


def register(ip: Any = None) -> bool:
    """Register the HTML views with IPython (``ip``, default the running shell); False when there is none."""
    if ip is None:
        ip = _running_ipython()
    if ip is None:
        return False
    html = _html_formatter(ip)
    for (module, name), fn in FORMATTERS.items():
        html.for_type_by_name(module, name, fn)
    _seen.add(id(ip))
    return True


def unregister(ip: Any = None) -> None:
    """Remove the HTML views again (plain ``repr`` output)."""
    ip = ip if ip is not None else _running_ipython()
    if ip is None:
        return
    html = _html_formatter(ip)
    for (module, name), _ in FORMATTERS.items():
        html.deferred_printers.pop((module, name), None)
        for cls in list(html.type_printers):
            if getattr(cls, "__module__", None) == module and cls.__name__ == name:
                html.type_printers.pop(cls)
    _seen.add(id(ip))


def register_if_ipython() -> None:
    """:func:`register` once per IPython shell, if one is running (cheap when IPython is not even imported)."""
    ip = _running_ipython()
    if ip is not None and id(ip) not in _seen:
        register(ip)


def _running_ipython() -> Any:
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()
