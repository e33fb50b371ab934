r"""Classifying real photos with an ImageNet model: the official evaluation preprocessing of
EfficientNet(-Lite), the 1000 class names, top-k predictions and the sample photos that ship
with matplotlib, scikit-image and scikit-learn (so that everything here works offline).

The preprocessing is tensorflow/tpu's ``preprocess_for_eval``
(``models/official/efficientnet/preprocessing.py``, commit 22d5cab9): a centre crop of
``image_size / (image_size + crop_padding)`` of the shorter side, with
``crop_padding = round(image_size * (1 / 0.875 - 1))`` (32 at 224 px; before that commit the
code fixed ``CROP_PADDING = 32`` at every size), then TensorFlow 1's ``resize_bicubic``
to ``image_size``. The Lite models then take ``(x - 127) / 128`` on 0-255 values
(``MEAN_RGB``/``STDDEV_RGB`` in ``lite/efficientnet_lite_builder.py``, same commit: "Edge
models use inception-style MEAN and STDDEV for better post-quantization").

``resize_bicubic`` (without ``half_pixel_centers``) is not PyTorch's or PIL's bicubic: it
samples output pixel ``i`` at input position ``i * in / out`` (no half-pixel offset), uses
the cubic convolution kernel with :math:`a = -0.75` from a table of 1024 steps, and clamps
indices at the border (tensorflow/tensorflow ``core/kernels/image/resize_bicubic_op.cc``
and ``core/util/image_resizer_state.h``, commit 389f1354). :func:`tf_resize_bicubic` writes
that as two small matrices, so it is exact, fast and easy to reproduce elsewhere (the
book's in-page demo does the same arithmetic in JavaScript).
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import torch

__all__ = ["LITE_MEAN", "LITE_STD", "CROP_FRACTION", "imagenet_classes", "center_crop_box", "bicubic_weights",
           "tf_resize_bicubic", "lite_preprocess", "top_k", "sample_photos", "as_rgb_uint8"]

#: Inception-style normalisation of the Lite models, on 0-255 pixel values: the mean ...
LITE_MEAN = 127.0
#: ... and the standard deviation (``MEAN_RGB``, ``STDDEV_RGB`` of the Lite builder).
LITE_STD = 128.0
#: tensorflow/tpu ``preprocessing.CROP_FRACTION`` (commit 22d5cab9).
CROP_FRACTION = 0.875

_TABLE_SIZE = 1024      # kTableSize in resize_bicubic_op.cc
_LEGACY_A = -0.75       # GetCoeffsTable(use_keys_cubic=False)


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, in the models' output order (torchvision's list,
    read from its weights metadata: nothing is downloaded).

    Shape: -> list of 1000 str.
    """
    from torchvision.models import EfficientNet_B0_Weights
    return list(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def as_rgb_uint8(image) -> np.ndarray:
    """An image as a (H, W, 3) uint8 array: accepts a PIL image, or a (H, W), (H, W, 3) or
    (H, W, 4) array (uint8, or float in [0, 1] as ``plt.imread`` returns PNGs). Grey is
    repeated to RGB, alpha is dropped.

    Shape: image -> (H, W, 3) uint8.
    """
    if hasattr(image, "convert") and hasattr(image, "size"):      # a PIL image
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        raise TypeError("expected a (H, W, 3) photo as a numpy array or PIL image, got a torch.Tensor: "
                        "pass tensor.permute(1, 2, 0).numpy() for a (3, H, W) tensor")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a (H, W, 3) photo as a numpy array or PIL image, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected a photo of shape (H, W, 3) (or (H, W) grey, (H, W, 4) RGBA), "
                         f"got shape {image.shape}")
    image = image[..., :3]
    if min(image.shape[:2]) < 1:
        raise ValueError(f"expected a photo with at least one pixel, got shape {image.shape}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ValueError("a float photo must hold values in [0, 1] (as plt.imread returns for PNG); "
                             f"got values in [{np.nanmin(image):.3g}, {np.nanmax(image):.3g}]")
        return np.round(image * 255).astype(np.uint8)
    raise TypeError(f"expected a uint8 photo (0-255) or floats in [0, 1], got dtype {image.dtype}")


