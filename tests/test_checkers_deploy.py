"""Chapter 9's exercise checkers give the right verdict.

For each checker: the reference answer passes; known-wrong answers (the usual mistakes)
fail with a hint that names the mistake; answers of the wrong type get a verdict, never an
exception. The reference answers are computed here from the formulas (BatchNorm folding,
TensorFlow's "same" padding), not with the checkers' code or effnet_tutorial.deploy.
"""
import contextlib
import io
import math
import re

import pytest
import torch
from torch import nn

from effnet_tutorial.exercises import chapter09 as ch9


def run(checker, *args):
    """(verdict, printed output as one line); an exception fails the test."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = checker(*args)
    return verdict, " ".join(re.sub(r"(?<=\w)-\n\s+", "-", out.getvalue()).split())


# --------------------------------------------------------------------------------------
# ch9-ex1: fold one channel by hand
# --------------------------------------------------------------------------------------
# W0 = (0.5, -1.0), gamma 2, beta 0.1, mean 0.3, var 0.15, eps 0.01: s = 2 / sqrt(0.16) = 5.
S = 2 / math.sqrt(0.15 + 0.01)
REF_W, REF_B = [S * 0.5, S * -1.0], 0.1 - S * 0.3


def test_ex1_reference_passes():
    assert S == pytest.approx(5.0)
    ok, out = run(ch9.check_folded_channel, REF_W, REF_B)
    assert ok and out.startswith("Correct")
    ok, _ = run(ch9.check_folded_channel, torch.tensor(REF_W), torch.tensor(REF_B))
    assert ok  # tensors are fine too


@pytest.mark.parametrize("weights, bias, hint", [
    ([2 * 0.5, 2 * -1.0], REF_B, "s = gamma / sqrt(var + eps)"),           # forgot the sqrt
    ([2 / math.sqrt(0.15) * 0.5, 2 / math.sqrt(0.15) * -1.0], REF_B, "s = gamma"),  # no eps
    (REF_W, 0.1, "b' = beta"),                                            # forgot the mean
    (REF_W, 0.1 + S * 0.3, "b' = beta"),                                  # sign of the mean
    (REF_W, -0.3 * S, "b' = beta"),                                       # forgot beta
])
def test_ex1_known_wrong_answers_fail_with_a_hint(weights, bias, hint):
    ok, out = run(ch9.check_folded_channel, weights, bias)
    assert not ok and out.startswith("Not yet") and hint in out


@pytest.mark.parametrize("weights, bias", [
    (None, REF_B), ("2.5, -5", REF_B), ([2.5], REF_B), ([2.5, "x"], REF_B),
    (REF_W, None), (REF_W, "-1.4"), (REF_W, [REF_B, 0.0]), (REF_W, float("nan")),
])
def test_ex1_wrong_types_get_a_verdict(weights, bias):
    ok, out = run(ch9.check_folded_channel, weights, bias)
    assert not ok and out.startswith("Not yet") and "Hint" in out


# --------------------------------------------------------------------------------------
# ch9-ex2: fold a BatchNorm into the convolution after it
# --------------------------------------------------------------------------------------
def ref_fold_into_next(bn, conv):
    """conv(bn(x)) for a 1x1 conv: W'[o, i] = W[o, i] s[i], b'[o] = b[o] + sum_i W[o, i] t[i]."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    t = bn.bias - bn.running_mean * s
    w = conv.weight[:, :, 0, 0]                                     # (C_out, C_in)
    new = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=True)
    with torch.no_grad():
        new.weight.copy_((w * s)[:, :, None, None])
        new.bias.copy_(conv.bias + w @ t)
    return new


def scales_output_channels(bn, conv):
    """The fold of this chapter, wrongly applied: s on the output channels."""
    new = ref_fold_into_next(bn, conv)
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        new.weight.copy_(conv.weight * s.mean())
    return new


def forgets_the_shift(bn, conv):
    new = ref_fold_into_next(bn, conv)
    with torch.no_grad():
        new.bias.copy_(conv.bias)
    return new


def changes_the_input_layers(bn, conv):
    new = ref_fold_into_next(bn, conv)
    with torch.no_grad():
        conv.weight.mul_(2)
    return new


def test_ex2_reference_passes():
    ok, out = run(ch9.check_fold_into_next, ref_fold_into_next)
    assert ok and out.startswith("Correct")


@pytest.mark.parametrize("answer, hint", [
    (scales_output_channels, "W'[o, i] = W[o, i] * s[i]"),
    (forgets_the_shift, "t = beta - s * mean"),
    (changes_the_input_layers, "without writing to the old layers"),
    (lambda bn, conv: nn.Sequential(bn, conv), "must return an nn.Conv2d"),
])
def test_ex2_known_wrong_answers_fail_with_a_hint(answer, hint):
    ok, out = run(ch9.check_fold_into_next, answer)
    assert not ok and out.startswith("Not yet") and hint in out


@pytest.mark.parametrize("answer", [
    None, "fold_into_next", nn.Conv2d(8, 16, 1),                # not a function of (bn, conv)
    lambda bn, conv: None, lambda bn: bn,                       # wrong return / signature
    lambda bn, conv: 1 / 0,                                     # raises
    lambda bn, conv: nn.Conv2d(8, 4, 1),                        # wrong output shape
])
def test_ex2_wrong_types_get_a_verdict(answer):
    ok, out = run(ch9.check_fold_into_next, answer)
    assert not ok and out.startswith("Not yet") and "Hint" in out


# --------------------------------------------------------------------------------------
# ch9-ex3: the stem's pads in the exported file
# --------------------------------------------------------------------------------------
# TF "same", 3x3 stride 2 on 224: out 112, total (112 - 1) * 2 + 3 - 224 = 1, 0 before.
REF_PADS = [0, 0, 1, 1]


def test_ex3_reference_passes():
    ok, out = run(ch9.check_stem_pads, REF_PADS)
    assert ok and out.startswith("Correct")
    assert run(ch9.check_stem_pads, tuple(REF_PADS))[0]


@pytest.mark.parametrize("pads, hint", [
    ([1, 1, 1, 1], "puts the single pixel of padding after"),   # symmetric, as nn.Conv2d
    ([1, 1, 0, 0], "puts the single pixel of padding after"),   # before instead of after
    ([0, 1, 0, 1], "both begins first"),                       # (top, bottom, left, right)
])
def test_ex3_known_wrong_answers_fail_with_a_hint(pads, hint):
    ok, out = run(ch9.check_stem_pads, pads)
    assert not ok and out.startswith("Not yet") and hint in out


@pytest.mark.parametrize("pads", [None, "0011", [0, 0, 1], [0, 0, 1, 1.5], [0, 0, "1", 1],
                                  {"pads": REF_PADS}, torch.tensor(REF_PADS)])
def test_ex3_wrong_types_get_a_verdict(pads):
    ok, out = run(ch9.check_stem_pads, pads)
    assert not ok and out.startswith("Not yet") and "Hint" in out
