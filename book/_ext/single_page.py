"""The single-page build of ``make pdf`` (Sphinx's ``singlehtml`` builder) renders what the
HTML book renders.

Sphinx looks a node's visitors up by the builder's name and falls back to its format
(``html``) only when nothing at all is registered under that name. Other extensions of the
book register visitors under ``singlehtml``, so a node registered for ``html`` alone is
unknown there: myst-nb's ``HideCodeCellNode`` (cells tagged ``hide-input``, myst-nb 1.4
``sphinx_.py``) stopped the build. This registers myst-nb's own HTML visitors for it under
``singlehtml`` too; the page, and so the PDF, shows such a cell folded, as the book does.
"""
from __future__ import annotations


def setup(app):
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput, visit_HideCellInput

    app.registry.add_translation_handlers(
        HideCodeCellNode, singlehtml=(visit_HideCellInput, depart_HideCellInput))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
