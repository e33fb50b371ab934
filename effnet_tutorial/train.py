r"""Training an EfficientNet: the loop, its command line, and DistributedDataParallel.

One process::

    python -m effnet_tutorial.train --data digits --epochs 6 --batch-size 64 --output runs/digits

Several processes on one machine (gloo on CPUs, NCCL on GPUs), with the same module::

    torchrun --standalone --nproc_per_node=2 -m effnet_tutorial.train --data digits ...

Every process trains a full copy of the model on its own share of each epoch (a
``DistributedSampler``); ``DistributedDataParallel`` averages the gradients across the
processes in every step, so all copies take the same step. The global batch is
``--batch-size`` times the number of processes, and the learning rate follows it
(``--lr`` is per 256 images: the linear scaling rule of Goyal et al. 2017, also used by
the official EfficientNet code, tensorflow/tpu ``main.py``). Only rank 0 logs and
writes ``model.pt`` (a state dict, loadable with ``weights_only=True``) and
``metrics.json``.

Progressive learning (EfficientNetV2 §4, Algorithm 1) grows the image size, RandAugment
magnitude, mixup and dropout stage by stage, with
:func:`effnet_tutorial.progressive.progressive_schedule`.

On CUDA the same code trains in mixed precision (``torch.autocast`` float16 with a
gradient scaler) and in the channels_last memory format.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pickle
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import MODEL_NAMES, ModelConfig, get_model_config
from .data import (
    DATASETS,
    DEFAULT_IMAGE_SIZE,
    MAX_MIXUP_ALPHA,
    DatasetUnavailableError,
    ImageData,
    RandAugment,
    channel_stats,
    load_dataset,
    mixup,
    normalize,
    parse_classes,
    preprocess,
    resize,
)
from .layers import MemoryEfficientSwish, Swish
from .model import EfficientNet
from .progressive import ProgressiveSettings, progressive_schedule
from .weights import _sha256   # the digest that checks weights files, also for run folders

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_SPEC_KEYS",
    "DistInfo",
    "NonFiniteLossError",
    "RunFileError",
    "CrossProcessBatchNorm2d",
    "SWISH_KINDS",
    "build_model",
    "convert_sync_batchnorm",
    "epoch_plan",
    "evaluate",
    "fit",
    "format_command",
    "freeze_backbone",
    "freeze_stages",
    "load_run",
    "lr_schedule",
    "main",
    "parse_model_spec",
    "predict",
    "scaled_lr",
    "train_epoch",
    "unfreeze",
]

#: The default ``--model``: EfficientNet-B0's table with width and depth coefficients 0.25
#: (about 0.13 M parameters with a 10-class head), small enough to train on a 2-core CPU
#: in seconds.
DEFAULT_MODEL = "efficientnet-b0:width=0.25,depth=0.25,bn_momentum=0.1"

#: ``--model NAME:key=value,...``: the short keys and the ModelConfig fields they set.
MODEL_SPEC_KEYS = {"width": "width_coefficient", "depth": "depth_coefficient",
                   "dropout": "dropout_rate", "drop_path": "drop_path_rate",
                   "bn_momentum": "bn_momentum"}

#: ``--swish``: the module each Swish of the model becomes. ``silu`` (PyTorch's fused
#: ``nn.SiLU``) is the default: chapter 9 measured it as fast as or faster than the
#: memory-efficient Swish, with the same saved tensors and a lower peak.
SWISH_KINDS = {"silu": nn.SiLU, "efficient": MemoryEfficientSwish, "naive": Swish}

#: The default ``--batch-size`` (images per process and step), timm's ``train.py`` default.
DEFAULT_BATCH_SIZE = 128

#: Images per learning rate unit: ``--lr`` is the learning rate for a global batch of 256.
LR_REFERENCE_BATCH = 256


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------
def parse_model_spec(spec: str) -> ModelConfig:
    """``"efficientnet-b0:width=0.25,depth=0.25"`` -> the B0 config with those coefficients.

    A published name (``efficientnet-b0`` ... ``efficientnetv2-xl``), optionally followed
    by ``:`` and comma-separated ``key=value`` pairs: ``width`` and ``depth`` (the
    compound-scaling coefficients of EfficientNet §3.3, applied to the name's base table),
    ``dropout``, ``drop_path`` and ``bn_momentum``. Each key may be given once, and every
    value must be a finite number.

    Shape: str -> ModelConfig.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model is a name like 'efficientnet-b0' or 'efficientnet-b0:width=0.25,"
                         f"depth=0.25', got {spec!r}")
    name, _, options = spec.strip().partition(":")
    config = get_model_config(name)           # names the valid models on a typo
    changes = {}
    for item in filter(None, (p.strip() for p in options.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in MODEL_SPEC_KEYS:
            raise ValueError(f"cannot read {item!r} in model {spec!r}: expected key=value with key "
                             f"one of {', '.join(MODEL_SPEC_KEYS)} (e.g. {DEFAULT_MODEL!r})")
        if MODEL_SPEC_KEYS[key] in changes:
            raise ValueError(f"model {spec!r}: {key} is given twice; give each key once")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"model {spec!r}: {key} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"model {spec!r}: {key} must be a finite number, got {value.strip()!r}")
        changes[MODEL_SPEC_KEYS[key]] = number
    return config.with_options(**changes)


def build_model(spec: str | ModelConfig, num_classes: int, in_channels: int,
                memory_efficient_swish: bool = True, swish: str | None = None) -> EfficientNet:
    """A randomly initialised EfficientNet for a data set (``num_classes`` outputs,
    ``in_channels`` input channels), from a model spec or a config.

    ``swish`` (a key of :data:`SWISH_KINDS`: ``silu``, ``efficient``, ``naive``) chooses
    the Swish module; without it, ``memory_efficient_swish`` chooses between the
    memory-efficient and the naive one. The weights are the same whatever the Swish.

    Shape: the model maps (B, in_channels, H, W) -> (B, num_classes).
    """
    config = parse_model_spec(spec) if isinstance(spec, str) else spec
    model = EfficientNet(config, num_classes=num_classes, in_channels=in_channels)
    if swish is None:
        return model.set_swish(memory_efficient=memory_efficient_swish)
    if swish not in SWISH_KINDS:
        raise ValueError(f"swish must be one of {', '.join(SWISH_KINDS)}, got {swish!r}")
    new = SWISH_KINDS[swish]
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, (Swish, MemoryEfficientSwish, nn.SiLU)):
                setattr(parent, name, new(inplace=child.inplace))
    return model


# --------------------------------------------------------------------------------------
# Freezing for transfer learning
# --------------------------------------------------------------------------------------
def _set_trainable(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)


def freeze_stages(model: EfficientNet, num_stages: int) -> list[str]:
    """Freeze the stem and the first ``num_stages`` block stages (their weights get no
    gradient, their BatchNorm statistics stay as they are: :func:`fit` keeps frozen
    BatchNorm layers in eval mode). Everything after them is made trainable.

    Stages are taken in order from ``model.stages.named_children()``, so this works
    whatever the stages are called. Returns the names of the frozen modules.

    Shape: model -> list of module names (``["stem", "stages.2", ...]``).
    """
    stages = list(model.stages.named_children())
    if isinstance(num_stages, bool) or not isinstance(num_stages, int) or not (
            0 <= num_stages <= len(stages)):
        raise ValueError(f"num_stages must be an int from 0 to {len(stages)} (this model's block "
                         f"stages), got {num_stages!r}")
    unfreeze(model)
    frozen = ["stem"] if num_stages > 0 else []
    if num_stages > 0:
        _set_trainable(model.stem, False)
    for name, stage in stages[:num_stages]:
        _set_trainable(stage, False)
        frozen.append(f"stages.{name}")
    return frozen


def freeze_backbone(model: EfficientNet) -> list[str]:
    """Freeze everything but the classifier (a "linear probe" of the features).

    Shape: model -> list of frozen module names.
    """
    frozen = freeze_stages(model, len(list(model.stages.children())))
    _set_trainable(model.head, False)
    return frozen + ["head"]


def unfreeze(model: nn.Module) -> nn.Module:
    """Make every parameter trainable again. Shape: model -> the same model."""
    _set_trainable(model, True)
    return model


def _frozen_batchnorm_to_eval(model: nn.Module) -> None:
    # A frozen layer must not drift: its BatchNorm keeps the running statistics it learned.
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None \
                and not m.weight.requires_grad:
            m.eval()


# --------------------------------------------------------------------------------------
# Progressive learning: one row of settings per epoch
# --------------------------------------------------------------------------------------
def epoch_plan(epochs: int, image_size: int, magnitude: float = 0.0, mixup_alpha: float = 0.0,
               dropout: float = 0.2, progressive: int = 0, min_image_size: int | None = None,
               min_magnitude: float = 0.0, min_dropout: float | None = None) -> list[dict]:
    """The settings of every epoch: fixed, or progressive (EfficientNetV2 Algorithm 1).

    With ``progressive = M`` (>= 2 stages), training is cut into M stages of (nearly)
    equal numbers of epochs; stage i uses row i of :func:`progressive_schedule` for the
    ranges ``(min_image_size, image_size)``, ``(min_magnitude, magnitude)``,
    ``(0, mixup_alpha)`` and ``(min_dropout, dropout)``: small images with weak
    regularisation first, the target size with the full regularisation last.
    ``min_image_size`` defaults to half of ``image_size``, ``min_dropout`` to half of
    ``dropout``.

    Shape: -> ``epochs`` dicts with keys ``epoch`` (1-based), ``stage``, ``image_size``,
    ``randaug_magnitude``, ``mixup_alpha``, ``dropout``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not progressive:
        return [{"epoch": e + 1, "stage": 0, "image_size": image_size,
                 "randaug_magnitude": float(magnitude), "mixup_alpha": float(mixup_alpha),
                 "dropout": float(dropout)} for e in range(epochs)]
    if isinstance(progressive, bool) or not isinstance(progressive, int) or not (
            2 <= progressive <= epochs):
        raise ValueError(f"progressive learning needs from 2 to {epochs} (the number of epochs) "
                         f"stages, got {progressive!r}")
    settings = ProgressiveSettings(
        image_size=(min_image_size if min_image_size is not None else image_size // 2, image_size),
        randaug_magnitude=(min_magnitude, magnitude), mixup_alpha=(0.0, mixup_alpha),
        dropout=(min_dropout if min_dropout is not None else dropout / 2, dropout))
    schedule = progressive_schedule(settings, progressive)
    # Epoch e belongs to stage floor(e * M / E): M stages of E / M epochs, the rest spread out.
    return [{"epoch": e + 1, **schedule[e * progressive // epochs]} for e in range(epochs)]


def scaled_lr(lr_per_256: float, global_batch_size: int) -> float:
    r"""The linear scaling rule, eta = eta_256 * B_global / 256
    (Goyal et al. 2017, Section 2.1; tensorflow/tpu EfficientNet
    ``main.py`` scales its base rate the same way).

    Shape: (float, int) -> float.
    """
    return lr_per_256 * global_batch_size / LR_REFERENCE_BATCH


# --------------------------------------------------------------------------------------
# Several processes
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank``
    on its machine (torchrun's RANK, WORLD_SIZE and LOCAL_RANK).

    Shape: three ints; ``DistInfo()`` is a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0, the process that logs and writes files. Shape: -> bool."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process (DDP on). Shape: -> bool."""
        return self.world_size > 1


def _env_dist() -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def _all_reduce_sum(values: Sequence[float], device, dist_info: DistInfo) -> list[float]:
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    if dist_info.distributed:
        torch.distributed.all_reduce(t)
    return t.tolist()


def _broadcast_buffers(model: nn.Module, dist_info: DistInfo) -> None:
    # Each process updated its BatchNorm statistics with its own last batch; rank 0's win,
    # so that every copy evaluates and ends as the same model.
    if dist_info.distributed:
        for b in model.buffers():
            torch.distributed.broadcast(b, 0)


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone()
        torch.distributed.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


class CrossProcessBatchNorm2d(nn.BatchNorm2d):
    r"""BatchNorm whose training statistics are those of the *global* batch: every process
    all-reduces its per-channel count, sum and sum of squares, so the mean and variance
    (:math:`\mathrm{Var}[x] = E[x^2] - E[x]^2`) are those of all processes' images together,
    as tensorflow/tpu's ``TpuBatchNormalization`` averages them across replicas (EfficientNet
    ``utils.py``). The all-reduce is ``torch.distributed.nn.functional.all_reduce``, which
    autograd differentiates, so the gradients are those of BatchNorm on the whole batch.

    It works with any backend, gloo on CPUs included; ``nn.SyncBatchNorm`` refuses CPU
    tensors (torch 2.x: "SyncBatchNorm expected input tensor to be on GPU ..."). Outside
    training, or without a process group, it is an ordinary ``nn.BatchNorm2d``.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.distributed.is_available()
                and torch.distributed.is_initialized()
                and torch.distributed.get_world_size() > 1):
            return super().forward(x)
        xf = x.float()
        count = torch.full((1,), float(xf.numel() // xf.shape[1]), device=x.device)
        stats = torch.cat([count, xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3))])   # (1 + 2C,)
        stats = _AllReduceSum.apply(stats)         # summed over the processes, differentiably
        n, c = stats[0], x.shape[1]
        mean = stats[1:1 + c] / n                                        # (C,)
        var = (stats[1 + c:] / n - mean * mean).clamp_min(0)             # biased, (C,)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(m * mean.to(self.running_mean.dtype))
                self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def convert_sync_batchnorm(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Make every BatchNorm of ``model`` compute its training statistics over all
    processes (``--sync-bn``): ``nn.SyncBatchNorm.convert_sync_batchnorm`` on CUDA, the
    package's :class:`CrossProcessBatchNorm2d` elsewhere (nn.SyncBatchNorm refuses CPU
    tensors). Weights, buffers and state-dict keys are kept. Changes ``model`` in place
    (unless it is itself a BatchNorm) and returns it.

    Shape: the model's shapes are unchanged.
    """
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def convert(module: nn.Module) -> nn.Module:
        if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CrossProcessBatchNorm2d):
            new = CrossProcessBatchNorm2d(module.num_features, module.eps, module.momentum,
                                          module.affine, module.track_running_stats,
                                          device=module.running_mean.device
                                          if module.running_mean is not None else None)
            new.load_state_dict(module.state_dict())
            new.train(module.training)
            if module.affine:
                new.weight.requires_grad_(module.weight.requires_grad)
                new.bias.requires_grad_(module.bias.requires_grad)
            return new
        for name, child in module.named_children():
            setattr(module, name, convert(child))
        return module
    return convert(model)


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: nn.Module, data: ImageData, image_size: int, mean, std, device="cpu",
            batch_size: int = 256, mode: str = "bilinear") -> torch.Tensor:
    """Logits of ``model`` for every image of ``data`` (preprocessed as in training).

    Shape: ImageData of N images -> (N, num_classes) float32 on the CPU.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(data), batch_size):
            x = preprocess(data.images[i:i + batch_size].to(device), image_size, mean, std, mode)
            out.append(model(x).float().cpu())                    # (b, num_classes)
    finally:
        model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, image_size: int, mean, std, device="cpu",
             dist_info: DistInfo = DistInfo(), batch_size: int = 256) -> float:
    """Top-1 accuracy on ``data``; with several processes each takes every
    ``world_size``-th image and the counts are summed (no image counted twice).

    Shape: -> float in [0, 1].
    """
    shard = data.subset(range(dist_info.rank, len(data), dist_info.world_size))
    logits = predict(model, shard, image_size, mean, std, device, batch_size)
    correct = int((logits.argmax(1) == shard.labels).sum())
    correct, total = _all_reduce_sum([correct, len(shard)], device, dist_info)
    return correct / total


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------
def lr_schedule(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    r"""The learning rate of step ``t`` (0-based) as a fraction of the peak: linear warm-up
    to the peak over ``warmup_steps``, then cosine decay to 0 at ``total_steps``
    (SGDR, Loshchilov & Hutter 2017):
    :math:`(t + 1) / W` for :math:`t < W`, else
    :math:`\tfrac12 (1 + \cos(\pi (t - W) / (T - W)))`. The book's choice; the official
    EfficientNet script decays exponentially instead (tensorflow/tpu ``utils.py``,
    ``build_learning_rate``: x0.97 every 2.4 epochs after 5 warm-up epochs).

    Shape: (T, W) -> a function int -> float in (0, 1].
    """
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return factor


def _batches(data: ImageData, batch_size: int, sampler, pin_memory: bool = False):
    # ImageData.__getitems__ returns whole batches: the collate function has nothing to stack.
    one_left = len(sampler) % batch_size == 1      # a 1-image batch would break BatchNorm: drop it
    return torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler,
                                       drop_last=one_left, collate_fn=_as_is,
                                       pin_memory=pin_memory)   # pinned: asynchronous copies


def _as_is(batch):
    return batch


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: training diverged (usually a learning
    rate that is too high). Raised by :func:`fit` at the first such step; ``epoch``,
    ``step`` (1-based), ``loss`` (the epoch's mean loss up to that step) and ``lr`` (the
    learning rate after it) say where."""

    def __init__(self, epoch: int, step: int, loss: float, lr: float):
        self.epoch, self.step, self.loss, self.lr = epoch, step, loss, lr
        super().__init__(f"the training loss became {loss} at epoch {epoch}, step {step}: "
                         f"training diverged (learning rate {lr:g} after that step); lower the "
                         "learning rate")


