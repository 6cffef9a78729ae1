"""Official weights for every landed family, end to end (issue 14's "done when").

For one golden fixture per family, with downloads disabled:

1. the file is written in the family's official layout (the wrapper its released
   files have, built by the helper in the family's own test module) into a
   temporary $ZOO_WEIGHTS_DIR under the name `zoo.pretrained` looks for, and
   `timm.create_model(name, pretrained=True)` finds it there and reproduces the
   official output at the fixture's tolerance;
2. `zoo-convert` turns the same file into timm's hub layout, and
   `timm.create_model("local-dir:<folder>", pretrained=True)` computes exactly
   what the first model does.

And for one (full-size) variant of each family, a missing file gives the
instructions: the file name, where to get it, and where to put it.

Families covered: ravlt, mavit, inline (PVT, the cheapest of the four backbones),
vig, inception_transformer, maxformer, maxim, poolformerv1, soft; and the GGeM ViTs
(ggem), which have no official checkpoint and no fixture: their tags load
timm's ViT weights, checked against timm's own ViT.
"""
from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from golden import Golden, load_golden
from timm.models._builder import resolve_pretrained_cfg

import zoo  # noqa: F401  (registers the models)
import zoo.pretrained as pretrained

# --------------------------------------------------------------------------- where the library looks


def registered(model_name: str) -> tuple[dict, pretrained.OfficialFile | None]:
    """(pretrained cfg, OfficialFile) of `architecture[.tag]`, the default tag resolved as timm does."""
    arch, _, tag = model_name.partition(".")
    cfg = resolve_pretrained_cfg(arch, pretrained_cfg=tag or None).to_dict()
    return cfg, pretrained.official_file(f"{arch}.{cfg['tag']}" if cfg.get("tag") else arch)


def official_filename(model_name: str) -> str:
    """The official file name `zoo.pretrained` looks for: the registered OfficialFile's, else the cfg's."""
    cfg, official = registered(model_name)
    filename = official.filename if official else pretrained.default_filename(cfg)
    assert filename, f"{model_name} has no official file"
    return filename


def official_path(model_name: str, directory: Path) -> Path:
    """Where a user drops the file: its registered name (a relative path keeps its folders), or the
    basename of a hub / URL file name (`iformer/iformer_small.pth` -> `iformer_small.pth`)."""
    filename = official_filename(model_name)
    return directory / (filename if registered(model_name)[1] else Path(filename).name)


@dataclass
class Offline:
    path: Path  # the (empty) $ZOO_WEIGHTS_DIR
    download_calls: list


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Offline:
    """An empty $ZOO_WEIGHTS_DIR, and no downloads (each attempt is recorded, then fails). Unconfirmed tags
    (mavit_t, vig_*) load here: these tests are about the loading path; test_weights_trust.py tests the opt-in."""
    directory = tmp_path / "weights"
    directory.mkdir()
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(directory))
    monkeypatch.setenv(pretrained.ALLOW_UNCONFIRMED_ENV, "1")
    calls: list = []

    def offline(url, hf_hub_id, filename, destination):
        calls.append(url or hf_hub_id)
        raise ConnectionError("downloads are disabled in this test")

    monkeypatch.setattr(pretrained, "_download", offline)
    return Offline(directory, calls)


# --------------------------------------------------------------------------- one golden fixture per family


def _ravlt_kwargs(golden: Golden) -> dict:
    from test_ravlt import zoo_kwargs
    return {**zoo_kwargs(golden), "num_classes": golden.constructor["num_classes"]}


def _ravlt_file(golden: Golden, path: Path) -> None:
    from test_ravlt import official_training_checkpoint
    torch.save(official_training_checkpoint(golden.state_dict), path)


def _inline_kwargs(golden: Golden) -> dict:
    from test_inline import zoo_args
    return zoo_args(golden)[1]


def _inline_file(golden: Golden, path: Path) -> None:
    from test_inline import official_training_checkpoint
    official_training_checkpoint(golden.state_dict, path)  # pickles a yacs CfgNode


def _vig_kwargs(golden: Golden) -> dict:
    from test_vig import plain_kwargs
    return {**plain_kwargs(golden), "num_classes": golden.constructor["num_classes"]}


