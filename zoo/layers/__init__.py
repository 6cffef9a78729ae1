"""Building blocks shared by several zoo families (mixers, RoPE, FFNs, checks)."""
from .checks import check_image_input
from .conv_blocks import ChannelScale, ConvFFN
from .gated_attention import GatedRoPEAttention
from .spiking import MultiStepLIF, SpikingStats, spiking_stats
