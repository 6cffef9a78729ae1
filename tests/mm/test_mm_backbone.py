"""ZooBackbone: official det/seg features, weights through the zoo's filters, freezing that freezes."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn

pytest.importorskip("mmengine")

from golden import load_golden  # noqa: E402
from mm_fixtures import TINY_RAVLT  # noqa: E402

from zoo.mm.backbone import ZooBackbone  # noqa: E402
from zoo.models._checkpoint import rename_keys  # noqa: E402
from zoo.models.ravlt import OFFICIAL_KEY_RULES  # noqa: E402


def tiny(**kwargs) -> ZooBackbone:
    return ZooBackbone("ravlt_t", model_kwargs=TINY_RAVLT, **kwargs)


def concat(features) -> torch.Tensor:
    return torch.cat([f.flatten(1) for f in features], 1)


def test_init_cfg_loads_official_backbone_and_matches_official_features(tmp_path):
    # The official GLTA backbone's state dict (extra_norms included), saved as a raw dict.
    golden = load_golden("ravlt__tiny_cfg_det_backbone")
    path = tmp_path / "glta.pth"
    torch.save(dict(golden.state_dict), path)
    backbone = tiny(init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    backbone.init_weights()
    assert backbone.is_init
    backbone.eval()
    with torch.no_grad():
        out = backbone(golden.input)
    assert [tuple(f.shape) for f in out] == [tuple(s) for s in golden.meta["output_shapes"]]
    golden.assert_close(concat(out))


def test_init_cfg_loads_official_classification_checkpoint(official_classifier_file):
    golden = load_golden("ravlt__tiny_cfg")
    backbone = tiny(init_cfg=dict(type="Pretrained", checkpoint=str(official_classifier_file)))
    before = backbone.model.stem[0].weight.clone()
    backbone.init_weights()
    model = backbone.model
    assert not torch.equal(before, model.stem[0].weight)
    assert torch.equal(model.stem[0].weight, golden.state_dict["patch_embed.proj.0.weight"])
    assert torch.equal(model.stages[1].blocks[0].attn.qkvo.weight,
                       golden.state_dict["layers.1.blocks.0.attn.qkvo.weight"])
    # downsample at the end of official stage 0 = start of our stage 1
    assert torch.equal(model.stages[1].downsample.conv.weight,
                       golden.state_dict["layers.0.downsample.reduction.weight"])
    # the per-stage feature norms are not in a classification checkpoint: LayerNorm(1, 0), as officially
    for norm in model.feature_norms:
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))


def test_pretrained_shorthand_and_mismatched_file_fails(tmp_path, official_classifier_file):
    backbone = ZooBackbone("ravlt_t", model_kwargs=TINY_RAVLT, pretrained=str(official_classifier_file))
    assert backbone.init_cfg == dict(type="Pretrained", checkpoint=str(official_classifier_file))
    wrong = ZooBackbone("ravlt_t", init_cfg=dict(type="Pretrained", checkpoint=str(official_classifier_file)))
    with pytest.raises(Exception, match="shape|size|mismatch"):
        wrong.init_weights()  # full-width ravlt_t vs the tiny file: the filter's strict check refuses


def test_out_indices_channels_and_strides():
    backbone = tiny(out_indices=(1, 2, 3))
    assert backbone.out_channels == [32, 48, 64]
    assert backbone.out_strides == [8, 16, 32]
    out = backbone(torch.randn(1, 3, 64, 64))
    assert [f.shape[1:] for f in out] == [(32, 8, 8), (48, 4, 4), (64, 2, 2)]


@pytest.mark.parametrize("frozen_stages", [-1, 0, 1, 2, 4])
def test_frozen_stages_sets_requires_grad(frozen_stages):
    backbone = tiny(frozen_stages=frozen_stages)
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    stem = {n for n in trainable | frozen if ".stem." in n}
    if frozen_stages < 0:
        assert not frozen
        return
    assert stem <= frozen
    for i in range(4):
        stage = {n for n in trainable | frozen if f".stages.{i}." in n or f".feature_norms.{i}." in n}
        assert stage <= (frozen if i < frozen_stages else trainable), i


def _train_step(backbone: nn.Module, seed: int = 0) -> None:
    torch.manual_seed(seed)
    opt = torch.optim.SGD([p for p in backbone.parameters() if p.requires_grad], lr=0.1)
    backbone.train()
    loss = sum(f.square().mean() for f in backbone(torch.randn(2, 3, 64, 64) * 3 + 1))
    loss.backward()
    opt.step()


def _bn_state(backbone: nn.Module) -> dict:
    return {k: v.clone() for k, v in backbone.state_dict().items() if "running_" in k or "num_batches" in k}


def test_frozen_stages_really_freeze_weights_and_stats():
    backbone = tiny(frozen_stages=2)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    _train_step(backbone)
    after = backbone.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen_prefix = re.compile(r"body\.model\.(stem\.|stages\.[01]\.|feature_norms\.[01]\.)")
    assert changed, "nothing trained"
    assert not {k for k in changed if frozen_prefix.match(k)}, "a frozen stage changed"
    assert any(k.startswith("body.model.stages.3.") for k in changed)
    # BatchNorms after the frozen stages still update their statistics (norm_eval=False)
    assert "body.model.stages.2.downsample.norm.running_mean" in changed


@pytest.mark.parametrize("sync_bn", [False, True])
def test_norm_eval_freezes_every_batchnorm_including_syncbn(sync_bn):
    """The official RALA/MALA backbones check nn.BatchNorm2d, which their SyncBatchNorm layers are not."""
    backbone = tiny(norm_eval=True)
    if sync_bn:
        backbone = nn.SyncBatchNorm.convert_sync_batchnorm(backbone)
        assert any(isinstance(m, nn.SyncBatchNorm) for m in backbone.modules())
    assert backbone.train() is backbone
    norms = [m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    stats = _bn_state(backbone)
    _train_step(backbone)
    after = _bn_state(backbone)
    assert all(torch.equal(stats[k], after[k]) for k in stats)
    # the affine parameters still train (norm_eval only freezes statistics)
    assert backbone.model.stem[1].weight.grad is not None


def test_without_norm_eval_the_statistics_move():
    backbone = tiny()
    stats = _bn_state(backbone)
    _train_step(backbone)
    after = _bn_state(backbone)
    assert not torch.equal(stats["body.model.stem.1.running_mean"], after["body.model.stem.1.running_mean"])


def test_norm_decay_rule_selects_the_official_parameters():
    """The papers' `custom_keys={'norm': decay_mult=0}` matches by name: the zoo's names must
    contain 'norm' exactly where the official ones do."""
    golden = load_golden("ravlt__tiny_cfg_det_backbone")
    official = [k for k in golden.state_dict if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    ours = rename_keys({k: golden.state_dict[k] for k in official}, OFFICIAL_KEY_RULES)
    assert len(ours) == len([k for k in official if not k.endswith("RoPE.angle")])
    backbone = tiny()
    params = {n.removeprefix("body.model.") for n, _ in backbone.named_parameters()}
    assert set(ours) == params
    renamed = dict(zip([k for k in official if not k.endswith("RoPE.angle")], ours))
    for theirs, mine in renamed.items():
        assert ("norm" in theirs) == ("norm" in f"backbone.body.model.{mine}"), (theirs, mine)


def test_layer_decay_constructor_scales_backbone_lrs():
    from zoo.mm.optim import LayerDecayOptimWrapperConstructor, backbone_layer_ids

    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = tiny()
            self.neck = nn.Linear(4, 4)

    model = Detector()
    ids = backbone_layer_ids(model.backbone)
    assert set(ids) == {f"backbone.{n}" for n, _ in model.backbone.named_parameters()}
    assert ids["backbone.body.model.stem.0.weight"] == 0
    constructor = LayerDecayOptimWrapperConstructor(
        dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5, custom_keys={"norm": dict(decay_mult=0.0)}))
    wrapper = constructor(model)
    groups = wrapper.optimizer.param_groups
    name_of = {id(p): n for n, p in model.named_parameters()}
    lr = {name_of[id(g["params"][0])]: g["lr"] for g in groups}
    decay = {name_of[id(g["params"][0])]: g["weight_decay"] for g in groups}
    num_layers = max(ids.values()) + 1
    assert lr["neck.weight"] == 1.0
    assert lr["backbone.body.model.stem.0.weight"] == pytest.approx(0.5 ** num_layers)
    for name, layer in ids.items():
        assert lr[name] == pytest.approx(0.5 ** (num_layers - layer)), name
    assert decay["backbone.body.model.stages.0.blocks.0.norm1.weight"] == 0.0
    assert decay["backbone.body.model.stages.0.blocks.0.attn.qkvo.weight"] == 0.05


def test_official_detector_checkpoint_converts_to_the_zoo_layout(tmp_path):
    from zoo.mm.official_weights import convert_mm_checkpoint

    golden = load_golden("ravlt__tiny_cfg_det_backbone")
    neck = {"neck.lateral_convs.0.conv.weight": torch.randn(8, 16, 1, 1)}
    src = tmp_path / "maskrcnn_t_1x_12_epoch.pth"
    torch.save({"state_dict": {**{f"backbone.{k}": v for k, v in golden.state_dict.items()}, **neck},
                "meta": {"epoch": 12, "mmdet_version": "2.11.0"}}, src)
    dst = tmp_path / "converted.pth"
    out = convert_mm_checkpoint(str(src), "ravlt_t", **TINY_RAVLT)
    torch.save(out, dst)
    state = out["state_dict"]
    assert torch.equal(state["neck.lateral_convs.0.conv.weight"], neck["neck.lateral_convs.0.conv.weight"])
    assert out["meta"]["epoch"] == 12
    backbone = tiny()
    inner = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    backbone.load_state_dict(inner, strict=True)
    with torch.no_grad():
        golden.assert_close(concat(backbone.eval()(golden.input)))
    # converting a converted checkpoint is a no-op
    again = convert_mm_checkpoint(torch.load(dst, weights_only=True), "ravlt_t", **TINY_RAVLT)["state_dict"]
    assert again.keys() == state.keys()


def test_frozen_stages_survive_syncbn_conversion():
    """mmengine's `sync_bn='torch'` replaces every BatchNorm module after the backbone is built."""
    backbone = nn.SyncBatchNorm.convert_sync_batchnorm(tiny(frozen_stages=1))
    backbone.train()
    stem_bn = backbone.model.stem[1]
    assert isinstance(stem_bn, nn.SyncBatchNorm) and not stem_bn.training and not stem_bn.weight.requires_grad
    later_bn = backbone.model.stages[2].downsample.norm
    assert isinstance(later_bn, nn.SyncBatchNorm) and later_bn.training and later_bn.weight.requires_grad
