"""Triton kernels for bidirectional gated linear attention, parallel over chunks, forward and backward.

The function is `reference.bigla_chunked`. The sequence is cut into chunks of BT = 64 tokens (the
last one ragged), each chunk into NC = BT / BC sub-chunks of BC = 16 tokens. Both scans work in
memory order on the same chunks: the forward scan (gates a_f) runs left to right, the backward
scan (gates a_b) right to left, so one program can sum the two directions of a token.

Gate exponents, per direction, chunk-local (a the log-decays, <= 0; `cum` the inclusive cumsum
over a sub-chunk, `tot` its sum, `pre` the sum over the chunk's sub-chunks before it, `T` the
chunk's sum):

                                   forward scan (s <= t)        backward scan (s >= t)
    pair (t, s) of one sub-chunk   cum[t] - cum[s]              excl[s] - excl[t]   (excl = cum - a)
    query vs the entering state    pre + cum[t]                 T - pre - cum[t] + a[t]
    key to the chunk's far end     T - pre - cum[s]             pre + excl[s]
    t-block i, s-block j (i != j)  cum_i[t]  +  pre_i - pre_j - cum_j[s]      (i > j)
                                   rev_i[t]  +  pre_j - pre_i - tot_i + excl_j[s]   (i < j, rev = tot - excl)

Every exponent is a sum of log-decays, <= 0 mathematically, and is clamped to <= 0 before the
exp (`_decay`), so nothing overflows however strong the gates. Between different sub-chunks the
decay factorises at the boundary b between them, exp(A_t - A_b) * exp(A_b - A_s), both factors
<= 1, and the scores are tensor-core dots; inside a sub-chunk the decay is formed per (t, s, c),
one key column at a time (no (BC, BC, dk) tile in registers).

Kernels (grid (chunks, B·H) unless said; states S (dk, dv) fp32 in registers and in memory):

    _states_kernel   per chunk and direction, sub-chunk by sub-chunk: its contribution to the state,
                     (k * exp(key gate))^T v, and its total decay T; with GRAD also the gradient
                     state's contribution (q * exp(query gate))^T dO. Written to h (B·H, chunks,
                     NSEQ, dk, dv padded to BV) fp32, T to g (B·H, chunks, 2, dk).
    _scan_kernel     grid (B·H, NSEQ, dk tiles): the short scan over the chunk states, sequential
                     over the chunks only, S_entering(c) = exp(T) S + contribution, in place in h.
                     NSEQ = 2 forward (S_f left to right, S_b right to left); 4 backward, plus the
                     gradient states U_f (right to left) and U_b (left to right).
    _output_kernel   o for a chunk: both directions, inter (query-gated q @ S) + intra
                     (sub-chunk pairs, diagonal sub-chunks) summed in registers, written once in
                     v's dtype.
    _grads_kernel    launched twice: DV_PART 0, grid (chunks, B·H, dk / 16): dq, dk, da_f, da_b of 16
                     channels, its products over dv 16 channels (BVS) at a time; DV_PART 1: dv (all
                     channels). Both directions summed in registers, each gradient written once in
                     its input's dtype. With dA = q * dq - k * dk per
                     direction (q scaled, dq the gradient of the scaled q), da_f[r] = sum_{t >= r}
                     dA_f[t] and da_b[r] = sum_{t <= r} dA_b[t]: in-chunk cumsums plus a carry
                     across chunks, read off the scanned states: the sum of dA over the tokens on
                     one side of a chunk boundary is sum_v S * U at that boundary (the derivative of
                     the loss by a log-decay inserted there), so no second scan is needed.

tl.dot: float32 inputs multiply exactly ("ieee"); when q, k, v share a 16-bit dtype the operands are
rounded to it (to nearest; the states and gated tiles once each, relative error <= 2^-8 for bf16,
2^-11 for fp16 per operand) with fp32 accumulation. Under the interpreter a bf16 dot multiplies
bit patterns, so there the operands are rounded to bf16 and multiplied in fp32.

Launches and passes over the (B, N, H, ·) tensors (a pass: one such tensor read or written once,
whatever its dtype; the states h and T are (B·H, N/64, ·): 2 (forward) or 4 (backward) dk·dv fp32
per 64 tokens and head, plus a scan that reads and writes them once):

                 launches          passes                                          torch ops after
    forward      3  (old: 1 + 2)   10 (old 15; ideal 6)                            none (old: sum, cast)
    backward     4  (old: 1 + ~17) 23 (old about 71; ideal 11)                     none (old: about 17)

New forward: states read k, v, a_f, a_b (4); output reads q, k, v, a_f, a_b and writes o (6; its
sub-chunk pairs re-read k, v and the gates of the chunk's other sub-chunks, from L1 / L2). New
backward: states read q, k, v, a_f, a_b, dO (6); each gradients' part reads the same six (12) and
writes dq, dk, da_f, da_b (4) or dv (1). Old (HEAD~ of this design: one program per (b·h,
direction), two sequential walks for the backward), counted from its code: forward kernel q, k, v
read by both directions, each gate once (8), the fp32 (2, B, N, H, dv) buffer written (2), then
o[0] + o[1] (3) and the cast (2); backward kernel walk 1 reads k, v, a, dO and walk 2 q, k, v, a,
dO per direction (18), fp32 (2, ...) dq, dk, dv written (6); then in torch q.float(), k.float() (4),
q * dq and k * dk over both directions (10), their difference (6), flip / cumsum / flip of dA_f (6),
cumsum of dA_b (2), three sums over the direction axis (9), five casts (10). The chunk parallelism
costs the states kernels' re-reads of the inputs; in exchange the grid is (N/64)·B·H programs (and
dk/16 times that for dq, dk) instead of 2·B·H, and no step is sequential over tokens, only the scan
over N/64 chunk states.

Offsets are int64 where a program id multiplies a stride (the program ids are widened first):
ViG's large inputs (B=64, N=50176, H=8, dv=64) pass 2^31 elements.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._autotune import autotune
from .._tl import dot_16bit

BT = 64  # chunk: the unit of the state scan
BC = 16  # sub-chunk: the unit of the intra-chunk dots (tl.dot's smallest side)
BVS = 16  # dq / dk gradients' part: dv channels per step of its products over dv (32 spills fp32 at dv 64)

# Autotuned on a GPU per (dk, dv, chunk count) and dtypes; every candidate compiles spill-free for
# sm_90 in every recorded case (tests/kernels/test_compile_sm90.py). Smallest first (the CPU tests').
_CONFIGS = [triton.Config({}, num_warps=4, num_stages=s) for s in (1, 2)]  # 8 warps: fp32 (32, 64) spills
# The output and gradients' kernels: float32's FMA dots (exact "ieee") at (dk, dv) = (32, 64) spill
# at 4 warps or 2 stages; in the gradients' kernel 4 warps spill in most cases recorded, 16 more.
_OUT_CONFIGS = [triton.Config({}, num_warps=8, num_stages=1)]
_GRAD_CONFIGS = [triton.Config({}, num_warps=8, num_stages=1)]
_SCAN_CONFIGS = [triton.Config({"BKS": bk}, num_warps=w) for bk, w in ((16, 4), (32, 4), (16, 2))]
_KEY = ["DK", "DV", "NT"]


# ----------------------------------------------------------------------------- jit helpers

@triton.jit
def _decay(x):
    """exp(min(x, 0)): a decay factor from a sum of log-decays (<= 0; rounding may lift it by ulps)."""
    return tl.exp(tl.minimum(x, 0.0))


@triton.jit
def _dot(a, b, LOWP: tl.constexpr, dt: tl.constexpr):
    """a @ b with fp32 accumulation: fp32 operands exactly (LOWP 0), or rounded to dt (LOWP 1)."""
    if LOWP:
        c = dot_16bit(a, b, dt)
    else:
        c = tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return c


@triton.jit
def _tile(ptr, base, t0, N, sn, D, R: tl.constexpr, BD: tl.constexpr):
    """Tokens t0 .. t0 + R - 1 by channels 0 .. BD - 1 of one (b, h), zero outside (N, D), as fp32."""
    rows = t0 + tl.arange(0, R)
    cols = tl.arange(0, BD)
    mask = (rows < N)[:, None] & (cols < D)[None, :]
    return tl.load(ptr + base + rows[:, None] * sn + cols[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _put(ptr, base, t0, N, sn, D, x, R: tl.constexpr, BD: tl.constexpr):
    rows = t0 + tl.arange(0, R)
    cols = tl.arange(0, BD)
    mask = (rows < N)[:, None] & (cols < D)[None, :]
    tl.store(ptr + base + rows[:, None] * sn + cols[None, :], x.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _state_ptrs(h_ptr, bh, c, seq, NT, NSEQ, DK, DV, k0, BK: tl.constexpr, BV: tl.constexpr):
    """Pointers and mask of state `seq` of chunk c, channels k0 .. k0 + BK - 1, in h (B·H, NT, NSEQ, DK, BV)
    (rows padded to BV: the row stride is a constexpr)."""
    offs_k = tl.arange(0, BK)
    offs_v = tl.arange(0, BV)
    base = ((bh * NT + c) * NSEQ + seq) * DK * BV + k0 * BV
    mask = (offs_k < DK - k0)[:, None] & (offs_v < DV)[None, :]
    return h_ptr + base + offs_k[:, None] * BV + offs_v[None, :], mask


@triton.jit
def _state(h_ptr, bh, c, seq, NT, NSEQ, DK, DV, k0, BK: tl.constexpr, BV: tl.constexpr):
    ptrs, mask = _state_ptrs(h_ptr, bh, c, seq, NT, NSEQ, DK, DV, k0, BK, BV)
    return tl.load(ptrs, mask=mask & (c >= 0) & (c < NT), other=0.0)


@triton.jit
def _row(x, r, R: tl.constexpr):
    """Row r of a (R, ·) tile, exactly."""
    return tl.sum(tl.where((tl.arange(0, R) == r)[:, None], x, 0.0), axis=0)


@triton.jit
def _gates(a, pre, T, REV: tl.constexpr):
    """A sub-chunk's exponents (see the module docstring): (query vs the entering state, key to the
    far end, query to the near sub-chunk boundary (pairs), the diagonal's G with exponent
    G[t] - G[s], the sub-chunk's sum, its exclusive cumsum)."""
    cum = tl.cumsum(a, axis=0)
    tot = tl.sum(a, axis=0)
    excl = cum - a
    if REV:
        q_state = (T - pre)[None, :] - excl
        k_state = pre[None, :] + excl
        q_pair = tot[None, :] - excl
        diag = -excl
    else:
        q_state = pre[None, :] + cum
        k_state = (T - pre)[None, :] - cum
        q_pair = cum
        diag = cum
    return q_state, k_state, q_pair, diag, tot, excl


