"""Checkers for chapter 3 (MBConv, the inverted residual bottleneck).

>>> from effnet_tutorial.exercises.chapter03 import check_mbconv_params
>>> check_mbconv_params(37130)          # MBConv6, k3, 40 -> 80 channels, stride 2
Correct: parameters of MBConv(40 -> 80, k3, s2, e6, se0.25) = 37130.
True
"""
from __future__ import annotations

from typing import Callable

import torch

from ..blocks import MBConv
from ..config import MODEL_NAMES, get_model_config
from ..inspection import count_params
from ._common import never_crashes, report

__all__ = ["mbconv_param_breakdown", "check_mbconv_params", "check_has_skip", "expected_skipped_blocks",
           "check_expected_skipped"]

PARTS = ("expand", "depthwise", "se", "project")


def mbconv_param_breakdown(in_channels: int = 40, out_channels: int = 80, kernel_size: int = 3, stride: int = 2,
                           expand_ratio: int = 6, se_ratio: float | None = 0.25) -> dict[str, int]:
    """Parameters of each part of the package's :class:`~effnet_tutorial.blocks.MBConv`
    (built on the meta device, so nothing is allocated), plus ``"total"``."""
    with torch.device("meta"):
        block = MBConv(in_channels, out_channels, kernel_size, stride, expand_ratio, se_ratio)
    parts = {name: count_params(getattr(block, name)) for name in PARTS}
    parts["total"] = count_params(block)
    return parts


@never_crashes
def check_mbconv_params(answer, in_channels: int = 40, out_channels: int = 80, kernel_size: int = 3,
                        stride: int = 2, expand_ratio: int = 6, se_ratio: float | None = 0.25) -> bool:
    """Check a hand count of an MBConv block's parameters.

    ``answer`` is the total (an int) or a dict with some of the keys ``expand``,
    ``depthwise``, ``se``, ``project`` and ``total``; each given key is checked.
    Defaults: B0's stage-4 first block, MBConv6 k3 40 -> 80 stride 2.
    """
    truth = mbconv_param_breakdown(in_channels, out_channels, kernel_size, stride, expand_ratio, se_ratio)
    what = (f"MBConv({in_channels} -> {out_channels}, k{kernel_size}, s{stride}, e{expand_ratio}, "
            f"se{se_ratio if se_ratio is not None else 'None'})")
    hints = {
        "expand": "1x1 conv C_in -> e*C_in without bias, then BN (2 parameters per channel)",
        "depthwise": "one k x k filter per channel (groups = channels), no bias, then BN",
        "se": "two 1x1 convs WITH bias, C_se = max(1, int(C_in * se_ratio)) from the block's input",
        "project": "1x1 conv e*C_in -> C_out without bias, then BN",
        "total": "add the four parts; the stride changes no parameter count",
    }
    if isinstance(answer, bool) or not isinstance(answer, (int, dict)):
        return report(False, f"parameters of {what}", truth["total"], answer,
                      "give an int (the total) or a dict of parts")
    if isinstance(answer, int):
        return report(answer == truth["total"], f"parameters of {what} = {truth['total']}"
                      if answer == truth["total"] else f"parameters of {what}",
                      truth["total"], answer, hints["total"] + "; pass a dict of parts to find the wrong one")
    unknown = sorted(set(answer) - set(truth))
    if unknown:
        return report(False, f"parameters of {what}", None, None,
                      f"unknown keys {unknown}; use {list(truth)}")
    ok = True
    for key in [k for k in truth if k in answer]:
        good = answer[key] == truth[key]
        ok &= report(good, f"{key} of {what} = {truth[key]}" if good else f"{key} of {what}",
                     truth[key], answer[key], hints[key])
    return ok


_HAS_SKIP: dict[tuple, bool] = {}


