"""Fused Triton kernels of the non-causal linear attention (forward and hand-written backward).

The three variants share one skeleton. Per (batch, head), with phi the feature
map (ELU + 1 for rala/mala, identity for inline), R the 2-D RoPE and key weights
w_j (softmax alpha_j for rala, 1/N otherwise):

    reduce   kv = sum_j w_j R(k_j)^T v_j   (d x d)    kbar = sum_j w_j k_j    vbar = mean_j v_j
    apply    Y_i = a(t_i) (R(q_i) @ kv) + b(t_i) vbar,   t_i = q_i . kbar

    rala     a = 1 / (t + eps)                 b = 0
    mala     a = s (1 + 1 / (s t + eps))       b = -s t
    inline   a = s                             b = 1 - s t

(rala's N alpha_j and its 1/N cancel exactly.) tl.dot operands (`_mm`): float32 inputs multiply
exactly ("ieee"); bfloat16 / float16 inputs multiply in their own dtype, operands rounded to
nearest (the loaded v and dY exactly, phi / RoPE / weight products and the fp32 statistics kv,
dkv once each: relative error <= 2^-8 (bf16) or 2^-11 (fp16) per operand, the reference's own
rounding of Y to bf16 is 2^-8; float16 dots take dkv / N, a mean, not the N-token sum).
The statistics stay fp32. Kernels, all with fp32 accumulation:

    _qbar_kernel         rala only: per-chunk sums of phi(q)
    _reduce_kernel       per-chunk partial kv / kbar / vbar (rala: qbar from _qbar's partials, online
                         softmax max and sum)
    _combine_kernel      one program per (batch, head): the chunks merged into kv, kbar, vbar, qbar,
                         softmax max and sum (the statistics the backward reuses)
    _apply_kernel        Y, one program per (batch*head, token block)
    _reduce_grad_kernel  per-chunk partial dkv / dkbar / dvbar from dY (mala, inline, d <= 32: and dQ)
    _combine_grad_kernel dkv, dkbar, dvbar summed over the chunks; rala: cbar
    _key_grad_kernel     dK, dV per token block (rala: also partial d qbar)
    _dqbar_kernel        rala: d qbar summed over _key_grad's blocks
    _query_grad_kernel   dQ per token block (rala, and d = 64)

Reductions are split into token chunks so that small batch*heads still fill the
GPU; the chunks' partials are merged by the small combine kernels (no PyTorch op
runs between the launches). RoPE cos/sin are gathered per tile
from a (2, max(H, W), d) table computed once per grid (`rope_table`), not
evaluated per element; phi, RoPE, the re-weighting and the normalisers are
recomputed in the backward rather than stored. Inputs may have any strides. Offsets that
combine a program id with a stride or size are int64 (tensors over 2^31 elements).

Launches per call (B*H > 0; before the combine kernels the chunk merges ran as PyTorch ops, with
zeros / ones fills and .contiguous() copies) and passes over the (B, H, N, d) tensors (each read
or write of q, k, v, y / dy, dq, dk, dv counts one; unchanged, the combines touch only the
B*H x chunks x d^2 partials):

                          launches old -> new    passes
    forward  rala         20 -> 4                5  (_qbar q; _reduce k, v; _apply q, y)
             mala/inline  13 -> 3                4
    backward rala         13 -> 5                9  (_reduce_grad q, dy; _key_grad k, v, dk, dv;
                                                     _query_grad q, dy, dq)
             mala/inline  11 -> 3 (d <= 32)      7  (_reduce_grad q, dy, dq; _key_grad)
                          13 -> 4 (d = 64)       9

Launch configurations: block_n 64 tokens, 16 for float32 at d = 64; warps and pipeline stages
autotuned on the GPU among the *_CONFIGS below (or fixed by LaunchConfig.num_warps); the combine
kernels 4 warps. sm_90 registers per thread (Triton 3.8.0 and its ptxas, no GPU:
tests/kernels/aot_compile.py, every candidate config of every recorded case, 183
specialisations), min-max over variants, RoPE and candidates; none spills (0/0 bytes):

                     fp32 d=16  fp32 d=32  fp32 d=64  fp16 d=16  fp16 d=32  bf16 d=32  bf16 d=64
    _qbar                   32      32-56      32-48         32          -          -      48-56
    _reduce             80-102    164-168    103-128    100-102        128         80     95-137
    _combine                32      32-44      64-80         32      32-44      32-44      64-80
    _apply               31-44      32-68     32-126      34-54      38-56      32-56     38-112
    _reduce_grad        99-255        169    108-128        129        206    198-201    128-197
    _combine_grad           23      30-32      58-64         23      30-32      30-32      58-64
    _key_grad            32-80         79     62-188         71         87         51     75-213
    _dqbar                  15         15         15         15         15         15         15
    _query_grad          48-64         89    165-197         56          -          -     64-158

(Before this: block_n 64 for float32 at d = 64 spilled _reduce_grad 1204/832, _key_grad
1212/1220, _query_grad 284/348 bytes; tf32 dots for 16-bit inputs took more registers, e.g. bf16
d = 64 rala + RoPE _reduce_grad 217 -> 187, inline _reduce_grad 219 -> 154, _query_grad 123 -> 64.)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from .._autotune import autotune, base_jit_function
from .._tl import dot_16bit
from .reference import rope_2d_angles

VARIANT_IDS = {"rala": 0, "mala": 1, "inline": 2}
SUPPORTED_HEAD_DIMS = (16, 32, 64)
# tl.dot operands per input dtype (see _mm): float32's exact products, 16-bit inputs' own dtype
DOT_PRECISIONS = {torch.float32: "ieee", torch.bfloat16: "bf16", torch.float16: "fp16"}

# Autotuned on the GPU: warps and pipeline stages, per token count, heads, chunk count, the kernel's
# constexprs and the dtypes (Triton adds the tensors' dtypes to the key). The token tile (block_n)
# is not: it sets how many partials the chunked reductions and rala's d qbar write, and float32's
# FMA dot at d = 64 compiles spill-free only at 16 tokens and 8 warps. Every candidate compiles
# spill-free for sm_90 in every recorded case (tests/kernels/test_compile_sm90.py); of 4 / 8 / 16
# warps x 2 / 3 stages, 4 warps spill in _reduce (float32), _reduce_grad, _key_grad, _query_grad
# (bfloat16 d = 64 too, e.g. _key_grad + RoPE 400 bytes) and 16 warps in all four (float32), so
# those keep 8 warps and tune the stages of their token loops (_key_grad / _query_grad: one config).
_LOOP_CONFIGS = [triton.Config({}, num_warps=8, num_stages=st) for st in (3, 2)]
_QBAR_CONFIGS = [triton.Config({}, num_warps=w, num_stages=st) for w in (8, 4) for st in (3, 2)]
_APPLY_CONFIGS = [triton.Config({}, num_warps=w) for w in (8, 4, 16)]
_GRAD_CONFIGS = [triton.Config({}, num_warps=8)]
_KEY = ["N", "H", "D", "BN"]


# ----------------------------------------------------------------------------- jit helpers

@triton.jit
def _phi(x, ELU: tl.constexpr):
    """The feature map on fp32 x: ELU(x) + 1 (= exp(x) for x <= 0) or identity."""
    if ELU:
        x = tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))  # no overflow in the branch not taken
    return x


@triton.jit
def _phi_grad(x, ELU: tl.constexpr):
    """d phi / dx on fp32 x."""
    if ELU:
        g = tl.where(x > 0, 1.0, tl.exp(tl.minimum(x, 0.0)))
    else:
        g = tl.full(x.shape, 1.0, tl.float32)
    return g


@triton.jit
def _rope_cos_sin(TAB, n_pos, tokens, W, D: tl.constexpr):
    """(BN, D) cos and sin of the 2-D RoPE phases of row-major token indices `tokens`, gathered
    from the (2, n_pos, D) table of `rope_table` (the first half of the channels turns with the
    row, the second with the column). Rows past the grid (masked tokens) read its last entry."""
    is_col = tl.arange(0, D) >= D // 2
    row = tl.minimum(tokens // W, n_pos - 1).to(tl.int32)  # table offsets are small: 32-bit tiles
    col = (tokens % W).to(tl.int32)
    offs = tl.where(is_col[None, :], col[:, None], row[:, None]) * D + tl.arange(0, D)[None, :]
    return tl.load(TAB + offs), tl.load(TAB + n_pos * D + offs)


@triton.jit
def _rotate_every_two(x, BN: tl.constexpr, D: tl.constexpr):
    """Interleaved pairs (a, b) -> (-b, a) along the last axis of a (BN, D) tile."""
    a, b = tl.split(tl.reshape(x, (BN, D // 2, 2)))
    return tl.reshape(tl.join(-b, a), (BN, D))


@triton.jit
def _mm(a, b, DOT_PRECISION: tl.constexpr):
    """a @ b of fp32 tiles with fp32 accumulation: "ieee" (float32 inputs) multiplies the fp32
    values exactly; "bf16" / "fp16" (16-bit inputs) rounds both operands to nearest in the input
    dtype (the tensor cores' 16-bit products; exact where an operand is a loaded input)."""
    if DOT_PRECISION == "bf16":
        c = dot_16bit(a, b, tl.bfloat16)
    elif DOT_PRECISION == "fp16":
        c = dot_16bit(a, b, tl.float16)
    else:
        c = tl.dot(a, b, input_precision="ieee")
    return c


@triton.jit
def _tile_ptrs(ptr, bh, H, stride_b, stride_h, stride_n, stride_d, tokens, offs_d):
    """Pointers of the (BN, D) tile of rows `tokens` of head bh (= batch * H + head)."""
    base = ptr + (bh // H).to(tl.int64) * stride_b + (bh % H).to(tl.int64) * stride_h
    return base + tokens[:, None].to(tl.int64) * stride_n + offs_d[None, :] * stride_d


@triton.jit
def _apply_coefficients(t, scale, eps, VARIANT: tl.constexpr):
    """a(t), b(t) and their derivatives a'(t), b'(t) of Y = a (R(q) @ kv) + b vbar."""
    if VARIANT == 0:  # rala
        a = 1.0 / (t + eps)
        b = tl.zeros_like(t)
        da = -a * a
        db = tl.zeros_like(t)
    elif VARIANT == 1:  # mala
        inv = 1.0 / (scale * t + eps)
        a = scale * (1.0 + inv)
        b = -scale * t
        da = -scale * scale * inv * inv
        db = tl.full(t.shape, -scale, tl.float32)
    else:  # inline
        a = tl.full(t.shape, scale, tl.float32)
        b = 1.0 - scale * t
        da = tl.zeros_like(t)
        db = tl.full(t.shape, -scale, tl.float32)
    return a, b, da, db


@triton.jit
def _query_terms(Q, DY, KV, KBAR, VBAR, bh, tokens, offs_d, H, N, W, ROPE_TAB, n_pos,
                 sq_b, sq_h, sq_n, sq_d, so_b, so_h, so_n, so_d, scale, eps,
                 D: tl.constexpr, BN: tl.constexpr, VARIANT: tl.constexpr, ELU: tl.constexpr,
                 ROPE: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Recompute a query tile's forward terms and, from dY, the apply-phase gradients.

    Returns raw Q, phi(Q), R(phi(Q)), cos, sin, kv, kbar, dY, a, dt = d loss / d t, b dY
    (dP = a dY is d loss / d (R(phi(Q)) @ kv)). Rows >= N have dY = 0, hence dt = b dY = 0.
    """
    inside = tokens[:, None] < N
    q_ptrs = _tile_ptrs(Q, bh, H, sq_b, sq_h, sq_n, sq_d, tokens, offs_d)
    raw_q = tl.load(q_ptrs, mask=inside, other=0.0).to(tl.float32)
    dy_ptrs = _tile_ptrs(DY, bh, H, so_b, so_h, so_n, so_d, tokens, offs_d)
    dy = tl.load(dy_ptrs, mask=inside, other=0.0).to(tl.float32)
    q = _phi(raw_q, ELU)
    if ROPE:
        cos, sin = _rope_cos_sin(ROPE_TAB, n_pos, tokens, W, D)
        rq = q * cos + _rotate_every_two(q, BN, D) * sin
    else:
        cos = tl.zeros((BN, D), tl.float32)
        sin = tl.zeros((BN, D), tl.float32)
        rq = q
    kv = tl.load(KV + bh * D * D + offs_d[:, None] * D + offs_d[None, :])
    kbar = tl.load(KBAR + bh * D + offs_d)
    vbar = tl.load(VBAR + bh * D + offs_d)
    p = _mm(rq, kv, DOT_PRECISION)
    t = tl.sum(q * kbar[None, :], axis=1)
    a, b, da, db = _apply_coefficients(t, scale, eps, VARIANT)
    dt = da * tl.sum(dy * p, axis=1) + db * tl.sum(dy * vbar[None, :], axis=1)
    return raw_q, q, rq, cos, sin, kv, kbar, dy, a, dt, b[:, None] * dy


@triton.jit
def _query_grad_terms(raw_q, cos, sin, kv, kbar, dy, a, dt, dqbar,
                      D: tl.constexpr, BN: tl.constexpr, ELU: tl.constexpr, ROPE: tl.constexpr,
                      DOT_PRECISION: tl.constexpr):
    """dQ = phi'(Q) (R^-1(dP @ kv^T) + dt kbar + dqbar) of one query tile, dP @ kv^T = a (dY @ kv^T)
    (dY, an input, is the exact 16-bit operand; dqbar: rala's mean-query term, zero otherwise)."""
    dq = a[:, None] * _mm(dy, tl.trans(kv), DOT_PRECISION)
    if ROPE:
        dq = dq * cos - _rotate_every_two(dq, BN, D) * sin
    dq += dt[:, None] * kbar[None, :] + dqbar[None, :]
    return dq * _phi_grad(raw_q, ELU)


@triton.jit
def _sum_parts(PART, bh, n_parts, offs_d, D: tl.constexpr):
    """sum_c PART[bh, c, :] of a (B*H, n_parts, D) float32 buffer, in chunk order."""
    acc = tl.zeros((D,), tl.float32)
    for c in range(n_parts):
        acc += tl.load(PART + (bh * n_parts + c) * D + offs_d)
    return acc


# ----------------------------------------------------------------------------- forward kernels

@autotune(_QBAR_CONFIGS, key=_KEY + ['n_chunks'])
@triton.jit
def _qbar_kernel(Q, PART, sq_b, sq_h, sq_n, sq_d, H, N, blocks_per_chunk, n_blocks, n_chunks,
                 D: tl.constexpr, BN: tl.constexpr):
    """Partial sums of phi(q) over one token chunk (rala's mean query)."""
    bh, chunk = tl.program_id(0).to(tl.int64), tl.program_id(1).to(tl.int64)  # int64 offsets
    offs_d = tl.arange(0, D)
    acc = tl.zeros((D,), tl.float32)
    for block in range(chunk * blocks_per_chunk, tl.minimum((chunk + 1) * blocks_per_chunk, n_blocks)):
        tokens = block * BN + tl.arange(0, BN)
        inside = tokens[:, None] < N
        raw_q = tl.load(_tile_ptrs(Q, bh, H, sq_b, sq_h, sq_n, sq_d, tokens, offs_d), mask=inside, other=0.0)
        acc += tl.sum(tl.where(inside, _phi(raw_q.to(tl.float32), True), 0.0), axis=0)
    tl.store(PART + (bh * n_chunks + chunk) * D + offs_d, acc)


@autotune(_LOOP_CONFIGS, key=_KEY + ['n_chunks', 'ELU', 'ROPE', 'SOFTMAX', 'DOT_PRECISION'])
@triton.jit
def _reduce_kernel(K, V, QBAR_PART, KV_PART, KBAR_PART, VBAR_PART, MAX_PART, SUM_PART,
                   sk_b, sk_h, sk_n, sk_d, sv_b, sv_h, sv_n, sv_d,
                   H, N, W, ROPE_TAB, n_pos, blocks_per_chunk, n_blocks, n_chunks, scale,
                   D: tl.constexpr, BN: tl.constexpr, ELU: tl.constexpr, ROPE: tl.constexpr,
                   SOFTMAX: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Partial kv, kbar, vbar sums over one token chunk; with SOFTMAX, weighted by
    exp(logit - running max) and rescaled as the max grows (online softmax), the mean query
    summed from _qbar's partials first (as _combine sums them)."""
    bh, chunk = tl.program_id(0).to(tl.int64), tl.program_id(1).to(tl.int64)  # int64 offsets
    offs_d = tl.arange(0, D)
    if SOFTMAX:
        qbar = _sum_parts(QBAR_PART, bh, n_chunks, offs_d, D) / N
    acc_kv = tl.zeros((D, D), tl.float32)
    acc_k = tl.zeros((D,), tl.float32)
    acc_v = tl.zeros((D,), tl.float32)
    run_max = tl.max(tl.full((BN,), float("-inf"), tl.float32), axis=0)
    run_sum = tl.sum(tl.zeros((BN,), tl.float32), axis=0)
    for block in range(chunk * blocks_per_chunk, tl.minimum((chunk + 1) * blocks_per_chunk, n_blocks)):
        tokens = block * BN + tl.arange(0, BN)
        valid = tokens < N
        raw_k = tl.load(_tile_ptrs(K, bh, H, sk_b, sk_h, sk_n, sk_d, tokens, offs_d),
                        mask=valid[:, None], other=0.0).to(tl.float32)
        v = tl.load(_tile_ptrs(V, bh, H, sv_b, sv_h, sv_n, sv_d, tokens, offs_d),
                    mask=valid[:, None], other=0.0).to(tl.float32)
        k = tl.where(valid[:, None], _phi(raw_k, ELU), 0.0)
        if SOFTMAX:
            logits = tl.where(valid, scale * tl.sum(k * qbar[None, :], axis=1), float("-inf"))
            new_max = tl.maximum(run_max, tl.max(logits, axis=0))
            rescale = tl.exp(run_max - new_max)
            weights = tl.exp(logits - new_max)
            run_sum = run_sum * rescale + tl.sum(weights, axis=0)
            acc_kv = acc_kv * rescale
            acc_k = acc_k * rescale
            run_max = new_max
            k = k * weights[:, None]
        rk = k
        if ROPE:
            cos, sin = _rope_cos_sin(ROPE_TAB, n_pos, tokens, W, D)
            rk = k * cos + _rotate_every_two(k, BN, D) * sin
        acc_kv += _mm(tl.trans(rk), v, DOT_PRECISION)
        acc_k += tl.sum(k, axis=0)
        acc_v += tl.sum(v, axis=0)
    part = bh * n_chunks + chunk
    tl.store(KV_PART + part * D * D + offs_d[:, None] * D + offs_d[None, :], acc_kv)
    tl.store(KBAR_PART + part * D + offs_d, acc_k)
    tl.store(VBAR_PART + part * D + offs_d, acc_v)
    if SOFTMAX:
        tl.store(MAX_PART + part, run_max)
        tl.store(SUM_PART + part, run_sum)


@triton.jit
def _combine_kernel(KV_PART, KBAR_PART, VBAR_PART, MAX_PART, SUM_PART, QBAR_PART,
                    KV, KBAR, VBAR, QBAR, MAX, SUM, N, n_chunks,
                    D: tl.constexpr, SOFTMAX: tl.constexpr):
    """The statistics of one (batch, head) from its chunks' partials: kv, kbar (softmax: each
    chunk rescaled by exp(chunk max - max), divided by the weights' sum; else divided by N),
    vbar = sum / N, and qbar, max, sum (rala; else 0, 0, 1: op outputs must be defined)."""
    bh = tl.program_id(0).to(tl.int64)
    offs_d = tl.arange(0, D)
    kv_offs = offs_d[:, None] * D + offs_d[None, :]
    kv = tl.zeros((D, D), tl.float32)
    kbar = tl.zeros((D,), tl.float32)
    vbar = _sum_parts(VBAR_PART, bh, n_chunks, offs_d, D) / N
    if SOFTMAX:
        row_max = tl.load(MAX_PART + bh * n_chunks)
        for c in range(1, n_chunks):
            row_max = tl.maximum(row_max, tl.load(MAX_PART + bh * n_chunks + c))
        total = row_max * 0.0
        for c in range(n_chunks):
            part = bh * n_chunks + c
            chunk_scale = tl.exp(tl.load(MAX_PART + part) - row_max)
            total += tl.load(SUM_PART + part) * chunk_scale
            kv += tl.load(KV_PART + part * D * D + kv_offs) * chunk_scale
            kbar += tl.load(KBAR_PART + part * D + offs_d) * chunk_scale
        kv = kv / total
        kbar = kbar / total
        qbar = _sum_parts(QBAR_PART, bh, n_chunks, offs_d, D) / N
    else:
        for c in range(n_chunks):
            part = bh * n_chunks + c
            kv += tl.load(KV_PART + part * D * D + kv_offs)
            kbar += tl.load(KBAR_PART + part * D + offs_d)
        kv = kv / N
        kbar = kbar / N
        row_max = 0.0
        total = 1.0
        qbar = tl.zeros((D,), tl.float32)
    tl.store(KV + bh * D * D + kv_offs, kv)
    tl.store(KBAR + bh * D + offs_d, kbar)
    tl.store(VBAR + bh * D + offs_d, vbar)
    tl.store(QBAR + bh * D + offs_d, qbar)
    tl.store(MAX + bh, row_max)
    tl.store(SUM + bh, total)


@autotune(_APPLY_CONFIGS, key=_KEY + ['VARIANT', 'ROPE', 'DOT_PRECISION'])
@triton.jit
def _apply_kernel(Q, Y, KV, KBAR, VBAR, sq_b, sq_h, sq_n, sq_d, sy_b, sy_h, sy_n, sy_d,
                  H, N, W, ROPE_TAB, n_pos, scale, eps,
                  D: tl.constexpr, BN: tl.constexpr, VARIANT: tl.constexpr, ELU: tl.constexpr,
                  ROPE: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Y = a(t) (R(phi(q)) @ kv) + b(t) vbar for one token block."""
    bh, block = tl.program_id(0), tl.program_id(1)
    tokens = block * BN + tl.arange(0, BN)
    inside = tokens[:, None] < N
    offs_d = tl.arange(0, D)
    raw_q = tl.load(_tile_ptrs(Q, bh, H, sq_b, sq_h, sq_n, sq_d, tokens, offs_d), mask=inside, other=0.0)
    q = _phi(raw_q.to(tl.float32), ELU)
    rq = q
    if ROPE:
        cos, sin = _rope_cos_sin(ROPE_TAB, n_pos, tokens, W, D)
        rq = q * cos + _rotate_every_two(q, BN, D) * sin
    kv = tl.load(KV + bh * D * D + offs_d[:, None] * D + offs_d[None, :])
    kbar = tl.load(KBAR + bh * D + offs_d)
    vbar = tl.load(VBAR + bh * D + offs_d)
    t = tl.sum(q * kbar[None, :], axis=1)
    a, b, _, _ = _apply_coefficients(t, scale, eps, VARIANT)
    y = a[:, None] * _mm(rq, kv, DOT_PRECISION) + b[:, None] * vbar[None, :]
    tl.store(_tile_ptrs(Y, bh, H, sy_b, sy_h, sy_n, sy_d, tokens, offs_d), y.to(Y.dtype.element_ty), mask=inside)


# ----------------------------------------------------------------------------- backward kernels

@autotune(_LOOP_CONFIGS, key=_KEY + ['n_chunks', 'VARIANT', 'ROPE', 'WRITE_DQ', 'DOT_PRECISION'])
@triton.jit
def _reduce_grad_kernel(Q, DY, DQ, KV, KBAR, VBAR, DKV_PART, DKBAR_PART, DVBAR_PART,
                        sq_b, sq_h, sq_n, sq_d, so_b, so_h, so_n, so_d, sdq_b, sdq_h, sdq_n, sdq_d,
                        H, N, W, ROPE_TAB, n_pos, blocks_per_chunk, n_blocks, n_chunks, scale, eps,
                        D: tl.constexpr, BN: tl.constexpr, VARIANT: tl.constexpr, ELU: tl.constexpr,
                        ROPE: tl.constexpr, WRITE_DQ: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Partial dkv = sum_i R(q_i)^T dP_i, dkbar = sum_i dt_i q_i, dvbar = sum_i b_i dY_i; with
    WRITE_DQ (mala, inline: dQ needs no reduced term) also dQ of the chunk's tokens."""
    bh, chunk = tl.program_id(0).to(tl.int64), tl.program_id(1).to(tl.int64)  # int64 offsets
    offs_d = tl.arange(0, D)
    acc_dkv = tl.zeros((D, D), tl.float32)
    acc_dk = tl.zeros((D,), tl.float32)
    acc_dv = tl.zeros((D,), tl.float32)
    for block in range(chunk * blocks_per_chunk, tl.minimum((chunk + 1) * blocks_per_chunk, n_blocks)):
        tokens = block * BN + tl.arange(0, BN)
        raw_q, q, rq, cos, sin, kv, kbar, dy, a, dt, b_dy = _query_terms(
            Q, DY, KV, KBAR, VBAR, bh, tokens, offs_d, H, N, W, ROPE_TAB, n_pos,
            sq_b, sq_h, sq_n, sq_d, so_b, so_h, so_n, so_d,
            scale, eps, D, BN, VARIANT, ELU, ROPE, DOT_PRECISION)
        if WRITE_DQ:
            dq = _query_grad_terms(raw_q, cos, sin, kv, kbar, dy, a, dt, tl.zeros((D,), tl.float32),
                                   D, BN, ELU, ROPE, DOT_PRECISION)
            tl.store(_tile_ptrs(DQ, bh, H, sdq_b, sdq_h, sdq_n, sdq_d, tokens, offs_d),
                     dq.to(DQ.dtype.element_ty), mask=tokens[:, None] < N)
        acc_dkv += _mm(tl.trans(rq * a[:, None]), dy, DOT_PRECISION)  # R(q_i)^T dP_i, dY exact
        acc_dk += tl.sum(dt[:, None] * q, axis=0)
        acc_dv += tl.sum(b_dy, axis=0)
    part = bh * n_chunks + chunk
    tl.store(DKV_PART + part * D * D + offs_d[:, None] * D + offs_d[None, :], acc_dkv)
    tl.store(DKBAR_PART + part * D + offs_d, acc_dk)
    tl.store(DVBAR_PART + part * D + offs_d, acc_dv)


@triton.jit
def _combine_grad_kernel(DKV_PART, DKBAR_PART, DVBAR_PART, KV, KBAR, DKV, DKBAR, DVBAR, CBAR, n_chunks,
                         D: tl.constexpr, SOFTMAX: tl.constexpr):
    """dkv, dkbar, dvbar of one (batch, head): the chunks' partials summed; for rala also
    cbar = <kv, dkv> + kbar . dkbar, the softmax pull-back's mean sum_j alpha_j (d loss / d alpha_j)."""
    bh = tl.program_id(0).to(tl.int64)
    offs_d = tl.arange(0, D)
    kv_offs = offs_d[:, None] * D + offs_d[None, :]
    dkv = tl.zeros((D, D), tl.float32)
    for c in range(n_chunks):
        dkv += tl.load(DKV_PART + (bh * n_chunks + c) * D * D + kv_offs)
    dkbar = _sum_parts(DKBAR_PART, bh, n_chunks, offs_d, D)
    tl.store(DKV + bh * D * D + kv_offs, dkv)
    tl.store(DKBAR + bh * D + offs_d, dkbar)
    tl.store(DVBAR + bh * D + offs_d, _sum_parts(DVBAR_PART, bh, n_chunks, offs_d, D))
    if SOFTMAX:
        kv = tl.load(KV + bh * D * D + kv_offs)
        kbar = tl.load(KBAR + bh * D + offs_d)
        tl.store(CBAR + bh, tl.sum(tl.sum(kv * dkv, axis=1), axis=0) + tl.sum(kbar * dkbar, axis=0))


@triton.jit
def _dqbar_kernel(DQBAR_PART, DQBAR, n_blocks, D: tl.constexpr):
    """rala's d qbar of one (batch, head): the sum of _key_grad's per-block partials."""
    bh = tl.program_id(0).to(tl.int64)
    offs_d = tl.arange(0, D)
    tl.store(DQBAR + bh * D + offs_d, _sum_parts(DQBAR_PART, bh, n_blocks, offs_d, D))


@autotune(_GRAD_CONFIGS, key=_KEY + ['ELU', 'ROPE', 'SOFTMAX', 'DOT_PRECISION'])
@triton.jit
def _key_grad_kernel(K, V, DK, DV, QBAR, MAX, SUM, DKV, DKBAR, DVBAR, CBAR, DQBAR_PART,
                     sk_b, sk_h, sk_n, sk_d, sv_b, sv_h, sv_n, sv_d,
                     sdk_b, sdk_h, sdk_n, sdk_d, sdv_b, sdv_h, sdv_n, sdv_d,
                     H, N, W, ROPE_TAB, n_pos, n_blocks, scale,
                     D: tl.constexpr, BN: tl.constexpr, ELU: tl.constexpr, ROPE: tl.constexpr,
                     SOFTMAX: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """dK, dV of one token block, from dkv, dkbar, dvbar (and for rala the softmax terms)."""
    bh, block = tl.program_id(0).to(tl.int64), tl.program_id(1)  # int64 offsets (bh * n_blocks)
    tokens = block * BN + tl.arange(0, BN)
    valid = tokens < N
    offs_d = tl.arange(0, D)
    raw_k = tl.load(_tile_ptrs(K, bh, H, sk_b, sk_h, sk_n, sk_d, tokens, offs_d),
                    mask=valid[:, None], other=0.0).to(tl.float32)
    v = tl.load(_tile_ptrs(V, bh, H, sv_b, sv_h, sv_n, sv_d, tokens, offs_d),
                mask=valid[:, None], other=0.0).to(tl.float32)
    k = tl.where(valid[:, None], _phi(raw_k, ELU), 0.0)
    dkv = tl.load(DKV + bh * D * D + offs_d[:, None] * D + offs_d[None, :])
    dkbar = tl.load(DKBAR + bh * D + offs_d)
    dvbar = tl.load(DVBAR + bh * D + offs_d)
    if SOFTMAX:
        qbar = tl.load(QBAR + bh * D + offs_d)
        logits = tl.where(valid, scale * tl.sum(k * qbar[None, :], axis=1), float("-inf"))
        weights = tl.exp(logits - tl.load(MAX + bh)) / tl.load(SUM + bh)
    else:
        weights = tl.where(valid, 1.0 / N, 0.0)
    # g_j = dkv @ v_j is d loss / d R(w_j k_j); pulled back through the rotation of k_j. dkv, a sum
    # over N tokens, enters float16 dots as dkv / N (within float16's range)
    dkv_scale = 1.0
    if DOT_PRECISION == "fp16":
        dkv_scale = N * 1.0
        dkv = dkv / dkv_scale
    g = _mm(v, tl.trans(dkv), DOT_PRECISION) * dkv_scale
    rk = k
    if ROPE:
        cos, sin = _rope_cos_sin(ROPE_TAB, n_pos, tokens, W, D)
        rk = k * cos + _rotate_every_two(k, BN, D) * sin
        g = g * cos - _rotate_every_two(g, BN, D) * sin
    dk_weighted = g + dkbar[None, :]  # d loss / d (w_j k_j)
    dk = weights[:, None] * dk_weighted
    dv = (weights * dkv_scale)[:, None] * _mm(rk, dkv, DOT_PRECISION) + dvbar[None, :] / N
    if SOFTMAX:
        # d loss / d alpha_j = k_j . dk_weighted_j; the softmax pull-back subtracts its alpha-mean cbar
        dlogit = weights * (tl.sum(k * dk_weighted, axis=1) - tl.load(CBAR + bh))
        dk += scale * dlogit[:, None] * qbar[None, :]
        tl.store(DQBAR_PART + (bh * n_blocks + block) * D + offs_d, scale * tl.sum(dlogit[:, None] * k, axis=0))
    dk = dk * _phi_grad(raw_k, ELU)
    tl.store(_tile_ptrs(DK, bh, H, sdk_b, sdk_h, sdk_n, sdk_d, tokens, offs_d), dk.to(DK.dtype.element_ty),
             mask=valid[:, None])
    tl.store(_tile_ptrs(DV, bh, H, sdv_b, sdv_h, sdv_n, sdv_d, tokens, offs_d), dv.to(DV.dtype.element_ty),
             mask=valid[:, None])


@autotune(_GRAD_CONFIGS, key=_KEY + ['VARIANT', 'ROPE', 'SOFTMAX', 'DOT_PRECISION'])
@triton.jit
def _query_grad_kernel(Q, DY, DQ, KV, KBAR, VBAR, DQBAR,
                       sq_b, sq_h, sq_n, sq_d, so_b, so_h, so_n, so_d, sdq_b, sdq_h, sdq_n, sdq_d,
                       H, N, W, ROPE_TAB, n_pos, scale, eps,
                       D: tl.constexpr, BN: tl.constexpr, VARIANT: tl.constexpr, ELU: tl.constexpr,
                       ROPE: tl.constexpr, SOFTMAX: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """dQ_i = phi'(Q_i) (R^-1(dP_i @ kv^T) + dt_i kbar [+ dqbar / N for rala]); for rala (its
    dqbar comes from _key_grad) and at d = 64; otherwise _reduce_grad writes dQ."""
    bh, block = tl.program_id(0), tl.program_id(1)
    tokens = block * BN + tl.arange(0, BN)
    offs_d = tl.arange(0, D)
    raw_q, _, _, cos, sin, kv, kbar, dy, a, dt, _ = _query_terms(
        Q, DY, KV, KBAR, VBAR, bh, tokens, offs_d, H, N, W, ROPE_TAB, n_pos,
        sq_b, sq_h, sq_n, sq_d, so_b, so_h, so_n, so_d,
        scale, eps, D, BN, VARIANT, ELU, ROPE, DOT_PRECISION)
    if SOFTMAX:
        dqbar = tl.load(DQBAR + bh * D + offs_d) / N
    else:
        dqbar = tl.zeros((D,), tl.float32)
    dq = _query_grad_terms(raw_q, cos, sin, kv, kbar, dy, a, dt, dqbar, D, BN, ELU, ROPE, DOT_PRECISION)
    tl.store(_tile_ptrs(DQ, bh, H, sdq_b, sdq_h, sdq_n, sdq_d, tokens, offs_d), dq.to(DQ.dtype.element_ty),
             mask=tokens[:, None] < N)


# ----------------------------------------------------------------------------- host side

@dataclass(frozen=True)
class LaunchConfig:
    """Tile and split sizes. `block_n`: tokens per tile (>= 16, power of two; None picks 16 for
    float32 at d = 64, 64 otherwise); `chunks`: token chunks per (batch, head) in the reductions
    (None: enough to fill the device); `num_warps`: None lets the autotuner pick warps and stages
    of the six main kernels (the *_CONFIGS candidates); a value launches them with it.
    (ptxas for sm_90: float32's FMA-based "ieee" tl.dot holds a d-long slice of both operands per
    thread; at d = 64 every backward kernel spills with 64 or 32 token tiles at 4, 8 or 16 warps,
    and 16 tokens at 8 warps is the one spill-free combination.)"""
    block_n: int | None = None
    chunks: int | None = None
    num_warps: int | None = None

    def __post_init__(self):
        if self.block_n is not None and (self.block_n < 16 or self.block_n & (self.block_n - 1)):
            raise ValueError(f"block_n must be a power of two >= 16 (tl.dot tiles), got {self.block_n}")

    def block(self, head_dim: int, dot_precision: str) -> int:
        return self.block_n or (16 if head_dim >= 64 and dot_precision == "ieee" else 64)

    def launch(self, kernel, grid):
        """kernel[grid]: autotuned, or with num_warps fixed (the jit function inside the autotuner)."""
        if self.num_warps is None:
            return kernel[grid]
        return functools.partial(base_jit_function(kernel)[grid], num_warps=self.num_warps)


@dataclass(frozen=True)
class _Problem:
    variant: int
    heads: int
    n_tokens: int
    head_dim: int
    width: int          # RoPE grid width (1 when no RoPE)
    rope: bool
    scale: float
    eps: float
    dot_precision: str

    @property
    def elu(self) -> bool:
        return self.variant != VARIANT_IDS["inline"]

    @property
    def softmax(self) -> bool:
        return self.variant == VARIANT_IDS["rala"]


def problem(q: torch.Tensor, variant: str, rope_hw, eps: float) -> _Problem:
    d = q.shape[-1]
    return _Problem(
        variant=VARIANT_IDS[variant], heads=q.shape[1], n_tokens=q.shape[2], head_dim=d,
        width=1 if rope_hw is None else int(rope_hw[1]), rope=rope_hw is not None, scale=d ** -0.5,
        eps=float(eps), dot_precision=DOT_PRECISIONS[q.dtype])


_ROPE_TABLES: dict = {}
_COMBINE_WARPS = 4  # one program per (batch, head) over a d x d tile: 4096 floats at d = 64


def rope_table(p: _Problem, device: torch.device) -> torch.Tensor:
    """(2, max(height, width), d) float32: cos and sin of position * the reference's RoPE angle per
    channel (cached per grid). The kernels gather a token's phases from it (row for the first half
    of the channels, column for the second) instead of evaluating cos / sin per element; the
    phases are the reference's own float32 products. Without RoPE: an unused (2, 1, d) tensor."""
    key = (p.rope, p.n_tokens // p.width, p.width, p.head_dim, device)
    table = _ROPE_TABLES.get(key)
    if table is None:
        if len(_ROPE_TABLES) > 64:
            _ROPE_TABLES.clear()
        n_pos = max(p.n_tokens // p.width, p.width) if p.rope else 1
        angle = rope_2d_angles(p.head_dim, device=device).repeat(2)  # row half, column half
        phase = torch.arange(n_pos, device=device, dtype=torch.float32)[:, None] * angle
        table = _ROPE_TABLES[key] = torch.stack([phase.cos(), phase.sin()]).contiguous()
    return table


def _split(n_blocks: int, batch_heads: int, cfg: LaunchConfig, device: torch.device) -> tuple[int, int]:
    """(blocks_per_chunk, n_chunks) for the chunked reductions."""
    chunks = cfg.chunks
    if chunks is None:
        programs = 4 * torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1
        chunks = max(1, programs // batch_heads)
    chunks = max(1, min(chunks, n_blocks))
    per_chunk = triton.cdiv(n_blocks, chunks)
    return per_chunk, triton.cdiv(n_blocks, per_chunk)


def _output_like(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, H, N, d) buffer; token-minor (a transposed (B, H, d, N) buffer) when x is token-minor,
    so that channels-first callers reshape the result to (B, C, H, W) without a copy."""
    if x.stride(-2) == 1 and x.shape[-2] > 1:
        b, h, n, d = x.shape
        return torch.empty(b, h, d, n, device=x.device, dtype=dtype).transpose(-1, -2)
    return torch.empty(x.shape, device=x.device, dtype=dtype)


def forward(q, k, v, p: _Problem, cfg: LaunchConfig):
    """y and the O(d^2) statistics the backward reuses: (kv, kbar, vbar, qbar, softmax max, softmax sum)."""
    b, h, n, d = q.shape
    bh, bn = b * h, cfg.block(d, p.dot_precision)
    n_blocks = triton.cdiv(n, bn)
    per_chunk, chunks = _split(n_blocks, bh, cfg, q.device)
    f32 = dict(device=q.device, dtype=torch.float32)
    tab = rope_table(p, q.device)
    kv_part = torch.empty(bh, chunks, d, d, **f32)
    kbar_part, vbar_part, qbar_part = (torch.empty(bh, chunks, d, **f32) for _ in range(3))
    max_part, sum_part = torch.empty(bh, chunks, **f32), torch.empty(bh, chunks, **f32)
    if p.softmax:
        cfg.launch(_qbar_kernel, (bh, chunks))(q, qbar_part, *q.stride(), h, n, per_chunk, n_blocks, chunks,
                                               D=d, BN=bn)
    cfg.launch(_reduce_kernel, (bh, chunks))(
        k, v, qbar_part, kv_part, kbar_part, vbar_part, max_part, sum_part, *k.stride(), *v.stride(),
        h, n, p.width, tab, tab.shape[1], per_chunk, n_blocks, chunks, p.scale,
        D=d, BN=bn, ELU=p.elu, ROPE=p.rope, SOFTMAX=p.softmax, DOT_PRECISION=p.dot_precision)
    kv = torch.empty(bh, d, d, **f32)
    kbar, vbar, qbar = (torch.empty(bh, d, **f32) for _ in range(3))
    row_max, total = torch.empty(bh, **f32), torch.empty(bh, **f32)
    _combine_kernel[(bh,)](kv_part, kbar_part, vbar_part, max_part, sum_part, qbar_part,
                           kv, kbar, vbar, qbar, row_max, total, n, chunks, D=d, SOFTMAX=p.softmax,
                           num_warps=_COMBINE_WARPS)
    y = _output_like(q, q.dtype)
    cfg.launch(_apply_kernel, (bh, n_blocks))(
        q, y, kv, kbar, vbar, *q.stride(), *y.stride(), h, n, p.width, tab, tab.shape[1], p.scale, p.eps,
        D=d, BN=bn, VARIANT=p.variant, ELU=p.elu, ROPE=p.rope, DOT_PRECISION=p.dot_precision)
    return y, (kv, kbar, vbar, qbar, row_max, total)


def backward(q, k, v, dy, stats, p: _Problem, cfg: LaunchConfig):
    """dq, dk, dv from dy, recomputing phi, RoPE, weights and normalisers from q, k, v."""
    kv, kbar, vbar, qbar, row_max, total = stats
    b, h, n, d = q.shape
    bh, bn = b * h, cfg.block(d, p.dot_precision)
    n_blocks = triton.cdiv(n, bn)
    per_chunk, chunks = _split(n_blocks, bh, cfg, q.device)
    f32 = dict(device=q.device, dtype=torch.float32)
    tab = rope_table(p, q.device)
    dkv_part = torch.empty(bh, chunks, d, d, **f32)
    dkbar_part = torch.empty(bh, chunks, d, **f32)
    dvbar_part = torch.empty(bh, chunks, d, **f32)
    common = dict(D=d, BN=bn, ELU=p.elu, ROPE=p.rope, DOT_PRECISION=p.dot_precision)
    dq = _output_like(q, q.dtype)
    # mala / inline dQ needs no reduced term: written by _reduce_grad (one launch and one pass over
    # q and dy fewer) where that stays spill-free on sm_90, d <= 32; at d = 64 fusing made bf16
    # mala spill 60-72 bytes and float32 inline 1328, so _query_grad writes it there
    fuse_dq = not p.softmax and d <= 32
    cfg.launch(_reduce_grad_kernel, (bh, chunks))(
        q, dy, dq, kv, kbar, vbar, dkv_part, dkbar_part, dvbar_part, *q.stride(), *dy.stride(), *dq.stride(),
        h, n, p.width, tab, tab.shape[1], per_chunk, n_blocks, chunks, p.scale, p.eps, VARIANT=p.variant,
        WRITE_DQ=fuse_dq, **common)
    dkv = torch.empty(bh, d, d, **f32)
    dkbar, dvbar = torch.empty(bh, d, **f32), torch.empty(bh, d, **f32)
    cbar = torch.empty(bh, **f32)
    _combine_grad_kernel[(bh,)](dkv_part, dkbar_part, dvbar_part, kv, kbar, dkv, dkbar, dvbar, cbar, chunks,
                                D=d, SOFTMAX=p.softmax, num_warps=_COMBINE_WARPS)
    dqbar_part = torch.empty(bh, n_blocks if p.softmax else 1, d, **f32)
    dk, dv = _output_like(k, k.dtype), _output_like(v, v.dtype)
    cfg.launch(_key_grad_kernel, (bh, n_blocks))(
        k, v, dk, dv, qbar, row_max, total, dkv, dkbar, dvbar, cbar, dqbar_part,
        *k.stride(), *v.stride(), *dk.stride(), *dv.stride(), h, n, p.width, tab, tab.shape[1], n_blocks, p.scale,
        SOFTMAX=p.softmax, **common)
    dqbar = dqbar_part[:, 0]  # unread without the softmax
    if p.softmax:
        dqbar = torch.empty(bh, d, **f32)
        _dqbar_kernel[(bh,)](dqbar_part, dqbar, n_blocks, D=d, num_warps=_COMBINE_WARPS)
    if not fuse_dq:
        cfg.launch(_query_grad_kernel, (bh, n_blocks))(
            q, dy, dq, kv, kbar, vbar, dqbar, *q.stride(), *dy.stride(), *dq.stride(),
            h, n, p.width, tab, tab.shape[1], p.scale, p.eps, VARIANT=p.variant, SOFTMAX=p.softmax, **common)
    return dq, dk, dv
