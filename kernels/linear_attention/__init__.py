"""Non-causal linear attention shared by RAVLT (RALA), MAViT (MALA) and InLine.

    from zoo.kernels.linear_attention import linear_attention
    y = linear_attention(q, k, v, variant="rala", rope_hw=(H, W))     # (B, heads, N, d)

q, k, v are the RAW projections (before the feature map), (B, heads, N, d), any
strides: channels-first callers pass `t.view(B, heads, d, N).transpose(-1, -2)`
and pay for no copy. The exact functions are in `reference.py` (with the 2-D
RoPE helpers `rope_2d_tables` / `apply_rope_2d` the model layers use).

The computation is the PyTorch op `torch.ops.zoo.linear_attention` (visible to
`torch.compile(fullgraph=True)`, `torch.export` and `FlopCounterMode`), with its
backward `torch.ops.zoo.linear_attention_backward`. Paths (`zoo.kernels._dispatch`):
'triton' (fused forward and hand-written backward, `triton_linear_attention.py`)
for CUDA tensors with d in {16, 32, 64} and dtype float16 / bfloat16 / float32;
'reference' (plain PyTorch, fp32 or fp64 math; its backward is autograd through
it) otherwise. `impl='auto'` picks by device; the environment variable
ZOO_KERNELS_IMPL ('triton' | 'reference' | 'auto') overrides 'auto'. Under
TRITON_INTERPRET=1 a forced Triton path runs on CPU tensors. On the Triton path
the output (and the input gradients) of a token-minor input (stride 1 along N)
are token-minor too, so `y.transpose(-1, -2).reshape(B, C, H, W)` is free.
Triton is imported only when its path runs.

FLOPs (`FlopCounterMode`), per batch item and head, counting the matrix products
of the definition at 2 per multiply-add (as PyTorch counts `mm`): kv = K^T V and
Q kv, 2 N d^2 each, plus one (rala: two) per-token d-vector dot products of the
normalisers, 2 N d each: rala 4 N d^2 + 4 N d; mala and inline 4 N d^2 + 2 N d.
The backward counts twice the forward (each product has two input gradients).

Launch configuration: `block_n` (tokens per tile), `chunks` and `num_warps` of the op; None (the
default) picks the tile by dtype and d and lets Triton autotune warps and pipeline stages on the
GPU among candidates that all compile spill-free for sm_90. The kernels, their launches and
passes per call and the sm_90 registers of every candidate are listed in
`triton_linear_attention.py` (`tests/kernels/test_compile_sm90.py` / `aot_compile.py` recompile
them; rerun after a kernel change).
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
from .reference import (
    VARIANTS,
    apply_rope_2d,
    linear_attention_reference,
    rope_2d_angles,
    rope_2d_tables,
)

__all__ = [
    "linear_attention", "linear_attention_reference", "rope_2d_angles", "rope_2d_tables", "apply_rope_2d",
    "VARIANTS", "TRITON_HEAD_DIMS", "linear_attention_flops",
]

OP = "linear_attention"
TRITON_HEAD_DIMS = (16, 32, 64)
SHAPE = "(B, heads, N, d)"


def _check_inputs(q, k, v, variant: str, rope_hw) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"{OP}: variant must be one of {VARIANTS}, got {variant!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(OP, name, t, SHAPE, ndim=4)
    if not (q.shape == k.shape == v.shape):
        raise shape_error(OP, f"q, k, v of one shape {SHAPE}", q=q, k=k, v=v)
    check_positive(OP, "the token count N", q.shape[-2], SHAPE + f" = {tuple(q.shape)}")
    check_positive(OP, "the head dim d", q.shape[-1], SHAPE + f" = {tuple(q.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"{OP}: q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    check_same_device(OP, q=q, k=k, v=v)
    _check_rope(q, variant, rope_hw)


def _check_rope(q: torch.Tensor, variant: str, rope_hw) -> None:
    if rope_hw is None:
        return
    if variant == "inline":
        raise ValueError(f"{OP}: variant 'inline' has no RoPE; expected rope_hw=None, got {rope_hw!r}")
    try:
        valid = len(tuple(rope_hw)) == 2 and all(int(x) == x and x >= 1 for x in rope_hw)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{OP}: rope_hw must be a (H, W) pair of positive ints, got {rope_hw!r}")
    height, width = rope_hw
    if height * width != q.shape[-2]:
        raise ValueError(
            f"{OP}: rope_hw {tuple(rope_hw)} gives {height * width} tokens, "
            f"expected N={q.shape[-2]} (tokens must form the row-major H x W grid)")
    if q.shape[-1] % 4:
        raise ValueError(f"{OP}: 2-D RoPE needs a head dim divisible by 4, got d={q.shape[-1]}")


def _triton_unsupported(q: torch.Tensor) -> str | None:
    if q.shape[-1] not in TRITON_HEAD_DIMS:
        return f"head dim d in {TRITON_HEAD_DIMS}, got d={q.shape[-1]}"
    return triton_unsupported(q.device, [q.dtype])


def _path(q: torch.Tensor, impl: str) -> str:
    """'triton' or 'reference' for inputs like q; an empty grid (B * heads == 0) cannot launch."""
    path = resolve_impl(OP, impl, q.device, _triton_unsupported(q))
    return path if q.shape[0] * q.shape[1] > 0 else "reference"


def _hw(rope_hw) -> tuple[int, int] | None:
    return None if rope_hw is None else (int(rope_hw[0]), int(rope_hw[1]))


def _like(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An empty tensor laid out as the Triton path lays out its outputs for x (token-minor stays token-minor)."""
    b, h, n, d = x.shape
    if x.stride(-2) == 1 and n > 1:
        return x.new_empty((b, h, d, n), dtype=dtype).transpose(-1, -2)
    return x.new_empty((b, h, n, d), dtype=dtype)


