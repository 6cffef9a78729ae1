"""The four ViG golden fixtures on the Triton path (interpreter on CPU, real Triton on a GPU)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
import test_vig as t  # noqa: E402  (fixture helpers)
from golden import load_golden  # noqa: E402
from zoo.models.vig import checkpoint_filter_fn  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
    reason="needs TRITON_INTERPRET=1 or a CUDA device")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def run(model, golden):
    model = model.eval().to(DEVICE)
    with torch.no_grad():
        return model(golden.input.to(DEVICE))


@pytest.mark.parametrize("name", t.PLAIN_FIXTURES)
def test_vig_fixture_on_triton_path(name):
    golden = load_golden(name)
    model = t.build_plain(golden, kernel_impl="triton")
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    golden.assert_close(run(model, golden).cpu())


def test_vig_h_fixture_on_triton_path():
    golden = load_golden("vig__h_tiny_cfg")
    model = t.build_hier(golden, kernel_impl="triton")
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    golden.assert_close(run(model, golden).cpu())


def test_vig_h_backbone_fixture_on_triton_path():
    golden = load_golden("vig__h_tiny_cfg_det_backbone")
    backbone = t.build_backbone(golden, kernel_impl="triton")
    backbone.model.load_state_dict(checkpoint_filter_fn(golden.state_dict, backbone.model))
    golden.assert_close(t.concat([f.cpu() for f in run(backbone, golden)]))


def test_triton_path_trains():
    """Gradients through the model on the Triton path: against the float64 reference path, no
    worse than the float32 reference path (both lose ~1e-4 here: RMSNorms amplify rounding)."""
    golden = load_golden("vig__h_tiny_cfg")
    image = golden.input[:1, :, :24, :24]  # token grids 6x6 (ragged chunk), 3x3, 2x2, 1x1
    grads = []
    for impl, dtype, device in (("reference", torch.float64, "cpu"), ("reference", torch.float32, "cpu"),
                                ("triton", torch.float32, DEVICE)):
        model = t.build_hier(golden, kernel_impl=impl).train()
        model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
        model.to(device=device, dtype=dtype)
        model(image.to(device=device, dtype=dtype)).logsumexp(-1).sum().backward()
        grads.append({n: p.grad.double().cpu() for n, p in model.named_parameters()})
    exact, ref32, triton32 = grads
    for name, g in exact.items():
        err_ref = (ref32[name] - g).abs().max().item()
        err_triton = (triton32[name] - g).abs().max().item()
        assert err_triton <= 3 * err_ref + 1e-6 * max(1.0, g.abs().max().item()), (name, err_triton, err_ref)
