r"""The two block kinds: MBConv (EfficientNet) and Fused-MBConv (EfficientNetV2).

Submodules are named by role, in the order the paper draws them, and ``forward`` reads
top to bottom. Layers that a config switches off are ``nn.Identity`` so that the
structure (and every weight name) stays the same across configs.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNAct, DropPath, MemoryEfficientSwish, SqueezeExcite

__all__ = ["MBConv", "FusedMBConv", "squeezed_channels"]


def squeezed_channels(in_channels: int, se_ratio: float) -> int:
    """Width of the SE bottleneck: ``max(1, int(in_channels * se_ratio))``,
    where ``in_channels`` is the block's input (official code; 0.25 * 16 = 4
    in B0's stage 3).

    Shape: (int, float) -> int.
    """
    return max(1, int(in_channels * se_ratio))


class MBConv(nn.Module):
    r"""Mobile inverted bottleneck with SE (MobileNetV2 §3.3; EfficientNet §4; MnasNet).

    1x1 expand (skipped when ``expand_ratio == 1``) -> kxk depthwise (carries the
    stride) -> SE -> 1x1 linear projection -> drop path + identity skip (only when
    stride is 1 and the channel count is unchanged).

    Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: int, se_ratio: float | None = 0.25, drop_path_rate: float = 0.0,
                 padding: str = "same", input_size: int | None = None,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.01,
                 activation: type[nn.Module] = MemoryEfficientSwish):
        super().__init__()
        mid = in_channels * expand_ratio
        bn = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.stride = stride
        self.has_skip = stride == 1 and in_channels == out_channels
        self.expand = (ConvBNAct(in_channels, mid, 1, activation=activation, **bn)
                       if expand_ratio != 1 else nn.Identity())
        self.depthwise = ConvBNAct(mid, mid, kernel_size, stride, groups=mid, activation=activation,
                                   padding=padding, input_size=input_size, **bn)
        self.se = (SqueezeExcite(mid, squeezed_channels(in_channels, se_ratio), activation)
                   if se_ratio else nn.Identity())
        self.project = ConvBNAct(mid, out_channels, 1, activation=None, **bn)
        self.drop_path = DropPath(drop_path_rate) if self.has_skip and drop_path_rate > 0 else nn.Identity()

    def extra_repr(self) -> str:
        return f"stride={self.stride}, has_skip={self.has_skip}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """MBConv (MobileNetV2 Fig. 2d and 4d; SE as in EfficientNet §4).

        Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / s), ceil(W / s)).
        """
        shortcut = x              # (B, C_in, H, W)
        x = self.expand(x)        # (B, C_in * e, H, W)
        x = self.depthwise(x)     # (B, C_in * e, H / s, W / s)
        x = self.se(x)            # same shape, channels reweighted
        x = self.project(x)       # (B, C_out, H / s, W / s), linear
        if self.has_skip:
            # In place: x is this block's fresh output; nothing saved it.
            x = self.drop_path(x)
            x += shortcut
        return x


class FusedMBConv(nn.Module):
    r"""Fused-MBConv (EfficientNetV2 §3.2, Fig. 2): the 1x1 expansion and the depthwise
    conv of MBConv replaced by one regular kxk conv.

    With ``expand_ratio != 1``: kxk expand conv (carries the stride) -> [SE] -> 1x1
    linear projection. With ``expand_ratio == 1`` (V2's first stage) there is nothing
    to expand: the block is a single kxk conv + BN + Swish, held in ``project`` (as in
    google/automl's ``FusedMBConvBlock``, whose project conv becomes kxk and gets the
    activation), and ``expand`` is empty. The official tables use no SE here
    (``se_ratio=None``); when one is asked for it sits where automl puts it, before
    the projection.

    Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: int, se_ratio: float | None = None, drop_path_rate: float = 0.0,
                 padding: str = "same", input_size: int | None = None,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.01,
                 activation: type[nn.Module] = MemoryEfficientSwish):
        super().__init__()
        mid = in_channels * expand_ratio
        bn = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        spatial = dict(padding=padding, input_size=input_size, **bn)
        self.stride = stride
        self.has_skip = stride == 1 and in_channels == out_channels
        if expand_ratio != 1:
            self.expand = ConvBNAct(in_channels, mid, kernel_size, stride, activation=activation, **spatial)
            self.project = ConvBNAct(mid, out_channels, 1, activation=None, **bn)
        else:
            self.expand = nn.Identity()
            self.project = ConvBNAct(in_channels, out_channels, kernel_size, stride, activation=activation, **spatial)
        self.se = (SqueezeExcite(mid, squeezed_channels(in_channels, se_ratio), activation)
                   if se_ratio else nn.Identity())
        self.drop_path = DropPath(drop_path_rate) if self.has_skip and drop_path_rate > 0 else nn.Identity()

    def extra_repr(self) -> str:
        return f"stride={self.stride}, has_skip={self.has_skip}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fused-MBConv (EfficientNetV2 Fig. 2).

        Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / s), ceil(W / s)).
        """
        shortcut = x              # (B, C_in, H, W)
        x = self.expand(x)        # (B, C_in * e, H / s, W / s) if e > 1
        x = self.se(x)
        x = self.project(x)       # (B, C_out, H / s, W / s); kxk if e == 1
        if self.has_skip:
            # In place: x is this block's fresh output; nothing saved it.
            x = self.drop_path(x)
            x += shortcut
        return x
