r"""Architecture as data: block configs, the official tables and the model config.

Everything an EfficientNet is made of is written down here as plain, frozen
dataclasses, so that a chapter can print the table, a test can compare it with the
official code, and the model builder (:mod:`effnet_tutorial.model`) only has to read it.
The scaling rules live in :mod:`effnet_tutorial.scaling`, the block-string notation in
:mod:`effnet_tutorial.notation`.

Stages are numbered as the papers number them: Table 1 of Tan & Le (2019, arXiv
1905.11946v5) calls B0's stem stage 1, its MBConv stages 2-8 and its head stage 9;
Table 4 of Tan & Le (2021, arXiv 2104.00298v3) calls V2-S's stem stage 0, its block
stages 1-6 and its head stage 7.

Sources (facts, not code, taken from):

* EfficientNet-B0, Table 1 of Tan & Le (2019) and ``efficientnet_builder.py`` in
  tensorflow/tpu (``models/official/efficientnet``), block strings
  ``r1_k3_s11_e1_i32_o16_se0.25`` ...
* B0–B7 coefficients: ``efficientnet_params()`` in the same file.
* EfficientNet-Lite0-4: tensorflow/tpu ``models/official/efficientnet/lite/
  efficientnet_lite_builder.py`` (commit 22d5cab9) and the README beside it: B0's table
  without SE, ReLU6 instead of Swish, stem and head not scaled.
* EfficientNetV2-S/M/L/XL, Table 4 of Tan & Le (2021) and ``effnetv2_configs.py`` in
  google/automl (``efficientnetv2``); BatchNorm settings from its ``hparams.py``.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, fields, replace
from numbers import Real
from typing import ClassVar, Union

from .scaling import round_filters, round_repeats

__all__ = [
    "MBConvConfig", "FusedMBConvConfig", "BlockConfig", "BlockSpec", "ModelConfig",
    "EFFICIENTNET_B0_BLOCKS", "EFFICIENTNETV2_BLOCKS", "V1_COEFFICIENTS", "V2_SETTINGS",
    "MODEL_NAMES", "PADDING_MODES", "get_model_config", "canonical_name",
    "EFFICIENTNET_LITE_BLOCKS", "LITE_COEFFICIENTS", "LITE_MODEL_NAMES", "ACTIVATIONS",
]

#: ``"same"``: TensorFlow's padding (the official models); ``"symmetric"``: PyTorch's
#: ``padding=k // 2`` (torchvision).
PADDING_MODES = ("same", "symmetric")

#: The non-linearity of every block, stem and head: ``"swish"`` (V1 and V2) or ``"relu6"``
#: (EfficientNet-Lite, "for easier post-quantization": tensorflow/tpu's Lite README).
ACTIVATIONS = ("swish", "relu6")


def _is_real(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and v == v  # v == v: not NaN


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


# --------------------------------------------------------------------------------------
# One frozen dataclass per block kind, with the paper's field names.
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _StageConfig:
    """Fields shared by both block kinds, with the paper's names (Table 1 / Table 4)."""

    expand_ratio: int
    kernel_size: int
    stride: int
    in_channels: int
    out_channels: int
    num_repeats: int
    se_ratio: float | None = None
    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in ("expand_ratio", "kernel_size", "stride", "in_channels", "out_channels", "num_repeats"):
            _check_positive_int(f"{name}.{f}", getattr(self, f))
        if self.kernel_size % 2 == 0:
            raise ValueError(f"{name}.kernel_size must be odd (3, 5, ...), got {self.kernel_size}")
        if self.se_ratio is not None and not (_is_real(self.se_ratio) and 0 < self.se_ratio <= 1):
            raise ValueError(f"{name}.se_ratio must be None or in (0, 1], got {self.se_ratio!r}")


@dataclass(frozen=True)
class MBConvConfig(_StageConfig):
    """One stage of MBConv blocks (mobile inverted bottleneck, Sandler et al. 2018).

    The first block of the stage uses ``stride`` and maps ``in_channels`` to
    ``out_channels``; the other ``num_repeats - 1`` blocks use stride 1 and keep
    ``out_channels`` (this is how the official builder expands a stage; see
    :meth:`ModelConfig.block_specs`).
    """

    se_ratio: float | None = 0.25
    kind: ClassVar[str] = "mbconv"


