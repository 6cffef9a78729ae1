"""Fused kernels (Triton) with plain-PyTorch references; installed as `zoo.kernels`.

Nothing here imports Triton at import time: each operation imports it lazily
on its Triton path, so `import zoo` stays cheap and works without a GPU.
"""
