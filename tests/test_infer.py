"""`zoo-infer` end to end (timm's inference.py conventions) and `zoo-demo` without scikit-learn.

The weights are a tiny RAVLT whose classifier bias makes one class win on any image, so each test knows the
right answer: a wrong class, or an initialised model in place of the loaded weights, fails it.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_model

import zoo  # noqa: F401  (registers the zoo's models)
from zoo.cli.infer import main as zoo_infer

TINY_KWARGS = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], projection=32)
GOLDEN_RETRIEVER, LABRADOR = 207, 208  # ImageNet-1k indices


def biased_model(num_classes: int, winner: int, runner_up: int) -> torch.nn.Module:
    """A tiny ravlt_t that ranks `winner` first and `runner_up` second on every image (p = 0.88 / 0.12)."""
    torch.manual_seed(0)
    model = timm.create_model("ravlt_t", num_classes=num_classes, **TINY_KWARGS)
    head = model.get_classifier()
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[winner], head.bias[runner_up] = 20.0, 18.0  # the other classes: e^-18 of the winner
    return model


def china_photo(folder: Path) -> Path:
    """scikit-learn's bundled photo (427 x 640 RGB), written as a JPEG."""
    from sklearn.datasets import load_sample_image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "china.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(path)
    return path


def infer(args: list, capsys) -> tuple[int, str, str]:
    code = zoo_infer([str(a) for a in args] + ["--workers", "0"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny_ravlt.safetensors"
    save_model(biased_model(1000, GOLDEN_RETRIEVER, LABRADOR), str(path))
    return path


def tiny_ravlt(weights: Path) -> list:
    return ["--model", "ravlt_t", "--model-kwargs", json.dumps(TINY_KWARGS), "--checkpoint", weights]


def test_a_shipped_photo_gets_imagenet_class_names_and_its_probabilities(tmp_path, imagenet_weights, capsys):
    photo = china_photo(tmp_path)
    code, out, err = infer([photo, *tiny_ravlt(imagenet_weights), "--topk", "3"], capsys)
    assert code == 0, err
    line = out.strip()
    assert line.startswith(f"{photo}: golden retriever [207] 88.1%, Labrador retriever [208] 11.9%, "), line
    assert "1 of 1 images classified by ravlt_t" in err and "ImageNet (imagenet-1k" in err


def test_a_folder_with_an_unreadable_file_is_classified_the_bad_file_reported_skipped_and_counted(
        tmp_path, imagenet_weights, capsys):
    folder = tmp_path / "photos"
    photo = china_photo(folder / "nested")
    broken = folder / "broken.jpg"
    broken.write_bytes(b"this is not a JPEG")
    (folder / "notes.txt").write_text("not an image suffix: not searched")
    out_csv, out_json = tmp_path / "out" / "predictions.csv", tmp_path / "predictions.json"

    code, out, err = infer([folder, *tiny_ravlt(imagenet_weights), "--topk", "2", "-o", out_csv], capsys)
    assert code == 1  # something was skipped
    assert f"skipped {broken}: cannot read it as an image (UnidentifiedImageError" in err
    assert f"1 of 2 images classified by ravlt_t, 1 skipped (unreadable: {broken})" in err
    assert out.strip().startswith(f"{photo}: golden retriever [207]")
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["file"] for r in rows] == [str(photo), str(broken)]
    assert (rows[0]["index_1"], rows[0]["label_1"], rows[0]["index_2"], rows[0]["label_2"]) == \
           ("207", "golden retriever", "208", "Labrador retriever")
    assert float(rows[0]["prob_1"]) == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-4)  # softmax of biases 20, 18
    assert rows[0]["error"] == "" and rows[1]["index_1"] == "" and "cannot read it" in rows[1]["error"]

    code, _, _ = infer([str(folder / "**" / "*.jpg"), *tiny_ravlt(imagenet_weights), "-q", "-o", out_json], capsys)
    result = json.loads(out_json.read_text())
    assert code == 1 and result["model"] == "ravlt_t"
    assert [r["file"] for r in result["results"]] == [str(photo)]
    assert [t["label"] for t in result["results"][0]["topk"]][:2] == ["golden retriever", "Labrador retriever"]
    assert [s["file"] for s in result["skipped"]] == [str(broken)]


