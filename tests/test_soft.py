"""SOFT / SOFT-Norm against the official implementation's golden fixtures, and their Newton routines."""
from __future__ import annotations

import argparse
import shutil
import sys
import types

import pytest
import timm
import torch
from golden import Golden, load_golden

import zoo
import zoo.layers.soft_attention as soft_attention
import zoo.pretrained as pretrained
from zoo.layers.soft_attention import SoftAttention, newton_inverse, newton_inverse_halving
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.soft import checkpoint_filter_fn

FIXTURES = {"soft__tiny_cfg": "soft_tiny", "soft__norm_tiny_cfg": "soft_norm_tiny"}


def zoo_kwargs(golden: Golden) -> dict:
    """The official constructor arguments of a fixture, in this model's terms."""
    c = golden.constructor
    assert c["sr_ratios"] == [8, 4, 2, 1] and c["newton_max_iter"] == 20 and c["patch_size"] == 4
    assert c["mlp_ratios"][3] == 4 and c["qkv_bias"]
    return dict(embed_dims=c["embed_dims"], depths=c["depths"], num_heads=c["num_heads"],
                num_classes=c["num_classes"], drop_path_rate=0.0)


def build(name: str, **kwargs) -> tuple[Golden, torch.nn.Module]:
    golden = load_golden(name)
    model = zoo.create_model(FIXTURES[name], **{**zoo_kwargs(golden), **kwargs}).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    return golden, model


@pytest.mark.parametrize("kernel_method", ["fused", "torch"])
@pytest.mark.parametrize("name", list(FIXTURES))
def test_classifier_matches_official(name, kernel_method):
    golden, model = build(name, kernel_method=kernel_method)
    with torch.no_grad():
        golden.assert_close(model(golden.input))


def test_twenty_newton_steps_matter():
    """The fixture tells the Newton routine apart: 10 steps are far off (specs/soft.md §8)."""
    golden, model = build("soft__tiny_cfg", newton_iters=10)
    with torch.no_grad():
        out = model(golden.input)
    assert (out - golden.output).abs().max() > 0.1


def test_soft_norm_couples_the_batch_and_per_sample_step_decouples_it():
    golden, model = build("soft__norm_tiny_cfg")
    with torch.no_grad():
        single = model(golden.input[1:])
    # Official: the step size is chosen over both images; alone, image 1 moves (~1e-4).
    assert (single - golden.output[1:]).abs().max() > 2e-5
    # In float64, so that float32 rounding that depends on the batch size (the landmark conv's
    # blocking, ~1e-6 after the Newton steps) cannot hide or fake a coupling.
    _, decoupled = build("soft__norm_tiny_cfg", per_sample_step=True)
    decoupled, x = decoupled.double(), golden.input.double()
    with torch.no_grad():
        torch.testing.assert_close(decoupled(x[1:]), decoupled(x)[1:], atol=1e-10, rtol=1e-10)


def official_training_checkpoint(state_dict: dict) -> dict:
    """What the official (timm 0.3.2) train script saves: weights, EMA weights, optimizer, pickled args."""
    return {
        "epoch": 309, "arch": "soft_tiny", "version": 2, "metric": 79.3,
        "state_dict": {k: torch.zeros_like(v) for k, v in state_dict.items()},  # not what evaluation uses
        "state_dict_ema": dict(state_dict),
        "optimizer": {"state": {}, "param_groups": [{"lr": 5e-5, "params": [0]}]},
        "args": argparse.Namespace(model="soft_tiny", newton_max_iter=20, kernel_method="torch"),
    }


