"""smlaunch: model-parallel GPT-2 training on SageMaker (SMP v1) from one typed job.yaml.

    import smlaunch

    spec = smlaunch.load_spec("job.yaml", overrides=["training.max_steps=10"])
    smlaunch.validate(spec)                  # Report: findings with rule ids, fields, lines and fixes
    smlaunch.estimate(spec)                  # Estimate: memory per GPU (broken down), tokens/s, cost
    smlaunch.plan("gpt2-30b", instance_type="ml.p4d.24xlarge", instance_count=16)   # PlanResult, fastest first
    smlaunch.render(spec)                    # LaunchRequest: what SageMaker will receive (pure)
    job = smlaunch.submit(spec)              # JobHandle: status(), logs(), wait(), stop()
    job = smlaunch.attach(job_name)          # JobHandle of an existing job; smlaunch.list_jobs() lists them
    run = smlaunch.run_local(spec, steps=20) # LocalRun: the same layout under torchrun on this machine

Importing the package is light: every public name is loaded on first use (module ``__getattr__``), so neither
pydantic nor the heavy SDKs (sagemaker, boto3, torch, rich) are imported by ``import smlaunch``. In a Jupyter
kernel the results display as HTML (see :mod:`smlaunch.display`).
"""

import importlib as _importlib
import typing as _typing

from smlaunch.errors import (
    JobNotFound,
    LocalRunError,
    MissingDependency,
    PlanError,
    RenderError,
    SmlaunchError,
    SpecError,
    SubmitError,
    ValidationFailed,
)

if _typing.TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from smlaunch.api import (
        attach,
        estimate,
        json_schema,
        list_jobs,
        load_spec,
        plan,
        render,
        run_local,
        starter,
        submit,
        validate,
        validate_file,
    )
    from smlaunch.backends.recording import RecordingBackend
    from smlaunch.costmodel import Estimate
    from smlaunch.costmodel.plan_result import PlanResult
    from smlaunch.jobs import DryRun, JobHandle
    from smlaunch.local import LocalRun
    from smlaunch.request import LaunchRequest
    from smlaunch.spec.findings import Finding, Report
    from smlaunch.spec.models import JobSpec

__version__ = "0.1.0"

__all__ = [
    "DryRun",
    "Estimate",
    "Finding",
    "JobHandle",
    "JobNotFound",
    "JobSpec",
    "LaunchRequest",
    "LocalRun",
    "LocalRunError",
    "MissingDependency",
    "PlanError",
    "PlanResult",
    "RecordingBackend",
    "RenderError",
    "Report",
    "SmlaunchError",
    "SpecError",
    "SubmitError",
    "ValidationFailed",
    "__version__",
    "attach",
    "estimate",
    "json_schema",
    "list_jobs",
    "load_spec",
    "plan",
    "render",
    "run_local",
    "starter",
    "submit",
    "validate",
    "validate_file",
]

_LAZY: dict[str, str] = {
    # public name -> the module that defines it (imported on first access)
    **dict.fromkeys(
        (
            "attach",
            "estimate",
            "json_schema",
            "list_jobs",
            "load_spec",
            "plan",
            "render",
            "run_local",
            "starter",
            "submit",
            "validate",
            "validate_file",
        ),
        "smlaunch.api",
    ),
    "DryRun": "smlaunch.jobs",
    "Estimate": "smlaunch.costmodel",
    "Finding": "smlaunch.spec.findings",
    "JobHandle": "smlaunch.jobs",
    "JobSpec": "smlaunch.spec.models",
    "LaunchRequest": "smlaunch.request",
    "LocalRun": "smlaunch.local",
    "PlanResult": "smlaunch.costmodel.planner",
    "RecordingBackend": "smlaunch.backends.recording",
    "Report": "smlaunch.spec.findings",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smlaunch' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
