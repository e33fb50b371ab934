"""Chapter 9's in-page demo (chapters/09_in_the_browser) in a real browser: EfficientNet-Lite0
on ONNX Runtime Web, driven in headless Debian chromium through Selenium (tools/book_browser.py),
the book served from 127.0.0.1. Needs `make book` first (as test_book_browser.py does).

For each of the book's sample photos the page must give what Python gives on the same photo:
the input tensor of ``lite_preprocess`` (to float rounding), the logits of ONNX Runtime in
Python on that input, run on the book's own copy of the ONNX file (to 1e-4 of the largest
logit), and so the same top 5. Nothing may load before Run, every request goes to the local
server, an unreadable image and a file:// page get a clear message.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book_browser  # noqa: E402

PAGE = "chapters/09_in_the_browser.html"
DEMO = book_browser.HTML_DIR / "demo"
RUN_TIMEOUT = 300        # seconds; the first run loads about 33 MB and compiles the WebAssembly
HEAVY = (".onnx", ".wasm", ".mjs", "ort.wasm.min.js", "manifest.json", ".png")

# The page's state after a run: result rows, the input tensor and logits as base64 float32.
RESULT_JS = r"""
const root = document.querySelector("[data-effnet-demo]");
const b64 = (a) => { const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength); let s = "";
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
  return btoa(s); };
const last = root.effnetDemo && root.effnetDemo.last;
return JSON.stringify({
  state: root.getAttribute("data-state"),
  status: root.querySelector(".effnet-demo-status").textContent,
  rows: [...root.querySelectorAll("[data-class]")].map(
    r => [r.getAttribute("data-class"), r.getAttribute("data-prob")]),
  shapes: [...root.querySelectorAll(".effnet-demo-shape")].map(td => td.textContent),
  maps: [...root.querySelectorAll(".effnet-demo-maps")].map(td => td.querySelectorAll("canvas").length),
  ms: last ? last.ms : null, load_ms: root.effnetDemo ? root.effnetDemo.loadMs : null,
  threads: root.effnetDemo ? root.effnetDemo.threads : null, isolated: self.crossOriginIsolated,
  input: last ? b64(last.input) : null, logits: last ? b64(last.logits) : null,
});
"""


class IsolatingHandler(book_browser.QuietHandler):
    """Sends the two headers that make a page cross-origin isolated (what a host must do for
    WebAssembly threads): Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy."""

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


@contextlib.contextmanager
def serve_isolated(directory: Path = book_browser.HTML_DIR):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(IsolatingHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _floats(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32)


@pytest.fixture(scope="module")
def served():
    why = book_browser.browser_available()
    if why:
        pytest.skip(why)
    if not (book_browser.HTML_DIR / PAGE).is_file() or not (DEMO / "manifest.json").is_file():
        pytest.fail("the book (with its demo) is not built: run `make book` first", pytrace=False)
    with book_browser.serve() as base, book_browser.browser(1280) as driver:
        driver.set_script_timeout(60)
        book_browser.open_page(driver, f"{base}/{PAGE}")
        driver.execute_script("performance.setResourceTimingBufferSize(100000)")
        loaded_with_page = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        yield {"base": base, "driver": driver, "loaded_with_page": loaded_with_page, "runs": {}}


@pytest.fixture(scope="module")
def python_reference():
    """ONNX Runtime in Python on ``lite_preprocess`` of each sample photo, with the book's file."""
    from effnet_tutorial.deploy import onnx_session
    from effnet_tutorial.imagenet import lite_preprocess, sample_photos

    manifest = json.loads((DEMO / "manifest.json").read_text())
    session = onnx_session(DEMO / manifest["model"]["file"], threads=1)
    size = manifest["model"]["image_size"]
    reference = {}
    for label, photo in sample_photos().items():
        x = lite_preprocess(photo, size)[None].numpy()                  # (1, 3, S, S)
        outputs = session.run(None, {"images": x})
        reference[label] = {"input": x.reshape(-1), "logits": outputs[0].reshape(-1),
                            "shapes": [tuple(o.shape) for o in outputs[1:]]}
    return reference


