#!/usr/bin/env python3
"""Link each chapter's first mention of a package name to the API reference.

In the markdown cells of ``chapters/*.ipynb``, the first mention of a public name of
``effnet_tutorial`` written as code (`` `count_flops` ``, `` `count_flops()` ``,
`` `EfficientNet.from_pretrained` ``) becomes a Sphinx cross-reference to its entry in the
book's API reference (book/api): ``{py:func}`~effnet_tutorial.inspection.count_flops```.
Later mentions stay plain code. Code fences and headings are left alone.

    python tools/link_api.py           # rewrite the notebooks (markdown cells only)
    python tools/link_api.py --check   # list unlinked first mentions; exit 1 if any (make lint)
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDED = {"effnet_tutorial.exercises.assignments"}
# Code in backticks that is not already the target of a role: `name`, `name()`, `Class.method`.
MENTION = re.compile(r"(?<![}\w`])`(?P<name>[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?)(?P<call>\(\))?`(?!`)")
ROLE = re.compile(r"\{py:(?:func|class|data|meth|mod)\}`~?(?P<target>[\w.]+)`")


def api_names() -> dict[str, tuple[str, str]]:
    """Short name (``count_flops``, ``EfficientNet.from_pretrained``) -> (role, full target)."""
    import effnet_tutorial

    sys.path.insert(0, str(ROOT))
    names: dict[str, tuple[str, str]] = {}
    modules = ["effnet_tutorial"] + [m.name for m in pkgutil.walk_packages(effnet_tutorial.__path__,
                                                                            "effnet_tutorial.")]
    for module_name in modules:
        if module_name in EXCLUDED or any(p.startswith("_") for p in module_name.split(".")):
            continue
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            home = getattr(obj, "__module__", module_name) or module_name
            private = isinstance(home, str) and home.split(".")[-1].startswith("_")
            if not (isinstance(home, str) and home.startswith("effnet_tutorial")) or private:
                home = module_name
            if inspect.isclass(obj):
                names.setdefault(name, ("class", f"{home}.{name}"))
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if callable(member) or isinstance(member, (classmethod, staticmethod)):
                        names.setdefault(f"{name}.{attr}", ("meth", f"{home}.{name}.{attr}"))
            elif inspect.isfunction(obj):
                names.setdefault(name, ("func", f"{home}.{name}"))
            elif module_name == home:  # data: documented where it is defined
                names.setdefault(name, ("data", f"{home}.{name}"))
    return names


def _segments(text: str):
    """(is_prose, text) pieces of a markdown cell: code fences, headings and exercise texts
    are not prose (tools/classroom.py quotes the exercises into nbgrader notebooks, which
    Jupyter renders without Sphinx's roles)."""
    fence = None
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        opens_code = stripped.startswith(("```", "~~~")) and not stripped.startswith(("```{", "~~~{"))
        if fence is None and (opens_code or stripped.startswith("```{exercise}")):
            fence = stripped[:3]
            yield False, line
        elif fence is not None:
            if stripped.startswith(fence):
                fence = None
            yield False, line
        else:
            yield not stripped.startswith("#"), line


def link_notebook(path: Path, names: dict[str, tuple[str, str]], write: bool) -> list[str]:
    """Link the first mentions in one notebook; returns the names that were (or would be) linked."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    linked: set[str] = set()
    changed: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for m in ROLE.finditer(text):
            linked.add(m.group("target"))
        out = []
        for prose, line in _segments(text):
            if prose:
                def replace(m: re.Match) -> str:
                    entry = names.get(m.group("name"))
                    if entry is None or entry[1] in linked:
                        return m.group(0)
                    linked.add(entry[1])
                    changed.append(m.group("name"))
                    return f"{{py:{entry[0]}}}`~{entry[1]}`"
                line = MENTION.sub(replace, line)
            out.append(line)
        new = "".join(out)
        if new != text:
            cell["source"] = new.splitlines(keepends=True)
    if write and changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report unlinked first mentions, change nothing")
    args = parser.parse_args()
    names = api_names()
    missing = 0
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        changed = link_notebook(path, names, write=not args.check)
        if changed:
            missing += len(changed)
            verb = "not linked" if args.check else "linked"
            print(f"{path.relative_to(ROOT)}: {verb}: {', '.join(changed)}")
    if args.check and missing:
        print(f"{missing} first mentions are not linked to the API reference: run python tools/link_api.py")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
