"""zoo-bench (zoo.bench, zoo.cli.bench): rows measured and written, failures recorded, official code side by side.

Smoke runs on CPU with tiny inputs and a short timing window; no figure is asserted (speed is
recorded, never tested). The official implementation is tested on a synthetic checkout the test
writes: a module file laid out as the RAVLT repository's, with a small model class of the official name.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo.bench import FIELDS
from zoo.bench.plots import write_plots
from zoo.bench.runner import Candidate, Settings, measure_row
from zoo.cli.bench import main as zoo_bench
from zoo.factory import UnknownModelError, resolve_model_names

FAST = ["--min-run-time", "0.01", "--warmup", "1", "--threads", "1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A constructor argument of RAVLT and PoolFormer alike: faster smoke runs.
ONE_BLOCK_PER_STAGE = {"depths": [1, 1, 1, 1]}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_smoke_two_small_models_write_csv_json_and_plots(tmp_path: Path) -> None:
    """The CI smoke run: two small zoo models at two tiny sizes, inference and a training step."""
    out = tmp_path / "smoke"
    code = zoo_bench(["poolformerv1_s12", "ravlt_t", "--img-size", "32", "64", "--batch-size", "2", "--bench", "both",
                      "--model-kwargs", json.dumps(ONE_BLOCK_PER_STAGE), "--device", "cpu", "--out", str(out), *FAST])
    assert code == 0
    fields, rows = read_csv(out.with_suffix(".csv"))
    assert fields == FIELDS
    assert [(r["model"], r["infer_img_size"]) for r in rows] == [
        ("poolformerv1_s12", "32"), ("ravlt_t", "32"), ("poolformerv1_s12", "64"), ("ravlt_t", "64")]
    for row in rows:
        assert row["status"] == "ok", row
        assert row["source"] == "zoo" and row["impl"] == "auto" and row["device"] == "cpu"
        for mode in ("infer", "train"):
            assert float(row[f"{mode}_samples_per_sec"]) > 0 and float(row[f"{mode}_step_time"]) > 0, row
            # two images per step (batch 1 cannot train: BatchNorm needs two values per channel)
            assert float(row[f"{mode}_samples_per_sec"]) == pytest.approx(2000 / float(row[f"{mode}_step_time"]),
                                                                          rel=1e-3)
            assert row[f"{mode}_batch_size"] == "2"
        assert row["infer_peak_mem_mib"] == ""  # CPU peak memory needs --isolate
    params = {r["model"]: float(r["param_count"]) for r in rows}
    import zoo
    for name, value in params.items():
        expected = sum(p.numel() for p in zoo.create_model(name, **ONE_BLOCK_PER_STAGE).parameters()) / 1e6
        assert value == pytest.approx(expected, abs=0.005)

    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["device"] and meta["torch"] == torch.__version__ and meta["timm"] and meta["date"]
    assert meta["command"].startswith("zoo-bench poolformerv1_s12 ravlt_t")
    assert meta["settings"]["modes"] == ["infer", "train"] and len(meta["rows"]) == len(rows)
    assert any("--isolate" in note for note in meta["notes"])
    pytest.importorskip("matplotlib")
    assert (tmp_path / "smoke_throughput.png").read_bytes()[:8] == PNG_MAGIC
    assert not (tmp_path / "smoke_memory.png").exists()  # no peak memory measured: no memory figure


def test_isolated_row_records_its_process_peak_memory(tmp_path: Path) -> None:
    out = tmp_path / "iso"
    assert zoo_bench(["poolformerv1_s12", "--img-size", "32", "--isolate", "--channels-last", "--device", "cpu",
                      "--no-plots", "--out", str(out), *FAST]) == 0
    _, (row,) = read_csv(out.with_suffix(".csv"))
    assert row["status"] == "ok" and row["channels_last"] == "True", row
    # a fresh process with torch, timm and the model: its peak resident memory is above torch's own footprint
    assert float(row["infer_peak_mem_mib"]) > 50


def test_fixed_size_models_are_rebuilt_per_size_or_skipped(monkeypatch) -> None:
    import timm

    settings = Settings(min_run_time=0.01, warmup=1, threads=1)
    assert timm.models.get_pretrained_cfg_value("test_vit", "fixed_input_size")
    rebuilt = measure_row(Candidate("test_vit", "timm"), 64, 1, settings)  # built for 160 px; rebuilt for 64
    assert rebuilt["status"] == "ok", rebuilt

    # A fixed-size model whose constructor takes no img_size is skipped, with the reason.
    real = timm.models.get_pretrained_cfg_value
    monkeypatch.setattr(timm.models, "get_pretrained_cfg_value",
                        lambda name, key: (name, key) == ("test_resnet", "fixed_input_size") or real(name, key))
    skipped = measure_row(Candidate("test_resnet", "timm"), 64, 1, settings)
    assert skipped["status"] == "skipped" and "no img_size argument" in skipped["error"], skipped


def test_a_failing_row_is_recorded_and_the_run_goes_on(tmp_path: Path, capsys) -> None:
    """InLine-Swin takes sizes that are multiples of 32 only: its 48 px row fails with the model's reason."""
    out = tmp_path / "fail"
    assert zoo_bench(["inline_swin_tiny", "poolformerv1_s12", "--img-size", "48", "--device", "cpu", "--no-plots",
                      "--out", str(out), *FAST]) == 0
    _, rows = read_csv(out.with_suffix(".csv"))
    status = {r["model"]: r for r in rows}
    assert status["inline_swin_tiny"]["status"] == "failed" and "multiple of" in status["inline_swin_tiny"]["error"]
    assert status["poolformerv1_s12"]["status"] == "ok"
    progress = capsys.readouterr().out
    assert re.search(r"\[1/2\] inline_swin_tiny 48px b1: failed: .*multiple of", progress), progress
    assert re.search(r"\[2/2\] poolformerv1_s12 48px b1: infer [\d.]+ img/s", progress), progress


