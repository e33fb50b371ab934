r"""How close to the limit? A measured roofline of a model, layer by layer (chapter 9).

The roofline model (Williams, Waterman & Patterson, *Communications of the ACM* 52(4),
2009, section "The Roofline Model" and its Fig. 1a) bounds the speed of a computation by
two ceilings of the machine that runs it:

.. math::

    \text{attainable FLOP/s} = \min(\text{peak compute},\;
    \text{arithmetic intensity} \times \text{memory bandwidth}),

where the arithmetic intensity :math:`I = F / Q` is the work :math:`F` (floating-point
operations) done per byte :math:`Q` moved to or from memory. A layer cannot take less than
its *bound*, :math:`\max(F / \text{peak},\ Q / \text{bandwidth})` seconds. This module

* measures the two ceilings of this machine (:func:`measure_ceilings`): the peak from a
  large float32 matrix product, the bandwidth from STREAM's copy and triad kernels
  (McCalpin 1995, "Sustainable Memory Bandwidth in Current High Performance Computers",
  section "The STREAM Benchmark") on arrays far larger than the caches;
* counts every layer's FLOPs (``torch.utils.flop_counter``, as
  :func:`~effnet_tutorial.count_flops` does) and the bytes it must read and write: its
  input, its weights and its output (:func:`layer_table`);
* times every layer, with ``torch.profiler`` (:func:`profile_layers`) or with ONNX
  Runtime's own profiler (:func:`profile_onnx`);
* puts counts and times together (:func:`roofline`, :func:`attained_fraction`,
  :func:`role_shares`, :func:`plot_roofline`).

**FLOPs.** Two floating-point operations per multiply-add, for the layers and for the
matrix product that sets the peak alike. :func:`~effnet_tutorial.count_flops` reports
multiply-adds, the EfficientNet paper's "FLOPs", so a table's ``flops`` column is twice its
``multiply_adds`` column, which sums to ``count_flops``. Like ``count_flops``, the count
covers convolutions and matrix products only: BatchNorm, activations, pooling and the
element-wise products of SE and the residual add move bytes but count no FLOPs.

**Layers.** In this package's models a layer is what an inference engine runs as one
kernel: a convolution with its BatchNorm and activation (``ConvBNAct``: the stem, an
expansion, a depthwise or Fused-MBConv convolution, a projection, the head), a whole SE
block, the pooling, the classifier. A projection in a block with a residual connection
includes the addition, so it reads the block's input too. In any other model every leaf
module is a layer. Its bytes are the least an implementation must move: input, weights
(one bias per output channel, where BatchNorm folds in) and output, each once.
"""
from __future__ import annotations

import ast
import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .blocks import FusedMBConv, MBConv
from .inspection import _check_input_size, as_model, format_shape, inspecting, meta_twin
from .layers import ConvBNAct, DynamicSamePad2d, GlobalAvgPool2d, StaticSamePad2d
from .model import EfficientNet

__all__ = ["ROLES", "OTHER", "Ceilings", "measure_peak_gflops", "measure_bandwidth",
           "measure_ceilings", "layer_table", "profile_layers", "profile_onnx", "roofline",
           "attained_fraction", "role_shares", "plot_roofline"]

#: The roles of an EfficientNet's layers, in the order of a block: ``fused`` is the
#: full kxk convolution of a Fused-MBConv block (EfficientNetV2). Other models' layers
#: get ``conv``, ``depthwise``, ``linear``, ``norm``, ``activation``, ``pad``, ``pool`` or
#: ``other``.
ROLES = ("stem", "expand", "fused", "depthwise", "se", "project", "head")
_GENERIC_ROLES = ("conv", "linear", "norm", "activation", "pad", "pool")

#: Name (and role) of the row for time spent outside every layer: Python between layers,
#: the input's conversion to channels_last, the dropout, the engine's own overhead.
OTHER = "other"

_ROLE_COLOURS = {"stem": "#4d4d4d", "expand": "#0072b2", "fused": "#56b4e9",
                 "depthwise": "#d55e00", "se": "#cc79a7", "project": "#009e73",
                 "head": "#e69f00", "conv": "#0072b2", "linear": "#e69f00",
                 "norm": "#999999", "activation": "#cc79a7", "pad": "#56b4e9",
                 "pool": "#f0e442",
                 OTHER: "#000000"}