def train_epoch(model, loader, row, opt, sched, scaler, criterion, mean, std,
                device, amp, channels_last, gen, on_step=None):
    """One epoch at the image size and strengths of ``row`` (a plan row:
    one stage of EfficientNetV2 Algorithm 1, or fixed-size training).

    Shape: batches (B, C, h, w) uint8 -> (sum of the step losses, steps).
    """
    augment = RandAugment(2, row["randaug_magnitude"])
    size, alpha = row["image_size"], row["mixup_alpha"]
    loss_sum, steps = 0.0, 0
    for images, labels in loader:
        images = images.to(device, non_blocking=True)   # (B, C, h, w)
        labels = labels.to(device, non_blocking=True)   # (B,)
        x = resize(images.float() / 255, size)           # (B, C, S, S)
        x = normalize(augment(x, gen), mean, std)
        x, y_a, y_b, lam = mixup(x, labels, alpha, gen)
        if channels_last:      # NHWC, the layout tensor cores read
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, torch.float16, enabled=amp):
            logits = model(x)                            # (B, classes)
            loss = (lam * criterion(logits, y_a)
                    + (1 - lam) * criterion(logits, y_b))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # float16 gradients, scaled up
        scaler.step(opt)               # unscales; skips inf/NaN steps
        scaler.update()
        sched.step()                   # warm-up, then cosine decay
        loss_sum += float(loss.detach())
        steps += 1
        if on_step is not None:
            on_step(loss_sum / steps)
    return loss_sum, steps


