"""Building blocks shared by several zoo families (mixers, RoPE, FFNs, checks)."""
from .checks import check_image_input, model_name
from .conv_blocks import ChannelScale, ConvFFN
from .gated_attention import GatedRoPEAttention
from .ggem import GGeM, apply_ggem, create_global_pool, remove_ggem, supports_ggem
from .spiking import MultiStepLIF, SpikingStats, spiking_stats
