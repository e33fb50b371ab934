r"""Architecture diagrams drawn from the config, so one function draws B0, B7 or V2-S.

Each stage is a box labelled with its block kind, kernel, expansion, output channels,
repeats and output feature-map size, in the layout of the EfficientNet paper's Table 1.

The figures are drawn for the book's text column. Every layout here is computed in
*on-screen pixels* of that column (:data:`BOOK_COLUMN_PX`), so that text keeps its size
on screen (at least :data:`MIN_SCREEN_PX`) whatever the number of stages: a model with
more stages than fit in one row wraps onto the next. :mod:`effnet_tutorial.schematics`
draws its block schematics with the same kit (:class:`Canvas`, :data:`PALETTE`).
"""

from __future__ import annotations

import math
import warnings

from .config import as_config

__all__ = [
    "stage_table",
    "draw_architecture",
    "BOOK_COLUMN_PX",
    "FIGURE_PX",
    "MIN_SCREEN_PX",
    "DPI",
    "OKABE_ITO",
    "PALETTE",
    "screen_scale",
    "screen_px",
]

#: Width (CSS px) of a captioned figure in the book's text column, measured in Debian's
#: Chromium with a 1280 px window (sphinx-book-theme 1.3.0, Jupyter Book 1.0.4; a plain
#: paragraph is 676 px wide there, 790 px at 1440). An image up to this wide is shown at its
#: natural size (it is not enlarged), a wider one is scaled down to fit (``max-width: 100%``).
BOOK_COLUMN_PX = 660
#: Resolution at which the chapters store their figures (CONTRIBUTING.md).
DPI = 100
#: Width of the figures drawn here, in px at :data:`DPI`: Jupyter's inline backend saves
#: with ``bbox_inches="tight"``, which adds ``savefig.pad_inches`` (0.1 in, 10 px) on each
#: side, so the stored image is at most :data:`BOOK_COLUMN_PX` wide and is not shrunk.
FIGURE_PX = BOOK_COLUMN_PX - 20
#: Smallest text, in on-screen px at the book's column width, that issue 9 accepts.
MIN_SCREEN_PX = 10

#: The colour-blind-safe palette of Okabe & Ito (2008), "Color Universal Design (CUD): how to
#: make figures and presentations that are friendly to colorblind people", Table 1.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}


def _tint(hex_colour: str, keep: float) -> str:
    """Mix a colour with white, keeping ``keep`` of it: light fills on which dark text reads."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - keep * (255 - c)):02X}" for c in rgb)


#: Fills by *operation*, shared by the architecture diagram and the block schematics: a
#: 1x1 convolution is always sky blue, a depthwise one orange, a regular kxk one reddish
#: purple, Squeeze-and-Excitation bluish green. ``mbconv`` and ``fused`` stages take the
#: colour of the convolution that defines them. All text is ``text`` on these fills
#: (contrast at least 7:1). The tints were chosen so that any two of the coloured fills stay
#: apart (CAM02-UCS distance above 9, with the greys too) also for simulated protan, deutan
#: and tritan vision (colorspacious' model of Machado et al. 2009, severity 100).
PALETTE = {
    "conv1x1": _tint(OKABE_ITO["sky_blue"], 0.45),
    "depthwise": _tint(OKABE_ITO["orange"], 0.85),
    "conv": _tint(OKABE_ITO["reddish_purple"], 0.65),
    "se": _tint(OKABE_ITO["bluish_green"], 0.65),
    "gate": _tint(OKABE_ITO["yellow"], 0.65),
    "tensor": "#E3E3E3",
    "plain": "#D4D4D4",
    "mbconv": _tint(OKABE_ITO["orange"], 0.85),
    "fused": _tint(OKABE_ITO["reddish_purple"], 0.65),
    "text": "#1A1A1A",
    "muted": "#4D4D4D",
    "edge": "#4D4D4D",
    "line": "#333333",
}

#: Text sizes in on-screen px (10 pt at 100 dpi is 13.9 px).
FONT_PX = 13.9
TITLE_PX = 15.3


def screen_scale(fig) -> float:
    """How much the book shrinks ``fig``'s image: 1 up to :data:`BOOK_COLUMN_PX` wide, less
    for a wider figure. Shape: Figure -> float in (0, 1]."""
    return min(1.0, BOOK_COLUMN_PX / (fig.get_figwidth() * fig.dpi))


def screen_px(fontsize_pt: float, fig) -> float:
    """On-screen size, in px at the book's column width, of ``fontsize_pt`` text in ``fig``.

    Shape: (pt, Figure) -> px.
    """
    return fontsize_pt * fig.dpi / 72 * screen_scale(fig)


def text_width(s: str, size_px: float, bold: bool = False) -> float:
    """Width in px of one line of text drawn ``size_px`` px high (the default font).

    Shape: str -> float.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    prop = FontProperties(weight="bold" if bold else "normal")
    return TextPath((0, 0), s, size=size_px, prop=prop).get_extents().width


class Canvas:
    """An Axes whose data unit is one on-screen px of the book's column, y pointing down.

    With ``ax=None`` a figure exactly ``width`` x ``height`` px (at :data:`DPI`) is made,
    so one unit is one px on screen. Given an ``ax``, the drawing is scaled uniformly to
    fit it (``self.unit`` on-screen px per unit), and a warning says when its text would
    fall below :data:`MIN_SCREEN_PX`. Sizes passed to the methods are in units.

    Shape: (width, height[, Axes]) -> a canvas on that Axes (``.ax``, ``.fig``).
    """

    def __init__(self, width: float, height: float, ax=None, what: str = "this diagram"):
        import matplotlib.pyplot as plt

        if ax is None:
            fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
            ax = fig.add_axes((0, 0, 1, 1))
        fig = ax.figure
        box = ax.get_position()
        scale = screen_scale(fig)
        w_screen = box.width * fig.get_figwidth() * fig.dpi * scale
        h_screen = box.height * fig.get_figheight() * fig.dpi * scale
        self.unit = min(w_screen / width, h_screen / height)
        self.ax, self.fig, self.width = ax, fig, width
        self._pt_per_unit = self.unit / scale * 72 / fig.dpi
        half_w, half_h = w_screen / self.unit / 2, h_screen / self.unit / 2
        ax.set_xlim(width / 2 - half_w, width / 2 + half_w)
        ax.set_ylim(height / 2 + half_h, height / 2 - half_h)  # y grows downwards, as on screen
        ax.axis("off")
        smallest = FONT_PX * self.unit
        if smallest < MIN_SCREEN_PX - 1e-9:
            warnings.warn(
                f"the Axes is too small for {what}: its text would be {smallest:.1f} px on "
                f"screen at the book's column width ({BOOK_COLUMN_PX} px), below {MIN_SCREEN_PX} "
                f"px. Pass ax=None (a figure of its own, sized for the column), or give the Axes "
                f"{width:.0f} x {height:.0f} px at {fig.dpi:.0f} dpi in a figure at most "
                f"{FIGURE_PX / DPI:.1f} in wide",
                stacklevel=3,
            )

    def pt(self, size: float) -> float:
        """Font size in points for text ``size`` units high."""
        return size * self._pt_per_unit

    def title(self, s: str):
        """The figure's title, centred at the top."""
        return self.text(self.width / 2, TITLE_PX * 1.1, s, size=TITLE_PX, bold=True)

    def text(
        self,
        x,
        y,
        s,
        size=FONT_PX,
        bold=False,
        colour=None,
        ha="center",
        va="center",
        italic=False,
        **kwargs,
    ):
        """One line (or lines) of text at (x, y)."""
        return self.ax.text(
            x,
            y,
            s,
            fontsize=self.pt(size),
            fontweight="bold" if bold else "normal",
            fontstyle="italic" if italic else "normal",
            color=colour or PALETTE["text"],
            ha=ha,
            va=va,
            **kwargs,
        )

    def box(
        self,
        x,
        y,
        w,
        h,
        fill,
        lines=(),
        size=FONT_PX,
        bold=1,
        line_height=1.3,
        hatch=None,
        radius=6.0,
        zorder=1,
    ):
        """A rounded box with top-left corner (x, y) and centred lines of text, the first
        ``bold`` of them in bold."""
        from matplotlib.patches import FancyBboxPatch

        self.ax.add_patch(
            FancyBboxPatch(
                (x, y),
                w,
                h,
                boxstyle=f"round,pad=0,rounding_size={radius}",
                facecolor=fill,
                edgecolor=PALETTE["edge"],
                linewidth=self.pt(1.2),
                hatch=hatch,
                zorder=zorder,
            )
        )
        step = line_height * size
        top = y + h / 2 - step * (len(lines) - 1) / 2
        for i, line in enumerate(lines):
            self.text(x + w / 2, top + i * step, line, size=size, bold=i < bold, zorder=zorder + 1)

    def arrow(self, start, end, colour=None, width=1.4, head=9.0):
        """A straight arrow from ``start`` to ``end``."""
        self.ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops=dict(
                arrowstyle="-|>",
                color=colour or PALETTE["line"],
                linewidth=self.pt(width),
                shrinkA=0,
                shrinkB=0,
                mutation_scale=self.pt(head),
            ),
        )

    def path(self, points, colour=None, width=1.4, head=9.0, dashes=None):
        """A polyline through ``points`` with an arrow head on its last segment."""
        xs, ys = zip(*points)
        kwargs = dict(
            color=colour or PALETTE["line"], linewidth=self.pt(width), solid_capstyle="butt"
        )
        if dashes:
            kwargs.update(linestyle=(0, dashes))
        self.ax.plot(xs[:-1], ys[:-1], **kwargs)
        self.ax.plot(xs[-2:], ys[-2:], **kwargs)
        self.arrow(points[-2], points[-1], colour=colour, width=width, head=head)

    def dot(self, x, y, r=3.0):
        """A junction: where a path branches off."""
        from matplotlib.patches import Circle

        self.ax.add_patch(Circle((x, y), r, facecolor=PALETTE["line"], edgecolor="none", zorder=4))

    def node(self, x, y, symbol, r=9.0):
        """A small circle with ``+`` or ``×`` in it (addition, multiplication)."""
        from matplotlib.patches import Circle

        self.ax.add_patch(
            Circle((x, y), r, facecolor="white", edgecolor=PALETTE["line"], linewidth=self.pt(1.4))
        )
        self.text(x, y, symbol, size=FONT_PX * 1.1, bold=True)


