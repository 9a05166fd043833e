"""CreateTrainingJob's limits, read at run time from botocore's own SageMaker service model (no copied list).

botocore ships the model SageMaker's API is generated from (``botocore/data/sagemaker/<version>/service-2.json``):
every string's length and pattern, every list's and map's count. This module reads that file directly, without
importing botocore (``smlaunch validate`` stays light), and answers, for a member path of the request
(``"Tags[].Key"``, ``"Environment{key}"``, ``"VpcConfig.Subnets"``), what a value breaks. Without botocore
installed (submit needs it anyway) there is no model and :func:`problem` answers None.

SageMaker matches its patterns against the whole value (Java ``matches``): so does :func:`problem`
(``re.fullmatch``; ``re.match`` with ``$`` let a trailing newline through).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

_CATEGORY = re.compile(r"\\p\{([LMNPSZ])\}")
_SENTINEL = 0xE000
"""Private-use characters that stand for a Unicode category (``\\p{L}``) in a translated pattern."""


def botocore_data() -> Path | None:
    """botocore's data folder, found without importing botocore (None when it is not installed)."""
    found = importlib.util.find_spec("botocore")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / "data"


@functools.cache
def shapes() -> dict[str, Any] | None:
    """The shapes of the newest SageMaker API version botocore has, or None without botocore."""
    data = botocore_data()
    files = sorted((data / "sagemaker").glob("*/service-2.json*")) if data else []
    if not files:
        return None
    path = files[-1]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)["shapes"]


@functools.cache
def _partitions() -> tuple[dict[str, Any], ...]:
    """botocore's partitions.json (empty when botocore is not installed)."""
    data = botocore_data()
    path = data / "partitions.json" if data else None
    if path is None or not path.is_file():
        return ()
    return tuple(json.loads(path.read_text(encoding="utf-8"))["partitions"])


@functools.cache
def region_patterns() -> tuple[re.Pattern, ...]:
    """Every partition's region pattern (botocore's partitions.json), e.g. ``^(us|eu|ap|...)\\-\\w+\\-\\d+$``."""
    return tuple(re.compile(p["regionRegex"].removeprefix("^").removesuffix("$"), re.ASCII) for p in _partitions())


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region some partition lists (empty when botocore is not installed)."""
    return frozenset(r for p in _partitions() for r in p.get("regions", {}) if not r.endswith("-global"))


def region_ok(region: str) -> bool:
    """A region name some AWS partition has (True when botocore is not installed: nothing to check against)."""
    patterns = region_patterns()
    return not patterns or any(p.fullmatch(region) for p in patterns)


def shape(path: str) -> dict[str, Any] | None:
    """The shape of a CreateTrainingJob member path: ``a.b`` a member, ``[]`` a list's member, ``{key}`` /
    ``{value}`` a map's key or value (``"Tags[].Key"``, ``"Environment{key}"``)."""
    model = shapes()
    if model is None:
        return None
    node = model["CreateTrainingJobRequest"]
    for part in re.findall(r"\[\]|\{key\}|\{value\}|[A-Za-z0-9]+", path):
        if part == "[]":
            name = node["member"]["shape"]
        elif part in ("{key}", "{value}"):
            name = node[part[1:-1]]["shape"]
        else:
            name = node["members"][part]["shape"]
        node = model[name]
    return node


def problem(path: str, value: Any) -> str | None:
    """What ``value`` breaks of the shape at ``path`` (its count, length, range or pattern), or None."""
    found = shape(path)
    if found is None:
        return None
    low, high = found.get("min"), found.get("max")
    if found["type"] in ("list", "map"):
        if high is not None and len(value) > high:
            return f"{len(value)} entries; CreateTrainingJob takes at most {high}"
        if low is not None and len(value) < low:
            return f"{len(value)} entries; CreateTrainingJob takes at least {low}"
        return None
    if found["type"] == "integer":
        if low is not None and value < low:
            return f"{value} is below CreateTrainingJob's minimum {low}"
        if high is not None and value > high:
            return f"{value} is above CreateTrainingJob's maximum {high}"
        return None
    if high is not None and len(value) > high:
        return f"{len(value)} characters; CreateTrainingJob takes at most {high}"
    if low is not None and len(value) < low:
        return f"{len(value)} characters; CreateTrainingJob takes at least {low}"
    pattern = found.get("pattern")
    if pattern is not None and not fullmatch(pattern, value):
        return f"does not match CreateTrainingJob's pattern {pattern}"
    return None


def fullmatch(pattern: str, value: str) -> bool:
    """Java's ``String.matches`` for the model's patterns: the whole value; ``\\p{L}``-style categories inside
    character classes are translated (each character of that category stands in for its category)."""
    compiled, categories = _translated(pattern)
    if categories:
        value = "".join(_stand_in(ch, categories) for ch in value)
    return compiled.fullmatch(value) is not None


@functools.cache
def _translated(pattern: str) -> tuple[re.Pattern, str]:
    categories = "".join(dict.fromkeys(_CATEGORY.findall(pattern)))
    text = _CATEGORY.sub(lambda m: chr(_SENTINEL + categories.index(m.group(1))), pattern)
    return re.compile(text.replace(r"\p{Alnum}", "a-zA-Z0-9"), re.ASCII), categories  # Java's \d, \w: ASCII


def _stand_in(ch: str, categories: str) -> str:
    if _SENTINEL <= ord(ch) < _SENTINEL + 16:
        return "\x00"  # a private-use character of the value never matches a category
    category = unicodedata.category(ch)[0]
    return chr(_SENTINEL + categories.index(category)) if category in categories else ch
