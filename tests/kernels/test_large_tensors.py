"""The kernels at scale: tensors over 2^31 elements, where 32-bit offsets wrap.

A Triton kernel gets its strides and sizes as i32 whenever each fits, and its program ids are
i32, so `b * stride_b` wraps once a tensor passes 2^31 elements (ViG at B=64, N=50176, H=8,
d=64 writes a (2, B, N, H, d) buffer of 3.3e9). Two checks:

- on CPU (`test_no_kernel_multiplies_a_program_id_by_an_argument_in_32_bits`): every kernel
  the public ops launch is compiled to Triton IR and searched for an i32 product of a program
  id and an int argument (tests/kernels/int64_offsets.py); a toy kernel with `pid * stride`
  shows the search finds one;
- on a GPU (marked `gpu`): each op on a tensor over 2^31 elements, its output (and gradients)
  compared with the PyTorch reference on a few batch / head slices, the last one included
  (the one past 2^31). Each test keeps under about 40 GiB and skips, saying so, on a smaller GPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kernel_checks import RATIO, assert_close

HERE = Path(__file__).parent
LIMIT = 2 ** 31
GiB = 2 ** 30
# bf16 inputs, fp32 accumulation, tf32 dots on the Triton path: outputs kept in float32 (the
# Gaussian kernel's landmark and mixing gradients) are judged at the inputs' precision.
BF16 = RATIO[torch.bfloat16]


# ----------------------------------------------------------------------------- CPU: the offsets are int64

def _run(script: str, *args: str, interpret: bool, timeout: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ZOO_KERNELS_IMPL"}
    env["TRITON_INTERPRET"] = "1" if interpret else "0"
    return subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.slow
def test_no_kernel_multiplies_a_program_id_by_an_argument_in_32_bits(tmp_path):
    pytest.importorskip("triton")
    records, report = tmp_path / "launches.json", tmp_path / "offsets.json"
    recorded = _run("aot_compile.py", "record", str(records), interpret=True, timeout=300)
    assert recorded.returncode == 0, recorded.stdout[-2000:] + recorded.stderr[-6000:]
    searched = _run("int64_offsets.py", str(records), str(report), interpret=False, timeout=300)
    assert searched.returncode == 0, searched.stdout[-2000:] + searched.stderr[-6000:]
    found = json.loads(report.read_text())

    # The search can fail: it finds the 32-bit product in the toy kernel, and not in its int64 form.
    assert any("b, %stride_b : i32" in op for op in found.pop("int64_offsets:_toy_offsets_int32")), found
    assert found.pop("int64_offsets:_toy_offsets_int64") == []
    packages = {key.split(":")[0].split(".")[2] for key in found}
    assert packages >= {"linear_attention", "gated_linear_attention", "gaussian_attention", "lif"}, packages
    narrow = {key: ops for key, ops in found.items() if ops}
    assert not narrow, "i32 products of a program id and a stride / size (widen the program id with " \
                       ".to(tl.int64)):\n" + "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in narrow.items())


# ----------------------------------------------------------------------------- GPU: over 2^31 elements

@pytest.fixture
def cuda_memory():
    """Skips unless `need` GiB are free; frees the test's tensors after it."""
    def need(gib: float) -> None:
        free = torch.cuda.mem_get_info()[0] / GiB
        if free < gib:
            pytest.skip(f"needs {gib:.0f} GiB of free GPU memory, {free:.0f} GiB free")
    yield need
    torch.cuda.empty_cache()


def _randn(*shape, dtype=torch.bfloat16, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, device="cuda", dtype=dtype).mul_(scale)


