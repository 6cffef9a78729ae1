"""Benchmark of the shared linear attention: ours (Triton) side by side with its peers.

    python -m zoo.kernels.linear_attention.bench --out la            # CUDA: la.csv (row by row), la.json
    python -m zoo.kernels.linear_attention.bench --variants rala --budget-s 40
    TRITON_INTERPRET=1 python -m zoo.kernels.linear_attention.bench --smoke --out /tmp/la   # CPU smoke run

Implementations, forward and forward+backward, on the channels-first strided views the models pass:

    ours        the fused Triton kernels (zoo.kernels.linear_attention, impl="triton")
    reference   reference.py, eager (fp32 math)
    compiled    reference.py under torch.compile, one compiled function for all rows
    official    the official modules' formulation: the einsum / matmul chain in the input dtype,
                written here after the official GateLinearAttentionNoSilu, AddLinearAttention, InLineAttention

over the (B·H, N) grid of `zoo.kernels._bench` (N = 14^2 ... 224^2, the RoPE grid; InLine has no
RoPE), 8 heads of `--head-dim` (default 32) channels, bfloat16. Bytes moved (the least traffic:
every input read once, every output written once; E = B·H·N·d elements of s bytes):
forward 4·E·s (q, k, v, y); forward+backward 11·E·s (+ dy, q, k, v read again, dq, dk, dv).
Rows go to <out>.csv as they are measured (see `zoo.kernels._bench`). Nothing here is asserted.
"""
from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._bench import Bench, Impls, add_common_args, bench_device, compiled_entry, grid, triton_entry
from . import linear_attention
from .reference import linear_attention_reference, rope_2d_tables

HEADS = 8


# ----------------------------------------------------------------------------- the official formulation

def _official_rope(x, cos, sin):
    return x * cos + torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2) * sin


def official_formulation(q, k, v, *, variant: str, rope_hw=None, eps: float = 1e-6) -> torch.Tensor:
    """The official modules' chain of einsums / matmuls in the input dtype (no upcast)."""
    n, d = q.shape[-2:]
    s = d ** -0.5
    if variant == "inline":
        k_mean, v_mean = k.mean(-2, keepdim=True), v.mean(-2, keepdim=True)
        kv = torch.einsum("bhnd,bhne->bhde", k * (s / n) ** 0.5, v * (s / n) ** 0.5)
        return torch.einsum("bhnd,bhde->bhne", q, kv) + (1 - torch.einsum("bhnd,bhmd->bhnm", q, k_mean) * s) * v_mean
    cos, sin = rope_2d_tables(*rope_hw, d, device=q.device, dtype=q.dtype) if rope_hw else (1, 0)
    q, k = F.elu(q) + 1, F.elu(k) + 1
    if variant == "rala":
        q_mean = q.mean(-2, keepdim=True)
        alpha = torch.softmax(torch.einsum("bhmd,bhnd->bhmn", q_mean * s, k), dim=-1)
        k = k * alpha.transpose(-1, -2) * n
        z = 1 / (torch.einsum("bhnd,bhmd->bhnm", q, k.mean(-2, keepdim=True)) + eps)
        kv = torch.einsum("bhnd,bhne->bhde", _official_rope(k, cos, sin) * n ** -0.5, v * n ** -0.5)
        return torch.einsum("bhnd,bhde->bhne", _official_rope(q, cos, sin), kv) * z
    z = torch.einsum("bhnd,bhmd->bhnm", q, k.mean(-2, keepdim=True)) * s
    kv = torch.einsum("bhnd,bhne->bhde", _official_rope(k, cos, sin) * (s / n) ** 0.5, v * (s / n) ** 0.5)
    return torch.einsum("bhnd,bhde->bhne", _official_rope(q, cos, sin), kv) * (1 + 1 / (z + eps)) \
        - z * v.mean(-2, keepdim=True)


# ----------------------------------------------------------------------------- rows

def _implementations(device: torch.device, compiled: bool) -> Impls:
    return {
        "ours": triton_entry(lambda q, k, v, **kw: linear_attention(q, k, v, impl="triton", **kw), device),
        "reference": (linear_attention_reference, ""),
        "compiled": compiled_entry(linear_attention_reference, compiled),
        "official": (official_formulation, ""),
    }


def _inputs(batch: int, heads: int, n: int, d: int, dtype: torch.dtype, device: torch.device, grad: bool):
    fused = torch.randn(batch, 3 * heads * d, n, device=device, dtype=dtype)
    return [t.view(batch, heads, d, n).transpose(-1, -2).requires_grad_(grad) for t in fused.chunk(3, dim=1)]


def _call(fn: Callable, backward: bool, variant: str, batch: int, heads: int, n: int, d: int, dtype: torch.dtype,
          device: torch.device) -> Callable[[], object]:
    """The thunk that runs one row: forward, or forward and the input gradients."""
    side = round(n ** 0.5)
    rope_hw = None if variant == "inline" or side * side != n else (side, side)
    q, k, v = _inputs(batch, heads, n, d, dtype, device, backward)
    if not backward:
        def forward():
            with torch.no_grad():
                return fn(q, k, v, variant=variant, rope_hw=rope_hw)
        return forward
    dy = torch.randn(q.shape, device=device, dtype=dtype)
    return lambda: torch.autograd.grad(fn(q, k, v, variant=variant, rope_hw=rope_hw), (q, k, v), dy)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "linear_attention")
    parser.add_argument("--variants", nargs="+", default=["rala", "mala", "inline"])
    parser.add_argument("--head-dim", type=int, default=32, choices=[16, 32, 64])
    parser.add_argument("--no-compile", action="store_true", help="no torch.compile rows")
    parser.add_argument("--quick", action="store_true", help="same as --smoke (older name)")
    args = parser.parse_args(argv)
    args.smoke = args.smoke or args.quick
    device = bench_device(args)
    dtype, d = torch.bfloat16, args.head_dim
    bench = Bench("linear_attention", device, args.out, args.budget_s, args.peak_gbps, vars(args), args.smoke)
    variants = args.variants[:1] if args.smoke else args.variants
    impls = _implementations(device, compiled=not (args.smoke or args.no_compile))
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny tensors: one thread avoids OpenMP stalls on a busy machine
    try:
        for variant in variants:
            for bh, n in grid(args):
                heads = min(HEADS, bh)
                batch = max(1, bh // heads)
                elems, size = batch * heads * n * d, torch.finfo(dtype).bits // 8
                bench.measure_impls(
                    dict(config=f"{variant} d={d}", batch=batch, heads=heads, tokens=n, dtype="bf16"), impls,
                    functools.partial(_call, variant=variant, batch=batch, heads=heads, n=n, d=d, dtype=dtype,
                                      device=device),
                    lambda backward, elems=elems, size=size: (11 if backward else 4) * elems * size)
    finally:
        torch.set_num_threads(threads)
        rows = bench.close()
    return rows


if __name__ == "__main__":
    main()