@triton.jit
def _pair_key(cum_or_excl, pre_t, tot_t, pre_s, REV: tl.constexpr):
    """The key-side exponent of s-block (pre_s; its cum (forward) or excl (backward)) against the
    t-block (pre_t, tot_t)."""
    if REV:
        e = (pre_s - pre_t - tot_t)[None, :] + cum_or_excl
    else:
        e = (pre_t - pre_s)[None, :] - cum_or_excl
    return e


@triton.jit
def _diag_mask(r, s, REV: tl.constexpr):
    if REV:
        m = r <= s
    else:
        m = r >= s
    return m


# ----------------------------------------------------------------------------- states and scan

@autotune(_CONFIGS, key=_KEY + ["GRAD", "LOWP"])
@triton.jit
def _states_kernel(
        q_ptr, k_ptr, v_ptr, af_ptr, ab_ptr, do_ptr, h_ptr, g_ptr,
        sq_b, sq_n, sq_h, sk_b, sk_n, sk_h, sv_b, sv_n, sv_h, sf_b, sf_n, sf_h, sb_b, sb_n, sb_h,
        sd_b, sd_n, sd_h,
        N, H, DK, DV, NT, NSEQ, scale,
        GRAD: tl.constexpr, LOWP: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr,
        BV: tl.constexpr,
):
    """Per direction, sub-chunk by sub-chunk (Horner: what is already summed decays by the
    sub-chunk's total): H = sum_s (k_s * exp(key to the far end)) v_s^T, G = sum_t (q_t *
    exp(query to the far end)) dO_t^T (GRAD), T the chunk's gate sum."""
    c = tl.program_id(0).to(tl.int64)
    bh = tl.program_id(1).to(tl.int64)
    b = bh // H
    hh = bh % H
    dt = k_ptr.dtype.element_ty
    offs_k = tl.arange(0, BK)
    nb = tl.cdiv(tl.minimum(N - c * BT, BT), BC)
    for d in tl.static_range(2):
        Hs = tl.zeros([BK, BV], dtype=tl.float32)
        Gs = tl.zeros([BK, BV], dtype=tl.float32)
        T = tl.zeros([BK], dtype=tl.float32)
        for j in range(0, nb):
            t = c * BT + j * BC
            if d == 0:
                a = _tile(af_ptr, b * sf_b + hh * sf_h, t, N, sf_n, DK, BC, BK)
            else:
                a = _tile(ab_ptr, b * sb_b + hh * sb_h, t, N, sb_n, DK, BC, BK)
            k = _tile(k_ptr, b * sk_b + hh * sk_h, t, N, sk_n, DK, BC, BK)
            v = _tile(v_ptr, b * sv_b + hh * sv_h, t, N, sv_n, DV, BC, BV)
            cum = tl.cumsum(a, axis=0)
            tot = tl.sum(a, axis=0)
            if d == 0:  # keys to the chunk's end, queries from its start
                k_gate = tot[None, :] - cum
                Hs = Hs * _decay(tot)[:, None] + _dot(tl.trans(k * _decay(k_gate)), v, LOWP, dt)
                q_gate = T[None, :] + cum
            else:  # keys to the chunk's start, queries from its end
                k_gate = T[None, :] + cum - a
                Hs += _dot(tl.trans(k * _decay(k_gate)), v, LOWP, dt)
                q_gate = tot[None, :] - cum + a
            if GRAD:
                q = _tile(q_ptr, b * sq_b + hh * sq_h, t, N, sq_n, DK, BC, BK) * scale
                do = _tile(do_ptr, b * sd_b + hh * sd_h, t, N, sd_n, DV, BC, BV)
                if d == 0:
                    Gs += _dot(tl.trans(q * _decay(q_gate)), do, LOWP, dt)
                else:
                    Gs = Gs * _decay(tot)[:, None] + _dot(tl.trans(q * _decay(q_gate)), do, LOWP, dt)
            T += tot
        tl.store(g_ptr + ((bh * NT + c) * 2 + d) * DK + offs_k, T, mask=offs_k < DK)
        ptrs, mask = _state_ptrs(h_ptr, bh, c, d, NT, NSEQ, DK, DV, 0, BK, BV)
        tl.store(ptrs, Hs, mask=mask)
        if GRAD:
            ptrs, mask = _state_ptrs(h_ptr, bh, c, 2 + d, NT, NSEQ, DK, DV, 0, BK, BV)
            tl.store(ptrs, Gs, mask=mask)


