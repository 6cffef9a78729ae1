"""Fused kernels (Triton) with plain-PyTorch references; installed as `zoo.kernels`.

Each operation is a PyTorch op in the `zoo` namespace (`torch.ops.zoo.linear_attention`,
`bidirectional_gla`, `gaussian_attention`, `multistep_lif`, and the Triton paths' backwards),
registered when its package is imported, so `torch.compile(fullgraph=True)`, `torch.export`
and `FlopCounterMode` see it. One dispatch (`_dispatch.py`) chooses the path (ZOO_KERNELS_IMPL,
the device, TRITON_INTERPRET) and checks the inputs for every op.

Nothing here imports Triton at import time: each operation imports it lazily
on its Triton path, so `import zoo` stays cheap and works without a GPU.
"""