def fit(model: nn.Module, train_set: ImageData, val_set: ImageData, plan: list[dict], *,
        batch_size: int, lr: float, mean, std, eval_image_size: int | None = None,
        weight_decay: float = 5e-5, label_smoothing: float = 0.1, warmup_epochs: float = 1.0,
        device="cpu", amp: bool | None = None, channels_last: bool | None = None, seed: int = 0,
        dist_info: DistInfo = DistInfo(), progress: bool = True,
        log: Callable[[str], None] | None = print,
        on_epoch: Callable[[list[dict]], None] | None = None,
        rank_dump: str | os.PathLike | None = None,
        eval_batch_size: int | None = None, sync_bn: bool = False) -> list[dict]:
    """Train ``model`` on ``train_set`` for ``len(plan)`` epochs; return one record per epoch.

    ``plan`` (from :func:`epoch_plan`) gives each epoch's image size, RandAugment magnitude,
    mixup alpha and dropout. SGD with Nesterov momentum 0.9 at peak rate ``lr`` (already
    scaled to the global batch), linear warm-up for ``warmup_epochs``, cosine decay, label
    smoothing 0.1 (as tensorflow/tpu's EfficientNet ``main.py``) and a small weight decay.
    Validation after every epoch at ``eval_image_size`` (default: the last epoch's size),
    in batches of ``eval_batch_size`` images (default: twice ``batch_size``; without
    gradients an image needs far less memory than in training, so validation fits wherever
    training does). A NaN or infinite loss stops training with :class:`NonFiniteLossError`.
    Under torchrun, wrap nothing yourself: ``fit`` wraps ``model`` in
    DistributedDataParallel when ``dist_info.world_size > 1``. ``amp`` and
    ``channels_last`` default to on for CUDA, off otherwise. ``sync_bn`` (several processes
    only) computes the BatchNorm statistics of every training step over the global batch
    (:func:`convert_sync_batchnorm`) instead of each process's share of it. ``rank_dump``: a
    file that every process writes at the end (its state dict, its epoch-1 indices and its
    per-step losses), to check what DDP promises; not for normal runs.

    Records: ``epoch``, ``train_loss`` (mean over the epoch's steps and processes),
    ``val_accuracy`` (at ``eval_image_size``), ``val_accuracy_at_train_size`` (at the
    epoch's own image size), ``seconds`` (wall time of the epoch, validation included),
    the plan's settings and, on CUDA, ``max_memory_allocated`` (bytes).

    Shape: -> list of dicts, one per epoch.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    amp = cuda if amp is None else amp
    channels_last = cuda if channels_last is None else channels_last
    if amp and not cuda:
        raise ValueError("mixed precision (amp) is used on CUDA only; pass amp=False on a CPU")
    eval_image_size = eval_image_size or plan[-1]["image_size"]
    if eval_batch_size is None:
        eval_batch_size = 2 * batch_size
    if isinstance(eval_batch_size, bool) or not isinstance(eval_batch_size, int) or eval_batch_size < 1:
        raise ValueError(f"eval_batch_size must be a positive int, got {eval_batch_size!r}")
    rank_gen = torch.Generator().manual_seed(seed * 1000 + dist_info.rank)   # augmentation draws

    if dist_info.distributed:
        sampler = torch.utils.data.DistributedSampler(
            train_set, num_replicas=dist_info.world_size, rank=dist_info.rank, shuffle=True,
            seed=seed)
    else:
        sampler = torch.utils.data.RandomSampler(
            train_set, generator=torch.Generator().manual_seed(seed))
    if len(sampler) < 2:
        raise ValueError(f"each process needs at least 2 training images, got {len(sampler)} "
                         f"({len(train_set)} images, {dist_info.world_size} processes)")
    if sync_bn and not dist_info.distributed:
        raise ValueError("sync_bn needs several processes (torchrun): one process already "
                         "computes the BatchNorm statistics on its whole batch")
    if batch_size > len(sampler):
        raise ValueError(f"batch size {batch_size} is larger than the {len(sampler)} training "
                         f"images of each process; use --batch-size {len(sampler)} or less")
    steps_per_epoch = len(_batches(train_set, batch_size, list(range(len(sampler)))))

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if sync_bn:
        model = convert_sync_batchnorm(model, device)
    core = model
    if dist_info.distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if cuda else None)
    params = [p for p in core.parameters() if p.requires_grad]
    if not params:
        raise ValueError("every parameter of the model is frozen: nothing to train "
                         "(call unfreeze(model) or freeze fewer stages)")
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True,
                                weight_decay=weight_decay)
    total = steps_per_epoch * len(plan)
    warmup = min(total - 1, round(warmup_epochs * steps_per_epoch)) if warmup_epochs > 0 else 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(total, max(warmup, 0)))
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    show = progress and dist_info.is_main
    if show:   # one bar for the whole run: a widget in notebooks, a text bar in terminals
        from tqdm.auto import tqdm
        bar = tqdm(total=total, unit="step", desc="training")
    history: list[dict] = []
    step_losses: list[float] = []     # this process's loss at every step (for rank_dump)
    for row in plan:
        start = time.perf_counter()
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        if isinstance(sampler, torch.utils.data.DistributedSampler):
            sampler.set_epoch(row["epoch"])    # a new shuffle each epoch, the same in every process
        order = list(sampler)                  # this process's share of the epoch, shuffled
        if row["epoch"] == 1:
            first_epoch_indices = order
        loader = _batches(train_set, batch_size, order, pin_memory=cuda)
        if isinstance(core, EfficientNet):
            core.dropout.p = row["dropout"]
        model.train()
        _frozen_batchnorm_to_eval(core)
        size = row["image_size"]
        if show:
            bar.set_description(f"epoch {row['epoch']}/{len(plan)}, {size} px")

        steps_done = 0

        def mean_loss_sum():    # the epoch's loss so far, summed over its finished steps
            return sum(step_losses[len(step_losses) - steps_done:]) if steps_done else 0.0

        def on_step(mean_loss):
            nonlocal steps_done
            step_losses.append(mean_loss * (steps_done + 1) - mean_loss_sum())
            steps_done += 1
            if not math.isfinite(mean_loss):   # NaN weights from here on: nothing to learn
                raise NonFiniteLossError(row["epoch"], steps_done, mean_loss,
                                         optimizer.param_groups[0]["lr"])
            if show:
                bar.update(1)
                bar.set_postfix(loss=f"{mean_loss:.3f}", refresh=False)

        try:
            loss_sum, steps = train_epoch(
                model, loader, row, optimizer, scheduler, scaler, criterion, mean, std,
                device, amp, channels_last, rank_gen, on_step)
        except NonFiniteLossError:
            if show:
                bar.close()
            if channels_last:
                core.to(memory_format=torch.contiguous_format)
            raise
        loss_sum, steps = _all_reduce_sum([loss_sum, steps], device, dist_info)
        _broadcast_buffers(core, dist_info)
        accuracy = evaluate(core, val_set, eval_image_size, mean, std, device, dist_info,
                            eval_batch_size)
        # Progressive stages train smaller: how good is the model at its own training size?
        at_size = accuracy if size == eval_image_size else evaluate(
            core, val_set, size, mean, std, device, dist_info, eval_batch_size)
        record = {"epoch": row["epoch"], "train_loss": loss_sum / steps, "val_accuracy": accuracy,
                  "val_accuracy_at_train_size": at_size, "seconds": time.perf_counter() - start,
                  **{k: row[k] for k in ("stage", "image_size", "randaug_magnitude", "mixup_alpha",
                                         "dropout")}}
        if cuda:
            record["max_memory_allocated"] = torch.cuda.max_memory_allocated(device)
        history.append(record)
        if log is not None and dist_info.is_main:
            line = (f"epoch {row['epoch']}/{len(plan)}  {size:3d} px  train loss "
                    f"{record['train_loss']:.3f}  val accuracy {100 * accuracy:5.1f}%  "
                    f"{record['seconds']:.1f} s")
            (bar.write if show else log)(line)    # above the bar, not through it
        if on_epoch is not None and dist_info.is_main:
            on_epoch(history)
    if show:
        bar.close()
    if rank_dump is not None:
        _save_atomic(rank_dump, lambda f: torch.save(
            {"state_dict": {k: v.detach().cpu() for k, v in core.state_dict().items()},
             "epoch1_indices": torch.tensor(first_epoch_indices),
             "step_losses": torch.tensor(step_losses)}, f))
    if channels_last:
        core.to(memory_format=torch.contiguous_format)
    return history


# --------------------------------------------------------------------------------------
# Runs on disk
# --------------------------------------------------------------------------------------
#: The files of a run in its --output folder: the weights, the metrics (written last, when
#: the run has finished), and the metrics of a run in progress (after every epoch).
RUN_FILES = ("model.pt", "metrics.json", "metrics.partial.json")


class RunFileError(ValueError):
    """A run's ``model.pt`` or ``metrics.json`` cannot be used (damaged, truncated, not
    written by ``python -m effnet_tutorial.train``, or from different runs); says which."""


def _save_atomic(path: str | os.PathLike, write: Callable) -> None:
    """``write(file)`` into a temporary file next to ``path``, then rename it to ``path``:
    an interruption leaves the old file or the new one, never a part of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"   # NaN is not JSON
    _save_atomic(path, lambda f: f.write(text.encode()))


