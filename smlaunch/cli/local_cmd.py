"""``smlaunch local``: the job's own layout, shrunk, under torchrun on this machine."""

from __future__ import annotations

import sys
from typing import Any

import click

from smlaunch.cli.common import spec_command


def _parse_data(values: tuple[str, ...]) -> dict[str, str] | None:
    data: dict[str, str] = {}
    for value in values:
        channel, sep, path = value.partition("=")
        if sep and channel and "/" not in channel:
            data[channel] = path
        else:
            data["train"] = value
    return data or None


@click.command(name="local")
@spec_command
@click.option(
    "--nproc",
    type=int,
    default=None,
    help="Processes (a multiple of tp x pp). Default: tp x pp on "
    "CPU, the largest multiple of tp x pp that fits the GPUs.",
)
@click.option(
    "--shrink",
    type=click.Choice(["auto", "none"]),
    default="auto",
    show_default=True,
    help="auto: shrink a model too large for this machine (layout kept); none: the real size.",
)
@click.option("--steps", type=int, default=None, help="Override training.max_steps (shrunk runs default to 5).")
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="[CHANNEL=]DIR",
    help="Local data for a channel (default channel: train); needed for s3:// channels. Repeatable.",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Run directory (the emulated /opt/ml). Default: ./smlaunch-runs/<name>-<timestamp>/",
)
@click.option("--docker", is_flag=True, help="Use SageMaker local mode (Docker + docker compose) instead.")
@click.option(
    "--image",
    default=None,
    metavar="IMAGE",
    help="--docker: the training image (on this machine). Default: the newest docker/build-local-image.sh built.",
)
@click.option(
    "--hosts",
    type=click.IntRange(min=1),
    default=None,
    help="--docker: containers (algo-1 ... algo-N). Default: cluster.instance_count.",
)
@click.option("--force", is_flag=True, help="Run even when validation reports errors (each is named first).")
def command(
    file: str,
    overrides: tuple[str, ...],
    nproc: int | None,
    shrink: str,
    steps: int | None,
    data: tuple[str, ...],
    run_dir: str | None,
    docker: bool,
    image: str | None,
    hosts: int | None,
    force: bool,
) -> None:
    """Run a job spec on this machine with its tensor x pipeline layout, before paying for a cluster.

    Renders exactly what `submit` would, lays out a SageMaker-like container tree in the run directory,
    sets the SM_* environment of the SageMaker training toolkit and starts the entry point with torchrun
    (gloo on CPU, NCCL on GPUs). Prints what it changed, a live progress bar and a summary.
    """
    from rich.console import Console

    from smlaunch import local
    from smlaunch.spec.load import load_spec

    if not docker and (image or hosts):
        raise click.UsageError(f"{'--image' if image else '--hosts'} is an option of --docker (add --docker)")
    console = Console(highlight=False, file=sys.stdout)  # --docker takes over sys.stdout for the containers' lines
    spec = load_spec(file, overrides)
    count = (hosts or spec.cluster.instance_count) if docker else 1
    plan = local.plan_local(
        spec,
        nproc=nproc,
        shrink=shrink,
        steps=steps,
        data=_parse_data(data),
        run_dir=run_dir,
        force=force,
        hosts=count,
    )
    print_plan(console, plan)
    with StepProgress(console, plan) as progress:
        if docker:
            run = local.run_docker(plan, image=image, on_step=progress.update)
        else:
            run = local.launch(plan, on_step=progress.update)
    print_result(console, run)
    run.raise_for_status()


def _on_hosts(plan: Any) -> str:
    return f" in {plan.hosts} containers" if plan.hosts > 1 else ""


def print_plan(console: Any, plan: Any) -> None:
    """The layout line, the before -> after table and the notes."""
    from rich.markup import escape
    from rich.table import Table

    req = plan.request
    hp = req.hyperparameters
    tp, pp = hp["tensor_parallel_degree"], hp["pipeline_parallel_degree"]
    console.print(
        f"[bold]{plan.spec.name}[/]: {plan.nproc} process(es){_on_hosts(plan)} on {plan.device.upper()} = "
        f"tp {tp} x pp {pp} x dp {plan.nproc // (tp * pp)}; {hp['num_layers']} layers x {hp['hidden_width']} hidden, "
        f"{hp['num_heads']} heads, seq {hp['seq_length']}, {hp['max_steps']} steps"
    )
    if plan.changes:
        table = Table(title="Changed for this machine", title_justify="left")
        for column in ("setting", "spec", "local", "why"):
            table.add_column(column)
        for change in plan.changes:
            table.add_row(change.field, str(change.before), str(change.after), escape(change.reason))
        console.print(table)
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")
    for f in plan.report.warnings if plan.report else ():
        console.print(f"[yellow]warning[/] {f.rule} {f.field}: {escape(f.message)}", soft_wrap=True)
    for f in plan.forced:
        console.print(f"[red]--force:[/] running despite {f.rule} {f.field}: {escape(f.message)}", soft_wrap=True)
    console.print(f"run directory: {escape(str(plan.run_dir))}", soft_wrap=True)


