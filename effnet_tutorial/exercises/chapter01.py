"""Checkers for chapter 1, compound scaling.

Each checker compares a learner's answer with what :mod:`effnet_tutorial` computes,
prints one verdict line (see :func:`effnet_tutorial.exercises.report`) and returns
``True`` or ``False``.
"""
from __future__ import annotations

import math
from numbers import Integral

from ..config import V1_COEFFICIENTS
from ..scaling import round_filters
from ._common import is_number, never_crashes, report

__all__ = ["check_flops_factor", "check_round_filters", "check_b3_prediction", "ROUND_FILTERS_CASES"]

#: (channels, width_coefficient) pairs that ``check_round_filters`` tries: every channel count
#: of B0 (stem, stages, head) at every published width, plus narrow layers and
#: fractional widths where the "never below 8" and "not more than 10 % down" rules matter.
ROUND_FILTERS_CASES: tuple[tuple[int, float], ...] = tuple(
    [(c, w) for w in (*sorted({v[0] for v in V1_COEFFICIENTS.values()}), 0.25, 0.5, 0.75, 1.25, 2.2, 3.1)
     for c in (32, 16, 24, 40, 80, 112, 192, 320, 1280)]
    + [(c, w) for c in (1, 3, 4, 8, 12, 20, 28, 36, 44, 52) for w in (0.1, 0.35, 1.0, 1.15, 1.3)]
)


@never_crashes
def check_flops_factor(value, phi: float = 3, alpha: float = 1.2, beta: float = 1.1,
                       gamma: float = 1.15) -> bool:
    """Is ``value`` the FLOPs factor :math:`(\\alpha\\beta^2\\gamma^2)^\\phi` (to 0.5 %)?"""
    expected = (alpha * beta ** 2 * gamma ** 2) ** phi
    ok = is_number(value) and math.isclose(float(value), expected, rel_tol=5e-3)
    hint = None
    if is_number(value) and math.isclose(float(value), 2.0 ** phi, rel_tol=1e-9):
        hint = ("2**phi is the target the constraint aims at; compute alpha * beta**2 * gamma**2 itself, "
                "then raise it to phi.")
    elif is_number(value) and math.isclose(float(value), (alpha * beta * gamma) ** phi, rel_tol=5e-3):
        hint = "width and resolution enter squared: FLOPs grow as d * w**2 * r**2."
    elif not ok:
        hint = "FLOPs grow as d * w**2 * r**2 with d = alpha**phi, w = beta**phi, r = gamma**phi."
    return report(ok, f"the FLOPs factor at phi={phi:g} is (alpha*beta^2*gamma^2)^phi = {expected:.3f}"
                  if ok else f"the FLOPs factor at phi={phi:g}",
                  expected=None if ok else round(expected, 3), got=value, hint=hint)


@never_crashes
def check_round_filters(fn) -> bool:
    """Does ``fn(channels, width_coefficient)`` agree with the official ``round_filters``
    on :data:`ROUND_FILTERS_CASES`? Reports the first disagreement."""
    if not callable(fn):
        return report(False, "pass a function fn(channels, width_coefficient)",
                      hint=f"got an object of type {type(fn).__name__}; pass the function itself, without calling it.")
    for channels, width in ROUND_FILTERS_CASES:
        expected = round_filters(channels, width)
        try:
            got = fn(channels, width)
        except Exception as exc:  # a learner's function may raise anything
            return report(False, f"fn({channels}, {width}) raised {type(exc).__name__}: {exc}",
                          hint="the function takes (channels: int, width_coefficient: float) and returns an int.")
        is_int = isinstance(got, Integral) and not isinstance(got, bool)
        if not is_int or got != expected:
            scaled = channels * width
            if is_int and got == int(scaled):
                hint = "you truncated c * w; round to the NEAREST multiple of 8 instead."
            elif is_int and got == expected - 8 and expected - 8 < 0.9 * scaled:
                hint = (f"{channels} x {width} = {scaled:g} rounds to {got}, more than 10 % below; "
                        "the official rule then adds one more 8.")
            elif is_int and got < 8 <= expected:
                hint = "the result is never below the divisor (8)."
            elif not is_int:
                hint = f"return a plain int, not {type(got).__name__}."
            else:
                hint = "max(8, int(c * w + 4) // 8 * 8), plus 8 if that lost more than 10 %."
            return report(False, f"round_filters({channels}, {width})", expected=expected, got=got, hint=hint)
    return report(True, f"your round_filters matches the official one on all {len(ROUND_FILTERS_CASES)} cases")


@never_crashes
def check_b3_prediction(value, b0_flops: int | None = None) -> bool:
    """Is ``value`` B0's multiply-adds times :math:`d w^2 r^2` with B3's official coefficients
    (within 3 %, so 0.39e9 from the paper and the measured B0 count are both accepted)?"""
    from ..inspection import count_flops

    w, d, res, _ = V1_COEFFICIENTS["efficientnet-b3"]
    w0, d0, res0, _ = V1_COEFFICIENTS["efficientnet-b0"]
    base = count_flops("efficientnet-b0") if b0_flops is None else b0_flops
    factor = (d / d0) * (w / w0) ** 2 * (res / res0) ** 2
    expected = base * factor
    ok = is_number(value) and math.isclose(float(value), expected, rel_tol=0.03)
    hint = None
    if is_number(value) and not ok:
        if math.isclose(float(value), factor, rel_tol=0.03):
            hint = "that is the factor d*w^2*r^2; multiply it by B0's multiply-adds."
        elif math.isclose(float(value) / base, d * w * res / res0, rel_tol=0.03):
            hint = "width and resolution enter squared."
        else:
            hint = "B3 is width 1.2, depth 1.4, resolution 300 (B0: 1.0, 1.0, 224)."
    elif not ok:
        hint = "give a number (a float or an int): B0's multiply-adds times d * w**2 * r**2."
    return report(ok, f"predicted B3 multiply-adds = B0 x {factor:.3f} = {expected / 1e9:.3f} G" if ok
                  else "predicted B3 multiply-adds", expected=None if ok else round(expected),
                  got=value, hint=hint)
