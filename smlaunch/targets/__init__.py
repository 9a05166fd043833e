"""Launch targets: one adapter per SDK turns a target-neutral :class:`~smlaunch.request.LaunchRequest` into that
SDK's call arguments.

    LaunchRequest (what to run: engine, entry point, arguments, SMP parameters, channels, resources, ...)
    └── sagemaker_v2   smlaunch.targets.sagemaker_v2: ``sagemaker.pytorch.PyTorch(**kwargs).fit(...)`` (SDK v2)

The adapter protocol (see :class:`Target`): a module with

- ``name``: the target's id, e.g. ``"sagemaker-v2"``;
- ``OWNED_KEYS``: ``{keyword: the spec field that sets it}`` for every keyword of the target's call that
  smlaunch renders itself; ``sagemaker.extra_estimator_kwargs`` may not set these (rule JOB007 and ``render``
  both read this one table);
- ``refuse_owned_keys(extra)``: raise :class:`~smlaunch.errors.RenderError` for the first owned key in ``extra``;
- ``call(request, *, job_name=None) -> dict``: the whole call as plain data, the same for every backend (what
  ``smlaunch render`` prints, what :class:`~smlaunch.backends.RecordingBackend` records, what the SageMaker
  backend calls);

plus the target's own spellings (``sagemaker_v2.estimator_kwargs(request)``, ``sagemaker_v2.distribution(request)``).
Adapters are pure: no SDK import, no network, no environment.

Adding a target (say SDK v3's ``ModelTrainer``) is one new file, ``smlaunch/targets/<name>.py`` implementing the
protocol, plus its tests: nothing here lists the targets (:func:`get` finds one by name, ``sagemaker-v3`` in
``sagemaker_v3.py``), and ``tests/unit/test_targets.py`` runs its protocol test on every module of this package;
the new target's own tests check that every keyword it renders is in its ``OWNED_KEYS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from smlaunch.request import LaunchRequest

DEFAULT = "sagemaker-v2"
"""The target that ``smlaunch submit`` and ``smlaunch render`` use (SMP v1 runs only on SDK v2)."""


class Target(Protocol):
    """What a target adapter module provides (modules satisfy it structurally)."""

    name: str
    OWNED_KEYS: dict[str, str]

    def refuse_owned_keys(self, extra: dict[str, Any]) -> None: ...

    def call(self, request: LaunchRequest, *, job_name: str | None = None) -> dict[str, Any]: ...


def get(name: str = DEFAULT) -> ModuleType:
    """The adapter module of target ``name`` (``"sagemaker-v2"`` -> :mod:`smlaunch.targets.sagemaker_v2`)."""
    module_name = name.replace("-", "_")
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module_name}":
            raise
        raise ValueError(f"unknown launch target {name!r}") from None
    if getattr(module, "name", None) != name:
        raise ValueError(f"unknown launch target {name!r}")
    return module
