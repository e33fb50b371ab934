r"""Making a trained EfficientNet fast for inference, and exporting it (chapter 9).

* :func:`fold_batchnorm` folds an inference-mode BatchNorm into the convolution before
  it: :math:`W' = W\gamma/\sqrt{\sigma^2+\epsilon}`,
  :math:`b' = \beta + (b - \mu)\gamma/\sqrt{\sigma^2+\epsilon}` per output channel
  (Ioffe & Szegedy 2015, §3.1: in inference BN is a fixed affine map).
* :func:`fuse_for_inference` applies it to every conv + BN pair of a model, swaps every
  Swish for PyTorch's fused ``nn.SiLU``, stores the weights ``channels_last`` and can
  ``torch.compile`` the result.
* :func:`export_onnx` writes an ONNX file with PyTorch's exporter and checks it against
  ONNX Runtime; :func:`onnx_session` opens such a file.

Everything works on a copy: the model you pass in is never changed.
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import pathlib
import shutil
import sysconfig
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import MBConv
from .layers import (ConvBNAct, DynamicSamePad2d, MemoryEfficientSwish, SqueezeExcite,
                     StaticSamePad2d, Swish, same_padding)
# Timing lives in .measure; benchmarks/*.py still import these two names from here.

__all__ = ["SWISH_KINDS", "replace_swish", "fold_batchnorm", "fuse_for_inference",
           "InferenceModel", "KernelPaddedConv2d", "export_onnx", "onnx_session", "OnnxExportError",
           "CompilerNotFoundError", "cpp_compiler", "max_relative_error"]

#: What :func:`replace_swish` can put in place of every Swish: the two-op
#: ``x * sigmoid(x)`` (:class:`~effnet_tutorial.layers.Swish`), the custom-backward one
#: that saves only its input (:class:`~effnet_tutorial.layers.MemoryEfficientSwish`), or
#: PyTorch's ``nn.SiLU``.
SWISH_KINDS = {"plain": Swish, "memory_efficient": MemoryEfficientSwish, "silu": nn.SiLU}
_SWISH_TYPES = (Swish, MemoryEfficientSwish, nn.SiLU)


class OnnxExportError(RuntimeError):
    """``export_onnx`` could not export a model, or the exported file gives other outputs."""


class CompilerNotFoundError(RuntimeError):
    """``fuse_for_inference(compile=True)`` would need a C++ toolchain that is not installed."""


# --------------------------------------------------------------------------------------
# Checks shared by the entry points
# --------------------------------------------------------------------------------------
def _check_module(model, what: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} expects an nn.Module (e.g. EfficientNet.from_name(...)), "
                        f"got {type(model).__name__}")
    if hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
        raise TypeError(f"{what} expects the model before torch.compile, got a compiled "
                        "module: pass model._orig_mod, or the model you compiled")
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    meta = [name for name, t in tensors if t.is_meta]
    if meta:
        raise ValueError(f"{what} needs real weights, but {meta[0]!r} (and {len(meta) - 1} more) "
                         "is on the meta device (shapes only): build the model on the CPU or "
                         "load weights first")


def _unwrap(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, InferenceModel) else model


def max_relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    r"""Largest absolute difference relative to the largest value of ``expected``:
    :math:`\max|g - e| / \max|e|`, the measure behind "equal to 1e-4 relative".

    Shape: two tensors of the same shape -> float.
    """
    got = torch.as_tensor(got).detach().double().cpu()
    expected = torch.as_tensor(expected).detach().double().cpu()
    if got.shape != expected.shape:
        raise ValueError(f"shapes differ: {list(got.shape)} vs {list(expected.shape)}")
    scale = expected.abs().max().item()
    return (got - expected).abs().max().item() / (scale if scale > 0 else 1.0)


# --------------------------------------------------------------------------------------
# Swish variants
# --------------------------------------------------------------------------------------
def replace_swish(model: nn.Module, kind: str) -> nn.Module:
    """Put the Swish variant ``kind`` (a key of :data:`SWISH_KINDS`) in
    place of every Swish, memory-efficient Swish and ``nn.SiLU`` of
    ``model``, keeping each one's ``inplace`` setting. Changes ``model`` in
    place and returns it.

    All three compute :math:`x\\sigma(x)`; they differ in what autograd
    saves (chapter 2) and in what an exporter or compiler sees.

    Shape: the model's shapes are unchanged.
    """
    if kind not in SWISH_KINDS:
        raise ValueError(f"kind must be one of {sorted(SWISH_KINDS)}, "
                         f"got {kind!r}")
    new = SWISH_KINDS[kind]
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, _SWISH_TYPES):
                setattr(parent, name, new(inplace=child.inplace))
    return model


# --------------------------------------------------------------------------------------
# BatchNorm folding
# --------------------------------------------------------------------------------------
def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    r"""One convolution that computes ``bn(conv(x))``, ``bn`` in eval mode.

    Inference-mode BatchNorm (Ioffe & Szegedy 2015, §3.1) is the affine
    map :math:`y = \gamma (z - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`
    per channel, with the running mean :math:`\mu` and variance
    :math:`\sigma^2`. Applied to :math:`z = W * x + b`, it is again a
    convolution, with :math:`W' = W \cdot s` and
    :math:`b' = (b - \mu)\, s + \beta`, where
    :math:`s = \gamma / \sqrt{\sigma^2 + \epsilon}` scales each output
    channel's filter, computed in float64 and applied in the conv's dtype.
    Neither input is changed.

    Shape: a conv (B, C_in, H, W) -> (B, C_out, H', W'): the same shapes.
    """
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(
            "fold_batchnorm expects (nn.Conv2d, nn.BatchNorm2d), got "
            f"({type(conv).__name__}, {type(bn).__name__})")
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"the BatchNorm normalises {bn.num_features} channels but the "
            f"conv has {conv.out_channels} outputs: they are not a conv + "
            "BN pair")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "this BatchNorm keeps no running statistics "
            "(track_running_stats=False): it normalises with each batch's "
            "statistics, which no fixed conv can reproduce")
    w = conv.weight.detach()                    # (C_out, C_in / g, k, k)
    mean = bn.running_mean.double()             # (C_out,)
    var = bn.running_var.double()               # (C_out,)
    ones, zeros = torch.ones_like(mean), torch.zeros_like(mean)
    gamma = bn.weight.detach().double() if bn.weight is not None else ones
    beta = bn.bias.detach().double() if bn.bias is not None else zeros
    b = conv.bias.detach().double() if conv.bias is not None else zeros
    s = gamma / torch.sqrt(var + bn.eps)        # (C_out,)

    # The scale in float64, one rounding in the product: float64 weights
    # would double the memory traffic of folding, for no visible gain.
    grad = conv.weight.requires_grad
    weight = nn.Parameter(w * s.to(w.dtype)[:, None, None, None], grad)
    bias = nn.Parameter(((b - mean) * s + beta).to(w.dtype), grad)
    # A copy keeps the conv's class and settings (a subclass's forward too);
    # the memo hands it the new tensors instead of copying the old ones.
    memo = {id(conv.weight): weight}
    if conv.bias is not None:
        memo[id(conv.bias)] = bias
    fused = copy.deepcopy(conv, memo)
    fused.bias = bias
    return fused


def _folded_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with the BN of every ConvBNAct, and every BN right after a
    conv in an nn.Sequential (torchvision's ``Conv2dNormActivation``), folded into its conv
    and replaced by ``nn.Identity``. deepcopy's memo hands the copy the folded convs, so
    each folded weight is written once and never copied first."""
    memo: dict[int, nn.Module] = {}
    for module in model.modules():
        if isinstance(module, ConvBNAct):
            pairs = [(module.conv, module.bn)]
        elif isinstance(module, nn.Sequential):
            children = list(module.children())
            pairs = list(zip(children, children[1:]))
        else:
            continue
        for conv, bn in pairs:
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                    and id(conv) not in memo):
                memo[id(conv)] = fold_batchnorm(conv, bn)
                memo[id(bn)] = nn.Identity()
    return copy.deepcopy(model, memo)