def _launch(block_n: int | None, chunks: int | None, num_warps: int | None):
    from .triton_linear_attention import LaunchConfig
    return LaunchConfig(block_n=block_n, chunks=chunks, num_warps=num_warps)


@torch.library.custom_op("zoo::linear_attention", mutates_args=())
def linear_attention_op(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, variant: str, rope_hw: list[int] | None,
        eps: float, impl: str, block_n: int | None = None, chunks: int | None = None, num_warps: int | None = None,
) -> list[torch.Tensor]:
    """[y] on the reference path; [y, kv, kbar, vbar, qbar, softmax max, softmax sum] on the Triton path
    (the O(d^2) statistics its backward reuses). block_n, chunks, num_warps: the Triton launch."""
    _check_inputs(q, k, v, variant, rope_hw)
    if _path(q, impl) == "reference":
        return [linear_attention_reference(q, k, v, variant=variant, rope_hw=_hw(rope_hw), eps=eps).contiguous()]
    from . import triton_linear_attention as kernels
    problem = kernels.problem(q, variant, _hw(rope_hw), eps)
    y, stats = kernels.forward(q, k, v, problem, _launch(block_n, chunks, num_warps))
    return [y, *stats]


@linear_attention_op.register_fake
def _fake(q, k, v, variant, rope_hw, eps, impl, block_n=None, chunks=None, num_warps=None):
    _check_inputs(q, k, v, variant, rope_hw)
    if _path(q, impl) == "reference":
        return [q.new_empty(q.shape)]
    bh, d = q.shape[0] * q.shape[1], q.shape[-1]
    f32 = dict(dtype=torch.float32)
    return [_like(q, q.dtype), q.new_empty((bh, d, d), **f32), *(q.new_empty((bh, d), **f32) for _ in range(3)),
            q.new_empty((bh,), **f32), q.new_empty((bh,), **f32)]