# --------------------------------------------------------------------------------------
# The two ceilings
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ceilings:
    """The roofline of one machine (Williams, Waterman & Patterson 2009): peak float32
    compute (GFLOP/s, 2 FLOPs per multiply-add) and memory bandwidth (GB/s, 1e9 bytes),
    measured with ``threads`` PyTorch threads on ``device``. ``copy_gbs`` and
    ``triad_gbs`` are the two STREAM kernels; ``bandwidth_gbs`` is the larger.

    Shape: a record of floats.
    """

    peak_gflops: float
    bandwidth_gbs: float
    threads: int
    device: str
    copy_gbs: float = math.nan
    triad_gbs: float = math.nan

    def __post_init__(self):
        for name in ("peak_gflops", "bandwidth_gbs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Ceilings.{name} must be a positive number, got {value!r}")

    @property
    def ridge(self) -> float:
        """The ridge point: the intensity (FLOP/byte) above which the peak, not the
        bandwidth, bounds a layer. Shape: () -> float."""
        return self.peak_gflops / self.bandwidth_gbs

    def attainable_gflops(self, intensity):
        """min(peak, intensity x bandwidth) in GFLOP/s (Williams et al. 2009).

        Shape: float or array of intensities (FLOP/byte) -> the same shape.
        """
        if isinstance(intensity, (int, float)):
            return min(self.peak_gflops, intensity * self.bandwidth_gbs)
        import numpy as np
        return np.minimum(self.peak_gflops, np.asarray(intensity, dtype=float) * self.bandwidth_gbs)

    def bound_seconds(self, flops, nbytes):
        """The least time for ``flops`` FLOPs that move ``nbytes`` bytes:
        max(flops / peak, bytes / bandwidth).

        Shape: numbers or equal-shaped arrays -> the same shape.
        """
        import numpy as np
        t = np.maximum(np.asarray(flops, dtype=float) / (self.peak_gflops * 1e9),
                       np.asarray(nbytes, dtype=float) / (self.bandwidth_gbs * 1e9))
        return float(t) if t.ndim == 0 else t


def _check_device(device) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or a torch.device, got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but PyTorch sees no CUDA GPU here")
    return device


