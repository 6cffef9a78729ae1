"""Fused kernels (Triton) with plain-PyTorch references; installed as `zoo.kernels`.

Each operation is a PyTorch op in the `zoo` namespace (`torch.ops.zoo.linear_attention`,
`bidirectional_gla`, `gaussian_attention`, `multistep_lif`, and the Triton paths' backwards),
registered when its package is imported, so `torch.compile(fullgraph=True)`, `torch.export`
and `FlopCounterMode` see it. One dispatch (`_dispatch.py`) chooses the path (ZOO_KERNELS_IMPL,
the device, TRITON_INTERPRET) and checks the inputs for every op.

Nothing here imports Triton at import time: each operation imports it lazily
on its Triton path, so `import zoo` stays cheap and works without a GPU.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ._dispatch import triton_interpreted

__all__ = ["reference_decompositions", "triton_interpreted"]


def reference_decompositions() -> dict[torch._ops.OpOverload, Callable[..., object]]:
    """Every zoo op -> its plain-PyTorch reference, for `ExportedProgram.run_decompositions`.

    torch.onnx.export applies these by itself; pass them to run_decompositions for a program of
    ATen ops only (another exporter, a runtime without the zoo installed).
    """
    from . import _dispatch, gated_linear_attention, gaussian_attention, lif, linear_attention  # noqa: F401 (registers)
    return _dispatch.reference_decompositions()
