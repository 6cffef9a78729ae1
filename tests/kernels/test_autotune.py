"""zoo.kernels._autotune: under the interpreter the first candidate runs; the wrappers unwrap."""
import pytest
import torch
from kernel_checks import needs_interpreter

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from zoo.kernels._autotune import autotune, base_jit_function, tuned_configs  # noqa: E402

CONFIGS = [triton.Config({"BLOCK": 16}, num_warps=1), triton.Config({"BLOCK": 32}, num_warps=2)]


@autotune(CONFIGS, key=["n"])
@triton.jit
def _write_block(out, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out + offs, tl.zeros([BLOCK], dtype=tl.int32) + BLOCK, mask=offs < n)


def _run(n: int) -> torch.Tensor:
    out = torch.zeros(n, dtype=torch.int32)
    _write_block[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](out, n)
    return out


@needs_interpreter
def test_the_interpreter_runs_the_first_candidate_over_the_whole_grid():
    out = _run(40)  # 3 programs of 16, the last one masked
    assert out.tolist() == [16] * 40


def test_the_candidates_and_the_jit_function_are_found_through_the_wrappers():
    assert [c.kwargs for c in tuned_configs(_write_block)] == [{"BLOCK": 16}, {"BLOCK": 32}]
    inner = base_jit_function(_write_block)
    assert tuned_configs(inner) is None and inner.fn.__name__ == "_write_block"


def test_an_empty_candidate_list_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        autotune([], key=["n"])
