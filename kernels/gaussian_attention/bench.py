"""Benchmark SOFT's Gaussian-kernel attention: ours (Triton) side by side with its peers.

    python -m zoo.kernels.gaussian_attention.bench --out soft        # CUDA: soft.csv (row by row), soft.json
    TRITON_INTERPRET=1 python -m zoo.kernels.gaussian_attention.bench --smoke --out /tmp/soft   # CPU smoke

Implementations of X = K1 @ (M @ (K1^T @ V)), K1 = exp(-||q - l||^2 / 2), forward and forward+backward:

    ours        the fused Triton kernels (impl="triton"): K1 built tile by tile, never stored
    reference   reference.gaussian_attention_reference, eager (K1 materialised in float32)
    compiled    the reference under torch.compile, one compiled function for all rows
    official    SOFT's `kernel_method="torch"` path: K1 = exp(-(|q|^2 + |l|^2 - 2 q.l) / 2)
                materialised in the input dtype, X = (K1 @ M) @ (K1^T @ V)

Shapes: the (B·H, N) grid of `zoo.kernels._bench` as SOFT's stage 1 has them: 2 heads of 32
channels (B·H / 2 images), m = (sqrt(N) / 8)^2 landmarks (pooling 8: 49 at N = 56^2, 784 at
224^2), q and v in bfloat16, landmarks and the mixing matrix M (m x m, from the Newton
iteration, not timed) in float32. Bytes moved (the least traffic; per head, s = 2 bytes):

    forward           q, v read, X written, landmarks and M read:  (N d + 2 N e) s + (m d + m^2) 4
    forward+backward  + q, v, dX, landmarks, M read, dq, dv, dlandmarks, dM written:
                      forward + (2 N d + 3 N e) s + 2 (m d + m^2) 4

The materialising paths need N·m floats per head: their rows past the device's memory are
written as skipped. Rows go to <out>.csv as measured (see `zoo.kernels._bench`). Nothing is asserted.
"""
from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import torch

from .._bench import Bench, Impls, add_common_args, bench_device, compiled_entry, grid, triton_entry
from . import gaussian_attention
from .reference import gaussian_attention_reference, gaussian_kernel

HEADS, HEAD_DIM, LANDMARK_POOLING = 2, 32, 8


def official_torch_path(q, lm, mixing, v):
    k1 = gaussian_kernel(q, lm.to(q.dtype), "expand")
    return torch.matmul(torch.matmul(k1, mixing.to(q.dtype)), torch.matmul(k1.transpose(-1, -2), v))


def _landmarks(n: int) -> int:
    return max(1, round(n ** 0.5) // LANDMARK_POOLING) ** 2


def _call(fn: Callable, backward: bool, batch: int, heads: int, n: int, d: int,
          device: torch.device) -> Callable[[], object]:
    """The thunk that runs one row: forward, or forward and the input gradients."""
    m = _landmarks(n)
    q = (torch.randn(batch, heads, n, d, device=device) / d ** 0.25).to(torch.bfloat16)
    v = torch.randn(batch, heads, n, d, device=device, dtype=torch.bfloat16)
    lm = torch.randn(batch, heads, m, d, device=device) * 0.3
    mixing = torch.randn(batch, heads, m, m, device=device) / m
    inputs = [t.requires_grad_(backward) for t in (q, lm, mixing, v)]
    if not backward:
        def forward():
            with torch.no_grad():
                return fn(*inputs)
        return forward
    dx = torch.randn(batch, heads, n, d, device=device, dtype=torch.bfloat16)
    return lambda: torch.autograd.grad(fn(*inputs), inputs, dx)


def bytes_moved(batch: int, heads: int, n: int, d: int, backward: bool) -> int:
    m = _landmarks(n)
    small = (m * d + m * m) * 4
    forward = (n * d + 2 * n * d) * 2 + small
    per_head = forward + ((2 * n * d + 3 * n * d) * 2 + 2 * small if backward else 0)
    return batch * heads * per_head


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "gaussian_attention")
    parser.add_argument("--no-compile", action="store_true", help="no torch.compile rows")
    args = parser.parse_args(argv)
    device = bench_device(args)
    bench = Bench("gaussian_attention", device, args.out, args.budget_s, args.peak_gbps, vars(args), args.smoke)
    compiled = not (args.smoke or args.no_compile)
    d = 16 if args.smoke else HEAD_DIM  # the interpreter loops over the channels one by one
    impls: Impls = {
        "ours": triton_entry(lambda *a: gaussian_attention(*a, impl="triton"), device),
        "reference": (gaussian_attention_reference, ""),
        "compiled": compiled_entry(gaussian_attention_reference, compiled),
        "official": (official_torch_path, ""),
    }
    try:
        for bh, n in grid(args):
            heads = min(HEADS, bh)
            batch = max(1, bh // heads)
            bench.measure_impls(dict(config=f"d={d} m={_landmarks(n)}", batch=batch, heads=heads, tokens=n,
                                     dtype="bf16"),
                                impls, functools.partial(_call, batch=batch, heads=heads, n=n, d=d, device=device),
                                functools.partial(bytes_moved, batch, heads, n, d))
    finally:
        rows = bench.close()
    return rows


if __name__ == "__main__":
    main()