# --------------------------------------------------------------------------------------
# The stage table and the architecture diagram
# --------------------------------------------------------------------------------------
def stage_table(
    model_or_name, image_size: int | None = None, first_stage: int | None = None
) -> list[dict]:
    """One row per stage, like Table 1 of the EfficientNet paper (stem and head included).

    Stages are numbered as each paper does (``ModelConfig.first_stage``): from 1 for V1
    (Table 1), from 0 for V2 (Table 4); ``first_stage`` overrides.

    Keys: ``stage``, ``operator``, ``kernel``, ``expand_ratio``, ``stride``,
    ``in_channels``, ``out_channels``, ``repeats``, ``input_size``, ``output_size``
    (feature-map side length for a square ``image_size`` input; default: native size).

    Shape: model | config | name -> one dict per stage, stem and head included (9 for B0).
    """
    cfg = as_config(model_or_name)
    if first_stage is None:
        first_stage = cfg.first_stage
    size = image_size or cfg.resolution
    rows = []

    def add(op, k, e, s, cin, cout, n):
        nonlocal size
        out = math.ceil(size / s)
        rows.append(
            dict(
                stage=first_stage + len(rows),
                operator=op,
                kernel=k,
                expand_ratio=e,
                stride=s,
                in_channels=cin,
                out_channels=cout,
                repeats=n,
                input_size=size,
                output_size=out,
            )
        )
        size = out

    add("Conv", 3, None, 2, cfg.in_channels, cfg.scaled_stem_channels, 1)
    for b in cfg.scaled_blocks():
        op = ("Fused-MBConv" if b.kind == "fused" else "MBConv") + str(b.expand_ratio)
        add(
            op,
            b.kernel_size,
            b.expand_ratio,
            b.stride,
            b.in_channels,
            b.out_channels,
            b.num_repeats,
        )
    add(
        "Conv1x1 & Pool & FC",
        1,
        None,
        1,
        cfg.scaled_blocks()[-1].out_channels,
        cfg.scaled_head_channels,
        1,
    )
    return rows


def _stage_box(row: dict) -> tuple[str, list[str]]:
    """(fill key, lines of text) of one stage's box; the operator's lines come first."""
    op, k = row["operator"], row["kernel"]
    layers = f"{row['repeats']} layer" + ("s" if row["repeats"] != 1 else "")
    tail = [layers, f"{row['out_channels']} ch", f"{row['output_size']}×{row['output_size']}"]
    if op.startswith("Conv1x1"):
        return "plain", ["Conv1×1", "Pool, FC"] + tail[1:]
    if op == "Conv":
        return "plain", [f"Conv{k}×{k}", f"stride {row['stride']}"] + tail[1:]
    if op.startswith("Fused"):
        return "fused", ["Fused-", op[len("Fused-") :], f"k{k}×{k}"] + tail
    return "mbconv", [op, f"k{k}×{k}"] + tail