_RUN = "python -m effnet_tutorial.train"


def _read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path} is damaged or truncated: not valid JSON ({exc.msg} at line "
                           f"{exc.lineno}, column {exc.colno}); expected the metrics.json that "
                           f"{_RUN} writes") from None
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is not a text file; expected the metrics.json that {_RUN} "
                           "writes") from None
    need = {"model": str, "classes": list, "in_channels": int}
    if not isinstance(metrics, dict) or any(not isinstance(metrics.get(k), t) for k, t in need.items()):
        raise RunFileError(f"{path} does not describe a run: expected a JSON object with "
                           f"{', '.join(need)}, as {_RUN} writes")
    return metrics


def _read_state_dict(path: Path, device="cpu") -> dict:
    expected = f"expected the state dict (a dict of tensors) that {_RUN} saves"
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, which could run the file's code.
        raise RunFileError(f"{path} holds Python objects other than tensors; they are not loaded, "
                           f"since unpickling them could run arbitrary code. {expected}") from None
    except Exception:   # a truncated zip archive, a file of another format, ...
        raise RunFileError(f"{path} cannot be read: it is truncated, damaged or not a file "
                           f"written by torch.save; {expected}") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise RunFileError(f"{path} holds a {type(state).__name__} that is not a state dict; "
                           f"{expected}")
    return state


