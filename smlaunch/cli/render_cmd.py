"""``smlaunch render``."""

from __future__ import annotations

import click

from smlaunch.cli.common import spec_command


@click.command(name="render")
@spec_command
@click.option("--format", "output_format", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def command(file: str, overrides: tuple[str, ...], output_format: str) -> None:
    """Print the estimator arguments smlaunch would pass (no SDK import, no AWS call).

    The output is the keyword arguments of `sagemaker.pytorch.PyTorch` (SDK v2) under `estimator`, and the
    data channels of `fit()` under `fit.inputs`. Rendering is pure: the same spec prints the same text.
    """
    import json

    import yaml

    from smlaunch import api
    from smlaunch.targets import sagemaker_v2

    spec = api.load_spec(file, overrides)
    report = api.validate(spec)
    if report.errors:
        click.echo(
            click.style("warning: ", fg="yellow")
            + f"{file} breaks {len(report.errors)} rule(s); run `smlaunch validate {file}`",
            err=True,
        )
    request = api.render(spec)
    payload = sagemaker_v2.call(request)
    if output_format == "json":
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
    else:
        click.echo(yaml.safe_dump(payload, sort_keys=True, default_flow_style=False, width=120), nl=False)
