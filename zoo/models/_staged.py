"""timm's per-model API, written once for the zoo's staged backbones.

Every hierarchical zoo model keeps timm's layout: a `stem`, `stages.<i>` that each hold the
modules that open the stage (a `downsample`, position tables, ...) and `blocks.<j>`, then a head
whose classifier is `head.fc` (timm's `ClassifierHead` / `NormMlpClassifierHead` or a head with
the same `reset`). `StagedModelApi` gives such a model timm's `group_matcher` (layer-wise
learning-rate decay), `set_grad_checkpointing`, `no_weight_decay`, `get_classifier`,
`reset_classifier` and the input check; a family states only what differs, as class attributes
or by overriding a method (MAXIM, an image-to-image model with no classifier, overrides the
matcher, the classifier methods and the check).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..layers.checks import check_image_input, model_name
from ._placement import keeps_device_dtype


class StagedModelApi:
    """Mixin for `nn.Module` subclasses (list it first: `class RAVLT(StagedModelApi, nn.Module)`)."""

    # group_matcher: the stem's pattern, the modules that open each stage (grouped with the stage's
    # first block), and patterns after the last block (final norms, feature norms).
    stem_pattern: ClassVar[str] = r"^stem"
    stage_openers: ClassVar[str] = "downsample"
    final_patterns: ClassVar[tuple[str, ...]] = ()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(
            stem=self.stem_pattern,
            blocks=r"^stages\.(\d+)" if coarse else [
                (rf"^stages\.(\d+)\.(?:{self.stage_openers})", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                *((pattern, (99999,)) for pattern in self.final_patterns),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # The official recipes decay every parameter of 2 or more dimensions (position tables
        # included) and exempt 1-D ones (norms, biases, layer scales), which timm's optimizer
        # factory already does; a family whose recipe exempts more overrides this.
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def _check_input(self, x: torch.Tensor) -> None:
        if not torch.jit.is_scripting():
            check_image_input(x, self.in_chans, model_name(self))
