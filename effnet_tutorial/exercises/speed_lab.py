r"""The checkers of the classroom's speed lab (assignment 6, ``classroom/course.py``):
BatchNorm folded into a convolution by hand, and measurements taken with the package's
interleaved timer (chapter 9).

The fold is checked against eager PyTorch, ``bn(conv(x))`` in eval mode, to 1e-5 of the
largest output, on fixed cases and on hidden cases drawn from the instructor's secret seed
(:func:`hidden_cases`): 1x1, regular, grouped and depthwise convolutions, with or without
a bias, strides, dilations and several BatchNorm ``eps``. Known mistakes (``eps``
forgotten or PyTorch's default used, the variance without its square root, a wrong bias
term) are recognised by computing them too, so that the hint names the mistake. The
package's own :func:`~effnet_tutorial.deploy.fold_batchnorm`, and PyTorch's
``torch.nn.utils.fusion`` that does the same, are refused (``Not yet: not allowed: ...``).

Timings are the machine's, so they are not graded for their values: the checkers test
that they are the result of :func:`~effnet_tutorial.measure.time_interleaved` (a dict of
equal-length lists of seconds, one entry per round, for every variant) and that the
learner's table is computed from them (per image, round by round with
:func:`~effnet_tutorial.measure.median_ratios`). The explanation is graded by hand.

The checkers follow the rules of :mod:`effnet_tutorial.exercises.assignments`: one
verdict with a hint, ``True`` or ``False``, never an exception.

>>> from effnet_tutorial.exercises.speed_lab import check_fold_batchnorm
>>> check_fold_batchnorm(lambda conv, bn: conv)  # doctest: +ELLIPSIS
Not yet: ...
False
"""

from __future__ import annotations

import math
import os
import random
import statistics
from numbers import Real
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import fusion

from ..config import get_model_config
from ..deploy import fold_batchnorm
from ..measure import median_ratios
from ._common import is_number, never_crashes, report
from .assignments import (
    SEED_VARIABLE,
    _call,
    _first_problem,
    _need_function,
    _no_reference,
    _NotYet,
)

__all__ = [
    "FoldCase",
    "fold_cases",
    "check_fold_batchnorm",
    "BLOCKS",
    "BATCHES",
    "LAYOUTS",
    "VARIANTS",
    "reference_of",
    "check_interleaved_times",
    "check_timing_table",
    "hidden_cases",
]

#: The largest difference a fold may have from eager ``bn(conv(x))``, relative to the
#: largest output value (the assignment's tolerance; float32 rounding is about 1e-7).
TOLERANCE = 1e-5


# ======================================================================================
# Part 1: BatchNorm folded into the convolution before it
# ======================================================================================
FoldCase = dict
# keys: in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
# eps, seed


def fold_cases(which="visible") -> list[FoldCase]:
    """The conv + BN pairs that :func:`check_fold_batchnorm` folds: ``"visible"`` is B0's
    first expansion (1x1, 16 -> 96, BN eps 1e-3 as in the official models), a depthwise
    3x3 stride-2 conv, a grouped 3x3 conv with a bias and eps 1e-2, and a 5x5 conv with a
    bias, dilation 2 and PyTorch's default eps 1e-5; a list is used as it is (the hidden
    tests draw one with :func:`hidden_cases`).

    Shape: -> [dict(in_channels, out_channels, kernel_size, stride, padding, dilation,
    groups, bias, eps, seed), ...].
    """
    if which == "visible":
        return [
            dict(in_channels=16, out_channels=96, kernel_size=1, stride=1, padding=0,
                 dilation=1, groups=1, bias=False, eps=1e-3, seed=0),
            dict(in_channels=32, out_channels=32, kernel_size=3, stride=2, padding=1,
                 dilation=1, groups=32, bias=False, eps=1e-3, seed=1),
            dict(in_channels=8, out_channels=12, kernel_size=3, stride=1, padding=1,
                 dilation=1, groups=4, bias=True, eps=1e-2, seed=2),
            dict(in_channels=6, out_channels=10, kernel_size=5, stride=1, padding=2,
                 dilation=2, groups=1, bias=True, eps=1e-5, seed=3),
        ]
    if not isinstance(which, str):
        return [dict(case) for case in which]
    raise ValueError(f"cases must be 'visible' or a list of conv + BN settings, got {which!r}")


