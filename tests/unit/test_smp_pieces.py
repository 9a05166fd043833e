"""In-process tests of the SMP v1 path's pieces, against the fake smdistributed (tests/fakes/).

Two kinds, kept apart on purpose:
- our code: ``smp_train.register_block_for_tp`` hands SMP the right hooks for our GPT-2 block;
- the fake's own contract: it must refuse what real SMP refuses (per the SMP v1 docs), or every test of our
  entry point that passes against it proves nothing. These assert the fake, and say so in their names.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKES = os.path.join(REPO, "tests", "fakes")


@pytest.fixture
def smp():
    """The fake, imported in this process and removed again (so no other test sees `smdistributed`)."""
    sys.path.insert(0, FAKES)
    try:
        import smdistributed.modelparallel.torch as fake

        fake.reset()
        yield fake
    finally:
        sys.path.remove(FAKES)
        for name in [n for n in sys.modules if n == "smdistributed" or n.startswith("smdistributed.")]:
            del sys.modules[name]


def test_the_fake_is_as_strict_as_smp_about_init_and_configs(smp):
    with pytest.raises(RuntimeError, match=r"smp.init\(\) must be called"):
        smp.rank()
    with pytest.raises(smp.SMPValidationError, match="requires ddp"):
        smp.init({"tensor_parallel_degree": 2})
    with pytest.raises(smp.SMPValidationError, match=r"tensor_parallel_degree\(2\) = 2 does not divide"):
        smp.init({"tensor_parallel_degree": 2, "ddp": True})
    with pytest.raises(smp.SMPValidationError, match="fp16 and bf16"):
        smp.init({"fp16": True, "bf16": True})
    smp.init({"microbatches": 4})
    assert (smp.size(), smp.dp_size(), smp.rdp_size(), smp.tp_size(), smp.pp_size()) == (1, 1, 1, 1, 1)
    assert smp.CALLS[:2] == [("rank", (), {}), ("init", ({"tensor_parallel_degree": 2},), {})]


def test_the_fake_step_splits_microbatches_as_smp_does(smp):
    smp.init({"microbatches": 2})
    model = smp.DistributedModel(torch.nn.Linear(3, 1))
    seen = []

    @smp.step
    def forward(model, x, scale):
        seen.append((tuple(x.shape), scale))
        loss = model(x).sum() * scale
        model.backward(loss)
        return loss

    out = forward(model, torch.ones(6, 3), 2.0)
    assert seen == [((3, 3), 2.0), ((3, 3), 2.0)]
    assert len(out.outputs) == 2 and out.reduce_mean().shape == ()
    with pytest.raises(smp.SMPValidationError, match=r"size 5 along axis 0 is not divisible by microbatches\(2\)"):
        forward(model, torch.ones(5, 3), 1.0)
    with pytest.raises(RuntimeError, match=r"inside an smp\.step"):
        model.backward(model(torch.ones(1, 3)).sum())


def test_the_fake_validates_activation_checkpointing_as_smp_does(smp):
    smp.init({})
    blocks = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model = smp.DistributedModel(torch.nn.Sequential(blocks))
    with pytest.raises(smp.SMPValidationError, match="invalid activation checkpointing strategy 'every'"):
        smp.set_activation_checkpointing(blocks, strategy="every")
    with pytest.raises(smp.SMPValidationError, match=r"submodule of the smp\.DistributedModel"):
        smp.set_activation_checkpointing(torch.nn.Sequential(), strategy="each")
    expected = model(torch.ones(1, 2))
    smp.set_activation_checkpointing(blocks, strategy="group_2")
    assert torch.equal(model(torch.ones(1, 2)), expected)
    with pytest.raises(smp.SMPValidationError, match="only one model"):
        smp.DistributedModel(torch.nn.Linear(1, 1))


def test_tp_registers_our_block_as_smp_transformer_layer(smp, monkeypatch):
    """With tp > 1 the custom GPT-2 block must be registered, or real SMP would replicate it on every tp rank."""
    monkeypatch.syspath_prepend(os.path.join(REPO, "entrypoints"))
    import smp_train
    import torch
    from model import Block, GPTConfig

    smp_train.register_block_for_tp()
    dist_cls, init_hook, forward_hook, return_hook = smp.TP_REGISTRY[Block]
    assert dist_cls is smp.nn.DistributedTransformerLayer
    args, kwargs = init_hook(GPTConfig(num_layers=2, hidden_width=64, num_heads=4, seq_length=32, vocab_size=256))
    assert args == ()
    assert kwargs["num_attention_heads"] == 4 and kwargs["attention_head_size"] == 16
    assert kwargs["hidden_size"] == 64 and kwargs["intermediate_size"] == 256
    assert kwargs["causal_mask_size"] == 32 and kwargs["pre_layernorm"] and not kwargs["post_layernorm"]
    x = torch.randn(3, 32, 64)
    (inputs,), fkwargs = forward_hook(x)
    hidden, mask = inputs
    assert hidden is x and fkwargs == {}
    assert mask.shape == (3, 1, 1, 32) and not mask.any()  # additive mask of zeros: causality is built in
    assert return_hook((hidden, mask)) is hidden
    sys.modules.pop("smp_train", None)


def test_the_fake_rejects_an_init_hook_that_does_not_match_the_module(smp):
    class Layer(torch.nn.Module):
        def __init__(self, width: int, heads: int = 4) -> None:
            super().__init__()

    with pytest.raises(smp.SMPValidationError, match=r"does not match Layer\.__init__"):
        smp.tp_register_with_module(Layer, smp.nn.DistributedTransformerLayer, lambda width: ((), {}))
