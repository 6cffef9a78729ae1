"""One loading path for official weights: local directory, safe unpickling, the right entry, clear errors."""
from __future__ import annotations

import argparse
import collections
import json
import sys
import types

import pytest
import timm
import torch
from golden import load_golden
from test_ravlt import official_training_checkpoint, zoo_kwargs

import zoo.pretrained as pretrained


class NotAllowed:
    """A class a checkpoint could pickle but the allow-list does not name."""

    def __init__(self):
        self.payload = "anything"


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(pretrained.ALLOW_UNCONFIRMED_ENV, "1")  # mavit_s below: the opt-in is tested elsewhere

    def offline(url, hf_hub_id, filename, destination):
        raise ConnectionError("no network in tests")

    monkeypatch.setattr(pretrained, "_download", offline)
    return tmp_path


def tiny_ravlt(**kwargs):
    golden = load_golden("ravlt__tiny_cfg")
    classes = golden.constructor["num_classes"]
    model = timm.create_model("ravlt_t", num_classes=classes, pretrained_cfg_overlay=dict(num_classes=classes),
                              **zoo_kwargs(golden), **kwargs)
    return golden, model.eval()


def test_official_file_in_weights_dir_is_found(weights_dir):
    golden = load_golden("ravlt__tiny_cfg")
    torch.save(official_training_checkpoint(golden.state_dict), weights_dir / "RAVLT_T.pth")
    golden, model = tiny_ravlt(pretrained=True)
    assert model.pretrained_cfg["file"] == str(weights_dir / "RAVLT_T.pth")
    assert "state_dict" not in model.pretrained_cfg
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_the_official_evaluation_entry_is_loaded_not_the_ema(weights_dir):
    """RAVLT's evaluation loads `model`; timm's own loader would prefer `model_ema`."""
    golden = load_golden("ravlt__tiny_cfg")
    checkpoint = official_training_checkpoint(golden.state_dict)
    checkpoint["model_ema"] = {k: v + 0.5 if v.is_floating_point() else v for k, v in golden.state_dict.items()}
    torch.save(checkpoint, weights_dir / "RAVLT_T.pth")
    golden, model = tiny_ravlt(pretrained=True)
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_yacs_config_loads_without_yacs(tmp_path):
    """Files that pickle a yacs CfgNode (InLine's) open as OrderedDict under weights_only=True."""
    path = tmp_path / "yacs.pth"
    # A stand-in class whose pickled name is yacs.config.CfgNode.
    stand_in = type("CfgNode", (collections.OrderedDict,), {"__module__": "yacs.config"})
    module = types.ModuleType("yacs.config")
    module.CfgNode = stand_in
    sys.modules.setdefault("yacs", types.ModuleType("yacs"))
    sys.modules["yacs.config"] = module
    try:
        torch.save({"model": {"w": torch.ones(2)}, "config": stand_in(MODEL="x")}, path)
    finally:
        del sys.modules["yacs.config"]
    checkpoint = pretrained.load_checkpoint(path)
    assert type(checkpoint["config"]) is collections.OrderedDict and checkpoint["config"]["MODEL"] == "x"
    assert torch.equal(pretrained.select_weights(checkpoint)["w"], torch.ones(2))


def test_select_weights_unwraps_level_by_level_and_prefers_the_named_entry():
    weights, ema = {"w": torch.ones(2)}, {"w": torch.zeros(2)}
    assert pretrained.select_weights({"state_dict": {"model": weights}, "meta": {}})["w"] is weights["w"]
    assert pretrained.select_weights({"model": weights, "model_ema": ema})["w"] is weights["w"]  # most common first
    assert pretrained.select_weights({"model": weights, "model_ema": ema}, "model_ema")["w"] is ema["w"]
    assert pretrained.select_weights(weights) is weights  # a bare state dict


@pytest.mark.parametrize("name, entry", [("vig_t", "model_ema"), ("soft_tiny", "state_dict_ema"),
                                         ("inline_cswin_tiny", "state_dict_ema"),
                                         ("maxformer_10_384", "state_dict"), ("ravlt_t", None)])
def test_a_filter_takes_the_entry_recorded_on_the_registered_official_file(name, entry):
    """The entry the official evaluation loads is recorded once (`OfficialFile.weights_key`); a family filter
    given a whole training checkpoint (fine-tuning from it, `zoo.pretrained.filter_for`) takes the same one."""
    from zoo.models._checkpoint import unwrap_state_dict
    with torch.device("meta"):
        model = timm.create_model(name)
    assert pretrained.official_weights_key(model) == entry
    entries = {key: {"w": torch.full((1,), float(i))} for i, key in enumerate(pretrained.WEIGHT_ENTRIES)}
    chosen = unwrap_state_dict(entries, model)["w"].item()
    assert pretrained.WEIGHT_ENTRIES[int(chosen)] == (entry or pretrained.WEIGHT_ENTRIES[0])