def center_crop_box(height: int, width: int, image_size: int,
                    crop_fraction: float = CROP_FRACTION) -> tuple[int, int, int]:
    """(top, left, side) of the official evaluation crop: a centred square of
    ``image_size / (image_size + crop_padding)`` of the shorter side, with
    ``crop_padding = round(image_size * (1 / crop_fraction - 1))``; the odd pixel of the
    margin goes before the crop (tensorflow/tpu ``_decode_and_center_crop``, 22d5cab9).

    Shape: (H, W, S) -> (top, left, side) in pixels.
    """
    for name, v in (("height", height), ("width", width), ("image_size", image_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not (isinstance(crop_fraction, (int, float)) and 0 < crop_fraction <= 1):
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction!r}")
    crop_padding = round(image_size * (1 / crop_fraction - 1))
    # TF multiplies a Python float by a float32 tensor and casts to int32 (truncation).
    side = int(np.float32(image_size / (image_size + crop_padding)) * np.float32(min(height, width)))
    side = max(side, 1)
    return (height - side + 1) // 2, (width - side + 1) // 2, side


def bicubic_weights(in_size: int, out_size: int) -> torch.Tensor:
    """The (out_size, in_size) matrix of TensorFlow 1's ``resize_bicubic`` along one axis
    (``align_corners=False``, ``half_pixel_centers=False``): output ``i`` samples input
    position ``i * in_size / out_size``, weights from the cubic kernel with a = -0.75 read
    from a 1024-step table, indices clamped at the border. Rows sum to 1.

    Shape: (in, out) -> (out, in), float32.
    """
    scale = np.float32(in_size / out_size)
    i = np.arange(_TABLE_SIZE + 1, dtype=np.float64)
    x = (i / _TABLE_SIZE).astype(np.float32).astype(np.float64)
    a = _LEGACY_A
    near = (((a + 2) * x - (a + 3)) * x * x + 1).astype(np.float32)             # |t| <= 1
    x1 = x + 1.0
    far = (((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a).astype(np.float32)    # 1 < |t| <= 2
    w = np.zeros((out_size, in_size), dtype=np.float32)
    for o in range(out_size):
        loc = np.float32(o) * scale
        base = int(np.floor(loc))
        offset = int(np.rint(np.float32(loc - base) * _TABLE_SIZE))  # lrintf: round half to even
        taps = (far[offset], near[offset], near[_TABLE_SIZE - offset], far[_TABLE_SIZE - offset])
        for k, weight in enumerate(taps):
            w[o, min(in_size - 1, max(0, base - 1 + k))] += weight
    return torch.from_numpy(w)


def tf_resize_bicubic(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize like TensorFlow 1's ``tf.image.resize_bicubic`` (the official EfficientNet
    preprocessing): ``W_h @ image @ W_w.T`` per channel with :func:`bicubic_weights`.
    No clipping: like TF, values may overshoot 0-255 a little near edges.

    Shape: (C, H, W) float -> (C, size, size) float32.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got "
                         f"{list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    image = image.to(torch.float32)
    wh = bicubic_weights(image.shape[1], out_h)               # (out_h, H)
    ww = bicubic_weights(image.shape[2], out_w)               # (out_w, W)
    return wh @ image @ ww.T                                  # (C, out_h, out_w)


def lite_preprocess(image, image_size: int = 224, crop_fraction: float = CROP_FRACTION,
                    mean: float = LITE_MEAN, std: float = LITE_STD) -> torch.Tensor:
    """The official evaluation preprocessing of EfficientNet-Lite: centre crop
    (:func:`center_crop_box`), TF1 bicubic resize to ``image_size``
    (:func:`tf_resize_bicubic`), then ``(x - 127) / 128`` on 0-255 values.

    ``image``: a photo as :func:`as_rgb_uint8` accepts it. Use the model's native size
    (``EfficientNet.get_image_size``: 224 for Lite0, 240 for Lite1, 260 for Lite2).

    Shape: (H, W, 3) photo -> (3, image_size, image_size) float32.
    """
    rgb = as_rgb_uint8(image)
    top, left, side = center_crop_box(rgb.shape[0], rgb.shape[1], image_size, crop_fraction)
    crop = torch.from_numpy(rgb[top:top + side, left:left + side].copy()).permute(2, 0, 1)   # (3, side, side)
    resized = tf_resize_bicubic(crop, image_size)                                      # (3, S, S), 0-255
    return (resized - mean) / std


def top_k(logits: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable ImageNet classes of one image's logits, with their softmax
    probabilities, best first.

    Shape: (1000,) or (1, 1000) -> list of k (class name, probability).
    """
    if not isinstance(logits, torch.Tensor) or logits.reshape(-1).shape[0] != 1000:
        raise ValueError(f"expected the 1000 logits of one image, got "
                         f"{list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    probs = logits.detach().reshape(-1).float().cpu().softmax(0)
    values, indices = probs.topk(k)
    names = imagenet_classes()
    return [(names[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())]


def sample_photos() -> OrderedDict[str, np.ndarray]:
    """Real photos that ship inside installed packages, as (H, W, 3) uint8 arrays:
    matplotlib's portrait of Grace Hopper, scikit-image's cat (Chelsea), coffee cup,
    rocket, astronaut and motorcycle, and scikit-learn's two sample photos.

    Shape: -> {label: (H, W, 3) uint8}.
    """
    import matplotlib.cbook
    import matplotlib.image
    import skimage.data
    from sklearn.datasets import load_sample_image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = matplotlib.image.imread(f, format="jpg")
    skimage_dir = os.path.dirname(skimage.data.__file__)
    photos = OrderedDict()
    photos["Grace Hopper (matplotlib)"] = hopper
    photos["cat, Chelsea (scikit-image)"] = skimage.data.chelsea()
    photos["coffee (scikit-image)"] = skimage.data.coffee()
    photos["rocket (scikit-image)"] = skimage.data.rocket()
    photos["astronaut (scikit-image)"] = skimage.data.astronaut()
    photos["motorcycle (scikit-image)"] = matplotlib.image.imread(os.path.join(skimage_dir, "motorcycle_left.png"))
    photos["China (scikit-learn)"] = load_sample_image("china.jpg")
    photos["flower (scikit-learn)"] = load_sample_image("flower.jpg")
    return OrderedDict((name, as_rgb_uint8(p)) for name, p in photos.items())
