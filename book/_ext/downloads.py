"""The book's downloads: every chapter notebook in one zip, next to the HTML book.

``make book`` writes ``effnet-tutorial-notebooks.zip`` (the notebooks of ``chapters/`` as
stored, with their outputs) into the build's root; ``make pdf`` puts ``effnet-tutorial.pdf``
beside it. ``_static/downloads.js`` adds both to the theme's download menu on every page.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

ZIP_NAME = "effnet-tutorial-notebooks.zip"


def write_notebooks_zip(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    chapters = Path(app.srcdir) / "chapters"
    target = Path(app.outdir) / ZIP_NAME
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for notebook in sorted(chapters.glob("*.ipynb")):
            archive.write(notebook, f"effnet-tutorial-notebooks/{notebook.name}")


def setup(app):
    app.connect("build-finished", write_notebooks_zip)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