class KernelPaddedConv2d(nn.Conv2d):
    r"""A convolution with TF "same" padding that never copies its input.

    TF pads a stride-2 layer asymmetrically, e.g. (0, 1) for a 3x3 kernel on an even size,
    which ``nn.Conv2d``'s symmetric ``padding`` cannot express, so the eager model pads a
    copy of the input first (``F.pad``). But a kxk convolution with padding (before, after)
    equals a (k+d)x(k+d) convolution with symmetric padding ``after`` whose kernel starts with
    d = after - before rows (and columns) of zeros: the zero taps meet exactly the pixels
    that the larger padding adds in front. The kernel is padded at every call (a few
    kilobytes), the input never. The zero taps add multiply-adds (1 % for B0's depthwise
    convolutions, 3 % with the stem), which a FLOP counter sees. Same parameters as
    ``nn.Conv2d``; dilation 1 only.

    Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / s), ceil(W / s)).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """TF "same" convolution without a padded copy of x.

        Shape: (B, C_in, H, W) -> (B, C_out, ceil(H / s), ceil(W / s)).
        """
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        w = self.weight                                      # (C_out, C_in / g, kh, kw)
        if bottom != top or right != left:
            w = F.pad(w, (right - left, 0, bottom - top, 0))  # zeros first: kh + d, kw + d
        return F.conv2d(x, w, self.bias, self.stride, (bottom, right), 1, self.groups)


def _pad_in_kernels(model: nn.Module) -> None:
    """Replace every ConvBNAct's TF pad layer + conv by one KernelPaddedConv2d."""
    for module in model.modules():
        tf_pad = isinstance(module, ConvBNAct) and isinstance(
            module.pad, (StaticSamePad2d, DynamicSamePad2d))
        if tf_pad and module.conv.dilation == (1, 1) and module.conv.padding == (0, 0):
            c = module.conv
            new = KernelPaddedConv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride,
                                     groups=c.groups, bias=c.bias is not None,
                                     device=c.weight.device, dtype=c.weight.dtype)
            new.load_state_dict(c.state_dict())
            module.conv, module.pad = new.train(c.training), nn.Identity()


