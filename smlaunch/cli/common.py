"""Options and output helpers shared by the commands (kept light: no rich, no SDK imports)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from smlaunch.errors import SmlaunchError

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a spec value, e.g. --set training.max_steps=10 (repeatable).",
)

format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)


def spec_command(func: Callable) -> Callable:
    """Decorate a command that takes one job spec FILE and ``--set`` overrides."""
    func = set_option(func)
    return click.argument("file", type=click.Path(dir_okay=True, path_type=str))(func)


def print_error(exc: SmlaunchError) -> None:
    """One red error line (plus indented detail and the fix), on stderr, no traceback."""
    first, _, rest = exc.message.partition("\n")
    click.echo(click.style("error: ", fg="red", bold=True) + first, err=True)
    if rest:
        click.echo(rest, err=True)
    if exc.fix:
        click.echo(click.style("  fix: ", fg="green") + exc.fix, err=True)
    if type(exc).__name__ != "SpecError":
        click.echo(click.style("  (SMLAUNCH_DEBUG=1 shows the traceback)", dim=True), err=True)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented, key-sorted JSON."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def is_interactive() -> bool:
    """True when stdin and stdout are terminals (confirmation prompts are allowed)."""
    return sys.stdin.isatty() and sys.stdout.isatty()
