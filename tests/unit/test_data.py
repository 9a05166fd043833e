"""entrypoints/data.py (TokenSource) and entrypoints/tokenize_text.py: determinism, sharding, errors, round trip."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "entrypoints"))

from data import DataError, TokenSource  # noqa: E402
from tokenize_text import byte_tokenizer, get_tokenizer, tokenize_files  # noqa: E402

SAMPLE_DIR = os.path.join(REPO, "smlaunch", "data", "sample")


def write_shard(path, ids) -> None:
    np.asarray(ids, dtype="<u2").tofile(path)


@pytest.fixture
def shard_dir(tmp_path):
    """Two shards of distinct, known tokens (so windows can be located)."""
    write_shard(tmp_path / "train_000.bin", np.arange(0, 300))
    write_shard(tmp_path / "train_001.bin", np.arange(300, 500))
    (tmp_path / "README.txt").write_text("not a shard")
    return str(tmp_path)


def sources(shard_dir):
    return [
        TokenSource(shard_dir, seq_length=16, vocab_size=512, seed=7, synthetic=False),
        TokenSource(None, seq_length=16, vocab_size=100, seed=7, synthetic=True),
    ]


def test_batch_shapes_and_shift(shard_dir):
    for source in sources(shard_dir):
        x, y = source.batch(3, shard_index=0, num_shards=1, batch_size=5)
        assert x.shape == y.shape == (5, 16)
        assert x.dtype == y.dtype == torch.long
        assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one token
        assert int(x.max()) < source.vocab_size


def test_deterministic_from_seed_and_step(shard_dir):
    for source in sources(shard_dir):
        a = source.batch(4, shard_index=1, num_shards=2, batch_size=3)
        b = source.batch(4, shard_index=1, num_shards=2, batch_size=3)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], source.batch(5, shard_index=1, num_shards=2, batch_size=3)[0])
    again = TokenSource(shard_dir, seq_length=16, vocab_size=512, seed=7, synthetic=False)
    other_seed = TokenSource(shard_dir, seq_length=16, vocab_size=512, seed=8, synthetic=False)
    x = sources(shard_dir)[0].batch(2, shard_index=0, num_shards=1, batch_size=8)[0]
    assert torch.equal(x, again.batch(2, shard_index=0, num_shards=1, batch_size=8)[0])
    assert not torch.equal(x, other_seed.batch(2, shard_index=0, num_shards=1, batch_size=8)[0])


@pytest.mark.parametrize("num_shards", [1, 2, 4])
def test_shards_concatenate_to_the_single_process_batch(shard_dir, num_shards):
    for source in sources(shard_dir):
        for step in (0, 9):
            parts = [source.batch(step, shard_index=i, num_shards=num_shards, batch_size=2) for i in range(num_shards)]
            whole = source.batch(step, shard_index=0, num_shards=1, batch_size=2 * num_shards)
            assert torch.equal(torch.cat([p[0] for p in parts]), whole[0])
            assert torch.equal(torch.cat([p[1] for p in parts]), whole[1])


def test_windows_are_contiguous_and_stay_inside_one_shard(shard_dir):
    source = TokenSource(shard_dir, seq_length=16, vocab_size=512, seed=0, synthetic=False)
    starts = set()
    for step in range(20):
        x, y = source.batch(step, shard_index=0, num_shards=1, batch_size=4)
        for row in torch.cat([x, y[:, -1:]], dim=1).numpy():  # token i sits at position i of the data
            assert (np.diff(row) == 1).all()
            assert row[-1] < 300 or row[0] >= 300  # never across the shard boundary
            starts.add(int(row[0]))
    assert any(s < 300 for s in starts) and any(s >= 300 for s in starts)


def test_bad_arguments(shard_dir):
    source = sources(shard_dir)[0]
    with pytest.raises(ValueError, match="shard_index"):
        source.batch(0, shard_index=2, num_shards=2, batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        source.batch(0, shard_index=0, num_shards=1, batch_size=0)


def test_errors(tmp_path):
    kw = dict(seq_length=16, vocab_size=256, seed=0, synthetic=False)
    with pytest.raises(DataError, match="no training data"):
        TokenSource(None, **kw)
    with pytest.raises(DataError, match="does not exist"):
        TokenSource(str(tmp_path / "missing"), **kw)
    with pytest.raises(DataError, match="is empty"):
        TokenSource(str(tmp_path), **kw)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"no \*\.bin token shards .*notes\.txt"):
        TokenSource(str(tmp_path), **kw)
    write_shard(tmp_path / "a.bin", np.arange(16))
    with pytest.raises(DataError, match=r"16 tokens is shorter than seq_length\(16\) \+ 1"):
        TokenSource(str(tmp_path), **kw)
    write_shard(tmp_path / "a.bin", np.arange(40) * 10)
    with pytest.raises(DataError, match=r"token id 390 >= vocab_size\(256\)"):
        TokenSource(str(tmp_path), **kw)
    (tmp_path / "a.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(DataError, match="whole number of uint16"):
        TokenSource(str(tmp_path), **kw)


def test_synthetic_needs_no_directory():
    x, _ = TokenSource(None, seq_length=8, vocab_size=3, seed=1, synthetic=True).batch(
        0, shard_index=0, num_shards=1, batch_size=64
    )
    assert set(x.unique().tolist()) == {0, 1, 2}


def test_byte_tokenizer_round_trip(tmp_path):
    text = "Hello, SMP! Grüße — 模型\n"
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    (tmp_path / "b.txt").write_text("second file", encoding="utf-8")
    result = tokenize_files(
        [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], str(tmp_path / "out"), shard_tokens=10, tokenizer="bytes"
    )
    assert (result.tokenizer, result.vocab_size) == ("bytes", 256)
    expected = (text + "second file").encode("utf-8")
    assert result.num_tokens == len(expected)
    assert [os.path.basename(p) for p in result.shards[:2]] == ["train_000.bin", "train_001.bin"]
    assert len(expected) == 42  # 10 + 10 + 10 + 12: the 2-token tail joins the last shard
    assert [len(np.fromfile(p, dtype="<u2")) for p in result.shards] == [10, 10, 10, 12]
    ids = np.concatenate([np.fromfile(p, dtype="<u2") for p in result.shards])
    assert byte_tokenizer().decode(ids.tolist()) == text + "second file"
    source = TokenSource(str(tmp_path / "out"), seq_length=4, vocab_size=256, seed=0, synthetic=False)
    assert source.num_tokens == len(expected)


def test_auto_tokenizer_falls_back_offline():
    tok = get_tokenizer("auto")
    assert tok.name in {"gpt2", "bytes"}
    assert tok.decode(tok.encode("round trip")) == "round trip"
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("sentencepiece")


def test_shipped_sample_dataset():
    source = TokenSource(SAMPLE_DIR, seq_length=64, vocab_size=256, seed=0, synthetic=False)
    assert source.num_tokens == 42801  # as stated in smlaunch/data/sample/README.md
    assert os.path.getsize(os.path.join(SAMPLE_DIR, "train_000.bin")) < 300_000
    text = bytes(np.fromfile(os.path.join(SAMPLE_DIR, "train_000.bin"), dtype="<u2")[:60].astype(np.uint8))
    assert b"GNU GENERAL PUBLIC LICENSE" in text