def _check_count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _best_seconds(fn: Callable[[], object], repeats: int, device: torch.device,
                  budget_s: float = 1.0) -> float:
    """The shortest of up to ``repeats`` timed calls of ``fn`` (at least two; no new call
    after ``budget_s`` seconds), after one untimed call: a ceiling is what the machine can
    reach, and other work on it only ever slows a call down."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    best, start = math.inf, time.perf_counter()
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
        if i >= 1 and time.perf_counter() - start > budget_s:
            break
    return best


def _check_sizes(sizes) -> tuple[int, ...]:
    sizes = (sizes,) if isinstance(sizes, int) and not isinstance(sizes, bool) else sizes
    if (not isinstance(sizes, (tuple, list)) or not sizes
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 64 for n in sizes)):
        raise ValueError(f"size must be an int >= 64 or a sequence of them (matrix sides), "
                         f"got {sizes!r}")
    return tuple(sizes)


def measure_peak_gflops(device="cpu", size=(512, 1024, 2048), repeats: int = 10) -> float:
    """Peak float32 compute of ``device`` in GFLOP/s: the fastest of up to ``repeats``
    products of two ``n`` x ``n`` matrices (``torch.mm``: MKL or oneDNN on a CPU, cuBLAS on
    a GPU) for every ``n`` in ``size``, counted as :math:`2 n^3` FLOPs, with
    ``torch.get_num_threads()`` threads; the best rate of all sizes counts. Several sizes,
    because a large product reaches the peak on an idle machine, while on a busy one only
    a short product runs without being interrupted.

    On a GPU, PyTorch computes float32 matrix products in float32 unless
    ``torch.backends.cuda.matmul.allow_tf32`` is set; convolutions may use TF32
    (``torch.backends.cudnn.allow_tf32``, on by default) and then exceed this peak.

    Shape: () -> float.
    """
    device = _check_device(device)
    sizes = _check_sizes(size)
    repeats = _check_count("repeats", repeats)
    g = torch.Generator().manual_seed(0)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, generator=g).to(device)
        b = torch.randn(n, n, generator=g).to(device)
        c = torch.empty(n, n, device=device)
        with torch.inference_mode():
            seconds = _best_seconds(lambda: torch.mm(a, b, out=c), repeats, device)
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


def measure_bandwidth(device="cpu", mib: int = 256,
                      repeats: int = 10) -> dict[str, float]:
    """Memory bandwidth of ``device`` in GB/s (1e9 bytes), from the two
    STREAM kernels on float32 arrays of ``mib`` MiB each (McCalpin 1995,
    "The STREAM Benchmark"):

    * ``copy``: ``a = b``, 2 x 4 bytes per element (a read, a write);
    * ``triad``: ``a = b + q c``, 3 x 4 bytes per element.

    Bytes are counted as STREAM counts them: what the program reads plus
    what it writes. Choose ``mib`` several times the last-level cache
    (``lscpu`` shows it), so that the arrays come from main memory. The
    fastest of up to ``repeats`` calls counts.

    Shape: () -> {"copy": GB/s, "triad": GB/s}.
    """
    device = _check_device(device)
    mib = _check_count("mib", mib)
    repeats = _check_count("repeats", repeats)
    n = mib * 2**20 // 4                       # float32 elements
    a = torch.empty(n, device=device)
    b = torch.ones(n, device=device)
    c = torch.full((n,), 2.0, device=device)
    with torch.inference_mode():
        copy = _best_seconds(lambda: a.copy_(b), repeats, device)
        triad = _best_seconds(
            lambda: torch.add(b, c, alpha=3.0, out=a), repeats, device)
    return {"copy": 2 * 4 * n / copy / 1e9, "triad": 3 * 4 * n / triad / 1e9}


def measure_ceilings(device="cpu", size=(512, 1024, 2048), mib: int = 256,
                     repeats: int = 10) -> Ceilings:
    """Both ceilings of this machine, measured now with ``torch.get_num_threads()``
    threads: :func:`measure_peak_gflops` and the faster of :func:`measure_bandwidth`'s
    two kernels. Measure them under the conditions in which you time the layers (the same
    threads, the same load).

    Shape: () -> Ceilings.
    """
    device = _check_device(device)
    peak = measure_peak_gflops(device, size, repeats)
    bandwidth = measure_bandwidth(device, mib, repeats)
    return Ceilings(peak_gflops=peak, bandwidth_gbs=max(bandwidth.values()),
                    threads=torch.get_num_threads(), device=device.type,
                    copy_gbs=bandwidth["copy"], triad_gbs=bandwidth["triad"])


# --------------------------------------------------------------------------------------
# Which modules are the layers
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layer:
    name: str
    module: nn.Module
    role: str
    residual: bool = False   # a projection that also adds the block's input
    fused_weights: bool = True  # weights = conv/linear kernels + one bias per channel


def _unwrap(model: nn.Module) -> nn.Module:
    if hasattr(model, "_orig_mod"):
        raise TypeError("a torch.compile'd model runs compiled code that module hooks do not "
                        "see, so its layers cannot be told apart: pass the model before "
                        "torch.compile (model._orig_mod)")
    inner = getattr(model, "model", None)  # deploy.InferenceModel wraps the model it fused
    if type(model).__name__ == "InferenceModel" and isinstance(inner, nn.Module):
        return inner
    return model


def _generic_role(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "depthwise" if depthwise else "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        return "norm"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d, GlobalAvgPool2d)):
        return "pool"
    if isinstance(module, (StaticSamePad2d, DynamicSamePad2d, nn.ZeroPad2d, nn.ConstantPad2d)):
        return "pad"
    if not list(module.parameters()) and type(module).__module__.startswith(
            ("torch.nn.modules.activation", "effnet_tutorial.layers")):
        return "activation"
    return OTHER


def _layers(model: nn.Module, leaves: bool = False) -> tuple[list[_Layer], list[tuple[str, nn.Module, str]]]:
    """The layers of ``model`` in execution order, and the blocks whose remaining time (the
    residual addition) goes to one of their layers: (block name, block, layer name).
    With ``leaves``, every leaf module is a layer, in any model."""
    blocks = [b for stage in getattr(model, "stages", []) for b in stage]
    if leaves or not isinstance(model, EfficientNet) or not all(isinstance(b, (MBConv, FusedMBConv))
                                                                for b in blocks):
        leaves = [_Layer(n, m, _generic_role(m), fused_weights=False)
                  for n, m in model.named_modules()
                  if n and not list(m.children()) and not isinstance(m, (nn.Identity, nn.Dropout))]
        if not leaves:  # a single module (one conv, one Linear) is its own layer
            leaves = [_Layer(type(model).__name__, model, _generic_role(model), fused_weights=False)]
        return leaves, []
    layers = [_Layer("stem", model.stem, "stem")]
    owners = []
    for number, stage in model.stages.named_children():
        for j, block in enumerate(stage):
            prefix = f"stages.{number}.{j}"
            fused = isinstance(block, FusedMBConv)
            expands = isinstance(block.expand, ConvBNAct)
            if expands:
                layers.append(_Layer(f"{prefix}.expand", block.expand, "fused" if fused else "expand"))
            if not fused:
                layers.append(_Layer(f"{prefix}.depthwise", block.depthwise, "depthwise"))
            if not isinstance(block.se, nn.Identity):
                layers.append(_Layer(f"{prefix}.se", block.se, "se"))
            role = "fused" if fused and not expands else "project"
            layers.append(_Layer(f"{prefix}.project", block.project, role, residual=block.has_skip))
            owners.append((prefix, block, f"{prefix}.project"))
    layers += [_Layer("head", model.head, "head"), _Layer("pool", model.pool, "head"),
               _Layer("classifier", model.classifier, "head")]
    return layers, owners


def _weight_elements(layer: _Layer) -> int:
    """Weights a layer must read: every conv or linear kernel plus one bias value per
    output channel (its own, or BatchNorm folded into it); for a generic leaf, all of
    its parameters and buffers."""
    if not layer.fused_weights:
        return sum(t.numel() for t in list(layer.module.parameters()) + list(layer.module.buffers()))
    total = 0
    for m in layer.module.modules():
        if isinstance(m, nn.Conv2d):
            total += m.weight.numel() + m.out_channels
        elif isinstance(m, nn.Linear):
            total += m.weight.numel() + m.out_features
    return total


def _first_tensor(args) -> torch.Tensor | None:
    return next((a for a in args if isinstance(a, torch.Tensor)), None)


def _default_size(model: nn.Module, input_size) -> tuple[int, ...]:
    if input_size is not None:
        if isinstance(model, EfficientNet):
            return _check_input_size(input_size)
        if (not isinstance(input_size, (tuple, list, torch.Size)) or not input_size
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in input_size)):
            raise ValueError(f"input_size must be the input's shape (positive ints, e.g. [B, C, H, W]), "
                             f"got {input_size!r}")
        return tuple(input_size)
    if not isinstance(model, EfficientNet):
        raise ValueError(f"input_size [B, C, H, W] is required for a {type(model).__name__}, "
                         "which is not an EfficientNet")
    r = model.config.image_size or model.config.resolution
    return (1, model.in_channels, r, r)


# --------------------------------------------------------------------------------------
# Counting: FLOPs and bytes of every layer
# --------------------------------------------------------------------------------------
def layer_table(model, input_size: Sequence[int] | None = None, leaves: bool = False):
    """Every layer of ``model`` with its counts, for one forward pass at ``input_size``
    (default: one image at an EfficientNet's native size), as a pandas DataFrame indexed
    by layer name (``stem``, ``stages.2.0.depthwise``, ..., ``classifier``):

    ``role``; ``output`` shape; ``multiply_adds`` and ``flops`` (2 per multiply-add; the
    column sums to ``2 * count_flops(model, input_size)``); ``input_bytes``,
    ``weight_bytes``, ``output_bytes`` and their sum ``bytes``; ``intensity`` =
    flops / bytes (FLOP per byte). ``input_bytes`` of a projection with a residual
    connection includes the block's input, which the addition reads.

    ``model`` is a module (counted as it is, on a meta-device twin: no memory, no time),
    a ModelConfig or a name. FLOPs outside every layer, if any, form a row ``other``.
    With ``leaves=True`` every leaf module (convolution, BatchNorm, activation, padding,
    ...) is a row of its own, with all its parameters and buffers as weights: the bytes
    that eager PyTorch, which runs each of them as a separate operator, moves at least.
    Counts are exact and the same on every machine.

    Shape: [B, C, H, W] -> DataFrame, one row per layer.
    """
    import pandas as pd
    model = as_model(model)
    if not isinstance(model, nn.Module):  # pragma: no cover - as_model raises first
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    inner = _unwrap(model)
    input_size = _default_size(inner, input_size)
    twin = model if _on_meta(model) else meta_twin(model)
    layers, _ = _layers(_unwrap(twin), leaves=leaves)
    counter = FlopCounterMode(display=False)
    rows: dict[str, dict] = {}
    starts: dict[str, list[int]] = {}

    def pre(layer):
        def fn(module, args):
            starts.setdefault(layer.name, []).append(counter.get_total_flops())
            row = rows.setdefault(layer.name, {"role": layer.role, "flops": 0, "input_bytes": 0,
                                               "weight_bytes": 0, "output_bytes": 0})
            x = _first_tensor(args)
            if x is not None:
                row["input_bytes"] += x.numel() * x.element_size()
            elsize = next((p.element_size() for p in module.parameters()), 4)
            row["weight_bytes"] += _weight_elements(layer) * elsize
        return fn

    def post(layer):
        def fn(module, args, out):
            row = rows[layer.name]
            row["flops"] += counter.get_total_flops() - starts[layer.name].pop()
            if isinstance(out, torch.Tensor):
                nbytes = out.numel() * out.element_size()
                row["output_bytes"] += nbytes
                row["output"] = format_shape(out.shape)
                if layer.residual:     # x += shortcut reads the block input, of the same shape
                    row["input_bytes"] += nbytes
        return fn

    handles = []
    for layer in layers:
        handles.append(layer.module.register_forward_pre_hook(pre(layer)))
        handles.append(layer.module.register_forward_hook(post(layer)))
    try:
        with inspecting(twin), torch.no_grad(), counter:
            twin(torch.zeros(input_size, device="meta"))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"the model does not run on an input of shape {list(input_size)}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        for h in handles:
            h.remove()
    total = counter.get_total_flops()
    order = [layer.name for layer in layers if layer.name in rows]
    table = pd.DataFrame([{"layer": n, **rows[n]} for n in order])
    if table.empty:
        raise ValueError(f"no layer of this {type(model).__name__} ran on an input of shape "
                         f"{list(input_size)}")
    leftover = total - int(table["flops"].sum())
    if leftover:
        table.loc[len(table)] = {"layer": OTHER, "role": OTHER, "flops": leftover, "input_bytes": 0,
                                 "weight_bytes": 0, "output_bytes": 0, "output": ""}
    table = table.set_index("layer")
    table["output"] = table["output"].fillna("")
    for col in ("flops", "input_bytes", "weight_bytes", "output_bytes"):
        table[col] = table[col].astype("int64")
    table["multiply_adds"] = table["flops"] // 2
    table["bytes"] = table["input_bytes"] + table["weight_bytes"] + table["output_bytes"]
    table["intensity"] = table["flops"] / table["bytes"].where(table["bytes"] > 0)
    return table[["role", "output", "multiply_adds", "flops", "input_bytes", "weight_bytes",
                  "output_bytes", "bytes", "intensity"]]


def _on_meta(model: nn.Module) -> bool:
    t = next((t for t in list(model.parameters()) + list(model.buffers())), None)
    return t is not None and t.is_meta


# --------------------------------------------------------------------------------------
# Timing: torch.profiler
# --------------------------------------------------------------------------------------
_PREFIX, _BLOCK, _CALL = "roofline::", "roofline-block::", "roofline-call"


def _check_model_and_input(model, x, what: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} expects an nn.Module (e.g. EfficientNet.from_name(...)), "
                        f"got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = (f"a {x.dtype} tensor of shape {list(x.shape)}" if isinstance(x, torch.Tensor)
               else type(x).__name__)
        raise TypeError(f"{what} expects the model's input, a floating-point tensor such as "
                        f"torch.randn(B, C, H, W), got {got}")


def profile_layers(model: nn.Module, x: torch.Tensor, repeats: int = 3,
                   warmup: int = 1):
    """Seconds per call of every layer of ``model`` on ``x``, measured with
    ``torch.profiler``: each layer's forward runs inside a ``record_function`` range
    (through module hooks), and the median over ``repeats`` profiled calls (after
    ``warmup`` unprofiled ones, in inference mode) counts.

    On a CPU a layer's time is the wall time of its range (its operators and the Python
    between them); on a GPU, the time of the CUDA kernels it launched. A block's time
    outside its layers (the residual addition) goes to its projection; the rest of the
    call (the input's conversion to channels_last, Python between layers) to the row
    :data:`OTHER`. Works on this package's models, on the result of
    ``fuse_for_inference`` (same layer names), and on any module (its leaves); not on a
    ``torch.compile``'d model, whose compiled code no hook sees.

    The profiler adds a few microseconds per operator: time the whole model without it
    (``measure.time_interleaved``) for the total.

    Shape: x (B, C, H, W) -> pandas Series of seconds, indexed by layer name (+ ``other``).
    """
    from torch.profiler import ProfilerActivity, profile, record_function
    _check_model_and_input(model, x, "profile_layers")
    repeats = _check_count("repeats", repeats)
    warmup = _check_count("warmup", warmup, 0)
    inner = _unwrap(model)
    layers, owners = _layers(inner)
    open_ranges: dict[int, list] = {}

    def enter(name):
        def fn(module, args):
            rf = record_function(name)
            rf.__enter__()
            open_ranges.setdefault(id(module), []).append(rf)
        return fn

    def leave(module, args, out):
        stack = open_ranges.get(id(module))
        if stack:
            stack.pop().__exit__(None, None, None)

    cuda = x.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    handles = []
    for name, module in [(_PREFIX + la.name, la.module) for la in layers] + \
                        [(_BLOCK + b, m) for b, m, _ in owners]:
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            if cuda:
                torch.cuda.synchronize(x.device)
            with _quiet_kineto(), profile(activities=activities) as prof:
                for _ in range(repeats):
                    with record_function(_CALL):
                        model(x)
                    if cuda:
                        torch.cuda.synchronize(x.device)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return _per_layer_seconds(prof.events(), layers, owners, cuda)


class _quiet_kineto:
    """Kineto, the profiler's engine, logs its start and stop (and, on a CUDA build without
    a GPU, a failed device query) to the process's stderr; keep those lines out of sight."""

    def __enter__(self):
        self._saved = None
        try:
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # pragma: no cover - no file descriptor 2
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def _per_layer_seconds(events, layers, owners, cuda: bool):
    import pandas as pd
    ranges = [e for e in events if e.name.startswith("roofline")
              and e.device_type == torch.autograd.DeviceType.CPU]
    calls = sorted((e for e in ranges if e.name == _CALL), key=lambda e: e.time_range.start)

    def elapsed(e) -> float:
        return (e.device_time_total if cuda else e.cpu_time_total) * 1e-6

    per_call: list[dict[str, float]] = [{} for _ in calls]
    starts = [c.time_range.start for c in calls]
    for e in ranges:
        if e.name == _CALL:
            continue
        i = max((k for k, s in enumerate(starts) if s <= e.time_range.start), default=None)
        if i is None:
            continue
        per_call[i][e.name] = per_call[i].get(e.name, 0.0) + elapsed(e)
    names = [la.name for la in layers]
    table: dict[str, list[float]] = {n: [] for n in names}
    table[OTHER] = []
    for call, times in zip(calls, per_call):
        t = {n: times.get(_PREFIX + n, 0.0) for n in names}
        for block, _, target in owners:
            inside = [n for n in names if n.startswith(block + ".")]
            rest = times.get(_BLOCK + block, 0.0) - sum(t[n] for n in inside)
            t[target] += max(rest, 0.0)
        for n in names:
            table[n].append(t[n])
        table[OTHER].append(max(elapsed(call) - sum(t.values()), 0.0))
    ran = [n for n in names if any(v > 0 for v in table[n])] + [OTHER]
    return pd.Series({n: statistics.median(table[n]) for n in ran}, name="seconds", dtype=float)


