"""The four kernel benchmarks run (CPU smoke mode, Triton under its interpreter) and write their tables.

Each `python -m zoo.kernels.<op>.bench --smoke` runs in its own process with TRITON_INTERPRET=1 (set
before Triton decorates a kernel), measures one tiny shape and writes <out>.csv and <out>.json;
the CSV has the shared columns, one row per (implementation, pass), ours and the eager reference
measured, the rest measured or skipped with a reason. On a GPU machine `.ci/gpu-check` runs the
real grid.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from zoo.kernels._bench import FIELDS, Bench

BENCHES = {  # op -> the implementations its rows name
    "linear_attention": {"ours", "reference", "compiled", "official"},
    "gated_linear_attention": {"ours", "reference", "compiled", "official", "fla chunk_gla x2"},
    "gaussian_attention": {"ours", "reference", "compiled", "official"},
    "lif": {"ours", "reference", "compiled", "official", "spikingjelly torch"},
}


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """The four smoke runs, started together (each mostly waits on its imports): op -> (process, out prefix)."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "ZOO_KERNELS_IMPL"}
    env["TRITON_INTERPRET"] = "1"
    folder = tmp_path_factory.mktemp("bench")
    runs = {op: (subprocess.Popen([sys.executable, "-m", f"zoo.kernels.{op}.bench", "--smoke",
                                   "--out", str(folder / op)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder),
                 folder / op) for op in BENCHES}
    try:
        yield {op: (proc.communicate(timeout=240)[0], proc.returncode, out) for op, (proc, out) in runs.items()}
    finally:
        for proc, _ in runs.values():
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize("op", sorted(BENCHES))
def test_bench_smoke_run_writes_its_table(op, smoke_runs):
    output, returncode, out = smoke_runs[op]
    assert returncode == 0, output[-5000:]

    with open(f"{out}.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FIELDS
        rows = list(reader)
    assert {r["impl"] for r in rows} == BENCHES[op]
    assert {(r["impl"], r["pass"]) for r in rows} == {(i, p) for i in BENCHES[op] for p in ("fwd", "fwd+bwd")}
    for row in rows:
        assert row["op"] == op and row["status"] in ("ok", "skipped", "failed"), row
        if row["impl"] in ("ours", "reference"):
            assert row["status"] == "ok" and float(row["ms"]) > 0 and int(row["bytes_moved"]) > 0, row
        elif row["status"] != "ok":
            assert row["note"], f"a {row['status']} row says why: {row}"
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["device"] and meta["torch"] and meta["date"] and len(meta["rows"]) == len(rows)


def test_bench_writes_each_row_as_it_is_measured(tmp_path):
    """A benchmark stopped by a time limit keeps its rows: each is in the file before the next."""
    bench = Bench("op", torch.device("cpu"), str(tmp_path / "b"), budget_s=None, peak_gbps=100.0)
    keys = dict(config="c", batch=1, heads=1, tokens=8, dtype="fp32", impl="ours", **{"pass": "fwd"})
    bench.measure(keys, lambda: (lambda: torch.ones(8).sum()), bytes_moved=64)
    lines = (tmp_path / "b.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("op,c,1,1,8,fp32,ours,fwd,") and lines[1].endswith(",ok,")
    def broken():
        raise RuntimeError("no kernel")
    bench.measure({**keys, "pass": "fwd+bwd"}, broken, 64)
    assert (tmp_path / "b.csv").read_text().splitlines()[2].endswith(",failed,RuntimeError: no kernel")
    bench.budget_s = 0.0
    bench.measure({**keys, "impl": "late"}, lambda: (lambda: None), 64)
    rows = bench.close()
    assert [r["status"] for r in rows] == ["ok", "failed", "skipped"] and "time budget" in rows[2]["note"]


def test_the_official_gla_formulations_compute_bidirectional_gla():
    """The GLA bench's fla rows (ViG's train path on the doubled batch, and chunk_gla per direction)
    compute the zoo's definition: checked with a PyTorch causal GLA in chunk_gla's place."""
    from zoo.kernels.gated_linear_attention.bench import fla_two_directions, official_train_path
    from zoo.kernels.gated_linear_attention.reference import bigla_chunked, causal_gla_chunked

    def chunk_gla(q, k, v, g, scale):  # fla's signature and (B, T, H, D) layout
        o = causal_gla_chunked(*(t.transpose(1, 2) for t in (q * scale, k, v, g)))
        return o.transpose(1, 2), None

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 37, 3, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    a_f, a_b = (torch.nn.functional.logsigmoid(torch.randn(2, 37, 3, 8, generator=gen, dtype=torch.float64))
                for _ in range(2))
    expected = bigla_chunked(q, k, v, a_f, a_b, 0.5)
    for formulation in (official_train_path, fla_two_directions):
        torch.testing.assert_close(formulation(chunk_gla)(q, k, v, a_f, a_b, 0.5), expected, rtol=1e-10, atol=1e-10)


def test_gpu_check_plan_fits_and_its_benchmark_arguments_parse(tmp_path):
    """`.ci/gpu-check --dry-run` prints each step: the limits sum to at most 400 s (the call gets 420 s
    with the machine warm), nothing sets TRITON_INTERPRET, each benchmark's budget ends before its
    limit, and each benchmark accepts its arguments (run here with a zero budget: every row skipped)."""
    import importlib
    import re
    from pathlib import Path

    script = Path(__file__).parents[2] / ".ci" / "gpu-check"
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "GPU_CHECK_RUN")}
    plan = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=60, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    steps = re.findall(r"^== (\S+) \(limit (\d+)s\): (.*)$", plan.stdout, flags=re.M)
    names = [name for name, _, _ in steps]
    assert names[:5] == ["env", "install", "preflight", "kernel-tests", "large-tensors"], names
    assert sum(int(limit) for _, limit, _ in steps) <= 400, steps
    assert f"step limits sum to {sum(int(limit) for _, limit, _ in steps)}s" in plan.stdout
    assert "TRITON_INTERPRET=1" not in plan.stdout and "unset TRITON_INTERPRET" in script.read_text()
    benches = [(int(limit), command.split()) for name, limit, command in steps if name.startswith("bench-")]
    assert len(benches) == 4
    for limit, argv in benches:
        module = argv[argv.index("-m") + 1]
        args = argv[argv.index("-m") + 2:]
        assert 0 < float(args[args.index("--budget-s") + 1]) < limit, argv
        rows = importlib.import_module(module).main(
            args + ["--smoke", "--budget-s", "0", "--out", str(tmp_path / module.split(".")[2])])
        assert rows and all(r["status"] == "skipped" for r in rows), rows
