"""``smlaunch list``."""

from __future__ import annotations

import click

from smlaunch.cli.common import echo_json
from smlaunch.cli.logs_cmd import region_option

STATUSES = ["InProgress", "Completed", "Failed", "Stopping", "Stopped"]


@click.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only jobs in this status.")
@click.option("--name-contains", default=None, metavar="TEXT", help="Only jobs whose name contains TEXT.")
@click.option("--max-results", type=click.IntRange(1, 1000), default=20, show_default=True)
@region_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(status: str | None, name_contains: str | None, max_results: int, region: str | None,
            output_format: str) -> None:  # fmt: skip
    """List training jobs, newest first."""
    from smlaunch import api

    jobs = api.list_jobs(status=status, name_contains=name_contains, region=region, max_results=max_results)
    if output_format == "json":
        echo_json(jobs)
        return
    if not jobs:
        click.echo("no training jobs" + (" match" if status or name_contains else ""))
        return
    width = max(len(j["TrainingJobName"]) for j in jobs)
    click.echo(f"{'NAME':<{width}}  {'STATUS':<10}  CREATED")
    for job in jobs:
        created = job.get("CreationTime")
        created = created.strftime("%Y-%m-%d %H:%M:%S") if hasattr(created, "strftime") else str(created or "")
        click.echo(f"{job['TrainingJobName']:<{width}}  {job.get('TrainingJobStatus', '?'):<10}  {created}")
