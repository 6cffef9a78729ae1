"""Bidirectional gated linear attention (ViG, arXiv:2405.18425), in plain PyTorch.

The definition (the official `bid_fused_recurrent_gla` in hustvl/ViG's vendored fla,
`fla/ops/gla/recurrent_fuse.py`, returns half of it), per batch element and head, for
tokens in scan order t = 0..N-1, queries and keys q, k (N, dk), values v (N, dv), per-direction log-decays
a_f, a_b (N, dk), all <= 0, and a scale s:

    o[t] = sum_{s<=t} ((s q_t) * exp(sum_{r=s+1..t} a_f[r])) . k_s  v_s      (forward scan)
         + sum_{s>=t} ((s q_t) * exp(sum_{r=t..s-1} a_b[r])) . k_s  v_s      (backward scan)

`*` is elementwise over the dk key channels and `.` the dk dot product. The gate of the
query-side position is applied, never the key-side one; the backward scan uses a_b at
its own positions; the diagonal s = t is counted in both scans; there is no normaliser.
The caller divides by its merge divisor (ViG: 2 or 4).

Two forms of the same function, both differentiable and float64-capable:

- `bigla_recurrent`: the two recurrences with a (dk, dv) state, token by token
  (`S_t = diag(exp a_f[t]) S_{t-1} + k_t v_t^T`, `o_f[t] = S_t^T (s q_t)`, and the mirror
  for the backward scan). Slow; the readable definition.
- `bigla_chunked`: chunks of `chunk_size` tokens; inside a chunk a masked attention
  with relative decays exp(A[t] - A[s]) (never larger than 1), across chunks a state
  carried with the chunk's total decay (all chunk states at once, from float64 cumulative
  chunk decays). Every exponent is <= 0, so nothing overflows however strong the gates;
  the Triton kernel runs the same algorithm with the state carried chunk by chunk.

Tensors are (B, N, H, D) ("tokens first", as the model produces them); any strides.
Accumulation is in float32 (float64 inputs stay float64); the output has v's dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bigla_recurrent", "bigla_chunked", "causal_gla_chunked"]


def _acc_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a_f: torch.Tensor, a_b: torch.Tensor) -> None:
    if q.ndim != 4:
        raise ValueError(f"q must be (B, N, H, dk), got shape {tuple(q.shape)}")
    if k.shape != q.shape or a_f.shape != q.shape or a_b.shape != q.shape:
        raise ValueError(
            f"q, k, a_f and a_b must have one shape (B, N, H, dk); got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(a_f.shape)}, {tuple(a_b.shape)}")
    if v.ndim != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must be (B, N, H, dv) with q's B, N, H {tuple(q.shape[:3])}, got {tuple(v.shape)}")


def bigla_recurrent(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a_f: torch.Tensor, a_b: torch.Tensor,
        scale: float | None = None,
) -> torch.Tensor:
    """o_f + o_b by the two token-by-token recurrences (the definition; slow)."""
    _check(q, k, v, a_f, a_b)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    acc, out_dtype = _acc_dtype(q, k, v, a_f, a_b), v.dtype
    q, k, v, a_f, a_b = (t.to(acc) for t in (q, k, v, a_f, a_b))
    q = q * scale
    B, N, H, dk = q.shape
    dv = v.shape[-1]
    out = [None] * N
    state = q.new_zeros(B, H, dk, dv)
    for t in range(N):  # forward: S_t = diag(alpha_f[t]) S_{t-1} + k_t v_t^T
        state = a_f[:, t].exp().unsqueeze(-1) * state + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        out[t] = torch.einsum("bhk,bhkv->bhv", q[:, t], state)
    state = q.new_zeros(B, H, dk, dv)
    for t in reversed(range(N)):  # backward: S'_t = diag(alpha_b[t]) S'_{t+1} + k_t v_t^T
        state = a_b[:, t].exp().unsqueeze(-1) * state + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        out[t] = out[t] + torch.einsum("bhk,bhkv->bhv", q[:, t], state)
    return torch.stack(out, dim=1).to(out_dtype)


def causal_gla_chunked(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: torch.Tensor, chunk_size: int | None = None,
) -> torch.Tensor:
    """Causal GLA, o[t] = sum_{s<=t} (q_t * exp(A[t] - A[s])) . k_s v_s, A = inclusive cumsum of a.

    (B, H, N, D) tensors already in the accumulation dtype, q already scaled. Chunked:
    masked intra-chunk attention with relative decays plus a carried inter-chunk state.
    """
    B, H, N, dk = q.shape
    dv = v.shape[-1]
    # Cost: N * C * dk for the intra-chunk tiles, (N / C)^2 * dk * dv for the states.
    C = max(1, min(chunk_size or (16 if N <= 4096 else 64), N))
    pad = (-N) % C
    if pad:  # zero tokens at the end: zero k, v and gates change no real output
        q, k, v, a = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v, a))
    nc = (N + pad) // C
    q, k, v, a = (t.reshape(B, H, nc, C, t.shape[-1]) for t in (q, k, v, a))
    A = a.cumsum(-2)                                            # within-chunk inclusive cumsum
    # Intra-chunk: score[t, s] = sum_c q[t,c] k[s,c] exp(A[t,c] - A[s,c]) for s <= t.
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    rel = A.unsqueeze(-2) - A.unsqueeze(-3)                      # (B, H, nc, t, s, dk)
    rel = rel.masked_fill(~causal[..., None], float("-inf")).exp()
    scores = (q.unsqueeze(-2) * k.unsqueeze(-3) * rel).sum(-1)
    out = scores @ v
    # Inter-chunk: o[t] += (q_t * exp(A[t])) @ S_c, S_c the state before chunk c:
    #   S_c = sum_{c' < c} exp(G[c-1] - G[c']) (k * exp(A_last - A))_{c'}^T v_{c'},
    # G the inclusive cumsum of the chunks' total log-decays, formed in float64 so that
    # the differences of long sums keep their precision (every exponent is <= 0).
    q_dec = q * A.exp()
    A_last = A[..., -1:, :]
    chunk_states = (k * (A_last - A).exp()).transpose(-1, -2) @ v     # (B, H, nc, dk, dv)
    g = A_last.squeeze(-2).double()                                   # (B, H, nc, dk)
    G = g.cumsum(-2)
    expo = (G - g).unsqueeze(-2) - G.unsqueeze(-3)                    # (B, H, c, c', dk)
    before = torch.ones(nc, nc, dtype=torch.bool, device=q.device).tril(-1)
    decay = expo.masked_fill(~before[..., None], float("-inf")).exp().to(q.dtype)
    states = torch.einsum("bhcxk,bhxkv->bhckv", decay, chunk_states)
    out = out + q_dec @ states
    return out.reshape(B, H, nc * C, dv)[:, :, :N]


def bigla_chunked(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a_f: torch.Tensor, a_b: torch.Tensor,
        scale: float | None = None, chunk_size: int | None = None,
) -> torch.Tensor:
    """o_f + o_b by chunks: the forward scan on the sequence, the backward scan on the
    reversed sequence with reversed a_b (its inclusive cumsum in reversed order is the
    exclusive one of the definition). Equal to `bigla_recurrent` up to rounding."""
    _check(q, k, v, a_f, a_b)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    acc, out_dtype = _acc_dtype(q, k, v, a_f, a_b), v.dtype
    q, k, v, a_f, a_b = (t.to(acc).transpose(1, 2) for t in (q, k, v, a_f, a_b))  # (B, H, N, D)
    q = q * scale
    o_f = causal_gla_chunked(q, k, v, a_f, chunk_size)
    flip = lambda t: t.flip(-2)  # noqa: E731
    o_b = flip(causal_gla_chunked(flip(q), flip(k), flip(v), flip(a_b), chunk_size))
    return (o_f + o_b).transpose(1, 2).to(out_dtype)
