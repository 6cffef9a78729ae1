"""Run the Gaussian-attention Triton kernels on CPU: the interpreter must be on before Triton loads them."""
import os

os.environ["TRITON_INTERPRET"] = "1"
