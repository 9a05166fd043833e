"""Causes in the training processes' own output: CUDA and host out-of-memory, a process killed by a signal,
SMP configuration errors, EFA / network errors, NCCL timeouts and errors, a Python exception in the script.

The formats are PyTorch's, NCCL's, aws-ofi-nccl's and SMP's (tests/data/failures/ cites a public report of each).
"""

from __future__ import annotations

import re
import signal

from smlaunch.diagnosis.context import FailureContext, Line, host_order, rank_in
from smlaunch.diagnosis.model import Diagnosis, evidence

_CUDA_OOM = re.compile(
    r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError: CUDA|CUBLAS_STATUS_ALLOC_FAILED"
)
_ALLOC = re.compile(r"Tried to allocate (?P<size>[\d.]+ [KMGT]i?B)")
_HOST_OOM = re.compile(
    r"OutOfMemoryError: Please use an instance type with more memory|Signal 9 \(SIGKILL\)|exitcode: -9\b|"
    r"exitcode\s*: -9\b|ExitCode 137\b|Killed process \d+|killed by signal: Killed|can't allocate memory|"
    r"std::bad_alloc|MemoryError\b"
)
_DATALOADER = re.compile(r"DataLoader worker \(pid[^)]*\) is killed by signal: Killed|DataLoader worker .* exited")
_SMP = re.compile(
    r"SMP\w*Error|smdistributed\.modelparallel\.\S*(?:Error|Exception)|The number of node-local MPI processes|"
    r"smp\.\w+ (?:must|cannot|should)",
)
_SMP_FIELDS = (
    ("node-local MPI processes", "cluster.processes_per_host"),
    ("tensor_parallel_degree", "smp.tensor_parallel_degree"),
    ("pipeline_parallel_degree", "smp.pipeline_parallel_degree"),
    ("partitions", "smp.pipeline_parallel_degree"),
    ("active_microbatches", "smp.active_microbatches"),
    ("microbatches", "smp.microbatches"),
    ("sharded_data_parallel_degree", "smp.sharded_data_parallel_degree"),
    ("ddp", "smp.ddp"),
)
_NETWORK = re.compile(
    r"NCCL WARN NET/(?:OFI|Socket|IB)|NET/OFI .*(?:completed with error|failed|Unable to)|Last error:\s*NET/|"
    r"libfabric:.*(?:efa|EFA).*<(?:warn|error)>.*(?:fail|error)|Call to recv from .* failed|"
    r"Connection (?:reset by|closed by remote) peer|NET/IB : Got completion from peer .* with error"
)
_WATCHDOG = re.compile(
    r"Watchdog caught collective operation timeout: WorkNCCL\((?P<work>.*?)\) ran for (?P<ms>\d+) milliseconds"
)
_NCCL_ERROR = re.compile(
    r"NCCL error in: \S+ (?P<what>[^,\n]+)|NCCL error: (?P<what2>[^,\n]+)|(?P<code>nccl(?:Remote|System|Internal|"
    r"UnhandledCuda|InvalidUsage)Error)|NCCL communicator was aborted"
)
_TRACEBACK = "Traceback (most recent call last):"
_FRAME = re.compile(r'^File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning))(?::\s*(?P<msg>.*))?$")
_LIBRARY = ("site-packages/", "dist-packages/", "/lib/python3", "<frozen", "/torch/", "runpy.py")
_KNOCK_ON = re.compile(r"NCCL|DistBackendError|ProcessGroup|ChildFailedError|Watchdog|SignalException|ncclRemote")


def _hosts_first(ctx: FailureContext, found: list[Line]) -> list[Line]:
    """``found`` with the hosts' own lines before the platform's words about them (FailureReason quotes a host)."""
    return sorted(found, key=lambda line: line.host == ctx.service_host)


def _where(ctx: FailureContext, line: Line) -> str:
    """``algo-2 (rank 11)``, ``rank 1`` (local), or the host alone."""
    rank = rank_in(line)
    if line.host == ctx.service_host:
        return "a host the FailureReason does not name" if rank is None else f"rank {rank}"
    if ctx.local or line.host.startswith("rank "):
        return f"rank {rank}" if rank is not None else line.host
    return f"{line.host} (rank {rank})" if rank is not None else line.host


def cuda_oom(ctx: FailureContext) -> Diagnosis | None:
    from smlaunch.diagnosis.fixes import oom_fix

    found = _hosts_first(ctx, ctx.search(_CUDA_OOM))
    if not found:
        return None
    line = found[0]
    alloc = _ALLOC.search(line.text)
    asked = f": tried to allocate {alloc['size']}" if alloc else ""
    field, fix, estimated = oom_fix(ctx)
    return Diagnosis(
        "cuda-oom",
        f"CUDA out of memory on {_where(ctx, line)}{asked}{estimated}",
        field,
        fix,
        (evidence(line.host, line.text),),
    )


def host_oom(ctx: FailureContext) -> Diagnosis | None:
    """Host memory exhausted, or a process killed by SIGKILL (the kernel's OOM killer sends it)."""
    loader = _hosts_first(ctx, ctx.search(_DATALOADER))
    if loader:
        return Diagnosis(
            "host-oom",
            f"a DataLoader worker on {_where(ctx, loader[0])} was killed (signal 9): out of host memory?",
            None,
            "each worker holds a copy of what the dataset object holds: lower the script's DataLoader num_workers "
            "(or what each worker keeps in memory), or use an instance with more host memory",
            (evidence(loader[0].host, loader[0].text),),
        )
    found = _hosts_first(ctx, ctx.search(_HOST_OOM))
    if ctx.local and ctx.exit_code == -signal.SIGKILL and not found:
        found = [Line(f"rank {ctx.failed_rank}", "exitcode: -9 (SIGKILL)")]
    if not found and not (ctx.local and ctx.exit_code == -signal.SIGKILL):
        return None
    line = found[0]
    who = f"rank {ctx.failed_rank}" if ctx.local and ctx.failed_rank is not None else _where(ctx, line)
    killed = "SIGKILL" in line.text or "-9" in line.text or "137" in line.text or ctx.exit_code == -9
    asked = re.search(r"tried to allocate (\d+) bytes", line.text)
    size = f": tried to allocate {int(asked[1]) / 2**30:,.1f} GiB" if asked else ""
    what = f"{who} was killed by SIGKILL (signal 9): out of host memory?" if killed else f"{who} ran out of host memory"
    what += size
    field, fix = _host_memory_fix(ctx)
    return Diagnosis("host-oom", what, field, fix, tuple(evidence(f.host, f.text) for f in found[:2]))


def _host_memory_fix(ctx: FailureContext) -> tuple[str | None, str]:
    spec = ctx.spec
    if ctx.local:
        return None, (
            "run fewer ranks (--nproc) or a smaller model (--shrink auto); `dmesg` names the process the kernel's "
            "OOM killer chose, if it was the OOM killer"
        )
    if spec is not None and spec.engine == "smp" and not spec.smp.delayed_parameter_initialization:
        return "smp.delayed_parameter_initialization", (
            "set smp.delayed_parameter_initialization: true: without it every process builds the whole model in host "
            "memory before SMP cuts it (rule HOST001 shows the arithmetic; `smlaunch validate`)"
        )
    return None, (
        "look at what holds host memory: the model build (rule HOST001 in `smlaunch validate`), DataLoader workers, "
        "or a dataset read whole into memory; then use an instance with more host memory or fewer processes per host"
    )


def killed_by_signal(ctx: FailureContext) -> Diagnosis | None:
    """A local rank killed by a signal other than SIGKILL (SIGSEGV, SIGABRT, ...)."""
    if not ctx.local or ctx.exit_code is None or ctx.exit_code >= 0:
        return None
    try:
        name = signal.Signals(-ctx.exit_code).name
    except ValueError:
        name = f"signal {-ctx.exit_code}"
    who = f"rank {ctx.failed_rank}" if ctx.failed_rank is not None else "a rank"
    return Diagnosis(
        "signal",
        f"{who} was killed by {name} (signal {-ctx.exit_code})",
        None,
        f"a crash in native code (SIGSEGV) or an abort (SIGABRT, e.g. a failed collective): read {who}'s log "
        "(below) for the last thing it did",
        tuple(evidence(h, ctx.logs[h][-1]) for h in sorted(ctx.logs, key=host_order) if ctx.logs[h])[:3],
    )


def smp_config(ctx: FailureContext) -> Diagnosis | None:
    found = _hosts_first(ctx, ctx.search(_SMP))
    if not found:
        return None
    line = next((f for f in found if re.search(r"Error\b", f.text)), found[0])
    field = next((f for key, f in _SMP_FIELDS if key in line.text), None)
    return Diagnosis(
        "smp-config",
        f"SMP refused its configuration on {_where(ctx, line)}: {line.text[:200]}",
        field,
        (f"change {field} so that SMP accepts it; `smlaunch validate job.yaml` checks the layout rules" if field
         else "`smlaunch validate job.yaml` checks SMP's layout rules; the evidence names the setting SMP refused"),
        (evidence(line.host, line.text),),
    )  # fmt: skip


def network(ctx: FailureContext) -> Diagnosis | None:
    found = ctx.search(_NETWORK, service=False)
    if not found:
        return None
    line = found[0]
    vpc = ctx.spec is not None and bool(ctx.spec.sagemaker.subnets)
    return Diagnosis(
        "network",
        f"network error between hosts on {_where(ctx, line)} (EFA / sockets): {line.text[:160]}",
        "sagemaker.security_group_ids" if vpc else None,
        ("in a VPC, EFA needs a security group that allows all traffic to and from itself "
         "(sagemaker.security_group_ids); " if vpc else "")
        + "if one host shows it again and again, stop the job and report that instance to AWS Support; otherwise "
        "submit again (transient). `NCCL_DEBUG=INFO` in sagemaker.environment logs the transport NCCL picked",
        tuple(evidence(f.host, f.text) for f in found[:2]),
    )  # fmt: skip


def nccl_timeout(ctx: FailureContext) -> Diagnosis | None:
    found = ctx.search(_WATCHDOG, service=False)
    if not found:
        return None
    first = _WATCHDOG.search(found[0].text)
    work = dict(part.split("=", 1) for part in first["work"].split(", ") if "=" in part)
    op, seq = work.get("OpType", "a collective"), work.get("SeqNum", "?")
    limit = int(work.get("Timeout(ms)", first["ms"])) / 1000
    ranks = sorted({r for r in (rank_in(f) for f in found) if r is not None})
    hosts = sorted({f.host for f in found})
    peers = {h for h in ctx.logs if h.startswith(("algo-", "rank "))}
    silent = sorted(peers - set(hosts), key=host_order)
    who = f"rank(s) {', '.join(map(str, ranks[:8]))}{' ...' if len(ranks) > 8 else ''} on {', '.join(hosts[:4])}"
    summary = f"NCCL timeout: {op} (SeqNum {seq}) did not finish within {limit:g} s on {who}"
    if silent:
        summary += f"; {', '.join(silent[:4])} reported no timeout"
    look = f"{silent[0]}'s log first: a rank there" if silent else "the hosts' last lines before the timeout: a rank"
    return Diagnosis(
        "nccl-timeout",
        summary,
        None,
        f"look at {look} stopped before {op} (crashed, hung in data loading or a checkpoint, or ran a different "
        "collective); a rank that is slow every step shows as a growing step_time_s. Set NCCL_DEBUG=INFO in "
        "sagemaker.environment to see which peer each rank waited for",
        tuple(evidence(f.host, f.text) for f in found[:2]),
    )


def nccl_error(ctx: FailureContext) -> Diagnosis | None:
    found = _hosts_first(ctx, ctx.search(_NCCL_ERROR))
    if not found:
        return None
    line = found[0]
    match = _NCCL_ERROR.search(line.text)
    what = (match["what"] or match["what2"] or match["code"] or "communicator aborted").strip()
    return Diagnosis(
        "nccl-error",
        f"NCCL error on {_where(ctx, line)}: {what}",
        None,
        "an NCCL error is often a peer that exited first: look for the earliest failure on any host "
        "(`smlaunch logs JOB`), then for network errors; set NCCL_DEBUG=INFO in sagemaker.environment for details",
        tuple(evidence(f.host, f.text) for f in found[:2]),
    )


def python_exception(ctx: FailureContext) -> Diagnosis | None:
    """The script raised: the exception and the innermost traceback frame in user code (not a library)."""
    for host in _hosts_first_failing(ctx):
        found = _traceback(host, [line.text for line in ctx.lines() if line.host == host])
        if found is not None:
            exc, frame = found
            at = f" at {frame[0]}:{frame[1]} in {frame[2]}" if frame else ""
            if frame and _ours(ctx, frame[0]) and "DataError" in exc.split(":", 1)[0]:
                return _data_error(ctx, host, exc)
            if frame and _ours(ctx, frame[0]):
                return Diagnosis(
                    "python-exception",
                    f"{exc} on {host}{at} (smlaunch's entry point)",
                    None,
                    "smlaunch's entry point refused or failed on what it was given: its message says what; "
                    "`smlaunch validate job.yaml` checks the spec first (a run that passed it is worth a bug report)",
                    (evidence(host, exc), evidence(host, f'File "{frame[0]}", line {frame[1]}, in {frame[2]}')),
                )
            return Diagnosis(
                "python-exception",
                f"{exc} on {host}{at}",
                None,
                (f"fix the script at {frame[0]}:{frame[1]} ({frame[2]}); `smlaunch local` reproduces a run on this "
                 "machine" if frame else "read the traceback (`smlaunch logs JOB`); `smlaunch local` reproduces a "
                 "run on this machine"),
                (evidence(host, exc),) + ((evidence(host, f'File "{frame[0]}", line {frame[1]}, in {frame[2]}'),)
                                          if frame else ()),
            )  # fmt: skip
    return None


def _data_error(ctx: FailureContext, host: str, exc: str) -> Diagnosis:
    """The entry point's DataError (entrypoints/data.py): the channel's shards cannot make batches."""
    match = re.search(r"input/data/(\w+)", exc)
    channel = match[1] if match else "train"
    return Diagnosis(
        "data-error",
        f"the {channel} channel's token shards are unusable on {host}: {exc[:240]}",
        f"data.{channel}",
        f"remake the shards of data.{channel} with entrypoints/tokenize_text.py (uint16 token ids below "
        "model.vocab_size), or point it at shards made for this model",
        (evidence(host, exc),),
    )


def _ours(ctx: FailureContext, path: str) -> bool:
    """True for a frame in smlaunch's own entry points (not in an own ``entry_point:`` script)."""
    from smlaunch.resources import entrypoints_dir

    own = (ctx.spec is not None and ctx.spec.entry_point is not None) or ctx.extra.get("program") not in (
        None, "train_gpt2.py"
    )  # fmt: skip
    return not own and path.rsplit("/", 1)[-1] in {p.name for p in entrypoints_dir().glob("*.py")}


def _hosts_first_failing(ctx: FailureContext) -> list[str]:
    hosts = sorted(ctx.logs, key=host_order)
    if ctx.failed_rank is not None and f"rank {ctx.failed_rank}" in ctx.logs:
        hosts.remove(f"rank {ctx.failed_rank}")
        hosts.insert(0, f"rank {ctx.failed_rank}")
    return hosts


def _traceback(host: str, texts: list[str]) -> tuple[str, tuple[str, str, str] | None] | None:
    """(exception line, innermost user frame) of the last traceback in ``texts`` whose exception is not a
    knock-on error of a peer (NCCL, torchrun's ChildFailedError)."""
    from smlaunch.diagnosis.context import parse_line

    lines = [parse_line(host, t).text for t in texts]
    starts = [i for i, t in enumerate(lines) if t.startswith(_TRACEBACK)]
    for start in reversed(starts):
        frames, exc = [], None
        for text in lines[start + 1 :]:
            frame = _FRAME.match(text)
            if frame:
                frames.append((frame["path"], frame["line"], frame["fn"]))
                continue
            match = _EXCEPTION.match(text)
            if match and frames:
                exc = text
                break
        if exc and not _KNOCK_ON.search(exc):
            user = [f for f in frames if not any(lib in f[0] for lib in _LIBRARY)]
            return exc, (user[-1] if user else None)
    return None


def unknown(ctx: FailureContext) -> Diagnosis:
    """No known cause: the last lines of each host, marked unknown."""
    hosts = sorted(ctx.logs, key=host_order)
    tail = tuple(evidence(host, line) for host in hosts for line in ctx.logs[host][-3:] if line.strip())
    reason = f" (FailureReason: {ctx.failure_reason[:200]})" if ctx.failure_reason else ""
    return Diagnosis(
        "unknown",
        f"unknown cause: none of the known failures matched{reason}",
        None,
        "read the last lines of each host below; `smlaunch logs JOB` prints every line"
        if tail
        else "there are no log lines to read: `smlaunch logs JOB` says why",
        tail or ((evidence(ctx.service_host, ctx.failure_reason),) if ctx.failure_reason else ()),
    )
