r"""The φ explorer as a kernel widget (ipywidgets 8 + matplotlib), for Jupyter, JupyterLab
and Colab.

>>> from effnet_tutorial.widgets import scaling_explorer
>>> scaling_explorer()          # sliders φ, α, β, γ; pure formula, B0-B7 or Lite0-Lite4
ScalingExplorer(phi=1, alpha=1.2, beta=1.1, gamma=1.15, table='formula')

Everything the widget shows comes from :func:`effnet_tutorial.explore.explore` (EfficientNet
§3.3, Eq. 3, counted in closed form by :mod:`effnet_tutorial.analytic`). The logic lives in
plain functions and classes that work without a front end (:func:`view`,
:class:`CostPlot`, :func:`estimate_build_memory`, :func:`build_and_trace`), so the tests
call them directly; :class:`ScalingExplorer` only wires them to the controls.

This module imports ipywidgets and matplotlib; ``import effnet_tutorial`` does not import it.
"""
from __future__ import annotations

import html
import io
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from .analytic import cost_model
from .config import ModelConfig
from .explore import (PLOT_TICKS, PLOT_TITLE, PLOT_XLABEL, PLOT_YLABEL, PUBLISHED_PHI, SLIDERS,
                      TABLE_OPTIONS, Exploration, marker_label, official_phi, official_points,
                      plot_range, explore)

__all__ = ["scaling_explorer", "ScalingExplorer", "View", "view", "CostPlot", "plot_range",
           "MemoryEstimate", "estimate_build_memory", "BuildReport", "build_and_trace",
           "BUILD_MEMORY_LIMIT", "ACTIVATION_FACTOR"]

#: The "build and trace" button refuses models whose estimated memory exceeds this
#: (2 GiB), or what the machine has available, whichever is smaller. A B7 at 600 pixels
#: needs about 0.65 GiB; a free Colab has about 12 GiB, a 2-core CI runner about 7 GiB.
BUILD_MEMORY_LIMIT = 2 * 1024 ** 3
#: In eval mode without gradients only a few feature maps are alive at once: a block's
#: input (kept for the skip connection), a layer's input and output, a padded copy of its
#: input (TF "same" padding), the convolution's workspace, and what the allocator keeps.
#: Each is at most the largest map, so the estimate counts the largest one this many
#: times; ``benchmarks/bench_explorer.py --memory`` checks it against the measured peak
#: (B7 at 600 pixels grows by about 4.2 largest maps above its weights).
ACTIVATION_FACTOR = 6
_BYTES_PER_VALUE = 4  # float32


# --------------------------------------------------------------------------------------
# The numbers: explore(), or a message
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """What the numbers panel shows: ``html`` is the result's panel, or the message."""

    result: Exploration | None
    html: str
    message: str | None = None


def _message_html(text: str) -> str:
    return ('<div class="effx-numbers" style="color:#b00020;font-size:14px">'
            f'<span data-field="error">{html.escape(text)}</span></div>')


def view(phi, alpha=1.2, beta=1.1, gamma=1.15, table="formula") -> View:
    """:func:`~effnet_tutorial.explore.explore` for the panel: bad values become a message
    in the panel (and ``View.message``), never a traceback.

    Shape: scalars -> View.
    """
    try:
        result = explore(phi, alpha, beta, gamma, table)
    except (TypeError, ValueError) as exc:
        return View(None, _message_html(str(exc)), str(exc))
    return View(result, result.to_html())


