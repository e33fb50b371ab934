r"""The φ explorer's one function: where compound scaling puts a model, and what it costs.

:func:`explore` takes the compound coefficient φ and the rule's α, β, γ (EfficientNet §3.3,
Eq. 3: depth :math:`d = \alpha^\phi`, width :math:`w = \beta^\phi`, resolution
:math:`r = \gamma^\phi`) or the official B0–B7 table, and returns the scaled model's
multipliers, image size, per-stage table (Table 1's columns), exact parameters and
multiply-adds (:mod:`effnet_tutorial.analytic`, no model is built) and its cost relative
to B0. The kernel widget (:mod:`effnet_tutorial.widgets`) and the page's static explorer
(:mod:`effnet_tutorial.static_explorer`) both show :meth:`Exploration.display_values`, so
the two show the same strings.

Conventions, decided here once:

* ``table="formula"``: B0's config with ``width_coefficient = β^φ``,
  ``depth_coefficient = α^φ`` and the image size ``round(224 · γ^φ)`` pixels, as
  chapter 1 scales it. ``table="official"``: φ must be an integer 0–7 and selects B0–B7
  (:data:`~effnet_tutorial.config.V1_COEFFICIENTS`); α, β and γ are checked but unused,
  because the published models were rounded by hand from the rule, not computed by it.
  A fractional φ with the official table is an error with a message; the widgets round φ
  half up to an integer when the official table is selected. ``table="lite"``: the
  official EfficientNet-Lite0–4 at φ = 0–4 (:data:`~effnet_tutorial.config.LITE_COEFFICIENTS`),
  B's width and depth coefficients with the stem and head kept fixed, no SE and ReLU6,
  so its table can be put next to B's.
* Valid ranges: :math:`0 \le \phi \le 10` (B7 is φ = 7) and :math:`1 \le \alpha, \beta,
  \gamma \le 2`. The paper requires :math:`\alpha, \beta, \gamma \ge 1` (each dimension
  grows with φ); with all three at least 1, :math:`\alpha\beta^2\gamma^2 \approx 2` leaves
  none of them above 2.
* :math:`\alpha\beta^2\gamma^2` more than :data:`PRODUCT_TOLERANCE` (10 %) away from 2 is
  not an error but a warning in :attr:`Exploration.warnings`: the paper's own choice gives
  1.92 (4 % below 2), and 10 % admits it while flagging products whose cost per unit of φ
  visibly departs from a doubling (at φ = 7, :math:`1.8^7 \approx 61` and
  :math:`2.2^7 \approx 250` against :math:`2^7 = 128`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from numbers import Real

from .analytic import STEM_KERNEL, STEM_STRIDE, cost_model
from .config import LITE_MODEL_NAMES, V1_COEFFICIENTS, ModelConfig, get_model_config
from .scaling import compound_coefficients

__all__ = ["explore", "Exploration", "StageRow", "Slider", "SLIDERS", "TABLES", "PUBLISHED_TOP1",
           "PUBLISHED_PHI", "TABLE_OPTIONS", "PHI_RANGE", "COEFFICIENT_RANGE", "PRODUCT_TARGET", "PRODUCT_TOLERANCE",
           "PRODUCT_WARNING", "PLOT_TITLE", "PLOT_XLABEL", "PLOT_YLABEL", "PLOT_TICKS",
           "official_points", "plot_range", "marker_label",
           "official_phi", "fixed", "rule", "rule_config", "coefficient_product", "product_warning",
           "stage_rows", "numbers_html", "RULE_LABEL", "OFFICIAL_LABEL", "STAGE_COLUMNS"]

#: ImageNet top-1 accuracy (%) of B0-B7 as published: Tan & Le (2019), "EfficientNet:
#: Rethinking Model Scaling for Convolutional Neural Networks", arXiv 1905.11946v5, Table 2.
#: Data, not computed: the book cannot train on ImageNet.
PUBLISHED_TOP1: dict[str, float] = {
    "efficientnet-b0": 77.1, "efficientnet-b1": 79.1, "efficientnet-b2": 80.1,
    "efficientnet-b3": 81.6, "efficientnet-b4": 82.9, "efficientnet-b5": 83.6,
    "efficientnet-b6": 84.0, "efficientnet-b7": 84.3,
}

#: What :func:`explore` scales: the rule at any φ, the published B0–B7, or Lite0–Lite4.
TABLES = ("formula", "official", "lite")
#: The φ that :func:`explore` accepts (B7 is φ = 7).
PHI_RANGE = (0.0, 10.0)
#: The α, β and γ that :func:`explore` accepts.
COEFFICIENT_RANGE = (1.0, 2.0)
#: What α·β²·γ² should be (§3.3, Eq. 3): each unit of φ doubles the multiply-adds.
PRODUCT_TARGET = 2.0
#: Relative distance of α·β²·γ² from 2 above which :func:`explore` adds a warning.
PRODUCT_TOLERANCE = 0.10
#: The warning's text; ``{value}`` is α·β²·γ² to 3 decimals, ``{direction}`` "above" or
#: "below". The static explorer fills in the same two fields.
PRODUCT_WARNING = (
    "α·β²·γ² = {value} is {direction} 2 by more than 10 %. EfficientNet constrains "
    "α·β²·γ² ≈ 2 (§3.3, Eq. 3) because the multiply-adds grow as d·w²·r² = (α·β²·γ²)^φ: "
    "with a product of 2 each unit of φ doubles the compute budget, so φ counts "
    "doublings. With {value} each unit of φ multiplies the cost by {value} instead."
)


#: How the explorers name a model: the rule at ``{phi}``, or the published model ``{k}``.
RULE_LABEL = "B0 scaled by the rule at φ = {phi}"
#: The published B``{k}``.
OFFICIAL_LABEL = "EfficientNet-B{k} (official table)"
#: The published Lite``{k}``.
LITE_LABEL = "EfficientNet-Lite{k} (official table)"


@dataclass(frozen=True)
class Slider:
    """One control of the explorers: ``values`` are ``start, start + step, ... stop``."""

    name: str
    label: str
    start: float
    stop: float
    step: float
    default: float

    @property
    def values(self) -> tuple[float, ...]:
        """The grid. Shape: -> tuple of floats."""
        n = round((self.stop - self.start) / self.step)
        # round(..., 6): the grid values are the decimal numbers the labels show (1.15, not
        # 1.1500000000000001), so both explorers evaluate exactly the same doubles.
        return tuple(round(self.start + i * self.step, 6) for i in range(n + 1))

    def snap(self, value: float) -> float:
        """The grid value nearest to ``value`` (a front end may send 1.1500000000000001).

        Shape: float -> float."""
        return min(self.values, key=lambda v: abs(v - value))


#: The explorers' slider grid: 29 x 9 x 7 x 9 points, defaults at the paper's α, β, γ.
SLIDERS: dict[str, Slider] = {
    "phi": Slider("phi", "φ", 0.0, 7.0, 0.25, 1.0),
    "alpha": Slider("alpha", "α", 1.0, 1.4, 0.05, 1.2),
    "beta": Slider("beta", "β", 1.0, 1.3, 0.05, 1.1),
    "gamma": Slider("gamma", "γ", 1.0, 1.4, 0.05, 1.15),
}

#: Table 1's column names (Tan & Le 2019): the resolution is the stage's input.
STAGE_COLUMNS = ("Stage", "Operator", "Resolution", "#Channels", "#Layers")
_OFFICIAL_NAMES = tuple(V1_COEFFICIENTS)             # φ = 0 ... 7 -> B0 ... B7
_TABLE_NAMES = {"official": _OFFICIAL_NAMES, "lite": LITE_MODEL_NAMES}   # φ = 0 ... 4 -> Lite0 ... Lite4
#: The table switch of the explorers: (label, value of ``explore(table=...)``).
TABLE_OPTIONS = (("pure formula", "formula"), ("official B0–B7", "official"),
                 ("official Lite0–Lite4", "lite"))
#: The largest φ of each published table: φ = 0, 1, ..., this names its models in order.
PUBLISHED_PHI = {table: len(names) - 1 for table, names in _TABLE_NAMES.items()}
_HEAD_OPERATOR = "Conv1x1 & Pooling & FC"


def fixed(x: float, digits: int) -> str:
    """``x`` with ``digits`` decimals, rounding half up on its exact binary value: the
    rule of JavaScript's ``Number.prototype.toFixed``, so the page shows the same string.

    Shape: float -> str.
    """
    return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def official_phi(phi: float) -> int:
    """φ rounded half up to an integer, as the widgets do when the official table is chosen.

    Shape: float -> int."""
    return int(math.floor(phi + 0.5))


@dataclass(frozen=True)
class StageRow:
    """One row of Table 1 (Tan & Le 2019): stage, operator, input resolution, output
    channels, number of layers."""

    stage: int
    operator: str
    height: int
    width: int
    channels: int
    layers: int

    @property
    def resolution(self) -> str:
        """``"224×224"``. Shape: -> str."""
        return f"{self.height}×{self.width}"


@dataclass(frozen=True)
class Exploration:
    """What :func:`explore` found for one setting. ``coefficient_product`` (α·β²·γ²) is
    ``None`` for the official table, which the rule did not compute."""

    phi: float
    alpha: float
    beta: float
    gamma: float
    table: str
    config: ModelConfig
    depth: float
    width: float
    resolution_factor: float
    coefficient_product: float | None
    resolution: int
    stages: tuple[StageRow, ...]
    params: int
    macs: int
    b0_macs: int
    warnings: tuple[str, ...]

    @property
    def macs_ratio(self) -> float:
        """Multiply-adds relative to B0 at 224 pixels. Shape: -> float."""
        return self.macs / self.b0_macs

    @property
    def predicted_ratio(self) -> float:
        """What the ideal law predicts for that ratio, :math:`d \\cdot w^2 \\cdot r^2`
        (EfficientNet §3.3). Shape: -> float."""
        d, w, r = self.depth, self.width, self.resolution_factor
        return d * w * w * r * r

    @property
    def model_label(self) -> str:
        """``"B0 scaled by the rule at φ = 1.50"`` or ``"EfficientNet-B3 (official table)"``."""
        if self.table in _TABLE_NAMES:
            label = OFFICIAL_LABEL if self.table == "official" else LITE_LABEL
            return label.format(k=official_phi(self.phi))
        return RULE_LABEL.format(phi=fixed(self.phi, 2))

    def display_values(self) -> dict[str, str]:
        """Every number the explorers show, formatted: the one place where they are formatted.

        Shape: -> dict of str (keys: the panels' ``data-field`` names)."""
        product = self.coefficient_product
        return {
            "model": self.model_label, "table": self.table,
            "phi": fixed(self.phi, 2), "alpha": fixed(self.alpha, 2),
            "beta": fixed(self.beta, 2), "gamma": fixed(self.gamma, 2),
            "depth": fixed(self.depth, 3), "width": fixed(self.width, 3),
            "resolution_factor": fixed(self.resolution_factor, 3),
            "resolution": f"{self.resolution}×{self.resolution}",
            "coefficient_product": "—" if product is None else fixed(product, 3),
            "params": f"{self.params:,}", "macs": f"{self.macs:,}",
            "macs_ratio": fixed(self.macs_ratio, 2) + "×",
            "predicted_ratio": fixed(self.predicted_ratio, 2) + "×",
            "warnings": " ".join(self.warnings),
        }

    def stage_table(self) -> list[list[str]]:
        """Table 1's rows as strings: stage, operator, resolution, #channels, #layers.

        Shape: -> 9 lists of 5 str."""
        return [[str(s.stage), s.operator, s.resolution, str(s.channels), str(s.layers)]
                for s in self.stages]

    def format(self) -> str:
        """A plain-text report (lines of at most 80 characters).

        Shape: -> str.
        """
        v = self.display_values()
        lines = [v["model"]]
        if self.table == "formula":
            lines.append(f"  α = {v['alpha']}, β = {v['beta']}, γ = {v['gamma']}, "
                         f"α·β²·γ² = {v['coefficient_product']}")
        lines += [f"  depth d = {v['depth']}, width w = {v['width']}, resolution r = "
                  f"{v['resolution_factor']}, image {v['resolution']}",
                  f"  parameters {v['params']}, multiply-adds {v['macs']}",
                  f"  cost {v['macs_ratio']} B0's (d·w²·r² predicts {v['predicted_ratio']})",
                  "",
                  f"  {'stage':>5}  {'operator':<24} {'resolution':>10} {'channels':>8} "
                  f"{'layers':>6}"]
        lines += [f"  {s:>5}  {op:<24} {res:>10} {c:>8} {n:>6}"
                  for s, op, res, c, n in self.stage_table()]
        for w in self.warnings:
            lines += [""] + _wrap("warning: " + w, 78)
        return "\n".join(lines)

    def to_frame(self):
        """The per-stage table as a pandas DataFrame, with Table 1's column names.

        Shape: -> DataFrame (9 rows for a B0-based model).
        """
        import pandas as pd

        return pd.DataFrame(self.stage_table(), columns=list(STAGE_COLUMNS))

    def to_html(self) -> str:
        """The numbers and the per-stage table as an HTML fragment. Every value sits in an
        element with a ``data-field`` attribute (the static explorer updates the same
        elements, and the tests read them).

        Shape: -> str.
        """
        return numbers_html(self.display_values(), self.stage_table())


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def numbers_html(values: dict[str, str], rows: list[list[str]]) -> str:
    """HTML of :meth:`Exploration.to_html` from its display values and stage rows.

    Shape: (dict, rows) -> str."""
    from html import escape

    def cell(field: str) -> str:
        return f'<span data-field="{field}">{escape(values[field])}</span>'

    def hidden(flag: bool) -> str:
        return " hidden" if flag else ""

    def align(j: int) -> str:  # the operator names left, the numbers right
        return f'style="padding:1px 8px;text-align:{"left" if j == 1 else "right"}"'

    body = "".join("<tr>" + "".join(f"<td {align(j)}>{escape(c)}</td>" for j, c in enumerate(row))
                   + "</tr>" for row in rows)
    head = "".join(f"<th {align(j)}>{h}</th>" for j, h in enumerate(STAGE_COLUMNS))
    warning = values["warnings"]
    return (
        '<div class="effx-numbers" style="font-size:14px;line-height:1.5">'
        f'<div style="font-weight:bold">{cell("model")}</div>'
        f'<div>depth d = {cell("depth")} &nbsp; width w = {cell("width")} &nbsp; '
        f'resolution r = {cell("resolution_factor")} &nbsp; image {cell("resolution")} px</div>'
        f'<div data-row="rule"{hidden(values["table"] != "formula")}>α = {cell("alpha")}, '
        f'β = {cell("beta")}, γ = {cell("gamma")}: α·β²·γ² = {cell("coefficient_product")}</div>'
        f'<div>parameters <b>{cell("params")}</b> &nbsp; multiply-adds <b>{cell("macs")}</b></div>'
        f'<div>cost {cell("macs_ratio")} B0\'s; d·w²·r² predicts {cell("predicted_ratio")}</div>'
        f'<div data-row="warnings" style="color:#b00020"{hidden(not warning)}>'
        f'{cell("warnings")}</div>'
        f'<table class="effx-stages" style="border-collapse:collapse;margin:4px 0 0 0">'
        f'<thead><tr>{head}</tr></thead><tbody data-field="stages">{body}</tbody></table>'
        '</div>'
    )


# --------------------------------------------------------------------------------------
# Checks: a clear message for every bad value, never a traceback from deep inside
# --------------------------------------------------------------------------------------
def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _check(phi, alpha, beta, gamma, table) -> tuple[float, float, float, float]:
    if table not in TABLES:
        raise ValueError(f"table must be 'formula' (the rule d = α^φ, w = β^φ, r = γ^φ), "
                         f"'official' (the published B0–B7) or 'lite' (the published Lite0–Lite4), "
                         f"got {table!r}")
    phi = _number("φ (phi)", phi)
    lo, hi = PHI_RANGE
    if phi < lo:
        raise ValueError(f"φ must be ≥ 0, got φ = {phi:g}: φ = 0 is B0 itself and compound scaling "
                         "only grows it (d = α^φ ≥ 1). To shrink B0, lower its width or depth "
                         "coefficient directly (ModelConfig width_coefficient=0.5 ...).")
    if phi > hi:
        raise ValueError(f"φ = {phi:g} is beyond this explorer's range {lo:g}–{hi:g} (B7 is φ = 7; "
                         f"φ = 10 already costs about 1.92^10 ≈ 680 times B0).")
    coefficients = []
    for name, dim, value in (("α (alpha)", "depth d = α^φ", alpha),
                             ("β (beta)", "width w = β^φ", beta),
                             ("γ (gamma)", "resolution r = γ^φ", gamma)):
        value = _number(name, value)
        if value < COEFFICIENT_RANGE[0]:
            raise ValueError(f"{name} must be ≥ 1, got {value:g}: the {dim} would shrink as φ "
                             f"grows ({value:g}^2 = {value ** 2:.3g} at φ = 2). EfficientNet §3.3 "
                             "requires α ≥ 1, β ≥ 1, γ ≥ 1, so that every dimension grows.")
        if value > COEFFICIENT_RANGE[1]:
            raise ValueError(f"{name} = {value:g} is above 2: with α, β, γ ≥ 1 the constraint "
                             "α·β²·γ² ≈ 2 (§3.3, Eq. 3) leaves none of them above 2 (β and γ at "
                             "most about 1.41). The paper's grid search found α = 1.2, β = 1.1, "
                             "γ = 1.15.")
        coefficients.append(value)
    if table in _TABLE_NAMES:
        top = len(_TABLE_NAMES[table]) - 1
        models, source = (("B0–B", "efficientnet_params") if table == "official"
                          else ("Lite0–Lite", "efficientnet_lite_params"))
        if phi != int(phi) or phi > top:
            raise ValueError(f"the {table} table holds the published {models}{top} at φ = 0, 1, "
                             f"..., {top} (tensorflow/tpu {source}); φ = {phi:g} is not "
                             "one of them. "
                             "Use table='formula' for the rule at any φ, or round φ "
                             f"(the widgets use {official_phi(min(phi, top))}).")
    return (phi, *coefficients)


def product_warning(product: float) -> str | None:
    """The warning for α·β²·γ² = ``product`` (§3.3, Eq. 3), or None within 10 % of 2.

    Shape: float -> str | None."""
    if abs(product - PRODUCT_TARGET) <= PRODUCT_TOLERANCE * PRODUCT_TARGET:
        return None
    direction = "above" if product > PRODUCT_TARGET else "below"
    return PRODUCT_WARNING.format(value=fixed(product, 3), direction=direction)


# --------------------------------------------------------------------------------------
# The function behind both explorers
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _b0() -> tuple[ModelConfig, int]:
    b0 = get_model_config(_OFFICIAL_NAMES[0])
    return b0, cost_model(b0).macs(1, b0.resolution, b0.resolution)


def stage_rows(config: ModelConfig, resolution: int) -> tuple[StageRow, ...]:
    """Table 1 of Tan & Le (2019) for a B0-based config at ``resolution``: stage 1 is the
    stem, 2-8 the MBConv stages, 9 the head; the resolution is each stage's input.

    Shape: (config, R) -> 9 rows.
    """
    size = resolution
    stem = f"Conv{STEM_KERNEL}x{STEM_KERNEL}"
    rows = [StageRow(1, stem, size, size, config.scaled_stem_channels, 1)]
    size = -(-size // STEM_STRIDE)                    # ceil(R / 2), as analytic.py
    for number, (base, cfg) in enumerate(zip(config.blocks, config.scaled_blocks()), start=2):
        k = base.kernel_size
        rows.append(StageRow(number, f"MBConv{base.expand_ratio}, k{k}x{k}", size, size,
                             cfg.out_channels, cfg.num_repeats))
        size = -(-size // cfg.stride)
    rows.append(StageRow(len(rows) + 1, _HEAD_OPERATOR, size, size, config.scaled_head_channels, 1))
    return tuple(rows)


def rule(phi: float, alpha: float, beta: float, gamma: float) -> tuple[float, float, float, int]:
    """Depth, width and resolution multipliers of the rule, and the image size in pixels,
    ``round(224 γ^φ)`` (EfficientNet §3.3, Eq. 3, via ``compound_coefficients``).

    Shape: scalars -> (d, w, r, pixels).
    """
    base = _b0()[0].resolution
    c = compound_coefficients(phi, alpha, beta, gamma, base_resolution=base)
    return c["depth"], c["width"], gamma ** phi, round(c["resolution"])


def rule_config(depth: float, width: float, resolution: int,
                name: str = "compound-rule") -> ModelConfig:
    """B0's config with the rule's depth and width coefficients and image size.

    Shape: scalars -> ModelConfig.
    """
    return replace(_b0()[0], name=name, width_coefficient=width, depth_coefficient=depth,
                   resolution=resolution, train_resolution=resolution)


def coefficient_product(alpha: float, beta: float, gamma: float) -> float:
    """α·β²·γ², the factor by which one unit of φ multiplies the multiply-adds (≈ 2,
    EfficientNet §3.3, Eq. 3). Shape: scalars -> float."""
    return alpha * beta ** 2 * gamma ** 2


def explore(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15,
            table: str = "formula") -> Exploration:
    r"""Scale B0 by compound scaling (EfficientNet §3.3, Eq. 3) and count the result.

    ``table="formula"``: depth :math:`\alpha^\phi`, width :math:`\beta^\phi`, image size
    ``round(224 γ^φ)``; ``table="official"``: the published B0–B7 at φ = 0–7 (α, β, γ
    unused); ``table="lite"``: the published Lite0–Lite4 at φ = 0–4 (fixed stem and head).
    Bad values raise ValueError/TypeError with a message saying what is expected;
    α·β²·γ² far from 2 is a warning in the result (see the module docstring).

    Shape: scalars -> Exploration (multipliers, stage table, exact counts).
    """
    phi, alpha, beta, gamma = _check(phi, alpha, beta, gamma, table)
    b0, b0_macs = _b0()
    if table in _TABLE_NAMES:
        config = get_model_config(_TABLE_NAMES[table][int(phi)])
        depth, width = config.depth_coefficient, config.width_coefficient
        resolution = config.resolution
        r_factor, product = resolution / b0.resolution, None
    else:
        depth, width, r_factor, resolution = rule(phi, alpha, beta, gamma)
        product = coefficient_product(alpha, beta, gamma)
        name = f"compound-phi{phi:g}-a{alpha:g}-b{beta:g}-g{gamma:g}"
        config = rule_config(depth, width, resolution, name=name)
    cost = cost_model(config, num_classes=1000, in_channels=3)
    warning = None if product is None else product_warning(product)
    return Exploration(phi=phi, alpha=alpha, beta=beta, gamma=gamma, table=table, config=config,
                       depth=depth, width=width, resolution_factor=r_factor,
                       coefficient_product=product, resolution=resolution,
                       stages=stage_rows(config, resolution), params=cost.params,
                       macs=cost.macs(1, resolution, resolution), b0_macs=b0_macs,
                       warnings=() if warning is None else (warning,))


# --------------------------------------------------------------------------------------
# The plot of both explorers: B0-B7 (counted multiply-adds, top-1 as published) and the point
# --------------------------------------------------------------------------------------
def official_points() -> list[tuple[str, int, float]]:
    """(label, counted multiply-adds, published top-1) of B0-B7 (top-1: Table 2).

    Shape: -> 8 tuples."""
    return [(f"B{k}", explore(k, table="official").macs, top1)
            for k, top1 in enumerate(PUBLISHED_TOP1.values())]


def plot_range() -> tuple[float, float]:
    """The multiply-add axis of both explorers' plots, in G: from half of B0's count to
    four times B7's; points beyond it are drawn at the edge. Shape: -> (lo, hi)."""
    points = official_points()
    return points[0][1] / 2e9, points[-1][1] * 4 / 1e9


#: The title and axis labels of both explorers' plot.
PLOT_TITLE = "B0–B7: counted multiply-adds, top-1 as published (Tan & Le 2019, Table 2)"
#: The plot's horizontal axis.
PLOT_XLABEL = "multiply-adds (G, log scale)"
#: The plot's vertical axis.
PLOT_YLABEL = "ImageNet top-1 (%), published"
#: Tick positions (G) of the multiply-add axis, in both explorers' plots.
PLOT_TICKS = (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100)


def marker_label(result: Exploration) -> str:
    """The text at the current point's marker, e.g. ``φ = 1.50: 1.37 G``.

    Shape: Exploration -> str."""
    return f"φ = {fixed(result.phi, 2)}: {fixed(result.macs / 1e9, 2)} G"
