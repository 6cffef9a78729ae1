"""`torch.export` with a dynamic batch dimension gives the eager output, for every family and model.

The default run exports each family's smallest variant (tests/exporting.py), at the row's smallest input
(`input_size`, `create_kwargs`, as the contract suite builds it): tracing takes 10 s to 3 min a model on
one CPU core, which the 71 registered names would multiply past the CI budget. The other names are
`slow` and run only when asked for (`pytest -m slow tests/test_export.py`, about an hour on 2 cores).

The exported graph is traced at batch 2 and run at batches 1 and 3: a batch size the trace specialised
would fail there. It runs the same ATen ops as eager mode, in the same order, so it agrees to a few
float32 ulps of the output's magnitude; EXPORT_ULPS leaves room for an op that export decomposes into a
differently ordered reduction.
"""
from __future__ import annotations

import pytest
from exporting import (
    ALL_ROWS,
    FAMILY_PREFIXES,
    assert_outputs_match,
    exported,
    family_of,
    family_params,
    forget,
    smallest_by_family,
)

EXPORT_ULPS = 64

# Families (or, for the slow set, model names) that cannot export, with the reason (file:line, error).
EXPORT_FAILURES: dict[str, str] = {}


def test_every_registered_model_belongs_to_one_family():
    families = {row.name: family_of(row.name) for row in ALL_ROWS}
    assert set(families.values()) == set(FAMILY_PREFIXES.values()), "a family in FAMILY_PREFIXES has no model"


@pytest.mark.parametrize("row", family_params(EXPORT_FAILURES))
def test_torch_export_with_a_dynamic_batch_gives_the_eager_output(row):
    model, program = exported(row.name)
    assert_outputs_match(program.module(), model, row, EXPORT_ULPS)


def _rest() -> list:
    smallest = {row.name for row in smallest_by_family().values()}
    return [pytest.param(row, id=row.name, marks=[pytest.mark.xdist_group(f"export-{row.name}")]
                         + ([pytest.mark.xfail(reason=EXPORT_FAILURES[row.name], strict=True)]
                            if row.name in EXPORT_FAILURES else []))
            for row in ALL_ROWS if row.name not in smallest]


@pytest.mark.slow
@pytest.mark.parametrize("row", _rest())
def test_every_other_model_exports_with_a_dynamic_batch(row, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the other variants export with `pytest -m slow tests/test_export.py` (about an hour on 2 "
                    "cores); the default run exports each family's smallest variant")
    try:
        model, program = exported(row.name)
        assert_outputs_match(program.module(), model, row, EXPORT_ULPS)
    finally:
        forget(row.name)  # no other check uses it: free its weights