def _vig_file(golden: Golden, path: Path) -> None:
    """`model` and `model_ema` (the official default); the EMA is the fixture, `model` is off by 0.5."""
    from test_vig import official_file
    raw = {k: v + 0.5 if v.is_floating_point() else v for k, v in golden.state_dict.items()}
    torch.save(official_file(raw, ema_state=golden.state_dict), path)


def _iformer_kwargs(golden: Golden) -> dict:
    from test_inception_transformer import zoo_kwargs
    return zoo_kwargs(golden)


def _iformer_file(golden: Golden, path: Path) -> None:
    from test_inception_transformer import official_release
    torch.save(official_release(golden.state_dict), path)  # the released files are bare state dicts


def _maxformer_kwargs(golden: Golden) -> dict:
    from test_maxformer import zoo_kwargs
    return zoo_kwargs(golden)


def _maxformer_file(golden: Golden, path: Path) -> None:
    from test_maxformer import official_training_checkpoint
    torch.save(official_training_checkpoint(golden.state_dict), path)


def _maxim_kwargs(golden: Golden) -> dict:
    from test_maxim import tiny_kwargs
    return tiny_kwargs(golden)


def _maxim_file(golden: Golden, path: Path) -> None:
    from test_maxim import official_npz
    written = official_npz(path.parent, golden, path.name)
    assert written == path


def _poolformer_kwargs(golden: Golden) -> dict:
    from test_poolformerv1 import zoo_kwargs
    return {**zoo_kwargs(golden), "num_classes": golden.constructor["num_classes"]}


def _poolformer_file(golden: Golden, path: Path) -> None:
    torch.save(dict(golden.state_dict), path)  # the release .pth.tar files are bare state dicts (spec §7)


def _soft_kwargs(golden: Golden) -> dict:
    from test_soft import zoo_kwargs
    return zoo_kwargs(golden)


def _soft_file(golden: Golden, path: Path) -> None:
    from test_soft import official_training_checkpoint  # EMA weights, zeros under state_dict
    torch.save(official_training_checkpoint(golden.state_dict), path)


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


@dataclass
class Family:
    family: str
    fixture: str
    model: str  # registered name the fixture's weights are loaded as
    kwargs: Callable[[Golden], dict]
    write: Callable[[Golden, Path], None]
    to_input: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    from_output: Callable[[torch.Tensor], torch.Tensor] = lambda y: y
    marks: list = field(default_factory=list)


