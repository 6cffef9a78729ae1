"""The contract every registered zoo model keeps: timm's model API, exact size, clear errors.

Rows live in tests/rows/<family>.py. A check that cannot apply to a model is
listed, with its reason, in the row's `not_applicable` under the test's name
without the `test_` prefix (e.g. "features_only"), and so is documented.
"""
from __future__ import annotations

import copy
import functools
import inspect
import math
import re

import pytest
import torch
from rows import ModelRow, all_rows

import zoo
import zoo.pretrained
from zoo.layers.ggem import GGeM
from zoo.models import apply_ggem

BATCH = 2


def _params(rows: list[ModelRow]) -> list:
    # One xdist group per model: with `--dist loadgroup` a worker runs all of a
    # model's checks and builds it once (see `cached`).
    return [pytest.param(r, id=r.name, marks=pytest.mark.xdist_group(r.name)) for r in rows]


ALL_ROWS = all_rows()
ROW_BY_NAME = {r.name: r for r in ALL_ROWS}
ROWS = _params(ALL_ROWS)


def applies(row: ModelRow, check: str) -> None:
    if check in row.not_applicable:
        pytest.skip(f"{check} does not apply to {row.name}: {row.not_applicable[check]}")


def build(row: ModelRow, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return zoo.create_model(row.name, **{"drop_path_rate": 0.0, **row.create_kwargs, **kwargs})


def _cached(row: ModelRow) -> torch.nn.Module:
    return _cached_by_name(row.name)


@functools.lru_cache(maxsize=1)
def _cached_by_name(name: str) -> torch.nn.Module:
    return build(ROW_BY_NAME[name]).eval()


def cached(row: ModelRow) -> torch.nn.Module:
    """The row's default model in eval mode, built once; deep-copied for checks that change it."""
    return copy.deepcopy(_cached(row))


def on_meta(row: ModelRow) -> torch.nn.Module:
    return _on_meta_by_name(row.name)


@functools.lru_cache(maxsize=1)
def _on_meta_by_name(name: str) -> torch.nn.Module:
    # The default constructor: what the spec's parameter counts describe.
    with torch.device("meta"):
        return zoo.create_model(name)


def image(row: ModelRow, batch: int = BATCH, channels: int | None = None) -> torch.Tensor:
    c, h, w = row.input_size
    return torch.randn(batch, channels or c, h, w, generator=torch.Generator().manual_seed(1))


def test_every_registered_model_has_a_row():
    assert sorted(zoo.list_models()) == sorted(r.name for r in ALL_ROWS)


def test_no_zoo_name_shadows_a_timm_model():
    # timm's registry before and after `import zoo`, in a clean interpreter.
    import subprocess
    import sys
    script = ("import timm; before = set(timm.list_models()); import zoo; "
              "print(sorted(before & set(zoo.list_models())))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("row", ROWS)
def test_exact_parameter_count(row):
    model = on_meta(row)
    assert sum(p.numel() for p in model.parameters()) == row.params


@pytest.mark.parametrize("row", ROWS)
def test_pretrained_cfg(row):
    applies(row, "pretrained_cfg")
    model = on_meta(row)
    cfg = model.pretrained_cfg
    assert cfg["architecture"] == row.name
    for field in ("input_size", "mean", "std", "crop_pct", "interpolation", "num_classes", "license",
                  "first_conv", "classifier", "origin_url"):
        assert cfg.get(field) is not None, f"pretrained_cfg of {row.name} lacks {field}"
    assert cfg.get("paper_ids") or cfg.get("paper_name")
    has_source = any(cfg.get(k) for k in ("hf_hub_id", "url", "file"))
    if row.official_weights:
        assert has_source, "no source for the official weights"
        # The file a user is told to download, and that the weights directory is searched for.
        official = zoo.pretrained.official_file(f"{row.name}.{cfg['tag']}" if cfg.get("tag") else row.name)
        assert (official.filename if official else zoo.pretrained.default_filename(cfg)), \
            "zoo.pretrained cannot name the official file"
    else:
        assert not has_source, "the row says no weights were released, but pretrained_cfg names a source"
        assert any(re.search(r"no official (checkpoint|weights)", note) for note in cfg.get("notes") or ()), \
            "pretrained_cfg notes must say that no official checkpoint was released"
    modules = dict(model.named_modules())
    assert cfg["first_conv"] in modules, f"first_conv {cfg['first_conv']!r} is not a module"
    classifiers = [cfg["classifier"]] if isinstance(cfg["classifier"], str) else cfg["classifier"]
    assert all(c in modules for c in classifiers), f"classifier {cfg['classifier']!r} is not a module"


@pytest.mark.parametrize("row", ROWS)
def test_forward_backward(row):
    applies(row, "forward_backward")
    model = cached(row).train()
    out = model(image(row))
    assert out.shape == (BATCH, model.num_classes)
    out.logsumexp(-1).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"parameters that receive no gradient: {no_grad[:10]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("row", ROWS)
def test_num_classes_and_in_chans(row):
    applies(row, "num_classes_and_in_chans")
    model = build(row, num_classes=7, in_chans=1).eval()
    with torch.no_grad():
        assert model(image(row, channels=1)).shape == (BATCH, 7)


@pytest.mark.parametrize("row", ROWS)
def test_global_pool(row):
    applies(row, "global_pool")
    for pool in row.global_pools:
        model = build(row, global_pool=pool).eval()
        with torch.no_grad():
            assert model(image(row)).shape == (BATCH, 1000), pool


@pytest.mark.parametrize("row", ROWS)
def test_forward_features_and_head(row):
    applies(row, "forward_features_and_head")
    model = _cached(row)
    x = image(row)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features), logits)
        pre_logits = model.forward_head(features, pre_logits=True)
    assert pre_logits.shape == (BATCH, model.head_hidden_size)


