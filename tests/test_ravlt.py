"""RAVLT / MAViT against the official implementations' golden fixtures."""
from __future__ import annotations

import argparse

import pytest
import timm
import torch
from golden import Golden, load_golden

import zoo
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.ravlt import checkpoint_filter_fn

CLASSIFIER_FIXTURES = ["ravlt__tiny_cfg", "ravlt__tiny_cfg_nonsquare", "mala__tiny_cfg", "mala__tiny_cfg_nonsquare"]
BACKBONE_FIXTURES = ["ravlt__tiny_cfg_det_backbone", "mala__tiny_cfg_det_backbone"]


def zoo_kwargs(golden: Golden) -> dict:
    """The official constructor arguments of a fixture, in this model's terms."""
    c = golden.constructor
    assert all(flags == [core] for flags, core in zip(c["flagss"], "llvv")), "fixture uses non-default mixers"
    assert len(set(c["mlp_ratios"])) == 1
    return dict(
        embed_dims=c["embed_dims"], depths=c["depths"], num_heads=c["num_heads"], mlp_ratio=c["mlp_ratios"][0],
        layer_scale_init_values=[v if on else None for v, on in zip(c["layer_init_values"], c["layerscales"])],
        drop_path_rate=0.0, projection=c["projection"])


def variant_of(golden: Golden) -> str:
    return "ravlt_t" if golden.name.startswith("ravlt") else "mavit_t"


def build_classifier(golden: Golden) -> torch.nn.Module:
    return zoo.create_model(variant_of(golden), num_classes=golden.constructor["num_classes"], **zoo_kwargs(golden))


def build_backbone(golden: Golden) -> torch.nn.Module:
    return zoo.create_model(
        variant_of(golden), features_only=True, out_indices=tuple(golden.constructor["out_indices"]),
        **zoo_kwargs(golden))


def concat_features(features: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([f.flatten(1) for f in features], dim=1)


@pytest.mark.parametrize("name", CLASSIFIER_FIXTURES)
def test_classifier_matches_official(name):
    golden = load_golden(name)
    model = build_classifier(golden).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        golden.assert_close(model(golden.input))


@pytest.mark.parametrize("name", BACKBONE_FIXTURES)
def test_features_only_matches_official_backbone(name):
    golden = load_golden(name)
    backbone = build_backbone(golden).eval()
    # The wrapped model loads the official det/seg backbone state (with extra_norms, no head).
    backbone.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, backbone.model))
    with torch.no_grad():
        features = backbone(golden.input)
    assert [tuple(f.shape) for f in features] == [tuple(s) for s in golden.meta["output_shapes"]]
    assert [f.shape[1] for f in features] == backbone.feature_info.channels()
    assert backbone.feature_info.reduction() == [4, 8, 16, 32]
    golden.assert_close(concat_features(features))


def official_training_checkpoint(state_dict: dict) -> dict:
    """What the official main.py saves: DDP-prefixed weights plus training state and pickled args."""
    return {
        "model": {f"module.{k}": v for k, v in state_dict.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5, "params": [0]}]},
        "lr_scheduler": {"last_epoch": 299},
        "epoch": 299,
        "scaler": {"scale": 65536.0},
        "args": argparse.Namespace(model="RAVLT_T", batch_size=128, lr=1e-3, drop_path=0.05),
        "max_accuracy": 80.0,
    }


