"""model.init_checkpoint_adapt: weights of one resolution into the same architecture at another.

The 384 fine-tunes start from the 224 runs' weights. With `init_checkpoint_adapt` the trainer passes them
through the family's own `checkpoint_filter_fn` (the one that adapts the official weights) and loads the result
strictly; without it, the load is strict and exact, as before. Tiny widths and depths keep every model small.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_model

from zoo.train import checkpoint as ckpt
from zoo.train.engine import create_model

# iFormer: the pos-embeds of the 4 stages are (1, img/4 / 2^i, ..., C) grids.
IFORMER_KW = dict(embed_dims=[64, 64, 64, 64], depths=[1, 1, 1, 1], num_heads=[2, 2, 2, 2],
                  attention_heads=[1, 1, 1, 1])
# InLine-Swin-B layout (IIMS2): stage 3 = 2 InLine blocks then softmax ones, stage 4 softmax; window 56 at 224
# (softmax windows 7), 96 at 384 (softmax windows 12): the relative-position tables grow from 13^2 to 23^2 rows.
SWIN_KW = dict(embed_dim=8, depths=[1, 1, 3, 1], num_heads=[1, 1, 1, 1])


def _model(name: str, num_classes: int = 1000, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model({"name": name, "kwargs": kwargs}, num_classes)


def _saved(model: torch.nn.Module, tmp_path: Path) -> Path:
    """A trainer checkpoint directory of `model` (the layout model.init_checkpoint reads)."""
    return ckpt.save_checkpoint(tmp_path / "checkpoints", 1, model, None, {"has_ema": False})


def _check_adapted(source: torch.nn.Module, target: torch.nn.Module, family_filter, resized: dict) -> None:
    """`target` holds `source`'s weights: equal where the shapes agree, `resized[key]` (an independent
    computation) where they do not, and exactly what the family's filter makes of them everywhere."""
    src, got = source.state_dict(), target.state_dict()
    by_filter = family_filter(dict(src), target)
    differ = {k for k in got if k in src and src[k].shape != got[k].shape}
    assert differ == set(resized) and differ, differ
    for key, value in got.items():
        assert torch.equal(value, by_filter[key]), key
        if key in resized:
            assert value.shape != src[key].shape
            torch.testing.assert_close(value, resized[key], rtol=0, atol=1e-6, msg=key)
        elif key in src:
            assert torch.equal(value, src[key]), key


def test_iformer_224_weights_load_into_the_384_model_with_resized_pos_embeds(tmp_path) -> None:
    from zoo.models.inception_transformer import checkpoint_filter_fn

    source = _model("inception_transformer_small", **IFORMER_KW)
    target = _model("inception_transformer_small_384", **IFORMER_KW)
    ckpt.load_weights(target, _saved(source, tmp_path), adapt=True)

    def bilinear(pos: torch.Tensor, side: int) -> torch.Tensor:  # the official forward's run-time resize
        return F.interpolate(pos.permute(0, 3, 1, 2), size=(side, side), mode="bilinear",
                             align_corners=False).permute(0, 2, 3, 1)

    src = source.state_dict()
    resized = {f"stages.{i}.pos_embed": bilinear(src[f"stages.{i}.pos_embed"], 96 >> i) for i in range(4)}
    _check_adapted(source, target, checkpoint_filter_fn, resized)
    assert target(torch.randn(1, 3, 384, 384)).shape == (1, 1000)  # the classifier is kept


def test_inline_swin_224_weights_load_into_the_384_model_with_resized_tables(tmp_path) -> None:
    from zoo.models.inline import checkpoint_filter_fn

    source = _model("inline_swin_base", **SWIN_KW)
    target = _model("inline_swin_base_384", **SWIN_KW)
    ckpt.load_weights(target, _saved(source, tmp_path), adapt=True)
    src, want = source.state_dict(), target.state_dict()
    def bicubic(table: torch.Tensor) -> torch.Tensor:  # the official Swin load_pretrained (inline.md §4)
        side = math.isqrt(table.shape[0])
        grid = table.T.reshape(1, -1, side, side)
        return F.interpolate(grid, size=(23, 23), mode="bicubic").reshape(-1, 23 * 23).T

    resized = {k: bicubic(src[k]) for k in want
               if k.endswith("relative_position_bias_table") and src[k].shape != want[k].shape}
    assert sorted(resized) == ["stages.2.blocks.2.attn.relative_position_bias_table",
                               "stages.3.blocks.0.attn.relative_position_bias_table"]
    assert all(want[k].shape == (23 * 23, 1) for k in resized)
    _check_adapted(source, target, checkpoint_filter_fn, resized)


