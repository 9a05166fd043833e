"""GPT-2 in one readable file (nanoGPT-plain).

No parallel code lives here: tensor/pipeline/data parallelism is applied from outside by `parallelize.py`, which
relies on these module names:

    wte, wpe, drop                      token / position embeddings, dropout (p=0: a hook point for sequence sharding)
    blocks: nn.Sequential[Block]        each Block.forward(x) -> x
      ln_1, attn.{q,k,v,c_proj}, ln_2, mlp.{c_fc,c_proj}
    ln_f, lm_head                       final norm; LM head tied to wte

q/k/v are separate nn.Linear layers so a colwise tensor-parallel split never cuts across the q|k|v boundary.
Attention reshapes with `view(B, T, -1, head_dim)`, so it works on the local heads of a tensor-parallel shard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTConfig:
    num_layers: int = 12
    hidden_width: int = 768
    num_heads: int = 12
    seq_length: int = 1024
    vocab_size: int = 50257  # before padding; ids >= vocab_size are never targets

    def padded_vocab_size(self, tp: int = 1) -> int:
        """vocab_size rounded up to a multiple of 128 * tp (50257 -> 50304 at tp=1), so tp divides the head."""
        multiple = 128 * tp
        return (self.vocab_size + multiple - 1) // multiple * multiple

    @property
    def head_dim(self) -> int:
        return self.hidden_width // self.num_heads


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.hidden_width % config.num_heads:
            raise ValueError(f"hidden_width({config.hidden_width}) % num_heads({config.num_heads}) != 0")
        d = config.hidden_width
        self.head_dim = config.head_dim
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.c_proj = nn.Linear(d, d)
        # True (parallelize() sets it without TP): one GEMM over the concatenated q|k|v weights, as nanoGPT's
        # c_attn; same parameters, same math. Under TP each projection stays its own (sharded) Linear
        self.fused_qkv = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        if self.fused_qkv:
            w = torch.cat((self.q.weight, self.k.weight, self.v.weight))
            b = torch.cat((self.q.bias, self.k.bias, self.v.bias))
            q, k, v = F.linear(x, w, b).split(self.q.out_features, dim=-1)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        # -1 = local heads: all of them, or num_heads / tp under tensor parallelism
        q = q.view(B, T, -1, self.head_dim).transpose(1, 2)
        k = k.view(B, T, -1, self.head_dim).transpose(1, 2)
        v = v.view(B, T, -1, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.hidden_width, 4 * config.hidden_width)
        self.c_proj = nn.Linear(4 * config.hidden_width, config.hidden_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_width)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.hidden_width)
        self.mlp = MLP(config)
        # None: autocast casts the LayerNorm outputs inside each Linear. parallelize() sets bf16/fp16 under tensor
        # parallelism, so the activation gradients that TP all-reduces are 2-byte (same forward values)
        self.matmul_input_dtype: torch.dtype | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h if self.matmul_input_dtype is None else h.to(self.matmul_input_dtype))
        h = self.ln_2(x)
        return x + self.mlp(h if self.matmul_input_dtype is None else h.to(self.matmul_input_dtype))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, *, padded_vocab_size: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = padded_vocab_size or config.padded_vocab_size(1)
        if self.vocab_size < config.vocab_size:
            raise ValueError(f"padded_vocab_size({self.vocab_size}) < vocab_size({config.vocab_size})")
        d = config.hidden_width
        self.wte = nn.Embedding(self.vocab_size, d)
        self.wpe = nn.Embedding(config.seq_length, d)
        self.drop = nn.Dropout(0.0)
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.num_layers)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, self.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (GPT-2)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """GPT-2 init: N(0, 0.02), residual projections scaled by 1/sqrt(2 * num_layers)."""
        proj_std = 0.02 / math.sqrt(2 * self.config.num_layers)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                std = proj_std if name.endswith("c_proj") else 0.02
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.drop(self.wte(idx) + self.wpe(pos))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.ln_f(x))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """(logits [B, T, padded_vocab], mean cross-entropy or None)."""
        if idx.shape[1] > self.config.seq_length:
            raise ValueError(f"sequence of {idx.shape[1]} tokens > seq_length({self.config.seq_length})")
        logits = self.head(self.blocks(self.embed(idx)))
        loss = None if targets is None else lm_loss(logits, targets)
        return logits, loss

    def num_params(self, *, non_embedding: bool = True) -> int:
        """Parameter count (tied wte/lm_head counted once); nanoGPT excludes position embeddings."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self) -> float:
        """PaLM / nanoGPT training FLOPs per token: 6N + 12·L·H·Q·T (= 12·L·width·T), non-causal attention term."""
        c = self.config
        return 6 * self.num_params() + 12 * c.num_layers * c.hidden_width * c.seq_length

    @staticmethod
    def flops_per_token_of(config: GPTConfig, padded_vocab_size: int) -> float:
        """:meth:`flops_per_token` from the shape alone (no module needed): N = L(12h² + 13h) + V·h + 2h."""
        h, layers = config.hidden_width, config.num_layers
        n = layers * (12 * h * h + 13 * h) + padded_vocab_size * h + 2 * h
        return 6 * n + 12 * layers * h * config.seq_length


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy in fp32 (works on tensor-parallel DTensor logits inside loss_parallel())."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(0, 1))
