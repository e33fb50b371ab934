r"""What a network computes inside: each stage's feature maps, the SE gates of every
block, and how much the gates depend on the class of the image.

Everything here reads a model through forward hooks, in eval mode (the model's mode is
restored afterwards), without gradients, and changes nothing in it.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .inspection import inspecting
from .layers import SqueezeExcite
from .model import EfficientNet

__all__ = ["stage_outputs", "se_gates", "class_means", "ClassVariation", "class_variation",
           "mean_activation_map"]


def _check_model(model) -> None:
    if not isinstance(model, EfficientNet):
        raise TypeError(f"expected an EfficientNet (EfficientNet.from_name or from_pretrained), "
                        f"got {type(model).__name__}")


def _run_with_hooks(model: EfficientNet, x: torch.Tensor, modules: dict[str, nn.Module]):
    """Run ``model(x)`` in eval mode without gradients; return the outputs of ``modules``
    (name -> module) and the logits."""
    captured: OrderedDict[str, torch.Tensor] = OrderedDict()

    def keep(name):
        def hook(module, inputs, output):
            captured[name] = output.detach()
        return hook

    handles = [m.register_forward_hook(keep(name)) for name, m in modules.items()]
    try:
        with inspecting(model), torch.no_grad():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return OrderedDict((name, captured[name]) for name in modules), logits


def stage_outputs(model: EfficientNet, x: torch.Tensor) -> tuple[OrderedDict[str, torch.Tensor], torch.Tensor]:
    """The output of the stem, of every block stage and of the head for the images ``x``,
    named as :func:`~effnet_tutorial.trace_shapes` names them (``"stem"``, ``"stages.2"``
    ... ``"stages.8"``, ``"head"`` for V1 and Lite: the paper's stage numbers,
    EfficientNet Table 1), and the logits of the same forward pass.

    Shape: (B, C_in, H, W) -> ({name: (B, C_i, H_i, W_i)}, (B, num_classes)).
    """
    _check_model(model)
    modules = {"stem": model.stem,
               **{f"stages.{n}": stage for n, stage in model.stages.named_children()},
               "head": model.head}
    return _run_with_hooks(model, x, modules)


def se_gates(model: EfficientNet, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
    r"""The squeeze-and-excitation gates :math:`s = \sigma(\ldots)` of every block for the
    images ``x`` (Hu et al. 2018, §3.2, Eq. 3): the factor by which each channel of the
    block's expanded tensor is multiplied. Names are the blocks' (``"stages.3.0"``).

    Shape: (B, C_in, H, W) -> {block name: (B, C_block)}, values in (0, 1).
    """
    _check_model(model)
    modules = {f"stages.{n}.{j}": block.se.gate
               for n, stage in model.stages.named_children()
               for j, block in enumerate(stage) if isinstance(block.se, SqueezeExcite)}
    if not modules:
        raise ValueError(f"{model.config.name} has no squeeze-and-excitation layers (its blocks have "
                         f"se_ratio=None, as EfficientNet-Lite's); use an EfficientNet-B* or V2 model")
    gates, _ = _run_with_hooks(model, x, modules)
    return OrderedDict((name, g.flatten(1)) for name, g in gates.items())      # (B, C, 1, 1) -> (B, C)


def _check_values_labels(values, labels) -> None:
    if not isinstance(values, torch.Tensor) or values.ndim != 2 or not values.is_floating_point():
        raise ValueError("values must be a float tensor of shape (N, C) (one row per image), got "
                         f"{list(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__}")
    if (not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.shape[0] != values.shape[0]
            or labels.is_floating_point() or labels.dtype == torch.bool):
        got = (f"{labels.dtype} of shape {list(labels.shape)}" if isinstance(labels, torch.Tensor)
               else type(labels).__name__)
        raise ValueError(f"labels must be an integer tensor of shape ({values.shape[0]},), one class per "
                         f"row of values, got {got}")
    if values.shape[0] < 2 or bool((labels < 0).any()):
        raise ValueError(f"expected at least 2 rows and class labels >= 0, got {values.shape[0]} rows, "
                         f"smallest label {int(labels.min()) if labels.numel() else None}")


def class_means(values: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """The mean row of ``values`` for every class (NaN for a class without rows), e.g. the
    mean SE gate of every channel for each class (chapter 2; Hu et al., arXiv 1709.01507,
    §7.2, plot such class means of the excitations).

    Shape: (N, C), (N,) -> (num_classes, C).
    """
    _check_values_labels(values, labels)
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    if k <= int(labels.max()):
        raise ValueError(f"num_classes={num_classes}, but the labels go up to {int(labels.max())}")
    sums = torch.zeros(k, values.shape[1], dtype=torch.float64).index_add_(0, labels, values.double())
    counts = torch.bincount(labels, minlength=k).double()                       # (K,)
    return (sums / counts[:, None]).to(values.dtype)                            # 0/0 -> NaN


@dataclass(frozen=True)
class ClassVariation:
    """How much values vary between classes and within them (see :func:`class_variation`).

    Shape: three floats.
    """

    between_std: float    # RMS distance of the class means from the overall mean
    within_std: float     # RMS distance of a row from its class mean
    total_std: float      # RMS distance of a row from the overall mean

    @property
    def class_share(self) -> float:
        """Share of the variance that the class explains, between^2 / total^2 (eta squared).
        Shape: -> float in [0, 1]."""
        return self.between_std ** 2 / self.total_std ** 2 if self.total_std > 0 else float("nan")


def class_variation(values: torch.Tensor, labels: torch.Tensor) -> ClassVariation:
    r"""Split the variance of ``values`` (one row per image, one column per channel) into
    a part between classes and a part within classes, pooled over the channels.

    With :math:`\mu` the overall mean row, :math:`\mu_k` the mean of class :math:`k`
    (:math:`n_k` rows) and :math:`N` rows of :math:`C` values, the law of total variance
    :math:`\sigma^2_\text{total} = \sigma^2_\text{between} + \sigma^2_\text{within}` holds
    exactly for
    :math:`\sigma^2_\text{between} = \frac{1}{NC}\sum_k n_k \lVert\mu_k - \mu\rVert^2` and
    :math:`\sigma^2_\text{within} = \frac{1}{NC}\sum_i \lVert v_i - \mu_{y_i}\rVert^2`
    (population variances, as in a one-way analysis of variance).

    Shape: (N, C), (N,) -> ClassVariation of three floats (standard deviations).
    """
    _check_values_labels(values, labels)
    v = values.double()
    means = class_means(v, labels)                                              # (K, C)
    counts = torch.bincount(labels).double()                                    # (K,)
    present = counts > 0
    overall = v.mean(0)                                                         # (C,)
    n_values = v.numel()
    between = float((counts[present, None] * (means[present] - overall) ** 2).sum()) / n_values
    within = float(((v - means[labels]) ** 2).sum()) / n_values
    total = float(((v - overall) ** 2).sum()) / n_values
    return ClassVariation(between ** 0.5, within ** 0.5, total ** 0.5)


def mean_activation_map(fmap: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Where a feature map is active: the mean absolute activation over its channels,
    upsampled bilinearly to ``size`` (the input image's) and scaled to [0, 1] per image
    (0: the least active position, 1: the most active). A plain picture of where a
    stage's features are strong (chapter 4), not a method from the papers: it does not
    say which features the classifier uses.

    Shape: (B, C, h, w) -> (B, H, W) with (H, W) = size.
    """
    if not isinstance(fmap, torch.Tensor) or fmap.ndim != 4 or not fmap.is_floating_point():
        raise ValueError("expected a float feature map of shape (B, C, h, w), got "
                         f"{list(fmap.shape) if isinstance(fmap, torch.Tensor) else type(fmap).__name__}")
    heat = fmap.detach().abs().mean(1, keepdim=True)                            # (B, 1, h, w)
    heat = F.interpolate(heat, size=size, mode="bilinear", align_corners=False)[:, 0]   # (B, H, W)
    lo = heat.amin((1, 2), keepdim=True)
    span = heat.amax((1, 2), keepdim=True) - lo
    return (heat - lo) / torch.where(span > 0, span, torch.ones_like(span))