@pytest.mark.parametrize("name", ["ravlt__tiny_cfg", "mala__tiny_cfg_nonsquare"])
def test_official_file_loads_through_pretrained_path(name, tmp_path):
    golden = load_golden(name)
    path = tmp_path / "official.pth"
    torch.save(official_training_checkpoint(golden.state_dict), path)
    # The file unpickles under weights_only=True (argparse.Namespace is the one allowed class) ...
    with torch.serialization.safe_globals([argparse.Namespace]):
        torch.load(path, weights_only=True, map_location="cpu")
    # ... and loads through the path pretrained=True takes (timm's loader + our filter).
    model = timm.create_model(
        variant_of(golden), pretrained=True, num_classes=golden.constructor["num_classes"],
        pretrained_cfg_overlay=dict(file=str(path), num_classes=golden.constructor["num_classes"]),
        **zoo_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_mmdet_backbone_file_loads_through_pretrained_path(tmp_path):
    golden = load_golden("ravlt__tiny_cfg_det_backbone")
    path = tmp_path / "maskrcnn.pth"
    neck = {"neck.lateral_convs.0.conv.weight": torch.zeros(8, 16, 1, 1)}
    torch.save({"state_dict": {**{f"backbone.{k}": v for k, v in golden.state_dict.items()}, **neck},
                "meta": {"epoch": 12}}, path)
    kwargs = zoo_kwargs(golden)
    with pytest.raises(CheckpointMismatchError, match="neck.lateral_convs"):
        timm.create_model("ravlt_t", features_only=True, pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(path)), **kwargs)
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in golden.state_dict.items()}}, path)
    backbone = timm.create_model("ravlt_t", features_only=True, pretrained=True,
                                 pretrained_cfg_overlay=dict(file=str(path)), **kwargs).eval()
    with torch.no_grad():
        golden.assert_close(concat_features(backbone(golden.input)))


def test_features_only_accepts_a_classification_checkpoint():
    """A classifier's weights start a backbone: head dropped, feature norms at LayerNorm(1, 0)."""
    classifier_golden = load_golden("ravlt__tiny_cfg")
    backbone = build_backbone(load_golden("ravlt__tiny_cfg_det_backbone")).eval()
    state = checkpoint_filter_fn(classifier_golden.state_dict, backbone.model)
    assert not any(k.startswith("head.") for k in state)
    backbone.model.load_state_dict(state)
    assert torch.equal(state["feature_norms.0.weight"], torch.ones(16))
    assert torch.equal(state["feature_norms.0.bias"], torch.zeros(16))


def test_checkpoint_mismatch_lists_the_keys():
    golden = load_golden("ravlt__tiny_cfg")
    model = build_classifier(golden)
    state = dict(golden.state_dict)
    del state["layers.1.blocks.0.attn.lepe.weight"]
    state["layers.1.blocks.0.attn.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        checkpoint_filter_fn(state, model)
    message = str(err.value)
    assert "missing" in message and "stages.1.blocks.0.attn.lepe.weight" in message
    assert "unexpected" in message and "stages.1.blocks.0.attn.extra.weight" in message


def test_mavit_checkpoint_into_ravlt_names_the_head_shape():
    mala = load_golden("mala__tiny_cfg")
    ravlt_model = zoo.create_model("ravlt_t", num_classes=10, **{**zoo_kwargs(mala), "projection": 128})
    with pytest.raises(CheckpointMismatchError, match=r"head\.proj\.weight: checkpoint \(256, 64, 1, 1\)"):
        checkpoint_filter_fn(mala.state_dict, ravlt_model)


def test_layer_norms_use_official_eps():
    """eps 1e-6 everywhere; the classifier fixtures cannot see 1e-5 (ravlt.md §8)."""
    model = zoo.create_model("ravlt_t", features_only=True)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm) or type(m).__name__ == "LayerNorm2d"]
    assert len(norms) == 2 * 12 + 4
    assert {m.eps for m in norms} == {1e-6}


@pytest.mark.parametrize("variant", ["ravlt_t", "mavit_t"])
def test_eval_logits_do_not_depend_on_batch(variant):
    torch.manual_seed(0)
    model = zoo.create_model(variant).eval()
    images = torch.randn(4, 3, 96, 80)
    with torch.no_grad():
        batched = model(images)
        single = model(images[:1])
    torch.testing.assert_close(single, batched[:1], atol=1e-5, rtol=1e-5)


TRITON_FIXTURE_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_ravlt import build_classifier, checkpoint_filter_fn, load_golden
golden = load_golden({name!r})
model = build_classifier(golden).eval()
model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
with torch.no_grad():
    print(golden.assert_close(model(golden.input)))
