r"""The scaling rules of EfficientNet: pure functions of the unscaled numbers.

:func:`round_filters` and :func:`round_repeats` turn the base table (B0, Table 1 of
Tan & Le 2019, arXiv 1905.11946v5) into a scaled one. The paper gives no rounding rule
(only footnote 3 of §3.3: FLOPS may differ from theory due to rounding); both follow
tensorflow/tpu, commit 7dc921f8, ``models/official/efficientnet/efficientnet_model.py``.
:func:`compound_coefficients` is the compound rule (§3.3, Eq. 3) that ties depth, width
and resolution to one coefficient φ, with the α, β, γ of §4, step 1.
"""
from __future__ import annotations

import math

__all__ = ["round_filters", "round_repeats", "compound_coefficients"]


def round_filters(channels: int, width_coefficient: float,
                  divisor: int = 8) -> int:
    r"""Scale a channel count by the width coefficient, to a multiple of 8.

    :math:`c' = \max(d, \lfloor (c w + d/2) / d \rfloor d)`, plus one
    more :math:`d` if that rounded down by more than 10 % (hardware likes
    multiples of 8; the 10 % guard keeps narrow layers from shrinking).
    Not in the paper: tensorflow/tpu 7dc921f8,
    ``efficientnet_model.round_filters``.

    Shape: int -> int.
    """
    scaled = channels * width_coefficient
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    r"""Scale a stage's number of blocks by the depth coefficient, up.

    :math:`n' = \lceil d \cdot n \rceil`. Not in the paper: tensorflow/tpu
    7dc921f8, ``efficientnet_model.round_repeats``.

    Shape: int -> int.
    """
    return int(math.ceil(depth_coefficient * repeats))


def compound_coefficients(phi: float, alpha: float = 1.2,
                          beta: float = 1.1, gamma: float = 1.15,
                          base_resolution: int = 224) -> dict[str, float]:
    r"""The compound scaling rule of EfficientNet §3.3, Eq. 3.

    depth :math:`d = \alpha^\phi`, width :math:`w = \beta^\phi`,
    resolution :math:`r = \gamma^\phi` (defaults: the α, β, γ of §4,
    step 1), with
    :math:`\alpha \beta^2 \gamma^2 \approx 2` so that FLOPs grow by about
    :math:`2^\phi`. The published B1–B7 coefficients
    (:data:`~effnet_tutorial.config.V1_COEFFICIENTS`) lie near this rule
    but are not its values.

    Shape: scalars -> dict(depth, width, resolution (pixels), flops_factor).
    """
    d, w, r = alpha ** phi, beta ** phi, gamma ** phi
    return {"depth": d, "width": w, "resolution": base_resolution * r,
            "flops_factor": d * w * w * r * r}
