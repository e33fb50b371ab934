r"""The checkers of assignment 5 of the classroom course (nbgrader, ``classroom/``), a
training project: scale a tiny EfficientNet under a fixed multiply-add budget along depth,
width or resolution alone, or all three with the compound rule, train it on
scikit-learn's digits, and compare, as EfficientNet's Figures 3 and 4 do at ImageNet scale
(Tan & Le, arXiv 1905.11946v5, §3.2-3.3).

The assignment itself (task texts, solutions, hidden tests' code, the model answer) is
instructors' material, ``classroom/course.py``. This module holds what the test cells
import: the project's constants, the checkers, the reference run they compare with and
the rules that draw the hidden cases from the instructor's secret seed (the environment
variable :data:`~effnet_tutorial.exercises.assignments.SEED_VARIABLE`, as for assignments
1-4). The checkers follow the rules of :mod:`effnet_tutorial.exercises.assignments`: one
verdict with a hint, never an exception; the learner's functions are called through the
checkers, which refuse the package's references (any code of this folder running inside
the learner's function, and, while the learner's training runs, the data set's loaders).

**The held-out split.** Every digit of scikit-learn's data set is public, so a split that
the package fixed could be trained on. The final test therefore trains the learner's
model itself, with the learner's ``train_model``, at grading time: it draws a held-out
split (a stratified :data:`HELD_OUT_FRACTION` of the 1,797 digits) from the secret seed,
and it *disguises* the task (every image turned by a secret rotation or reflection, the
labels secretly permuted), so that images or labels taken from the public data set do
not help. ``train_model`` sees only the training part; the model it returns is counted
(multiply-adds over the budget score 0) and measured on the held-out part, against the
reference run: the compound-scaled model of the budget, trained with the package's
:func:`~effnet_tutorial.train.fit` and :data:`REFERENCE_RECIPE` on the same images with
the same seed.

>>> from effnet_tutorial.exercises.training_project import BASE, check_final_budget
>>> check_final_budget(BASE.with_options(width_coefficient=1.0))  # doctest: +ELLIPSIS
Not yet: the final config needs ... over the budget of ...
False
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import random
import sys
from typing import Callable

import torch
from torch import nn

from ..config import ModelConfig
from ..data import ImageData, channel_stats, load_cifar10, load_dataset, load_digits
from ..inspection import count_flops
from ..scaling import compound_coefficients
from ..train import DEFAULT_MODEL, evaluate, fit, parse_model_spec
from . import assignments as _checkers
from ._common import never_crashes, report
from .assignments import _call, _first_problem, _need_function, _NotYet

__all__ = [
    "BASE",
    "BASE_RESOLUTION",
    "BUDGET",
    "BUDGET_FLOOR",
    "DIRECTIONS",
    "HELD_OUT_FRACTION",
    "REFERENCE_RECIPE",
    "TOLERANCE",
    "check_single_dimension",
    "check_compound",
    "check_final_budget",
    "check_final_model",
    "digits_task",
    "hidden_cases",
    "reference_run",
]

#: Digits are 8x8 pixels; the project's base model sees them upsampled twice, at 16x16.
BASE_RESOLUTION = 16
#: The base model: chapter 7's B0 with width and depth coefficients 0.25
#: (:data:`~effnet_tutorial.train.DEFAULT_MODEL`), at 16 pixels, one input channel and ten
#: classes. Scale it with ``BASE.with_options(depth_coefficient=..., width_coefficient=...,
#: resolution=...)``; its own coefficients are the starting point (depth 0.25 is "d = 1").
BASE = parse_model_spec(DEFAULT_MODEL).with_options(
    resolution=BASE_RESOLUTION, num_classes=10, in_channels=1)
#: The budget: this many times the base model's multiply-adds, of which at least
#: ``BUDGET_FLOOR`` must be used (design choices of the assignment, not results: at 2.5
#: times, each of the four directions can use more than 85 % of it, see
#: ``_reference_scaling``, and the largest model trains in seconds on one CPU core).
BUDGET = 2.5
BUDGET_FLOOR = 0.8
#: The four ways to spend the budget: one dimension alone (Fig. 3 of the paper) or all
#: three with one compound coefficient (§3.3, Eq. 3).
DIRECTIONS = ("depth", "width", "resolution", "compound")
#: The share of the digits that the final test holds out (stratified by class).
HELD_OUT_FRACTION = 0.3
#: How the reference run trains (the package's ``fit``: SGD with Nesterov momentum,
#: warm-up and cosine decay, label smoothing 0.1): ``lr`` per 256 images, as
#: ``python -m effnet_tutorial.train --lr`` (its default); no augmentation; one CPU thread.
REFERENCE_RECIPE = {"epochs": 6, "batch_size": 64, "lr": 0.4, "weight_decay": 5e-5}
#: A model passes the final test when its held-out accuracy is at least the reference
#: run's minus this (0.05: five points). tests/test_classroom_a5.py measures the
#: reference run's seed-to-seed spread on a held-out split and checks that this covers
#: three standard deviations of the difference of two runs.
TOLERANCE = 0.05


# ======================================================================================
# Scaling the base model
# ======================================================================================
def _base_macs() -> int:
    return count_flops(BASE)


def _scaled(direction: str, amount: float) -> ModelConfig:
    """BASE scaled along ``direction`` by ``amount``: a multiplier of the base's depth or
    width coefficient, an image size in pixels, or the compound coefficient phi."""
    if direction == "depth":
        return BASE.with_options(depth_coefficient=BASE.depth_coefficient * amount)
    if direction == "width":
        return BASE.with_options(width_coefficient=BASE.width_coefficient * amount)
    if direction == "resolution":
        return BASE.with_options(resolution=int(amount))
    c = compound_coefficients(amount, base_resolution=BASE_RESOLUTION)
    return BASE.with_options(depth_coefficient=BASE.depth_coefficient * c["depth"],
                             width_coefficient=BASE.width_coefficient * c["width"],
                             resolution=round(c["resolution"]))


def _reference_scaling(direction: str, budget: float = BUDGET) -> ModelConfig:
    """The largest model along ``direction`` whose multiply-adds fit ``budget`` times the
    base's: bisection on the multiplier (or phi), a scan of whole pixels for resolution
    (the multiply-adds grow monotonically with each)."""
    limit = budget * _base_macs()
    if direction == "resolution":
        size = BASE_RESOLUTION
        while count_flops(_scaled("resolution", size + 1)) <= limit:
            size += 1
        return _scaled("resolution", size)
    lo, hi = (0.0, 8.0) if direction == "compound" else (1.0, 64.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count_flops(_scaled(direction, mid)) <= limit else (lo, mid)
    return _scaled(direction, lo)


def _need_config(config, what: str) -> ModelConfig:
    if not isinstance(config, ModelConfig):
        raise _NotYet(what, "return a ModelConfig: BASE.with_options(depth_coefficient=..., "
                      f"width_coefficient=..., resolution=...), not {type(config).__name__}")
    unchanged = config.with_options(depth_coefficient=BASE.depth_coefficient,
                                    width_coefficient=BASE.width_coefficient,
                                    resolution=BASE.resolution)
    if unchanged != BASE:
        changed = [f for f in ("blocks", "num_classes", "in_channels", "dropout_rate",
                               "drop_path_rate", "bn_momentum", "head_channels")
                   if getattr(unchanged, f) != getattr(BASE, f)]
        raise _NotYet(what, "start from BASE and change only depth_coefficient, "
                      "width_coefficient and resolution (BASE.with_options(...)); changed: "
                      f"{', '.join(changed) or 'other fields'}")
    return config


def _budget_problem(config: ModelConfig, budget: float, floor: float | None, what: str) -> None:
    macs, base = count_flops(config), _base_macs()
    limit = budget * base
    share = macs / limit
    said = f"{what} needs {macs:,} multiply-adds ({macs / base:.2f} x the base)"
    if macs > limit:
        raise _NotYet(f"{said}, {share - 1:.1%} over the budget of {limit:,.0f}",
                      "multiply-adds grow about as d * w^2 * r^2; shrink it and count again with "
                      "count_flops(config) (rounding makes the estimate inexact)")
    if floor is not None and share < floor:
        raise _NotYet(f"{said}, only {share:.1%} of the budget of {limit:,.0f}",
                      f"use at least {floor:.0%} of it: take the largest model of this direction "
                      "that fits (search the coefficient, counting each candidate)")


def _check_direction(config: ModelConfig, direction: str) -> None:
    ratio = {"depth": config.depth_coefficient / BASE.depth_coefficient,
             "width": config.width_coefficient / BASE.width_coefficient,
             "resolution": config.resolution / BASE_RESOLUTION}
    what = f"scale_to_budget({direction!r}, ...)"
    if direction != "compound":
        others = [k for k, v in ratio.items() if k != direction and v != 1]
        if others:
            raise _NotYet(f"{what} changes {' and '.join(others)} too",
                          f"scale {direction} only: keep BASE's {' and '.join(others)}")
        if ratio[direction] <= 1:
            raise _NotYet(f"{what} does not scale {direction} up",
                          f"a larger {direction} than BASE's (BASE has depth coefficient "
                          f"{BASE.depth_coefficient}, width coefficient {BASE.width_coefficient} "
                          f"and {BASE_RESOLUTION} pixels)")
        return
    if not all(v > 1 for v in ratio.values()):
        raise _NotYet(f"{what} does not scale all three dimensions up",
                      "compound scaling grows depth, width and resolution together (§3.3, Eq. 3)")
    unit = compound_coefficients(1)
    phi = math.log(ratio["depth"]) / math.log(unit["depth"])
    rule = compound_coefficients(phi, base_resolution=BASE_RESOLUTION)
    if math.isclose(ratio["width"], rule["width"], rel_tol=1e-3) \
            and abs(config.resolution - rule["resolution"]) <= 1:
        return
    absolute = math.log(config.depth_coefficient) / math.log(unit["depth"])
    if absolute > 0 and math.isclose(config.width_coefficient, unit["width"] ** absolute, rel_tol=1e-3):
        hint = ("the coefficients are relative to BASE's: multiply BASE's depth and width "
                "coefficients by alpha^phi and beta^phi")
    else:
        hint = ("one phi for all three: depth, width and image size are BASE's times alpha^phi, "
                "beta^phi and gamma^phi (compound_coefficients(phi, "
                f"base_resolution={BASE_RESOLUTION}) gives the factors and the image size)")
    raise _NotYet(f"{what}: depth x{ratio['depth']:.3f} means phi = {phi:.3f}, which gives "
                  f"width x{rule['width']:.3f} and {rule['resolution']:.1f} pixels; got width "
                  f"x{ratio['width']:.3f} and {config.resolution} pixels", hint)


def _check_scaling(fn, directions, budget: float) -> str:
    _need_function(fn, "scale_to_budget(direction, budget)")
    shown = []
    for direction in directions:
        config = _call(fn, direction, budget)
        what = f"scale_to_budget({direction!r}, {budget:g})"
        _need_config(config, what)
        _check_direction(config, direction)
        _budget_problem(config, budget, BUDGET_FLOOR, what)
        shown.append(f"{direction} {count_flops(config) / (budget * _base_macs()):.0%}")
    return ", ".join(shown)


@never_crashes
@_first_problem
def check_single_dimension(fn, budget: float = BUDGET) -> bool:
    """``fn(direction, budget)`` for ``"depth"``, ``"width"`` and ``"resolution"``: BASE
    scaled along that dimension alone (EfficientNet §3.2, Fig. 3), within ``budget`` times
    BASE's multiply-adds and using at least :data:`BUDGET_FLOOR` of them.

    Shape: a function (str, float) -> ModelConfig -> bool.
    """
    shares = _check_scaling(fn, DIRECTIONS[:3], budget)
    return report(True, f"depth, width and resolution alone within {budget:g} x the base's "
                  f"multiply-adds (share of the budget used: {shares})")


@never_crashes
@_first_problem
def check_compound(fn, budget: float = BUDGET) -> bool:
    """``fn("compound", budget)``: BASE scaled by one compound coefficient phi (EfficientNet
    §3.3, Eq. 3, with the alpha, beta, gamma of §4), within ``budget`` times BASE's
    multiply-adds and using at least :data:`BUDGET_FLOOR` of them.

    Shape: a function (str, float) -> ModelConfig -> bool.
    """
    share = _check_scaling(fn, ("compound",), budget)
    return report(True, f"compound scaling within {budget:g} x the base's multiply-adds "
                  f"(share of the budget used: {share.split()[-1]})")


@never_crashes
@_first_problem
def check_final_budget(config, budget: float = BUDGET) -> bool:
    """The final model's config: BASE with other depth, width and resolution, within
    ``budget`` times BASE's multiply-adds (counted with ``count_flops``, the paper's
    "FLOPS" of §3.3).

    Shape: ModelConfig -> bool.
    """
    _need_config(config, "the final config")
    _budget_problem(config, budget, None, "the final config")
    macs = count_flops(config)
    return report(True, f"the final config needs {macs:,} multiply-adds, {macs / _base_macs():.2f} x "
                  f"the base (budget {budget:g} x)")


# ======================================================================================
# The data: the public split, or a held-out split drawn from the secret seed
# ======================================================================================
def _all_digits() -> ImageData:
    train, val = load_digits(seed=0)
    return ImageData(torch.cat([train.images, val.images]), torch.cat([train.labels, val.labels]),
                     train.classes, "digits")


def digits_task(split: dict | None = None) -> tuple[ImageData, ImageData]:
    """(training images, held-out images) of the project. ``None``: the public split of
    chapter 7 (``load_digits(seed=0)``: 1,437 and 360 images). A hidden case of
    :func:`hidden_cases` (``{"seed", "turn", "transpose", "labels"}``): a stratified
    :data:`HELD_OUT_FRACTION` of the 1,797 digits held out by ``seed``, every image turned
    by ``turn`` quarter turns and transposed if ``transpose``, and label ``i`` renamed
    ``labels[i]``.

    Shape: -> two ImageData, images (N, 1, 8, 8) uint8.
    """
    if split is None:
        return load_digits(seed=0)
    data = _all_digits()
    g = torch.Generator().manual_seed(int(split["seed"]))
    held = []
    for c in range(data.num_classes):
        idx = torch.nonzero(data.labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        held.append(idx[:round(HELD_OUT_FRACTION * len(idx))])
    mask = torch.zeros(len(data), dtype=torch.bool)
    mask[torch.cat(held)] = True
    images = torch.rot90(data.images, int(split["turn"]), dims=(2, 3))
    if split["transpose"]:
        images = images.transpose(2, 3)
    perm = torch.tensor(split["labels"])
    labels = perm[data.labels]
    classes = [""] * data.num_classes
    for old, new in enumerate(split["labels"]):
        classes[new] = data.classes[old]
    disguised = ImageData(images.contiguous(), labels, tuple(classes), "digits")
    return disguised.subset(torch.nonzero(~mask).flatten()), disguised.subset(torch.nonzero(mask).flatten())


# ======================================================================================
# Training: the reference run, and the learner's model
# ======================================================================================
#: The package's code that the final test trains and measures with. The test cells load
#: this module afresh, but not these: a notebook that replaced one of them (in a way the
#: static scan of its cells did not see) could change the reference run or the measurement.
_GENUINE = {
    "effnet_tutorial.train": ("fit", "evaluate", "predict", "train_epoch", "lr_schedule",
                              "epoch_plan", "scaled_lr", "preprocess", "resize", "normalize",
                              "EfficientNet"),
    "effnet_tutorial.data": ("preprocess", "resize", "normalize", "channel_stats", "load_digits"),
    "effnet_tutorial.inspection": ("count_flops",),
    "effnet_tutorial.model": ("EfficientNet",),
}
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _need_genuine() -> None:
    """The final test's tools are the package's own: their code lives in the package's files."""
    for module_name, names in _GENUINE.items():
        module = sys.modules.get(module_name)
        for name in names:
            obj = getattr(module, name, None)
            target = getattr(obj, "forward", None) if isinstance(obj, type) else obj
            code = getattr(inspect.unwrap(target), "__code__", None) if callable(target) else None
            if code is None or not os.path.abspath(code.co_filename).startswith(_PACKAGE):
                raise _NotYet(f"{_checkers.NOT_ALLOWED}{module_name}.{name} is no longer the "
                              "package's own: the notebook replaced it",
                              "the final test trains and measures with the package's code; leave "
                              "it as it is. The test scores 0 and your submission is flagged for "
                              "your instructor")