def test_adapt_leaves_same_size_weights_exact(tmp_path) -> None:
    source = _model("inception_transformer_small", **IFORMER_KW)
    target = _model("inception_transformer_small", seed=1, **IFORMER_KW)
    assert not torch.equal(target.state_dict()["stages.0.pos_embed"], source.state_dict()["stages.0.pos_embed"])
    ckpt.load_weights(target, _saved(source, tmp_path), adapt=True)
    src = source.state_dict()
    assert all(torch.equal(v, src[k]) for k, v in target.state_dict().items())


def test_adapt_refuses_weights_of_another_width_naming_the_keys(tmp_path) -> None:
    source = _model("inception_transformer_small", **IFORMER_KW)
    wider = _model("inception_transformer_small_384", **{**IFORMER_KW, "embed_dims": [64, 64, 64, 128],
                                                         "num_heads": [2, 2, 2, 4]})
    with pytest.raises(ckpt.WeightsMismatchError) as err:
        ckpt.load_weights(wider, _saved(source, tmp_path), adapt=True)
    message = str(err.value)
    assert "inception_transformer_small_384" in message and "checkpoint_filter_fn" in message
    assert "stages.3.blocks.0.norm1.weight: checkpoint (64,) vs model (128,)" in message


def test_adapt_keeps_the_classifier_a_head_of_other_classes_is_an_error(tmp_path) -> None:
    source = _model("inline_swin_base", **SWIN_KW)
    target = _model("inline_swin_base_384", num_classes=10, **SWIN_KW)
    want = r"head\.fc\.weight: checkpoint \(1000, 64\) vs model \(10, 64\)"
    with pytest.raises(ckpt.WeightsMismatchError, match=want):
        ckpt.load_weights(target, _saved(source, tmp_path), adapt=True)


def test_the_default_load_stays_strict(tmp_path) -> None:
    source = _model("inception_transformer_small", **IFORMER_KW)
    file = tmp_path / "model.safetensors"
    save_model(source, str(file))
    target = _model("inception_transformer_small_384", **IFORMER_KW)
    with pytest.raises(RuntimeError, match=r"size mismatch for stages\.0\.pos_embed"):
        ckpt.load_weights(target, file)
    same = _model("inception_transformer_small", seed=1, **IFORMER_KW)
    ckpt.load_weights(same, file)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in same.state_dict().items())


def test_the_family_filter_is_found_from_the_model() -> None:
    import zoo.models.inception_transformer as iformer
    import zoo.models.inline as inline

    assert ckpt.family_filter(_model("inline_swin_base_384", **SWIN_KW)) == (inline.__name__,
                                                                           inline.checkpoint_filter_fn)
    assert ckpt.family_filter(_model("inception_transformer_base_384", **IFORMER_KW))[1] is \
        iformer.checkpoint_filter_fn


# The trainer end to end on the digits: a tiny iFormer trained at 32 px, then fine-tuned at 64 px from it.
_TINY_IFORMER = ["model=timm", "model.name=inception_transformer_small", "+model.kwargs.embed_dims=[64,64,64,64]",
                 "+model.kwargs.depths=[1,1,1,1]", "+model.kwargs.num_heads=[2,2,2,2]",
                 "+model.kwargs.attention_heads=[1,1,1,1]", "data.batch_size=16", "debug.max_steps_per_epoch=1",
                 "sched.epochs=1", "sched.warmup_epochs=0", "progress=false", "tensorboard=false"]


def test_the_trainer_fine_tunes_at_a_larger_resolution_from_adapted_weights(zoo_cache, tmp_path) -> None:
    from train_helpers import run_train

    base = run_train([*_TINY_IFORMER, "+model.kwargs.img_size=32", "data.img_size=32", "name=at32"],
                     zoo_cache, tmp_path)
    assert base.returncode == 0, base.stderr[-3000:]
    weights = tmp_path / "outputs" / "at32" / "checkpoints"
    (step,) = ckpt.list_checkpoints(weights)
    fine_tune = [*_TINY_IFORMER, "+model.kwargs.img_size=64", "data.img_size=64", "data.crop_pct=1.0",
                 f"model.init_checkpoint={step}", "model.init_checkpoint_required=true"]
    strict = run_train([*fine_tune, "name=strict"], zoo_cache, tmp_path)
    assert strict.returncode != 0 and "model.init_checkpoint_adapt=true" in strict.stderr, strict.stderr[-3000:]
    adapted = run_train([*fine_tune, "model.init_checkpoint_adapt=true", "name=at64"], zoo_cache, tmp_path)
    assert adapted.returncode == 0, adapted.stderr[-3000:]