class StepProgress:
    """A rich progress bar fed by rank 0's step lines: step, loss, tokens/s and ETA."""

    def __init__(self, console: Any, plan: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.total = plan.request.hyperparameters["max_steps"]
        self.progress = Progress(
            TextColumn("[bold blue]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(f"starting {plan.nproc} ranks", total=self.total, loss="-", tps="-")

    def __enter__(self) -> StepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, metrics: dict[str, float | int]) -> None:
        self.progress.update(
            self.task,
            description="training",
            completed=int(metrics["step"]),
            loss=f"{metrics['loss']:.4f}",
            tps=f"{metrics.get('tokens_per_s', 0):,.0f}",
        )


def print_result(console: Any, run: Any) -> None:
    """Summary table from metrics.json on success; rank, failure file and error tail on failure."""
    from rich.markup import escape
    from rich.table import Table

    if not run.ok:
        rank = f"rank {run.failed_rank}" if run.failed_rank is not None else "a rank"
        console.print(f"[red bold]local run failed[/] ({rank}, exit {run.returncode}, {run.wall_s:.1f}s)")
        diagnosis = run.diagnosis
        if run.error_tail and (diagnosis is None or not diagnosis.known):
            tail = "\n".join(run.error_tail.rstrip().splitlines()[-15:])
            console.print(tail, markup=False, highlight=False, soft_wrap=True)
        if run.failure and (not run.reason or run.reason not in run.failure):
            console.print(f"[red]failure file:[/] {escape(run.failure)}", soft_wrap=True)
        for line in diagnosis.text_lines() if diagnosis is not None else ():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        for host, text in host_rows(run):
            console.print(f"{host}: {text}", markup=False, highlight=False, soft_wrap=True)
        return
    m = run.metrics or {}
    table = Table(title="Local run", title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    mems = ", ".join(f"{x:.2f}" for x in m.get("peak_mem_gib_per_rank") or [] if x is not None)
    rows = (
        []
        if run.metrics is None
        else [  # an own script writes no metrics.json (our entry points' contract)
            ("steps", f"{m.get('steps')} (from step {m.get('start_step', 0)})"),
            ("loss", f"{_num(m.get('first_loss'), '.4f')} -> {_num(m.get('last_loss'), '.4f')}"),
            (
                "throughput",
                f"{_num(m.get('tokens_per_s'), ',.0f')} tokens/s, {_num(m.get('step_time_s'), '.3f')} s/step",
            ),
            ("layout", str(m.get("layout"))),
            ("peak memory / rank (GiB)", mems or "-"),
            ("checkpoint", _checkpoint(run, m.get("checkpoint"))),
        ]
    )
    if run.metrics is None:
        rows.append(("script", f"{run.plan.request.entry_point} exited 0 on every rank"))
    rows += host_rows(run)
    rows += [
        ("outputs", _outputs(run.outputs())),
        ("wall time", f"{run.wall_s:.1f} s"),
        ("run directory", str(run.run_dir)),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))
    console.print(table)


def _checkpoint(run: Any, path: Any) -> str:
    """The last checkpoint; a ``--docker`` run's stays in its container (local mode has no checkpoint channel)."""
    if run.host_logs() and path:
        return f"{path} (inside the containers, removed with them: SageMaker local mode has no checkpoint channel)"
    return str(path)


def host_rows(run: Any) -> list[tuple[str, str]]:
    """One row per container of a ``--docker`` run: its log file, its line count and its last step line."""
    from smlaunch.progress import parse_step_line

    rows = []
    for host, path in run.host_logs().items():
        lines = path.read_text(errors="replace").splitlines()
        steps = [line for line in lines if parse_step_line(line) is not None]
        last = steps[-1] if steps else (lines[-1] if lines else "(no output)")
        rows.append((host, f"{path.relative_to(run.run_dir)} ({len(lines)} lines): {last.strip()}"))
    return rows


def _num(value: Any, spec: str) -> str:
    """A metric as ``spec`` formats it, ``-`` when the run has none (a rerun that resumed at its last step trained
    no step: its metrics.json holds nulls)."""
    return "-" if value is None else format(value, spec)


def _outputs(paths: list[Any]) -> str:
    """``model/model/ (5 files), output/data/metrics.json``: files grouped by their directory."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(str(path.parent), []).append(path.name)
    parts = [f"{d}/{names[0]}" if len(names) == 1 else f"{d}/ ({len(names)} files)" for d, names in groups.items()]
    return ", ".join(parts) or "-"