# --------------------------------------------------------------------------------------
# The plot: B0-B7 (counted multiply-adds, top-1 as published) and the current point
# --------------------------------------------------------------------------------------
class CostPlot:
    """A matplotlib figure (not pyplot: nothing is shown by the inline backend) that marks
    the current multiply-adds on the axis among B0-B7; :meth:`render` returns a PNG.

    The figure is drawn once; an update redraws only the marker, its line and its label
    over a saved copy of the background (matplotlib's blitting), which keeps a refresh at a
    few milliseconds where a full redraw takes over a hundred.

    Shape: Exploration -> PNG bytes.
    """

    def __init__(self, figsize: tuple[float, float] = (7, 3.6), dpi: int = 100):
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        ax = self.ax = self.figure.add_subplot()
        points = official_points()
        xs = [m / 1e9 for _, m, _ in points]
        ys = [t for _, _, t in points]
        ax.plot(xs, ys, "o-", color="tab:blue")
        for (label, _, _), x, y in zip(points, xs, ys):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, -13), fontsize=10)
        ax.set_xscale("log")
        self.xlim = plot_range()
        ax.set_xlim(*self.xlim)
        ax.xaxis.set_major_locator(FixedLocator(PLOT_TICKS))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter("{x:g}")
        ax.set_ylim(min(ys) - 1.0, max(ys) + 1.2)
        ax.set_xlabel(PLOT_XLABEL, fontsize=10)
        ax.set_ylabel(PLOT_YLABEL, fontsize=10)
        ax.set_title(PLOT_TITLE, fontsize=10)
        ax.tick_params(labelsize=10)
        ax.grid(True, which="major", alpha=0.3)
        # animated=True: left out of the background, drawn by render() on each update.
        self.line = ax.axvline(xs[0], color="tab:red", linestyle="--", linewidth=1.5, animated=True)
        # The marker sits on the multiply-add axis itself (axes coordinates in y).
        self.marker, = ax.plot([xs[0]], [0.0], marker="^", markersize=10, color="tab:red",
                               transform=ax.get_xaxis_transform(), clip_on=False, animated=True)
        self.label = ax.text(xs[0], 0.96, "", transform=ax.get_xaxis_transform(), color="tab:red",
                             fontsize=10, va="top", animated=True)
        self.figure.tight_layout()
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self._lock = threading.Lock()  # one render at a time: they share the canvas buffer

    def update(self, result: Exploration) -> None:
        """Move the marker to ``result``'s multiply-adds (clamped to the axis).

        Shape: Exploration -> None."""
        lo, hi = self.xlim
        g = result.macs / 1e9
        x = min(max(g, lo), hi)
        self.line.set_xdata([x, x])
        self.marker.set_xdata([x])
        self.label.set_text(marker_label(result) + (" (off the scale)" if g > hi else ""))
        # Keep the label inside the axes: left of the line in the right half.
        right = math.log(x / lo) > 0.55 * math.log(hi / lo)
        self.label.set_x(x)
        self.label.set_ha("right" if right else "left")

    def render(self, result: Exploration) -> bytes:
        """PNG of the plot with the current point. Shape: Exploration -> bytes."""
        from PIL import Image  # a dependency of matplotlib

        buf = io.BytesIO()
        with self._lock:
            self.update(result)
            self.canvas.restore_region(self._background)
            for artist in (self.line, self.marker, self.label):
                self.ax.draw_artist(artist)
            # compress_level=1: a fast PNG, about 40 KB; the default level costs 3x the time.
            Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba(),
                             "raw", "RGBA", 0, 1).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


# --------------------------------------------------------------------------------------
# Build and trace, with a memory check first
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes to build a model and trace one input in eval mode (float32)."""

    weights: int
    activations: int

    @property
    def total(self) -> int:
        """Weights plus activations, in bytes. Shape: -> int."""
        return self.weights + self.activations


def estimate_build_memory(config: ModelConfig, input_size: Sequence[int]) -> MemoryEstimate:
    """Estimate what building ``config`` and tracing ``input_size`` needs: 4 bytes per
    parameter, plus :data:`ACTIVATION_FACTOR` times the largest feature map (exact, from
    :mod:`effnet_tutorial.analytic`). Costs microseconds: nothing is built.

    Shape: (config, [B, C, H, W]) -> MemoryEstimate.
    """
    b, c, h, w = input_size
    cost = cost_model(config, in_channels=c)
    return MemoryEstimate(_BYTES_PER_VALUE * cost.params,
                          _BYTES_PER_VALUE * ACTIVATION_FACTOR * cost.largest_activation(b, h, w))


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation on this machine, if it can be told.

    Shape: -> int | None."""
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _gib(n: int) -> str:
    return f"{n / 1024 ** 3:.2f} GiB"


@dataclass(frozen=True)
class BuildReport:
    """Outcome of the "build and trace" button: ``ok`` False means refused (or failed),
    with the reason in ``text``."""

    ok: bool
    estimate: MemoryEstimate
    text: str


