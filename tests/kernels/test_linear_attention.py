"""The shared non-causal linear attention (zoo.kernels.linear_attention).

- the reference against the specs' equivalent N x N weight formulations (float64),
  RoPE against the spec's pair formula, gradcheck in float64;
- the Triton path (on CPU under TRITON_INTERPRET=1, see kernel_checks.py) against the
  reference: output and every input gradient, all variants, float32, bfloat16 and float16
  (16-bit inputs multiply as 16-bit tl.dot operands: the tolerance note in test_triton_matches_reference),
  N not a multiple of the block, several chunks, d in {16, 32, 64}, channels-first
  strided views, with and without RoPE;
- dispatch and input errors (the benchmark's smoke run: test_bench_smoke.py).

Tolerances are relative to the reference tensor's magnitude (kernel_checks.assert_close).
"""
from __future__ import annotations

import math

import pytest
import torch
from kernel_checks import DEVICE, RATIO, assert_close, needs_triton

from zoo.kernels.linear_attention import apply_rope_2d, linear_attention, linear_attention_reference, rope_2d_tables


def leaf_views(b: int, heads: int, n: int, d: int, dtype=torch.float32, seed: int = 0, scale: float = 1.0):
    """Channels-first strided views that are autograd leaves (each from its own (B, C, N) buffer), on
    the device the Triton path runs on (the CPU under the interpreter)."""
    gen = torch.Generator().manual_seed(seed)
    leaves = []
    for _ in range(3):
        buf = (torch.randn(b, heads * d, n, generator=gen) * scale).to(DEVICE, dtype)
        leaves.append(buf.view(b, heads, d, n).transpose(-1, -2).requires_grad_())
    return leaves


def forward_and_grads(fn, q, k, v, seed: int = 1):
    y = fn(q, k, v)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed)).to(y.device, y.dtype)
    grads = torch.autograd.grad(y, (q, k, v), dy)
    return y, grads


# ----------------------------------------------------------------------------- RoPE

