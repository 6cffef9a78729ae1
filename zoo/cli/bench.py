"""`zoo-bench`: inference and training-step throughput and peak memory of registered models.

    zoo-bench ravlt_t 'mavit_*' --img-size 224 512 1024 --peers --official-root /src/official --isolate
    zoo-bench ravlt_t --device cuda --batch-size 64 --amp --amp-dtype bfloat16 --impl auto reference --flops

Models are names or wildcards (zoo names first, then timm's); each zoo model runs on every `--impl`
kernel path and, with `--official-root`, beside its official implementation; `--peers` adds timm's
DeiT-S/B (SDPA attention), Swin-T, ConvNeXt-T and PoolFormer-S12. Every model is measured at each
`--img-size` and `--batch-size`; a model that takes one input size only is rebuilt for each size
(img_size=...), or skipped with the reason. A row that fails (out of memory, a size the model cannot
take) is written with the reason and the run goes on.

Writes <out>.csv (timm benchmark.py's columns, each row as it is measured), <out>.json (device,
versions, date, command, settings and rows) and <out>_throughput.png / <out>_memory.png (with
matplotlib). On CPU, peak memory is the process's peak resident memory and needs --isolate (one
process per row); on CUDA it is the allocator's peak.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys

import torch


def _parser() -> argparse.ArgumentParser:
    from zoo.bench.official import FAMILIES
    from zoo.bench.runner import DTYPES, PEERS

    summary, _, details = __doc__.split("\n\n", 2)
    p = argparse.ArgumentParser(prog="zoo-bench", description=summary, epilog=details,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", metavar="MODEL", help="registered names or wildcards (quote them)")
    p.add_argument("--img-size", type=int, nargs="+", default=[224], metavar="N", help="input sizes (default 224)")
    p.add_argument("--batch-size", type=int, nargs="+", default=None, metavar="B",
                   help="batch sizes (default 1 on CPU, 32 on CUDA)")
    p.add_argument("--bench", choices=("infer", "train", "both"), default="infer",
                   help="inference, a training step (forward, backward, SGD step), or both")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="weights and inputs")
    p.add_argument("--amp", action="store_true", help="autocast (mixed precision)")
    p.add_argument("--amp-dtype", choices=("float16", "bfloat16"), default="float16")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile each model (compilation is warm-up)")
    p.add_argument("--impl", nargs="+", choices=("auto", "triton", "reference"), default=None,
                   help="the zoo kernels' paths, one row each (ZOO_KERNELS_IMPL); default: auto and reference on "
                        "CUDA, auto on CPU (where auto is the reference)")
    p.add_argument("--peers", action="store_true", help="add timm's " + ", ".join(PEERS))
    p.add_argument("--official-root", action="append", default=[], metavar="DIR | FAMILY=DIR",
                   help="official checkouts: a folder with one per family (" + ", ".join(FAMILIES) + ") or "
                        "FAMILY=DIR; adds each zoo model's official implementation")
    p.add_argument("--flops", action="store_true", help="count GMACs / GFLOPs per image (zoo.flops)")
    p.add_argument("--isolate", action="store_true", help="one process per row (CPU peak memory; fresh allocator)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default 2)")
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds of timed calls per row (default 1)")
    p.add_argument("--model-kwargs", default="{}", help="JSON constructor arguments for the zoo models")
    p.add_argument("--budget-s", type=float, default=None, help="stop measuring after this many seconds; the rows "
                                                                "left are written as skipped")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per row with --isolate")
    p.add_argument("--out", default=None, help="output path without suffix (default zoo-bench-<UTC time>)")
    p.add_argument("--no-plots", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from zoo.bench.official import parse_roots
    from zoo.bench.runner import Settings, run
    from zoo.factory import UnknownModelError, resolve_model_names

    parser = _parser()
    args = parser.parse_args(argv)
    if not args.models and not args.peers:
        parser.error("name at least one model (or wildcard), or --peers")
    if min(args.img_size) < 1 or (args.batch_size and min(args.batch_size) < 1):
        parser.error("--img-size and --batch-size take positive integers")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    try:
        model_kwargs = json.loads(args.model_kwargs)
        if not isinstance(model_kwargs, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        parser.error(f"--model-kwargs must be a JSON object, e.g. '{{\"drop_path_rate\": 0}}' ({err})")
    try:
        models = resolve_model_names(args.models)
        roots = parse_roots(args.official_root)
    except (UnknownModelError, ValueError) as err:
        print(f"zoo-bench: error: {err}", file=sys.stderr)
        return 2
    explicit = {value.partition("=")[0] for value in args.official_root if "=" in value}
    missing = [f"{family}={roots[family]}" for family in sorted(explicit) if not roots[family].is_dir()]
    roots = {family: str(root) for family, root in roots.items() if root.is_dir()}
    if missing or (args.official_root and not roots):
        what = f"not a directory: {', '.join(missing)}" if missing else \
            f"no family folder under {', '.join(args.official_root)}"
        print(f"zoo-bench: error: --official-root: {what}; expected FAMILY=DIR with DIR a checkout, or DIR holding "
              f"one checkout per family (DIR/ravlt, DIR/soft, ...)", file=sys.stderr)
        return 2
    settings = Settings(device=str(device), dtype=args.dtype, amp=args.amp_dtype if args.amp else None,
                        channels_last=args.channels_last, compile=args.compile,
                        modes=("infer", "train") if args.bench == "both" else (args.bench,),
                        warmup=args.warmup, min_run_time=args.min_run_time, threads=args.threads, flops=args.flops,
                        model_kwargs=model_kwargs, official_roots=roots, isolate=args.isolate, timeout_s=args.timeout)
    impls = args.impl or (["auto", "reference"] if device.type == "cuda" else ["auto"])
    batches = args.batch_size or ([32] if device.type == "cuda" else [1])
    out = args.out or f"zoo-bench-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}"
    rows = run(models, args.img_size, batches, settings, out, impls=impls, peers=args.peers,
               budget_s=args.budget_s, command="zoo-bench " + shlex.join(sys.argv[1:] if argv is None else argv),
               plots=not args.no_plots)
    failed = sum(r["status"] == "failed" for r in rows)
    print(f"{len(rows)} rows: {sum(r['status'] == 'ok' for r in rows)} measured, "
          f"{sum(r['status'] == 'skipped' for r in rows)} skipped, {failed} failed")
    return 0


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
