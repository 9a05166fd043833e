"""``smlaunch status``: a training job's status, its secondary status history, billable time, failure reason, and
for a Failed or Stopped job its diagnosis (:mod:`smlaunch.diagnosis`)."""

from __future__ import annotations

import click

from smlaunch.cli.common import echo_json
from smlaunch.cli.logs_cmd import echo_diagnosis, region_option


@click.command(name="status")
@click.argument("job")
@region_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(job: str, region: str | None, output_format: str) -> None:
    """Show the status of training job JOB (and, when it failed or stopped, why)."""
    from smlaunch import api

    status = api.attach(job, region=region).status()
    if output_format == "json":
        echo_json(
            {
                "name": status.name,
                "status": status.status,
                "secondary_status": status.secondary_status,
                "failure_reason": status.failure_reason,
                "billable_seconds": status.billable_seconds,
                "history": [dict(h) for h in status.history],
                "diagnosis": status.diagnosis.to_dict() if status.diagnosis is not None else None,
            }
        )
        return
    color = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}.get(status.status)
    click.echo(f"job        {status.name}")
    click.echo("status     " + click.style(status.status, fg=color) + f" ({status.secondary_status or '-'})")
    if status.instance_type:
        click.echo(f"cluster    {status.instance_count} x {status.instance_type}")
    if status.creation_time:
        click.echo(f"created    {_when(status.creation_time)}")
    if status.billable_seconds is not None:
        click.echo(f"billable   {status.billable_seconds} s")
    if status.failure_reason:
        click.echo("failure    " + click.style(status.failure_reason, fg="red"))
    if status.history:
        click.echo("history")
        for step in status.history:
            start = _when(step.get("StartTime")) if step.get("StartTime") else ""
            click.echo(f"  {step.get('Status', '?'):<12} {start:<20} {step.get('StatusMessage', '')}".rstrip())
    if status.diagnosis is not None:
        echo_diagnosis(status.diagnosis, err=False)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)