@pytest.mark.parametrize("name", list(FIXTURES))
def test_official_file_loads_through_pretrained_path(name, tmp_path):
    golden = load_golden(name)
    path = tmp_path / "SOFT_Tiny.pth"
    torch.save(official_training_checkpoint(golden.state_dict), path)
    model = timm.create_model(
        FIXTURES[name], pretrained=True, pretrained_cfg_overlay=dict(file=str(path), num_classes=10),
        **zoo_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(model(golden.input))


DRIVE_ID_SOFT_TINY = "1S04DCotIOkP0DaBb8WStQ513z82qT9de"  # README of fudan-zvg/SOFT (specs/soft.md §4)


def test_drive_download_lands_in_the_weights_dir_and_a_web_page_is_refused(tmp_path, monkeypatch):
    """The Drive link is fetched into $ZOO_WEIGHTS_DIR under the official name and loaded through the
    filter (EMA weights); the web page Drive sends when it will not serve the file is deleted, and the
    error says where to get the file by hand."""
    golden = load_golden("soft__tiny_cfg")
    served = tmp_path / "served"
    torch.save(official_training_checkpoint(golden.state_dict), served)
    weights = tmp_path / "weights"
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(weights))
    requested = []

    def serve(id, output, quiet=False, use_cookies=True):  # gdown.download's signature as zoo calls it
        requested.append(id)
        shutil.copyfile(served, output)
        return output

    # Drive links go through gdown (its own confirmation-page handling is tested in test_weights_trust.py)
    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=serve))

    def create():
        return timm.create_model("soft_tiny", pretrained=True, pretrained_cfg_overlay=dict(num_classes=10),
                                 **zoo_kwargs(golden)).eval()

    model = create()
    assert requested == [DRIVE_ID_SOFT_TINY]
    assert model.pretrained_cfg["file"] == str(weights / "SOFT_Tiny.pth")
    with torch.no_grad():
        golden.assert_close(model(golden.input))
    create()  # the second time it is found in the weights directory
    assert len(requested) == 1

    page = "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head></html>"
    (weights / "SOFT_Tiny.pth").unlink()
    served.write_text(page)
    with pytest.raises(pretrained.WeightsNotFoundError) as err:
        create()
    message = str(err.value)
    assert f"Google Drive sent a web page instead of file {DRIVE_ID_SOFT_TINY}" in message
    assert f"Download SOFT_Tiny.pth from https://drive.google.com/file/d/{DRIVE_ID_SOFT_TINY}/view" in message
    assert f"put it at {weights / 'SOFT_Tiny.pth'}" in message
    assert list(weights.iterdir()) == []  # the page is not kept under the file's name

    (weights / "SOFT_Tiny.pth").write_text(page)  # a page saved by hand
    with pytest.raises(pretrained.NotACheckpointError, match="is a web page, not a checkpoint"):
        create()


def test_checkpoint_of_another_depth_names_the_model_it_fits():
    with torch.device("meta"):
        readme_small = zoo.create_model("soft_norm_small_24m").state_dict()
        code_small = zoo.create_model("soft_norm_small")
    with pytest.raises(CheckpointMismatchError, match=r"\[1, 3, 7, 4\] blocks per stage.*soft_norm_small_24m"):
        checkpoint_filter_fn(readme_small, code_small)


def test_checkpoint_mismatch_lists_the_keys():
    golden = load_golden("soft__tiny_cfg")
    model = zoo.create_model("soft_tiny", **zoo_kwargs(golden))
    state = dict(golden.state_dict)
    del state["block2.0.att.mha.attn.conv.weight"]
    state["block2.0.att.mha.attn.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        checkpoint_filter_fn(state, model)
    assert "stages.1.blocks.0.attn.dwconv.weight" in str(err.value)
    assert "stages.1.blocks.0.att.mha.attn.extra.weight" in str(err.value)


def test_features_only_loads_a_classification_checkpoint():
    golden = load_golden("soft__tiny_cfg")
    kwargs = {k: v for k, v in zoo_kwargs(golden).items() if k != "num_classes"}
    backbone = zoo.create_model("soft_tiny", features_only=True, **kwargs).eval()
    backbone.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, backbone.model))
    assert backbone.feature_info.reduction() == [4, 8, 16, 32]
    with torch.no_grad():
        features = backbone(golden.input[:1, :, :96, :80])
    assert [tuple(f.shape) for f in features] == [(1, 32, 24, 20), (1, 64, 12, 10), (1, 64, 6, 5), (1, 96, 3, 3)]


