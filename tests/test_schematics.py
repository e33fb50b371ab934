"""The block schematics and the architecture diagram: drawn headless, every number on them
is the block's, and their text is legible at the size the book shows them.

The expected numbers are computed here from the configs by the formulas of the papers
(channels ``C_in * e``, sizes ``ceil(H / s)``, SE width ``int(C_in * se_ratio)``, weights
``k^2 C_in C_out``, ...), not by the functions under test, so a schematic that drifts from
the code fails. The legibility checks render each figure as Jupyter's inline backend
stores it (``bbox_inches="tight"``) and convert its smallest font to on-screen px in the
book's column (``BOOK_COLUMN_PX``, measured in Chromium at a 1280 px window: wider images
are scaled down to it, narrower ones are shown at their natural size).
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
import warnings
from functools import lru_cache
from itertools import combinations

import matplotlib

matplotlib.use("Agg")  # headless, before pyplot is imported anywhere

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402

from effnet_tutorial import get_model_config  # noqa: E402
from effnet_tutorial.blocks import FusedMBConv, MBConv  # noqa: E402
from effnet_tutorial.diagram import BOOK_COLUMN_PX, MIN_SCREEN_PX, PALETTE, draw_architecture  # noqa: E402
from effnet_tutorial.schematics import (  # noqa: E402
    draw_bottlenecks,
    draw_mbconv_vs_fused,
    draw_separable_conv,
    draw_squeeze_excite,
)

# He et al. 2016 (arXiv 1512.03385v1), Table 1, ResNet-50's conv2_x: output 56x56,
# [1x1, 64; 3x3, 64; 1x1, 256]. Published data, the oracle of the classic bottleneck.
RESNET50_CONV2_X = dict(size=56, inner=64, outer=256)


# --------------------------------------------------------------------------------------
# Reading a figure back
# --------------------------------------------------------------------------------------
def labels(fig) -> list[str]:
    """The strings of every Text artist drawn on the figure."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def has(fig, s: str) -> bool:
    return any(s in line for line in labels(fig))


def assert_shows(fig, *strings: str) -> None:
    missing = [s for s in strings if not has(fig, s)]
    assert not missing, f"not on the figure: {missing}; its labels: {labels(fig)}"


def rendered_width(fig) -> int:
    """Width in px of the PNG that Jupyter's inline backend stores for ``fig``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    return Image.open(io.BytesIO(buf.getvalue())).size[0]


def smallest_screen_px(fig) -> float:
    """The smallest font of ``fig`` in on-screen px in the book's column."""
    scale = min(1.0, BOOK_COLUMN_PX / rendered_width(fig))
    smallest_pt = min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text())
    return smallest_pt * fig.dpi / 72 * scale


def _luminance(colour) -> float:
    # WCAG 2.1 relative luminance
    def lin(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def check_legible(fig) -> None:
    """Text >= MIN_SCREEN_PX on screen, nothing wider than the column, no two labels on top
    of each other, and WCAG AA contrast (4.5:1) between each label and what is under it."""
    assert rendered_width(fig) <= BOOK_COLUMN_PX
    assert smallest_screen_px(fig) >= MIN_SCREEN_PX
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer).expanded(0.98, 0.9)) for t in texts]
    overlaps = [(a, b) for (a, ba), (b, bb) in combinations(boxes, 2) if ba.overlaps(bb)]
    assert not overlaps, f"labels drawn over each other: {overlaps}"
    patches = sorted(
        (
            p
            for p in fig.findobj(Patch)
            if p is not fig.patch
            and p.get_visible()
            and p.get_facecolor()[3] > 0
            and not _is_axes_patch(p)
        ),
        key=lambda p: p.get_zorder(),
    )
    for t in texts:
        bb = t.get_window_extent(renderer)
        centre = ((bb.x0 + bb.x1) / 2, (bb.y0 + bb.y1) / 2)
        under = [
            p for p in patches if p.get_zorder() <= t.get_zorder() and p.contains_point(centre)
        ]
        background = under[-1].get_facecolor() if under else "white"
        ratio = contrast(t.get_color(), background)
        assert ratio >= 4.5, f"{t.get_text()!r}: contrast {ratio:.2f} against {background}"


def _is_axes_patch(p) -> bool:
    return any(p is ax.patch for ax in p.figure.axes) if p.figure else False


