"""The in-page demo of chapter 9 (chapters/09_in_the_browser): EfficientNet-Lite0 on ONNX
Runtime Web, in the built book, offline.

* On ``builder-inited`` the demo's files are made (tools/export_browser_demo.py: the ONNX
  file, the sample photos as PNG, a manifest; cached in ``_build/.browser_demo``) and the
  pinned onnxruntime-web is checked (``web/package-lock.json``, installed by ``npm ci``).
* The directive ``effnet-browser-demo`` writes the demo's HTML: the photo ``<select>``, the file
  picker, the Run button, and the script ``demo/effnet-demo.js`` (book/demo/).
* On ``build-finished`` everything goes into ``_build/html/demo/``: the script and its CSS, the
  ONNX file, the photos, the manifest, and ONNX Runtime Web's JavaScript and WebAssembly
  (``demo/ort/``). The page loads none of the big files until the reader presses Run.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

ASSETS = "demo"                   # folder of the build
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
OWN = "__own__"


def _paths(app) -> dict[str, Path]:
    src = Path(app.srcdir)
    return {"cache": src / "_build" / ".browser_demo", "web": src / "web",
            "ort": src / "web" / "node_modules" / "onnxruntime-web",
            "demo": src / "book" / "demo", "tool": src / "tools" / "export_browser_demo.py"}


def runtime_files(app) -> list[Path]:
    """ONNX Runtime Web's files that the demo needs, after checking the installed version is
    the one pinned in web/package-lock.json."""
    p = _paths(app)
    hint = ("run `npm ci --ignore-scripts` in web/ (`make book` does it; it needs Node.js and npm: "
            "sudo apt install nodejs npm)")
    lock = json.loads((p["web"] / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/onnxruntime-web"]["version"]
    installed_json = p["ort"] / "package.json"
    if not installed_json.is_file():
        raise ExtensionError(f"the demo of chapter 9 needs onnxruntime-web {pinned}, which is not "
                             f"installed in web/node_modules: {hint}")
    installed = json.loads(installed_json.read_text())["version"]
    if installed != pinned:
        raise ExtensionError(f"web/node_modules holds onnxruntime-web {installed}, but "
                             f"web/package-lock.json pins {pinned}: {hint}")
    files = [p["ort"] / "dist" / name for name in ORT_FILES]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ExtensionError(f"onnxruntime-web {installed} has no {missing} in its dist/: {hint}")
    return files


def _interactive(app) -> bool:
    """The demo runs in the HTML book; the single-page build (the PDF's) gets a note instead."""
    return app.builder.name == "html"


def make_assets(app) -> None:
    if not _interactive(app):
        return
    runtime_files(app)
    p = _paths(app)
    run = subprocess.run([sys.executable, str(p["tool"]), str(p["cache"])], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(
                             filter(None, [str(app.srcdir), os.environ.get("PYTHONPATH")]))})
    if run.returncode:
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-8:])
        raise ExtensionError(f"tools/export_browser_demo.py failed:\n{tail}")
    app.env.effnet_demo_manifest = json.loads((p["cache"] / "manifest.json").read_text())


def copy_assets(app, exception) -> None:
    if exception is not None or not _interactive(app):
        return
    p = _paths(app)
    target = Path(app.outdir) / ASSETS
    if target.exists():
        shutil.rmtree(target)
    (target / "ort").mkdir(parents=True)
    for f in p["cache"].iterdir():
        if not f.name.startswith("."):
            shutil.copy2(f, target / f.name)
    for f in p["demo"].iterdir():
        shutil.copy2(f, target / f.name)
    hashes = {}
    for f in runtime_files(app):
        shutil.copy2(f, target / "ort" / f.name)
        hashes[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
    (target / "ort" / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in hashes.items()))


class BrowserDemo(SphinxDirective):
    """``effnet-browser-demo``: the demo's root element, with its stable test hooks
    (``data-effnet-demo``, the photo ``<select>``, the "Run" button)."""

    has_content = False

    def run(self):
        if not _interactive(self.env.app):
            note = nodes.paragraph(text="Interactive in the online book: here EfficientNet-Lite0 classifies a photo "
                                        "of your choice with ONNX Runtime Web, inside the page.")
            note["classes"].append("effnet-print-note")
            return [note]
        manifest = getattr(self.env, "effnet_demo_manifest", None)
        if manifest is None:
            raise self.error("the demo's files were not made (book/_ext/browser_demo.py runs on "
                             "builder-inited of the HTML builder)")
        rel = "../" * self.env.docname.count("/")
        assets = f"{rel}{ASSETS}/"
        runtime_mb = sum(f.stat().st_size for f in runtime_files(self.env.app)) / 1e6
        model_mb = manifest["model"]["bytes"] / 1e6
        options = "".join(f'<option value="{html.escape(p["file"])}">{html.escape(p["label"])}</option>'
                          for p in manifest["photos"])
        markup = f"""
<link rel="stylesheet" href="{assets}effnet-demo.css">
<div class="effnet-demo" data-effnet-demo data-assets="{assets}" data-state="idle">
 <div class="effnet-demo-controls">
  <label>Photo: <select name="photo">{options}
   <option value="{OWN}">your own image (choose or drop one below)</option></select></label>
  <button type="button" class="effnet-demo-run" disabled>Run</button>
 </div>
 <div class="effnet-demo-drop">Or your own picture: <input type="file" accept="image/*"> or drop it on this box.
  It is read by this page only: nothing is uploaded.</div>
 <p class="effnet-demo-status" role="status">Pick a photo and press Run. Only then the page loads ONNX Runtime
  Web ({runtime_mb:.1f} MB of JavaScript and WebAssembly) and the model ({model_mb:.1f} MB), once.</p>
 <noscript><p>The demo needs JavaScript.</p></noscript>
 <div class="effnet-demo-output" aria-live="polite"></div>
</div>
<script src="{assets}effnet-demo.js" defer></script>
"""
        return [nodes.raw("", markup, format="html")]


def setup(app):
    app.connect("builder-inited", make_assets)
    app.connect("build-finished", copy_assets)
    app.add_directive("effnet-browser-demo", BrowserDemo)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
