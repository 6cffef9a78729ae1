"""Timing one step and its peak memory: torch.utils.benchmark on CPU, CUDA events on a GPU.

Each measurement runs `warmup` untimed calls first (allocator, oneDNN primitives, Triton and
torch.compile compilation, cached tables stay out of the figure), then timed blocks of calls until
`min_run_time` seconds are filled (at least `min_runs` blocks), and reports the median time per call.

Peak memory: on CUDA the most memory the allocator held during the warm-up and the timed calls
(`torch.cuda.max_memory_allocated`, weights included); on CPU the process's peak resident set
size, which is only the row's own figure when the row runs in its own process (zoo-bench --isolate).
"""
from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.utils.benchmark as tbench

__all__ = ["Timing", "time_step", "peak_rss_mib"]


@dataclass(frozen=True)
class Timing:
    step_ms: float                  # median time of one call
    runs: int                       # timed blocks (of one or more calls each)
    peak_mem_mib: float | None   # see the module note; None where not measured


def peak_rss_mib() -> float:
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_step(step: Callable[[], object], device: torch.device, warmup: int = 2, min_run_time: float = 1.0,
              min_runs: int = 3, cpu_peak: bool = False) -> Timing:
    """Median milliseconds of `step()` on `device`, after `warmup` calls; see the module note."""
    if warmup < 1:
        raise ValueError(f"warmup must be at least 1 (the first call compiles and allocates), got {warmup}")
    if device.type == "cuda":
        return _time_cuda(step, device, warmup, min_run_time, min_runs)
    for _ in range(warmup):
        start = time.perf_counter()
        step()
        last = time.perf_counter() - start
    # Timer's default is one thread: the benchmark measures the process's setting. blocked_autorange
    # sizes its blocks itself (one call per block for slow steps); asking for min_runs calls' worth of
    # time at once keeps a 20 s step from running more often than needed.
    timer = tbench.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    times: list[float] = []  # seconds per call, one entry per block
    spent = 0.0
    while len(times) < min_runs or spent < min_run_time:
        measurement = timer.blocked_autorange(
            min_run_time=max(min_run_time - spent, 0.9 * (min_runs - len(times)) * last))
        times += measurement.times
        spent += sum(measurement.times) * measurement.number_per_run
    return Timing(1000 * statistics.median(times), len(times), peak_rss_mib() if cpu_peak else None)


def _time_cuda(step: Callable[[], object], device: torch.device, warmup: int, min_run_time: float,
               min_runs: int) -> Timing:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize(device)
    times: list[float] = []
    while len(times) < min_runs or sum(times) < min_run_time:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return Timing(1000 * statistics.median(times), len(times), peak)
