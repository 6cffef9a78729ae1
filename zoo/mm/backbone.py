"""`ZooBackbone`: any zoo (or timm) model as an mmdet 3 / mmseg 1 backbone.

    backbone=dict(
        type='ZooBackbone',
        model_name='ravlt_s',                 # any name timm.create_model knows
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,                     # -1: nothing; 0: stem; k: stem + stages 0..k-1
        norm_eval=False,                      # True: every BatchNorm / SyncBatchNorm keeps its stats
        model_kwargs=dict(drop_path_rate=0.15),
        init_cfg=dict(type='Pretrained', checkpoint='/path/to/RAVLT_S.pth'),  # or 'official'
    )

The network is `timm.create_model(model_name, features_only=True,
out_indices=...)`: for RAVLT / MAViT that is exactly the official det/seg
backbone (stage outputs before the downsample, through per-stage LayerNorms);
nothing here re-implements a family.

Pretrained weights go through the zoo's own loading path (safe unpickling,
the official entry of the file, the family's `checkpoint_filter_fn` with its
strict key check): `init_weights` builds the same backbone with
`pretrained=True, pretrained_cfg_overlay=dict(file=checkpoint)` and copies
its weights.  `checkpoint='official'` (or None) fetches the official
classification weights as `timm.create_model(name, pretrained=True)` does.

Differences from the official RALA / MALA backbones, all deliberate:
`norm_eval=True` freezes every `_BatchNorm` (the official code checks
`nn.BatchNorm2d`, which its `nn.SyncBatchNorm` layers are not, so it never
freezes anything); `train()` returns the module.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import timm
import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _NormBase

import zoo  # noqa: F401  (registers the zoo's architectures with timm)

__all__ = ["ZooBackbone"]

OFFICIAL = ("official", "timm")


def _resolve_checkpoint(checkpoint: str) -> str:
    if re.match(r"^https?://", checkpoint):
        from timm.models._hub import download_cached_file

        return download_cached_file(checkpoint)
    return checkpoint


class ZooBackbone(BaseModule):
    """A `features_only` timm/zoo model with mmdet/mmseg's backbone conventions.

    Args:
        model_name: a name `timm.create_model` knows (`zoo.list_models()`).
        out_indices: the stages whose features are returned (strides 4..32 for
            the four-stage families).
        frozen_stages: -1 trains everything; 0 freezes the stem; k >= 1 freezes
            the stem and stages 0..k-1 (parameters get `requires_grad=False`,
            and the modules stay in eval mode in training), with their per-stage
            feature norms.
        norm_eval: keep every batch-statistics norm layer (BatchNorm*,
            SyncBatchNorm, InstanceNorm with running stats) in eval mode while
            training, so running statistics stay as loaded.  LayerNorm /
            GroupNorm have no running statistics; their affine parameters train
            unless frozen by `frozen_stages`.
        model_kwargs: extra keyword arguments of the model (drop_path_rate,
            widths of a custom configuration, ...).
        pretrained: shorthand for `init_cfg=dict(type='Pretrained', checkpoint=pretrained)`.
        init_cfg: `dict(type='Pretrained', checkpoint=path | url | 'official')`
            loads classification (or backbone) weights in `init_weights`
            through the family's checkpoint filter; anything else is left to
            mmengine.
    """

    def __init__(
            self,
            model_name: str,
            out_indices: Sequence[int] = (0, 1, 2, 3),
            frozen_stages: int = -1,
            norm_eval: bool = False,
            model_kwargs: dict[str, Any] | None = None,
            pretrained: str | None = None,
            init_cfg: dict | list[dict] | None = None,
    ):
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError("give either pretrained or init_cfg, not both")
            init_cfg = dict(type="Pretrained", checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.model_name = model_name
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.model_kwargs = dict(model_kwargs or {})
        self.body = self._create(pretrained=False)
        info = self.body.feature_info
        self.out_channels: list[int] = list(info.channels())
        self.out_strides: list[int] = list(info.reduction())
        # Names, not module objects: SyncBN conversion (mmengine's sync_bn) replaces the modules.
        self._frozen_names = self._names_of_frozen_stages(frozen_stages)
        self._freeze()

    # ------------------------------------------------------------------ build
    def _create(self, pretrained: bool, **extra: Any) -> nn.Module:
        return timm.create_model(
            self.model_name, pretrained=pretrained, features_only=True,
            out_indices=self.out_indices, **{**self.model_kwargs, **extra})

    @property
    def model(self) -> nn.Module:
        """The wrapped timm model (the features_only body's network)."""
        return getattr(self.body, "model", self.body)

    # ------------------------------------------------------------ freezing
    def _stage_prefixes(self) -> list[str]:
        info = getattr(self.model, "feature_info", None)
        if isinstance(info, (list, tuple)):
            return [d["module"] for d in info]
        return [info.get("module", i) for i in range(len(info))]

    def _names_of_frozen_stages(self, frozen_stages: int) -> list[str]:
        """Names (in this module) of the leaf modules that `frozen_stages` freezes.

        Works on the model's registration order: the stem is everything that
        comes before the first module of stage 0, stage k ends at its last
        module; the per-stage feature norms (RAVLT/MAViT `feature_norms.i`)
        belong to their stage.
        """
        if frozen_stages < 0:
            return []
        prefixes = self._stage_prefixes()
        if frozen_stages > len(prefixes):
            raise ValueError(f"frozen_stages={frozen_stages}, but {self.model_name} has {len(prefixes)} stages")
        leaves = [n for n, m in self.model.named_modules() if not list(m.children())]

        def in_stage(name: str, i: int) -> bool:
            return name == prefixes[i] or name.startswith(prefixes[i] + ".")

        first_of_stage0 = next(j for j, n in enumerate(leaves) if in_stage(n, 0))
        if frozen_stages == 0:
            end = first_of_stage0
        else:
            last = [j for j, n in enumerate(leaves) if in_stage(n, frozen_stages - 1)]
            if not last:
                raise ValueError(f"stage {frozen_stages - 1} of {self.model_name} was pruned (out_indices)")
            end = last[-1] + 1
        frozen = leaves[:end]
        norms = getattr(self.model, "feature_norms", None)
        if norms is not None:
            frozen += [f"feature_norms.{i}" for i in range(min(frozen_stages, len(norms)))]
        prefix = next(n for n, m in self.named_modules() if m is self.model)
        return [f"{prefix}.{n}" if prefix else n for n in frozen]

    def _frozen_modules(self) -> list[nn.Module]:
        modules = dict(self.named_modules())
        return [modules[n] for n in self._frozen_names]

    def _freeze(self) -> None:
        if self.frozen_stages < 0:
            return
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False
        # Parameters held by the root model itself (class tokens, position
        # embeddings) belong to the stem.
        for p in self.model.parameters(recurse=False):
            p.requires_grad = False

    def train(self, mode: bool = True) -> ZooBackbone:
        super().train(mode)
        if mode:
            for m in self._frozen_modules():
                m.eval()
            if self.norm_eval:
                for m in self.modules():
                    if isinstance(m, _NormBase) and m.track_running_stats:
                        m.eval()
        return self

    # -------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Load `init_cfg=dict(type='Pretrained', checkpoint=...)` through the zoo's checkpoint filter.

        The body is built and initialised by its own constructor (the family's
        official init); without a Pretrained init_cfg nothing is re-initialised.
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            checkpoint = cfg.get("checkpoint")
            overlay = {}
            if checkpoint is not None and str(checkpoint) not in OFFICIAL:
                overlay = dict(file=_resolve_checkpoint(str(checkpoint)))
            source = overlay.get("file", f"the official {self.model_name} weights")
            loaded = self._create(pretrained=True, pretrained_cfg_overlay=overlay)
            self.body.load_state_dict(loaded.state_dict(), strict=True)
            del loaded
            self._freeze()
            print_log(f"ZooBackbone({self.model_name}): loaded {source}", logger="current")
        elif cfg is not None:
            super().init_weights()
        self._is_init = True

    # -------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.body(x))
