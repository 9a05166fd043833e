"""The ``entry_point:`` section of a job spec: your own training script (README "Your own script")."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from smlaunch.arguments import STYLES as ARGUMENT_STYLES
from smlaunch.spec.fields import FiniteFloat, Int64, Strict

ARGUMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class EntryPointSpec(Strict):
    """Your own training script, launched with the spec's layout (README "Your own script")."""

    script: str = Field(
        pattern=r"^[^/].*\.py$",
        description="The entry point: a .py path inside source_dir (no leading / and no ..).",
    )
    source_dir: str = Field(
        description=(
            "Directory uploaded whole as SDK v2's source_dir (requirements.txt included; VCS folders, caches, "
            "virtual environments and secret-looking files excluded); relative to the job file."
        )
    )
    arguments: Literal[ARGUMENT_STYLES] | dict[str, str] = Field(  # type: ignore[valid-type]
        "smlaunch",
        description=(
            "How spec values are named on the script's command line: smlaunch (smlaunch's entry-point contract), "
            "aws-smp-gpt2 (AWS's SMP GPT-2 example, train_gpt_simple.py), or {spec field: argument}."
        ),
    )
    hyperparameters: dict[str, str | Int64 | FiniteFloat | bool] = Field(
        default_factory=dict, description="Extra script arguments, passed verbatim as --name value."
    )

    @model_validator(mode="after")
    def _names(self) -> EntryPointSpec:
        from smlaunch.arguments import SPEC_VALUES

        for key, path in (("script", self.script), ("source_dir", self.source_dir)):
            parts = path.replace("\\", "/").split("/")
            if "\x00" in path or len(path) > 4096 or max(map(len, parts)) > 255:
                raise ValueError(f"{key} is not a usable path (a NUL byte, or a name over 255 / a path over 4096)")
        if ".." in self.script.replace("\\", "/").split("/"):
            raise ValueError(f"script {self.script!r} leaves source_dir: give a path inside it")
        if isinstance(self.arguments, dict):
            for field_name, argument in self.arguments.items():
                if field_name not in SPEC_VALUES:
                    raise ValueError(
                        f"arguments: {field_name!r} is not a spec field smlaunch can pass; one of: "
                        + ", ".join(SPEC_VALUES)
                    )
                if not ARGUMENT_NAME.fullmatch(argument):
                    raise ValueError(f"arguments.{field_name}: {argument!r} is not an argument name (--{argument})")
        for name in self.hyperparameters:
            if not ARGUMENT_NAME.fullmatch(name):
                raise ValueError(f"hyperparameters: {name!r} is not an argument name (letters, digits, _ and -)")
        return self