@autotune(_SCAN_CONFIGS, key=["DK", "DV", "NT", "NSEQ"], restore_value=["h_ptr"])
@triton.jit
def _scan_kernel(h_ptr, g_ptr, DK, DV, NT, NSEQ, BKS: tl.constexpr, BV: tl.constexpr):
    """In place: h[c] (chunk c's contribution) becomes the state entering chunk c. Sequences 0 (S_f)
    and 3 (U_b) run left to right, 1 (S_b) and 2 (U_f) right to left; 0 and 2 decay with g_f."""
    bh = tl.program_id(0).to(tl.int64)
    seq = tl.program_id(1)
    offs_k = tl.program_id(2) * BKS + tl.arange(0, BKS)
    offs_v = tl.arange(0, BV)
    mask = (offs_k < DK)[:, None] & (offs_v < DV)[None, :]
    rev = (seq == 1) | (seq == 2)
    gate = seq % 2
    S = tl.zeros([BKS, BV], dtype=tl.float32)
    for i in range(0, NT):
        c = tl.where(rev, NT - 1 - i, i).to(tl.int64)
        ptrs = h_ptr + ((bh * NT + c) * NSEQ + seq) * DK * BV + offs_k[:, None] * BV + offs_v[None, :]
        x = tl.load(ptrs, mask=mask, other=0.0)
        tl.store(ptrs, S, mask=mask)
        g = tl.load(g_ptr + ((bh * NT + c) * 2 + gate) * DK + offs_k, mask=offs_k < DK, other=0.0)
        S = S * _decay(g)[:, None] + x


