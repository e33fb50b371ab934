"""Checkers for chapter 2: depthwise separable convolution, Swish and Squeeze-and-Excitation.

Every expected value is computed from the package itself (the B0 model and its layers),
never typed in, so a checker cannot drift from the code the chapter shows.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ._common import check_equal, never_crashes, report

__all__ = ["stage6_depthwise", "check_stage6_depthwise", "check_se_params", "check_swish_derivative"]


def stage6_depthwise() -> tuple[nn.Module, tuple[int, int, int, int]]:
    """The depthwise ConvBNAct of B0's block ``stages[6][1]`` (paper Table 1, stage 6:
    MBConv6, k5x5, 14x14) and the input size it sees, ``(1, 672, 14, 14)``."""
    from ..model import EfficientNet

    with torch.device("meta"):
        model = EfficientNet.from_name("efficientnet-b0")
    layer = model.stages[6][1].depthwise
    return layer, (1, layer.conv.in_channels, 14, 14)


@never_crashes
def check_stage6_depthwise(depthwise_params: int, full_params: int,
                           depthwise_macs: int | None = None, full_macs: int | None = None) -> bool:
    """Parameters (and optionally multiply-adds) of the k=5, C=672 depthwise conv in B0's
    paper stage 6, and of a regular 5x5 conv with the same input and output channels.
    Counts are for the convolution only (no BatchNorm), at 14x14, stride 1."""
    from ..inspection import count_flops, count_params

    layer, size = stage6_depthwise()
    conv = layer.conv
    k, c = conv.kernel_size[0], conv.in_channels
    h, w = size[2], size[3]
    exp_dw_params = count_params(conv)
    exp_full_params = k * k * c * c
    exp_dw_macs = count_flops(layer, size)
    exp_full_macs = k * k * c * c * h * w
    ok = check_equal(depthwise_params, exp_dw_params, "parameters of the depthwise conv",
                     "one k x k filter per channel, no bias: k^2 * C")
    ok &= check_equal(full_params, exp_full_params, "parameters of the regular conv",
                      "k^2 * C_in * C_out, no bias")
    if depthwise_macs is not None:
        ok &= check_equal(depthwise_macs, exp_dw_macs, "multiply-adds of the depthwise conv",
                          "k^2 * C * H * W with the output size H x W")
    if full_macs is not None:
        ok &= check_equal(full_macs, exp_full_macs, "multiply-adds of the regular conv",
                          "k^2 * C_in * C_out * H * W")
    if ok:
        print(f"The depthwise conv needs {exp_full_params // exp_dw_params}x (= C_out) fewer parameters "
              f"and multiply-adds\nthan a regular {k}x{k} conv.")
    return bool(ok)


@never_crashes
def check_se_params(answer: int, block: nn.Module) -> bool:
    """Your hand count of the parameters of ``block.se`` (weights and biases of both 1x1 convs)."""
    from ..inspection import count_params

    if not hasattr(block, "se") or isinstance(block.se, nn.Identity):
        raise ValueError("expected a block with a SqueezeExcite module in .se")
    expected = count_params(block.se)
    c, c_se = block.se.reduce.in_channels, block.se.reduce.out_channels
    return check_equal(answer, expected, f"SE parameters ({c} -> {c_se} -> {c})",
                       "reduce: C * C_se weights + C_se biases; expand: C_se * C weights + C biases; "
                       "C_se comes from the block's INPUT channels")


@never_crashes
def check_swish_derivative(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """``fn(x)`` should return d/dx [x * sigmoid(x)] elementwise; compared with autograd
    on a float64 grid from -10 to 10."""
    x = torch.linspace(-10, 10, 2001, dtype=torch.float64, requires_grad=True)
    (x * torch.sigmoid(x)).sum().backward()
    expected = x.grad
    with torch.no_grad():
        got = fn(x.detach().clone())
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return report(False, "Swish derivative", "a tensor of shape " + str(list(expected.shape)),
                      type(got).__name__ if not isinstance(got, torch.Tensor) else list(got.shape),
                      "return one value per input value, a tensor shaped like x (elementwise torch ops "
                      "such as torch.sigmoid keep the shape)")
    err = (got.to(torch.float64) - expected).abs().max().item()
    return report(err < 1e-6, "Swish derivative matches autograd on [-10, 10]",
                  "max error < 1e-6" if err >= 1e-6 else None, f"max error {err:.1e}" if err >= 1e-6 else None,
                  "sigma(x) * (1 + x * (1 - sigma(x)))")
