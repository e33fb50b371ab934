"""The book as one PDF (`make pdf`, tools/make_pdf.py): every chapter, math typeset, figures in.

Checked with poppler's pdftotext, pdfinfo and pdfimages on _build/pdf/effnet-tutorial.pdf.
Needs `make pdf` first (`make test` runs it); without the file these tests fail, so that a CI
that forgot it does not pass silently.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PDF = ROOT / "_build" / "pdf" / "effnet-tutorial.pdf"
SINGLE_PAGE = ROOT / "_build" / "single" / "_build" / "singlehtml" / "book" / "intro.html"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install Debian's poppler-utils (tools/install_browser.sh does)",
                    pytrace=False)
    return path


@pytest.fixture(scope="module")
def pdf() -> Path:
    if not PDF.is_file():
        pytest.fail(f"{PDF.relative_to(ROOT)} does not exist: run `make pdf` first", pytrace=False)
    return PDF


@lru_cache(maxsize=1)
def _text(path: Path) -> str:
    out = subprocess.run([_tool("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True,
                         check=True).stdout
    return re.sub(r"\s+", " ", out)


def page_titles() -> list[str]:
    """The first heading of every page in the toc: the chapters' notebooks and book/*.md."""
    titles = []
    for nb in sorted((ROOT / "chapters").glob("*.ipynb")):
        first = json.loads(nb.read_text(encoding="utf-8"))["cells"][0]
        titles.append("".join(first["source"]).splitlines()[0].lstrip("# ").strip())
    for md in sorted((ROOT / "book").glob("*.md")):
        titles.append(next(line for line in md.read_text(encoding="utf-8").splitlines()
                           if line.startswith("# ")).lstrip("# ").strip())
    return titles


@pytest.mark.parametrize("title", page_titles())
def test_every_page_title_is_in_the_pdf(pdf, title):
    assert re.sub(r"\s+", " ", title) in _text(pdf)


def test_math_is_typeset(pdf):
    # Not \alpha: chapter 1 prints a docstring whose :math: roles hold it, as code.
    raw = [m for m in (r"\(", r"\)", r"\frac", "$$") if m in _text(pdf)]
    assert not raw, f"raw TeX in the PDF's text: {raw}"


def test_title_page_and_contents(pdf):
    first = subprocess.run([_tool("pdftotext"), "-f", "1", "-l", "2", str(pdf), "-"], capture_output=True,
                           text=True, check=True).stdout
    assert "EfficientNet V1/V2, step by step" in first and "Contents" in first


def test_page_count_is_plausible(pdf):
    info = subprocess.run([_tool("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    chapters = len(list((ROOT / "chapters").glob("*.ipynb")))
    # A chapter prints as about 10-30 A4 pages (222 pages for 11 notebooks when this was written).
    assert 8 * chapters <= pages <= 60 * chapters, pages


def test_figures_are_embedded(pdf):
    listing = subprocess.run([_tool("pdfimages"), "-list", str(pdf)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    images = [row for row in listing if row.split()[2] == "image"]
    html = SINGLE_PAGE.read_text(encoding="utf-8")
    article = html[html.index('<article class="bd-article">'):]
    figures = set(re.findall(r'<img[^>]+src="([^"]+)"', article))
    assert figures, "no images in the single-page build"
    assert len(images) >= len(figures), (len(images), len(figures))