# ----------------------------------------------------------------------------- forward output

@triton.jit
def _output_direction(q, a_ptr, ab, sa_n, k_ptr, kb, sk_n, v_ptr, vb, sv_n, h_ptr, g_ptr,
                      bh, c, m, nb, pre, N, DK, DV, NT, NSEQ,
                      REV: tl.constexpr, LOWP: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr,
                      BK: tl.constexpr, BV: tl.constexpr):
    """One direction's o for sub-chunk m (rows t) of chunk c, and the sub-chunk's gate sum."""
    dt = k_ptr.dtype.element_ty
    offs_k = tl.arange(0, BK)
    t0 = c * BT
    T = tl.load(g_ptr + ((bh * NT + c) * 2 + REV) * DK + offs_k, mask=offs_k < DK, other=0.0)
    a = _tile(a_ptr, ab, t0 + m * BC, N, sa_n, DK, BC, BK)
    q_state, _, q_pair, G, tot, _ = _gates(a, pre, T, REV)
    # inter: the state entering the chunk
    o = _dot(q * _decay(q_state), _state(h_ptr, bh, c, REV, NT, NSEQ, DK, DV, 0, BK, BV), LOWP, dt)
    # intra, other sub-chunks: forward j < m, backward j > m
    qp = q * _decay(q_pair)
    if REV:
        j0 = m + 1
        j1 = nb
        pre_j = pre + tot
    else:
        j0 = 0
        j1 = m
        pre_j = tl.zeros([BK], dtype=tl.float32)
    for j in range(j0, j1):
        aj = _tile(a_ptr, ab, t0 + j * BC, N, sa_n, DK, BC, BK)
        kj = _tile(k_ptr, kb, t0 + j * BC, N, sk_n, DK, BC, BK)
        vj = _tile(v_ptr, vb, t0 + j * BC, N, sv_n, DV, BC, BV)
        cj = tl.cumsum(aj, axis=0)
        if REV:
            cj = cj - aj
        kp = kj * _decay(_pair_key(cj, pre, tot, pre_j, REV))
        o += _dot(_dot(qp, tl.trans(kp), LOWP, dt), vj, LOWP, dt)
        pre_j += tl.sum(aj, axis=0)
    # intra, the diagonal sub-chunk: per (t, s, c), one key column s at a time
    k = _tile(k_ptr, kb, t0 + m * BC, N, sk_n, DK, BC, BK)
    r = tl.arange(0, BC)
    scores = tl.zeros([BC, BC], dtype=tl.float32)
    for s in range(0, BC):
        e = tl.where(_diag_mask(r, s, REV)[:, None], G - _row(G, s, BC)[None, :], float("-inf"))
        col = tl.sum(q * _row(k, s, BC)[None, :] * _decay(e), axis=1)
        scores = tl.where((r == s)[None, :], col[:, None], scores)
    o += _dot(scores, _tile(v_ptr, vb, t0 + m * BC, N, sv_n, DV, BC, BV), LOWP, dt)
    return o, tot


