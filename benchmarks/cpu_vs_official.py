"""CPU inference time of the zoo's models against their official code (issue 24's table).

    python benchmarks/cpu_vs_official.py --official-root /tmp/official \\
        --rows soft_tiny@224,soft_tiny@512,ravlt_t@512

Every measurement runs in its own process (fresh allocator, one model in
memory, its own peak RSS): fp32, batch 1, `--threads` intra-op threads,
inference mode, one warm-up call, best of `--repeats` timed calls. For each
row the official and the zoo processes alternate (A/B/A/B, `--rounds` pairs)
so that a change of load on a shared machine hits both; the row keeps each
side's best. Speed-up = official s/img / zoo s/img (above 1 the zoo is faster).

The official models are built with random weights from a local checkout of
each family's repository (never committed here): `--official-root DIR` holds
one folder per family (soft, ravlt, mavit, inline, iformer, poolformer), or
`--official-root FAMILY=DIR` names one. Their imports of packages that the
forward never uses (cv2, fvcore, SOFT's CUDA extension) are stubbed; einops is
needed (RALA / MALA / SOFT import it). `timm_poolformer_s12` compares with
timm's own `poolformer_s12` and needs no checkout.

Writes `<out>.csv` and `<out>.md` (device, date, versions, command).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from zoo.bench.official import OFFICIAL, build_official

DEFAULT_ROWS = (
    "ravlt_t@224,ravlt_t@512,ravlt_t@1024,mavit_t@224,mavit_t@512,mavit_t@1024,"
    "soft_tiny@224,soft_tiny@512,soft_tiny@1024,soft_norm_tiny@224,soft_norm_tiny@512,"
    "inline_pvt_tiny@224,inline_pvt_tiny@512,inline_pvt_tiny@1024,inline_deit_tiny@224,"
    "inception_transformer_small@224,inception_transformer_small@512,"
    "poolformerv1_s12@224,poolformerv1_s12@512,timm_poolformer_s12@224,timm_poolformer_s12@512"
)
SIDES = ("official", "zoo")


# ----------------------------------------------------------------------------- official builders
# The per-family loaders live in zoo.bench.official (zoo-bench --official-root uses them too).

def _official(zoo_name: str) -> Callable[[Path | None, int], nn.Module]:
    return lambda root, res: build_official(zoo_name, {OFFICIAL[zoo_name].family: root}, res)


def _timm_poolformer(_root: Path | None, _res: int) -> nn.Module:
    import timm
    return timm.create_model("poolformer_s12")


@dataclass(frozen=True)
class Row:
    label: str
    zoo_name: str
    family: str | None          # folder under --official-root; None: no checkout needed
    official: Callable[[Path | None, int], nn.Module]   # (checkout, input size) -> model
    official_label: str = "official"


ROWS = {
    **{name: Row(entry.label, name, entry.family, _official(name)) for name, entry in OFFICIAL.items()},
    "timm_poolformer_s12": Row("PoolFormer-S12 vs timm `poolformer_s12`", "poolformerv1_s12", None,
                               _timm_poolformer, "timm"),
}


# ----------------------------------------------------------------------------- one measurement (child)

def build(row: Row, side: str, root: Path | None, res: int = 224) -> nn.Module:
    torch.manual_seed(0)
    if side == "zoo":
        import zoo
        return zoo.create_model(row.zoo_name)
    return row.official(root, res)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def measure(row: Row, side: str, root: Path | None, res: int, threads: int, repeats: int,
            clock: str = "wall", time_limit: float | None = None) -> dict:
    torch.set_num_threads(threads)
    now = CLOCKS[clock]
    model = build(row, side, root, res).eval()
    x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(1))
    times = []
    with torch.inference_mode():
        model(x)  # warm-up: allocator, oneDNN primitives, cached tables
        for _ in range(repeats):
            start = now()
            model(x)
            times.append(now() - start)
            # Small models take every repeat (their best of many is what a shared machine's noise
            # hides); a slow one stops after 2 timed calls once the limit is spent.
            if time_limit is not None and len(times) >= 2 and sum(times) >= time_limit:
                break
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return dict(seconds=min(times), calls=len(times), peak_rss_mb=peak_mb)


# ----------------------------------------------------------------------------- the table (parent)

def parse_rows(spec: str) -> list[tuple[str, int]]:
    rows = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, res = item.partition("@")
        if name not in ROWS or not sep or not res.isdigit():
            raise SystemExit(f"bad row {item!r}: expected NAME@RES with NAME one of {', '.join(ROWS)}, "
                             "e.g. soft_tiny@224")
        rows.append((name, int(res)))
    return rows


def parse_roots(values: list[str]) -> dict[str, Path]:
    roots: dict[str, Path] = {}
    for value in values:
        family, sep, path = value.partition("=")
        if sep:
            roots[family] = Path(path)
        else:  # a parent folder with one checkout per family
            for row in ROWS.values():
                if row.family:
                    roots.setdefault(row.family, Path(value) / row.family)
    return roots


def run_child(name: str, side: str, res: int, root: Path | None, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", name, side, str(res), str(root or ""),
           "--threads", str(args.threads), "--repeats", str(args.repeats), "--clock", args.clock]
    if args.time_limit is not None:
        cmd += ["--time-limit", str(args.time_limit)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return dict(error=lines[-1] if lines else f"exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def device_line() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def best(results: list[dict], key: str) -> float | None:
    values = [r[key] for r in results if key in r]
    return min(values) if values else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=DEFAULT_ROWS, help="NAME@RES,... (default: issue 24's table)")
    parser.add_argument("--official-root", action="append", default=[], metavar="DIR | FAMILY=DIR")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per process (best kept)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="stop a process's timed calls once they add up to this (after at least 2)")
    parser.add_argument("--rounds", type=int, default=2, help="official/zoo process pairs per row")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall: seconds per image (the table's); cpu: the process's CPU seconds, less "
                             "disturbed by other load on a shared machine (use with --threads 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--out", default="benchmarks/results/cpu_vs_official", help="output path without suffix")
    parser.add_argument("--child", nargs=4, metavar=("NAME", "SIDE", "RES", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        name, side, res, root = args.child
        result = measure(ROWS[name], side, Path(root) if root else None, int(res), args.threads, args.repeats,
                         args.clock, args.time_limit)
        print(json.dumps(result))
        return

    rows, roots = parse_rows(args.rows), parse_roots(args.official_root)
    records = []
    for name, res in rows:
        row = ROWS[name]
        root = roots.get(row.family) if row.family else None
        if row.family and root is None:
            records.append(dict(name=name, res=res, error=f"no --official-root for {row.family}"))
            print(f"{name}@{res}: skipped, no --official-root for {row.family}", flush=True)
            continue
        results: dict[str, list[dict]] = {side: [] for side in SIDES}
        for _ in range(args.rounds):
            for side in SIDES:
                results[side].append(run_child(name, side, res, root, args))
                print(f"  {name}@{res} {side}: {results[side][-1]}", flush=True)
        record = dict(name=name, label=row.label, res=res)
        for side in SIDES:
            record[f"{side}_s"] = best(results[side], "seconds")
            record[f"{side}_mb"] = best(results[side], "peak_rss_mb")
            errors = [r["error"] for r in results[side] if "error" in r]
            if errors:
                record[f"{side}_error"] = errors[0]
        if record["official_s"] and record["zoo_s"]:
            record["speedup"] = record["official_s"] / record["zoo_s"]
        records.append(record)
        print(f"{name}@{res}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in record.items() if k not in ("name", "res")), flush=True)
    write(records, args)


def write(records: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["name", "label", "res", "official_s", "zoo_s", "speedup", "official_mb", "zoo_mb",
              "official_error", "zoo_error", "error"]
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    fmt = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    lines = [
        f"Device: {device_line()}; torch {torch.__version__}; date {datetime.date.today().isoformat()}.",
        f"fp32, batch 1, {args.threads} threads, inference, {args.clock} clock, best of {args.repeats} calls per "
        f"process{f' (at least 2, fewer once they take {args.time_limit:g} s)' if args.time_limit else ''}, "
        f"{args.rounds} official/zoo process pairs per row, interleaved.",
        f"Command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`",
        "",
        f"| model | res | official s/img ({args.clock}) | zoo s/img ({args.clock}) | speed-up | official MB | zoo MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "label" not in r:
            lines.append(f"| {r['name']} | {r['res']} | {r['error']} | | | | |")
            continue
        speed = (fmt(r.get("speedup"), ".2f") + "×" if r.get("speedup")
                 else r.get("official_error") or r.get("zoo_error"))
        lines.append(f"| {r['label']} | {r['res']} | {fmt(r['official_s'], '.3f')} | {fmt(r['zoo_s'], '.3f')} | "
                     f"{speed} | {fmt(r['official_mb'], '.0f')} | {fmt(r['zoo_mb'], '.0f')} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
