"""The kernel widget's logic, without a front end: slider changes update the numbers and the
plot, bad values give messages, the build button builds small models and refuses big ones."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
import torch

pytest.importorskip("ipywidgets", reason="the kernel widget needs ipywidgets (requirements.txt)")

from effnet_tutorial import EfficientNet, get_model_config  # noqa: E402
from effnet_tutorial.explore import explore  # noqa: E402
from effnet_tutorial.widgets import (ACTIVATION_FACTOR, BUILD_MEMORY_LIMIT, ScalingExplorer,  # noqa: E402
                                     build_and_trace, estimate_build_memory, scaling_explorer, view)


def field(html: str, name: str) -> str:
    """The text of the element ``data-field=name`` in a panel's HTML."""
    start = html.index(f'data-field="{name}">') + len(f'data-field="{name}">')
    return html[start:html.index("<", start)]


@pytest.fixture(scope="module")
def explorer():
    return scaling_explorer()


def test_starts_at_the_papers_coefficients(explorer):
    assert explorer.values() == dict(phi=1.0, alpha=1.2, beta=1.1, gamma=1.15, table="formula")
    expected = explore(1.0).display_values()
    for name in ("params", "macs", "depth", "width", "resolution", "macs_ratio", "model"):
        assert field(explorer.numbers.value, name) == expected[name]
    assert explorer.plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert [s.description for s in explorer.sliders.values()] == ["φ", "α", "β", "γ"]


def test_slider_moves_refresh_numbers_plot_and_marker(explorer):
    before_png = explorer.plot.value
    explorer.sliders["phi"].value = 2.5
    explorer.sliders["beta"].value = 1.15
    expected = explore(2.5, 1.2, 1.15, 1.15)
    assert field(explorer.numbers.value, "params") == f"{expected.params:,}"
    assert field(explorer.numbers.value, "macs") == f"{expected.macs:,}"
    assert explorer.result.params == expected.params
    assert explorer.plot.value != before_png
    assert explorer._plot.line.get_xdata()[0] == pytest.approx(expected.macs / 1e9)
    assert explorer.last_update_seconds > 0
    # A slider value a front end rounds badly is snapped to the grid.
    explorer.sliders["gamma"].value = 1.1500000000000001
    assert explorer.values()["gamma"] == 1.15


def test_table_switch_rounds_phi_and_disables_coefficients():
    ex = ScalingExplorer(phi=1.5)
    ex.table.value = "official"
    assert ex.sliders["phi"].value == 2.0 and ex.sliders["phi"].step == 1.0
    assert all(ex.sliders[n].disabled for n in ("alpha", "beta", "gamma"))
    with torch.device("meta"):
        b2 = EfficientNet.from_name("efficientnet-b2")
    assert field(ex.numbers.value, "params") == f"{sum(p.numel() for p in b2.parameters()):,}"
    assert field(ex.numbers.value, "model") == "EfficientNet-B2 (official table)"
    ex.table.value = "formula"
    assert ex.sliders["phi"].step == 0.25 and not ex.sliders["alpha"].disabled


def test_lite_table_holds_lite0_to_lite4():
    ex = ScalingExplorer(phi=6)
    ex.table.value = "lite"
    assert ex.sliders["phi"].value == 4.0 and ex.sliders["phi"].max == 4.0
    assert all(ex.sliders[n].disabled for n in ("alpha", "beta", "gamma"))
    with torch.device("meta"):
        lite4 = EfficientNet.from_name("efficientnet-lite4")
    assert field(ex.numbers.value, "params") == f"{sum(p.numel() for p in lite4.parameters()):,}"
    ex.sliders["phi"].value = 1.0
    assert ex.result.config == explore(1, table="lite").config
    ex.table.value = "formula"
    assert ex.sliders["phi"].max == 7.0 and ex.sliders["phi"].step == 0.25
    assert not ex.sliders["beta"].disabled


def test_far_from_two_shows_the_warning():
    ex = ScalingExplorer(phi=2, alpha=1.4, beta=1.3, gamma=1.4)
    assert "is above 2 by more than 10 %" in field(ex.numbers.value, "warnings")
    ex.sliders["alpha"].value = 1.2
    ex.sliders["beta"].value = 1.1
    ex.sliders["gamma"].value = 1.15
    assert field(ex.numbers.value, "warnings") == ""


@pytest.mark.parametrize("kwargs, message", [
    (dict(phi=-1), "φ must be ≥ 0"), (dict(phi=1, alpha=0.8), "must be ≥ 1"),
    (dict(phi=2.5, table="official"), "not one of them"), (dict(phi="two"), "must be a number"),
])
def test_bad_values_give_a_message_not_a_traceback(kwargs, message):
    v = view(**kwargs)
    assert v.result is None and message in v.message
    assert 'data-field="error"' in v.html and "Traceback" not in v.html


