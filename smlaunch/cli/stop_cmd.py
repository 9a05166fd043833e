"""``smlaunch stop``."""

from __future__ import annotations

import click

from smlaunch.cli.logs_cmd import region_option


@click.command(name="stop")
@click.argument("job")
@region_option
def command(job: str, region: str | None) -> None:
    """Stop training job JOB (SageMaker moves it to Stopping, then Stopped; the checkpoints stay in S3)."""
    from smlaunch import api

    handle = api.attach(job, region=region)
    status = handle.status()
    if status.done:
        click.echo(f"{job} already ended: {status.status}")
        return
    handle.stop()
    click.echo(f"Stopping {job}.")
    click.echo(f"  smlaunch status {job}    shows when it has stopped")
