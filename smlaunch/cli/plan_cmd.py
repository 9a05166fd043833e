"""``smlaunch plan``: the fastest configurations of a model that fit a cluster, on SMP v1 and the torch engine."""

from __future__ import annotations

import click

from smlaunch.cli.common import complete_instance_types, complete_model, echo_json, format_option


@click.command(name="plan")
@click.option(
    "--model",
    "model",
    required=True,
    metavar="PRESET|FILE",
    help="A preset (e.g. gpt2-30b), a job.yaml (its model section) or a YAML of model keys.",
    shell_complete=complete_model,
)
@click.option(
    "--instance-type",
    required=True,
    metavar="TYPE",
    help="SageMaker instance type, e.g. ml.p4d.24xlarge.",
    shell_complete=complete_instance_types,
)
@click.option("--instance-count", required=True, type=click.IntRange(min=1), help="Number of instances.")
@click.option("--seq-length", type=click.IntRange(min=1), default=None, help="Override the model's sequence length.")
@click.option(
    "--global-batch",
    type=click.IntRange(min=1),
    default=None,
    help="Samples per optimizer step every candidate trains (default: the reference table's, else 0.5M tokens).",
)
@click.option(
    "--vary-batch",
    is_flag=True,
    help="Let the batch size vary (fastest per token wins) instead of training the same global batch everywhere.",
)
@click.option(
    "--engine",
    type=click.Choice(["smp", "torch", "auto"]),
    default="auto",
    show_default=True,
    help="Engine to plan for; auto: every engine that runs on the instance, ranked together.",
)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Configurations to show.")
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Steps for the time and cost columns.",
)
@format_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Write the chosen configuration as a commented job.yaml.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing -o file.")
def command(
    *,
    model,
    instance_type,
    instance_count,
    seq_length,
    global_batch,
    vary_batch,
    engine,
    top,
    max_steps,
    output_format,
    output,
    force,
) -> int:
    """Enumerate every valid tp/pp/microbatch/sharding/checkpointing/offload combination at one global batch on each
    engine, drop
    what breaks a rule or does not fit with 10% to spare, and rank the rest by whole-job time and cost."""
    from smlaunch import api
    from smlaunch.cli.output_file import refuse_existing

    if output:
        refuse_existing(output, force=force)  # before the search, not after it
    result = api.plan(
        model,
        instance_type=instance_type,
        instance_count=instance_count,
        seq_length=seq_length,
        global_batch=global_batch,
        vary_batch=vary_batch,
        top=top,
        max_steps=max_steps,
        engine=engine,
    )
    if output:
        write_job_yaml(result, output, force=force)
    if output_format == "json":
        echo_json(result.to_dict() | ({"output": output} if output else {}))
    else:
        render(result)
        if output:
            click.echo(f"wrote {output}; next: smlaunch validate {output} && smlaunch estimate {output}")
    return 0


def write_job_yaml(result, path: str, *, force: bool = False) -> None:
    """The first candidate as a commented job.yaml (checked by loading it back); an existing file only with force."""
    import textwrap

    from smlaunch.cli.output_file import write_new
    from smlaunch.spec.load import load_spec
    from smlaunch.templates import render_job_yaml

    best = result.best
    t = best.estimate.throughput
    header = (
        f"Planned by `smlaunch plan`: {best.estimate.layout.summary()}\n"
        f"Estimated {best.estimate.memory.total_gib:.1f} GiB per GPU of {best.estimate.gpu_memory_gib:.0f}; "
        f"{t.tokens_per_s:,.0f} tokens/s; step {t.step_time_s:.2f} s.\n" + textwrap.fill(result.explanation, 110)
    )
    text = render_job_yaml(best.spec, header=header)
    write_new(path, text, force=force)
    load_spec(path)


def render(result) -> None:
    """The top K as an aligned table that fits 80 columns, then the explanation paragraph."""
    import textwrap

    click.echo(f"{result.considered:,} configurations considered, {len(result.feasible):,} fit")
    click.echo(result.table_text())
    click.echo(textwrap.fill(result.explanation, 80))