@pytest.mark.parametrize("row", ROWS)
def test_reset_classifier(row):
    applies(row, "reset_classifier")
    model = cached(row)
    x = image(row)
    with torch.no_grad():
        pre_logits = model.forward_head(model.forward_features(x), pre_logits=True)
        model.reset_classifier(5)
        assert model(x).shape == (BATCH, 5)
        assert model.num_classes == 5
        assert model.get_classifier() is not None
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pre_logits)


@pytest.mark.parametrize("row", ROWS)
def test_device_and_dtype_reach_every_tensor_and_a_new_head(row):
    """timm's create_model passes `device=` / `dtype=` to every model constructor (timm >= 1.0.2x): every
    tensor is made on that device, floating point ones in that dtype; the head reset_classifier builds
    later joins the device and dtype of the weights (timm's test_models checks both)."""
    model = zoo.create_model(row.name, **{**row.create_kwargs, "device": "meta", "dtype": torch.float64})

    def placement() -> set:
        tensors = [*model.parameters(), *model.buffers()]
        return {(t.device.type, t.dtype if t.is_floating_point() else "not floating") for t in tensors}

    assert placement() <= {("meta", torch.float64), ("meta", "not floating")}
    assert ("meta", torch.float64) in placement()
    if "reset_classifier" not in row.not_applicable:
        model.eval()
        model.reset_classifier(0)
        model.reset_classifier(3)
        assert model.num_classes == 3
        assert placement() <= {("meta", torch.float64), ("meta", "not floating")}
        assert not any(m.training for m in model.modules())  # the new head's modules too


@pytest.mark.parametrize("row", ROWS)
def test_features_only(row):
    applies(row, "features_only")
    c, h, w = row.input_size
    model = build(row, features_only=True).eval()
    with torch.no_grad():
        features = model(image(row))
    info = model.feature_info
    assert len(features) == len(info.channels()) > 0
    for feature, channels, reduction in zip(features, info.channels(), info.reduction()):
        assert feature.shape[:2] == (BATCH, channels)
        assert feature.shape[-2:] == (math.ceil(h / reduction), math.ceil(w / reduction))
    # A subset of stages, in order.
    last_two = list(range(len(features)))[-2:]
    subset = build(row, features_only=True, out_indices=last_two).eval()
    assert subset.feature_info.channels() == [info.channels()[i] for i in last_two]
    with torch.no_grad():
        assert [f.shape for f in subset(image(row))] == [features[i].shape for i in last_two]


