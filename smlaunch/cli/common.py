"""Options and output helpers shared by the commands (kept light: no rich, no SDK imports)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from smlaunch.errors import SmlaunchError

# -- shell completion (click's: `eval "$(_SMLAUNCH_COMPLETE=bash_source smlaunch)"`). Kept cheap: the catalog and
# the spec's JSON schema (pydantic), never the SDKs.


def _items(values: Any, incomplete: str) -> list:
    from click.shell_completion import CompletionItem

    return [CompletionItem(value) for value in values if value.startswith(incomplete)]


def complete_instance_types(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """``--instance-type``: the SageMaker instance types of :data:`smlaunch.catalog.INSTANCES`."""
    from smlaunch.catalog import INSTANCES

    return _items(INSTANCES, incomplete)


def complete_model(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """``--model PRESET|FILE``: the model presets of :data:`smlaunch.catalog.PRESETS`, else the shell's file names."""
    from click.shell_completion import CompletionItem

    from smlaunch.catalog import PRESETS

    return _items(PRESETS, incomplete) or [CompletionItem(incomplete, type="file")]


def spec_keys() -> list[str]:
    """Every ``--set`` key of job.yaml, from its JSON schema: ``name=``, ``smp.microbatches=``, ``cluster.spot.``.

    A key that holds a value ends in ``=``; a section, or a mapping of free names (``data.``,
    ``sagemaker.environment.``), ends in ``.``.
    """
    from smlaunch.spec.schema import json_schema

    schema = json_schema()
    defs = schema.get("$defs", {})

    def resolve(node: dict) -> dict:
        for option in node.get("anyOf", ()):
            if "$ref" in option or option.get("type") == "object":
                node = option
                break
        ref = node.get("$ref", "")
        return defs.get(ref.rpartition("/")[2], node) if ref else node

    keys: list[str] = []

    def walk(node: dict, prefix: str) -> None:
        for name, raw in node.get("properties", {}).items():
            sub = resolve(raw)
            if "properties" in sub:
                keys.append(f"{prefix}{name}.")
                walk(sub, f"{prefix}{name}.")
            elif sub.get("type") == "object" or "additionalProperties" in sub:
                keys.append(f"{prefix}{name}.")
                if f"{prefix}{name}" == "data":
                    keys.append("data.train=")  # the channel the entry point trains on
            else:
                keys.append(f"{prefix}{name}=")

    walk(schema, "")
    return keys


def complete_set_keys(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """``--set``: the keys one level below what is typed (``smp.`` -> ``smp.microbatches=``, ...)."""
    if "=" in incomplete:
        return []
    level = incomplete.rpartition(".")[0]
    depth = level.count(".") + 1 if level else 0
    return [
        item
        for item in _items(spec_keys(), incomplete)
        if item.value.rstrip(".=").count(".") == depth  # one level at a time: `cluster.` before `cluster.spot.`
    ]


def bash_complete_class() -> type:
    """click's bash completion, except that a completion ending in ``=`` or ``.`` (a ``--set`` key, a section)
    gets no space after it, so the value or the next key can be typed straight on."""
    from click.shell_completion import BashComplete

    anchor = "            COMPREPLY+=($value)\n"
    template = BashComplete.source_template
    if anchor in template:
        template = template.replace(
            anchor, anchor + "            [[ $value == *[=.] ]] && compopt -o nospace\n"
        )  # fmt: skip

    class SmlaunchBashComplete(BashComplete):
        source_template = template

    return SmlaunchBashComplete


set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a spec value, e.g. --set training.max_steps=10 (repeatable).",
    shell_complete=complete_set_keys,
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
    """One red error line (plus indented detail and the fix), on stderr, no traceback.

    Fixes are worded for the command line (``--set section.key=value``, see :func:`smlaunch.spec.findings.cli_fix`);
    the broken rules of a :class:`~smlaunch.errors.ValidationFailed` are listed one by one with theirs.
    """
    from smlaunch.spec.findings import cli_fix

    first, _, rest = exc.message.partition("\n")
    findings = getattr(exc, "findings", None)
    if findings:
        rest = "\n".join(f"  {f.rule} {f.field}: {f.message}" + (f"\n    fix: {f.cli_fix}" if f.fix else "")
                         for f in findings)  # fmt: skip
    click.echo(click.style("error: ", fg="red", bold=True) + first, err=True)
    if rest:
        click.echo(rest, err=True)
    if exc.fix:
        click.echo(click.style("  fix: ", fg="green") + cli_fix(exc.fix), err=True)
    if type(exc).__name__ != "SpecError":
        click.echo(click.style("  (SMLAUNCH_DEBUG=1 shows the traceback)", dim=True), err=True)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented, key-sorted JSON."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def is_interactive() -> bool:
    """True when stdin and stdout are terminals (confirmation prompts are allowed)."""
    return sys.stdin.isatty() and sys.stdout.isatty()
