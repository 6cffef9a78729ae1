"""Kernel tests run the Triton kernels on CPU through the interpreter.

TRITON_INTERPRET must be in the environment before `triton` is first imported
(triton reads it at import); this conftest is loaded before any test module of
this folder and before the zoo's lazily-imported Triton modules.
"""
import os
import sys

if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1" and not os.environ.get("ZOO_GPU_TESTS"):
    import warnings
    warnings.warn("triton was imported before tests/kernels_gla/conftest.py set TRITON_INTERPRET=1; "
                  "run this folder on its own if the Triton tests fail with 'outside of the scope of a kernel'")
os.environ.setdefault("TRITON_INTERPRET", "1")
