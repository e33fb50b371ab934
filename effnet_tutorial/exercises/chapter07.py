"""Checkers for chapter 7: training, progressive learning, several processes, memory.

Every expected value is computed from the package (the training module's plan and
learning-rate rule, the digits model, ``activation_memory``), never typed in. A checker
never raises on a wrongly typed answer: it prints a verdict with a hint.
"""
from __future__ import annotations

import math

from ._common import as_number, check_equal, never_crashes, verdict

__all__ = ["check_progressive_epochs", "check_global_batch_and_lr", "check_stem_swish_bytes"]


def _digits_model(memory_efficient_swish: bool = True):
    from ..train import DEFAULT_MODEL, build_model

    return build_model(DEFAULT_MODEL, 10, 1, memory_efficient_swish=memory_efficient_swish)


@never_crashes
def check_progressive_epochs(answer, fixed_epochs: int = 4, image_size: int = 32,
                             min_image_size: int = 16, stages: int = 2,
                             train_images: int = 1437) -> bool:
    """The most epochs of progressive learning in ``stages`` stages from
    ``min_image_size`` to ``image_size`` whose forward multiply-adds do not exceed
    ``fixed_epochs`` epochs at ``image_size``, for the chapter's digits model."""
    from ..inspection import count_flops
    from ..train import epoch_plan

    model = _digits_model()
    per_size: dict[int, int] = {}

    def cost(plan):
        total = 0
        for row in plan:
            s = row["image_size"]
            if s not in per_size:
                per_size[s] = count_flops(model, (1, 1, s, s))
            total += per_size[s]
        return total * train_images

    budget = cost(epoch_plan(fixed_epochs, image_size))
    expected = stages
    while cost(epoch_plan(expected + 1, image_size, progressive=stages,
                          min_image_size=min_image_size)) <= budget:
        expected += 1
    value = as_number(answer)
    if value is None or value != int(value):
        return verdict(False, "the number of progressive epochs", answer,
                        "give a whole number of epochs, e.g. 7")
    return check_equal(int(value), expected, "the number of progressive epochs on the budget",
                       "add up count_flops at each epoch's image size (epoch_plan) and compare "
                       f"with {fixed_epochs} epochs at {image_size} pixels")


@never_crashes
def check_global_batch_and_lr(global_batch, lr, nodes: int = 2, gpus_per_node: int = 4,
                              batch_size: int = 48, lr_per_256: float = 0.4) -> bool:
    """Global batch and learning rate of ``torchrun`` on ``nodes`` x ``gpus_per_node``
    processes with ``--batch-size batch_size --lr lr_per_256``."""
    from ..train import scaled_lr

    expected_batch = nodes * gpus_per_node * batch_size
    expected_lr = scaled_lr(lr_per_256, expected_batch)
    b, v = as_number(global_batch), as_number(lr)
    ok = verdict(b is not None and b == expected_batch, "the global batch size", global_batch,
                  "--batch-size is per process: multiply by the number of processes "
                  "(machines times GPUs per machine)")
    ok &= verdict(v is not None and math.isclose(v, expected_lr, rel_tol=1e-9),
                   "the learning rate", lr, "--lr is per 256 images: multiply it by the "
                   "global batch / 256")
    return ok


@never_crashes
def check_stem_swish_bytes(answer, batch: int = 64, image_size: int = 32) -> bool:
    """Extra bytes that autograd saves in the stem of the digits model with the naive
    Swish instead of the memory-efficient one, for ``batch`` images of ``image_size``."""
    from ..inspection import activation_memory

    shape = (batch, 1, image_size, image_size)
    naive = activation_memory(_digits_model(False), shape).by_unit["stem"]
    efficient = activation_memory(_digits_model(True), shape).by_unit["stem"]
    expected = naive - efficient
    value = as_number(answer)
    if value is None:
        return verdict(False, "the extra bytes in the stem", answer,
                        "give a number of bytes (an int)")
    return check_equal(int(value) if value == int(value) else value, expected,
                       "the extra bytes the naive Swish saves in the stem",
                       "the naive Swish keeps sigmoid(x) as well as x: one more float32 tensor "
                       "of the stem's output shape (4 bytes per value)")