def _reference_train(config: ModelConfig, train_set: ImageData, seed: int) -> nn.Module:
    """``config`` trained on ``train_set`` with the package's ``fit`` and
    :data:`REFERENCE_RECIPE`, at ``config.resolution``."""
    from ..model import EfficientNet
    from ..train import epoch_plan, scaled_lr

    torch.manual_seed(seed)
    model = EfficientNet(config)
    mean, std = channel_stats(train_set)
    r = REFERENCE_RECIPE
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a model this small trains fastest on one thread (chapter 7)
    try:
        fit(model, train_set, train_set.subset(range(0, len(train_set), 20)),
            epoch_plan(r["epochs"], config.resolution, dropout=config.dropout_rate),
            batch_size=r["batch_size"], lr=scaled_lr(r["lr"], r["batch_size"]), mean=mean,
            std=std, weight_decay=r["weight_decay"], seed=seed, progress=False, log=None)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def reference_run(train_set: ImageData, test_set: ImageData, seed: int = 0,
                  budget: float = BUDGET) -> float:
    """The accuracy on ``test_set`` of the reference model of the budget (BASE scaled by
    the compound rule to the largest phi that fits ``budget``) trained on ``train_set``
    with :data:`REFERENCE_RECIPE` and ``seed``: what the final test compares with (compound
    scaling: EfficientNet §3.3, Eq. 3, with the alpha, beta, gamma of §4).

    Shape: -> float in [0, 1].
    """
    config = _reference_scaling("compound", budget)
    model = _reference_train(config, train_set, seed)
    return evaluate(model, test_set, config.resolution, *channel_stats(train_set))


