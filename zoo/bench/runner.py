"""zoo-bench's runner: which rows to measure, measuring one, and the table written as it is measured.

A row is one model (a candidate) at one input size and batch size. The candidates of a zoo model
are the model itself on each requested kernel path (`impl`: 'auto' runs the fused Triton kernels
on CUDA and the plain-PyTorch reference on CPU; 'reference' forces the reference) and, with an
official checkout, the official implementation; timm peers and any other timm model are rows of
their own. The rows of one model at one size are measured one after the other, so a change of
load on a shared machine hits them alike.

Columns follow timm's benchmark.py (`infer_samples_per_sec`, `infer_step_time` in ms,
`infer_batch_size`, `infer_img_size`, `train_*`, `param_count` in millions, `gmacs`) plus peak
memory (`*_peak_mem_mib`), FLOPs, the settings and the row's status (ok / skipped / failed) with
the reason. The CSV gets each row when it is measured (a run stopped half-way keeps its rows); the
JSON, written at the end, holds the run's metadata (device, versions, date, command) and the rows.
"""
from __future__ import annotations

import contextlib
import csv
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .official import OFFICIAL, build_official
from .timing import Timing, time_step

__all__ = ["PEERS", "FIELDS", "MODES", "DTYPES", "Candidate", "Settings", "SizeNotSupported", "candidates",
           "measure_row", "run", "device_name"]

# timm's peers of the issue: DeiT-S/B (attention through F.scaled_dot_product_attention), Swin-T,
# ConvNeXt-T, and timm's own PoolFormer-S12.
PEERS = ("deit_small_patch16_224", "deit_base_patch16_224", "swin_tiny_patch4_window7_224", "convnext_tiny",
         "poolformer_s12")
MODES = ("infer", "train")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
FIELDS = ["model", "source", "impl", "label",
          "infer_samples_per_sec", "infer_step_time", "infer_batch_size", "infer_img_size", "infer_peak_mem_mib",
          "train_samples_per_sec", "train_step_time", "train_batch_size", "train_img_size", "train_peak_mem_mib",
          "param_count", "gmacs", "gflops", "device", "dtype", "amp", "channels_last", "compile", "threads",
          "status", "error"]
ENV_IMPL = "ZOO_KERNELS_IMPL"  # zoo.kernels._dispatch reads it at every call


class SizeNotSupported(ValueError):
    """The model cannot be built for, or take, the requested input size: the row is skipped."""


@dataclass(frozen=True)
class Candidate:
    """One model to measure: a registered zoo or timm model, or the official code of a zoo model."""
    model: str
    source: str          # 'zoo' | 'timm' | 'official'
    impl: str = ""       # zoo rows: the kernels' path ('auto' | 'triton' | 'reference')

    @property
    def label(self) -> str:
        if self.source == "official":
            return f"{self.model} [official]"
        if self.source == "zoo" and self.impl != "auto":
            return f"{self.model} [{self.impl}]"
        return self.model


@dataclass
class Settings:
    """How every row is measured (stored in the JSON)."""
    device: str = "cpu"
    dtype: str = "float32"              # the weights' and inputs' dtype
    amp: str | None = None           # autocast dtype (float16 / bfloat16), None: no autocast
    channels_last: bool = False
    compile: bool = False
    modes: tuple[str, ...] = ("infer",)
    warmup: int = 2
    min_run_time: float = 1.0           # seconds of timed calls per row and mode
    threads: int | None = None       # intra-op threads; None: torch's default
    flops: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)      # constructor arguments of zoo models
    official_roots: dict[str, str] = field(default_factory=dict)    # family -> checkout
    isolate: bool = False               # one process per row (CPU peak memory needs it)
    timeout_s: float = 1800.0           # per isolated row

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.amp is not None and self.amp not in ("float16", "bfloat16"):
            raise ValueError(f"amp must be float16 or bfloat16 (or None), got {self.amp!r}")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {self.modes}")
        self.modes = tuple(self.modes)


# ----------------------------------------------------------------------------- which rows

