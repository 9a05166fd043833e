"""Token batches for GPT-2 training: nanoGPT-style uint16 shards, or synthetic tokens.

A channel is a directory of `*.bin` files, each a flat array of little-endian uint16 token ids with no header
(docs/entrypoint-contract.md, "Data"). Files are memory-mapped and read in sorted name order.

Every sample row is drawn from its own generator seeded by (seed, step, global_row), so:
- a batch depends only on (seed, step, shard_index): a resumed run needs nothing but the step;
- the global batch at a step is the concatenation of the shards 0..num_shards-1 and equals the single-shard batch
  of size batch_size * num_shards (which is what the parallel-vs-single-process loss tests compare).

    source = TokenSource("/opt/ml/input/data/train", seq_length=512, vocab_size=50257, seed=1, synthetic=False)
    x, y = source.batch(step, shard_index=dp_rank, num_shards=dp_size, batch_size=8)  # [8, 512] each, y = x >> 1
"""

from __future__ import annotations

import os

import numpy as np
import torch


class DataError(ValueError):
    """The training channel cannot produce batches (missing, empty, short or out-of-vocabulary shards)."""


def list_shards(train_dir: str) -> list[str]:
    """The `*.bin` files of `train_dir`, in sorted name order; raises DataError when there are none."""
    if not train_dir:
        raise DataError("no training data: pass --train-dir (or set SM_CHANNEL_TRAIN), or set synthetic=1")
    if not os.path.isdir(train_dir):
        raise DataError(f"training data directory {train_dir!r} does not exist")
    names = sorted(os.listdir(train_dir))
    if not names:
        raise DataError(f"training data directory {train_dir!r} is empty; expected *.bin uint16 token shards")
    shards = [os.path.join(train_dir, n) for n in names if n.endswith(".bin")]
    if not shards:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise DataError(f"no *.bin token shards in {train_dir!r} (found: {shown}); make them with tokenize_text.py")
    return shards


def open_shard(path: str, *, seq_length: int, vocab_size: int) -> np.memmap:
    """Memory-map one shard and check it once: long enough for a window, every token id < vocab_size."""
    num_bytes = os.path.getsize(path)
    if num_bytes % 2:
        raise DataError(f"{path}: {num_bytes} bytes is not a whole number of uint16 tokens")
    num_tokens = num_bytes // 2
    if num_tokens < seq_length + 1:
        raise DataError(
            f"{path}: {num_tokens} tokens is shorter than seq_length({seq_length}) + 1; "
            "use a shorter seq_length or a larger shard"
        )
    tokens = np.memmap(path, dtype="<u2", mode="r")
    max_id = int(tokens.max())
    if max_id >= vocab_size:
        raise DataError(
            f"{path}: token id {max_id} >= vocab_size({vocab_size}); "
            "the shard was made with a larger vocabulary (tokenize_text.py prints the vocab_size it needs)"
        )
    return tokens


class TokenSource:
    """Deterministic (x, y) batches of shape [batch_size, seq_length] for any (step, shard) pair."""

    def __init__(self, train_dir: str | None, *, seq_length: int, vocab_size: int, seed: int, synthetic: bool) -> None:
        if seq_length < 1 or vocab_size < 1:
            raise DataError(f"seq_length({seq_length}) and vocab_size({vocab_size}) must be >= 1")
        self.seq_length = seq_length
        self.vocab_size = vocab_size
        self.seed = seed
        self.synthetic = synthetic
        self.shards: list[np.memmap] = []
        if not synthetic:
            paths = list_shards(train_dir or "")
            self.shards = [open_shard(p, seq_length=seq_length, vocab_size=vocab_size) for p in paths]
        # A window starts anywhere that leaves seq_length + 1 tokens; windows never cross a shard boundary.
        self._starts_per_shard = np.array([len(s) - seq_length for s in self.shards], dtype=np.int64)
        self._cum_starts = np.cumsum(self._starts_per_shard)

    @property
    def num_tokens(self) -> int:
        """Total tokens over all shards (0 when synthetic)."""
        return int(sum(len(s) for s in self.shards))

    def batch(
        self, step: int, *, shard_index: int, num_shards: int, batch_size: int
    ) -> tuple[torch.LongTensor, torch.LongTensor]:
        """Rows shard_index*batch_size .. (shard_index+1)*batch_size - 1 of the global batch at `step`."""
        if not 0 <= shard_index < num_shards:
            raise ValueError(f"shard_index({shard_index}) must be in [0, num_shards({num_shards}))")
        if batch_size < 1:
            raise ValueError(f"batch_size({batch_size}) must be >= 1")
        first_row = shard_index * batch_size
        rows = np.stack([self._row(step, first_row + i) for i in range(batch_size)])
        rows = torch.from_numpy(rows.astype(np.int64))
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()

    def _row(self, step: int, row: int) -> np.ndarray:
        """seq_length + 1 tokens for one global row, from a generator seeded by (seed, step, row)."""
        rng = np.random.default_rng([self.seed, step, row])
        if self.synthetic:
            return rng.integers(0, self.vocab_size, size=self.seq_length + 1, dtype=np.int64)
        window = int(rng.integers(0, self._cum_starts[-1]))
        shard = int(np.searchsorted(self._cum_starts, window, side="right"))
        start = window - (int(self._cum_starts[shard - 1]) if shard else 0)
        return np.asarray(self.shards[shard][start : start + self.seq_length + 1], dtype=np.int64)