def stage_input(name: str, stage: int, index: int = 0) -> int:
    """Side of the feature map that block ``index`` of ``stage`` sees at the native size:
    the stem halves the image, each earlier stage divides by its stride (rounding up)."""
    cfg = get_model_config(name)
    size = math.ceil(cfg.resolution / 2)
    for number, b in zip(cfg.stage_numbers, cfg.scaled_blocks()):
        if number == stage:
            return size if index == 0 else math.ceil(size / b.stride)
        size = math.ceil(size / b.stride)
    raise AssertionError(f"{name} has no stage {stage}")


def shape(*dims: int) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def macs_text(n: int) -> str:
    """How a multiply-add count is printed: 2.8 M, 10.87 B, exact below 100,000."""
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    return f"{n / 1e6:.1f} M" if n >= 1e5 else f"{n:,}"


@lru_cache(maxsize=None)
def figure(fn, *args):
    """Each figure is drawn once and shared by the tests that read it."""
    return fn(*args)


@pytest.fixture(autouse=True, scope="module")
def _close_figures():
    yield
    figure.cache_clear()
    plt.close("all")


# --------------------------------------------------------------------------------------
# import effnet_tutorial stays free of matplotlib
# --------------------------------------------------------------------------------------
def test_import_does_not_load_matplotlib():
    code = (
        "import sys, effnet_tutorial, effnet_tutorial.diagram, effnet_tutorial.schematics; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------
# 1. Standard vs depthwise separable convolution
# --------------------------------------------------------------------------------------
SEPARABLE_CASES = [("efficientnet-b0", 4, 0), ("efficientnet-b7", 6, 1)]


@pytest.mark.parametrize("spec", SEPARABLE_CASES, ids=lambda s: f"{s[0]}-stage{s[1]}.{s[2]}")
def test_separable_conv_numbers(spec):
    name, number, index = spec
    st = get_model_config(name).stage(number)
    c, c_out, k = st.in_channels * st.expand_ratio, st.out_channels, st.kernel_size
    if index:  # later blocks of a stage: stride 1, input = output channels
        c = st.out_channels * st.expand_ratio
    s = st.stride if index == 0 else 1
    h = stage_input(name, number, index)
    h_out = math.ceil(h / s)
    fig = figure(draw_separable_conv, spec)
    dw, pw, std = k * k * c, c * c_out, k * k * c * c_out
    assert_shows(
        fig,
        f"{c_out} filters of {k}×{k}×{c}",
        f"{c} filters of {k}×{k}×1",
        f"{c_out} filters of 1×1×{c}",
        shape(1, c, h, h),
        shape(1, c, h_out, h_out),
        shape(1, c_out, h_out, h_out),
        f"weights: {std:,}",
        f"weights: {dw:,} + {pw:,} = {dw + pw:,}",
        f"multiply-adds: {macs_text(std * h_out * h_out)}",
        f"{macs_text(dw * h_out * h_out)} + {macs_text(pw * h_out * h_out)}",
        f"= 1/{c_out} + 1/{k * k}",
    )
    assert has(fig, "stride 2") == (s == 2)


def test_separable_conv_of_a_given_module():
    # Chapter 6's exercise block: MBConv(48, 48, 3, 1, 4) on a 56x56 input.
    fig = draw_separable_conv(MBConv(48, 48, 3, 1, 4, se_ratio=None), input_size=56)
    assert_shows(
        fig,
        "48 filters of 3×3×192",
        "192 filters of 3×3×1",
        shape(1, 192, 56, 56),
        f"weights: {9 * 192 * 48:,}",
        "the given block",
    )
    check_legible(fig)
    plt.close(fig)


def test_separable_conv_is_legible():
    check_legible(figure(draw_separable_conv, SEPARABLE_CASES[1]))


# --------------------------------------------------------------------------------------
# 2. Squeeze-and-Excitation
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [("efficientnet-b0", 4, 0), ("efficientnetv2-s", 4, 0), ("efficientnet-b7", 6, 1)],
    ids=lambda s: f"{s[0]}-stage{s[1]}.{s[2]}",
)
def test_squeeze_excite_numbers(spec):
    name, number, index = spec
    st = get_model_config(name).stage(number)
    c_block = st.in_channels if index == 0 else st.out_channels
    c, c_se = c_block * st.expand_ratio, int(c_block * st.se_ratio)  # SE width from the block input
    h = math.ceil(
        stage_input(name, number, index) / (st.stride if index == 0 else 1)
    )  # after the depthwise
    fig = figure(draw_squeeze_excite, spec)
    params = c * c_se + c_se + c_se * c + c  # two 1x1 convs with bias
    assert_shows(
        fig,
        shape(1, c, h, h),
        shape(1, c, 1, 1),
        shape(1, c_se, 1, 1),
        f"{c} → {c_se} ch",
        f"{c_se} → {c} ch",
        f"int({st.se_ratio:g} × {c_block}) = {c_se}",
        f"SE parameters: {params:,}",
        "se.squeeze",
        "se.reduce",
        "se.act: Swish",
        "se.expand",
        "se.gate: sigmoid",
        "squeeze",
        "excite",
        "scale",
    )
    if c_se != int(c * st.se_ratio):  # the wrong rule would give another width
        assert not has(fig, f"{c} → {int(c * st.se_ratio)} ch")


