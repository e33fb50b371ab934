#!/usr/bin/env python3
"""The whole book as one PDF, printed by Debian's chromium from a single-page HTML build.

    python tools/make_pdf.py            # writes _build/pdf/effnet-tutorial.pdf (make pdf)

No LaTeX and nothing downloaded: Jupyter Book's ``singlehtml`` builder puts every page of
_toc.yml into one HTML page (math typeset in the browser by the MathJax that the build
serves, figures as they are in the HTML book), which headless chromium opens from a local
server on 127.0.0.1 and prints through the DevTools protocol (``Page.printToPDF``). Before
printing, the page gets a title page, a table of contents and print rules: chapters start
on a new page, code wraps to the page width, solutions are shown, and the interactive φ
explorer is printed as it first appears, with a note pointing to the online book.

The PDF is also copied into _build/html (when the HTML book is built), where the book's
download menu links to it.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import book_browser  # noqa: E402

ROOT = book_browser.ROOT
SINGLE = ROOT / "_build" / "single"
SINGLE_HTML = SINGLE / "_build" / "singlehtml"
OUT = ROOT / "_build" / "pdf" / "effnet-tutorial.pdf"
PDF_NAME = OUT.name

# Runs in the page before printing. Adds the title page and the contents, and the print rules.
PREPARE_JS = r"""
const title = arguments[0], subtitle = arguments[1], date = arguments[2];
const article = document.querySelector("article.bd-article");
const css = `
  @page { size: A4; margin: 16mm 14mm 18mm 14mm; }
  .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .header-article, .bd-header-article,
  .prev-next-area, .bd-footer, .bd-footer-article, footer, .toggle-button, button.toggle-button,
  .headerlink, #jb-print-docs-body, .copybtn, .bd-search, .search-button-field { display: none !important; }
  .bd-main, .bd-content, .bd-article-container, article.bd-article { max-width: none !important;
      width: auto !important; margin: 0 !important; padding: 0 !important; }
  body { font-size: 11pt; }
  pre { white-space: pre-wrap !important; word-break: break-all; overflow: visible !important;
        font-size: 8.5pt !important; }
  div.highlight, div.cell_output, .output { overflow: visible !important; }
  .toggle-hidden, .solution > *, details > * { display: block !important; visibility: visible !important;
        opacity: 1 !important; height: auto !important; }
  img { max-width: 100% !important; page-break-inside: avoid; break-inside: avoid; }
  figure, table { break-inside: avoid; }
  h1, h2, h3 { break-after: avoid; }
  .effnet-chapter-start { break-before: page; }
  #effnet-title-page { break-after: page; text-align: center; padding-top: 35%; }
  #effnet-title-page h1 { font-size: 30pt; border: none; }
  #effnet-contents { break-after: page; }
  #effnet-contents li { list-style: none; margin: 0.2em 0; }
  .effnet-print-note { font-style: italic; border-left: 3px solid #888; padding-left: 0.6em; }
`;
const style = document.createElement("style");
style.textContent = css;
document.head.appendChild(style);
for (const d of document.querySelectorAll("details")) d.open = true;
// singlehtml puts each page of the toc in a section inside the toctree of the page above it:
// each starts on a new page, and its heading goes into the contents (sections indented).
const starts = [...article.querySelectorAll("div.toctree-wrapper > section")];
starts.forEach(s => s.classList.add("effnet-chapter-start"));
const entries = starts.map(s => ({
  text: s.querySelector("h1, h2, h3, h4").textContent.replace(/#$/, "").trim(),
  level: s.parentElement.closest("div.toctree-wrapper > section") ? 1 : 0}));
// The interactive explorer prints as it first appears, with a note.
for (const widget of article.querySelectorAll(".effx")) {
  const note = document.createElement("p");
  note.className = "effnet-print-note";
  note.textContent = "Interactive in the online book: the sliders below are shown at their first setting.";
  widget.parentElement.insertBefore(note, widget);
}
const page = document.createElement("div");
page.id = "effnet-title-page";
page.innerHTML = `<h1></h1><p class="sub"></p><p class="date"></p>`;
page.querySelector("h1").textContent = title;
page.querySelector(".sub").textContent = subtitle;
page.querySelector(".date").textContent = date;
const contents = document.createElement("div");
contents.id = "effnet-contents";
contents.innerHTML = "<h2>Contents</h2><ul></ul>";
for (const e of entries) {
  const li = document.createElement("li");
  li.textContent = e.text;
  li.style.marginLeft = `${2 * e.level}em`;
  contents.querySelector("ul").appendChild(li);
}
article.insertBefore(contents, article.firstChild);
article.insertBefore(page, contents);
// Lazy images must be loaded before printing.
for (const img of document.querySelectorAll("img[loading='lazy']")) img.loading = "eager";
return JSON.stringify({chapters: entries.length, images: document.images.length});
"""

IMAGES_LOADED_JS = "return [...document.images].every(i => i.complete)"

# The singlehtml page (book/intro.html) asks for MathJax at a path relative to the build's root
# and without the book's MathJax settings, so it never loads. Load the build's own copy with
# the settings of the HTML book (_config.yml's myst mathjax classes), then wait for it.
MATHJAX_JS = r"""
const done = arguments[arguments.length - 1];
window.MathJax = {options: {processHtmlClass: "tex2jax_process|mathjax_process|math|output_area"},
                  startup: {pageReady: () => MathJax.startup.defaultPageReady().then(() => done("typeset"))}};
const script = document.createElement("script");
script.src = "/_static/mathjax/tex-chtml.js";
script.onerror = () => done("MathJax could not be loaded from /_static/mathjax/tex-chtml.js");
document.head.appendChild(script);
"""


def build_single_html() -> None:
    """Jupyter Book's singlehtml build (warnings are errors, as for the HTML book)."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--builder", "singlehtml",
           "--path-output", str(SINGLE), "-W", "--keep-going", "--all"]
    if not Path(cmd[0]).exists():
        cmd[0] = "jupyter-book"
    subprocess.run(cmd, check=True)


