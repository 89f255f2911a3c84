#!/usr/bin/env python3
"""PyTorch reference of lcb's text denoiser, for throughput comparisons.

It has the architecture and default size of `lcb_models::text::Transformer`
with `ModelShape::default()`. A token embedding (vocabulary plus the mask
token) feeds 4 pre-norm blocks of width 128 with 4 heads and RMSNorm
(epsilon 1e-5). Queries and keys get the rotary position embedding on
adjacent feature pairs (burn-nn's `RotaryEncoding`, base 10000). Attention
is full, without a causal mask. The SwiGLU MLP has width 384, no layer has a
bias, and a linear head maps to the vocabulary.

It times the forward pass on random token rows (no trained weights are
loaded) and prints tokens per second, and optionally the time of one
training step (forward, backward, AdamW) of the masked-diffusion objective.

Usage: OMP_WAIT_POLICY=PASSIVE python3 scripts/denoiser_reference.py [--threads 2] [--rows 64]

On a machine shared with other work, OpenMP's default busy-waiting threads
made the timings 5 to 10 times slower and erratic in one measurement (2
cores, other builds running); OMP_WAIT_POLICY=PASSIVE avoids that.
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        rms = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x / rms * self.gamma


def rotary_tables(seq_len, head_dim, theta=10000.0):
    """cos and sin of position * theta^(-2i / head_dim), repeated for each pair."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1)


def rotate(x, cos, sin):
    """Rotates each adjacent pair (x[2i], x[2i+1]) by its angle."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * cos + rotated * sin


class Block(nn.Module):
    def __init__(self, d_model, heads, mlp_hidden):
        super().__init__()
        self.heads = heads
        self.attention_norm = RMSNorm(d_model)
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.output = nn.Linear(d_model, d_model, bias=False)
        self.mlp_norm = RMSNorm(d_model)
        self.gate = nn.Linear(d_model, mlp_hidden, bias=False)
        self.up = nn.Linear(d_model, mlp_hidden, bias=False)
        self.down = nn.Linear(mlp_hidden, d_model, bias=False)

    def forward(self, x, cos, sin):
        batch, length, d_model = x.shape
        head_dim = d_model // self.heads
        h = self.attention_norm(x)

        def split(t):
            return t.view(batch, length, self.heads, head_dim).transpose(1, 2)

        q = rotate(split(self.query(h)), cos, sin)
        k = rotate(split(self.key(h)), cos, sin)
        v = split(self.value(h))
        context = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        x = x + self.output(context.transpose(1, 2).reshape(batch, length, d_model))
        m = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Denoiser(nn.Module):
    def __init__(self, vocab_size, seq_len=64, d_model=128, heads=4, layers=4, mlp_hidden=384):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size + 1, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, mlp_hidden) for _ in range(layers))
        self.final_norm = RMSNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        cos, sin = rotary_tables(seq_len, d_model // heads)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, tokens):
        x = self.embedding(tokens)
        for block in self.blocks:
            x = block(x, self.cos, self.sin)
        return self.head(self.final_norm(x))


def masked_diffusion_loss(model, tokens, mask_id, eps=1e-3):
    t = torch.rand(tokens.shape[0], 1)
    p = (1 - eps) * t + eps
    masked = torch.rand(tokens.shape) < p
    inputs = torch.where(masked, torch.full_like(tokens, mask_id), tokens)
    ce = F.cross_entropy(model(inputs).transpose(1, 2), tokens, reduction="none")
    return (ce * masked / p).sum() / tokens.numel()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--rows", type=int, default=64, help="rows per forward pass")
    parser.add_argument("--vocab", type=int, default=73, help="predicted tokens (embedded corpus: 73)")
    parser.add_argument("--repeats", type=int, default=50, help="timed forward passes")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Denoiser(args.vocab)
    parameters = sum(p.numel() for p in model.parameters())
    tokens = torch.randint(0, args.vocab + 1, (args.rows, 64))

    model.eval()
    with torch.inference_mode():
        for _ in range(5):
            model(tokens)
        start = time.perf_counter()
        for _ in range(args.repeats):
            model(tokens)
        seconds = (time.perf_counter() - start) / args.repeats
    print(f"torch {torch.__version__}, {args.threads} threads, {parameters} parameters")
    print(f"forward [{args.rows}, 64]: {seconds * 1e3:.2f} ms, {args.rows * 64 / seconds:,.0f} tokens/s")

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    clean = torch.randint(0, args.vocab, (64, 64))
    for step in range(13):
        if step == 3:
            start = time.perf_counter()
        optimizer.zero_grad()
        masked_diffusion_loss(model, clean, args.vocab).backward()
        optimizer.step()
    seconds = (time.perf_counter() - start) / 10
    print(f"training step [64, 64]: {seconds * 1e3:.1f} ms, {64 * 64 / seconds:,.0f} tokens/s")
    print(f"uniform loss ln V = {math.log(args.vocab):.4f}")


if __name__ == "__main__":
    main()
