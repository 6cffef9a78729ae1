"""The rows of the contract suite: one `ModelRow` per registered zoo model.

Each family adds `tests/rows/<family>.py` with a module-level `ROWS` list;
this package collects them all, and `test_contract.py` runs every check on
every row (and fails if a registered zoo model has no row). Each row's
FLOP pin is the figure its model card records (`zoo/metadata/<card>.yaml`,
`flops.zoo`: `zoo.flops.count_model_flops`, FlopCounterMode, 2 per multiply-add,
batch 1 at the cfg's input size); `test_flops.py` recounts it exactly, so the
card cannot drift from what the model computes.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field, replace
from typing import Any

from zoo import metadata


@dataclass(frozen=True)
class ModelRow:
    name: str
    params: int                                   # exact count from the spec (default constructor, 1000 classes)
    official_weights: bool = True                 # False: no checkpoint was released (pretrained_cfg says so)
    input_size: tuple[int, int, int] = (3, 32, 32)  # smallest valid input: the forward checks run here
    create_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. img_size for fixed-size models
    bad_input_size: tuple[int, int] | None = None  # a spatial size the model must reject with ValueError
    global_pools: tuple[str, ...] = ("avg", "max")  # pool types `global_pool=` accepts
    batch_independent: bool = True                # eval output of an image does not depend on its batch
    not_applicable: dict[str, str] = field(default_factory=dict)  # check name -> why it does not apply
    flops: int | None = None                      # pinned forward FLOPs at the cfg input size (from the card)

    def __str__(self) -> str:
        return self.name


def _card_flops(name: str) -> int | None:
    if metadata.card_of(name) is None:  # test_cards names the model without a card
        return None
    return metadata.variant(name).get("flops", {}).get("zoo")


def all_rows() -> list[ModelRow]:
    rows = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        rows += [replace(row, flops=_card_flops(row.name)) for row in module.ROWS]
    return sorted(rows, key=lambda r: r.name)
