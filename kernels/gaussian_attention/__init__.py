"""Gaussian-kernel attention of SOFT: X = K1 @ (M @ (K1^T @ V)), K1[i, j] = exp(-||q_i - l_j||^2 / 2).

    from zoo.kernels.gaussian_attention import gaussian_attention
    x = gaussian_attention(q, landmarks, mixing, v)      # (B, H, N, e)

The computation is the PyTorch op `torch.ops.zoo.gaussian_attention` (visible to
`torch.compile(fullgraph=True)`, `torch.export` and `FlopCounterMode`); the Triton
path's backward is `torch.ops.zoo.gaussian_attention_backward`. On CUDA the fused
Triton kernels run: K1 is built tile by tile in registers from the distance
|q|^2 + |l|^2 - 2 q.l^T (one tl.dot per tile) and never stored, forward or backward (memory O(N (d + e) + m^2) per head
instead of O(N m)). On CPU the plain PyTorch reference (`reference.py`) runs, its
backward autograd through it. Force either with `impl=` or the environment variable
`ZOO_KERNELS_IMPL` ('triton' / 'reference' / 'auto'); under `TRITON_INTERPRET=1` the
Triton path also runs on CPU tensors when forced (`zoo.kernels._dispatch`).

FLOPs (`FlopCounterMode`), per batch item and head, at 2 per multiply-add: the
query-landmark distances 2 N m d (as the matrix product of their expanded form),
K1^T V and K1 (M S) 2 N m e each, M S 2 m^2 e: 2 N m d + 4 N m e + 2 m^2 e. The
backward counts twice the forward.

sm_90 resources (`tests/kernels/test_compile_sm90.py` / `aot_compile.py`: Triton 3.8.0 and its
bundled `ptxas -v`, no GPU; registers per thread; every candidate config of the five recorded
shapes, 60 specialisations, 2026-12-06): tiles BLOCK_N 64, BLOCK_M min(64, m); warps and stages
autotuned on the GPU among spill-free candidates. _reduce at 4 / 8 warps 70-128 / 60-98
registers, _apply 71-168 / 59-98; _bwd_q (8 warps only) 90-251, _bwd_l 64-207; none spills.
(Before: direct-subtraction distances and 4 warps throughout spilled in _bwd_q at fp32 d = 32
e = 16, 356/280 bytes, and bf16 d = e = 64, 32/16; the expanded form at 4 warps spilled more
there, 2228/2328 and 136/120, hence 8 warps only for the backward.)

Work per call (B·H programs' worth; N x m never stored): forward 2 launches + one (m x m)(m x e)
bmm and the split sum: reads q, v once and q again (the K1 tiles are rebuilt in _apply), writes
X once: 4 passes over (N, d|e) tensors. Backward 3 launches + two small bmms: _reduce reads q, dX;
_bwd_q reads q, dX, v and writes dq, dV; _bwd_l reads q, dX, v: 9 passes (K1 rebuilt in each of
the three, 5 builds per training step: the tiles cost registers, not memory traffic).
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

from .._dispatch import (
    check_positive,
    check_same_device,
    check_tensor,
    reference_grads,
    register_reference_decomposition,
    requested_impl,
    resolve_impl,
    runs_reference_eagerly,
    shape_error,
    triton_unsupported,
)
from .reference import _acc_dtype, gaussian_attention_reference, gaussian_kernel, squared_distance

__all__ = ["gaussian_attention", "gaussian_attention_reference", "gaussian_kernel", "squared_distance",
           "gaussian_attention_flops"]

OP = "gaussian_attention"
SHAPES = {"q": "(B, H, N, d)", "landmarks": "(B, H, m, d)", "mixing": "(B, H, m, m)", "v": "(B, H, N, e)"}


def _check_inputs(q, landmarks, mixing, v) -> None:
    for name, t in zip(SHAPES, (q, landmarks, mixing, v)):
        check_tensor(OP, name, t, SHAPES[name], ndim=4)
    b, h, n, d = q.shape
    m = landmarks.shape[2]
    if landmarks.shape != (b, h, m, d) or mixing.shape != (b, h, m, m) or v.shape[:3] != (b, h, n):
        raise shape_error(OP, "q (B, H, N, d), landmarks (B, H, m, d), mixing (B, H, m, m), v (B, H, N, e)",
                          q=q, landmarks=landmarks, mixing=mixing, v=v)
    check_positive(OP, "the head dim d", d, f"q (B, H, N, d) = {tuple(q.shape)}")
    check_positive(OP, "the landmark count m", m, f"landmarks (B, H, m, d) = {tuple(landmarks.shape)}")
    check_positive(OP, "the value dim e", v.shape[-1], f"v (B, H, N, e) = {tuple(v.shape)}")
    check_same_device(OP, q=q, landmarks=landmarks, mixing=mixing, v=v)


def _path(q, landmarks, mixing, v, impl: str) -> str:
    """'triton' or 'reference' (mixing runs in float32 on the Triton path, any float dtype will do);
    an empty grid (B, H or N zero) cannot launch, the reference returns it."""
    unsupported = triton_unsupported(q.device, [q.dtype, landmarks.dtype, v.dtype])
    path = resolve_impl(OP, impl, q.device, unsupported)
    return path if q.shape[0] * q.shape[1] * q.shape[2] > 0 else "reference"


def _flat(t: torch.Tensor) -> torch.Tensor:
    """(B, H, R, C) -> (B * H, R, C): a view whenever B and H merge (the kernels take any row and
    channel strides), a copy only where they cannot."""
    return t.reshape(-1, *t.shape[2:])


@torch.library.custom_op("zoo::gaussian_attention", mutates_args=())
def gaussian_attention_op(q: torch.Tensor, landmarks: torch.Tensor, mixing: torch.Tensor, v: torch.Tensor,
                          impl: str) -> list[torch.Tensor]:
    """[X] on the reference path; [X, S = K1^T V, T = M S] ((B * H, m, e) float32) on the Triton path."""
    _check_inputs(q, landmarks, mixing, v)
    if _path(q, landmarks, mixing, v, impl) == "reference":
        return [gaussian_attention_reference(q, landmarks, mixing, v).contiguous()]
    from .triton_gaussian_attention import gaussian_attention_fwd
    out, s, t = gaussian_attention_fwd(_flat(q), _flat(landmarks), _flat(mixing.float()), _flat(v))
    return [out.reshape(v.shape), s, t]


@gaussian_attention_op.register_fake
def _fake(q, landmarks, mixing, v, impl):
    _check_inputs(q, landmarks, mixing, v)
    out = v.new_empty(v.shape)
    if _path(q, landmarks, mixing, v, impl) == "reference":
        return [out]
    b, h, m, e = *q.shape[:2], landmarks.shape[2], v.shape[-1]
    return [out, *(q.new_empty((b * h, m, e), dtype=torch.float32) for _ in range(2))]


@torch.library.custom_op("zoo::gaussian_attention_backward", mutates_args=())
def gaussian_attention_backward_op(dx: torch.Tensor, q: torch.Tensor, landmarks: torch.Tensor, mixing: torch.Tensor,
                                   v: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
    """[dq, dlandmarks, dmixing, dv] of the Triton path, each in its input's dtype."""
    from .triton_gaussian_attention import gaussian_attention_bwd
    dq, dl, dm, dv = gaussian_attention_bwd(_flat(q), _flat(landmarks), _flat(mixing.float()), _flat(v), s, t,
                                            _flat(dx))
    return [dq.reshape(q.shape), dl.reshape(landmarks.shape).to(landmarks.dtype),
            dm.reshape(mixing.shape).to(mixing.dtype), dv.reshape(v.shape)]


