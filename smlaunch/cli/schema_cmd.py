"""``smlaunch schema``."""

from __future__ import annotations

import click

from smlaunch.cli.common import echo_json


@click.command(name="schema")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite an existing -o file.")
def command(output: str | None, force: bool) -> None:
    """Print the JSON Schema of job.yaml.

    \b
    For editor completion and checks (yaml-language-server):
      smlaunch schema -o job.schema.json
      # first line of job.yaml:  # yaml-language-server: $schema=./job.schema.json
    """
    import json

    from smlaunch import api
    from smlaunch.cli.output_file import write_new

    schema = api.json_schema()
    if output:
        write_new(output, json.dumps(schema, indent=2, sort_keys=True) + "\n", force=force)
        click.echo(f"wrote {output}")
    else:
        echo_json(schema)