@contextlib.contextmanager
def _forbidding(*references):
    """While the learner's training runs, the data set's loaders are forbidden too: the
    learner's function trains on the images it is given."""
    saved = _checkers._forbidden
    _checkers._forbidden = tuple(saved) + references
    try:
        yield
    finally:
        _checkers._forbidden = saved


def _loaders() -> tuple:
    found = [load_digits, load_dataset, load_cifar10]
    with contextlib.suppress(ImportError):
        from sklearn.datasets import load_digits as sklearn_digits

        found.append(inspect.unwrap(sklearn_digits))
    return tuple(found)


def _trained(train_model, config: ModelConfig, train_set: ImageData, seed: int) -> nn.Module:
    """The learner's ``train_model(config, train_set, seed)``, watched: it may not run
    this folder's code nor load a data set; its exceptions become verdicts."""
    shown = f"train_model(config, train_set, {seed})"
    try:
        with _forbidding(*_loaders()):
            model = _checkers._watched(train_model, config, train_set, seed, what=shown)
    except _NotYet as no:
        if any(f".{name}" in no.what for name in ("load_digits", "load_dataset", "load_cifar10")):
            raise _NotYet(no.what, "train on the train_set you are given: the held-out digits "
                          "must stay unseen; the test scores 0 and your submission is flagged "
                          "for your instructor") from None
        raise
    except NotImplementedError:
        raise _NotYet(f"{shown} is not written yet",
                      "replace `raise NotImplementedError()` by your code") from None
    except Exception as exc:   # the learner's training may raise anything
        raise _NotYet(f"{shown} raised {type(exc).__name__}: {exc}".splitlines()[0],
                      "run it yourself on the digits and read the error") from None
    if not isinstance(model, nn.Module):
        raise _NotYet(f"{shown} returned {type(model).__name__}",
                      "return the trained model (an nn.Module), e.g. the EfficientNet you trained")
    return model