def _has_skip(cls, stride: int, cin: int, cout: int, kernel_size: int = 3, expand_ratio: int = 6,
              se_ratio: float | None = 0.25) -> bool:
    """``has_skip`` of the package's own block, built on the meta device (cached by shape)."""
    key = (cls, stride, cin, cout, kernel_size, expand_ratio, se_ratio)
    if key not in _HAS_SKIP:
        with torch.device("meta"):
            _HAS_SKIP[key] = cls(cin, cout, kernel_size, stride, expand_ratio, se_ratio).has_skip
    return _HAS_SKIP[key]


def _model_blocks(name: str) -> list[tuple[int, int, int, bool]]:
    """(stride, in_channels, out_channels, has_skip) of every block of a published model, in order."""
    from ..blocks import FusedMBConv

    rows = []
    for b in get_model_config(name).block_specs():
        cls = FusedMBConv if b.kind == "fused" else MBConv
        rows.append((b.stride, b.in_channels, b.out_channels,
                     _has_skip(cls, b.stride, b.in_channels, b.out_channels, b.kernel_size, b.expand_ratio,
                               b.se_ratio)))
    return rows


#: Shapes that no published table contains but that a correct rule must get right.
_EXTRA_CASES = ((2, 40, 40), (2, 24, 48), (1, 24, 40), (1, 80, 80), (3, 16, 16))


def _all_blocks():
    """(where, stride, in_channels, out_channels, has_skip) for every block of every
    published model, plus a few extra shapes (stride 2 with equal channels ...)."""
    rows = [(f"block {i} of {name}", *row) for name in MODEL_NAMES for i, row in enumerate(_model_blocks(name))]
    rows += [("an extra MBConv", s, cin, cout, _has_skip(MBConv, s, cin, cout)) for s, cin, cout in _EXTRA_CASES]
    return rows


@never_crashes
def check_has_skip(fn: Callable[[int, int, int], bool]) -> bool:
    """Check a rule ``fn(stride, in_channels, out_channels) -> bool`` for "this block has
    an identity skip connection" against every block of B0-B7 and V2-S/M/L/XL."""
    if not callable(fn):
        return report(False, "has_skip rule", None, None, "pass a function fn(stride, in_channels, out_channels)")
    rows = _all_blocks()
    for where, stride, cin, cout, truth in rows:
        try:
            got = bool(fn(stride, cin, cout))
        except Exception as exc:  # the learner's function failed: say where
            return report(False, "has_skip rule", None, None,
                          f"fn({stride}, {cin}, {cout}) raised {type(exc).__name__}: {exc}")
        if got != truth:
            return report(False, f"has_skip rule ({where}: stride {stride}, {cin} -> {cout})",
                          truth, got, "an identity skip needs the output shape to equal the input shape")
    # Short: the book prints it in an exercise solution, which is narrower than 80 columns.
    return report(True, f"has_skip rule on {len(rows) - len(_EXTRA_CASES)} blocks of "
                        f"{len(MODEL_NAMES)} models and {len(_EXTRA_CASES)} extra shapes")


def expected_skipped_blocks(model_name: str = "efficientnet-b0", drop_path_rate: float | None = None) -> float:
    """Expected number of residual branches dropped per sample in one training forward pass:
    the sum of the drop rates of the blocks that have a skip connection."""
    rates = get_model_config(model_name, drop_path_rate=drop_path_rate).drop_path_rates()
    return sum(rate for rate, (*_, skip) in zip(rates, _model_blocks(model_name)) if skip)


@never_crashes
def check_expected_skipped(answer, model_name: str = "efficientnet-b0", tol: float = 1e-3) -> bool:
    """Check the expected number of blocks skipped per sample and forward pass (training)."""
    truth = expected_skipped_blocks(model_name)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return report(False, f"expected skipped blocks in {model_name}", round(truth, 4), answer, "give a number")
    ok = abs(answer - truth) <= tol
    return report(ok, f"expected skipped blocks per sample in {model_name} = {truth:.4f}" if ok
                  else f"expected skipped blocks in {model_name}", round(truth, 4), answer,
                  "sum rate_i = 0.2 * i / N only over the blocks with has_skip (a block without a skip "
                  "never drops its branch)")