def test_squeeze_excite_of_a_fused_block_with_se():
    # The popular re-implementation's Fused-MBConv with SE (chapter 6): SE after the kxk expand.
    fig = draw_squeeze_excite(FusedMBConv(24, 48, 3, 2, 4, se_ratio=0.25), input_size=96)
    assert_shows(fig, shape(1, 96, 48, 48), "96 → 6 ch", "output of expand", "int(0.25 × 24) = 6")
    check_legible(fig)
    plt.close(fig)


def test_squeeze_excite_refuses_a_block_without_se():
    with pytest.raises(ValueError, match="no SE layer"):
        draw_squeeze_excite(("efficientnetv2-s", 2))


def test_squeeze_excite_is_legible():
    check_legible(figure(draw_squeeze_excite, ("efficientnet-b0", 4, 0)))


# --------------------------------------------------------------------------------------
# 3. Classic vs inverted residual bottleneck
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [("efficientnet-b0", 4, 1), ("efficientnet-b7", 6, 1)],
    ids=lambda s: f"{s[0]}-stage{s[1]}.{s[2]}",
)
def test_bottlenecks_numbers(spec):
    name, number, index = spec
    st = get_model_config(name).stage(number)
    c, k = st.out_channels, st.kernel_size  # index > 0: C -> eC -> C with a skip
    mid, c_se, h = c * st.expand_ratio, int(c * st.se_ratio), stage_input(name, number, index)
    fig = figure(draw_bottlenecks, spec)
    r = RESNET50_CONV2_X
    assert_shows(
        fig,
        shape(1, r["outer"], r["size"], r["size"]),
        shape(1, r["inner"], r["size"], r["size"]),
        "conv1: 1×1, ReLU",
        "conv2: 3×3, ReLU",
        "conv3: 1×1, linear",
        "relu",
        "wide → narrow → wide",
        shape(1, c, h, h),
        shape(1, mid, h, h),
        "expand: 1×1, Swish",
        f"depthwise: {k}×{k}, Swish",
        f"se: {mid} → {c_se} → {mid}",
        "project: 1×1, linear",
        "narrow → wide → narrow",
    )
    # Hatched = no activation: ResNet's conv3 output; MBConv's input, projection and output;
    # and the legend's swatch.
    hatched = [p for p in fig.findobj(Patch) if p.get_hatch()]
    assert len(hatched) == 5
    # Bar widths are proportional to channels, on one scale for both sides.
    fig.canvas.draw()
    bars = [
        p.get_window_extent().width
        for p in fig.findobj(Patch)
        if to_rgb(p.get_facecolor()) == to_rgb(PALETTE["tensor"])
        and p.get_window_extent().height < 30
    ]
    widest = max(bars)
    for channels in (r["inner"], c, mid):  # ResNet's narrow bars, MBConv's thin and wide ones
        assert any(
            math.isclose(w, widest * channels / max(mid, r["outer"]), rel_tol=0.02, abs_tol=1.5)
            for w in bars
        ), (channels, bars)


def test_bottlenecks_is_legible():
    check_legible(figure(draw_bottlenecks, ("efficientnet-b0", 4, 1)))


