"""Run a job spec on this machine: the real entry point under torchrun, in an emulated SageMaker container.

    run = run_local(load_spec("job.yaml"))            # shrunk on CPU, tp x pp layout kept
    run.raise_for_status()
    run.metrics["last_loss"], run.run_dir

``plan_local`` is pure apart from counting GPUs: it adapts the spec to this machine (:mod:`smlaunch.shrink`),
renders it exactly as ``submit`` would (:func:`smlaunch.request.render`) and resolves the data channels.
``launch`` lays out the run directory (:mod:`smlaunch.container`), starts

    python -m torch.distributed.run --nproc-per-node N --standalone --log-dir <run>/logs/ranks --tee 3 \\
        train_gpt2.py --activation_checkpointing 1 ... --mp_parameters active_microbatches=2,...

(``engine: torch``: ``--nnodes 1 --nproc_per_node N`` as the toolkit's TorchDistributedRunner passes them, no
``mp_parameters``, and the runner's NCCL/EFA variables)
in ``<run>/code`` with the ``SM_*`` environment, reads rank 0's step lines as they come, and collects
metrics.json, the failure file and torchrun's error file at the end. torchrun runs in its own process group:
SIGINT/SIGTERM/SIGHUP are forwarded as SIGTERM (the entry point checkpoints and exits 143); the group is killed
after ``grace_s`` or on a second signal, and by a watchdog if smlaunch dies (:mod:`smlaunch.local_stop`).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from smlaunch import container as ct
from smlaunch.errors import LocalRunError, MissingDependency, ValidationFailed
from smlaunch.local_docker import docker_missing, resolve_hosts, run_docker
from smlaunch.local_results import LocalRun, _collect, _parse_step, _split_rank
from smlaunch.local_stop import Stopper
from smlaunch.request import LaunchRequest, render
from smlaunch.shrink import Change, Shrink, adapt
from smlaunch.spec.findings import Finding, Report
from smlaunch.spec.models import JobSpec

DataArg = str | os.PathLike | Mapping[str, str | os.PathLike] | None


@dataclass(frozen=True)
class LocalPlan:
    """Everything a local run will do, decided before anything starts."""

    spec: JobSpec
    request: LaunchRequest
    changes: list[Change]
    nproc: int
    device: str
    num_gpus: int
    run_dir: Path
    job_name: str
    channels: dict[str, Path]
    notes: list[str] = field(default_factory=list)
    report: Report | None = None
    hosts: int = 1
    """Hosts the run stands in for: 1 under torchrun here; ``--docker`` starts one container per host."""
    """The validation of the spec as written (before the local adaptation): warnings, and errors run with force."""
    forced: tuple[Finding, ...] = ()
    """Errors that ``force`` ran despite (each is said before the run starts)."""

    @property
    def container(self) -> ct.Container:
        req = self.request
        return ct.Container(
            base_dir=self.run_dir,
            hyperparameters=ct.hyperparameters_json(
                req,
                job_name=self.job_name,
                region=req.region or "us-east-1",
                submit_dir=req.source_dir,
                processes_per_host=self.nproc,
            ),
            resource_config=ct.resource_config(req.instance_type),
            input_data_config=ct.input_data_config(list(self.channels)),
        )

    def argv(self) -> list[str]:
        """The entry point's arguments, exactly as the toolkit would pass them."""
        decoded = ct.decode_hyperparameters(self.container.hyperparameters)
        hps = {k: v for k, v in decoded.items() if not (k.startswith("sagemaker_") or k in ct.RESERVED_SAGEMAKER_KEYS)}
        return ct.user_args(hps)

    def command(self) -> list[str]:
        """The torchrun command line (run in ``<run_dir>/code``).

        ``engine: torch``: the toolkit's own torchrun options (:func:`smlaunch.container.torchrun_options`), then
        the local-only ``--standalone`` (a free rendezvous port, not 29500), ``--log-dir`` and ``--tee``.
        ``engine: smp``: torchrun stands in for SMP v1's mpirun, one process per rank as MPI would start them.
        """
        if self.request.engine == "torch":
            launcher = ct.torchrun_options(self.container.resource_config, processes_per_host=self.nproc)
        else:
            launcher = ["--nproc-per-node", str(self.nproc)]
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *launcher,
            *LOCAL_TORCHRUN_OPTIONS,
            "--log-dir",
            str(self.run_dir / "logs" / "ranks"),
            "--tee",
            "3",
            self.request.entry_point,
            *self.argv(),
        ]

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment: ``base`` (default os.environ) without SageMaker variables, plus the job's
        ``sagemaker.environment``, the ``SM_*`` contract, and torchrun/threading settings."""
        base = os.environ if base is None else base
        env = {k: v for k, v in base.items() if not k.startswith(("SM_", "SAGEMAKER_", "TRAINING_JOB_"))}
        env.update(self.request.environment)
        gpus = self.num_gpus if self.device == "cuda" else 0
        env.update(ct.sm_environment(self.container, num_gpus=gpus, num_cpus=ct.num_cpus(), job_name=self.job_name))
        if self.request.engine == "torch":
            env.update(ct.torch_distributed_environment(self.container.resource_config))
        code = str(self.run_dir / "code")
        packages = str(self.run_dir / "site-packages") if self.request.own_script else ""  # its requirements.txt
        env["PYTHONPATH"] = os.pathsep.join(p for p in (code, packages, base.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["TORCHELASTIC_ERROR_FILE"] = str(self.run_dir / "logs" / "error.json")
        env.setdefault("OMP_NUM_THREADS", str(max(1, ct.num_cpus() // self.nproc)))
        if self.device == "cpu" and self.num_gpus:
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env


LOCAL_TORCHRUN_OPTIONS = ("--standalone",)
"""What a local run adds to the launcher: a rendezvous on a free port of this machine (``--log-dir`` and ``--tee``
follow it to keep each rank's output)."""


def resolve_nproc(tp: int, pp: int, *, nproc: int | None, num_gpus: int) -> tuple[int, str, list[str]]:
    """(processes, "cpu" | "cuda", notes). Default: tp x pp on CPU, the largest multiple of tp x pp that
    fits the GPUs otherwise; an explicit ``nproc`` must be a multiple of tp x pp."""
    group = tp * pp
    notes: list[str] = []
    if nproc is not None:
        if nproc < 1 or nproc % group:
            raise LocalRunError(
                f"--nproc {nproc} is not a multiple of tp({tp}) x pp({pp}) = {group}",
                fix=f"use --nproc {group} (or a multiple: {group * 2}, {group * 3}, ...)",
            )
    if num_gpus >= (nproc or group):
        return nproc or num_gpus // group * group, "cuda", notes
    if num_gpus:
        notes.append(f"{num_gpus} GPU(s) < {nproc or group} processes: running on CPU (gloo)")
    return nproc or group, "cpu", notes


def resolve_channels(spec: JobSpec, data: DataArg) -> dict[str, Path]:
    """Channel -> local directory: ``data`` overrides (a DIR for ``train``, or {channel: DIR}), then the spec's
    ``local:``/``file:``/plain paths (``local:sample`` is the shipped sample dataset); S3 needs a replacement."""
    from smlaunch.local_run_dir import check_channel_name
    from smlaunch.resources import sample_data_dir

    overrides = {} if data is None else dict(data) if isinstance(data, Mapping) else {"train": data}
    spec_dir = Path(spec.source.name).parent if spec.source and spec.source.name != "<dict>" else Path.cwd()
    channels: dict[str, Path] = {}
    for channel in sorted(set(spec.data) | set(overrides)):
        check_channel_name(channel)  # each becomes <run>/input/data/<channel>
        uri = str(overrides.get(channel, spec.data.get(channel)))
        if uri.startswith("s3://"):
            raise LocalRunError(
                f"data.{channel} is {uri}: a local run cannot read S3",
                field=f"data.{channel}",
                fix=f"pass --data {'' if channel == 'train' else channel + '='}DIR (a local copy: *.bin token shards)",
            )
        scheme, sep, rest = uri.partition(":")
        path_text = rest if sep and scheme in ("local", "file") else uri
        path_text = path_text.removeprefix("//") if scheme == "file" else path_text
        if path_text == "sample" and channel not in overrides:
            path = sample_data_dir()
        else:
            path = Path(path_text).expanduser()
            if not path.is_absolute():
                path = (Path.cwd() if channel in overrides else spec_dir) / path
        if not path.is_dir():
            raise LocalRunError(
                f"data.{channel}: {path} is not a directory",
                field=f"data.{channel}",
                fix="point it at a directory of *.bin token shards (entrypoints/tokenize_text.py)",
            )
        channels[channel] = path.resolve()
    return channels


def plan_local(
    spec: JobSpec,
    *,
    nproc: int | None = None,
    shrink: Shrink = "auto",
    steps: int | None = None,
    data: DataArg = None,
    run_dir: str | os.PathLike | None = None,
    num_gpus: int | None = None,
    force: bool = False,
    hosts: int = 1,
) -> LocalPlan:
    """Decide the local run of ``spec``: processes, device, the adapted spec, its render and the data.

    The spec is validated first, as ``submit`` validates it (a local run rehearses the real job): rule and
    memory errors raise :class:`ValidationFailed` unless ``force``, which runs anyway and records them.
    ``hosts`` > 1 (``--docker``: one container per host) spreads the processes evenly over the hosts, on CPU.
    """
    report = _validated(spec, force=force)
    if shrink not in ("auto", "none"):
        raise LocalRunError(f"shrink={shrink!r}; expected 'auto' or 'none'")
    if steps is not None and steps < 1:
        raise LocalRunError(f"--steps {steps} must be >= 1")
    channels = resolve_channels(spec, data)
    data_uris = {c: spec.data.get(c, f"local:{p}") for c, p in channels.items()}
    if data_uris != spec.data:
        spec = spec.model_copy(update={"data": data_uris})
    gpus = ct.num_gpus() if num_gpus is None else num_gpus
    tp, pp = spec.smp.tensor_parallel_degree, spec.smp.pipeline_parallel_degree
    if hosts > 1:
        nproc, device, notes = resolve_hosts(tp, pp, hosts, nproc=nproc, num_gpus=gpus)
    else:
        nproc, device, notes = resolve_nproc(tp, pp, nproc=nproc, num_gpus=gpus)
    adapted, changes = adapt(spec, nproc=nproc, device=device, shrink=shrink, steps=steps, hosts=hosts)
    if not report.errors:
        _check_adapted(adapted, changes)
    if any(c.field in ("smp.fp16", "smp.bf16") for c in changes):
        notes.append("fp16/bf16 turned off: CPU runs in fp32")
    now = dt.datetime.now()
    job_name = f"{spec.name}-{now:%Y-%m-%d-%H-%M-%S}-{now.microsecond // 1000:03d}"
    if run_dir is None:
        run_dir = Path("smlaunch-runs") / f"{spec.name}-{now:%Y%m%d-%H%M%S}"
    request = render(adapted)
    if request.arguments == "smlaunch":  # MFU against this machine's GPU (the entry point looks it up)
        request = replace(request, hyperparameters={**request.hyperparameters, "gpu_peak_tflops": 0.0})
    return LocalPlan(
        spec=adapted,
        request=request,
        changes=changes,
        nproc=nproc,
        device=device,
        num_gpus=gpus,
        run_dir=Path(run_dir).resolve(),
        job_name=job_name,
        channels=channels,
        notes=notes,
        report=report,
        forced=tuple(report.errors),
        hosts=hosts,
    )


LAYOUT_RULES = ("SMP", "MOD")
"""Rule groups that must still hold after the local adaptation; cluster rules (CLU) describe the real
instances, which the local run stands in for by design (more or fewer processes per host)."""


def _validated(spec: JobSpec, *, force: bool) -> Report:
    from smlaunch.validation import validate

    report = validate(spec)
    if report.errors and not force:
        lines = [f"  {f.rule} {f.field}: {f.message}\n    fix: {f.fix}" for f in report.errors]
        raise ValidationFailed(
            f"{len(report.errors)} error(s) in the spec; not running it locally (--force runs it anyway)\n"
            + "\n".join(lines),
            findings=report.errors,
        )
    return report


def _check_adapted(adapted: JobSpec, changes: list[Change]) -> None:
    """The adapted spec keeps a valid layout; an error here is a bug of the shrink, said as such."""
    from smlaunch.spec.rules import check

    broken = [f for f in check(adapted).errors if f.rule.startswith(LAYOUT_RULES)]
    if broken:
        changed = ", ".join(f"{c.field} {c.before} -> {c.after}" for c in changes) or "nothing"
        raise LocalRunError(
            f"the local adaptation ({changed}) broke {broken[0].rule} {broken[0].field}: {broken[0].message}",
            fix="run with --shrink none, and report this as a bug of smlaunch's shrink",
        )


def launch(
    plan: LocalPlan,
    *,
    on_step: Callable[[dict[str, float | int]], None] | None = None,
    on_line: Callable[[int | None, str], None] | None = None,
    grace_s: float = 30.0,
) -> LocalRun:
    """Lay out ``plan.run_dir``, run torchrun, stream its output; returns when every rank has exited."""
    import importlib.util

    from smlaunch.backends.source import staged_source
    from smlaunch.local_run_dir import claim_run_dir

    if importlib.util.find_spec("torch") is None:
        raise MissingDependency("smlaunch local needs PyTorch", fix="pip install torch")
    claim_run_dir(plan.run_dir)  # a non-empty folder that is not a run directory is refused
    req = plan.request  # the code goes through the staging of submit: regular files inside the folder only
    with staged_source(req.source_dir, req.entry_point, own=req.own_script) as code:
        ct.write_tree(plan.container, channels=plan.channels, code_from=code)
    if req.own_script:
        from smlaunch.local_requirements import install_requirements

        install_requirements(plan.run_dir / "code" / "requirements.txt", plan.run_dir / "site-packages")
    logs = plan.run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # an earlier run's outcome in the same directory is not this run's: a rerun that crashes must not read it
    for stale in (plan.run_dir / "output" / "failure", plan.run_dir / "output" / "data" / "metrics.json",
                  logs / "error.json"):  # fmt: skip
        stale.unlink(missing_ok=True)
    start = time.monotonic()
    proc = subprocess.Popen(
        plan.command(),
        cwd=plan.run_dir / "code",
        env=plan.environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    stopper = Stopper(proc, grace_s)
    steps: list[dict[str, float | int]] = []
    console: list[str] = []
    with stopper, open(logs / "console.log", "w") as log:
        for line in proc.stdout:  # type: ignore[union-attr]
            log.write(line)
            log.flush()
            rank, text = _split_rank(line)
            console.append(line)
            del console[:-200]
            metrics = _parse_step(text) if rank in (0, None) else None
            if metrics is not None:
                steps.append(metrics)
                if on_step:
                    on_step(metrics)
            if on_line:
                on_line(rank, text)
        returncode = proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    return _collect(
        plan,
        returncode,
        wall_s=time.monotonic() - start,
        steps=steps,
        console="".join(console),
        interrupted=stopper.interrupted,
    )


def run_local(
    spec: JobSpec,
    *,
    nproc: int | None = None,
    shrink: Shrink = "auto",
    steps: int | None = None,
    data: DataArg = None,
    run_dir: str | os.PathLike | None = None,
    docker: bool = False,
    on_step: Callable[[dict[str, float | int]], None] | None = None,
    force: bool = False,
    image: str | None = None,
    hosts: int | None = None,
) -> LocalRun:
    """Run ``spec`` here: ``plan_local`` then ``launch``, or SageMaker local mode with ``docker=True`` (``image``;
    ``hosts`` containers, default ``cluster.instance_count``)."""
    count = (hosts or spec.cluster.instance_count) if docker else 1
    plan = plan_local(
        spec, nproc=nproc, shrink=shrink, steps=steps, data=data, run_dir=run_dir, force=force, hosts=count
    )
    if docker:
        return run_docker(plan, image=image, on_step=on_step)
    return launch(plan, on_step=on_step)


__all__ = [
    "LocalPlan",
    "LocalRun",
    "docker_missing",
    "launch",
    "plan_local",
    "resolve_channels",
    "resolve_hosts",
    "resolve_nproc",
    "run_docker",
    "run_local",
]
