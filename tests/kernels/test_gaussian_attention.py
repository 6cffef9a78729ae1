"""The fused Gaussian-kernel attention (Triton, interpreted on CPU) against its reference."""
from __future__ import annotations

import pytest
import torch
from golden import load_golden
from kernel_checks import DEVICE, assert_close, needs_triton

from zoo.kernels.gaussian_attention import gaussian_attention, gaussian_attention_reference, squared_distance

# (B, H, N, m, d, e): ragged N and m tiles, several m blocks, several splits of the N reduction, e != d.
SHAPES = [(1, 2, 70, 20, 16, 16), (2, 1, 150, 9, 32, 32), (1, 1, 40, 70, 32, 16)]


def _inputs(shape, seed=0):
    b, h, n, m, d, e = shape
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, n, d, generator=g, dtype=torch.float64) * 0.25
    lm = torch.randn(b, h, m, d, generator=g, dtype=torch.float64) * 0.25
    mix = torch.randn(b, h, m, m, generator=g, dtype=torch.float64) / m
    v = torch.randn(b, h, n, e, generator=g, dtype=torch.float64)
    return q, lm, mix, v


def test_reference_is_the_definition():
    q, lm, mix, v = _inputs(SHAPES[0])
    k1 = torch.exp(-((q[..., :, None, :] - lm[..., None, :, :]) ** 2).sum(-1) / 2)
    torch.testing.assert_close(gaussian_attention_reference(q, lm, mix, v), k1 @ mix @ k1.transpose(-1, -2) @ v)
    torch.testing.assert_close(squared_distance(q, lm, "expand"), squared_distance(q, lm, "direct"))


@needs_triton
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_and_every_gradient_match_the_reference(shape):
    inputs = [t.requires_grad_() for t in _inputs(shape)]
    grad_out = torch.randn(*shape[:3], shape[5], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = gaussian_attention_reference(*inputs)
    expected_grads = torch.autograd.grad(expected, inputs, grad_out)
    inputs32 = [t.detach().to(DEVICE, torch.float32).requires_grad_() for t in inputs]
    out = gaussian_attention(*inputs32, impl="triton")
    grads = torch.autograd.grad(out, inputs32, grad_out.to(DEVICE, torch.float32))
    assert_close("output", out, expected)
    for name, grad, expected_grad in zip(("dq", "dlandmarks", "dmixing", "dv"), grads, expected_grads):
        assert_close(name, grad, expected_grad)


@needs_triton
def test_no_query_by_landmark_tensor_is_kept_for_backward():
    b, h, n, m, d, e = 1, 2, 130, 20, 16, 16
    inputs = [t.to(DEVICE, torch.float32).requires_grad_() for t in _inputs((b, h, n, m, d, e))]
    out = gaussian_attention(*inputs, impl="triton")
    saved = out.grad_fn.saved_tensors
    assert saved and max(t.numel() for t in saved) <= b * h * n * max(d, e)
    assert not any(t.shape[-2:] in ((n, m), (m, n)) for t in saved)


def test_shape_errors_are_clear():
    q, lm, mix, v = _inputs(SHAPES[0])
    with pytest.raises(ValueError, match="mixing"):
        gaussian_attention(q, lm, mix[..., :-1], v)


@needs_triton
@pytest.mark.parametrize("name,variant", [("soft__tiny_cfg", "soft_tiny"), ("soft__norm_tiny_cfg", "soft_norm_tiny")])
def test_golden_fixtures_on_the_kernel_path(name, variant, monkeypatch):
    import zoo
    from zoo.models.soft import checkpoint_filter_fn
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "triton")
    golden = load_golden(name)
    c = golden.constructor
    model = zoo.create_model(variant, embed_dims=c["embed_dims"], depths=c["depths"], num_heads=c["num_heads"],
                             num_classes=c["num_classes"]).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        golden.assert_close(model.to(DEVICE)(golden.input.to(DEVICE)).cpu())


def test_direct_distance_backward_is_the_subtraction_gradient():
    q, lm, _, _ = _inputs(SHAPES[0])
    q, lm = q.requires_grad_(), lm.requires_grad_()
    g = torch.randn(q.shape[0], q.shape[1], q.shape[2], lm.shape[2], dtype=torch.float64)
    expected = torch.autograd.grad(((q[..., :, None, :] - lm[..., None, :, :]) ** 2).sum(-1), (q, lm), g)
    for grad, want in zip(torch.autograd.grad(squared_distance(q, lm), (q, lm), g), expected):
        torch.testing.assert_close(grad, want)


