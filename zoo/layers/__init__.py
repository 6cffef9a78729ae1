"""Building blocks shared by several zoo families (mixers, RoPE, FFNs, pooling, checks): modules only.

Changing a built model (`apply_ggem`, ...) is model surgery and lives in `zoo.models`.
"""
from typing import Any as _Any

from .checks import check_image_input, model_name
from .conv_blocks import ChannelScale, ConvFFN
from .gated_attention import GatedRoPEAttention
from .ggem import GGeM, create_global_pool
from .spiking import MultiStepLIF, SpikingStats, spiking_stats

__all__ = ["ChannelScale", "ConvFFN", "GGeM", "GatedRoPEAttention", "MultiStepLIF", "SpikingStats", "check_image_input",
           "create_global_pool", "model_name", "spiking_stats"]


def __getattr__(name: str) -> _Any:
    """`zoo.layers.apply_ggem` and the other moved GGeM helpers: deprecated aliases of zoo.models'."""
    from . import ggem
    if name in ggem._MOVED_TO_MODELS:
        return getattr(ggem, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
