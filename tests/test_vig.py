"""ViG / ViG-H against the official implementation's golden fixtures, and their checkpoints."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from golden import Golden, load_golden

import zoo
from zoo.layers.gla import BidirectionalGLA
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.vig import checkpoint_filter_fn

PLAIN_FIXTURES = ["vig__tiny_cfg", "vig__tiny_cfg_sb_nonsquare"]


def plain_kwargs(golden: Golden) -> dict:
    c = golden.constructor
    assert (c["patch_size"], c["expand_k"], c["expand_v"], c["if_cls_token"]) == (16, 0.5, 1.0, False)
    assert (c["classification_mode"], c["patch_embed_version"], c["use_swiglu"]) == ("avgpool", "v2", True)
    return dict(img_size=c["img_size"], embed_dim=c["embed_dim"], depth=c["depth"], num_heads=c["num_heads"],
                act_in_conv=c["use_act_in_conv"], out_act=c["use_out_act"], drop_path_rate=0.0)


def hier_kwargs(golden: Golden) -> dict:
    c = golden.constructor
    assert (c["norm_layer"], c["downsample_version"], c["patchembed_version"], c["gmlp"]) == ("ln2d", "v3", "v2", True)
    assert not c["use_out_act"] and not c["use_act_in_conv"]
    return dict(embed_dims=c["dims"], depths=c["depths"], num_heads=c["num_heads"], drop_path_rate=0.0)


def build_plain(golden: Golden, **kwargs) -> torch.nn.Module:
    return zoo.create_model("vig_t", num_classes=golden.constructor["num_classes"], **plain_kwargs(golden), **kwargs)


def build_hier(golden: Golden, **kwargs) -> torch.nn.Module:
    return zoo.create_model("vig_h_t", num_classes=golden.constructor["num_classes"], **hier_kwargs(golden), **kwargs)


def build_backbone(golden: Golden, **kwargs) -> torch.nn.Module:
    return zoo.create_model("vig_h_t", features_only=True, out_indices=tuple(golden.constructor["out_indices"]),
                            **hier_kwargs(golden), **kwargs)


def concat(features: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([f.flatten(1) for f in features], dim=1)


@pytest.mark.parametrize("name", PLAIN_FIXTURES)
def test_vig_matches_official(name):
    golden = load_golden(name)
    model = build_plain(golden).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_vig_h_matches_official():
    golden = load_golden("vig__h_tiny_cfg")
    model = build_hier(golden).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_vig_h_features_only_matches_official_backbone():
    golden = load_golden("vig__h_tiny_cfg_det_backbone")
    backbone = build_backbone(golden).eval()
    backbone.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, backbone.model))
    with torch.no_grad():
        features = backbone(golden.input)
    assert [tuple(f.shape) for f in features] == [tuple(s) for s in golden.meta["output_shapes"]]
    assert backbone.feature_info.reduction() == [4, 8, 16, 32]
    golden.assert_close(concat(features))


def test_train_and_eval_compute_the_same_function():
    """One definition: the official code switches kernels (and, in plain ViG, the merge divisor)."""
    golden = load_golden("vig__tiny_cfg")
    model = build_plain(golden)
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        golden.assert_close(model.train()(golden.input))


def test_merge_divisor_defaults_follow_the_official_eval_path():
    assert {m.merge_divisor for m in zoo.create_model("vig_t", depth=1).modules()
            if isinstance(m, BidirectionalGLA)} == {4.0}
    h = zoo.create_model("vig_h_t", depths=(1, 1, 1, 1))
    assert {m.merge_divisor for m in h.modules() if isinstance(m, BidirectionalGLA)} == {2.0}


def test_norm_eps_are_official():
    """RMSNorm 1e-6, LayerNorm(2d) 1e-5: the fixtures cannot see these (vig.md §2, §2.6)."""
    plain = zoo.create_model("vig_t", depth=2)
    rms = [m for m in plain.modules() if type(m).__name__ == "RmsNorm"]
    assert len(rms) == 2 * 2 + 2 * 2 + 1 and {m.eps for m in rms} == {1e-6}
    hier = zoo.create_model("vig_h_t", depths=(1, 1, 1, 1), features_only=True)
    lns = [m for m in hier.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(lns) == 2 + 3 + 2 * 4 + 4 and {m.eps for m in lns} == {1e-5}


def official_file(model_state: dict, ema_state: dict | None = None) -> dict:
    """What the official save_checkpoint_ema writes for the best checkpoints."""
    out = {"model": dict(model_state)}
    if ema_state is not None:
        out.update(model_ema=dict(ema_state), max_accuray_ema=81.0)
    return out


def test_official_file_loads_through_pretrained_path_and_prefers_ema(tmp_path):
    golden = load_golden("vig__tiny_cfg")
    raw = {k: v + 0.5 if k == "head.bias" else v for k, v in golden.state_dict.items()}
    path = tmp_path / "vig_t.pth"
    torch.save(official_file(raw, ema_state=golden.state_dict), path)
    n = golden.constructor["num_classes"]
    model = timm.create_model("vig_t", pretrained=True, num_classes=n,
                              pretrained_cfg_overlay=dict(file=str(path), num_classes=n), **plain_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_official_vig_h_file_loads_through_pretrained_path(tmp_path):
    golden = load_golden("vig__h_tiny_cfg")
    path = tmp_path / "vig_h_t.pth"
    torch.save(official_file({f"module.{k}": v for k, v in golden.state_dict.items()}), path)
    n = golden.constructor["num_classes"]
    model = timm.create_model("vig_h_t", pretrained=True, num_classes=n,
                              pretrained_cfg_overlay=dict(file=str(path), num_classes=n), **hier_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_dense_backbone_file_loads_through_pretrained_features_only(tmp_path):
    golden = load_golden("vig__h_tiny_cfg_det_backbone")
    path = tmp_path / "backbone.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in golden.state_dict.items()}}, path)
    backbone = timm.create_model("vig_h_t", features_only=True, pretrained=True,
                                 pretrained_cfg_overlay=dict(file=str(path)), **hier_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(concat(backbone(golden.input)))


def test_features_only_accepts_a_classification_checkpoint():
    classifier = load_golden("vig__h_tiny_cfg")
    backbone = build_backbone(load_golden("vig__h_tiny_cfg_det_backbone")).eval()
    state = checkpoint_filter_fn(classifier.state_dict, backbone.model)
    assert not any(k.startswith("head.") for k in state)
    backbone.model.load_state_dict(state)
    assert torch.equal(state["feature_norms.2.weight"], torch.ones(96))
    assert torch.equal(state["feature_norms.2.bias"], torch.zeros(96))


def test_vig_h_legacy_keys_and_4d_linear_weights():
    """HierViG._load_from_state_dict's old names, and Linear2d weights saved as (out, in, 1, 1)."""
    golden = load_golden("vig__h_tiny_cfg")
    legacy = {}
    for key, value in golden.state_dict.items():
        key = key.replace("patch_embed.0.", "patch_embed.proj.").replace(".blocks.0.norm.", ".blocks.0.ln_1.")
        key = key.replace(".op.", ".self_attention.").replace("classifier.", "")
        if key.endswith(("qkv_proj.weight", "mlp.fc1.weight")):
            value = value[:, :, None, None]
        legacy[key] = value
    assert "head.weight" in legacy and "norm.weight" in legacy
    model = build_hier(golden).eval()
    model.load_state_dict(checkpoint_filter_fn(legacy, model))
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_checkpoint_position_embedding_is_resized_bicubically():
    golden = load_golden("vig__tiny_cfg")
    model = zoo.create_model("vig_t", **{**plain_kwargs(golden), "img_size": 128}, num_classes=10)
    state = checkpoint_filter_fn(golden.state_dict, model)
    grid = golden.state_dict["pos_embed"].reshape(1, 6, 6, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(state["pos_embed"], expected)


def test_checkpoint_mismatch_lists_the_keys():
    golden = load_golden("vig__tiny_cfg")
    model = build_plain(golden)
    state = dict(golden.state_dict)
    del state["blocks.1.attn.g_norm.weight"]
    state["blocks.1.attn.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        checkpoint_filter_fn(state, model)
    message = str(err.value)
    assert "missing" in message and "blocks.1.attn.g_norm.weight" in message
    assert "unexpected" in message and "blocks.1.attn.extra.weight" in message


def test_vig_h_features_non_square():
    model = zoo.create_model("vig_h_t", depths=(1, 1, 1, 1), features_only=True).eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in features] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert model.feature_info.channels() == [96, 192, 384, 768]


def test_vig_resamples_its_position_embedding():
    """Other resolutions: the stored 14x14 embedding is resized to the token grid, not cropped."""
    model = zoo.create_model("vig_t", depth=1).eval()
    with torch.no_grad():
        tokens = model.forward_features(torch.randn(1, 3, 160, 96))
        maps = model.forward_intermediates(torch.randn(1, 3, 160, 96), intermediates_only=True)
    assert tokens.shape == (1, 10 * 6, 192)
    assert maps[0].shape == (1, 192, 10, 6)
