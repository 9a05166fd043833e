"""``smlaunch init``."""

from __future__ import annotations

import click

from smlaunch.templates import STARTERS


@click.command(name="init")
@click.option(
    "--preset",
    type=click.Choice(list(STARTERS)),
    default="gpt2-tiny-local",
    show_default=True,
    help="Starter template.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option("--name", help="Job name (default: the preset).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def command(preset: str, output: str | None, name: str | None, force: bool) -> None:
    """Write a commented job.yaml from a starter template.

    \b
    gpt2-10b, gpt2-30b, gpt2-60b   the AWS reference configurations, exactly as in the table
    gpt2-tiny-local                a tiny tp 2 x pp 2 job for `smlaunch local`
    """
    from smlaunch import api
    from smlaunch.cli.output_file import write_new

    text = api.starter(preset, name=name)
    if not output:
        click.echo(text, nl=False)
        return
    write_new(output, text, force=force)
    click.echo(f"wrote {output} ({STARTERS[preset]})")
    click.echo(f"next: smlaunch validate {output}")
