"""PoolFormer v1 (official head on timm's MetaFormer) against the official implementation's fixtures."""
from __future__ import annotations

import pytest
import timm
import torch
from golden import Golden, load_golden
from safetensors.torch import save_file
from timm.layers import GroupNorm1
from timm.models.metaformer import MetaFormer
from timm.models.metaformer import checkpoint_filter_fn as timm_metaformer_filter
from torch import nn

import zoo
from zoo.layers.ggem import GGeM
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.poolformerv1 import checkpoint_filter_fn


def zoo_kwargs(golden: Golden) -> dict:
    """The official constructor arguments of a fixture, in this model's terms."""
    c = golden.constructor
    assert c["mlp_ratios"] == [4] * 4 and c["downsamples"] == [True] * 4 and c["pool_size"] == 3
    return dict(depths=c["layers"], dims=c["embed_dims"], layer_scale_init_value=c["layer_scale_init_value"],
                drop_path_rate=0.0)


def build_classifier(golden: Golden, **kwargs) -> torch.nn.Module:
    return zoo.create_model("poolformerv1_s12", num_classes=golden.constructor["num_classes"],
                            **zoo_kwargs(golden), **kwargs)


def build_backbone(golden: Golden, **kwargs) -> torch.nn.Module:
    return zoo.create_model("poolformerv1_s12", features_only=True, **zoo_kwargs(golden), **kwargs)


def timm_poolformer(golden: Golden) -> MetaFormer:
    """timm's own poolformer_s12 (its registered arguments) at the fixture's depths and widths."""
    return MetaFormer(**timm_model_kwargs(golden))


def timm_model_kwargs(golden: Golden) -> dict:
    c = golden.constructor
    return dict(
        depths=c["layers"], dims=c["embed_dims"], num_classes=c["num_classes"], downsample_norm=None,
        mlp_act=nn.GELU, mlp_bias=True, norm_layers=GroupNorm1, layer_scale_init_values=1e-5,
        res_scale_init_values=None, use_mlp_head=False)


def concat_features(features: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([f.flatten(1) for f in features], dim=1)


def test_classifier_matches_official():
    golden = load_golden("poolformer__tiny_cfg")
    model = build_classifier(golden).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_features_only_matches_official_backbone():
    golden = load_golden("poolformer__tiny_cfg_det_backbone")
    backbone = build_backbone(golden).eval()
    backbone.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, backbone.model))
    with torch.no_grad():
        features = backbone(golden.input)
    assert [tuple(f.shape) for f in features] == [tuple(s) for s in golden.meta["output_shapes"]]
    assert backbone.feature_info.channels() == golden.constructor["embed_dims"]
    assert backbone.feature_info.reduction() == [4, 8, 16, 32]
    golden.assert_close(concat_features(features))


