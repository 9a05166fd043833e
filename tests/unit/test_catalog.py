"""The one hardware catalog: every GPU and instance number in one place, and the entry points agree with it."""

from __future__ import annotations

import os
import sys

import pytest

from smlaunch.catalog import GPUS, INSTANCES, peak_tflops
from smlaunch.costmodel import find_instance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVICE_NAMES = {  # what torch.cuda.get_device_name() reports on each
    "A100-SXM4-40GB": "NVIDIA A100-SXM4-40GB",
    "A100-SXM4-80GB": "NVIDIA A100-SXM4-80GB",
    "H100-SXM5-80GB": "NVIDIA H100 80GB HBM3",
    "H200-SXM-141GB": "NVIDIA H200",
    "V100-SXM2-16GB": "Tesla V100-SXM2-16GB",
    "V100-SXM2-32GB": "Tesla V100-SXM2-32GB",
    "A10G": "NVIDIA A10G",
    "L4": "NVIDIA L4",
    "T4": "Tesla T4",
}


@pytest.fixture(scope="module")
def runtime():
    pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(REPO, "entrypoints"))
    try:
        import runtime as module

        yield module
    finally:
        sys.path.remove(os.path.join(REPO, "entrypoints"))
        sys.modules.pop("runtime", None)


@pytest.mark.parametrize("gpu", sorted(DEVICE_NAMES))
def test_the_entry_points_peak_table_agrees_with_the_catalog(runtime, gpu):
    name = DEVICE_NAMES[gpu]
    assert runtime.device_peak_tflops(name, fp32=False) == GPUS[gpu].peak_tflops_16bit
    assert runtime.device_peak_tflops(name, fp32=True) == GPUS[gpu].peak_tflops_fp32


def test_device_names_that_look_alike_are_told_apart(runtime, capsys):
    assert runtime.device_peak_tflops("NVIDIA H100 PCIe", fp32=False) == 756.0
    assert runtime.device_peak_tflops("NVIDIA L40S", fp32=False) == 0.0  # not an L4
    assert "no peak FLOP/s known for 'NVIDIA L40S'" in capsys.readouterr().err


def test_mfu_uses_the_rendered_peak_and_is_zero_when_unknown(runtime):
    class Args:
        gpu_peak_tflops = 312.0
        fp16 = 1

    assert runtime.peak_flops(Args, "cpu") == 312e12
    Args.gpu_peak_tflops = 0.0
    assert runtime.peak_flops(Args, "cpu") == 0.0 and runtime.mfu(1e6, 1e9, 8, 0.0) == 0.0
    # a p4d at 141 TFLOP/s per GPU (SMP v1's published 30B figure) is 45% MFU, not the 14% of an H100 peak
    assert runtime.mfu(141e12 / 6e9 * 8, 6e9, 8, 312e12) == pytest.approx(141 / 312)


def test_every_instance_reads_the_catalog_and_prices_carry_their_source():
    for name, instance in INSTANCES.items():
        assert find_instance(name) is instance
        assert instance.host_memory_gib > 0 and instance.gpu.hbm_tbps > 0
        if instance.price is not None:
            assert instance.price.source and instance.price.as_of and instance.price.region
    assert INSTANCES["ml.p5e.48xlarge"].price is None  # no sourced price: unknown, not $0


def test_peak_for_the_rendered_hyperparameter():
    assert peak_tflops("ml.p4d.24xlarge", "fp16") == 312.0
    assert peak_tflops("ml.p4d.24xlarge", "fp32") == 19.5
    assert peak_tflops("ml.x1.unknown", "bf16") is None


def test_smp_path_counts_full_shape_flops(runtime, monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "tests", "fakes"))
    monkeypatch.syspath_prepend(os.path.join(REPO, "entrypoints"))
    import smdistributed.modelparallel.torch as fake
    import smp_train
    from model import GPT, GPTConfig

    fake.reset()
    fake.init({"tensor_parallel_degree": 1})

    class Args:
        num_layers, hidden_width, num_heads, seq_length, vocab_size = 2, 64, 4, 32, 256

    config = GPTConfig(num_layers=2, hidden_width=64, num_heads=4, seq_length=32, vocab_size=256)
    whole = GPT(config, padded_vocab_size=config.padded_vocab_size(1)).flops_per_token()
    assert smp_train.full_model_flops_per_token(Args) == whole  # from the shape, whatever SMP shards
    for name in [n for n in sys.modules if n.startswith("smdistributed") or n in ("smp_train", "model")]:
        del sys.modules[name]
