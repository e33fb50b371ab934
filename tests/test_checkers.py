"""Every exercise checker (chapters 1-6 and the classroom assignments) gives the right verdict.

For each public ``check_*``: the reference answer passes; at least two known-wrong answers
fail and the printed hint names the mistake; and answers of the wrong type (None, a
string, a float64 tensor or model where relevant) get a verdict with a hint, never an
exception. Reference answers are computed here from the papers' formulas and tables (or
are the package's own modules, the reference the learner re-implements), not by the code
the checkers use. The printed output is compared with its whitespace normalised, since
checkers may wrap long lines.
"""

import contextlib
import dataclasses
import functools
import importlib
import inspect
import io
import math
import re

import pytest
import torch
from torch import nn

from effnet_tutorial import EfficientNet, get_model_config
from effnet_tutorial.blocks import MBConv
from effnet_tutorial.config import (
    EFFICIENTNET_B0_BLOCKS,
    EFFICIENTNETV2_BLOCKS,
    V1_COEFFICIENTS,
    FusedMBConvConfig,
    ModelConfig,
)
from effnet_tutorial.diagram import stage_table
from effnet_tutorial.exercises import assignments as asg
from effnet_tutorial.exercises import chapter01 as ch1
from effnet_tutorial.exercises import chapter02 as ch2
from effnet_tutorial.exercises import chapter03 as ch3
from effnet_tutorial.exercises import chapter04 as ch4
from effnet_tutorial.exercises import chapter05 as ch5
from effnet_tutorial.exercises import chapter06 as ch6
from effnet_tutorial.inspection import count_flops
from effnet_tutorial.blocks import squeezed_channels
from effnet_tutorial.layers import ConvBNAct, SqueezeExcite, same_padding
from effnet_tutorial.scaling import round_filters, round_repeats
from effnet_tutorial.progressive import V2_PROGRESSIVE
from test_checkers_lite import lite_cases

MODULES = (ch1, ch2, ch3, ch4, ch5, ch6, asg)
B0 = get_model_config("efficientnet-b0")
DOUBLE = torch.tensor(1.0, dtype=torch.float64)


def run(checker, *args, **kwargs):
    """(verdict, printed output as one line); an exception fails the test."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = checker(*args, **kwargs)
    return verdict, unwrap(out.getvalue())


def unwrap(text: str) -> str:
    """The text as one line: verdicts are wrapped to the book's column, also after a hyphen."""
    return " ".join(re.sub(r"(?<=\w)-\n\s+", "-", text).split())


# ======================================================================================
# Reference answers, from the papers' formulas
# ======================================================================================
def ref_round_filters(channels, width, divisor=8):
    exact = channels * width
    nearest = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    return nearest + divisor if nearest < 0.9 * exact else nearest


def ref_round_repeats(repeats, depth):
    return int(math.ceil(depth * repeats))


def scaled_stage(name, stage, swap=False):
    """A learner's scaled_stage (assignment 2), with the test's own rounding functions;
    ``swap`` mixes up the width and depth coefficients."""
    width, depth, *_ = V1_COEFFICIENTS[name]
    if swap:
        width, depth = depth, width
    base = B0.stage(stage)
    return ref_round_filters(base.out_channels, width), ref_round_repeats(base.num_repeats, depth)


def ref_same_padding(size, kernel_size, stride, dilation=1):
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def has_skip(stride, cin, cout):
    return stride == 1 and cin == cout


