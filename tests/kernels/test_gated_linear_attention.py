"""Bidirectional gated linear attention: definition, reference forms, Triton kernel.

The expected values come from the formula of vig.md §2.2 written out directly
(`definition` below: the double sum, no recurrence, no chunks), then the two
reference forms are checked against it, and the Triton kernel against the
references, forward and every input gradient.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kernel_checks import DEVICE, RATIO, assert_close, needs_triton

from zoo.kernels.gated_linear_attention import _path, bidirectional_gla
from zoo.kernels.gated_linear_attention.reference import bigla_chunked, bigla_recurrent


def make_inputs(B, N, H, dk, dv, dtype=torch.float64, gate_scale=1.0, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, B, N, H, dk, generator=g, dtype=torch.float64)
    v = torch.randn(B, N, H, dv, generator=g, dtype=torch.float64)
    # ViG's log-decays: logsigmoid(z) / 16, here with z spread wide so decays span (0, 1).
    a_f, a_b = F.logsigmoid(3 * torch.randn(2, B, N, H, dk, generator=g, dtype=torch.float64)) / 16 * gate_scale
    return [t.to(device=device, dtype=dtype) for t in (q, k, v, a_f, a_b)]


def definition(q, k, v, a_f, a_b, scale):
    """vig.md §2.2 as a double sum: A_f inclusive, B exclusive prefix sums (float64)."""
    A = a_f.cumsum(1)
    Bx = a_b.cumsum(1) - a_b
    N = q.shape[1]
    t = torch.arange(N)
    fwd = (t[:, None] >= t[None, :]).double()[None, :, :, None, None]   # (1, t, s, 1, 1)
    bwd = (t[:, None] <= t[None, :]).double()[None, :, :, None, None]
    # decay[b, t, s, h, c]
    dec_f = torch.exp((A[:, :, None] - A[:, None, :]).clamp(max=0)) * fwd
    dec_b = torch.exp((Bx[:, None, :] - Bx[:, :, None]).clamp(max=0)) * bwd
    qk = scale * q[:, :, None] * k[:, None, :]                           # (b, t, s, h, c)
    w = (qk * (dec_f + dec_b)).sum(-1)                                  # (b, t, s, h)
    return torch.einsum("btsh,bshv->bthv", w, v)


@pytest.mark.parametrize("N", [1, 7, 40])
def test_recurrent_form_is_the_definition(N):
    q, k, v, a_f, a_b = make_inputs(2, N, 2, 8, 4)
    assert_close("o", bigla_recurrent(q, k, v, a_f, a_b, 0.3), definition(q, k, v, a_f, a_b, 0.3), ratio=1e-12)


def test_definition_slips_are_visible():
    """Query-side gate, per-direction gates, diagonal twice: each slip changes the output."""
    q, k, v, a_f, a_b = make_inputs(1, 12, 1, 8, 4, gate_scale=8)
    ref = bigla_recurrent(q, k, v, a_f, a_b)
    assert (bigla_recurrent(q, k, v, a_f, a_f) - ref).abs().max() > 1e-3            # one gate for both
    assert (bigla_recurrent(q, k, v, a_f.roll(1, 1), a_b) - ref).abs().max() > 1e-3  # key-side gate
    diag = torch.einsum("bnhc,bnhc->bnh", q * 8 ** -0.5, k)[..., None] * v
    assert (ref - diag - definition(q, k, v, a_f, a_b, 8 ** -0.5)).abs().max() > 1e-3  # diagonal once


@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
@pytest.mark.parametrize("N", [5, 16, 37])
def test_chunked_equals_recurrent_float64(chunk, N):
    q, k, v, a_f, a_b = make_inputs(2, N, 2, 16, 8)
    assert_close("o", bigla_chunked(q, k, v, a_f, a_b, chunk_size=chunk), bigla_recurrent(q, k, v, a_f, a_b),
                 ratio=1e-12)


def test_chunked_gradients_equal_recurrent_gradients():
    inputs = [t.requires_grad_() for t in make_inputs(1, 21, 2, 8, 8)]
    do = torch.randn(1, 21, 2, 8, dtype=torch.float64)
    g_rec = torch.autograd.grad(bigla_recurrent(*inputs), inputs, do)
    g_chk = torch.autograd.grad(bigla_chunked(*inputs, chunk_size=8), inputs, do)
    for name, a, b in zip(("dq", "dk", "dv", "da_f", "da_b"), g_chk, g_rec):
        assert_close(name, a, b, ratio=1e-12)


def test_strong_gates_do_not_overflow():
    # log-decays down to about -60 per token: a factorised exp(A[t]) exp(-A[s]) would overflow.
    q, k, v, a_f, a_b = make_inputs(1, 70, 1, 8, 8, gate_scale=200.0)
    out = bigla_chunked(q.float(), k.float(), v.float(), a_f.float(), a_b.float(), chunk_size=64)
    assert torch.isfinite(out).all()
    assert_close("o", out, bigla_recurrent(q, k, v, a_f, a_b))


def test_dispatch(monkeypatch):
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    inputs = make_inputs(1, 4, 1, 8, 8, dtype=torch.float32)
    meta = [t.to("meta") for t in inputs]  # a device type the dispatch reads without running anything
    assert _path(*inputs, "auto") == "reference"
    assert _path(*inputs, "reference") == "reference"
    assert _path(*meta, "auto") == "reference"
    with pytest.raises(ValueError, match="impl must be one of"):
        bidirectional_gla(*inputs, impl="cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="the Triton path .* needs CUDA tensors, got device cpu"):
        bidirectional_gla(*inputs, impl="triton")  # was Triton's '0 active drivers'
    q, k, v, a_f, a_b = inputs
    with pytest.raises(ValueError, match=r"\(B, N, H, dk\)"):
        bidirectional_gla(q, k[:, :3], v, a_f, a_b)


# --- Triton kernel ---------------------------------------------------------------------------

SHAPES = [  # (B, N, H, dk, dv): the variants' head dims (plain ViG 32/64, ViG-H 16/32), ragged N
    (1, 1, 1, 16, 32),     # less than one 16-token sub-chunk
    (2, 37, 2, 16, 32),    # ragged, inside one 64-token chunk
    (1, 35, 1, 32, 64),
    (1, 16, 2, 32, 64),
    (1, 140, 1, 16, 32),   # three chunks, the last ragged: the state scans and the gate carries
    (1, 70, 1, 24, 40),    # head dims below their power-of-two tiles, and two channel tiles of dq / dk
]


@needs_triton
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_triton_forward_and_gradients_match_reference(shape):
    ref_inputs = [t.requires_grad_() for t in make_inputs(*shape)]
    expected = bigla_recurrent(*ref_inputs)
    do = torch.randn(expected.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected_grads = torch.autograd.grad(expected, ref_inputs, do)
    inputs = [t.detach().to(DEVICE, torch.float32).requires_grad_() for t in ref_inputs]
    out = bidirectional_gla(*inputs, impl="triton")
    assert out.dtype == torch.float32 and out.shape == expected.shape
    assert_close("o", out, expected, ratio=2e-6)
    grads = torch.autograd.grad(out, inputs, do.to(DEVICE, torch.float32))
    # the gates' gradients are zero in exact arithmetic for N = 1, summed from terms as large as the others
    largest = max(e.abs().max().item() for e in expected_grads)
    for name, g, e in zip(("q", "k", "v", "a_f", "a_b"), grads, expected_grads):
        assert g.dtype == torch.float32, name
        assert_close(name, g, e, ratio=5e-6, magnitude=largest if shape[1] == 1 else 0.0)


@needs_triton
def test_triton_reads_strided_views_of_a_fused_projection():
    """The model passes q, k, v as views of one qkv tensor and a_f, a_b as views of one gate tensor."""
    B, N, H, dk, dv = 1, 21, 2, 16, 32
    g = torch.Generator().manual_seed(5)
    qkv = torch.randn(B, N, H * (2 * dk + dv), generator=g).to(DEVICE)
    gates = F.logsigmoid(torch.randn(B, N, 2 * H * dk, generator=g)).to(DEVICE) / 16
    q, k, v = qkv.split([H * dk, H * dk, H * dv], -1)
    a_f, a_b = gates.chunk(2, -1)
    views = [q.unflatten(-1, (H, dk)), k.unflatten(-1, (H, dk)), v.unflatten(-1, (H, dv)),
             a_f.unflatten(-1, (H, dk)), a_b.unflatten(-1, (H, dk))]
    assert not views[0].is_contiguous()
    do = torch.randn(B, N, H, dv, generator=g).to(DEVICE)
    out, grads = _grads(lambda *t: bidirectional_gla(*t, impl="triton"), views, do)
    expected, expected_grads = _grads(bigla_recurrent, [t.double().cpu() for t in views], do.double().cpu())
    assert_close("o", out, expected, ratio=2e-6)
    for name, gr, e in zip(("q", "k", "v", "a_f", "a_b"), grads, expected_grads):
        assert_close(name, gr, e, ratio=5e-6)


@needs_triton
def test_triton_bfloat16_keeps_fp32_state():
    """bf16 in and out; the scan accumulates in fp32, so the error is the inputs' and output's rounding."""
    inputs = make_inputs(1, 40, 2, 16, 32, dtype=torch.float32)
    q, k, v = (t.to(DEVICE, torch.bfloat16) for t in inputs[:3])
    a_f, a_b = (t.to(DEVICE) for t in inputs[3:])
    out = bidirectional_gla(q, k, v, a_f, a_b, impl="triton")
    assert out.dtype == torch.bfloat16
    expected = bigla_recurrent(*(t.double().cpu() for t in (q, k, v, a_f, a_b)))
    assert_close("o", out, expected)


def _grads(fn, inputs, do):
    inputs = [t.detach().requires_grad_() for t in inputs]
    out = fn(*inputs)
    return out, torch.autograd.grad(out, inputs, do)


@needs_triton
def test_triton_strong_gates_stay_finite():
    """Log-decays down to about -110 per token over two chunks: every exponent the kernels form is a
    sum of log-decays (<= 0), none a factorised exp(A[t]) exp(-A[s]). The kernels' exponents are
    differences of fp32 in-sub-chunk cumsums (up to 16 tokens): each decay is off by up to
    eps32 * 16 * max|a| relatively, which sets the tolerance."""
    inputs = make_inputs(1, 70, 1, 16, 32, gate_scale=200.0)
    ratio = max(2e-5, torch.finfo(torch.float32).eps * 16 * max(t.abs().max().item() for t in inputs[3:]))
    do = torch.randn(1, 70, 1, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected, expected_grads = _grads(bigla_recurrent, inputs, do)
    out, grads = _grads(lambda *t: bidirectional_gla(*t, impl="triton"),
                        [t.to(DEVICE, torch.float32) for t in inputs], do.to(DEVICE, torch.float32))
    assert torch.isfinite(out).all()
    assert_close("o", out, expected, ratio=ratio)
    for name, g, e in zip(("q", "k", "v", "a_f", "a_b"), grads, expected_grads):
        assert_close(name, g, e, ratio=ratio)


@needs_triton
@pytest.mark.parametrize("dtype, gate_dtype, shape", [
    (torch.bfloat16, torch.float32, (1, 70, 2, 16, 32)),    # ViG's autocast: 16-bit q, k, v, fp32 gates
    (torch.bfloat16, torch.bfloat16, (1, 130, 1, 32, 64)),  # three chunks
    (torch.float16, torch.float16, (1, 40, 1, 64, 64)),
], ids=["bf16-fp32gates", "bf16", "fp16"])
def test_triton_16bit_forward_and_gradients(dtype, gate_dtype, shape):
    """16-bit q, k, v: tl.dot operands rounded to the dtype (<= 2^-8 relative for bf16, 2^-11 for fp16,
    per operand), fp32 accumulation and fp32 states; compared with float64 on the same rounded inputs,
    at RATIO of the dtype (1e-2 of the compared tensor's RMS, 10x that of its max)."""
    inputs = make_inputs(*shape)
    rounded = [t.to(dtype) for t in inputs[:3]] + [t.to(gate_dtype) for t in inputs[3:]]
    do = torch.randn(*shape[:3], shape[4], generator=torch.Generator().manual_seed(6), dtype=torch.float64).to(dtype)
    expected, expected_grads = _grads(bigla_recurrent, [t.double() for t in rounded], do.double())
    out, grads = _grads(lambda *t: bidirectional_gla(*t, impl="triton"), [t.to(DEVICE) for t in rounded],
                        do.to(DEVICE))
    assert out.dtype == dtype
    assert_close("o", out, expected)
    for name, g, e, t in zip(("q", "k", "v", "a_f", "a_b"), grads, expected_grads, rounded):
        assert g.dtype == t.dtype, name
        assert_close(name, g, e, ratio=RATIO[dtype])
