"""``smlaunch estimate``: per-GPU memory against the GPU, step time, tokens/s and cost of a job spec."""

from __future__ import annotations

import sys

import click

from smlaunch.cli.common import echo_json, format_option, spec_command

BAR_WIDTH = 30


@click.command(name="estimate")
@spec_command
@format_option
def command(file: str, overrides: tuple[str, ...], output_format: str) -> int:
    """Estimate per-GPU memory (term by term), the verdict against the GPU, step time, tokens/s and cost.

    The model and every constant are documented in smlaunch/costmodel/memory.py and throughput.py.
    """
    from smlaunch import api

    est = api.estimate(file, overrides=overrides)
    if output_format == "json":
        echo_json(est.to_dict())
    else:
        render(est)
    warn_secrets(file, overrides)
    return 0


def warn_secrets(file: str, overrides: tuple[str, ...]) -> None:
    """JOB008 on stderr: a secret in ``sagemaker.environment`` is worth saying wherever the spec is used."""
    from smlaunch.spec.load import load_spec
    from smlaunch.spec.rules import check

    for finding in check(load_spec(file, overrides)).warnings:
        if finding.rule == "JOB008":
            click.echo(f"warning JOB008 {finding.field}: {finding.message}", err=True)


def render(est) -> None:
    """Rich breakdown table with a bar against capacity, the verdict, then speed and cost."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    data = est.to_dict()
    capacity = data["gpu_memory_gib"]
    table = Table(title=f"Memory per GPU: {est.layout.summary()}", title_justify="left")
    table.add_column("term")
    table.add_column("GiB", justify="right")
    table.add_column(f"share of {capacity:.0f} GiB", no_wrap=True)
    for name, gib in data["breakdown"].items():
        cells = round(BAR_WIDTH * gib / capacity)
        table.add_row(name, f"{gib:.2f}", "█" * min(cells, BAR_WIDTH) + ("+" if cells > BAR_WIDTH else ""))
    table.add_row("[bold]total[/bold]", f"[bold]{data['memory_gib_per_gpu']:.2f}[/bold]", "")
    console.print(table)
    colour, verdict = ("green", "fits") if data["fits"] else ("red", "does NOT fit")
    console.print(
        f"[{colour}][bold]{verdict}[/bold][/{colour}] on {data['gpu']} ({capacity:.1f} GiB): headroom "
        f"{data['headroom_gib']:+.1f} GiB ({data['headroom_pct']:+.1f}%)"
        + (
            f"; {data['host_offloaded_gib']:.1f} GiB of activations offloaded to the host"
            if data["host_offloaded_gib"]
            else ""
        )
    )
    parts = data["step_breakdown_s"]
    console.print(
        f"step {data['step_time_s']:.3f} s (compute {parts['compute']:.3f}, bubble {data['bubble_fraction']:.0%}, "
        f"tp comm {parts['tensor_parallel_comm']:.3f}, dp comm exposed {parts['data_parallel_comm_exposed']:.3f}, "
        f"pp comm {parts['pipeline_comm']:.3f}); {data['tokens_per_s']:,.0f} tokens/s; MFU {data['mfu']:.1%}"
    )
    hours = data["time_s"] / 3600
    price = (
        "price unknown"
        if data["cost_usd"] is None
        else (f"${data['cost_usd']:,.2f} on demand, ${data['spot_cost_usd']:,.2f} spot")
    )
    if data["price"] is not None:
        p = data["price"]
        rate = f"{p['component']} rate, {p['region']}, {p['as_of']}"
        price += f" at ${p['usd_per_hour']:g}/h ({rate}; source: --format json)"
    console.print(f"{hours:.2f} h for max_steps: {price}")
    for note in data["extrapolated"]:
        console.print(f"[yellow]extrapolated[/yellow]: {escape(note)}", soft_wrap=True)
    for note in data["assumptions"]:
        console.print(f"[yellow]assumption[/yellow]: {escape(note)}", soft_wrap=True)