def build_and_trace(config: ModelConfig, input_size: Sequence[int] | None = None,
                    limit_bytes: int = BUILD_MEMORY_LIMIT, device: str = "cpu") -> BuildReport:
    """Build ``EfficientNet(config)`` for real (random weights) and trace one input at
    stage depth with :func:`effnet_tutorial.trace_shapes`, unless the estimate
    (:func:`estimate_build_memory`) is above ``limit_bytes`` or above the memory this
    machine has available: then refuse, with a message and without building anything.

    Shape: (config, [B, C, H, W]) -> BuildReport (the trace lines in ``text``).
    """
    import torch

    from . import EfficientNet, trace_shapes

    if input_size is None:
        input_size = (1, 3, config.resolution, config.resolution)
    estimate = estimate_build_memory(config, input_size)
    available = available_memory()
    need = (f"about {_gib(estimate.total)} (weights {_gib(estimate.weights)}, activations "
            f"{_gib(estimate.activations)})")
    meta_hint = ("The shapes alone cost nothing on the meta device: with torch.device('meta'): "
                 "model = EfficientNet(config); then trace_shapes(model, input_size).")
    if estimate.total > limit_bytes or (available is not None and estimate.total > available):
        where = (f"the limit of {_gib(limit_bytes)}" if estimate.total > limit_bytes
                 else f"the {_gib(available)} this machine has available")
        return BuildReport(False, estimate,
                           f"Refused: building this model and tracing one {input_size[2]}×"
                           f"{input_size[3]} image needs {need}, above {where}. Lower φ or the "
                           f"coefficients. {meta_hint}")
    lines: list[str] = []
    start = time.perf_counter()
    try:
        with torch.device(device):
            model = EfficientNet(config)
        trace_shapes(model, tuple(input_size), depth="stage", print_fn=lines.append)
    except (RuntimeError, MemoryError) as exc:  # out of memory despite the estimate
        return BuildReport(False, estimate,
                           f"Building or tracing failed: {type(exc).__name__}: {exc}. {meta_hint}")
    finally:
        model = None  # free the weights now, not at the next garbage collection
    seconds = time.perf_counter() - start
    header = (f"Built on {device} and traced in {seconds:.1f} s (estimated memory {need}):")
    return BuildReport(True, estimate, "\n".join([header] + lines))


