r"""The compact block notation of the official code: ``r2_k3_s2_e6_i16_o24_se0.25``.

tensorflow/tpu (``efficientnet_builder.py``) writes each stage of B0 as one such string;
google/automl (``efficientnetv2/effnetv2_configs.py``) adds ``c1`` for a Fused-MBConv
stage. :func:`parse_block` and :func:`format_block` convert between these strings and the
configs of :mod:`effnet_tutorial.config`.
"""
from __future__ import annotations

import re

from .config import BlockConfig, FusedMBConvConfig, MBConvConfig

__all__ = ["parse_block", "format_block", "parse_blocks", "format_blocks"]

_TOKEN = re.compile(r"^(r|k|s|e|i|o|se|c)(\d+(?:\.\d+)?)$")


def parse_block(text: str) -> BlockConfig:
    """Parse one block string such as ``"r2_k3_s2_e6_i16_o24_se0.25"``.

    ``r`` repeats, ``k`` kernel, ``s`` stride (the V1 code writes it twice, ``s22``;
    both forms are accepted), ``e`` expansion, ``i``/``o`` channels, ``se`` SE ratio,
    ``c1`` marks a Fused-MBConv stage (the official V2 ``conv_type``).

    Shape: str -> MBConvConfig | FusedMBConvConfig.
    """
    if not isinstance(text, str):
        raise TypeError(f"a block string is expected, got {type(text).__name__}")
    fields: dict[str, str] = {}
    for tok in text.strip().split("_"):
        m = _TOKEN.match(tok)
        if not m:
            raise ValueError(f"cannot parse token {tok!r} in block string {text!r}; expected tokens like "
                             "r2, k3, s2 (or s22), e6, i16, o24, se0.25, c1")
        fields[m.group(1)] = m.group(2)
    missing = [k for k in ("r", "k", "s", "e", "i", "o") if k not in fields]
    if missing:
        raise ValueError(f"block string {text!r} lacks {', '.join(missing)}")
    stride = fields["s"]
    if len(stride) == 2 and stride[0] == stride[1]:
        stride = stride[0]          # V1 notation: s22 = stride (2, 2)
    elif len(stride) != 1:
        raise ValueError(f"block string {text!r}: only square strides are supported, got s{stride}")
    kwargs = dict(expand_ratio=int(fields["e"]), kernel_size=int(fields["k"]), stride=int(stride),
                  in_channels=int(fields["i"]), out_channels=int(fields["o"]),
                  num_repeats=int(fields["r"]),
                  se_ratio=float(fields["se"]) if "se" in fields else None)
    conv_type = int(fields.get("c", "0"))
    if conv_type not in (0, 1):
        raise ValueError(f"block string {text!r}: c must be 0 (MBConv) or 1 (Fused-MBConv)")
    return FusedMBConvConfig(**kwargs) if conv_type == 1 else MBConvConfig(**kwargs)


def format_block(cfg: BlockConfig) -> str:
    """Inverse of :func:`parse_block` (single-digit stride form, ``c1`` for fused).

    Shape: MBConvConfig | FusedMBConvConfig -> str.
    """
    s = (f"r{cfg.num_repeats}_k{cfg.kernel_size}_s{cfg.stride}_e{cfg.expand_ratio}"
         f"_i{cfg.in_channels}_o{cfg.out_channels}")
    if cfg.se_ratio is not None:
        s += f"_se{cfg.se_ratio:g}"
    if cfg.kind == "fused":
        s += "_c1"
    return s


def parse_blocks(texts) -> tuple[BlockConfig, ...]:
    """Parse a list of block strings into a tuple of configs. Shape: list[str] -> tuple."""
    return tuple(parse_block(t) for t in texts)


def format_blocks(cfgs) -> list[str]:
    """Format a sequence of block configs as block strings. Shape: sequence -> list[str]."""
    return [format_block(c) for c in cfgs]
