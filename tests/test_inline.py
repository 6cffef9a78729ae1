"""InLine DeiT / Swin / PVT / CSwin against the official implementation's golden fixtures."""
from __future__ import annotations

import pickle
import shutil
import sys
import types

import pytest
import timm
import torch
import torch.nn.functional as F
from golden import Golden, load_golden

import zoo
import zoo.pretrained as pretrained
from zoo.layers.inline_attention import DynamicLocalConv, dynamic_depthwise_conv3x3, linear_attention
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.inline import checkpoint_filter_fn

FIXTURES = ["inline__deit_tiny_cfg", "inline__swin_tiny_cfg", "inline__pvt_tiny_cfg", "inline__cswin_tiny_cfg"]


def zoo_args(golden: Golden) -> tuple[str, dict]:
    """The registered variant and keyword arguments that rebuild a fixture's official constructor."""
    c = golden.constructor
    backbone = golden.name.split("__")[1].split("_")[0]
    common = dict(img_size=c["img_size"], num_classes=c["num_classes"], drop_path_rate=0.0)
    if backbone == "deit":
        assert c["mlp_ratio"] == 4 and c["qkv_bias"]
        return "inline_deit_tiny", dict(common, patch_size=c["patch_size"], embed_dim=c["embed_dim"],
                                        depth=c["depth"], num_heads=c["num_heads"])
    if backbone == "swin":
        assert c["mlp_ratio"] == 4 and c["qkv_bias"] and not c["ape"] and c["patch_norm"]
        return "inline_swin_tiny", dict(common, patch_size=c["patch_size"], embed_dim=c["embed_dim"],
                                        depths=c["depths"], num_heads=c["num_heads"], window_size=c["window_size"],
                                        attn_type=c["attn_type"])
    if backbone == "pvt":
        assert c["patch_size"] == 4 and c["attn_type"] == "IIII" and c["la_sr_ratios"] == "1111"
        return "inline_pvt_tiny", dict(common, embed_dims=c["embed_dims"], depths=c["depths"],
                                       num_heads=c["num_heads"], mlp_ratios=c["mlp_ratios"])
    assert c["la_split_size"] == "-".join(str(c["img_size"] // 2 ** (i + 2)) for i in range(4)), "InLine not global"
    return "inline_cswin_tiny", dict(common, embed_dim=c["embed_dim"], depths=c["depth"], num_heads=c["num_heads"],
                                     split_size=c["split_size"], attn_type=c["attn_type"])


def build(golden: Golden, **kwargs) -> torch.nn.Module:
    name, args = zoo_args(golden)
    return zoo.create_model(name, **{**args, **kwargs}).eval()


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_official(name):
    golden = load_golden(name)
    model = build(golden)
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_swin_shifted_mask_is_the_official_one():
    """-100 between tokens of different cyclic-shift regions of a window, 0 within (official rule)."""
    golden = load_golden("inline__swin_tiny_cfg")
    model = build(golden)
    block = model.stages[2].blocks[1]  # 14x14 map, window 7, shift 3 (IIMS1: block 1 of stage 3)
    assert block.window_size == (7, 7) and block.shift_size == (3, 3)
    h = w = 14
    ws, shift = 7, 3
    bounds = lambda n: [0] * (n - ws) + [1] * (ws - shift) + [2] * shift  # noqa: E731
    region = torch.tensor([[3 * a + b for b in bounds(w)] for a in bounds(h)])
    windows = region.reshape(h // ws, ws, w // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    expected = torch.where(windows[:, :, None] == windows[:, None, :], 0.0, -100.0)
    torch.testing.assert_close(block.attn_mask, expected)
    assert [b.attn_mask is None for b in model.stages[2].blocks[1:]] == [False, True]


def test_swin_fixture_holds_the_mask_the_model_builds():
    """The official file's `attn_mask` (dropped by the filter) is the mask the zoo rebuilds from the geometry."""
    golden = load_golden("inline__swin_tiny_cfg")
    model = build(golden)
    masks = {k: v for k, v in golden.state_dict.items() if k.endswith("attn_mask")}
    assert masks, "the Swin fixture stores the shifted blocks' masks"
    for key, mask in masks.items():
        stage, block = int(key.split(".")[1]), int(key.split(".")[3])
        torch.testing.assert_close(model.stages[stage].blocks[block].attn_mask, mask, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("name", ["inline__swin_tiny_cfg", "inline__pvt_tiny_cfg", "inline__cswin_tiny_cfg"])
def test_features_only_loads_classifier_checkpoint(name):
    golden = load_golden(name)
    model = build(golden, features_only=True)
    model.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model.model))
    patch = golden.constructor["patch_size"]  # the Swin fixture's patch 2 gives the official 224 grids at 112
    reductions = [patch * 2 ** i for i in range(4)]
    assert model.feature_info.reduction() == reductions
    size = golden.input.shape[-1]
    with torch.no_grad():
        features = model(golden.input)
    assert [tuple(f.shape[-2:]) for f in features] == [(size // r, size // r) for r in reductions]
    assert [f.shape[1] for f in features] == model.feature_info.channels()


class _FakeCfgNode(dict):
    """Pickles like yacs' CfgNode (a dict subclass with attributes) under the name yacs.config.CfgNode."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__["__immutable__"] = False
        self.__dict__["__new_allowed__"] = False


def official_training_checkpoint(state_dict: dict, path, ema: dict | None = None) -> None:
    """What the official main.py / main_ema.py save: raw weights, training state, the yacs config."""
    module = types.ModuleType("yacs.config")
    _FakeCfgNode.__module__, _FakeCfgNode.__qualname__ = "yacs.config", "CfgNode"
    module.CfgNode = _FakeCfgNode
    sys.modules.update({"yacs": types.ModuleType("yacs"), "yacs.config": module})
    try:
        config = _FakeCfgNode(MODEL=_FakeCfgNode(TYPE="inline_swin", DROP_PATH_RATE=0.2), TAG="default")
        checkpoint = {
            "model": dict(state_dict),
            "optimizer": {"state": {}, "param_groups": [{"lr": 5e-6, "params": [0]}]},
            "lr_scheduler": {"t_initial": 300, "base_values": [5e-4]},
            "max_accuracy": 82.4, "epoch": 299, "config": config,
        }
        if ema is not None:
            checkpoint.update(state_dict_ema=dict(ema), max_accuracy_e=82.5)
        torch.save(checkpoint, path)
    finally:
        del sys.modules["yacs"], sys.modules["yacs.config"]
    with pytest.raises(pickle.UnpicklingError, match="CfgNode"):
        torch.load(path, weights_only=True)  # the pickled config is what the loader must allow


@pytest.mark.parametrize("name", FIXTURES)
def test_official_file_loads_through_pretrained_path(name, tmp_path):
    golden = load_golden(name)
    path = tmp_path / "official.pth"
    official_training_checkpoint(golden.state_dict, path)
    variant, kwargs = zoo_args(golden)
    model = timm.create_model(
        variant, pretrained=True, pretrained_cfg_overlay=dict(file=str(path), num_classes=kwargs["num_classes"]),
        **kwargs).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_cswin_file_with_ema_loads_the_ema_weights(tmp_path):
    """main_ema.py saves `state_dict_ema` beside `model`; the zoo's loader takes the EMA for CSwin."""
    golden = load_golden("inline__cswin_tiny_cfg")
    raw = {k: v + 1.0 if k.startswith("head.") else v for k, v in golden.state_dict.items()}
    path = tmp_path / "cswin_ema.pth"
    official_training_checkpoint(raw, path, ema=golden.state_dict)
    variant, kwargs = zoo_args(golden)
    model = timm.create_model(
        variant, pretrained=True, pretrained_cfg_overlay=dict(file=str(path), num_classes=10), **kwargs).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_pretrained_downloads_the_share_link_under_a_file_name(tmp_path, monkeypatch):
    """Tsinghua share links have no file name in their path; the file is saved under one, then reused."""
    golden = load_golden("inline__pvt_tiny_cfg")
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    official = tmp_path / "official.pth"
    official_training_checkpoint(golden.state_dict, official)
    calls = []

    def fake_download(url, destination, progress=True):
        calls.append(url)
        shutil.copy(official, destination)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    variant, kwargs = zoo_args(golden)
    for _ in range(2):
        model = timm.create_model(variant, pretrained=True, pretrained_cfg_overlay=dict(num_classes=10), **kwargs)
    assert calls == ["https://cloud.tsinghua.edu.cn/f/90ac52b1555b401eb5e6/?dl=1"]
    assert (tmp_path / "weights" / "inline_pvt_tiny.pth").is_file()
    with torch.no_grad():
        golden.assert_close(model.eval()(golden.input))


def test_checkpoint_mismatch_lists_the_keys():
    golden = load_golden("inline__pvt_tiny_cfg")
    model = build(golden)
    state = dict(golden.state_dict)
    del state["block2.0.attn.q.weight"]
    state["block1.0.attn.residual.2.weight"] = state["block1.0.attn.residual.2.weight"].squeeze(-1)
    with pytest.raises(CheckpointMismatchError) as err:
        checkpoint_filter_fn(state, model)
    message = str(err.value)
    assert "missing" in message and "stages.1.blocks.0.attn.q.weight" in message
    assert "stages.0.blocks.0.attn.residual.2.weight: checkpoint (144, 16) vs model (144, 16, 1)" in message


@pytest.mark.parametrize("name", FIXTURES)
def test_converted_state_dict_loads_again(name):
    golden = load_golden(name)
    model = build(golden)
    state = checkpoint_filter_fn(golden.state_dict, model)
    again = checkpoint_filter_fn({"state_dict": {f"module.{k}": v for k, v in state.items()}}, model)
    assert again.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)


def test_deit_pos_embed_is_resampled_for_another_size():
    golden = load_golden("inline__deit_tiny_cfg")
    model = build(golden, img_size=128)
    state = checkpoint_filter_fn(golden.state_dict, model)
    assert state["pos_embed"].shape == (1, 1 + 8 * 8, 64)
    torch.testing.assert_close(state["pos_embed"][:, :1], golden.state_dict["pos_embed"][:, :1])
    model.load_state_dict(state)


def test_swin_bias_tables_are_resized_for_a_larger_window():
    golden = load_golden("inline__swin_tiny_cfg")
    model = build(golden, img_size=192, window_size=96)  # maps 96..12, softmax window 12 (as at 384 with patch 4)
    state = checkpoint_filter_fn(golden.state_dict, model)
    key = "stages.3.blocks.0.attn.relative_position_bias_table"
    old = golden.state_dict["layers.3.blocks.0.attn.relative_position_bias_table"]  # (13 * 13, heads)
    # The official Swin load_pretrained: bicubic interpolation of each head's (2w-1) x (2w-1) grid.
    expected = F.interpolate(old.T.reshape(1, -1, 13, 13), size=(23, 23), mode="bicubic").reshape(-1, 23 * 23).T
    assert state[key].shape == (23 * 23, 8)
    torch.testing.assert_close(state[key], expected, atol=1e-6, rtol=1e-6)
    model.load_state_dict(state)


def test_layer_norm_eps_follow_the_official_files():
    """DeiT 1e-6; Swin and CSwin 1e-5; PVT 1e-6 in blocks and 1e-5 after each patch embedding (§2)."""
    def eps(name, **kw):
        return sorted({m.eps for m in zoo.create_model(name, **kw).modules() if isinstance(m, torch.nn.LayerNorm)})
    assert eps("inline_deit_tiny", depth=1, embed_dim=32, num_heads=2) == [1e-6]
    assert eps("inline_swin_tiny", img_size=32, embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)) == [1e-5]
    assert eps("inline_cswin_tiny", img_size=32, embed_dim=8, depths=(1, 1, 1, 1), num_heads=(2, 2, 2, 2)) == [1e-5]
    pvt = zoo.create_model("inline_pvt_tiny", embed_dims=(8, 8, 8, 8), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1))
    assert {m.eps for m in pvt.stages[0].blocks.modules() if isinstance(m, torch.nn.LayerNorm)} == {1e-6}
    assert pvt.stages[0].patch_embed.norm.eps == 1e-5


# --------------------------------------------------------------------------- the operator


def inline_by_definition(q, k, v):
    """sum_j w_ij v_j with w_ij = (s/n) q_i.k_j - (s/n) q_i.k_bar + 1/n (paper eq. 5, float64)."""
    q, k, v = (t.double() for t in (q, k, v))
    n, d = q.shape[-2:]
    s = d ** -0.5
    scores = q @ k.transpose(-2, -1)
    weights = (s / n) * scores - (s / n) * scores.mean(-1, keepdim=True) + 1 / n
    return weights @ v


def test_linear_attention_matches_the_definition():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 16, generator=g) for _ in range(3))
    k = k.transpose(1, 2).contiguous().transpose(1, 2)  # any strides
    out = linear_attention(q, k, v, variant="inline", impl="reference")  # the shared kernel's definition
    torch.testing.assert_close(out.double(), inline_by_definition(q, k, v), atol=1e-5, rtol=1e-5)
    weights_sum = inline_by_definition(q, k, torch.ones_like(v))
    torch.testing.assert_close(weights_sum, torch.ones_like(weights_sum))


