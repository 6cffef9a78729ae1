"""The four ViG golden fixtures on the Triton path (interpreter on CPU, real Triton on a GPU)."""
from __future__ import annotations

import pytest
import test_vig as t  # noqa: E402  (fixture helpers)
import torch
from golden import load_golden  # noqa: E402
from kernel_checks import DEVICE, needs_triton  # noqa: E402

from zoo.models.vig import checkpoint_filter_fn  # noqa: E402

pytestmark = needs_triton


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


# float32 gradients of this model, compared with the float64 reference: bounded by the dtype and each
# gradient's magnitude, never by another float32 run's rounding (that changes with threads and order).
# Backward through ~30 normalised layers amplifies float32 rounding (eps 1.2e-7) about 10^3-fold
# (the float32 reference path is off by up to 6e-5 of a tensor's largest gradient); a wrong kernel
# gradient is off by O(1). A gradient that is zero in exact arithmetic (the gate of a 1-token map)
# still picks up rounding from its neighbours: the floor is relative to the model's largest gradient.
GRAD_RTOL_FP32 = 1e-3
GRAD_FLOOR_FP32 = 1e-6


def test_triton_path_trains():
    """Gradients through the model on the Triton path match the float64 reference path."""
    golden = load_golden("vig__h_tiny_cfg")
    image = golden.input[:1, :, :24, :24]  # token grids 6x6 (ragged chunk), 3x3, 2x2, 1x1
    grads = []
    for impl, dtype, device in (("reference", torch.float64, "cpu"), ("triton", torch.float32, DEVICE)):
        model = t.build_hier(golden, kernel_impl=impl).train()
        model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
        model.to(device=device, dtype=dtype)
        model(image.to(device=device, dtype=dtype)).logsumexp(-1).sum().backward()
        grads.append({n: p.grad.double().cpu() for n, p in model.named_parameters()})
    exact, triton32 = grads
    largest = max(g.abs().max().item() for g in exact.values())
    assert largest > 0
    for name, g in exact.items():
        err = (triton32[name] - g).abs().max().item()
        bound = GRAD_RTOL_FP32 * g.abs().max().item() + GRAD_FLOOR_FP32 * largest
        assert err <= bound, (f"{name}: max abs error {err:.3g} > {bound:.3g} "
                              f"(largest |grad| {g.abs().max().item():.3g})")