def _pair(case: FoldCase) -> tuple[nn.Conv2d, nn.BatchNorm2d, torch.Tensor]:
    """The conv, the eval-mode BN with random statistics, and an input, fixed by the
    case's seed. Variances from 0.05 to 1.5: with eps 1e-3 a forgotten eps changes the
    scale of some channel by about 1 %, far above the tolerance."""
    g = torch.Generator().manual_seed(case["seed"])
    conv = nn.Conv2d(case["in_channels"], case["out_channels"], case["kernel_size"],
                     stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
                     groups=case["groups"], bias=case["bias"])
    bn = nn.BatchNorm2d(case["out_channels"], eps=case["eps"])

    def rand(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g)
                          / math.sqrt(conv.weight[0].numel()))
        if conv.bias is not None:
            conv.bias.copy_(rand(conv.bias.shape, -0.5, 0.5))
        n = case["out_channels"]
        bn.weight.copy_(rand((n,), 0.5, 1.5))
        bn.bias.copy_(rand((n,), -0.5, 0.5))
        bn.running_mean.copy_(rand((n,), -0.5, 0.5))
        bn.running_var.copy_(rand((n,), 0.05, 1.5))
    x = torch.randn(2, case["in_channels"], 13, 11, generator=g)   # odd, not square
    return conv.eval(), bn.eval(), x


def _describe(case: FoldCase) -> str:
    kind = ("depthwise " if case["groups"] == case["in_channels"] == case["out_channels"]
            and case["groups"] > 1 else f"groups={case['groups']}, " if case["groups"] > 1 else "")
    k = case["kernel_size"]
    return (f"a {kind}{k}x{k} conv {case['in_channels']} -> {case['out_channels']} (stride "
            f"{case['stride']}, padding {case['padding']}, dilation {case['dilation']}, "
            f"{'with' if case['bias'] else 'no'} bias) + BatchNorm(eps={case['eps']:g})")


def _state(*modules: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for m in modules for t in list(m.parameters()) + list(m.buffers())]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|, in float64."""
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d, scale: str = "right", shift: str = "right",
            axis: int = 0):
    """Folded weights and bias by formula, in float64, with a known mistake or without:
    ``scale`` is how s is computed, ``shift`` how the bias is."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0],
                                                                             dtype=torch.float64)
    gamma, beta = bn.weight.detach().double(), bn.bias.detach().double()
    mean, var = bn.running_mean.double(), bn.running_var.double()
    s = {
        "right": gamma / torch.sqrt(var + bn.eps),
        "no eps": gamma / torch.sqrt(var),
        "default eps": gamma / torch.sqrt(var + 1e-5),
        "no sqrt": gamma / (var + bn.eps),
        "times std": gamma * torch.sqrt(var + bn.eps),
    }[scale]
    bias = {
        "right": beta + (b - mean) * s,
        "conv bias dropped": beta - mean * s,
        "conv bias not scaled": beta + b - mean * s,
        "mean not scaled": beta + b * s - mean,
        "beta scaled": (beta + b - mean) * s,
        "sign": beta + (b + mean) * s,
        "no shift": b * s,
    }[shift]
    weight = w * s[:, None, None, None]
    return weight, bias


#: (scale, shift, hint): the known mistakes, tried in this order.
_FOLD_MISTAKES = (
    ("no eps", "right",
     "you forgot eps: s = gamma / sqrt(running_var + eps), with the BatchNorm's own eps "
     "(bn.eps)"),
    ("default eps", "right",
     "use the BatchNorm's own eps (bn.eps), not PyTorch's default 1e-5: EfficientNet's "
     f"BatchNorms use {get_model_config('efficientnet-b0').bn_eps:g}"),
    ("no sqrt", "right",
     "running_var is a variance: divide gamma by its square root, sqrt(running_var + eps)"),
    ("times std", "right", "divide by the standard deviation: s = gamma / sqrt(running_var + eps)"),
    ("right", "conv bias dropped",
     "the conv's own bias goes through BatchNorm too: b' = beta + (b - running_mean) * s"),
    ("right", "conv bias not scaled",
     "BatchNorm scales the conv's bias with everything else: b' = beta + (b - running_mean) * s, "
     "not beta + b - running_mean * s"),
    ("right", "mean not scaled",
     "the running mean is subtracted before the scale: b' = beta + (b - running_mean) * s"),
    ("right", "beta scaled",
     "beta is added after the scale: b' = beta + (b - running_mean) * s, not "
     "(beta + b - running_mean) * s"),
    ("right", "sign", "subtract the running mean: b' = beta + (b - running_mean) * s"),
    ("right", "no shift",
     "the folded bias also carries BatchNorm's shift: b' = beta + (b - running_mean) * s"),
)
_FORMULA = ("W' = W * s per output channel and b' = beta + (b - running_mean) * s, with "
            "s = gamma / sqrt(running_var + eps)")


