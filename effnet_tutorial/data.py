r"""Data for the training chapters: scikit-learn's digits (offline) and CIFAR-10 (online).

Images are kept as whole ``uint8`` tensors in memory, at their native size, and the
transformations work on a *batch*: resize to the image size of the current training
stage, augment (:class:`RandAugment`, an adapter around torchvision's, which draws the
operations of every image separately; :func:`mixup`), normalise.

Sources: digits is ``sklearn.datasets.load_digits`` (1,797 greyscale images of 8x8
pixels with values 0-16, the test part of the UCI "Optical Recognition of Handwritten
Digits" data set), shipped inside scikit-learn. CIFAR-10 (Krizhevsky 2009) comes through
``torchvision.datasets.CIFAR10``, which downloads it once.
"""
from __future__ import annotations

import functools
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["DATASETS", "DEFAULT_IMAGE_SIZE", "MAX_MIXUP_ALPHA", "DatasetUnavailableError", "ImageData",
           "RandAugment",
           "channel_stats", "load_cifar10", "load_dataset", "load_digits", "mixup", "normalize",
           "parse_classes", "preprocess", "resize"]

#: The data sets ``python -m effnet_tutorial.train --data`` knows.
DATASETS = ("digits", "cifar10")
#: Training image size when none is asked for: digits' 8x8 pixels upsampled 4 times,
#: CIFAR-10 at its own 32x32.
DEFAULT_IMAGE_SIZE = {"digits": 32, "cifar10": 32}
#: The largest mixup alpha :func:`mixup` accepts. lambda ~ Beta(alpha, alpha) has the standard
#: deviation 1 / (2 sqrt(2 alpha + 1)), 0.011 at alpha = 1000: every batch is already an even
#: blend, so larger values change nothing (and near the float limit the Beta sampler of the
#: standard library never returns).
MAX_MIXUP_ALPHA = 1000.0


class DatasetUnavailableError(RuntimeError):
    """A data set could not be loaded (e.g. CIFAR-10 offline); says what to do."""


@dataclass
class ImageData(torch.utils.data.Dataset):
    """Images and labels held as tensors, for batched transforms.

    ``images``: ``uint8`` of shape (N, C, H, W) at native size; ``labels``: ``int64``
    of shape (N,) with values ``0 ... len(classes) - 1``; ``classes``: one name per label.
    ``__getitems__`` returns whole batches, so a DataLoader makes one tensor per batch
    instead of stacking N single images.

    Shape: item i -> ((C, H, W) uint8, int); batch of indices -> ((B, C, H, W), (B,)).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor of shape (N, C, H, W), got "
                             f"{self.images.dtype} {list(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},), "
                             f"got {list(self.labels.shape)}")
        self.labels = self.labels.long()
        self.classes = tuple(self.classes)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.labels[idx]   # (B, C, H, W) uint8, (B,)

    @property
    def num_classes(self) -> int:
        """Number of classes. Shape: -> int."""
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        """Channels of the images (C). Shape: -> int."""
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        """Native side length in pixels (8 for digits, 32 for CIFAR-10). Shape: -> int."""
        return self.images.shape[-1]

    def subset(self, indices) -> ImageData:
        """The images at ``indices`` (same classes). Shape: -> ImageData of len(indices)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageData(self.images[idx], self.labels[idx], self.classes, self.name)

    def class_counts(self) -> list[int]:
        """Number of images of each class, in label order. Shape: -> list of num_classes ints."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()


def parse_classes(text: str | Sequence[int] | None,
                  num_classes: int = 10) -> tuple[int, ...] | None:
    """``"0-4"`` -> (0, 1, 2, 3, 4); ``"5,7,9"`` -> (5, 7, 9); None -> None (all classes).

    Shape: str -> tuple of distinct ints in ``[0, num_classes)``, at least two.
    """
    if text is None:
        return None
    labels = f"labels run from 0 to {num_classes - 1}"
    if isinstance(text, str):
        values: list[int] = []
        for part in text.replace(" ", "").split(","):
            lo, sep, hi = part.partition("-")
            if not (lo.isascii() and lo.isdigit() and (not sep or (hi.isascii() and hi.isdigit()))):
                raise ValueError(f"cannot read classes {_short(text)}: expected a range like '0-4' "
                                 "or a list like '5,7,9'")
            # Bounds first, on the digits: a range is expanded only once it is known to be small.
            for end in (lo, hi) if sep else (lo,):
                if len(end.lstrip("0")) > len(str(num_classes)) or int(end) >= num_classes:
                    raise ValueError(f"class {_short(end, 12, quote=False)} in {_short(text)} does "
                                     f"not exist: {labels}")
            if sep and int(lo) > int(hi):
                raise ValueError(f"classes {part!r}: a range goes from the smaller label to the "
                                 f"larger, e.g. '{hi}-{lo}'")
            values += range(int(lo), int(hi) + 1) if sep else [int(lo)]
    else:
        values = list(text)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"classes must be ints, got {_short(text)}")
    if len(set(values)) != len(values) or len(values) < 2:
        raise ValueError(f"classes must name at least two different labels, got {_short(text)}")
    bad = [v for v in values if not 0 <= v < num_classes]
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"classes {shown} do not exist: {labels}")
    return tuple(values)


def _short(value, limit: int = 40, quote: bool = True) -> str:
    """repr of ``value`` (or its str), cut to ``limit`` characters: messages stay short."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _select(images, labels, names, classes):
    """Keep ``classes`` (relabelled 0 ... k-1 in the given order)."""
    if classes is not None:
        keep = torch.isin(labels, torch.tensor(classes))
        images, labels = images[keep], labels[keep]
        remap = torch.full((max(classes) + 1,), -1, dtype=torch.long)
        remap[torch.tensor(classes)] = torch.arange(len(classes))
        labels = remap[labels]
        names = tuple(names[c] for c in classes)
    return images, labels, names