@never_crashes
@_first_problem
def check_final_model(config, train_model, budget: float = BUDGET, split: dict | None = None,
                      seed: int = 0) -> bool:
    """The project's final test: ``train_model(config, train_set, seed)`` trains a model
    of ``config`` on the training part of the digits (:func:`digits_task` of ``split``);
    its multiply-adds at ``config.resolution`` must fit ``budget`` times BASE's, and its
    accuracy on the held-out part must be at least the :func:`reference_run`'s minus
    :data:`TOLERANCE`. The model is evaluated as the package's ``evaluate`` does:
    images resized to ``config.resolution`` and normalised with the training part's
    ``channel_stats``.

    Shape: (ModelConfig, function) -> bool.
    """
    _need_config(config, "the final config")
    _budget_problem(config, budget, None, "the final config")
    _need_function(train_model, "train_model(config, train_set, seed)")
    _need_genuine()
    train_set, test_set = digits_task(split)
    model = _trained(train_model, config, train_set, seed)
    _need_genuine()   # train_model may have replaced them too
    size = config.resolution
    try:
        model = model.cpu()   # trained on a GPU, perhaps: the grader measures on the CPU
        macs = count_flops(model, (1, train_set.in_channels, size, size))
        accuracy = evaluate(model, test_set, size, *channel_stats(train_set))
    except Exception as exc:   # the learner's model may not run on these images
        raise _NotYet(f"the model that train_model returned could not classify {size}x{size} "
                      f"digits ({type(exc).__name__}: {exc})".splitlines()[0],
                      "build it from config (EfficientNet(config)): one input channel, ten "
                      "classes") from None
    limit = budget * _base_macs()
    if macs > limit:
        raise _NotYet(f"the trained model needs {macs:,} multiply-adds at {size}x{size}, over "
                      f"the budget of {limit:,.0f}",
                      "train the model of your final config, not a larger one")
    reference = reference_run(train_set, test_set, seed, budget)
    what = (f"held-out accuracy {accuracy:.1%} on {len(test_set)} digits "
            f"(reference run {reference:.1%}, tolerance {TOLERANCE * 100:g} points)")
    if accuracy >= reference - TOLERANCE:
        return report(True, what)
    if accuracy <= 1.5 / test_set.num_classes:
        hint = ("that is chance level: the model did not learn. Check that train_model trains "
                "the model it returns (optimizer steps on its parameters, enough epochs) and "
                "returns it trained")
    else:
        hint = ("train longer or with another learning rate; compare your recipe with "
                f"REFERENCE_RECIPE ({REFERENCE_RECIPE})")
    raise _NotYet(what, hint)