@dataclass(frozen=True)
class FusedMBConvConfig(_StageConfig):
    """One stage of Fused-MBConv blocks (EfficientNetV2, Tan & Le 2021, Fig. 2).

    The 1x1 expansion and the kxk depthwise convolution of MBConv are fused into one
    regular kxk convolution. The official V2 tables use no SE in these stages
    (``se_ratio=None``); the field exists so that the book can build the variants
    that popular re-implementations use.
    """

    kind: ClassVar[str] = "fused"


#: A stage of either block kind (the type of ``ModelConfig.blocks``' entries).
BlockConfig = Union[MBConvConfig, FusedMBConvConfig]


@dataclass(frozen=True)
class BlockSpec:
    """One block of a model, after scaling and after its stage has been expanded.

    ``stage`` is the paper's stage number, ``index`` the block's position in it. The
    first block of a stage carries the stage's stride and channel change; the others
    have stride 1 and ``in_channels == out_channels``.
    """

    stage: int
    index: int
    kind: str
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    expand_ratio: int
    se_ratio: float | None
    drop_path_rate: float


# --------------------------------------------------------------------------------------
# The base tables
# --------------------------------------------------------------------------------------
#: EfficientNet-B0 (Tan & Le 2019, arXiv 1905.11946v5, Table 1): stages 2-8. Stage 1 is
#: the 3x3 stem conv (32 channels, 224x224 input), stage 9 the 1x1 head conv (1280),
#: pooling and the classifier. "input" is Table 1's resolution column: the size of the
#: feature map that enters the stage.
EFFICIENTNET_B0_BLOCKS: tuple[MBConvConfig, ...] = (
    #            e  k  s   in  out  r        stage  input
    MBConvConfig(1, 3, 1,  32,  16, 1),    # 2      112x112
    MBConvConfig(6, 3, 2,  16,  24, 2),    # 3      112x112
    MBConvConfig(6, 5, 2,  24,  40, 2),    # 4      56x56
    MBConvConfig(6, 3, 2,  40,  80, 3),    # 5      28x28
    MBConvConfig(6, 5, 1,  80, 112, 3),    # 6      14x14
    MBConvConfig(6, 5, 2, 112, 192, 4),    # 7      14x14
    MBConvConfig(6, 3, 1, 192, 320, 1),    # 8      7x7
)

_F, _M = FusedMBConvConfig, MBConvConfig
#: EfficientNetV2 tables (Tan & Le 2021, Table 4 for S; google/automl
#: ``effnetv2_configs.py`` for S, M, L and XL). Stem 3x3 stride 2 (stage 0), head 1x1
#: to 1280 (the last stage). Rows are stages 1, 2, ...
EFFICIENTNETV2_BLOCKS: dict[str, tuple[BlockConfig, ...]] = {
    "efficientnetv2-s": (
        #  e  k  s   in  out   r
        _F(1, 3, 1,  24,  24,  2),
        _F(4, 3, 2,  24,  48,  4),
        _F(4, 3, 2,  48,  64,  4),
        _M(4, 3, 2,  64, 128,  6),
        _M(6, 3, 1, 128, 160,  9),
        _M(6, 3, 2, 160, 256, 15),
    ),
    "efficientnetv2-m": (
        _F(1, 3, 1,  24,  24,  3),
        _F(4, 3, 2,  24,  48,  5),
        _F(4, 3, 2,  48,  80,  5),
        _M(4, 3, 2,  80, 160,  7),
        _M(6, 3, 1, 160, 176, 14),
        _M(6, 3, 2, 176, 304, 18),
        _M(6, 3, 1, 304, 512,  5),
    ),
    "efficientnetv2-l": (
        _F(1, 3, 1,  32,  32,  4),
        _F(4, 3, 2,  32,  64,  7),
        _F(4, 3, 2,  64,  96,  7),
        _M(4, 3, 2,  96, 192, 10),
        _M(6, 3, 1, 192, 224, 19),
        _M(6, 3, 2, 224, 384, 25),
        _M(6, 3, 1, 384, 640,  7),
    ),
    "efficientnetv2-xl": (
        _F(1, 3, 1,  32,  32,  4),
        _F(4, 3, 2,  32,  64,  8),
        _F(4, 3, 2,  64,  96,  8),
        _M(4, 3, 2,  96, 192, 16),
        _M(6, 3, 1, 192, 256, 24),
        _M(6, 3, 2, 256, 512, 32),
        _M(6, 3, 1, 512, 640,  8),
    ),
}
del _F, _M

