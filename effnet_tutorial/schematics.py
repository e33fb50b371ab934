r"""Block schematics drawn from real blocks, so that every number on them is the code's.

Four figures for chapters 2, 3 and 6, each drawn with matplotlib from a block that the
package builds (on the meta device: shapes only, no weights):

* :func:`draw_separable_conv`: a standard kxk convolution against the depthwise +
  pointwise pair that MBConv uses (MobileNetV2 §3.1; EfficientNet §4);
* :func:`draw_squeeze_excite`: squeeze, excite and scale, with the channel counts
  :math:`C \to C_{se} \to C` (SE, arXiv 1709.01507v4, Fig. 1);
* :func:`draw_bottlenecks`: ResNet's bottleneck against the inverted residual
  (MobileNetV2, arXiv 1801.04381v4, Fig. 3);
* :func:`draw_mbconv_vs_fused`: MBConv against Fused-MBConv with the feature-map shapes
  of a real block on the arrows (EfficientNetV2, arXiv 2104.00298v3, Fig. 2).

A block is given as a module with its ``input_size``, or as ``(model, stage[, index])``,
e.g. ``("efficientnet-b0", 4)``: block 0 of the paper's stage 4, whose input size at the
model's native resolution comes from :func:`~effnet_tutorial.diagram.stage_table`.
Channels, kernels and strides are read from the modules, shapes from
:func:`~effnet_tutorial.trace_shapes`, counts from ``count_params`` / ``count_flops``.
The figures share the palette and text sizes of :mod:`effnet_tutorial.diagram`, so their
text is at least 10 px on screen in the book's column. matplotlib is imported only when
a figure is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from .blocks import FusedMBConv, MBConv
from .config import as_config
from .diagram import (
    FIGURE_PX,
    FONT_PX,
    OKABE_ITO,
    PALETTE,
    TITLE_PX,
    Canvas,
    stage_table,
    text_width,
)
from .inspection import as_model, count_flops, count_params, format_shape, trace_shapes
from .layers import ConvBNAct, MemoryEfficientSwish, SqueezeExcite, Swish

__all__ = [
    "draw_separable_conv",
    "draw_squeeze_excite",
    "draw_bottlenecks",
    "draw_mbconv_vs_fused",
    "DEFAULT_BLOCK",
    "DEFAULT_INVERTED_BLOCK",
]

#: The block of the schematics unless another is given: B0's paper stage 4 (Table 1:
#: MBConv6, k5x5, stride 2, 24 -> 40 channels), block 0.
DEFAULT_BLOCK = ("efficientnet-b0", 4, 0)
#: For the inverted residual, a block that has its skip connection: block 1 of that stage.
DEFAULT_INVERTED_BLOCK = ("efficientnet-b0", 4, 1)

_ROLES = ("expand", "depthwise", "se", "project")  # forward order of both block kinds
_LINE = 1.3 * FONT_PX  # line height
_PAD = 7.0  # inner padding of a box


# --------------------------------------------------------------------------------------
# Reading a block: which module, which input, what it is called
# --------------------------------------------------------------------------------------
@dataclass
class _Block:
    module: nn.Module
    input_size: tuple[int, ...]  # (B, C, H, W)
    where: str  # "EfficientNet-B0 stage 4, block 0"
    se_ratio: float | None = None


@lru_cache(maxsize=8)
def _meta_model(cfg):
    """The model of a config on the meta device, built once: the figures only read it."""
    return as_model(cfg)


def _pretty(name: str) -> str:
    """``efficientnet-b0`` -> ``EfficientNet-B0``, ``efficientnetv2-s`` -> ``EfficientNetV2-S``."""
    head, _, tail = name.partition("-")
    return head.replace("efficientnet", "EfficientNet").replace("v2", "V2") + "-" + tail.upper()


def _in_channels(module: nn.Module) -> int:
    for role in _ROLES:
        part = getattr(module, role, None)
        if isinstance(part, ConvBNAct):
            return part.conv.in_channels
    raise TypeError(f"expected an MBConv or FusedMBConv block, got {type(module).__name__}")


def _check_input_size(input_size, channels: int, arg: str) -> tuple[int, ...]:
    if isinstance(input_size, int) and not isinstance(input_size, bool) and input_size > 0:
        return (1, channels, input_size, input_size)
    if (
        isinstance(input_size, (tuple, list, torch.Size))
        and len(input_size) == 4
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in input_size)
    ):
        if input_size[1] != channels:
            raise ValueError(
                f"{arg}: input_size {list(input_size)} has {input_size[1]} channels, but the "
                f"block expects {channels}"
            )
        return tuple(input_size)
    raise ValueError(
        f"{arg}: input_size must be the side of the block's square input (an int, e.g. 56) "
        f"or [B, C, H, W], got {input_size!r}"
    )


def _resolve(block, input_size, kind: type | tuple[type, ...], arg: str) -> _Block:
    """A block given as ``(model, stage[, index])`` or as a module, with its input size."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    expected = " or ".join(k.__name__ for k in kinds)
    if isinstance(block, tuple):
        if not 2 <= len(block) <= 3:
            raise ValueError(
                f"{arg}: a block is (model, stage) or (model, stage, index), e.g. "
                f"('efficientnet-b0', 4, 0); got {block!r}"
            )
        ref, number, index = (*block, 0) if len(block) == 2 else block
        cfg = as_config(ref)
        stage = cfg.stage(number)  # a clear error for a stage the model does not have
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < stage.num_repeats
        ):
            raise ValueError(
                f"{arg}: stage {number} of {cfg.name} has blocks 0-{stage.num_repeats - 1}, "
                f"got index {index!r}"
            )
        # a model is used as it is; a name or config is built on the meta device (shapes only)
        model = ref if isinstance(ref, nn.Module) else _meta_model(cfg)
        module = model.stages[number][index]
        if input_size is None:
            row = next(r for r in stage_table(cfg) if r["stage"] == number)
            input_size = row["input_size"] if index == 0 else row["output_size"]
        where = f"{_pretty(cfg.name)} stage {number}, block {index}"
        checked = _Block(module, (), where, stage.se_ratio)
    elif isinstance(block, nn.Module):
        module = block
        if input_size is None:
            raise ValueError(
                f"{arg}: give input_size (the side of the block's input feature map, e.g. 56) "
                f"with a block module, or name the block as (model, stage, index)"
            )
        checked = _Block(module, (), "the given block")
    else:
        raise TypeError(
            f"{arg}: expected a block module ({expected}) or (model, stage[, index]), "
            f"got {type(block).__name__}"
        )
    if not isinstance(module, kinds):
        raise TypeError(f"{arg}: expected a block of type {expected}, got {type(module).__name__}")
    checked.input_size = _check_input_size(input_size, _in_channels(module), arg)
    return checked


