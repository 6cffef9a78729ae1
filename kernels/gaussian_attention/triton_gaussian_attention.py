"""Triton kernels for X = K1 @ (M @ (K1^T @ V)), K1[i, j] = exp(-||q_i - l_j||^2 / 2).

No N x m tensor is ever stored. Each program builds a (BLOCK_N, BLOCK_M) tile
of K1 in registers from the distance |q_i|^2 + |l_j|^2 - 2 q_i.l_j (one tl.dot; the
formula of the CPU path and of every official config with released weights but
SOFT_Tiny_cuda, whose CUDA kernel subtracts directly) and uses it at once:

forward   1. `_reduce`: S = K1^T @ V, streamed over query tiles (partials per split, summed in torch)
          2. torch:     T = M @ S                                  (m x e, small)
          3. `_apply`:  X = K1 @ T, one program per query tile
backward  1. `_reduce`: dT = K1^T @ dX
          2. torch:     dM = dT @ S^T, dS = M^T @ dT
          3. `_bwd_q`:  dV = K1 @ dS and dq = E @ l - rowsum(E) * q, one program per query tile
          4. `_bwd_l`:  dl = E^T @ q - colsum(E) * l, streamed over query tiles
          with dK1 = dX @ T^T + V @ dS^T and E = dK1 * K1 (the Gaussian's chain rule:
          dD = -E / 2 and dD/dq_i = 2 (q_i - l_j)).

All accumulation is float32; inputs may be float32, float16 or bfloat16. Offsets are int64
(the program ids are widened first): B·H·N·d passes 2^31 at SOFT's large inputs.
Imported lazily (never at `import zoo` time).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._autotune import autotune

__all__ = ["gaussian_attention_fwd", "gaussian_attention_bwd"]


@triton.jit
def _pid(axis: tl.constexpr):
    """The program id as int64, so that every offset built from it is 64-bit (pid_b * s_qb passes 2^31)."""
    return tl.program_id(axis).to(tl.int64)


@triton.jit
def _k1_tile(q_ptr, l_ptr, offs_n, offs_m, mask_n, mask_m, s_qn, s_qd, s_lm, s_ld,
             HEAD_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """exp(-||q_n - l_m||^2 / 2) for one (BLOCK_N, BLOCK_M) tile, zero outside the masks.

    Distances as |q|^2 + |l|^2 - 2 q.l^T: one tl.dot on the whole (padded) head dim, in the
    inputs' dtype with float32 accumulation (16-bit products are exact in float32; float32
    uses the IEEE dot, never tf32), instead of HEAD_D rank-1 updates. Its cancellation error,
    about eps32 (|q|^2 + |l|^2), is the CPU path's (tests/test_soft_cpu_speed_path.py);
    rounding below zero is clamped."""
    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < HEAD_D
    q = tl.load(q_ptr + offs_n[:, None] * s_qn + offs_d[None, :] * s_qd,
                mask=mask_n[:, None] & mask_d[None, :], other=0.0)
    lm = tl.load(l_ptr + offs_m[:, None] * s_lm + offs_d[None, :] * s_ld,
                 mask=mask_m[:, None] & mask_d[None, :], other=0.0)
    qf, lf = q.to(tl.float32), lm.to(tl.float32)
    if q.dtype == lm.dtype:
        cross = tl.dot(q, tl.trans(lm), input_precision="ieee")
    else:  # e.g. bfloat16 queries with float32 landmarks: tl.dot takes one dtype, so both go as float32
        cross = tl.dot(qf, tl.trans(lf), input_precision="ieee")
    dist = tl.sum(qf * qf, axis=1)[:, None] + tl.sum(lf * lf, axis=1)[None, :] - 2.0 * cross
    k1 = tl.exp(-0.5 * tl.maximum(dist, 0.0))
    return tl.where(mask_n[:, None] & mask_m[None, :], k1, 0.0)


# Warps and pipeline stages by autotuning (per shape key and dtypes, on the GPU); tiles stay as
# _config sets them (the split and the grids depend on them). Every candidate compiles for sm_90
# without spills (tests/kernels/test_compile_sm90.py); _bwd_q / _bwd_l spilled at 4 warps.
_KEY = ["N", "M", "E", "HEAD_D"]
_FORWARD_CONFIGS = [triton.Config({}, num_warps=w, num_stages=s) for w in (4, 8) for s in (2, 3)]
_BACKWARD_CONFIGS = [triton.Config({}, num_warps=8, num_stages=s) for s in (2, 3)]


@autotune(_FORWARD_CONFIGS, key=_KEY)
@triton.jit
def _reduce(
        q_ptr, l_ptr, y_ptr, out_ptr,
        N, M, E,
        s_qb, s_qn, s_qd, s_lb, s_lm, s_ld, s_yb, s_yn, s_ye, s_ob, s_os, s_om, s_oe,
        tiles_per_split,
        HEAD_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_E: tl.constexpr, PRECISION: tl.constexpr,
):
    """out[b, s, m, e] = sum over the query tiles of split s of K1[n, m] * y[n, e]."""
    pid_b, pid_m, pid_s = _pid(0), _pid(1), _pid(2)
    q_ptr += pid_b * s_qb
    l_ptr += pid_b * s_lb
    y_ptr += pid_b * s_yb
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_e = tl.arange(0, BLOCK_E)
    mask_m = offs_m < M
    mask_e = offs_e < E
    acc = tl.zeros((BLOCK_M, BLOCK_E), dtype=tl.float32)
    n_tiles = tl.cdiv(N, BLOCK_N)
    start = pid_s * tiles_per_split
    stop = tl.minimum(start + tiles_per_split, n_tiles)
    for t in range(start, stop):
        offs_n = t * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        k1 = _k1_tile(q_ptr, l_ptr, offs_n, offs_m, mask_n, mask_m, s_qn, s_qd, s_lm, s_ld, HEAD_D, BLOCK_N, BLOCK_M,
                      BLOCK_D)
        y = tl.load(y_ptr + offs_n[:, None] * s_yn + offs_e[None, :] * s_ye,
                    mask=mask_n[:, None] & mask_e[None, :], other=0.0).to(tl.float32)
        acc += tl.dot(tl.trans(k1), y, input_precision=PRECISION)
    tl.store(out_ptr + pid_b * s_ob + pid_s * s_os + offs_m[:, None] * s_om + offs_e[None, :] * s_oe,
             acc, mask=mask_m[:, None] & mask_e[None, :])


@autotune(_FORWARD_CONFIGS, key=_KEY)
@triton.jit
def _apply(
        q_ptr, l_ptr, r_ptr, out_ptr,
        N, M, E,
        s_qb, s_qn, s_qd, s_lb, s_lm, s_ld, s_rb, s_rm, s_re, s_ob, s_on, s_oe,
        HEAD_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_E: tl.constexpr, PRECISION: tl.constexpr,
):
    """out[b, n, e] = sum_m K1[n, m] * r[m, e] for one query tile."""
    pid_b, pid_n = _pid(0), _pid(1)
    q_ptr += pid_b * s_qb
    l_ptr += pid_b * s_lb
    r_ptr += pid_b * s_rb
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_e = tl.arange(0, BLOCK_E)
    mask_n = offs_n < N
    mask_e = offs_e < E
    acc = tl.zeros((BLOCK_N, BLOCK_E), dtype=tl.float32)
    for m0 in range(0, M, BLOCK_M):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        mask_m = offs_m < M
        k1 = _k1_tile(q_ptr, l_ptr, offs_n, offs_m, mask_n, mask_m, s_qn, s_qd, s_lm, s_ld, HEAD_D, BLOCK_N, BLOCK_M,
                      BLOCK_D)
        r = tl.load(r_ptr + offs_m[:, None] * s_rm + offs_e[None, :] * s_re,
                    mask=mask_m[:, None] & mask_e[None, :], other=0.0)
        acc += tl.dot(k1, r, input_precision=PRECISION)
    tl.store(out_ptr + pid_b * s_ob + offs_n[:, None] * s_on + offs_e[None, :] * s_oe,
             acc.to(out_ptr.dtype.element_ty), mask=mask_n[:, None] & mask_e[None, :])


@triton.jit
def _grad_weights(q_ptr, l_ptr, dx_ptr, v_ptr, t_ptr, ds_ptr, offs_n, offs_m, offs_e, mask_n, mask_m, mask_e,
                  s_qn, s_qd, s_lm, s_ld, s_dxn, s_dxe, s_vn, s_ve, s_tm, s_te, s_dsm, s_dse,
                  HEAD_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
                  PRECISION: tl.constexpr):
    """K1 and E = (dX @ T^T + V @ dS^T) * K1 for one tile."""
    k1 = _k1_tile(q_ptr, l_ptr, offs_n, offs_m, mask_n, mask_m, s_qn, s_qd, s_lm, s_ld, HEAD_D, BLOCK_N, BLOCK_M,
                      BLOCK_D)
    mask_ne = mask_n[:, None] & mask_e[None, :]
    mask_me = mask_m[:, None] & mask_e[None, :]
    dx = tl.load(dx_ptr + offs_n[:, None] * s_dxn + offs_e[None, :] * s_dxe, mask=mask_ne, other=0.0).to(tl.float32)
    v = tl.load(v_ptr + offs_n[:, None] * s_vn + offs_e[None, :] * s_ve, mask=mask_ne, other=0.0).to(tl.float32)
    t = tl.load(t_ptr + offs_m[:, None] * s_tm + offs_e[None, :] * s_te, mask=mask_me, other=0.0)
    ds = tl.load(ds_ptr + offs_m[:, None] * s_dsm + offs_e[None, :] * s_dse, mask=mask_me, other=0.0)
    dk1 = tl.dot(dx, tl.trans(t), input_precision=PRECISION) + tl.dot(v, tl.trans(ds), input_precision=PRECISION)
    return k1, dk1 * k1


@autotune(_BACKWARD_CONFIGS, key=_KEY)
@triton.jit
def _bwd_q(
        q_ptr, l_ptr, dx_ptr, v_ptr, t_ptr, ds_ptr, dq_ptr, dv_ptr,
        N, M, E, D,
        s_qb, s_qn, s_qd, s_lb, s_lm, s_ld, s_dxb, s_dxn, s_dxe, s_vb, s_vn, s_ve,
        s_tb, s_tm, s_te, s_dsb, s_dsm, s_dse,
        HEAD_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_E: tl.constexpr, PRECISION: tl.constexpr,
):
    """dV = K1 @ dS and dq = E @ l - rowsum(E) * q for one query tile (dq, dv contiguous)."""
    pid_b, pid_n = _pid(0), _pid(1)
    q_ptr += pid_b * s_qb
    l_ptr += pid_b * s_lb
    dx_ptr += pid_b * s_dxb
    v_ptr += pid_b * s_vb
    t_ptr += pid_b * s_tb
    ds_ptr += pid_b * s_dsb
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_e = tl.arange(0, BLOCK_E)
    mask_n = offs_n < N
    mask_d = offs_d < D
    mask_e = offs_e < E
    acc_dv = tl.zeros((BLOCK_N, BLOCK_E), dtype=tl.float32)
    acc_el = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    rowsum = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for m0 in range(0, M, BLOCK_M):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        mask_m = offs_m < M
        k1, e = _grad_weights(q_ptr, l_ptr, dx_ptr, v_ptr, t_ptr, ds_ptr, offs_n, offs_m, offs_e,
                              mask_n, mask_m, mask_e, s_qn, s_qd, s_lm, s_ld, s_dxn, s_dxe, s_vn, s_ve,
                              s_tm, s_te, s_dsm, s_dse, HEAD_D, BLOCK_N, BLOCK_M, BLOCK_D, PRECISION)
        ds = tl.load(ds_ptr + offs_m[:, None] * s_dsm + offs_e[None, :] * s_dse,
                     mask=mask_m[:, None] & mask_e[None, :], other=0.0)
        lm = tl.load(l_ptr + offs_m[:, None] * s_lm + offs_d[None, :] * s_ld,
                     mask=mask_m[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        acc_dv += tl.dot(k1, ds, input_precision=PRECISION)
        acc_el += tl.dot(e, lm, input_precision=PRECISION)
        rowsum += tl.sum(e, axis=1)
    q = tl.load(q_ptr + offs_n[:, None] * s_qn + offs_d[None, :] * s_qd,
                mask=mask_n[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
    dq = acc_el - rowsum[:, None] * q
    tl.store(dq_ptr + pid_b * N * D + offs_n[:, None] * D + offs_d[None, :],
             dq.to(dq_ptr.dtype.element_ty), mask=mask_n[:, None] & mask_d[None, :])
    tl.store(dv_ptr + pid_b * N * E + offs_n[:, None] * E + offs_e[None, :],
             acc_dv.to(dv_ptr.dtype.element_ty), mask=mask_n[:, None] & mask_e[None, :])


@autotune(_BACKWARD_CONFIGS, key=_KEY)
@triton.jit
def _bwd_l(
        q_ptr, l_ptr, dx_ptr, v_ptr, t_ptr, ds_ptr, out_ptr,
        N, M, E, D,
        s_qb, s_qn, s_qd, s_lb, s_lm, s_ld, s_dxb, s_dxn, s_dxe, s_vb, s_vn, s_ve,
        s_tb, s_tm, s_te, s_dsb, s_dsm, s_dse, s_ob, s_os, s_om, s_od,
        tiles_per_split,
        HEAD_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_E: tl.constexpr, PRECISION: tl.constexpr,
):
    """out[b, s, m, :] = sum over split s's query tiles of E^T @ q - colsum(E) * l."""
    pid_b, pid_m, pid_s = _pid(0), _pid(1), _pid(2)
    q_ptr += pid_b * s_qb
    l_ptr += pid_b * s_lb
    dx_ptr += pid_b * s_dxb
    v_ptr += pid_b * s_vb
    t_ptr += pid_b * s_tb
    ds_ptr += pid_b * s_dsb
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_e = tl.arange(0, BLOCK_E)
    mask_m = offs_m < M
    mask_d = offs_d < D
    mask_e = offs_e < E
    acc_eq = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    colsum = tl.zeros((BLOCK_M,), dtype=tl.float32)
    n_tiles = tl.cdiv(N, BLOCK_N)
    start = pid_s * tiles_per_split
    stop = tl.minimum(start + tiles_per_split, n_tiles)
    for t in range(start, stop):
        offs_n = t * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        k1, e = _grad_weights(q_ptr, l_ptr, dx_ptr, v_ptr, t_ptr, ds_ptr, offs_n, offs_m, offs_e,
                              mask_n, mask_m, mask_e, s_qn, s_qd, s_lm, s_ld, s_dxn, s_dxe, s_vn, s_ve,
                              s_tm, s_te, s_dsm, s_dse, HEAD_D, BLOCK_N, BLOCK_M, BLOCK_D, PRECISION)
        q = tl.load(q_ptr + offs_n[:, None] * s_qn + offs_d[None, :] * s_qd,
                    mask=mask_n[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        acc_eq += tl.dot(tl.trans(e), q, input_precision=PRECISION)
        colsum += tl.sum(e, axis=0)
    lm = tl.load(l_ptr + offs_m[:, None] * s_lm + offs_d[None, :] * s_ld,
                 mask=mask_m[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
    # Every split subtracts its own colsum * l: the partials sum to E^T q - colsum(E) l.
    out = acc_eq - colsum[:, None] * lm
    tl.store(out_ptr + pid_b * s_ob + pid_s * s_os + offs_m[:, None] * s_om + offs_d[None, :] * s_od,
             out, mask=mask_m[:, None] & mask_d[None, :])


def _pow2(x: int, lo: int = 16) -> int:
    return max(lo, triton.next_power_of_2(x))


def _config(q: torch.Tensor, n: int, m: int, d: int, e: int, bh: int) -> dict:
    block_n = 64
    block_m = min(64, _pow2(m))
    n_tiles = triton.cdiv(n, block_n)
    m_blocks = triton.cdiv(m, block_m)
    # Enough programs for the reductions to fill the device; each split writes one (m, e) partial.
    if q.is_cuda:
        target = 4 * torch.cuda.get_device_properties(q.device).multi_processor_count
    else:
        target = 4
    split = max(1, min(n_tiles, triton.cdiv(target, bh * m_blocks)))
    tiles_per_split = triton.cdiv(n_tiles, split)
    split = triton.cdiv(n_tiles, tiles_per_split)
    precision = "ieee" if q.dtype == torch.float32 else "tf32"
    return dict(BLOCK_N=block_n, BLOCK_M=block_m, BLOCK_D=_pow2(d), BLOCK_E=_pow2(e),
                split=split, tiles_per_split=tiles_per_split, n_tiles=n_tiles, m_blocks=m_blocks,
                precision=precision)


def _reduce_launch(q, l, y, cfg):
    bh, n, d = q.shape
    m, e = l.shape[1], y.shape[2]
    part = torch.empty(bh, cfg["split"], m, e, device=q.device, dtype=torch.float32)
    _reduce[(bh, cfg["m_blocks"], cfg["split"])](
        q, l, y, part, n, m, e, *q.stride(), *l.stride(), *y.stride(), *part.stride(), cfg["tiles_per_split"],
        HEAD_D=d, BLOCK_N=cfg["BLOCK_N"], BLOCK_M=cfg["BLOCK_M"], BLOCK_D=cfg["BLOCK_D"], BLOCK_E=cfg["BLOCK_E"],
        PRECISION=cfg["precision"])
    return part.sum(1)


def gaussian_attention_fwd(q, l, mixing, v):
    """q (BH, N, d), l (BH, m, d), mixing (BH, m, m) float32, v (BH, N, e) -> (X, S, T)."""
    bh, n, d = q.shape
    m, e = l.shape[1], v.shape[2]
    cfg = _config(q, n, m, d, e, bh)
    s = _reduce_launch(q, l, v, cfg)                 # (BH, m, e) fp32
    t = torch.bmm(mixing, s)                         # (BH, m, e) fp32
    out = torch.empty(bh, n, e, device=v.device, dtype=v.dtype)
    _apply[(bh, cfg["n_tiles"])](
        q, l, t, out, n, m, e, *q.stride(), *l.stride(), *t.stride(), *out.stride(),
        HEAD_D=d, BLOCK_N=cfg["BLOCK_N"], BLOCK_M=cfg["BLOCK_M"], BLOCK_D=cfg["BLOCK_D"], BLOCK_E=cfg["BLOCK_E"],
        PRECISION=cfg["precision"])
    return out, s, t


def gaussian_attention_bwd(q, l, mixing, v, s, t, dx):
    """Gradients (dq, dl, dmixing, dv) of X for the upstream gradient dx (BH, N, e)."""
    bh, n, d = q.shape
    m, e = l.shape[1], v.shape[2]
    cfg = _config(q, n, m, d, e, bh)
    dt = _reduce_launch(q, l, dx, cfg)               # K1^T dX, (BH, m, e)
    dmixing = torch.bmm(dt, s.transpose(1, 2))
    ds = torch.bmm(mixing.transpose(1, 2), dt).contiguous()
    dq = torch.empty(bh, n, d, device=q.device, dtype=q.dtype)
    dv = torch.empty(bh, n, e, device=v.device, dtype=v.dtype)
    strides = (*q.stride(), *l.stride(), *dx.stride(), *v.stride(), *t.stride(), *ds.stride())
    blocks = dict(HEAD_D=d, BLOCK_N=cfg["BLOCK_N"], BLOCK_M=cfg["BLOCK_M"], BLOCK_D=cfg["BLOCK_D"],
                  BLOCK_E=cfg["BLOCK_E"], PRECISION=cfg["precision"])
    _bwd_q[(bh, cfg["n_tiles"])](q, l, dx, v, t, ds, dq, dv, n, m, e, d, *strides, **blocks)
    part = torch.empty(bh, cfg["split"], m, d, device=q.device, dtype=torch.float32)
    _bwd_l[(bh, cfg["m_blocks"], cfg["split"])](
        q, l, dx, v, t, ds, part, n, m, e, d, *strides, *part.stride(), cfg["tiles_per_split"], **blocks)
    return dq, part.sum(1).to(l.dtype), dmixing, dv
