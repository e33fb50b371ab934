r"""Looking inside a model: shape traces, parameter and multiply-add counts, a summary.

Counting uses PyTorch's own tools (``torch.utils.flop_counter``, ``torchinfo``) on the
meta device where it can, so even B7 and V2-XL cost no memory to count.
"""
from __future__ import annotations

import copy
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .analytic import analytic_flops, analytic_params
from .config import ModelConfig, get_model_config
from .model import EfficientNet

__all__ = ["trace_shapes", "count_params", "count_bn_statistics", "count_flops", "summary", "format_shape",
           "DEPTHS", "SavedTensors", "saved_tensors", "activation_memory", "meta_twin", "inspecting", "as_model"]

#: How deep :func:`trace_shapes` looks: one line per stage, per block or per layer.
DEPTHS = ("stage", "block", "layer")


def format_shape(shape: Sequence[int]) -> str:
    """``torch.Size([1, 3, 224, 224])`` -> ``"[1, 3, 224, 224]"``."""
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


# --------------------------------------------------------------------------------------
# What every inspection does first: get a module, in a known mode, at no memory cost
# --------------------------------------------------------------------------------------
def meta_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` exactly as it is (edited heads, removed stages and all) with
    every parameter and buffer on the meta device: shapes only, no memory, no copy of
    the weights. Shape: module -> module.
    """
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def as_model(model_or_config) -> nn.Module:
    """A name or a ModelConfig becomes its model built on the meta device (no weights in
    memory); a module is returned as it is. Shape: name | config | module -> module.
    """
    if isinstance(model_or_config, nn.Module):
        return model_or_config
    if isinstance(model_or_config, str):
        model_or_config = get_model_config(model_or_config)
    if isinstance(model_or_config, ModelConfig):
        with torch.device("meta"):
            return EfficientNet(model_or_config)
    raise TypeError(f"expected an nn.Module, a ModelConfig or a model name, got {type(model_or_config).__name__}")


@contextmanager
def inspecting(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (or training mode) for an inspection and restore its
    mode afterwards, whatever happens. Shape: module -> the same module.
    """
    was_training = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was_training)


def _units(model: nn.Module, depth: str) -> list[tuple[str, nn.Module]]:
    """The modules whose output a trace at ``depth`` shows, in definition order."""
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {DEPTHS}, got {depth!r}")
    if depth == "layer":
        return [(n, m) for n, m in model.named_modules()
                if n and not list(m.children()) and not isinstance(m, nn.Identity)]
    if isinstance(model, EfficientNet):
        units = [("stem", model.stem)]
        for number, stage in model.stages.named_children():
            if depth == "stage":
                units.append((f"stages.{number}", stage))
            else:
                units += [(f"stages.{number}.{j}", b) for j, b in enumerate(stage)]
        return units + [("head", model.head), ("pool", model.pool), ("dropout", model.dropout),
                        ("classifier", model.classifier)]
    return [(n, m) for n, m in model.named_children() if not isinstance(m, nn.Identity)]


def _device(model: nn.Module) -> torch.device:
    p = next(itertools.chain(model.parameters(), model.buffers()), None)
    return p.device if p is not None else torch.device("cpu")


def _check_input_size(input_size) -> tuple[int, ...]:
    if (not isinstance(input_size, (tuple, list, torch.Size)) or len(input_size) != 4
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in input_size)):
        raise ValueError(f"input_size must be [B, C, H, W] (four positive ints), got {input_size!r}")
    return tuple(input_size)


def _input_size(model: nn.Module, input_size) -> tuple[int, ...]:
    """The given size, checked; by default one image at an EfficientNet's native size and
    with its input channels."""
    if input_size is None:
        if not isinstance(model, EfficientNet):
            raise ValueError(f"input_size [B, C, H, W] is required for a {type(model).__name__}, "
                             "which is not an EfficientNet")
        r = model.config.image_size or model.config.resolution
        input_size = (1, model.in_channels, r, r)
    return _check_input_size(input_size)


def trace_shapes(model, input_size: Sequence[int] | None = None, depth: str = "stage",
                 print_fn: Callable[[str], None] | None = print) -> list[tuple[str, tuple[int, ...]]]:
    """Run a dummy input through ``model`` and print one line per step:
    ``[1, 3, 224, 224] -> stem -> [1, 32, 112, 112]``.

    ``model`` is a module (blocks too), a ModelConfig or a model name (built on the
    meta device: shapes only). ``input_size`` defaults to one image with the model's
    input channels at its native size. ``depth`` is ``"stage"`` (stem, each stage,
    head, pool, dropout, classifier), ``"block"`` (every block) or ``"layer"`` (every
    leaf module: pad, conv, bn, act, SE parts ...). Runs in eval mode, without
    gradients, on the model's device.

    Shape: returns ``[(name, output shape), ...]`` in execution order.
    """
    model = as_model(model)
    input_size = _input_size(model, input_size)
    units = _units(model, depth)
    records: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []

    def hook(name):
        def fn(module, args, output):
            if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
                records.append((name, tuple(args[0].shape), tuple(output.shape)))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in units]
    try:
        with inspecting(model), torch.no_grad():
            out = model(torch.zeros(input_size, device=_device(model)))
    finally:
        for h in handles:
            h.remove()
    if isinstance(out, torch.Tensor) and (not records or records[-1][2] != tuple(out.shape)):
        # e.g. SE's final multiply, which is not a module: show where the module ends.
        records.append(("output", records[-1][2] if records else input_size, tuple(out.shape)))
    if print_fn is not None:
        for name, shape_in, shape_out in records:
            print_fn(f"{format_shape(shape_in)} -> {name} -> {format_shape(shape_out)}")
    return [(name, shape_out) for name, _, shape_out in records]


def count_params(model, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases; BN running statistics are buffers and
    do not count, as in the paper and torchvision's metadata).

    ``model``: a module, counted as it is; or a ModelConfig or a model name, counted in
    closed form from the config (:func:`~effnet_tutorial.analytic.analytic_params`), exactly
    and without building anything.

    Shape: model | config | name -> int.
    """
    if isinstance(model, (str, ModelConfig)):
        return analytic_params(model)   # closed form: exact, and no module is built
    model = as_model(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_bn_statistics(model) -> int:
    """Number of BatchNorm running statistics: the elements of every ``running_mean`` and
    ``running_var`` buffer (not ``num_batches_tracked``), which :func:`count_params` leaves
    out. Keras counts them: its BatchNormalization layer keeps ``moving_mean`` and
    ``moving_variance`` as non-trainable weights (keras-team/keras@05029516,
    ``keras/src/layers/normalization/batch_normalization.py``, ``build``), so a Keras
    parameter count, such as the ones google/automl's tests pin (chapters 5 and 6), is
    ``count_params(model) + count_bn_statistics(model)``.

    ``model``: a module, counted as it is, or a ModelConfig or a model name, built on the
    meta device (no memory).

    Shape: model | config | name -> int.
    """
    model = as_model(model)
    return sum(b.numel() for name, b in model.named_buffers()
               if name.rsplit(".", 1)[-1] in ("running_mean", "running_var"))


def count_flops(model, input_size: Sequence[int] | None = None) -> int:
    """Multiply-adds of one forward pass, what the EfficientNet paper calls FLOPs.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
    products; it reports 2 FLOPs per multiply-add, halved here), in eval mode. A
    module is counted as it is (an edited head, a removed stage), on a meta-device
    twin, so no memory is allocated; a ModelConfig or a name is counted in closed form
    (:func:`~effnet_tutorial.analytic.analytic_flops`), exactly and in microseconds.
    ``input_size`` defaults to ``[1, C, R, R]`` at the model's native resolution.

    Shape: [B, C, H, W] -> int.
    """
    if isinstance(model, (str, ModelConfig)):
        return analytic_flops(model, input_size)   # closed form: exact, and no module is built
    model = as_model(model)
    input_size = _input_size(model, input_size)
    twin = model if _device(model).type == "meta" else meta_twin(model)
    counter = FlopCounterMode(display=False)
    with inspecting(twin), torch.no_grad(), counter:
        twin(torch.zeros(input_size, device="meta"))
    return counter.get_total_flops() // 2


def summary(model: nn.Module, input_size: Sequence[int] | None = None, depth: int = 3, **kwargs):
    """A layer table from torchinfo (output shapes, parameters, multiply-adds).

    Returns torchinfo's ``ModelStatistics``; print it. Extra keyword arguments go to
    ``torchinfo.summary``.

    Shape: input_size [B, C, H, W] -> a table with every layer's output shape.
    """
    try:
        import torchinfo
    except ImportError as exc:  # pragma: no cover - torchinfo is in requirements.txt
        raise ImportError("summary() needs torchinfo: pip install torchinfo") from exc
    model = as_model(model)
    input_size = _input_size(model, input_size)
    kwargs.setdefault("col_names", ("output_size", "num_params", "mult_adds"))
    kwargs.setdefault("row_settings", ("var_names",))
    kwargs.setdefault("verbose", 0)
    return torchinfo.summary(model, input_size=input_size, depth=depth, device=_device(model), **kwargs)


@dataclass(frozen=True)
class SavedTensors:
    """What autograd kept for the backward pass of one call.

    ``saves``: how many times a tensor was saved; ``distinct``: how many different
    storages those were (views and repeats share one); ``nbytes``: their total size;
    ``by_unit``: bytes per unit (module name), each storage charged to the unit that
    saved it first.
    """

    saves: int
    distinct: int
    nbytes: int
    by_unit: dict[str, int] = field(default_factory=dict)


def saved_tensors(fn: Callable, *args, exclude: Iterable[torch.Tensor] = (),
                  units: Sequence[tuple[str, nn.Module]] = ()) -> tuple[SavedTensors, Any]:
    """Call ``fn(*args)`` and measure what autograd saves for backward, with
    ``torch.autograd.graph.saved_tensors_hooks``. Storages of ``exclude`` (e.g. the
    weights, which exist anyway) are not counted. Works on the meta device, where the
    sizes are the same and nothing is allocated.

    Shape: returns (SavedTensors, fn's output).
    """
    # PyTorch keeps one Python object per storage (views share it), so identity identifies
    # a storage; holding the objects keeps their ids from being reused meanwhile.
    excluded = {id(s): s for s in (t.untyped_storage() for t in exclude)}
    storages: dict[int, tuple[Any, str]] = {}
    current = [units[0][0] if units else ""]
    saves = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saves
        saves += 1
        storage = t.untyped_storage()
        if id(storage) not in excluded and id(storage) not in storages:
            storages[id(storage)] = (storage, current[0])
        return t  # keep the tensor itself: nothing is copied

    handles = [m.register_forward_pre_hook(lambda m, a, name=name: current.__setitem__(0, name))
               for name, m in units]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fn(*args)
    finally:
        for h in handles:
            h.remove()
    by_unit = {name: 0 for name, _ in units}
    if units:
        for storage, name in storages.values():
            by_unit[name] += storage.nbytes()
    result = SavedTensors(saves, len(storages), sum(s.nbytes() for s, _ in storages.values()), by_unit)
    return result, out


def activation_memory(model, input_size: Sequence[int] | None = None) -> SavedTensors:
    """Activation memory of training: what one training-mode forward pass saves for
    backward (weights and buffers left out), per unit of a stage-depth trace for an
    EfficientNet (``stem``, ``stages.0`` ..., ``head``, ``classifier``).

    Measured on a meta-device twin, so even B7 costs no memory (the bytes are the same as
    on the CPU); ``model`` may also be a ModelConfig or a name. The model is untouched.

    Shape: input_size [B, C, H, W] -> SavedTensors (bytes grow linearly with B).
    """
    model = as_model(model)
    input_size = _input_size(model, input_size)
    twin = model if _device(model).type == "meta" else meta_twin(model)
    units = [(n, m) for n, m in _units(twin, "stage") if any(True for _ in m.parameters())]
    x = torch.zeros(input_size, device="meta")
    weights = list(twin.parameters()) + list(twin.buffers())
    with inspecting(twin, training=True), torch.enable_grad():
        saved, out = saved_tensors(twin, x, exclude=weights, units=units)
    del out  # frees the graph
    return saved
