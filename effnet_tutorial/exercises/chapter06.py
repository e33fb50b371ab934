"""Checkers for chapter 6: EfficientNetV2, Fused-MBConv and progressive learning.

Every expected value is computed from the package itself (the V2-S model, the blocks,
the progressive schedule), never typed in, so a checker cannot drift from the code the
chapter shows.
"""
from __future__ import annotations

import math

import torch

from ._common import check_equal, is_number, never_crashes, report

__all__ = ["check_stage1_params", "check_progressive_stage", "check_block_flops"]


@never_crashes
def check_stage1_params(answer: int) -> bool:
    """Parameters of V2-S's first Fused-MBConv stage (paper Table 4, stage 1: two
    Fused-MBConv1 blocks, k3x3, 24 -> 24 channels), BatchNorm weights and biases included."""
    from ..inspection import count_params
    from ..model import EfficientNet

    with torch.device("meta"):
        model = EfficientNet.from_name("efficientnetv2-s")
    expected = count_params(model.stages[1])
    return check_equal(answer, expected, "parameters of V2-S's first Fused-MBConv stage",
                       "each block is one 3x3 conv 24 -> 24 (no bias) plus a BatchNorm (scale and shift "
                       "per channel); with expand ratio 1 there is no 1x1 projection and no SE")


@never_crashes
def check_progressive_stage(answer: dict, name: str = "efficientnetv2-m", stage: int = 2,
                            num_stages: int = 4) -> bool:
    """Settings of one training stage (0-based ``stage`` of ``num_stages``) of progressive
    learning for ``name``: a dict with ``image_size``, ``randaug_magnitude``,
    ``mixup_alpha`` and ``dropout``.

    The expected values are computed here from Table 6's (min, max) pairs with
    Algorithm 1's linear rule, independently of :func:`~effnet_tutorial.progressive.progressive_schedule`.
    """
    from ..progressive import V2_PROGRESSIVE

    settings = V2_PROGRESSIVE[name]
    keys = ("image_size", "randaug_magnitude", "mixup_alpha", "dropout")
    if not isinstance(answer, dict):
        return report(False, "the answer must be a dict with the keys " + ", ".join(keys), None,
                      type(answer).__name__, "e.g. {'image_size': 212, 'randaug_magnitude': 15.0, ...}")
    t = stage / (num_stages - 1)
    ok = True
    for key in keys:
        lo, hi = getattr(settings, key)
        expected = lo + (hi - lo) * t
        if key == "image_size":
            expected = math.floor(expected + 1e-9)   # sizes are whole pixels, rounded down
        got = answer.get(key)
        if not is_number(got):
            ok &= report(False, f"{key} of {name}, stage index {stage}", None, got,
                         f"give a number; {'missing' if got is None else type(got).__name__ + ' is not one'}")
            continue
        good = math.isclose(float(got), float(expected), abs_tol=1e-6)
        ok &= report(good, f"{key} of {name}, stage index {stage}",
                     expected if not good else None, got,
                     "min + (max - min) * i / (M - 1), with i the 0-based stage and M = 4; "
                     "image sizes rounded down")
    return ok


@never_crashes
def check_block_flops(mbconv_macs: int, fused_macs: int, channels: int = 48, size: int = 56,
                      expand_ratio: int = 4, kernel_size: int = 3) -> bool:
    """Multiply-adds of an MBConv (no SE) and a Fused-MBConv with the same settings: stride 1,
    ``channels`` in and out, a ``size`` x ``size`` input, batch 1 (convolutions only)."""
    from ..blocks import FusedMBConv, MBConv
    from ..inspection import count_flops

    shape = (1, channels, size, size)
    with torch.device("meta"):
        mb = MBConv(channels, channels, kernel_size, 1, expand_ratio, se_ratio=None)
        fu = FusedMBConv(channels, channels, kernel_size, 1, expand_ratio)
    exp_mb, exp_fu = count_flops(mb, shape), count_flops(fu, shape)
    ok = check_equal(mbconv_macs, exp_mb, "multiply-adds of the MBConv block",
                     "1x1 expand C -> eC, kxk depthwise on eC, 1x1 project eC -> C; each times H*W")
    ok &= check_equal(fused_macs, exp_fu, "multiply-adds of the Fused-MBConv block",
                      "kxk regular conv C -> eC, then 1x1 project eC -> C; each times H*W")
    if ok:
        print(f"Fused-MBConv needs {exp_fu / exp_mb:.2f}x the multiply-adds of MBConv here.")
    return ok
