"""Property-based hunt through the Python API: ``load_spec``, ``validate``, ``estimate``, ``render`` and ``plan``
(smlaunch/api.py) on mutated templates, extreme numbers, YAML aliases and merge keys, hostile ``--set`` values and
dict sources. Whatever the input, only :class:`SmlaunchError` escapes, and every call returns within
:data:`BOUND_S`.

The test run draws a few hundred examples; the long run (benchmarks/results.md) sets ``SMLAUNCH_FUZZ_EXAMPLES``:

    SMLAUNCH_FUZZ_EXAMPLES=20000 python -m pytest -q tests/unit/test_fuzz_api.py -p no:cacheprovider
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smlaunch import api
from smlaunch.errors import SmlaunchError
from smlaunch.spec.load import load_spec
from smlaunch.templates import STARTERS, starter

EXAMPLES = int(os.environ.get("SMLAUNCH_FUZZ_EXAMPLES", "150"))
BOUND_S = float(os.environ.get("SMLAUNCH_FUZZ_BOUND_S", "5"))
"""Per call. The target is 1 s (the long run reports the slowest); 5 s leaves room for a loaded 2-core CI box."""
HANG_S = 60
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
TEMPLATES = {name: yaml.safe_load(starter(name)) for name in STARTERS}
SLOWEST: dict[str, float] = {}
"""The slowest call of each kind in this process (printed at exit by a long run)."""
if EXAMPLES > 1000:
    import atexit
    import sys

    atexit.register(lambda: print(f"slowest call (s): {dict(sorted(SLOWEST.items()))}", file=sys.stderr))

EXTREME_INTS = [0, -1, 1, 3, 7, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63, 2**64, 10**9 + 7, 10**18, 10**30]
EXTREME_FLOATS = [0.0, -0.0, 5e-324, 1e-300, 1e-4, 0.0002, 671.99, 672.0001, 1e9, 1e308, float("inf"), float("nan")]
NUMBER_TEXTS = ["1" + "0" * 200, "9" * 5000, "2" * 99, ".inf", "-.inf", ".nan", "1e400", "0x7fffffff", "0o777", "1_000"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EXTREME_INTS),
    st.integers(-(2**40), 2**40),
    st.sampled_from(EXTREME_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["no", "yes", "on", "${NOPE}", "${A:-${B}}", "${1BAD}", "$$", "each", "group_3", "s3://b/k\n"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def alias_bomb(width: int, depth: int, indent: str) -> str:
    """A mapping block of ``depth`` anchors each listing the previous ``width`` times: width**depth values."""
    lines = [f"{indent}l0: &l0 [{', '.join(['x'] * width)}]"]
    for level in range(1, depth + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"{indent}l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


@st.composite
def hostile_yaml(draw) -> bytes:
    """A reference template, mutated, then written as YAML text with hostile text-level additions."""
    data = yaml.safe_load(yaml.safe_dump(TEMPLATES[draw(st.sampled_from(sorted(TEMPLATES)))]))
    for _ in range(draw(st.integers(0, 4))):
        section = draw(st.sampled_from(sorted(data)))
        node = data[section]
        if isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            if draw(st.booleans()):
                node[key] = draw(values)
            else:
                del node[key]
        elif draw(st.integers(0, 4)) == 0:
            data[section] = draw(values)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    for _ in range(draw(st.integers(0, 2))):
        text = draw(st.sampled_from(TEXT_MUTATIONS))(text, draw)
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["utf-16", "utf-8-sig"]))
    return text.encode(encoding, "surrogatepass")


def _number_text(text: str, draw) -> str:
    """Replace one number of the document by a huge or special YAML number."""
    import re

    numbers = list(re.finditer(r"(?<=: )-?\d+(\.\d+)?$", text, re.MULTILINE))
    if not numbers:
        return text
    m = draw(st.sampled_from(numbers))
    return text[: m.start()] + draw(st.sampled_from(NUMBER_TEXTS)) + text[m.end() :]


def _bomb(text: str, draw) -> str:
    width, depth = draw(st.integers(2, 10)), draw(st.integers(1, 9))
    where = draw(st.sampled_from(["top", "sagemaker.extra_estimator_kwargs", "sagemaker.environment"]))
    if where == "top":
        return text + "bomb:\n" + alias_bomb(width, depth, "  ")
    section, key = where.split(".")
    body = f"  {key}:\n" + alias_bomb(width, depth, "    ")
    if f"\n{section}:" in text and f"\n{section}: " not in text:
        return text.replace(f"\n{section}:\n", f"\n{section}:\n{body}", 1)
    return text + f"{section}:\n{body}"


def _merge(text: str, draw) -> str:
    """Move the cluster section behind an anchor and merge it back, overriding one key."""
    count = draw(st.sampled_from([1, 2, 16, 10**9 + 7]))
    if "\ncluster:\n" not in text:
        return text
    return text.replace("\ncluster:\n", "\nx-base: &base {instance_count: 4}\ncluster:\n  <<: *base\n", 1).replace(
        "instance_count:", f"instance_count: {count}\n  # was:", 1
    )


def _tabs(text: str, draw) -> str:
    return text.replace("\n  ", "\n\t", draw(st.integers(1, 3)))


TEXT_MUTATIONS: list[Callable] = [_number_text, _bomb, _merge, _tabs]

SET_KEYS = [
    "name", "model.seq_length", "model.hidden_width", "model.num_heads", "cluster.instance_count",
    "cluster.max_run_hours", "cluster.spot.max_wait_hours", "cluster.volume_size_gb", "smp.microbatches",
    "smp.pipeline_parallel_degree", "smp.tensor_parallel_degree", "training.batch_size", "training.max_steps",
    "training.lr", "sagemaker.extra_estimator_kwargs", "sagemaker.tags", "sagemaker.environment", "zz.unknown",
]  # fmt: skip
set_values = st.one_of(
    st.sampled_from(NUMBER_TEXTS),
    st.sampled_from([str(v) for v in EXTREME_INTS + EXTREME_FLOATS]),
    st.sampled_from(["no", "&a [1, 2]", "{a: &a [x, x], b: [*a, *a]}", "[*a]", "{<<: {a: 1}, a: 2}"]),
    st.builds(
        lambda w, d: "{" + alias_bomb(w, d, "").replace("\n", ", ").rstrip(", ") + "}",
        st.integers(2, 10),
        st.integers(1, 9),
    ),
    st.text(max_size=10),
)
overrides = st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(SET_KEYS), set_values), max_size=3)


@contextmanager
def bounded(kind: str, factor: float = 1.0):
    """The call must return (or raise SmlaunchError) within ``factor`` x BOUND_S; a hang fails after HANG_S."""

    def hung(*_):
        raise TimeoutError(f"{kind} did not return within {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_S)
    start = time.perf_counter()
    try:
        yield
    except SmlaunchError:
        pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        took = time.perf_counter() - start
        SLOWEST[kind] = max(SLOWEST.get(kind, 0.0), took)
    assert took < factor * BOUND_S, f"{kind} took {took:.2f} s"


def _file(data: bytes) -> str:
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


@FUZZ
@given(hostile_yaml(), overrides)
def test_api_calls_on_hostile_files(data, sets):
    path = _file(data)
    try:
        for kind, call in (
            ("load_spec", lambda: load_spec(path, sets)),
            ("validate", lambda: api.validate(path, overrides=sets)),
            ("estimate", lambda: api.estimate(path, overrides=sets)),
            ("render", lambda: api.render(path, overrides=sets)),
        ):
            with bounded(kind):
                call()
    finally:
        os.unlink(path)


@settings(FUZZ, max_examples=max(15, EXAMPLES // 100))
@given(hostile_yaml(), st.sampled_from([1, 2, 16, 10**9 + 7]), st.sampled_from(["auto", "smp", "torch"]))
def test_plan_on_hostile_files(data, count, engine):
    """``plan --model FILE`` reads the file with the spec loader: its errors, never a traceback."""
    path = _file(data)
    try:
        with bounded("plan", factor=3):  # an enumeration of layouts: 0.9 s for gpt2-10b on 16 nodes
            api.plan(path, instance_type="ml.p4d.24xlarge", instance_count=count, top=1, engine=engine)
    finally:
        os.unlink(path)


@st.composite
def dict_specs(draw) -> dict:
    """A template as a Python dict with extreme Python values (no YAML in between: 10**5000 reaches typing)."""
    data = yaml.safe_load(yaml.safe_dump(TEMPLATES[draw(st.sampled_from(sorted(TEMPLATES)))]))
    huge = st.sampled_from([10**5000, -(10**400), 2**700, float("inf"), float("nan"), 10**200, 2**31])
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(data)))
        if isinstance(data[section], dict) and data[section]:
            data[section][draw(st.sampled_from(sorted(data[section])))] = draw(st.one_of(huge, values))
    return data


@FUZZ
@given(dict_specs())
def test_api_calls_on_dict_specs(data):
    for kind, call in (
        ("load_spec", lambda: load_spec(data)),
        ("validate", lambda: api.validate(data)),
        ("estimate", lambda: api.estimate(data)),
        ("render", lambda: api.render(data)),
    ):
        with bounded(kind):
            call()


def test_the_bound_can_fail(monkeypatch):
    """``bounded`` is not vacuous: a call over the bound fails, any other exception escapes."""
    import sys

    import pytest

    monkeypatch.setattr(sys.modules[__name__], "BOUND_S", 0.05)
    with pytest.raises(AssertionError, match="took"), bounded("sleep"):
        time.sleep(0.1)
    with pytest.raises(ZeroDivisionError), bounded("crash"):
        _ = 1 / 0
