"""``smlaunch validate``."""

from __future__ import annotations

import click

from smlaunch.cli.common import echo_json, format_option, set_option


@click.command(name="validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@set_option
@format_option
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def command(files: tuple[str, ...], overrides: tuple[str, ...], output_format: str, strict: bool) -> int:
    """Check job specs against the SMP v1 rulebook, before any money is spent.

    Exit 0 when every spec is valid (warnings allowed unless --strict), 1 when a rule is broken,
    2 when a file cannot be read or parsed.
    """
    from smlaunch import api

    reports = [api.validate_file(path, overrides=overrides) for path in files]
    if output_format == "json":
        payload = [r.to_dict() | {"file": r.source} for r in reports]
        echo_json(payload[0] if len(payload) == 1 else payload)
    else:
        for report in reports:
            click.echo(format_report(report))
    if any(r.unreadable for r in reports):
        return 2
    if any(not r.valid or (strict and r.warnings) for r in reports):
        return 1
    return 0


def format_report(report) -> str:
    """Human-readable report: one block per finding with rule id, field, line, message and fix (as a --set flag)."""
    errors, warnings = report.errors, report.warnings
    counts = f"{len(errors)} error{'s' * (len(errors) != 1)}, {len(warnings)} warning{'s' * (len(warnings) != 1)}"
    if report.unreadable:
        (finding,) = errors
        lines = [click.style("error: ", fg="red", bold=True) + finding.message]
        if finding.fix:
            lines.append(click.style("  fix: ", fg="green") + finding.cli_fix)
        return "\n".join(lines)
    if errors:
        head = click.style(f"{report.source}: invalid", fg="red", bold=True) + f" ({counts})"
    else:
        head = click.style(f"{report.source}: valid", fg="green", bold=True) + f" ({counts})"
    lines = [head]
    if report.summary:
        lines.append(f"  {report.summary}")
    for finding in errors + warnings:
        colour = "red" if finding.severity == "error" else "yellow"
        where = finding.field + (f" (line {finding.line})" if finding.line else "")
        lines.append(f"  {click.style(finding.severity, fg=colour, bold=True):<7} {finding.rule} {where}")
        lines.extend(f"          {text}" for text in finding.message.splitlines())
        if finding.fix:
            lines.append("          " + click.style("fix: ", fg="green") + finding.cli_fix)
    return "\n".join(lines)
