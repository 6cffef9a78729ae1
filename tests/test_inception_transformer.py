"""Inception Transformer against the official implementation's golden fixtures.

The fixtures (iformer.md §8) run the official `InceptionTransformer` with a shrunk
configuration: `iformer__tiny_cfg` at its img_size (64), `iformer__tiny_cfg_res96`
with the same weights at 96x96 (position embeddings resized at run time).
"""
from __future__ import annotations

import argparse
import math

import pytest
import timm
import torch
import torch.nn.functional as F
from golden import Golden, load_golden

import zoo
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.inception_transformer import LowMixer, checkpoint_filter_fn, resample_pos_embed

FIXTURES = ["iformer__tiny_cfg", "iformer__tiny_cfg_res96"]
VARIANT = "inception_transformer_small"  # the fixtures' shapes come from kwargs


def zoo_kwargs(golden: Golden, **overrides) -> dict:
    """The official constructor arguments of a fixture, in this model's terms."""
    c = golden.constructor
    assert c["use_layer_scale"], "official factories all use layer scale (stages 3-4)"
    ls = c["layer_scale_init_value"]
    kwargs = dict(
        img_size=c["img_size"], num_classes=c["num_classes"], embed_dims=c["embed_dims"], depths=c["depths"],
        num_heads=c["num_heads"], attention_heads=c["attention_heads"], layer_scale_init_values=(None, None, ls, ls),
        drop_path_rate=c["drop_path_rate"])
    return {**kwargs, **overrides}


def build(golden: Golden, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return zoo.create_model(VARIANT, **zoo_kwargs(golden, **overrides)).eval()


def loaded(golden: Golden, **overrides) -> torch.nn.Module:
    model = build(golden, **overrides)
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    return model


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_official(name):
    golden = load_golden(name)
    model = loaded(golden)
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_matches_official_with_the_math_attention_path():
    golden = load_golden("iformer__tiny_cfg_res96")
    model = loaded(golden)
    mixers = [m for m in model.modules() if isinstance(m, LowMixer)]
    assert len(mixers) == sum(golden.constructor["depths"])
    for m in mixers:
        m.fused_attn = False
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_checkpoint_at_another_resolution_is_resampled_as_the_official_forward_does():
    """The img_size=64 weights in a model built for 96: the filter resizes each pos_embed to
    the 96 grids (24/12/6/3) and the output is the official model's at 96x96."""
    golden = load_golden("iformer__tiny_cfg_res96")
    model = build(golden, img_size=96)
    state = checkpoint_filter_fn(golden.state_dict, model)
    assert [tuple(state[f"stages.{i}.pos_embed"].shape[1:3]) for i in range(4)] == [(24, 24), (12, 12), (6, 6), (3, 3)]
    model.load_state_dict(state)
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def official_release(state_dict: dict) -> dict:
    """The released Hugging Face files (sail/dl2 iformer/*.pth): a bare state dict."""
    return dict(state_dict)


def timm_train_checkpoint(state_dict: dict) -> dict:
    """What the official train.py (timm's CheckpointSaver) writes as model_best.pth.tar."""
    return {
        "epoch": 309,
        "arch": "iformer_small",
        "state_dict": {f"module.{k}": v for k, v in state_dict.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-6, "params": [0]}]},
        "version": 2,
        "args": argparse.Namespace(model="iformer_small", lr=1e-3, drop_path=0.2),
        "metric": 83.354,
    }


@pytest.mark.parametrize("wrap", [official_release, timm_train_checkpoint])
@pytest.mark.parametrize("name", FIXTURES)
def test_official_file_loads_through_pretrained_path(name, wrap, tmp_path):
    golden = load_golden(name)
    path = tmp_path / "iformer.pth"
    torch.save(wrap(golden.state_dict), path)
    with torch.serialization.safe_globals([argparse.Namespace]):
        torch.load(path, weights_only=True, map_location="cpu")
    num_classes = golden.constructor["num_classes"]
    model = timm.create_model(
        VARIANT, pretrained=True, pretrained_cfg_overlay=dict(file=str(path), num_classes=num_classes),
        **zoo_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_pretrained_path_adapts_the_first_conv_to_one_channel(tmp_path):
    golden = load_golden("iformer__tiny_cfg")
    path = tmp_path / "iformer.pth"
    torch.save(golden.state_dict, path)
    overlay = dict(file=str(path), num_classes=golden.constructor["num_classes"])
    gray = timm.create_model(VARIANT, pretrained=True, pretrained_cfg_overlay=overlay,
                             **zoo_kwargs(golden, in_chans=1)).eval()
    rgb = loaded(golden)
    x = golden.input[:, :1]
    with torch.no_grad():  # timm sums the RGB filters: one gray channel = three equal ones
        torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4)