@autotune(_OUT_CONFIGS, key=_KEY + ["LOWP"])
@triton.jit
def _output_kernel(
        q_ptr, k_ptr, v_ptr, af_ptr, ab_ptr, h_ptr, g_ptr, o_ptr,
        sq_b, sq_n, sq_h, sk_b, sk_n, sk_h, sv_b, sv_n, sv_h, sf_b, sf_n, sf_h, sb_b, sb_n, sb_h,
        so_b, so_n, so_h,
        N, H, DK, DV, NT, NSEQ, scale,
        LOWP: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
):
    c = tl.program_id(0).to(tl.int64)
    bh = tl.program_id(1).to(tl.int64)
    b = bh // H
    hh = bh % H
    qb = b * sq_b + hh * sq_h
    kb = b * sk_b + hh * sk_h
    vb = b * sv_b + hh * sv_h
    fb = b * sf_b + hh * sf_h
    bb = b * sb_b + hh * sb_h
    nb = tl.cdiv(tl.minimum(N - c * BT, BT), BC)  # sub-chunks holding tokens
    pre_f = tl.zeros([BK], dtype=tl.float32)
    pre_b = tl.zeros([BK], dtype=tl.float32)
    for m in range(0, nb):
        t = c * BT + m * BC
        q = _tile(q_ptr, qb, t, N, sq_n, DK, BC, BK) * scale
        o_f, tot_f = _output_direction(q, af_ptr, fb, sf_n, k_ptr, kb, sk_n, v_ptr, vb, sv_n, h_ptr, g_ptr,
                                       bh, c, m, nb, pre_f, N, DK, DV, NT, NSEQ, False, LOWP, BT, BC, BK, BV)
        o_b, tot_b = _output_direction(q, ab_ptr, bb, sb_n, k_ptr, kb, sk_n, v_ptr, vb, sv_n, h_ptr, g_ptr,
                                       bh, c, m, nb, pre_b, N, DK, DV, NT, NSEQ, True, LOWP, BT, BC, BK, BV)
        _put(o_ptr, b * so_b + hh * so_h, t, N, so_n, DV, o_f + o_b, BC, BV)
        pre_f += tot_f
        pre_b += tot_b


# ----------------------------------------------------------------------------- backward gradients

@triton.jit
def _pairs_dv(x_ptr, xb, sx_n, tx, y_ptr, yb, sy_n, ty, N, DV, LOWP: tl.constexpr, dt: tl.constexpr,
              BC: tl.constexpr, BV: tl.constexpr, BVS: tl.constexpr):
    """x_t . y_s over the dv channels, (BC, BC) fp32, for the BC tokens from tx (x) and from ty (y):
    x @ y^T, read and multiplied BVS channels at a time (registers: no (BC, BV) tile held)."""
    acc = tl.zeros([BC, BC], dtype=tl.float32)
    for v0 in tl.range(0, BV, BVS, loop_unroll_factor=1):
        x = _tile(x_ptr, xb + v0, tx, N, sx_n, DV - v0, BC, BVS)
        y = _tile(y_ptr, yb + v0, ty, N, sy_n, DV - v0, BC, BVS)
        acc += _dot(x, tl.trans(y), LOWP, dt)
    return acc


@triton.jit
def _times_state_dv(x_ptr, xb, sx_n, tx, h_ptr, bh, c, seq, N, NT, NSEQ, DK, DV, k0, LOWP: tl.constexpr,
                    dt: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BVS: tl.constexpr):
    """x @ S^T, (BC, BK) fp32: the BC tokens of x from tx against state `seq` of chunk c (channels
    k0 .. k0 + BK - 1), summed over dv BVS channels at a time."""
    offs_k = tl.arange(0, BK)
    base = ((bh * NT + c) * NSEQ + seq) * DK * BV + k0 * BV
    acc = tl.zeros([BC, BK], dtype=tl.float32)
    for v0 in tl.range(0, BV, BVS, loop_unroll_factor=1):
        offs_v = v0 + tl.arange(0, BVS)
        mask = (offs_k < DK - k0)[:, None] & (offs_v < DV)[None, :] & (c >= 0) & (c < NT)
        S = tl.load(h_ptr + base + offs_k[:, None] * BV + offs_v[None, :], mask=mask, other=0.0)
        x = _tile(x_ptr, xb + v0, tx, N, sx_n, DV - v0, BC, BVS)
        acc += _dot(x, tl.trans(S), LOWP, dt)
    return acc


