"""``smlaunch logs``: every host's CloudWatch lines, interleaved in time order; ``--follow`` shows progress."""

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
    for host, _, line in handle.logs():
        click.echo(f"[{host}] {line}")


def follow_job(handle, *, poll_s: float = 5.0):
    """Stream ``handle``'s logs until it ends: secondary status, then step/loss/tokens/s and an ETA (rich).

    Returns the final JobStatus; a Failed job raises SubmitError with its failure reason.
    """
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from smlaunch.errors import SubmitError
    from smlaunch.progress import Progress

    console = Console(highlight=False)
    status = handle.status()
    progress = Progress(max_steps=status.max_steps)
    state = {"status": status}

    def line() -> Text:
        s = state["status"]
        text = Text(f"{handle.name}: {s.status}", style="bold")
        if s.secondary_status:
            text.append(f" ({s.secondary_status})")
        if progress.latest:
            text.append("  " + progress.summary(), style="cyan")
        return text

    def on_status(new) -> None:
        if not console.is_terminal and new.secondary_status != state["status"].secondary_status:
            console.print(f"{new.name}: {new.status} ({new.secondary_status})")
        state["status"] = new

    live = Live(line(), console=console, refresh_per_second=4, transient=True) if console.is_terminal else None
    if live is None:
        console.print(line())
    with live or _Null():
        for host, _, text in handle.logs(follow=True, poll_s=poll_s, on_status=on_status):
            console.print(f"[{host}] {text}", markup=False)
            progress.update(text)
            if live is not None:
                live.update(line())
    final = handle.status()
    state["status"] = final
    console.print(line())
    if final.status == "Failed":
        raise SubmitError(f"{final.name} failed: {final.failure_reason or 'no failure reason'}")
    return final


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