def test_pretrained_path_with_another_num_classes_drops_the_classifier(tmp_path):
    golden = load_golden("iformer__tiny_cfg")
    path = tmp_path / "iformer.pth"
    torch.save(golden.state_dict, path)
    model = timm.create_model(VARIANT, pretrained=True, pretrained_cfg_overlay=dict(file=str(path), num_classes=10),
                              **zoo_kwargs(golden, num_classes=3)).eval()
    reference = loaded(golden)
    with torch.no_grad():
        assert model(golden.input).shape == (2, 3)
        torch.testing.assert_close(model.forward_features(golden.input), reference.forward_features(golden.input))


def test_features_only_gives_the_stage_outputs():
    golden = load_golden("iformer__tiny_cfg")
    classifier = loaded(golden)
    backbone = build(golden, features_only=True)
    backbone.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, backbone.model))
    assert backbone.feature_info.reduction() == [4, 8, 16, 32]
    assert backbone.feature_info.channels() == golden.constructor["embed_dims"]
    with torch.no_grad():
        features = backbone(golden.input)
        final = classifier.forward_features(golden.input)
    assert [tuple(f.shape) for f in features] == [(2, 32, 16, 16), (2, 64, 8, 8), (2, 96, 4, 4), (2, 128, 2, 2)]
    # The last stage through the official final LayerNorm, pooled and classified, is the official logits.
    torch.testing.assert_close(classifier.norm(features[-1].permute(0, 2, 3, 1)), final)
    golden.assert_close(classifier.head.fc(classifier.norm(features[-1].permute(0, 2, 3, 1)).mean((1, 2))))


def test_features_only_loads_an_official_file(tmp_path):
    golden = load_golden("iformer__tiny_cfg")
    path = tmp_path / "iformer.pth"
    torch.save(golden.state_dict, path)
    backbone = timm.create_model(VARIANT, features_only=True, out_indices=(1, 3), pretrained=True,
                                 pretrained_cfg_overlay=dict(file=str(path)), **zoo_kwargs(golden)).eval()
    classifier = loaded(golden)
    with torch.no_grad():
        features = backbone(golden.input)
        expected = classifier.forward_intermediates(golden.input, indices=[1, 3], intermediates_only=True)
    assert len(features) == 2
    for f, e in zip(features, expected):
        torch.testing.assert_close(f, e)


def test_checkpoint_mismatch_lists_the_keys():
    golden = load_golden("iformer__tiny_cfg")
    model = build(golden)
    state = dict(golden.state_dict)
    del state["blocks3.1.layer_scale_1"]
    state["blocks1.0.layer_scale_1"] = torch.ones(32)  # stages 1-2 have no layer scale
    with pytest.raises(CheckpointMismatchError) as err:
        checkpoint_filter_fn(state, model)
    message = str(err.value)
    assert "missing" in message and "stages.2.blocks.1.ls1.gamma" in message
    assert "unexpected" in message and "stages.0.blocks.0.ls1.gamma" in message


def test_official_checkpoint_of_another_width_names_the_shapes():
    golden = load_golden("iformer__tiny_cfg")
    model = build(golden, attention_heads=[1, 2, 3, 4, 5])  # stage 4: 5 attention heads, not 6
    with pytest.raises(CheckpointMismatchError, match=r"stages\.3\.blocks\.0\.attn\.low_mixer\.qkv\.weight: "
                                                      r"checkpoint \(288, 96\) vs model \(240, 80\)"):
        checkpoint_filter_fn(golden.state_dict, model)


def test_layer_norms_use_official_eps_and_layer_scale_only_in_stages_3_and_4():
    """eps 1e-6 (the fixtures cannot see 1e-5, iformer.md §8); layer scale 1e-6 in stages 3-4."""
    golden = load_golden("iformer__tiny_cfg")
    model = build(golden)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * sum(golden.constructor["depths"]) + 1
    assert {m.eps for m in norms} == {1e-6}
    scales = {n: p for n, p in model.named_parameters() if n.endswith(".gamma")}
    assert sorted({n.split(".")[1] for n in scales}) == ["2", "3"]
    assert all(torch.equal(p, torch.full_like(p, 1e-6)) for p in scales.values())


def _bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Rows of weights of bilinear resizing with align_corners=False (half-pixel centres)."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        m[i, i0] += 1 - (src - i0)
        m[i, i1] += src - i0
    return m


