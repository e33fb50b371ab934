r"""The φ explorer for the rendered book, where no kernel runs: HTML + JavaScript over
numbers precomputed here.

:func:`explorer_html` returns one self-contained fragment (inline CSS, JS and data; no CDN,
no other file) with range inputs for φ, α, β and γ and a table switch (the pure formula, the
published B0–B7 or Lite0–Lite4), the numbers panel and a plot. Every number it shows was
computed by the package for the sliders' grid
(:data:`effnet_tutorial.explore.SLIDERS`: 29 x 9 x 7 x 9 points) and embedded in the page;
the script only looks them up and formats them the way
:meth:`~effnet_tutorial.explore.Exploration.display_values` does, so the page shows, to
the character, what :func:`~effnet_tutorial.explore.explore` and the kernel widget show.

How the grid is stored, smallest first: the multipliers depend on (φ, α), (φ, β) or
(φ, γ) alone, α·β²·γ² on (α, β, γ), the parameters on (φ, α, β); only the multiply-adds
need all four, stored in base 36 (exact: every count is below 2^53).

Use it in a notebook as the output of ``static_explorer()`` (a ``text/html`` output, which
myst-nb puts into the page, scripts included), or write a page with
:func:`write_standalone`.
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

from .analytic import cost_model
from .explore import (PLOT_TICKS, PLOT_TITLE, PLOT_XLABEL, PLOT_YLABEL,
                      PRODUCT_WARNING, PUBLISHED_PHI, RULE_LABEL, SLIDERS, TABLE_OPTIONS, _b0,
                      coefficient_product, explore, official_points, plot_range, product_warning,
                      rule, rule_config, stage_rows)

__all__ = ["explorer_data", "explorer_html", "standalone_html", "write_standalone",
           "static_explorer", "decode_counts", "MAX_SAFE_INTEGER"]

#: JavaScript's largest exactly representable integer, 2^53 - 1.
MAX_SAFE_INTEGER = 2 ** 53 - 1
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    if not 0 <= n <= MAX_SAFE_INTEGER:
        raise ValueError(f"{n} cannot be read back exactly in JavaScript (above 2^53)")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def decode_counts(text: str) -> list[int]:
    """Inverse of the page's count encoding (what the script does with ``parseInt(s, 36)``).

    Shape: str -> list of int."""
    return [int(s, 36) for s in text.split(",")]


def explorer_data() -> dict:
    """Every number the static explorer can show, for the whole slider grid (about a
    second; the JSON is about 190 KB, base-36 multiply-adds most of it).

    Shape: -> dict, JSON-serialisable; see the module docstring for the layout.
    """
    phis, alphas, betas, gammas = (SLIDERS[n].values for n in ("phi", "alpha", "beta", "gamma"))
    b0, b0_macs = _b0()
    depth = [[rule(p, a, 1.0, 1.0)[0] for a in alphas] for p in phis]           # [φ][α]
    width = [[rule(p, 1.0, b, 1.0)[1] for b in betas] for p in phis]            # [φ][β]
    by_gamma = [[rule(p, 1.0, 1.0, g) for g in gammas] for p in phis]           # [φ][γ]
    r_factor = [[x[2] for x in row] for row in by_gamma]
    pixels = [[x[3] for x in row] for row in by_gamma]
    stage_res = [[[s.height for s in stage_rows(b0, r)] for r in row] for row in pixels]
    product = [[[coefficient_product(a, b, g) for g in gammas] for b in betas] for a in alphas]
    flags = "".join("0" if product_warning(x) is None else "1"
                    for plane in product for row in plane for x in row)
    channels = [[None] * len(betas) for _ in phis]
    layers = [[None] * len(alphas) for _ in phis]
    params, macs = [], []
    for i, p in enumerate(phis):
        for j, _a in enumerate(alphas):
            for k, _b in enumerate(betas):
                config = rule_config(depth[i][j], width[i][k], pixels[i][0])
                rows = stage_rows(config, pixels[i][0])
                channels[i][k] = [s.channels for s in rows]      # width only
                layers[i][j] = [s.layers for s in rows]          # depth only
                cost = cost_model(config, num_classes=1000, in_channels=3)
                params.append(_base36(cost.params))
                macs.extend(_base36(cost.macs(1, r, r)) for r in pixels[i])
    published = {}   # the published tables at φ = 0, 1, ...: B0-B7 and Lite0-Lite4
    for table, top in PUBLISHED_PHI.items():
        published[table] = []
        for k in range(top + 1):
            result = explore(k, table=table)
            published[table].append({"values": result.display_values(),
                                     "stages": result.stage_table(), "macs": result.macs})
    return {
        "sliders": {n: {"start": s.start, "step": s.step, "values": list(s.values)}
                    for n, s in SLIDERS.items()},
        "b0_macs": b0_macs,
        "depth": depth, "width": width, "r_factor": r_factor, "pixels": pixels,
        "stage_res": stage_res, "product": product, "flags": flags,
        "channels": channels, "layers": layers,
        "params": ",".join(params), "macs": ",".join(macs),
        "operators": [s.operator for s in stage_rows(b0, b0.resolution)],
        "published": published,
        "text": {"rule_label": RULE_LABEL, "warning": PRODUCT_WARNING},
    }


# --------------------------------------------------------------------------------------
# The plot, as SVG: the same axes as the kernel widget's matplotlib figure
# --------------------------------------------------------------------------------------
_W, _H = 700, 360
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 30, 48


def _plot_svg() -> tuple[str, dict]:
    lo, hi = plot_range()
    points = official_points()
    ys = [t for _, _, t in points]
    y0, y1 = min(ys) - 1.0, max(ys) + 1.2
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def px(g: float) -> float:
        return _LEFT + (math.log10(g) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * pw

    def py(y: float) -> float:
        return _TOP + (y1 - y) / (y1 - y0) * ph

    e = html.escape
    parts = [f'<svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
             f'aria-label="{e(PLOT_TITLE)}" xmlns="http://www.w3.org/2000/svg" '
             'font-family="sans-serif" font-size="13" fill="currentColor">',
             f'<text x="{_W / 2:.1f}" y="18" text-anchor="middle">{e(PLOT_TITLE)}</text>',
             f'<rect x="{_LEFT}" y="{_TOP}" width="{pw}" height="{ph}" fill="none" '
             'stroke="currentColor"/>']
    for t in PLOT_TICKS:
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + ph}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{_TOP + ph + 16}" text-anchor="middle">{t:g}</text>')
    for y in range(math.ceil(y0), math.floor(y1) + 1):
        if y % 2 == 0:
            parts.append(f'<line x1="{_LEFT}" y1="{py(y):.1f}" x2="{_LEFT + pw}" y2="{py(y):.1f}" '
                         f'stroke="#ddd"/><text x="{_LEFT - 6}" y="{py(y) + 4:.1f}" '
                         f'text-anchor="end">{y}</text>')
    parts.append(f'<text x="{_LEFT + pw / 2:.1f}" y="{_H - 8}" text-anchor="middle">'
                 f'{e(PLOT_XLABEL)}</text>'
                 f'<text transform="translate(16 {_TOP + ph / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{e(PLOT_YLABEL)}</text>')
    coords = [(px(m / 1e9), py(t)) for _, m, t in points]
    parts.append('<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="'
                 + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
    for (label, _, _), (x, y) in zip(points, coords):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1f77b4"/>'
                     f'<text x="{x + 5:.1f}" y="{y + 16:.1f}">{label}</text>')
    parts.append(f'<g data-plot="marker" fill="#d62728" stroke="#d62728">'
                 f'<line data-plot="line" x1="0" y1="{_TOP}" x2="0" y2="{_TOP + ph}" '
                 'stroke-dasharray="6 4" '
                 f'stroke-width="1.5"/><path data-plot="triangle" d="M0,{_TOP + ph} l-6,10 h12 z" '
                 f'stroke="none"/><text data-plot="label" x="4" y="{_TOP + 16}" '
                 'stroke="none"></text></g>')
    parts.append("</svg>")
    geometry = {"lo": lo, "hi": hi, "left": _LEFT, "width": pw}
    return "".join(parts), geometry


_CSS = """
#ID { font-family: sans-serif; border: 1px solid #ccc; border-radius: 6px; padding: 10px 12px;
      max-width: 720px; margin: 8px 0; }
