"""The SMP-path memory model matches what entrypoints/smp_train.py builds: a replicated embedding and head.

smp-v1-audit.md §5 (defect A): the entry point registers only its transformer ``Block`` for SMP tensor
parallelism, so the token embedding and the tied LM head stay whole on every tp rank and each rank computes
full-vocabulary logits. The cost model must count them whole, or it calls fitting what runs out of memory.
"""

from __future__ import annotations

import os
import sys

import pytest

from smlaunch.costmodel import estimate
from smlaunch.costmodel.memory import SMP_REPLICATED_EMBEDDING, Knobs, embedding_params, logits_bytes
from smlaunch.spec.load import load_spec
from smlaunch.templates import starter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def smp_registry(monkeypatch):
    """What smp_train.register_block_for_tp() registers with the (strict) fake smdistributed."""
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(os.path.join(REPO, "tests", "fakes"))
    monkeypatch.syspath_prepend(os.path.join(REPO, "entrypoints"))
    import smdistributed.modelparallel.torch as fake
    import smp_train
    from model import Block

    fake.reset()
    smp_train.register_block_for_tp()
    yield {cls.__name__ for cls in fake.TP_REGISTRY}, Block
    for name in [n for n in sys.modules if n.startswith("smdistributed") or n in ("smp_train", "model")]:
        del sys.modules[name]


def test_the_entry_point_distributes_only_its_blocks(smp_registry):
    names, _ = smp_registry
    assert names == {"Block"}  # no Embedding / Linear head: SMP keeps them whole on every tp rank
    assert SMP_REPLICATED_EMBEDDING  # ... which is what the cost model assumes


def test_replicated_embedding_and_full_vocabulary_logits_under_smp():
    k = Knobs(48, 7168, 64, 512, 50000, tp=8, microbatch_size=32, prescaled_batch=True)
    native = Knobs(48, 7168, 64, 512, 50000, tp=8, microbatch_size=32, prescaled_batch=True, runtime="native")
    assert embedding_params(k) == 8 * embedding_params(native) == 50176 * 7168
    assert logits_bytes(k) == 32 * 512 * 50176 * 10  # b x s x V x 10 B, nothing divided by tp


def _30b(*overrides: str):
    import yaml

    return load_spec(yaml.safe_load(starter("gpt2-30b")), list(overrides))


def test_audit_cases_that_oom_are_not_called_fitting():
    # first-principles counts of the audit (allocated 41.5 and 40.8 GiB on a 40 GiB A100)
    assert estimate(_30b()).fits
    assert not estimate(_30b("training.batch_size=64")).fits
    assert not estimate(_30b("smp.optimize=speed")).fits


def test_optimize_speed_trades_memory_for_time():
    memory, speed = estimate(_30b("smp.optimize=memory")), estimate(_30b("smp.optimize=speed"))
    assert speed.throughput.tp_comm_s < memory.throughput.tp_comm_s
    assert speed.throughput.tokens_per_s > memory.throughput.tokens_per_s
    assert speed.memory.total_gib > memory.memory.total_gib