class _InPlaceSqueezeExcite(nn.Module):
    """An MBConv's SE block that rescales its input in place: there the input is the fresh
    output of the depthwise conv, which nothing else reads, so no new tensor is needed.
    Holds the original SE's layers (same parameter names). Inference only.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, se: SqueezeExcite):
        super().__init__()
        self.squeeze, self.reduce, self.act = se.squeeze, se.reduce, se.act
        self.expand, self.gate = se.expand, se.gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """SE (Hu et al. 2018) with the final product in place. Shape: (B, C, H, W) -> same."""
        s = self.expand(self.act(self.reduce(self.squeeze(x))))  # (B, C, 1, 1)
        if torch.is_grad_enabled() and x.requires_grad:
            return x * self.gate(s)
        return x.mul_(self.gate(s))                              # (B, C, H, W)


def _se_in_place(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, MBConv) and type(module.se) is SqueezeExcite:
            module.se = _InPlaceSqueezeExcite(module.se)


class InferenceModel(nn.Module):
    """What :func:`fuse_for_inference` returns: the folded model, for inference only.

    ``forward`` converts a 4-d input to ``channels_last`` when the weights are stored that
    way, so callers pass ordinary tensors. ``train()`` refuses: the BatchNorm layers are
    gone, so the model can no longer learn their statistics; train the original and fuse
    again.

    Shape: as the wrapped model, e.g. (B, 3, H, W) -> (B, num_classes).
    """

    def __init__(self, model: nn.Module, channels_last: bool):
        super().__init__()
        self.model = model.eval()
        self.channels_last = channels_last
        self.training = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped model on ``x`` (in channels_last memory order when set).

        Shape: (B, C, H, W) -> the wrapped model's output.
        """
        if self.channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W), stored B, H, W, C
        return self.model(x)

    def train(self, mode: bool = True) -> InferenceModel:
        """Only ``train(False)`` (``eval()``) is allowed. Shape: -> the same model."""
        if mode:
            raise RuntimeError("a model from fuse_for_inference has its BatchNorm folded into the "
                               "convolutions and cannot be trained: train the original model, "
                               "then fuse it again")
        return super().train(False)

    def extra_repr(self) -> str:
        return f"channels_last={self.channels_last}"


