"""Package discovery for the one distribution `zoo`.

The repository keeps three top-level folders (`kernels/`, `train/`, `configs/`)
that install *inside* `zoo` (see DESIGN.md): `pyproject.toml` maps the folders,
and this file lists the packages under their installed names, so that no
top-level `kernels` or `train` package ever reaches site-packages.
"""
from setuptools import find_packages, setup

MAPPED = {"kernels": "zoo.kernels", "train": "zoo.train", "configs": "zoo.configs"}


def _packages() -> list[str]:
    packages = find_packages(include=["zoo", "zoo.*"])
    for folder, name in MAPPED.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]
    return packages


setup(packages=_packages())
