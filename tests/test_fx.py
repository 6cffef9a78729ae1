"""torch.fx feature extraction for every family's smallest variant (tests/exporting.py).

timm traces a model symbolically for `features_only=True, feature_cls="fx"` and in its own FX tests
(timm's tests/test_models.py, run on the zoo by tests/timm_suite/run.py); torchvision's
`create_feature_extractor` traces the same way. What would stop a symbolic trace (input checks, the
kernels' dispatch, shape-dependent control flow) is skipped or is a leaf of the graph (zoo/layers/fx.py).

- Each feature timm's FX extractor (FeatureGraphNet, what `feature_cls="fx"` builds) returns is the
  output of the module `feature_info` names, and the traced model's output is the eager model's:
  equal exactly, because the graph calls the same ATen ops in the same order on the same inputs
  (read in eager mode with forward hooks). The output with timm's tracer settings (its notrace
  modules and functions) and with torch.fx's plain tracer (what torchvision uses by default).
- `timm.create_model(..., features_only=True, feature_cls="fx")` builds (the families with feature
  norms pass timm's getter an option the FX extractor does not take).
- The traced model trains: in train mode every parameter gets a gradient (as timm's
  test_model_backward_fx, at the row's small input).
Each symbolic trace takes seconds on a CPU core: a test traces once or twice.
"""
from __future__ import annotations

import dataclasses

import pytest
import timm
import torch
from exporting import build, family_of, family_params, image
from timm.models import FeatureGraphNet, get_notrace_functions, get_notrace_modules
from torchvision.models.feature_extraction import NodePathTracer

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


def _trace(model: torch.nn.Module, tracer_kwargs: dict | None) -> torch.fx.GraphModule:
    tracer = NodePathTracer(**(tracer_kwargs or {}))
    graph = tracer.trace(model)
    return torch.fx.GraphModule(tracer.root, graph)


@pytest.mark.parametrize("row", family_params(FX_FAILURES))
def test_fx_features_equal_the_eager_module_outputs(row):
    row = _small(row)
    model = build(row)
    names = [info["module"] for info in model.feature_info]
    extractor = FeatureGraphNet(model, out_indices=tuple(range(len(names))))  # timm's, with timm's tracer
    x = image(row, 2)
    with torch.no_grad():
        _, expected = _eager(model, names, x)
        got = extractor(x)
    assert len(got) == len(names)
    for name, feature in zip(names, got, strict=True):
        assert _same(feature, expected[name]), f"{name}: the FX feature differs from the eager module output"


@pytest.mark.parametrize("tracer_kwargs", [TIMM_TRACER, None], ids=["timm-tracer", "plain-tracer"])
@pytest.mark.parametrize("row", family_params())
def test_traced_output_equals_eager(row, tracer_kwargs):
    if tracer_kwargs is None and family_of(row.name) in PLAIN_TRACER_FAILURES:
        pytest.xfail(PLAIN_TRACER_FAILURES[family_of(row.name)])
    row = _small(row)
    model = build(row)
    x = image(row, 2)
    with torch.no_grad():
        assert _same(_trace(model, tracer_kwargs)(x), model(x))


@pytest.mark.parametrize("name", ["ravlt_t", "poolformerv1_s12"])
def test_features_only_with_the_fx_feature_class(name):
    """create_model's route: a family with feature norms (timm's getter option `norm`) builds FeatureGraphNet."""
    model = timm.create_model(name, features_only=True, feature_cls="fx").eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 32, 32))
    assert [f.shape[1] for f in features] == model.feature_info.channels()


@pytest.mark.parametrize("row", family_params())
def test_traced_model_trains(row):
    """timm's test_model_backward_fx: the graph of the train-mode model gives a gradient to every parameter
    the eager model gives one (all of them, but MAXIM's output convs of the scales its output skips)."""
    row = _small(row)
    model = build(row).train()
    x = image(row, 2)
    model(x).float().mean().backward()
    eager = {n for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    graph = _trace(model, TIMM_TRACER)
    graph(x).float().mean().backward()
    traced = {n for n, p in graph.named_parameters() if p.grad is not None}
    assert traced == eager, f"gradients differ: {sorted(traced ^ eager)[:5]}"
    assert len(eager) == len(list(model.parameters())) or row.name.startswith("maxim_")
