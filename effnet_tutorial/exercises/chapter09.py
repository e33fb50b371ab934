"""Checkers for chapter 9, "Making it fast".

Every expected value is computed here, independently of :mod:`effnet_tutorial.deploy` and
of the package's padding code: PyTorch's own BatchNorm and convolution layers are the
oracle, and the stem's padding comes from TensorFlow's "same" rule. The int8 exercise of
the quantization section uses ONNX Runtime's own scale rule, not
:mod:`effnet_tutorial.quantize`.
"""
from __future__ import annotations

import torch
from torch import nn

from ._common import is_number, never_crashes, report, verdict

__all__ = ["check_folded_channel", "check_fold_into_next", "check_stem_pads", "check_channel_levels"]

# Exercise ch9-ex1: one output channel of a 1x1 convolution and the BatchNorm after it.
EX1_WEIGHTS = (0.5, -1.0)
EX1_BN = dict(gamma=2.0, beta=0.1, mean=0.3, var=0.15, eps=0.01)


def _ex1_layers() -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    conv = nn.Conv2d(2, 1, 1, bias=False)
    bn = nn.BatchNorm2d(1, eps=EX1_BN["eps"]).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(EX1_WEIGHTS).view(1, 2, 1, 1))
        bn.weight.fill_(EX1_BN["gamma"])
        bn.bias.fill_(EX1_BN["beta"])
        bn.running_mean.fill_(EX1_BN["mean"])
        bn.running_var.fill_(EX1_BN["var"])
    return conv, bn


@never_crashes
def check_folded_channel(weights, bias) -> bool:
    """Exercise ch9-ex1: the folded weights (two numbers) and bias of channel 0.

    The expected values are read off PyTorch's ``bn(conv(x))``: its output for x = 0 is the
    bias, and for each unit input the bias plus that weight.
    """
    conv, bn = _ex1_layers()
    probes = torch.cat([torch.zeros(1, 2), torch.eye(2)]).view(3, 2, 1, 1)  # 0, e_1, e_2
    with torch.no_grad():
        out = bn(conv(probes)).flatten().double()                          # (3,)
    want_b = out[0].item()
    want_w = [(out[1] - out[0]).item(), (out[2] - out[0]).item()]
    if isinstance(weights, torch.Tensor):
        weights = weights.flatten().tolist()
    if isinstance(bias, torch.Tensor) and bias.numel() == 1:
        bias = bias.item()
    if (not isinstance(weights, (list, tuple)) or len(weights) != 2
            or not all(map(is_number, weights))):
        return report(False, "the folded weights must be two numbers, e.g. [0.7, -1.2]", None,
                      weights, "one folded weight per input channel: W' = s * W with "
                      "s = gamma / sqrt(var + eps)")
    if not is_number(bias):
        return report(False, "the folded bias must be one number", None, bias,
                      "b' = beta - s * mean (the convolution has no bias of its own)")
    ok_w = all(abs(g - w) <= 1e-3 * max(1.0, abs(w)) for g, w in zip(weights, want_w))
    ok_b = abs(bias - want_b) <= 1e-3 * max(1.0, abs(want_b))
    if ok_w and ok_b:
        return report(True, f"W' = ({want_w[0]:g}, {want_w[1]:g}) and b' = {want_b:g}")
    if not ok_w:
        return report(False, "the folded weights", None, list(weights),
                      "s = gamma / sqrt(var + eps) = 2 / sqrt(0.16); multiply both weights by it")
    return report(False, "the folded bias", None, bias,
                  "b' = beta + s * (b - mean) with b = 0, since the convolution has no bias")


