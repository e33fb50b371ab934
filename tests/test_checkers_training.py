"""The exercise checkers of chapters 7 and 8 give the right verdict.

For each checker: the reference answer passes; known-wrong answers (the mistakes the
hints name) fail; answers of the wrong type get a verdict with a hint, never an
exception. The references are computed here from the papers' formulas and tables, from
torchvision's weights metadata, or with other tools than the checkers use
(``FlopCounterMode`` instead of ``count_flops``, parameter sums instead of
``count_params``, the digits of B0's Table 1 instead of ``extract_endpoints``).
"""
from __future__ import annotations

import contextlib
import inspect
import io
import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from effnet_tutorial.config import EFFICIENTNET_B0_BLOCKS, V1_COEFFICIENTS
from effnet_tutorial.exercises import chapter07 as ch7
from effnet_tutorial.exercises import chapter08 as ch8
from effnet_tutorial.model import EfficientNet
from effnet_tutorial.train import DEFAULT_MODEL, build_model

WRONG_TYPES = [None, "a lot", [1, 2], {"a": 1}, object(), float("nan"), True]


def run(checker, *args, **kwargs):
    """(verdict, printed output as one line); an exception fails the test."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = checker(*args, **kwargs)
    text = " ".join(re.sub(r"(?<=\w)-\n\s+", "-", out.getvalue()).split())
    return verdict, text


def public_checkers():
    return [(m.__name__, name, f) for m in (ch7, ch8)
            for name, f in inspect.getmembers(m, inspect.isfunction)
            if name.startswith("check_") and f.__module__ == m.__name__]


def test_every_checker_is_listed_and_tested():
    names = {name for _, name, _ in public_checkers()}
    assert names == set(ch7.__all__) | set(ch8.__all__)
    tested = {name[len("test_check_"):] for name in globals() if name.startswith("test_check_")}
    assert {n[len("check_"):] for n in names} <= tested


@pytest.mark.parametrize("module, name, checker", public_checkers())
@pytest.mark.parametrize("answer", WRONG_TYPES, ids=lambda a: type(a).__name__)
def test_wrong_types_get_a_verdict_not_an_exception(module, name, checker, answer):
    n_args = sum(p.default is inspect.Parameter.empty
                 for p in inspect.signature(checker).parameters.values())
    verdict, text = run(checker, *[answer] * n_args)
    assert verdict is False, (name, answer, text)
    assert text.startswith("Not yet") and ("Hint" in text or "expects" in text), text


# --------------------------------------------------------------------------------------
# Chapter 7
# --------------------------------------------------------------------------------------
def _forward_macs(model, size):
    """Multiply-adds of one (1, 1, size, size) forward pass, by PyTorch's FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    return counter.get_total_flops() // 2


