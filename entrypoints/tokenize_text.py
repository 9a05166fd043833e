"""Turn local text files into nanoGPT-style token shards (`train_000.bin`, ...: flat little-endian uint16 ids).

    python entrypoints/tokenize_text.py notes/*.txt --out-dir data/mytext --shard-tokens 1000000

Tokenizers:
- `gpt2`: GPT-2 BPE through `tiktoken` (vocab 50257, documents separated by <|endoftext|>). Needs `tiktoken` and its
  encoding file; with no network the file must already be cached, otherwise `auto` falls back to bytes.
- `bytes`: the UTF-8 bytes, ids 0..255 (vocab 256). Always available, no dependencies.
- `auto` (default): `gpt2` when it works offline, else `bytes`.

The script prints the vocab_size a job needs for the shards (pass it as the job's vocab_size or larger).
Runs on the user's machine; it never imports smlaunch.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BYTES_VOCAB_SIZE = 256


@dataclass(frozen=True)
class Tokenizer:
    """A named encode/decode pair and the vocab_size its ids need."""

    name: str
    vocab_size: int
    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    separator: tuple[int, ...] = ()  # ids put between documents


def byte_tokenizer() -> Tokenizer:
    """UTF-8 bytes as token ids 0..255."""
    return Tokenizer(
        name="bytes",
        vocab_size=BYTES_VOCAB_SIZE,
        encode=lambda text: list(text.encode("utf-8")),
        decode=lambda ids: bytes(ids).decode("utf-8", errors="replace"),
    )


def gpt2_tokenizer() -> Tokenizer:
    """GPT-2 BPE via tiktoken; raises when tiktoken or its (offline) encoding file is unavailable."""
    import tiktoken  # optional dependency, only needed for --tokenizer gpt2/auto

    enc = tiktoken.get_encoding("gpt2")
    return Tokenizer(
        name="gpt2",
        vocab_size=enc.n_vocab,
        encode=enc.encode_ordinary,
        decode=lambda ids: enc.decode(list(ids)),
        separator=(enc.eot_token,),
    )


def get_tokenizer(name: str = "auto") -> Tokenizer:
    """`bytes`, `gpt2`, or `auto` (gpt2 when it loads without network, else bytes)."""
    if name == "bytes":
        return byte_tokenizer()
    if name == "gpt2":
        return gpt2_tokenizer()
    if name != "auto":
        raise ValueError(f"unknown tokenizer {name!r}; choose auto, gpt2 or bytes")
    try:
        return gpt2_tokenizer()
    except Exception:  # no tiktoken, or its encoding file cannot be fetched offline
        return byte_tokenizer()


def shard_bounds(num_tokens: int, shard_tokens: int) -> list[tuple[int, int]]:
    """[begin, end) of each shard: shard_tokens each, a tail shorter than half a shard folded into the one before.

    (A tiny last shard could be shorter than a job's seq_length + 1, which data.py rejects.)
    """
    starts = list(range(0, num_tokens, shard_tokens))
    if len(starts) > 1 and num_tokens - starts[-1] < shard_tokens // 2:
        starts.pop()
    return list(zip(starts, [*starts[1:], num_tokens], strict=True))


def write_shards(ids: np.ndarray, out_dir: str, *, shard_tokens: int, prefix: str = "train") -> list[str]:
    """Write `ids` as `<prefix>_000.bin`, `<prefix>_001.bin`, ... of about shard_tokens tokens each."""
    if shard_tokens < 1:
        raise ValueError(f"shard_tokens({shard_tokens}) must be >= 1")
    if len(ids) and int(ids.max()) > np.iinfo(np.uint16).max:
        raise ValueError(f"token id {int(ids.max())} does not fit in uint16")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for index, (begin, end) in enumerate(shard_bounds(len(ids), shard_tokens)):
        path = os.path.join(out_dir, f"{prefix}_{index:03d}.bin")
        ids[begin:end].astype("<u2").tofile(path)
        paths.append(path)
    return paths


@dataclass(frozen=True)
class TokenizeResult:
    """What tokenize_files wrote."""

    tokenizer: str
    vocab_size: int
    num_tokens: int
    shards: list[str]


def tokenize_files(
    paths: list[str], out_dir: str, *, shard_tokens: int = 10_000_000, tokenizer: str = "auto"
) -> TokenizeResult:
    """Tokenize the text files in order (documents joined by the tokenizer's separator) and write shards."""
    tok = get_tokenizer(tokenizer)
    ids: list[int] = []
    for i, path in enumerate(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if i and tok.separator:
            ids.extend(tok.separator)
        ids.extend(tok.encode(text))
    if not ids:
        raise ValueError(f"no tokens: the input files {paths} are empty")
    shards = write_shards(np.asarray(ids, dtype=np.int64), out_dir, shard_tokens=shard_tokens)
    return TokenizeResult(tokenizer=tok.name, vocab_size=tok.vocab_size, num_tokens=len(ids), shards=shards)


def main(argv: list[str] | None = None) -> TokenizeResult:
    """CLI: tokenize files, write shards, print the counts and the vocab_size the job needs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="text files, read as UTF-8 in the given order")
    parser.add_argument("--out-dir", required=True, help="directory for train_000.bin, ...")
    parser.add_argument(
        "--shard-tokens",
        type=int,
        default=10_000_000,
        help="tokens per shard (default 1e7; a tail under half a shard joins the last shard)",
    )
    parser.add_argument("--tokenizer", choices=["auto", "gpt2", "bytes"], default="auto")
    args = parser.parse_args(argv)
    result = tokenize_files(args.inputs, args.out_dir, shard_tokens=args.shard_tokens, tokenizer=args.tokenizer)
    print(f"tokenizer={result.tokenizer} tokens={result.num_tokens} shards={len(result.shards)} -> {args.out_dir}")
    print(f"vocab_size needed: {result.vocab_size}")
    return result


if __name__ == "__main__":
    main()
