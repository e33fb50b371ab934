#!/usr/bin/env python3
"""The first code cell of every chapter, written in one place: this script.

The cell installs the companion package in Colab (from `repository.url` in _config.yml,
the one place the URL is set) and, anywhere else where the package is missing, says how
to install it. It carries the cell tag `remove-cell`, so the rendered book hides it while
Colab and Jupyter still run it. This script writes it into every chapter:

    python tools/sync_setup_cell.py          # rewrite the notebooks
    python tools/sync_setup_cell.py --check  # exit 1 if a notebook differs (make test)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = "remove-cell"
MARK = "# Set-up (hidden in the book):"

CELL = '''# Set-up (hidden in the book): in Colab, install the companion package;
# elsewhere, say how to install it when it is missing.
import importlib.util, os, subprocess, sys
SOURCE = os.environ.get("EFFNET_TUTORIAL_SOURCE") or (
    "git+{url}")
if importlib.util.find_spec("effnet_tutorial") is None:
    if "google.colab" not in sys.modules:
        raise SystemExit(
            "effnet_tutorial is not installed in this kernel. In a clone of "
            "the repository run `make lab` (it sets up .venv and opens the "
            f"chapters), or install it here: pip install {{SOURCE}}")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", SOURCE],
        capture_output=True, text=True)
    importlib.invalidate_caches()
    if pip.returncode or importlib.util.find_spec("effnet_tutorial") is None:
        why = [e for e in pip.stderr.splitlines() if e.startswith("ERROR")]
        raise SystemExit(
            f"Could not install effnet_tutorial from {{SOURCE}} "
            f"({{why[0] if why else 'no message'}}). Is the runtime online? "
            "If it is, the repository may not be published yet: upload the "
            "project folder to Colab, set the environment variable "
            "EFFNET_TUTORIAL_SOURCE to its path and run this cell again.")
'''


def repository_url() -> str:
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    m = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", text, re.M)
    if not m:
        sys.exit("_config.yml has no repository.url")
    return m.group(1).strip("'\"")


def setup_cell_source(url: str | None = None) -> str:
    """The cell's source, with the repository URL from _config.yml."""
    return CELL.format(url=url or repository_url())


def first_code_cell(nb: dict):
    return next((c for c in nb["cells"] if c["cell_type"] == "code"), None)


def main(check: bool) -> int:
    source, problems = setup_cell_source(), []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = first_code_cell(nb)
        if cell is None or "google.colab" not in "".join(cell["source"]):
            problems.append(f"{path.name}: its first code cell is not a set-up cell (see CONTRIBUTING.md)")
            continue
        ok = "".join(cell["source"]) == source and TAG in cell.get("metadata", {}).get("tags", [])
        if ok:
            continue
        if check:
            problems.append(f"{path.name}: its first code cell is not the set-up cell of "
                            "tools/sync_setup_cell.py (run: python tools/sync_setup_cell.py)")
            continue
        cell["source"] = source.splitlines(keepends=True)
        cell.setdefault("metadata", {})["tags"] = sorted(set(cell["metadata"].get("tags", [])) | {TAG})
        cell["outputs"], cell["execution_count"] = [], cell.get("execution_count") or 1
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"updated {path.name}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
