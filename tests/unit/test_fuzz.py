"""Property-based hunt for escapes: whatever the input, `smlaunch validate` ends with exit 0/1/2, no traceback.

Three sources, 1,200+ examples a run: random bytes, random YAML documents, and the reference templates with
random mutations (values replaced by other types, extreme numbers, deletions, unknown keys), each also through
random ``--set`` overrides.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smlaunch.cli import main
from smlaunch.templates import STARTERS, starter

TEMPLATES = {name: yaml.safe_load(starter(name)) for name in STARTERS}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 3, 4, 6, 7, 8, 9, 16, 32, 64, 10**9]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["each", "group_0", "group_3", "spread", "DPT", "ml.p5.48xlarge", "ml.p3.16xlarge", "${NOPE}"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def run_validate(text: str | bytes, overrides: list[str] = ()) -> int:
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "wb") as handle:
        handle.write(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    args = ["validate", "--format", "json", path]
    for item in overrides:
        args += ["--set", item]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = main(args)
    finally:
        os.unlink(path)
    assert code in (0, 1, 2)
    return code


@st.composite
def mutated_templates(draw):
    spec = draw(st.sampled_from(sorted(TEMPLATES)))
    data = yaml.safe_load(yaml.safe_dump(TEMPLATES[spec]))
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(sorted(data)))
        node = data[section]
        if isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            action = draw(st.sampled_from(["replace", "delete", "unknown"]))
            if action == "replace":
                node[key] = draw(values)
            elif action == "delete":
                del node[key]
            else:
                node[key + draw(st.text(min_size=1, max_size=3))] = draw(values)
        else:
            data[section] = draw(values)
    return yaml.safe_dump(data, allow_unicode=True)


overrides = st.lists(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(
            [
                "smp.microbatches",
                "smp.tensor_parallel_degree",
                "smp.partitions",
                "training.batch_size",
                "cluster.instance_count",
                "model.num_heads",
                "smp",
                "x.y.z",
                "",
                "training.activation_checkpointing",
            ]
        ),
        st.text(max_size=10),
    ),
    max_size=2,
)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    assert run_validate(data) == 2 or data.strip()


@FUZZ
@given(values)
def test_random_yaml_documents(doc):
    run_validate(yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(mutated_templates(), overrides)
def test_mutated_templates(text, sets):
    run_validate(text, sets)