# --------------------------------------------------------------------------------------
# Timing: ONNX Runtime's profiler
# --------------------------------------------------------------------------------------
def _scopes(node) -> list[str]:
    """Module paths of an exported node, deepest first, from the metadata that
    torch.onnx's exporter (``dynamo=True``) writes."""
    meta = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" in meta:
        try:
            scopes = ast.literal_eval(meta["pkg.torch.onnx.name_scopes"])
            return [s for s in reversed(scopes) if isinstance(s, str) and s]
        except (ValueError, SyntaxError):
            pass
    if "namespace" in meta:   # ": Class/name: Class/name.child: Class"
        parts = [p.split(":")[0].strip() for p in meta["namespace"].split("/")]
        return [p for p in reversed(parts) if p]
    return []


def _layer_of(scopes: list[str], layer_names: set[str], block_target: dict[str, str]) -> str | None:
    for scope in scopes:
        parts = scope.split(".")
        for k in range(len(parts)):  # drop wrappers' names in front: model.stem -> stem
            candidate = ".".join(parts[k:])
            if candidate in layer_names:
                return candidate
            if candidate in block_target:
                return block_target[candidate]
    return None


def profile_onnx(path, x: torch.Tensor, model: nn.Module, repeats: int = 3,
                 warmup: int = 1, threads: int | None = None):
    """Seconds per call of every layer of ``model`` when ONNX Runtime runs ``path``, its
    export (``deploy.export_onnx``), on ``x``: ONNX Runtime's own profiler
    (``SessionOptions.enable_profiling``) times every node it executes; the median over
    ``repeats`` runs after ``warmup`` counts. The session is set up as
    ``deploy.onnx_session`` sets it up (all graph optimisations, ``threads`` intra-op
    threads, default ``torch.get_num_threads()``, no spinning).

    ONNX Runtime rewrites the graph: it fuses nodes and inserts layout conversions
    (``ReorderInput``/``ReorderOutput``). A node is assigned to a layer through the
    module path that the exporter recorded for the node it came from; a node with none (a
    layout conversion) goes to the layer of the node before it. The run's time outside
    every node goes to :data:`OTHER`.

    Shape: x (B, C, H, W) -> pandas Series of seconds, indexed by layer name (+ ``other``).
    """
    import pandas as pd
    _check_model_and_input(model, x, "profile_onnx")
    repeats = _check_count("repeats", repeats)
    warmup = _check_count("warmup", warmup, 0)
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file at {path!r}; write one with "
                                "deploy.export_onnx(model, path, image_size)")
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(f"profile_onnx needs onnx and onnxruntime ({exc.name} is missing): "
                          "pip install onnx onnxruntime") from None
    layers, owners = _layers(_unwrap(model))
    layer_names = {la.name for la in layers}
    block_target = {b: target for b, _, target in owners}
    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    nodes = {n.name: n for n in graph.node}
    producer = {out: n for n in graph.node for out in n.output}

    def layer_of_event(name: str) -> str | None:
        name = name.removesuffix("_kernel_time")
        candidates = [name, name.split("/")[0], name.removesuffix("_nchwc")]
        for c in candidates:
            node = nodes.get(c) or producer.get(c)
            if node is not None:
                found = _layer_of(_scopes(node), layer_names, block_target)
                if found is not None:
                    return found
        return None

    with tempfile.TemporaryDirectory(prefix="roofline-ort-") as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "roofline")
        session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.detach().cpu().float().contiguous().numpy()}
        for _ in range(warmup + repeats):
            session.run(None, feed)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[warmup:]
    names = [la.name for la in layers]
    table: dict[str, list[float]] = {n: [0.0] * len(runs) for n in names + [OTHER]}
    nodes_events = sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e["ts"])
    for i, run in enumerate(runs):
        start, end = run["ts"], run["ts"] + run["dur"]
        current, inside = None, 0.0
        for e in nodes_events:
            if not start <= e["ts"] <= end:
                continue
            current = layer_of_event(e["name"]) or current or OTHER
            table[current][i] += e["dur"] * 1e-6
            inside += e["dur"] * 1e-6
        table[OTHER][i] += max(run["dur"] * 1e-6 - inside, 0.0)
    ran = [n for n in names if any(v > 0 for v in table[n])] + [OTHER]
    return pd.Series({n: statistics.median(table[n]) for n in ran}, name="seconds", dtype=float)


