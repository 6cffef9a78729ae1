"""What test_export.py and test_onnx.py share: the families, each family's smallest variant, one
`torch.export` per model and process, and the eager-vs-exported comparison.

A family is a set of registered names built by one architecture's code path (RAVLT and MAViT share a
class but not their attention; SOFT and SOFT-Norm likewise), so each is exported once in the default
run. Every registered name belongs to exactly one family (a test checks it): a new family needs a line
in FAMILY_PREFIXES.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import pytest
import torch
from rows import ModelRow, all_rows
from torch.utils._pytree import tree_leaves

import zoo

# Registered-name prefix -> family. The longest matching prefix wins (soft_norm_* before soft_*).
FAMILY_PREFIXES = {
    "inception_transformer_": "inception_transformer",
    "inline_cswin_": "inline_cswin", "inline_deit_": "inline_deit", "inline_pvt_": "inline_pvt",
    "inline_swin_": "inline_swin",
    "mavit_": "mavit", "ravlt_": "ravlt",
    "maxformer_": "maxformer",
    "maxim_": "maxim",
    "poolformerv1_": "poolformerv1",
    "soft_norm_": "soft_norm", "soft_": "soft",
    "vig_h_": "vig_h", "vig_": "vig",
    "vit_": "ggem_vit",
}

EXAMPLE_BATCH = 2  # the batch size the graph is traced at (not 0 or 1, which export would specialise)
BATCHES = (1, 3)   # the batch sizes the exported graph is checked at
F32_EPS = torch.finfo(torch.float32).eps

ALL_ROWS = all_rows()


def family_of(name: str) -> str:
    matches = [p for p in FAMILY_PREFIXES if name.startswith(p)]
    if not matches:
        raise KeyError(f"{name} belongs to no family: add its prefix to FAMILY_PREFIXES in tests/exporting.py")
    return FAMILY_PREFIXES[max(matches, key=len)]


@functools.cache
def smallest_by_family() -> dict[str, ModelRow]:
    """Each family's variant with the fewest parameters (ties: the first name)."""
    smallest: dict[str, ModelRow] = {}
    for row in ALL_ROWS:
        family = family_of(row.name)
        if family not in smallest or row.params < smallest[family].params:
            smallest[family] = row
    return dict(sorted(smallest.items()))


def family_params(expected_failures: dict[str, str] | None = None) -> list:
    """One pytest param per family (its smallest variant), id `family-name`, xfail(strict) where listed.

    The xdist group is the model's, so under `--dist loadgroup` one worker exports it once for both files.
    """
    failures = expected_failures or {}
    return [pytest.param(row, id=f"{family}-{row.name}",
                         marks=[pytest.mark.xdist_group(f"export-{row.name}")]
                         + ([pytest.mark.xfail(reason=failures[family], strict=True)] if family in failures else []))
            for family, row in smallest_by_family().items()]


def image(row: ModelRow, batch: int) -> torch.Tensor:
    return torch.randn(batch, *row.input_size, generator=torch.Generator().manual_seed(batch))


def build(row: ModelRow) -> torch.nn.Module:
    torch.manual_seed(0)
    return zoo.create_model(row.name, **{"drop_path_rate": 0.0, **row.create_kwargs}).eval()


_EXPORTS: dict[str, tuple[torch.nn.Module, torch.export.ExportedProgram]] = {}


def exported(name: str) -> tuple[torch.nn.Module, torch.export.ExportedProgram]:
    """The eval model and its `torch.export` with a dynamic batch dimension (built once per process)."""
    if name not in _EXPORTS:
        row = next(r for r in ALL_ROWS if r.name == name)
        model = build(row)
        batch = torch.export.Dim("batch", min=1, max=1024)
        with torch.no_grad():
            _EXPORTS[name] = model, torch.export.export(model, (image(row, EXAMPLE_BATCH),),
                                                        dynamic_shapes=({0: batch},))
    return _EXPORTS[name]


def forget(name: str) -> None:
    """Drop a cached export (and its model's weights) once the last check that needs it has run."""
    _EXPORTS.pop(name, None)


def assert_outputs_match(run: Callable[[torch.Tensor], object], model: torch.nn.Module, row: ModelRow,
                         ulps: float, batches: Sequence[int] = BATCHES) -> None:
    """`run(x)` gives the eager model's output at every batch size, within `ulps` float32 ulps of each
    output's largest magnitude."""
    for batch in batches:
        x = image(row, batch)
        with torch.no_grad():
            expected = tree_leaves(model(x))
        got = tree_leaves(run(x))
        assert len(got) == len(expected), f"batch {batch}: {len(got)} outputs, eager gives {len(expected)}"
        for out, ref in zip(got, expected):
            out = torch.as_tensor(out)
            assert out.shape == ref.shape, f"batch {batch}: output shape {tuple(out.shape)}, eager {tuple(ref.shape)}"
            torch.testing.assert_close(out, ref, rtol=0, atol=ulps * F32_EPS * ref.abs().max().item(),
                                       msg=lambda m, batch=batch: f"batch {batch}: {m}")