def _activation(module: nn.Module) -> str | None:
    """The name the book uses for an activation module; None for no activation."""
    if isinstance(module, nn.Identity):
        return None
    if isinstance(module, (Swish, MemoryEfficientSwish, nn.SiLU)):
        return "Swish"
    return {"ReLU": "ReLU", "Sigmoid": "sigmoid"}.get(type(module).__name__, type(module).__name__)


def _parts(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(role, module) in forward order, without the switched-off (Identity) roles."""
    return [
        (r, getattr(module, r))
        for r in _ROLES
        if hasattr(module, r) and not isinstance(getattr(module, r), nn.Identity)
    ]


def _conv_words(conv: nn.Conv2d) -> tuple[int, int, int, bool]:
    k, s = conv.kernel_size[0], conv.stride[0]
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels
    return k, s, conv.groups, depthwise


def _part_box(role: str, part: nn.Module) -> tuple[str, list[str]]:
    """(fill, two lines) describing one role of a block: what it is, what it maps."""
    if isinstance(part, SqueezeExcite):
        c, c_se = part.reduce.in_channels, part.reduce.out_channels
        return PALETTE["se"], [f"{role}: squeeze-excite", f"{c} → {c_se} → {c} ch"]
    conv = part.conv
    k, s, _, depthwise = _conv_words(conv)
    stride = f", stride {s}" if s > 1 else ""
    act = _activation(part.act)
    tail = f"BN + {act}" if act else "BN, no activation"
    if depthwise:
        what = f"{k}×{k}" if role == "depthwise" else f"{k}×{k} depthwise"
        return PALETTE["depthwise"], [f"{role}: {what}{stride}", f"{conv.in_channels} ch, {tail}"]
    fill = PALETTE["conv1x1"] if k == 1 else PALETTE["conv"]
    return fill, [
        f"{role}: {k}×{k} conv{stride}",
        f"{conv.in_channels} → {conv.out_channels} ch, {tail}",
    ]


def _role_shapes(blk: _Block) -> dict[str, tuple[int, ...]]:
    """Output shape of each role (``expand``, ``depthwise``, ``se``, ``project``) of a block."""
    return dict(trace_shapes(blk.module, blk.input_size, depth="block", print_fn=None))


def _count(n: int) -> str:
    """A multiply-add count as the chapters write it: 2.8 M, 10.87 B, or exact below 100,000."""
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    return f"{n / 1e6:.1f} M" if n >= 1e5 else f"{n:,}"


def _box_width(lines_list, minimum=0.0) -> float:
    return max(
        [minimum]
        + [
            2 * _PAD + text_width(line, FONT_PX, bold=i == 0)
            for lines in lines_list
            for i, line in enumerate(lines)
        ]
    )


def _legend_swatches(canvas: Canvas, y: float, items, x0: float = 14.0) -> None:
    """One line of small coloured boxes with their meaning."""
    x = x0
    for fill, label, hatch in items:
        canvas.box(x, y - 7, 22, 14, fill, hatch=hatch, radius=2)
        canvas.text(x + 28, y, label, ha="left")
        x += 28 + text_width(label, FONT_PX) + 18


# --------------------------------------------------------------------------------------
# 1. Standard vs depthwise separable convolution (chapter 2)
# --------------------------------------------------------------------------------------
def _channel_stack(canvas: Canvas, x: float, y: float, n: int, side: float, fill: str) -> list:
    """``n`` squares of side ``side`` in a column centred at (x, y): the channels of a tensor.

    Returns the (left, right, y) anchors of the squares for the connection lines."""
    from matplotlib.patches import Rectangle

    step = max(side, 8.0) + 6.0
    top = y - step * (n - 1) / 2
    anchors = []
    for i in range(n):
        cy = top + i * step
        canvas.ax.add_patch(
            Rectangle(
                (x - side / 2, cy - side / 2),
                side,
                side,
                facecolor=fill,
                edgecolor=PALETTE["edge"],
                linewidth=canvas.pt(1.0),
                zorder=3,
            )
        )
        anchors.append((x - side / 2, x + side / 2, cy))
    return anchors


def _connect(canvas: Canvas, left, right, colour: str, one_to_one: bool = False) -> None:
    """Lines from every channel on the left to every (or the same) channel on the right."""
    pairs = zip(left, right) if one_to_one else ((a, b) for a in left for b in right)
    for (_, ax_r, ay), (bx_l, _, by) in pairs:
        canvas.ax.plot(
            [ax_r, bx_l], [ay, by], color=colour, linewidth=canvas.pt(1.0), alpha=0.8, zorder=2
        )


def draw_separable_conv(block=DEFAULT_BLOCK, input_size=None):
    r"""Standard kxk convolution vs depthwise separable convolution, for one real block.

    The depthwise separable pair is the block's own ``depthwise`` (one kxk filter per
    channel) and ``project`` (1x1, mixing channels) layers, which MBConv runs with SE
    between them; the standard convolution is the kxk convolution with the same input,
    output and stride (built from the package's ``ConvBNAct``). Channels are drawn as
    squares (a few of them, sized by the feature map) joined by what each layer connects;
    the parameters (convolution weights) and multiply-adds are counted with
    ``count_params`` and ``count_flops``. Illustrates MobileNetV2 (arXiv 1801.04381v4)
    §3.1 and chapter 2's cost ratio :math:`1/C_\text{out} + 1/k^2`; EfficientNet
    (arXiv 1905.11946v5) §4 builds every block from this pair.

    ``block``: an MBConv module (then ``input_size`` is required: the side of its input,
    or [B, C, H, W]) or ``(model, stage[, index])``; default B0's stage 4, block 0.

    Shape: block -> Figure.
    """
    blk = _resolve(block, input_size, MBConv, "block")
    m = blk.module
    shapes = _role_shapes(blk)
    x_in = (
        blk.input_size if isinstance(m.expand, nn.Identity) else shapes["expand"]
    )  # depthwise input
    dw, pw = m.depthwise.conv, m.project.conv
    k, s, _, _ = _conv_words(dw)
    c, c_out = dw.in_channels, pw.out_channels
    with torch.device("meta"):
        standard = ConvBNAct(c, c_out, k, s, activation=None)
    y_std = tuple(trace_shapes(standard, x_in, depth="block", print_fn=None)[-1][1])
    y_dw, y_pw = shapes["depthwise"], shapes["project"]
    p_std, p_dw, p_pw = count_params(standard.conv), count_params(dw), count_params(pw)
    f_std = count_flops(standard, x_in)
    f_dw, f_pw = count_flops(m.depthwise, x_in), count_flops(m.project, y_dw)

    W = float(FIGURE_PX)
    xs = (80.0, W / 2, W - 80.0)
    c_max = max(c, c_out)

    def n_drawn(ch):  # a few squares per tensor, more for wider tensors
        return max(2, min(ch, round(5 * math.sqrt(ch / c_max))))

    def side(shape):
        return max(5.0, 14.0 * shape[-1] / x_in[-1])

    std_lines = [
        f"{k}×{k} conv{', stride ' + str(s) if s > 1 else ''}",
        f"{c_out} filters of {k}×{k}×{c}",
    ]
    dw_lines = [
        f"depthwise: {k}×{k}{', stride ' + str(s) if s > 1 else ''}",
        f"{c} filters of {k}×{k}×1",
    ]
    pw_lines = ["project: 1×1 conv", f"{c_out} filters of 1×1×{c}"]
    box_h = 2 * _LINE + 2 * _PAD
    stack_h = (n_drawn(c) - 1) * (max(side(x_in), 8) + 6) + side(x_in)
    row_h = 26 + box_h + 14 + stack_h + 14 + 3 * _LINE + 14
    title_h, legend_h = 3.2 * TITLE_PX, 3.4 * _LINE
    height = title_h + 2 * row_h + legend_h

    canvas = Canvas(W, height, what="the separable convolution schematic")
    canvas.title("Standard vs depthwise separable convolution")
    canvas.text(
        W / 2,
        TITLE_PX * 2.3,
        f"the {k}×{k} layer of {blk.where}, on its {format_shape(x_in)} input",
        colour=PALETTE["muted"],
    )

    def row(y0, header, steps, cost):
        canvas.text(14, y0 + 10, header, bold=True, ha="left")
        y_box = y0 + 26
        y_mid = y_box + box_h + 14 + stack_h / 2
        tensors = [(xs[0], x_in)] + [(x, shape) for x, shape, *_ in steps]
        stacks = [
            _channel_stack(canvas, x, y_mid, n_drawn(shape[1]), side(shape), PALETTE["tensor"])
            for x, shape in tensors
        ]
        for i, (x, shape, lines, fill, line_colour, one_to_one) in enumerate(steps):
            x_prev = tensors[i][0]
            bw_i = (
                min(_box_width([lines]), x - x_prev + 10) if len(steps) > 1 else _box_width([lines])
            )
            canvas.box((x + x_prev) / 2 - bw_i / 2, y_box, bw_i, box_h, fill, lines)
            _connect(canvas, stacks[i], stacks[i + 1], line_colour, one_to_one)
        y_lab = y_mid + stack_h / 2 + 14
        for x, shape in tensors:
            canvas.text(x, y_lab, format_shape(shape))
        for i, line in enumerate(cost):
            canvas.text(W / 2, y_lab + (i + 1) * _LINE + 4, line)

    row(
        title_h,
        "standard convolution",
        [(xs[2], y_std, std_lines, PALETTE["conv"], OKABE_ITO["reddish_purple"], False)],
        [f"weights: {p_std:,}", f"multiply-adds: {_count(f_std)}"],
    )
    row(
        title_h + row_h,
        "depthwise separable: the block's depthwise and project layers",
        [
            (xs[1], y_dw, dw_lines, PALETTE["depthwise"], OKABE_ITO["orange"], True),
            (xs[2], y_pw, pw_lines, PALETTE["conv1x1"], OKABE_ITO["blue"], False),
        ],
        [
            f"weights: {p_dw:,} + {p_pw:,} = {p_dw + p_pw:,}",
            f"multiply-adds: {_count(f_dw)} + {_count(f_pw)} = {_count(f_dw + f_pw)}",
        ],
    )
    y_leg = title_h + 2 * row_h + 4
    ratio = (p_dw + p_pw) / p_std
    canvas.text(
        W / 2,
        y_leg,
        f"separable / standard = {ratio:.4g} = 1/{c_out} + 1/{k * k}  (1/C_out + 1/k²)",
        bold=True,
    )
    canvas.text(
        W / 2,
        y_leg + _LINE * 1.2,
        f"squares: channels ({n_drawn(c)} of {c} drawn), sized by the feature map",
        colour=PALETTE["muted"],
    )
    canvas.text(
        W / 2,
        y_leg + _LINE * 2.3,
        "lines: the input channels each output channel reads; weights: no BN",
        colour=PALETTE["muted"],
    )
    return canvas.fig


# --------------------------------------------------------------------------------------
# 2. Squeeze-and-Excitation (chapter 2)
# --------------------------------------------------------------------------------------
def draw_squeeze_excite(block=DEFAULT_BLOCK, input_size=None):
    r"""Squeeze-and-Excitation inside one real block: squeeze, excite, scale, with
    :math:`C \to C_{se} \to C` read from the block's ``se`` layer.

    The SE input is what the block's ``depthwise`` layer (MBConv) or ``expand`` layer
    (Fused-MBConv) returns; its shapes come from ``trace_shapes(block.se, ...,
    depth="layer")``, the final ``output`` being the channel-wise multiplication. The
    note at the bottom shows where :math:`C_{se}` comes from: the block's *input*
    channels times ``se_ratio``, as in the official code, not the expanded width that SE
    sees. Illustrates SE (Hu et al., arXiv 1709.01507v4) Fig. 1 and §3, as EfficientNet
    (arXiv 1905.11946v5, §4) uses it.

    ``block``: an MBConv or FusedMBConv with SE (module plus ``input_size``, or
    ``(model, stage[, index])``); default B0's stage 4, block 0.

    Shape: block -> Figure.
    """
    blk = _resolve(block, input_size, (MBConv, FusedMBConv), "block")
    m = blk.module
    se = m.se
    if not isinstance(se, SqueezeExcite):
        raise ValueError(
            f"block: {blk.where} has no SE layer (its se is {type(se).__name__}); "
            "EfficientNetV2's Fused-MBConv stages use none: pick an MBConv block"
        )
    shapes = _role_shapes(blk)
    roles = [r for r, _ in _parts(m)]
    i_se = roles.index("se")  # 0 in a Fused-MBConv without expansion: SE reads the block input
    source = f"output of {roles[i_se - 1]}" if i_se else "the block's input"
    x_se = shapes[roles[i_se - 1]] if i_se else blk.input_size
    trace = trace_shapes(se, x_se, depth="layer", print_fn=None)
    out = dict(trace)
    c, c_se, c_block = se.reduce.in_channels, se.reduce.out_channels, _in_channels(m)
    ratio = blk.se_ratio if blk.se_ratio is not None else c_se / c_block
    h, w = x_se[-2], x_se[-1]
    steps = [
        (
            "squeeze",
            ["se.squeeze: global average pool", f"each channel's {h}×{w} values → 1"],
            PALETTE["gate"],
            out["squeeze"],
        ),
        (
            "reduce",
            ["se.reduce: 1×1 conv", f"{c} → {c_se} ch, with bias"],
            PALETTE["se"],
            out["reduce"],
        ),
        ("act", [f"se.act: {_activation(se.act)}"], PALETTE["se"], out["act"]),
        (
            "expand",
            ["se.expand: 1×1 conv", f"{c_se} → {c} ch, with bias"],
            PALETTE["se"],
            out["expand"],
        ),
        (
            "gate",
            [f"se.gate: {_activation(se.gate)}", "one weight in (0, 1) per channel"],
            PALETTE["gate"],
            out["gate"],
        ),
    ]
    W = float(FIGURE_PX)
    bw = _box_width([lines for _, lines, _, _ in steps])
    x_c = 30 + 40 + bw / 2  # room for the identity path on the left
    gap = 34.0
    heights = [len(lines) * _LINE + 2 * _PAD for _, lines, _, _ in steps]
    title_h = 2.2 * TITLE_PX
    notes = [
        f"C_se = int({ratio:g} × {c_block}) = {c_se}: se_ratio applies to the block's "
        f"{c_block} input channels,",
        (
            f"not to the {c} channels SE sees (official code)"
            if c != c_block
            else f"here both are {c}: the expansion ratio is 1"
        )
        + f"  ·  SE parameters: {count_params(se):,}",
    ]
    height = (
        title_h + _LINE + gap * (len(steps) + 2) + sum(heights) + 2 * 9 + _LINE + 2.6 * _LINE + 10
    )

    canvas = Canvas(W, height, what="the SE schematic")
    canvas.title(f"Squeeze-and-Excitation in {blk.where}")
    y = title_h + _LINE / 2
    canvas.text(x_c, y, f"input {format_shape(x_se)}  ({source})")
    y_input = y + _LINE / 2
    y = y_input + gap
    spans = {}
    for (name, lines, fill, shape), hh in zip(steps, heights):
        canvas.arrow((x_c, y - gap), (x_c, y))
        canvas.box(x_c - bw / 2, y, bw, hh, fill, lines)
        spans[name] = (y, y + hh)
        y += hh
        canvas.text(x_c + 8, y + gap / 2, format_shape(shape), ha="left", colour=PALETTE["muted"])
        y += gap
    canvas.arrow((x_c, y - gap), (x_c, y - 9))
    y_mul = y
    canvas.node(x_c, y_mul, "×")
    x_skip = x_c - bw / 2 - 30
    y_branch = y_input + gap / 2
    canvas.dot(x_c, y_branch)
    canvas.path([(x_c, y_branch), (x_skip, y_branch), (x_skip, y_mul), (x_c - 9, y_mul)])
    canvas.text(
        x_skip - 6,
        (y_branch + y_mul) / 2,
        f"x, the input {format_shape(x_se)}",
        ha="right",
        rotation=90,
        colour=PALETTE["muted"],
    )
    canvas.arrow((x_c, y_mul + 9), (x_c, y_mul + gap))
    canvas.text(
        x_c,
        y_mul + gap + _LINE / 2,
        f"output {format_shape(out['output'])}  (x × gate, channel-wise)",
    )
    # The three steps of the SE paper, as brackets on the right.
    x_br = x_c + bw / 2 + 16
    for label, (top, bottom) in [
        ("squeeze", spans["squeeze"]),
        ("excite", (spans["reduce"][0], spans["gate"][1])),
        ("scale", (y_mul - 9, y_mul + 9)),
    ]:
        canvas.ax.plot(
            [x_br, x_br + 6, x_br + 6, x_br],
            [top, top, bottom, bottom],
            color=PALETTE["line"],
            linewidth=canvas.pt(1.2),
        )
        canvas.text(x_br + 14, (top + bottom) / 2, label, ha="left", bold=True)
    y_note = y_mul + gap + 2.2 * _LINE
    for i, note in enumerate(notes):
        canvas.text(W / 2, y_note + i * _LINE, note)
    return canvas.fig


# --------------------------------------------------------------------------------------
# 3. Classic vs inverted residual bottleneck (chapter 3)
# --------------------------------------------------------------------------------------
def _resnet_block(block, input_size) -> tuple[nn.Module, tuple[int, ...], str]:
    """torchvision's ResNet-50 ``layer1[1]`` (256 -> 64 -> 64 -> 256, identity skip) at the
    size layer1 sees for torchvision's ImageNet crop, or a given Bottleneck."""
    from torchvision.models import ResNet50_Weights, resnet50
    from torchvision.models.resnet import Bottleneck

    if block is None:
        with torch.device("meta"):
            net = resnet50()
        crop = ResNet50_Weights.IMAGENET1K_V1.transforms().crop_size[0]
        shapes = dict(trace_shapes(net, (1, 3, crop, crop), print_fn=None))
        # layer1[1] reads what layer1[0] returns
        first = trace_shapes(net.layer1[0], shapes["maxpool"], depth="block", print_fn=None)[-1][1]
        return net.layer1[1], first, "torchvision's resnet50, layer1[1]"
    if not isinstance(block, Bottleneck):
        raise TypeError(
            f"classic_block: expected torchvision's resnet Bottleneck, got {type(block).__name__}"
        )
    if block.downsample is not None:
        raise ValueError(
            "classic_block: this Bottleneck has a downsample projection on its skip (the first "
            "block of a ResNet stage); pass an identity block such as resnet50().layer1[1]"
        )
    if input_size is None:
        raise ValueError("classic_block: give classic_input_size (the side of its input, e.g. 56)")
    return (
        block,
        _check_input_size(input_size, block.conv1.in_channels, "classic_block"),
        "the given block",
    )


def _bar_pattern(channels: list[int]) -> str:
    """``wide → narrow → wide`` or ``narrow → wide → narrow`` from a block's channel counts."""
    inner = channels[1]
    return "wide → narrow → wide" if inner < channels[0] else "narrow → wide → narrow"


def draw_bottlenecks(
    inverted_block=DEFAULT_INVERTED_BLOCK,
    classic_block=None,
    input_size=None,
    classic_input_size=None,
):
    r"""The classic residual bottleneck (ResNet) against the inverted residual (MBConv).

    Tensors are bars whose width is proportional to their channels (one scale for both
    sides); hatched bars are outputs without an activation (linear), as in MobileNetV2's
    Fig. 3. The classic side is torchvision's ResNet-50 bottleneck ``layer1[1]``
    (He et al. 2016, arXiv 1512.03385v1, Table 1: conv2_x, 1x1 64 -> 3x3 64 -> 1x1 256),
    read from the module; the inverted side is a real MBConv with its skip connection.
    Shapes come from ``trace_shapes``. Illustrates MobileNetV2 (arXiv 1801.04381v4)
    §3.3 and Fig. 3 (a) vs (b).

    ``inverted_block``: an MBConv (module plus ``input_size``, or ``(model, stage[, index])``);
    default B0's stage 4, block 1. ``classic_block``: a torchvision ``Bottleneck`` with
    ``classic_input_size``; default ResNet-50's ``layer1[1]``.

    Shape: (block, block) -> Figure.
    """
    inv = _resolve(inverted_block, input_size, MBConv, "inverted_block")
    res, res_size, res_where = _resnet_block(classic_block, classic_input_size)

    # The classic side: conv1/bn1/relu, conv2/bn2/relu, conv3/bn3, + identity, relu.
    res_trace = dict(trace_shapes(res, res_size, depth="block", print_fn=None))
    res_steps = []
    for i in (1, 2, 3):
        conv = getattr(res, f"conv{i}")
        k, s = conv.kernel_size[0], conv.stride[0]
        stride = f", stride {s}" if s > 1 else ""
        fill = PALETTE["conv1x1"] if k == 1 else PALETTE["conv"]
        # torchvision's forward: ReLU after bn1 and bn2; bn3 is added to the skip, then ReLU
        res_steps.append(
            (
                f"conv{i}: {k}×{k}{stride}, " + ("ReLU" if i < 3 else "linear"),
                fill,
                res_trace[f"conv{i}"],
                i == 3,
            )
        )
    res_out = res_trace["relu"]  # relu's last call: after the addition

    inv_shapes = _role_shapes(inv)
    inv_steps = []
    for role, part in _parts(inv.module):
        if isinstance(part, SqueezeExcite):
            c, c_se = part.reduce.in_channels, part.reduce.out_channels
            inv_steps.append(
                (f"{role}: {c} → {c_se} → {c}", PALETTE["se"], inv_shapes[role], False)
            )
            continue
        k, s, _, depthwise = _conv_words(part.conv)
        act = _activation(part.act)
        stride = f", stride {s}" if s > 1 else ""
        fill = (
            PALETTE["depthwise"] if depthwise else PALETTE["conv1x1"] if k == 1 else PALETTE["conv"]
        )
        inv_steps.append(
            (f"{role}: {k}×{k}{stride}, {act or 'linear'}", fill, inv_shapes[role], act is None)
        )
    inv_out = inv_shapes.get("drop_path", inv_shapes["project"])

    W = float(FIGURE_PX)
    col_w = W / 2
    channels = [res_size[1], inv.input_size[1]] + [st[2][1] for st in res_steps + inv_steps]
    bar_max, bar_h, arrow_l = 150.0, 16.0, 50.0
    unit = bar_max / max(channels)
    title_h, head_h = 2.2 * TITLE_PX, 3.4 * _LINE
    n_ops = max(len(res_steps) + 1, len(inv_steps))  # ResNet's relu after the addition counts
    body = bar_h + n_ops * (arrow_l + bar_h) + 2 * arrow_l
    height = title_h + head_h + body + 2.6 * _LINE

    canvas = Canvas(W, height, what="the bottleneck schematic")
    canvas.title("Classic residual bottleneck vs inverted residual (MBConv)")

    def bar(xc, y_top, shape, linear):
        w_bar = max(3.0, shape[1] * unit)
        canvas.box(
            xc - w_bar / 2,
            y_top,
            w_bar,
            bar_h,
            PALETTE["tensor"],
            hatch="////" if linear else None,
            radius=2,
            zorder=4,
        )
        canvas.text(
            xc + bar_max / 2 + 8,
            y_top + bar_h / 2,
            format_shape(shape),
            ha="left",
            colour=PALETTE["muted"],
        )

    def column(x0, header, where, in_shape, in_linear, steps, skip, after_add, out_shape):
        xc = x0 + 24 + bar_max / 2
        canvas.text(x0 + col_w / 2, title_h + _LINE * 0.3, header, bold=True)
        canvas.text(x0 + col_w / 2, title_h + _LINE * 1.3, where, colour=PALETTE["muted"])
        canvas.text(
            x0 + col_w / 2,
            title_h + _LINE * 2.3,
            _bar_pattern([in_shape[1]] + [st[2][1] for st in steps]),
            italic=True,
        )
        y = title_h + head_h
        bar(xc, y, in_shape, in_linear)
        x_branch, y_branch = xc - max(3.0, in_shape[1] * unit) / 2, y + bar_h / 2
        for label, fill, shape, linear in steps:
            _arrow_step(canvas, xc, y + bar_h, arrow_l, label, fill)
            y += bar_h + arrow_l
            bar(xc, y, shape, linear)
        y_add = y + bar_h + arrow_l / 2
        if skip:
            canvas.arrow((xc, y + bar_h), (xc, y_add - 9))
            canvas.node(xc, y_add, "+")
            x_skip = xc - bar_max / 2 - 14
            canvas.path(
                [(x_branch, y_branch), (x_skip, y_branch), (x_skip, y_add), (xc - 9, y_add)]
            )
            top = y_add + 9
        else:
            top = y + bar_h
        if after_add:
            _arrow_step(canvas, xc, top, arrow_l, after_add, PALETTE["plain"])
            y_out = top + arrow_l
        else:
            canvas.arrow((xc, top), (xc, top + arrow_l / 2))
            y_out = top + arrow_l / 2
        bar(xc, y_out, out_shape, after_add is None)

    column(
        0.0,
        "Classic bottleneck (ResNet)",
        res_where,
        res_size,
        False,
        res_steps,
        True,
        "relu",
        res_out,
    )
    column(
        col_w,
        "Inverted residual (MBConv)",
        inv.where,
        inv.input_size,
        True,
        inv_steps,
        inv.module.has_skip,
        None,
        inv_out,
    )
    y_leg = height - 1.3 * _LINE
    _legend_swatches(
        canvas,
        y_leg,
        [
            (PALETTE["tensor"], "after an activation", None),
            (PALETTE["tensor"], "no activation (linear)", "////"),
        ],
    )
    canvas.text(W - 14, y_leg, "bar width ∝ channels", ha="right", colour=PALETTE["muted"])
    return canvas.fig


def _arrow_step(
    canvas: Canvas, x: float, y_top: float, length: float, label: str, fill: str
) -> None:
    """A downward arrow with a one-line operation tag on it."""
    canvas.arrow((x, y_top), (x, y_top + length))
    w = 2 * _PAD + text_width(label, FONT_PX)
    h = _LINE + 6
    canvas.box(
        x - w / 2, y_top + length / 2 - h / 2, w, h, fill, [label], bold=0, radius=4, zorder=4
    )


# --------------------------------------------------------------------------------------
# 4. MBConv vs Fused-MBConv (chapter 6)
# --------------------------------------------------------------------------------------
def _fused_twin(mb: _Block) -> _Block:
    """A Fused-MBConv with the MBConv's channels, kernel, stride, expansion and SE ratio."""
    m = mb.module
    c_in, c_out = _in_channels(m), m.project.conv.out_channels
    k, s, _, _ = _conv_words(m.depthwise.conv)
    e = m.depthwise.conv.in_channels // c_in
    se_ratio = None
    if isinstance(m.se, SqueezeExcite):
        c_se = m.se.reduce.out_channels
        # the ratio that gives the same SE width: the config's, or one that int() maps to c_se
        se_ratio = mb.se_ratio if mb.se_ratio is not None else (c_se + 0.5) / c_in
    with torch.device("meta"):
        twin = FusedMBConv(c_in, c_out, k, s, e, se_ratio=se_ratio)
    return _Block(twin, mb.input_size, "the same settings, built by FusedMBConv", se_ratio)


def draw_mbconv_vs_fused(mbconv_block=DEFAULT_BLOCK, fused_block=None, input_size=None):
    r"""MBConv and Fused-MBConv side by side, with a real block's shapes on the arrows.

    Each box is one role of the block (``expand``, ``depthwise``, ``se``, ``project``),
    read from the module; the arrows carry the output shapes from ``trace_shapes``; the
    foot of each column gives ``count_params`` and ``count_flops``. By default the
    Fused-MBConv is built with the MBConv's own channels, kernel, stride, expansion and
    SE, so that only the fusion differs: the 1x1 ``expand`` and the kxk ``depthwise``
    become one regular kxk ``expand`` (EfficientNetV2, arXiv 2104.00298v3, §3.2 and
    Fig. 2, which also draws SE in both; V2's own Fused-MBConv stages have none, Table 4).

    ``mbconv_block``: an MBConv (module plus ``input_size``, or ``(model, stage[, index])``);
    default B0's stage 4, block 0. ``fused_block``: a FusedMBConv given the same way, e.g.
    ``("efficientnetv2-s", 2)``; ``input_size`` applies to both modules.

    Shape: (block, block) -> Figure.
    """
    mb = _resolve(mbconv_block, input_size, MBConv, "mbconv_block")
    fb = (
        _fused_twin(mb)
        if fused_block is None
        else _resolve(fused_block, input_size, FusedMBConv, "fused_block")
    )
    columns = []
    for blk in (mb, fb):
        shapes = _role_shapes(blk)
        parts = [(role, *_part_box(role, part), shapes[role]) for role, part in _parts(blk.module)]
        out = shapes.get("drop_path", parts[-1][3])
        columns.append((blk, parts, out))

    W = float(FIGURE_PX)
    col_w = W / 2
    bw = _box_width([lines for _, parts, _ in columns for _, _, lines, _ in parts])
    box_h, gap = 2 * _LINE + 2 * _PAD, 34.0
    n_slots = max(len(parts) for _, parts, _ in columns)
    title_h, head_h = 2.2 * TITLE_PX, 2.4 * _LINE
    body_h = _LINE + n_slots * (gap + box_h) + gap + 9 * 2 + gap + _LINE
    height = title_h + head_h + body_h + 4.5 * _LINE

    canvas = Canvas(W, height, what="the MBConv vs Fused-MBConv schematic")
    canvas.title("MBConv vs Fused-MBConv: layers, shapes and costs")
    for col, (blk, parts, out), name in zip(range(2), columns, ("MBConv", "Fused-MBConv")):
        x0 = col * col_w
        xc = x0 + col_w / 2 - 14  # a little left of centre: the shapes sit right of the arrows
        canvas.text(x0 + col_w / 2, title_h + _LINE * 0.3, name, bold=True)
        canvas.text(x0 + col_w / 2, title_h + _LINE * 1.3, blk.where, colour=PALETTE["muted"])
        y = title_h + head_h
        canvas.text(xc, y + _LINE / 2, f"input {format_shape(blk.input_size)}")
        y_input = y + _LINE
        y = y_input
        # The first kxk conv of a shorter column spans the slots it replaces.
        span = {i: 1 for i in range(len(parts))}
        if len(parts) < n_slots:
            first_kxk = next(
                (i for i, (_, fill, _, _) in enumerate(parts) if fill == PALETTE["conv"]), 0
            )
            span[first_kxk] = n_slots - len(parts) + 1
        for i, (role, fill, lines, shape) in enumerate(parts):
            hh = span[i] * box_h + (span[i] - 1) * gap
            canvas.arrow((xc, y), (xc, y + gap))
            if i:
                canvas.text(
                    xc + 8,
                    y + gap / 2,
                    format_shape(parts[i - 1][3]),
                    ha="left",
                    colour=PALETTE["muted"],
                )
            y += gap
            canvas.box(xc - bw / 2, y, bw, hh, fill, lines)
            y += hh
        canvas.text(
            xc + 8, y + gap / 2, format_shape(parts[-1][3]), ha="left", colour=PALETTE["muted"]
        )
        y_add = y + gap + 9
        if blk.module.has_skip:
            canvas.arrow((xc, y), (xc, y_add - 9))
            canvas.node(xc, y_add, "+")
            x_skip = xc - bw / 2 - 12
            y_branch = y_input + gap / 2
            canvas.dot(xc, y_branch)
            canvas.path([(xc, y_branch), (x_skip, y_branch), (x_skip, y_add), (xc - 9, y_add)])
            canvas.arrow((xc, y_add + 9), (xc, y_add + 9 + gap))
        else:
            canvas.arrow((xc, y), (xc, y_add + 9 + gap))
        y_out = y_add + 9 + gap + _LINE / 2
        canvas.text(xc, y_out, f"output {format_shape(out)}")
        why = [f"stride {blk.module.stride}"] if blk.module.stride > 1 else []
        if blk.input_size[1] != out[1]:
            why.append(f"{blk.input_size[1]} → {out[1]} ch")
        skip = "skip: input added" if blk.module.has_skip else "no skip: " + ", ".join(why)
        canvas.text(x0 + col_w / 2, y_out + 1.4 * _LINE, skip, colour=PALETTE["muted"])
        macs = count_flops(blk.module, blk.input_size)
        for n, line in enumerate(
            [f"{count_params(blk.module):,} parameters", f"{_count(macs)} multiply-adds"]
        ):
            canvas.text(x0 + col_w / 2, y_out + (2.5 + 1.1 * n) * _LINE, line)
    return canvas.fig
