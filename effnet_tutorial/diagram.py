r"""Architecture diagrams drawn from the config, so one function draws B0, B7 or V2-S.

Each stage is a box labelled with its block kind, kernel, expansion, output channels,
repeats and output feature-map size, in the layout of the EfficientNet paper's Table 1.
"""
from __future__ import annotations

import math

from .config import as_config

__all__ = ["stage_table", "draw_architecture"]


def stage_table(model_or_name, image_size: int | None = None, first_stage: int | None = None) -> list[dict]:
    """One row per stage, like Table 1 of the EfficientNet paper (stem and head included).

    Stages are numbered as each paper does (``ModelConfig.first_stage``): from 1 for V1
    (Table 1), from 0 for V2 (Table 4); ``first_stage`` overrides.

    Keys: ``stage``, ``operator``, ``kernel``, ``expand_ratio``, ``stride``,
    ``in_channels``, ``out_channels``, ``repeats``, ``input_size``, ``output_size``
    (feature-map side length for a square ``image_size`` input; default: native size).
    """
    cfg = as_config(model_or_name)
    if first_stage is None:
        first_stage = cfg.first_stage
    size = image_size or cfg.resolution
    rows = []

    def add(op, k, e, s, cin, cout, n):
        nonlocal size
        out = math.ceil(size / s)
        rows.append(dict(stage=first_stage + len(rows), operator=op, kernel=k, expand_ratio=e, stride=s,
                         in_channels=cin, out_channels=cout, repeats=n, input_size=size, output_size=out))
        size = out

    add("Conv", 3, None, 2, cfg.in_channels, cfg.scaled_stem_channels, 1)
    for b in cfg.scaled_blocks():
        op = ("Fused-MBConv" if b.kind == "fused" else "MBConv") + str(b.expand_ratio)
        add(op, b.kernel_size, b.expand_ratio, b.stride, b.in_channels, b.out_channels, b.num_repeats)
    add("Conv1x1 & Pool & FC", 1, None, 1, cfg.scaled_blocks()[-1].out_channels, cfg.scaled_head_channels, 1)
    return rows


_COLOURS = {"Conv": "#d9d9d9", "MBConv": "#9ecae1", "Fused": "#fdae6b", "Head": "#c7e9c0"}


def draw_architecture(model_or_name, image_size: int | None = None, ax=None, title: str | None = None):
    """Draw the stages of a model as a row of boxes (height grows with channels).

    Accepts a model name, a :class:`~effnet_tutorial.config.ModelConfig` or an
    :class:`~effnet_tutorial.model.EfficientNet`. Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    cfg = as_config(model_or_name)
    rows = stage_table(cfg, image_size)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(8.0, 1.25 * len(rows)), 3.6), dpi=100)
    top = math.sqrt(max(r["out_channels"] for r in rows))
    width, gap = 1.0, 0.25
    for i, r in enumerate(rows):
        op = r["operator"]
        kind = "Head" if op.startswith("Conv1x1") else "Fused" if op.startswith("Fused") else \
            "MBConv" if op.startswith("MBConv") else "Conv"
        h = 0.9 + 2.1 * math.sqrt(r["out_channels"]) / top
        x = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x, -h / 2), width, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=_COLOURS[kind], edgecolor="#333333", linewidth=0.8))
        name = {"Head": "Conv1x1\n+Pool+FC", "Conv": "Conv3x3"}.get(kind, op.replace("-MBConv", "-\nMBConv"))
        label = f"{name}\nk{r['kernel']}" if kind in ("MBConv", "Fused") else name
        label += f"\nx{r['repeats']}\n{r['out_channels']} ch\n{r['output_size']}x{r['output_size']}"
        ax.text(x + width / 2, 0, label, ha="center", va="center", fontsize=7)
        ax.text(x + width / 2, -h / 2 - 0.25, f"stage {r['stage']}", ha="center", va="top", fontsize=7)
    ax.set_xlim(-gap, len(rows) * (width + gap))
    ax.set_ylim(-2.1, 1.8)
    ax.axis("off")
    res = image_size or cfg.resolution
    ax.set_title(title or f"{cfg.name} at {res}x{res}: stages (box height ~ sqrt(channels))", fontsize=10)
    return ax