# --------------------------------------------------------------------------------------
# Counts and times together
# --------------------------------------------------------------------------------------
def roofline(table, seconds, ceilings: Ceilings):
    """The roofline table: ``table`` (from :func:`layer_table`) with each layer's measured
    ``seconds`` (from :func:`profile_layers` or :func:`profile_onnx`) and its bound on
    this machine's ``ceilings`` (Williams, Waterman & Patterson 2009, "The Roofline
    Model"):

    ``gflops`` attained (flops / seconds); ``attainable_gflops`` = min(peak, intensity x
    bandwidth); ``bound_seconds`` = max(flops / peak, bytes / bandwidth); ``bound``,
    which ceiling sets it (``memory`` or ``compute``); ``fraction`` = bound_seconds /
    seconds, how close the layer came to its limit (above 1 when its data stayed in a
    cache, which the DRAM ceiling does not know about); ``excess_seconds`` = seconds -
    bound_seconds, the time lost to the bound. A layer that ran fused into another one
    (no time of its own) has ``fraction`` NaN.

    Shape: DataFrame (L rows) + Series (L or L + 1 rows) -> DataFrame (with ``other``).
    """
    import numpy as np
    import pandas as pd
    if not isinstance(ceilings, Ceilings):
        raise TypeError(f"ceilings must be a Ceilings (from measure_ceilings()), "
                        f"got {type(ceilings).__name__}")
    if not isinstance(table, pd.DataFrame) or not {"flops", "bytes", "role"} <= set(table.columns):
        raise TypeError("table must be the DataFrame of layer_table(model, input_size)")
    if not isinstance(seconds, pd.Series):
        raise TypeError("seconds must be the Series of profile_layers() or profile_onnx(), "
                        f"got {type(seconds).__name__}")
    unknown = [n for n in seconds.index if n not in table.index and n != OTHER]
    if unknown:
        raise ValueError(f"seconds has layers that table does not: {unknown[:3]}; profile the "
                         "same model (or its fuse_for_inference copy, or its ONNX export)")
    roof = table.copy()
    if OTHER in seconds.index and OTHER not in roof.index:
        roof.loc[OTHER] = {"role": OTHER, "output": "", "multiply_adds": 0, "flops": 0,
                           "input_bytes": 0, "weight_bytes": 0, "output_bytes": 0, "bytes": 0,
                           "intensity": np.nan}
    roof["seconds"] = seconds.reindex(roof.index).fillna(0.0).astype(float)
    flops, nbytes = roof["flops"].astype(float), roof["bytes"].astype(float)
    timed = roof["seconds"].where(roof["seconds"] > 0)
    roof["gflops"] = flops / timed / 1e9
    roof["attainable_gflops"] = ceilings.attainable_gflops(roof["intensity"].fillna(0.0).to_numpy())
    compute = flops / (ceilings.peak_gflops * 1e9)
    memory = nbytes / (ceilings.bandwidth_gbs * 1e9)
    roof["bound_seconds"] = np.maximum(compute, memory)
    roof["bound"] = np.where(compute > memory, "compute", "memory")
    roof.loc[roof["bound_seconds"] == 0, "bound"] = ""
    roof["fraction"] = roof["bound_seconds"] / timed
    roof["excess_seconds"] = roof["seconds"] - roof["bound_seconds"]
    return roof


