"""effnet_tutorial: EfficientNet V1 (B0-B7) and V2 (S/M/L/XL), written to be read.

>>> from effnet_tutorial import EfficientNet, trace_shapes, count_params, count_flops
>>> model = EfficientNet.from_name("efficientnet-b0")
>>> count_params(model)
5288548
"""
from .config import MODEL_NAMES, FusedMBConvConfig, MBConvConfig, ModelConfig, get_model_config
from .inspection import (activation_memory, count_bn_statistics, count_flops, count_params, saved_tensors, summary,
                         trace_shapes)
from .model import EfficientNet
from .notation import format_block, parse_block
from .scaling import compound_coefficients, round_filters, round_repeats

__version__ = "0.1.0"

__all__ = [
    "EfficientNet", "trace_shapes", "count_params", "count_bn_statistics",
    "count_flops", "summary", "saved_tensors", "activation_memory",
    "MBConvConfig", "FusedMBConvConfig", "ModelConfig", "MODEL_NAMES", "get_model_config",
    "round_filters", "round_repeats", "compound_coefficients", "parse_block", "format_block",
]