@triton.jit
def _grads_direction(q, k, v, do, a_ptr, ab, sa_n, q_ptr, qb, sq_n, k_ptr, kb, sk_n, v_ptr, vb, sv_n,
                     do_ptr, dob, sdo_n, h_ptr, g_ptr, bh, c, m, nb, pre, N, DK, DV, NT, scale, k0,
                     REV: tl.constexpr, DV_PART: tl.constexpr, LOWP: tl.constexpr, BT: tl.constexpr,
                     BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BVS: tl.constexpr):
    """One direction's dq (of the scaled q), dk, dv for sub-chunk m of chunk c, and its gate sum; the
    channels k0 .. k0 + BK - 1 of dq and dk (q, k and gate bases already offset by k0).
    DV_PART 0 (dq, dk only; v and do unused, dv not formed): every product over dv (with the states
    and do . v between sub-chunks) reads v, do and the states BVS channels at a time, so no
    (·, BV) tile is live beside the dq / dk accumulators."""
    DKr = DK - k0
    dt = k_ptr.dtype.element_ty
    offs_k = tl.arange(0, BK)
    t0 = c * BT
    T = tl.load(g_ptr + ((bh * NT + c) * 2 + REV) * DK + k0 + offs_k, mask=offs_k < DKr, other=0.0)
    a = _tile(a_ptr, ab, t0 + m * BC, N, sa_n, DKr, BC, BK)
    q_state, k_state, q_pair, G, tot, excl = _gates(a, pre, T, REV)
    # inter: the state entering the chunk (S) and the gradient state entering it from the far side (U)
    tm = t0 + m * BC
    kg = _decay(k_state)
    if DV_PART:
        S = _state(h_ptr, bh, c, REV, NT, 4, DK, DV, k0, BK, BV)
        U = _state(h_ptr, bh, c, 2 + REV, NT, 4, DK, DV, k0, BK, BV)
        dq = _dot(do, tl.trans(S), LOWP, dt) * _decay(q_state)
        dk = _dot(v, tl.trans(U), LOWP, dt) * kg
        dv = _dot(k * kg, U, LOWP, dt)
    else:
        dq = _times_state_dv(do_ptr, dob, sdo_n, tm, h_ptr, bh, c, REV, N, NT, 4, DK, DV, k0,
                             LOWP, dt, BC, BK, BV, BVS) * _decay(q_state)
        dk = _times_state_dv(v_ptr, vb, sv_n, tm, h_ptr, bh, c, 2 + REV, N, NT, 4, DK, DV, k0,
                             LOWP, dt, BC, BK, BV, BVS) * kg
        dv = tl.zeros([BC, BV], dtype=tl.float32)  # not formed in this part
    # m as the query block, s-blocks j: forward j < m, backward j > m
    if REV:
        j0 = m + 1
        j1 = nb
        pre_j = pre + tot
    else:
        j0 = 0
        j1 = m
        pre_j = tl.zeros([BK], dtype=tl.float32)
    acc = tl.zeros([BC, BK], dtype=tl.float32)
    for j in range(j0, j1):
        aj = _tile(a_ptr, ab, t0 + j * BC, N, sa_n, DKr, BC, BK)
        kj = _tile(k_ptr, kb, t0 + j * BC, N, sk_n, DKr, BC, BK)
        if DV_PART:
            vj = _tile(v_ptr, vb, t0 + j * BC, N, sv_n, DV, BC, BV)
        cj = tl.cumsum(aj, axis=0)
        if REV:
            cj = cj - aj
        kp = kj * _decay(_pair_key(cj, pre, tot, pre_j, REV))
        if DV_PART:
            dov = _dot(do, tl.trans(vj), LOWP, dt)
        else:
            dov = _pairs_dv(do_ptr, dob, sdo_n, tm, v_ptr, vb, sv_n, t0 + j * BC, N, DV, LOWP, dt, BC, BV, BVS)
        acc += _dot(dov, kp, LOWP, dt)
        pre_j += tl.sum(aj, axis=0)
    dq += acc * _decay(q_pair)
    # m as the key block, t-blocks i: forward i > m, backward i < m
    if REV:
        i0 = 0
        i1 = m
        pre_i = tl.zeros([BK], dtype=tl.float32)
        cm = excl
    else:
        i0 = m + 1
        i1 = nb
        pre_i = pre + tot
        cm = excl + a
    for i in range(i0, i1):
        ai = _tile(a_ptr, ab, t0 + i * BC, N, sa_n, DKr, BC, BK)
        qi = _tile(q_ptr, qb, t0 + i * BC, N, sq_n, DKr, BC, BK) * scale
        if DV_PART:
            doi = _tile(do_ptr, dob, t0 + i * BC, N, sdo_n, DV, BC, BV)
        ci = tl.cumsum(ai, axis=0)
        tot_i = tl.sum(ai, axis=0)
        if REV:
            qi = qi * _decay(tot_i[None, :] - ci + ai)
        else:
            qi = qi * _decay(ci)
        kexp = _decay(_pair_key(cm, pre_i, tot_i, pre, REV))
        if DV_PART:
            dk += kexp * _dot(tl.trans(_dot(doi, tl.trans(v), LOWP, dt)), qi, LOWP, dt)
            dv += _dot(tl.trans(_dot(qi, tl.trans(k * kexp), LOWP, dt)), doi, LOWP, dt)
        else:
            dov = _pairs_dv(do_ptr, dob, sdo_n, t0 + i * BC, v_ptr, vb, sv_n, tm, N, DV, LOWP, dt, BC, BV, BVS)
            dk += kexp * _dot(tl.trans(dov), qi, LOWP, dt)
        pre_i += tot_i
    # the diagonal sub-chunk: per (t, s, c), one key column s at a time
    if DV_PART:
        P = _dot(do, tl.trans(v), LOWP, dt)  # [t, s]
    else:
        P = _pairs_dv(do_ptr, dob, sdo_n, tm, v_ptr, vb, sv_n, tm, N, DV, LOWP, dt, BC, BV, BVS)
    r = tl.arange(0, BC)
    scores = tl.zeros([BC, BC], dtype=tl.float32)
    dk_diag = tl.zeros([BC, BK], dtype=tl.float32)
    for s in tl.range(0, BC, loop_unroll_factor=1):
        e = _decay(tl.where(_diag_mask(r, s, REV)[:, None], G - _row(G, s, BC)[None, :], float("-inf")))
        p = tl.sum(tl.where((r == s)[None, :], P, 0.0), axis=1)
        ks = _row(k, s, BC)
        dq += p[:, None] * ks[None, :] * e
        dk_diag = tl.where((r == s)[:, None], tl.sum(p[:, None] * q * e, axis=0)[None, :], dk_diag)
        scores = tl.where((r == s)[None, :], tl.sum(q * ks[None, :] * e, axis=1)[:, None], scores)
    dk += dk_diag
    if DV_PART:
        dv += _dot(tl.trans(scores), do, LOWP, dt)
    return dq, dk, dv, tot