def attained_fraction(roof, total_seconds: float | None = None) -> float:
    """The whole network's attained fraction of its roofline: the sum of the per-layer
    bound times over the measured time, ``total_seconds`` (default: the table's summed
    ``seconds``, ``other`` included). 1 would be every layer at its ceiling with nothing
    in between.

    Shape: DataFrame -> float.
    """
    if total_seconds is None:
        total_seconds = float(roof["seconds"].sum())
    if isinstance(total_seconds, bool) or not isinstance(total_seconds, (int, float)) \
            or not total_seconds > 0:
        raise ValueError(f"total_seconds must be a positive number, got {total_seconds!r}")
    return float(roof["bound_seconds"].sum()) / total_seconds


def role_shares(roof):
    """Per role: its share of the measured time, of the FLOPs and of the bound time, and
    its own attained fraction (bound / measured). Roles in block order, ``other`` last.

    Shape: DataFrame (L rows) -> DataFrame (one row per role).
    """
    import pandas as pd
    g = roof.groupby("role", sort=False)[["seconds", "flops", "bound_seconds"]].sum()
    order = [r for r in ROLES + _GENERIC_ROLES if r in g.index]
    order = list(dict.fromkeys(order + [r for r in g.index if r not in order and r != OTHER]
                               + ([OTHER] if OTHER in g.index else [])))
    g = g.loc[order]
    out = pd.DataFrame({
        "share of time": g["seconds"] / g["seconds"].sum(),
        "share of FLOPs": g["flops"] / g["flops"].sum(),
        "share of bound": g["bound_seconds"] / g["bound_seconds"].sum(),
        "fraction of bound": g["bound_seconds"] / g["seconds"].where(g["seconds"] > 0),
    })
    out.index.name = "role"
    return out


