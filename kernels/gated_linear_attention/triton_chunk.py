"""Triton kernels for bidirectional gated linear attention, chunked, forward and backward.

The function is `reference.bigla_chunked`. One program per (batch·head,
direction): the forward scan walks the chunks of the sequence in order, the backward scan
walks them from the end, loading each chunk with reversed token order so that the two
scans run the same code (the backward scan on the reversed sequence is a causal scan
whose inclusive gate cumsum is the definition's exclusive one). q, k, v and the gates are
read in place with their strides, in the model's (B, N, H, D) layout: no flipped copies,
no concatenated batch as in the official train path.

Per chunk of BT tokens, with A the inclusive cumsum of the chunk's log-decays (fp32):

    intra:  o[t] += sum_{s<=t in chunk} (sum_c q[t,c] k[s,c] exp(A[t,c] - A[s,c])) v[s]
    inter:  o[t] += (q[t] * exp(A[t])) @ S
    state:  S = exp(A_last) * S + (k * exp(A_last - A))^T @ v

Every exponent is <= 0, so the state and the decays never overflow, whatever the gates
(the intra-chunk decays are formed per (t, s, c), not factorised as exp(A[t]) exp(-A[s])).
The state S is a (dk, dv) fp32 tile held in registers for the whole scan; fp32
accumulation for every input dtype. Each direction writes its own fp32 output / gradient
slice; the caller sums the two and forms the gate gradients from them:

    dA_t = q_t * dq_t - k_t * dk_t   (per direction, elementwise over dk),
    da_f = reverse cumsum of dA_f,   da_b = cumsum of dA_b   (memory order).

The backward pass recomputes everything from q, k, v, the gates and dO (nothing but the
inputs is saved): a forward walk for dq (state S as above) and a reverse walk for dk, dv
(state U = sum over later tokens of (q_t * exp(A_t - A_end)) dO_t^T).

Offsets are int64 (the program ids are widened first): the (2, B, N, H, dv) fp32 buffers pass
2^31 elements at ViG's large inputs (B=64, N=50176, H=8, dv=64).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

BT = 16  # chunk length: the intra-chunk (BT, BT, dk) decay tile stays in registers


@triton.jit
def _load_chunk(ptr, pos, valid, sn, offs_d, d, BASE):
    mask = valid[:, None] & (offs_d[None, :] < d)
    return tl.load(ptr + BASE + pos[:, None] * sn + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _bigla_fwd_kernel(
        q_ptr, k_ptr, v_ptr, af_ptr, ab_ptr, o_ptr,
        sq_b, sq_n, sq_h, sk_b, sk_n, sk_h, sv_b, sv_n, sv_h, sa_b, sa_n, sa_h,
        so_d, so_b, so_n, so_h,
        N, H, DK, DV, scale,
        BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PREC: tl.constexpr,
):
    bh = tl.program_id(0).to(tl.int64)  # int64: direction * so_d is 3.3e9 at B=64, N=50176, H=8, dv=64
    direction = tl.program_id(1).to(tl.int64)
    b = bh // H
    h = bh % H
    offs_t = tl.arange(0, BT)
    offs_k = tl.arange(0, BK)
    offs_v = tl.arange(0, BV)
    causal = offs_t[:, None] >= offs_t[None, :]
    is_last = offs_t[:, None] == BT - 1
    if direction == 0:
        a_ptr = af_ptr
    else:
        a_ptr = ab_ptr
    qb = b * sq_b + h * sq_h
    kb = b * sk_b + h * sk_h
    vb = b * sv_b + h * sv_h
    ab = b * sa_b + h * sa_h
    ob = direction * so_d + b * so_b + h * so_h
    S = tl.zeros([BK, BV], dtype=tl.float32)
    for c in range(0, tl.cdiv(N, BT)):
        j = c * BT + offs_t
        valid = j < N
        pos = tl.where(direction == 0, j, N - 1 - j)
        q = _load_chunk(q_ptr, pos, valid, sq_n, offs_k, DK, qb) * scale
        k = _load_chunk(k_ptr, pos, valid, sk_n, offs_k, DK, kb)
        v = _load_chunk(v_ptr, pos, valid, sv_n, offs_v, DV, vb)
        a = _load_chunk(a_ptr, pos, valid, sa_n, offs_k, DK, ab)
        A = tl.cumsum(a, axis=0)
        A_last = tl.sum(tl.where(is_last, A, 0.0), axis=0)
        rel = tl.where(causal[:, :, None], A[:, None, :] - A[None, :, :], float("-inf"))
        scores = tl.sum(q[:, None, :] * k[None, :, :] * tl.exp(rel), axis=2)
        o = tl.dot(scores, v, input_precision=PREC)
        o += tl.dot(q * tl.exp(A), S, input_precision=PREC)
        S = S * tl.exp(A_last)[:, None] + tl.dot(
            tl.trans(k * tl.exp(A_last[None, :] - A)), v, input_precision=PREC)
        tl.store(o_ptr + ob + pos[:, None] * so_n + offs_v[None, :], o,
                 mask=valid[:, None] & (offs_v[None, :] < DV))


@triton.jit
def _bigla_bwd_kernel(
        q_ptr, k_ptr, v_ptr, af_ptr, ab_ptr, do_ptr, dq_ptr, dk_ptr, dv_ptr,
        sq_b, sq_n, sq_h, sk_b, sk_n, sk_h, sv_b, sv_n, sv_h, sa_b, sa_n, sa_h, sdo_b, sdo_n, sdo_h,
        sg_d, sg_b, sg_n, sg_h, sgv_d, sgv_b, sgv_n, sgv_h,
        N, H, DK, DV, scale,
        BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, PREC: tl.constexpr,
):
    bh = tl.program_id(0).to(tl.int64)  # int64 offsets, as in the forward
    direction = tl.program_id(1).to(tl.int64)
    b = bh // H
    h = bh % H
    offs_t = tl.arange(0, BT)
    offs_k = tl.arange(0, BK)
    offs_v = tl.arange(0, BV)
    causal = offs_t[:, None] >= offs_t[None, :]
    is_last = offs_t[:, None] == BT - 1
    if direction == 0:
        a_ptr = af_ptr
    else:
        a_ptr = ab_ptr
    qb = b * sq_b + h * sq_h
    kb = b * sk_b + h * sk_h
    vb = b * sv_b + h * sv_h
    ab = b * sa_b + h * sa_h
    dob = b * sdo_b + h * sdo_h
    gb = direction * sg_d + b * sg_b + h * sg_h       # dq / dk buffers (2, B, N, H, dk)
    gvb = direction * sgv_d + b * sgv_b + h * sgv_h   # dv buffer (2, B, N, H, dv)
    num_chunks = tl.cdiv(N, BT)

    # Walk 1, in scan order: dq[t] = scale * sum_{s<=t} exp(A[t]-A[s]) * k[s] (do[t] . v[s]).
    S = tl.zeros([BK, BV], dtype=tl.float32)
    for c in range(0, num_chunks):
        j = c * BT + offs_t
        valid = j < N
        pos = tl.where(direction == 0, j, N - 1 - j)
        k = _load_chunk(k_ptr, pos, valid, sk_n, offs_k, DK, kb)
        v = _load_chunk(v_ptr, pos, valid, sv_n, offs_v, DV, vb)
        a = _load_chunk(a_ptr, pos, valid, sa_n, offs_k, DK, ab)
        do = _load_chunk(do_ptr, pos, valid, sdo_n, offs_v, DV, dob)
        A = tl.cumsum(a, axis=0)
        A_last = tl.sum(tl.where(is_last, A, 0.0), axis=0)
        rel = tl.where(causal[:, :, None], A[:, None, :] - A[None, :, :], float("-inf"))
        P = tl.dot(do, tl.trans(v), input_precision=PREC)                  # P[t, s] = do_t . v_s
        dq = tl.sum(P[:, :, None] * k[None, :, :] * tl.exp(rel), axis=1)
        dq += tl.dot(do, tl.trans(S), input_precision=PREC) * tl.exp(A)
        S = S * tl.exp(A_last)[:, None] + tl.dot(
            tl.trans(k * tl.exp(A_last[None, :] - A)), v, input_precision=PREC)
        tl.store(dq_ptr + gb + pos[:, None] * sg_n + offs_k[None, :], dq * scale,
                 mask=valid[:, None] & (offs_k[None, :] < DK))

    # Walk 2, against scan order: dk[s], dv[s] from the tokens t >= s.
    U = tl.zeros([BK, BV], dtype=tl.float32)
    for i in range(0, num_chunks):
        c = num_chunks - 1 - i
        j = c * BT + offs_t
        valid = j < N
        pos = tl.where(direction == 0, j, N - 1 - j)
        q = _load_chunk(q_ptr, pos, valid, sq_n, offs_k, DK, qb) * scale
        k = _load_chunk(k_ptr, pos, valid, sk_n, offs_k, DK, kb)
        v = _load_chunk(v_ptr, pos, valid, sv_n, offs_v, DV, vb)
        a = _load_chunk(a_ptr, pos, valid, sa_n, offs_k, DK, ab)
        do = _load_chunk(do_ptr, pos, valid, sdo_n, offs_v, DV, dob)
        A = tl.cumsum(a, axis=0)
        A_last = tl.sum(tl.where(is_last, A, 0.0), axis=0)
        E = tl.exp(tl.where(causal[:, :, None], A[:, None, :] - A[None, :, :], float("-inf")))
        P = tl.dot(do, tl.trans(v), input_precision=PREC)                  # P[t, s] = do_t . v_s
        dk = tl.sum(P[:, :, None] * q[:, None, :] * E, axis=0)
        scores = tl.sum(q[:, None, :] * k[None, :, :] * E, axis=2)         # scores[t, s]
        dv = tl.dot(tl.trans(scores), do, input_precision=PREC)
        k_decay = tl.exp(A_last[None, :] - A)
        dk += tl.dot(v, tl.trans(U), input_precision=PREC) * k_decay
        dv += tl.dot(k * k_decay, U, input_precision=PREC)
        U = U * tl.exp(A_last)[:, None] + tl.dot(tl.trans(q * tl.exp(A)), do, input_precision=PREC)
        tl.store(dk_ptr + gb + pos[:, None] * sg_n + offs_k[None, :], dk,
                 mask=valid[:, None] & (offs_k[None, :] < DK))
        tl.store(dv_ptr + gvb + pos[:, None] * sgv_n + offs_v[None, :], dv,
                 mask=valid[:, None] & (offs_v[None, :] < DV))


def _prepare(q, k, v, a_f, a_b):
    for name, t in (("q", q), ("k", k), ("v", v), ("a_f", a_f), ("a_b", a_b)):
        if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise TypeError(f"the Triton path takes float32, float16 or bfloat16; {name} is {t.dtype}")
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    if a_f.stride() != a_b.stride() or a_f.stride(-1) != 1:
        a_f, a_b = a_f.contiguous(), a_b.contiguous()
    prec = "ieee" if all(t.dtype == torch.float32 for t in (q, k, v)) else "tf32"
    dk, dv = q.shape[-1], v.shape[-1]
    blocks = dict(BT=BT, BK=max(16, triton.next_power_of_2(dk)), BV=max(16, triton.next_power_of_2(dv)), PREC=prec)
    return q, k, v, a_f, a_b, blocks


def _strides(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.stride())[:-1]


def bigla_fwd(q, k, v, a_f, a_b, scale: float) -> torch.Tensor:
    """o_f + o_b, (B, N, H, dv) in v's dtype."""
    q, k, v, a_f, a_b, blocks = _prepare(q, k, v, a_f, a_b)
    B, N, H, dk = q.shape
    dv = v.shape[-1]
    o = torch.empty(2, B, N, H, dv, device=q.device, dtype=torch.float32)
    _bigla_fwd_kernel[(B * H, 2)](
        q, k, v, a_f, a_b, o, *_strides(q), *_strides(k), *_strides(v), *_strides(a_f), *_strides(o),
        N, H, dk, dv, scale, **blocks)
    return (o[0] + o[1]).to(v.dtype)