def test_official_release_file_loads_through_pretrained_path(tmp_path):
    # The release .pth.tar files are bare state dicts under the official names (spec §7).
    golden = load_golden("poolformer__tiny_cfg")
    path = tmp_path / "poolformer_s12.pth.tar"
    torch.save(golden.state_dict, path)
    n = golden.constructor["num_classes"]
    model = timm.create_model("poolformerv1_s12", pretrained=True, num_classes=n,
                              pretrained_cfg_overlay=dict(file=str(path), num_classes=n), **zoo_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_timm_converted_weights_load_through_pretrained_path(tmp_path, monkeypatch):
    """`timm/poolformer_*.sail_in1k` layout: the official tensors under timm's names, made here
    with timm's own converter (timm.models.metaformer.checkpoint_filter_fn); the `.sail_in1k_timm`
    tag finds the hub repo's model.safetensors in the weights directory under the repo's name."""
    golden = load_golden("poolformer__tiny_cfg")
    timm_model = timm_poolformer(golden)
    converted = timm_metaformer_filter(golden.state_dict, timm_model)
    timm_model.load_state_dict(converted)  # strict: really timm's layout
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    path = tmp_path / "poolformer_s12.sail_in1k.safetensors"
    save_file({k: v.contiguous() for k, v in converted.items()}, str(path))
    model = timm.create_model("poolformerv1_s12.sail_in1k_timm", pretrained=True, num_classes=10,
                              pretrained_cfg_overlay=dict(num_classes=10), **zoo_kwargs(golden)).eval()
    assert model.pretrained_cfg["file"] == str(path)
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_timm_poolformer_head_differs_from_the_official_head():
    """Same weights in timm's poolformer_s12: trunk bit-identical, logits off (spec §2: 0.045)."""
    golden = load_golden("poolformer__tiny_cfg")
    with torch.device("meta"):  # the helper is timm's registered poolformer_s12, shrunk
        registered = timm.create_model("poolformer_s12", num_classes=10)
        full = MetaFormer(**{**timm_model_kwargs(golden), "depths": (2, 2, 6, 2), "dims": (64, 128, 320, 512)})
    assert str(registered) == str(full)
    assert [(k, v.shape) for k, v in registered.state_dict().items()] == \
        [(k, v.shape) for k, v in full.state_dict().items()]
    timm_model = timm_poolformer(golden).eval()
    timm_model.load_state_dict(timm_metaformer_filter(golden.state_dict, timm_model))
    model = build_classifier(golden).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        assert torch.equal(model.forward_features(golden.input), timm_model.forward_features(golden.input))
        timm_diff = (timm_model(golden.input) - golden.output).abs().max().item()
    assert 0.03 < timm_diff < 0.06, timm_diff  # measured 0.0454 by the fixture's generator


def test_mmdet_backbone_file_loads_through_pretrained_path(tmp_path):
    golden = load_golden("poolformer__tiny_cfg_det_backbone")
    path = tmp_path / "retinanet.pth"
    neck = {"neck.lateral_convs.0.conv.weight": torch.zeros(8, 16, 1, 1)}
    torch.save({"state_dict": {**{f"backbone.{k}": v for k, v in golden.state_dict.items()}, **neck},
                "meta": {"epoch": 12}}, path)
    with pytest.raises(CheckpointMismatchError, match="neck.lateral_convs"):
        timm.create_model("poolformerv1_s12", features_only=True, pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(path)), **zoo_kwargs(golden))
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in golden.state_dict.items()}}, path)
    backbone = timm.create_model("poolformerv1_s12", features_only=True, pretrained=True,
                                 pretrained_cfg_overlay=dict(file=str(path)), **zoo_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(concat_features(backbone(golden.input)))


def test_fork_last3_backbone_has_no_first_feature_norm():
    """Official FORK_LAST3 (RetinaNet): norm0 is Identity and absent from the checkpoint."""
    golden = load_golden("poolformer__tiny_cfg_det_backbone")
    state = {k: v for k, v in golden.state_dict.items() if not k.startswith("norm0.")}
    backbone = build_backbone(golden, first_feature_norm=False).eval()
    backbone.model.load_state_dict(checkpoint_filter_fn(state, backbone.model))
    full = build_backbone(golden).eval()
    full.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, full.model))
    with torch.no_grad():
        last3, normed = backbone(golden.input), full(golden.input)
        raw = full.model.forward_intermediates(golden.input, indices=[0], intermediates_only=True)[0]
    torch.testing.assert_close(last3[0], raw)
    for a, b in zip(last3[1:], normed[1:]):
        torch.testing.assert_close(a, b)


def test_features_only_accepts_a_classification_checkpoint():
    """A classifier's weights start a backbone: head dropped, feature norms at GroupNorm(1, 0)."""
    classifier = load_golden("poolformer__tiny_cfg")
    backbone = build_backbone(load_golden("poolformer__tiny_cfg_det_backbone")).eval()
    state = checkpoint_filter_fn(classifier.state_dict, backbone.model)
    assert not any(k.startswith("head.") for k in state)
    backbone.model.load_state_dict(state)
    assert torch.equal(state["feature_norms.0.weight"], torch.ones(16))
    assert torch.equal(state["feature_norms.0.bias"], torch.zeros(16))


