"""The ``smlaunch`` command line: a thin shell over the functions of :mod:`smlaunch.api`.

Each command lives in its own module (``smlaunch/cli/<command>.py``, a click command named ``command``) and
is imported only when it runs, so ``smlaunch --help`` and ``smlaunch validate`` never import sagemaker,
boto3 or torch. Errors: an :class:`~smlaunch.errors.SmlaunchError` prints one red message and exits with its
code (2 for specs that cannot be read, 1 otherwise); ``SMLAUNCH_DEBUG=1`` shows the traceback.

Shell completion is click's (``_SMLAUNCH_COMPLETE``): commands, options, choices, ``--set`` keys from the
spec's JSON schema, instance types and model presets from :mod:`smlaunch.catalog` (see
:mod:`smlaunch.cli.common`); it imports neither the SDKs nor torch.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

COMPLETE_VAR = "_SMLAUNCH_COMPLETE"
"""click's shell completion variable: ``eval "$(_SMLAUNCH_COMPLETE=bash_source smlaunch)"`` (or zsh_source, ...)."""

COMMANDS: dict[str, str] = {
    "init": "Write a commented job.yaml from a reference template.",
    "validate": "Check job specs against the SMP v1 rulebook.",
    "schema": "Print the JSON Schema of job.yaml.",
    "render": "Print the estimator arguments smlaunch would pass.",
    "estimate": "Estimate per-GPU memory, throughput and cost.",
    "plan": "Find the fastest configuration that fits a model and cluster.",
    "submit": "Submit a job spec as a SageMaker training job.",
    "status": "Show a training job's status.",
    "logs": "Show (or follow) a training job's logs, every host interleaved.",
    "stop": "Stop a training job.",
    "list": "List training jobs.",
    "local": "Run a job spec on this machine with its parallel layout.",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"smlaunch.cli.{name.replace('-', '_')}_cmd")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="smlaunch")
def cli() -> None:
    """smlaunch: model-parallel GPT-2 training on Amazon SageMaker (SMP v1), from one job.yaml.

    \b
    smlaunch init --preset gpt2-30b -o job.yaml   start from a reference configuration
    smlaunch validate job.yaml                     catch bad layouts before they cost money
    smlaunch estimate job.yaml                     memory per GPU, tokens/s, cost
    smlaunch local job.yaml                        run it here, same layout, shrunk
    smlaunch submit job.yaml                       create the SageMaker training job
    """


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI and turn smlaunch errors into one message and an exit code."""
    from smlaunch.errors import SmlaunchError

    if os.environ.get(COMPLETE_VAR):  # the shell asks for completions (or for its script): no space after `key=`
        from click.shell_completion import add_completion_class

        from smlaunch.cli.common import bash_complete_class

        add_completion_class(bash_complete_class(), "bash")
    try:
        code = cli.main(args=argv, prog_name="smlaunch", standalone_mode=False)
    except SmlaunchError as exc:
        if os.environ.get("SMLAUNCH_DEBUG"):
            raise
        from smlaunch.cli.common import print_error

        print_error(exc)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
