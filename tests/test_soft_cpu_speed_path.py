"""SOFT's CPU path: the expanded distance |q|^2 + |l|^2 - 2 q.l^T (one matmul) against the direct form.

The official configs with released weights compute the expanded form (`kernel_method: "torch"`), the
official CUDA kernel and the zoo's Triton kernel the direct one; both are the same function. These tests
check the CPU path's correctness only (its speed is measured by benchmarks/cpu_vs_official.py).
Tolerances follow float32 rounding: an entry of the expanded form carries at most about
(d + 2) eps (|q|^2 + |l|^2) of cancellation error (d-term dot product plus the norms and the sum).
"""
from __future__ import annotations

import pytest
import torch

import zoo.layers.soft_attention as soft_attention
from zoo.kernels.gaussian_attention import gaussian_attention, gaussian_attention_reference, squared_distance
from zoo.kernels.gaussian_attention.reference import gaussian_kernel
from zoo.layers.soft_attention import SoftAttention

EPS32 = torch.finfo(torch.float32).eps


def _queries_and_landmarks(b=2, h=3, n=200, m=24, d=32, scale=1.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, n, d, generator=g, dtype=torch.float64) * scale
    lm = torch.randn(b, h, m, d, generator=g, dtype=torch.float64) * scale
    k = min(4, m, n)
    lm[..., :k, :] = q[..., :k, :]  # some zero distances: where cancellation is worst, relatively
    return q.to(dtype), lm.to(dtype)


def _cancellation_bound(q: torch.Tensor, lm: torch.Tensor) -> torch.Tensor:
    """Elementwise float32 rounding bound of |q|^2 + |l|^2 - 2 q.l^T, (..., N, m)."""
    d = q.shape[-1]
    norms = q.double().square().sum(-1)[..., :, None] + lm.double().square().sum(-1)[..., None, :]
    return (d + 2) * EPS32 * norms


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_expanded_distance_is_within_its_cancellation_bound(scale):
    q, lm = _queries_and_landmarks(scale=scale)
    exact = squared_distance(q.double(), lm.double(), "direct")
    expanded = squared_distance(q, lm, "expand")
    assert expanded.dtype == torch.float32 and expanded.shape == (2, 3, 200, 24)
    err = (expanded.double() - exact).abs()
    bound = _cancellation_bound(q, lm)
    assert (err <= bound).all(), f"worst error / bound {(err / bound).max().item():.3g}"
    # The direct form is exact at zero distance; the expanded one need not be (why they differ at all).
    assert squared_distance(q, lm, "direct")[..., :4, :4].diagonal(dim1=-2, dim2=-1).eq(0).all()


def test_expanded_distance_broadcasts_leading_dimensions():
    q, lm = _queries_and_landmarks(b=2, h=3, n=10, m=5, d=8, dtype=torch.float64)
    shared = lm[:1, :1]  # one set of landmarks for every image and head
    torch.testing.assert_close(squared_distance(q, shared, "expand"), squared_distance(q, shared, "direct"))


def test_cpu_path_uses_the_expanded_form_by_default():
    q, lm = _queries_and_landmarks()
    g = torch.Generator().manual_seed(1)
    mixing = torch.randn(2, 3, 24, 24, generator=g) / 24
    v = torch.randn(2, 3, 200, 16, generator=g)
    out = gaussian_attention(q, lm, mixing, v)
    assert torch.equal(out, gaussian_attention_reference(q, lm, mixing, v, formula="expand"))
    assert torch.equal(out, gaussian_attention_reference(q, lm, mixing, v))
    # ... and it is the attention of the direct form within the rounding of its distances: each K1 entry
    # exp(-D/2) moves by at most half the distance bound (relative), twice along K1 (M) K1^T V.
    exact = gaussian_attention_reference(q.double(), lm.double(), mixing.double(), v.double(), formula="direct")
    k1 = gaussian_kernel(q.double(), lm.double(), "direct")
    magnitude = k1 @ (mixing.double().abs() @ (k1.transpose(-1, -2) @ v.double().abs()))
    relative = _cancellation_bound(q, lm).amax() + 2 * (q.shape[-2] + lm.shape[-2]) * EPS32  # + matmul rounding
    assert ((out.double() - exact).abs() <= relative * magnitude).all()


def test_expanded_form_gradients():
    q, lm = _queries_and_landmarks(b=1, h=2, n=9, m=4, d=5, scale=0.5, dtype=torch.float64)
    q, lm = q.requires_grad_(), lm.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: gaussian_kernel(a, b, "expand"), (q, lm))
    g = torch.randn(1, 2, 9, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expanded = torch.autograd.grad(gaussian_kernel(q, lm, "expand"), (q, lm), g)
    direct = torch.autograd.grad(gaussian_kernel(q, lm, "direct"), (q, lm), g)
    for a, b in zip(expanded, direct):
        torch.testing.assert_close(a, b)


def test_unknown_formula_is_named():
    q, lm = _queries_and_landmarks(n=4, m=2)
    with pytest.raises(ValueError, match=r"formula must be one of \('expand', 'direct'\), got 'cdist'"):
        squared_distance(q, lm, "cdist")


def test_landmark_kernel_follows_the_attention_path(monkeypatch):
    """On CPU the fused path's K2 is expanded too (the official configs compute K1 and K2 one way)."""
    formulas = []
    original = soft_attention.gaussian_kernel
    monkeypatch.setattr(soft_attention, "gaussian_kernel", lambda a, b, f: formulas.append(f) or original(a, b, f))
    attn = SoftAttention(64, 2, ratio=2, conv_size=3).eval()
    with torch.no_grad():
        attn(torch.randn(1, 64, 64), (8, 8))
    assert formulas == ["expand"]


def test_float64_stays_float64(monkeypatch):
    seen = []
    original = soft_attention.newton_inverse
    monkeypatch.setattr(soft_attention, "newton_inverse", lambda m, it: seen.append(m.dtype) or original(m, it))
    attn = SoftAttention(64, 2, ratio=2, conv_size=3).double()
    out = attn(torch.randn(2, 64, 64, dtype=torch.float64), (8, 8))
    assert seen == [torch.float64] and out.dtype == torch.float64