def _per_class(data: ImageData, k: int, seed: int) -> ImageData:
    """The first ``k`` images of each class after a seeded shuffle."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=g)
    keep = torch.cat([order[data.labels[order] == c][:k] for c in range(data.num_classes)])
    return data.subset(keep.sort().values)


def load_digits(classes=None, val_fraction: float = 0.2, seed: int = 0,
                train_per_class: int | None = None) -> tuple[ImageData, ImageData]:
    """scikit-learn's digits as (train, validation), split stratified by class.

    ``classes``: e.g. ``"0-4"`` or ``(5, 6, 7, 8, 9)`` keeps those digits, relabelled
    0 ... k-1 (the class names stay the digits). ``train_per_class``: keep only this
    many training images of each class (few-shot fine-tuning); the validation split is
    not reduced. Pixel values 0-16 become 0-255.

    Shape: -> two ImageData with images (N, 1, 8, 8) uint8.
    """
    try:
        from sklearn.datasets import load_digits as sk_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise DatasetUnavailableError("the digits data set ships with scikit-learn: "
                                      "pip install scikit-learn") from exc
    if not (isinstance(val_fraction, float) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must be a float in (0, 1), got {val_fraction!r}")
    classes = parse_classes(classes, 10)
    raw = sk_digits()
    # 0-16 -> 0-255, rounded: the uint8 pipeline is the one every data set uses.
    images = torch.tensor(raw.images * (255 / 16)).round().to(torch.uint8)[:, None]  # (N, 1, 8, 8)
    labels = torch.tensor(raw.target, dtype=torch.long)
    names = tuple(str(c) for c in range(10))
    images, labels, names = _select(images, labels, names, classes)
    train_idx, val_idx = train_test_split(torch.arange(len(labels)).numpy(), test_size=val_fraction,
                                          random_state=seed, stratify=labels.numpy())
    train = ImageData(images[train_idx], labels[train_idx], names, "digits")
    val = ImageData(images[val_idx], labels[val_idx], names, "digits")
    if train_per_class is not None:
        if isinstance(train_per_class, bool) or not isinstance(train_per_class, int) \
                or train_per_class < 1:
            raise ValueError(f"train_per_class must be a positive int, got {train_per_class!r}")
        train = _per_class(train, train_per_class, seed)
    return train, val


def load_cifar10(root: str | os.PathLike | None = None, download: bool = True,
                 classes=None, train_per_class: int | None = None, seed: int = 0
                 ) -> tuple[ImageData, ImageData]:
    """CIFAR-10 through torchvision, as (train: 50,000 images, test: 10,000 images).

    Downloads about 170 MB into ``root`` (default ``~/.cache/effnet_tutorial/cifar10``)
    the first time; raises :class:`DatasetUnavailableError` with what to do when that
    fails (offline).

    Shape: -> two ImageData with images (N, 3, 32, 32) uint8.
    """
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as exc:
        raise DatasetUnavailableError("CIFAR-10 is loaded through torchvision: "
                                      "pip install torchvision") from exc
    root = os.path.expanduser(os.fspath(root) if root is not None
                              else os.path.join("~", ".cache", "effnet_tutorial", "cifar10"))
    parts = []
    for train in (True, False):
        try:
            ds = CIFAR10(root, train=train, download=download)
        except (OSError, RuntimeError) as exc:   # URLError is an OSError; a missing file without
            raise DatasetUnavailableError(       # download is a RuntimeError
                f"could not load CIFAR-10 into {root} ({type(exc).__name__}: {exc}). It is "
                f"downloaded the first time (about 170 MB): run this on a machine that is "
                f"online, or copy the extracted 'cifar-10-batches-py' folder into {root}; offline, "
                f"train on the digits instead (--data digits)") from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()   # (N, 3, 32, 32)
        labels = torch.tensor(ds.targets, dtype=torch.long)
        parts.append(_select(images, labels, tuple(ds.classes), parse_classes(classes, 10)))
    train = ImageData(*parts[0], "cifar10")
    if train_per_class is not None:
        train = _per_class(train, train_per_class, seed)
    return train, ImageData(*parts[1], "cifar10")


def load_dataset(name: str, **kwargs) -> tuple[ImageData, ImageData]:
    """``load_digits`` or ``load_cifar10`` by name (``DATASETS``).

    Shape: name -> (train, validation) ImageData.
    """
    if name == "digits":
        kwargs.pop("root", None)
        return load_digits(**kwargs)
    if name == "cifar10":
        return load_cifar10(**kwargs)
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def channel_stats(data: ImageData) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of the pixels in [0, 1], for normalisation
    (computed from the training split, never from validation), rounded to 4 decimals (a
    standard deviation below 0.00005 to 4 significant digits, never to 0). A constant
    channel (standard deviation 0) raises ValueError naming it.

    Shape: ImageData (N, C, H, W) -> (C means, C stds).
    """
    x = data.images.double() / 255                     # (N, C, H, W)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    for c, (m, s) in enumerate(zip(mean.tolist(), std.tolist())):
        if not s > 0:
            raise ValueError(f"channel {c} of the {data.name or 'training'} images is constant "
                             f"(every pixel {m:.4g}): its standard deviation is 0, so it cannot be "
                             "normalised; drop the channel or give mean and std yourself")
    # 4 decimals, as printed; a tiny std keeps 4 significant digits instead of rounding to 0.
    return (tuple(round(float(m), 4) for m in mean),
            tuple(round(s, 4) if round(s, 4) > 0 else float(f"{s:.4g}") for s in std.tolist()))