def test_bottlenecks_refuse_a_fused_block():
    with pytest.raises(TypeError, match="MBConv"):
        draw_bottlenecks(("efficientnetv2-s", 2, 1))


# --------------------------------------------------------------------------------------
# 4. MBConv vs Fused-MBConv
# --------------------------------------------------------------------------------------
def _block_params(c_in, c_out, k, e, se_ratio, fused):
    mid = c_in * e
    first = k * k * c_in * mid if fused else c_in * mid + k * k * mid
    bn = 2 * mid * (1 if fused else 2) + 2 * c_out
    c_se = int(c_in * se_ratio) if se_ratio else 0
    se = 2 * mid * c_se + c_se + mid if se_ratio else 0
    return first + se + mid * c_out + bn


def _block_macs(c_in, c_out, k, e, se_ratio, fused, h, s):
    mid, h_out = c_in * e, math.ceil(h / s)
    c_se = int(c_in * se_ratio) if se_ratio else 0
    if fused:
        first = k * k * c_in * mid * h_out * h_out
    else:
        first = c_in * mid * h * h + k * k * mid * h_out * h_out
    return first + 2 * mid * c_se + mid * c_out * h_out * h_out


def test_mbconv_vs_fused_default_numbers():
    st = get_model_config("efficientnet-b0").stage(4)
    c_in, c_out, k, e, s, se = (
        st.in_channels,
        st.out_channels,
        st.kernel_size,
        st.expand_ratio,
        st.stride,
        st.se_ratio,
    )
    mid, h = c_in * e, stage_input("efficientnet-b0", 4)
    h_out = math.ceil(h / s)
    fig = figure(draw_mbconv_vs_fused, ("efficientnet-b0", 4, 0))
    assert_shows(
        fig,
        shape(1, c_in, h, h),
        shape(1, mid, h, h),
        shape(1, mid, h_out, h_out),
        shape(1, c_out, h_out, h_out),
        "expand: 1×1 conv",
        f"{c_in} → {mid} ch, BN + Swish",
        f"depthwise: {k}×{k}, stride {s}",
        f"{mid} ch, BN + Swish",
        f"expand: {k}×{k} conv, stride {s}",
        f"{mid} → {int(c_in * se)} → {mid} ch",
        f"{mid} → {c_out} ch, BN, no activation",
        f"no skip: stride {s}, {c_in} → {c_out} ch",
        "EfficientNet-B0 stage 4, block 0",
    )
    for fused in (False, True):
        params = _block_params(c_in, c_out, k, e, se, fused)
        macs = _block_macs(c_in, c_out, k, e, se, fused, h, s)
        assert_shows(fig, f"{params:,} parameters", f"{macs_text(macs)} multiply-adds")


def test_mbconv_vs_fused_real_v2_blocks():
    cfg = get_model_config("efficientnetv2-s")
    mb, fu = cfg.stage(4), cfg.stage(2)
    fig = figure(draw_mbconv_vs_fused, ("efficientnetv2-s", 4, 1), ("efficientnetv2-s", 2, 1))
    h_mb, h_fu = stage_input("efficientnetv2-s", 4, 1), stage_input("efficientnetv2-s", 2, 1)
    c, f = mb.out_channels, fu.out_channels  # block 1: stride 1, C -> C
    assert_shows(
        fig,
        shape(1, c, h_mb, h_mb),
        shape(1, c * mb.expand_ratio, h_mb, h_mb),
        shape(1, f, h_fu, h_fu),
        shape(1, f * fu.expand_ratio, h_fu, h_fu),
        f"expand: {fu.kernel_size}×{fu.kernel_size} conv",
        f"{f} → {f * fu.expand_ratio} ch, BN + Swish",
        "skip: input added",
        "EfficientNetV2-S stage 2, block 1",
    )
    assert labels(fig).count("se: squeeze-excite") == 1  # V2's fused stages have no SE
    assert_shows(
        fig, f"{_block_params(f, f, fu.kernel_size, fu.expand_ratio, None, True):,} parameters"
    )
    # The skip is drawn: one "+" node per column.
    assert sum(line == "+" for line in labels(fig)) == 2


def test_mbconv_vs_fused_is_legible():
    check_legible(figure(draw_mbconv_vs_fused, ("efficientnet-b0", 4, 0)))
    check_legible(
        figure(draw_mbconv_vs_fused, ("efficientnetv2-s", 4, 1), ("efficientnetv2-s", 2, 1))
    )