def _progressive_sizes(epochs, stages, lo, hi):
    """EfficientNetV2 Algorithm 1: stage i of M has size lo + (hi - lo) * i / (M - 1); epoch
    e (0-based) of E belongs to stage floor(e * M / E)."""
    sizes = [round(lo + (hi - lo) * i / (stages - 1)) for i in range(stages)]
    return [sizes[e * stages // epochs] for e in range(epochs)]


@pytest.mark.parametrize("fixed_epochs, stages", [(4, 2), (6, 3)])
def test_check_progressive_epochs(fixed_epochs, stages):
    model = build_model(DEFAULT_MODEL, 10, 1).eval()
    macs = {}

    def cost(sizes):
        for s in set(sizes) - macs.keys():
            macs[s] = _forward_macs(model, s)
        return sum(macs[s] for s in sizes)

    budget = fixed_epochs * cost([32])
    best = max(e for e in range(stages, 30)
               if cost(_progressive_sizes(e, stages, 16, 32)) <= budget)
    kwargs = dict(fixed_epochs=fixed_epochs, stages=stages)
    assert run(ch7.check_progressive_epochs, best, **kwargs)[0]
    assert run(ch7.check_progressive_epochs, float(best), **kwargs)[0]
    # By the image areas alone one would guess more epochs: the known mistake.
    by_area = max(e for e in range(stages, 30)
                  if sum(s * s for s in _progressive_sizes(e, stages, 16, 32))
                  <= fixed_epochs * 32 * 32)
    assert by_area > best
    ok, text = run(ch7.check_progressive_epochs, by_area, **kwargs)
    assert not ok and "count_flops" in text
    assert not run(ch7.check_progressive_epochs, best - 1, **kwargs)[0]
    ok, text = run(ch7.check_progressive_epochs, best + 0.5, **kwargs)
    assert not ok and "whole number" in text


def test_check_global_batch_and_lr():
    # Goyal et al. 2017: lr = 0.4 * B / 256 for a global batch B of 2 x 4 x 48 images.
    batch = 2 * 4 * 48
    assert run(ch7.check_global_batch_and_lr, batch, 0.4 * batch / 256)[0]
    ok, text = run(ch7.check_global_batch_and_lr, 48, 0.4 * 48 / 256)        # per process
    assert not ok and "per process" in text and "per 256 images" in text
    ok, text = run(ch7.check_global_batch_and_lr, batch, 0.4)                  # not scaled
    assert not ok and "Correct: the global batch" in text and "per 256 images" in text
    ok, text = run(ch7.check_global_batch_and_lr, 4 * 48, 0.4 * 4 * 48 / 256)  # one machine
    assert not ok and "machines times GPUs" in text


def test_check_stem_swish_bytes():
    # The naive Swish also keeps sigmoid(x): one float32 tensor of the stem's output,
    # (64, 8, 16, 16) for 64 images of 32 x 32 (stride 2, 8 = round_filters(32 * 0.25)).
    extra = 64 * 8 * 16 * 16 * 4
    assert run(ch7.check_stem_swish_bytes, extra)[0]
    assert run(ch7.check_stem_swish_bytes, torch.tensor(extra))[0]
    ok, text = run(ch7.check_stem_swish_bytes, 2 * extra)      # x and sigmoid(x) both counted
    assert not ok and "4 bytes per value" in text
    assert not run(ch7.check_stem_swish_bytes, extra // 4)[0]  # values, not bytes
    assert not run(ch7.check_stem_swish_bytes, 64 * 8 * 32 * 32 * 4)[0]  # input size, not output


# --------------------------------------------------------------------------------------
# Chapter 8
# --------------------------------------------------------------------------------------
def _n(module):
    return sum(p.numel() for p in module.parameters())


def test_check_trainable_params():
    # The chapter's transfer model: Lite0 with a grey stem and a 10-class head.
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=10, in_channels=1)
    stages = [s for _, s in model.stages.named_children()]
    after_four = sum(_n(s) for s in stages[4:]) + _n(model.head) + _n(model.classifier)
    assert run(ch8.check_trainable_params, after_four)[0]
    assert not run(ch8.check_trainable_params, _n(model))[0]                   # nothing frozen
    after_three = sum(_n(s) for s in stages[3:]) + _n(model.head) + _n(model.classifier)
    ok, text = run(ch8.check_trainable_params, after_three)                    # off by one stage
    assert not ok and "head" in text
    assert not run(ch8.check_trainable_params, after_four - _n(model.head))[0]  # head forgotten
    assert not run(ch8.check_trainable_params, [after_four])[0]
    two = sum(_n(s) for s in stages[2:]) + _n(model.head) + _n(model.classifier)
    assert run(ch8.check_trainable_params, two, num_stages=2)[0]
    # The 1000-class RGB Lite0 has other numbers: the default answer does not fit it.
    assert not run(ch8.check_trainable_params, after_four, num_classes=1000, in_channels=3)[0]
    b0 = EfficientNet.from_name("efficientnet-b0", num_classes=5)          # another model
    b0_stages = [s for _, s in b0.stages.named_children()]
    b0_after_four = sum(_n(s) for s in b0_stages[4:]) + _n(b0.head) + _n(b0.classifier)
    assert run(ch8.check_trainable_params, b0_after_four, name="efficientnet-b0",
               num_classes=5, in_channels=3)[0]


def test_check_endpoint_shapes():
    # B0's Table 1: the feature map before each stride-2 block is the output of stages
    # 2, 3, 4, 6 and 8 (the last), at strides 2, 4, 8, 16 and 32.
    channels = [EFFICIENTNET_B0_BLOCKS[i].out_channels for i in (0, 1, 2, 4, 6)]
    assert channels == [16, 24, 40, 112, 320]
    right = {f"reduction_{i + 1}": [1, c, 256 >> (i + 1), 256 >> (i + 1)]
             for i, c in enumerate(channels)}
    assert run(ch8.check_endpoint_shapes, right)[0]
    assert run(ch8.check_endpoint_shapes, {k: tuple(v) for k, v in right.items()})[0]
    as_sizes = {k: torch.Size(v) for k, v in right.items()}
    assert run(ch8.check_endpoint_shapes, as_sizes)[0]
    # Stage 5's 80 channels: the last stage before a stride-2 block is stage 6, not 5.
    wrong = {**right, "reduction_4": [1, 80, 16, 16]}
    ok, text = run(ch8.check_endpoint_shapes, wrong)
    assert not ok and "Correct: shape of reduction_3" in text and "reduction_4" in text
    halved_once_more = {k: [1, v[1], v[2] // 2, v[3] // 2] for k, v in right.items()}
    assert not run(ch8.check_endpoint_shapes, halved_once_more)[0]
    missing = {k: v for k, v in right.items() if k != "reduction_5"}
    assert not run(ch8.check_endpoint_shapes, missing)[0]
    ok, text = run(ch8.check_endpoint_shapes, [1, 16, 128, 128])
    assert not ok and "dict" in text
    assert not run(ch8.check_endpoint_shapes, {**right, "reduction_1": "big"})[0]


def test_check_crop_fractions():
    from torchvision.models import EfficientNet_B3_Weights

    tf = EfficientNet_B3_Weights.DEFAULT.transforms()          # torchvision's recipe, as shipped
    native = V1_COEFFICIENTS["efficientnet-b3"][2]             # 300 (arXiv 1905.11946v5)
    # tensorflow/tpu preprocessing.py @ 22d5cab: crop_padding = round(S * (1/0.875 - 1)) = 43
    official = 300 / 343
    assert native == 300 and round(native * (1 / 0.875 - 1)) == 43
    torchvision_fraction = tf.crop_size[0] / tf.resize_size[0]
    assert run(ch8.check_crop_fractions, torchvision_fraction, official)[0]
    assert run(ch8.check_crop_fractions, round(torchvision_fraction, 3), round(official, 3))[0]
    ok, text = run(ch8.check_crop_fractions, official, torchvision_fraction)   # swapped
    assert not ok and "crop_size / resize_size" in text
    ok, text = run(ch8.check_crop_fractions, 224 / 256, official)            # B0's 0.875
    assert not ok and "Correct: the official" in text
    # The rule before Nov 2021 (CROP_PADDING = 32) is named in the hint.
    ok, text = run(ch8.check_crop_fractions, torchvision_fraction, native / (native + 32))
    assert not ok and "CROP_PADDING = 32" in text
    ok, text = run(ch8.check_crop_fractions, torchvision_fraction, native / (native + 16))
    assert not ok and "CROP_PADDING" not in text and "round(S * (1/0.875 - 1))" in text
    # B0: both rules give 224/256.
    assert run(ch8.check_crop_fractions, 224 / 256, 224 / 256, name="efficientnet-b0")[0]
