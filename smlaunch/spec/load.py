"""Read a job spec: YAML with line numbers, ``${ENV}`` substitution, ``--set`` overrides, typed errors.

Every way a spec can be wrong before the rulebook runs ends here as one :class:`SpecError` whose message
names the file, the field path, the YAML line and a fix.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from smlaunch.errors import SpecError
from smlaunch.spec.models import JobSpec
from smlaunch.spec.yaml_read import MAX_SPEC_BYTES, parse_value, read_mapping
from smlaunch.spec.yaml_read import kind as _kind

__all__ = ["MAX_SPEC_BYTES", "OPTIONAL_SECTIONS", "Source", "dotted", "load_spec"]

FieldPath = tuple[str | int, ...]
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}$]*))?\}|(?P<bad>\$\{)")
"""``$$``, ``${VAR}``, ``${VAR:-default}``; any other ``${`` (nesting, a name starting with a digit) is ``bad``."""


@dataclass(frozen=True)
class Source:
    """Where a spec came from: a file (or ``<dict>``) and the YAML line of each field path."""

    name: str
    lines: dict[FieldPath, int] = field(default_factory=dict)
    booleans: dict[FieldPath, str] = field(default_factory=dict)
    """The text YAML read as a boolean at each such field path (``no``, ``on``, ...)."""

    def line_of(self, path: Iterable[str | int]) -> int | None:
        """Line of ``path`` or of its closest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def dotted(path: Iterable[str | int]) -> str:
    """``("smp", "microbatches")`` -> ``smp.microbatches``; list indices as ``[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        # a key holding a newline or control characters stays on one line, visibly
        name = str(part) if str(part).isprintable() else repr(str(part))
        text += f".{name}" if text else name
    return text


def load_spec(
    source: str | os.PathLike | Mapping[str, Any],
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    env: Mapping[str, str] | None = None,
) -> JobSpec:
    """Load and type a job spec from a YAML file path or a dict.

    ``overrides`` are ``section.key=value`` strings (values parsed as YAML scalars) or a ``{dotted: value}``
    dict; they apply after ``${VAR}`` / ``${VAR:-default}`` substitution from ``env`` (default: os.environ).

    >>> spec = load_spec("templates/gpt2-30b.yaml", ["training.max_steps=10"])  # doctest: +SKIP
    """
    env = os.environ if env is None else env
    if isinstance(source, Mapping):
        data, src = dict(source), Source("<dict>")
    else:
        data, lines, booleans = read_mapping(Path(source))
        src = Source(str(source), lines, booleans)
    data = _substitute(_drop_empty_sections(data), env, src, ())
    for dotted_key, value in _parse_overrides(overrides):
        _apply_override(data, dotted_key, _text_for_str_field(dotted_key, value, overrides))
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation(exc, src)) from None
    spec._source = src
    return spec


OPTIONAL_SECTIONS = ("smp", "data", "output", "sagemaker")


def _drop_empty_sections(data: dict) -> dict:
    """An optional section whose keys are all commented out (``output:`` then comments) means "defaults"."""
    return {k: v for k, v in data.items() if not (v is None and k in OPTIONAL_SECTIONS)}


def _substitute(value: Any, env: Mapping[str, str], src: Source, path: FieldPath) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, env, src, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, src, (*path, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    line = src.line_of(path)
    where = f"{src.name}{f':{line}' if line else ''}: {dotted(path)}"

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("bad"):
            shown = value[match.start() :][:40]
            raise SpecError(
                f"{where} uses {shown!r}: unsupported substitution syntax (no nesting; a name is letters, digits "
                "and _, not starting with a digit)",
                field=dotted(path),
                fix="write ${VAR} or ${VAR:-default} (the default is plain text), or $$ for a literal $",
            )
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise SpecError(
            f"{where} uses ${{{name}}}, which is not set",
            field=dotted(path),
            fix=f"export {name}=..., or write ${{{name}:-default}}",
        )

    return _ENV.sub(replace, value)


def _parse_overrides(overrides: Iterable[str] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r}: expected section.key=value", fix="e.g. --set training.max_steps=10")
        value = parse_value(raw, f"--set {key.strip()}") if raw.strip() else ""
        parsed.append((key.strip(), value))
    return parsed


def _text_for_str_field(dotted_key: str, value: Any, overrides: Iterable[str] | Mapping[str, Any]) -> Any:
    """``--set sagemaker.framework_version=1.10`` means the text "1.10", not the number 1.1: a number (or a YAML
    boolean such as ``no``) parsed from a ``--set`` string keeps its text when the field holds a string."""
    if isinstance(overrides, Mapping) or not isinstance(value, (int, float)):
        return value
    info = _field_info(tuple(dotted_key.split(".")))
    if info is None or not _takes_str(info.annotation):
        return value
    texts = [raw.strip() for key, _, raw in (item.partition("=") for item in overrides) if key.strip() == dotted_key]
    return texts[-1] if texts else value


def _takes_str(annotation: Any) -> bool:
    return annotation is str or (str in get_args(annotation) and not _section_model(annotation))


def _apply_override(data: dict, dotted_key: str, value: Any) -> None:
    parts = dotted_key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SpecError(
                f"--set {dotted_key}: {'.'.join(parts[: depth + 1])} is a value, not a section",
                fix=f"set it directly: --set {'.'.join(parts[: depth + 1])}=...",
            )
        node = child
    node[parts[-1]] = value


def _format_validation(exc: ValidationError, src: Source) -> str:
    problems = []
    seen: set[tuple] = set()
    for error in exc.errors():
        path = tuple(p for p in error["loc"] if not _is_union_tag(p))
        key = (path, error["type"])
        if key in seen:
            continue
        seen.add(key)
        problems.append(_describe(error, path, src))
    head = f"{src.name}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in the job spec"
    return head + "\n" + "\n".join(f"  - {p}" for p in problems)


_UNION_TAG = re.compile(r"[a-z][a-z-]*\[.*\]|int|str|float|bool|none")


def _is_union_tag(part: Any) -> bool:
    """pydantic's loc names the union member it tried (``literal['a','b']``, ``int``): not a key of the spec."""
    return isinstance(part, str) and _UNION_TAG.fullmatch(part) is not None


def _describe(error: dict, path: FieldPath, src: Source) -> str:
    line = src.line_of(path)
    where = f"{dotted(path) or '(top level)'}{f' (line {line})' if line else ''}"
    kind = error["type"]
    if kind == "extra_forbidden" and path:
        allowed = _allowed_keys(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean {dotted((*path[:-1], close[0]))!r}?" if close else f"allowed here: {', '.join(allowed)}"
        return f"{where}: unknown key; {hint}"
    if kind == "missing":
        return f"{where}: required{_example(path)}"
    value = error.get("input")
    shown = _shown(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    hint = _boolean_hint(path, value, src) if kind == "string_type" else ""
    return f"{where}: {error['msg'].removeprefix('Value error, ')} (got {shown}){hint or _hint(kind, path, value)}"


def _shown(value: Any) -> str:
    """The offending value for a message: never an int's thousands of digits (nor Python's refusal to print it)."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    return repr(value) if not isinstance(value, (dict, list)) else _kind(value)


def _boolean_hint(path: FieldPath, value: Any, src: Source) -> str:
    """``name: no`` is YAML 1.1's boolean false: say so, and how to write the text."""
    if not isinstance(value, bool):
        return ""
    text = src.booleans.get(path, str(value).lower())
    return f'; YAML read {text} as a boolean ({str(value).lower()}): quote it, {dotted(path)}: "{text}"'


_LIMITS = {
    ("cluster", "max_run_hours"): (
        "SageMaker runs a training job at most 28 days: StoppingCondition.MaxRuntimeInSeconds <= 2,419,200 s = "
        "672 h (CreateTrainingJob)",
        "set cluster.max_run_hours: 672 (or less)",
    ),
}


def _hint(kind: str, path: FieldPath, value: Any) -> str:
    """What to do about a type or range error: a section given a scalar, a number where text is wanted, a limit."""
    if kind == "model_type" and not isinstance(value, (dict, list)):
        model = _section_model(getattr(_field_info(path), "annotation", None))
        if model is not None and "enabled" in model.model_fields and value is not None:
            target = dotted((*path, "enabled"))
            shown = str(value).lower() if isinstance(value, bool) else "true (or false)"
            return f"; {dotted(path)} is a section: did you mean {target}? fix: set {target}: {shown}"
        if model is not None and value is None:
            return f"; {dotted(path)} is a section: remove it for its defaults, or give it keys"
        if model is not None:
            keys = ", ".join(_allowed_keys(path))
            return f"; {dotted(path)} is a section (a mapping of {keys}), not a value"
    if (
        kind == "string_type"
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not _shown(value).startswith("an integer of")
    ):
        return f'; quote it: {dotted(path)}: "{value}" (YAML reads an unquoted {value} as a number)'
    if path in _LIMITS and kind in ("less_than_equal", "less_than", "greater_than", "greater_than_equal"):
        why, fix = _LIMITS[path]
        return f": {why}; fix: {fix}"
    return ""


_EXAMPLES = {
    ("name",): "name: my-gpt2-job",
    ("model",): "model: {preset: gpt2-30b}",
    ("cluster",): "cluster: {instance_type: ml.p4d.24xlarge, instance_count: 16}",
    ("training",): "training: {batch_size: 32, max_steps: 100}",
    ("cluster", "instance_type"): "instance_type: ml.p4d.24xlarge",
    ("training", "batch_size"): "batch_size: 32",
    ("training", "max_steps"): "max_steps: 100",
}


def _example(path: FieldPath) -> str:
    if path in _EXAMPLES:
        return f"; for example `{_EXAMPLES[path]}`"
    if path[:1] == ("model",):
        return "; set model.preset (e.g. gpt2-small) or give every shape key"
    return ""


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The spec model of a section's annotation (``SpotSpec``, or ``SpotSpec | None``), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _field_info(path: FieldPath) -> FieldInfo | None:
    """The pydantic field at ``path`` (by name or alias), or None where the path leaves the spec's models."""
    model: type[BaseModel] | None = JobSpec
    info = None
    for part in path:
        if model is None:
            return None
        fields = model.model_fields
        info = fields.get(str(part)) or next((f for f in fields.values() if f.alias == str(part)), None)
        if info is None:
            return None
        model = _section_model(info.annotation)
    return info


def _allowed_keys(path: FieldPath) -> list[str]:
    model = _section_model(getattr(_field_info(path), "annotation", None)) if path else JobSpec
    if model is None:
        return []
    names = []
    for name, info in model.model_fields.items():
        names.append(name)
        if info.alias:
            names.append(info.alias)
    return sorted(names)
