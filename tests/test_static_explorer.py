"""The static φ explorer (no kernel): its page is self-contained and small, its embedded
numbers are explore()'s, and a real browser (Selenium + headless Chromium) moves its
sliders and reads the counts of the built model.

The browser tests skip, saying why, only when Chromium or its driver is missing (CI
installs both: Debian's ``chromium`` and ``chromium-driver``).
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from effnet_tutorial import EfficientNet, get_model_config
from effnet_tutorial.analytic import analytic_params
from effnet_tutorial.explore import SLIDERS, explore
from effnet_tutorial.static_explorer import (decode_counts, explorer_data, explorer_html,
                                             standalone_html, write_standalone)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
BOOK_PAGE = ROOT / "_build" / "html" / "chapters" / "01_compound_scaling.html"
FIELDS = ("model", "alpha", "beta", "gamma", "depth", "width", "resolution_factor",
          "resolution", "coefficient_product", "params", "macs", "macs_ratio", "predicted_ratio",
          "warnings")


def built_params(phi, alpha, beta):
    """Parameters of B0 scaled by the rule, built here on the meta device and counted."""
    config = replace(get_model_config("efficientnet-b0"), width_coefficient=beta ** phi,
                     depth_coefficient=alpha ** phi)
    with torch.device("meta"):
        model = EfficientNet(config)
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------
# The page itself, without a browser
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page() -> str:
    return standalone_html()


def test_page_is_small_and_self_contained(page):
    assert len(page.encode("utf-8")) < 300_000
    # No file or network is fetched: no src/href attributes, no link or import of any kind.
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "<link" not in page and "@import" not in page and "fetch(" not in page
    # The only URL is the SVG namespace, an identifier that is never fetched.
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"]
    for name in ("phi", "alpha", "beta", "gamma", "table"):
        assert f'id="phi-explorer-{name}"' in page
    assert '<label for="phi-explorer-phi">φ</label>' in page


def test_embedded_counts_are_explores_on_the_whole_grid():
    data = explorer_data()
    params, macs = decode_counts(data["params"]), decode_counts(data["macs"])
    grid = [SLIDERS[n].values for n in ("phi", "alpha", "beta", "gamma")]
    assert len(macs) == len(grid[0]) * len(grid[1]) * len(grid[2]) * len(grid[3]) == 16443
    i = 0
    for p, phi in enumerate(grid[0]):
        for a, alpha in enumerate(grid[1]):
            for b, beta in enumerate(grid[2]):
                for g, gamma in enumerate(grid[3]):
                    r = explore(phi, alpha, beta, gamma)
                    assert macs[i] == r.macs, (phi, alpha, beta, gamma)
                    assert r.params == params[(p * len(grid[1]) + a) * len(grid[2]) + b]
                    assert (data["depth"][p][a], data["width"][p][b]) == (r.depth, r.width)
                    assert data["pixels"][p][g] == r.resolution
                    i += 1
    assert max(macs) < 2 ** 53                     # exact as a JavaScript number


def test_bad_element_id_is_refused():
    with pytest.raises(ValueError, match="element_id must start with a letter"):
        explorer_html("1 bad id")
    with pytest.raises(ValueError, match="φ must be ≥ 0"):
        explorer_html(phi=-1)


# --------------------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"Chromium or chromedriver not found ({CHROMIUM}, {CHROMEDRIVER}): install "
                    "Debian's chromium and chromium-driver to run the browser tests")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1000,1400"):
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="effx-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shown(driver, element_id="phi-explorer") -> dict:
    """What the explorer shows: every data-field's text and the stage table."""
    from selenium.webdriver.common.by import By

    root = driver.find_element(By.ID, element_id)
    def text(element) -> str:
        return element.get_attribute("textContent")

    values = {f: text(root.find_element(By.CSS_SELECTOR, f'[data-field="{f}"]')) for f in FIELDS}
    values["phi"] = text(root.find_element(By.ID, f"{element_id}-phi-value"))
    rows = root.find_elements(By.CSS_SELECTOR, '[data-field="stages"] tr')
    values["stages"] = [[text(td) for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    return values


def expected(*args, **kwargs) -> dict:
    r = explore(*args, **kwargs)
    v = {f: r.display_values()[f] for f in FIELDS + ("phi",)}
    v["stages"] = r.stage_table()
    return v


def press(driver, input_id: str, key: str, times: int = 1) -> float:
    """Move a range input with the keyboard, as a reader would; returns its new value."""
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, input_id)
    for _ in range(times):
        element.send_keys(key)
    return float(element.get_attribute("value"))


def drive_explorer(driver, url: str, element_id: str = "phi-explorer") -> None:
    """Open ``url``, move the φ slider and γ, switch tables, and compare what the page shows
    with explore() and with the parameters of the built model. Reusable for the built book."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver.get(url)
    start = {n: float(driver.find_element(By.ID, f"{element_id}-{n}").get_attribute("value"))
             for n in ("phi", "alpha", "beta", "gamma")}
    assert shown(driver, element_id) == expected(**start)

    phi = press(driver, f"{element_id}-phi", Keys.ARROW_RIGHT, 3)       # three steps of 0.25
    gamma = press(driver, f"{element_id}-gamma", Keys.ARROW_LEFT)        # one step of 0.05
    assert phi == pytest.approx(start["phi"] + 0.75)
    assert gamma == pytest.approx(start["gamma"] - 0.05)
    phi, gamma = SLIDERS["phi"].snap(phi), SLIDERS["gamma"].snap(gamma)
    alpha, beta = start["alpha"], start["beta"]
    now = shown(driver, element_id)
    point = explore(phi, alpha, beta, gamma)
    assert now["params"] == f"{built_params(phi, alpha, beta):,}"
    assert now["params"] == f"{analytic_params(point.config):,}"
    assert now == expected(phi, alpha, beta, gamma)
    marker = driver.find_element(By.CSS_SELECTOR, f'#{element_id} [data-plot="marker"]')
    assert marker.get_attribute("transform").startswith("translate(")

    # α to its minimum, 1: α·β²·γ² leaves the 10 % band around 2 and the warning appears.
    press(driver, f"{element_id}-alpha", Keys.HOME)
    assert shown(driver, element_id) == expected(phi, 1.0, beta, gamma)
    assert shown(driver, element_id)["warnings"].startswith("α·β²·γ² = ")

    # The official table: φ rounds half up to a whole number, the counts are B0-B7's.
    Select(driver.find_element(By.ID, f"{element_id}-table")).select_by_value("official")
    k = int(phi + 0.5)
    assert shown(driver, element_id) == expected(k, 1.0, beta, gamma, table="official")
    with torch.device("meta"):
        model = EfficientNet.from_name(f"efficientnet-b{k}")
    assert shown(driver, element_id)["params"] == f"{sum(p.numel() for p in model.parameters()):,}"
    assert driver.find_element(By.ID, f"{element_id}-alpha").get_attribute("disabled") is not None
    press(driver, f"{element_id}-phi", Keys.ARROW_RIGHT)
    assert shown(driver, element_id) == expected(k + 1, 1.0, beta, gamma, table="official")

    # The Lite table: φ stays whole and stops at Lite4; the counts are the Lite models'.
    Select(driver.find_element(By.ID, f"{element_id}-table")).select_by_value("lite")
    lite = min(k + 1, 4)
    assert shown(driver, element_id) == expected(lite, 1.0, beta, gamma, table="lite")
    with torch.device("meta"):
        model = EfficientNet.from_name(f"efficientnet-lite{lite}")
    assert shown(driver, element_id)["params"] == f"{sum(p.numel() for p in model.parameters()):,}"
    assert press(driver, f"{element_id}-phi", Keys.END) == 4.0
    assert shown(driver, element_id) == expected(4, 1.0, beta, gamma, table="lite")
    Select(driver.find_element(By.ID, f"{element_id}-table")).select_by_value("formula")
    assert press(driver, f"{element_id}-phi", Keys.END) == SLIDERS["phi"].stop


def test_standalone_page_in_the_browser(browser, tmp_path):
    path = write_standalone(tmp_path / "explorer.html")
    browser.get_log("browser")                     # start from an empty console
    drive_explorer(browser, path.as_uri())
    # The page is the explorer alone, so any console error would be its own.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def test_two_explorers_on_one_page_are_independent(browser, tmp_path):
    """As in a book page with outputs around it: each fragment drives only its own numbers."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    body = explorer_html("first") + "<p>text between</p>" + explorer_html("second", phi=3.0)
    path = tmp_path / "two.html"
    head = '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
    path.write_text(f"{head}<body>{body}</body></html>", encoding="utf-8")
    browser.get(path.as_uri())
    press(browser, "first-phi", Keys.ARROW_RIGHT, 2)
    assert shown(browser, "first") == expected(1.5)
    assert shown(browser, "second") == expected(3.0)
    assert browser.find_element(By.ID, "second-phi").get_attribute("value") == "3"


def test_built_book_page_explorer(browser):
    """The explorer in the rendered chapter 1, once the chapter carries it and the book is built."""
    if not BOOK_PAGE.is_file() or 'id="phi-explorer"' not in BOOK_PAGE.read_text(encoding="utf-8"):
        pytest.skip(f"{BOOK_PAGE.relative_to(ROOT)} is not built or has no static explorer yet "
                    "(make book after chapter 1 adds it)")
    drive_explorer(browser, BOOK_PAGE.as_uri())


def test_json_payload_cannot_close_its_script(page):
    payload = page.split('type="application/json" id="phi-explorer-data">')[1].split("</script>")[0]
    assert json.loads(payload)["b0_macs"] == explore(0).macs
