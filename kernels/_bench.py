"""What the four kernel benchmarks share: timing, peak memory, % of HBM peak, CSV rows written as measured.

Each `zoo.kernels.<op>.bench` builds its rows (implementation x shape x pass) and hands each to
`Bench.measure`, which

- times it with CUDA events (on CPU: the wall clock) after two warm-up calls (Triton's and
  torch.compile's compilation stay out of the figure), as the median of enough repetitions to
  fill about a quarter of a second (at least 3, at most 100);
- measures the peak memory one call allocates above what was allocated before it;
- converts the op's bytes-moved model (each bench states it: every input read once, every
  output written once) into GB/s and % of the device's peak memory bandwidth;
- writes the row to `<out>.csv` at once (flushed), so a benchmark stopped by a time limit keeps
  every row it measured. A row that cannot run is written too, with status `skipped` or `failed`
  and the reason (out of memory, peer not installed, time budget spent, ...).

`<out>.json` holds the run's metadata (device, peak bandwidth, versions, date, arguments), and
the rows once the run ends.
Speed is measured and recorded, never asserted in a test.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import functools
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["FIELDS", "GRID", "SMOKE_GRID", "PASSES", "Bench", "Impls", "add_common_args", "peak_bandwidth_gbps",
           "compile_once", "bench_device", "grid", "triton_skip_reason", "compiled_entry", "triton_entry"]

FIELDS = ["op", "config", "batch", "heads", "tokens", "dtype", "impl", "pass", "ms", "peak_mem_mib",
          "bytes_moved", "gbps", "pct_hbm_peak", "status", "note"]
# (batch x heads, tokens): B·H from 8 to 512, N from 196 (14^2) to 50176 (224^2), smallest first; the
# rows that do not fit in memory are written as skipped. The smoke grid is one tiny shape.
GRID = ((8, 196), (64, 3136), (512, 3136), (8, 50176), (64, 50176), (512, 50176))
SMOKE_GRID = ((2, 16),)
PASSES = (("fwd", False), ("fwd+bwd", True))  # (pass, backward): every implementation runs both
# name -> (function, "") or (None, why its rows are skipped)
Impls = dict[str, tuple[Callable | None, str]]
# Datasheet peaks (GB/s) for devices whose properties do not give the memory clock.
KNOWN_PEAK_GBPS = {"H200": 4800.0, "H100": 3350.0, "A100": 2039.0}


def peak_bandwidth_gbps(device: torch.device) -> float | None:
    """The device's peak memory bandwidth: memory clock (double data rate) x bus width, else the datasheet."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if clock_khz and bus_bits:
        return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9
    return next((gbps for name, gbps in KNOWN_PEAK_GBPS.items() if name in props.name), None)


def bench_device(args: argparse.Namespace) -> torch.device:
    """cuda, or cpu for --smoke / --device cpu (a CPU run of the Triton path needs TRITON_INTERPRET=1)."""
    device = torch.device("cpu" if args.smoke else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"{args.op}: no CUDA device; run with --smoke (or --device cpu) for a CPU smoke run")
    return device


def add_common_args(parser: argparse.ArgumentParser, op: str) -> None:
    parser.set_defaults(op=op)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU smoke run: one or two tiny rows, no torch.compile "
                             "(Triton rows need TRITON_INTERPRET=1)")
    parser.add_argument("--out", default=None, help=f"output prefix (default bench_{op}_<date>): .csv and .json")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop measuring after this many seconds; the rows left are written as skipped")
    parser.add_argument("--peak-gbps", type=float, default=None, help="override the device's peak memory bandwidth")
    parser.add_argument("--grid", nargs="+", default=None, metavar="BHxN",
                        help="(batch x heads) x tokens points, e.g. 64x3136 (default: " +
                             " ".join(f"{bh}x{n}" for bh, n in GRID) + ")")


def grid(args: argparse.Namespace) -> list[tuple[int, int]]:
    """The (B·H, N) points of this run."""
    if args.smoke:
        return list(SMOKE_GRID)
    if not args.grid:
        return list(GRID)
    points = []
    for item in args.grid:
        try:
            bh, n = (int(x) for x in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--grid takes points BHxN such as 64x3136, got {item!r}") from None
        points.append((bh, n))
    return points


def triton_skip_reason(device: torch.device) -> str | None:
    """Why this run has no Triton rows (CPU without TRITON_INTERPRET=1, no Triton), or None."""
    from ._dispatch import triton_unsupported
    reason = triton_unsupported(device)
    return f"the Triton path needs {reason}" if reason else None


NO_COMPILE = "torch.compile rows off (--smoke / --no-compile)"


def compiled_entry(fn: Callable, compiled: bool) -> tuple[Callable | None, str]:
    """The 'compiled' implementation: fn under torch.compile, or skipped when compile rows are off."""
    return (compile_once(fn), "") if compiled else (None, NO_COMPILE)


def triton_entry(fn: Callable, device: torch.device) -> tuple[Callable | None, str]:
    """The 'ours' implementation: fn (the Triton path), or skipped with the reason the device cannot run it."""
    why = triton_skip_reason(device)
    return (None, why) if why else (fn, "")


def compile_once(fn: Callable) -> Callable:
    """One torch.compile'd function for every row: shapes recompile (automatic dynamic shapes after the
    first change), nothing resets dynamo. The recompile limit is raised so that no row silently falls
    back to eager."""
    import torch._dynamo.config as dynamo_config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(64, getattr(dynamo_config, name)))
    return torch.compile(fn)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_ms(fn: Callable[[], object], device: torch.device, smoke: bool = False, target_s: float = 0.25) -> float:
    for _ in range(1 if smoke else 2):  # warm-up: kernel compilation, torch.compile, allocator
        fn()
    _sync(device)
    if smoke:  # a CPU smoke run shows the row works, not how fast
        reps = 1
    else:
        start = time.perf_counter()
        fn()
        _sync(device)
        reps = int(min(100, max(3, target_s / max(time.perf_counter() - start, 1e-6))))
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            begin_s = time.perf_counter()
            fn()
            times.append((time.perf_counter() - begin_s) * 1e3)
    return statistics.median(times)