def print_pdf(out: Path = OUT) -> dict:
    """Print the single-page build to ``out``; returns what the page reported."""
    why = book_browser.browser_available()
    if why:
        raise SystemExit(f"make pdf needs chromium: {why}")
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    title = next(line.split(":", 1)[1].strip().strip('"') for line in config.splitlines()
                 if line.startswith("title:"))
    subtitle = "EfficientNet V1, V2 and Lite, explained and runnable: the book and the effnet_tutorial package"
    date = datetime.date.today().strftime("%-d %B %Y")
    with book_browser.serve(SINGLE_HTML) as base, book_browser.browser(1280) as driver:
        book_browser.open_page(driver, f"{base}/book/intro.html", timeout=120)
        driver.set_script_timeout(600)
        typeset = driver.execute_async_script(MATHJAX_JS)
        if typeset != "typeset":
            raise SystemExit(typeset)
        found = json.loads(driver.execute_script(PREPARE_JS, title, subtitle, date))
        deadline = time.monotonic() + 120
        while not driver.execute_script(IMAGES_LOADED_JS) and time.monotonic() < deadline:
            time.sleep(0.5)
        footer = ('<div style="font-size:8pt;width:100%;text-align:center;color:#555">'
                  '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
        result = driver.execute_cdp_cmd("Page.printToPDF", {
            "printBackground": True, "preferCSSPageSize": True, "displayHeaderFooter": True,
            "headerTemplate": "<div></div>", "footerTemplate": footer, "generateDocumentOutline": True,
        })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(result["data"]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="print the existing singlehtml build")
    args = parser.parse_args()
    start = time.monotonic()
    if not args.no_build:
        build_single_html()
    found = print_pdf()
    html = ROOT / "_build" / "html"
    if (html / "index.html").is_file():
        shutil.copy2(OUT, html / PDF_NAME)
    size = OUT.stat().st_size / 1e6
    print(f"wrote {OUT.relative_to(ROOT)}: {size:.1f} MB, {found['chapters']} pages of the toc, "
          f"{found['images']} images, in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
