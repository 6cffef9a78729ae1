"""The kernel tests' one conftest. It never sets TRITON_INTERPRET: the test command chooses the
interpreter (`make test` sets it for the CPU suite; see kernel_checks.py). On a CUDA machine a
test marked `gpu` fails when it would run its kernels interpreted instead of compiled."""
import pytest
import torch

from zoo.kernels._dispatch import interpreted_kernels, triton_interpreted


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These tensors are tiny: one thread avoids OpenMP stalls on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _gpu_tests_run_compiled_kernels(request):
    if request.node.get_closest_marker("gpu") is None:
        yield
        return
    assert not triton_interpreted(), \
        "a GPU test under TRITON_INTERPRET=1 would test Triton's interpreter, not the GPU: unset it"
    yield
    interpreted = interpreted_kernels()
    assert not interpreted, f"a GPU test ran interpreted kernels (decorated under TRITON_INTERPRET=1): {interpreted}"
