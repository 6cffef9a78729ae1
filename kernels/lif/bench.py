"""Benchmark the multi-step LIF: the fused Triton kernel against its peers, and Max-Former end to end.

    python -m zoo.kernels.lif.bench                 # neuron: T in 1, 2, 4, 8; forward and forward+backward
    python -m zoo.kernels.lif.bench --model         # maxformer_10_384/768 images/s, Triton vs reference neurons

Peers: the PyTorch reference loop (eager), the same loop under torch.compile,
and, where installed, spikingjelly 0.0.0.0.12's MultiStepLIFNode with its
'torch' and 'cupy' backends (never a dependency of the zoo). Times are CUDA-
event medians; memory is the peak allocated during the call beyond its
inputs. Speed is measured and recorded (model card), never asserted in a test.
"""
from __future__ import annotations

import argparse
import statistics
from typing import Callable

import torch

from . import multistep_lif, multistep_lif_reference


def _time(fn: Callable[[], object], warmup: int = 3, iters: int = 20) -> tuple[float, float]:
    """(median ms, peak extra MiB) of fn() on the current CUDA device."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), (torch.cuda.max_memory_allocated() - base) / 2 ** 20


def _peers() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    peers: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "zoo triton": lambda x: multistep_lif(x, impl="triton"),
        "zoo reference (eager loop)": lambda x: multistep_lif(x, impl="reference"),
    }
    try:
        compiled = torch.compile(multistep_lif_reference, dynamic=False)
        peers["reference, torch.compile"] = lambda x: compiled(x)
    except Exception as err:  # noqa: BLE001 - report and go on
        print(f"torch.compile unavailable: {err}")
    try:
        from spikingjelly.clock_driven import neuron  # peer only; not a zoo dependency

        for backend in ("torch", "cupy"):
            try:
                node = neuron.MultiStepLIFNode(tau=2.0, detach_reset=True, backend=backend)

                def run(x, node=node):
                    node.reset()
                    return node(x)
                run(torch.zeros(2, 4, device="cuda"))
                peers[f"spikingjelly {backend}"] = run
            except Exception as err:  # noqa: BLE001
                print(f"spikingjelly backend {backend} unavailable: {err}")
    except ImportError:
        print("spikingjelly not installed: no spikingjelly rows")
    return peers


def bench_neuron(shape: tuple[int, ...], steps: tuple[int, ...], dtype: torch.dtype) -> None:
    neurons = 1
    for s in shape:
        neurons *= s
    print(f"\n### LIF, {neurons / 1e6:.1f} M neurons per step {tuple(shape)}, {dtype}\n")
    print("| T | implementation | fwd ms | fwd MiB | fwd+bwd ms | fwd+bwd MiB |")
    print("|-|-|-|-|-|-|")
    peers = _peers()
    for T in steps:
        x = (0.8 + 1.2 * torch.randn((T,) + tuple(shape), device="cuda")).to(dtype)
        grad = torch.randn_like(x)
        xg = x.clone().requires_grad_()
        for name, fn in peers.items():
            try:
                with torch.no_grad():
                    fwd = _time(lambda: fn(x))

                def train_step():
                    xg.grad = None
                    fn(xg).backward(grad)
                both = _time(train_step)
                print(f"| {T} | {name} | {fwd[0]:.3f} | {fwd[1]:.0f} | {both[0]:.3f} | {both[1]:.0f} |")
            except Exception as err:  # noqa: BLE001
                print(f"| {T} | {name} | failed: {type(err).__name__}: {str(err)[:80]} | | | |")


def bench_model(names: tuple[str, ...], batch: int, steps: tuple[int, ...], amp: bool) -> None:
    import zoo

    print(f"\n### Max-Former forward, batch {batch}, 224x224, {'bf16 autocast' if amp else 'fp32'}\n")
    print("| model | T | neuron | ms / batch | images/s | peak MiB |")
    print("|-|-|-|-|-|-|")
    for name in names:
        model = zoo.create_model(name).cuda().eval()
        x = torch.randn(batch, 3, 224, 224, device="cuda")
        for T in steps:
            model.T = T
            for impl in ("triton", "reference"):
                model.set_lif_impl(impl)

                def run():
                    with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=amp):
                        model(x)
                ms, mib = _time(run, warmup=2, iters=10)
                print(f"| {name} | {T} | {impl} | {ms:.1f} | {batch / ms * 1e3:.0f} | {mib:.0f} |")
        del model
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="store_true", help="time Max-Former end to end instead of the neuron")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--shape", type=int, nargs="+", default=[32, 384, 56, 56],
                        help="neurons per step (default: the 10-384 stage-1 MLP hidden layer at batch 32)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--amp", action="store_true", help="model mode: bf16 autocast")
    parser.add_argument("--names", nargs="+", default=["maxformer_10_384", "maxformer_10_768"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("the benchmark needs a CUDA device")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    if args.model:
        bench_model(tuple(args.names), args.batch, tuple(args.steps), args.amp)
    else:
        bench_neuron(tuple(args.shape), tuple(args.steps), getattr(torch, args.dtype))


if __name__ == "__main__":
    main()