@gaussian_attention_backward_op.register_fake
def _(dx, q, landmarks, mixing, v, s, t):
    return [x.new_empty(x.shape) for x in (q, landmarks, mixing, v)]


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs[:4], *output[1:])


def _backward(ctx, grads):
    q, landmarks, mixing, v, *saved = ctx.saved_tensors
    if saved:
        dq, dl, dm, dv = gaussian_attention_backward_op(grads[0], q, landmarks, mixing, v, *saved)
    else:  # the reference path: autograd through the reference
        dq, dl, dm, dv = reference_grads(gaussian_attention_reference, (q, landmarks, mixing, v), grads[0])
    return dq, dl, dm, dv, None


gaussian_attention_op.register_autograd(_backward, setup_context=_setup_context)


def _functional_reference(q, landmarks, mixing, v, impl):
    """gaussian_attention_reference with an out-of-place exp: a decomposition must not write in place."""
    acc = _acc_dtype(q, landmarks, mixing, v)
    k1 = torch.exp(squared_distance(q.to(acc), landmarks.to(acc), "expand") * -0.5)
    return (k1 @ (mixing.to(acc) @ (k1.transpose(-1, -2) @ v.to(acc)))).to(v.dtype)


register_reference_decomposition(  # torch.onnx converts the op through its reference
    torch.ops.zoo.gaussian_attention.default, _functional_reference, _fake)


def gaussian_attention_flops(q_shape, landmarks_shape, v_shape) -> int:
    """The forward's FLOPs (see the module docstring) for q (B, H, N, d), landmarks (B, H, m, d), v (B, H, N, e)."""
    b, h, n, d = q_shape
    m, e = landmarks_shape[2], v_shape[-1]
    return b * h * (2 * n * m * d + 4 * n * m * e + 2 * m * m * e)


@register_flop_formula(torch.ops.zoo.gaussian_attention)
def _flops(q_shape, landmarks_shape, mixing_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    return gaussian_attention_flops(q_shape, landmarks_shape, v_shape)


@register_flop_formula(torch.ops.zoo.gaussian_attention_backward)
def _backward_flops(dx_shape, q_shape, landmarks_shape, mixing_shape, v_shape, *args, out_shape=None,
                    **kwargs) -> int:
    return 2 * gaussian_attention_flops(q_shape, landmarks_shape, v_shape)


def gaussian_attention(
        q: torch.Tensor,
        landmarks: torch.Tensor,
        mixing: torch.Tensor,
        v: torch.Tensor,
        impl: str | None = None,
) -> torch.Tensor:
    """X = K1 @ (mixing @ (K1^T @ v)) with K1[i, j] = exp(-||q_i - landmarks_j||^2 / 2).

    Args:
        q: queries (B, H, N, d).
        landmarks: (B, H, m, d).
        mixing: (B, H, m, m); used in float32 on the Triton path.
        v: values (B, H, N, e).
        impl: 'triton' (CUDA, or CPU under TRITON_INTERPRET=1), 'reference', 'auto' or None:
            `ZOO_KERNELS_IMPL`, else Triton on CUDA and the reference elsewhere.
    Returns:
        (B, H, N, e) in v's dtype; differentiable in all four inputs. Accumulation is float32.
    """
    _check_inputs(q, landmarks, mixing, v)
    impl = requested_impl(OP, impl)
    path = _path(q, landmarks, mixing, v, impl)  # a forced path the inputs cannot take fails here, before the op
    if runs_reference_eagerly(path):
        return gaussian_attention_reference(q, landmarks, mixing, v)
    return gaussian_attention_op(q, landmarks, mixing, v, impl)[0]
