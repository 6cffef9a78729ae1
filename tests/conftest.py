import os

import pytest
import torch

# Under pytest-xdist every worker gets one thread (workers x threads = cores; oversubscribed
# OpenMP threads spin and slow everything several-fold); a plain run uses up to two.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))


def _contract_row(item) -> str:
    callspec = getattr(item, "callspec", None)
    row = callspec.params.get("row") if callspec else None
    return getattr(row, "name", "")


def pytest_collection_modifyitems(config, items):
    # Run all contract checks of one model back to back, so each model is built
    # once per worker (test_contract caches the last model built).
    contract = [i for i in items if i.path.name == "test_contract.py"]
    if contract:
        first = items.index(contract[0])
        rest = [i for i in items if i.path.name != "test_contract.py"]
        items[:] = rest[:first] + sorted(contract, key=_contract_row) + rest[first:]
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (run on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