def _run(served, value: str) -> dict:
    """Choose ``value`` in the photo <select> (unless None), press Run, wait, return the state."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = served["driver"]
    root = driver.find_element(By.CSS_SELECTOR, "[data-effnet-demo]")
    if value is not None:
        Select(root.find_element(By.TAG_NAME, "select")).select_by_value(value)
    driver.execute_script("arguments[0].setAttribute('data-state', 'waiting')", root)
    t0 = time.perf_counter()
    root.find_element(By.XPATH, ".//button[normalize-space()='Run']").click()
    WebDriverWait(driver, RUN_TIMEOUT).until(
        lambda d: root.get_attribute("data-state") in ("done", "error"))
    state = json.loads(driver.execute_script(RESULT_JS))
    state["wall_s"] = time.perf_counter() - t0
    return state


@pytest.fixture(scope="module")
def photo_runs(served):
    """Every sample photo run once in the page, in the <select>'s order; the first run is timed."""
    from selenium.webdriver.common.by import By

    select = served["driver"].find_element(By.CSS_SELECTOR, "[data-effnet-demo] select")
    options = [(o.get_attribute("value"), o.text) for o in select.find_elements(By.TAG_NAME, "option")
               if o.get_attribute("value") != "__own__"]
    runs = {label: _run(served, value) for value, label in options}
    first = next(iter(runs.values()))
    sizes = {f.relative_to(DEMO).as_posix(): f.stat().st_size for f in sorted(DEMO.rglob("*"))
             if f.suffix in (".onnx", ".wasm", ".mjs", ".js") and f.name != "effnet-demo.js"}
    print(f"\nbrowser demo, headless chromium: first run {first['wall_s']:.1f} s wall "
          f"(runtime + model load {first['load_ms']:.0f} ms, inference {first['ms']:.0f} ms); "
          "later inferences " + ", ".join(f"{r['ms']:.0f}" for r in list(runs.values())[1:]) + " ms; "
          + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    return runs


def test_demo_has_its_stable_hooks_and_loads_nothing_heavy_with_the_page(served):
    from selenium.webdriver.common.by import By

    driver = served["driver"]
    roots = driver.find_elements(By.CSS_SELECTOR, "[data-effnet-demo]")
    assert len(roots) == 1
    labels = [o.text for o in roots[0].find_elements(By.CSS_SELECTOR, "select option")]
    assert any("Hopper" in label for label in labels), labels
    assert roots[0].find_elements(By.XPATH, ".//button[normalize-space()='Run']")
    heavy = [u for u in served["loaded_with_page"] if "/demo/" in u and u.endswith(HEAVY)]
    assert not heavy, f"loaded with the page, before Run: {heavy}"
    assert any(u.endswith("/demo/effnet-demo.js") for u in served["loaded_with_page"])


def test_every_photo_gives_pythons_input_logits_and_top5(photo_runs, python_reference):
    from effnet_tutorial.imagenet import imagenet_classes

    assert set(photo_runs) == set(python_reference)
    classes = imagenet_classes()
    for label, run in photo_runs.items():
        ref = python_reference[label]
        assert run["state"] == "done", (label, run["status"])
        page_input, page_logits = _floats(run["input"]), _floats(run["logits"])
        assert page_input.shape == ref["input"].shape
        input_err = np.abs(page_input - ref["input"]).max()
        assert input_err <= 1e-5, f"{label}: the page's input differs from lite_preprocess's by {input_err:.2e}"
        logit_err = np.abs(page_logits - ref["logits"]).max() / np.abs(ref["logits"]).max()
        assert logit_err <= 1e-4, f"{label}: the page's logits differ from ONNX Runtime's by {logit_err:.2e}"
        # The rows: Python's top 5, best first, with sane probabilities.
        probs = np.exp(ref["logits"] - ref["logits"].max())
        probs /= probs.sum()
        best = np.argsort(-probs)[:5]
        assert [c for c, _ in run["rows"]] == [classes[i] for i in best], (label, run["rows"])
        page_probs = np.array([float(p) for _, p in run["rows"]])
        assert np.all(page_probs > 0) and page_probs.sum() <= 1 + 1e-6
        assert np.all(np.diff(page_probs) <= 0), page_probs
        np.testing.assert_allclose(page_probs, probs[best], atol=1e-4)


def _top5(logits: np.ndarray):
    import torch

    from effnet_tutorial.imagenet import top_k
    return top_k(torch.from_numpy(logits.copy()), 5)


def test_grace_hopper_gets_pythons_top5(photo_runs, python_reference):
    label = next(k for k in photo_runs if "Hopper" in k)
    assert [c for c, _ in photo_runs[label]["rows"]] == [c for c, _ in _top5(python_reference[label]["logits"])]


def test_page_shows_every_stage_shape_and_feature_maps(photo_runs, python_reference):
    for label, run in photo_runs.items():
        shapes = [tuple(int(v) for v in s.strip("()").split(",")) for s in run["shapes"]]
        assert shapes == python_reference[label]["shapes"], label
        assert run["maps"] == [4] * len(shapes)
    assert run["ms"] > 0
    assert run["threads"] == 1 and run["isolated"] is False     # a plain static server


def test_with_cross_origin_isolation_it_runs_on_threads_and_agrees(python_reference):
    """Served with COOP/COEP, the page uses several WebAssembly threads (on a machine with more
    than one core) and still gives Python's logits and top 5 for Grace Hopper."""
    import os

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU core: the page would use one thread anyway")
    label = next(k for k in python_reference if "Hopper" in k)
    with serve_isolated() as base, book_browser.browser(1280) as driver:
        driver.set_script_timeout(60)
        book_browser.open_page(driver, f"{base}/{PAGE}")
        run = _run({"driver": driver, "base": base}, "grace-hopper-matplotlib.png")
    assert run["state"] == "done", run["status"]
    assert run["isolated"] is True and run["threads"] >= 2, (run["isolated"], run["threads"])
    ref = python_reference[label]["logits"]
    err = np.abs(_floats(run["logits"]) - ref).max() / np.abs(ref).max()
    assert err <= 1e-4, err
    assert [c for c, _ in run["rows"]] == [c for c, _ in _top5(ref)]
    print(f"\ncross-origin isolated: {run['threads']} threads, first run {run['wall_s']:.1f} s wall, "
          f"inference {run['ms']:.0f} ms")


def test_every_request_went_to_the_local_server(served, photo_runs):
    urls = served["driver"].execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")
    outside = [u for u in urls if not u.startswith(served["base"] + "/")]
    assert not outside, f"requests that left 127.0.0.1: {outside}"
    for name in ("efficientnet-lite0.onnx", "ort-wasm-simd-threaded.wasm", "ort.wasm.min.js"):
        assert any(u.endswith("/demo/" + name) or u.endswith("/demo/ort/" + name) for u in urls), name


def test_the_readers_own_image_is_preprocessed_as_in_python(served, photo_runs, tmp_path):
    """A picture of an odd size and shape (taller than wide, crop not a multiple of 224), given
    through the file picker: the page's input equals lite_preprocess's on the same pixels."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    from effnet_tutorial.imagenet import lite_preprocess, sample_photos

    photo = sample_photos()["astronaut (scikit-image)"][13:470, 101:390]         # (457, 289, 3)
    own = tmp_path / "my-photo.png"
    Image.fromarray(photo.copy()).save(own)
    served["driver"].find_element(By.CSS_SELECTOR, "[data-effnet-demo] input[type=file]").send_keys(str(own))
    run = _run(served, None)
    assert run["state"] == "done", run["status"]
    expected = lite_preprocess(photo, 224).reshape(-1).numpy()
    err = np.abs(_floats(run["input"]) - expected).max()
    assert err <= 1e-5, f"the page's input differs from lite_preprocess's by {err:.2e}"
    assert len(run["rows"]) == 5


def test_a_dropped_picture_is_classified_like_the_same_photo_from_the_list(served, photo_runs):
    """Drag and drop: a File dropped on the demo's box (here the coffee PNG, renamed) gives the
    same top 5 as choosing the coffee photo in the <select>."""
    label = next(k for k in photo_runs if k.startswith("coffee"))
    served["driver"].execute_async_script(r"""
const done = arguments[arguments.length - 1];
const root = document.querySelector("[data-effnet-demo]");
fetch(root.getAttribute("data-assets") + "coffee-scikit-image.png").then(r => r.blob()).then(blob => {
  const data = new DataTransfer();
  data.items.add(new File([blob], "dropped.png", {type: "image/png"}));
  root.querySelector(".effnet-demo-drop").dispatchEvent(
    new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
  done();
});""")
    run = _run(served, None)
    assert run["state"] == "done" and "dropped.png" in run["status"], run["status"]
    assert run["rows"] == photo_runs[label]["rows"]


def test_an_unreadable_image_gets_a_clear_message(served, photo_runs, tmp_path):
    from selenium.webdriver.common.by import By

    broken = tmp_path / "not-a-photo.png"
    broken.write_bytes(b"this is text, not a PNG\n" * 10)
    driver = served["driver"]
    driver.find_element(By.CSS_SELECTOR, "[data-effnet-demo] input[type=file]").send_keys(str(broken))
    run = _run(served, None)
    assert run["state"] == "error"
    assert "could not be read as an image" in run["status"] and "PNG, JPEG" in run["status"], run["status"]
    assert run["rows"] == []


def test_opened_from_a_file_url_it_says_how_to_serve_the_folder(served):
    from selenium.webdriver.common.by import By

    driver = served["driver"]
    driver.get((book_browser.HTML_DIR / PAGE).resolve().as_uri())
    root = driver.find_element(By.CSS_SELECTOR, "[data-effnet-demo]")
    status = root.find_element(By.CSS_SELECTOR, ".effnet-demo-status").text
    assert "python -m http.server -d _build/html" in status, status
    assert not root.find_element(By.XPATH, ".//button[normalize-space()='Run']").is_enabled()
