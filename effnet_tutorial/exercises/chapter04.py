"""Checkers for chapter 4 (stem, blocks and head: assembling EfficientNet-B0).

>>> from effnet_tutorial.exercises.chapter04 import check_stride2_paddings
>>> check_stride2_paddings([(0, 1), (0, 1), (1, 2), (0, 1), (2, 2)], image_size=240)
Correct: TF paddings of efficientnet-b0's 5 stride-2 layers at 240x240.
True
"""
from __future__ import annotations

import torch

from ..config import get_model_config
from ..diagram import stage_table
from ..layers import same_padding
from ._common import never_crashes, report

__all__ = ["stride2_layers", "check_stride2_paddings", "param_breakdown", "check_param_breakdown",
           "check_accepts_size"]


def stride2_layers(image_size: int = 240, name: str = "efficientnet-b0") -> list[dict]:
    """The stride-2 layers of a model (the stem and the first block of some stages) with the
    side length of their input and their kernel size, for a square ``image_size`` input."""
    return [dict(stage=r["stage"], operator=r["operator"], kernel=r["kernel"], input_size=r["input_size"])
            for r in stage_table(name, image_size) if r["stride"] == 2]


def _as_pairs(answer) -> list[tuple[int, int]] | None:
    try:
        return [(int(a), int(b)) for a, b in answer]
    except (TypeError, ValueError):
        return None


@never_crashes
def check_stride2_paddings(answer, image_size: int = 240, name: str = "efficientnet-b0") -> bool:
    """``answer``: one ``(before, after)`` pair per stride-2 layer, in order (stem first)."""
    layers = stride2_layers(image_size, name)
    expected = [same_padding(layer["input_size"], layer["kernel"], 2) for layer in layers]
    got = _as_pairs(answer)
    # Short: the book prints it in an exercise solution, which is narrower than 80 columns.
    what = f"TF paddings of {name}'s {len(layers)} stride-2 layers at {image_size}x{image_size}"
    if got is None:
        return report(False, what, hint="give a list of (before, after) pairs of ints, one per stride-2 layer")
    if len(got) != len(expected):
        return report(False, what, hint=f"there are {len(expected)} stride-2 layers (stem and stages "
                                        f"{', '.join(str(x['stage']) for x in layers[1:])}); you gave {len(got)}")
    for layer, e, g in zip(layers, expected, got):
        if e != g:
            return report(False, what, expected=e, got=g,
                          hint=f"stage {layer['stage']} ({layer['operator']}, k{layer['kernel']}) sees a "
                               f"{layer['input_size']}x{layer['input_size']} input; output = ceil(n / 2), total "
                               "padding = (out - 1) * 2 + k - n, and TF puts the odd pixel after")
    return report(True, what)


def param_breakdown(name: str = "efficientnet-b0") -> dict[str, int]:
    """Parameters of the stem, each stage (paper numbers), the head conv (+BN) and the
    classifier, counted on torchvision's implementation of the same model: an independent
    reference for the package's numbers (pooling and dropout hold none). Built on the meta
    device: costs no memory.

    Shape: name -> {"stem": int, "stages.2": int, ..., "head": int, "classifier": int}.
    """
    import torchvision

    cfg = get_model_config(name)
    tv_name = cfg.name.replace("efficientnetv2-", "efficientnet_v2_").replace("efficientnet-", "efficientnet_")
    if not hasattr(torchvision.models, tv_name):
        raise ValueError(f"torchvision has no {cfg.name}; the breakdown is checked for the models it has")
    with torch.device("meta"):
        ref = getattr(torchvision.models, tv_name)()
    numel = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    parts = {"stem": numel(ref.features[0])}
    parts.update({f"stages.{n}": numel(ref.features[i + 1]) for i, n in enumerate(cfg.stage_numbers)})
    parts.update(head=numel(ref.features[len(cfg.stage_numbers) + 1]), classifier=numel(ref.classifier))
    return parts


@never_crashes
def check_param_breakdown(answer: dict, name: str = "efficientnet-b0") -> bool:
    """``answer``: ``{"stem": ..., "stages.2": ..., ..., "stages.8": ..., "head": ..., "classifier": ...}``
    (stages numbered as in the paper's Table 1)."""
    expected = param_breakdown(name)
    what = f"parameters per part of {name}"
    if not isinstance(answer, dict):
        return report(False, what, hint=f"give a dict with the keys {list(expected)}")
    missing = [k for k in expected if k not in answer]
    if missing:
        return report(False, what, hint=f"missing keys: {missing}")
    for k, e in expected.items():
        if int(answer[k]) != e:
            return report(False, f"{what} ({k})", expected=e, got=int(answer[k]),
                          hint="count_params(module) works on any submodule, e.g. model.stages[7]")
    return report(True, f"{what}; they add up to {sum(expected.values()):,}")


@never_crashes
def check_accepts_size(model: torch.nn.Module, size: int = 256) -> bool:
    """Does ``model`` classify a ``size`` x ``size`` image? (Runs one zero image in the
    model's own dtype and on its device, in eval mode, no gradients.)"""
    from ..inspection import inspecting

    what = f"the model classifies a {size}x{size} image"
    if not isinstance(model, torch.nn.Module):
        return report(False, what, hint=f"pass the model itself (an nn.Module), not a {type(model).__name__}")
    in_channels = getattr(model, "in_channels", 3)
    p = next(model.parameters(), None)
    device, dtype = (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)
    try:
        with inspecting(model), torch.no_grad():
            out = model(torch.zeros(1, in_channels, size, size, device=device, dtype=dtype))
    except ValueError as exc:
        return report(False, what, hint=f"it raised ValueError: {exc}")
    ok = isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[0] == 1
    return report(ok, what, expected="[1, num_classes]",
                  got=list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__,
                  hint="a classifier returns one row of class scores per image: keep the pooling and "
                       "the classifier (model.pool, model.classifier) after the features")