def _ex2_layers(seed: int = 0) -> tuple[nn.BatchNorm2d, nn.Conv2d]:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(8, eps=1e-3).eval()
    conv = nn.Conv2d(8, 16, 1, bias=True)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(8, generator=g) * 0.5)
        bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
        bn.weight.copy_(torch.rand(8, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(8, generator=g) * 0.5)
        conv.weight.copy_(torch.randn(16, 8, 1, 1, generator=g) * 0.3)
        conv.bias.copy_(torch.randn(16, generator=g) * 0.1)
    return bn, conv


@never_crashes
def check_fold_into_next(fold_into_next) -> bool:
    """Exercise ch9-ex2: ``fold_into_next(bn, conv)`` returns one ``nn.Conv2d`` equal to
    ``conv(bn(x))`` for an eval-mode BatchNorm followed by a 1x1 convolution, and leaves both
    layers unchanged. Compared with PyTorch's layers applied one after the other."""
    if not callable(fold_into_next):
        return report(False, "pass your function itself, fold_into_next, not its result",
                      hint=f"got a {type(fold_into_next).__name__}; call "
                           "check_fold_into_next(fold_into_next)")
    bn, conv = _ex2_layers()
    before = {k: v.clone() for k, v in {**bn.state_dict(), **conv.state_dict()}.items()}
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = conv(bn(x))
        folded = fold_into_next(bn, conv)
    if not isinstance(folded, nn.Conv2d):
        return report(False, "fold_into_next must return an nn.Conv2d", "nn.Conv2d",
                      type(folded).__name__, "build nn.Conv2d(conv.in_channels, "
                      "conv.out_channels, 1, bias=True) and fill its weight and bias")
    after = {**bn.state_dict(), **conv.state_dict()}
    if any(not torch.equal(before[k], after[k]) for k in before):
        return report(False, "fold_into_next changed bn or conv",
                      hint="compute new tensors and copy them into the new conv (with "
                           "torch.no_grad()), without writing to the old layers")
    with torch.no_grad():
        got = folded(x)
    if got.shape != expected.shape:
        return report(False, "the folded conv's output shape", list(expected.shape),
                      list(got.shape), "the new conv needs conv's in_channels and "
                      "out_channels, kernel size 1 and bias=True")
    err = ((got - expected).abs().max() / expected.abs().max()).item()
    if err <= 1e-5:
        return report(True, "your folded convolution equals conv(bn(x))")
    return report(False, f"the folded convolution differs from conv(bn(x)) by {err:.1e} of the "
                         "largest output",
                  hint="W'[o, i] = W[o, i] * s[i] and b'[o] = b[o] + sum_i W[o, i] * t[i], "
                       "with t = beta - s * mean")


def _tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" rule (tf.nn.conv2d docs): out = ceil(size / stride), and the total
    padding max((out - 1) * stride + kernel - size, 0), the smaller half before."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@never_crashes
def check_stem_pads(pads) -> bool:
    """Exercise ch9-ex3: the ``pads`` attribute of the exported B0's first Conv, in ONNX order
    (height begin, width begin, height end, width end), from TF "same" padding of B0's stem
    (3x3, stride 2, arXiv 1905.11946v5 Table 1) on its 224-pixel input."""
    top, bottom = _tf_same_padding(224, 3, 2)
    left, right = top, bottom                       # square image, square kernel
    want = [top, left, bottom, right]
    if (not isinstance(pads, (list, tuple)) or len(pads) != 4
            or not all(is_number(p) and float(p) == int(p) for p in pads)):
        return report(False, "pads must be a list of four integers", None, pads,
                      "read list(attribute.ints) of the Conv node's attribute named 'pads'")
    got = [int(p) for p in pads]
    if got == want:
        return report(True, f"the stem pads {top} before and {bottom} after each axis, as TF "
                            "'same' does")
    hint = ("ONNX lists both begins first, then both ends" if got == [top, bottom, left, right]
            else "TF 'same' on an even size with stride 2 puts the single pixel of padding after")
    return report(False, "the stem conv's pads", want, got, hint)


# Exercise ch9-ex4: one small channel of a folded depthwise convolution.
EX4_TENSOR_MAX = 3.1     # largest |weight| of the whole tensor
EX4_CHANNEL_MAX = 0.04   # largest |weight| of one output channel


def _ex4_expected() -> tuple[int, int, float, float]:
    """Levels and largest rounding error (relative to the channel's largest weight) per
    tensor and per channel, from ONNX Runtime's symmetric int8 rule (quant_utils: range
    [-127, 127], compute_scale_zp with symmetric=True) applied to the channel's extreme
    weights."""
    import numpy as np
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    out = []
    for m in (EX4_TENSOR_MAX, EX4_CHANNEL_MAX):
        _, scale = compute_scale_zp(np.array(-m, np.float32), np.array(m, np.float32),
                                    np.array(-127, np.int8), np.array(127, np.int8), symmetric=True)
        q = int(np.rint(EX4_CHANNEL_MAX / float(scale)))     # the channel's largest integer
        out.append((2 * q + 1, float(scale) / 2 / EX4_CHANNEL_MAX))
    (levels_t, error_t), (levels_c, error_c) = out
    return levels_t, levels_c, error_t, error_c


@never_crashes
def check_channel_levels(levels_per_tensor, levels_per_channel, error_per_tensor,
                         error_per_channel) -> bool:
    """Exercise ch9-ex4: a channel whose largest absolute weight is 0.04, in a tensor whose
    largest is 3.1, in symmetric int8 (-127 ... 127): how many levels its weights can take
    with one scale per tensor and with one per channel, and the largest rounding error
    (half a step) relative to the channel's largest weight in each case."""
    levels_t, levels_c, error_t, error_c = _ex4_expected()
    answers = (levels_per_tensor, levels_per_channel, error_per_tensor, error_per_channel)
    if not all(is_number(a) for a in answers):
        return verdict(False, "give four numbers: two counts of levels and two relative errors",
                       answers, "e.g. check_channel_levels(9, 255, 0.2, 0.004)")
    if int(levels_per_channel) != levels_c or float(levels_per_channel) != levels_c:
        return verdict(False, "the levels per channel", levels_per_channel,
                       "with its own scale s = 0.04 / 127, the channel's largest weight is "
                       "the integer 127: from -127 to 127")
    if float(levels_per_tensor) != levels_t:
        hint = ("count the integers from -k to k: 2k + 1, not k"
                if float(levels_per_tensor) == (levels_t - 1) / 2 else
                "s = 3.1 / 127 for the whole tensor; the channel's largest weight becomes the "
                "integer k = round(0.04 / s), and its weights take the 2k + 1 integers -k ... k")
        return verdict(False, "the levels per tensor", levels_per_tensor, hint)
    for got, want, what in ((error_per_tensor, error_t, "per tensor"),
                            (error_per_channel, error_c, "per channel")):
        if abs(float(got) - want) > 0.02 * want:
            return verdict(False, f"the relative rounding error {what}", got,
                           "the largest rounding error is half a step, s / 2; divide it by the "
                           "channel's largest weight, 0.04")
    return report(True, f"{levels_t} levels per tensor against {levels_c} per channel; a "
                        f"rounding error of up to {error_t:.0%} of the channel's largest weight "
                        f"against {error_c:.2%}")