def write_synthetic_ravlt_checkout(root: Path) -> int:
    """A file where the RAVLT repository keeps its model (classfication/RALA.py), with a small RAVLT_T.

    It imports fvcore as the official file does (the loader stubs it when missing), and registers a model with
    timm under a name timm already has, as official files do. Returns RAVLT_T's parameter count.
    """
    folder = root / "ravlt" / "classfication"
    folder.mkdir(parents=True)
    (folder / "RALA.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "from fvcore.nn import FlopCountAnalysis, flop_count_table\n"
        "from timm.models.registry import register_model\n\n\n"
        "class RAVLT_T(nn.Module):\n"
        "    def __init__(self, num_classes=1000):\n"
        "        super().__init__()\n"
        "        self.stem = nn.Conv2d(3, 8, kernel_size=4, stride=4)\n"
        "        self.head = nn.Linear(8, num_classes)\n\n"
        "    def forward(self, x):\n"
        "        return self.head(self.stem(x).mean((2, 3)))\n\n\n"
        "@register_model\n"
        "def poolformer_s12(pretrained=False, **kwargs):  # a name timm has: it must not replace timm's\n"
        "    return RAVLT_T()\n")
    return (3 * 8 * 16 + 8) + (8 * 1000 + 1000)


def test_official_code_runs_beside_the_zoo_model_from_a_checkout(tmp_path: Path, capsys) -> None:
    params = write_synthetic_ravlt_checkout(tmp_path / "official")
    out = tmp_path / "official_rows"
    assert zoo_bench(["ravlt_t", "poolformerv1_s12", "--official-root", str(tmp_path / "official"), "--img-size", "32",
                      "--impl", "auto", "reference", "--model-kwargs", json.dumps(ONE_BLOCK_PER_STAGE),
                      "--device", "cpu", "--no-plots", "--out", str(out), *FAST]) == 0
    _, rows = read_csv(out.with_suffix(".csv"))
    assert [(r["label"], r["source"], r["impl"]) for r in rows] == [
        ("ravlt_t", "zoo", "auto"), ("ravlt_t [reference]", "zoo", "reference"), ("ravlt_t [official]", "official", ""),
        ("poolformerv1_s12", "zoo", "auto"), ("poolformerv1_s12 [reference]", "zoo", "reference")]
    assert all(r["status"] == "ok" for r in rows), rows
    official = rows[2]
    assert official["status"] == "ok" and official["label"] == "ravlt_t [official]", official
    assert float(official["param_count"]) == round(params / 1e6, 2)
    # PoolFormer's checkout is not in the folder: said once, no row
    assert "poolformerv1_s12: no --official-root for the poolformer checkout" in capsys.readouterr().out
    import timm
    assert timm.models.model_entrypoint("poolformer_s12").__module__ == "timm.models.metaformer"


