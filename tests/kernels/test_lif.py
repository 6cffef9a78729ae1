"""The multi-step LIF neuron: the Triton kernel against the reference, the fixture, hand-computed cases.

The Triton path runs under TRITON_INTERPRET=1 on CPU (kernel_checks.py), on the GPU where there is one.
"""
from __future__ import annotations

import pytest
import torch
from golden import GOLDEN_DIR, load_golden  # noqa: E402
from kernel_checks import DEVICE, needs_triton  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from zoo.kernels.lif import _path, lif_backward_reference, multistep_lif, multistep_lif_reference  # noqa: E402

BOTH = ["reference", pytest.param("triton", marks=needs_triton)]


def _input(shape, seed=0, dyadic=True, dtype=torch.float32):
    """Membrane inputs around threshold; half of them multiples of 1/8 so exact ties h == v_th occur."""
    g = torch.Generator().manual_seed(seed)
    x = 0.8 + 1.2 * torch.randn(shape, generator=g, dtype=torch.float64)
    if dyadic:
        x[..., ::2] = torch.round(8 * x[..., ::2]) / 8
    return x.to(device=DEVICE, dtype=dtype)


@pytest.mark.parametrize("impl", BOTH)
def test_fixture_spikes_exact_and_gradients(impl):
    golden = load_golden("maxformer__lif_multistep")
    c = golden.constructor
    assert (c["tau"], c["v_threshold"], c["v_reset"], c["detach_reset"]) == (2.0, 1.0, 0.0, True)
    x = golden.input.to(DEVICE).requires_grad_()
    spikes = multistep_lif(x, tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate_alpha=4.0, impl=impl)
    assert torch.equal(spikes.cpu(), golden.output), "spikes differ from spikingjelly's"
    (grad,) = torch.autograd.grad(spikes, x, fixture_tensor("grad_output").to(DEVICE))
    expected = fixture_tensor("grad.input")
    torch.testing.assert_close(grad.cpu(), expected, atol=golden.meta["grad_atol"], rtol=golden.meta["grad_rtol"])


def fixture_tensor(key: str) -> torch.Tensor:
    """The neuron fixture's extra tensors (grad_output, grad.input, v_seq)."""
    return load_file(GOLDEN_DIR / "maxformer__lif_multistep.safetensors")[key]


def test_fixture_membrane_and_ties():
    golden = load_golden("maxformer__lif_multistep")
    spikes, v_seq = multistep_lif_reference(golden.input, return_membrane=True)
    torch.testing.assert_close(v_seq, fixture_tensor("v_seq"), atol=1e-6, rtol=0)
    # The fixture's dyadic channels hold exact ties h == 1.0, and they spike.
    x = golden.input.double()
    h0 = x[0] / 2
    ties = h0 == 1.0
    assert ties.any()
    assert bool(spikes[0][ties].eq(1).all())


@pytest.mark.parametrize("impl", BOTH)
def test_constant_input_hand_computed(impl):
    # tau = 2, v_th = 1: h_t = v/2 + x/2. x = 1.2 -> h = .6, .9, 1.05 (spike, reset), .6, .9, 1.05 ...
    x = torch.tensor([1.2, 2.0, 1.99, 0.5, 4.0], dtype=torch.float64, device=DEVICE).repeat(6, 1)
    spikes = multistep_lif(x, impl=impl).cpu()
    expected = torch.tensor([
        [0, 1, 0, 0, 1],   # x = 2.0: h = 1.0 exactly, a tie, spikes
        [0, 1, 1, 0, 1],   # x = 1.99: h1 = .4975 + .995 = 1.4925
        [1, 1, 0, 0, 1],
        [0, 1, 1, 0, 1],
        [0, 1, 0, 0, 1],
        [1, 1, 1, 0, 1],
    ], dtype=torch.float64)
    assert torch.equal(spikes, expected)
    # T = 1: s = [x >= 2 v_th]; threshold 0.5 for the attention LIF.
    one = torch.tensor([[0.99, 1.0, 1.01, 2.0]], device=DEVICE)
    assert multistep_lif(one, v_threshold=0.5, impl=impl).cpu().tolist() == [[0.0, 1.0, 1.0, 1.0]]


@pytest.mark.parametrize("impl", BOTH)
def test_hand_computed_gradient_two_steps(impl):
    # T = 2, one neuron, x = (2, 1): h0 = 1 (tie, spike, reset), h1 = 0.5.
    # sg(u) = 4 sig(4u)(1 - sig(4u)); sg(0) = 1. g1 = gs1 * sg(-0.5); g0 = gs0 * 1 + g1 * 0.5 * (1 - 1) = gs0.
    x = torch.tensor([[2.0], [1.0]], dtype=torch.float64, device=DEVICE, requires_grad=True)
    gs = torch.tensor([[0.3], [-0.7]], dtype=torch.float64, device=DEVICE)
    (grad,) = torch.autograd.grad(multistep_lif(x, impl=impl), x, gs)
    sig = 1 / (1 + torch.exp(torch.tensor(2.0, dtype=torch.float64)))
    g1 = -0.7 * 4 * sig * (1 - sig)
    expected = torch.stack([torch.tensor(0.3 / 2, dtype=torch.float64), g1 / 2]).reshape(2, 1)
    torch.testing.assert_close(grad.cpu(), expected)
    # Without detach_reset the reset path carries gradient: dv0/dh0 = (1 - s0) + (0 - h0) * sg0 = -1.
    (grad,) = torch.autograd.grad(multistep_lif(x, detach_reset=False, impl=impl), x, gs)
    torch.testing.assert_close(grad[0].cpu(), ((0.3 + g1 * 0.5 * -1.0) / 2).reshape(1).double())