def test_checkpoint_mismatch_lists_the_keys():
    golden = load_golden("poolformer__tiny_cfg")
    model = build_classifier(golden)
    state = dict(golden.state_dict)
    del state["network.2.0.mlp.fc1.weight"]
    state["network.2.0.mlp.fc3.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        checkpoint_filter_fn(state, model)
    message = str(err.value)
    assert "missing" in message and "stages.1.blocks.0.mlp.fc1.weight" in message
    assert "unexpected" in message and "stages.1.blocks.0.mlp.fc3.weight" in message


def test_group_norms_use_official_eps():
    """eps 1e-5 everywhere: the fixture cannot tell 1e-6 apart (1.5e-4 at atol 1e-4, spec §8)."""
    model = zoo.create_model("poolformerv1_s12", feature_norms=True)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == 2 * 12 + 1 + 4
    assert {(m.num_groups, m.eps) for m in norms} == {(1, 1e-5)}


def test_official_init_and_drop_path_schedule():
    torch.manual_seed(0)
    model = zoo.create_model("poolformerv1_s36")  # layer scale 1e-6, drop path 0.2 over 36 blocks
    # torch's default (kaiming-uniform, bound 1/sqrt(fan_in)) on stem and downsampling convs,
    # trunc_normal(0.02) on the MLP convs and the classifier (official init).
    assert model.stem.conv.weight.std() > 0.04  # 1/sqrt(147)/sqrt(3) = 0.048
    assert model.stages[1].downsample.conv.weight.std() > 0.015  # 1/sqrt(576)/sqrt(3) = 0.024
    assert abs(model.stages[1].blocks[0].mlp.fc1.weight.std() - 0.02) < 0.002
    assert abs(model.head.fc.weight.std() - 0.02) < 0.002 and not model.head.fc.bias.any()
    assert torch.equal(model.stages[0].blocks[0].layer_scale1.scale, torch.full((64,), 1e-6))
    rates = [b.drop_path1.drop_prob if hasattr(b.drop_path1, "drop_prob") else 0.0
             for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.2 * i / 35 for i in range(36)], abs=1e-6)


def test_head_is_groupnorm_on_the_map_then_mean_then_linear():
    torch.manual_seed(0)
    model = zoo.create_model("poolformerv1_s12", num_classes=5, depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)).eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        fmap = model.forward_features(x)
        mu = fmap.mean((1, 2, 3), keepdim=True)
        var = fmap.var((1, 2, 3), unbiased=False, keepdim=True)
        normed = (fmap - mu) / torch.sqrt(var + 1e-5) * model.head.norm.weight[:, None, None] \
            + model.head.norm.bias[:, None, None]
        expected = normed.mean((2, 3)) @ model.head.fc.weight.T + model.head.fc.bias
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.head(fmap), expected, atol=1e-5, rtol=1e-5)  # module order = forward order


def test_ggem_pooling_after_the_head_norm():
    golden = load_golden("poolformer__tiny_cfg")
    with pytest.raises(ValueError, match="ggem_groups"):
        build_classifier(golden, global_pool="ggem")
    model = build_classifier(golden, global_pool="ggem", ggem_groups=4).eval()
    # An official checkpoint (no p) loads: p keeps its init.
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    assert isinstance(model.head.global_pool, GGeM) and model.head.global_pool.p.tolist() == [3.0] * 4
    with torch.no_grad():
        model.head.global_pool.p.copy_(torch.tensor([1.5, 2.0, 3.0, 5.0]))
        normed = model.head.norm(model.forward_features(golden.input)).double()
        exps = torch.tensor([1.5, 2.0, 3.0, 5.0], dtype=torch.float64).repeat_interleave(16)[:, None]
        pooled = normed.flatten(2).clamp(min=1e-6).pow(exps).mean(-1).pow(1 / exps[:, 0])
        expected = model.head.fc(pooled.float())
        torch.testing.assert_close(model(golden.input), expected, atol=1e-5, rtol=1e-5)
        p = model.head.global_pool.p
        model.reset_classifier(3)
        assert model.head.global_pool.p is p and model(golden.input).shape == (2, 3)
        model.reset_classifier(3, "avg")
        assert not any(isinstance(m, GGeM) for m in model.modules())
        model.reset_classifier(3, "ggem")
        assert isinstance(model.head.global_pool, GGeM) and model(golden.input).shape == (2, 3)