#ID .effx-controls { display: grid; grid-template-columns: 2em 260px 3.5em; gap: 2px 8px;
      align-items: center; }
#ID .effx-controls label { font-size: 17px; font-weight: bold; text-align: right; }
#ID .effx-controls input[type=range] { width: 260px; }
#ID .effx-controls output { font-family: monospace; font-size: 14px; }
#ID .effx-table { margin: 6px 0; font-size: 14px; }
#ID .effx-table label { margin-right: 6px; }
#ID .effx-numbers td, #ID .effx-numbers th { border-bottom: 1px solid #eee; }
#ID svg { max-width: 100%; height: auto; }
"""

_JS = r"""
(function () {
  var root = document.getElementById("__EFFX_ID__");
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var D = JSON.parse(document.getElementById("__EFFX_ID__-data").textContent);
  var PARAMS = D.params.split(",").map(function (s) { return parseInt(s, 36); });
  var MACS = D.macs.split(",").map(function (s) { return parseInt(s, 36); });
  var NAMES = ["phi", "alpha", "beta", "gamma"];
  var input = {};
  NAMES.forEach(function (n) { input[n] = document.getElementById("__EFFX_ID__-" + n); });
  var table = document.getElementById("__EFFX_ID__-table");
  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function commas(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function index(n) {
    var s = D.sliders[n];
    var i = Math.round((parseFloat(input[n].value) - s.start) / s.step);
    return Math.min(Math.max(i, 0), s.values.length - 1);
  }
  function value(n) { return D.sliders[n].values[index(n)]; }
  function fill(template, values) {
    Object.keys(values).forEach(function (k) {
      template = template.split("{" + k + "}").join(values[k]);
    });
    return template;
  }
  function formula() {
    var p = index("phi"), a = index("alpha"), b = index("beta"), g = index("gamma");
    var na = D.sliders.alpha.values.length, nb = D.sliders.beta.values.length;
    var ng = D.sliders.gamma.values.length;
    var d = D.depth[p][a], w = D.width[p][b], r = D.r_factor[p][g], px = D.pixels[p][g];
    var product = D.product[a][b][g];
    var macs = MACS[((p * na + a) * nb + b) * ng + g];
    var flagged = D.flags.charAt((a * nb + b) * ng + g) === "1";
    var v = {
      model: fill(D.text.rule_label, {phi: value("phi").toFixed(2)}), table: "formula",
      phi: value("phi").toFixed(2), alpha: value("alpha").toFixed(2),
      beta: value("beta").toFixed(2), gamma: value("gamma").toFixed(2),
      depth: d.toFixed(3), width: w.toFixed(3), resolution_factor: r.toFixed(3),
      resolution: px + "\u00d7" + px, coefficient_product: product.toFixed(3),
      params: commas(PARAMS[(p * na + a) * nb + b]), macs: commas(macs),
      macs_ratio: (macs / D.b0_macs).toFixed(2) + "\u00d7",
      predicted_ratio: (d * w * w * r * r).toFixed(2) + "\u00d7",
      warnings: flagged ? fill(D.text.warning, {value: product.toFixed(3),
                                                direction: product > 2 ? "above" : "below"}) : ""
    };
    var rows = [], res = D.stage_res[p][g], ch = D.channels[p][b], ly = D.layers[p][a];
    for (var i = 0; i < res.length; i++) {
      rows.push([String(i + 1), D.operators[i], res[i] + "\u00d7" + res[i], String(ch[i]),
                 String(ly[i])]);
    }
    return {values: v, stages: rows, macs: macs};
  }
  function published(name) {
    var models = D.published[name];
    var k = Math.floor(parseFloat(input.phi.value) + 0.5);    // half up, as official_phi()
    k = Math.min(Math.max(k, 0), models.length - 1);
    input.phi.value = String(k);
    var o = models[k], v = {};
    Object.keys(o.values).forEach(function (key) { v[key] = o.values[key]; });
    // explore() reports the sliders' α, β, γ even where the official table ignores them.
    ["alpha", "beta", "gamma"].forEach(function (n) { v[n] = value(n).toFixed(2); });
    return {values: v, stages: o.stages, macs: o.macs};
  }
  function place(state) {
    var G = D.plot, g = state.macs / 1e9, x = Math.min(Math.max(g, G.lo), G.hi);
    var t = Math.log10(x / G.lo) / Math.log10(G.hi / G.lo), pos = G.left + t * G.width;
    var marker = root.querySelector('[data-plot="marker"]');
    marker.setAttribute("transform", "translate(" + pos.toFixed(1) + " 0)");
    var label = root.querySelector('[data-plot="label"]');
    var right = Math.log(x / G.lo) > 0.55 * Math.log(G.hi / G.lo);
    label.setAttribute("text-anchor", right ? "end" : "start");
    label.setAttribute("x", right ? "-4" : "4");
    label.textContent = "\u03c6 = " + state.values.phi + ": " + g.toFixed(2) + " G" +
      (g > G.hi ? " (off the scale)" : "");
  }
  function update() {
    var isPublished = table.value !== "formula";
    var state = isPublished ? published(table.value) : formula();
    NAMES.forEach(function (n) {
      var out = document.getElementById("__EFFX_ID__-" + n + "-value");
      out.textContent = parseFloat(input[n].value).toFixed(2);
    });
    Object.keys(state.values).forEach(function (k) {
      var el = field(k);
      if (el) { el.textContent = state.values[k]; }
    });
    root.querySelector('[data-row="rule"]').hidden = isPublished;
    root.querySelector('[data-row="warnings"]').hidden = !state.values.warnings;
    var body = field("stages");
    var tds = body.querySelectorAll("tr");
    state.stages.forEach(function (row, i) {
      var cells = tds[i].querySelectorAll("td");
      row.forEach(function (text, j) { cells[j].textContent = text; });
    });
    place(state);
  }
  function applyTable() {
    // A published table holds whole φ only, up to its last model; α, β, γ are unused.
    var isPublished = table.value !== "formula";
    var s = D.sliders.phi;
    input.phi.max = isPublished ? String(D.published[table.value].length - 1)
                                : String(s.values[s.values.length - 1]);
    input.phi.step = isPublished ? "1" : String(s.step);
    ["alpha", "beta", "gamma"].forEach(function (n) { input[n].disabled = isPublished; });
  }
  NAMES.forEach(function (n) { input[n].addEventListener("input", update); });
  // A notebook front end (JupyterLab) would take the arrow keys for itself: keep them here.
  root.addEventListener("keydown", function (e) {
    if (e.target && e.target.type === "range") { e.stopPropagation(); }
  });
  table.addEventListener("change", function () { applyTable(); update(); });
  applyTable();
  update();
})();
"""

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def explorer_html(element_id: str = "phi-explorer", phi: float = 1.0, alpha: float = 1.2,
                  beta: float = 1.1, gamma: float = 1.15, table: str = "formula") -> str:
    """The static explorer as one self-contained HTML fragment, starting at the given
    point (snapped to the grid). ``element_id`` prefixes every id: the inputs are
    ``{id}-phi``, ``{id}-alpha``, ``{id}-beta``, ``{id}-gamma`` and ``{id}-table``; each
    number is in an element ``[data-field=...]`` (the keys of ``display_values()``).

    Shape: -> str (about 200 KB).
    """
    if not isinstance(element_id, str) or not _ID.match(element_id):
        raise ValueError(f"element_id must start with a letter and hold only letters, digits, '-' "
                         f"and '_', got {element_id!r}")
    explore(phi, alpha, beta, gamma, table)           # a bad value is a clear error here
    start = {n: SLIDERS[n].snap(v) for n, v in (("phi", phi), ("alpha", alpha), ("beta", beta),
                                                 ("gamma", gamma))}
    result = explore(**start, table=table)            # the first view, before the script runs
    data = explorer_data()
    svg, data["plot"] = _plot_svg()
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    controls = []
    for name, s in SLIDERS.items():
        controls.append(
            f'<label for="{element_id}-{name}">{s.label}</label>'
            f'<input type="range" id="{element_id}-{name}" name="{name}" aria-label="{s.label}" '
            f'min="{s.start:g}" max="{s.stop:g}" step="{s.step:g}" value="{start[name]:g}">'
            f'<output id="{element_id}-{name}-value" for="{element_id}-{name}">'
            f'{start[name]:.2f}</output>')
    options = "".join(f'<option value="{v}"{" selected" if v == table else ""}>{t}</option>'
                      for t, v in TABLE_OPTIONS)
    return (
        f'<div id="{element_id}" class="effx">'
        f'<style>{_CSS.replace("#ID", "#" + element_id)}</style>'
        f'<div class="effx-controls">{"".join(controls)}</div>'
        f'<div class="effx-table"><label for="{element_id}-table">table</label>'
        f'<select id="{element_id}-table">{options}</select></div>'
        f'{result.to_html()}'
        f'<div class="effx-plot">{svg}</div>'
        f'<script type="application/json" id="{element_id}-data">{payload}</script>'
        f'<script>{_JS.replace("__EFFX_ID__", element_id)}</script>'
        '</div>'
    )


def standalone_html(element_id: str = "phi-explorer", **start) -> str:
    """A whole HTML page around :func:`explorer_html` (works from ``file://``, offline).

    Shape: -> str.
    """
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>φ explorer: compound scaling of EfficientNet</title></head><body>'
            f'{explorer_html(element_id, **start)}</body></html>\n')


def write_standalone(path, element_id: str = "phi-explorer", **start) -> Path:
    """Write :func:`standalone_html` to ``path``. Shape: path -> Path."""
    path = Path(path)
    path.write_text(standalone_html(element_id, **start), encoding="utf-8")
    return path


def static_explorer(element_id: str = "phi-explorer", **start):
    """The static explorer for a notebook cell: an ``IPython.display.HTML`` object, so the
    stored output is ``text/html`` and the built book shows a working explorer.

    Shape: -> IPython.display.HTML.
    """
    from IPython.display import HTML

    return HTML(explorer_html(element_id, **start))

