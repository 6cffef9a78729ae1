"""Fixtures of the training tests."""
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory) -> Path:
    """One digits image folder for the whole session (written on first use)."""
    return tmp_path_factory.mktemp("zoo_cache")
