"""Building blocks shared by several zoo families (mixers, RoPE, FFNs, checks)."""
from .checks import check_image_input
from .conv_blocks import ChannelScale, ConvFFN
from .gated_attention import GatedRoPEAttention
from .rope import apply_rope_2d, rope_2d_angles, rope_2d_tables
