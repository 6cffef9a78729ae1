"""Triton jit helpers shared by the kernel packages."""
from __future__ import annotations

import triton
import triton.language as tl

from ._dispatch import triton_interpreted

__all__ = ["INTERPRETED", "round_to_bf16", "dot_16bit"]

# Whether the kernels run under Triton's CPU interpreter; read once, as Triton reads
# TRITON_INTERPRET when @triton.jit runs.
INTERPRETED = tl.constexpr(triton_interpreted())


@triton.jit
def round_to_bf16(x):
    """fp32 x rounded to the nearest bfloat16 (ties to even), kept in fp32 (finite x): what the
    GPU's conversion gives; the interpreter's .to(tl.bfloat16) truncates whatever the rounding mode."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def dot_16bit(a, b, dt: tl.constexpr):
    """a @ b with both operands rounded to nearest in the 16-bit dtype dt (tl.bfloat16 or
    tl.float16), fp32 accumulation: the tensor cores' 16-bit products. Triton 3.6 / 3.8's
    interpreter has no bfloat16 tl.dot (it multiplies the raw uint16 bits), so there the rounded
    operands are multiplied in fp32: the same products."""
    if INTERPRETED and dt == tl.bfloat16:
        c = tl.dot(round_to_bf16(a.to(tl.float32)), round_to_bf16(b.to(tl.float32)), input_precision="ieee")
    else:
        c = tl.dot(a.to(dt, fp_downcast_rounding="rtne"), b.to(dt, fp_downcast_rounding="rtne"))
    return c