def test_official_root_errors_say_what_is_expected(tmp_path: Path, capsys) -> None:
    assert zoo_bench(["ravlt_t", "--official-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "no family folder under" in capsys.readouterr().err
    assert zoo_bench(["ravlt_t", "--official-root", f"ravlt={tmp_path / 'nowhere'}", "--out", str(tmp_path / "x")]) == 2
    assert "not a directory: ravlt=" in capsys.readouterr().err
    assert zoo_bench(["ravlt_t", "--official-root", f"nofamily={tmp_path}", "--out", str(tmp_path / "x")]) == 2
    assert "unknown family 'nofamily'" in capsys.readouterr().err


def test_model_names_and_wildcards() -> None:
    assert resolve_model_names(["poolformerv1_s1*", "ravlt_t", "poolformerv1_s12"]) == ["poolformerv1_s12",
                                                                                        "ravlt_t"]
    assert resolve_model_names(["deit_tiny_patch16_2*"]) == ["deit_tiny_patch16_224"]  # timm's names next
    with pytest.raises(UnknownModelError, match="Did you mean"):
        resolve_model_names(["ravlt_xs"])
    with pytest.raises(UnknownModelError, match=re.escape("no registered model matches 'nothing_*'")):
        resolve_model_names(["nothing_*"])


def test_budget_spent_rows_are_written_as_skipped(tmp_path: Path) -> None:
    out = tmp_path / "budget"
    assert zoo_bench(["ravlt_t", "--peers", "--img-size", "224", "512", "--budget-s", "0", "--device", "cpu",
                      "--out", str(out)]) == 0
    _, rows = read_csv(out.with_suffix(".csv"))
    assert len(rows) == 2 * 6  # ravlt_t and the five peers, at two sizes
    assert all(r["status"] == "skipped" and "time budget" in r["error"] for r in rows)


def test_plots_are_skipped_with_the_reason_without_matplotlib(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    written, why = write_plots([{"label": "m", "status": "ok", "infer_img_size": 32, "infer_batch_size": 1,
                                 "infer_samples_per_sec": 10.0}], tmp_path / "p")
    assert written == [] and "matplotlib is not installed" in why


def test_gpu_check_zoo_bench_step_arguments_parse(tmp_path: Path) -> None:
    """`.ci/gpu-check` runs zoo-bench on the GPU: its step's arguments parse here (zero budget, CPU)."""
    script = Path(__file__).parents[1] / ".ci" / "gpu-check"
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "GPU_CHECK_RUN")}
    plan = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=60, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    (limit, command), = re.findall(r"^== zoo-bench \(limit (\d+)s\): (.*)$", plan.stdout, flags=re.M)
    argv = command.split()
    argv = argv[argv.index("zoo.cli.bench") + 1:]
    assert 0 < float(argv[argv.index("--budget-s") + 1]) < int(limit)
    out = tmp_path / "gpu"
    assert zoo_bench(argv + ["--device", "cpu", "--budget-s", "0", "--out", str(out)]) == 0
    _, rows = read_csv(out.with_suffix(".csv"))
    assert rows and all(r["status"] == "skipped" for r in rows)


def test_flops_column_counts_macs_per_image() -> None:
    """--flops (zoo.flops): GMACs of one image; PoolFormer is convolutions and pooling, so its count grows with
    the pixels (4x from 32 to 64 px) except for the classifier, which stays the same."""
    pytest.importorskip("zoo.flops")
    settings = Settings(min_run_time=0.01, warmup=1, threads=1, flops=True, model_kwargs=ONE_BLOCK_PER_STAGE)
    small, large = (measure_row(Candidate("poolformerv1_s12", "zoo", "auto"), size, 1, settings) for size in (32, 64))
    for row in (small, large):
        assert row["status"] == "ok", row
        assert row["gflops"] == pytest.approx(2 * row["gmacs"], rel=1e-3)  # both to 4 significant digits
    head = 512 * 1000 / 1e9  # the last stage's 512 channels -> 1000 classes
    assert (large["gmacs"] - head) / (small["gmacs"] - head) == pytest.approx(4, rel=0.01)


def test_plot_lines_pair_each_model_with_its_official_code():
    from zoo.bench.plots import _model_and_variant

    assert _model_and_variant("ravlt_t [official]") == ("ravlt_t", "official")
    assert _model_and_variant("ravlt_t [reference] (batch 8)") == ("ravlt_t (batch 8)", "reference")
    assert _model_and_variant("convnext_tiny") == ("convnext_tiny", "")