#: B0-B7 as published: (width, depth, resolution, dropout). tensorflow/tpu
#: ``efficientnet_builder.efficientnet_params``. Note that these are rounded by hand
#: from the compound rule (see :func:`~effnet_tutorial.scaling.compound_coefficients`),
#: not computed by it.
V1_COEFFICIENTS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet-b0": (1.0, 1.0, 224, 0.2),
    "efficientnet-b1": (1.0, 1.1, 240, 0.2),
    "efficientnet-b2": (1.1, 1.2, 260, 0.3),
    "efficientnet-b3": (1.2, 1.4, 300, 0.3),
    "efficientnet-b4": (1.4, 1.8, 380, 0.4),
    "efficientnet-b5": (1.6, 2.2, 456, 0.4),
    "efficientnet-b6": (1.8, 2.6, 528, 0.5),
    "efficientnet-b7": (2.0, 3.1, 600, 0.5),
}

#: V2 as published: (train size, eval size, dropout). google/automl
#: ``effnetv2_configs.py``; V2 models are not width/depth-scaled from a base.
V2_SETTINGS: dict[str, tuple[int, int, float]] = {
    "efficientnetv2-s": (300, 384, 0.2),
    "efficientnetv2-m": (384, 480, 0.3),
    "efficientnetv2-l": (384, 480, 0.4),
    "efficientnetv2-xl": (384, 512, 0.4),
}

#: BatchNorm momentum in PyTorch's convention (the weight of the NEW batch statistic).
#: TensorFlow states the weight of the OLD running value: tensorflow/tpu uses 0.99 for
#: V1 (PyTorch 0.01, as efficientnet_pytorch), google/automl ``efficientnetv2/hparams.py``
#: uses ``bn_momentum=0.9`` for V2 (PyTorch 0.1, as torchvision's V2).
V1_BN_MOMENTUM = 0.01  # 1 - 0.99
V2_BN_MOMENTUM = 0.1   # 1 - 0.9

#: EfficientNet-Lite: B0's table with the SE removed ("SE are not well supported for some
#: mobile accelerators", tensorflow/tpu ``efficientnet/lite/README.md``).
EFFICIENTNET_LITE_BLOCKS: tuple[MBConvConfig, ...] = tuple(replace(b, se_ratio=None)
                                                          for b in EFFICIENTNET_B0_BLOCKS)

#: Lite0-Lite4: (width, depth, resolution, dropout), tensorflow/tpu
#: ``efficientnet_lite_builder.efficientnet_lite_params`` (commit 22d5cab9). timm's
#: ``tf_efficientnet_lite3``/``lite4`` default to 300 and 380 px; this package follows the
#: official builder (280 and 300 px), as efficientnet-lite-pytorch does.
LITE_COEFFICIENTS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet-lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet-lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet-lite2": (1.1, 1.2, 260, 0.3),
    "efficientnet-lite3": (1.2, 1.4, 280, 0.3),
    "efficientnet-lite4": (1.4, 1.8, 300, 0.3),
}

#: The models of the two papers: B0-B7 and V2-S/M/L/XL.
MODEL_NAMES: tuple[str, ...] = tuple(V1_COEFFICIENTS) + tuple(V2_SETTINGS)
#: The official edge models built from B0 (every tool that takes a name takes these too).
LITE_MODEL_NAMES: tuple[str, ...] = tuple(LITE_COEFFICIENTS)
_ALL_NAMES = MODEL_NAMES + LITE_MODEL_NAMES


