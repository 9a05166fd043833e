"""entrypoints/fp8.py and the layout checks of --precision fp8 (issue 20): what needs no torchao to test."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "entrypoints"))

import fp8  # noqa: E402
from levers import Levers  # noqa: E402
from mesh import Layout  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from train_gpt2 import parse_args  # noqa: E402


def _layout(*argv: str, world: int = 1) -> Layout:
    args = parse_args(["--num_layers", "2", "--hidden_width", "64", "--num_heads", "4", *argv])
    return Layout.from_args(args, world_size=world)


def test_precision_fp8_sets_the_layout_and_needs_bf16_and_tp1():
    assert _layout("--bf16", "1", "--precision", "fp8").fp8
    assert not _layout("--bf16", "1").fp8
    with pytest.raises(ValueError, match="fp8 runs under bf16 autocast"):
        _layout("--precision", "fp8")
    with pytest.raises(ValueError, match=r"fp8 with tp\(2\)"):
        _layout("--bf16", "1", "--precision", "fp8", "--tensor_parallel_degree", "2", world=2)
    with pytest.raises(ValueError, match="precision='fp16'; expected fp8 or nothing"):
        _layout("--bf16", "1", "--precision", "fp16")


def test_recipe_lever_defaults_to_tensorwise_and_refuses_others():
    assert Levers.from_env({}).fp8_recipe == "tensorwise"
    assert Levers.from_env({"SMLAUNCH_FP8_RECIPE": "rowwise"}).fp8_recipe == "rowwise"
    with pytest.raises(ValueError, match="expected one of tensorwise, rowwise"):
        Levers.from_env({"SMLAUNCH_FP8_RECIPE": "mxfp8"})


def test_only_the_blocks_linears_with_dims_divisible_by_16_are_eligible():
    model = GPT(GPTConfig(num_layers=1, hidden_width=64, num_heads=4, seq_length=16, vocab_size=100))
    picked = sorted(n for n, m in model.named_modules() if fp8.float8_eligible(m, n))
    assert picked == [f"blocks.0.{n}" for n in ("attn.c_proj", "attn.k", "attn.q", "attn.v", "mlp.c_fc", "mlp.c_proj")]
    assert not fp8.float8_eligible(torch.nn.Linear(64, 40), "blocks.0.mlp.c_fc")  # 40 % 16 != 0
    assert not fp8.float8_eligible(torch.nn.Linear(64, 64), "lm_head")  # the tied head stays 16-bit


def test_without_torchao_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # import torchao.* raises ImportError
    monkeypatch.setitem(sys.modules, "torchao.float8", None)
    stage = SimpleNamespace(blocks={})
    with pytest.raises(RuntimeError, match=r"needs torchao .*pip install torchao.*or train in bf16"):
        fp8.to_float8(stage, device=torch.device("cpu"), recipe="tensorwise")