@pytest.mark.parametrize("row", ROWS)
def test_forward_intermediates(row):
    applies(row, "forward_intermediates")
    model = _cached(row)
    x = image(row)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [f.shape[1] for f in intermediates] == [i["num_chs"] for i in model.feature_info]
        last = model.forward_intermediates(x, indices=1, intermediates_only=True)
    assert len(last) == 1
    torch.testing.assert_close(last[0], intermediates[-1])


@pytest.mark.parametrize("row", ROWS)
def test_grad_checkpointing_changes_nothing(row):
    applies(row, "grad_checkpointing_changes_nothing")
    x = image(row)
    results = []
    for enable in (False, True):
        model = cached(row).train()
        model.set_grad_checkpointing(enable)
        out = model(x)
        out.square().mean().backward()
        results.append((out.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    (out_plain, grads_plain), (out_ckpt, grads_ckpt) = results
    torch.testing.assert_close(out_ckpt, out_plain)
    assert grads_ckpt.keys() == grads_plain.keys()
    for name in grads_plain:
        torch.testing.assert_close(grads_ckpt[name], grads_plain[name], atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.parametrize("row", ROWS)
def test_group_matcher_covers_every_parameter(row):
    applies(row, "group_matcher_covers_every_parameter")
    from timm.models import group_parameters
    model = on_meta(row)
    groups = group_parameters(model, model.group_matcher(coarse=False))
    grouped = {n for names in groups.values() for n in names}
    assert grouped == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("row", ROWS)
def test_wrong_channel_count_is_a_clear_error(row):
    applies(row, "wrong_channel_count_is_a_clear_error")
    model = _cached(row)
    c = row.input_size[0]
    with pytest.raises(ValueError, match=rf"\(B, {c}, H, W\)"):
        model(image(row, channels=c + 1))


@pytest.mark.parametrize("row", _params([r for r in ALL_ROWS if r.bad_input_size]))
def test_unsupported_size_is_a_clear_error(row):
    applies(row, "unsupported_size_is_a_clear_error")
    model = _cached(row)
    c = row.input_size[0]
    with pytest.raises(ValueError, match=r"\d+x\d+"):
        model(torch.randn(1, c, *row.bad_input_size))


@pytest.mark.parametrize("row", _params([r for r in ALL_ROWS if r.batch_independent]))
def test_eval_output_does_not_depend_on_batch(row):
    applies(row, "eval_output_does_not_depend_on_batch")
    model = _cached(row)
    x = image(row, batch=3)
    with torch.no_grad():
        torch.testing.assert_close(model(x[1:2]), model(x)[1:2], atol=1e-5, rtol=1e-5)


# ---- issue 18 §3: inputs and constructor arguments --------------------------------------------


def _entry_points(model: torch.nn.Module) -> dict:
    return {"forward": model, "forward_features": model.forward_features,
            "forward_intermediates": model.forward_intermediates}


@pytest.mark.parametrize("row", ROWS)
def test_integer_images_are_a_clear_error(row):
    applies(row, "integer_images_are_a_clear_error")
    model = _cached(row)
    pixels = (image(row, batch=1).sigmoid() * 255).to(torch.uint8)  # an undecoded-image batch
    for call in _entry_points(model).values():
        with pytest.raises(TypeError, match=r"floating-point images \(float32, float16, bfloat16 or float64\), "
                                            r"got torch\.uint8.*x\.float\(\) / 255.*mean and std"):
            call(pixels)
        with pytest.raises(TypeError, match=r"got torch\.int64"):
            call(pixels.long())


def _shapes(out) -> list:
    """Every tensor's shape in a (nested) output, in order."""
    if isinstance(out, torch.Tensor):
        return [tuple(out.shape)]
    return [s for o in out for s in _shapes(o)]


@pytest.mark.parametrize("row", ROWS)
def test_empty_batch_gives_empty_outputs(row):
    applies(row, "empty_batch_gives_empty_outputs")
    model = _cached(row)
    x = image(row, batch=1)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x)  # one image: the shapes to expect
        expected = {"forward": model.forward_head(final), "forward_intermediates": (final, intermediates)}
        # forward_features takes the same path (zoo.layers.checks.handles_empty_batch); each empty call
        # costs a one-image forward, so the check runs the two entry points users batch.
        got = {"forward": model(x[:0]), "forward_intermediates": model.forward_intermediates(x[:0])}
    for entry in expected:
        assert _shapes(got[entry]) == [(0, *s[1:]) for s in _shapes(expected[entry])], entry


def _constructor_rates(model_cls: type) -> set[str]:
    """The dropout / drop-path rates a model's constructor takes, through the **kwargs it hands its parents."""
    rates = set()
    for cls in model_cls.__mro__:
        if "__init__" not in cls.__dict__ or cls is torch.nn.Module:
            continue
        params = inspect.signature(cls.__init__).parameters
        rates |= {n for n in params if n.endswith(("drop_rate", "drop_path_rate"))}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    return rates


@pytest.mark.parametrize("row", ROWS)
def test_constructor_arguments_are_checked_at_build(row):
    applies(row, "constructor_arguments_are_checked_at_build")
    rates = _constructor_rates(type(on_meta(row)))
    assert "drop_path_rate" in rates
    bad = [(dict(in_chans=0), r"in_chans must be an integer >= 1 .*got 0"),
           (dict(num_classes=-1), r"num_classes must be an integer >= 0 .*got -1"),
           (dict(drop_path_rate=-0.1), r"drop_path_rate must be a probability in \[0, 1\), got -0\.1")]
    bad += [({rate: 1.0}, rf"{rate} must be a probability in \[0, 1\), got 1\.0") for rate in sorted(rates)]
    with torch.device("meta"):  # refused before any weight exists
        for kwargs, message in bad:
            with pytest.raises(ValueError, match=message):
                zoo.create_model(row.name, **{**row.create_kwargs, **kwargs})


def _pooled_channels(model: torch.nn.Module, x: torch.Tensor) -> int:
    """The channel count the model's one GGeM module is given in a forward pass."""
    (pool,) = [m for m in model.modules() if isinstance(m, GGeM)]
    seen = []
    hook = pool.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].shape[1 if module.input_fmt == "NCHW" else -1]))
    with torch.no_grad():
        model(x)
    hook.remove()
    return seen[0]