FAMILIES = [
    Family("ravlt", "ravlt__tiny_cfg", "ravlt_t", _ravlt_kwargs, _ravlt_file),
    Family("mavit", "mala__tiny_cfg", "mavit_t", _ravlt_kwargs, _ravlt_file),
    Family("inline", "inline__pvt_tiny_cfg", "inline_pvt_tiny", _inline_kwargs, _inline_file),
    Family("vig", "vig__tiny_cfg", "vig_t", _vig_kwargs, _vig_file),
    Family("inception_transformer", "iformer__tiny_cfg", "inception_transformer_small", _iformer_kwargs,
           _iformer_file),
    Family("maxformer", "maxformer__tiny_cfg", "maxformer_10_384", _maxformer_kwargs, _maxformer_file),
    Family("maxim", "maxim__tiny_cfg", "maxim_3s_denoising_sidd", _maxim_kwargs, _maxim_file, _nchw, _nhwc),
    Family("poolformerv1", "poolformer__tiny_cfg", "poolformerv1_s12", _poolformer_kwargs, _poolformer_file),
    Family("soft", "soft__tiny_cfg", "soft_tiny", _soft_kwargs, _soft_file),
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", [pytest.param(f, id=f.family, marks=f.marks) for f in FAMILIES])
def test_official_file_in_weights_dir_and_through_zoo_convert(case, weights, tmp_path):
    golden = load_golden(case.fixture)
    kwargs = case.kwargs(golden)
    path = official_path(case.model, weights.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    case.write(golden, path)
    x = case.to_input(golden.input)

    # (1) pretrained=True finds the official file in $ZOO_WEIGHTS_DIR (no download) ...
    overlay = {"num_classes": kwargs["num_classes"]} if "num_classes" in kwargs else {}
    model = timm.create_model(case.model, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs).eval()
    assert model.pretrained_cfg["file"] == str(path)
    assert "state_dict" not in model.pretrained_cfg
    assert weights.download_calls == []
    with torch.no_grad():
        official = model(x)
    golden.assert_close(case.from_output(official))

    # (2) ... and zoo-convert turns the same file into the hub layout, which computes the same, exactly.
    from zoo.cli.convert import main as zoo_convert
    out = tmp_path / "converted"
    zoo_convert([case.model, str(path), str(out), "--model-args", json.dumps(_jsonable(kwargs))])
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]  # + the card
    assert json.loads((out / "config.json").read_text())["architecture"] == case.model.split(".")[0]
    converted = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(converted(x), official)
    assert weights.download_calls == []


# --------------------------------------------------------------------------- a missing file: the instructions


@dataclass
class Missing:
    model: str
    remote: str  # the file's name at its source, as the message names it
    source: str
    target: str  # where it goes, relative to the weights directory
    marks: list = field(default_factory=list)


MISSING = [
    Missing("ravlt_s", "RAVLT_S.pth", "https://huggingface.co/aldjalkdf/RAVLT", "RAVLT_S.pth"),
    Missing("mavit_b", "MAViT_B.pth", "https://huggingface.co/aldjalkdf/MAViT", "MAViT_B.pth"),
    Missing("inline_cswin_small", "inline_cswin_small.pth",
            "https://cloud.tsinghua.edu.cn/f/59f4e65f776f4052b93c/?dl=1", "inline_cswin_small.pth"),
    Missing("vig_h_s", "vig_h_small.pth", "https://huggingface.co/hustvl/ViG", "vig_h_small.pth"),
    Missing("inception_transformer_base_384", "iformer/iformer_base_384.pth", "https://huggingface.co/sail/dl2",
            "iformer_base_384.pth"),
    Missing("maxformer_10_768.t1_in1k", "10-768-T1.pth.tar",
            "https://github.com/bic-L/MaxFormer/releases/download/checkpoints/10-768-T1.pth.tar",
            "10-768-T1.pth.tar"),
    # Every MAXIM file is called checkpoint.npz: each is kept under its model's name.
    Missing("maxim_2s_deraining_rain13k", "checkpoint.npz",
            "https://storage.googleapis.com/gresearch/maxim/ckpt/Deraining/Rain13k/checkpoint.npz",
            "maxim_2s_deraining_rain13k.npz"),
    Missing("poolformerv1_m36", "poolformer_m36.pth.tar",
            "https://github.com/sail-sg/poolformer/releases/download/v1.0/poolformer_m36.pth.tar",
            "poolformer_m36.pth.tar"),
    # timm's mirror: every timm hub repo holds a model.safetensors, kept under the repo's name.
    Missing("poolformerv1_s24.sail_in1k_timm", "model.safetensors", "https://huggingface.co/timm/poolformer_s24.sail_in1k",
            "poolformer_s24.sail_in1k.safetensors"),
    # Google Drive: the message names the file's page (a person's download), the program tries the direct link.
    Missing("soft_norm_medium", "SOFT_Medium_norm.pth",
            "https://drive.google.com/file/d/1K2C6daaJn3jwurWh38uvV7rexirWjuzh/view?usp=sharing",
            "SOFT_Medium_norm.pth"),
    Missing("vit_large_patch16_224_ggem", "model.safetensors",
            "https://huggingface.co/timm/vit_large_patch16_224.augreg_in21k_ft_in1k",
            "vit_large_patch16_224.augreg_in21k_ft_in1k.safetensors"),
]


@pytest.mark.parametrize("case", [pytest.param(m, id=m.model, marks=m.marks) for m in MISSING])
def test_missing_file_says_what_to_download_from_where_and_where_to_put_it(case, weights):
    target = weights.path / case.target
    assert official_path(case.model, weights.path) == target
    with pytest.raises(pretrained.WeightsNotFoundError) as err:
        timm.create_model(case.model, pretrained=True)
    message = str(err.value)
    assert f"Download {case.remote} from {case.source}" in message
    assert f"put it at {target}" in message
    assert pretrained.WEIGHTS_DIR_ENV in message
    official = registered(case.model)[1]
    if official is None or official.fetchable:  # tried, failed (offline), and said so
        assert "the download failed (ConnectionError" in message
        assert len(weights.download_calls) == 1
    else:  # never tried
        assert "cannot be downloaded automatically" in message
        assert weights.download_calls == []
    assert list(weights.path.iterdir()) == []  # nothing half-written


def test_ggem_vit_takes_timm_vit_weights_from_the_weights_dir_and_through_zoo_convert(weights, tmp_path):
    """No GGeM-trained checkpoint exists: the tags load timm's ViT weights (hub safetensors), which must
    give exactly timm's ViT trunk; GGeM's p starts at its init value."""
    from zoo.cli.convert import main as zoo_convert
    tiny = dict(img_size=32, embed_dim=32, depth=1, num_heads=4, num_classes=10)
    torch.manual_seed(0)
    vit = timm.create_model("vit_base_patch16_224", **tiny).eval()
    path = official_path("vit_base_patch16_224_ggem", weights.path)
    assert path.name == "vit_base_patch16_224.augreg2_in21k_ft_in1k.safetensors"
    from safetensors.torch import save_file
    save_file(vit.state_dict(), str(path))
    model = timm.create_model("vit_base_patch16_224_ggem", pretrained=True, ggem_p_init=2.5,
                              pretrained_cfg_overlay=dict(num_classes=10), **tiny).eval()
    assert model.pretrained_cfg["file"] == str(path) and weights.download_calls == []
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), vit.forward_features(x))
        assert torch.equal(model.head.weight, vit.head.weight)
    assert model.attn_pool.p.tolist() == [2.5] * 4
    out = tmp_path / "converted"
    zoo_convert(["vit_base_patch16_224_ggem", str(path), str(out), "--model-args", json.dumps(tiny)])
    converted = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    model = timm.create_model("vit_base_patch16_224_ggem", pretrained=True,
                              pretrained_cfg_overlay=dict(num_classes=10), **tiny).eval()
    with torch.no_grad():
        assert torch.equal(converted(x), model(x))


