"""Multi-step leaky integrate-and-fire (LIF) neuron: `multistep_lif`.

    spikes = multistep_lif(x)        # x: (T, ...) time-major membrane input

Hard reset, input decay, Heaviside spikes with ties spiking, sigmoid
surrogate gradient, optional detached reset (the definition is in
`reference.py`). The computation is the PyTorch op `torch.ops.zoo.multistep_lif`
(visible to `torch.compile(fullgraph=True)`, `torch.export` and `FlopCounterMode`);
the Triton path's backward is `torch.ops.zoo.multistep_lif_backward`, which
recomputes the membrane from x (nothing but the spikes is stored). Two paths
(`zoo.kernels._dispatch`):

- `reference`: the PyTorch loop over T, backward by autograd through it (CPU default);
- `triton`: one fused launch for the forward over all T steps and one for the
  whole BPTT backward, membrane in registers (CUDA default; runs on CPU
  tensors under TRITON_INTERPRET=1 when forced).

Pick with `impl=` ("auto", "triton", "reference") or the environment variable
`ZOO_KERNELS_IMPL`; the argument wins. Triton is imported only when its path runs.

FLOPs (`FlopCounterMode`): the neuron has no matrix product, so its elementwise
operations are counted, per neuron and step: forward 6 (charge h = v + (x - (v - v_r)) / tau:
4; fire: 1 comparison; hard reset: 1 select); the Triton backward 17 (the membrane
recomputed: charge 4, reset 1; surrogate sg = alpha sig(alpha u) (1 - sig(alpha u)): 6;
dv/dh = 1 - s: 1; the BPTT update g = gs sg + g (1 - 1/tau) dv/dh: 4; g / tau: 1),
20 without detach_reset (dv/dh gains (v_r - h) sg: 3).

sm_90 resources (`tests/kernels/test_compile_sm90.py` / `aot_compile.py`: Triton 3.8.0 and its
bundled `ptxas -v`, no GPU; registers per thread; every candidate config of the recorded launches,
54 specialisations, 2026-12-06): whole (T, BLOCK) tiles of COLUMNS = 32 / next_pow2(T) neurons
per thread within 1..8 (a quarter for float64), BLOCK = COLUMNS x 32 x warps, the warps (2, 4, 8)
autotuned on the GPU; T = 1, 2, 3, 4, 8, 16 launched. Forward 32-102 registers, backward 40-110
(float64 T = 16: 168); no spill. (Before, with the membrane stored and per-step loads and
stores at BLOCK 1024: forward 32-148, backward 37-130, no spill.)

Work per call: one launch each way. Forward reads x and writes the spikes (2 passes over
(T, N)); the backward reads x and dL/ds and writes dL/dx (3 passes; nothing saved but x).
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

from .._dispatch import (
    FLOAT_DTYPES,
    check_tensor,
    reference_grads,
    register_reference_decomposition,
    requested_impl,
    resolve_impl,
    runs_reference_eagerly,
    triton_unsupported,
)
from .reference import lif_backward_reference, multistep_lif_reference

__all__ = ["multistep_lif", "multistep_lif_reference", "lif_backward_reference", "multistep_lif_flops"]

OP = "multistep_lif"


def _check_inputs(x, tau: float) -> None:
    check_tensor(OP, "x", x, "(T, ...)")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"{OP}: expects a time-major tensor (T, ...) with T >= 1, got shape {tuple(x.shape)}")
    if not tau > 0:
        raise ValueError(f"{OP}: tau must be positive, got {tau}")


def _path(x: torch.Tensor, impl: str) -> str:
    return resolve_impl(OP, impl, x.device, triton_unsupported(x.device, [x.dtype], FLOAT_DTYPES))


@torch.library.custom_op("zoo::multistep_lif", mutates_args=())
def multistep_lif_op(x: torch.Tensor, tau: float, v_threshold: float, v_reset: float, surrogate_alpha: float,
                     detach_reset: bool, impl: str, store_membrane: bool) -> list[torch.Tensor]:
    """[spikes]. `store_membrane` stays in the schema (exported programs name it) but stores
    nothing: the Triton backward recomputes the membrane from x."""
    _check_inputs(x, tau)
    if _path(x, impl) == "reference":
        return [multistep_lif_reference(x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset).contiguous()]
    from .triton_lif import lif_forward_triton
    return [lif_forward_triton(x.reshape(x.shape[0], -1).contiguous(), tau, v_threshold, v_reset).view(x.shape)]


@multistep_lif_op.register_fake
def _fake(x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset, impl, store_membrane):
    _check_inputs(x, tau)
    return [x.new_empty(x.shape)]


@torch.library.custom_op("zoo::multistep_lif_backward", mutates_args=())
def multistep_lif_backward_op(grad_spikes: torch.Tensor, x: torch.Tensor, tau: float, v_threshold: float,
                              v_reset: float, surrogate_alpha: float, detach_reset: bool) -> torch.Tensor:
    """dL/dx of the Triton path (x's shape and dtype), the membrane recomputed from the forward's input x."""
    from .triton_lif import lif_backward_triton
    x2d = x.reshape(x.shape[0], -1).contiguous()
    grad_x = lif_backward_triton(grad_spikes.reshape(x2d.shape).contiguous(), x2d, tau, v_threshold, v_reset,
                                 surrogate_alpha, detach_reset)
    return grad_x.view(x.shape)


@multistep_lif_backward_op.register_fake
def _(grad_spikes, x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset):
    return x.new_empty(x.shape)


def _setup_context(ctx, inputs, output) -> None:
    x, *params, impl, _ = inputs
    ctx.params = params  # tau, v_threshold, v_reset, surrogate_alpha, detach_reset
    ctx.triton = _path(x, impl) == "triton"
    ctx.save_for_backward(x)  # both paths recompute the membrane from x


def _backward(ctx, grads):
    (x,) = ctx.saved_tensors
    if not ctx.triton:  # the reference path: autograd through the reference
        (grad_x,) = reference_grads(lambda t: multistep_lif_reference(t, *ctx.params), (x,), grads[0])
    else:
        grad_x = multistep_lif_backward_op(grads[0], x, *ctx.params)
    return grad_x, None, None, None, None, None, None, None


multistep_lif_op.register_autograd(_backward, setup_context=_setup_context)
register_reference_decomposition(  # torch.onnx converts the op through its reference
    torch.ops.zoo.multistep_lif.default,
    lambda x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset, impl, store_membrane: multistep_lif_reference(
        x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset),
    _fake)


def multistep_lif_flops(x_shape, backward: bool = False, detach_reset: bool = True) -> int:
    """FLOPs (see the module docstring) of the forward, or of the Triton backward, for x of shape (T, ...)."""
    numel = 1
    for size in x_shape:
        numel *= size
    if not backward:
        return 6 * numel
    return (17 if detach_reset else 20) * numel


@register_flop_formula(torch.ops.zoo.multistep_lif)
def _flops(x_shape, *args, out_shape=None, **kwargs) -> int:
    return multistep_lif_flops(x_shape)


@register_flop_formula(torch.ops.zoo.multistep_lif_backward)
def _backward_flops(grad_shape, x_shape, tau, v_threshold, v_reset, surrogate_alpha, detach_reset,
                    out_shape=None, **kwargs) -> int:
    return multistep_lif_flops(x_shape, backward=True, detach_reset=detach_reset)


def multistep_lif(
        x: torch.Tensor,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_alpha: float = 4.0,
        detach_reset: bool = True,
        impl: str | None = None,
) -> torch.Tensor:
    """Spikes (0/1, same shape and dtype as x) of LIF neurons driven by x over its first dim (time).

    Args:
        x: membrane input, time-major (T, ...); float16/bfloat16/float32/float64.
            The membrane runs in float32 (float64 for float64 input).
        tau: membrane time constant (decay 1 - 1/tau per step, input scaled by 1/tau).
        v_threshold: spike where the charged membrane h >= v_threshold.
        v_reset: the membrane's start value and hard-reset value.
        surrogate_alpha: slope of the sigmoid surrogate gradient.
        detach_reset: treat the reset as a constant in the backward.
        impl: 'auto' (Triton on CUDA, reference otherwise), 'triton' or 'reference'.
    """
    _check_inputs(x, tau)
    impl = requested_impl(OP, impl)
    if runs_reference_eagerly(_path(x, impl)):  # a forced path the inputs cannot take fails in _path first
        return multistep_lif_reference(x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset)
    return multistep_lif_op(x, float(tau), float(v_threshold), float(v_reset), float(surrogate_alpha),
                            bool(detach_reset), impl, False)[0]
