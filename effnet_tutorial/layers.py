r"""Building-block layers: Swish, Squeeze-and-Excitation, drop path and TF "same" padding.

Each layer is small on purpose: the chapters print and trace them one by one.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import PADDING_MODES

__all__ = [
    "Swish", "MemoryEfficientSwish", "SwishFunction", "SqueezeExcite", "DropPath", "drop_path",
    "same_padding", "StaticSamePad2d", "DynamicSamePad2d", "ConvBNAct", "GlobalAvgPool2d",
    "PADDING_MODES",
]

# --------------------------------------------------------------------------------------
# Swish / SiLU
# --------------------------------------------------------------------------------------
class Swish(nn.Module):
    r"""Swish, :math:`x \cdot \sigma(x)` (Ramachandran et al. 2017; SiLU in Elfwing et al. 2018).

    Written out as two operations on purpose: autograd then saves both ``x`` and
    ``sigmoid(x)`` for the backward pass (chapter 2 measures this). Use it to export
    or to compare; the model uses :class:`MemoryEfficientSwish` by default.
    ``inplace=True`` overwrites the input when no gradient is needed (inference).

    Shape: any -> same.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Swish, two ops (autograd keeps x and sigmoid(x)). Shape: any -> same."""
        if self.inplace and not (torch.is_grad_enabled() and x.requires_grad):
            return x.mul_(torch.sigmoid(x))
        return x * torch.sigmoid(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class SwishFunction(torch.autograd.Function):
    r"""Swish with a hand-written backward that saves only the input.

    :math:`\frac{d}{dx} x\sigma(x) = \sigma(x)\,(1 + x(1-\sigma(x)))`; the sigmoid is
    recomputed in backward instead of being stored, trading a little compute for one
    activation-sized tensor per Swish.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return F.silu(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * (s * (1 + x * (1 - s)))


class MemoryEfficientSwish(nn.Module):
    """Swish whose backward recomputes the sigmoid (see :class:`SwishFunction`).

    When no gradient is needed (inference) it calls the fused ``F.silu`` directly:
    the custom function only pays off when autograd would store activations. With
    ``inplace=True`` inference then overwrites its input, which saves allocating a
    new activation-sized tensor (the model does this where the input is a fresh
    BatchNorm output, as torchvision does with ``nn.SiLU(inplace=True)``).

    Shape: any -> same.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Swish that saves only its input for backward.

        Shape: any -> same.
        """
        if torch.is_grad_enabled() and x.requires_grad:
            return SwishFunction.apply(x)
        return F.silu(x, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


# --------------------------------------------------------------------------------------
# Squeeze-and-Excitation
# --------------------------------------------------------------------------------------
class SqueezeExcite(nn.Module):
    r"""Squeeze-and-Excitation (Hu et al. 2018), as used in EfficientNet's MBConv.

    squeeze (global average pool) -> 1x1 conv down to ``squeezed_channels`` -> Swish ->
    1x1 conv back up -> sigmoid -> rescale the input channel-wise. Following the
    official code, ``squeezed_channels = max(1, int(block_in_channels * se_ratio))`` is
    computed from the *block's* input channels, not from the expanded width
    (tensorflow/tpu ``efficientnet_model.py``, ``MBConvBlock``: ``num_reduced_filters``
    is ``max(1, int(input_filters * se_ratio))`` up to commit 9397f99, and the same
    value at 7dc921f8).

    Shape: (B, C, H, W) -> (B, C, H, W); the gate is (B, C, 1, 1).
    """

    def __init__(self, channels: int, squeezed_channels: int, activation: type[nn.Module] = MemoryEfficientSwish):
        super().__init__()
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed_channels, 1)
        self.act = activation()
        self.expand = nn.Conv2d(squeezed_channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reweight channels by a gate from their averages (SE paper §3).

        Shape: (B, C, H, W) -> (B, C, H, W).
        """
        s = self.squeeze(x)       # (B, C, 1, 1)
        s = self.reduce(s)        # (B, C_se, 1, 1)
        s = self.act(s)
        s = self.expand(s)        # (B, C, 1, 1)
        return x * self.gate(s)   # (B, C, H, W)


# --------------------------------------------------------------------------------------
# Drop path (drop connect / stochastic depth)
# --------------------------------------------------------------------------------------
def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    r"""Drop the whole residual branch of a random subset of the samples.

    Each sample's branch survives with probability
    :math:`p = 1 - \text{rate}` and is divided by :math:`p`, so its expected
    value is unchanged (Huang et al. 2016; called "drop connect" in the
    EfficientNet code). Identity when not training.

    Shape: (B, ...) -> (B, ...).
    """
    _check_rate(rate)
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)      # (B, 1, 1, 1)
    mask = x.new_empty(shape).bernoulli_(keep)
    return x * mask / keep


def _check_rate(rate) -> None:
    # rate 1 would keep nothing and divide by zero (all NaN); a rate outside [0, 1) is no probability.
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"drop path rate must be a number in [0, 1) (the probability of dropping a "
                         f"sample's residual branch), got {rate!r}")


class DropPath(nn.Module):
    """Module form of :func:`drop_path`. Shape: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, rate: float):
        super().__init__()
        _check_rate(rate)
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop the residual branch per sample when training. Shape: (B, ...) -> (B, ...)."""
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate:.4f}"


# --------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------
def same_padding(size: int, kernel_size: int, stride: int,
                 dilation: int = 1) -> tuple[int, int]:
    r"""TensorFlow "SAME" padding along one axis: ``(before, after)``.

    The output size is :math:`\lceil n / s \rceil`; the total padding needed
    for that is :math:`\max((\lceil n/s \rceil - 1)s + (k-1)d + 1 - n, 0)`,
    and TF puts the odd pixel *after*. For a 3x3 stride-2 conv at 224 that
    is (0, 1); PyTorch's symmetric ``padding=1`` would be (1, 1).

    Shape: ints -> (int, int).
    """
    out = math.ceil(size / stride)
    span = (kernel_size - 1) * dilation + 1        # the kernel's extent
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


class StaticSamePad2d(nn.Module):
    """TF "same" padding computed once for a fixed input size (like efficientnet_pytorch's
    ``Conv2dStaticSamePadding``). Checks the input size, since the padding is only right
    for the size it was computed for.

    Shape: (B, C, H, W) -> (B, C, H + top + bottom, W + left + right).
    """

    def __init__(self, kernel_size: int, stride: int, input_size: int, dilation: int = 1):
        super().__init__()
        self.input_size = int(input_size)
        top, bottom = same_padding(self.input_size, kernel_size, stride, dilation)
        self.padding = (top, bottom, top, bottom)  # F.pad order: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad by the precomputed TF amounts. Shape: (B, C, H, W) -> (B, C, H + t + b, W + l + r)."""
        if x.shape[-2] != self.input_size or x.shape[-1] != self.input_size:
            raise ValueError(f"this layer's static TF padding was computed for {self.input_size}x{self.input_size} "
                             f"inputs, got {x.shape[-2]}x{x.shape[-1]}; build the model with image_size="
                             f"{x.shape[-1]} or image_size=None (dynamic padding)")
        return F.pad(x, self.padding)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, input_size={self.input_size}"


class DynamicSamePad2d(nn.Module):
    """TF "same" padding computed for each input, so any image size works.

    Shape: (B, C, H, W) -> (B, C, H', W') with H' - k a multiple of the stride.
    """

    def __init__(self, kernel_size: int, stride: int, dilation: int = 1):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad by the TF amounts for this input's size. Shape: (B, C, H, W) -> (B, C, H', W')."""
        top, bottom = same_padding(x.shape[-2], self.kernel_size, self.stride, self.dilation)
        left, right = same_padding(x.shape[-1], self.kernel_size, self.stride, self.dilation)
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class ConvBNAct(nn.Module):
    r"""Padding -> convolution (no bias) -> BatchNorm -> activation: the unit every
    EfficientNet layer is made of.

    ``activation`` is a class taking ``inplace`` (Swish, MemoryEfficientSwish, nn.SiLU,
    nn.ReLU) or None. ``padding`` is ``"same"`` (TensorFlow; static when ``input_size`` is given, else
    dynamic) or ``"symmetric"`` (PyTorch's ``padding=k//2``, as in torchvision). When
    TF padding is symmetric anyway (stride 1, odd kernel) it is folded into the conv,
    so only the asymmetric cases show up as a separate ``pad`` layer.

    Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, activation: type[nn.Module] | None = MemoryEfficientSwish,
                 padding: str = "same", input_size: int | None = None,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.01):
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        conv_pad, pad = _padding_layers(kernel_size, stride, padding, input_size)
        self.pad = pad
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, conv_pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        # In place: the input is this layer's own fresh BN output, which nothing else reads.
        self.act = activation(inplace=True) if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride))."""
        x = self.pad(x)
        x = self.conv(x)
        x = self.bn(x)
        return self.act(x)


def _padding_layers(kernel_size: int, stride: int, padding: str, input_size: int | None):
    """(padding for nn.Conv2d, padding module) for one conv."""
    symmetric = (kernel_size - 1) // 2
    if padding == "symmetric" or kernel_size == 1:
        return symmetric, nn.Identity()
    if input_size is None:
        if stride == 1:  # odd kernel, stride 1: TF "same" is symmetric for every size
            return symmetric, nn.Identity()
        return 0, DynamicSamePad2d(kernel_size, stride)
    before, after = same_padding(input_size, kernel_size, stride)
    if before == after:  # nothing asymmetric to pad; the model checks the input size once
        return before, nn.Identity()
    return 0, StaticSamePad2d(kernel_size, stride, input_size)


class GlobalAvgPool2d(nn.Module):
    """Average over the spatial dimensions (the paper's "Pooling" before the FC layer).

    Shape: (B, C, H, W) -> (B, C).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (B, C, H, W) -> (B, C)."""
        return x.mean(dim=(2, 3))
