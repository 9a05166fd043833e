"""``smlaunch submit``: validate, estimate, confirm, then create the SageMaker training job."""

from __future__ import annotations

import click

from smlaunch.cli.common import is_interactive, spec_command


@click.command(name="submit")
@spec_command
@click.option("--wait", is_flag=True, help="Follow the job until it ends (status, step, loss, tokens/s, ETA).")
@click.option("--dry-run", is_flag=True, help="Print the exact CreateTrainingJob request; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@click.option("--max-cost", type=float, default=None, metavar="USD", help="Refuse when the estimated cost is higher.")
@click.option("--force", is_flag=True, help="Submit even when the spec breaks rules of the rulebook.")
@click.option("--job-name", default=None, help="Training job name (default: <name>-<UTC timestamp>-<hash>).")
@click.option("--show-secrets", is_flag=True, help="--dry-run: print secret-looking environment values, not ****.")
def command(file: str, overrides: tuple[str, ...], wait: bool, dry_run: bool, yes: bool, max_cost: float | None,
            force: bool, job_name: str | None, show_secrets: bool) -> None:  # fmt: skip
    """Submit the job spec FILE as a SageMaker training job (SMP v1, SDK v2 PyTorch estimator).

    Shows the layout, memory verdict and estimated time and cost, and asks before submitting.
    """
    from smlaunch import jobs
    from smlaunch.errors import SubmitError

    prepared = jobs.prepare(file, max_cost=max_cost, force=force, job_name=job_name, overrides=overrides)
    if prepared.report.errors:
        click.echo(click.style("warning: ", fg="yellow") + "--force: submitting despite rule errors", err=True)
    for text in prepared.summary_lines():
        click.echo(text, err=True)
    if dry_run:
        result = jobs.launch(prepared, dry_run=True)
        click.echo(f"# dry run: CreateTrainingJob request (nothing sent; source would upload to "
                   f"{result.submission.source_uri})", err=True)  # fmt: skip
        click.echo(result.to_yaml(show_secrets=show_secrets), nl=False)
        return
    if not yes:
        if not is_interactive():
            raise SubmitError(
                "not submitting: confirmation needed, and this is not an interactive terminal",
                fix="pass --yes to submit without a prompt (or --dry-run to see the request)",
            )
        if not click.confirm("Submit this job?", default=False, err=True):
            click.echo("Not submitted.", err=True)
            raise click.exceptions.Exit(1)
    handle = jobs.launch(prepared)
    region = f" --region {prepared.request.region}" if prepared.request.region else ""
    click.echo(f"Submitted {handle.name}")
    click.echo(f"  console: {handle.console_url}")
    click.echo(f"  smlaunch status {handle.name}{region}")
    click.echo(f"  smlaunch logs {handle.name}{region} --follow")
    click.echo(f"  smlaunch stop {handle.name}{region}")
    if wait:
        from smlaunch.cli.logs_cmd import follow_job

        follow_job(handle)