"""


@pytest.mark.parametrize("name", ["ravlt__tiny_cfg_nonsquare", "mala__tiny_cfg"])
def test_classifier_matches_official_on_the_triton_kernel(name):
    """The same fixtures through the fused Triton kernel (interpreted on CPU, compiled on a GPU machine)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    env = {**os.environ, "ZOO_KERNELS_IMPL": "triton"}
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    script = TRITON_FIXTURE_SCRIPT.format(tests=str(Path(__file__).parent), name=name)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-4


def test_pretrained_with_other_in_chans_adapts_the_first_conv(tmp_path):
    """in_chans=1 with a 3-channel checkpoint: timm sums the first conv over its input channels."""
    golden = load_golden("ravlt__tiny_cfg")
    path = tmp_path / "official.pth"
    torch.save(official_training_checkpoint(golden.state_dict), path)
    classes = golden.constructor["num_classes"]
    gray = timm.create_model("ravlt_t", pretrained=True, in_chans=1, num_classes=classes,
                             pretrained_cfg_overlay=dict(file=str(path), num_classes=classes), **zoo_kwargs(golden))
    expected = golden.state_dict["patch_embed.proj.0.weight"].sum(dim=1, keepdim=True)
    torch.testing.assert_close(gray.stem[0].weight.detach(), expected)


# --------------------------------------------------------------------------- CPU path: RoPE tables, layouts

def test_rope_tables_are_cached_per_grid_and_equal_fresh_ones():
    from zoo.kernels.linear_attention import reference
    reference._ROPE_TABLES.clear()
    cos, sin = reference.rope_2d_tables(5, 7, 16)
    again = reference.rope_2d_tables(5, 7, 16)
    assert again[0] is cos and again[1] is sin  # the blocks of a stage share one pair
    fresh = reference._build_rope_2d_tables(5, 7, 16, None, torch.float32)
    assert torch.equal(cos, fresh[0]) and torch.equal(sin, fresh[1])
    assert reference.rope_2d_tables(7, 5, 16)[0] is not cos  # another grid, another entry
    assert reference.rope_2d_tables(5, 7, 16, dtype=torch.float64)[0].dtype == torch.float64
    for side in range(1, 3 * reference._ROPE_CACHE_SIZE):  # bounded
        reference.rope_2d_tables(side, side, 8)
    assert len(reference._ROPE_TABLES) == reference._ROPE_CACHE_SIZE


def test_rope_tables_cached_in_inference_mode_serve_training():
    from zoo.kernels.linear_attention import apply_rope_2d, reference
    reference._ROPE_TABLES.clear()
    with torch.inference_mode():
        cos, sin = reference.rope_2d_tables(3, 4, 8)
    assert not cos.is_inference()  # an inference tensor could not be saved for backward
    x = torch.randn(1, 2, 12, 8, requires_grad=True)
    apply_rope_2d(x, *reference.rope_2d_tables(3, 4, 8)).sum().backward()
    assert x.grad is not None


def test_rope_tables_are_not_cached_while_tracing():
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    from zoo.kernels.linear_attention import reference
    reference._ROPE_TABLES.clear()
    with FakeTensorMode():  # what torch.export traces with
        cos, _ = reference.rope_2d_tables(3, 4, 8)
    assert isinstance(cos, FakeTensor) and not reference._ROPE_TABLES
    assert type(reference.rope_2d_tables(3, 4, 8)[0]) is torch.Tensor


def test_rope_keeps_values_and_gives_contiguous_heads():
    """The rotation of token-minor heads (channels-first views) is (N, d)-contiguous, the SDPA's fast layout."""
    from zoo.kernels.linear_attention.reference import apply_rope_2d, rope_2d_tables, rotate_every_two
    x = torch.randn(2, 16, 7 * 5).view(2, 2, 8, 35).transpose(-1, -2)  # (B, heads, N, d), stride 1 along N
    cos, sin = rope_2d_tables(7, 5, 8)
    out = apply_rope_2d(x, cos, sin)
    assert out.is_contiguous()
    assert torch.equal(out, x * cos + rotate_every_two(x) * sin)  # the sum commutes exactly
