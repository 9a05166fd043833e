"""``smlaunch schema``."""

from __future__ import annotations

import click

from smlaunch.cli.common import echo_json


@click.command(name="schema")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def command(output: str | None) -> None:
    """Print the JSON Schema of job.yaml.

    \b
    For editor completion and checks (yaml-language-server):
      smlaunch schema -o job.schema.json
      # first line of job.yaml:  # yaml-language-server: $schema=./job.schema.json
    """
    import json

    from smlaunch import api

    schema = api.json_schema()
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            json.dump(schema, handle, indent=2, sort_keys=True)
            handle.write("\n")
        click.echo(f"wrote {output}")
    else:
        echo_json(schema)