def test_smallest_input_and_clear_error_below_it():
    torch.manual_seed(0)
    model = zoo.create_model("soft_tiny", embed_dims=(32, 64, 64, 96), num_heads=(1, 2, 2, 3)).eval()
    assert model.min_input_size() == (29, 29)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 29, 45)).shape == (1, 1000)
        with pytest.raises(ValueError, match=r"at least 29x29.*stage 1 pools 8x8.*got 28x45"):
            model(torch.randn(1, 3, 28, 45))


def test_no_weights_variants_have_full_cfgs_and_say_so():
    for name in ["soft_small", "soft_small_24m", "soft_medium", "soft_large", "soft_huge", "soft_norm_huge"]:
        cfg = timm.models.get_pretrained_cfg(name).to_dict()
        for field in ("input_size", "mean", "std", "crop_pct", "interpolation", "license", "origin_url", "paper_ids"):
            assert cfg.get(field) is not None, (name, field)
        assert not (cfg.get("url") or cfg.get("hf_hub_id") or cfg.get("file"))
    with pytest.raises(pretrained.WeightsNotFoundError, match="soft_huge has no official weights: no official"):
        zoo.create_model("soft_huge", pretrained=True, depths=(1, 1, 1, 1))


def test_layer_norm_eps_and_gelus_are_official():
    model = zoo.create_model("soft_tiny", depths=(1, 1, 1, 1))
    block, last = model.stages[0].blocks[0], model.stages[3].blocks[0]
    assert block.norm1.eps == block.norm2.eps == block.attn.landmark_norm.eps == 1e-5
    assert last.norm1.eps == last.norm2.eps == model.norm.eps == 1e-6
    assert block.mlp.act.approximate == "tanh" and block.attn.landmark_act.approximate == "none"
    assert last.mlp.act.approximate == "none"


# --- the Newton routines (specs/soft.md §2.5), against transcriptions of the official code ---------

def _gaussian_k2(seed: int, shape=(2, 3, 12, 8), scale=0.35) -> torch.Tensor:
    lm = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    return torch.exp(-torch.cdist(lm, lm) ** 2 / 2)


def _official_regularized(mat: torch.Tensor, iters: int = 20) -> torch.Tensor:
    eye = torch.eye(mat.shape[-1], dtype=mat.dtype)
    alpha = 0.9 * 2 / mat.sum(-1).max(-1).values ** 2
    p = mat + 0.01 * eye
    v = alpha[..., None, None] * p
    for _ in range(iters):
        v = 2 * v - v @ p @ v
    return v


def _official_halving(mat: torch.Tensor, iters: int = 20) -> tuple[torch.Tensor, int]:
    eye = torch.eye(mat.shape[-1], dtype=mat.dtype)
    alpha = 2 / (torch.max(torch.sum(mat, dim=-1)) ** 2)
    v = alpha * mat
    pnorm = torch.max(torch.sum(torch.abs(eye - mat @ v), dim=-2))
    halvings = 0
    while pnorm > 1.01 and halvings < 10:
        alpha = alpha * 0.5
        v = alpha * mat
        pnorm = torch.max(torch.sum(torch.abs(eye - mat @ v), dim=-2))
        halvings += 1
    for _ in range(iters):
        v = 2 * v - v @ mat @ v
    return v, halvings