def _run_conv(conv: nn.Conv2d, weight, bias, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x.double(), weight, bias, conv.stride, conv.padding, conv.dilation,
                    conv.groups)


def _need_conv(got, conv: nn.Conv2d, what: str) -> None:
    """The fold returns one plain nn.Conv2d with the conv's settings and a bias."""
    if isinstance(got, nn.Module) and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                          for m in got.modules()):
        raise _NotYet(f"{what} returned a module that still holds a BatchNorm",
                      "return ONE nn.Conv2d that computes bn(conv(x)) by itself: fold the "
                      "BatchNorm into its weights and bias")
    if not isinstance(got, nn.Conv2d) or type(got).forward is not nn.Conv2d.forward:
        raise _NotYet(f"{what} returned {type(got).__name__}",
                      "return an nn.Conv2d (a copy of the conv, or a new one with the same "
                      "settings) whose weight and bias are the folded ones")
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "groups", "padding_mode"):
        if getattr(got, attr) != getattr(conv, attr):
            raise _NotYet(f"{attr} of the conv returned for {what}",
                          "folding changes the weights and the bias only: keep the conv's "
                          "stride, padding, dilation and groups (copy.deepcopy(conv) keeps "
                          "them all)", getattr(conv, attr), getattr(got, attr))
    if got.bias is None:
        raise _NotYet(f"the conv returned for {what} has no bias",
                      "the folded conv needs a bias, beta + (b - running_mean) * s, even when "
                      "the conv had none: nn.Conv2d(..., bias=True), or set .bias to an "
                      "nn.Parameter")
    if got.weight.dtype != conv.weight.dtype or got.bias.dtype != conv.weight.dtype:
        raise _NotYet(f"the dtype of the conv returned for {what}",
                      "keep the conv's dtype (float32): compute in float64 if you like, then "
                      ".to(conv.weight.dtype)", str(conv.weight.dtype),
                      f"{got.weight.dtype} weight, {got.bias.dtype} bias")