# --------------------------------------------------------------------------------------
# The widget
# --------------------------------------------------------------------------------------
def _check_start(phi, alpha, beta, gamma, table) -> None:
    """The widget's starting values: what :func:`~effnet_tutorial.explore.explore` accepts
    (the same errors), and on the sliders' grid, which the widget cannot leave (a slider
    would silently show another value)."""
    explore(phi, alpha, beta, gamma, table)
    for name, value in (("phi", phi), ("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        s = SLIDERS[name]
        value = float(value)
        if not s.start - 1e-9 <= value <= s.stop + 1e-9:
            raise ValueError(f"{s.label} = {value:g} is outside this widget's slider, {s.start:g} to "
                             f"{s.stop:g}; explore({name}={value:g}, ...) gives the numbers there")
        if abs(s.snap(value) - value) > 1e-9:
            raise ValueError(f"{s.label} = {value:g} is not on this widget's slider, which moves in steps "
                             f"of {s.step:g} from {s.start:g} to {s.stop:g} (nearest: "
                             f"{s.snap(value):g}); explore() takes any value in range")




class ScalingExplorer(widgets.VBox):
    """Sliders for φ, α, β, γ, a switch between the pure formula and the published tables
    (B0–B7, Lite0–Lite4), the numbers with the per-stage table, the plot, and a "build and
    trace" button.

    Every change calls :meth:`update`, which refreshes the numbers and the plot;
    ``last_update_seconds`` holds how long that took. Starting values that
    :func:`~effnet_tutorial.explore.explore` refuses, or that are off the sliders, raise
    ValueError (or TypeError) instead of being moved to the nearest slider position.

    Shape: controls -> explore(...) -> panel + plot.
    """

    def __init__(self, phi: float = 1.0, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15,
                 table: str = "formula", build_limit_bytes: int = BUILD_MEMORY_LIMIT):
        _check_start(phi, alpha, beta, gamma, table)
        self.sliders = {}
        for name, value in (("phi", phi), ("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            s = SLIDERS[name]
            self.sliders[name] = widgets.FloatSlider(
                value=s.snap(value), min=s.start, max=s.stop, step=s.step, description=s.label,
                readout_format=".2f", continuous_update=True,
                layout=widgets.Layout(width="420px"))
        self.table = widgets.ToggleButtons(
            options=list(TABLE_OPTIONS), value=table, description="table")
        self.numbers = widgets.HTML()
        self.plot = widgets.Image(format="png")
        self.build_button = widgets.Button(
            description="build and trace", icon="cubes",
            tooltip="build the model with random weights and trace one image")
        self.trace = widgets.HTML()
        self.build_limit_bytes = build_limit_bytes
        self.result: Exploration | None = None
        self.last_update_seconds = 0.0
        self._plot = CostPlot()
        self._busy = False
        super().__init__([widgets.HBox([widgets.VBox(list(self.sliders.values())), self.table]),
                          self.numbers, self.plot, self.build_button, self.trace])
        for s in self.sliders.values():
            s.observe(self._on_change, names="value")
        self.table.observe(self._on_table, names="value")
        self.build_button.on_click(lambda _button: self.build())
        self._apply_table()
        self.update()

    def values(self) -> dict:
        """The controls' values, snapped to the grid (a front end may send 1.1500000000000001).

        Shape: -> dict(phi, alpha, beta, gamma, table)."""
        out = {name: SLIDERS[name].snap(s.value) for name, s in self.sliders.items()}
        out["table"] = self.table.value
        return out

    def update(self) -> View:
        """Refresh the numbers and the plot from the controls. Shape: controls -> View."""
        start = time.perf_counter()
        v = view(**self.values())
        self.numbers.value = v.html
        if v.result is not None:
            self.result = v.result
            self.plot.value = self._plot.render(v.result)
        self.trace.value = ""   # a trace belongs to the model it was made for
        self.last_update_seconds = time.perf_counter() - start
        return v

    def _on_change(self, _change) -> None:
        if not self._busy:
            self.update()

    def _apply_table(self) -> None:
        """A published table holds whole φ only (B0–B7: 0–7, Lite0–Lite4: 0–4); α, β, γ
        are unused there."""
        top = PUBLISHED_PHI.get(self.table.value)
        phi = self.sliders["phi"]
        self._busy = True
        try:
            # The value first, then the range and the step: a front end that gets the
            # coarser step while its value is off the new grid snaps the value itself
            # (1.5 -> 1, not 2), and one whose maximum drops below its value clamps it.
            if top is not None:
                phi.value = float(min(official_phi(phi.value), top))
                phi.max = float(top)
            else:
                phi.max = SLIDERS["phi"].stop
            phi.step = 1.0 if top is not None else SLIDERS["phi"].step
            for name in ("alpha", "beta", "gamma"):
                self.sliders[name].disabled = top is not None
        finally:
            self._busy = False

    def _on_table(self, _change) -> None:
        self._apply_table()
        self.update()

    def build(self) -> BuildReport | None:
        """The button: build the current model and show its stage-level trace (or refuse).

        Shape: -> BuildReport | None."""
        if self.result is None:
            return None
        r = self.result.resolution
        self.trace.value = "<pre>building…</pre>"
        report = build_and_trace(self.result.config, (1, 3, r, r),
                                 limit_bytes=self.build_limit_bytes)
        color = "" if report.ok else ' style="color:#b00020;white-space:pre-wrap"'
        self.trace.value = f'<pre data-field="trace"{color}>{html.escape(report.text)}</pre>'
        return report

    def __repr__(self) -> str:
        # Short and stable: the text/plain of the displayed widget, which nbval compares.
        v = self.values()
        return (f"ScalingExplorer(phi={v['phi']:g}, alpha={v['alpha']:g}, beta={v['beta']:g}, "
                f"gamma={v['gamma']:g}, table={v['table']!r})")


def scaling_explorer(phi: float = 1.0, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15,
                     table: str = "formula") -> ScalingExplorer:
    """The φ explorer widget (display it as a cell's last expression). Starts at the
    paper's α = 1.2, β = 1.1, γ = 1.15 (EfficientNet §4, step 1). Bad starting values raise the
    error :func:`~effnet_tutorial.explore.explore` gives, or one naming the slider's range.

    Shape: -> ScalingExplorer (an ipywidgets VBox).
    """
    return ScalingExplorer(phi, alpha, beta, gamma, table)