@pytest.mark.parametrize("kwargs", [
    dict(phi=20), dict(phi=float("nan")), dict(phi=1, alpha=0.5), dict(phi=1, gamma=3),
    dict(phi=2.5, table="official"), dict(phi="two"),
])
def test_bad_starting_values_raise_the_error_of_explore(kwargs):
    """The widget would show the nearest slider position (φ = 20 as 7) without a word."""
    args = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "table": "formula", **kwargs}
    with pytest.raises((TypeError, ValueError)) as expected:
        explore(**args)
    with pytest.raises(expected.type) as got:
        scaling_explorer(**kwargs)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(phi=8), "φ = 8 is outside this widget's slider, 0 to 7; explore(phi=8, ...)"),
    (dict(phi=1.3), "φ = 1.3 is not on this widget's slider, which moves in steps of 0.25"),
    (dict(phi=1, alpha=1.5), "α = 1.5 is outside this widget's slider, 1 to 1.4"),
])
def test_values_explore_accepts_but_the_sliders_cannot_show_raise(kwargs, message):
    explore(**kwargs)                          # valid numbers ...
    with pytest.raises(ValueError) as got:     # ... that the widget cannot show
        scaling_explorer(**kwargs)
    assert message in str(got.value)


def test_build_and_trace_small_model():
    r = explore(0.5)
    report = build_and_trace(r.config, (1, 3, 241, 241))     # an odd size: ceil(241 / 2) = 121
    assert report.ok
    lines = report.text.splitlines()
    stem, head = r.stages[0].channels, r.stages[-1].channels
    assert lines[1] == f"[1, 3, 241, 241] -> stem -> [1, {stem}, 121, 121]"
    assert lines[-1] == f"[1, {head}] -> classifier -> [1, 1000]"
    stage_lines = [line for line in lines if "-> stages." in line]
    assert [int(line.split("-> [1, ")[1].split(",")[0]) for line in stage_lines] == [
        row.channels for row in r.stages[1:-1]]


def test_build_refuses_above_the_limit_without_building():
    big = explore(7, 1.4, 1.3, 1.4)
    estimate = estimate_build_memory(big.config, (1, 3, big.resolution, big.resolution))
    assert estimate.total > BUILD_MEMORY_LIMIT
    report = build_and_trace(big.config, (1, 3, big.resolution, big.resolution))
    assert not report.ok and report.text.startswith("Refused:")
    assert "above the limit of 2.00 GiB" in report.text and "meta device" in report.text
    # Any model is refused under a tiny limit: the check runs before anything is built.
    small = build_and_trace(get_model_config("efficientnet-b0"), limit_bytes=1)
    assert not small.ok and "Refused" in small.text
    # The button shows the refusal in the panel.
    ex = ScalingExplorer(phi=7, alpha=1.4, beta=1.3, gamma=1.4)
    assert ex.build().ok is False
    assert "Refused:" in ex.trace.value and 'data-field="trace"' in ex.trace.value


def test_memory_estimate_is_weights_plus_largest_maps(conv_output_sizes):
    config = get_model_config("efficientnet-b1")
    model, sizes = conv_output_sizes(config, (1, 3, 240, 240))
    estimate = estimate_build_memory(config, (1, 3, 240, 240))
    assert estimate.weights == 4 * sum(p.numel() for p in model.parameters())
    assert estimate.activations == 4 * ACTIVATION_FACTOR * max(sizes)
    # Memory grows with the batch: twice the images, twice the feature maps.
    assert estimate_build_memory(config, (2, 3, 240, 240)).activations == 2 * estimate.activations


def test_widget_repr_is_short_and_stable(explorer):
    ex = ScalingExplorer(phi=3, alpha=1.25, table="formula")
    assert repr(ex) == "ScalingExplorer(phi=3, alpha=1.25, beta=1.1, gamma=1.15, table='formula')"
    bundle = ex._repr_mimebundle_()
    assert bundle["text/plain"] == repr(ex)
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_importing_the_package_does_not_import_the_widget_libraries():
    code = ("import sys, effnet_tutorial, effnet_tutorial.explore, effnet_tutorial.analytic, "
            "effnet_tutorial.static_explorer; "
            "print(sorted(m for m in ('ipywidgets', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_explore_config_builds_what_it_counts():
    """The widget builds result.config: the same architecture explore() counted."""
    r = explore(1.25, 1.1, 1.2, 1.05)
    expected = replace(get_model_config("efficientnet-b0"), width_coefficient=1.2 ** 1.25,
                       depth_coefficient=1.1 ** 1.25)
    assert r.config.scaled_blocks() == expected.scaled_blocks()
    assert r.config.scaled_head_channels == expected.scaled_head_channels
