"""Checkers for chapter 5, "From B0 to B7", and its section "EfficientNet-Lite".

>>> from effnet_tutorial.exercises.chapter05 import check_b4_stage6
>>> check_b4_stage6(160, 6)
Correct: EfficientNet-B4 stage 6 has 160 channels and 6 blocks.
True
"""
from __future__ import annotations

import functools

import torch

from ..config import get_model_config
from ..inspection import activation_memory, count_flops
from ..model import EfficientNet
from ._common import as_number, is_number, never_crashes, report

__all__ = ["check_b4_stage6", "check_flops_at_300", "check_b0_batch32_activations",
           "check_lite3_by_hand", "check_b0_se_cost", "check_int8_errors"]


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


# --------------------------------------------------------------------------------------
# Section "EfficientNet-Lite" (chapters/05_efficientnet_lite.ipynb)
# --------------------------------------------------------------------------------------
def _whole(x) -> int | None:
    """``x`` as an int when it is a whole number (``24``, ``24.0``), else None."""
    value = as_number(x)
    return int(value) if value is not None and value == int(value) else None


@never_crashes
def check_lite3_by_hand(stem: int, head: int, stage2_channels: int, stage8_repeats: int) -> bool:
    """Exercise ch5-lite-ex1: EfficientNet-Lite3 (width 1.2, depth 1.4) by hand: the stem's
    and the head's output channels, stage 2's output channels and stage 8's number of blocks
    (B0: stem 32, head 1280, stage 2 16 channels, stage 8 one block)."""
    cfg = get_model_config("efficientnet-lite3")
    want = {"stem": cfg.scaled_stem_channels, "head": cfg.scaled_head_channels,
            "stage2_channels": cfg.stage(2).out_channels, "stage8_repeats": cfg.stage(8).num_repeats}
    got = {"stem": stem, "head": head, "stage2_channels": stage2_channels, "stage8_repeats": stage8_repeats}
    hints = {
        "stem": "Lite does not scale the stem (fix_head_stem=True): it keeps B0's 32 channels",
        "head": "Lite does not scale the head (fix_head_stem=True): it keeps B0's 1280 channels",
        "stage2_channels": "the channels of every block stage still scale with w: round_filters(16, 1.2) "
                           "rounds 19.2 to the nearest multiple of 8, then applies the 10 % guard",
        "stage8_repeats": "Lite keeps the repeats of the first and the last block stage as in B0",
    }
    for key, value in got.items():
        if _whole(value) is None:
            return report(False, f"{key} of Lite3 (got {value!r})", hint="give a whole number of channels or blocks")
    for key, value in got.items():
        if _whole(value) != want[key]:
            side = "high" if _whole(value) > want[key] else "low"
            return report(False, f"{key} of Lite3 ({value} is too {side})", hint=hints[key])
    return report(True, f"Lite3 has a {want['stem']}-channel stem, a {want['head']}-channel head, "
                        f"{want['stage2_channels']} channels in stage 2 and {want['stage8_repeats']} "
                        "block in stage 8")


def _se_cost(name: str) -> tuple[int, int]:
    """(parameters, multiply-adds) of all SE layers of ``name``, in closed form from its block
    table: per block, two 1x1 convolutions with bias between the expanded width and
    ``max(1, int(block input * se_ratio))`` channels, on the pooled 1x1 map."""
    params = macs = 0
    for spec in get_model_config(name).block_specs():
        if spec.se_ratio:
            mid = spec.in_channels * spec.expand_ratio
            squeezed = max(1, int(spec.in_channels * spec.se_ratio))
            params += (mid * squeezed + squeezed) + (squeezed * mid + mid)
            macs += 2 * mid * squeezed
    return params, macs