def fuse_for_inference(model: nn.Module, channels_last: bool = True,
                       compile: bool = False,
                       compile_options: dict | None = None) -> nn.Module:
    """A copy of ``model`` made fast for inference (chapter 9).

    1. eval mode, and no parameter requires a gradient, so autograd
       records nothing;
    2. every BatchNorm folded into the convolution before it
       (:func:`fold_batchnorm`): that removes a full read and write of
       every conv output;
    3. every Swish replaced by ``nn.SiLU`` (one fused kernel);
    4. TF "same" padding moved into the kernels
       (:class:`KernelPaddedConv2d`), so no stride-2 layer copies its
       input, and each MBConv's SE block rescales in place;
    5. with ``channels_last``, weights stored in NHWC order, which oneDNN
       on CPUs and cuDNN's tensor-core kernels on GPUs prefer; the input
       is converted in ``forward``;
    6. with ``compile``, wrapped in ``torch.compile(**compile_options)``,
       which is slow to compile (minutes on a small CPU). With the default
       ``dynamic=None`` the first call with a new input shape compiles
       once more, with the sizes that changed as symbols, which later
       sizes reuse (PyTorch 2.14 docs, "Dealing with Recompilations");
       ``dynamic=True`` starts that way. On a CPU its default backend
       needs a C++ compiler: without one, :class:`CompilerNotFoundError`
       says what to install.

    BatchNorm is folded where it follows a conv in the model's own
    structure: in every ``ConvBNAct`` (all of this package's models) and
    right after an ``nn.Conv2d`` in an ``nn.Sequential`` (e.g.
    torchvision's EfficientNets). A model with any other BatchNorm raises
    ``ValueError`` naming it. The result equals the eager model in eval
    mode to about 1e-6 relative in float32.

    Shape: as ``model``, e.g. (B, 3, H, W) -> (B, num_classes).
    """
    _check_module(model, "fuse_for_inference")
    if compile_options is not None and not isinstance(compile_options, dict):
        raise TypeError(
            "compile_options must be a dict of torch.compile arguments, "
            f"got {type(compile_options).__name__}")
    fused = _folded_copy(_unwrap(model)).eval()
    left = [name for name, m in fused.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        names = ", ".join(left[:5]) + (" ..." if len(left) > 5 else "")
        raise ValueError(
            "fuse_for_inference folds BatchNorm into the conv before it, "
            "inside ConvBNAct units and nn.Sequential (conv, BN) pairs; "
            f"{type(model).__name__} has {len(left)} BatchNorm layer(s) it "
            f"cannot pair with a conv: {names}. For other models, "
            "torch.fx.experimental.optimization.fuse traces the graph to "
            "find the pairs")
    replace_swish(fused, "silu")
    _pad_in_kernels(fused)
    _se_in_place(fused)
    if channels_last:
        fused = fused.to(memory_format=torch.channels_last)
    for p in fused.parameters():  # autograd records nothing, no_grad or not
        p.requires_grad_(False)
    result = InferenceModel(fused, channels_last)
    if compile:
        _check_compile_toolchain(fused, compile_options or {})
        return torch.compile(result, **(compile_options or {}))
    return result


def cpp_compiler() -> str | None:
    """The C++ compiler that ``torch.compile``'s Inductor would run for CPU code (its
    ``torch._inductor.config.cpp.cxx`` candidates, found on ``PATH``), or None.

    Shape: () -> a path or None.
    """
    found = (shutil.which(c) for c in _cxx_candidates())
    return next((path for path in found if path), None)


def _cxx_candidates() -> list[str]:
    from torch._inductor import config as inductor_config
    cxx = inductor_config.cpp.cxx
    cxx = cxx if isinstance(cxx, (list, tuple)) else (cxx,)
    # None stands for "download gcc with conda", which needs a network and conda: skip it.
    return [c for c in cxx if c]


def _check_compile_toolchain(model: nn.Module, options: dict) -> None:
    """Fail now, with what to install, rather than at the first call, deep in Inductor.

    Inductor (the default backend) generates C++ for every part of the model on a CPU and
    builds it with a C++ compiler against Python's headers; the check runs only then."""
    backend = options.get("backend", "inductor")
    on_cpu = all(t.device.type == "cpu" for t in list(model.parameters()) + list(model.buffers()))
    if backend != "inductor" or not on_cpu:
        return
    fix = ("install one (Debian/Ubuntu: apt-get install g++, or build-essential), set CXX to "
           "its path, or compile with compile_options={'backend': 'eager'} (tracing only) or "
           "not at all (compile=False)")
    if cpp_compiler() is None:
        names = ", ".join(_cxx_candidates()) or "none"
        raise CompilerNotFoundError(
            "torch.compile's Inductor backend builds C++ code for a model on the CPU, but no "
            f"C++ compiler was found (looked for {names} on PATH): {fix}")
    include = sysconfig.get_paths().get("include") or ""
    if not os.path.isfile(os.path.join(include, "Python.h")):
        raise CompilerNotFoundError(
            "torch.compile's Inductor backend builds C++ code against Python's headers, but "
            f"Python.h is not in {include!r}: install them (Debian/Ubuntu: apt-get install "
            "python3-dev), or compile with compile_options={'backend': 'eager'}")


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------
def _input_channels(model: nn.Module, in_channels: int | None) -> int:
    if in_channels is not None:
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        return in_channels
    inner = _unwrap(model)
    if isinstance(getattr(inner, "in_channels", None), int):
        return inner.in_channels
    conv = next((m for m in inner.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError(f"cannot tell how many input channels a {type(inner).__name__} expects "
                         "(it has no Conv2d): pass in_channels")
    return conv.in_channels


def _image_hw(image_size) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                       for s in image_size)):
        raise ValueError(f"image_size must be a positive int or an (H, W) pair of them, "
                         f"got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception: what went wrong, not the exporter's advice on what to do."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _first_lines(exc: BaseException, n: int = 3) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = "\n    ".join(lines[:n])
    return f"{type(exc).__name__}: {text}" + ("\n    ..." if len(lines) > n else "")


def export_onnx(model: nn.Module, path, image_size, dynamic_batch: bool = True, *,
                in_channels: int | None = None, opset_version: int | None = None,
                check: bool = True, rtol: float = 1e-4) -> pathlib.Path:
    """Export ``model`` (in eval mode) to an ONNX file at ``path`` and return the path.

    The export runs on a float32 CPU copy with every Swish replaced by ``nn.SiLU``,
    through PyTorch's ``torch.export``-based exporter (``torch.onnx.export(dynamo=True)``).
    The input is named ``images``, of shape ``(B, C, H, W)`` with ``(H, W)`` fixed to
    ``image_size`` (the padding of a stride-2 layer depends on it: a model with static TF
    padding must be exported at the size it was built for) and ``B`` free when
    ``dynamic_batch``. The output is named ``logits``.

    With ``check`` the file is run by ONNX Runtime and compared with the eager model, at
    two batch sizes when the batch is dynamic; a largest difference above ``rtol``
    relative to the largest output (:func:`max_relative_error`) raises
    :class:`OnnxExportError`, as does a model the exporter cannot handle.

    Shape: (B, C, H, W) -> the model's output, in the file.
    """
    _check_module(model, "export_onnx")
    h, w = _image_hw(image_size)
    c = _input_channels(model, in_channels)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (e.g. 'b0.onnx'), "
                        f"got {type(path).__name__}")
    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a directory; give a file "
                                f"name, e.g. {str(path / 'model.onnx')!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: the folder "
                                f"{str(path.parent)!r} does not exist")
    try:
        import onnx  # noqa: F401  (the exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"export_onnx needs the onnx and onnxscript packages ({exc.name} is "
                          "missing): pip install onnx onnxscript") from None

    inner = _unwrap(model)
    # The check compares the file with the model as given (on a float32 CPU copy).
    reference = copy.deepcopy(inner).to("cpu", torch.float32).eval() if check else None
    export_model = replace_swish(copy.deepcopy(inner), "silu").to("cpu", torch.float32).eval()
    export_model = export_model.to(memory_format=torch.contiguous_format)
    for p in export_model.parameters():
        p.requires_grad_(False)

    # Batch 2, not 1: torch.export treats a size-1 dimension as a constant.
    example = torch.randn(2 if dynamic_batch else 1, c, h, w,
                          generator=torch.Generator().manual_seed(0))  # (B, C, H, W)
    with torch.no_grad():
        try:
            export_model(example)
        except (ValueError, TypeError):
            raise  # the model's own check, e.g. static padding built for another image size
        except Exception as exc:
            raise ValueError(f"the model does not run on an input of shape "
                             f"{list(example.shape)} (image_size={(h, w)}, in_channels={c}): "
                             f"{_first_lines(exc, 2)}") from None

    dynamic_shapes = {"images": {0: torch.export.Dim("batch", min=1)}} if dynamic_batch else None
    param_bytes = sum(p.numel() * p.element_size() for p in export_model.parameters())
    # torch.onnx prints its progress and torch.export logs to stderr: keep both out of sight.
    log = io.StringIO()
    with torch.no_grad(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the file is checked against ONNX Runtime instead
        try:
            program = torch.onnx.export(
                _NamedInput(export_model).eval(), (example,), input_names=["images"],
                output_names=["logits"], opset_version=opset_version, dynamo=True,
                dynamic_shapes=dynamic_shapes, verbose=False)
            # One self-contained file unless the weights exceed protobuf's 2 GB limit.
            program.save(str(path), external_data=param_bytes > 1.5 * 2**30)
        except Exception as exc:
            cause = _root_cause(exc)
            hint = ("\n  The batch dimension could not be kept free: the model treats the batch "
                    "size as a constant somewhere (e.g. a reshape to a fixed size); try "
                    "dynamic_batch=False." if dynamic_batch and "batch" in str(cause) else "")
            raise OnnxExportError(
                f"torch.onnx.export could not export this {type(inner).__name__} at "
                f"image_size={(h, w)}, because torch.export could not trace it:\n    "
                f"{_first_lines(cause)}{hint}\n  Code that torch.export cannot trace (Python "
                "control flow that depends on tensor values, calls outside PyTorch) must be "
                "rewritten before export.") from None
    if check:
        _check_against_onnxruntime(reference, path, (c, h, w), dynamic_batch, rtol)
    return path


class _NamedInput(nn.Module):
    """Names the exported input ``images`` (torch.export names it after forward's argument)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Shape: (B, C, H, W) -> the model's output."""
        return self.model(images)


def _check_against_onnxruntime(model: nn.Module, path: pathlib.Path,
                               chw: tuple[int, int, int], dynamic_batch: bool,
                               rtol: float) -> None:
    session = onnx_session(path)
    g = torch.Generator().manual_seed(1)
    for batch in ((1, 3) if dynamic_batch else (1,)):
        x = torch.randn(batch, *chw, generator=g)
        with torch.no_grad():
            expected = model(x)
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        err = max_relative_error(got, expected) if got.shape == expected.shape else math.inf
        if not err <= rtol:
            raise OnnxExportError(
                f"the exported file disagrees with the eager model at batch {batch}: output "
                f"{list(got.shape)} vs {list(expected.shape)}, largest difference {err:.2e} of "
                f"the largest output (allowed {rtol:g}); {path} is left for inspection")


def onnx_session(path, threads: int | None = None,
                 providers: Sequence[str] | None = None, spin: bool = False):
    """An ``onnxruntime.InferenceSession`` for the file at ``path``, with all graph
    optimisations on (ONNX Runtime folds BatchNorm into the conv itself) and
    ``threads`` intra-op threads (default: as many as PyTorch uses, for fair timing).

    With ``spin`` ONNX Runtime's threads wait for the next run busily, which shortens a
    server's latency but takes the CPU from everything else in the process for a while
    after each run; off by default, so that timings interleaved with PyTorch are fair.

    Run it with ``session.run(None, {"images": x.numpy()})[0]``.

    Shape: images (B, C, H, W) float32 -> logits (B, num_classes).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("onnx_session needs ONNX Runtime: pip install onnxruntime "
                          "(or onnxruntime-gpu)") from None
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file at {path!r}; write one with "
                                "export_onnx(model, path, image_size)")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    providers = list(providers or ["CPUExecutionProvider"])
    return ort.InferenceSession(os.fspath(path), options, providers=providers)