def candidates(models: Sequence[str], impls: Sequence[str] = ("auto",), peers: bool = False,
               official_roots: dict[str, Any] | None = None) -> tuple[list[list[Candidate]], list[str]]:
    """The candidates, grouped per model (measured next to each other), and notes on what was left out."""
    import zoo

    zoo_names = set(zoo.list_models())
    roots = official_roots or {}
    groups: list[list[Candidate]] = []
    notes: list[str] = []
    seen: set[str] = set()
    for name in [*models, *(PEERS if peers else ())]:
        if name in seen:
            continue
        seen.add(name)
        if name not in zoo_names:
            groups.append([Candidate(name, "timm")])
            continue
        group = [Candidate(name, "zoo", impl) for impl in impls]
        if roots:
            official = OFFICIAL.get(name)
            if official is None:
                notes.append(f"{name}: no official loader (there are loaders for {', '.join(OFFICIAL)})")
            elif official.family not in roots:
                notes.append(f"{name}: no --official-root for the {official.family} checkout")
            else:
                group.append(Candidate(name, "official"))
        groups.append(group)
    return groups, notes


# ----------------------------------------------------------------------------- one row

@contextlib.contextmanager
def _kernels_impl(impl: str) -> Iterator[None]:
    """ZOO_KERNELS_IMPL set to `impl` for the row (the zoo kernels read it at each call), restored after."""
    if not impl:
        yield
        return
    before = os.environ.get(ENV_IMPL)
    os.environ[ENV_IMPL] = impl
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_IMPL, None)
        else:
            os.environ[ENV_IMPL] = before


def build_model(candidate: Candidate, img_size: int, settings: Settings) -> nn.Module:
    """The candidate's model with random weights, for inputs of img_size x img_size.

    A model that takes one input size only (pretrained_cfg `fixed_input_size`) is built for
    `img_size` (constructor argument `img_size`); one whose constructor takes no such argument is
    skipped (SizeNotSupported).
    """
    import timm

    import zoo  # noqa: F401  (registers the zoo's models, also in a fresh --isolate process)

    torch.manual_seed(0)
    if candidate.source == "official":
        roots = {family: Path(path) for family, path in settings.official_roots.items()}
        return build_official(candidate.model, roots, img_size)
    kwargs = dict(settings.model_kwargs) if candidate.source == "zoo" else {}
    fixed = timm.models.get_pretrained_cfg_value(candidate.model, "fixed_input_size")
    default = (timm.models.get_pretrained_cfg_value(candidate.model, "input_size") or (3, 224, 224))[-1]
    if fixed and img_size != default and "img_size" not in kwargs:
        kwargs["img_size"] = img_size
        try:
            return timm.create_model(candidate.model, **kwargs)
        except TypeError as err:
            if "img_size" not in str(err):
                raise
            raise SizeNotSupported(f"{candidate.model} takes {default}x{default} inputs only (fixed_input_size) "
                                   "and its constructor has no img_size argument") from err
    return timm.create_model(candidate.model, **kwargs)


def _count_flops(candidate: Candidate, model: nn.Module, img_size: int, settings: Settings) -> dict[str, Any]:
    """gmacs / gflops of one image (batch 1); registered models are counted on the meta device (no compute)."""
    try:
        from zoo.flops import count_flops, count_model_flops
    except ImportError as err:
        raise RuntimeError(f"--flops needs zoo.flops ({err})") from err
    count = None
    if candidate.source != "official":
        kwargs = dict(settings.model_kwargs) if candidate.source == "zoo" else {}
        if getattr(model, "pretrained_cfg", {}).get("fixed_input_size"):
            kwargs.setdefault("img_size", img_size)
        with contextlib.suppress(Exception):  # a forward that needs real values: counted on the model below
            count = count_model_flops(candidate.model, (3, img_size, img_size), **kwargs)
    if count is None:
        count = count_flops(model, (3, img_size, img_size))
    return dict(gmacs=float(f"{count.macs / 1e9:.4g}"), gflops=float(f"{count.flops / 1e9:.4g}"))  # 4 digits


def _loss(output: Any) -> torch.Tensor:
    """A scalar from any output (logits, images, lists of them): the training step's backward starts there."""
    if isinstance(output, torch.Tensor):
        return output.float().mean()
    if isinstance(output, dict):
        output = list(output.values())
    return sum(_loss(o) for o in output)