def _peak_mem_mib(fn: Callable[[], object], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    _sync(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20


class Bench:
    """The CSV of one benchmark run, one row per measurement, written as it is measured."""

    def __init__(self, op: str, device: torch.device, out: str | None, budget_s: float | None,
                 peak_gbps: float | None, args: dict | None = None, smoke: bool = False):
        self.op, self.device, self.budget_s, self.smoke = op, device, budget_s, smoke
        self.peak_gbps = peak_gbps or peak_bandwidth_gbps(device)
        self.start = time.perf_counter()
        self.meta = _metadata(device, self.peak_gbps, args or {})
        self.out = out or f"bench_{op}_{self.meta['date'][:10]}"
        with open(f"{self.out}.json", "w") as f:
            json.dump(self.meta, f, indent=1)
        self._file = open(f"{self.out}.csv", "w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=FIELDS)
        self._csv.writeheader()
        self._file.flush()
        self.rows: list[dict] = []
        print(f"# {op} on {self.meta['device']} (peak {self.peak_gbps or '?'} GB/s), torch {self.meta['torch']}, "
              f"triton {self.meta['triton']}, {self.meta['date']}; rows -> {self.out}.csv", flush=True)

    def time_left(self) -> bool:
        return self.budget_s is None or time.perf_counter() - self.start < self.budget_s

    def write(self, row: dict) -> None:
        self._csv.writerow({k: row.get(k) for k in FIELDS})
        self._file.flush()
        self.rows.append(dict(row))
        ms = f"{row['ms']:.3f}" if row.get("ms") is not None else "-"
        pct = f"{row['pct_hbm_peak']:.1f}%" if row.get("pct_hbm_peak") is not None else "-"
        mem = f"{row['peak_mem_mib']:.0f}" if row.get("peak_mem_mib") is not None else "-"
        print(f"{row['config']:>22} B={row['batch']:<4} H={row['heads']:<3} N={row['tokens']:<6} {row['impl']:>24} "
              f"{row['pass']:8} {ms:>9} ms {pct:>7} HBM {mem:>7} MiB  {row['status']} {row.get('note') or ''}",
              flush=True)

    def skip(self, keys: dict, reason: str, status: str = "skipped") -> None:
        self.write({"op": self.op, **keys, "status": status, "note": reason})

    def measure(self, keys: dict, make: Callable[[], Callable[[], object]], bytes_moved: int | None) -> None:
        """Time `make()`'s thunk and write its row. keys: config, batch, heads, tokens, dtype, impl, pass.

        `make` builds the inputs and returns the call to time, so that an allocation that does not
        fit is a skipped row, not a crash."""
        if not self.time_left():
            self.skip(keys, f"time budget of {self.budget_s:.0f} s spent")
            return
        row = {"op": self.op, **keys, "bytes_moved": bytes_moved, "status": "ok", "note": ""}
        try:
            fn = make()
            row["ms"] = _time_ms(fn, self.device, self.smoke)
            row["peak_mem_mib"] = _peak_mem_mib(fn, self.device)
        except torch.OutOfMemoryError as err:
            row.update(status="skipped", note=f"out of memory: {str(err).splitlines()[0][:120]}")
        except Exception as err:  # noqa: BLE001 - a failing implementation is a row, not the end of the run
            row.update(status="failed", note=f"{type(err).__name__}: {str(err).splitlines()[0][:160]}")
        finally:
            fn = None
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        if row.get("ms") and bytes_moved:
            row["gbps"] = bytes_moved / row["ms"] / 1e6
            if self.peak_gbps:
                row["pct_hbm_peak"] = 100 * row["gbps"] / self.peak_gbps
        self.write(row)

    def measure_impls(self, keys: dict, impls: Impls, call: Callable[..., Callable[[], object]],
                      bytes_moved: Callable[[bool], int | None]) -> None:
        """Every implementation, forward and forward+backward, at one shape: one row each.

        keys: config, batch, heads, tokens, dtype. call(fn, backward) builds the thunk of one row (the
        bench's inputs for this shape bound, e.g. with functools.partial); bytes_moved(backward) is
        the pass's traffic model."""
        for name, (fn, why) in impls.items():
            for pass_name, backward in PASSES:
                row_keys = {**keys, "impl": name, "pass": pass_name}
                if fn is None:
                    self.skip(row_keys, why)
                else:
                    self.measure(row_keys, functools.partial(call, fn, backward), bytes_moved(backward))

    def close(self) -> list[dict]:
        """Closes the CSV, adds the rows to the JSON; returns the rows."""
        self._file.close()
        with open(f"{self.out}.json", "w") as f:
            json.dump({**self.meta, "rows": self.rows}, f, indent=1)
        print(f"# {len(self.rows)} rows in {time.perf_counter() - self.start:.0f} s -> {self.out}.csv", flush=True)
        return self.rows


def _metadata(device: torch.device, peak_gbps: float | None, args: dict) -> dict:
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    return dict(device=name, peak_bandwidth_gbps=peak_gbps, torch=torch.__version__, triton=triton_version,
                cuda=torch.version.cuda, python=platform.python_version(),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), args=args)
