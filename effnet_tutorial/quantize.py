r"""Int8 post-training quantization of an exported ONNX model with ONNX Runtime (chapter 9).

ONNX Runtime's static quantization ("Quantize ONNX Models", onnxruntime.ai, source
microsoft/onnxruntime gh-pages ``docs/performance/model-optimizations/quantization.md``
@ 053270ce) stores weights and activations as 8-bit integers,
:math:`x \approx s\,(q - z)` with a scale :math:`s` and a zero point :math:`z`. The weights'
scales come from the weights themselves; the activations' scales are fixed in advance from
the ranges the float model's tensors take on *calibration* images. The QDQ format writes
the model as the float graph with ``QuantizeLinear``/``DequantizeLinear`` pairs around each
quantized tensor, which ONNX Runtime's CPU kernels fuse into integer operators.

* :func:`quantize_int8` wraps ``onnxruntime.quantization.quantize_static`` (QDQ, int8
  weights, uint8 or int8 activations) with a :class:`ImageCalibrationReader` over a tensor
  of preprocessed images.
* :func:`photo_views` makes deterministic crops and flips of a photo, for calibration and
  evaluation sets; :func:`run_onnx` runs a file or session on a tensor of images;
  :func:`top1_agreement` compares two models' predictions.
* :func:`initializer_bytes` says where a file's bytes go; :func:`runtime_op_counts` which
  operators ONNX Runtime runs once it has fused the graph; :func:`int8_levels` counts how
  many of the 255 levels of symmetric int8 each output channel of a weight keeps, with one
  scale per tensor or one per channel.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
from collections import OrderedDict

import numpy as np
import torch

__all__ = ["CALIBRATION_METHODS", "ACTIVATION_TYPES", "ImageCalibrationReader", "quantize_int8", "run_onnx",
           "top1_agreement", "initializer_bytes", "runtime_op_counts", "int8_levels",
           "photo_views"]

#: The calibration methods of ``onnxruntime.quantization.CalibrationMethod`` that
#: :func:`quantize_int8` offers: the tensor's smallest and largest value seen (MinMax), the
#: range that minimises the KL divergence between the float and the quantized histogram
#: (Entropy), or a percentile of the absolute values (Percentile, 99.999 by default).
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
#: The 8-bit types that :func:`quantize_int8` can store activations in (weights are int8).
ACTIVATION_TYPES = ("uint8", "int8")


def _ort_quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise ImportError("int8 quantization needs ONNX Runtime: pip install onnxruntime") from None
    return quantization


def _onnx_file(path, what: str) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or os.PathLike) to an .onnx file, "
                        f"got {type(path).__name__}")
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no ONNX file at {str(path)!r}; write one with "
                                "effnet_tutorial.deploy.export_onnx(model, path, image_size)")
    return path


def _input_spec(onnx_path: pathlib.Path) -> tuple[str, list]:
    """The model's single input: its name and its shape ([dim or None for a free one])."""
    import onnx
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ValueError(f"{onnx_path.name} has {len(inputs)} inputs "
                         f"({', '.join(i.name for i in inputs)}): expected one image input")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims


def _images_array(images, what: str, expected: list | None = None) -> np.ndarray:
    """Images as a contiguous float32 (N, C, H, W) array, checked against the model's
    input shape ``expected`` (None where a dimension is free)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{what} must be a (N, C, H, W) tensor of preprocessed images, "
                        f"got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{what} must have shape (N, C, H, W), got shape {list(images.shape)}"
                         + (": stack single images with torch.stack" if images.ndim == 3 else ""))
    if images.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {list(images.shape)}): give at least one image")
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"{what} must hold preprocessed float images (e.g. lite_preprocess), "
                        f"got dtype {images.dtype}")
    if expected is not None:
        want = ["N" if d is None else d for d in expected]
        if len(expected) != 4 or any(d is not None and d != s
                                     for d, s in zip(expected[1:], images.shape[1:])):
            raise ValueError(f"{what} has shape {list(images.shape)}, but the model takes "
                             f"images of shape {want}")
    if not np.isfinite(images).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return np.ascontiguousarray(images, dtype=np.float32)


class ImageCalibrationReader:
    """Feeds a tensor of preprocessed images to ONNX Runtime's calibrator in batches of
    ``batch_size`` (an ``onnxruntime.quantization.CalibrationDataReader``: ``get_next``
    returns ``{input_name: batch}`` until the images run out, then None; ``rewind`` starts
    again).

    Shape: images (N, C, H, W) -> batches (<= batch_size, C, H, W) float32.
    """

    def __init__(self, images, input_name: str = "images", batch_size: int = 8):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.images = _images_array(images, "calibration_images")
        self.input_name = input_name
        self.batch_size = batch_size
        self._start = 0

    def get_next(self) -> dict | None:
        """The next batch as ``{input_name: array}``, or None after the last one.

        Shape: -> {name: (<= batch_size, C, H, W)}.
        """
        if self._start >= len(self.images):
            return None
        batch = self.images[self._start:self._start + self.batch_size]
        self._start += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        """Start again from the first image. Shape: -> None."""
        self._start = 0

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self):
        self.rewind()
        return iter(self.get_next, None)


def quantize_int8(onnx_path, out_path, calibration_images, per_channel: bool = True, *,
                  activations: str = "uint8", method: str = "minmax", batch_size: int = 8,
                  calibration_cache=None) -> pathlib.Path:
    """Quantize the float ONNX model at ``onnx_path`` to int8 and write it to ``out_path``.

    ``onnxruntime.quantization.quantize_static`` in the QDQ format. Weights are int8,
    quantized symmetrically to [-127, 127], with one scale per output channel when
    ``per_channel`` (ONNX Runtime's own default is one per tensor). Activations are
    ``activations`` (one of :data:`ACTIVATION_TYPES`): uint8 by default, with int8 weights
    ("U8S8"), as ``quantize_static``'s docstring advises for x86-64 CPUs (onnxruntime 1.32,
    "Choosing parameters for CPU inference"; with VNNI, ``reduce_range=False``, which is
    used here). ONNX Runtime's web page calls int8 activations ("S8S8") "the first choice"
    ("Quantize ONNX Models", Data type selection; microsoft/onnxruntime gh-pages
    ``docs/performance/model-optimizations/quantization.md`` @ 053270ce), but with them
    its CPU kernels of version 1.32 keep the residual additions of an EfficientNet, and the
    convolutions next to them, in float (chapter 9 counts them). The activations' ranges
    are those that ``method`` (one of :data:`CALIBRATION_METHODS`) finds on
    ``calibration_images``, which must be preprocessed as the model expects and should not
    be the images you then evaluate on. They are fed in batches of ``batch_size`` (for
    the histogram methods, of the largest divisor of N up to it: ONNX Runtime 1.32 stacks
    their batches and needs equal sizes).

    ``calibration_cache``: a JSON path where ONNX Runtime stores the calibrated ranges; if
    the file exists, its ranges are used and ``calibration_images`` are only checked, so
    the same calibration can give a per-channel and a per-tensor model (or uint8 and int8
    activations). The cache belongs to the images (and method) that filled it: use a new
    path for other images.

    ONNX Runtime's progress messages and its advice to pre-process the model (the file
    from :func:`effnet_tutorial.deploy.export_onnx` has BatchNorm folded already) are kept
    out of sight; errors are not.

    Shape: calibration_images (N, C, H, W) float -> a file with the model's input and
    output shapes.
    """
    oq = _ort_quantization()
    onnx_path = _onnx_file(onnx_path, "onnx_path")
    if not isinstance(out_path, (str, os.PathLike)):
        raise TypeError(f"out_path must be a path (str or os.PathLike), got {type(out_path).__name__}")
    out_path = pathlib.Path(out_path)
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(out_path)!r}: the folder "
                                f"{str(out_path.parent)!r} does not exist")
    if out_path.resolve() == onnx_path.resolve():
        raise ValueError(f"out_path is onnx_path ({str(out_path)!r}): write the int8 model to "
                         "another file, the float one is needed to compare with")
    if activations not in ACTIVATION_TYPES:
        raise ValueError(f"activations must be one of {', '.join(ACTIVATION_TYPES)}, "
                         f"got {activations!r}")
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    if not isinstance(per_channel, bool):
        raise TypeError(f"per_channel must be True or False, got {per_channel!r}")
    name, dims = _input_spec(onnx_path)
    images = _images_array(calibration_images, "calibration_images", dims)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if method != "minmax":
        # The histogram calibrators stack the outputs of all batches into one array, so
        # every batch must have the same size: the largest divisor of N up to batch_size.
        batch_size = max(b for b in range(1, min(batch_size, len(images)) + 1)
                         if len(images) % b == 0)
    reader = ImageCalibrationReader(images, name, batch_size)
    cache = None
    if calibration_cache is not None:
        if not isinstance(calibration_cache, (str, os.PathLike)):
            raise TypeError("calibration_cache must be a path (str or os.PathLike) or None, "
                            f"got {type(calibration_cache).__name__}")
        cache = pathlib.Path(calibration_cache)
        if not cache.parent.is_dir():
            raise FileNotFoundError(f"calibration_cache: the folder {str(cache.parent)!r} "
                                    "does not exist")
    calibrate_method = {"minmax": oq.CalibrationMethod.MinMax,
                        "entropy": oq.CalibrationMethod.Entropy,
                        "percentile": oq.CalibrationMethod.Percentile}[method]
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)   # "Please consider to run pre-processing ..."
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # the histogram calibrators print
            oq.quantize_static(
                str(onnx_path), str(out_path), reader, quant_format=oq.QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type={"uint8": oq.QuantType.QUInt8,
                                 "int8": oq.QuantType.QInt8}[activations],
                weight_type=oq.QuantType.QInt8, calibrate_method=calibrate_method,
                **({"calibration_cache_path": str(cache)} if cache is not None else {}))
    finally:
        quiet.setLevel(level)
    return out_path


def run_onnx(session, images, batch_size: int = 16) -> torch.Tensor:
    """The outputs of an ONNX model on ``images``, in batches of ``batch_size``.

    ``session``: an ``onnxruntime.InferenceSession`` (e.g. from
    :func:`effnet_tutorial.deploy.onnx_session`) or the path of an ONNX file, which is then
    opened with ``onnx_session``.

    Shape: images (N, C, H, W) -> (N, num_classes) float32 CPU tensor.
    """
    if isinstance(session, (str, os.PathLike)):
        from .deploy import onnx_session
        session = onnx_session(_onnx_file(session, "session"))
    if not hasattr(session, "run") or not hasattr(session, "get_inputs"):
        raise TypeError("session must be an onnxruntime.InferenceSession or the path of an "
                        f"ONNX file, got {type(session).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    inp = session.get_inputs()[0]
    dims = [d if isinstance(d, int) else None for d in inp.shape]
    x = _images_array(images, "images", dims)
    out = [session.run(None, {inp.name: x[i:i + batch_size]})[0]
           for i in range(0, len(x), batch_size)]
    return torch.from_numpy(np.concatenate(out)).float()


def top1_agreement(reference, other) -> float:
    """The fraction of images whose highest-scoring class is the same in both.

    Shape: two (N, num_classes) logit tensors -> float in [0, 1].
    """
    ref, got = torch.as_tensor(reference), torch.as_tensor(other)
    if ref.ndim != 2 or ref.shape != got.shape or ref.shape[0] == 0:
        raise ValueError("top1_agreement expects two (N, num_classes) tensors of the same shape "
                         f"with N >= 1, got {list(ref.shape)} and {list(got.shape)}")
    return (ref.argmax(1) == got.argmax(1)).double().mean().item()


def initializer_bytes(onnx_path) -> OrderedDict[str, int]:
    """Bytes of the constant tensors (weights, biases, scales, zero points) stored in an
    ONNX file, by data type, largest first. The rest of the file is the graph itself.

    Shape: a file -> {dtype name: bytes}.
    """
    import onnx
    from onnx import numpy_helper
    path = _onnx_file(onnx_path, "onnx_path")
    totals: dict[str, int] = {}
    for init in onnx.load(str(path)).graph.initializer:
        array = numpy_helper.to_array(init)
        totals[str(array.dtype)] = totals.get(str(array.dtype), 0) + array.nbytes
    return OrderedDict(sorted(totals.items(), key=lambda kv: -kv[1]))


def runtime_op_counts(onnx_path) -> OrderedDict[str, int]:
    """The operators ONNX Runtime's CPU provider runs for the file, most frequent first:
    the graph as ONNX Runtime rewrites it at its "extended" optimisation level, where it
    fuses each ``DequantizeLinear`` -> operator -> ``QuantizeLinear`` group that it has an
    integer kernel for into one operator (``QLinearConv``, ``QLinearAdd``, ``QGemm``) and
    leaves the others as float operators between dequantize and quantize nodes
    (onnxruntime's graph optimisations: ``ORT_ENABLE_EXTENDED``, which also fuses float
    operators; ``onnx_session`` runs with all levels on).

    Shape: a file -> {operator type: count}.
    """
    import tempfile

    import onnx
    import onnxruntime as ort
    path = _onnx_file(onnx_path, "onnx_path")
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = os.path.join(tmp, "optimised.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        nodes = onnx.load(options.optimized_model_filepath).graph.node
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return OrderedDict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def int8_levels(weight, per_channel: bool) -> torch.Tensor:
    """How many of the 255 levels of symmetric int8 (-127 ... 127) each output channel of
    ``weight`` can reach: :math:`2\\,\\mathrm{round}(m_c / s) + 1` with :math:`m_c` the
    channel's largest absolute weight and the scale :math:`s = m / 127`, where :math:`m` is
    the largest absolute weight of the whole tensor (per tensor) or :math:`m_c` itself (per
    channel, so 255 for every channel that is not all zeros). ONNX Runtime quantizes
    weights this way (``quant_utils.compute_scale_zp`` with ``symmetric=True``,
    onnxruntime 1.32), except that it enlarges the scale of a channel whose bias would not
    fit int32 at (input scale x weight scale): in Lite0, a few "dead" channels whose
    weights are all below 1e-5.

    Shape: weight (C_out, ...) -> (C_out,) int64.
    """
    w = torch.as_tensor(weight).detach()
    if w.ndim < 1 or w.shape[0] == 0 or w.numel() == 0:
        raise ValueError(f"weight must be a tensor with output channels first, (C_out, ...), "
                         f"got shape {list(w.shape)}")
    if not isinstance(per_channel, bool):
        raise TypeError(f"per_channel must be True or False, got {per_channel!r}")
    m_c = w.double().reshape(w.shape[0], -1).abs().amax(1)     # (C_out,)
    m = m_c if per_channel else m_c.max().expand_as(m_c)
    ratio = torch.where(m > 0, m_c / m.clamp_min(1e-300), torch.zeros_like(m))
    return (2 * torch.round(127 * ratio) + 1).long()


def photo_views(photo, image_size: int = 224) -> torch.Tensor:
    """Twelve deterministic views of one photo, preprocessed as EfficientNet-Lite expects
    (:func:`effnet_tutorial.imagenet.lite_preprocess`): the official centre crop, five
    ``image_size`` crops (the four corners and the centre) of the whole square centre of
    the photo resized to ``9/7 * image_size`` (288 px for 224), and the mirror images of
    these six. For calibration and evaluation sets that share no photo.

    Shape: (H, W, 3) photo -> (12, 3, image_size, image_size) float32.
    """
    from .imagenet import lite_preprocess
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    big_size = round(image_size * 9 / 7)
    official = lite_preprocess(photo, image_size)                            # (3, S, S)
    big = lite_preprocess(photo, big_size, crop_fraction=1.0)                # (3, B, B)
    d, c = big_size - image_size, (big_size - image_size) // 2
    corners = [(0, 0), (0, d), (d, 0), (d, d), (c, c)]
    crops = [big[:, t:t + image_size, u:u + image_size] for t, u in corners]
    views = torch.stack([official, *crops])                                  # (6, 3, S, S)
    return torch.cat([views, views.flip(-1)]).contiguous()                   # (12, 3, S, S)