@autotune(_GRAD_CONFIGS, key=_KEY + ["DV_PART", "LOWP"])
@triton.jit
def _grads_kernel(
        q_ptr, k_ptr, v_ptr, af_ptr, ab_ptr, do_ptr, h_ptr, g_ptr,
        dq_ptr, dk_ptr, dv_ptr, daf_ptr, dab_ptr,
        sq_b, sq_n, sq_h, sk_b, sk_n, sk_h, sv_b, sv_n, sv_h, sf_b, sf_n, sf_h, sb_b, sb_n, sb_h,
        sd_b, sd_n, sd_h, sgk_b, sgk_n, sgk_h, sgv_b, sgv_n, sgv_h,
        N, H, DK, DV, NT, scale,
        DV_PART: tl.constexpr, LOWP: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr,
        BV: tl.constexpr, BVS: tl.constexpr,
):
    """DV_PART 0: dq, dk, da_f, da_b of the channels k0 .. k0 + BK - 1 (grid axis 2), the products
    over dv taken BVS channels at a time; 1: dv, all channels (BK = dk). The compiler drops what a
    part does not store."""
    c = tl.program_id(0).to(tl.int64)
    bh = tl.program_id(1).to(tl.int64)
    k0 = tl.program_id(2) * BK
    DKr = DK - k0
    b = bh // H
    hh = bh % H
    qb = b * sq_b + hh * sq_h + k0
    kb = b * sk_b + hh * sk_h + k0
    vb = b * sv_b + hh * sv_h
    fb = b * sf_b + hh * sf_h + k0
    bb = b * sb_b + hh * sb_h + k0
    dob = b * sd_b + hh * sd_h
    gkb = b * sgk_b + hh * sgk_h + k0
    gvb = b * sgv_b + hh * sgv_h
    nb = tl.cdiv(tl.minimum(N - c * BT, BT), BC)
    # The gate gradients' carries across chunks: sum_v S * U at the chunk's start boundary is the sum
    # of dA_f over the tokens from the chunk on (U_f there: entering chunk c - 1), and of dA_b over
    # the tokens before it (S_b there: entering chunk c - 1). Zero for the first chunk.
    from_here_f = tl.sum(_state(h_ptr, bh, c, 0, NT, 4, DK, DV, k0, BK, BV)
                         * _state(h_ptr, bh, c - 1, 2, NT, 4, DK, DV, k0, BK, BV), axis=1)
    before_b = tl.sum(_state(h_ptr, bh, c - 1, 1, NT, 4, DK, DV, k0, BK, BV)
                      * _state(h_ptr, bh, c, 3, NT, 4, DK, DV, k0, BK, BV), axis=1)
    pre_f = tl.zeros([BK], dtype=tl.float32)
    pre_b = tl.zeros([BK], dtype=tl.float32)
    for m in range(0, nb):
        t = c * BT + m * BC
        q = _tile(q_ptr, qb, t, N, sq_n, DKr, BC, BK) * scale
        k = _tile(k_ptr, kb, t, N, sk_n, DKr, BC, BK)
        v = _tile(v_ptr, vb, t, N, sv_n, DV, BC, BV)
        do = _tile(do_ptr, dob, t, N, sd_n, DV, BC, BV)
        dq_f, dk_f, dv_f, tot_f = _grads_direction(
            q, k, v, do, af_ptr, fb, sf_n, q_ptr, qb, sq_n, k_ptr, kb, sk_n, v_ptr, vb, sv_n, do_ptr, dob, sd_n,
            h_ptr, g_ptr, bh, c, m, nb, pre_f, N, DK, DV, NT, scale, k0, False, DV_PART, LOWP, BT, BC, BK, BV,
            BVS)
        dq_b, dk_b, dv_b, tot_b = _grads_direction(
            q, k, v, do, ab_ptr, bb, sb_n, q_ptr, qb, sq_n, k_ptr, kb, sk_n, v_ptr, vb, sv_n, do_ptr, dob, sd_n,
            h_ptr, g_ptr, bh, c, m, nb, pre_b, N, DK, DV, NT, scale, k0, True, DV_PART, LOWP, BT, BC, BK, BV,
            BVS)
        if DV_PART:
            _put(dv_ptr, gvb, t, N, sgv_n, DV, dv_f + dv_b, BC, BV)
        else:
            dA_f = q * dq_f - k * dk_f
            dA_b = q * dq_b - k * dk_b
            # da_f[r] = sum_{t >= r} dA_f = from_here_f - sum_{chunk start <= t < r}; da_b[r] = sum_{t <= r} dA_b
            _put(daf_ptr, gkb, t, N, sgk_n, DKr, from_here_f[None, :] - (tl.cumsum(dA_f, axis=0) - dA_f), BC, BK)
            _put(dab_ptr, gkb, t, N, sgk_n, DKr, before_b[None, :] + tl.cumsum(dA_b, axis=0), BC, BK)
            from_here_f -= tl.sum(dA_f, axis=0)
            before_b += tl.sum(dA_b, axis=0)
            _put(dq_ptr, gkb, t, N, sgk_n, DKr, (dq_f + dq_b) * scale, BC, BK)
            _put(dk_ptr, gkb, t, N, sgk_n, DKr, dk_f + dk_b, BC, BK)
        pre_f += tot_f
        pre_b += tot_b


