"""smlaunch: model-parallel GPT-2 training on SageMaker (SMP v1) from one typed job.yaml.

    import smlaunch

    spec = smlaunch.load_spec("job.yaml", overrides=["training.max_steps=10"])
    smlaunch.validate(spec)                  # Report: findings with rule ids, fields, lines and fixes
    smlaunch.estimate(spec)                  # Estimate: memory per GPU (broken down), tokens/s, cost
    smlaunch.plan("gpt2-30b", instance_type="ml.p4d.24xlarge", instance_count=16)   # PlanResult, fastest first
    smlaunch.render(spec)                    # LaunchRequest: what SageMaker will receive (pure)
    job = smlaunch.submit(spec)              # JobHandle: status(), logs(), wait(), stop()
    run = smlaunch.run_local(spec, steps=20) # LocalRun: the same layout under torchrun on this machine

Importing the package is light: every public name is loaded on first use (module ``__getattr__``), so neither
pydantic nor the heavy SDKs (sagemaker, boto3, torch, rich) are imported by ``import smlaunch``. In a Jupyter
kernel the results display as HTML (see :mod:`smlaunch.display`).
"""

import importlib as _importlib
import sys as _sys
import types as _types
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
    from smlaunch.api import attach, estimate, load_spec, plan, render, run_local, starter, submit, validate
    from smlaunch.backends.recording import RecordingBackend
    from smlaunch.estimate import Estimate
    from smlaunch.estimate.planner import PlanResult
    from smlaunch.jobs import DryRun, JobHandle
    from smlaunch.local import LocalRun
    from smlaunch.render import LaunchRequest
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
    "load_spec",
    "plan",
    "render",
    "run_local",
    "starter",
    "submit",
    "validate",
]

_LAZY: dict[str, str] = {
    # public name -> the module that defines it (imported on first access)
    **dict.fromkeys(
        ("attach", "estimate", "load_spec", "plan", "render", "run_local", "starter", "submit", "validate"),
        "smlaunch.api",
    ),
    "DryRun": "smlaunch.jobs",
    "Estimate": "smlaunch.estimate",
    "Finding": "smlaunch.spec.findings",
    "JobHandle": "smlaunch.jobs",
    "JobSpec": "smlaunch.spec.models",
    "LaunchRequest": "smlaunch.render",
    "LocalRun": "smlaunch.local",
    "PlanResult": "smlaunch.estimate.planner",
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


class _Package(_types.ModuleType):
    """``smlaunch.render`` and ``smlaunch.estimate`` are both API functions and submodules.

    Importing a submodule makes the import system set it as an attribute of the package, which would hide
    the function of the same name; the public API wins. Import the submodules with ``from smlaunch.render
    import ...`` (or ``importlib.import_module``), as the library does.
    """

    def __setattr__(self, name: str, value: _typing.Any) -> None:
        if name in _LAZY and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
