"""The API reference of the built book (book/api, Sphinx autodoc): every public name has its entry.

A public module is every module of the package except the classroom's checkers,
``exercises.assignments``, ``exercises.training_project`` and ``exercises.speed_lab`` (the
instructors' course material, documented in book/assignments.md), and private ones (a
leading underscore). Each name in a public module's ``__all__`` must appear as an anchor
``id="<module>.<name>"`` in the built reference, or, for a name the module re-exports,
under the module that defines it. Needs ``make book`` first (as tests/test_book_html.py
does).
"""
from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import effnet_tutorial
from test_book_html import html_dir

EXCLUDED = {"effnet_tutorial.exercises.assignments",        # the classroom's course material
            "effnet_tutorial.exercises.training_project",
            "effnet_tutorial.exercises.speed_lab"}


def public_modules() -> list[str]:
    names = ["effnet_tutorial"]
    for info in pkgutil.walk_packages(effnet_tutorial.__path__, "effnet_tutorial."):
        if info.name in EXCLUDED or any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return names


def reference_ids() -> set[str]:
    ids: set[str] = set()
    for page in (html_dir() / "book" / "api").glob("*.html"):
        ids |= set(re.findall(r'id="(effnet_tutorial[\w.]*)"', page.read_text(encoding="utf-8")))
    return ids


def where_defined(module, name: str) -> set[str]:
    """The anchors under which ``module.name`` may be documented: the module itself, and the
    module that defines the object (for classes and functions re-exported elsewhere)."""
    places = {f"{module.__name__}.{name}"}
    obj = getattr(module, name)
    home = getattr(obj, "__module__", None)
    if isinstance(home, str) and home.startswith("effnet_tutorial") and getattr(obj, "__qualname__", None):
        places.add(f"{home}.{obj.__qualname__}")
    for other in public_modules():  # data (a tuple, a dict) re-exported from the module that defines it
        if other != module.__name__ and name in getattr(importlib.import_module(other), "__all__", ()):
            if getattr(importlib.import_module(other), name) is obj:
                places.add(f"{other}.{name}")
    return places


@pytest.fixture(scope="module")
def ids():
    found = reference_ids()
    assert found, "no API reference pages in the build (book/api)"
    return found


@pytest.mark.parametrize("module_name", public_modules())
def test_every_public_name_has_an_entry(module_name, ids):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names, f"{module_name} declares no __all__"
    missing = [n for n in names if not where_defined(module, n) & ids]
    assert not missing, f"{module_name}: no API reference entry for {missing}"


def test_every_public_module_has_a_section(ids):
    sections = {m for m in public_modules() if f"module-{m}" in ids or any(i.startswith(m + ".") for i in ids)}
    assert set(public_modules()) - {"effnet_tutorial"} <= sections


def test_reference_is_in_the_table_of_contents():
    toc = (html_dir() / "book" / "api" / "index.html").read_text(encoding="utf-8")
    for page in ("models", "inspection", "weights", "explorer", "training", "measure", "deploy", "checkers"):
        assert f"{page}.html" in toc, page


def test_chapters_link_their_first_mentions_to_the_reference():
    """Every cross-reference in the chapters resolves to an entry of the reference (an
    unresolved ``{py:func}`` role renders as plain code, without a link), and every chapter
    has some (tools/link_api.py writes them; `make lint` runs its --check)."""
    pages = sorted((html_dir() / "chapters").glob("*.html"))
    assert pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        linked = re.findall(r'<a class="reference internal" href="[^"]*book/api/[^"]*#effnet_tutorial[^"]*"', html)
        unresolved = re.findall(r'(?<!">)<code class="xref py py-\w+ docutils literal notranslate">'
                                r'<span class="pre">([^<]+)</span>', html)
        assert linked, f"{page.name} links nothing to the API reference"
        assert not unresolved, f"{page.name}: references that do not resolve: {unresolved}"