def test_linear_attention_gradients():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 9, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda *t: linear_attention(*t, variant="inline"), (q, k, v))


def test_linear_attention_has_no_rope_for_inline():
    q = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="RoPE"):
        linear_attention(q, q, q, variant="inline", rope_hw=(2, 2))


TRITON_FIXTURE_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_inline import build, checkpoint_filter_fn, load_golden
golden = load_golden({name!r})
model = build(golden)
model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
with torch.no_grad():
    print(golden.assert_close(model(golden.input)))
"""


@pytest.mark.parametrize("name", ["inline__deit_tiny_cfg"])
def test_matches_official_on_the_triton_kernel(name):
    """Fixtures with head dim 16 through the fused Triton kernel (interpreted on CPU, compiled on a GPU)."""
    import os
    import subprocess
    from pathlib import Path
    env = {**os.environ, "ZOO_KERNELS_IMPL": "triton"}
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    script = TRITON_FIXTURE_SCRIPT.format(tests=str(Path(__file__).parent), name=name)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-4


def test_dynamic_conv_is_a_per_sample_depthwise_conv():
    g = torch.Generator().manual_seed(2)
    x, kernels = torch.randn(3, 4, 5, 6, generator=g), torch.randn(3, 4, 3, 3, generator=g)
    expected = torch.stack([F.conv2d(x[i:i + 1], kernels[i].unsqueeze(1), padding=1, groups=4)[0] for i in range(3)])
    torch.testing.assert_close(dynamic_depthwise_conv3x3(x, kernels), expected)


def test_shifted_form_is_the_grouped_conv_up_to_summation_order():
    """The export / empty-batch form against the eager one (groups = B*C): both sum the same nine float32
    products per output, in different orders, so each differs from the exact sum by at most
    gamma_9 = 9 eps / (1 - 9 eps) times sum |x k| (Higham's summation bound), and from each other by twice that."""
    from zoo.layers.inline_attention import shifted_depthwise_conv3x3
    g = torch.Generator().manual_seed(3)
    x, kernels = torch.randn(3, 5, 9, 7, generator=g) * 4, torch.randn(3, 5, 3, 3, generator=g)
    grouped, shifted = dynamic_depthwise_conv3x3(x, kernels), shifted_depthwise_conv3x3(x, kernels)
    eps = torch.finfo(torch.float32).eps
    magnitude = dynamic_depthwise_conv3x3(x.double().abs(), kernels.double().abs())
    assert ((grouped.double() - shifted.double()).abs() <= 2 * 9 * eps / (1 - 9 * eps) * magnitude).all()
    exact = dynamic_depthwise_conv3x3(x.double(), kernels.double())
    assert ((shifted.double() - exact).abs() <= 9 * eps / (1 - 9 * eps) * magnitude).all()


def test_dynamic_conv_takes_an_empty_batch():
    out = dynamic_depthwise_conv3x3(torch.randn(0, 4, 5, 6), torch.randn(0, 4, 3, 3))
    assert out.shape == (0, 4, 5, 6)


def test_dynamic_conv_exports_without_batch_dependent_groups():
    """torch.export with a dynamic batch traces the shifted form (ONNX's Conv `group` must be a constant)."""
    class Local(torch.nn.Module):
        def forward(self, x, kernels):
            return dynamic_depthwise_conv3x3(x, kernels)

    g = torch.Generator().manual_seed(4)
    batch = torch.export.Dim("batch")
    program = torch.export.export(Local(), (torch.randn(2, 4, 5, 6, generator=g), torch.randn(2, 4, 3, 3, generator=g)),
                                  dynamic_shapes=({0: batch}, {0: batch}))
    assert not [n for n in program.graph.nodes if "conv" in str(n.target)]
    x, kernels = torch.randn(3, 4, 5, 6, generator=g), torch.randn(3, 4, 3, 3, generator=g)
    from zoo.layers.inline_attention import shifted_depthwise_conv3x3
    assert torch.equal(program.module()(x, kernels), shifted_depthwise_conv3x3(x, kernels))


def test_dynamic_kernels_use_nine_consecutive_outputs_per_channel():
    torch.manual_seed(0)
    gen = DynamicLocalConv(4, num_heads=2)
    mean = torch.randn(1, 4)
    flat = gen(mean.unsqueeze(-1))[0, :, 0]  # (36,)
    x = torch.zeros(1, 4, 3, 3)
    x[0, 2, 1, 1] = 1.0  # an impulse in channel 2: the output is its kernel, flipped (cross-correlation)
    out = gen.local_residual(x, mean)
    torch.testing.assert_close(out[0, 2], flat[18:27].reshape(3, 3).flip(0, 1))
    assert out[0, [0, 1, 3]].abs().max() == 0


# --------------------------------------------------------------------------- resolutions


def tiny(name: str, **kwargs) -> torch.nn.Module:
    widths = dict(
        inline_swin_tiny=dict(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2)),
        inline_pvt_tiny=dict(embed_dims=(8, 8, 16, 16), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)),
        inline_cswin_tiny=dict(embed_dim=8, depths=(1, 1, 2, 1), num_heads=(2, 2, 2, 2)),
        inline_deit_tiny=dict(embed_dim=16, depth=1, num_heads=2),
    )[name]
    return zoo.create_model(name, **{**widths, **kwargs}).eval()