@pytest.mark.gpu
def test_bidirectional_gla_forward_over_2_31_elements(cuda_memory):
    """ViG's layout (q, k, v views of one fused projection) at B=48, N=50176, H=8, d=64: the fused
    input has 3.7e9 elements and the kernel's (2, B, N, H, dv) buffer 2.5e9. About 30 GiB."""
    from zoo.kernels.gated_linear_attention import bidirectional_gla, bigla_chunked
    cuda_memory(34)
    B, N, H, d = 48, 50176, 8, 64
    qkv = _randn(B, N, H * 3 * d)
    gates = torch.empty(B, N, 2 * H * d, device="cuda", dtype=torch.bfloat16).uniform_(-0.1, 0.0)
    q, k, v = (t.unflatten(-1, (H, d)) for t in qkv.split(H * d, dim=-1))
    a_f, a_b = (t.unflatten(-1, (H, d)) for t in gates.chunk(2, dim=-1))
    assert qkv.numel() > LIMIT and 2 * B * N * H * d > LIMIT
    with torch.no_grad():
        out = bidirectional_gla(q, k, v, a_f, a_b, impl="triton")
        for b, h in [(0, 0), (B // 2, 3), (B - 1, H - 1)]:
            piece = [t[b:b + 1, :, h:h + 1].float() for t in (q, k, v, a_f, a_b)]
            assert_close(f"o[{b}, :, {h}]", out[b:b + 1, :, h:h + 1], bigla_chunked(*piece))


@pytest.mark.gpu
def test_bidirectional_gla_gradients_with_a_batch_stride_past_2_31(cuda_memory):
    """Three batch elements 2^30 elements apart in one storage of 2.2e9 (the kernels read any
    strides): the last batch's offsets pass 2^31, forward and backward. About 13 GiB."""
    from zoo.kernels.gated_linear_attention import bidirectional_gla, bigla_chunked
    cuda_memory(16)
    B, N, H, d = 3, 4096, 4, 64
    row = H * 3 * d
    stride_b = 2 ** 30 + N * row
    storage = torch.empty(B * stride_b, device="cuda", dtype=torch.bfloat16)
    gate_storage = torch.empty(B * stride_b, device="cuda", dtype=torch.bfloat16)
    assert storage.numel() > LIMIT and (B - 1) * stride_b > LIMIT

    def view(store, offset, width):
        return store.as_strided((B, N, H, d), (stride_b, width, d, 1), offset)
    for b in range(B):  # only the batch elements' own rows hold data
        storage[b * stride_b:b * stride_b + N * row].normal_()
        gate_storage[b * stride_b:b * stride_b + N * 2 * H * d].uniform_(-0.1, 0.0)
    inputs = [view(storage, i * H * d, row) for i in range(3)]
    inputs += [view(gate_storage, i * H * d, 2 * H * d) for i in range(2)]
    inputs = [t.requires_grad_() for t in inputs]
    out = bidirectional_gla(*inputs, impl="triton")
    do = _randn(*out.shape)
    grads = torch.autograd.grad(out, inputs, do)
    for b, h in [(0, 0), (B - 1, H - 1)]:
        piece = [t.detach()[b:b + 1, :, h:h + 1].float().requires_grad_() for t in inputs]
        expected = bigla_chunked(*piece)
        assert_close(f"o[{b}, :, {h}]", out[b:b + 1, :, h:h + 1], expected)
        expected_grads = torch.autograd.grad(expected, piece, do[b:b + 1, :, h:h + 1].float())
        for name, g, e in zip(("q", "k", "v", "a_f", "a_b"), grads, expected_grads):
            assert_close(f"d{name}[{b}, :, {h}]", g[b:b + 1, :, h:h + 1], e)


@pytest.mark.gpu
def test_gaussian_attention_over_2_31_elements(cuda_memory):
    """SOFT stage 1 at 224^2 (N=3136 tokens, 49 landmarks, 2 heads of 32) at batch 11008:
    q, v and X have 2.2e9 elements each. Forward and backward, about 30 GiB."""
    from zoo.kernels.gaussian_attention import gaussian_attention, gaussian_attention_reference
    cuda_memory(34)
    B, H, N, m, d = 11008, 2, 3136, 49, 32
    q = _randn(B, H, N, d, scale=d ** -0.25).requires_grad_()
    v = _randn(B, H, N, d).requires_grad_()
    landmarks = _randn(B, H, m, d, dtype=torch.float32, scale=0.3).requires_grad_()
    mixing = _randn(B, H, m, m, dtype=torch.float32, scale=1 / m).requires_grad_()
    assert q.numel() > LIMIT
    out = gaussian_attention(q, landmarks, mixing, v, impl="triton")
    dx = _randn(*out.shape)
    grads = torch.autograd.grad(out, (q, landmarks, mixing, v), dx)
    for b, h in [(0, 0), (B // 2, 1), (B - 1, H - 1)]:
        piece = [t.detach()[b:b + 1, h:h + 1].float().requires_grad_() for t in (q, landmarks, mixing, v)]
        expected = gaussian_attention_reference(*piece)
        assert_close(f"X[{b}, {h}]", out[b:b + 1, h:h + 1], expected)
        expected_grads = torch.autograd.grad(expected, piece, dx[b:b + 1, h:h + 1].float())
        for name, g, e in zip(("q", "landmarks", "mixing", "v"), grads, expected_grads):
            assert_close(f"d{name}[{b}, {h}]", g[b:b + 1, h:h + 1], e, ratio=BF16)


@pytest.mark.gpu
def test_linear_attention_over_2_31_elements(cuda_memory):
    """RALA with RoPE on the models' channels-first views at B=84, 8 heads, N=224^2, d=64: q, k, v
    are views of a (B, 3 * 8 * 64, N) projection of 6.5e9 elements, Y has 2.2e9. Forward and
    backward, about 36 GiB."""
    from zoo.kernels.linear_attention import linear_attention, linear_attention_reference
    cuda_memory(40)
    B, heads, N, d, grid = 84, 8, 50176, 64, (224, 224)
    fused = _randn(B, 3 * heads * d, N)
    q, k, v = (t.view(B, heads, d, N).transpose(-1, -2).requires_grad_() for t in fused.detach().chunk(3, dim=1))
    out = linear_attention(q, k, v, variant="rala", rope_hw=grid, impl="triton")
    assert out.numel() > LIMIT
    dy = _randn(*out.shape)
    grads = torch.autograd.grad(out, (q, k, v), dy)
    for b, h in [(0, 0), (B - 1, heads - 1)]:
        piece = [t.detach()[b:b + 1, h:h + 1].float().requires_grad_() for t in (q, k, v)]
        expected = linear_attention_reference(*piece, variant="rala", rope_hw=grid)
        assert_close(f"Y[{b}, {h}]", out[b:b + 1, h:h + 1], expected)
        expected_grads = torch.autograd.grad(expected, piece, dy[b:b + 1, h:h + 1].float())
        for name, g, e in zip("qkv", grads, expected_grads):
            assert_close(f"d{name}[{b}, {h}]", g[b:b + 1, h:h + 1], e)


def _lif_slices(numel: int) -> list[slice]:
    width = 2 ** 20
    return [slice(0, width), slice(numel // 2, numel // 2 + width), slice(numel - width, numel)]


@pytest.mark.gpu
def test_multistep_lif_inference_with_more_than_2_31_neurons_per_step(cuda_memory):
    """T=2 steps of 2^31 + 2^20 neurons (4.3e9 elements; the neuron count itself needs int64).
    Spikes are exact. About 17 GiB."""
    from zoo.kernels.lif import multistep_lif, multistep_lif_reference
    cuda_memory(20)
    T, n = 2, LIMIT + 2 ** 20
    x = _randn(T, n, scale=1.2).add_(0.8)
    with torch.no_grad():
        spikes = multistep_lif(x, impl="triton")
        for part in _lif_slices(n):
            expected = multistep_lif_reference(x[:, part])
            assert torch.equal(spikes[:, part], expected), f"spikes differ in neurons {part}"


@pytest.mark.gpu
def test_multistep_lif_training_over_2_31_elements(cuda_memory):
    """T=2 steps of 2^30 + 2^20 neurons (2.15e9 elements), forward and BPTT backward. About 26 GiB."""
    from zoo.kernels.lif import multistep_lif, multistep_lif_reference
    cuda_memory(30)
    T, n = 2, 2 ** 30 + 2 ** 20
    x = _randn(T, n, scale=1.2).add_(0.8).requires_grad_()
    assert x.numel() > LIMIT
    spikes = multistep_lif(x, impl="triton")
    grad = _randn(T, n)
    (dx,) = torch.autograd.grad(spikes, x, grad)
    for part in _lif_slices(n):
        piece = x.detach()[:, part].requires_grad_()
        expected = multistep_lif_reference(piece)
        assert torch.equal(spikes[:, part], expected), f"spikes differ in neurons {part}"
        (expected_dx,) = torch.autograd.grad(expected, piece, grad[:, part])
        assert_close(f"dx[:, {part.start}:{part.stop}]", dx[:, part], expected_dx)