@needs_triton
@pytest.mark.parametrize("T", [1, 2, 3, 4, 5, 8, 16])  # 3, 5: padded (T, BLOCK) tiles; 8, 16: smaller BLOCK
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_matches_reference(T, dtype):
    x = _input((T, 3, 700), seed=T, dtype=dtype).requires_grad_()
    gs = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=dtype).to(DEVICE)
    out_t = multistep_lif(x, impl="triton")
    out_r = multistep_lif(x, impl="reference")
    assert out_t.dtype == dtype and out_t.shape == x.shape
    assert torch.equal(out_t, out_r)
    (g_t,) = torch.autograd.grad(out_t, x, gs)
    (g_r,) = torch.autograd.grad(out_r, x, gs)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(g_t, g_r, atol=tol, rtol=tol)


@needs_triton
@pytest.mark.parametrize("params", [
    dict(v_threshold=0.5),
    dict(tau=3.0, v_reset=-0.25),
    dict(detach_reset=False),
    dict(surrogate_alpha=2.0, v_threshold=0.75),
])
def test_triton_matches_reference_other_parameters(params):
    x = _input((4, 2, 333), seed=3, dtype=torch.float64).requires_grad_()
    gs = torch.randn(x.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64).to(DEVICE)
    out_t, out_r = multistep_lif(x, impl="triton", **params), multistep_lif(x, impl="reference", **params)
    assert torch.equal(out_t, out_r)
    (g_t,) = torch.autograd.grad(out_t, x, gs)
    (g_r,) = torch.autograd.grad(out_r, x, gs)
    torch.testing.assert_close(g_t, g_r, atol=1e-12, rtol=1e-12)
    # The explicit recursion (what the kernel implements) is the reference's autograd.
    torch.testing.assert_close(lif_backward_reference(x.detach(), gs, **params), g_r, atol=1e-12, rtol=1e-12)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_use_a_float32_membrane(dtype):
    x = _input((4, 2, 257), seed=5, dtype=dtype).requires_grad_()
    out_t, out_r = multistep_lif(x, impl="triton"), multistep_lif(x, impl="reference")
    assert out_t.dtype == out_r.dtype == dtype
    assert torch.equal(out_t, out_r)
    # Same spikes as the float32 neuron on the same (rounded) inputs.
    assert torch.equal(out_r.float(), multistep_lif(x.detach().float(), impl="reference"))
    gs = torch.ones_like(x)
    (g_t,) = torch.autograd.grad(out_t, x, gs)
    (g_r,) = torch.autograd.grad(out_r, x, gs)
    torch.testing.assert_close(g_t.float(), g_r.float(), atol=1e-2, rtol=1e-2)


@needs_triton
def test_training_forward_saves_only_the_input():
    """The backward recomputes the membrane from x: autograd keeps x and nothing else."""
    x = _input((4, 2, 300), seed=10).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = multistep_lif(x, impl="triton")
    assert len(saved) == 1 and saved[0] is x, [tuple(t.shape) for t in saved]
    (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
    (expected,) = torch.autograd.grad(multistep_lif(x, impl="reference"), x, torch.ones_like(out))
    torch.testing.assert_close(grad, expected, atol=1e-6, rtol=1e-6)


@needs_triton
def test_non_contiguous_input_and_no_grad_path():
    x = _input((4, 6, 50), seed=9).transpose(1, 2)  # (T, 50, 6), not contiguous
    with torch.no_grad():
        out = multistep_lif(x, impl="triton")
    assert out.shape == x.shape
    assert torch.equal(out, multistep_lif_reference(x))


def test_dispatch(monkeypatch):
    x = torch.zeros(2, 3)
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _path(x, "auto") == "reference"
    assert _path(x.double(), "triton") == "triton"  # the kernel has a float64 path
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "reference")
    assert _path(x, "auto") == "reference"
    assert _path(x, "triton") == "triton"  # the argument wins; CPU works under the interpreter
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "bogus")
    with pytest.raises(ValueError, match="ZOO_KERNELS_IMPL"):
        _path(x, "auto")
    with pytest.raises(ValueError, match="impl must be one of"):
        multistep_lif(x, impl="cupy")
    with pytest.raises(ValueError, match=r"\(T, \.\.\.\)"):
        multistep_lif(torch.zeros(()))
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="CUDA"):
        multistep_lif(x, impl="triton")


@needs_triton
def test_spikingjelly_peer():
    """Where spikingjelly is installed, its MultiStepLIFNode is a peer (never imported by the zoo)."""
    neuron = pytest.importorskip("spikingjelly.clock_driven.neuron")
    sj = neuron.MultiStepLIFNode(tau=2.0, detach_reset=True, backend="torch")
    x = _input((4, 2, 300), seed=11).cpu().requires_grad_()
    ref = sj(x)
    gs = torch.randn(x.shape, generator=torch.Generator().manual_seed(12))
    (g_sj,) = torch.autograd.grad(ref, x, gs)
    for impl in ("reference", "triton"):
        xx = x.detach().to(DEVICE).requires_grad_()
        out = multistep_lif(xx, impl=impl)
        assert torch.equal(out.cpu(), ref.detach())
        (g,) = torch.autograd.grad(out, xx, gs.to(DEVICE))
        torch.testing.assert_close(g.cpu(), g_sj, atol=1e-6, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gpu_large(dtype):
    x = _input((4, 8, 384, 28 * 28), seed=13, dtype=dtype).requires_grad_()
    out_t, out_r = multistep_lif(x, impl="triton"), multistep_lif(x, impl="reference")
    assert torch.equal(out_t, out_r)
    gs = torch.randn_like(x)
    (g_t,) = torch.autograd.grad(out_t, x, gs)
    (g_r,) = torch.autograd.grad(out_r, x, gs)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(g_t.float(), g_r.float(), atol=tol, rtol=tol)
