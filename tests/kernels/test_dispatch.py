"""The one dispatch every kernel op shares (zoo.kernels._dispatch) and its input checks, op by op.

Each class of bad input gets a ValueError naming the op, the argument, what was given and what
is expected: integer tensors (before: a silently truncated int64 result), a forced Triton path on
CPU without the interpreter (before: Triton's '0 active drivers'), a zero head dim (before: a
ZeroDivisionError), inputs on two devices.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kernel_checks import DEVICE, needs_triton

from zoo.kernels import _dispatch
from zoo.kernels.gated_linear_attention import bidirectional_gla
from zoo.kernels.gaussian_attention import gaussian_attention
from zoo.kernels.lif import multistep_lif
from zoo.kernels.linear_attention import linear_attention


def _randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)), dtype=dtype)


def _case(op: str, d: int = 16, batch: int = 1, dtype=torch.float32):
    """(public function of op, its tensor inputs, the names of the inputs) for a small valid problem."""
    if op == "linear_attention":
        return (lambda *t, impl=None: linear_attention(*t, variant="mala", impl=impl or "auto"),
                [_randn(batch, 2, 12, d, dtype=dtype) for _ in range(3)], ["q", "k", "v"])
    if op == "bidirectional_gla":
        q, k, v = (_randn(batch, 9, 2, size, dtype=dtype) for size in (d, d, 32))
        gates = [(F.logsigmoid(_randn(batch, 9, 2, d)) / 16).to(dtype) for _ in range(2)]
        return bidirectional_gla, [q, k, v, *gates], ["q", "k", "v", "a_f", "a_b"]
    if op == "gaussian_attention":
        return (gaussian_attention,
                [_randn(batch, 2, 20, d, dtype=dtype), _randn(batch, 2, 5, d, dtype=dtype), _randn(batch, 2, 5, 5),
                 _randn(batch, 2, 20, 16, dtype=dtype)], ["q", "landmarks", "mixing", "v"])
    return multistep_lif, [_randn(3, batch, 40, dtype=dtype)], ["x"]


OPS = ["linear_attention", "bidirectional_gla", "gaussian_attention", "multistep_lif"]


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("ON", True), ("yes", True), ("y", True),
                                       ("0", False), ("", False), ("off", False), ("2", False)])
def test_interpreter_is_read_as_triton_reads_it(value, on, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", value)
    assert _dispatch.triton_interpreted() is on
    if _dispatch.triton_available():
        from triton import knobs
        assert knobs.runtime.interpret is on


def test_requested_impl_argument_then_environment(monkeypatch):
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    assert _dispatch.requested_impl("op", None) == "auto"
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "reference")
    assert _dispatch.requested_impl("op", None) == "reference"
    assert _dispatch.requested_impl("op", "auto") == "reference"
    assert _dispatch.requested_impl("op", "triton") == "triton"  # the argument wins
    with pytest.raises(ValueError, match=r"^op: impl must be one of \('auto', 'triton', 'reference'\), got 'cuda'"):
        _dispatch.requested_impl("op", "cuda")
    monkeypatch.setenv("ZOO_KERNELS_IMPL", "gpu")
    with pytest.raises(ValueError, match="^op: environment variable ZOO_KERNELS_IMPL must be one of .* got 'gpu'"):
        _dispatch.requested_impl("op", None)


def test_resolve_impl_by_device_and_support(monkeypatch):
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert _dispatch.resolve_impl("op", "auto", cuda) == "triton"
    assert _dispatch.resolve_impl("op", "auto", cuda, "dtype in (...)") == "reference"  # auto never fails
    assert _dispatch.resolve_impl("op", "auto", cpu) == "reference"
    assert _dispatch.resolve_impl("op", "reference", cuda) == "reference"
    with pytest.raises(ValueError, match=r"^op: the Triton path \(impl='triton'\) needs head dim 16; use"):
        _dispatch.resolve_impl("op", "triton", cuda, "head dim 16")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert "CUDA tensors, got device cpu" in _dispatch.triton_unsupported(cpu)
    assert _dispatch.triton_unsupported(cpu, [torch.float64]).startswith("dtype in (float16, bfloat16, float32)")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _dispatch.triton_unsupported(cpu, [torch.float32]) is None or not _dispatch.triton_available()


@pytest.mark.parametrize("op", OPS)
def test_integer_inputs_are_refused(op):
    fn, tensors, names = _case(op)
    for i, name in enumerate(names):
        bad = list(tensors)
        bad[i] = (bad[i] * 4).to(torch.int64)
        with pytest.raises(ValueError, match=rf"^{op}: {name} must have a floating dtype \(float16, bfloat16, "
                                             rf"float32, float64\), got torch.int64; cast it first"):
            fn(*bad, impl="reference")


@pytest.mark.parametrize("op", OPS)
def test_forced_triton_on_cpu_without_the_interpreter(op, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    fn, tensors, _ = _case(op)
    with pytest.raises(ValueError,
                       match=rf"^{op}: the Triton path \(impl='triton'\) needs CUDA tensors, got device "
                             r"cpu \(CPU tensors run it only under Triton's interpreter: TRITON_INTERPRET=1"):
        fn(*tensors, impl="triton")


@pytest.mark.parametrize("op", OPS)
def test_forced_triton_with_float64_names_the_dtypes(op, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    fn, tensors, _ = _case(op, dtype=torch.float64)
    if op == "multistep_lif":  # the neuron's kernel has a float64 path
        from zoo.kernels.lif import _path
        assert _path(tensors[0], "triton") == "triton"
        return
    with pytest.raises(ValueError, match=rf"^{op}: the Triton path \(impl='triton'\) needs dtype in \(float16, "
                                         r"bfloat16, float32\), got float64"):
        fn(*tensors, impl="triton")


@pytest.mark.parametrize("op, message", [
    ("linear_attention", r"the head dim d must be >= 1, got 0 \(shape \(B, heads, N, d\) = \(1, 2, 12, 0\)\)"),
    ("bidirectional_gla", r"the key head dim dk must be >= 1, got 0 \(shape \(B, N, H, dk\) = \(1, 9, 2, 0\)\)"),
    ("gaussian_attention", r"the head dim d must be >= 1, got 0 \(shape q \(B, H, N, d\) = \(1, 2, 20, 0\)\)"),
])
def test_zero_head_dim(op, message):
    fn, tensors, _ = _case(op, d=0)
    with pytest.raises(ValueError, match=rf"^{op}: {message}"):
        fn(*tensors, impl="reference")


def test_zero_time_steps():
    with pytest.raises(ValueError, match=r"^multistep_lif: expects a time-major tensor \(T, \.\.\.\) with T >= 1, "
                                         r"got shape \(0, 4\)"):
        multistep_lif(torch.zeros(0, 4))


@pytest.mark.parametrize("op", OPS[:3])
def test_inputs_on_two_devices(op):
    fn, tensors, names = _case(op)
    tensors[1] = tensors[1].to("meta")
    with pytest.raises(ValueError, match=rf"^{op}: all inputs must be on one device, got {names[0]} on cpu, "
                                         rf"{names[1]} on meta"):
        fn(*tensors, impl="reference")


@pytest.mark.parametrize("impl", ["reference", pytest.param("triton", marks=needs_triton)])
@pytest.mark.parametrize("op", OPS)
def test_empty_batch(op, impl):
    fn, tensors, _ = _case(op, batch=0)
    tensors = [t.to(DEVICE).requires_grad_() for t in tensors]
    out = fn(*tensors, impl=impl)
    expected = {"linear_attention": (0, 2, 12, 16), "bidirectional_gla": (0, 9, 2, 32),
                "gaussian_attention": (0, 2, 20, 16), "multistep_lif": (3, 0, 40)}[op]
    assert out.shape == expected
    grads = torch.autograd.grad(out.sum(), tensors)
    assert [g.shape for g in grads] == [t.shape for t in tensors]


@pytest.mark.parametrize("op", ["linear_attention", "bidirectional_gla", "gaussian_attention"])
def test_eager_reference_path_runs_outside_the_op(op):
    """On the eager reference path the public function is plain PyTorch (no wrapper, no recomputed
    forward in the backward, double backward works); a dispatch mode such as FlopCounterMode sees the op."""
    fn, inputs, _ = _case(op, d=4, dtype=torch.float64)
    inputs = [t.double().requires_grad_() for t in inputs]
    out = fn(*inputs, impl="reference")
    assert "zoo" not in type(out.grad_fn).__name__.lower() and "custom" not in type(out.grad_fn).__name__.lower()
    assert torch.autograd.gradgradcheck(lambda *t: fn(*t, impl="reference"), inputs)
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn(*inputs, impl="reference")
    counted = {str(k) for k in counter.get_flop_counts().get("Global", {})}
    assert any(f"zoo.{op}" in k for k in counted), counted
