"""zoo: a timm-native model zoo of efficient token-mixing vision backbones.

    import zoo                                   # registers every zoo model with timm
    model = timm.create_model("ravlt_t")         # or zoo.create_model(...) for name suggestions
"""
# models registers the architectures; flops registers FLOP formulas for the SDPA backends FlopCounterMode lacks
from . import flops, models  # noqa: F401
from .factory import UnknownModelError, create_model, list_models
from .pretrained import allow_unconfirmed_weights

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "UnknownModelError", "allow_unconfirmed_weights", "__version__"]