@needs_triton
def test_expanded_distance_stays_within_its_cancellation_bound():
    """The kernels form distances as |q|^2 + |l|^2 - 2 q.l^T. With q and l far from the origin
    (a common offset of 2 per channel) and close to each other, float32 cancellation costs about
    eps32 (|q|^2 + |l|^2) per distance, so K1 and everything after it carry a relative error of
    that size: the bound the comparison uses (4x for the few roundings on top)."""
    shape = (1, 1, 70, 20, 32, 16)
    q, lm, mix, v = _inputs(shape, seed=3)
    q, lm = q + 2.0, lm + 2.0
    inputs = [t.requires_grad_() for t in (q, lm, mix, v)]
    grad_out = torch.randn(*shape[:3], shape[5], generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = gaussian_attention_reference(*inputs)
    expected_grads = torch.autograd.grad(expected, inputs, grad_out)
    norms = q.detach().pow(2).sum(-1).max() + lm.detach().pow(2).sum(-1).max()
    ratio = 4 * torch.finfo(torch.float32).eps * norms.item()
    assert ratio > 1e-5  # the offset makes cancellation the dominant error
    inputs32 = [t.detach().to(DEVICE, torch.float32).requires_grad_() for t in inputs]
    out = gaussian_attention(*inputs32, impl="triton")
    grads = torch.autograd.grad(out, inputs32, grad_out.to(DEVICE, torch.float32))
    assert_close("output", out, expected, ratio)
    for name, grad, expected_grad in zip(("dq", "dlandmarks", "dmixing", "dv"), grads, expected_grads):
        assert_close(name, grad, expected_grad, ratio)


@needs_triton
def test_strided_inputs_are_read_in_place():
    """Channels-first views (token stride 1) and a transposed mixing go to the kernels without a copy
    and give the reference's result."""
    shape = (1, 2, 70, 20, 16, 16)
    q, lm, mix, v = _inputs(shape, seed=5)
    expected = gaussian_attention_reference(q, lm, mix, v)

    def channels_first(t):  # same values, (B, H, C, R) storage
        return t.to(DEVICE, torch.float32).transpose(-1, -2).contiguous().transpose(-1, -2)

    q32, lm32, v32 = channels_first(q), channels_first(lm), channels_first(v)
    mix32 = mix.to(DEVICE, torch.float32).transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not q32.is_contiguous() and not mix32.is_contiguous()
    from zoo.kernels.gaussian_attention import _flat
    assert _flat(q32).data_ptr() == q32.data_ptr() and _flat(q32).stride(-2) == 1  # a view, no copy
    out = gaussian_attention(q32, lm32, mix32, v32, impl="triton")
    assert_close("output", out, expected)


@needs_triton
def test_mixed_input_dtypes_match_the_reference():
    """bfloat16 queries and values with float32 landmarks and mixing (what the benchmark and an
    autocast caller pass): the kernels take each operand in its own dtype and agree with the
    reference within bfloat16's ratio, forward and backward, each gradient in its input's dtype."""
    shape = (1, 2, 70, 20, 16, 16)
    q, lm, mix, v = _inputs(shape, seed=6)
    inputs = [t.requires_grad_() for t in (q, lm, mix, v)]
    grad_out = torch.randn(*shape[:3], shape[5], generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    expected = gaussian_attention_reference(*inputs)
    expected_grads = torch.autograd.grad(expected, inputs, grad_out)
    dtypes = (torch.bfloat16, torch.float32, torch.float32, torch.bfloat16)
    mixed = [t.detach().to(DEVICE, dt).requires_grad_() for t, dt in zip(inputs, dtypes)]
    out = gaussian_attention(*mixed, impl="triton")
    grads = torch.autograd.grad(out, mixed, grad_out.to(DEVICE, torch.bfloat16))
    assert out.dtype == torch.bfloat16
    ratio = 4 * torch.finfo(torch.bfloat16).eps  # q, v and dx are rounded to bfloat16 before the kernels
    assert_close("output", out, expected, ratio)
    for name, grad, expected_grad, dt in zip(("dq", "dlandmarks", "dmixing", "dv"), grads, expected_grads, dtypes):
        assert grad.dtype == dt, name
        assert_close(name, grad, expected_grad, ratio)