def _read_run(output_dir: str | os.PathLike, device="cpu") -> tuple[dict, dict]:
    """(metrics, state dict) of a finished run, each checked; errors name the file."""
    out = Path(output_dir)
    metrics_file, weights_file = out / "metrics.json", out / "model.pt"
    for f in (metrics_file, weights_file):
        if not f.is_file():
            unfinished = (" (it holds the metrics.partial.json of a run that did not finish)"
                          if (out / "metrics.partial.json").is_file() else "")
            raise FileNotFoundError(f"{f} does not exist: {out} must be the --output directory of "
                                    f"a finished run of {_RUN}{unfinished}")
    metrics = _read_metrics(metrics_file)
    state = _read_state_dict(weights_file, device)
    digest = metrics.get("model_sha256")
    if digest is not None and _sha256(weights_file) != digest:
        raise RunFileError(f"{weights_file} is not the model.pt of the run that {metrics_file} "
                           "describes (its SHA-256 differs from the one recorded there): the "
                           "folder mixes two runs, or the file was changed")
    return metrics, state


def load_run(output_dir: str | os.PathLike, device="cpu") -> tuple[EfficientNet, dict]:
    """The model and the metrics of a run written by ``python -m effnet_tutorial.train``.

    Rebuilds the model from ``metrics.json`` (model spec, classes, input channels, the
    ``--swish`` it was trained with) and
    loads ``model.pt`` with ``weights_only=True``, after checking that it is the file the
    metrics were written with (its SHA-256). A missing file raises FileNotFoundError; a
    damaged one, or weights of another run, :class:`RunFileError` naming the file.

    Shape: directory -> (EfficientNet in eval mode, metrics dict).
    """
    metrics, state = _read_run(output_dir, device)
    metrics_file, weights_file = Path(output_dir) / "metrics.json", Path(output_dir) / "model.pt"
    try:
        args = metrics.get("args")
        swish = args.get("swish") if isinstance(args, dict) else None   # the Swish it trained with
        model = build_model(metrics["model"], len(metrics["classes"]), metrics["in_channels"],
                            swish=swish if swish in SWISH_KINDS else None)
    except (ValueError, TypeError) as exc:
        raise RunFileError(f"{metrics_file}: cannot build its model: {exc}") from None
    _check_fits(model, state, f"{weights_file} does not fit the model of {metrics_file} "
                              f"({metrics['model']}, {len(metrics['classes'])} classes)")
    model.load_state_dict(state)
    return model.to(device).eval(), metrics