@pytest.mark.parametrize("grid", [(24, 24), (8, 32), (6, 10)])
def test_pos_embed_resize_is_bilinear_on_the_stage_grid(grid):
    torch.manual_seed(0)
    pos = torch.randn(1, 16, 16, 32, dtype=torch.float64)
    expected = torch.einsum("ya,xb,nabc->nyxc", _bilinear_matrix(16, grid[0]), _bilinear_matrix(16, grid[1]), pos)
    torch.testing.assert_close(resample_pos_embed(pos, grid), expected)
    stage = build(load_golden("iformer__tiny_cfg")).stages[0].double()
    stage.pos_embed.data.copy_(pos)
    torch.testing.assert_close(stage._pos_embed(*grid), expected)


def _reference_low_mixer(mixer: LowMixer, x: torch.Tensor) -> torch.Tensor:
    """The low-frequency mixer written token by token: pool, per-head softmax attention,
    each token's (head, head_dim) channels written back at its (row, col), nearest upsample."""
    p = mixer.pool_size
    pooled = F.avg_pool2d(x, p) if p > 1 else x
    B, C, h, w = pooled.shape
    heads, d = mixer.num_heads, C // mixer.num_heads
    tokens = [pooled[:, :, i, j] for i in range(h) for j in range(w)]  # row-major
    qkv = torch.stack([mixer.qkv(t) for t in tokens], dim=1)  # (B, N, 3C)
    out = torch.zeros_like(pooled)
    for head in range(heads):
        q, k, v = (qkv[..., s * C + head * d: s * C + (head + 1) * d] for s in range(3))
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1)
        y = attn @ v
        for n in range(h * w):
            out[:, head * d:(head + 1) * d, n // w, n % w] = y[:, n]
    return out.repeat_interleave(p, 2).repeat_interleave(p, 3) if p > 1 else out


@pytest.mark.parametrize("pool_size", [2, 1])
@pytest.mark.parametrize("size", [(8, 8), (8, 12), (6, 4)])
def test_low_mixer_on_square_and_non_square_grids(size, pool_size):
    torch.manual_seed(0)
    mixer = LowMixer(24, num_heads=3, pool_size=pool_size).double().eval()
    x = torch.randn(2, 24, *size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x), _reference_low_mixer(mixer, x))


def test_non_square_input_runs_where_official_needs_square():
    """64x128 (stage grids 16x32 ... 2x4) and 32x128, whose stage-1 grid 8x32 has the area of the
    16x16 embedding, so the official area test would skip the resize and fail to add it."""
    golden = load_golden("iformer__tiny_cfg")
    model = loaded(golden)
    x = torch.randn(3, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
        feats = model.forward_intermediates(x, intermediates_only=True)
        torch.testing.assert_close(model(x[1:2]), out[1:2], atol=1e-5, rtol=1e-5)
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 32), (8, 16), (4, 8), (2, 4)]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 128)).shape == (1, 10)


@pytest.mark.parametrize("size", [(40, 40), (64, 40), (52, 64), (60, 60)])
def test_sizes_the_pooled_attention_cannot_take_are_rejected(size):
    golden = load_golden("iformer__tiny_cfg")
    model = build(golden)
    with pytest.raises(ValueError, match=rf"multiples of 16; got {size[0]}x{size[1]}"):
        model(torch.randn(1, 3, *size))


@pytest.mark.parametrize("size", [(62, 62), (61, 61), (224, 224)])
def test_sizes_the_official_model_takes_are_accepted(size):
    """Stage-1/2 grids ceil(H/4), ceil(H/8) even: not only multiples of 16 (the official code runs them)."""
    model = build(load_golden("iformer__tiny_cfg"))
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 10)


def test_invalid_split_is_a_clear_error():
    golden = load_golden("iformer__tiny_cfg")
    with pytest.raises(ValueError, match="attention_head"):
        build(golden, attention_heads=[2, 2, 3, 4, 6])  # stage 1: all 2 heads to attention
    with pytest.raises(ValueError, match="one entry per block"):
        build(golden, attention_heads=[1, 2, 3])


def test_default_cfgs_point_at_the_official_weights():
    for name in zoo.list_models("inception_transformer_*"):
        cfg = timm.models.get_pretrained_cfg(name)
        size = 384 if name.endswith("_384") else 224
        official = "iformer_" + name[len("inception_transformer_"):] + ".pth"
        assert cfg.hf_hub_id == "sail/dl2" and cfg.hf_hub_filename == f"iformer/{official}"
        assert cfg.url == f"https://huggingface.co/sail/dl2/resolve/main/iformer/{official}"
        assert cfg.input_size == (3, size, size) and cfg.crop_pct == (0.9 if size == 224 else 1.0)
        assert cfg.interpolation == "bicubic"
