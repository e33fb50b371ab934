r"""Exact parameter and multiply-add counts from a config, in closed form: no module is built.

An EfficientNet is a chain of convolutions whose sizes the config fixes, so both counts are
sums of products of integers (EfficientNet §3.1, Eq. 1: the cost of a stage is
:math:`\hat{L}_i \cdot` (its layer's cost at :math:`\hat{H}_i \times \hat{W}_i`)):

* parameters: every conv kernel :math:`C_\text{out} \cdot C_\text{in}/g \cdot k^2`, the
  biases of SE's two 1x1 convs and of the classifier, and each BatchNorm's weight and bias
  (:math:`2C`; running statistics are buffers and do not count, as in ``count_params``);
* multiply-adds, as ``count_flops`` reports them (``torch.utils.flop_counter`` on the built
  model in eval mode, halved): each convolution costs
  :math:`B \cdot H_\text{out} W_\text{out} \cdot C_\text{out} \cdot C_\text{in}/g \cdot k^2`
  (SE's 1x1 convs run on 1x1 maps), the classifier :math:`B \cdot C_\text{head} \cdot
  \text{classes}`. FlopCounterMode counts no biases, BatchNorm, activations, pooling or
  the SE and residual element-wise products, so neither does this module.

Spatial sizes: every strided layer maps :math:`n` pixels to :math:`\lceil n / s \rceil`,
with TensorFlow "same" padding (by construction) and with symmetric ``padding=k // 2`` for
odd :math:`k` (:math:`\lfloor (n + 2\lfloor k/2 \rfloor - k) / s \rfloor + 1 =
\lceil n / s \rceil`), so the padding mode does not change a count. Height and width are
followed separately, so non-square inputs are exact too.

All blocks of a stage after the first are identical, so a count costs one term per stage:
tens of microseconds for any model, against about a second for counting a built model.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Sequence

from .blocks import squeezed_channels
from .config import ModelConfig, get_model_config

__all__ = ["analytic_params", "analytic_flops", "CostModel", "cost_model"]

#: The stem of every EfficientNet: a 3x3 convolution with stride 2 (Table 1 of Tan & Le 2019,
#: stage 1; Table 4 of Tan & Le 2021, stage 0), as :class:`~effnet_tutorial.EfficientNet`
#: builds it.
STEM_KERNEL, STEM_STRIDE = 3, 2


@dataclass(frozen=True)
class CostModel:
    """The counts of one config, factored by spatial level.

    Level 0 is the input image; each strided layer starts a new level, reached with
    ``level_strides[j - 1]``. A forward pass at ``(B, C, H, W)`` costs
    ``B * (sum_j H_j * W_j * level_macs[j] + constant_macs)`` multiply-adds, where
    ``H_j = ceil(H_{j-1} / stride)``; ``constant_macs`` are the layers that see 1x1 maps
    (SE's convs, the classifier). ``level_channels[j]`` is the widest tensor at level ``j``
    (for :meth:`largest_activation`).

    Shape: config -> counts; :meth:`macs` maps (B, H, W) -> int.
    """

    params: int
    in_channels: int
    level_strides: tuple[int, ...]
    level_macs: tuple[int, ...]
    constant_macs: int
    level_channels: tuple[int, ...]

    def level_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Feature-map size ``(H_j, W_j)`` of every level. Shape: (H, W) -> [(H_j, W_j), ...]."""
        sizes = [(height, width)]
        for s in self.level_strides:
            h, w = sizes[-1]
            sizes.append((-(-h // s), -(-w // s)))  # ceil(n / s), in integers
        return sizes

    def macs(self, batch: int, height: int, width: int) -> int:
        """Multiply-adds of one forward pass. Shape: (B, H, W) -> int."""
        total = self.constant_macs
        for (h, w), per_pixel in zip(self.level_sizes(height, width), self.level_macs):
            total += h * w * per_pixel
        return batch * total

    def largest_activation(self, batch: int, height: int, width: int) -> int:
        """Elements of the largest feature map of a forward pass (an expanded map in an
        early stage, usually). Shape: (B, H, W) -> int."""
        sizes = self.level_sizes(height, width)
        return batch * max(h * w * c for (h, w), c in zip(sizes, self.level_channels))


class _Builder:
    """Accumulates parameters and per-pixel multiply-adds, level by level."""

    def __init__(self, in_channels: int) -> None:
        self.params = 0
        self.strides: list[int] = []
        self.per_pixel = [0]
        self.channels = [in_channels]
        self.constant = 0

    def new_level(self, stride: int) -> None:
        """A strided layer starts the next spatial level. Shape: stride -> None."""
        self.strides.append(stride)
        self.per_pixel.append(0)
        self.channels.append(0)

    def conv(self, c_in: int, c_out: int, k: int, groups: int = 1, bn: bool = True,
             times: int = 1) -> None:
        """A conv (no bias) + BatchNorm whose output lies at the current level.

        Shape: channels, kernel -> parameters and per-pixel multiply-adds added."""
        weights = c_out * (c_in // groups) * k * k
        self.params += times * (weights + (2 * c_out if bn else 0))
        self.per_pixel[-1] += times * weights
        self.channels[-1] = max(self.channels[-1], c_out)

    def squeeze_excite(self, channels: int, squeezed: int, times: int = 1) -> None:
        """SE (Hu et al. 2018): two 1x1 convs with bias on the pooled 1x1 map.

        Shape: channels -> squeezed -> channels, at 1x1."""
        self.params += times * (2 * channels * squeezed + squeezed + channels)
        self.constant += times * 2 * channels * squeezed


def _block(acc: _Builder, kind: str, c_in: int, c_out: int, k: int, stride: int, e: int,
           se_ratio: float | None, times: int = 1) -> None:
    """Add ``times`` identical blocks (MBConv or Fused-MBConv, as in :mod:`.blocks`)."""
    mid = c_in * e
    if stride != 1:
        # Only the first block of a stage is strided (times == 1): its 1x1 expansion runs
        # at the input level, everything from the strided conv on at the new level.
        if kind == "mbconv" and e != 1:
            acc.conv(c_in, mid, 1)
        acc.new_level(stride)
    elif kind == "mbconv" and e != 1:
        acc.conv(c_in, mid, 1, times=times)
    if kind == "mbconv":
        acc.conv(mid, mid, k, groups=mid, times=times)           # depthwise
    elif e != 1:
        acc.conv(c_in, mid, k, times=times)                      # fused expansion, kxk
    if se_ratio:
        acc.squeeze_excite(mid, squeezed_channels(c_in, se_ratio), times=times)
    # The projection: 1x1 and linear, or, for a fused block without expansion, the kxk conv.
    acc.conv(mid, c_out, k if (kind == "fused" and e == 1) else 1, times=times)


def _as_config(config) -> ModelConfig:
    if isinstance(config, str):
        return get_model_config(config)
    if isinstance(config, ModelConfig):
        return config
    inner = getattr(config, "config", None)
    hint = ""
    if isinstance(inner, ModelConfig):
        hint = (" (a model: pass model.config to count the architecture it was built from, or "
                "count_params(model) to count the module as it is)")
    raise TypeError(f"expected a ModelConfig or a model name, got {type(config).__name__}{hint}")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def cost_model(config, num_classes: int | None = None, in_channels: int | None = None) -> CostModel:
    """Parameters and the per-level multiply-add coefficients of ``config`` (a ModelConfig
    or a model name). ``num_classes`` and ``in_channels`` default to the config's own
    fields where it has them, else 1000 and 3 (the built model's defaults).

    Shape: config -> CostModel.
    """
    config = _as_config(config)
    num_classes = _positive_int("num_classes", getattr(config, "num_classes", 1000)
                                if num_classes is None else num_classes)
    in_channels = _positive_int("in_channels", getattr(config, "in_channels", 3)
                                if in_channels is None else in_channels)
    acc = _Builder(in_channels)
    stem = config.scaled_stem_channels
    acc.new_level(STEM_STRIDE)
    acc.conv(in_channels, stem, STEM_KERNEL)
    stages = config.scaled_blocks()
    for cfg in stages:
        k, e, se = cfg.kernel_size, cfg.expand_ratio, cfg.se_ratio
        _block(acc, cfg.kind, cfg.in_channels, cfg.out_channels, k, cfg.stride, e, se)
        if cfg.num_repeats > 1:  # the rest of the stage: stride 1, out -> out channels
            _block(acc, cfg.kind, cfg.out_channels, cfg.out_channels, k, 1, e, se,
                   times=cfg.num_repeats - 1)
    head = config.scaled_head_channels
    acc.conv(stages[-1].out_channels, head, 1)
    acc.params += head * num_classes + num_classes          # classifier: Linear with bias
    acc.constant += head * num_classes
    return CostModel(acc.params, in_channels, tuple(acc.strides), tuple(acc.per_pixel),
                     acc.constant, tuple(acc.channels))


def analytic_params(config, num_classes: int | None = None, in_channels: int | None = None) -> int:
    """Exact number of parameters of ``EfficientNet(config)``, without building it.

    Equals ``count_params`` of the built model: conv kernels, BatchNorm weights and
    biases, SE and classifier biases (EfficientNet §3.1, Eq. 1, summed stage by stage).
    ``num_classes`` / ``in_channels`` default to the config's (else 1000 / 3).

    Shape: config -> int.
    """
    return cost_model(config, num_classes, in_channels).params


def analytic_flops(config, input_size: Sequence[int] | None = None,
                   num_classes: int | None = None) -> int:
    """Exact multiply-adds of one forward pass of ``EfficientNet(config)`` at
    ``input_size`` = (B, C, H, W), as ``count_flops`` measures them on the built model
    (FlopCounterMode's total // 2: convolutions and the classifier's matmul), without
    building it. ``input_size`` defaults to one image at the config's resolution; H and W
    may differ. The stem takes C input channels.

    Shape: (B, C, H, W) -> int.
    """
    config = _as_config(config)
    if input_size is None:
        r = getattr(config, "image_size", None) or config.resolution
        input_size = (1, getattr(config, "in_channels", 3), r, r)
    if (isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence)
            or len(input_size) != 4
            or not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0
                       for s in input_size)):
        raise ValueError(f"input_size must be [B, C, H, W] (four positive ints), "
                         f"got {input_size!r}")
    b, c, h, w = (int(s) for s in input_size)
    own = getattr(config, "in_channels", None)
    if own is not None and own != c:
        raise ValueError(f"input_size has C={c} channels, but the config's model takes "
                         f"in_channels={own}: use input_size=({b}, {own}, {h}, {w}) or a config "
                         f"with in_channels={c}")
    fixed = getattr(config, "image_size", None)
    if fixed is not None and (h, w) != (fixed, fixed):
        raise ValueError(f"the config fixes TF padding for {fixed}x{fixed} images "
                         f"(image_size={fixed}), got {h}x{w}; use a config with image_size=None "
                         "to count any size")
    return cost_model(config, num_classes, c).macs(b, h, w)
