"""The Python API: the functions the CLI and notebooks both call.

    spec = load_spec("job.yaml", overrides=["training.max_steps=10"])
    report = validate(spec)          # rulebook findings (errors and warnings, with fixes)
    est = estimate(spec)             # memory per GPU, tokens/s, cost
    result = plan(spec)              # the fastest valid layouts of the spec's model on its cluster
    request = render(spec)           # what SageMaker will receive
    job = submit(spec)               # a SageMaker training job (JobHandle)
    job = attach(job_name)           # an existing job: .status(), .logs(), .wait(), .stop()
    job.status().diagnosis           # a Failed or Stopped job's cause, spec field and fix (smlaunch.diagnosis)
    jobs = list_jobs(status="InProgress")   # the account's training jobs, newest first
    run = run_local(spec)            # the same job on this machine, under torchrun
    text = starter("gpt2-30b")       # a commented job.yaml (``smlaunch init``)
    schema = json_schema()           # the JSON Schema of job.yaml (``smlaunch schema``)

Every CLI command is one of these functions (``smlaunch validate`` is :func:`validate_file`, ``status``, ``logs``
and ``stop`` are :class:`JobHandle` methods of :func:`attach`); tests/unit/test_parity.py keeps it so.

Every function that takes a spec accepts a :class:`JobSpec`, a path to a job.yaml or a dict shaped like one,
plus ``overrides`` (``["section.key=value", ...]`` or ``{"section.key": value}``). Heavy modules (the cost model,
the SageMaker SDK, torch) are imported inside the function that needs them. In a Jupyter kernel the results
display as HTML: the first call registers :mod:`smlaunch.display`'s formatters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from smlaunch.errors import PlanError, SpecError
from smlaunch.request import LaunchRequest
from smlaunch.request import render as _render
from smlaunch.spec.findings import Finding, Report
from smlaunch.spec.load import load_spec
from smlaunch.spec.models import JobSpec

if TYPE_CHECKING:  # pragma: no cover
    from smlaunch.backends import Backend
    from smlaunch.costmodel import Estimate
    from smlaunch.costmodel.plan_result import PlanResult
    from smlaunch.jobs import DryRun, JobHandle
    from smlaunch.local import LocalRun

__all__ = [
    "attach", "estimate", "json_schema", "list_jobs", "load_spec", "plan", "render", "run_local", "starter", "submit",
    "validate", "validate_file",
]  # fmt: skip

SpecLike = JobSpec | str | os.PathLike | Mapping[str, Any]
"""A :class:`JobSpec`, a path to a job.yaml, or a dict shaped like one."""
Overrides = Iterable[str] | Mapping[str, Any]
_T = TypeVar("_T")


def _spec(spec: SpecLike, overrides: Overrides = ()) -> JobSpec:
    """``spec`` as a typed JobSpec, with ``overrides`` applied (a JobSpec is re-loaded only when there are any)."""
    if isinstance(spec, JobSpec):
        if not overrides:
            return spec
        data = spec.model_dump(mode="json", exclude_unset=True)
        loaded = load_spec(data, overrides)
        loaded._source = spec.source
        return loaded
    if isinstance(spec, str | os.PathLike | Mapping):
        return load_spec(spec, overrides)
    raise SpecError(f"expected a JobSpec, a path to a job.yaml or a dict, got {type(spec).__name__}")


def _shown(value: _T) -> _T:
    """Register the HTML formatters when running in a Jupyter kernel (once; a no-op elsewhere)."""
    from smlaunch import display

    display.register_if_ipython()
    return value


def starter(preset: str, *, name: str | None = None) -> str:
    """The commented job.yaml text of a starter template: ``gpt2-10b``, ``gpt2-30b``, ``gpt2-60b``, ``gpt2-tiny-local``.

    >>> text = starter("gpt2-30b")
    >>> spec = load_spec(yaml.safe_load(text))  # doctest: +SKIP
    >>> "tensor_parallel_degree: 8" in text
    True
    """
    from smlaunch.templates import starter as _starter

    return _starter(preset, name=name)


def validate(spec: SpecLike, *, overrides: Overrides = ()) -> Report:
    """Check ``spec`` against the rulebook (SMP v1 best practices and the memory estimate).

    Raises :class:`SpecError` when a path or dict cannot be read or typed (see :func:`validate_file` for a
    report instead).

    >>> report = validate("job.yaml", overrides={"smp.microbatches": 3})  # doctest: +SKIP
    >>> [f"{f.rule} {f.field}: {f.fix}" for f in report.errors]  # doctest: +SKIP
    ['SMP008 training.batch_size: set training.batch_size: 57 (a multiple of microbatches 3)']
    """
    from smlaunch.validation import validate as _validate

    return _shown(_validate(_spec(spec, overrides)))


def validate_file(path: str | os.PathLike, *, overrides: Overrides = ()) -> Report:
    """Like :func:`validate`, from a file; a spec that cannot be read becomes a report with one ``SPEC`` error.

    >>> validate_file("missing.yaml").errors[0].rule  # doctest: +SKIP
    'SPEC'
    """
    try:
        spec = load_spec(path, overrides)
    except SpecError as exc:
        finding = Finding("SPEC", "error", exc.field or "", exc.message, exc.fix or "", None)
        return Report(str(path), (finding,), unreadable=True)
    return replace(validate(spec), source=str(path))


def estimate(spec: SpecLike, *, overrides: Overrides = ()) -> Estimate:
    """Estimate per-GPU memory (term by term, against the GPU's capacity), step time, tokens/s and cost.

    Raises :class:`PlanError` when the instance type is unknown to the cost model.

    >>> est = estimate("job.yaml", overrides={"smp.tensor_parallel_degree": 4})  # doctest: +SKIP
    >>> est.fits, est.memory.total_gib, est.gpu_memory_gib, est.throughput.tokens_per_s  # doctest: +SKIP
    """
    from smlaunch.costmodel import estimate as _estimate

    return _shown(_estimate(_spec(spec, overrides)))


def plan(
    model: SpecLike,
    *,
    instance_type: str | None = None,
    instance_count: int | None = None,
    seq_length: int | None = None,
    global_batch: int | None = None,
    vary_batch: bool = False,
    top: int = 5,
    max_steps: int | None = None,
    engine: str = "auto",
    overrides: Overrides = (),
) -> PlanResult:
    """Rank every valid configuration of a model on a cluster by whole-job time and cost (``smlaunch plan``), on
    ``engine`` (``"smp"``, ``"torch"``, or ``"auto"``: every engine that runs on the instance).

    ``model`` is a preset name (``"gpt2-30b"``), a job spec (JobSpec, job.yaml path or dict: its model,
    and by default its cluster, ``max_steps`` and global batch) or a dict / YAML file of model keys. Every
    candidate trains the same global batch (the spec's, else the reference table's, else 0.5M tokens per step)
    unless ``vary_batch``.

    >>> result = plan("gpt2-30b", instance_type="ml.p4d.24xlarge", instance_count=16, top=3)  # doctest: +SKIP
    >>> best = result.best.estimate.knobs; (best.tp, best.pp, best.microbatches)  # doctest: +SKIP
    >>> plan("job.yaml").best.spec["smp"]  # doctest: +SKIP
    """
    from smlaunch.costmodel import plan as _plan

    spec = _job_spec_or_none(model, overrides)
    if spec is not None:
        model = spec.model.model_dump(mode="json", exclude_none=True)
        instance_type = instance_type or spec.cluster.instance_type
        instance_count = instance_count or spec.cluster.instance_count
        max_steps = max_steps or spec.training.max_steps
        if global_batch is None and not vary_batch:
            from smlaunch.layout import resolve

            global_batch = resolve(spec).global_batch
    if instance_type is None or instance_count is None:
        raise PlanError("plan needs a cluster", fix='pass instance_type="ml.p4d.24xlarge", instance_count=16')
    return _shown(
        _plan(
            model,
            instance_type=instance_type,
            instance_count=instance_count,
            seq_length=seq_length,
            global_batch=global_batch,
            vary_batch=vary_batch,
            top=top,
            max_steps=max_steps or 1000,
            engine=engine,
        )
    )


def _job_spec_or_none(model: Any, overrides: Overrides) -> JobSpec | None:
    """A whole job spec (JobSpec, dict or job.yaml with a ``cluster`` section), else None (a model only)."""
    if isinstance(model, JobSpec):
        return _spec(model, overrides)
    if isinstance(model, Mapping):
        return _spec(model, overrides) if "cluster" in model else None
    if isinstance(model, str | os.PathLike) and Path(model).is_file():
        from smlaunch.spec.yaml_read import read_mapping

        data, _, _ = read_mapping(model)  # the spec loader's reader: its errors for tabs, UTF-16, aliases
        return _spec(model, overrides) if isinstance(data, dict) and "cluster" in data else None
    return None


def render(spec: SpecLike, *, overrides: Overrides = ()) -> LaunchRequest:
    """Render ``spec`` into the launch request that ``submit`` and ``run_local`` both use (pure).

    >>> request = render("job.yaml")  # doctest: +SKIP
    >>> request.mp_parameters["partitions"], request.hyperparameters["max_steps"]  # doctest: +SKIP
    (2, 100)
    """
    return _render(_spec(spec, overrides))


def submit(
    spec: SpecLike,
    *,
    overrides: Overrides = (),
    wait: bool = False,
    dry_run: bool = False,
    max_cost: float | None = None,
    force: bool = False,
    job_name: str | None = None,
    backend: Backend | None = None,
) -> JobHandle | DryRun:
    """Check, render and submit ``spec`` as a SageMaker training job (``smlaunch submit --yes``).

    ``dry_run`` returns a :class:`DryRun` with the exact CreateTrainingJob request and sends nothing.
    ``backend`` defaults to SageMaker in ``sagemaker.region``; pass :class:`RecordingBackend` in tests.
    Raises :class:`ValidationFailed` on rule errors (unless ``force``), :class:`SubmitError` over ``max_cost``
    or when AWS refuses.

    >>> job = submit("job.yaml", overrides={"sagemaker.role": ROLE_ARN})  # doctest: +SKIP
    >>> job.status().status, [line for _, _, line in job.logs()][:3]  # doctest: +SKIP
    >>> print(submit("job.yaml", dry_run=True).to_yaml())  # doctest: +SKIP
    """
    from smlaunch import jobs

    job = jobs.submit(
        _spec(spec, overrides),
        wait=wait,
        dry_run=dry_run,
        max_cost=max_cost,
        force=force,
        job_name=job_name,
        backend=backend,
    )
    return _shown(job)


def attach(job_name: str, *, region: str | None = None, backend: Backend | None = None) -> JobHandle:
    """A handle on an existing training job; raises :class:`JobNotFound` when there is none of that name.

    >>> job = attach("gpt2-30b-20260101-120000-1a2b3c4d", region="us-east-1")  # doctest: +SKIP
    >>> job.wait(poll_s=60).status  # doctest: +SKIP
    'Completed'
    >>> job.status().diagnosis.to_dict()  # a Failed or Stopped job: why, which spec field, the fix  # doctest: +SKIP
    {'cause': 'cuda-oom', 'summary': 'CUDA out of memory on algo-2 (rank 11) ...', 'field': 'training.batch_size', ...}
    """
    from smlaunch import jobs

    return _shown(jobs.attach(job_name, region=region, backend=backend))


def list_jobs(
    *,
    status: Literal["InProgress", "Completed", "Failed", "Stopping", "Stopped"] | None = None,
    name_contains: str | None = None,
    max_results: int = 50,
    region: str | None = None,
    backend: Backend | None = None,
) -> list[dict[str, Any]]:
    """The account's training jobs, newest first: ListTrainingJobs summaries (``smlaunch list``).

    Each summary has ``TrainingJobName``, ``TrainingJobStatus`` and ``CreationTime``; pass a name to
    :func:`attach` for a handle. ``backend`` defaults to SageMaker in ``region``.

    >>> [j["TrainingJobName"] for j in list_jobs(status="InProgress", name_contains="gpt2")]  # doctest: +SKIP
    ['gpt2-30b-20260101-120000-1a2b3c4d']
    """
    from smlaunch import jobs

    return jobs.list_jobs(
        status=status, name_contains=name_contains, region=region, max_results=max_results, backend=backend
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of job.yaml, for editors and checks (``smlaunch schema``).

    >>> schema = json_schema()
    >>> sorted(schema["properties"])[:3]
    ['cluster', 'data', 'model']
    """
    from smlaunch.spec.schema import json_schema as _json_schema

    return _json_schema()


def run_local(
    spec: SpecLike,
    *,
    overrides: Overrides = (),
    steps: int | None = None,
    nproc: int | None = None,
    shrink: Literal["auto", "none"] = "auto",
    data: str | os.PathLike | Mapping[str, str | os.PathLike] | None = None,
    run_dir: str | os.PathLike | None = None,
    docker: bool = False,
    on_step: Callable[[dict[str, float | int]], None] | None = None,
    check: bool = True,
    force: bool = False,
    image: str | None = None,
    hosts: int | None = None,
) -> LocalRun:
    """Run ``spec`` on this machine with its tp x pp layout under torchrun (``smlaunch local``).

    ``steps`` overrides ``training.max_steps``; on CPU the model is shrunk to fit (``shrink="none"`` keeps
    it). ``docker=True`` runs it in SageMaker local mode instead (``smlaunch local --docker``): ``hosts``
    containers (default ``cluster.instance_count``) of ``image`` (default: the newest one
    ``docker/build-local-image.sh`` built). ``check`` raises :class:`LocalRunError` when a rank fails (else
    inspect ``run.ok``). The spec is validated first, as ``submit`` does: errors raise :class:`ValidationFailed`
    unless ``force``.

    >>> run = run_local("tiny.yaml", steps=20)  # smlaunch init --preset gpt2-tiny-local -o tiny.yaml  # doctest: +SKIP
    >>> run.metrics["last_loss"] < run.metrics["first_loss"], [s["loss"] for s in run.steps][:2]  # doctest: +SKIP
    """
    from smlaunch.local import run_local as _run_local

    run = _run_local(
        _spec(spec, overrides),
        nproc=nproc,
        shrink=shrink,
        steps=steps,
        data=data,
        run_dir=run_dir,
        docker=docker,
        on_step=on_step,
        force=force,
        image=image,
        hosts=hosts,
    )
    if check:
        run.raise_for_status()
    return _shown(run)
