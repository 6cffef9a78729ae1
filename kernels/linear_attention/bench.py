"""Benchmark of the shared linear attention: Triton vs the PyTorch formulations.

    python -m zoo.kernels.linear_attention.bench                  # CUDA, the full table
    python -m zoo.kernels.linear_attention.bench --device cpu --quick   # smoke run

For each variant, N in {196, 784, 3136, 12544, 50176} (RoPE grids 14^2 ... 224^2;
InLine without RoPE), d in {32, 64}, bfloat16, 4 heads and a batch holding about
400k tokens per head, it times the forward and forward+backward of

    triton      the fused kernels (CUDA only)
    reference   reference.py in eager mode (fp32 math)
    compiled    reference.py under torch.compile
    official    the official modules' formulation: the einsum / matmul chain in the
                input dtype, written here from the specs (ravlt.md, mala.md §2.4, inline.md §2.1)

on channels-first strided views (as the models pass them), and reports the median
time, the achieved bandwidth of the minimal traffic (read q, k, v [and dY], write y
[and dq, dk, dv] once) as a percentage of the device's peak, and the peak memory
above the inputs. Rows go to <out>.csv and, with the device name, versions and date,
to <out>.json. Nothing here is asserted: numbers are measured, never assumed.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import platform
import statistics
import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from . import linear_attention
from .reference import apply_rope_2d, rope_2d_tables

GRIDS = {196: (14, 14), 784: (28, 28), 3136: (56, 56), 12544: (112, 112), 50176: (224, 224)}
TOKENS_PER_HEAD_BATCH = 8 * 50176
HEADS = 4
FIELDS = ["variant", "n_tokens", "head_dim", "batch", "heads", "dtype", "impl", "pass", "ms", "gbps",
          "pct_peak_bw", "peak_mem_mib", "note"]


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


# ----------------------------------------------------------------------------- measuring

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], object], device: torch.device, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _peak_mem_mib(fn: Callable[[], object], device: torch.device) -> Optional[float]:
    if device.type != "cuda":
        return None
    _sync(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20


def peak_bandwidth_gbps(device: torch.device) -> Optional[float]:
    """HBM/GDDR peak from the memory clock (double data rate) and bus width; None on CPU."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    return 2 * props.memory_clock_rate * 1e3 * props.memory_bus_width / 8 / 1e9


def _make_inputs(batch: int, n: int, d: int, dtype: torch.dtype, device: torch.device):
    fused = torch.randn(batch, 3 * HEADS * d, n, device=device, dtype=dtype)
    return [t.view(batch, HEADS, d, n).transpose(-1, -2).detach().requires_grad_() for t in fused.chunk(3, dim=1)]


def _implementations(device: torch.device, compile_reference: bool) -> dict[str, Callable]:
    impls: dict[str, Callable] = {}
    if device.type == "cuda":
        impls["triton"] = lambda q, k, v, **kw: linear_attention(q, k, v, impl="triton", **kw)
    impls["reference"] = lambda q, k, v, **kw: linear_attention(q, k, v, impl="reference", **kw)
    if compile_reference:
        impls["compiled"] = "compiled"  # built per configuration (see _run_config)
    impls["official"] = official_formulation
    return impls


