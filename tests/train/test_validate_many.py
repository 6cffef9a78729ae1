"""zoo-validate on the embedded digits model, and on several models at once (issue 21, item 4).

- `--checkpoint <run dir>` resolves to the run's newest checkpoint and says which; a newest checkpoint
  that cannot be read is an error naming it and the readable older ones, never a silent fall-back;
- its scores equal those computed here from the newest checkpoint's model (torchvision's ImageFolder);
- names and wildcards, `--results-file` in timm's results-imagenet.csv columns plus the paper's top-1,
  `--img-size` / `--crop-pct` / `--interpolation` reach the preprocessing.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from zoo.train import checkpoint as ckpt
from zoo.train.validate import RESULT_FIELDS, main


def digits_config(data: Path):
    """The embedded default's config (the digits RAVLT of configs/model/ravlt_digits.yaml on the digits)."""
    from hydra import compose, initialize_config_module

    from zoo.train.schema import register_configs

    register_configs()
    with initialize_config_module(config_module="zoo.configs", version_base="1.3"):
        return compose(config_name="train", overrides=[f"data.root={data}"])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(run dir, digits image folder, expected scores): a run dir holding two checkpoints of the embedded digits
    model as zoo-train writes them (weights + training state with the config), different weights in each; the
    scores of the newest, computed here with torchvision's ImageFolder and the model's own transform."""
    import torch
    import torch.nn.functional as F
    from omegaconf import OmegaConf
    from timm.data import create_transform, resolve_data_config
    from torchvision.datasets import ImageFolder

    from zoo.train.digits import digits_root
    from zoo.train.engine import create_model, preprocessing_cfg

    data = digits_root(tmp_path_factory.mktemp("zoo_cache_validate") / "digits")
    cfg = digits_config(data)
    run_dir = tmp_path_factory.mktemp("run") / "digits"
    state = {"has_ema": False, "num_classes": 10, "config_yaml": OmegaConf.to_yaml(cfg)}
    for step, seed in ((1, 1), (2, 0)):
        torch.manual_seed(seed)
        model = create_model(cfg.model, 10, overlay=preprocessing_cfg(cfg.data)).eval()
        ckpt.save_checkpoint(run_dir / "checkpoints", step, model, None, state)
    dataset = ImageFolder(str(data / "validation"),
                          transform=create_transform(**resolve_data_config(model=model), is_training=False))
    images, targets = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    with torch.no_grad():
        logits = model(torch.stack(images))
    targets = torch.tensor(targets)
    expected = {"top1": 100 * (logits.argmax(1) == targets).float().mean().item(),
                "top5": 100 * (logits.topk(5).indices == targets[:, None]).any(1).float().mean().item(),
                "loss": F.cross_entropy(logits, targets).item(), "images": len(dataset)}
    return run_dir, data, expected


def validate_args(data: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--device", "cpu", "--workers", "0", "--batch-size", "90", *extra]


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_run_dir_resolves_to_its_newest_checkpoint_and_scores_it(digits_run, capsys) -> None:
    run_dir, data, expected = digits_run
    assert main(validate_args(data, "--checkpoint", str(run_dir))) == 0
    captured = capsys.readouterr()
    result = last_json(captured.out)
    newest = ckpt.list_checkpoints(run_dir / "checkpoints")[-1]
    assert f"using its newest checkpoint {newest} (2 checkpoints in {run_dir / 'checkpoints'})" in captured.err
    assert result["model"] == "ravlt_t" and result["images"] == expected["images"] == 360
    assert result["precision"] == "fp32"
    for key in ("top1", "top5", "loss"):
        assert result[key] == pytest.approx(expected[key], abs=2e-3), key
    assert result["top1_err"] == pytest.approx(100 - result["top1"], abs=1e-3)
    assert result["img_size"] == 32 and result["crop_pct"] == 1.0 and result["interpolation"] == "bilinear"


def test_an_unreadable_newest_checkpoint_is_an_error_not_an_older_one(digits_run, tmp_path, capsys) -> None:
    run_dir, data, _ = digits_run
    run = tmp_path / "run"
    shutil.copytree(run_dir / "checkpoints", run / "checkpoints")
    older = ckpt.list_checkpoints(run / "checkpoints")[-1]
    newer = run / "checkpoints" / f"step-{ckpt.step_of(older) + 1}"
    shutil.copytree(older, newer)
    (newer / ckpt.MODEL_FILE).write_bytes(b"truncated")
    assert main(validate_args(data, "--checkpoint", str(run))) == 2
    err = capsys.readouterr().err
    assert f"its newest checkpoint {newer} cannot be read" in err and ckpt.MODEL_FILE in err
    assert "Pass an older one explicitly to use it: " in err and f"{older}." in err
    assert main(validate_args(data, "--checkpoint", str(tmp_path / "empty_dir_that_is_not_there"))) == 2
    assert "does not exist; expected a checkpoint directory step-<n>" in capsys.readouterr().err


def test_many_models_with_wildcards_write_a_results_file(tmp_path, capsys) -> None:
    """Two models (a name and a wildcard) with random weights, one block per stage, on six small images."""
    data = tmp_path / "data"
    for c in range(2):
        (data / "validation" / f"class{c}").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20, 24), (40 * i, 100 * c, 50)).save(data / "validation" / f"class{c}" / f"{i}.png")
    results = tmp_path / "results.csv"
    assert main(validate_args(data, "--model", "ravlt_t", "poolformerv1_s1?", "--num-classes", "2",
                              "--model-kwargs", json.dumps({"depths": [1, 1, 1, 1]}),
                              "--img-size", "32", "--crop-pct", "1.0", "--interpolation", "bicubic",
                              "--results-file", str(results))) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    with open(results, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RESULT_FIELDS
        rows = list(reader)
    assert [r["model"] for r in rows] == ["ravlt_t", "poolformerv1_s12"] == [p["model"] for p in printed]
    for row, result in zip(rows, printed, strict=True):
        assert result["images"] == 6 and result["data_config"]["input_size"] == [3, 32, 32]
        assert (row["img_size"], row["crop_pct"], row["interpolation"]) == ("32", "1.0", "bicubic")
        assert float(row["top1"]) == pytest.approx(result["top1"]) and float(row["top1_err"]) == pytest.approx(
            100 - result["top1"], abs=1e-3)
        assert float(row["top5_err"]) == pytest.approx(100 - float(row["top5"]), abs=1e-3)
    try:
        from zoo.metadata import reported_top1
    except ImportError:  # a zoo without per-family metadata: the column stays empty
        def reported_top1(name: str) -> None:
            return None
    for row in rows:
        reported = reported_top1(row["model"])
        if reported is None:
            assert row["paper_top1"] == "" and row["top1_diff"] == ""
        else:
            assert float(row["paper_top1"]) == reported
            assert float(row["top1_diff"]) == pytest.approx(float(row["top1"]) - reported, abs=1e-3)


def test_one_checkpoint_for_several_models_is_refused(digits_run, capsys) -> None:
    run_dir, data, _ = digits_run
    assert main(validate_args(data, "--checkpoint", str(run_dir), "--model", "ravlt_*")) == 2
    assert "--checkpoint holds one model's weights" in capsys.readouterr().err


def test_paper_precision_follows_the_recipes() -> None:
    """On a GPU, --precision auto evaluates in the papers' dtype: fp32 where the official recipe turns AMP off
    (plain ViG: AMP_ENABLE False, specs/vig.md), fp16 autocast for the AMP papers, fp16 without a recipe."""
    from zoo.train.validate import paper_precision

    assert paper_precision("vig_t") == "fp32" and paper_precision("soft_tiny") == "fp32"
    assert paper_precision("inception_transformer_small") == "fp32"  # apex AMP for iFormer-L only
    assert paper_precision("inception_transformer_large") == "fp16"
    assert paper_precision("ravlt_t") == "fp16"
    assert paper_precision("deit_small_patch16_224") == "fp16"