@torch.library.custom_op("zoo::linear_attention_backward", mutates_args=())
def linear_attention_backward_op(
        dy: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, stats: list[torch.Tensor],
        variant: str, rope_hw: list[int] | None, eps: float, block_n: int | None = None, chunks: int | None = None,
        num_warps: int | None = None,
) -> list[torch.Tensor]:
    """[dq, dk, dv] of the Triton path, from the forward's statistics."""
    from . import triton_linear_attention as kernels
    return list(kernels.backward(q, k, v, dy, stats, kernels.problem(q, variant, _hw(rope_hw), eps),
                                 _launch(block_n, chunks, num_warps)))


@linear_attention_backward_op.register_fake
def _(dy, q, k, v, stats, variant, rope_hw, eps, block_n=None, chunks=None, num_warps=None):
    return [_like(t, t.dtype) for t in (q, k, v)]


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, variant, rope_hw, eps, _, block_n, chunks, num_warps = inputs
    ctx.save_for_backward(q, k, v, *output[1:])
    ctx.args = (variant, rope_hw, eps, block_n, chunks, num_warps)


def _backward(ctx, grads):
    q, k, v, *stats = ctx.saved_tensors
    variant, rope_hw, eps = ctx.args[:3]
    if stats:
        dq, dk, dv = linear_attention_backward_op(grads[0], q, k, v, stats, *ctx.args)
    else:  # the reference path: autograd through the reference
        dq, dk, dv = reference_grads(
            lambda a, b, c: linear_attention_reference(a, b, c, variant=variant, rope_hw=_hw(rope_hw), eps=eps),
            (q, k, v), grads[0])
    return dq, dk, dv, None, None, None, None, None, None, None


linear_attention_op.register_autograd(_backward, setup_context=_setup_context)
register_reference_decomposition(  # torch.onnx converts the op through its reference
    torch.ops.zoo.linear_attention.default,
    lambda q, k, v, variant, rope_hw, eps, impl, *launch: linear_attention_reference(
        q, k, v, variant=variant, rope_hw=_hw(rope_hw), eps=eps),
    _fake)


def linear_attention_flops(variant: str, q_shape) -> int:
    """The forward's FLOPs (see the module docstring) for q of shape (B, heads, N, d)."""
    b, h, n, d = q_shape
    dots = 2 if variant == "rala" else 1
    return b * h * (4 * n * d * d + 2 * dots * n * d)


@register_flop_formula(torch.ops.zoo.linear_attention)
def _flops(q_shape, k_shape, v_shape, variant, *args, out_shape=None, **kwargs) -> int:
    return linear_attention_flops(variant, q_shape)


@register_flop_formula(torch.ops.zoo.linear_attention_backward)
def _backward_flops(dy_shape, q_shape, k_shape, v_shape, stats_shapes, variant, *args, out_shape=None,
                    **kwargs) -> int:
    return 2 * linear_attention_flops(variant, q_shape)


def linear_attention(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, variant: str,
        rope_hw: tuple[int, int] | None = None, eps: float = 1e-6, impl: str = "auto",
) -> torch.Tensor:
    """Non-causal linear attention core of RALA / MALA / InLine; (B, heads, N, d) in the input dtype.

    Args:
        q, k, v: raw projections (B, heads, N, d), any strides, same dtype and device.
        variant: 'rala' (RAVLT), 'mala' (MAViT) or 'inline' (InLine); see reference.py.
        rope_hw: the (H, W) token grid (row-major, H * W == N) for 2-D RoPE, or None for
            no RoPE. Not allowed for 'inline'. Needs d % 4 == 0.
        eps: added to the rala / mala normalisers (unused by 'inline').
        impl: 'auto' | 'triton' | 'reference'; ZOO_KERNELS_IMPL overrides 'auto'.
    """
    _check_inputs(q, k, v, variant, rope_hw)
    impl = requested_impl(OP, impl)
    if runs_reference_eagerly(_path(q, impl)):  # a forced path the inputs cannot take fails in _path
        return linear_attention_reference(q, k, v, variant=variant, rope_hw=_hw(rope_hw), eps=eps)
    hw = None if rope_hw is None else [int(rope_hw[0]), int(rope_hw[1])]
    return linear_attention_op(q, k, v, variant, hw, float(eps), impl)[0]
