"""The one YAML reader of job specs (and of ``plan --model FILE``, and of ``--set`` values): UTF-8 text only,
line numbers for every field path, merge keys, and bounds on what a hostile document can make us do.

- aliases may add at most :data:`MAX_ALIAS_EXPANSION` nodes (a "billion laughs" file is refused, not expanded);
- a number has at most :data:`MAX_NUMBER_DIGITS` digits (Python refuses int strings over 4,300 digits);
- ``<<: *base`` merges, and a key written after it overrides the merged one (a key written twice is an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from smlaunch.errors import SpecError

MAX_SPEC_BYTES = 1024 * 1024
"""A job spec is a few KB; anything over 1 MiB is the wrong file."""
MAX_ALIAS_EXPANSION = 10_000
"""Most nodes YAML aliases may add to a document (a "billion laughs" file expands to 10^9 from a few lines)."""
MAX_NUMBER_DIGITS = 100
"""Longest number a spec may write (every numeric field is bounded far below 10^100)."""

FieldPath = tuple[str | int, ...]
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_BOOL = "tag:yaml.org,2002:bool"


def read_text(path: Path) -> str:
    """The file's text, or a SpecError: missing, a directory, over 1 MiB, binary, not UTF-8."""
    if not path.exists():
        raise SpecError(f"{path}: no such file", fix="check the path, or create one with `smlaunch init`")
    if path.is_dir():
        raise SpecError(f"{path} is a directory, not a job spec", fix=f"pass a file, e.g. {path}/job.yaml")
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"{path} is {size / 2**20:.1f} MiB; a job spec is a few KB", fix="pass the job.yaml")
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(f"{path} is UTF-16 text, not UTF-8", fix="save the file as UTF-8 (without a BOM is best)")
    if b"\x00" in raw:
        raise SpecError(f"{path} is binary, not YAML", fix="pass the job.yaml (a text file)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path} is not UTF-8 text (byte {exc.start})", fix="save the file as UTF-8") from None


def read_mapping(path: str | Path) -> tuple[dict, dict[FieldPath, int], dict[FieldPath, str]]:
    """A YAML file whose top level is a mapping: ``(data, line of each field path, text of each boolean)``."""
    path = Path(path)
    return parse_mapping(str(path), read_text(path))


def parse_mapping(name: str, text: str) -> tuple[dict, dict[FieldPath, int], dict[FieldPath, str]]:
    data, lines, booleans = _parse(name, text)
    if data is None:
        raise SpecError(f"{name} is empty", fix="start from `smlaunch init --preset gpt2-small-local`")
    if not isinstance(data, dict):
        raise SpecError(
            f"{name}: the top level must be a mapping of sections, got {kind(data)}",
            fix="start with `name: my-job` and the sections model, cluster, smp, training",
        )
    return data, lines, booleans


def parse_value(text: str, where: str) -> Any:
    """One ``--set`` value as YAML (bounded like a file); text that is not YAML stays text."""
    try:
        data, _, _ = _parse(where, text)
    except SpecError as exc:
        if "YAML syntax error" in exc.message or "not valid YAML" in exc.message:
            return text
        raise
    return data


def _parse(name: str, text: str) -> tuple[Any, dict[FieldPath, int], dict[FieldPath, str]]:
    loader = Loader(text)
    lines: dict[FieldPath, int] = {}
    booleans: dict[FieldPath, str] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, booleans
        _check_expansion(name, node)
        return _Builder(name, loader, lines, booleans).build(node, ()), lines, booleans
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(f"{name}: YAML syntax error at {where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: not valid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{name}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _check_expansion(name: str, root: yaml.Node) -> None:
    """Refuse a document whose aliases add more than MAX_ALIAS_EXPANSION nodes: each node's expanded size is
    computed once (post-order over the node graph), so the check is linear in the document, not in its expansion."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if ready:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if id(node) in sizes:
            continue
        sizes[id(node)] = 0  # in progress: a recursive alias adds nothing here (building it fails later)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] - len(sizes) > MAX_ALIAS_EXPANSION:
        raise SpecError(
            f"{name}: YAML aliases (*name) expand the document by more than {MAX_ALIAS_EXPANSION:,} values",
            fix="write the values out, or reference each anchor (&name) a few times only",
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _Builder:
    """Python values from a composed node tree, recording each field path's line and each boolean's text."""

    def __init__(self, name: str, loader: Any, lines: dict[FieldPath, int], booleans: dict[FieldPath, str]) -> None:
        self.name, self.loader, self.lines, self.booleans = name, loader, lines, booleans
        self._explicit: dict[int, set[int]] = {}

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        if node.tag == _BOOL:
            self.booleans[path] = node.value
        if node.tag in _NUMBER_TAGS and sum(c.isdigit() for c in node.value) > MAX_NUMBER_DIGITS:
            raise SpecError(
                f"{self.name}: {_dotted(path) or 'the value'} (line {node.start_mark.line + 1}) is a number of "
                f"{sum(c.isdigit() for c in node.value):,} digits (at most {MAX_NUMBER_DIGITS}): no field of a job "
                "spec takes one",
                fix="write the intended value (each numeric field's bound is in `smlaunch schema`)",
            )
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict:
        if id(node) not in self._explicit:  # flattening rewrites the node: an aliased mapping is flattened once
            self._explicit[id(node)] = {id(k) for k, _ in node.value if k.tag != _MERGE}
            self.loader.flatten_mapping(node)  # merged pairs first, then the mapping's own
        explicit = self._explicit[id(node)]
        result: dict[Any, Any] = {}
        written: set[str] = set()
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if id(key_node) in explicit:
                if key in written:
                    raise SpecError(
                        f"line {key_node.start_mark.line + 1}: key {_dotted((*path, key))!r} appears twice",
                        fix="keep one of them",
                    )
                written.add(key)
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, key_node: yaml.Node) -> str:
        key = self.loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise SpecError(f"line {key_node.start_mark.line + 1}: keys must be plain names, got {kind(key)}")
        return str(key)


def kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _dotted(path: FieldPath) -> str:
    from smlaunch.spec.load import dotted

    return dotted(path)
