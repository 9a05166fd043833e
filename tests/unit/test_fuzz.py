"""Property-based hunt for escapes: whatever the input, `smlaunch validate` answers with its JSON report and the
exit code that report implies (0 valid, 1 a rule is broken, 2 the file cannot be read or typed), never a traceback.

Three sources, 1,200+ examples a run: random bytes, random YAML documents, and the reference templates with
random mutations (values replaced by other types, extreme numbers, deletions, unknown keys), each also through
random ``--set`` overrides.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smlaunch.cli import main
from smlaunch.spec.rules import RULES
from smlaunch.templates import STARTERS, starter

VERDICTS = {*RULES, "MEM001", "MEM002", "RUN001", "HOST001", "PCI001"}  # the rulebook plus the cost model's verdicts
VERDICTS |= {f"SRC00{i}" for i in range(1, 7)}  # and the findings that read an own script's files
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
    """Run ``validate --format json`` on ``text``; check the output says what the exit code says; return the code."""
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "wb") as handle:
        handle.write(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    args = ["validate", "--format", "json", path]
    for item in overrides:
        args += ["--set", item]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.unlink(path)
    assert_report_matches_exit_code(code, out.getvalue(), err.getvalue(), path)
    return code


def assert_report_matches_exit_code(code: int, out: str, err: str, path: str) -> None:
    assert "Traceback" not in out + err and 'File "' not in out + err, out + err
    assert err == ""  # --format json: everything is in the report
    report = json.loads(out)  # one JSON document, whatever the input
    assert report["file"] == path and set(report) >= {"valid", "errors", "warnings"}
    errors = report["errors"]
    if code == 2:  # unreadable or untyped: exactly one SPEC finding that names the file and the cause
        assert report["valid"] is False and [e["rule"] for e in errors] == ["SPEC"], errors
        message = errors[0]["message"]
        first = message.split("\n")[0]
        assert re.search(r"[a-z]{3}", first.removeprefix(path)), message  # a cause in words, not just the file
        count = re.search(r": (\d+) problems? in the job spec$", first)
        if count:  # a typing failure: one item per problem, each naming its field ("  - smp.microbatches: ...")
            items = message.split("\n  - ")[1:]
            assert len(items) == int(count.group(1)), message
            assert all(re.fullmatch(r".+?( \(line \d+\))?: \S.*", item, re.DOTALL) for item in items), message
    elif code == 1:  # the spec typed; a registered rule reports an error at a field, with a fix
        assert report["valid"] is False and errors, report
        for e in errors:
            assert e["rule"] in VERDICTS and e["field"] and e["message"].strip() and e["fix"].strip(), e
    else:
        assert code == 0 and report["valid"] is True and errors == [], (code, report)
        assert all(w["rule"] in VERDICTS for w in report["warnings"]), report["warnings"]


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
    # no 300 random bytes make a complete spec (name, model, cluster and training are all required)
    assert run_validate(data) == 2


@FUZZ
@given(values)
def test_random_yaml_documents(doc):
    # at most three keys at the top level: never the four required sections, so never typed
    assert run_validate(yaml.safe_dump(doc, allow_unicode=True)) == 2


@FUZZ
@given(mutated_templates(), overrides)
def test_mutated_templates(text, sets):
    run_validate(text, sets)


paths = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["/", ".", "..", "/proc/1/root", "/etc/hostname", "~", "a/../../b", "x" * 300, "ok\x00.py"]),
)


@st.composite
def entry_points(draw):
    """The 30B template with an ``entry_point:`` of hostile paths, argument styles and hyperparameters."""
    data = yaml.safe_load(yaml.safe_dump(TEMPLATES["gpt2-30b"]))
    section = {
        "script": draw(st.one_of(paths, paths.map(lambda p: p + ".py"), values)),
        "source_dir": draw(st.one_of(paths, values)),
        "arguments": draw(st.one_of(st.sampled_from(["smlaunch", "aws-smp-gpt2", "aws"]), values)),
        "hyperparameters": draw(st.one_of(st.dictionaries(st.text(max_size=6), scalars, max_size=3), values)),
    }
    data["entry_point"] = {k: v for k, v in section.items() if draw(st.booleans())}
    return yaml.safe_dump(data, allow_unicode=True)


@FUZZ
@given(entry_points())
def test_entry_points(text):
    run_validate(text)


def test_the_checks_see_every_exit_code():
    """The report checks above are not vacuous: a valid template, a broken rule and an untyped file."""
    template = TEMPLATES["gpt2-30b"] if "gpt2-30b" in TEMPLATES else next(iter(TEMPLATES.values()))
    assert run_validate(yaml.safe_dump(template)) == 0
    assert run_validate(yaml.safe_dump(template), ["smp.tensor_parallel_degree=3"]) == 1
    assert run_validate(yaml.safe_dump(template), ["smp.microbatches=many"]) == 2
    assert run_validate(b"\xff\xfe") == 2
