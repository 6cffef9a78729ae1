"""Training never loses or silently corrupts results (issue 18, section 1) and zoo-validate's model names.

- resume=auto stops, naming the file and the choices, rather than start over on top of intact weights;
  save_checkpoint never deletes an existing checkpoint; resume=never refuses a directory with checkpoints;
- the .tmp-step-* folders of killed writes are removed, with a log line;
- a missing validation split is an error unless data.allow_val_on_root is set;
- unreadable evaluation images are counted and reported (not replaced by a neighbour), and fail the
  evaluation unless allowed (zoo-validate --allow-skips, data.allow_skips);
- a missing data root names the path and the layout (zoo-train and zoo-validate);
- zoo-validate resolves model names as zoo.create_model does (suggestions for unknown names).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image
from safetensors.torch import load_file
from train_helpers import TINY, TINY_MODEL, run_train

from zoo.train import checkpoint as ckpt
from zoo.train.distributed import DistInfo
from zoo.train.schema import register_configs

# zoo-validate on the tiny RAVLT of train_helpers (a few ms per image at 224 on one core).
TINY_KWARGS = json.dumps({"embed_dims": [8, 16, 24, 32], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
                          "projection": 32})


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_module(config_module="zoo.configs", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def write_images(folder: Path, count: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def image_folder(root: Path, splits: tuple[str, ...] = ("train", "validation"), per_class: int = 8,
                 classes: int = 2) -> Path:
    """root/<split>/class<c>/<i>.png: random 12x12 RGB images."""
    for s, split in enumerate(splits):
        for c in range(classes):
            write_images(root / split / f"class{c}", per_class, seed=100 * s + c)
    return root


def corrupt(path: Path) -> Path:
    path.write_bytes(b"not an image")
    return path


def small_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))


def save(root: Path, step: int, model: torch.nn.Module, **state) -> Path:
    return ckpt.save_checkpoint(root, step, model, None, {"has_ema": False, "step": step, **state}, keep=5)


# ---- checkpoints ------------------------------------------------------------------------------------------
def test_auto_resume_stops_on_an_unreadable_state_next_to_intact_weights(tmp_path: Path) -> None:
    only = save(tmp_path, 6, small_model())
    (only / ckpt.STATE_FILE).write_bytes(b"torn")
    with pytest.raises(ckpt.ResumeError) as err:
        ckpt.resolve_resume("auto", tmp_path)
    message = str(err.value)
    assert str(only / ckpt.STATE_FILE) in message  # the file that cannot be read
    assert "model.safetensors" in message and "intact" in message
    # The three ways on: another checkpoint, a weights-only restart, a new directory.
    assert "resume=<" in message
    assert f"model.init_checkpoint={only}" in message
    assert "resume=never output_dir=" in message


def test_auto_resume_names_the_older_readable_checkpoint_instead_of_silently_using_it(tmp_path: Path) -> None:
    older = save(tmp_path, 4, small_model())
    newest = save(tmp_path, 6, small_model())
    (newest / ckpt.STATE_FILE).write_bytes(b"torn")
    with pytest.raises(ckpt.ResumeError, match=f"resume={older}"):
        ckpt.resolve_resume("auto", tmp_path)
    assert ckpt.resolve_resume(str(older), tmp_path) == older  # the explicit choice works


def test_auto_resume_picks_the_newest_readable_checkpoint_and_none_without_any(tmp_path: Path) -> None:
    assert ckpt.resolve_resume("auto", tmp_path / "absent") is None
    save(tmp_path, 4, small_model())
    newest = save(tmp_path, 6, small_model())
    assert ckpt.resolve_resume("auto", tmp_path) == newest


def test_resume_never_refuses_a_directory_that_holds_checkpoints(tmp_path: Path) -> None:
    assert ckpt.resolve_resume("never", tmp_path / "new") is None
    existing = save(tmp_path, 2, small_model())
    with pytest.raises(ckpt.ResumeError, match=f"resume=never.*{existing.name}.*output_dir"):
        ckpt.resolve_resume("never", tmp_path)


def test_saving_a_step_again_keeps_the_existing_checkpoint(tmp_path: Path, caplog) -> None:
    first, second = small_model(), small_model()
    path = save(tmp_path, 5, first)
    original = load_file(path / ckpt.MODEL_FILE)
    with caplog.at_level(logging.WARNING, logger="zoo.train"):
        again = save(tmp_path, 5, second)
    assert again == path
    assert load_file(again / ckpt.MODEL_FILE)["0.weight"].equal(second.state_dict()["0.weight"])
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(path.name) and p != path]
    assert len(kept) == 1, sorted(p.name for p in tmp_path.iterdir())
    assert all(t.equal(load_file(kept[0] / ckpt.MODEL_FILE)[k]) for k, t in original.items())
    assert kept[0].name in caplog.text
    assert ckpt.list_checkpoints(tmp_path) == [path]  # the kept copy is neither resumed from nor pruned


def test_pruning_never_deletes_the_checkpoint_just_written_nor_newer_ones(tmp_path: Path) -> None:
    save(tmp_path, 2, small_model())
    newer = save(tmp_path, 6, small_model())
    written = ckpt.save_checkpoint(tmp_path, 3, small_model(), None, {"has_ema": False}, keep=1)
    assert ckpt.list_checkpoints(tmp_path) == [written, newer]


def test_resuming_an_older_checkpoint_sets_the_newer_ones_aside(tmp_path: Path) -> None:
    older = save(tmp_path, 4, small_model())
    newer = save(tmp_path, 6, small_model())
    moved = ckpt.set_aside_newer(tmp_path, older)
    assert [p.name for p in moved] == [f"{newer.name}.superseded"]
    assert moved[0].is_dir() and (moved[0] / ckpt.MODEL_FILE).exists()
    assert ckpt.list_checkpoints(tmp_path) == [older]


def test_unfinished_writes_are_removed_and_logged(tmp_path: Path, caplog) -> None:
    kept = save(tmp_path, 2, small_model())
    leftover = tmp_path / ".tmp-step-000000003-abcd"
    leftover.mkdir()
    (leftover / ckpt.MODEL_FILE).write_bytes(b"half")
    with caplog.at_level(logging.INFO, logger="zoo.train"):
        removed = ckpt.remove_unfinished_writes(tmp_path)
    assert removed == [leftover] and not leftover.exists() and kept.is_dir()
    assert leftover.name in caplog.text


def test_a_real_run_refuses_to_start_over_on_top_of_intact_weights(zoo_cache: Path, tmp_path: Path) -> None:
    """The reported case: zoo-train launched on an output dir whose only checkpoint has a torn state.pt
    (the refusal comes before any weights are loaded, so a small model's checkpoint stands in for the run's)."""
    out = tmp_path / "run"
    only = save(out / "checkpoints", 2, small_model())
    weights = (only / ckpt.MODEL_FILE).read_bytes()
    (only / ckpt.STATE_FILE).write_bytes(b"torn")
    leftover = out / "checkpoints" / ".tmp-step-000000003-xyz"  # a write killed after it
    leftover.mkdir()

    proc = run_train(TINY + ["sched.epochs=1", "debug.max_steps_per_epoch=2", f"output_dir={out}"], zoo_cache, tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text[-3000:]
    assert "zoo-train: error: cannot resume from the newest checkpoint" in proc.stderr
    assert str(only / ckpt.STATE_FILE) in text and f"model.init_checkpoint={only}" in text
    assert (only / ckpt.MODEL_FILE).read_bytes() == weights
    assert ckpt.list_checkpoints(out / "checkpoints") == [only]  # nothing written next to it either
    assert not leftover.exists() and leftover.name in text  # removed, and said so


# ---- data: the validation split, the root, unreadable images ---------------------------------------------
def test_a_missing_validation_split_is_an_error_unless_allowed(tmp_path: Path) -> None:
    from zoo.train.data import DataLayoutError, build_val_loader

    root = image_folder(tmp_path / "data", splits=("train",))
    cfg = compose_cfg([f"data.root={root}", "data.workers=0"])
    with pytest.raises(DataLayoutError, match="no validation split") as err:
        build_val_loader(cfg, DistInfo())
    assert str(root) in str(err.value) and "data.allow_val_on_root=true" in str(err.value)
    allowed = build_val_loader(compose_cfg([f"data.root={root}", "data.workers=0", "data.allow_val_on_root=true"]),
                               DistInfo())
    assert len(allowed.dataset) == 16


def test_a_tar_root_has_no_validation_split_either(tmp_path: Path) -> None:
    import tarfile

    from zoo.train.data import DataLayoutError, build_val_loader

    folder = image_folder(tmp_path / "data", splits=("train",))
    archive = tmp_path / "train.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder / "train", arcname=".")
    with pytest.raises(DataLayoutError, match="no validation split"):
        build_val_loader(compose_cfg([f"data.root={archive}", "data.workers=0"]), DistInfo())


def test_a_missing_data_root_names_the_path_and_the_layout(tmp_path: Path) -> None:
    from zoo.train.data import DataLayoutError, build_train_data

    missing = tmp_path / "imagenet"
    cfg = compose_cfg([f"data.root={missing}", "data.workers=0"])
    with pytest.raises(DataLayoutError) as err:
        build_train_data(cfg, DistInfo())
    message = str(err.value)
    assert f"data.root={missing}" in message and "does not exist" in message
    assert f"{missing}/train/<class>/" in message and f"{missing}/validation/<class>/" in message


def zoo_validate(data: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--model", "ravlt_t", "--model-kwargs", TINY_KWARGS, "--num-classes", "2",
            "--device", "cpu", "--precision", "fp32", "--workers", "0", "--batch-size", "2", *extra]


def test_zoo_validate_counts_unreadable_images_and_fails_unless_allowed(tmp_path: Path, capsys) -> None:
    from zoo.train.validate import main

    root = image_folder(tmp_path / "data", splits=("validation",), per_class=2)
    bad = corrupt(root / "validation" / "class1" / "9.png")  # 4 readable images, 1 unreadable
    assert main(zoo_validate(root)) != 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["images"] == 4 and result["skipped"] == 1
    assert "1 of 5 images" in captured.err and str(bad) in captured.err and "--allow-skips" in captured.err
    assert main(zoo_validate(root, "--allow-skips")) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 4 and result["skipped"] == 1


def test_evaluate_counts_each_image_once(tmp_path: Path) -> None:
    """The loader of an evaluation: an unreadable image is a skipped sample, never its neighbour again."""
    from timm.data import create_dataset

    from zoo.train.data import eval_loader
    from zoo.train.engine import evaluate

    folder = tmp_path / "val" / "class0"
    write_images(folder, 3)
    corrupt(folder / "1.png")
    dataset = create_dataset("", root=str(tmp_path / "val"), split="validation")
    dataset.transform = lambda image: torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
    seen: list[int] = []

    class CountImages(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.shape[0])
            return torch.zeros(x.shape[0], 2)

    result = evaluate(CountImages(), eval_loader(dataset, batch_size=3, workers=0), DistInfo(), "fp32")
    assert sum(seen) == 2 and result.metrics["images"] == 2 and result.metrics["skipped"] == 1
    assert result.metrics["top1"] == 100.0  # class 0 (argmax of zeros) for both readable images
    assert len(result.skipped_files) == 1 and result.skipped_files[0].startswith(str(folder / "1.png"))


def test_training_validation_fails_on_unreadable_images_after_saving_unless_allowed(
        zoo_cache: Path, tmp_path: Path) -> None:
    root = image_folder(tmp_path / "data")
    corrupt(root / "validation" / "class0" / "3.png")
    out = tmp_path / "run"
    args = TINY_MODEL + ["data.img_size=16", "data.batch_size=4", "data.workers=0", "progress=false",
                         "tensorboard=false", f"data.root={root}", "sched.epochs=1", "debug.max_steps_per_epoch=2",
                         f"output_dir={out}"]
    failed = run_train(args, zoo_cache, tmp_path)
    text = failed.stdout + failed.stderr
    assert failed.returncode == 1, text[-3000:]
    assert "zoo-train: error: 1 of 16 validation images could not be read" in failed.stderr
    assert "1 of 16 validation images" in text and "data.allow_skips=true" in text, text[-3000:]
    assert len(ckpt.list_checkpoints(out / "checkpoints")) == 1  # the epoch's training is kept
    assert not (out / "summary.json").exists()

    allowed = run_train(args + ["data.allow_skips=true"], zoo_cache, tmp_path)
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_images"] == 15 and summary["final_skipped"] == 1


def test_zoo_validate_names_a_missing_data_folder(tmp_path: Path, capsys) -> None:
    from zoo.train.validate import main

    missing = tmp_path / "nowhere"
    assert main(zoo_validate(missing)) == 2
    err = capsys.readouterr().err
    assert f"--data {missing} does not exist" in err and f"{missing}/validation/<class>/" in err


# ---- zoo-validate: model names ----------------------------------------------------------------------------
def test_zoo_validate_suggests_close_model_names(tmp_path: Path, capsys) -> None:
    from zoo.train.validate import main

    root = image_folder(tmp_path / "data", splits=("validation",), per_class=1)
    args = zoo_validate(root)
    args[args.index("ravlt_t")] = "ravlt_xs"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "unknown model 'ravlt_xs'" in err and "Did you mean" in err and "ravlt_s" in err