def _check_fits(model: nn.Module, state: dict, what: str, skip: str | None = None) -> None:
    """Raise RunFileError(what: ...) unless ``state`` has exactly the model's keys and shapes
    (keys starting with ``skip`` may be missing)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not (skip and k.startswith(skip))]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {list(state[k].shape)} instead of {list(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{name} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected),
                                    ("shapes", wrong)) if keys]
        raise RunFileError(f"{what}: {'; '.join(parts)}")


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def format_command(argv: Sequence[str], prefix: str = "python -m effnet_tutorial.train",
                   width: int = 76) -> str:
    """The shell command that runs ``prefix`` (shell words, e.g. ``torchrun ... -m
    effnet_tutorial.train``) with the arguments ``argv`` (the list that :func:`main`
    takes), each quoted for a POSIX shell (``shlex.quote``), and wrapped as in a shell
    script: lines of at most ``width`` characters where the words allow, ending in ``\\``
    and continued with four spaces. A word is never split, so the text pasted into a shell
    runs what ``main(argv)`` runs.

    Shape: [str] -> str.
    """
    if isinstance(argv, str) or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a list of strings, as main() takes it (e.g. "
                        f"['--data', 'digits']), got {argv!r}")
    words = prefix.split() + [shlex.quote(a) for a in argv]
    if not words:
        raise ValueError("nothing to format: prefix and argv are both empty")
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append("    " + word)
    return " \\\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m effnet_tutorial.train``.

    Shape: -> an ArgumentParser (``--help`` lists every option).
    """
    p = argparse.ArgumentParser(
        prog="python -m effnet_tutorial.train",
        description="Train an EfficientNet on digits (offline) or CIFAR-10 (online), on one "
                    "process or, under torchrun, on several with DistributedDataParallel.",
        epilog="Several processes: torchrun --standalone --nproc_per_node=2 -m "
               "effnet_tutorial.train --data digits --epochs 6 --batch-size 64 --output runs/ddp")
    p.add_argument("--data", choices=DATASETS, default="digits",
                   help="digits: scikit-learn's 8x8 digits, offline; cifar10: downloaded by "
                        "torchvision")
    p.add_argument("--data-dir", default=None, help="where CIFAR-10 is kept (default "
                   "~/.cache/effnet_tutorial/cifar10)")
    p.add_argument("--classes", default=None, help="train on these classes only, e.g. 0-4 or 5,7,9")
    p.add_argument("--train-per-class", type=_positive_int, default=None,
                   help="keep only this many training images per class")
    p.add_argument("--epochs", type=_positive_int, required=True)
    p.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                   help="images per process and step; the global batch is this times the "
                        f"processes (default {DEFAULT_BATCH_SIZE}, as timm's train.py)")
    p.add_argument("--output", required=True, help="directory for model.pt and metrics.json; "
                   "one that already holds a run is refused unless --overwrite is given")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run that --output holds (its files are replaced only once "
                        "this run has finished)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"a name ({MODEL_NAMES[0]} ... {MODEL_NAMES[-1]}) with optional "
                        f"key=value changes after ':' ({', '.join(MODEL_SPEC_KEYS)}); "
                        f"default {DEFAULT_MODEL}")
    p.add_argument("--init", default=None, metavar="RUN_DIR",
                   help="start from the weights of an earlier run (its --output); for other "
                        "classes the classifier is replaced by a new one")
    p.add_argument("--lr", type=_non_negative_float, default=0.4,
                   help="learning rate per 256 images, scaled with the global batch (default 0.4)")
    p.add_argument("--weight-decay", type=_non_negative_float, default=5e-5)
    p.add_argument("--label-smoothing", type=_non_negative_float, default=0.1)
    p.add_argument("--warmup-epochs", type=_non_negative_float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=_positive_int, default=None,
                   help="training image size (the last stage's when progressive); default 32")
    p.add_argument("--eval-image-size", type=_positive_int, default=None,
                   help="validation image size (default: --image-size)")
    p.add_argument("--eval-batch-size", type=_positive_int, default=None,
                   help="validation images per batch (default: twice --batch-size)")
    p.add_argument("--magnitude", type=_non_negative_float, default=0.0,
                   help="RandAugment magnitude on the official scale, 0-10 (torchvision's "
                        "bin 3 x magnitude); default 0")
    p.add_argument("--mixup", type=_non_negative_float, default=0.0,
                   help=f"mixup alpha, 0 to {MAX_MIXUP_ALPHA:g} (0: off)")
    p.add_argument("--dropout", type=_non_negative_float, default=None,
                   help="dropout before the classifier (default: the model's)")
    p.add_argument("--progressive", type=int, default=0, metavar="STAGES",
                   help="progressive learning in this many stages (EfficientNetV2 Algorithm 1); "
                        "0: off")
    p.add_argument("--min-image-size", type=_positive_int, default=None,
                   help="first stage's image size (default: half of --image-size)")
    p.add_argument("--min-magnitude", type=_non_negative_float, default=0.0)
    p.add_argument("--min-dropout", type=_non_negative_float, default=None,
                   help="first stage's dropout (default: half of --dropout)")
    p.add_argument("--swish", choices=tuple(SWISH_KINDS), default="silu",
                   help="silu: PyTorch's fused nn.SiLU (default; chapter 9 measured it the "
                        "fastest to train); efficient: the memory-efficient Swish of chapter 2; "
                        "naive: x * sigmoid(x)")
    p.add_argument("--sync-bn", action="store_true",
                   help="several processes: BatchNorm statistics of the global batch, not of "
                        "each process's share (nn.SyncBatchNorm on CUDA; the package's "
                        "CrossProcessBatchNorm2d on CPUs, where nn.SyncBatchNorm does not run)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads of each process (torch.set_num_threads); default: "
                        "PyTorch's. One thread makes CPU results independent of the core count")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (default: on for CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on for CUDA)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--rank-dumps", default=None, metavar="DIR",
                   help="every process writes DIR/rank<R>.pt (its final state dict, the indices "
                        "of the training images it saw in epoch 1, its loss at every step), to "
                        "check what DDP does; DIR must not be --output, which rank 0 alone writes")
    return p


