"""Benchmark bidirectional GLA: ours (Triton) vs the PyTorch reference vs fla's chunk_gla.

    python -m zoo.kernels.gated_linear_attention.bench [--dtype bf16] [--batch 8] [--json out.json]

Rows: each implementation x {forward, forward+backward} x N in 196..16384, for the head
shapes of plain ViG (h 3, dk 32, dv 64: ViG-T) and ViG-H stage 1 (h 3, dk 16, dv 32), with
the median time (triton.testing.do_bench) and the peak memory of one call. `fla` (the
flash-linear-attention package, `chunk_gla` run twice, once per direction on flipped
inputs, as the official train path does) is a peer only when installed; the zoo never
depends on it. Needs a CUDA device. Speed is recorded in the model card, never asserted.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from . import bidirectional_gla
from .reference import bigla_chunked

SHAPES = {"vig (h3, dk32, dv64)": (3, 32, 64), "vig_h stage1 (h3, dk16, dv32)": (3, 16, 32)}
LENGTHS = (196, 784, 1024, 3136, 4096, 16384)


def _fla():
    try:
        from fla.ops.gla import chunk_gla
    except Exception:  # not installed (or broken): no peer row
        return None

    def fla_bidirectional(q, k, v, a_f, a_b, scale):
        # fla takes (B, T, H, D) and log-space gates; the backward scan on flipped inputs.
        o_f = chunk_gla(q, k, v, a_f, scale=scale)[0]
        flip = lambda t: t.flip(1)  # noqa: E731
        o_b = chunk_gla(flip(q), flip(k), flip(v), flip(a_b), scale=scale)[0]
        return o_f + flip(o_b)
    return fla_bidirectional


def _inputs(B, N, H, dk, dv, dtype, grad):
    q, k = torch.randn(2, B, N, H, dk, device="cuda", dtype=dtype)
    v = torch.randn(B, N, H, dv, device="cuda", dtype=dtype)
    a_f, a_b = F.logsigmoid(torch.randn(2, B, N, H, dk, device="cuda")) / 16
    return [t.requires_grad_(grad) for t in (q, k, v, a_f, a_b)]


def _measure(fn, inputs, backward):
    from triton.testing import do_bench

    def call():
        out = fn(*inputs, inputs[0].shape[-1] ** -0.5)
        if backward:
            out.backward(torch.ones_like(out))
    call()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    call()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    return do_bench(call, warmup=25, rep=100), peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="*", default=list(LENGTHS))
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench needs a CUDA device", file=sys.stderr)
        return 1
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    impls = {"ours (triton)": lambda *a: bidirectional_gla(*a, impl="triton"),
             "reference (torch chunked)": bigla_chunked}
    fla = _fla()
    if fla is not None:
        impls["fla chunk_gla x2"] = fla
    rows = []
    print(f"device: {torch.cuda.get_device_name()}, dtype {args.dtype}, batch {args.batch}")
    print("| shape | N | impl | mode | ms | peak MiB |\n|---|---|---|---|---|---|")
    for shape_name, (H, dk, dv) in SHAPES.items():
        for N in args.lengths:
            for mode in ("fwd", "fwd+bwd"):
                for name, fn in impls.items():
                    inputs = _inputs(args.batch, N, H, dk, dv, dtype, grad=mode != "fwd")
                    try:
                        ms, peak = _measure(fn, inputs, backward=mode != "fwd")
                    except torch.cuda.OutOfMemoryError:
                        ms, peak = float("nan"), float("nan")
                        torch.cuda.empty_cache()
                    row = dict(shape=shape_name, N=N, impl=name, mode=mode, ms=ms, peak_mib=peak / 2 ** 20,
                               batch=args.batch, dtype=args.dtype, device=torch.cuda.get_device_name())
                    rows.append(row)
                    print(f"| {shape_name} | {N} | {name} | {mode} | {ms:.3f} | {row['peak_mib']:.1f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
