"""``smlaunch render``."""

from __future__ import annotations

import click

from smlaunch.cli.common import spec_command


@click.command(name="render")
@spec_command
@click.option("--format", "output_format", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--show-secrets", is_flag=True, help="Print secret-looking environment values instead of ****.")
def command(file: str, overrides: tuple[str, ...], output_format: str, show_secrets: bool) -> None:
    """Print the estimator arguments smlaunch would pass (no SDK import, no AWS call).

    The output is the keyword arguments of `sagemaker.pytorch.PyTorch` (SDK v2) under `estimator`, and the
    data channels of `fit()` under `fit.inputs`. Rendering is pure: the same spec prints the same text.
    Secret-looking `sagemaker.environment` values (JOB008) print as **** unless --show-secrets.
    """
    import json

    import yaml

    from smlaunch import api
    from smlaunch.secret_values import masked_call
    from smlaunch.targets import sagemaker_v2

    spec = api.load_spec(file, overrides)
    report = api.validate(spec)
    if report.errors:
        click.echo(
            click.style("warning: ", fg="yellow")
            + f"{file} breaks {len(report.errors)} rule(s); run `smlaunch validate {file}`",
            err=True,
        )
    for finding in report.warnings:
        if finding.rule == "JOB008":
            click.echo(click.style("warning: ", fg="yellow") + f"{finding.rule} {finding.message}", err=True)
    request = api.render(spec)
    payload = sagemaker_v2.call(request)
    payload = payload if show_secrets else masked_call(payload)
    if output_format == "json":
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        click.echo(yaml.safe_dump(payload, sort_keys=True, default_flow_style=False, width=120), nl=False)
