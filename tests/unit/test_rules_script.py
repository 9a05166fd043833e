"""Own-script rules (ENT001-ENT005): what an ``entry_point:`` section needs of the rest of the spec.

SCRIPT_BASE is test_rules.BASE (the GPT-2 30B reference row on 16 x p4d) launched through AWS's
train_gpt_simple.py (``arguments: aws-smp-gpt2``) with the train and test channels it reads: no findings at all.
Each failing case changes it the smallest way that breaks one rule; each passing case sits on the boundary.
"""

from __future__ import annotations

import copy

import pytest

from smlaunch.layout import resolve
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import RULES, check, rule_ids
from tests.unit.rule_cases import assert_cases_cover, assert_fails, runner
from tests.unit.test_rules import BASE

SCRIPT_BASE = copy.deepcopy(BASE)
SCRIPT_BASE["entry_point"] = {"script": "train_gpt_simple.py", "source_dir": "gpt2", "arguments": "aws-smp-gpt2"}
SCRIPT_BASE["data"] = {"train": "s3://bucket/gpt2/train", "test": "s3://bucket/gpt2/test"}
SCRIPT_RULES = [r for r in rule_ids() if r.startswith("ENT")]
MAPPING = {"model.seq_length": "seq", "training.batch_size": "bs"}
FULL_MAPPING = {
    "model.num_layers": "layers",
    "model.hidden_width": "width",
    "model.num_heads": "heads",
    "model.seq_length": "seq",
    "model.vocab_size": "vocab",
    "training.batch_size": "bs",
    "training.max_steps": "steps",
}


script_spec, run = runner(SCRIPT_BASE)


# (rule, overrides of SCRIPT_BASE, severity, field, part of the message, fix)
FAILING = [
    (
        "ENT001",
        {"data": {"train": "s3://bucket/gpt2/train"}},
        "error",
        "data.test",
        "train_gpt_simple.py defaults --test-dir to os.environ['SM_CHANNEL_TEST'] while it parses its arguments: "
        "without a 'test' channel it stops with a KeyError before training",
        "set data.test: s3://bucket/gpt2/train (AWS's notebook passes the training data when it has no test set)",
    ),
    (
        "ENT001",
        {"data": {"test": "s3://bucket/gpt2/test"}},
        "error",
        "data.train",
        "defaults --training-dir to os.environ['SM_CHANNEL_TRAIN']",
        "set data.train: s3://<bucket>/<prefix>/train (the script's own json.gz shards)",
    ),
    (
        "ENT002",
        {"engine": "torch"},
        "error",
        "engine",
        "entry_point.arguments aws-smp-gpt2 is AWS's SMP v1 script (train_gpt_simple.py imports "
        "smdistributed.modelparallel)",
        "set engine: smp",
    ),
    (
        "ENT003",
        {"entry_point.hyperparameters": {"train_batch_size": 4, "logging_freq": 1}},
        "error",
        "entry_point.hyperparameters.train_batch_size",
        "--train_batch_size is rendered from training.batch_size (= 32); entry_point.hyperparameters.train_batch_size"
        " = 4 would override it",
        "remove entry_point.hyperparameters.train_batch_size; set training.batch_size instead",
    ),
    (
        "ENT003",
        {"entry_point.hyperparameters": {"lr_decay_style": "linear"}},
        "error",
        "entry_point.hyperparameters.lr_decay_style",
        "--lr_decay_style is rendered by the aws-smp-gpt2 mapping (= 'cosine')",
        "remove entry_point.hyperparameters.lr_decay_style",
    ),
    (
        "ENT004",
        {"entry_point.arguments": MAPPING},
        "warning",
        "entry_point.arguments",
        "the mapping does not pass model.num_layers, model.hidden_width, model.num_heads, model.vocab_size, "
        "training.max_steps: the script trains with its own defaults",
        "map model.num_layers, model.hidden_width, model.num_heads, model.vocab_size, training.max_steps to the "
        "script's argument names in entry_point.arguments",
    ),
    (
        "ENT005",
        {"cluster.spot.enabled": True},
        "warning",
        "training.checkpoint_every_steps",
        "training.checkpoint_every_steps 0 with spot: train_gpt_simple.py saves only every checkpoint_freq "
        "(= max_steps 100) steps and not on SIGTERM",
        "set training.checkpoint_every_steps: 10",
    ),
]

PASSING = [
    ("ENT001", {"entry_point.arguments": "smlaunch", "data": {}}),
    ("ENT002", {"engine": "torch", "entry_point.arguments": "smlaunch"}),
    ("ENT003", {"entry_point.hyperparameters": {"logging_freq": 1, "val_batch_size": 4}}),
    ("ENT004", {"entry_point.arguments": FULL_MAPPING}),
    ("ENT005", {"cluster.spot.enabled": True, "training.checkpoint_every_steps": 50}),
]


@pytest.mark.parametrize("case", FAILING, ids=[f"{c[0]}-{i}" for i, c in enumerate(FAILING)])
def test_rule_fails(case):
    assert_fails(run, case)


@pytest.mark.parametrize(("rule_id", "overrides"), PASSING, ids=[f"{c[0]}-{i}" for i, c in enumerate(PASSING)])
def test_rule_passes(rule_id, overrides):
    assert run(rule_id, overrides) == []


def test_every_script_rule_has_both_cases_and_is_reported_by_check():
    assert_cases_cover(script_spec, FAILING, PASSING, SCRIPT_RULES)


def test_the_script_base_has_no_findings():
    assert check(script_spec()).findings == ()


def test_script_rules_are_silent_without_an_entry_point():
    """Without ``entry_point:`` (smlaunch's own entry points) no ENT rule fires on the failing cases' changes."""
    for rule_id, overrides, *_ in FAILING:
        changes = {k: v for k, v in overrides.items() if not k.startswith("entry_point")}
        spec = load_spec(copy.deepcopy(BASE), changes)
        assert RULES[rule_id](spec, resolve(spec)) == [], (rule_id, overrides)