def draw_architecture(
    model_or_name, image_size: int | None = None, ax=None, title: str | None = None
):
    """Draw the stages of a model as boxes in reading order (height grows with channels).

    One box per row of :func:`stage_table` (EfficientNet Table 1, EfficientNetV2 Table 4):
    operator, kernel, layers, output channels and output size. The boxes are laid out for
    the book's text column (:data:`BOOK_COLUMN_PX`): as many per row as fit with labels of
    at least 10 pt (13.9 px on screen), so B0, B7 and V2-XL (9 stages) take two rows. Box
    height grows with the square root of the output channels.

    Accepts a model name, a :class:`~effnet_tutorial.config.ModelConfig` or an
    :class:`~effnet_tutorial.model.EfficientNet`. With ``ax=None`` the figure is made to
    size; a given ``ax`` should be about as wide as the column and tall enough (a warning
    says when its text would be too small). Returns the matplotlib ``Axes``.

    Shape: model | config | name -> Axes.
    """
    cfg = as_config(model_or_name)
    rows = stage_table(cfg, image_size)
    boxes = [_stage_box(r) for r in rows]

    f, lh, pad = FONT_PX, 1.3 * FONT_PX, 8.0
    bold = [2 if kind == "fused" else 1 for kind, _ in boxes]  # lines of the operator's name
    box_w = pad * 2 + max(
        text_width(line, f, bold=i < b)
        for (_, lines), b in zip(boxes, bold)
        for i, line in enumerate(lines)
    )
    gap, margin = 26.0, 14.0  # gap holds the arrow; margin keeps the wrap connector in view
    if ax is None:
        width = float(FIGURE_PX)
    else:
        fig = ax.figure
        width = ax.get_position().width * fig.get_figwidth() * fig.dpi * screen_scale(fig)
    per_row = max(1, int((width - 2 * margin + gap) // (box_w + gap)))
    n_rows = math.ceil(len(rows) / per_row)
    per_row = math.ceil(len(rows) / n_rows)  # balance the rows: 5 + 4, not 6 + 3
    width = max(width, 2 * margin + per_row * box_w + (per_row - 1) * gap)

    text_h = [len(lines) * lh + 2 * pad for _, lines in boxes]
    h_min, top = max(text_h), math.sqrt(max(r["out_channels"] for r in rows))
    heights = [h_min + 0.8 * h_min * math.sqrt(r["out_channels"]) / top for r in rows]
    title_h, label_h, row_gap = 2.2 * TITLE_PX, 1.6 * f, 22.0
    row_h = [max(heights[i * per_row : (i + 1) * per_row]) for i in range(n_rows)]
    height = title_h + sum(label_h + h for h in row_h) + row_gap * (n_rows - 1) + 10.0

    canvas = Canvas(width, height, ax=ax, what=f"the diagram of {cfg.name}")
    res = image_size or cfg.resolution
    canvas.title(title or f"{cfg.name} at {res}×{res}: stages (box height grows with √channels)")
    x0 = (width - (per_row * box_w + (per_row - 1) * gap)) / 2
    y = title_h
    centres = []
    for i, (r, (kind, lines), h, b) in enumerate(zip(rows, boxes, heights, bold)):
        row, col = divmod(i, per_row)
        if col == 0 and row:
            y += label_h + row_h[row - 1] + row_gap
        x = x0 + col * (box_w + gap)
        mid = y + label_h + row_h[row] / 2
        canvas.text(x + box_w / 2, y + label_h / 2, f"stage {r['stage']}", colour=PALETTE["muted"])
        canvas.box(x, mid - h / 2, box_w, h, PALETTE[kind], lines, bold=b)
        centres.append((x, mid, h))
    for i in range(len(rows) - 1):
        (xa, ya, ha), (xb, yb, _) = centres[i], centres[i + 1]
        if (i + 1) % per_row:
            canvas.arrow((xa + box_w, ya), (xb, yb))
        else:  # wrap: down from the end of this row, back left, into the next row's first box
            y_turn = ya + row_h[i // per_row] / 2 + row_gap / 2 + 2
            canvas.path(
                [
                    (xa + box_w / 2, ya + ha / 2),
                    (xa + box_w / 2, y_turn),
                    (xb - margin * 0.6, y_turn),
                    (xb - margin * 0.6, yb),
                    (xb, yb),
                ]
            )
    return canvas.ax
