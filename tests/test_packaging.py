"""The wheel: one package `zoo` holding zoo.kernels, zoo.train and the configs."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# One worker builds the wheel once: two pip builds of one tree race on its build/ and egg-info folders.
pytestmark = pytest.mark.xdist_group("wheel")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = out.glob("zoo_backbones-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_wheel_maps_the_folders_into_zoo(wheel_names):
    for module in ("zoo/__init__.py", "zoo/models/ravlt.py", "zoo/layers/__init__.py",
                   "zoo/kernels/__init__.py", "zoo/train/__init__.py", "zoo/configs/__init__.py"):
        assert module in wheel_names, module


def test_wheel_has_no_top_level_kernels_or_train(wheel_names):
    top_level = {n.split("/")[0] for n in wheel_names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"zoo"}


def test_wheel_ships_every_config_and_subpackage(wheel_names):
    for folder, package in (("configs", "zoo/configs"), ("kernels", "zoo/kernels"), ("train", "zoo/train")):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                assert f"{package}/{path.relative_to(ROOT / folder).as_posix()}" in wheel_names, path


def test_wheel_ships_the_card_metadata(wheel_names):
    # zoo-convert writes a model's card from these files in an installed wheel.
    for path in (ROOT / "zoo" / "metadata").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in wheel_names, path
