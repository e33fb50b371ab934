"""Checkers for chapter 8: pretrained weights, preprocessing and transfer learning.

Every expected value is computed, from the package (freezing, ``extract_endpoints`` on
the meta device), from torchvision's weights metadata or from the official crop rule
(``effnet_tutorial.imagenet.CROP_FRACTION``), never typed in. A checker never raises on
a wrongly typed answer: it prints a verdict with a hint.
"""
from __future__ import annotations

import math

from ._common import as_number, check_equal, never_crashes, verdict

__all__ = ["check_trainable_params", "check_endpoint_shapes", "check_crop_fractions"]


@never_crashes
def check_trainable_params(answer, num_stages: int = 4, name: str = "efficientnet-lite0",
                           num_classes: int = 10, in_channels: int = 1) -> bool:
    """Trainable parameters of the chapter's transfer model (``name`` with a
    ``num_classes`` head and ``in_channels`` input channels: Lite0 with a grey stem and a
    10-class head) after ``freeze_stages(model, num_stages)``."""
    import torch

    from ..inspection import count_params
    from ..model import EfficientNet
    from ..train import freeze_stages

    with torch.device("meta"):
        model = EfficientNet.from_name(name, num_classes=num_classes, in_channels=in_channels)
    freeze_stages(model, num_stages)
    expected = count_params(model, trainable_only=True)
    value = as_number(answer)
    if value is None or value != int(value):
        return verdict(False, "the number of trainable parameters", answer,
                        "give a whole number (an int)")
    return check_equal(int(value), expected,
                       f"trainable parameters with the stem and {num_stages} stages frozen",
                       "add count_params of the stages after the frozen ones, of the head "
                       "and of the classifier")


@never_crashes
def check_endpoint_shapes(answer, image_size: int = 256, name: str = "efficientnet-b0") -> bool:
    """Shapes of ``reduction_1`` ... ``reduction_5`` of ``extract_endpoints`` for one
    ``image_size`` x ``image_size`` RGB image; ``answer`` maps names to [B, C, H, W]."""
    import torch

    from ..model import EfficientNet

    with torch.device("meta"):
        model = EfficientNet.from_name(name).eval()
        endpoints = model.extract_endpoints(torch.zeros(1, 3, image_size, image_size))
    expected = {k: list(v.shape) for k, v in endpoints.items()
                if k in {f"reduction_{i}" for i in range(1, 6)}}
    if not isinstance(answer, dict):
        return verdict(False, "the endpoint shapes", type(answer).__name__,
                        'give a dict like {"reduction_1": [1, 16, 128, 128], ...}')
    ok = True
    for key, shape in expected.items():
        got = answer.get(key)
        try:
            got_list = [int(s) for s in got]
        except (TypeError, ValueError):
            got_list = None
        ok &= check_equal(got_list if got_list is not None else got, shape, f"shape of {key}",
                          "each reduction halves the side; the channels are those of the last "
                          "stage before the next stride-2 block")
    return ok


@never_crashes
def check_crop_fractions(torchvision_fraction, official_fraction,
                         name: str = "efficientnet-b3") -> bool:
    """Crop fractions (crop side / shorter side) of torchvision's evaluation transforms for
    ``name`` and of the official TensorFlow code at the native size ``S``:
    ``S / (S + round(S * (1 / 0.875 - 1)))`` (tensorflow/tpu
    ``models/official/efficientnet/preprocessing.py`` since commit 22d5cab, Nov 2021:
    ``CROP_FRACTION = 0.875``; before it ``CROP_PADDING = 32``, ``S / (S + 32)``)."""
    from torchvision.models import get_model_weights

    from ..imagenet import CROP_FRACTION
    from ..model import EfficientNet

    transforms = get_model_weights(name.replace("-", "_")).DEFAULT.transforms()
    expected_tv = transforms.crop_size[0] / transforms.resize_size[0]
    native = EfficientNet.get_image_size(name)
    padding = round(native * (1 / CROP_FRACTION - 1))
    expected_official = native / (native + padding)
    tv, off = as_number(torchvision_fraction), as_number(official_fraction)
    ok = verdict(tv is not None and math.isclose(tv, expected_tv, abs_tol=5e-4),
                  f"torchvision's crop fraction for {name}", torchvision_fraction,
                  "crop_size / resize_size of weights.transforms()")
    if off is not None and math.isclose(off, native / (native + 32), abs_tol=5e-4) \
            and not math.isclose(off, expected_official, abs_tol=5e-4):
        hint = ("that is S / (S + 32), the rule before tensorflow/tpu commit 22d5cab "
                "(CROP_PADDING = 32); the code now pads by round(S * (1/0.875 - 1))")
    else:
        hint = (f"S / (S + round(S * (1/0.875 - 1))) with "
                f"S = EfficientNet.get_image_size({name!r})")
    ok &= verdict(off is not None and math.isclose(off, expected_official, abs_tol=5e-4),
                   f"the official crop fraction for {name}", official_fraction, hint)
    return ok
