"""Benchmark the multi-step LIF neuron: ours (Triton) side by side with its peers.

    python -m zoo.kernels.lif.bench --out lif            # CUDA: lif.csv (row by row), lif.json
    TRITON_INTERPRET=1 python -m zoo.kernels.lif.bench --smoke --out /tmp/lif   # CPU smoke run

Implementations, forward (inference: spikes only) and forward+backward (training: BPTT):

    ours                the fused Triton kernels (impl="triton")
    reference           reference.multistep_lif_reference, the PyTorch loop over T, eager
    compiled            the reference under torch.compile, one compiled function for all rows
    official            spikingjelly 0.0.0.0.12's MultiStepLIFNode with backend 'cupy', as Max-Former's
                        official code hard-codes it (maxformer.md)
    spikingjelly torch  the same node with its 'torch' backend

spikingjelly (the `bench` extra; its cupy backend needs cupy) is a peer, never a dependency: its
rows are skipped, saying so, where it is missing or cannot run.

Shapes: T = `--steps` (default 4) steps of the (B·H, N) grid of `zoo.kernels._bench` with 32
channels per head, x of shape (T, B·H, N, 32) in `--dtype` (default float32). Bytes moved per
neuron-step (the least traffic; s bytes per element; the backward recomputes the membrane
from x instead of reading one stored by the forward):

    forward (inference)   x read, spikes written:                        2 s
    forward+backward      x read, spikes written; x, dspikes read,
                          dx written:                                    5 s

Rows go to <out>.csv as measured (see `zoo.kernels._bench`). Speed is recorded, never asserted.
Max-Former end to end, Triton against reference neurons, is zoo-bench's (kernels never import zoo):

    zoo-bench maxformer_10_384 maxformer_10_768 --device cuda --impl auto reference --model-kwargs '{"T": 4}'
"""
from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import torch

from .._bench import Bench, Impls, add_common_args, bench_device, compiled_entry, grid, triton_entry
from . import multistep_lif, multistep_lif_reference

CHANNELS = 32


def _spikingjelly(backend: str, device: torch.device) -> tuple[Callable | None, str]:
    """spikingjelly's MultiStepLIFNode (tau 2, hard reset to 0, threshold 1, sigmoid surrogate 4,
    detached reset: the zoo's defaults) on `backend`, or None and why not."""
    try:
        from spikingjelly.clock_driven import neuron  # a peer only; not a zoo dependency
    except Exception as err:  # noqa: BLE001
        return None, f"spikingjelly not importable ({type(err).__name__}); pip install spikingjelly==0.0.0.0.12"
    if device.type != "cuda" and backend == "cupy":
        return None, "the cupy backend runs on CUDA only"
    try:
        node = neuron.MultiStepLIFNode(tau=2.0, detach_reset=True, backend=backend).to(device)

        def run(x, node=node):
            node.reset()
            return node(x)
        run(torch.full((2, 4), 1.5, device=device))  # fails here if the backend cannot run
    except Exception as err:  # noqa: BLE001
        return None, f"spikingjelly backend {backend} unavailable: {type(err).__name__}: {str(err)[:80]}"
    return run, ""


def _call(fn: Callable, backward: bool, steps: int, bh: int, n: int, dtype: torch.dtype,
          device: torch.device) -> Callable[[], object]:
    """The thunk that runs one row: inference, or forward and dL/dx."""
    x = (0.8 + 1.2 * torch.randn(steps, bh, n, CHANNELS, device=device)).to(dtype).requires_grad_(backward)
    if not backward:
        def forward():
            with torch.no_grad():
                return fn(x)
        return forward
    grad = torch.randn_like(x)
    return lambda: torch.autograd.grad(fn(x), x, grad)


def bytes_moved(steps: int, bh: int, n: int, dtype: torch.dtype, backward: bool) -> int:
    size = torch.finfo(dtype).bits // 8
    return steps * bh * n * CHANNELS * (5 if backward else 2) * size


def bench_neuron(args: argparse.Namespace) -> list[dict]:
    device = bench_device(args)
    dtype = getattr(torch, args.dtype)
    bench = Bench("lif", device, args.out, args.budget_s, args.peak_gbps, vars(args), args.smoke)
    compiled = not (args.smoke or args.no_compile)
    impls: Impls = {
        "ours": triton_entry(lambda x: multistep_lif(x, impl="triton"), device),
        "reference": (multistep_lif_reference, ""),
        "compiled": compiled_entry(multistep_lif_reference, compiled),
        "official": _spikingjelly("cupy", device),
        "spikingjelly torch": _spikingjelly("torch", device),
    }
    try:
        for bh, n in grid(args):
            bench.measure_impls(dict(config=f"T={args.steps} C={CHANNELS}", batch=bh, heads=1, tokens=n,
                                     dtype=str(dtype).removeprefix("torch.")),
                                impls,
                                functools.partial(_call, steps=args.steps, bh=bh, n=n, dtype=dtype, device=device),
                                functools.partial(bytes_moved, args.steps, bh, n, dtype))
    finally:
        rows = bench.close()
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, "lif")
    parser.add_argument("--steps", type=int, default=4, help="time steps T")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--no-compile", action="store_true", help="no torch.compile rows")
    args = parser.parse_args(argv)
    return bench_neuron(args)


if __name__ == "__main__":
    main()