def test_swin_at_448_uses_shifted_56_windows_for_inline_blocks():
    model = tiny("inline_swin_tiny", img_size=448, features_only=True)
    blocks = model.model.stages[0].blocks
    assert [(b.window_size, b.shift_size) for b in blocks] == [(56, 0), (56, 28)]
    with torch.no_grad():
        features = model(torch.randn(1, 3, 448, 448))
    assert [tuple(f.shape[-2:]) for f in features] == [(112, 112), (56, 56), (28, 28), (14, 14)]


@pytest.mark.parametrize("name, kwargs, message", [
    ("inline_swin_tiny", dict(img_size=480), r"120x120 is not divisible by its InLine window 56"),
    ("inline_swin_tiny", dict(img_size=240, window_size=64),
     r"patch merging before stage 4 needs an even map, got 15x15"),
    ("inline_cswin_tiny", dict(img_size=256, split_size=(1, 2, 7, 7)), r"16x16 is not divisible by its stripe"),
    ("inline_cswin_tiny", dict(img_size=100), r"multiple of 32"),
    ("inline_deit_tiny", dict(img_size=(224, 160)), r"square img_size"),
])
def test_unsupported_geometry_is_a_clear_error(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(name, **kwargs)


@pytest.mark.parametrize("name, size", [("inline_cswin_tiny", 256), ("inline_swin_tiny", 64)])
def test_fixed_size_models_at_another_size(name, size):
    model = tiny(name, img_size=size, features_only=True)
    with torch.no_grad():
        features = model(torch.randn(1, 3, size, size))
    assert [f.shape[-1] for f in features] == [size // r for r in (4, 8, 16, 32)]
    with pytest.raises(ValueError, match=rf"takes {size}x{size} inputs"):
        model(torch.randn(1, 3, size + 32, size + 32))


def test_pvt_takes_non_square_inputs_and_interpolates_pos_embeds():
    model = tiny("inline_pvt_tiny", features_only=True)
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in features] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    stage = model.model.stages[1]
    native = stage._pos_embed(*stage.grid)
    torch.testing.assert_close(native.reshape(stage.pos_embed.shape), stage.pos_embed)
    expected = F.interpolate(stage.pos_embed.reshape(1, 28, 28, -1).permute(0, 3, 1, 2), size=(8, 12),
                             mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(stage._pos_embed(8, 12), expected)


def test_deit_dynamic_size_takes_other_square_inputs_only():
    model = tiny("inline_deit_tiny", dynamic_img_size=True)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    with pytest.raises(ValueError, match=r"square inputs.*64x96"):
        model(torch.randn(1, 3, 64, 96))


def test_variant_configs():
    cfgs = {n: timm.models.get_pretrained_cfg(n) for n in zoo.list_models("inline_*")}
    assert len(cfgs) == 15
    sizes = {n: c.input_size[-1] for n, c in cfgs.items()}
    assert sizes["inline_deit_small"] == 288 and sizes["inline_deit_base"] == 448
    assert sizes["inline_swin_base_384"] == sizes["inline_cswin_base_384"] == 384
    assert {n for n, c in cfgs.items() if not c.url} == {"inline_swin_base_384", "inline_cswin_base_384"}
    assert all(c.url.startswith("https://cloud.tsinghua.edu.cn/f/") for c in cfgs.values() if c.url)
    assert cfgs["inline_swin_base_384"].crop_pct == 1.0 and cfgs["inline_cswin_base_384"].crop_pct == 0.875
