"""The one exception tree users catch.

    SmlaunchError                 base of everything smlaunch raises on purpose
    ├── SpecError                 the job.yaml cannot be read, parsed or typed (CLI exit 2)
    ├── ValidationFailed          the spec breaks rules of the rulebook (CLI exit 1)
    ├── PlanError                 no configuration fits the model and cluster
    ├── RenderError               the spec cannot be turned into a launch request
    ├── SubmitError               SageMaker refused or failed a call (AWS errors, pre-flight)
    │   └── JobNotFound           no training job of that name
    ├── LocalRunError             a local run could not start or a rank failed
    └── MissingDependency         an optional extra is not installed

Anything else that escapes is a bug: the CLI shows its traceback (always with ``SMLAUNCH_DEBUG=1``).
"""

from __future__ import annotations


class SmlaunchError(Exception):
    """Base class: a readable ``message``, optionally the ``field`` it concerns and a ``fix``."""

    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.fix = fix

    def __str__(self) -> str:
        text = self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class SpecError(SmlaunchError):
    """The job spec cannot be read, parsed or typed: bad YAML, wrong types, unknown keys."""

    exit_code = 2


class ValidationFailed(SmlaunchError):
    """The spec parsed, but breaks rules of the rulebook; ``findings`` holds them."""

    def __init__(self, message: str, *, findings: list | None = None) -> None:
        super().__init__(message)
        self.findings = list(findings or [])


class PlanError(SmlaunchError):
    """No configuration of the model fits the cluster."""


class RenderError(SmlaunchError):
    """The spec cannot be rendered into a launch request."""


class SubmitError(SmlaunchError):
    """A SageMaker call failed, or a pre-flight check refused the job."""


class JobNotFound(SubmitError):
    """No training job of that name exists in the account and region."""


class LocalRunError(SmlaunchError):
    """A local run could not start, or one of its ranks failed."""


class MissingDependency(SmlaunchError):
    """An optional extra is needed: the message names the ``pip install`` to run."""
