"""``smlaunch logs``: every host's CloudWatch lines, interleaved in time order; ``--follow`` shows progress.

A job that ended Failed or Stopped gets its diagnosis after the lines (:mod:`smlaunch.diagnosis`); a job with no
log streams says so, and why.
"""

from __future__ import annotations

import click

region_option = click.option("--region", default=None, help="AWS region of the job (default: the AWS configuration).")


@click.command(name="logs")
@click.argument("job")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends, with a progress line.")
@click.option("--poll", "poll_s", type=float, default=5.0, show_default=True, help="Seconds between polls.")
@region_option
def command(job: str, follow: bool, poll_s: float, region: str | None) -> None:
    """Print the logs of training job JOB, each line prefixed with its host (algo-N)."""
    from smlaunch import api

    handle = api.attach(job, region=region)
    if follow:
        follow_job(handle, poll_s=poll_s)
        return
    printed = 0
    for host, _, line in handle.logs():
        click.echo(f"[{host}] {line}")
        printed += 1
    status = handle.status()
    if not printed:
        click.echo(no_logs_text(status), err=True)
    if status.diagnosis is not None:
        echo_diagnosis(status.diagnosis)


def no_logs_text(status) -> str:
    """Why a job has no log lines: not started yet, or it ended before any instance logged."""
    where = f"{status.status} ({status.secondary_status or '-'})"
    if status.done:
        return (
            f"{status.name} has no log streams: it ended {where} before any instance wrote to CloudWatch "
            "(e.g. no capacity, a data channel SageMaker could not download, or stopped while starting)"
        )
    return (
        f"{status.name} has no log streams yet ({where}): SageMaker creates one per host once its instance has "
        "started; `smlaunch logs --follow` waits for them"
    )


def echo_diagnosis(diagnosis, *, err: bool = True) -> None:
    """Print a diagnosis block (``diagnosis  cause: summary``, field, fix, evidence)."""
    for i, text in enumerate(diagnosis.text_lines()):
        click.echo(click.style(text, fg="red" if diagnosis.known else "yellow") if i == 0 else text, err=err)


def follow_job(handle, *, poll_s: float = 5.0):
    """Stream ``handle``'s logs until it ends: secondary status, then step/loss/tokens/s and an ETA (rich).

    Returns the final JobStatus; a Failed job (or one a limit stopped) prints its diagnosis and exits 1.
    """
    from rich.console import Console
    from rich.live import Live

    from smlaunch.progress import Progress

    console = Console(highlight=False)
    status = handle.status()
    progress = Progress(max_steps=status.max_steps)
    state = {"status": status, "lines": 0}

    def on_status(new) -> None:
        if not console.is_terminal and not new.done and new.secondary_status != state["status"].secondary_status:
            console.print(f"{new.name}: {new.status} ({new.secondary_status})")
        state["status"] = new

    live = None
    if console.is_terminal:
        live = Live(_line(handle, state, progress), console=console, refresh_per_second=4, transient=True)
    elif not status.done:  # a job that already ended is shown once, by the final line
        console.print(_line(handle, state, progress))
    with live or _Null():
        for host, _, text in handle.logs(follow=True, poll_s=poll_s, on_status=on_status):
            console.print(f"[{host}] {text}", markup=False)
            state["lines"] += 1
            progress.update(text)
            if live is not None:
                live.update(_line(handle, state, progress))
    final = state["status"] = handle.status()
    console.print(_line(handle, state, progress))
    return _ended(final, printed=state["lines"])


def _line(handle, state, progress):
    """``job: InProgress (Training)  step 12/100 ... ETA 13s``; no ETA once the job has ended."""
    from rich.text import Text

    s = state["status"]
    text = Text(f"{handle.name}: {s.status}", style="bold")
    if s.secondary_status and s.secondary_status != s.status:
        text.append(f" ({s.secondary_status})")
    if progress.latest:
        text.append("  " + progress.summary(eta=not s.done), style="cyan")
    return text


def _ended(final, *, printed: int):
    """Say why a job has no lines, and a failed job's diagnosis; exit 1 when it failed (or a limit stopped it)."""
    if not printed:
        click.echo(no_logs_text(final), err=True)
    diagnosis = final.diagnosis
    if diagnosis is None:
        return final
    echo_diagnosis(diagnosis)
    if final.status == "Failed" or diagnosis.cause != "stopped":
        verb = "failed" if final.status == "Failed" else "stopped"
        # the diagnosis above is the message: a job's failure is not smlaunch's, so no traceback hint
        click.echo(click.style("error: ", fg="red", bold=True) + f"{final.name} {verb}: {diagnosis.summary}", err=True)
        raise click.exceptions.Exit(1)
    return final


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