@never_crashes
@_first_problem
@_no_reference(fold_batchnorm, fusion.fuse_conv_bn_eval, fusion.fuse_conv_bn_weights)
def check_fold_batchnorm(fn: Callable[[nn.Conv2d, nn.BatchNorm2d], nn.Conv2d],
                         cases="visible") -> bool:
    """``fn(conv, bn)``: one ``nn.Conv2d`` that computes ``bn(conv(x))`` for an eval-mode
    ``bn`` (BatchNorm folded into the convolution: Ioffe & Szegedy 2015, §3.1; chapter 9),
    without changing ``conv`` or ``bn``. Checked on :func:`fold_cases` against eager
    PyTorch to 1e-5 of the largest output; a wrong fold gets the hint of the known mistake
    it reproduces.

    Shape: (conv (B, C_in, H, W) -> (B, C_out, H', W'), bn) -> a conv of the same shapes.
    """
    _need_function(fn, "fold_batchnorm(conv, bn)")
    rows = fold_cases(cases)
    for case in rows:
        conv, bn, x = _pair(case)
        what = f"fold_batchnorm on {_describe(case)}"
        with torch.no_grad():
            want = bn(conv(x))
        before = _state(conv, bn)
        got = _call(fn, conv, bn)
        if any(not torch.equal(a, b) for a, b in zip(before, _state(conv, bn))):
            raise _NotYet(f"{what} changed the conv or the BatchNorm it was given",
                          "leave both as they are: fold into a copy (copy.deepcopy(conv)) "
                          "or a new nn.Conv2d")
        _need_conv(got, conv, what)
        if got.weight.shape != conv.weight.shape or got.bias.shape != (case["out_channels"],):
            raise _NotYet(f"shapes of the weight and bias returned for {what}",
                          "the folded weight has the conv's shape (C_out, C_in / groups, k, k) "
                          "and the bias one value per output channel",
                          f"{list(conv.weight.shape)} and [{case['out_channels']}]",
                          f"{list(got.weight.shape)} and {list(got.bias.shape)}")
        try:
            with torch.no_grad():
                out = got(x.clone())
        except Exception as exc:  # the learner's conv may hold anything
            raise _NotYet(f"the conv returned for {what} failed on an input of shape "
                          f"{list(x.shape)} ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                          "keep the conv's settings and a weight of its shape") from None
        error = _relative(out, want)
        if error <= TOLERANCE:
            continue
        with torch.no_grad():
            weight, bias = got.weight.detach().double(), got.bias.detach().double()
            right_w, right_b = _folded(conv, bn)
            w_ok = _relative(weight, right_w) <= TOLERANCE
            b_ok = _relative(bias, right_b) <= TOLERANCE
            hint = None
            for scale, shift, text in _FOLD_MISTAKES:
                if scale == "default eps" and case["eps"] == 1e-5:
                    continue
                if shift != "right" and not w_ok:
                    continue
                mw, mb = _folded(conv, bn, scale, shift)
                if _relative(_run_conv(conv, mw, mb, x), want.double()) <= TOLERANCE:
                    continue   # indistinguishable from the right fold on this case
                if _relative(out, _run_conv(conv, mw, mb, x)) <= TOLERANCE:
                    hint = text
                    break
            if hint is None:
                part = ("the weights are right, the bias is not" if w_ok and not b_ok else
                        "the bias is right, the weights are not" if b_ok and not w_ok else
                        "weights and bias differ")
                hint = f"{part}: {_FORMULA}"
        raise _NotYet(f"{what}: largest difference {error:.1e} of the largest output "
                      f"(tolerance {TOLERANCE:g})", hint)
    return report(True, f"your fold equals eager bn(conv(x)) to {TOLERANCE:g} on {len(rows)} "
                        "conv + BatchNorm pairs")


# ======================================================================================
# Part 2: measurements with the interleaved timer
# ======================================================================================
#: The two blocks of B0 that the lab times (names as the notebook's variants use them).
BLOCKS = ("early", "late")
#: The batch sizes and memory layouts of the lab.
BATCHES = (1, 16)
LAYOUTS = ("NCHW", "channels_last")
#: Every variant the lab times: name -> (block, batch, layout).
VARIANTS = {f"{block}, batch {b}, {layout}": (block, b, layout)
            for block in BLOCKS for b in BATCHES for layout in LAYOUTS}


def reference_of(variant: str) -> str:
    """The variant that ``variant`` is compared with: the same block at batch 1 in NCHW.

    Shape: variant name -> variant name.
    """
    block, _, _ = VARIANTS[variant]
    return f"{block}, batch {BATCHES[0]}, {LAYOUTS[0]}"


def _is_seconds(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _times_problem(times, variants: tuple[str, ...], min_rounds: int,
                   measured: bool = True) -> int:
    """Raise the first way in which ``times`` is not time_interleaved's result for
    ``variants``; return its number of rounds. ``measured=False`` checks the structure
    only (what a table computed from it needs), not the number of rounds nor the signs of
    typed-in numbers."""
    if not isinstance(times, dict):
        raise _NotYet(f"times is {type(times).__name__}",
                      "times = time_interleaved({name: function, ...}, repeats=...): a dict "
                      "of name -> list of seconds, one per round")
    missing = [v for v in variants if v not in times]
    if missing:
        raise _NotYet(f"times has no entry for {', '.join(map(repr, missing))}",
                      "time every variant of VARIANTS, with its name as the key, in ONE call of "
                      "time_interleaved, so that the variants take turns")
    lengths = {}
    for name in variants:
        ts = times[name]
        if not isinstance(ts, (list, tuple)) or not ts or not all(map(_is_seconds, ts)):
            raise _NotYet(f"times[{name!r}] is {type(ts).__name__}: {ts!r}"[:200],
                          "time_interleaved gives a list of seconds per variant; pass its "
                          "result unchanged")
        if any(t <= 0 or t > 60 for t in ts):
            raise _NotYet(f"times[{name!r}] holds {min(ts):g} to {max(ts):g} s",
                          "each entry is the seconds of one call, from time_interleaved: "
                          "positive, and here well under a minute")
        lengths[name] = len(ts)
    if len(set(lengths.values())) > 1:
        raise _NotYet(f"the variants have different numbers of rounds: {lengths}",
                      "time_interleaved runs every function once per round, so all lists "
                      "have the same length: time all variants in one call")
    rounds = next(iter(lengths.values()))
    if not measured:
        return rounds
    if rounds < min_rounds:
        raise _NotYet(f"times holds {rounds} round(s)",
                      f"use at least {min_rounds} rounds (repeats={min_rounds} or more), so "
                      "that the median says something")
    values = [float(t) for name in variants for t in times[name]]
    if all(abs(t * 1e6 - round(t * 1e6)) < 1e-6 for t in values):
        raise _NotYet("every time is a whole number of microseconds",
                      "the times must be measured, not typed in: pass the result of "
                      "time_interleaved unchanged")
    if len({tuple(times[name]) for name in variants}) < len(variants):
        raise _NotYet("two variants have exactly the same times",
                      "each variant is timed separately in every round: pass the result of "
                      "time_interleaved unchanged")
    return rounds


@never_crashes
@_first_problem
def check_interleaved_times(times, variants: tuple[str, ...] = tuple(VARIANTS),
                            min_rounds: int = 3) -> bool:
    """``times``: what :func:`~effnet_tutorial.measure.time_interleaved` returns when it
    times every variant of the lab (``{name: [seconds of each round]}``): every variant,
    one time per round for each, at least ``min_rounds`` rounds, each a plausible
    duration measured by the clock (not typed in). The values themselves belong to the
    machine and are not graded.

    Shape: {variant: [seconds, ...]} -> bool.
    """
    rounds = _times_problem(times, tuple(variants), min_rounds)
    return report(True, f"{len(variants)} variants timed in {rounds} interleaved rounds")


def _column(table, names, what: str) -> dict:
    """A column of the learner's table as {variant: float}."""
    try:
        column = table[what]
    except Exception:   # not a DataFrame, or no such column
        raise _NotYet(f"the table has no column {what!r}",
                      "table = pd.DataFrame({'ms per image': {...}, 'speed-up per image': "
                      "{...}}), indexed by the variants' names") from None
    out = {}
    for name in names:
        try:
            value = column[name]
        except Exception:
            raise _NotYet(f"the table has no row {name!r} in {what!r}",
                          "index the table by the variants' names (the keys of times)") from None
        if not is_number(value):
            raise _NotYet(f"table[{what!r}][{name!r}] is {value!r}", "a number, computed "
                          "from times")
        out[name] = float(value)
    return out


def _near(got: float, want: float) -> bool:
    # Exact, or rounded for display (to 2 decimals).
    return abs(got - want) <= max(1e-6 * abs(want), 0.0051)


@never_crashes
@_first_problem
def check_timing_table(table, times, variants: tuple[str, ...] = tuple(VARIANTS)) -> bool:
    """The learner's ``table`` (a pandas DataFrame indexed by variant) computed from
    ``times``: ``ms per image``, the median time of a call divided by the batch size, in
    milliseconds; ``speed-up per image``, how many times faster per image than the same
    block at batch 1 in NCHW (:func:`reference_of`), round by round:
    batch / :func:`~effnet_tutorial.measure.median_ratios` (either order of median and
    reciprocal is accepted).

    Shape: (DataFrame, {variant: [seconds]}) -> bool.
    """
    # Its structure only: whether the times were measured is test_times' concept.
    _times_problem(times, tuple(variants), 1, measured=False)
    ms = _column(table, variants, "ms per image")
    speed = _column(table, variants, "speed-up per image")
    for name in variants:
        _, batch, _ = VARIANTS[name]
        ts = times[name]
        want = 1e3 * statistics.median(ts) / batch
        if _near(ms[name], want):
            continue
        if _near(ms[name], 1e3 * statistics.median(ts)) and batch > 1:
            hint = f"that is the time of a whole call; divide by the batch size ({batch})"
        elif _near(ms[name], 1e3 * statistics.fmean(ts) / batch):
            hint = "take the median of the rounds, not the mean: a round disturbed by the " \
                   "machine's load moves the mean, not the median"
        elif _near(ms[name], 1e3 * min(ts) / batch):
            hint = "take the median of the rounds, not the fastest"
        elif _near(ms[name], want / 1e3):
            hint = "in milliseconds: seconds * 1e3"
        else:
            hint = "1e3 * statistics.median(times[name]) / batch"
        raise _NotYet(f"table['ms per image'][{name!r}]", hint, round(want, 4), ms[name])
    for name in variants:
        _, batch, _ = VARIANTS[name]
        ref = reference_of(name)
        ratios = [t / r for t, r in zip(times[name], times[ref])]
        wants = (batch / statistics.median(ratios), statistics.median(batch / q for q in ratios))
        if any(_near(speed[name], w) for w in wants):
            continue
        if any(_near(speed[name], 1 / w) for w in wants):
            hint = "that is the time ratio; the speed-up is its inverse (above 1 is faster)"
        elif batch > 1 and any(_near(speed[name], w / batch) for w in wants):
            hint = (f"that is the speed-up of a whole call; per image, a call of batch {batch} "
                    f"does {batch} images: multiply by {batch}")
        elif _near(speed[name], batch * statistics.median(times[ref]) / statistics.median(
                times[name])):
            hint = ("compare round by round, with median_ratios(times, reference), not the "
                    "medians of different rounds: the rounds share the machine's load")
        else:
            hint = (f"batch / median_ratios(times, {ref!r})[name]: relative to the same block "
                    "at batch 1 in NCHW")
        raise _NotYet(f"table['speed-up per image'][{name!r}]", hint,
                      round(batch / median_ratios({name: times[name], ref: times[ref]},
                                                  ref)[name], 4), speed[name])
    return report(True, f"the table is computed from the {len(variants)} variants' times")


# ======================================================================================
# Hidden cases, drawn at grading time from the instructor's secret seed
# ======================================================================================
def _draw_fold(rng: random.Random) -> FoldCase:
    kind = rng.choice(("pointwise", "regular", "grouped", "depthwise"))
    k = 1 if kind == "pointwise" else rng.choice((3, 5))
    if kind == "depthwise":
        cin = cout = groups = rng.randint(2, 48)
    elif kind == "grouped":
        groups = rng.choice((2, 3, 4))
        cin, cout = groups * rng.randint(1, 8), groups * rng.randint(1, 8)
    else:
        cin, cout, groups = rng.randint(1, 48), rng.randint(1, 64), 1
    return dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=rng.choice((1, 2)),
                padding=rng.randint(0, k // 2), dilation=rng.choice((1, 1, 2)) if k > 1 else 1,
                groups=groups, bias=rng.random() < 0.5,
                eps=rng.choice((1e-5, 1e-3, 1e-3, 1e-2, 0.1)), seed=rng.randrange(10**6))


_DRAWS: dict[str, Callable[[random.Random], object]] = {
    "fold_batchnorm": lambda rng: [_draw_fold(rng) for _ in range(6)],
}


def hidden_cases(name: str):
    """The cases of a hidden test of the speed lab, drawn from the instructor's secret
    seed (the environment variable ``EFFNET_GRADING_SEED``) and the test's ``name``, as
    :func:`effnet_tutorial.exercises.assignments.hidden_cases` draws the other
    assignments'. Without a seed, fresh cases from the operating system's randomness.

    Shape: name -> list of cases.
    """
    if name not in _DRAWS:
        raise ValueError(f"hidden_cases: no cases named {name!r}; expected one of {sorted(_DRAWS)}")
    seed = os.environ.get(SEED_VARIABLE) or str(random.SystemRandom().getrandbits(128))
    return _DRAWS[name](random.Random(f"{seed}:{name}"))