def plot_roofline(roof, ceilings: Ceilings, ax=None, label: int = 3, title: str | None = None):
    """Draw ``roof`` (from :func:`roofline`) on log-log axes: the two ceilings, and every
    layer with FLOPs as a point at (intensity, attained GFLOP/s), coloured by role; the
    ``label`` layers with the most ``excess_seconds`` are numbered, and named in the
    upper left corner. Returns the axes.

    Shape: DataFrame -> matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    if not isinstance(ceilings, Ceilings):
        raise TypeError(f"ceilings must be a Ceilings, got {type(ceilings).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), dpi=100)
    points = roof[(roof["flops"] > 0) & (roof["seconds"] > 0)]
    # The roof spans five decades left of the ridge and almost two right of it (more if a
    # point lies further out), so that panels of different models line up.
    lo, hi = ceilings.ridge * 1e-5, ceilings.ridge * 50
    if len(points):
        lo, hi = min(lo, points["intensity"].min() / 2), max(hi, points["intensity"].max() * 2)
    xs = np.geomspace(lo, hi, 200)
    ax.plot(xs, ceilings.attainable_gflops(xs), color="black", lw=1.5)
    ax.axvline(ceilings.ridge, color="black", lw=0.6, ls=":")
    for role in dict.fromkeys(points["role"]):
        sel = points[points["role"] == role]
        ax.scatter(sel["intensity"], sel["gflops"], s=18, alpha=0.8, label=role,
                   color=_ROLE_COLOURS.get(role, "#000000"), edgecolors="none")
    worst = points.nlargest(label, "excess_seconds") if label else points.iloc[:0]
    for k, (name, row) in enumerate(worst.iterrows(), 1):
        ax.annotate(str(k), (row["intensity"], row["gflops"]), textcoords="offset points",
                    xytext=(3, 3), fontsize=8, fontweight="bold")
    if len(worst):   # the numbered layers, listed where no point can be: above the slope
        ax.text(0.03, 0.97, "\n".join(f"{k} {name}" for k, name in enumerate(worst.index, 1)),
                transform=ax.transAxes, va="top", ha="left", fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP per byte)",
           ylabel="attained (GFLOP/s)", title=title)
    ax.grid(True, which="major", alpha=0.3)
    return ax