def test_every_landed_family_is_covered():
    """A family that moves to build_zoo_model (or lands) shows up here until it gets a fixture above."""
    covered = {"ravlt", "inline", "vig", "inception_transformer", "maxformer", "maxim", "poolformerv1", "soft",
               "ggem"}  # ravlt.py holds mavit
    models = Path(importlib.import_module("zoo.models").__file__).parent
    families = {p.stem for p in models.glob("*.py") if not p.stem.startswith("_")}
    on_zoo_loader = {stem for stem in families if "build_zoo_model(" in (models / f"{stem}.py").read_text()}
    assert on_zoo_loader == families, f"not on zoo.pretrained.build_zoo_model: {sorted(families - on_zoo_loader)}"
    assert families == covered, "update FAMILIES / MISSING and the module docstring"
    assert "build_model_with_cfg" not in "".join((models / f"{stem}.py").read_text() for stem in families)


# --------------------------------------------------------------------------- models built for one input size

FIXED_SIZE = [pytest.param(name, id=name.split("__")[1]) for name in
              ("inline__deit_tiny_cfg", "inline__swin_tiny_cfg", "inline__cswin_tiny_cfg")]


@pytest.mark.parametrize("fixture", FIXED_SIZE)
def test_zoo_convert_takes_fixed_input_size_models(fixture, weights, tmp_path):
    from test_inline import official_training_checkpoint, zoo_args

    from zoo.cli.convert import main as zoo_convert
    golden = load_golden(fixture)
    variant, kwargs = zoo_args(golden)
    path = official_path(variant, weights.path)
    official_training_checkpoint(golden.state_dict, path)
    zoo_convert([variant, str(path), str(tmp_path / "converted"), "--model-args", json.dumps(_jsonable(kwargs))])
    official = timm.create_model(variant, pretrained=True,
                                 pretrained_cfg_overlay=dict(num_classes=kwargs["num_classes"]), **kwargs).eval()
    converted = timm.create_model(f"local-dir:{tmp_path / 'converted'}", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(converted(golden.input), official(golden.input))