# ======================================================================================
# Hidden cases, drawn at grading time from the instructor's secret seed
# ======================================================================================
def _feasible_budget(rng: random.Random) -> float:
    """A budget from 1.9 to 2.5 times the base at which every direction can use 85 % or
    more of it (below 1.9, depth alone cannot; above 2.5, resolution or compound scaling,
    whose cost jumps when the last feature maps grow)."""
    base = _base_macs()
    while True:
        budget = round(rng.uniform(1.9, 2.5), 2)
        if all(count_flops(_reference_scaling(d, budget)) >= 0.85 * budget * base
               for d in DIRECTIONS):
            return budget


def _draw_split(rng: random.Random) -> dict:
    turn, transpose = rng.choice([(t, f) for t in range(4) for f in (False, True) if t or f])
    labels = list(range(10))
    rng.shuffle(labels)
    return {"seed": rng.randrange(2**31), "turn": turn, "transpose": transpose, "labels": labels}


_DRAWS: dict[str, Callable[[random.Random], object]] = {
    "budgets": lambda rng: [_feasible_budget(rng) for _ in range(2)],
    "final_split": lambda rng: [_draw_split(rng)],
}


def hidden_cases(name: str):
    """The cases of an assignment 5 hidden test, drawn from the instructor's secret seed
    (as :func:`~effnet_tutorial.exercises.assignments.hidden_cases` does for assignments
    1-4): ``"budgets"``, two budgets for the scaling tests; ``"final_split"``, one
    held-out split for :func:`check_final_model`. Without a seed, fresh cases.

    Shape: name -> list of cases.
    """
    if name not in _DRAWS:
        raise ValueError(f"hidden_cases: no cases named {name!r}; expected one of {sorted(_DRAWS)}")
    seed = os.environ.get(_checkers.SEED_VARIABLE) or str(random.SystemRandom().getrandbits(128))
    return _DRAWS[name](random.Random(f"{seed}:a5:{name}"))
