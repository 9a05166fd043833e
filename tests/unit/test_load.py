"""The loader: YAML with lines, presets, ${ENV}, --set, and one clear SpecError for every bad input."""

from __future__ import annotations

import pytest

from smlaunch.catalog import PRESET_NOMINAL_PARAMS, PRESETS
from smlaunch.errors import SpecError
from smlaunch.spec.load import load_spec

BASE = """\
name: demo
model:
  preset: gpt2-30b
cluster:
  instance_type: ml.p4d.24xlarge
  instance_count: 16
smp:
  tensor_parallel_degree: 8
  ddp: true
training:
  batch_size: 32
  max_steps: 100
"""


def write(tmp_path, text: str, name: str = "job.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loads_preset_and_records_yaml_lines(tmp_path):
    spec = load_spec(write(tmp_path, BASE))
    assert (spec.model.num_layers, spec.model.hidden_width, spec.model.num_heads) == (48, 7168, 64)
    assert spec.model.seq_length == 512 and spec.model.vocab_size == 50000
    assert spec.source.line_of(("smp", "tensor_parallel_degree")) == 8
    assert spec.source.line_of(("smp", "microbatches")) == 7  # falls back to the section's line


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_is_within_five_percent_of_its_name(preset):
    params = PRESETS[preset].num_params()
    assert abs(params / PRESET_NOMINAL_PARAMS[preset] - 1) < 0.05


def test_explicit_model_keys_override_the_preset(tmp_path):
    spec = load_spec(write(tmp_path, BASE), ["model.seq_length=2048"])
    assert spec.model.seq_length == 2048 and spec.model.num_layers == 48


def test_partitions_is_an_alias_of_pipeline_parallel_degree():
    spec = load_spec(_dict(smp={"partitions": 2, "tensor_parallel_degree": 8, "ddp": True}))
    assert spec.smp.pipeline_parallel_degree == 2
    assert spec.smp.to_mp_parameters()["partitions"] == 2


def test_partitions_and_pipeline_parallel_degree_must_agree():
    with pytest.raises(SpecError, match=r"partitions\(2\) and pipeline_parallel_degree\(4\) are the same setting"):
        load_spec(_dict(smp={"partitions": 2, "pipeline_parallel_degree": 4}))


def test_env_substitution_with_default_and_escape(tmp_path):
    text = BASE + "sagemaker:\n  role: ${ROLE}\n  region: ${REGION:-us-west-2}\n  environment: {PRICE: $$5}\n"
    spec = load_spec(write(tmp_path, text), env={"ROLE": "arn:aws:iam::123456789012:role/R"})
    assert spec.sagemaker.role == "arn:aws:iam::123456789012:role/R"
    assert spec.sagemaker.region == "us-west-2"
    assert spec.sagemaker.environment == {"PRICE": "$5"}


def test_missing_env_var_names_field_and_line(tmp_path):
    with pytest.raises(SpecError, match=r"job.yaml:14: sagemaker.role uses \$\{ROLE\}, which is not set") as info:
        load_spec(write(tmp_path, BASE + "sagemaker:\n  role: ${ROLE}\n"), env={})
    assert "export ROLE=" in info.value.fix


def test_set_overrides_parse_yaml_scalars(tmp_path):
    spec = load_spec(write(tmp_path, BASE), ["smp.microbatches=4", "smp.prescaled_batch=true", "training.lr=3e-4"])
    assert spec.smp.microbatches == 4 and spec.smp.prescaled_batch is True and spec.training.lr == 3e-4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training", r"--set 'training': expected section.key=value"),
        ("name.sub=1", r"--set name.sub: name is a value, not a section"),
    ],
)
def test_bad_overrides(tmp_path, override, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, BASE), [override])


def test_unknown_key_suggests_the_closest(tmp_path):
    with pytest.raises(
        SpecError, match=r"smp.micro_batches \(line 9\): unknown key; did you mean 'smp.microbatches'\?"
    ):
        load_spec(write(tmp_path, BASE.replace("  ddp: true", "  micro_batches: 2")))


def test_wrong_type_names_field_path_and_value(tmp_path):
    with pytest.raises(SpecError, match=r"training.batch_size \(line 11\): Input should be a valid integer.*'many'"):
        load_spec(write(tmp_path, BASE.replace("batch_size: 32", "batch_size: many")))


def test_missing_required_section_gives_example():
    with pytest.raises(SpecError, match=r"cluster: required; for example `cluster: \{instance_type: ml.p4d"):
        load_spec({"name": "x", "model": {"preset": "gpt2-small"}, "training": {"batch_size": 1, "max_steps": 1}})


def test_model_without_preset_needs_every_shape_key():
    with pytest.raises(SpecError, match=r"model.num_heads: required; set model.preset"):
        load_spec(_dict(model={"num_layers": 2, "hidden_width": 64, "seq_length": 32, "vocab_size": 256}))


def test_unknown_preset_lists_allowed():
    with pytest.raises(SpecError, match=r"model.preset: Input should be 'gpt2-small', .*'gpt2-60b' \(got 'gpt2-5b'\)"):
        load_spec(_dict(model={"preset": "gpt2-5b"}))


def test_commented_out_optional_section_means_defaults(tmp_path):
    spec = load_spec(write(tmp_path, BASE + "output:\n  # s3_path: s3://b/p\n"))
    assert spec.output.s3_path is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"job.yaml is empty"),
        ("# only a comment\n", r"job.yaml is empty"),
        ("- a\n- b\n", r"the top level must be a mapping of sections, got a list"),
        ("just a string", r"the top level must be a mapping of sections, got a string"),
        ("name: [unclosed\n", r"YAML syntax error at line 2, column 1"),
        ("name: a\nname: b\n", r"line 2: key 'name' appears twice"),
        ("a: &x [*x]\n", r"."),
        ("? [a, b]\n: 1\n", r"keys must be plain names"),
    ],
)
def test_unreadable_yaml_is_one_spec_error(tmp_path, content, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, content))


def test_binary_directory_missing_and_huge_files(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01\x02garbage")
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9".encode("latin-1"))
    (tmp_path / "huge.yaml").write_text("x: 1\n" * 300_000)
    cases = {
        tmp_path / "bin.yaml": "is binary, not YAML",
        tmp_path / "latin1.yaml": "is not UTF-8 text",
        tmp_path / "huge.yaml": r"is 1\.4 MiB; a job spec is a few KB",
        tmp_path: "is a directory, not a job spec",
        tmp_path / "nope.yaml": "no such file",
    }
    for path, message in cases.items():
        with pytest.raises(SpecError, match=message):
            load_spec(path)


def _dict(**sections):
    base = {
        "name": "demo",
        "model": {"preset": "gpt2-30b"},
        "cluster": {"instance_type": "ml.p4d.24xlarge", "instance_count": 16},
        "training": {"batch_size": 32, "max_steps": 100},
    }
    return {**base, **sections}
