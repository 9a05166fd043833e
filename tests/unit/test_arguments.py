"""``entry_point.arguments``: the aws-smp-gpt2 mapping against train_gpt_simple.py's argument table, the prefix
abbreviation it avoids, explicit mappings, and the static read of a script's own parser (SRC002)."""

from __future__ import annotations

import argparse
import copy

import pytest
import yaml

from smlaunch import arguments as am
from smlaunch import container as ct
from smlaunch.errors import SpecError
from smlaunch.request import hyperparameters, render
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter

REFERENCE = ("gpt2-10b", "gpt2-30b", "gpt2-60b")
AWS = {"script": "train_gpt_simple.py", "source_dir": "gpt2", "arguments": "aws-smp-gpt2"}
PY_TYPES = {"int": int, "float": float, "str": str}


def reference(preset: str, entry=AWS, **changes):
    job = yaml.safe_load(starter(preset))
    job["entry_point"] = copy.deepcopy(entry)
    job["data"] = {"train": "s3://b/gpt2/train", "test": "s3://b/gpt2/test"}
    return load_spec(job, changes)


def table_parser() -> argparse.ArgumentParser:
    """An argparse parser with train_gpt_simple.py's options and types (argparse's defaults: abbreviations on)."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    for name, kind in am.AWS_SMP_GPT2_PARSER.items():
        if kind == "flag":
            parser.add_argument(f"--{name}", action="store_true")
        else:
            parser.add_argument(f"--{name}", type=PY_TYPES[kind])
    return parser


@pytest.mark.parametrize("preset", REFERENCE)
def test_every_rendered_argument_is_one_the_script_defines_with_its_type(preset):
    sent = render(reference(preset)).hyperparameters
    assert set(sent) <= set(am.AWS_SMP_GPT2_PARSER), set(sent) - set(am.AWS_SMP_GPT2_PARSER)
    for name, value in sent.items():
        kind = am.AWS_SMP_GPT2_PARSER[name]
        assert isinstance(value, PY_TYPES[kind] if kind != "float" else (int, float)), (name, value)


@pytest.mark.parametrize("preset", REFERENCE)
def test_the_toolkit_argv_parses_back_to_the_spec_values(preset):
    spec = reference(preset)
    sent = render(spec).hyperparameters
    namespace, unknown = table_parser().parse_known_args(ct.user_args(sent))
    assert unknown == []
    for name, value in sent.items():
        assert getattr(namespace, name.replace("-", "_")) == value, name
    assert namespace.train_batch_size == spec.training.batch_size
    assert namespace.max_context_width == spec.model.seq_length
    assert namespace.tensor_parallel_degree == spec.smp.tensor_parallel_degree
    assert namespace.pipeline_parallel_degree == spec.smp.pipeline_parallel_degree
    assert namespace.microbatches == spec.smp.microbatches


def test_smlaunchs_own_names_would_be_misread_by_the_script():
    """The prefix case: argparse takes ``--pipeline interleaved`` for ``--pipeline_parallel_degree`` and aborts on
    int('interleaved'); ``--batch_size`` is silently dropped by parse_known_args (the script would train at its
    default train_batch_size). The aws-smp-gpt2 mapping sends neither."""
    spec = reference("gpt2-30b")
    ours = hyperparameters(spec)
    assert ours["pipeline"] == "interleaved"
    with pytest.raises(argparse.ArgumentError, match="pipeline_parallel_degree: invalid int value: 'interleaved'"):
        table_parser().parse_known_args(["--pipeline", "interleaved"])
    namespace, unknown = table_parser().parse_known_args(ct.user_args({"batch_size": 32}))
    assert unknown == ["--batch_size", "32"] and namespace.train_batch_size is None
    sent = render(spec).hyperparameters
    assert "pipeline" not in sent and "batch_size" not in sent


def test_aws_mapping_converts_the_values_whose_meaning_differs():
    changes = {"training.warmup_steps": 10, "training.max_steps": 200, "smp.auto_partition": False}
    spec = reference("gpt2-30b", **changes)
    sent = render(spec).hyperparameters
    assert sent["warmup"] == 0.05  # a fraction of lr_decay_iters, not steps
    assert (sent["lr_decay_iters"], sent["lr_decay_style"]) == (200, "cosine")
    assert sent["checkpoint_freq"] == 200  # checkpoint_every_steps 0: at the end (0 divides by zero there)
    assert sent["manual_partition"] == 1 and sent["use_adamw"] == 1
    assert sent["activation_checkpointing"] == 1 and sent["activation_strategy"] == "each"
    every = render(reference("gpt2-30b", **{"training.checkpoint_every_steps": 25})).hyperparameters
    assert every["checkpoint_freq"] == 25


@pytest.mark.parametrize("preset", REFERENCE)
def test_smp_parameters_still_go_in_the_distribution_unchanged(preset):
    job = yaml.safe_load(starter(preset))
    plain = render(load_spec(job))
    own = render(reference(preset))
    assert own.mp_parameters == plain.mp_parameters and own.mp_parameters
    assert (own.entry_point, own.own_script, own.arguments) == ("train_gpt_simple.py", True, "aws-smp-gpt2")


def test_user_hyperparameters_are_passed_verbatim_and_sorted_in():
    spec = reference("gpt2-10b", **{"entry_point.hyperparameters": {"logging_freq": 5, "use_wiki_data": True}})
    sent = render(spec).hyperparameters
    assert (sent["logging_freq"], sent["use_wiki_data"]) == (5, 1)
    assert list(sent) == sorted(sent)


def test_an_explicit_mapping_sends_exactly_its_fields_under_its_names():
    mapping = {"model.seq_length": "ctx", "training.batch_size": "bs", "smp.prescaled_batch": "prescaled"}
    spec = reference("gpt2-10b", {**AWS, "arguments": mapping})
    assert render(spec).hyperparameters == {"bs": spec.training.batch_size, "ctx": 512, "prescaled": 1}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**AWS, "arguments": {"training.batchsize": "bs"}}, "'training.batchsize' is not a spec field"),
        ({**AWS, "arguments": {"training.batch_size": "--bs"}}, "'--bs' is not an argument name"),
        ({**AWS, "arguments": "aws-smp-gpt3"}, "entry_point.arguments"),
        ({**AWS, "script": "../train.py"}, "leaves source_dir"),
        ({**AWS, "script": "/abs/train.py"}, "entry_point.script"),
        ({**AWS, "hyperparameters": {"bad name": 1}}, "'bad name' is not an argument name"),
        ({**AWS, "unknown": 1}, "entry_point.unknown"),
    ],
)
def test_bad_entry_point_sections_are_spec_errors_naming_the_field(entry, message):
    with pytest.raises(SpecError, match="entry_point") as info:
        reference("gpt2-10b", entry)
    assert message in str(info.value)


def test_the_aws_scripts_log_line_feeds_its_metrics():
    """SageMaker metrics follow the script: train_gpt_simple.py's rank-0 line (its print every logging_freq)."""
    import re

    from smlaunch.targets import sagemaker_v2

    line = "(42s), Batch 9 Loss: 7.0625, Speed: 3.25 samples/sec, TFLOPS/GPU: 101.5"
    metrics = sagemaker_v2.call(render(reference("gpt2-30b")))["estimator"]["metric_definitions"]
    found = {m["Name"]: re.search(m["Regex"], line).group(1) for m in metrics}
    assert found == {"train:step": "9", "train:loss": "7.0625", "train:samples_per_s": "3.25",
                     "train:tflops_per_gpu": "101.5"}  # fmt: skip
    explicit = render(reference("gpt2-30b", {**AWS, "arguments": {"training.batch_size": "bs"}}))
    assert sagemaker_v2.call(explicit)["estimator"]["metric_definitions"] == []  # an unknown script's log
