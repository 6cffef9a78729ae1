"""Benchmark: fused Gaussian-kernel attention vs SOFT's official torch path, on a CUDA device.

    python -m zoo.kernels.gaussian_attention.bench [--batch 8] [--dtype float32] [--stage 1]

For each input resolution 224^2 ... 1024^2 it builds the shapes of one SOFT
attention layer (stage 1: N = (R/4)^2 queries, m = (R/32)^2 landmarks, 2 heads
of 32 channels; stage 2 / 3 as the network has them) and times, forward and
forward + backward, with the peak memory above the inputs:

- `official`: `kernel_method="torch"` - K1 = exp(-(|q|^2 + |l|^2 - 2 q.l) / 2) materialised,
  X = (K1 @ M) @ (K1^T @ V), autograd;
- `fused`: `gaussian_attention(..., impl="triton")` - K1 never stored.

The Newton routine (m x m) is the same for both and is not timed. Prints a
Markdown table; record it with the device, dtype, batch and date.
"""
from __future__ import annotations

import argparse

import torch

from . import gaussian_attention
from .reference import gaussian_kernel

# (token stride, landmark pooling, heads) of SOFT-Tiny's three SOFT stages.
STAGES = {1: (4, 8, 2), 2: (8, 4, 4), 3: (16, 2, 10)}


def official_torch_path(q, lm, mixing, v):
    k1 = gaussian_kernel(q, lm.to(q.dtype), "expand")
    return torch.matmul(torch.matmul(k1, mixing.to(q.dtype)), torch.matmul(k1.transpose(-1, -2), v))


def fused_path(q, lm, mixing, v):
    return gaussian_attention(q, lm, mixing, v, impl="triton")


def measure(fn, inputs, backward: bool, reps: int = 20) -> tuple[float, float]:
    """(milliseconds per call, peak MiB allocated above the inputs)."""
    grad = None
    for _ in range(3):
        out = fn(*inputs)
        if backward:
            grad = torch.randn_like(out) if grad is None else grad
            torch.autograd.grad(out, inputs, grad)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        out = fn(*inputs)
        if backward:
            torch.autograd.grad(out, inputs, grad)
        del out
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps, (torch.cuda.max_memory_allocated() - base) / 2 ** 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--stage", type=int, default=1, choices=sorted(STAGES))
    parser.add_argument("--resolutions", type=int, nargs="+", default=[224, 384, 512, 768, 1024])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("the benchmark needs a CUDA device")
    dtype = getattr(torch, args.dtype)
    stride, ratio, heads = STAGES[args.stage]
    print(f"device: {torch.cuda.get_device_name()}, dtype {args.dtype}, batch {args.batch}, "
          f"SOFT stage {args.stage} (heads {heads}, head dim 32, landmark pooling {ratio})\n")
    print("| input | N | m | pass | official ms | fused ms | speed-up | official MiB | fused MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for res in args.resolutions:
        side = -(-res // stride)
        n, m = side * side, (side // ratio) ** 2
        g = torch.Generator(device="cuda").manual_seed(0)
        q = torch.randn(args.batch, heads, n, 32, device="cuda", generator=g) / 32 ** 0.25
        lm = torch.randn(args.batch, heads, m, 32, device="cuda", generator=g) * 0.3
        mixing = torch.randn(args.batch, heads, m, m, device="cuda", generator=g) / m
        v = torch.randn(args.batch, heads, n, 32, device="cuda", generator=g)
        inputs = [q.to(dtype), lm, mixing, v.to(dtype)]
        for backward in (False, True):
            inputs = [t.detach().requires_grad_(backward) for t in inputs]
            row = []
            for fn in (official_torch_path, fused_path):
                try:
                    row.append(measure(fn, inputs, backward))
                except torch.cuda.OutOfMemoryError:
                    row.append((float("nan"), float("nan")))
                    torch.cuda.empty_cache()
            (t_off, m_off), (t_fused, m_fused) = row
            print(f"| {res}^2 | {n} | {m} | {'fwd+bwd' if backward else 'fwd'} | {t_off:.3f} | {t_fused:.3f} | "
                  f"{t_off / t_fused:.2f}x | {m_off:.1f} | {m_fused:.1f} |")


if __name__ == "__main__":
    main()
