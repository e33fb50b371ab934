#!/usr/bin/env python3
"""Open the built book in headless Chromium, as a reader sees it, and measure each page.

Used by tests/test_book_browser.py (the assertions) and by `make screenshots`:

    python tools/book_browser.py --report            # counts per page at 1280 px and 412 px
    python tools/book_browser.py --screenshots DIR   # one full-page PNG per page (1280 px)

Debian's chromium and chromium-driver drive the pages through Selenium. The book is served
from _build/html by a local http.server on 127.0.0.1 (MathJax and the page scripts load
from the build itself, so nothing else is reached).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import functools
import http.server
import json
import shutil
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# EFFNET_HTML_DIR: another build folder (e.g. jupyter-book build . --path-output /tmp/b -> /tmp/b/_build/html).
HTML_DIR = Path(os.environ.get("EFFNET_HTML_DIR", ROOT / "_build" / "html"))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

# What one page reports. Runs in the page; returns JSON-able data.
MEASURE_JS = r"""
const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
const visible = (el) => el.offsetParent !== null || el.getClientRects().length > 0;
// Code and output blocks that scroll sideways: their content is wider than their box.
const blocks = [...article.querySelectorAll(
    "div.highlight pre, .cell_output pre, .output pre, div.math-wrapper, mjx-container[display='true']")]
  .filter(visible);
const overflowing = blocks.filter(el => el.scrollWidth > el.clientWidth).map(el => ({
  text: (el.innerText || "").slice(0, 80), scroll: el.scrollWidth, client: el.clientWidth}));
// Split outputs: one cell printing one stream as several boxes.
let split = 0;
for (const cell of article.querySelectorAll("div.cell")) {
  const streams = [...cell.querySelectorAll(".cell_output > .output.stream, .cell_output > .output.stderr")];
  const names = streams.map(s => s.className);
  if (new Set(names).size !== names.length) split += 1;
}
// Math: MathJax's elements, and raw TeX delimiters left in the visible text.
const mathjax = article.querySelectorAll("mjx-container").length;
const text = article.innerText;
const raw = (text.match(/\\\(|\\\[|\$\$/g) || []).length;
// Figures: every image in the article, with its caption and alt text.
const figures = [...article.querySelectorAll("img")].filter(visible).map(img => {
  const fig = img.closest("figure");
  const cap = fig ? fig.querySelector("figcaption") : null;
  const src = img.getAttribute("src") || "";
  const alt = (img.getAttribute("alt") || "").trim();
  return {src: src.slice(-60), caption: cap ? cap.textContent.trim().slice(0, 80) : "",
          alt: alt.slice(0, 80),
          alt_is_path: alt === "" || src.endsWith(alt) || alt.includes("/") || /\.(png|svg|jpg)$/.test(alt),
          number: cap ? /^(Fig\.|Figure)\s*\d/.test(cap.textContent.trim()) : false,
          rendered_width: img.getBoundingClientRect().width, natural_width: img.naturalWidth};
});
// Prose that is cut off: a paragraph or list item wider than the viewport. Text inside a
// box that scrolls sideways (a wide table in the theme's scrolling container) is reachable.
const scrolls = (el) => { for (let a = el.parentElement; a && a !== article; a = a.parentElement) {
  const o = getComputedStyle(a).overflowX; if (o === "auto" || o === "scroll") return true; } return false; };
const cut = [...article.querySelectorAll("p, li, dd, h1, h2, h3")].filter(visible).filter(el => !scrolls(el))
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1).map(el => el.innerText.slice(0, 60));
const colab = [...document.querySelectorAll("a[href]")].some(a => a.href.includes("colab.research.google.com"));
return JSON.stringify({blocks: blocks.length, overflowing, split, mathjax, raw, figures, cut, colab,
                       title: document.title});
"""


def pages() -> list[Path]:
    """The book's pages that a reader opens: the chapters and the pages of book/."""
    found = sorted((HTML_DIR / "chapters").glob("*.html")) + sorted((HTML_DIR / "book").glob("*.html"))
    return [p for p in found if p.name != "genindex.html"]


@contextlib.contextmanager
def serve(directory: Path = HTML_DIR):
    """A local HTTP server for the built book; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


def browser_available() -> str | None:
    """None when chromium and chromedriver are installed, else why not."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        return f"{' and '.join(missing)} missing: install Debian's chromium and chromium-driver"
    return None


@contextlib.contextmanager
def browser(width: int = 1280, height: int = 900):
    """Headless Debian chromium through Selenium, at a window of ``width`` CSS px.

    Scroll bars are shown, as most readers' browsers show them: a page's vertical scroll bar
    takes 15 px from the column, which is what makes a 77-character code line overflow.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="effnet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}",
                 f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(width, height)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, url: str, timeout: float = 30) -> None:
    """Load a page and wait until MathJax has typeset it (when the page uses MathJax)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return !window.MathJax || !MathJax.startup || !MathJax.startup.promise ? true : "
        "(window.__mjDone || (MathJax.startup.promise.then(() => window.__mjDone = true), false))"))


def measure(driver, base: str, page: Path) -> dict:
    open_page(driver, f"{base}/{page.relative_to(HTML_DIR).as_posix()}")
    return json.loads(driver.execute_script(MEASURE_JS))


def report(width: int = 1280) -> dict[str, dict]:
    with serve() as base, browser(width) as driver:
        return {p.relative_to(HTML_DIR).as_posix(): measure(driver, base, p) for p in pages()}


def screenshots(out: Path, width: int = 1280) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with serve() as base, browser(width) as driver:
        for p in pages():
            open_page(driver, f"{base}/{p.relative_to(HTML_DIR).as_posix()}")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(max(height, 900), 30000))
            target = out / (p.relative_to(HTML_DIR).as_posix().replace("/", "_").replace(".html", ".png"))
            driver.save_screenshot(str(target))
            driver.set_window_size(width, 900)
            written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print the counts per page")
    parser.add_argument("--screenshots", type=Path, help="write a full-page PNG of every page here")
    args = parser.parse_args()
    why = browser_available()
    if why:
        raise SystemExit(why)
    if not (HTML_DIR / "index.html").exists():
        raise SystemExit("the book is not built: run `make book` first")
    if args.screenshots:
        for p in screenshots(args.screenshots):
            print(p)
    if args.report or not args.screenshots:
        totals = {"blocks": 0, "overflowing": 0, "split": 0, "raw": 0, "figures": 0, "bad figures": 0}
        for width in (1280, 412):
            for name, r in report(width).items():
                if width == 412:
                    if r["cut"]:
                        print(f"412 px  {name}: {len(r['cut'])} cut-off prose elements")
                    continue
                bad = [f for f in r["figures"] if not f["caption"] or f["alt_is_path"] or not f["number"]]
                print(f"1280 px {name}: {len(r['overflowing'])}/{r['blocks']} blocks overflow, {r['split']} split, "
                      f"mathjax {r['mathjax']}, raw TeX {r['raw']}, figures {len(r['figures'])} "
                      f"({len(bad)} without number/caption/alt), colab {r['colab']}")
                totals["blocks"] += r["blocks"]
                totals["overflowing"] += len(r["overflowing"])
                totals["split"] += r["split"]
                totals["raw"] += r["raw"]
                totals["figures"] += len(r["figures"])
                totals["bad figures"] += len(bad)
        print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