def bigla_bwd(q, k, v, a_f, a_b, do, scale: float):
    """Gradients (dq, dk, dv, da_f, da_b) of sum(o * do), each in its input's dtype."""
    dtypes = [t.dtype for t in (q, k, v, a_f, a_b)]
    q, k, v, a_f, a_b, blocks = _prepare(q, k, v, a_f, a_b)
    do = do if do.stride(-1) == 1 else do.contiguous()
    B, N, H, dk = q.shape
    dv = v.shape[-1]
    dq = torch.empty(2, B, N, H, dk, device=q.device, dtype=torch.float32)
    dkk = torch.empty_like(dq)
    dvv = torch.empty(2, B, N, H, dv, device=q.device, dtype=torch.float32)
    _bigla_bwd_kernel[(B * H, 2)](
        q, k, v, a_f, a_b, do, dq, dkk, dvv,
        *_strides(q), *_strides(k), *_strides(v), *_strides(a_f), *_strides(do), *_strides(dq), *_strides(dvv),
        N, H, dk, dv, scale, **blocks)
    qf, kf = q.float(), k.float()
    dA = qf * dq - kf * dkk                                    # (2, B, N, H, dk), per direction
    da_f = dA[0].flip(1).cumsum(1).flip(1)                     # sum over t >= r
    da_b = dA[1].cumsum(1)                                     # sum over t <= r
    grads = (dq.sum(0), dkk.sum(0), dvv.sum(0), da_f, da_b)
    return tuple(g.to(dt) for g, dt in zip(grads, dtypes))
