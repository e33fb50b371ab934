#!/usr/bin/env python3
"""Write the files of the book's in-browser demo (chapters/09_in_the_browser): the ONNX file
of EfficientNet-Lite0, the sample photos as PNG and a manifest, into one folder.

    python tools/export_browser_demo.py [OUT]     # default: _build/.browser_demo

``make book`` runs it through book/_ext/browser_demo.py, which copies the folder into the
built book next to ONNX Runtime Web. The ONNX file is chapter 9's: ``export_onnx`` on the
ImageNet weights of ``EfficientNet.from_pretrained("efficientnet-lite0")`` (checked against the
eager model by ONNX Runtime), with the outputs of the stem, of every stage and of the head
added as extra graph outputs (named as ``feature_maps.stage_outputs`` names them), so that the
page can show the chapter-4 shape trace; the logits are the same graph's first output. Those
extra outputs are checked here against ``stage_outputs`` of the PyTorch model.

The photos are written as PNG (lossless): the browser decodes exactly the pixels that
``sample_photos()`` holds, so the page's input tensor can equal ``lite_preprocess``'s.
The folder is rewritten only when this script or the package changed (a stamp of their hashes).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "_build" / ".browser_demo"
MODEL_NAME = "efficientnet-lite0"
MODEL_FILE = "efficientnet-lite0.onnx"
MANIFEST = "manifest.json"


def _inputs_hash() -> str:
    """Hash of what the files are made from: this script and the package's sources."""
    digest = hashlib.sha256()
    for path in [Path(__file__).resolve(), *sorted((ROOT / "effnet_tutorial").rglob("*.py"))]:
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def photo_file(label: str) -> str:
    """A file name for a sample photo's label: "cat, Chelsea (scikit-image)" -> "cat-chelsea-scikit-image.png"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".png"


def _scope_outputs(model_proto, scopes: list[str]) -> dict[str, str]:
    """For each module path in ``scopes`` (e.g. "stages.3"), the name of the value that the
    last ONNX node exported from inside that module produces: the module's output (the nodes
    are in topological order). The exporter records each node's module path in its
    ``pkg.torch.onnx.name_scopes`` metadata."""
    found: dict[str, str] = {}
    for node in model_proto.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        if "pkg.torch.onnx.name_scopes" not in meta:
            continue
        path = ast.literal_eval(meta["pkg.torch.onnx.name_scopes"])
        for scope in scopes:
            if f"model.{scope}" in path:
                found[scope] = node.output[0]
    missing = [s for s in scopes if s not in found]
    if missing:
        raise RuntimeError(f"no ONNX node was exported from {missing}: the exporter's name_scopes "
                           "metadata changed; the stage outputs cannot be located")
    return found


def export(out: Path) -> dict:
    """Write the ONNX file, the PNG photos and the manifest into ``out``; return the manifest."""
    import numpy as np
    import onnx
    import torch
    from PIL import Image

    from effnet_tutorial import EfficientNet
    from effnet_tutorial.deploy import export_onnx, max_relative_error, onnx_session
    from effnet_tutorial.feature_maps import stage_outputs
    from effnet_tutorial.imagenet import (CROP_FRACTION, LITE_MEAN, LITE_STD, imagenet_classes,
                                          lite_preprocess, sample_photos)

    out.mkdir(parents=True, exist_ok=True)
    model = EfficientNet.from_pretrained(MODEL_NAME)
    size = EfficientNet.get_image_size(MODEL_NAME)                # 224
    path = export_onnx(model, out / MODEL_FILE, size, dynamic_batch=False)

    photos = sample_photos()
    first = next(iter(photos.values()))
    x = lite_preprocess(first, size)[None]                       # (1, 3, S, S)
    features, _ = stage_outputs(model, x)                         # {"stem": ..., "stages.2": ..., "head": ...}

    proto = onnx.load(path)
    names = _scope_outputs(proto, list(features))
    shapes = {scope: list(t.shape) for scope, t in features.items()}
    for scope, value in names.items():
        proto.graph.output.append(onnx.helper.make_tensor_value_info(
            value, onnx.TensorProto.FLOAT, shapes[scope]))
    for node in proto.graph.node:       # the exporter's metadata holds local file paths
        del node.metadata_props[:]
    onnx.checker.check_model(proto)
    onnx.save(proto, path)

    # The extra outputs are the stage outputs of the PyTorch model, the first is the logits.
    session = onnx_session(path)
    results = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        logits = model(x)
    errors = {"logits": max_relative_error(torch.from_numpy(results[0]), logits)}
    for (scope, tensor), got in zip(features.items(), results[1:]):
        errors[scope] = max_relative_error(torch.from_numpy(got), tensor)
    bad = {k: v for k, v in errors.items() if not v <= 1e-4}
    if bad:
        raise RuntimeError(f"the ONNX file's outputs differ from the PyTorch model's: {bad}")

    photo_entries = []
    for label, rgb in photos.items():
        name = photo_file(label)
        Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(out / name, optimize=True)
        photo_entries.append({"label": label, "file": name, "height": int(rgb.shape[0]),
                              "width": int(rgb.shape[1])})
    manifest = {
        "model": {"name": MODEL_NAME, "file": MODEL_FILE, "bytes": path.stat().st_size,
                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "image_size": size,
                  "input": "images", "outputs": [o.name for o in session.get_outputs()]},
        "stages": [{"name": scope, "output": names[scope], "shape": shapes[scope]} for scope in features],
        "preprocess": {"crop_fraction": CROP_FRACTION, "mean": LITE_MEAN, "std": LITE_STD},
        "photos": photo_entries,
        "classes": imagenet_classes(),
        "checked_max_relative_error": errors,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def ensure(out: Path = DEFAULT_OUT) -> Path:
    """Export into ``out`` unless it already holds the files made from the current sources."""
    stamp = out / ".inputs-sha256"
    wanted = _inputs_hash()
    if stamp.is_file() and stamp.read_text() == wanted and (out / MANIFEST).is_file():
        return out
    export(out)
    stamp.write_text(wanted)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    out = ensure(args.out)
    manifest = json.loads((out / MANIFEST).read_text())
    print(f"{out}: {manifest['model']['file']} ({manifest['model']['bytes'] / 1e6:.1f} MB), "
          f"{len(manifest['photos'])} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