def preprocess(images: torch.Tensor, image_size: int, mean: Sequence[float],
               std: Sequence[float], mode: str = "bilinear") -> torch.Tensor:
    """uint8 batch -> float batch of the training size, normalised.

    Pixels are scaled to [0, 1] and resized to ``image_size`` (``mode``
    of ``F.interpolate``; antialiased when shrinking), then
    ``(x - mean) / std`` per channel.

    Shape: (B, C, H, W) uint8 -> (B, C, image_size, image_size) float32.
    """
    x = resize(images.float() / 255, image_size, mode)   # (B, C, S, S)
    return normalize(x, mean, std)


def resize(x: torch.Tensor, image_size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize a float batch to ``image_size`` x ``image_size``.

    Shape: (B, C, H, W) -> (B, C, S, S).
    """
    if x.shape[-1] == image_size and x.shape[-2] == image_size:
        return x
    smooth = mode in ("bilinear", "bicubic")
    shrink = image_size < min(x.shape[-2:])
    return F.interpolate(x, size=(image_size, image_size), mode=mode,
                         align_corners=False if smooth else None, antialias=smooth and shrink)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel; every std must be a positive number.

    Shape: (B, C, H, W) -> same."""
    for c, s in enumerate(std):
        if not float(s) > 0 or not math.isfinite(float(s)):
            raise ValueError(f"std of channel {c} must be a positive finite number (it divides the "
                             f"pixels), got {float(s)!r}")
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


class RandAugment:
    r"""RandAugment (Cubuk et al. 2020): a thin adapter around torchvision's
    ``torchvision.transforms.v2.RandAugment`` for training batches.

    Every image of the batch gets its own ``num_ops`` operations, drawn uniformly from
    torchvision's 14 (identity, shear x/y, translate x/y, rotate, brightness, colour,
    contrast, sharpness, posterize, solarize, autocontrast, equalize), all at the same
    ``magnitude``, each signed operation with a random sign; geometric operations take
    the nearest pixel (torchvision's default). What the adapter adds:

    - **The official scale.** ``magnitude`` is a level of the official code
      (tensorflow/tpu ``autoaugment.py``, ``_MAX_LEVEL = 10``), the scale of EfficientNetV2's
      Table 6 (magnitudes 5-15). torchvision splits each operation's range into
      ``num_magnitude_bins = 31`` bins, 0 ... 30, so level ``m`` is bin ``3 m``
      (:attr:`BINS_PER_LEVEL`; fractional levels are rounded to the nearest bin, a third
      of a level). At level 10 a rotation is 30 degrees and a shear 0.3, as in the official
      code. Differences from it: translation reaches 150/331 of the image side (0.453;
      officially 100 pixels of 224, 0.446), truncated to whole pixels; brightness, colour,
      contrast and sharpness use the factor 1 +- 0.9 m / 10 (officially 0.1 + 1.8 m / 10,
      unsigned); solarize's threshold falls with the level (officially it rises);
      empty pixels are 0 (officially grey 128); every drawn operation is applied
      (officially each with a random probability of 0.2-0.8); the official list has
      invert, cutout and solarize-add instead of identity. Levels above 10 (Table 6's
      15 for V2-S) are beyond torchvision's scale and are refused.
    - **Magnitude 0 or ``num_ops`` 0 returns the batch unchanged.** (torchvision's bin 0
      would still apply autocontrast, equalize and solarize at threshold 1.)
    - **Per-image draws, reproducible from ``generator``, the same on every device.**
      torchvision draws from the global torch RNG; the adapter forks that RNG
      (``torch.random.fork_rng``), seeds it from ``generator`` and augments each image on
      the CPU, so the caller's global RNG is left untouched and a seeded generator gives
      the same images on CPU and CUDA.

    Shape: (B, C, H, W) float in [0, 1], C = 1 or 3 -> same (same dtype and device).
    """

    #: torchvision's bins; bin ``BINS_PER_LEVEL * m`` is the official level ``m``.
    NUM_MAGNITUDE_BINS = 31
    MAX_LEVEL = 10
    BINS_PER_LEVEL = (NUM_MAGNITUDE_BINS - 1) // MAX_LEVEL

    def __init__(self, num_ops: int = 2, magnitude: float = 9.0):
        if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f"num_ops must be an int >= 0, got {num_ops!r}")
        if isinstance(magnitude, bool) or not isinstance(magnitude, (int, float)) or not (
                0 <= magnitude <= self.MAX_LEVEL):
            raise ValueError(f"magnitude must be a number in [0, {self.MAX_LEVEL}] (the official "
                             f"level scale; torchvision's bins end at level {self.MAX_LEVEL}), "
                             f"got {magnitude!r}")
        self.num_ops, self.magnitude = num_ops, float(magnitude)
        #: torchvision's magnitude: the bin of the level.
        self.bin = round(self.magnitude * self.BINS_PER_LEVEL)

    @functools.cached_property
    def transform(self):
        """The torchvision transform, built when first needed (importing torchvision takes
        seconds, which runs without augmentation need not pay). Shape: (C, H, W) -> same."""
        from torchvision.transforms import v2

        return v2.RandAugment(self.num_ops, self.bin, num_magnitude_bins=self.NUM_MAGNITUDE_BINS)

    def __repr__(self) -> str:
        return f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude:g})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment every image of the batch with its own ops, drawn from ``generator``
        (a CPU generator; None: the global RNG).

        Shape: (B, C, H, W) -> same.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3) \
                or not x.is_floating_point():
            got = (f"{x.dtype} {list(x.shape)}" if isinstance(x, torch.Tensor)
                   else type(x).__name__)
            raise ValueError(f"RandAugment expects a float batch (B, C, H, W) with C = 1 or 3, "
                             f"got {got}")
        if self.num_ops == 0 or self.bin == 0:
            return x
        images = x.detach().cpu()                                   # (B, C, H, W)
        if images.numel() and not (0 <= float(images.min()) and float(images.max()) <= 1):
            raise ValueError(f"RandAugment expects pixels in [0, 1], got values from "
                             f"{float(images.min()):g} to {float(images.max()):g}")
        seed = int(torch.randint(2 ** 62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):                     # torchvision's RNG: seeded
            torch.manual_seed(seed)
            out = torch.stack([self.transform(img) for img in images]) if len(images) \
                else images                                         # (B, C, H, W)
        return out.to(x.device)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator | None = None):
    r"""mixup (Zhang et al. 2018): blend the batch with a shuffled copy of itself.

    :math:`\tilde x = \lambda x + (1 - \lambda) x_\pi`, :math:`\lambda \sim \text{Beta}(\alpha,
    \alpha)`, one :math:`\lambda` per batch; the loss is
    :math:`\lambda\,\ell(\tilde x, y) + (1 - \lambda)\,\ell(\tilde x, y_\pi)`.
    ``alpha == 0`` returns the batch unchanged with :math:`\lambda = 1`. ``alpha`` must be a
    number from 0 to :data:`MAX_MIXUP_ALPHA`.

    Shape: (B, ...), (B,) -> (mixed (B, ...), y (B,), y_pi (B,), lambda float).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (
            0 <= alpha <= MAX_MIXUP_ALPHA):
        raise ValueError(f"mixup alpha must be a number from 0 (off) to {MAX_MIXUP_ALPHA:g} (beyond "
                         f"it every batch is an even blend), got {alpha!r}")
    if alpha == 0:
        return x, y, y, 1.0
    # The standard library's Beta sampler, seeded from the generator: the same draw on every device.
    seed = int(torch.randint(2 ** 31, (1,), generator=generator))
    lam = random.Random(seed).betavariate(alpha, alpha)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam
