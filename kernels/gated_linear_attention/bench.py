"""Benchmark bidirectional GLA (ViG): ours (Triton) side by side with its peers.

    python -m zoo.kernels.gated_linear_attention.bench --out gla      # CUDA: gla.csv (row by row), gla.json
    TRITON_INTERPRET=1 python -m zoo.kernels.gated_linear_attention.bench --smoke --out /tmp/gla   # CPU smoke

Implementations, forward and forward+backward:

    ours             the fused Triton kernels (zoo.kernels.gated_linear_attention, impl="triton")
    reference        reference.bigla_chunked, eager
    compiled         reference.bigla_chunked under torch.compile, one compiled function for all rows
    official         the official train path (`GatedLinearAttention.forward`): the causal kernel once on the
                     doubled batch cat([x, flip_N(x)]), gates cat([a_f, flip_N(a_b)]), o = o[:B] + flip_N(o[B:]);
                     with fla's chunk_gla as the causal kernel (the official code vendors fla)
    fla chunk_gla x2 fla's chunk_gla run once per direction, the backward one on flipped inputs

fla (`pip install fla-core`, import name fla; the `bench` extra) is a peer, never a dependency: its
rows are skipped, saying so, where it is not installed or there is no CUDA device.

Shapes: the (B·H, N) grid of `zoo.kernels._bench`, 8 heads (fewer where B·H < 8) of plain ViG's
head shape (dk 32, dv 64; `--head-dims 16 32` for ViG-H), q, k, v in bfloat16, the log-decay gates
(logsigmoid / 16, as ViG) in float32. Bytes moved (the least traffic; Ek = B·N·H·dk and
Ev = B·N·H·dv elements, s = 2 bytes, gates 4 bytes):

    forward           q, k, v, a_f, a_b read, o written:  (2 Ek + 2 Ev) s + 2 Ek 4
    forward+backward  + q, k, v, a_f, a_b, do read, dq, dk, dv, da_f, da_b written:
                      forward + (4 Ek + 3 Ev) s + 4 Ek 4

Rows go to <out>.csv as they are measured (see `zoo.kernels._bench`). Nothing here is asserted.
"""
from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._bench import Bench, Impls, add_common_args, bench_device, compiled_entry, grid, triton_entry
from . import bidirectional_gla
from .reference import bigla_chunked

HEADS = 8


def _fla_chunk_gla() -> tuple[Callable | None, str]:
    """fla's chunk_gla, or None and why not."""
    try:
        from fla.ops.gla import chunk_gla
    except Exception as err:  # noqa: BLE001 - not installed, or broken against this torch / Triton
        return None, f"fla not importable ({type(err).__name__}: {str(err)[:80]}); pip install fla-core"
    return chunk_gla, ""


def _flip(t: torch.Tensor) -> torch.Tensor:
    return t.flip(1)


def fla_two_directions(chunk_gla: Callable) -> Callable:
    def run(q, k, v, a_f, a_b, scale):
        o_f = chunk_gla(q, k, v, a_f, scale=scale)[0]
        o_b = chunk_gla(_flip(q), _flip(k), _flip(v), _flip(a_b), scale=scale)[0]
        return o_f + _flip(o_b)
    return run


def official_train_path(chunk_gla: Callable) -> Callable:
    """ViG's train(): one causal call on the batch doubled with the reversed sequence."""
    def run(q, k, v, a_f, a_b, scale):
        B = q.shape[0]
        q2, k2, v2 = (torch.cat([t, _flip(t)]) for t in (q, k, v))
        o2 = chunk_gla(q2, k2, v2, torch.cat([a_f, _flip(a_b)]), scale=scale)[0]
        return o2[:B] + _flip(o2[B:])
    return run


def _implementations(device: torch.device, compiled: bool) -> Impls:
    """name -> (function(q, k, v, a_f, a_b, scale), "") or (None, why its rows are skipped)."""
    def entry(fn: Callable | None, why: str) -> tuple[Callable | None, str]:
        return (None, why) if why else (fn, "")

    chunk_gla, fla_why = _fla_chunk_gla()
    if chunk_gla is not None and device.type != "cuda":
        fla_why = "fla's kernels run on CUDA only"
    return {
        "ours": triton_entry(lambda *a: bidirectional_gla(*a, impl="triton"), device),
        "reference": (bigla_chunked, ""),
        "compiled": compiled_entry(bigla_chunked, compiled),
        "official": entry(chunk_gla and official_train_path(chunk_gla), fla_why),
        "fla chunk_gla x2": entry(chunk_gla and fla_two_directions(chunk_gla), fla_why),
    }


def _call(fn: Callable, backward: bool, batch: int, n: int, heads: int, dk: int, dv: int,
          device: torch.device) -> Callable[[], object]:
    """The thunk that runs one row: forward, or forward and the input gradients."""
    q, k = torch.randn(2, batch, n, heads, dk, device=device, dtype=torch.bfloat16)
    v = torch.randn(batch, n, heads, dv, device=device, dtype=torch.bfloat16)
    a_f, a_b = F.logsigmoid(torch.randn(2, batch, n, heads, dk, device=device)) / 16
    inputs = [t.requires_grad_(backward) for t in (q, k, v, a_f, a_b)]
    scale = dk ** -0.5
    if not backward:
        def forward():
            with torch.no_grad():
                return fn(*inputs, scale)
        return forward
    do = torch.randn(batch, n, heads, dv, device=device, dtype=torch.bfloat16)
    return lambda: torch.autograd.grad(fn(*inputs, scale), inputs, do)


def bytes_moved(batch: int, n: int, heads: int, dk: int, dv: int, backward: bool) -> int:
    ek, ev = batch * n * heads * dk, batch * n * heads * dv
    forward = (2 * ek + 2 * ev) * 2 + 2 * ek * 4
    return forward + ((4 * ek + 3 * ev) * 2 + 4 * ek * 4 if backward else 0)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "gated_linear_attention")
    parser.add_argument("--head-dims", type=int, nargs=2, default=[32, 64], metavar=("DK", "DV"))
    parser.add_argument("--no-compile", action="store_true", help="no torch.compile rows")
    args = parser.parse_args(argv)
    device = bench_device(args)
    dk, dv = args.head_dims
    bench = Bench("gated_linear_attention", device, args.out, args.budget_s, args.peak_gbps, vars(args), args.smoke)
    impls = _implementations(device, compiled=not (args.smoke or args.no_compile))
    try:
        for bh, n in grid(args):
            heads = min(HEADS, bh)
            batch = max(1, bh // heads)
            bench.measure_impls(dict(config=f"dk={dk} dv={dv}", batch=batch, heads=heads, tokens=n, dtype="bf16"),
                                impls, functools.partial(_call, batch=batch, n=n, heads=heads, dk=dk, dv=dv,
                                                         device=device),
                                functools.partial(bytes_moved, batch, n, heads, dk, dv))
    finally:
        rows = bench.close()
    return rows


if __name__ == "__main__":
    main()
