"""torch.fx feature extraction for every family's smallest variant (tests/exporting.py).

timm traces a model symbolically for `features_only=True, feature_cls="fx"` and in its own FX tests
(timm's tests/test_models.py, run on the zoo by tests/timm_suite/run.py); torchvision's
`create_feature_extractor` traces the same way. What would stop a symbolic trace (input checks, the
kernels' dispatch, shape-dependent control flow) is skipped or is a leaf of the graph (zoo/layers/fx.py).

- Each feature the FX extractor returns is the output of the module `feature_info` names, and the
  traced model's output is the eager model's: equal exactly, because the graph calls the same ATen
  ops in the same order on the same inputs (read in eager mode with forward hooks). With timm's
  tracer settings (its notrace modules and functions) and with torchvision's defaults.
- `timm.create_model(..., features_only=True, feature_cls="fx")` builds and gives the feature_info
  channels.
- The traced model trains: in train mode every parameter gets a gradient (as timm's
  test_model_backward_fx, at the row's small input).
"""
from __future__ import annotations

import dataclasses

import pytest
import timm
import torch
from timm.models import get_notrace_functions, get_notrace_modules
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from exporting import build, family_params, image

TIMM_TRACER = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions())

_DYNAMIC_VIT = ("timm's VisionTransformer with dynamic_img_size=True (the row's setting) resamples its position "
                "table through timm.layers.resample_abs_pos_embed, a notrace function only for timm's tracer "
                "(timm's own vit_* fails the same way with a plain tracer)")
# (family -> why) for torchvision's default tracer, without timm's notrace lists.
PLAIN_TRACER_FAILURES = {"ggem_vit": _DYNAMIC_VIT, "inline_deit": _DYNAMIC_VIT}
# MAXIM's feature_info names `stages.N.bottleneck`, a Sequential, whose FX node takes its last block's name.
_MAXIM_NODES = "MAXIM's feature_info names a Sequential (stages.N.bottleneck): no FX node has that name"
FX_FAILURES = {"maxim": _MAXIM_NODES}

# MAXIM's smallest registered variant takes ~90 s here to run and trace at its 64x64 row input: a one-stage,
# two-level MAXIM with 4x4 blocks and grids has every module type of the registered ones (same code path).
SMALL_MAXIM = dict(features=8, depth=2, num_stages=1, num_bottleneck_blocks=1, num_supervision_scales=2,
                   high_res_stages=1, block_size_hr=(4, 4), block_size_lr=(4, 4), grid_size_hr=(4, 4),
                   grid_size_lr=(4, 4))


def _small(row):
    if row.name.startswith("maxim_"):
        return dataclasses.replace(row, create_kwargs={**row.create_kwargs, **SMALL_MAXIM}, input_size=(3, 32, 32))
    return row


def _eager(model: torch.nn.Module, names: list[str], x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The model's output and the outputs of the named modules, from one eager forward."""
    seen: dict = {}
    handles = [model.get_submodule(name).register_forward_hook(
        lambda module, args, out, name=name: seen.setdefault(name, out)) for name in names]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return out, seen


def _first(out):
    # A module with a tuple output (MAXIM's encoder levels: (output, skip)): torchvision's node of that name
    # is the tuple's first element.
    return out[0] if isinstance(out, (tuple, list)) else out


def _same(got, expected) -> bool:
    return torch.equal(_first(got), _first(expected))


def _fx_matches_eager(row, tracer_kwargs) -> None:
    row = _small(row)
    model = build(row)
    names = [info["module"] for info in model.feature_info]
    output_node = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)[1][-1]  # what forward returns
    extractor = create_feature_extractor(model, return_nodes=names + [output_node], tracer_kwargs=tracer_kwargs)
    x = image(row, 2)
    with torch.no_grad():
        expected_out, expected = _eager(model, names, x)
        got = extractor(x)
    for name in names:
        assert _same(got[name], expected[name]), f"{name}: the FX feature differs from the eager module output"
    assert _same(got[output_node], expected_out), "the traced model's output differs from the eager output"


@pytest.mark.parametrize("row", family_params(FX_FAILURES))
def test_fx_features_and_output_equal_eager_with_timms_tracer(row):
    _fx_matches_eager(row, TIMM_TRACER)


@pytest.mark.parametrize("row", family_params({**PLAIN_TRACER_FAILURES, **FX_FAILURES}))
def test_fx_features_and_output_equal_eager_with_torchvisions_default_tracer(row):
    _fx_matches_eager(row, None)


@pytest.mark.parametrize("row", family_params(FX_FAILURES))
def test_features_only_with_the_fx_feature_class(row):
    """`feature_cls="fx"` returns the outputs of the modules feature_info names, in their own layout."""
    row = _small(row)
    model = timm.create_model(row.name, features_only=True, feature_cls="fx", **row.create_kwargs).eval()
    names = model.feature_info.module_name()
    x = image(row, 2)
    with torch.no_grad():
        features = model(x)
        _, expected = _eager(build(row), names, x)
    assert [tuple(f.shape) for f in features] == [tuple(_first(expected[n]).shape) for n in names]


@pytest.mark.parametrize("row", family_params())
def test_traced_model_trains(row):
    """timm's test_model_backward_fx: the graph of the train-mode model gives every parameter a gradient."""
    model = build(_small(row)).train()
    train_nodes, _ = get_graph_node_names(model, tracer_kwargs=TIMM_TRACER)
    graph = create_feature_extractor(model, return_nodes=[train_nodes[-1]], tracer_kwargs=TIMM_TRACER)
    out = next(iter(graph(image(_small(row), 2)).values()))
    out.float().mean().backward()
    missing = [n for n, p in graph.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
