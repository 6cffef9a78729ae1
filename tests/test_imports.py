"""The layers import one way (docs/ARCHITECTURE.md), checked on the source's syntax tree, without importing it.

- kernels/ (zoo.kernels) never imports the rest of zoo: kernels know nothing of models;
- zoo outside zoo/cli never imports zoo.train or zoo.mm: the models do not depend on their consumers;
- no module outside zoo/models imports a private `zoo.models._*` module: other code uses zoo.models' public names.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The repository's folders and the packages pyproject.toml installs them as.
PACKAGES = {"zoo": "zoo", "kernels": "zoo.kernels", "train": "zoo.train", "configs": "zoo.configs"}


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [PACKAGES[folder], *rest]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every module `source` imports, relative imports resolved, `from a import b` counted as a and a.b."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def package_modules() -> dict[str, set[str]]:
    out = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = module_name(path)
            out[name] = imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
    return out


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_imports_are_resolved_from_the_syntax_tree():
    """The checker itself: relative imports resolve against the package, `from . import x` names x."""
    found = imported_modules("from . import models\nfrom ..layers.ggem import GGeM\nimport zoo.train\n",
                             "zoo.models.ravlt", is_package=False)
    assert {"zoo.models.models", "zoo.layers.ggem", "zoo.layers.ggem.GGeM", "zoo.train"} <= found
    assert "zoo.models._features" in imported_modules("from ._features import feature_take_indices\n",
                                                      "zoo.models", is_package=True)
    assert module_name(ROOT / "kernels" / "lif" / "__init__.py") == "zoo.kernels.lif"


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    found = package_modules()
    assert "zoo.models.ravlt" in found and "zoo.kernels" in found and "zoo.train.trainer" in found
    return found


# Modules of kernels/ that may import zoo, each with the reason (keep it short; move such code out instead).
KERNEL_MODULES_IMPORTING_ZOO: dict[str, str] = {}


def test_kernels_never_import_zoo(imports):
    bad = {m: sorted(i for i in deps if within(i, "zoo") and not within(i, "zoo.kernels"))
           for m, deps in imports.items() if within(m, "zoo.kernels") and m not in KERNEL_MODULES_IMPORTING_ZOO}
    assert not {m: d for m, d in bad.items() if d}, "kernels/ imports the models or their consumers"


def test_zoo_outside_cli_never_imports_train_or_mm(imports):
    consumers = ("zoo.train", "zoo.mm", "zoo.cli")  # zoo.mm may import zoo; zoo may not import zoo.mm
    bad = {m: sorted(i for i in deps if within(i, "zoo.train") or within(i, "zoo.mm"))
           for m, deps in imports.items()
           if within(m, "zoo") and not any(within(m, c) for c in consumers) and not within(m, "zoo.kernels")}
    assert not {m: d for m, d in bad.items() if d}, "zoo imports zoo.train or zoo.mm outside zoo/cli"


def test_private_model_modules_stay_inside_zoo_models(imports):
    def private_models_module(name: str) -> bool:
        parts = name.split(".")
        return parts[:2] == ["zoo", "models"] and len(parts) > 2 and parts[2].startswith("_")

    bad = {m: sorted(i for i in deps if private_models_module(i))
           for m, deps in imports.items() if not within(m, "zoo.models")}
    assert not {m: d for m, d in bad.items() if d}, "import the public names of zoo.models instead"


def test_the_split_flax_convert_keeps_its_old_names_with_a_warning():
    import zoo.flax_convert
    import zoo.models.maxim
    import zoo.pretrained

    with pytest.warns(DeprecationWarning, match="moved to zoo.pretrained.load_npz"):
        assert zoo.flax_convert.load_npz is zoo.pretrained.load_npz
    with pytest.warns(DeprecationWarning, match="moved to zoo.models.maxim.conv_kernel"):
        assert zoo.flax_convert.conv_kernel is zoo.models.maxim.conv_kernel
    with pytest.raises(AttributeError):
        _ = zoo.flax_convert.no_such_name
