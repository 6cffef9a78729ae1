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
    """Gradients through the model on the Triton path equal the reference path's."""
    golden = load_golden("vig__h_tiny_cfg")
    grads = []
    for impl in ("reference", "triton"):
        model = t.build_hier(golden, kernel_impl=impl).to(DEVICE).train()
        model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
        model(golden.input[:1, :, :24, :24].to(DEVICE)).logsumexp(-1).sum().backward()
        grads.append({n: p.grad.cpu() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)