# --------------------------------------------------------------------------------------
# Bad input: clear errors
# --------------------------------------------------------------------------------------
def test_clear_errors():
    with pytest.raises(TypeError, match="block of type FusedMBConv"):
        draw_mbconv_vs_fused(fused_block=("efficientnet-b0", 4))
    with pytest.raises(ValueError, match="give input_size"):
        draw_separable_conv(MBConv(16, 24, 3, 2, 6))
    with pytest.raises(ValueError, match="has 16 channels, but the block expects 24"):
        draw_separable_conv(MBConv(24, 24, 3, 1, 6), input_size=(1, 16, 56, 56))
    with pytest.raises(ValueError, match="block stages 2-8"):
        draw_squeeze_excite(("efficientnet-b0", 9))
    with pytest.raises(ValueError, match="blocks 0-1"):
        draw_squeeze_excite(("efficientnet-b0", 4, 2))
    with pytest.raises(TypeError, match="block module"):
        draw_squeeze_excite("efficientnet-b0")
    with pytest.raises(ValueError, match="input_size must be"):
        draw_separable_conv(MBConv(24, 24, 3, 1, 6), input_size="56")


# --------------------------------------------------------------------------------------
# draw_architecture: drawn for the book's column
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["efficientnet-b0", "efficientnet-b7", "efficientnetv2-xl"])
def test_architecture_text_is_legible_in_the_column(name):
    ax = draw_architecture(name)
    fig = ax.figure
    assert smallest_screen_px(fig) >= MIN_SCREEN_PX
    check_legible(fig)
    cfg = get_model_config(name)
    channels = (
        [cfg.scaled_stem_channels]
        + [b.out_channels for b in cfg.scaled_blocks()]
        + [cfg.scaled_head_channels]
    )
    for c in channels:
        assert_shows(fig, f"{c} ch")
    for n in range(cfg.first_stage, cfg.head_stage + 1):
        assert_shows(fig, f"stage {n}")
    plt.close(fig)


def test_architecture_in_a_too_small_axes_warns():
    fig, ax = plt.subplots(figsize=(11.5, 3), dpi=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert draw_architecture("efficientnet-b0", ax=ax) is ax
    assert any("too small" in str(w.message) for w in caught)
    plt.close(fig)


def test_architecture_in_a_column_wide_axes_is_legible():
    # Chapter 5's B0-over-B7 figure: two Axes the width of the column.
    fig, axes = plt.subplots(
        2,
        1,
        figsize=(6.4, 8.8),
        dpi=100,
        gridspec_kw=dict(left=0, right=1, top=1, bottom=0, hspace=0.02),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draw_architecture("efficientnet-b0", ax=axes[0])
        draw_architecture("efficientnet-b7", ax=axes[1])
    check_legible(fig)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# The palette: readable, and distinguishable with colour-vision deficiencies
# --------------------------------------------------------------------------------------
FILLS = ["conv1x1", "depthwise", "conv", "se", "gate", "tensor", "plain"]


def test_text_on_every_fill_has_aaa_contrast():
    for key in FILLS + ["mbconv", "fused"]:
        assert contrast(PALETTE["text"], PALETTE[key]) >= 7, key
    assert contrast(PALETTE["muted"], "white") >= 7  # muted text sits on the white page


def test_fills_stay_apart_for_colour_blind_readers():
    # Simulated protan, deutan and tritan vision (Machado et al. 2009, full severity), as
    # colorspacious implements it; distances in CAM02-UCS, where about 5 is hard to tell apart.
    colorspacious = pytest.importorskip("colorspacious")
    import numpy as np

    rgb = {k: np.array(to_rgb(PALETTE[k])) for k in FILLS}
    for cvd in (None, "protanomaly", "deuteranomaly", "tritanomaly"):
        space = {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100}
        seen = {
            k: v if cvd is None else np.clip(colorspacious.cspace_convert(v, space, "sRGB1"), 0, 1)
            for k, v in rgb.items()
        }
        for a, b in combinations(FILLS, 2):
            if {a, b} != {"tensor", "plain"}:  # two greys, never used for two roles
                assert colorspacious.deltaE(seen[a], seen[b]) > 9, (cvd, a, b)
