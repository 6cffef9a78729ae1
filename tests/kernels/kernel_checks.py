"""What every kernel test shares: where the Triton path runs, and the one `assert_close`.

The Triton path runs on a CUDA device, or on CPU under Triton's interpreter when the test
command sets TRITON_INTERPRET=1 (`make test` does; no conftest sets it). Without either, the
tests that run it skip and say why.
"""
from __future__ import annotations

import pytest
import torch

from zoo.kernels._dispatch import triton_available, triton_interpreted

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRITON = triton_available() and (torch.cuda.is_available() or triton_interpreted())
needs_triton = pytest.mark.skipif(
    not TRITON, reason="the Triton path needs a CUDA device, or TRITON_INTERPRET=1 in the environment of the "
                       "test command for Triton's CPU interpreter (`make test` sets it)")
needs_interpreter = pytest.mark.skipif(
    not (triton_available() and triton_interpreted()),
    reason="runs the Triton path on CPU tensors: needs TRITON_INTERPRET=1 in the test command's environment")
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU-only check (on a GPU machine it would "
                                                                "spend the device session compiling for the CPU)")

# The error allowed relative to the compared tensor's magnitude, by the dtype of the less precise side.
# float32: the kernels accumulate in fp32 like the references; only summation order differs.
# bfloat16 / float16: the references compute in fp32 and round once at the end; the kernels
# accumulate in fp32 but may also multiply 16-bit operands on tl.dot (linear attention, GLA), so
# they differ by the final rounding plus a few 16-bit roundings of intermediates (a unit roundoff
# is 2^-8 = 3.9e-3 for bf16, 2^-11 for fp16; Triton's interpreter truncates fp32 -> bf16 where the
# GPU and PyTorch round to nearest). Measured bf16 linear attention: rms error / rms 4e-3 .. 7e-3.
RATIO = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 1e-2, torch.float16: 1e-2}


def assert_close(name: str, actual: torch.Tensor, expected: torch.Tensor, ratio: float | None = None,
                 magnitude: float = 0.0) -> None:
    """actual ~ expected relative to expected's magnitude (as flash-linear-attention's tests judge):
    RMS(error) <= ratio * RMS(expected) and max|error| <= 10 * ratio * max|expected|.

    ratio: by default RATIO of the less precise of the two dtypes (a float32 kernel against a
    float64 reference is judged as float32). magnitude: a floor for RMS and max of expected, for
    a tensor that is zero in exact arithmetic but computed from terms of that size.
    """
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    if ratio is None:
        ratio = max(RATIO[actual.dtype], RATIO[expected.dtype])
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    assert torch.isfinite(a).all(), f"{name}: non-finite values"
    rms_err, rms_ref = (a - e).pow(2).mean().sqrt().item(), max(e.pow(2).mean().sqrt().item(), magnitude)
    max_err, max_ref = (a - e).abs().max().item(), max(e.abs().max().item(), magnitude)
    assert rms_err <= ratio * rms_ref, f"{name}: rms error {rms_err:.3e} > {ratio:g} x rms {rms_ref:.3e}"
    assert max_err <= 10 * ratio * max_ref, f"{name}: max error {max_err:.3e} > {10 * ratio:g} x max {max_ref:.3e}"
