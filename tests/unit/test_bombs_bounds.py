"""Input that crashed or hung: alias bombs, merge keys, huge numbers, O(n) fix searches, one loader for plan.

Every case is answered with a SpecError (or a report) quickly: :data:`FAST_S` per call, generous for a loaded
CI machine (each takes a few milliseconds alone), far below the minutes and gigabytes they took before.
"""

from __future__ import annotations

import time

import pytest
import yaml

from smlaunch import api
from smlaunch.errors import SmlaunchError, SpecError
from smlaunch.spec.load import load_spec
from smlaunch.spec.yaml_read import MAX_ALIAS_EXPANSION
from smlaunch.templates import starter
from tests.unit.test_fuzz_api import alias_bomb

FAST_S = 1.0
BASE = starter("gpt2-30b")


def _timed(call, *args, **kwargs):
    start = time.perf_counter()
    try:
        result = call(*args, **kwargs)
    finally:
        took = time.perf_counter() - start
        assert took < FAST_S, f"{call.__name__} took {took:.2f} s"
    return result


def _write(tmp_path, text: str | bytes, name="job.yaml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _with_section(text: str, section: str, body: str) -> str:
    return text.replace(f"\n{section}:\n", f"\n{section}:\n{body}", 1)


BOMB = alias_bomb(10, 9, "    ")  # 10^9 values from ten lines


@pytest.mark.parametrize(
    "text",
    [
        BASE + "unknown:\n" + alias_bomb(10, 9, "  "),
        _with_section(BASE, "sagemaker", "  extra_estimator_kwargs:\n" + BOMB),
        _with_section(BASE, "sagemaker", "  environment:\n" + BOMB),
    ],
    ids=["unknown-key", "extra_estimator_kwargs", "environment"],
)
def test_alias_bombs_are_refused_in_files(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(SpecError, match=r"YAML aliases \(\*name\) expand the document by more than 10,000 values"):
        _timed(api.validate, path)


@pytest.mark.parametrize(
    "value",
    [
        "{" + alias_bomb(10, 9, "").replace("\n", ", ").rstrip(", ") + "}",
        "[&a [x, x, x, x, x, x, x, x], " + ", ".join(["*a"] * 1300) + "]",
    ],
    ids=["nested", "wide"],
)
def test_alias_bombs_are_refused_in_set_values(tmp_path, value):
    path = _write(tmp_path, BASE)
    for key in ("sagemaker.extra_estimator_kwargs", "zz", "sagemaker.environment"):
        with pytest.raises(SpecError, match="YAML aliases"):
            _timed(load_spec, path, [f"{key}={value}"])


def test_a_few_aliases_are_fine(tmp_path):
    body = "  environment: &env {A: '1', B: '2'}\n  tags: *env\n"
    spec = load_spec(_write(tmp_path, _with_section(BASE, "sagemaker", body)))
    assert spec.sagemaker.tags == {"A": "1", "B": "2"} == spec.sagemaker.environment
    assert MAX_ALIAS_EXPANSION == 10_000


def test_merge_keys_load_and_an_explicit_key_overrides(tmp_path):
    body = "  tags: &common {team: ml, env: dev}\n  environment:\n    <<: *common\n    env: prod\n    EXTRA: x\n"
    text = _with_section(BASE, "sagemaker", body)
    spec = load_spec(_write(tmp_path, text))
    assert spec.sagemaker.tags == {"team": "ml", "env": "dev"}
    assert spec.sagemaker.environment == {"team": "ml", "env": "prod", "EXTRA": "x"}  # the explicit key wins
    line = text.splitlines().index("    env: prod") + 1
    assert spec.source.line_of(("sagemaker", "environment", "env")) == line


def test_merge_key_then_the_same_key_twice_is_still_an_error(tmp_path):
    text = "base: &b {a: 1}\nx:\n  <<: *b\n  a: 2\n  a: 3\n"
    with pytest.raises(SpecError, match=r"key 'x\.a' appears twice"):
        load_spec(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("max_steps: 100", "max_steps: " + "9" * 5000, r"training.max_steps \(line \d+\) is a number of 5,000 digits"),
        ("preset: gpt2-30b", "preset: gpt2-30b\n  seq_length: 1" + "0" * 200, "model.seq_length .* 201 digits"),
        ("preset: gpt2-30b", f"preset: gpt2-30b\n  hidden_width: {2**700}", "model.hidden_width .* 211 digits"),
        ("max_steps: 100", "max_steps: 1" + "0" * 400, "401 digits"),
        ("instance_count: 16", "instance_count: 1" + "0" * 400, "cluster.instance_count .* 401 digits"),
        ("preset: gpt2-30b", "preset: gpt2-30b\n  seq_length: 1" + "0" * 30, "model.seq_length.*less than or equal"),
        ("max_steps: 100", f"max_steps: {2**31}", "training.max_steps.*less than or equal to 2147483647"),
        ("instance_count: 16", f"instance_count: {2**31}", "cluster.instance_count.*less than or equal"),
        ("max_run_hours: 24", "max_run_hours: .inf", "cluster.max_run_hours.*finite number"),
        ("max_run_hours: 24", "max_run_hours: 24\n  spot: {enabled: true, max_wait_hours: .inf}",
         "cluster.spot.max_wait_hours.*finite number"),
        ("lr: 0.0002", "lr: .inf", "training.lr.*finite number"),
        ("lr: 0.0002", "lr: .nan", "training.lr.*finite number"),
        ("activation_checkpointing: each", "activation_checkpointing: group_1" + "0" * 30, "activation_checkpointing"),
    ],
)  # fmt: skip
def test_huge_numbers_are_spec_errors(tmp_path, old, new, message):
    path = _write(tmp_path, BASE.replace(old, new, 1))
    for call in (api.validate, api.estimate, api.render):
        with pytest.raises(SpecError, match=message):
            _timed(call, path)


def test_huge_numbers_in_dicts_and_set_values():
    data = yaml.safe_load(BASE)
    data["cluster"]["instance_count"] = 10**5000  # no YAML in between: Python's int-to-text limit
    data["cluster"]["instance_type"] = 10**5000
    with pytest.raises(SpecError, match="an integer of about 5,000 digits"):
        load_spec(data)
    with pytest.raises(SpecError, match="5,000 digits"):
        load_spec(yaml.safe_load(BASE), ["training.max_steps=" + "9" * 5000])


@pytest.mark.parametrize(
    "sets",
    [
        ["smp.pipeline_parallel_degree=1000000007"],  # 1 - bubble rounded to 0: a division by zero
        ["smp.pipeline_parallel_degree=2147483647"],
        ["smp.pipeline_parallel_degree=2", "smp.microbatches=1000000007"],
        ["training.batch_size=32000000"],  # MEM001's batch search: minutes before bisection
        ["training.batch_size=2147483647", "smp.microbatches=1"],
        ["cluster.instance_count=2147483647"],  # divisors of the world for SMP003/SMP004
        ["cluster.instance_count=2147483629", "cluster.processes_per_host=1021"],  # a prime count x a prime
        ["model.num_heads=65521", "smp.tensor_parallel_degree=3"],  # MOD001's divisors of a prime
        ["smp.sharded_data_parallel_degree=2147483647"],
        ["engine=torch", "cluster.instance_type=ml.p5.48xlarge", "smp.pipeline_parallel_degree=2147483647",
         "smp.microbatches=2147483647", "smp.active_microbatches=1", "sagemaker.framework_version=2.8.0"],
    ],
)  # fmt: skip
def test_extreme_layouts_are_answered_in_under_a_second(tmp_path, sets):
    path = _write(tmp_path, BASE)
    for call in (api.validate, api.estimate):
        try:
            _timed(call, path, overrides=sets)
        except SmlaunchError:
            pass


def test_divisors_are_not_trial_division_over_n():
    from smlaunch.spec.rules.arith import divisors

    assert divisors(1) == [1] and divisors(12) == [1, 2, 3, 4, 6, 12] and divisors(49) == [1, 7, 49]
    assert all(divisors(n) == [d for d in range(1, n + 1) if n % d == 0] for n in range(1, 400))
    assert _timed(divisors, 2147483647 * 1021) == [1, 1021, 2147483647, 2147483647 * 1021]
    assert len(_timed(divisors, 2**31 * 1024)) == 42


def test_refit_bisects_the_batch():
    from smlaunch.costmodel import estimate
    from smlaunch.costmodel.explain import refit

    spec = load_spec(yaml.safe_load(BASE), ["training.batch_size=32000000", "smp.fp16=true"])
    changes, steps = _timed(refit, spec)
    batch = changes["training.batch_size"]
    assert estimate(load_spec(yaml.safe_load(BASE), [f"training.batch_size={batch}", "smp.fp16=true"])).fits
    bigger = load_spec(yaml.safe_load(BASE), [f"training.batch_size={batch + 1}", "smp.fp16=true"])
    assert not estimate(bigger).fits and steps == [f"lower training.batch_size to {batch}"]


def test_a_one_mib_spec_is_answered_in_under_a_second(tmp_path):
    padding = "# " + "x" * 1000 + "\n"
    text = BASE + padding * ((1024 * 1024 - len(BASE)) // len(padding) - 1)
    path = _write(tmp_path, text)
    assert path.stat().st_size <= 1024 * 1024
    assert _timed(api.validate, path).valid


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BASE.replace("\n  instance_count", "\n\tinstance_count").encode(), "YAML syntax error at line"),
        (BASE.encode("utf-16"), "is UTF-16 text, not UTF-8"),
        (b"model: [unclosed\n", "YAML syntax error"),
        (("unknown:\n" + alias_bomb(10, 9, "  ")).encode(), "YAML aliases"),
    ],
    ids=["tab", "utf-16", "syntax", "bomb"],
)
def test_plan_model_file_uses_the_spec_loader(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(SpecError, match=message):
        api.plan(str(path), instance_type="ml.p4d.24xlarge", instance_count=16)
    from smlaunch.costmodel.planner import _model_from_file

    with pytest.raises(SpecError, match=message):
        _model_from_file(str(path))