def test_a_checkpoint_without_tensors_names_the_entries_looked_for():
    from zoo.models._checkpoint import CheckpointMismatchError, unwrap_state_dict
    with torch.device("meta"):
        model = timm.create_model("vig_t")
    with pytest.raises(CheckpointMismatchError, match=r"no tensors.*\['model_ema', 'model', 'state_dict'"):
        unwrap_state_dict({"epoch": 3, "args": {}}, model)


def test_unknown_pickled_class_is_refused(weights_dir):
    golden = load_golden("ravlt__tiny_cfg")
    checkpoint = official_training_checkpoint(golden.state_dict)
    checkpoint["args"] = NotAllowed()
    torch.save(checkpoint, weights_dir / "RAVLT_T.pth")
    with pytest.raises(pretrained.UnsafeCheckpointError, match=r"test_pretrained\.NotAllowed"):
        tiny_ravlt(pretrained=True)


def test_missing_file_says_what_to_download_and_where(weights_dir):
    with pytest.raises(pretrained.WeightsNotFoundError) as err:
        timm.create_model("mavit_s", pretrained=True)
    message = str(err.value)
    assert "MAViT_S.pth" in message
    assert "https://huggingface.co/aldjalkdf/MAViT" in message
    assert str(weights_dir / "MAViT_S.pth") in message


def test_a_file_named_by_the_caller_is_opened_safely(tmp_path):
    golden = load_golden("ravlt__tiny_cfg")
    path = tmp_path / "anywhere.pth"
    checkpoint = official_training_checkpoint(golden.state_dict)
    checkpoint["args"] = argparse.Namespace(model="RAVLT_T")
    torch.save(checkpoint, path)
    classes = golden.constructor["num_classes"]
    model = timm.create_model("ravlt_t", pretrained=True, num_classes=classes,
                              pretrained_cfg_overlay=dict(file=str(path), num_classes=classes),
                              **zoo_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_zoo_convert_writes_the_hub_layout_with_identical_outputs(tmp_path):
    from zoo.cli.convert import main as zoo_convert
    golden = load_golden("ravlt__tiny_cfg")
    official = tmp_path / "RAVLT_T.pth"
    torch.save(official_training_checkpoint(golden.state_dict), official)
    args = {**zoo_kwargs(golden), "num_classes": golden.constructor["num_classes"]}
    out = tmp_path / "converted"
    zoo_convert(["ravlt_t", str(official), str(out), "--model-args", json.dumps(args)])
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((out / "config.json").read_text())["architecture"] == "ravlt_t"
    assert "ravlt_t" in (out / "README.md").read_text()  # the model's card
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_zoo_validate_pretrained_finds_the_official_file_and_scores_it(weights_dir, tmp_path, capsys):
    """`zoo-validate --pretrained` evaluates the official weights from $ZOO_WEIGHTS_DIR with the model's own
    preprocessing. The fixture's 10-class head is embedded in a 1000-class one, its rows permuted so that the
    official model's predictions on the test images are exactly the images' folder labels: 100 % top-1 only
    if the official weights (not an initialisation) were loaded."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    from zoo.models.ravlt import checkpoint_filter_fn
    from zoo.train.validate import main as zoo_validate

    golden = load_golden("ravlt__tiny_cfg")
    generator = torch.Generator().manual_seed(0)
    images = []
    for _ in range(12):  # a random colour with random-strength noise: the tiny model's predictions vary
        colour = torch.rand(1, 1, 3, generator=generator) * 255
        noise = (torch.rand(48, 56, 3, generator=generator) - 0.5) * 255 * torch.rand(1, generator=generator)
        images.append(Image.fromarray((colour + noise).clamp(0, 255).byte().numpy()))
    official = timm.create_model("ravlt_t", num_classes=10, **zoo_kwargs(golden)).eval()
    official.load_state_dict(checkpoint_filter_fn(golden.state_dict, official))
    transform = create_transform(**resolve_data_config(model=official), is_training=False)
    with torch.no_grad():
        predicted = official(torch.stack([transform(im) for im in images])).argmax(1).tolist()
    # Class folders are numbered in sorted order: the predicted classes go first, in order.
    order = sorted(set(predicted)) + [c for c in range(10) if c not in predicted]
    state = dict(golden.state_dict)
    weight = torch.zeros(1000, *state["head.weight"].shape[1:])  # the official head is a 1x1 conv
    bias = torch.full((1000,), -1e4)  # the 990 added classes never win
    weight[:10], bias[:10] = state["head.weight"][order], state["head.bias"][order]
    state["head.weight"], state["head.bias"] = weight, bias
    torch.save(official_training_checkpoint(state), weights_dir / "RAVLT_T.pth")
    for i, (image, label) in enumerate(zip(images, predicted)):
        folder = tmp_path / "data" / "validation" / f"class{order.index(label)}"
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i}.png")

    assert zoo_validate(["--data", str(tmp_path / "data"), "--model", "ravlt_t", "--pretrained",
                         "--model-kwargs", json.dumps(zoo_kwargs(golden)), "--device", "cpu",
                         "--precision", "fp32", "--workers", "0", "--batch-size", "4"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 12 and len(set(predicted)) > 1
    assert result["top1"] == 100.0