@never_crashes
def check_b0_se_cost(params: int, macs: int) -> bool:
    """Exercise ch5-lite-ex2: the parameters and the multiply-adds (one 224x224 image) of all
    squeeze-and-excitation layers of EfficientNet-B0."""
    want_p, want_m = _se_cost("efficientnet-b0")
    p, m = _whole(params), _whole(macs)
    if p is None:
        return report(False, f"the SE parameters of B0 (got {params!r})", hint="give a whole number of parameters")
    if m is None:
        return report(False, f"the SE multiply-adds of B0 (got {macs!r})",
                      hint="give a whole number of multiply-adds")
    if p != want_p:
        side = "many" if p > want_p else "few"
        return report(False, f"the SE parameters of B0 ({p:,} is too {side})",
                      hint="sum the parameters of every block's SqueezeExcite (both 1x1 convolutions "
                           "carry a bias; the squeezed width is a quarter of the block's input channels, "
                           "not of the expanded ones)")
    if m != want_m:
        side = "many" if m > want_m else "few"
        return report(False, f"the SE multiply-adds of B0 ({m:,} is too {side})",
                      hint="SE's two 1x1 convolutions act on the pooled 1x1 map, so each costs "
                           "(input channels x output channels) multiply-adds per image, not per pixel")
    total = count_flops("efficientnet-b0")
    return report(True, f"B0's SE layers hold {want_p:,} parameters and cost {want_m:,} "
                        f"multiply-adds ({want_m / total:.2%} of B0's)")


@functools.lru_cache(maxsize=1)
def _lite0_stage3_range() -> tuple[float, float]:
    """(min, max) of EfficientNet-Lite0's stage-3 output on the coffee photo (official
    preprocessing at 224 px), computed on the CPU by calling the modules in turn."""
    from ..imagenet import lite_preprocess, sample_photos

    model = EfficientNet.from_pretrained("efficientnet-lite0")
    x = lite_preprocess(sample_photos()["coffee (scikit-image)"], 224)[None]
    with torch.no_grad():
        stage3 = model.stages[3](model.stages[2](model.stem(x)))
    return stage3.min().item(), stage3.max().item()


@never_crashes
def check_int8_errors(stem_error: float, stage3_error: float, tolerance: float = 0.05) -> bool:
    """Exercise ch5-lite-ex3: the largest error of 8-bit (256-level) asymmetric quantization
    of Lite0's stem output with ReLU6's fixed range [0, 6], and of its stage-3 output with
    that tensor's own range [min, max], on the coffee photo at 224 px (within ``tolerance``;
    the largest error of rounding is half a step, step = range / 255)."""
    for what, value in (("stem error", stem_error), ("stage-3 error", stage3_error)):
        if as_number(value) is None or as_number(value) < 0:
            return report(False, f"the {what} (got {value!r})",
                          hint="give the largest absolute difference between a tensor and its "
                               "quantized-then-dequantized copy, as a number")
    e_stem, e_s3 = as_number(stem_error), as_number(stage3_error)
    lo, hi = _lite0_stage3_range()
    want_stem = 6 / 255 / 2
    want_stage3 = (hi - lo) / 255 / 2
    if abs(e_stem / want_stem - 1) > tolerance:
        why = ("the error of rounding is at most half a step, step = 6 / 255"
               if abs(e_stem / (2 * want_stem) - 1) <= tolerance
               else "quantize with the fixed range [0, 6]: step s = 6 / 255, q = round(x / s), x' = q * s")
        return report(False, f"the stem error ({e_stem:.4g} is off by more than {tolerance:.0%})", hint=why)
    if abs(e_s3 / want_stage3 - 1) > tolerance:
        if e_s3 >= -lo * 0.5:
            why = ("stage 3's output is a linear projection plus a skip: it is negative too, so the range "
                   "must start at its minimum (a zero point), or the negative values are clipped")
        elif abs(e_s3 / (2 * want_stage3) - 1) <= tolerance:
            why = "the error of rounding is at most half a step, step = (max - min) / 255"
        else:
            why = "use the tensor's own range: step s = (max - min) / 255, q = round((x - min) / s)"
        return report(False, f"the stage-3 error ({e_s3:.4g} is off by more than {tolerance:.0%})", hint=why)
    return report(True, f"8-bit errors: stem about {want_stem:.4f}, stage 3 about {want_stage3:.3f}, "
                        f"{want_stage3 / want_stem:.0f} times larger")
