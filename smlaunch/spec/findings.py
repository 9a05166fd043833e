"""A rule's verdict on a spec: :class:`Finding`, and the :class:`Report` of all findings for one spec.

A finding's ``fix`` is worded for the spec (``set training.batch_size: 24``), as the rules write it; the
command line words it as the flag to pass (``--set training.batch_size=24``): :func:`cli_fix` rewrites one
into the other, and :func:`fix_overrides` gives the same changes as ``load_spec`` overrides.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

_GROUPS = "model|cluster|smp|training|data|output|sagemaker|entry_point"
_FIELD = rf"(?<![\w.`/-])(?:name|engine|(?:{_GROUPS})(?:\.[A-Za-z0-9_-]+)+)"
_VALUE = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|\[[^\]]*\]|\{[^}]*\}|[^\s,;()`]+)"""
_CLAUSE = re.compile(
    rf"(?:\bset\s+)?(?P<field>{_FIELD}):\s+(?P<value>{_VALUE})"
    rf"|\b(?:lower|raise)\s+(?P<field2>{_FIELD})\s+to\s+(?P<value2>{_VALUE})"
)
"""One change to the spec, as the rules word it: ``set smp.ddp: true``, ``smp.ddp: true`` after ``and``, ``or``,
``with``, ``,`` or ``(``, and the memory rule's ``lower training.batch_size to 48`` / ``raise ... to 8``."""
_CODE = re.compile(r"`[^`]*`")


@dataclass(frozen=True, slots=True)
class _Clause:
    start: int
    end: int
    key: str
    value: str
    """The YAML text of the value as ``--set key=value`` passes it (a quoted string unquoted when it can be)."""
    alternative: int


def _clauses(fix: str) -> list[_Clause]:
    """The spec changes named in ``fix``, each with the alternative it belongs to (``or`` starts the next)."""
    code = [m.span() for m in _CODE.finditer(fix)]
    found: list[_Clause] = []
    alternative, last_end = 0, 0
    for m in _CLAUSE.finditer(fix):
        if any(a <= m.start() < b for a, b in code):
            continue  # quoted spec text such as `data: {}` stays as written
        key = m.group("field") or m.group("field2")
        value = _plain(m.group("value") if m.group("field") else m.group("value2"))
        if found:
            words = re.findall(r"[A-Za-z]+", fix[last_end : m.start()])
            alternative += bool(words) and words[-1] == "or"
        found.append(_Clause(m.start(), m.end(), key, value, alternative))
        last_end = m.end()
    return found


def _plain(value: str) -> str:
    """A quoted YAML string without its quotes when the bare text loads as the same string."""
    if value[:1] not in ("'", '"'):
        return value
    import yaml

    try:
        loaded = yaml.safe_load(value)
        if isinstance(loaded, str) and loaded.strip() == loaded and yaml.safe_load(loaded) == loaded:
            return loaded
    except yaml.YAMLError:
        pass
    return value


def cli_fix(fix: str) -> str:
    """``fix`` worded for the command line: every spec change becomes the ``--set`` flag that makes it.

    ``set <section.key>: <value>`` (and the bare ``<section.key>: <value>`` after ``and``, ``or``, ``with``, a
    comma or a parenthesis, and ``lower|raise <section.key> to <value>``) becomes ``--set <section.key>=<value>``,
    the value shell-quoted when it holds spaces or shell metacharacters. Changes joined by ``and`` become
    consecutive flags; everything else (explanations in parentheses, ``or`` between alternatives, text in
    backticks, ``remove ...``) is kept as written. Pure: a fix without a spec change is returned unchanged.

    >>> cli_fix("set training.batch_size: 57 (a multiple of microbatches 3)")
    '--set training.batch_size=57 (a multiple of microbatches 3)'
    >>> cli_fix("set smp.bf16: false and smp.fp16: true")
    '--set smp.bf16=false --set smp.fp16=true'
    >>> cli_fix("set data.train: s3://<bucket>/<prefix>/train (or local:<path>)")
    "--set data.train='s3://<bucket>/<prefix>/train' (or local:<path>)"
    """
    parts: list[str] = []
    pos = 0
    previous: _Clause | None = None
    for clause in _clauses(fix):
        between = fix[pos : clause.start]
        if previous is not None and between.strip() == "and":
            between = " "
        parts.append(between)
        parts.append(f"--set {clause.key}={shlex.quote(clause.value)}")
        pos, previous = clause.end, clause
    parts.append(fix[pos:])
    return "".join(parts)


def fix_overrides(fix: str) -> list[list[str]]:
    """The spec changes of ``fix`` as ``load_spec`` overrides, one list per alternative (``or``), in order.

    ``[]`` when the fix names no change that ``--set`` can make (``remove ...``, ``run smlaunch plan ...``).

    >>> fix_overrides("set smp.microbatches: 1 (or smp.pipeline_parallel_degree: 2)")
    [['smp.microbatches=1'], ['smp.pipeline_parallel_degree=2']]
    >>> fix_overrides("set sagemaker.framework_version: 1.13.1 (with sagemaker.py_version: py39)")
    [['sagemaker.framework_version=1.13.1', 'sagemaker.py_version=py39']]
    """
    alternatives: list[list[str]] = []
    for clause in _clauses(fix):
        if clause.alternative == len(alternatives):
            alternatives.append([])
        alternatives[-1].append(f"{clause.key}={clause.value}")
    return alternatives


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: which rule, which field (dotted path), the YAML line, the arithmetic, the fix."""

    rule: str
    severity: Severity
    field: str
    message: str
    fix: str
    line: int | None = None

    @property
    def cli_fix(self) -> str:
        """The fix worded for the command line: ``--set training.batch_size=57`` (see :func:`cli_fix`)."""
        return cli_fix(self.fix)

    def to_dict(self) -> dict:
        """The JSON form of ``validate --format json``: rule, field, line, message, fix and cli_fix."""
        data = asdict(self)
        del data["severity"]
        data["cli_fix"] = self.cli_fix
        return data


@dataclass(frozen=True)
class Report:
    """The findings for one spec, errors first."""

    source: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    summary: str = ""
    """The layout in one line (see :meth:`smlaunch.layout.Layout.summary`), when the spec parsed."""
    unreadable: bool = False
    """True when the file could not be read or parsed (its one finding has rule ``SPEC``)."""

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def valid(self) -> bool:
        """True when no finding is an error (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict:
        """``{"valid": bool, "errors": [...], "warnings": [...]}``."""
        return {
            "valid": self.valid,
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
        }
