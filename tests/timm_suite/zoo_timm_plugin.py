"""pytest plugin for timm's tests/test_models.py run on the zoo (tests/timm_suite/run.py loads it).

- imports zoo, so its models are registered before timm's test file lists them;
- keeps only the zoo's smallest variant of each family (tests/exporting.py), deselecting
  timm's own models;
- skips the tests that download weights unless ZOO_TIMM_SUITE_DOWNLOADS=1;
- marks the declared exceptions xfail (strict): each names the attribute or card that
  declares it.
"""
from __future__ import annotations

import os

import pytest

import zoo  # noqa: F401  (registers the zoo's models with timm)

# What a timm pull request adding the zoo would add to timm's NON_STD_FILTERS: models whose
# forward_features is not an NCHW / NHWC map (token sequences, a cls token). run.py writes
# them into its copy of the test file. GGeM's vit_*_ggem models match timm's 'vit_*' already.
ZOO_NON_STD_FILTERS = ("inline_deit_*", "vig_[tsb]", "soft_*")

# ... and to timm's FEAT_INTER_FILTERS: the modules (registry names) of the families, all of which have
# forward_intermediates and work with timm's FeatureGetterNet.
ZOO_FEAT_INTER_FILTERS = ("ravlt", "inline", "soft", "vig", "inception_transformer", "poolformerv1", "maxformer",
                          "maxim", "ggem")

# Tests that download pretrained weights: they need the network and the official files.
DOWNLOAD_TESTS = ("test_model_inference", "test_model_load_pretrained", "test_model_features_pretrained")

# (test function, model family prefix) -> why it cannot pass, and where that is declared.
_TORCHSCRIPT = ("TorchScript is not supported: torch.jit.script is deprecated (torch 2.14 warns: use torch.compile "
                "or torch.export) and the zoo's kernel dispatch is Python; torch.export is (tests/test_export.py)")
DECLARED_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("test_model_default_cfgs", "maxformer_"): "MaxFormer.features_fmt = 'NTCHW': forward_features keeps the time "
                                               "steps (B, T, C, H, W); timm's check assumes a 4-D map",
    ("test_model_default_cfgs", "maxim_"): "MAXIM restores images: forward_features returns every stage's "
                                           "restored image (a list), not one feature map",
    ("test_model_backward", "maxim_"): "MAXIM restores images: no classifier (num_classes=42 is refused)",
    ("test_prune_intermediate_layers_contract", "maxim_"): "a MAXIM pruned to its encoder features has no "
                                                           "restoration path: forward_features says so (an error)",
    ("test_model_backward_fx", "maxim_"): "MAXIM restores images: no classifier (num_classes=42 is refused)",
    **{(test, ""): _TORCHSCRIPT for test in ("test_model_forward_torchscript", "test_model_forward_fx_torchscript")},
}
# ... except where it passes: PoolFormer v1's FX graph (no zoo kernel, no input checks left) scripts.
DECLARED_TO_PASS: dict[str, tuple[str, ...]] = {"test_model_forward_fx_torchscript": ("poolformerv1_",)}


def _zoo_models() -> set[str]:
    from exporting import smallest_by_family  # tests/exporting.py: each family's smallest variant

    return {row.name for row in smallest_by_family().values()}


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): pytest-timeout's (not installed: ignored)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    models = _zoo_models()
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        name = params.get("model_name")
        architecture = name.split(".")[0] if isinstance(name, str) else None  # timm lists some as name.tag
        (keep if architecture in models else drop).append(item)
        if architecture not in models:
            continue
        test = item.originalname
        if test in DOWNLOAD_TESTS and os.environ.get("ZOO_TIMM_SUITE_DOWNLOADS") != "1":
            item.add_marker(pytest.mark.skip(reason="downloads weights (ZOO_TIMM_SUITE_DOWNLOADS=1 runs it)"))
        for (declared_test, prefix), reason in DECLARED_EXCEPTIONS.items():
            passes = name.startswith(DECLARED_TO_PASS.get(test, ()))
            if test == declared_test and name.startswith(prefix) and not passes:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