# ----------------------------------------------------------------------------- wrappers

def _check_dtypes(*tensors) -> None:
    for name, t in zip(("q", "k", "v", "a_f", "a_b", "do"), tensors):
        if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise TypeError(f"the Triton path takes float32, float16 or bfloat16; {name} is {t.dtype}")


def _unit_stride(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _strides(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.stride())[:-1]


def _meta(q, k, v) -> dict:
    dk, dv = q.shape[-1], v.shape[-1]
    lowp = q.dtype == k.dtype == v.dtype != torch.float32  # 16-bit dot operands where q, k, v share the dtype
    return dict(LOWP=int(lowp), BT=BT, BK=max(16, triton.next_power_of_2(dk)), BV=max(16, triton.next_power_of_2(dv)))


def _scan(h: torch.Tensor, g: torch.Tensor, dv: int, nseq: int) -> None:
    """dv, not the padded row width: the padding columns of h are never written (torch.empty)."""
    bh, nt, _, dk, bv = h.shape
    _scan_kernel[lambda m: (bh, nseq, triton.cdiv(dk, m["BKS"]))](h, g, dk, dv, nt, nseq, BV=bv)


def bigla_fwd(q, k, v, a_f, a_b, scale: float) -> torch.Tensor:
    """o_f + o_b, (B, N, H, dv) in v's dtype: 3 launches (states, scan, output)."""
    _check_dtypes(q, k, v, a_f, a_b)
    q, k, v, a_f, a_b = (_unit_stride(t) for t in (q, k, v, a_f, a_b))
    B, N, H, dk = q.shape
    dv = v.shape[-1]
    nt = triton.cdiv(N, BT)
    meta = _meta(q, k, v)
    h = torch.empty(B * H, nt, 2, dk, meta["BV"], device=q.device, dtype=torch.float32)
    g = torch.empty(B * H, nt, 2, dk, device=q.device, dtype=torch.float32)
    o = torch.empty(B, N, H, dv, device=q.device, dtype=v.dtype)
    strides = (*_strides(q), *_strides(k), *_strides(v), *_strides(a_f), *_strides(a_b))
    _states_kernel[(nt, B * H)](q, k, v, a_f, a_b, v, h, g, *strides, 0, 0, 0,
                                N, H, dk, dv, nt, 2, scale, GRAD=0, BC=BC, **meta)
    _scan(h, g, dv, 2)
    _output_kernel[(nt, B * H)](q, k, v, a_f, a_b, h, g, o, *strides, *_strides(o),
                                N, H, dk, dv, nt, 2, scale, BC=BC, **meta)
    return o


def bigla_bwd(q, k, v, a_f, a_b, do, scale: float):
    """Gradients (dq, dk, dv, da_f, da_b) of sum(o * do), each in its input's dtype: 4 launches
    (states with the gradient states, scan of 4 sequences, gradients in two parts: dq / dk / da
    over 16-channel key tiles, then dv)."""
    _check_dtypes(q, k, v, a_f, a_b, do)
    q, k, v, a_f, a_b, do = (_unit_stride(t) for t in (q, k, v, a_f, a_b, do))
    B, N, H, dk = q.shape
    dv = v.shape[-1]
    nt = triton.cdiv(N, BT)
    meta = _meta(q, k, v)
    h = torch.empty(B * H, nt, 4, dk, meta["BV"], device=q.device, dtype=torch.float32)
    g = torch.empty(B * H, nt, 2, dk, device=q.device, dtype=torch.float32)
    grads = [torch.empty(t.shape, device=q.device, dtype=t.dtype) for t in (q, k, v, a_f, a_b)]
    strides = (*_strides(q), *_strides(k), *_strides(v), *_strides(a_f), *_strides(a_b), *_strides(do))
    _states_kernel[(nt, B * H)](q, k, v, a_f, a_b, do, h, g, *strides, N, H, dk, dv, nt, 4, scale,
                                GRAD=1, BC=BC, **meta)
    _scan(h, g, dv, 4)
    args = (q, k, v, a_f, a_b, do, h, g, *grads, *strides, *_strides(grads[0]), *_strides(grads[2]),
            N, H, dk, dv, nt, scale)
    bvs = min(meta["BV"], BVS)
    _grads_kernel[(nt, B * H, triton.cdiv(dk, BC))](*args, DV_PART=0, BC=BC, BVS=bvs, **{**meta, "BK": BC})
    _grads_kernel[(nt, B * H, 1)](*args, DV_PART=1, BC=BC, BVS=meta["BV"], **meta)
    return tuple(grads)