def test_rope_tables_follow_the_pair_formula():
    h, w, d = 2, 3, 8
    cos, sin = rope_2d_tables(h, w, d, dtype=torch.float64)
    x = torch.randn(h * w, d, dtype=torch.float64)
    y = apply_rope_2d(x, cos, sin)
    freqs = [1.0, 1e-4]  # d/4 = 2 frequencies 10000^(-j/1)
    for token in range(h * w):
        row, col = divmod(token, w)
        for pair in range(d // 2):
            pos = row if pair < d // 4 else col
            phi = pos * freqs[pair % (d // 4)]
            a, b = x[token, 2 * pair], x[token, 2 * pair + 1]
            assert y[token, 2 * pair].item() == pytest.approx((a * math.cos(phi) - b * math.sin(phi)).item(), abs=1e-12)
            assert y[token, 2 * pair + 1].item() == pytest.approx((b * math.cos(phi) + a * math.sin(phi)).item(),
                                                                  abs=1e-12)


def test_rope_tables_need_a_multiple_of_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        rope_2d_tables(2, 2, 6)


# ----------------------------------------------------------------------------- the reference

def quadratic_form(q, k, v, variant: str, rope_hw, eps: float = 1e-6):
    """The specs' equivalent N x N weight formulations (ravlt.md / mala.md §2.4, inline.md §2.1)."""
    n, d = q.shape[-2:]
    s = d ** -0.5
    if variant == "inline":
        k_mean = k.mean(-2, keepdim=True)
        weights = (s / n) * (q @ k.transpose(-1, -2)) - (s / n) * (q @ k_mean.transpose(-1, -2)) + 1 / n
        return weights @ v
    q, k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    cos, sin = rope_2d_tables(*rope_hw, d, dtype=q.dtype) if rope_hw else (torch.ones(()), torch.zeros(()))
    rotated = apply_rope_2d(q, cos, sin) @ apply_rope_2d(k, cos, sin).transpose(-1, -2)  # R(q_i) . R(k_j)
    plain = q @ k.transpose(-1, -2)
    if variant == "rala":
        alpha = torch.softmax(s * q.mean(-2, keepdim=True) @ k.transpose(-1, -2), dim=-1)  # (.., 1, N)
        return (alpha * rotated) @ v / ((alpha * plain).sum(-1, keepdim=True) + eps)
    z = s * (q @ k.mean(-2, keepdim=True).transpose(-1, -2))
    beta, gamma = 1 + 1 / (z + eps), z / n
    return (beta * (s / n) * rotated - gamma) @ v


@pytest.mark.parametrize("variant, rope_hw", [("rala", (3, 4)), ("rala", None), ("mala", (3, 4)), ("mala", None),
                                              ("inline", None)])
def test_reference_matches_the_quadratic_form(variant, rope_hw):
    q, k, v = (torch.randn(2, 2, 12, 8, dtype=torch.float64) for _ in range(3))
    y = linear_attention_reference(q, k, v, variant=variant, rope_hw=rope_hw)
    torch.testing.assert_close(y, quadratic_form(q, k, v, variant, rope_hw), rtol=1e-10, atol=1e-10)


def test_reference_variants_differ():
    """The three cores and RoPE each change the output (so the tests above can tell them apart)."""
    q, k, v = (torch.randn(1, 1, 12, 8, dtype=torch.float64) for _ in range(3))
    outs = [linear_attention_reference(q, k, v, variant=var, rope_hw=hw)
            for var, hw in [("rala", None), ("rala", (3, 4)), ("mala", None), ("mala", (3, 4)), ("inline", None)]]
    for i in range(len(outs)):
        for j in range(i):
            assert (outs[i] - outs[j]).abs().max() > 1e-3


def test_reference_float32_matches_float64():
    q, k, v = (torch.randn(2, 2, 49, 16, dtype=torch.float64) for _ in range(3))
    for variant, hw in [("rala", (7, 7)), ("mala", (7, 7)), ("inline", None)]:
        y64 = linear_attention_reference(q, k, v, variant=variant, rope_hw=hw)
        y32 = linear_attention_reference(q.float(), k.float(), v.float(), variant=variant, rope_hw=hw)
        assert y32.dtype == torch.float32
        torch.testing.assert_close(y32.double(), y64, rtol=1e-5, atol=1e-5)


def test_reference_keeps_low_precision_dtypes_and_computes_in_fp32():
    q, k, v = (torch.randn(1, 2, 20, 16) for _ in range(3))
    y = linear_attention_reference(q.bfloat16(), k.bfloat16(), v.bfloat16(), variant="mala", rope_hw=(4, 5))
    expected = linear_attention_reference(q.bfloat16().float(), k.bfloat16().float(), v.bfloat16().float(),
                                          variant="mala", rope_hw=(4, 5))
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, expected.bfloat16(), rtol=0, atol=0)


@pytest.mark.parametrize("variant, rope_hw", [("rala", (2, 3)), ("mala", (2, 3)), ("inline", None)])
def test_reference_gradcheck_float64(variant, rope_hw):
    q, k, v = (torch.randn(1, 2, 6, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(
        lambda a, b, c: linear_attention_reference(a, b, c, variant=variant, rope_hw=rope_hw), (q, k, v),
        fast_mode=True)


# ----------------------------------------------------------------------------- Triton vs reference

def triton_path(variant, rope_hw, eps: float = 1e-6, block_n: int = 64, chunks=None, num_warps=None):
    """The op's Triton path with a chosen launch (small blocks: several blocks and chunks)."""
    hw = None if rope_hw is None else list(rope_hw)
    return lambda q, k, v: torch.ops.zoo.linear_attention(q, k, v, variant, hw, eps, "triton", block_n, chunks,
                                                          num_warps)[0]


def reference_path(variant, rope_hw, eps: float = 1e-6):
    return lambda q, k, v: linear_attention_reference(q, k, v, variant=variant, rope_hw=rope_hw, eps=eps)


def check_triton_against_reference(variant, rope_hw, shape, dtype, scale: float = 1.0, layout="channels_first",
                                   ratio: float | None = None, eps: float = 1e-6, **cfg):
    make = leaf_views if layout == "channels_first" else (
        lambda *a, **kw: [x.detach().contiguous().requires_grad_() for x in leaf_views(*a, **kw)])
    q, k, v = make(*shape, dtype=dtype, scale=scale)
    y, grads = forward_and_grads(triton_path(variant, rope_hw, eps=eps, **cfg), q, k, v)
    y_ref, grads_ref = forward_and_grads(reference_path(variant, rope_hw, eps=eps), q, k, v)
    ratio = ratio or RATIO[dtype]
    assert_close("y", y, y_ref, ratio)
    for name, g, g_ref in zip(("dq", "dk", "dv"), grads, grads_ref):
        assert_close(name, g, g_ref, ratio)
    return y, grads


MAIN_CASES = [("rala", (7, 11)), ("rala", None), ("mala", (7, 11)), ("mala", None), ("inline", None)]


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("variant, rope_hw", MAIN_CASES)
def test_triton_matches_reference(variant, rope_hw, dtype):
    # N = 77 in blocks of 32: three blocks (the last ragged) in two chunks. bfloat16: the tl.dot
    # operands are rounded to bfloat16 (relative error <= u = 2^-8 each, fp32 accumulation); a
    # d-term product's error is about u sqrt(2/3) / sqrt(d) of its magnitude, times the
    # cancellation of the two terms of Y = a P + b vbar (mala: about 1 + s t), within RATIO's 1e-2
    check_triton_against_reference(variant, rope_hw, (1, 2, 77, 16), dtype, block_n=32, chunks=2)


@needs_triton
@pytest.mark.parametrize("variant, rope_hw, d, dtype", [
    ("rala", (5, 10), 32, torch.float32),
    ("mala", (5, 10), 64, torch.bfloat16),
    ("inline", None, 32, torch.bfloat16),
    ("rala", (5, 10), 16, torch.float16),
    ("inline", None, 64, torch.float32),
])
def test_triton_head_dims(variant, rope_hw, d, dtype):
    check_triton_against_reference(variant, rope_hw, (2, 1, 50, d), dtype, block_n=16, chunks=3)


@needs_triton
@pytest.mark.parametrize("hw", [(11, 7), (7, 11), (1, 9)])
def test_triton_rope_table_is_the_reference_tables(hw):
    """The kernels gather a token's cos / sin from one (2, max(H, W), d) table: row entries for the
    first half of the channels, column entries for the second. Gathered, it is exactly the
    reference's (H * W, d) tables."""
    from zoo.kernels.linear_attention import triton_linear_attention as kernels
    d = 16
    q = torch.zeros(1, 1, hw[0] * hw[1], d, device=DEVICE)
    table = kernels.rope_table(kernels.problem(q, "mala", hw, 1e-6), q.device).cpu()
    assert table.shape == (2, max(hw), d) and table.dtype == torch.float32
    tokens = torch.arange(hw[0] * hw[1])
    row, col = tokens // hw[1], tokens % hw[1]
    gathered = torch.cat([table[:, row, : d // 2], table[:, col, d // 2:]], dim=-1)
    cos, sin = rope_2d_tables(*hw, d)
    assert torch.equal(gathered[0], cos) and torch.equal(gathered[1], sin)


@needs_triton
@pytest.mark.parametrize("variant", ["rala", "mala"])
def test_triton_tall_rope_grid(variant):
    # H > W: the table is indexed by rows up to H - 1; the masked tokens of the last block
    # (77..95) fall past the last row and read a clamped entry
    check_triton_against_reference(variant, (11, 7), (1, 2, 77, 16), torch.float32, block_n=32, chunks=2)


@needs_triton
@pytest.mark.parametrize("variant, d, separate", [("mala", 16, False), ("inline", 32, False), ("rala", 16, True),
                                                  ("mala", 64, True)])
def test_triton_query_grad_fused_into_reduce_grad(variant, d, separate, monkeypatch):
    """mala / inline at d <= 32: _reduce_grad writes dQ, no _query_grad launch (rala needs the reduced
    d qbar first; at d = 64 the fused kernel spilled on sm_90). The gradients are checked against the
    reference in every case by check_triton_against_reference."""
    from zoo.kernels.linear_attention import triton_linear_attention as kernels
    launches = []
    real = kernels._query_grad_kernel

    class Recording:
        def __getitem__(self, grid):
            launches.append(grid)
            return real[grid]

    monkeypatch.setattr(kernels, "_query_grad_kernel", Recording())
    rope_hw = None if variant == "inline" else (4, 5)
    check_triton_against_reference(variant, rope_hw, (1, 2, 20, d), torch.float32, block_n=16, chunks=2)
    assert len(launches) == (1 if separate else 0)


@needs_triton
@pytest.mark.parametrize("softmax", [True, False], ids=["rala", "mean"])
def test_triton_combine_merges_the_chunks(softmax):
    """_combine gives the statistics the PyTorch merge of the chunks' partials gives (max, exp,
    rescale, sums, divisions), within float32 rounding; the chunk maxima differ by up to 30."""
    from zoo.kernels.linear_attention import triton_linear_attention as kernels
    bh, chunks, d, n = 3, 5, 16, 77
    gen = torch.Generator().manual_seed(0)
    kv_part, kbar_part, vbar_part, qbar_part = (
        torch.randn(shape, generator=gen).to(DEVICE) for shape in [(bh, chunks, d, d)] + [(bh, chunks, d)] * 3)
    max_part = (torch.rand(bh, chunks, generator=gen) * 30).to(DEVICE)
    sum_part = (torch.rand(bh, chunks, generator=gen) + 0.5).to(DEVICE)
    out = [torch.empty(bh, d, d, device=DEVICE)] + [torch.empty(bh, d, device=DEVICE) for _ in range(3)] + [
        torch.empty(bh, device=DEVICE) for _ in range(2)]
    kernels._combine_kernel[(bh,)](kv_part, kbar_part, vbar_part, max_part, sum_part, qbar_part, *out, n, chunks,
                                   D=d, SOFTMAX=softmax)
    if softmax:
        row_max = max_part.max(1).values
        chunk_scale = torch.exp(max_part - row_max[:, None])
        total = (sum_part * chunk_scale).sum(1)
        kv = (kv_part * chunk_scale[:, :, None, None]).sum(1) / total[:, None, None]
        kbar = (kbar_part * chunk_scale[:, :, None]).sum(1) / total[:, None]
        qbar = qbar_part.sum(1) / n
    else:
        row_max, total = torch.zeros(bh), torch.ones(bh)
        kv, kbar, qbar = kv_part.sum(1) / n, kbar_part.sum(1) / n, torch.zeros(bh, d)
    expected = [kv, kbar, vbar_part.sum(1) / n, qbar, row_max, total]
    for name, got, want in zip(("kv", "kbar", "vbar", "qbar", "max", "sum"), out, expected):
        assert_close(name, got, want, RATIO[torch.float32], magnitude=1.0)


def test_triton_path_launches_only_kernels(monkeypatch):
    """Per call the host code allocates and launches, nothing else: forward rala 4 kernels (_qbar,
    _reduce, _combine, _apply), mala / inline 3; backward _reduce_grad, _combine_grad, _key_grad,
    then rala _dqbar and _query_grad, mala / inline at d = 64 _query_grad. (Before, the chunk merges
    were about 10 PyTorch ops per forward and 8 per backward.) The kernels are replaced by recorders,
    so this runs without Triton's interpreter."""
    pytest.importorskip("triton")
    from torch.utils._python_dispatch import TorchDispatchMode

    from zoo.kernels.linear_attention import triton_linear_attention as kernels

    launched = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def __getitem__(self, grid):
            return lambda *args, **kwargs: launched.append(self.name)

    for name in [n for n in vars(kernels) if n.endswith("_kernel")]:
        monkeypatch.setattr(kernels, name, Recorder(name.removeprefix("_").removesuffix("_kernel")))

    class TorchOps(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket not in (torch.ops.aten.empty, torch.ops.aten.empty_strided, torch.ops.aten.select,
                                           torch.ops.aten.transpose):
                launched.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    expected = {("rala", 16): (["qbar", "reduce", "combine", "apply"],
                               ["reduce_grad", "combine_grad", "key_grad", "dqbar", "query_grad"]),
                ("mala", 16): (["reduce", "combine", "apply"], ["reduce_grad", "combine_grad", "key_grad"]),
                ("inline", 64): (["reduce", "combine", "apply"],
                                 ["reduce_grad", "combine_grad", "key_grad", "query_grad"])}
    for (variant, d), (fwd, bwd) in expected.items():
        q = torch.zeros(2, 3, 20, d)
        p = kernels.problem(q, variant, None, 1e-6)
        kernels.rope_table(p, q.device)  # cached: built once per grid, not per call
        cfg = kernels.LaunchConfig(block_n=16, chunks=2)
        launched.clear()
        with TorchOps():
            _, stats = kernels.forward(q, q, q, p, cfg)
        assert launched == fwd, variant
        launched.clear()
        with TorchOps():
            kernels.backward(q, q, q, q, stats, p, cfg)
        assert launched == bwd, variant


@needs_triton
def test_triton_bf16_operands_round_to_nearest(monkeypatch):
    """16-bit inputs multiply in their own dtype (fp32 accumulation); under the interpreter, whose
    bfloat16 tl.dot multiplies bit patterns and whose casts truncate, zoo.kernels._tl.dot_16bit
    (linear attention's and GLA's 16-bit dots) rounds the operands to the nearest bfloat16 in fp32
    instead: exactly torch's (the GPU's) rounding."""
    import triton
    import triton.language as tl

    from zoo.kernels import _tl

    monkeypatch.setitem(globals(), "round_to_bf16", _tl.round_to_bf16)  # a jit body sees module globals

    @triton.jit
    def rounded(X, Y, N: tl.constexpr):
        tl.store(Y + tl.arange(0, N), round_to_bf16(tl.load(X + tl.arange(0, N))))  # noqa: F821

    x = torch.randn(4096, generator=torch.Generator().manual_seed(0)).to(DEVICE) * 3
    x[:4] = torch.tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 0.0])  # ties go to even
    y = torch.empty_like(x)
    rounded[(1,)](x, y, N=4096)
    assert torch.equal(y, x.bfloat16().float())


@needs_triton
def test_triton_contiguous_inputs():
    # an explicit num_warps launches the jit functions inside the autotuners with it
    check_triton_against_reference("mala", (5, 10), (2, 1, 50, 16), torch.float32, layout="contiguous",
                                   block_n=32, chunks=1, num_warps=4)


@needs_triton
def test_triton_rala_softmax_is_stable_for_large_logits():
    # keys 30x larger: logits of several hundred, exp() overflows without the running max. fp32
    # rounding of logits that large moves exp(logit - max) by ~|logit| * 6e-8 in both
    # implementations, hence a looser ratio than RATIO[float32].
    check_triton_against_reference("rala", (5, 10), (1, 2, 50, 16), torch.float32, scale=30.0, ratio=2e-4,
                                   block_n=16, chunks=2)


@needs_triton
@pytest.mark.parametrize("variant", ["rala", "mala"])
def test_triton_large_eps(variant):
    # rala's output is invariant to a common scale of the key weights except through eps, so
    # the softmax pull-back's mean term (cbar) only shows with an eps that is not negligible
    check_triton_against_reference(variant, (5, 10), (1, 2, 50, 16), torch.float32, eps=0.5, block_n=32, chunks=2)


@needs_triton
def test_triton_output_is_token_minor_for_channels_first_inputs():
    q, k, v = leaf_views(1, 2, 50, 16)
    y, grads = forward_and_grads(triton_path("mala", (5, 10), block_n=64), q, k, v)
    assert y.stride(-2) == 1 and y.transpose(-1, -2).is_contiguous()
    assert all(g.stride(-2) == 1 for g in grads)
    q, k, v = (x.detach().contiguous().requires_grad_() for x in (q, k, v))
    assert triton_path("mala", (5, 10), block_n=64)(q, k, v).is_contiguous()


# ----------------------------------------------------------------------------- public API and dispatch

@needs_triton
def test_public_function_forced_triton_matches_reference(monkeypatch):
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    q, k, v = leaf_views(1, 2, 35, 32, seed=3)
    y, grads = forward_and_grads(
        lambda a, b, c: linear_attention(a, b, c, variant="rala", rope_hw=(5, 7), impl="triton"), q, k, v)
    y_ref, grads_ref = forward_and_grads(
        lambda a, b, c: linear_attention(a, b, c, variant="rala", rope_hw=(5, 7), impl="reference"), q, k, v)
    assert y.stride(-2) == 1  # the Triton path ran (the reference returns token-major)
    assert y_ref.stride(-1) == 1
    assert_close("y", y, y_ref, RATIO[torch.float32])
    for name, g, g_ref in zip(("dq", "dk", "dv"), grads, grads_ref):
        assert_close(name, g, g_ref, RATIO[torch.float32])


def test_dispatch(monkeypatch):
    from zoo.kernels.linear_attention import _path
    cpu = torch.zeros(1, 1, 4, 16)
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _path(cpu, "auto") == "reference"
    assert _path(cpu, "triton") == "triton"
    assert _path(cpu.double(), "auto") == "reference"
    assert _path(cpu[..., :8], "auto") == "reference"
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "triton")
    assert _path(cpu, "auto") == "triton"
    assert _path(cpu, "reference") == "reference"  # an explicit argument wins
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "reference")
    assert _path(cpu, "auto") == "reference"
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "cuda")
    with pytest.raises(ValueError, match="ZOO_KERNELS_IMPL"):
        _path(cpu, "auto")


@needs_triton
def test_empty_batch(monkeypatch):
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    q = torch.zeros(0, 2, 12, 16, device=DEVICE)
    for impl in ("triton", "reference"):
        assert linear_attention(q, q, q, variant="mala", rope_hw=(3, 4), impl=impl).shape == (0, 2, 12, 16)


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="CUDA tensors"):
        linear_attention(*_qkv(), variant="rala", impl="triton")


def test_public_function_dtype_and_shape():
    q, k, v = leaf_views(2, 3, 20, 8, dtype=torch.bfloat16)
    y = linear_attention(q, k, v, variant="mala", rope_hw=(4, 5))
    assert y.shape == (2, 3, 20, 8) and y.dtype == torch.bfloat16


def _qkv(shape=(1, 2, 12, 16), dtype=torch.float32):
    return [torch.randn(shape, dtype=dtype) for _ in range(3)]


@pytest.mark.parametrize("change, kwargs, match", [
    (lambda q, k, v: (q[0], k[0], v[0]), {}, r"expected q of shape \(B, heads, N, d\), got 3-D"),
    (lambda q, k, v: (q, k[..., :8], v), {}, r"one shape .* k \(1, 2, 12, 8\)"),
    (lambda q, k, v: (q, k, v.double()), {}, "share a dtype"),
    (lambda q, k, v: (q.int(), k.int(), v.int()), {}, r"q must have a floating dtype .*, got torch.int32"),
    (lambda q, k, v: (q, k.to("meta"), v), {}, "all inputs must be on one device"),
    (lambda q, k, v: (q, k, v), {"variant": "softmax"}, "variant must be one of"),
    (lambda q, k, v: (q, k, v), {"variant": "inline", "rope_hw": (3, 4)}, "'inline' has no RoPE"),
    (lambda q, k, v: (q, k, v), {"rope_hw": (3, 5)}, r"gives 15 tokens, expected N=12"),
    (lambda q, k, v: (q, k, v), {"rope_hw": (12,)}, "pair of positive ints"),
    (lambda q, k, v: (q, k, v), {"rope_hw": "3x4"}, "pair of positive ints"),
    (lambda q, k, v: (q[..., :6], k[..., :6], v[..., :6]), {"rope_hw": (3, 4)}, "divisible by 4, got d=6"),
    (lambda q, k, v: (q, k, v), {"impl": "cuda"}, "impl must be one of"),
    (lambda q, k, v: (q[..., :8], k[..., :8], v[..., :8]), {"impl": "triton"},
     r"head dim d in \(16, 32, 64\), got d=8"),
    (lambda q, k, v: (q.double(), k.double(), v.double()), {"impl": "triton"}, "got float64"),
])
def test_errors(change, kwargs, match):
    q, k, v = change(*_qkv())
    kwargs = {"variant": "rala", **kwargs}
    with pytest.raises(ValueError, match=match):
        linear_attention(q, k, v, **kwargs)


# ----------------------------------------------------------------------------- GPU
# (the benchmark's CPU smoke run is tested with the other three in test_bench_smoke.py)


@pytest.mark.gpu
@pytest.mark.parametrize("variant, rope_hw", MAIN_CASES)
def test_gpu_triton_matches_reference(variant, rope_hw):
    n = 56 * 56 if rope_hw else 3000
    hw = (56, 56) if rope_hw else None
    gen = torch.Generator(device="cuda").manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        fused = torch.randn(4, 3 * 4 * 32, n, device="cuda", generator=gen).to(dtype)
        q, k, v = (t.view(4, 4, 32, n).transpose(-1, -2).detach().requires_grad_() for t in fused.chunk(3, 1))
        y, grads = forward_and_grads(lambda a, b, c: linear_attention(a, b, c, variant=variant, rope_hw=hw), q, k, v)
        assert y.stride(-2) == 1  # auto picked Triton on CUDA
        y_ref, grads_ref = forward_and_grads(reference_path(variant, hw), q, k, v)
        assert_close("y", y, y_ref, RATIO[dtype])
        for name, g, g_ref in zip(("dq", "dk", "dv"), grads, grads_ref):
            assert_close(name, g, g_ref, RATIO[dtype])