def _run_config(variant, n, d, dtype, device, impls, warmup, reps, peak_gbps, batch):
    rope_hw = None if variant == "inline" else GRIDS.get(n, (1, n))
    q, k, v = _make_inputs(batch, n, d, dtype, device)
    dy = torch.randn(q.shape, device=device, dtype=dtype)
    elems = q.numel() * q.element_size()
    traffic = {"fwd": 4 * elems, "fwd+bwd": 11 * elems}
    rows = []
    for name, fn in impls.items():
        if fn == "compiled":
            from .reference import linear_attention_reference
            torch._dynamo.reset()
            fn = torch.compile(linear_attention_reference)
        call = (lambda fn=fn: fn(q, k, v, variant=variant, rope_hw=rope_hw))
        passes = {"fwd": lambda: call(), "fwd+bwd": lambda: torch.autograd.grad(call(), (q, k, v), dy)}
        for pass_name, run in passes.items():
            row = dict(variant=variant, n_tokens=n, head_dim=d, batch=batch, heads=HEADS, dtype=str(dtype)[6:],
                       impl=name, **{"pass": pass_name}, ms=None, gbps=None, pct_peak_bw=None, peak_mem_mib=None,
                       note="")
            try:
                with torch.no_grad() if pass_name == "fwd" else torch.enable_grad():
                    row["ms"] = _median_ms(run, device, warmup, reps)
                    row["peak_mem_mib"] = _peak_mem_mib(run, device)
                row["gbps"] = traffic[pass_name] / row["ms"] / 1e6
                if peak_gbps:
                    row["pct_peak_bw"] = 100 * row["gbps"] / peak_gbps
            except torch.OutOfMemoryError as err:  # the formulations that materialise more than the kernels
                row["note"] = f"OOM: {str(err)[:80]}"
                torch.cuda.empty_cache()
            rows.append(row)
    return rows


def _metadata(device: torch.device, peak_gbps: Optional[float]) -> dict:
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    return dict(device=name, peak_bandwidth_gbps=peak_gbps, torch=torch.__version__, triton=triton_version,
                cuda=torch.version.cuda, python=platform.python_version(),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def _format_table(rows: list[dict]) -> str:
    lines = [f"{'variant':8} {'N':>6} {'d':>3} {'impl':10} {'pass':8} {'ms':>9} {'GB/s':>8} {'%peak':>6} {'MiB':>8}"]
    for r in rows:
        def fmt(x, spec):
            return format(x, spec) if x is not None else "-"
        lines.append(f"{r['variant']:8} {r['n_tokens']:>6} {r['head_dim']:>3} {r['impl']:10} {r['pass']:8} "
                     f"{fmt(r['ms'], '9.3f')} {fmt(r['gbps'], '8.1f')} {fmt(r['pct_peak_bw'], '6.1f')} "
                     f"{fmt(r['peak_mem_mib'], '8.1f')} {r['note']}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="one small shape, few repetitions, no torch.compile")
    parser.add_argument("--variants", nargs="+", default=["rala", "mala", "inline"])
    parser.add_argument("--tokens", nargs="+", type=int, default=list(GRIDS))
    parser.add_argument("--head-dims", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile'd reference")
    parser.add_argument("--peak-gbps", type=float, default=None, help="override the device's peak bandwidth")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--out", default=None, help="output path prefix (.csv and .json are added)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    tokens, head_dims, reps, warmup = args.tokens, args.head_dims, args.reps, 3
    budget = TOKENS_PER_HEAD_BATCH
    if args.quick:
        tokens, head_dims, reps, warmup, budget = [196], [32], 2, 1, 196
    peak_gbps = args.peak_gbps or peak_bandwidth_gbps(device)
    impls = _implementations(device, compile_reference=not (args.quick or args.no_compile))
    rows = []
    threads = torch.get_num_threads()
    if args.quick and device.type == "cpu":
        torch.set_num_threads(1)  # tiny tensors: one thread avoids OpenMP stalls on a busy machine
    try:
        for variant in args.variants:
            for d in head_dims:
                for n in tokens:
                    batch = max(1, round(budget / n))
                    rows += _run_config(variant, n, d, torch.bfloat16, device, impls, warmup, reps, peak_gbps, batch)
    finally:
        torch.set_num_threads(threads)
    meta = _metadata(device, peak_gbps)
    print(f"# {meta['device']}  torch {meta['torch']}  triton {meta['triton']}  {meta['date']}")
    print(_format_table(rows))
    out = args.out or f"bench_linear_attention_{meta['date'][:10]}"
    with open(f"{out}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    with open(f"{out}.json", "w") as f:
        json.dump({**meta, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