def _step(mode: str, model: nn.Module, x: torch.Tensor, settings: Settings, device: torch.device) -> Callable:
    def autocast() -> contextlib.AbstractContextManager:
        if settings.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=DTYPES[settings.amp])

    if mode == "infer":
        model.eval()

        def infer() -> Any:
            with torch.inference_mode(), autocast():
                return model(x)
        return infer

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)

    def train() -> None:
        with autocast():
            loss = _loss(model(x))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return train


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def measure_row(candidate: Candidate, img_size: int, batch_size: int, settings: Settings) -> dict[str, Any]:
    """Builds and measures one row in this process; a failure is recorded in the row, never raised."""
    device = torch.device(settings.device)
    row: dict[str, Any] = dict(model=candidate.model, source=candidate.source, impl=candidate.impl,
                               label=candidate.label, device=device.type, dtype=settings.dtype,
                               amp=settings.amp or "", channels_last=settings.channels_last,
                               compile=settings.compile, threads=settings.threads or torch.get_num_threads())
    for mode in settings.modes:
        row[f"{mode}_img_size"], row[f"{mode}_batch_size"] = img_size, batch_size
    threads_before = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    model = None
    mode = "build"
    try:
        with _kernels_impl(candidate.impl):
            model = build_model(candidate, img_size, settings)
            row["param_count"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
            if settings.flops:
                mode = "flops"
                row.update(_count_flops(candidate, model, img_size, settings))
                mode = "build"
            memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
            model = model.to(device=device, dtype=DTYPES[settings.dtype], memory_format=memory_format)
            if settings.compile:
                model = torch.compile(model)
            x = torch.randn(batch_size, 3, img_size, img_size, device=device, dtype=DTYPES[settings.dtype],
                            generator=torch.Generator(device).manual_seed(1))
            x = x.contiguous(memory_format=memory_format)
            for mode in settings.modes:
                timing: Timing = time_step(_step(mode, model, x, settings, device), device, settings.warmup,
                                           settings.min_run_time, cpu_peak=settings.isolate)
                row[f"{mode}_samples_per_sec"] = round(batch_size * 1000 / timing.step_ms, 3)
                row[f"{mode}_step_time"] = round(timing.step_ms, 3)
                if timing.peak_mem_mib is not None:
                    row[f"{mode}_peak_mem_mib"] = round(timing.peak_mem_mib, 1)
        row["status"] = "ok"
    except SizeNotSupported as err:
        row.update(status="skipped", error=str(err))
    except Exception as err:  # any failure is the row's result (out of memory, a size the model cannot take)
        what = "out of memory" if _is_oom(err) else _first_line(err)
        row.update(status="failed", error=f"{mode}: {what}" if mode != "build" else what)
    finally:
        torch.set_num_threads(threads_before)  # the caller's setting (a test run, a notebook) stays as it was
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def _measure_isolated(candidate: Candidate, img_size: int, batch_size: int, settings: Settings) -> dict[str, Any]:
    """measure_row in a fresh process (its own allocator and peak resident memory)."""
    job = json.dumps(dict(candidate=asdict(candidate), img_size=img_size, batch_size=batch_size,
                          settings=asdict(settings)))
    env = dict(os.environ)
    if settings.threads:
        env["OMP_NUM_THREADS"] = str(settings.threads)
    base = dict(model=candidate.model, source=candidate.source, impl=candidate.impl, label=candidate.label,
                device=torch.device(settings.device).type, dtype=settings.dtype, status="failed")
    try:
        proc = subprocess.run([sys.executable, "-m", "zoo.bench._child", job], capture_output=True,
                              text=True, env=env, timeout=settings.timeout_s)
    except subprocess.TimeoutExpired:
        return {**base, "error": f"timed out after {settings.timeout_s:.0f} s (--timeout)"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        return {**base, "error": f"process exit code {proc.returncode}: {err[-1] if err else ''}".strip()}
    return json.loads(lines[-1])


def child_main(job_json: str) -> None:
    """One isolated row (zoo.bench._child): the job as JSON in, the row as the last line of stdout."""
    job = json.loads(job_json)
    settings = job["settings"]
    settings["modes"] = tuple(settings["modes"])
    row = measure_row(Candidate(**job["candidate"]), job["img_size"], job["batch_size"], Settings(**settings))
    print(json.dumps(row))


# ----------------------------------------------------------------------------- the run

def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and logical CPU count."""
    if device.type == "cuda":
        memory = torch.cuda.get_device_properties(device).total_memory / 2 ** 30
        return f"{torch.cuda.get_device_name(device)}, {memory:.0f} GiB"
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _progress_line(index: int, total: int, row: dict[str, Any]) -> str:
    size = row.get("infer_img_size") or row.get("train_img_size")
    batch = row.get("infer_batch_size") or row.get("train_batch_size")
    head = f"[{index}/{total}] {row['label']} {size}px b{batch}"
    if row["status"] != "ok":
        return f"{head}: {row['status']}: {row.get('error', '')}"
    parts = []
    for mode in MODES:
        if f"{mode}_step_time" in row:
            mem = row.get(f"{mode}_peak_mem_mib")
            parts.append(f"{mode} {row[f'{mode}_samples_per_sec']:.4g} img/s, {row[f'{mode}_step_time']:.4g} ms"
                         + (f", peak {mem:.0f} MiB" if mem is not None else ""))
    if "gmacs" in row:
        parts.append(f"{row['gmacs']} GMACs")
    return f"{head}: " + "; ".join(parts)


def run(models: Sequence[str], img_sizes: Sequence[int], batch_sizes: Sequence[int], settings: Settings,
        out: Path | str, impls: Sequence[str] = ("auto",), peers: bool = False, budget_s: float | None = None,
        command: str | None = None, plots: bool = True,
        progress: Callable[[str], None] = lambda line: print(line, flush=True)) -> list[dict[str, Any]]:
    """Measures every (size, batch, candidate) row; writes <out>.csv as it goes, <out>.json and plots at the end."""
    groups, notes = candidates(models, impls, peers, settings.official_roots)
    for note in notes:
        progress(f"note: {note}")
    plan = [(c, size, batch) for size in img_sizes for batch in batch_sizes for group in groups for c in group]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    device = torch.device(settings.device)
    if device.type == "cpu" and not settings.isolate:
        notes.append("CPU peak memory is measured only with --isolate (one process per row): columns left empty")
    meta = dict(device=device_name(device), device_type=device.type, torch=torch.__version__,
                timm=_version("timm"), zoo=_version("zoo-backbones"), triton=_version("triton"),
                python=platform.python_version(), platform=platform.platform(),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                command=command or " ".join(sys.argv), settings=asdict(settings), img_sizes=list(img_sizes),
                batch_sizes=list(batch_sizes), impls=list(impls), peers=peers, notes=notes)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        f.flush()
        for index, (candidate, size, batch) in enumerate(plan, 1):
            if budget_s is not None and time.perf_counter() - start >= budget_s:
                row = dict(model=candidate.model, source=candidate.source, impl=candidate.impl,
                           label=candidate.label, device=device.type, dtype=settings.dtype,
                           **{f"{m}_{k}": v for m in settings.modes for k, v in (("img_size", size),
                                                                                 ("batch_size", batch))},
                           status="skipped", error=f"time budget of {budget_s:g} s spent (--budget-s)")
            elif settings.isolate:
                row = _measure_isolated(candidate, size, batch, settings)
            else:
                row = measure_row(candidate, size, batch, settings)
            rows.append(row)
            writer.writerow(row)
            f.flush()
            progress(_progress_line(index, len(plan), row))
    meta["seconds"] = round(time.perf_counter() - start, 1)
    out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=1, default=str) + "\n")
    written = [out.with_suffix(".csv"), out.with_suffix(".json")]
    if plots:
        from .plots import write_plots
        images, why_not = write_plots(rows, out, title=f"{meta['device']}; {settings.dtype}"
                                      f"{', amp ' + settings.amp if settings.amp else ''}")
        written += images
        if why_not:
            progress(f"no plots: {why_not}")
    progress("wrote " + ", ".join(str(p) for p in written))
    return rows