def _check_args(p: argparse.ArgumentParser, args) -> None:
    """Errors a user can fix, named before anything is loaded."""
    try:
        args.model_config = parse_model_spec(args.model)
    except (ValueError, TypeError) as exc:
        p.error(f"--model: {exc}")
    try:
        args.class_list = parse_classes(args.classes, 10)
    except ValueError as exc:
        p.error(f"--classes: {exc}")
    if args.lr <= 0:
        p.error(f"--lr must be > 0, got {args.lr}")
    if not 0 <= args.seed < 2**32:
        p.error(f"--seed must be an int from 0 to 2**32 - 1, got {args.seed}")
    if not 0 <= args.label_smoothing < 1:
        p.error(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.magnitude > RandAugment.MAX_LEVEL or args.min_magnitude > args.magnitude:
        p.error(f"--magnitude must be in [0, {RandAugment.MAX_LEVEL}] and at least "
                f"--min-magnitude, got "
                f"{args.min_magnitude} and {args.magnitude}")
    if args.mixup > MAX_MIXUP_ALPHA:
        p.error(f"--mixup must be in [0, {MAX_MIXUP_ALPHA:g}], got {args.mixup:g}: beyond "
                f"{MAX_MIXUP_ALPHA:g} every batch is an even blend (see effnet_tutorial.data.mixup)")
    if args.batch_size < 2:
        p.error("--batch-size must be at least 2: BatchNorm needs two images per step")
    args.image_size = args.image_size or DEFAULT_IMAGE_SIZE[args.data]
    dropout = args.model_config.dropout_rate if args.dropout is None else args.dropout
    if not 0 <= dropout < 1 or (args.min_dropout is not None
                                and not 0 <= args.min_dropout <= dropout):
        p.error(f"--dropout must be in [0, 1) and at least --min-dropout, got {args.min_dropout} "
                f"and {dropout}")
    args.dropout = dropout
    if args.progressive:
        if not 2 <= args.progressive <= args.epochs:
            p.error(f"--progressive needs from 2 to --epochs ({args.epochs}) stages, got "
                    f"{args.progressive}")
        lo = args.min_image_size or args.image_size // 2
        if lo > args.image_size:
            p.error(f"--min-image-size {lo} is larger than --image-size {args.image_size}")
    elif args.min_image_size is not None:
        p.error("--min-image-size needs --progressive STAGES")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch sees no CUDA device (use --device cpu)")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if args.amp and not cuda:
        p.error("--amp (mixed precision) needs a CUDA device")
    _check_output(p, args)
    if args.rank_dumps is not None:
        dumps = Path(args.rank_dumps)
        if dumps.exists() and not dumps.is_dir():
            p.error(f"--rank-dumps {dumps} exists and is not a directory")
        if dumps.resolve() == Path(args.output).resolve():
            p.error(f"--rank-dumps must be another folder than --output ({args.output}): only "
                    "rank 0 writes the run's folder")
    args._init_run = None
    if args.init is not None:
        for f in ("model.pt", "metrics.json"):
            if not (Path(args.init) / f).is_file():
                p.error(f"--init {args.init}: no {f} there; expected the --output directory of an "
                        "earlier run")
        try:
            args._init_run = _read_run(args.init)
        except (RunFileError, OSError) as exc:
            p.error(f"--init {args.init}: {exc}")
        if args._init_run[0]["model"] != args.model:
            p.error(f"--init {args.init} holds a {args._init_run[0]['model']} but --model is "
                    f"{args.model}")


def _check_output(p: argparse.ArgumentParser, args) -> None:
    """--output: a folder that can be made, that holds no run unless --overwrite."""
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        p.error(f"--output {out} exists and is not a directory")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        p.error(f"--output {out}: {existing} is a file, so no folder can be made inside it")
    if not os.access(existing, os.W_OK | os.X_OK):
        p.error(f"--output {out}: {existing} is not writable")
    held = [f for f in RUN_FILES if (out / f).exists()]
    if held and not args.overwrite:
        p.error(f"--output {out} already holds a run ({', '.join(held)}); choose another folder, "
                "or pass --overwrite to replace it (its files stay until the new run has finished)")


def _initial_model(args, train: ImageData) -> EfficientNet:
    model = build_model(args.model_config, train.num_classes, train.in_channels,
                        swish=args.swish)
    if args._init_run is None:
        return model
    meta, state = args._init_run
    new_task = list(meta["classes"]) != list(train.classes)
    if new_task:
        # A new task: the old head's rows belong to the old classes; a new head, the rest kept.
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    _check_fits(model, state, f"--init {args.init} does not fit the model",
                skip="classifier." if new_task else None)
    model.load_state_dict(state, strict=not new_task)
    return model


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` as in ``sys.argv[1:]``); returns the exit status.

    Shape: argv -> 0 (files written by rank 0).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    dist_info = _env_dist()
    if args.sync_bn and not dist_info.distributed:
        parser.error("--sync-bn needs several processes (torchrun --nproc_per_node=N with N >= 2); "
                     "one process already computes BatchNorm statistics on its whole batch")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device, dist_info.local_rank) if args.device == "cuda" else \
        torch.device("cpu")
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if dist_info.distributed:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _run(parser, args, dist_info, device)
    finally:
        torch.set_num_threads(threads)        # main() may run inside a notebook
        if dist_info.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _run(parser, args, dist_info: DistInfo, device: torch.device) -> int:
    torch.manual_seed(args.seed)            # the same initial weights in every process
    out = Path(args.output)
    try:
        # CIFAR-10 is downloaded by rank 0 alone; the others wait, then read its files.
        if dist_info.distributed and not dist_info.is_main:
            torch.distributed.barrier()
        train, val = load_dataset(args.data, root=args.data_dir, classes=args.class_list,
                                  train_per_class=args.train_per_class, seed=args.seed)
        if dist_info.distributed and dist_info.is_main:
            torch.distributed.barrier()
    except DatasetUnavailableError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    try:
        mean, std = channel_stats(train)
        model = _initial_model(args, train)
        plan = epoch_plan(args.epochs, args.image_size, args.magnitude, args.mixup, args.dropout,
                          args.progressive, args.min_image_size, args.min_magnitude,
                          args.min_dropout)
    except ValueError as exc:
        parser.error(str(exc))
    global_batch = args.batch_size * dist_info.world_size
    lr = scaled_lr(args.lr, global_batch)
    if dist_info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"model  {args.model}\n"
              f"       {n_params:,} parameters, {train.num_classes} classes\n"
              f"data   {args.data}: {len(train)} training and {len(val)} validation images\n"
              f"batch  {dist_info.world_size} process(es) x {args.batch_size} = global batch "
              f"{global_batch}\n"
              f"lr     {args.lr:g} per {LR_REFERENCE_BATCH} images x {global_batch}/"
              f"{LR_REFERENCE_BATCH} = {lr:g}; device {device.type}"
              + ("\nbn     statistics over all processes (--sync-bn)" if args.sync_bn else ""),
              flush=True)
    metrics = {"world_size": dist_info.world_size, "epochs": [], "model": args.model,
               "data": args.data, "classes": list(train.classes), "in_channels": train.in_channels,
               "mean": list(mean), "std": list(std), "global_batch_size": global_batch, "lr": lr,
               "eval_image_size": args.eval_image_size or args.image_size,
               "args": {k: v for k, v in vars(args).items()
                        if k not in ("model_config", "class_list") and not k.startswith("_")}}
    # While the run goes on, its metrics go to metrics.partial.json after every epoch; a run
    # that --output already held (with --overwrite) stays whole until this one has finished.
    partial = out / "metrics.partial.json"

    def save_metrics(history, status="running"):
        metrics["epochs"] = history
        _write_json(partial, {**metrics, "status": status})

    try:
        fit(model, train, val, plan, batch_size=args.batch_size, lr=lr, mean=mean, std=std,
            eval_image_size=args.eval_image_size, weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing, warmup_epochs=args.warmup_epochs, device=device,
            amp=args.amp, channels_last=args.channels_last, seed=args.seed, dist_info=dist_info,
            progress=not args.no_progress, on_epoch=save_metrics,
            rank_dump=_rank_dump_path(args.rank_dumps, dist_info),
            eval_batch_size=args.eval_batch_size, sync_bn=args.sync_bn)
    except NonFiniteLossError as exc:
        message = (f"the training loss became {exc.loss} at epoch {exc.epoch}, step {exc.step}: "
                   f"training diverged, so no model.pt was written. Try a lower --lr (this run: "
                   f"{args.lr:g} per {LR_REFERENCE_BATCH} images), e.g. --lr {args.lr / 10:g}")
        if dist_info.is_main:
            save_metrics(metrics["epochs"], f"stopped: {message}")
        parser.exit(1, f"{parser.prog}: error: {message}\n")
    except ValueError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        if dist_info.is_main:
            save_metrics(metrics["epochs"], "interrupted")
        raise
    if dist_info.is_main:
        _finish_run(out, model, metrics)
        print(f"wrote {out / 'model.pt'} and {out / 'metrics.json'}", flush=True)
    return 0


def _rank_dump_path(folder: str | None, dist_info: DistInfo) -> Path | None:
    if folder is None:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / f"rank{dist_info.rank}.pt"


def _finish_run(out: Path, model: nn.Module, metrics: dict) -> None:
    """Write model.pt and metrics.json so that the folder never mixes two runs: the weights
    go to a temporary file first; the old metrics.json (a run being replaced) is removed
    before the new model.pt takes its place; metrics.json, with the new model's SHA-256, comes
    last. At every moment the folder holds one whole run, or weights without metrics (which
    :func:`load_run` refuses)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    weights, tmp = out / "model.pt", out / f".model.pt.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        metrics["model_sha256"] = _sha256(tmp)
        (out / "metrics.json").unlink(missing_ok=True)
        os.replace(tmp, weights)
    finally:
        tmp.unlink(missing_ok=True)
    _write_json(out / "metrics.json", metrics)
    (out / "metrics.partial.json").unlink(missing_ok=True)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