def test_regularized_newton_forward_and_analytic_backward():
    k2 = _gaussian_k2(0, scale=0.15).requires_grad_()  # ill-conditioned: 20 steps do not converge
    out = newton_inverse(k2)
    torch.testing.assert_close(out, _official_regularized(k2.detach()), atol=1e-12, rtol=1e-10)
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, k2, g)
    vt = out.detach().transpose(-1, -2)
    torch.testing.assert_close(grad, -(vt @ g @ vt), atol=1e-12, rtol=1e-10)
    # ... which is not back-propagation through the 20 steps (the iteration has not converged).
    through = k2.detach().clone().requires_grad_()
    (unrolled,) = torch.autograd.grad(_official_regularized(through), through, g)
    assert (unrolled - grad).abs().max() > 1e-3


def test_halving_newton_is_global_over_the_batch():
    k2 = torch.cat([_gaussian_k2(1, (1, 2, 10, 8), 0.15), _gaussian_k2(2, (1, 2, 10, 8), 0.4)])
    expected, halvings = _official_halving(k2)
    assert halvings >= 2
    torch.testing.assert_close(newton_inverse_halving(k2), expected, atol=1e-12, rtol=1e-10)
    alone = torch.cat([_official_halving(k2[i:i + 1])[0] for i in range(2)])
    assert (alone - expected).abs().max() > 1e-6
    torch.testing.assert_close(newton_inverse_halving(k2, per_sample=True), alone, atol=1e-12, rtol=1e-10)
    # Plain autograd through every step, as official.
    a = k2.clone().requires_grad_()
    b = k2.clone().requires_grad_()
    g = torch.randn_like(k2)
    (ga,) = torch.autograd.grad(newton_inverse_halving(a), a, g)
    (gb,) = torch.autograd.grad(_official_halving(b)[0], b, g)
    torch.testing.assert_close(ga, gb, atol=1e-10, rtol=1e-8)


def test_newton_stays_float32_under_autocast(monkeypatch):
    seen = []
    original = soft_attention.newton_inverse
    monkeypatch.setattr(soft_attention, "newton_inverse", lambda m, it: seen.append(m.dtype) or original(m, it))
    attn = SoftAttention(64, 2, ratio=2, conv_size=3)
    x = torch.randn(2, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(x, (8, 8))
    assert seen == [torch.float32] and torch.isfinite(out).all()


def test_newton_init_option_selects_the_2021_routine():
    torch.manual_seed(0)
    attn = SoftAttention(32, 1, ratio=2, conv_size=3, newton_init="halving")
    lm = torch.randn(2, 1, 9, 32) * 0.2
    k2 = torch.exp(-torch.cdist(lm, lm) ** 2 / 2)
    torch.testing.assert_close(attn._mixing(lm), newton_inverse_halving(k2), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="newton_init"):
        SoftAttention(32, 1, ratio=2, conv_size=3, newton_init="exact")


def test_every_global_pool_and_the_normed_last_feature():
    """The contract row checks 'token' and 'avg'; the other pools and norm=True here, on a small model."""
    torch.manual_seed(0)
    model = zoo.create_model("soft_tiny", embed_dims=(32, 64, 64, 96), num_heads=(1, 2, 2, 3),
                             depths=(1, 1, 1, 1)).eval()
    x = torch.randn(2, 3, 40, 48)
    with torch.no_grad():
        tokens = model.forward_features(x)
        assert tokens.shape == (2, 1 + 2 * 2, 96)
        expected = {"token": tokens[:, 0], "avg": tokens[:, 1:].mean(1), "max": tokens[:, 1:].amax(1),
                    "avgmax": (tokens[:, 1:].mean(1) + tokens[:, 1:].amax(1)) / 2, "": tokens}
        for pool, pooled in expected.items():
            model.reset_classifier(0, pool)
            torch.testing.assert_close(model(x), pooled, msg=pool)
        last = model.forward_intermediates(x, indices=1, norm=True, intermediates_only=True)[0]
        torch.testing.assert_close(last, tokens[:, 1:].transpose(1, 2).reshape(2, 96, 2, 2))
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(0, "cls")
