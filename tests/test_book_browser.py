"""The built book in a real browser: headless Debian chromium through Selenium, at 1280 px and 412 px.

What a reader sees, measured on the pages themselves (tools/book_browser.py): math typeset by
MathJax served from the build (no raw TeX left), one output box per cell, code and output blocks
that fit the column (at most five in the whole book may scroll sideways, where their width is the
point), numbered figures with captions and real alt text, a Colab link on every chapter, and, on
a phone-sized window, no prose cut off. Needs `make book` first (as test_book_html.py does).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book_browser  # noqa: E402

MAX_OVERFLOWING = 5


@pytest.fixture(scope="module")
def desktop():
    why = book_browser.browser_available()
    if why:
        pytest.skip(why)
    if not (book_browser.HTML_DIR / "index.html").is_file():
        pytest.fail("the book is not built: run `make book` first", pytrace=False)
    return book_browser.report(1280)


@pytest.fixture(scope="module")
def phone(desktop):
    return book_browser.report(412)


def test_math_is_rendered_offline(desktop):
    raw = {page: r["raw"] for page, r in desktop.items() if r["raw"]}
    assert not raw, f"raw TeX delimiters left in the text (MathJax did not typeset them): {raw}"
    chapters = {page: r["mathjax"] for page, r in desktop.items() if page.startswith("chapters/")}
    assert all(n > 0 for n in chapters.values()), chapters


def test_each_cell_prints_one_output_box(desktop):
    split = {page: r["split"] for page, r in desktop.items() if r["split"]}
    assert not split, f"cells whose stream output is split into several boxes: {split}"


def test_at_most_five_blocks_scroll_sideways(desktop):
    wide = [(page, b["text"], b["scroll"], b["client"]) for page, r in desktop.items() for b in r["overflowing"]]
    assert len(wide) <= MAX_OVERFLOWING, "\n".join(f"{p}: {w}px in {c}px: {t!r}" for p, t, w, c in wide)


def test_every_figure_is_numbered_captioned_and_described(desktop):
    bad = [(page, f["src"], f["caption"][:40], f["alt"][:40]) for page, r in desktop.items() for f in r["figures"]
           if not f["number"] or not f["caption"] or f["alt_is_path"]]
    assert not bad, "figures without a number, a caption or alt text: " + "; ".join(map(str, bad))
    assert sum(len(r["figures"]) for r in desktop.values()) >= 18   # the figures are there


def test_every_chapter_has_its_colab_link(desktop):
    chapters = {page: r["colab"] for page, r in desktop.items() if page.startswith("chapters/")}
    assert len(chapters) == len(list((ROOT / "chapters").glob("*.ipynb")))
    assert all(chapters.values()), chapters


def test_no_prose_is_cut_off_on_a_phone(phone):
    cut = {page: r["cut"][:3] for page, r in phone.items() if r["cut"]}
    assert not cut, f"prose wider than a 412 px window: {cut}"


def test_download_menu_offers_the_pdf_and_the_notebooks():
    """The theme's download menu, on a chapter page, links the book's PDF and a zip of every
    notebook (book/_ext/downloads.py, _static/downloads.js); the zip is served and complete."""
    import io
    import urllib.request
    import zipfile

    why = book_browser.browser_available()
    if why:
        pytest.skip(why)
    with book_browser.serve() as base, book_browser.browser(1280) as driver:
        book_browser.open_page(driver, f"{base}/chapters/01_compound_scaling.html")
        links = driver.execute_script(
            "return [...document.querySelectorAll('.dropdown-download-buttons a.effnet-download')]"
            ".map(a => [a.href, a.textContent.trim()])")
        hrefs = {href.rsplit("/", 1)[1]: (href, label) for href, label in links}
        assert set(hrefs) == {"effnet-tutorial.pdf", "effnet-tutorial-notebooks.zip"}, links
        with urllib.request.urlopen(hrefs["effnet-tutorial-notebooks.zip"][0]) as response:
            archive = zipfile.ZipFile(io.BytesIO(response.read()))
    names = {n.rsplit("/", 1)[1] for n in archive.namelist()}
    assert names == {p.name for p in (ROOT / "chapters").glob("*.ipynb")}
