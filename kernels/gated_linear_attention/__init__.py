"""Bidirectional gated linear attention (ViG): public function, PyTorch op and dispatch.

    o = bidirectional_gla(q, k, v, a_f, a_b, scale=None)      # o_f + o_b, (B, N, H, dv)

q, k, a_f, a_b: (B, N, H, dk); v: (B, N, H, dv); any strides (the model passes views
of its fused qkv projection). a_f, a_b are log-decays (<= 0, ViG: logsigmoid(z) / 16)
for the forward and the backward scan. The exact function is in `reference.py`.

The computation is the PyTorch op `torch.ops.zoo.bidirectional_gla` (visible to
`torch.compile(fullgraph=True)`, `torch.export` and `FlopCounterMode`); the Triton path's
backward is `torch.ops.zoo.bidirectional_gla_backward`. Paths (`zoo.kernels._dispatch`):
'triton' (chunk-parallel kernels, forward and backward, `triton_chunk.py`) on CUDA tensors
of float16 / bfloat16 / float32; 'reference' (the chunked PyTorch form, its backward
autograd through it) elsewhere. Force one with `impl=` or the environment variable
ZOO_KERNELS_IMPL ('triton' | 'reference' | 'auto'); under TRITON_INTERPRET=1 the Triton
path runs on CPU tensors when forced. Triton is imported only when the Triton path runs.

FLOPs (`FlopCounterMode`), from the linear-time form of the definition at 2 per
multiply-add: per direction, token and head, the state update S = diag(exp a) S + k v^T
(2 dk dv) and the read-out q^T S (2 dk dv): 8 B N H dk dv for both scans. The backward
counts twice the forward.

sm_90 resources (`tests/kernels/test_compile_sm90.py` / `aot_compile.py`: Triton 3.8.0 and its
bundled `ptxas -v`, no GPU; registers per thread, spill store / load bytes; every candidate config
of every recorded case, chunk count 1 and 3). Chunks of 64 tokens, sub-chunks of 16:

    kernel                 case (dk, dv) dtype          warps / stages      registers      spill
    _states_kernel         every case, fwd and bwd       4/1, 4/2            48-216         0/0
    _scan_kernel           every case                    4, 2 (BKS 16, 32)   8-53           0/0
    _output_kernel         (16, 32) fp32 / bf16          8/1                 171 / 121      0/0
                           (32, 64) fp32 / bf16          8/1                 199-200 / 126  0/0
                           (64, 64) fp16                 8/1                 182            0/0
    _grads_kernel dv       (16, 32) fp32 / bf16          8/1                 175 / 109      0/0
                           (32, 64) fp32 / bf16          8/1                 175 / 128      0/0
                           (64, 64) fp16                 8/1                 213            0/0
    _grads_kernel dq/dk    (16, 32) fp32 / bf16          8/1                 178 / 215      0/0
      (16-channel tiles,   (32, 64) fp32, 1 / 3 chunks   8/1                 179 / 178      0/0
       dv 16 at a time)    (32, 64) bf16, 1 / 3 chunks   8/1                 234 / 231      0/0
                           (64, 64) fp16                 8/1                 234            0/0

No spills. The dq / dk part takes its products over dv (with the states, and do . v between
sub-chunks) BVS = 16 channels at a time, read from memory per slice; holding all of dv (BV = 64)
it spilled at 255 registers: fp32 (32, 64) 216/208 (1 chunk) and 208/200 (3 chunks), bf16 1 chunk
and fp16 (64, 64) 28/28 bytes (slices of 32: fp32 still 76/80). The sequential kernel it replaces
spilled 1308/1316 (fp32 (32, 64)), 12/12 (bf16) and 180/208 (fp16 (64, 64)) bytes.
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
from .reference import bigla_chunked, bigla_recurrent

__all__ = ["bidirectional_gla", "bigla_chunked", "bigla_recurrent", "bidirectional_gla_flops"]

OP = "bidirectional_gla"
NAMES = ("q", "k", "v", "a_f", "a_b")


def _check_inputs(q, k, v, a_f, a_b) -> None:
    for name, t in zip(NAMES, (q, k, v, a_f, a_b)):
        check_tensor(OP, name, t, "(B, N, H, dv)" if name == "v" else "(B, N, H, dk)", ndim=4)
    if k.shape != q.shape or a_f.shape != q.shape or a_b.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise shape_error(OP, "q, k, a_f, a_b of one shape (B, N, H, dk) and v of shape (B, N, H, dv)",
                          q=q, k=k, v=v, a_f=a_f, a_b=a_b)
    check_positive(OP, "the key head dim dk", q.shape[-1], f"(B, N, H, dk) = {tuple(q.shape)}")
    check_positive(OP, "the value head dim dv", v.shape[-1], f"(B, N, H, dv) = {tuple(v.shape)}")
    check_same_device(OP, q=q, k=k, v=v, a_f=a_f, a_b=a_b)


def _path(q, k, v, a_f, a_b, impl: str) -> str:
    """'triton' or 'reference'; an empty grid (B, N or H zero) cannot launch, the reference returns it."""
    path = resolve_impl(OP, impl, q.device, triton_unsupported(q.device, [t.dtype for t in (q, k, v, a_f, a_b)]))
    return path if q.shape[0] * q.shape[1] * q.shape[2] > 0 else "reference"


@torch.library.custom_op("zoo::bidirectional_gla", mutates_args=())
def bidirectional_gla_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a_f: torch.Tensor, a_b: torch.Tensor,
                         scale: float, impl: str) -> torch.Tensor:
    """o_f + o_b, (B, N, H, dv) in v's dtype, contiguous."""
    _check_inputs(q, k, v, a_f, a_b)
    if _path(q, k, v, a_f, a_b, impl) == "reference":
        return bigla_chunked(q, k, v, a_f, a_b, scale).contiguous()
    from .triton_chunk import bigla_fwd
    return bigla_fwd(q, k, v, a_f, a_b, scale)


