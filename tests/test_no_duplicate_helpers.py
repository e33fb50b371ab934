"""Chapters read as lessons: their plumbing lives in the package, once (issue 24, CONTRIBUTING.md).

Parses, with ``ast`` and without running anything, the code cells of every chapter and the
Python files of tests/ and benchmarks/, and checks that

* no helper the package provides (timing, peak memory, randomised BatchNorm statistics,
  Keras's BN count, the shell echo of a run) is defined again outside its home, under its
  name or under a name it had in a chapter before it moved;
* no function name is defined in two chapters (a helper two chapters need belongs in the
  package);
* no chapter reads memory by hand (``ctypes``, ``/proc/self``): that is
  :func:`effnet_tutorial.measure.peak_memory_mib`'s job;
* every chapter opens with its idea: before the first section, the code the book shows is at
  most a short import cell, and defines nothing.
"""
from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

# Each helper's one home. A chapter, a test or a benchmark imports it from there.
HOMES = {
    "time_interleaved": "effnet_tutorial.measure",
    "median_ratios": "effnet_tutorial.measure",
    "speedups": "effnet_tutorial.measure",
    "median_ms": "effnet_tutorial.measure",
    "best_ms": "effnet_tutorial.measure",
    "peak_memory_mib": "effnet_tutorial.measure",
    "timing_threads": "effnet_tutorial.measure",
    "randomise_batchnorm": "effnet_tutorial.weights",
    "count_bn_statistics": "effnet_tutorial.inspection",
    "format_command": "effnet_tutorial.train",
}
# Names the same helpers had in the chapters and tests before they moved: -> their home.
FORMER_NAMES = {
    "randomise_bn": "effnet_tutorial.weights.randomise_batchnorm",
    "bn_statistics": "effnet_tutorial.inspection.count_bn_statistics",
    "time_forward": "effnet_tutorial.measure.time_interleaved + best_ms",
    "step_time": "effnet_tutorial.measure.time_interleaved + best_ms",
    "_peak_host_mib": "effnet_tutorial.measure.peak_memory_mib",
    "_measure": "effnet_tutorial.measure (time_interleaved, peak_memory_mib)",
    "command": "effnet_tutorial.train.format_command",
    "_rss_peak_growth_mib": "effnet_tutorial.measure.peak_memory_mib",
}
# Copies that are known and waiting for their owner to switch (none left). Remove an entry
# once its copy is gone: test_pending_copies_still_exist fails as soon as one is.
PENDING: set[tuple[str, str]] = set()


def chapter_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def definitions(code: str) -> list[tuple[str, int]]:
    """(name, line) of every function and class defined in ``code``, nested ones too.
    IPython's magics (``%...``, ``!...``) are blanked out first."""
    code = re.sub(r"^\s*[%!].*$", "", code, flags=re.M)
    return [(node.name, node.lineno) for node in ast.walk(ast.parse(code))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def top_level_definitions(code: str) -> list[str]:
    """Functions defined at the top of a cell (also inside top-level ``if``/``for``/``with``/
    ``try``), not inside another function: the names a cell adds to the notebook."""
    names: list[str] = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.append(child.name)
            elif not isinstance(child, (ast.ClassDef, ast.Lambda)):
                visit(child)

    visit(ast.parse(re.sub(r"^\s*[%!].*$", "", code, flags=re.M)))
    return names


def places() -> list[tuple[str, str, str | None]]:
    """(where, code, module) of every chapter code cell and every .py file of tests/,
    benchmarks/ and the package (module: its dotted name, for the package's files)."""
    found = []
    for path in CHAPTERS:
        for i, cell in enumerate(chapter_cells(path)):
            if cell["cell_type"] == "code":
                found.append((f"chapters/{path.name}, cell {i}", source(cell), None))
    for folder in ("tests", "benchmarks", "effnet_tutorial"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            module = ".".join(rel.with_suffix("").parts) if folder == "effnet_tutorial" else None
            found.append((str(rel), path.read_text(encoding="utf-8"), module))
    return found


def test_the_homes_define_the_helpers():
    import importlib

    for name, module in HOMES.items():
        obj = getattr(importlib.import_module(module), name)
        assert obj.__module__ == module, f"{module}.{name} is defined in {obj.__module__}"
        assert name in importlib.import_module(module).__all__, f"{name} not in {module}.__all__"


def test_no_helper_is_defined_outside_its_home():
    wrong = []
    for where, code, module in places():
        for name, line in definitions(code):
            if module is not None and HOMES.get(name) == module:
                continue   # the home itself
            home = f"{HOMES[name]}.{name}" if name in HOMES else FORMER_NAMES.get(name)
            file = where.split(",")[0]
            if home and (file, name) not in PENDING:
                wrong.append(f"{where}, line {line}: defines {name}(); import "
                             f"{home} instead")
    assert not wrong, ("helpers defined again outside the package (CONTRIBUTING.md, 'What a "
                       "chapter defines'):\n" + "\n".join(wrong))


def test_pending_copies_still_exist():
    """An entry of PENDING whose copy is gone must leave the list, so that it cannot hide a
    new copy later."""
    for file, name in PENDING:
        names = [n for n, _ in definitions((ROOT / file).read_text(encoding="utf-8"))]
        assert name in names, (f"{file} no longer defines {name}: remove ({file!r}, {name!r}) "
                               "from PENDING in tests/test_no_duplicate_helpers.py")


def test_no_function_is_defined_in_two_chapters():
    where = defaultdict(set)
    for path in CHAPTERS:
        for cell in chapter_cells(path):
            if cell["cell_type"] == "code":
                for name in top_level_definitions(source(cell)):
                    where[name].add(path.name)
    twice = {name: sorted(files) for name, files in where.items() if len(files) > 1}
    assert not twice, ("functions defined in more than one chapter; a helper that two chapters "
                       f"need belongs in the package: {twice}")


def test_no_chapter_reads_memory_by_hand():
    by_hand = [f"chapters/{path.name}, cell {i}"
               for path in CHAPTERS for i, cell in enumerate(chapter_cells(path))
               if cell["cell_type"] == "code" and re.search(r"\bctypes\b|/proc/self", source(cell))]
    assert not by_hand, ("peak memory is measured by effnet_tutorial.measure.peak_memory_mib, "
                         f"not in the chapters: {by_hand}")


HIDDEN = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
OPENING_LINES = 16   # non-blank lines of code the book shows before the first section


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_first_screen_is_the_idea(path):
    """Before the first section heading (``## ...``), the book shows the title, the two
    sentences of what the chapter shows and a short import cell: set-up that is not the
    lesson is in a ``hide-input`` cell or in the package, and no function is defined."""
    shown, defined = 0, []
    for cell in chapter_cells(path)[1:]:
        text = source(cell)
        if cell["cell_type"] == "markdown" and re.search(r"^##\s", text, re.M):
            break
        if cell["cell_type"] != "code" or HIDDEN & set(cell["metadata"].get("tags", [])):
            continue
        shown += sum(1 for line in text.splitlines() if line.strip())
        defined += [name for name, _ in definitions(text)]
    assert shown <= OPENING_LINES, (f"{path.name}: {shown} lines of code before the first section "
                                    f"(at most {OPENING_LINES}): move set-up that is not the lesson "
                                    "into a cell tagged hide-input, or into the package")
    assert not defined, f"{path.name}: defines {defined} before its first section"