def b0_stride2_paddings(size):
    layers = [(3, 2)] + [
        (s.kernel_size, s.stride) for s in B0.block_specs()
    ]  # the stem: 3x3, stride 2
    pads = []
    for k, s in layers:
        if s == 2:
            pads.append(ref_same_padding(size, k, 2))
        size = -(-size // s)
    return pads


def params_by_prefix(model):
    """Parameters per part of an EfficientNet, from the parameter names alone."""
    parts = {}
    for name, p in model.named_parameters():
        head = name.split(".")
        key = ".".join(head[:2]) if head[0] == "stages" else head[0]
        parts[key] = parts.get(key, 0) + p.numel()
    return parts


def mbconv_formula(cin, cout, k, e, se):
    """MBConv parameters by part (convs without bias, BN: 2 per channel, SE convs with bias)."""
    mid, c_se = cin * e, max(1, int(cin * se))
    return {
        "expand": cin * mid + 2 * mid,
        "depthwise": k * k * mid + 2 * mid,
        "se": (mid * c_se + c_se) + (c_se * mid + mid),
        "project": mid * cout + 2 * cout,
    }


def block_macs(c, size, e, k):
    hw = size * size
    return (c * e * c + k * k * e * c + e * c * c) * hw, (k * k * c * e * c + e * c * c) * hw


def block_params(c, e, k):
    return (
        (c * e * c + 2 * e * c) + (k * k * e * c + 2 * e * c) + (e * c * c + 2 * c),
        (k * k * c * e * c + 2 * e * c) + (e * c * c + 2 * c),
    )


def saved_activation_mib(model, size):
    """What autograd saves in one training forward pass (weights excluded), in MiB: measured
    on the CPU with saved_tensors_hooks (the package's checker counts on the meta device)."""
    weights = {id(t.untyped_storage()) for t in [*model.parameters(), *model.buffers()]}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if id(s) not in weights:
            storages[id(s)] = s
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(torch.zeros(size))
    del out
    return sum(s.nbytes() for s in storages.values()) / 2**20


def fused_b0(stages, keep_se=True):
    blocks = []
    for number, block in zip(B0.stage_numbers, B0.blocks):
        if number in stages:
            values = {f.name: getattr(block, f.name) for f in dataclasses.fields(block)}
            block = FusedMBConvConfig(
                **{**values, "se_ratio": values["se_ratio"] if keep_se else None}
            )
        blocks.append(block)
    return dataclasses.replace(B0, blocks=tuple(blocks))


# ======================================================================================
# Learners' modules: the reference, known mistakes, wrong types
# ======================================================================================
def variant(cls, old: str, new: str, **names):
    """The package's class with one line of its source changed: a learner's mistake."""
    source = inspect.getsource(cls)
    # Any run of whitespace matches any other: the package's code may be re-wrapped.
    pattern = r"\s+".join(re.escape(word) for word in old.split())
    source, found = re.subn(pattern, lambda m: new, source, count=1)
    assert found, f"{cls.__name__}'s source no longer contains {old!r}"
    namespace = dict(vars(importlib.import_module(cls.__module__)), **names)
    exec(source, namespace)
    return namespace[cls.__name__]


SE_RELU = variant(SqueezeExcite, "self.act = activation()", "self.act = nn.ReLU()")
SE_GATE_ONLY = variant(SqueezeExcite, "return x * self.gate(s)", "return self.gate(s)")
SE_NO_BIAS = variant(
    SqueezeExcite,
    "nn.Conv2d(channels, squeezed_channels, 1)",
    "nn.Conv2d(channels, squeezed_channels, 1, bias=False)",
)
MB_SE_EXPANDED = variant(
    MBConv, "squeezed_channels(in_channels, se_ratio)", "squeezed_channels(mid, se_ratio)"
)
MB_SKIP_ALWAYS = variant(
    MBConv, "self.has_skip = stride == 1 and in_channels == out_channels", "self.has_skip = True"
)
MB_NO_SKIP = variant(MBConv, "x += shortcut", "pass")
MB_NO_STRIDE = variant(
    MBConv, "ConvBNAct(mid, mid, kernel_size, stride,", "ConvBNAct(mid, mid, kernel_size, 1,"
)
MB_SYMMETRIC = variant(MBConv, "padding=padding, input_size", "padding='symmetric', input_size")
# A learner's correct modules: the package's source, typed again (the package's own classes
# are refused by the assignments' checkers).
LEARNER_SE = variant(SqueezeExcite, "", "")
LEARNER_MBCONV = variant(MBConv, "", "", SqueezeExcite=LEARNER_SE)


class DoubleSE(LEARNER_SE):
    """A learner's SE built in float64."""

    def __init__(self, *args):
        super().__init__(*args)
        self.double()


class DoubleMBConv(LEARNER_MBCONV):
    """A learner's MBConv built in float64."""

    def __init__(self, *args):
        super().__init__(*args)
        self.double()


class Features(nn.Module):
    """B0 without its pooling and classifier: returns feature maps, not class scores."""

    def __init__(self):
        super().__init__()
        self.net = EfficientNet.from_name("efficientnet-b0")

    def forward(self, x):
        return self.net.extract_features(x)


# ======================================================================================
# The cases: (checker, args, kwargs[, hint]) for the reference, the mistakes, wrong types
# ======================================================================================
def _chapter_cases():
    a, b, g = 1.2, 1.1, 1.15
    w3, d3, r3, _ = V1_COEFFICIENTS["efficientnet-b3"]
    # EfficientNet paper (arXiv 1905.11946v5), Table 2: B0 0.39B FLOPs at 224, B3 1.8B at 300.
    b0_paper, b3_paper = 0.39e9, 1.8e9
    b3_factor = d3 * w3**2 * (r3 / 224) ** 2

    stage6 = B0.stage(6)
    k, c = stage6.kernel_size, stage6.out_channels * stage6.expand_ratio  # block stages[6][1]: 672
    hw = next(r["input_size"] for r in stage_table(B0) if r["stage"] == 6) ** 2
    with torch.device("meta"):
        b0_meta = EfficientNet.from_name("efficientnet-b0")
    s7 = B0.stage(7)
    mid7, cse7 = s7.in_channels * s7.expand_ratio, int(s7.in_channels * s7.se_ratio)
    se7 = (mid7 * cse7 + cse7) + (cse7 * mid7 + mid7)
    cse7_wrong = int(mid7 * s7.se_ratio)

    parts = mbconv_formula(40, 80, 3, 6, 0.25)
    specs = B0.block_specs()
    rates = [B0.drop_path_rate * i / len(specs) for i in range(len(specs))]
    skipped = sum(
        r for r, s in zip(rates, specs) if has_skip(s.stride, s.in_channels, s.out_channels)
    )

    breakdown = params_by_prefix(b0_meta)
    wrong_breakdown = {**breakdown, "stages.7": breakdown["stages.7"] + 1}

    w4, d4, *_ = V1_COEFFICIENTS["efficientnet-b4"]
    b4_channels, b4_repeats = (
        ref_round_filters(stage6.out_channels, w4),
        ref_round_repeats(stage6.num_repeats, d4),
    )
    ratio_300 = b3_paper / (b0_paper * (300 / 224) ** 2)  # B0's FLOPs grow with the image area

    b0_cpu = EfficientNet.from_name("efficientnet-b0")
    mib_1 = saved_activation_mib(b0_cpu, (1, 3, 224, 224))

    v2s = EFFICIENTNETV2_BLOCKS["efficientnetv2-s"][0]
    stage1 = v2s.num_repeats * (
        v2s.kernel_size**2 * v2s.in_channels * v2s.out_channels + 2 * v2s.out_channels
    )
    popular = v2s.num_repeats * (
        v2s.out_channels * v2s.out_channels + 2 * v2s.out_channels
    )  # + a 1x1 projection
    prog = V2_PROGRESSIVE["efficientnetv2-m"]
    stage_2 = {key: lo + (hi - lo) * 2 / 3 for key, (lo, hi) in vars(prog).items()}
    stage_2["image_size"] = math.floor(stage_2["image_size"] + 1e-9)
    mb, fu = block_macs(48, 56, 4, 3)

    def swish_grad(x):
        s = torch.sigmoid(x)
        return s * (1 + x * (1 - s))

    return {
        ch1.check_flops_factor: dict(
            ref=[((a * b**2 * g**2) ** 3,)],
            wrong=[((2.0**3,), "2**phi is the target"), (((a * b * g) ** 3,), "enter squared")],
            types=[(None,), ("7.08",), (DOUBLE,)],
        ),
        ch1.check_round_filters: dict(
            ref=[(ref_round_filters,)],
            wrong=[
                (((lambda c_, w: int(c_ * w)),), "truncated"),
                (((lambda c_, w: max(8, int(c_ * w + 4) // 8 * 8)),), "more than 10 % below"),
            ],
            types=[
                (None,),
                ("round_filters",),
                (lambda c_, w: float(ref_round_filters(c_, w)),),
                (DOUBLE,),
            ],
        ),
        ch1.check_b3_prediction: dict(
            ref=[(b0_paper * b3_factor,)],
            wrong=[
                ((b3_factor,), "that is the factor"),
                ((b0_paper * d3 * w3 * r3 / 224,), "enter squared"),
            ],
            types=[(None,), ("1.4e9",), (DOUBLE * b0_paper * b3_factor,)],
        ),
        ch2.check_stage6_depthwise: dict(
            ref=[(k * k * c, k * k * c * c, k * k * c * hw, k * k * c * c * hw)],
            wrong=[
                ((k * k * c + c, k * k * c * c), "one k x k filter per channel, no bias"),
                ((k * k * c, k * k * c), "k^2 * C_in * C_out"),
            ],
            types=[(None, None), ("a", "b"), (DOUBLE, DOUBLE)],
        ),
        ch2.check_se_params: dict(
            ref=[(se7, b0_meta.stages[7][0])],
            wrong=[
                (
                    (2 * mid7 * cse7_wrong + cse7_wrong + mid7, b0_meta.stages[7][0]),
                    "INPUT channels",
                ),
                ((2 * mid7 * cse7, b0_meta.stages[7][0]), "biases"),
            ],
            types=[
                (None, b0_meta.stages[7][0]),
                ("x", b0_meta.stages[7][0]),
                (se7, None),
                (DOUBLE, "block"),
            ],
        ),
        ch2.check_swish_derivative: dict(
            ref=[(swish_grad,), (lambda x: swish_grad(x.float()),)],
            wrong=[
                (
                    ((lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x))),),
                    "sigma(x) * (1 + x * (1 - sigma(x)))",
                ),
                (((lambda x: x.sum()),), "shaped like x"),
            ],
            types=[(None,), ("swish",), (lambda x: "grad",), (DOUBLE,)],
        ),
        ch3.check_mbconv_params: dict(
            ref=[({**parts, "total": sum(parts.values())},), (sum(parts.values()),)],
            wrong=[
                (
                    ({**parts, "se": mbconv_formula(40, 80, 3, 6, 1.5)["se"]},),
                    "from the block's input",
                ),
                (({**parts, "depthwise": 9 * 240},), "then BN"),
            ],
            types=[(None,), ("37130",), (DOUBLE,)],
        ),
        ch3.check_has_skip: dict(
            ref=[(has_skip,)],
            wrong=[
                (((lambda s, i, o: True),), "output shape to equal the input shape"),
                (((lambda s, i, o: s == 1),), "output shape to equal the input shape"),
            ],
            types=[(None,), ("has_skip",), (lambda s, i, o: 1 / 0,), (DOUBLE,)],
        ),
        ch3.check_expected_skipped: dict(
            ref=[(skipped,)],
            wrong=[
                ((sum(rates),), "only over the blocks with has_skip"),
                ((skipped * 2,), "only over the blocks with has_skip"),
            ],
            types=[(None,), ("0.9",)],
        ),
        ch4.check_stride2_paddings: dict(
            ref=[(b0_stride2_paddings(240),), (b0_stride2_paddings(255), 255)],
            wrong=[
                (([(k_ // 2, k_ // 2) for k_ in (3, 3, 5, 3, 5)],), "TF puts the odd pixel after"),
                ((b0_stride2_paddings(240)[:4],), "there are 5 stride-2 layers"),
            ],
            types=[(None,), ("(0, 1)",), (torch.zeros(5, dtype=torch.float64),)],
        ),
        ch4.check_param_breakdown: dict(
            ref=[(breakdown,)],
            wrong=[
                (({k_: v for k_, v in breakdown.items() if k_ != "stages.8"},), "stages.8"),
                ((wrong_breakdown,), "stages.7"),
            ],
            types=[(None,), ("stem",)],
        ),
        ch4.check_accepts_size: dict(
            ref=[
                (EfficientNet.from_name("efficientnet-b0"),),
                (EfficientNet.from_name("efficientnet-b0").double(),),
            ],
            wrong=[
                ((EfficientNet.from_name("efficientnet-b0", image_size=224),), "image_size=256"),
                ((Features(),), "one row of class scores per image"),
            ],
            types=[(None,), ("efficientnet-b0",), (DOUBLE,)],
        ),
        ch5.check_b4_stage6: dict(
            ref=[(b4_channels, b4_repeats)],
            wrong=[
                ((int(stage6.out_channels * w4) // 8 * 8, b4_repeats), "nearest multiple of 8"),
                ((b4_channels, int(stage6.num_repeats * d4)), "rounds up"),
            ],
            types=[(None, None), ("160", "6")],
        ),
        ch5.check_flops_at_300: dict(
            ref=[("efficientnet-b3", ratio_300), ("b3", ratio_300)],
            wrong=[
                (("efficientnet-b0", ratio_300), "only width (squared) and depth differ"),
                (("b3", 1.2), "measure both with count_flops"),
            ],
            types=[(None, 2.5), ("b3", None), ("b3", "2.6")],
        ),
        ch5.check_b0_batch32_activations: dict(
            ref=[(32 * mib_1,)],
            wrong=[
                ((mib_1,), "scale linearly with the batch size"),
                ((32 * mib_1 * 2**20 / 1e6,), "use MiB (2**20 bytes)"),
            ],
            types=[(None,), ("2715",)],
        ),
        ch6.check_stage1_params: dict(
            ref=[(stage1,)],
            wrong=[
                ((stage1 - 2 * v2s.num_repeats * v2s.out_channels,), "BatchNorm"),
                ((stage1 + popular,), "no 1x1 projection and no SE"),
            ],
            types=[(None,), ("41472",), (DOUBLE,)],
        ),
        ch6.check_progressive_stage: dict(
            ref=[(stage_2,)],
            wrong=[
                (
                    ({key: hi for key, (lo, hi) in vars(prog).items()},),
                    "min + (max - min) * i / (M - 1)",
                ),
                (({**stage_2, "image_size": stage_2["image_size"] + 1},), "rounded down"),
            ],
            types=[
                (None,),
                ("image_size=296",),
                ({key: "1" for key in stage_2},),
                ({key: DOUBLE for key in stage_2},),
            ],
        ),
        ch6.check_block_flops: dict(
            ref=[(mb, fu)],
            wrong=[
                ((mb - 9 * 4 * 48 * 56 * 56, fu), "kxk depthwise on eC"),
                ((mb, mb), "kxk regular conv C -> eC"),
            ],
            types=[(None, None), ("mb", "fu"), (DOUBLE, DOUBLE)],
        ),
    }


#: MBConv blocks that no published table has (no SE, e=1 with stride 2 ...).
EXTRA_BLOCKS = [(24, 24, 5, 1, 4, None), (16, 16, 3, 2, 1, 0.25), (48, 64, 5, 2, 4, 0.5), (8, 8, 3, 1, 1, None)]


def _assignment_cases():
    w3, d3, r3, _ = V1_COEFFICIENTS["efficientnet-b3"]
    r2 = V1_COEFFICIENTS["efficientnet-b2"][2]
    w2, d2 = V1_COEFFICIENTS["efficientnet-b2"][:2]

    def measured(d, w, r):  # the config built directly, not through get_model_config
        return count_flops(
            ModelConfig(
                name="scaled-b0",
                blocks=EFFICIENTNET_B0_BLOCKS,
                depth_coefficient=d,
                width_coefficient=w,
                resolution=r,
            )
        )

    b0_macs = measured(1.0, 1.0, 224)
    mb, fu = block_params(48, 4, 3)

    def mb_params(c, e, k):
        return block_params(c, e, k)[0]

    def fu_params(c, e, k):
        return block_params(c, e, k)[1]

    def mb_macs(c, n, e, k):
        return block_macs(c, n, e, k)[0]

    def fu_macs(c, n, e, k):
        return block_macs(c, n, e, k)[1]

    mb_no_bn = 48 * 4 * 48 + 9 * 4 * 48 + 4 * 48 * 48
    classes = [None, "MBConv", LEARNER_MBCONV(40, 80, 3, 2, 6), DoubleMBConv]

    return {
        asg.check_squeezed_channels: dict(
            ref=[(lambda c, r: max(1, int(c * r)),),
                 (lambda c, r: max(1, int(c * r)), [(c, r) for c in (1, 3, 257) for r in (0.0625, 1.0)])],
            wrong=[
                (((lambda c, r: round(c * r)),), "round down"),
                (((lambda c, r: int(c * r)), [(3, 0.25)]), "never below one channel"),
            ],
            types=[(None,), ("squeezed_channels",), (lambda c, r: c * r,), (DOUBLE,)],
        ),
        asg.check_squeeze_excite: dict(
            ref=[(LEARNER_SE,), (LEARNER_SE, 96, 4, 2)],
            wrong=[
                ((SE_RELU,), "not ReLU"),
                ((SE_GATE_ONLY,), "the gate alone"),
                ((SE_NO_BIAS,), "have a bias"),
            ],
            types=[(None,), ("SqueezeExcite",), (LEARNER_SE(240, 10),), (DoubleSE,)],
        ),
        asg.check_mbconv_shapes: dict(
            ref=[(LEARNER_MBCONV,), (LEARNER_MBCONV, EXTRA_BLOCKS)],
            wrong=[
                ((MB_SKIP_ALWAYS,), "only when stride == 1 and in_channels == out_channels"),
                ((MB_NO_STRIDE,), "the depthwise conv carries the stride"),
            ],
            types=[(c,) for c in classes],
        ),
        asg.check_mbconv_param_counts: dict(
            ref=[(LEARNER_MBCONV,), (LEARNER_MBCONV, EXTRA_BLOCKS)],
            wrong=[
                ((MB_SE_EXPANDED,), "squeezes from the block's INPUT channels"),
                ((variant(MBConv, "groups=mid, ", ""),), "groups = channels"),
            ],
            types=[(c,) for c in classes[:3]],
        ),  # a float64 block has the right counts
        asg.check_mbconv_outputs: dict(
            ref=[(LEARNER_MBCONV,), (LEARNER_MBCONV, EXTRA_BLOCKS, 1)],
            wrong=[
                ((MB_NO_SKIP,), "add the input (identity skip)"),
                ((MB_SYMMETRIC,), "TF 'same' padding"),
            ],
            types=[(c,) for c in classes],
        ),
        asg.check_same_padding: dict(
            ref=[(ref_same_padding,), (ref_same_padding, 600, (1, 3, 5, 7), (1, 2), (1, 2, 3))],
            wrong=[
                (((lambda n, k, s, d=1: (k // 2, k // 2)),), "PyTorch's symmetric padding"),
                (((lambda n, k, s, d=1: ref_same_padding(n, k, s, d)[::-1]),), "odd pixel AFTER"),
                (
                    (
                        (
                            lambda n, k, s, d=1: (
                                (t := (-(-n // s) - 1) * s + k - n) // 2,
                                t - t // 2,
                            )
                        ),
                    ),
                    "never negative",
                ),
            ],
            types=[(None,), ("same",), (lambda n, k, s, d=1: [0.0, 1.0],), (DOUBLE,)],
        ),
        asg.check_round_repeats: dict(
            ref=[(ref_round_repeats,)],
            wrong=[
                (((lambda n, d: round(n * d)),), "round() goes to the nearest"),
                (((lambda n, d: int(n * d)),), "int() truncates"),
            ],
            types=[(None,), ("ceil",), (lambda n, d: n * d,), (DOUBLE,)],
        ),
        asg.check_round_filters: dict(
            ref=[(ref_round_filters,), (ref_round_filters, [(c, w) for c in (1, 7, 320) for w in (0.4, 1.15, 3.1)])],
            wrong=[
                (((lambda c_, w: max(8, int(c_ * w + 4) // 8 * 8)),), "more than 10 % below"),
                (((lambda c_, w: max(8, int(c_ * w + 4) // 8 * 8)), [(10, 1.0)]), "add 8 when that lost"),
                (((lambda c_, w: int(c_ * w)), [(321, 1.15)]), "nearest multiple of 8"),
            ],
            types=[(None,), ("round_filters",), (lambda c_, w: float(ref_round_filters(c_, w)), [(8, 1.0)]),
                   (DOUBLE,)],
        ),
        asg.check_scaled_table: dict(
            ref=[
                (ref_round_filters, ref_round_repeats),
                (ref_round_filters, None),
                (None, ref_round_repeats),
            ],
            wrong=[
                ((lambda c, w: max(8, int(c * w + 4) // 8 * 8), None), "10 %"),
                ((None, lambda n, d: round(n * d)), "rounds up"),
            ],
            types=[(None, None), ("round_filters", None), (lambda c, w: str(c), None)],
        ),
        asg.check_predicted_factor: dict(
            ref=[(lambda d, w, r: d * w**2 * (r / 224) ** 2,)],
            wrong=[
                (((lambda d, w, r: d * w * r / 224),), "enter squared"),
                (((lambda d, w, r: d * w**2 * r**2),), "resolution is a ratio"),
            ],
            types=[(None,), ("d*w^2*r^2",), (lambda d, w, r: "big",), (DOUBLE,)],
        ),
        asg.check_scaled_macs: dict(
            ref=[(measured,)],
            wrong=[
                (
                    ((lambda d, w, r: round(b0_macs * d * w**2 * (r / 224) ** 2)),),
                    "that is the prediction",
                ),
                (((lambda d, w, r: measured(w, d, r)),), "swapped"),
            ],
            types=[(None,), ("count_flops",), (lambda d, w, r: measured(d, w, r) / 1e9,)],
        ),
        asg.check_flops_budget: dict(
            ref=[(d3, w3, r2)],  # B3's depth and width at B2's image size: 3.6-4 times B0
            wrong=[((d3, w3, r3), "over the budget"), ((d2, w2, r2), "of the budget")],
            types=[
                (None, 1.0, 224),
                ("1.4", "1.2", "260"),
                (1.4, 1.2, 260.5),
                (DOUBLE, DOUBLE, 260),
            ],
        ),
        asg.check_block_params: dict(
            ref=[(mb_params, fu_params), (mb_params, fu_params, 64, 6, 5)],
            wrong=[
                ((lambda c, e, k: mb_no_bn, fu_params), "BatchNorm's two parameters"),
                ((mb_params, lambda c, e, k: fu + 4 * 48 + 48), "the convs have no bias"),
            ],  # + a bias per output channel
            types=[
                (None, None),
                (mb, fu),  # the values, not the functions
                ("mbconv_params", "fused_params"),
                (lambda c, e, k: str(mb), fu_params),
                (lambda c, e, k: DOUBLE * mb, fu_params),
            ],
        ),
        asg.check_block_macs: dict(
            ref=[(mb_macs, fu_macs), (mb_macs, fu_macs, 64, 28, 6, 5)],
            wrong=[
                ((lambda c, n, e, k: mb_macs(c, n, e, k) - k * k * e * c * n * n, fu_macs),
                 "kxk depthwise on eC"),
                ((mb_macs, mb_macs), "kxk regular conv C -> eC"),
            ],
            types=[(None, None), (*block_macs(48, 56, 4, 3),), ("mb", "fu"),
                   (lambda c, n, e, k: DOUBLE, fu_macs)],
        ),
        asg.check_stride2_function: dict(
            ref=[(b0_stride2_paddings,), (b0_stride2_paddings, 255)],
            wrong=[
                ((lambda n: [(k_ // 2, k_ // 2) for k_ in (3, 3, 5, 3, 5)],),
                 "TF puts the odd pixel after"),
                ((lambda n: b0_stride2_paddings(n)[:4],), "there are 5 stride-2 layers"),
            ],
            types=[(None,), (b0_stride2_paddings(240),), ("stride2_paddings",),
                   (lambda n: torch.zeros(5, dtype=torch.float64),)],
        ),
        asg.check_b4_stage6_functions: dict(
            ref=[(ref_round_filters, ref_round_repeats)],
            wrong=[
                ((lambda c, w, divisor=8: int(c * w) // 8 * 8, ref_round_repeats),
                 "nearest multiple of 8"),
                ((ref_round_filters, lambda n, d: int(n * d)), "rounds up"),
            ],
            types=[(None, None), (160, 6), (ref_round_filters, "round_repeats"),
                   (lambda c, w, divisor=8: "160", ref_round_repeats)],
        ),
        asg.check_scaled_stage: dict(
            ref=[(scaled_stage,), (scaled_stage, [("efficientnet-b7", 8), ("efficientnet-b1", 2)])],
            wrong=[
                ((lambda name, stage: scaled_stage(name, stage, swap=True),),
                 "the width scales the channels, the depth the blocks"),
                ((lambda name, stage: (B0.stage(stage).out_channels, B0.stage(stage).num_repeats),),
                 "that is B0's stage"),
                ((lambda name, stage: scaled_stage(name, stage + 1),), "a neighbouring stage"),
            ],
            types=[(None,), ((160, 6),), ("scaled_stage",), (lambda name, stage: (160.0, 6),)],
        ),
        asg.check_b3_from_factor: dict(
            ref=[(lambda d, w, r: d * w**2 * (r / 224) ** 2,)],
            wrong=[
                (((lambda d, w, r: d * w * r / 224),), "enter squared"),
                (((lambda d, w, r: 1.0),), "B3 is width 1.2, depth 1.4, resolution 300"),
            ],
            types=[(None,), (1.8e9,), ("predicted_factor",), (lambda d, w, r: "big",),
                   (lambda d, w, r: DOUBLE,)],
        ),
        asg.check_fused_b0: dict(
            ref=[(fused_b0,), (fused_b0, (2, 3, 4, 5, 6))],
            wrong=[
                (((lambda stages: B0),), "no stage was replaced"),
                (
                    ((lambda stages: fused_b0(tuple(n + 1 for n in stages))),),
                    "numbered as in Table 1",
                ),
                (((lambda stages: fused_b0(stages, keep_se=False)),), "keep each stage's se_ratio"),
            ],
            types=[(None,), ("fused_b0",), (lambda stages: "config",), (DOUBLE,)],
        ),
    }


@pytest.fixture(scope="module")
def cases():
    # Chapter 5's section on EfficientNet-Lite keeps its cases in test_checkers_lite.py.
    return {**_chapter_cases(), **_assignment_cases(), **lite_cases()}


def _public_checkers():
    return {getattr(m, name) for m in MODULES for name in m.__all__ if name.startswith("check_")}


def _ids():
    return [
        f"{m.__name__.rsplit('.', 1)[-1]}.{name}"
        for m in MODULES
        for name in m.__all__
        if name.startswith("check_")
    ]


def test_every_public_checker_is_covered(cases):
    missing = sorted(c.__name__ for c in _public_checkers() - set(cases))
    assert not missing, f"add reference, wrong and wrong-typed answers for {missing}"
    for checker, case in cases.items():
        assert case["ref"] and len(case["wrong"]) >= 2 and case["types"], checker.__name__


def _checker(name):
    """``"chapter02.check_x"`` -> the checker function."""
    module, function = name.split(".")
    return getattr(importlib.import_module(f"effnet_tutorial.exercises.{module}"), function)


@pytest.mark.parametrize("name", _ids())
def test_reference_answers_pass(cases, name):
    checker = _checker(name)
    for args in cases[checker]["ref"]:
        verdict, out = run(checker, *args)
        assert verdict is True and "Correct" in out and "Not yet" not in out, out


@pytest.mark.parametrize("name", _ids())
def test_known_wrong_answers_fail_with_the_right_hint(cases, name):
    checker = _checker(name)
    for args, hint in cases[checker]["wrong"]:
        verdict, out = run(checker, *args)
        assert verdict is False and "Not yet" in out and "Hint:" in out, out
        assert " ".join(hint.split()) in out, f"expected the hint {hint!r} in: {out}"


@pytest.mark.parametrize("name", _ids())
def test_wrong_types_get_a_verdict_with_a_hint(cases, name):
    checker = _checker(name)
    for args in cases[checker]["types"]:
        verdict, out = run(checker, *args)  # an exception here fails the test
        assert verdict is False, f"{checker.__name__}{args!r} passed: {out}"
        assert "Not yet" in out and "Hint:" in out, out


def test_a_learner_function_that_raises_gets_a_verdict():
    def broken(*args):
        raise KeyError("oops")

    for checker in (
        ch1.check_round_filters,
        ch3.check_has_skip,
        asg.check_same_padding,
        asg.check_round_repeats,
        asg.check_predicted_factor,
        asg.check_fused_b0,
        asg.check_stride2_function,
        asg.check_b3_from_factor,
    ):
        verdict, out = run(checker, broken)
        assert verdict is False and "KeyError" in out and "Hint:" in out, out


def _undefined_name(*args):
    return not_defined_anywhere  # noqa: F821 (the learner's typo)


def _recursive(*args):
    return _recursive(*args)


@pytest.mark.parametrize("fn, error", [(_undefined_name, "NameError"), (_recursive, "RecursionError")])
def test_learner_functions_that_crash_get_a_verdict_from_every_function_checker(fn, error):
    """The checkers that the assignments' test cells hand the learner's functions to."""
    for checker, args in (
        (asg.check_stride2_function, (fn,)),
        (asg.check_b4_stage6_functions, (fn, ref_round_repeats)),
        (asg.check_b4_stage6_functions, (ref_round_filters, fn)),
        (asg.check_b3_from_factor, (fn,)),
        (asg.check_block_macs, (fn, fn)),
        (asg.check_block_params, (fn, fn)),
        (asg.show_choice, (1.0, 1.0, 224, fn, fn)),
    ):
        verdict, out = run(checker, *args)
        assert verdict is False and f"raised {error}" in out and "Hint:" in out, out


def test_every_call_in_an_assignment_test_cell_is_a_checker_call():
    """A test cell hands the learner's functions and values to checkers; it never calls
    them itself, where a crash would show a traceback instead of a verdict."""
    import ast

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "classroom"))
    import course

    for a in course.ASSIGNMENTS:
        for test in a.tests:
            for code in filter(None, (test.source, test.hidden)):
                calls = [node.func for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)]
                assert calls, test.grade_id
                for func in calls:
                    assert isinstance(func, ast.Name) and (
                        func.id.startswith("check_") or func.id == "hidden_cases"), (
                        f"{a.id} / {test.grade_id} calls {ast.unparse(func)}(...) outside a checker")


def test_show_choice_prints_the_prediction_and_the_measurement():
    w3, d3, r3, _ = V1_COEFFICIENTS["efficientnet-b3"]
    b0 = count_flops("efficientnet-b0")
    verdict, out = run(asg.show_choice, d3, w3, r3, lambda d, w, r: 2.5, lambda d, w, r: 3 * b0)
    assert verdict is True
    assert out == f"d = {d3:.3f}, w = {w3:.3f}, r = {r3} predicted 2.500 x B0, measured 3.000 x B0 " \
                  f"(budget: {asg.BUDGET:g} x B0)"


def test_check_equal_gives_a_hint_first_and_reveals_only_after_repeated_wrong_tries(capsys):
    from effnet_tutorial.exercises import _common
    what = "the test's answer (check_equal)"
    _common._wrong_tries.pop(what, None)
    outs = []
    for _ in range(_common.REVEAL_AFTER):
        assert _common.check_equal(41, 42, what, hint="count again.") is False
        outs.append(" ".join(capsys.readouterr().out.split()))
    # The first wrong tries: the hint and the given answer, never the expected one.
    for out in outs[:-1]:
        assert "count again." in out and "41" in out and "42" not in out and "Expected" not in out
    assert "2 more wrong tries" in outs[0] and "1 more wrong try" in outs[1]
    # The REVEAL_AFTER-th wrong try shows it.
    assert "Expected 42, got 41" in outs[-1]
    # A right answer says so and starts the count again.
    assert _common.check_equal(42, 42, what) is True
    assert capsys.readouterr().out.startswith("Correct")
    _common.check_equal(0, 42, what)
    assert "42" not in capsys.readouterr().out
    # A bool is never an exact number.
    assert _common.check_equal(True, 1, "a bool (check_equal)") is False


# ======================================================================================
# No free marks: the package's own reference is refused, however it is handed in
# ======================================================================================
def _wrapped(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


class _SubMBConv(MBConv):
    """A "learner's" MBConv that only inherits the package's."""


REFERENCE_ANSWERS = [
    ("squeezed_channels itself", asg.check_squeezed_channels, (squeezed_channels,)),
    ("a wrapper of squeezed_channels", asg.check_squeezed_channels, (_wrapped(squeezed_channels),)),
    ("SqueezeExcite itself", asg.check_squeeze_excite, (SqueezeExcite,)),
    ("MBConv itself", asg.check_mbconv_outputs, (MBConv,)),
    ("a subclass of MBConv", asg.check_mbconv_shapes, (_SubMBConv,)),
    ("a subclass of MBConv", asg.check_mbconv_param_counts, (_SubMBConv,)),
    ("same_padding itself", asg.check_same_padding, (same_padding,)),
    ("a lambda calling same_padding", asg.check_same_padding, (lambda n, k, s, d=1: same_padding(n, k, s, d),)),
    ("round_filters itself", asg.check_round_filters, (round_filters,)),
    ("a lambda calling round_filters", asg.check_round_filters, (lambda c, w, divisor=8: round_filters(c, w),)),
    ("a lambda calling round_filters, hidden cases", asg.check_round_filters,
     (lambda c, w, divisor=8: round_filters(c, w), [(32, 1.1)])),
    ("round_repeats itself", asg.check_round_repeats, (round_repeats,)),
    ("the package's round_repeats in B4", asg.check_b4_stage6_functions, (ref_round_filters, round_repeats)),
    ("fused_b0_config re-exported", asg.check_fused_b0, (asg.fused_b0_config,)),
    ("a lambda calling fused_b0_config", asg.check_fused_b0, (lambda stages: asg.fused_b0_config(stages),)),
    ("a lambda calling scaled_b0_config", asg.check_scaled_macs,
     (lambda d, w, r: count_flops(asg.scaled_b0_config(d, w, r)),)),
    ("a lambda calling a checker", asg.check_predicted_factor,
     (lambda d, w, r: asg.check_predicted_factor(lambda *a: 1.0) and d * w**2 * (r / 224) ** 2,)),
]


@pytest.mark.parametrize("checker, args", [c[1:] for c in REFERENCE_ANSWERS], ids=[c[0] for c in REFERENCE_ANSWERS])
def test_the_packages_own_reference_is_refused_and_named(checker, args):
    verdict, out = run(checker, *args)
    assert verdict is False and f"Not yet: {asg.NOT_ALLOWED}" in out, out
    assert "the package's own" in out and "flagged" in out, out


def test_hidden_cases_come_from_the_secret_seed(monkeypatch):
    """Same seed, same cases; another seed or none, other cases; and every draw is valid."""
    monkeypatch.setenv(asg.SEED_VARIABLE, "instructor-secret-1")
    first = {name: asg.hidden_cases(name) for name in asg._DRAWS}
    assert first == {name: asg.hidden_cases(name) for name in asg._DRAWS}
    monkeypatch.setenv(asg.SEED_VARIABLE, "instructor-secret-2")
    assert all(asg.hidden_cases(name) != first[name] for name in asg._DRAWS)
    monkeypatch.delenv(asg.SEED_VARIABLE)
    assert asg.hidden_cases("same_padding") != asg.hidden_cases("same_padding")
    for cin, cout, k, s, e, r in first["mbconv"]:
        MBConv(cin, cout, k, s, e, r)
    assert all(2 <= n <= 8 for stages in first["fused_b0"] for n in stages)
    with pytest.raises(ValueError, match="expected one of"):
        asg.hidden_cases("mbconv_extra")


def test_one_misconception_costs_only_its_own_test():
    """The outputs of MBConv are compared with a reference of the learner's SE width and
    skip flag: those are test_mbconv_params' and test_mbconv_shapes' concepts. B0's
    stride-2 paddings are walked with the package's same_padding."""
    for wrong, failing in ((MB_SE_EXPANDED, asg.check_mbconv_param_counts),
                           (MB_SKIP_ALWAYS, asg.check_mbconv_shapes)):
        assert run(failing, wrong)[0] is False
        verdict, out = run(asg.check_mbconv_outputs, wrong)
        assert verdict is True, out
    namespace = {}
    exec("import math\nfrom effnet_tutorial import get_model_config\n"
         "def same_padding(size, k, s, d=1):\n    return (k // 2, k // 2)   # PyTorch's padding\n"
         "def stride2_paddings(image_size):\n    size, out = image_size, []\n"
         "    for k, s in [(3, 2)] + [(b.kernel_size, b.stride) for b in\n"
         "                            get_model_config('efficientnet-b0').block_specs()]:\n"
         "        if s == 2:\n            out.append(same_padding(size, k, s))\n"
         "        size = math.ceil(size / s)\n    return out\n", namespace)
    assert run(asg.check_same_padding, namespace["same_padding"])[0] is False
    verdict, out = run(asg.check_stride2_function, namespace["stride2_paddings"], 240)
    assert verdict is True, out
    assert namespace["same_padding"](5, 3, 2) == (1, 1)   # the learner's, back after the check


def _conv_bn_pytorch_eps(*args, **kwargs):
    """ConvBNAct with PyTorch's BatchNorm eps (1e-5): a learner's nn.BatchNorm2d()."""
    return ConvBNAct(*args, **{**kwargs, "bn_eps": 1e-5})


MB_BN_EPS = variant(MBConv, "", "", ConvBNAct=_conv_bn_pytorch_eps)


def test_hints_for_flops_twice_the_macs_and_batchnorm_eps():
    verdict, out = run(asg.check_scaled_macs, lambda d, w, r: 2 * count_flops(get_model_config(
        "efficientnet-b0", depth_coefficient=d, width_coefficient=w, resolution=r)))
    assert verdict is False and "FLOPs = 2 x MACs" in out, out
    verdict, out = run(asg.check_block_macs, lambda c, n, e, k: 2 * block_macs(c, n, e, k)[0],
                       lambda c, n, e, k: block_macs(c, n, e, k)[1])
    assert verdict is False and "FLOPs = 2 x MACs" in out, out
    verdict, out = run(asg.check_mbconv_outputs, MB_BN_EPS)
    assert verdict is False and "PyTorch's default is 1e-5" in out, out