# --------------------------------------------------------------------------------------
# A whole model
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build one EfficientNet: the unscaled table, the coefficients
    and the build options. Every value is checked here, once, when the config is made.

    ``blocks`` is the *base* table; :meth:`scaled_blocks` applies
    :func:`~effnet_tutorial.scaling.round_filters` and
    :func:`~effnet_tutorial.scaling.round_repeats` to it, so the table you read is the
    one the paper prints. Change a field with :meth:`with_options` (or
    ``dataclasses.replace``), which checks again.

    ``resolution`` is the native (evaluation) image size; ``image_size`` fixes TF "same"
    padding for one input size (static pad layers, like efficientnet_pytorch's), ``None``
    pads each input as it comes. ``activation`` is ``"swish"`` or ``"relu6"`` (Lite);
    ``fix_stem_head`` keeps the stem, the head and the repeats of the first and last
    block stages unscaled, as the official Lite builder does (``fix_head_stem=True``).
    ``drop_path_rate`` is stochastic depth's rate at the
    last block (the official code calls it ``drop_connect_rate``; chapter 3 explains).
    """

    name: str
    blocks: tuple[BlockConfig, ...]
    width_coefficient: float = 1.0
    depth_coefficient: float = 1.0
    resolution: int = 224
    train_resolution: int | None = None
    dropout_rate: float = 0.2
    drop_path_rate: float = 0.2
    stem_channels: int | None = None  # None: the first stage's in_channels (32 for V1)
    head_channels: int = 1280
    bn_eps: float = 1e-3
    bn_momentum: float = V1_BN_MOMENTUM
    num_classes: int = 1000
    in_channels: int = 3
    image_size: int | None = None
    padding: str = "same"
    activation: str = "swish"
    fix_stem_head: bool = False

    def __post_init__(self) -> None:
        blocks = self.blocks
        if isinstance(blocks, list):
            object.__setattr__(self, "blocks", blocks := tuple(blocks))
        if not isinstance(blocks, tuple) or not blocks:
            raise ValueError(f"ModelConfig.blocks must list at least one stage, got {blocks!r}")
        for b in blocks:
            if not isinstance(b, (MBConvConfig, FusedMBConvConfig)):
                raise TypeError(f"ModelConfig.blocks holds MBConvConfig/FusedMBConvConfig, got {type(b).__name__}")
        for i, (prev, nxt) in enumerate(zip(blocks, blocks[1:])):
            if prev.out_channels != nxt.in_channels:
                raise ValueError(f"stages do not chain: stage {self.first_stage + 1 + i} outputs "
                                 f"{prev.out_channels} channels but stage {self.first_stage + 2 + i} "
                                 f"expects {nxt.in_channels}")
        for f in ("width_coefficient", "depth_coefficient", "bn_eps"):
            v = getattr(self, f)
            if not (_is_real(v) and 0 < v < float("inf")):
                raise ValueError(f"{f} must be a positive finite number, got {v!r}")
        for f in ("dropout_rate", "drop_path_rate"):
            v = getattr(self, f)
            if not (_is_real(v) and 0.0 <= v < 1.0):
                raise ValueError(f"{f} must be a number in [0, 1), got {v!r}")
        if not (_is_real(self.bn_momentum) and 0.0 < self.bn_momentum <= 1.0):
            raise ValueError(f"bn_momentum (PyTorch's convention: the weight of the new batch statistic) "
                             f"must be in (0, 1], got {self.bn_momentum!r}")
        for f in ("resolution", "head_channels", "num_classes", "in_channels"):
            _check_positive_int(f, getattr(self, f))
        for f in ("train_resolution", "stem_channels", "image_size"):
            if getattr(self, f) is not None:
                _check_positive_int(f, getattr(self, f))
        if self.padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {self.padding!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not isinstance(self.fix_stem_head, bool):
            raise ValueError(f"fix_stem_head must be True or False, got {self.fix_stem_head!r}")
        if self.padding == "symmetric" and self.image_size is not None:
            raise ValueError(f"image_size={self.image_size} fixes TF 'same' padding for one input size; "
                             "padding='symmetric' works for every size: leave image_size=None")

    def with_options(self, **changes) -> "ModelConfig":
        """A copy with some fields changed (checked again); ``None`` values are ignored,
        so optional keyword arguments can be passed straight through.

        Shape: config -> config.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        valid = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise TypeError(f"unknown ModelConfig option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
        return replace(self, **changes) if changes else self

    # ------------------------------------------------------------------ the tables
    def scaled_blocks(self) -> tuple[BlockConfig, ...]:
        """The base table with channels and repeats scaled by :func:`round_filters` and
        :func:`round_repeats` (tensorflow/tpu ``efficientnet_model.py``; the paper's §3.3 gives
        the multipliers, Eq. 3, not the rounding).

        With ``fix_stem_head`` (Lite) the first and last block stages keep their repeats
        and the first stage takes the unscaled stem's channels (tensorflow/tpu
        ``efficientnet_model.Model._build``, commit 22d5cab9).

        Shape: -> one config per block stage, in order (7 for B0).
        """
        last = len(self.blocks) - 1
        scaled = []
        for i, b in enumerate(self.blocks):
            fixed = self.fix_stem_head and i in (0, last)
            in_channels = round_filters(b.in_channels, self.width_coefficient)
            if self.fix_stem_head and i == 0:
                in_channels = self.scaled_stem_channels
            scaled.append(replace(
                b, in_channels=in_channels,
                out_channels=round_filters(b.out_channels, self.width_coefficient),
                num_repeats=b.num_repeats if fixed else round_repeats(b.num_repeats, self.depth_coefficient)))
        return tuple(scaled)

    @property
    def first_stage(self) -> int:
        """The stem's stage number: 1 in the V1 paper's Table 1, 0 in the V2 paper's
        Table 4 (recognised by its Fused-MBConv stages)."""
        return 0 if any(b.kind == "fused" for b in self.blocks) else 1

    @property
    def stage_numbers(self) -> tuple[int, ...]:
        """The paper's numbers of the block stages: (2, ..., 8) for B0, (1, ..., 6) for V2-S."""
        return tuple(range(self.first_stage + 1, self.first_stage + 1 + len(self.blocks)))

    @property
    def head_stage(self) -> int:
        """The paper's number of the head stage (9 for B0, 7 for V2-S)."""
        return self.stage_numbers[-1] + 1

    def stage(self, number: int) -> BlockConfig:
        """The scaled config of the block stage the paper numbers ``number``
        (``get_model_config("efficientnet-b4").stage(6)``: 160 channels, 6 blocks).

        Shape: int -> MBConvConfig | FusedMBConvConfig.
        """
        numbers = self.stage_numbers
        if isinstance(number, bool) or not isinstance(number, int) or number not in numbers:
            raise ValueError(f"{self.name} has block stages {numbers[0]}-{numbers[-1]} (stage "
                             f"{self.first_stage} is the stem, {self.head_stage} the head); got {number!r}")
        return self.scaled_blocks()[numbers.index(number)]

    def block_specs(self) -> tuple[BlockSpec, ...]:
        """Every block of the model, in order: the one place where stages are expanded.

        The first block of a stage takes the stage's stride and channel change, the
        others stride 1 (tensorflow/tpu ``efficientnet_model.py``, google/automl
        ``effnetv2_model.py``). Block :math:`i` of :math:`N` gets the drop-path rate
        ``drop_path_rate * i / N`` (see :meth:`drop_path_rates`).

        Shape: -> N BlockSpecs (16 for B0).
        """
        rates = iter(self.drop_path_rates())
        specs = []
        for number, cfg in zip(self.stage_numbers, self.scaled_blocks()):
            for i in range(cfg.num_repeats):
                specs.append(BlockSpec(
                    stage=number, index=i, kind=cfg.kind,
                    in_channels=cfg.in_channels if i == 0 else cfg.out_channels,
                    out_channels=cfg.out_channels, kernel_size=cfg.kernel_size,
                    stride=cfg.stride if i == 0 else 1, expand_ratio=cfg.expand_ratio,
                    se_ratio=cfg.se_ratio, drop_path_rate=next(rates)))
        return tuple(specs)

    @property
    def scaled_stem_channels(self) -> int:
        """Output channels of the stem: 32 scaled by width (kept at 32 by ``fix_stem_head``)."""
        base = self.stem_channels if self.stem_channels is not None else self.blocks[0].in_channels
        return base if self.fix_stem_head else round_filters(base, self.width_coefficient)

    @property
    def scaled_head_channels(self) -> int:
        """Output channels of the head conv: 1280 scaled by width (kept by ``fix_stem_head``)."""
        return self.head_channels if self.fix_stem_head else round_filters(self.head_channels, self.width_coefficient)

    def drop_path_rates(self) -> list[float]:
        r"""Drop-path (stochastic depth) rate of every block, in order.

        Block :math:`i` of :math:`N` drops its residual branch with rate
        :math:`\text{drop\_path\_rate} \cdot i / N`: 0 for the first block, growing
        linearly with depth (tensorflow/tpu ``efficientnet_model.py``; the "linear decay"
        rule of Huang et al. 2016). Blocks without a skip connection ignore it.

        Shape: -> list of N floats.
        """
        n = self.num_blocks
        return [self.drop_path_rate * i / n for i in range(n)]

    @property
    def num_blocks(self) -> int:
        """Total number of blocks after depth scaling (16 for B0)."""
        return sum(b.num_repeats for b in self.scaled_blocks())


def canonical_name(name: str) -> str:
    """Normalise a model name (``EfficientNet_B0`` -> ``efficientnet-b0``) or raise
    a ValueError that lists the valid names and the closest match."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, one of {', '.join(_ALL_NAMES)}; got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = re.sub(r"^efficientnet-?v2-?", "efficientnetv2-", key)
    key = re.sub(r"^efficientnet-?lite-?", "efficientnet-lite", key)
    if key in _ALL_NAMES:
        return key
    close = difflib.get_close_matches(key, _ALL_NAMES, n=1, cutoff=0.0)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown model name {name!r}.{hint} Valid names: {', '.join(_ALL_NAMES)}")


def get_model_config(name: str, **options) -> ModelConfig:
    """The official configuration of a named model (``efficientnet-b0`` ...
    ``efficientnetv2-xl``, ``efficientnet-lite0`` ... ``-lite4``), with build options
    (``num_classes=10`` ...) applied.

    Shape: name -> ModelConfig.
    """
    key = canonical_name(name)
    if key in LITE_COEFFICIENTS:
        w, d, res, drop = LITE_COEFFICIENTS[key]
        cfg = ModelConfig(name=key, blocks=EFFICIENTNET_LITE_BLOCKS, width_coefficient=w, depth_coefficient=d,
                          resolution=res, train_resolution=res, dropout_rate=drop, activation="relu6",
                          fix_stem_head=True)
    elif key in V1_COEFFICIENTS:
        w, d, res, drop = V1_COEFFICIENTS[key]
        cfg = ModelConfig(name=key, blocks=EFFICIENTNET_B0_BLOCKS, width_coefficient=w,
                          depth_coefficient=d, resolution=res, train_resolution=res, dropout_rate=drop)
    else:
        train, evaluate, drop = V2_SETTINGS[key]
        cfg = ModelConfig(name=key, blocks=EFFICIENTNETV2_BLOCKS[key], resolution=evaluate,
                          train_resolution=train, dropout_rate=drop, bn_momentum=V2_BN_MOMENTUM)
    return cfg.with_options(**options)


def as_config(model_or_config) -> ModelConfig:
    """A model name, a ModelConfig or anything with a ``.config`` (an EfficientNet) ->
    its ModelConfig; anything else is a clear TypeError.

    Shape: name | config | model -> ModelConfig.
    """
    if isinstance(model_or_config, ModelConfig):
        return model_or_config
    if isinstance(model_or_config, str):
        return get_model_config(model_or_config)
    config = getattr(model_or_config, "config", None)
    if isinstance(config, ModelConfig):
        return config
    raise TypeError(f"expected a model name, a ModelConfig or an EfficientNet, got {type(model_or_config).__name__}")
