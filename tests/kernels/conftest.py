"""Run the linear-attention kernel tests' Triton path on CPU through Triton's interpreter.

TRITON_INTERPRET must be set before a @triton.jit function is created; the
kernel module is imported lazily (only when the Triton path first runs), so
setting it here, at collection time, is early enough. On a CUDA machine the
real kernels run instead.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
