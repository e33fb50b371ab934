"""Checkers for chapter 5, "From B0 to B7".

>>> from effnet_tutorial.exercises.chapter05 import check_b4_stage6
>>> check_b4_stage6(160, 6)
Correct: EfficientNet-B4 stage 6 has 160 channels and 6 blocks.
True
"""
from __future__ import annotations

import torch

from ..config import get_model_config
from ..inspection import activation_memory, count_flops
from ..model import EfficientNet
from ._common import is_number, never_crashes, report

__all__ = ["check_b4_stage6", "check_flops_at_300", "check_b0_batch32_activations"]


@never_crashes
def check_b4_stage6(channels: int, repeats: int) -> bool:
    """Exercise ch5-ex1: output channels and number of blocks of B4's stage 6
    (B0: 112 channels, 3 blocks; B4: width 1.4, depth 1.8)."""
    block = get_model_config("efficientnet-b4").stage(6)
    ok_c = channels == block.out_channels
    ok_r = repeats == block.num_repeats
    if ok_c and ok_r:
        return report(True, f"EfficientNet-B4 stage 6 has {block.out_channels} channels and "
                            f"{block.num_repeats} blocks")
    if not ok_c:
        side = "high" if channels > block.out_channels else "low"
        return report(False, f"the channel count of B4's stage 6 ({channels} is too {side})",
                      hint="scale 112 by 1.4, round to the nearest multiple of 8 "
                           "(int(c * w + 4) // 8 * 8), then apply the 10 % guard")
    side = "many" if repeats > block.num_repeats else "few"
    return report(False, f"the number of blocks of B4's stage 6 ({repeats} is too {side})",
                  hint="depth scaling rounds up: ceil(1.8 * 3)")


@never_crashes
def check_flops_at_300(larger: str, ratio: float, tolerance: float = 0.15) -> bool:
    """Exercise ch5-ex2: which of B0 and B3, both at 300x300, needs more multiply-adds,
    and about how many times more (``ratio`` = larger / smaller, within ``tolerance``)."""
    size = (1, 3, 300, 300)
    macs = {name: count_flops(name, size)  # built on the meta device: free
            for name in ("efficientnet-b0", "efficientnet-b3")}
    want = max(macs, key=macs.get)
    true_ratio = macs[want] / min(macs.values())
    if not isinstance(larger, str):
        return report(False, "the model with more multiply-adds at 300x300", want, larger,
                      "give its name as a string, e.g. 'efficientnet-b0' or 'b3'")
    if not is_number(ratio):
        return report(False, "the ratio of multiply-adds", None, ratio, "give the ratio as a number, e.g. 2.5")
    got = larger.strip().lower().replace("_", "-")
    if not got.startswith("efficientnet-"):
        got = "efficientnet-" + got
    if got != want:
        return report(False, "the model with more multiply-adds at 300x300", want, larger,
                      "at equal resolution, only width (squared) and depth differ")
    if abs(ratio / true_ratio - 1) <= tolerance:
        return report(True, f"{want} needs {true_ratio:.2f}x the other's multiply-adds at 300x300")
    side = "high" if ratio > true_ratio else "low"
    return report(False, f"the ratio of multiply-adds ({ratio:g} is more than {tolerance:.0%} too {side})",
                  hint="measure both with count_flops(model, (1, 3, 300, 300))")


@never_crashes
def check_b0_batch32_activations(mib: float, tolerance: float = 0.03) -> bool:
    """Exercise ch5-ex3: activation memory (MiB) that autograd saves for B0 at 224x224
    and batch 32 in training mode (memory-efficient Swish), within ``tolerance``."""
    with torch.device("meta"):
        model = EfficientNet.from_name("efficientnet-b0")
    true_mib = activation_memory(model, (32, 3, 224, 224)).nbytes / 2**20
    if abs(mib / true_mib - 1) <= tolerance:
        return report(True, f"B0 at batch 32 saves about {true_mib:,.0f} MiB of activations for backward")
    side = "high" if mib > true_mib else "low"
    return report(False, f"the activation memory of B0 at batch 32 ({mib:,.0f} MiB is more than "
                         f"{tolerance:.0%} too {side})",
                  hint="activations scale linearly with the batch size; use MiB (2**20 bytes)")
