"""One loading path for official weights: local directory, safe unpickling, the right entry, clear errors."""
from __future__ import annotations

import argparse
import json
import collections
import sys
import types

import pytest
import timm
import torch

import zoo.pretrained as pretrained
from golden import load_golden
from test_ravlt import official_training_checkpoint, zoo_kwargs


class NotAllowed:
    """A class a checkpoint could pickle but the allow-list does not name."""

    def __init__(self):
        self.payload = "anything"


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path))

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
    from zoo.convert import main as zoo_convert
    golden = load_golden("ravlt__tiny_cfg")
    official = tmp_path / "RAVLT_T.pth"
    torch.save(official_training_checkpoint(golden.state_dict), official)
    args = {**zoo_kwargs(golden), "num_classes": golden.constructor["num_classes"]}
    out = tmp_path / "converted"
    zoo_convert(["ravlt_t", str(official), str(out), "--model-args", json.dumps(args)])
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((out / "config.json").read_text())["architecture"] == "ravlt_t"
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))
