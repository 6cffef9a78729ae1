"""torch.compile (Inductor) and torch.export of each kernel family's small model on the Triton path, on CUDA.

The CPU suite compiles and exports the same models with the ops on their reference path
(test_ops.py); here the ops run their compiled Triton kernels ('auto' on CUDA), so Inductor has to
keep each op as an extern call around fused code, and the exported program has to call it.
`.ci/gpu-check` runs this file as its own step (compile time is the cost).
"""
from __future__ import annotations

import pytest
import torch
from kernel_checks import assert_close
from test_ops import FAMILIES, KERNEL_OPS, _model


@pytest.mark.gpu
@pytest.mark.parametrize("family", FAMILIES)
def test_compile_and_export_match_eager_on_the_triton_path(family, monkeypatch):
    monkeypatch.delenv("ZOO_KERNELS_IMPL", raising=False)  # 'auto': the Triton path on CUDA
    torch.manual_seed(0)
    model, image = _model(family)
    model, image = model.cuda().eval(), image[:2].cuda()
    op = getattr(torch.ops.zoo, KERNEL_OPS[family]).default
    with torch.no_grad():
        eager = model(image)
        torch._dynamo.reset()
        compiled = torch.compile(model, fullgraph=True)(image)
        exported = torch.export.export(model, (image,))
        from_export = exported.module()(image)
    graphs = [m.graph for m in exported.graph_module.modules() if isinstance(m, torch.fx.GraphModule)]
    assert any(node.target == op for graph in graphs for node in graph.nodes), f"{op} not in the exported graph"
    # As on CPU: SOFT's Newton steps amplify float32 rounding by about K2's condition number (~1e3).
    ratio = 1e3 * torch.finfo(torch.float32).eps if family == "soft" else None
    assert_close("torch.compile (Inductor)", compiled, eager, ratio)
    assert_close("torch.export", from_export, eager, ratio)