@bidirectional_gla_op.register_fake
def _fake(q, k, v, a_f, a_b, scale, impl):
    _check_inputs(q, k, v, a_f, a_b)
    _path(q, k, v, a_f, a_b, impl)
    return v.new_empty((*q.shape[:3], v.shape[-1]))


@torch.library.custom_op("zoo::bidirectional_gla_backward", mutates_args=())
def bidirectional_gla_backward_op(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                  a_f: torch.Tensor, a_b: torch.Tensor, scale: float) -> list[torch.Tensor]:
    """[dq, dk, dv, da_f, da_b] of the Triton path, each in its input's dtype."""
    from .triton_chunk import bigla_bwd
    return list(bigla_bwd(q, k, v, a_f, a_b, do, scale))


@bidirectional_gla_backward_op.register_fake
def _(do, q, k, v, a_f, a_b, scale):
    return [t.new_empty(t.shape) for t in (q, k, v, a_f, a_b)]


def _setup_context(ctx, inputs, output) -> None:
    *tensors, scale, impl = inputs
    ctx.save_for_backward(*tensors)
    ctx.scale, ctx.triton = scale, _path(*tensors, impl) == "triton"


def _backward(ctx, do):
    inputs = ctx.saved_tensors
    if ctx.triton:
        grads = bidirectional_gla_backward_op(do, *inputs, ctx.scale)
    else:  # the reference path: autograd through the reference
        grads = reference_grads(lambda *t: bigla_chunked(*t, ctx.scale), inputs, do)
    return (*grads, None, None)


bidirectional_gla_op.register_autograd(_backward, setup_context=_setup_context)
register_reference_decomposition(  # torch.onnx converts the op through its reference
    torch.ops.zoo.bidirectional_gla.default,
    lambda q, k, v, a_f, a_b, scale, impl: bigla_chunked(q, k, v, a_f, a_b, scale),
    _fake)


def bidirectional_gla_flops(q_shape, v_shape) -> int:
    """The forward's FLOPs (see the module docstring) for q (B, N, H, dk) and v (B, N, H, dv)."""
    b, n, h, dk = q_shape
    return 8 * b * n * h * dk * v_shape[-1]


@register_flop_formula(torch.ops.zoo.bidirectional_gla)
def _flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    return bidirectional_gla_flops(q_shape, v_shape)


@register_flop_formula(torch.ops.zoo.bidirectional_gla_backward)
def _backward_flops(do_shape, q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * bidirectional_gla_flops(q_shape, v_shape)


def bidirectional_gla(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a_f: torch.Tensor, a_b: torch.Tensor,
        scale: float | None = None, *, impl: str | None = None,
) -> torch.Tensor:
    """o_f + o_b of ViG's bidirectional gated linear attention; (B, N, H, dv), v's dtype.

    Args:
        q, k: (B, N, H, dk) queries and keys; v: (B, N, H, dv) values.
        a_f, a_b: (B, N, H, dk) log-decays (<= 0) of the forward and backward scans.
        scale: multiplies q; default dk ** -0.5.
        impl: 'triton', 'reference' or 'auto' (default: env ZOO_KERNELS_IMPL, else auto).
    """
    _check_inputs(q, k, v, a_f, a_b)
    impl = requested_impl(OP, impl)
    path = _path(q, k, v, a_f, a_b, impl)  # a forced path the inputs cannot take fails here, before the op
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    if runs_reference_eagerly(path):
        return bigla_chunked(q, k, v, a_f, a_b, scale)
    return bidirectional_gla_op(q, k, v, a_f, a_b, scale, impl)