def _train_config(data_root: Path):
    from hydra import compose, initialize_config_module

    from zoo.train.schema import register_configs

    register_configs()
    overrides = [f"model.kwargs.{k}=[{','.join(map(str, v))}]" for k, v in TINY_KWARGS.items() if k != "projection"]
    overrides += ["model.kwargs.projection=32", f"data.root={data_root}", "data.img_size=32"]
    with initialize_config_module(config_module="zoo.configs", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_a_zoo_train_checkpoint_names_its_classes_by_the_class_folders_of_its_data(tmp_path, capsys):
    """The trainer stores no class names: they are its data root's class folders, read as the trainer reads
    them (timm's folder reader), in label order."""
    pytest.importorskip("hydra")
    from omegaconf import OmegaConf

    from zoo.train.checkpoint import save_checkpoint

    classes = ["cat", "dog", "fish"]
    for split in ("train", "validation"):
        for name in classes:
            (tmp_path / "data" / split / name).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / "data" / split / name / "0.png")
    cfg = _train_config(tmp_path / "data")
    state = {"has_ema": False, "num_classes": 3, "config_yaml": OmegaConf.to_yaml(cfg)}
    save_checkpoint(tmp_path / "run" / "checkpoints", 5, biased_model(3, classes.index("fish"), 0), None, state)
    photo = china_photo(tmp_path / "photos")

    code, out, err = infer([photo, "--checkpoint", tmp_path / "run" / "checkpoints"], capsys)
    assert code == 0, err
    assert out.strip() == f"{photo}: fish [2] 88.1%, cat [0] 11.9%, dog [1] 0.0%"
    assert f"class names: the class folders of {tmp_path / 'data'}" in err

    # The data is not on this machine: indices, and the reason.
    (tmp_path / "data").rename(tmp_path / "moved")
    code, out, err = infer([photo, "--checkpoint", tmp_path / "run" / "checkpoints"], capsys)
    assert code == 0 and out.strip() == f"{photo}: class 2 [2] 88.1%, class 0 [0] 11.9%, class 1 [1] 0.0%"
    assert f"classes are printed as indices (the checkpoint's data.root {tmp_path / 'data'} is not on this " \
           "machine)" in err


def test_a_class_map_names_the_classes(tmp_path, capsys):
    weights = tmp_path / "three.safetensors"
    save_model(biased_model(3, 1, 2), str(weights))
    (tmp_path / "names.txt").write_text("red\ngreen\nblue\n")
    photo = china_photo(tmp_path)
    args = [photo, *tiny_ravlt(weights), "--num-classes", "3", "--topk", "1"]
    code, out, err = infer(args + ["--class-map", tmp_path / "names.txt"], capsys)
    assert code == 0 and out.strip() == f"{photo}: green [1] 88.1%", err
    (tmp_path / "two.txt").write_text("red\ngreen\n")
    code, _, err = infer(args + ["--class-map", tmp_path / "two.txt"], capsys)
    assert code == 2 and "names 2 classes" in err and "the model has 3 classes" in err


@pytest.mark.parametrize("args, message", [
    (["--model", "ravlt_t"], "name the weights: --pretrained (the model's official weights) or --checkpoint"),
    (["--model", "ravlt_tt", "--pretrained"], "unknown model 'ravlt_tt'. Did you mean: ravlt_t"),
    (["--model", "maxim_2s_deraining_rain13k", "--pretrained"],
     "maxim_2s_deraining_rain13k has no classifier (num_classes=0): zoo-infer classifies images; MAXIM's "
     "restoration models run with zoo-restore"),
    (["--checkpoint", "no/such/run"], "--checkpoint no/such/run: no such file or folder"),
    (["--pretrained", "--model", "ravlt_t", "-o", "out.txt"], "--output out.txt: the suffix says the format, one of"),
    (["--pretrained", "--model", "ravlt_t", "--model-kwargs", "[1]"], "--model-kwargs must be a JSON object"),
])
def test_usage_errors_say_what_is_wrong_and_what_is_expected(tmp_path, capsys, args, message):
    photo = china_photo(tmp_path)
    code, out, err = infer([photo, *args], capsys)
    assert code == 2 and out == ""
    assert message in err


def test_inputs_that_name_nothing_are_errors(tmp_path, imagenet_weights, capsys):
    (tmp_path / "empty").mkdir()
    for item, message in [(tmp_path / "missing.jpg", "missing.jpg: no such file or folder"),
                          (tmp_path / "empty", "empty: the folder holds no image files (.bmp, .gif, .jpeg"),
                          (tmp_path / "*.png", "*.png: the pattern matches no image files")]:
        code, _, err = infer([item, *tiny_ravlt(imagenet_weights)], capsys)
        assert code == 2 and message in err, err


def test_weights_that_do_not_fit_name_the_keys(tmp_path, imagenet_weights, capsys):
    photo = china_photo(tmp_path)
    code, _, err = infer([photo, *tiny_ravlt(imagenet_weights), "--num-classes", "10"], capsys)
    assert code == 2
    assert f"{imagenet_weights} does not fit ravlt_t with 10 classes" in err and "head.fc.weight" in err


def test_zoo_demo_runs_without_scikit_learn(monkeypatch, capsys):
    from zoo.cli.demo import main as zoo_demo

    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    zoo_demo(["ravlt_t", "--batch-size", "1", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "scikit-learn is not installed: a generated test pattern" in out
    assert "ravlt_t: 14,897,768 parameters, input (1, 3, 224, 224) -> logits (1, 1000)" in out
    assert "top-5 ImageNet classes (random weights, meaningless): " in out