@pytest.mark.parametrize("row", ROWS)
def test_ggem_groups_are_checked_against_the_pooled_width(row):
    """The group count must divide what the head really pools (RAVLT / MAViT: the projection,
    wider than num_features): a divisor of that width builds and runs, a non-divisor is refused
    naming it."""
    applies(row, "ggem_groups_are_checked_against_the_pooled_width")
    model = cached(row)
    if isinstance(getattr(model, "attn_pool", None), GGeM):  # the GGeM ViTs: start from their timm pooling
        model.reset_classifier(model.num_classes, "token")
    x = image(row, batch=1)
    width = _pooled_channels(apply_ggem(model, num_groups=1), x)
    apply_ggem(model, num_groups=width)  # one exponent per pooled channel
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, model.num_classes) and torch.isfinite(out).all()
    non_divisor = next(g for g in range(2, width + 2) if width % g)
    with torch.device("meta"):
        built = zoo.create_model(row.name, **{**row.create_kwargs, "global_pool": "ggem", "ggem_groups": width})
        assert [m.p.shape for m in built.modules() if isinstance(m, GGeM)] == [(width,)]
        with pytest.raises(ValueError, match=rf"the {width} pooled channels of .*ggem_groups={non_divisor}\."):
            zoo.create_model(row.name, **{**row.create_kwargs, "global_pool": "ggem", "ggem_groups": non_divisor})
