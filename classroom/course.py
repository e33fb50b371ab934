r"""The classroom course as data: instructors' material, outside the package.

``tools/classroom.py`` builds every notebook of the course (``classroom/source``) and
the assignments' part of ``book/assignments.md`` from :data:`ASSIGNMENTS`. A cell there
either quotes a chapter's exercise by its label (:class:`FromChapter`), shows the
package's own source as the solution, of which the learner sees only the signatures and
docstrings (:class:`Implement`), or holds a solution, an autograded test (:class:`Test`)
or a written answer with its rubric and model answer (:class:`Answer`).

This file is not in the package that students install (``pyproject.toml`` ships
``effnet_tutorial*`` only, and the Colab set-up cell installs that package): the
solutions written here, the hidden tests' code and the model answers are not importable
from an installed ``effnet_tutorial``. The checkers, and the rules that draw the hidden
cases from the instructor's secret seed, stay in
:mod:`effnet_tutorial.exercises.assignments`: the test cells import them in the
learners' kernels. See book/assignments.md, "What students can see".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Union

import torch
from torch import nn

from effnet_tutorial.blocks import MBConv, squeezed_channels
from effnet_tutorial.config import V1_COEFFICIENTS
from effnet_tutorial.deploy import fold_batchnorm
from effnet_tutorial.exercises.assignments import (
    BUDGET,
    BUDGET_FLOOR,
    _counts,
    fused_b0_config,
)
from effnet_tutorial.exercises.training_project import (
    BASE,
    BASE_RESOLUTION,
    BUDGET_FLOOR as A5_FLOOR,
    HELD_OUT_FRACTION,
    TOLERANCE,
    _reference_scaling,
)
from effnet_tutorial.exercises.training_project import BUDGET as A5_BUDGET
from effnet_tutorial.inspection import count_flops
from effnet_tutorial.layers import SqueezeExcite, same_padding
from effnet_tutorial.scaling import compound_coefficients, round_filters, round_repeats


# ======================================================================================
# The assignments as data: what tools/classroom.py turns into nbgrader notebooks
# ======================================================================================
@dataclass(frozen=True)
class Text:
    """A read-only markdown cell (MyST markdown: ``{cite:p}`` roles are resolved for Jupyter).
    ``source`` may be a function, called when the course is generated (for numbers that
    must be computed)."""

    source: str | Callable[[], str]


@dataclass(frozen=True)
class FromChapter:
    """A chapter's exercise, quoted from the notebook by its label (e.g. ``"ch2-ex2"``)."""

    label: str


@dataclass(frozen=True)
class Setup:
    """The chapters' set-up cell (``tools/sync_setup_cell.py``): installs the package in Colab."""


@dataclass(frozen=True)
class Given:
    """A read-only code cell: imports and helpers the learner uses but does not write."""

    source: str


@dataclass(frozen=True)
class Implement:
    """A solution cell made from the package's own source of ``objects``: the learner sees
    their signatures and docstrings, the bodies are the solution. Methods in ``keep`` are
    given in full (they are not part of the task)."""

    grade_id: str
    objects: tuple
    keep: tuple[str, ...] = ()
    #: Task docstrings that replace the package's, by function name: they say what to
    #: compute, where the package's state the formula.
    docstrings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Solution:
    """A solution cell written here; ``source`` marks the solution with nbgrader's
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (around all of it when it has none)."""

    grade_id: str
    source: str


@dataclass(frozen=True)
class Test:
    """An autograded test cell worth ``points``; ``hidden`` runs only when grading."""

    grade_id: str
    points: int
    title: str
    source: str
    hidden: str = ""
    __test__ = False   # not a pytest test class


@dataclass(frozen=True)
class Answer:
    """A written answer graded by hand: the prompt and the rubric (shown to the learner),
    then the answer cell, which holds ``model_answer`` in the instructors' version."""

    grade_id: str
    title: str
    prompt: str
    rubric: tuple[tuple[int, str], ...]
    model_answer: str | Callable[[], str]

    @property
    def points(self) -> int:
        return sum(p for p, _ in self.rubric)


Cell = Union[Text, FromChapter, Setup, Given, Implement, Solution, Test, Answer]


@dataclass(frozen=True)
class Assignment:
    """One nbgrader assignment: one notebook, ``classroom/source/<id>/<id>.ipynb``."""

    id: str
    title: str
    minutes: int
    goals: tuple[str, ...]
    cells: tuple[Cell, ...]

    @property
    def references(self) -> tuple[str, ...]:
        """The package's names a solution may not import: what the learner re-implements
        (the package's references for the assignment's checkers live in
        ``effnet_tutorial.exercises``, which no solution may import at all)."""
        return tuple(o.__name__ for c in self.cells if isinstance(c, Implement) for o in c.objects)

    @property
    def tests(self) -> list[Test]:
        return [c for c in self.cells if isinstance(c, Test)]

    @property
    def answers(self) -> list[Answer]:
        return [c for c in self.cells if isinstance(c, Answer)]

    @property
    def auto_points(self) -> int:
        return sum(t.points for t in self.tests)

    @property
    def manual_points(self) -> int:
        return sum(a.points for a in self.answers)


def _state_table(module: nn.Module) -> str:
    """The parameter names and shapes of a reference module, as a markdown table."""
    rows = "\n".join(f"| `{name}` | `{list(p.shape)}` |" for name, p in module.named_parameters())
    return "| parameter | shape |\n|---|---|\n" + rows


def _meta(cls, *args):
    with torch.device("meta"):
        return cls(*args)


HOW_TO_WORK = """\
**How to work.** Write your code where it says `YOUR CODE HERE` (delete the
`raise NotImplementedError()` line) and your written answers where it says
`YOUR ANSWER HERE`. Each test cell calls a checker of the book's package: it prints
`Correct: ...` or `Not yet: ...` with a hint, and fails until your answer is right.
When the notebook is graded, hidden tests run the same checkers on other cases, so
write general code, not code for the visible cases. Before you submit, run
**Kernel > Restart & Run All** and read every verdict. Do not delete, copy or reorder
cells, and keep the file name."""

_SE_TABLE = _state_table(_meta(SqueezeExcite, 240, 10))
_MBCONV_TABLE = _state_table(_meta(MBConv, 16, 24, 3, 2, 6, 0.25))
_TEST_MBCONV = "from effnet_tutorial.exercises.assignments import {0}\n\nassert {0}(MBConv)"

A1 = Assignment(
    id="a1_se_mbconv",
    title="Squeeze-and-Excitation and MBConv",
    minutes=90,
    goals=(
        "Build the Squeeze-and-Excitation layer {cite:p}`hu2018squeeze` and the MBConv block "
        "{cite:p}`sandler2018mobilenetv2` of EfficientNet {cite:p}`tan2019efficientnet` from "
        "convolutions, BatchNorm and Swish.",
        "Compute the SE width from the block's input channels, as the official code does.",
        "Know when a block can have an identity skip, and why.",
        "Check a module against a reference: shapes, parameter counts, then outputs with the "
        "same weights.",
    ),
    cells=(
        Text(
            "# Assignment 1: Squeeze-and-Excitation and MBConv\n\n"
            "You write the two modules at the heart of EfficientNet "
            "{cite:p}`tan2019efficientnet`: the Squeeze-and-Excitation (SE) layer "
            "{cite:p}`hu2018squeeze` and the mobile inverted bottleneck, MBConv "
            "{cite:p}`sandler2018mobilenetv2`. The autograder copies the weights of the book's "
            "package into your modules and compares shapes, parameter counts and outputs with "
            "the package's. 8 points, all autograded; about 90 minutes.\n\n" + HOW_TO_WORK
        ),
        Setup(),
        Given(
            "import torch\nfrom torch import nn\n\nfrom effnet_tutorial.layers import ConvBNAct, "
            "DropPath, MemoryEfficientSwish\n\ntorch.manual_seed(0)"
        ),
        Text(
            "## 1. The width of the SE bottleneck (1 point)\n\n"
            "Inside an MBConv block, SE squeezes the expanded tensor ($e \\cdot C_\\text{in}$ "
            "channels) to $C_\\text{se}$ channels and back. The official code computes "
            "$C_\\text{se}$ from the block's *input* channels, which several re-implementations "
            "get wrong. Chapter 2 of the book asks you to count it by hand:"
        ),
        FromChapter("ch2-ex2"),
        Text(
            "Write `squeezed_channels(in_channels, se_ratio)`, the width $C_\\text{se}$ for a "
            "block with `in_channels` input channels."
        ),
        Implement("squeezed_channels", (squeezed_channels,), docstrings={"squeezed_channels": (
            "The number of channels of the SE bottleneck in an MBConv block with\n"
            "``in_channels`` input channels and SE ratio ``se_ratio``, as EfficientNet's\n"
            "official code computes it (chapter 2).\n\nShape: (int, float) -> int.")}),
        Test(
            "test_squeezed_channels",
            1,
            "`squeezed_channels` on every MBConv block of B0-B7 and V2",
            "from effnet_tutorial.exercises.assignments import check_squeezed_channels\n\n"
            "assert check_squeezed_channels(squeezed_channels)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_squeezed_channels(squeezed_channels, cases=hidden_cases("squeezed_channels"))',
        ),
        Text(
            "## 2. Squeeze-and-Excitation (2 points)\n\n"
            "Write the module `SqueezeExcite(channels, squeezed_channels)`; its docstring says "
            "what it computes. The checker copies the package's weights into yours, by name when "
            "you use the package's names, otherwise in the order your module registers them. "
            "The package's `SqueezeExcite(240, 10)` holds:\n\n" + _SE_TABLE
        ),
        Implement("squeeze_excite", (SqueezeExcite,)),
        Test(
            "test_squeeze_excite",
            2,
            "`SqueezeExcite(240, 10)`: parameters, shape and outputs with the package's weights",
            "from effnet_tutorial.exercises.assignments import check_squeeze_excite\n\n"
            "assert check_squeeze_excite(SqueezeExcite)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'for case in hidden_cases("squeeze_excite"):\n'
            "    assert check_squeeze_excite(SqueezeExcite, **case)",
        ),
        Text(
            "## 3. MBConv (5 points)\n\nWrite `MBConv`: its docstring gives the order of the "
            "parts. Build them from the package's `ConvBNAct` (convolution without bias, "
            "BatchNorm, activation; its default "
            'padding is TensorFlow\'s "same") and your `SqueezeExcite` and '
            "`squeezed_channels`, as the submodules `expand`, `depthwise`, `se` and `project`, "
            "and set the attribute `has_skip`. The checkers build your class as "
            "`MBConv(in_channels, out_channels, kernel_size, stride, expand_ratio, se_ratio)`; "
            "the other arguments are the package's options and may keep their defaults "
            "(`DropPath` is given for `drop_path_rate`). Before you write the skip connection, "
            "recall chapter 3:"
        ),
        FromChapter("ch3-ex2"),
        Text(
            "The package's `MBConv(16, 24, kernel_size=3, stride=2, expand_ratio=6)` (the first "
            "block of B0's stage 3) holds these parameters, and the BatchNorm statistics "
            "(`running_mean`, `running_var`) next to each `bn`:\n\n" + _MBCONV_TABLE
        ),
        Implement("mbconv", (MBConv,), keep=("extra_repr",)),
        Test(
            "test_mbconv_shapes",
            1,
            "`has_skip` and output shapes on B0's blocks",
            _TEST_MBCONV.format("check_mbconv_shapes"),
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_mbconv_shapes(MBConv, cases=hidden_cases("mbconv"))',
        ),
        Test(
            "test_mbconv_params",
            1,
            "parameter counts, part by part, on B0's blocks",
            _TEST_MBCONV.format("check_mbconv_param_counts"),
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_mbconv_param_counts(MBConv, cases=hidden_cases("mbconv"))',
        ),
        Test(
            "test_mbconv_outputs",
            3,
            "outputs with the package's weights on B0's blocks",
            _TEST_MBCONV.format("check_mbconv_outputs"),
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_mbconv_outputs(MBConv, cases=hidden_cases("mbconv"), seed=1)',
        ),
    ),
)

_B4 = V1_COEFFICIENTS["efficientnet-b4"]

A2 = Assignment(
    id="a2_padding_rounding",
    title='TF "same" padding, round_filters and round_repeats',
    minutes=60,
    goals=(
        'Compute TensorFlow\'s "SAME" padding and see why it is asymmetric for stride 2.',
        "Scale channels with `round_filters` (nearest multiple of 8, the 10 % rule) and blocks "
        "with `round_repeats` (rounded up), as the official code does {cite:p}`tpu_efficientnet`.",
        "Scale any stage of B0 to B1-B7 {cite:p}`tan2019efficientnet` with the two rounding rules.",
    ),
    cells=(
        Text(
            '# Assignment 2: TF "same" padding, `round_filters` and `round_repeats`\n\n'
            "The official EfficientNets were trained in TensorFlow {cite:p}`tpu_efficientnet`. "
            "Three small functions decide whether a PyTorch model reproduces them exactly: "
            "TensorFlow's "
            '"SAME" padding, which is asymmetric for stride 2, and the rounding of channels and '
            "blocks when B0 is scaled {cite:p}`tan2019efficientnet`. You write all three and "
            "rebuild the tables of B1-B7 with them. 7 points, all autograded; about 60 minutes.\n\n"
            + HOW_TO_WORK
        ),
        Setup(),
        Given(
            "import math\n\nfrom effnet_tutorial import get_model_config\n"
            "from effnet_tutorial.config import V1_COEFFICIENTS"
        ),
        Text(
            '## 1. TensorFlow\'s "SAME" padding (3 points)\n\n'
            "Write `same_padding(size, kernel_size, stride, dilation=1)`, the `(before, after)` "
            "padding along one axis; its docstring says what it returns. Chapter 4 works through it:"
        ),
        FromChapter("ch4-ex1"),
        Implement("same_padding", (same_padding,), docstrings={"same_padding": (
            'TensorFlow\'s "SAME" padding along one axis of ``size`` pixels, for a kernel of\n'
            "``kernel_size`` pixels with ``stride`` and ``dilation``: the pixels to add\n"
            "before and after, ``(before, after)``, as TensorFlow adds them (chapter 4).\n\n"
            "Shape: ints -> (int, int).")}),
        Test(
            "test_same_padding",
            2,
            "`same_padding` on sizes 1-40, kernels 1-7, strides 1-3",
            "from effnet_tutorial.exercises.assignments import check_same_padding\n\n"
            "assert check_same_padding(same_padding)",
            hidden="assert check_same_padding(same_padding, max_size=600, dilations=(1, 2, 3))\n"
            "from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_same_padding(same_padding, cases=hidden_cases("same_padding"))',
        ),
        Text(
            "Now write `stride2_paddings(image_size)`: the `(before, after)` padding of each of "
            "B0's stride-2 layers (the stem, then the first block of the stages with stride 2), in "
            "order, for a square image of `image_size` pixels. Use your `same_padding` and B0's "
            'blocks, `get_model_config("efficientnet-b0").block_specs()`; each layer sees the '
            "output size of the one before, $\\lceil n / s \\rceil$."
        ),
        Solution(
            "stride2_paddings",
            "def stride2_paddings(image_size):\n"
            '    """TF paddings (before, after) of B0\'s stride-2 layers, stem first."""\n'
            "    ### BEGIN SOLUTION\n    layers = [(3, 2)]  # the stem: 3x3, stride 2 (Table 1, "
            "stage 1)\n"
            '    blocks = get_model_config("efficientnet-b0").block_specs()\n'
            "    layers += [(b.kernel_size, b.stride) for b in blocks]\n"
            "    size, paddings = image_size, []\n    for k, s in layers:\n"
            "        if s == 2:\n            paddings.append(same_padding(size, k, s))\n"
            "        size = math.ceil(size / s)\n    return paddings\n"
            "    ### END SOLUTION",
        ),
        Test(
            "test_stride2_paddings",
            1,
            "`stride2_paddings(240)`: B0's five stride-2 layers at 240 pixels",
            "from effnet_tutorial.exercises.assignments import check_stride2_function\n\n"
            "assert check_stride2_function(stride2_paddings, image_size=240)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'for size in hidden_cases("stride2_paddings"):\n'
            "    assert check_stride2_function(stride2_paddings, image_size=size)",
        ),
        Text(
            "## 2. `round_filters` (2 points)\n\nChapter 1's exercise calls it `my_round_filters`; "
            "here it has the official name and signature, `round_filters(channels, "
            "width_coefficient, divisor=8)`:"
        ),
        FromChapter("ch1-ex2"),
        Implement("round_filters", (round_filters,), docstrings={"round_filters": (
            "The channels of a layer that has ``channels`` in B0, after width scaling by\n"
            "``width_coefficient``, rounded as EfficientNet's official code rounds them\n"
            "(chapter 1).\n\nShape: int -> int.")}),
        Test(
            "test_round_filters",
            2,
            "`round_filters` on B0's channels at every published width, and narrow layers",
            "from effnet_tutorial.exercises.assignments import check_round_filters\n\n"
            "assert check_round_filters(round_filters)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_round_filters(round_filters, cases=hidden_cases("round_filters"))',
        ),
        Text(
            "## 3. `round_repeats` (1 point)\n\nWrite `round_repeats(repeats, "
            "depth_coefficient)`, the number of blocks of a stage "
            "after depth scaling. Chapter 5 computes one by hand:"
        ),
        FromChapter("ch5-ex1"),
        Implement("round_repeats", (round_repeats,), docstrings={"round_repeats": (
            "The number of blocks of a stage that has ``repeats`` blocks in B0, after depth\n"
            "scaling by ``depth_coefficient``, as EfficientNet's official code computes it\n"
            "(chapter 5).\n\nShape: int -> int.")}),
        Test(
            "test_round_repeats",
            1,
            "`round_repeats` on every repeat count of the V1 and V2 tables",
            "from effnet_tutorial.exercises.assignments import check_round_repeats\n\n"
            "assert check_round_repeats(round_repeats)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_round_repeats(round_repeats, cases=hidden_cases("round_repeats"))',
        ),
        Text(
            "## 4. A scaled stage (1 point)\n\nWrite `scaled_stage(model_name, stage)`: the "
            "output channels and the number of blocks, `(channels, blocks)`, of stage `stage` "
            "(numbered as in Table 1 of {cite:t}`tan2019efficientnet`: 2 to 8) of the EfficientNet "
            "`model_name` (`\"efficientnet-b1\"` to `\"efficientnet-b7\"`), scaled from B0's with "
            "`round_filters` and `round_repeats` at that model's coefficients, "
            "`V1_COEFFICIENTS[model_name]`; `get_model_config(\"efficientnet-b0\").stage(stage)` "
            "is B0's stage. For B4's stage 6 it is chapter 5's exercise. While the test runs, your "
            "function finds the package's `round_filters` and `round_repeats` under those names: "
            "it checks this step only, the tests above check your two functions."
        ),
        Solution(
            "scaled_stage",
            "def scaled_stage(model_name, stage):\n"
            '    """(output channels, blocks) of a stage of model_name, scaled from B0\'s."""\n'
            "    ### BEGIN SOLUTION\n    width, depth, *_ = V1_COEFFICIENTS[model_name]\n"
            '    b0_stage = get_model_config("efficientnet-b0").stage(stage)\n'
            "    return (round_filters(b0_stage.out_channels, width),\n"
            "            round_repeats(b0_stage.num_repeats, depth))\n"
            "    ### END SOLUTION",
        ),
        Test(
            "test_b4_stage6",
            1,
            "`scaled_stage` on B4's stage 6, with the package's rounding functions",
            "from effnet_tutorial.exercises.assignments import check_scaled_stage\n\n"
            "assert check_scaled_stage(scaled_stage)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_scaled_stage(scaled_stage, cases=hidden_cases("scaled_stage"))',
        ),
    ),
)


def _a3_model_answer() -> str:
    """A model answer for assignment 3; its numbers are computed from the package."""
    from effnet_tutorial.scaling import compound_coefficients

    rate = compound_coefficients(1)["flops_factor"]  # alpha * beta^2 * gamma^2 of §3.3
    phi = math.log(BUDGET) / math.log(rate)
    c = compound_coefficients(phi)
    return (
        f"The budget is {BUDGET:g} times B0. With $\\alpha\\beta^2\\gamma^2 = {rate:.3f}$, "
        f"$\\phi = \\ln {BUDGET:g} / \\ln {rate:.3f} \\approx {phi:.2f}$, which the rule turns "
        f"into $d \\approx {c['depth']:.2f}$, $w \\approx {c['width']:.2f}$ and $r \\approx "
        f"{c['resolution']:.0f}$ pixels. I kept the rule's proportions and lowered $\\phi$ until "
        f"the "
        "measured cost fitted the budget (the printed $\\phi$), because the paper shows that "
        "scaling one dimension alone saturates quickly (a very deep or very wide network, or a "
        "huge image, adds little accuracy), while the balanced rule gives more accuracy for the "
        "same FLOPs.\n\nThe measured factor differs from the predicted one because the prediction "
        "treats every layer as scaling exactly with $d w^2 r^2$: channels are rounded to multiples "
        "of 8, with 8 added back when that loses more than 10 %, blocks are rounded up to whole "
        "blocks, the stem and the head do not get deeper, and the classifier's cost does not grow "
        "with the image size."
    )


def _a4_model_answer() -> str:
    """A model answer for assignment 4; its counts are computed from the package."""
    b0, part, full = (_counts(fused_b0_config(s)) for s in ((), (2, 3, 4), tuple(range(2, 9))))
    return (
        f"Fusing stages 2-4 adds {part[0] / b0[0] - 1:.0%} parameters but multiplies B0's "
        f"multiply-adds by {part[1] / b0[1]:.1f}; fusing all stages multiplies the parameters by "
        f"{full[0] / b0[0]:.1f} and the multiply-adds by {full[1] / b0[1]:.1f}. The formulas "
        f"explain "
        "it: per output pixel a fused block spends $k^2 C \\cdot eC$ on its regular convolution "
        "where MBConv spends $C \\cdot eC + k^2 eC$, a ratio that approaches $(k^2 + 1) / 2 = 5$ "
        "for $k = 3$ as $C$ grows: the wide late stages become very expensive.\n\n"
        "Time does not follow multiply-adds. A depthwise convolution reads and writes a whole "
        "$eC$-channel tensor for only $k^2$ multiply-adds per value, so memory traffic limits it, "
        "while a regular convolution reuses each value $k^2 C$ times and runs near the peak of the "
        "hardware. So the early fused stages cost much less time than their FLOPs suggest, and can "
        "even be faster than MBConv, as the EfficientNetV2 paper reports on TPUs and GPUs; the "
        "answer compares this with the table, measured on the device it names. Fused-MBConv "
        "belongs in the early stages, where the channels are few and the feature maps large "
        "(EfficientNetV2-S uses it in stages 1-3); fused late stages cost far more parameters and "
        "FLOPs than they save in memory traffic, and the paper found fusing every stage slower "
        "than fusing the early ones only."
    )


A3 = Assignment(
    id="a3_flops_budget",
    title="Scale B0 to a FLOPs budget",
    minutes=60,
    goals=(
        "Predict the cost of a scaled B0 with the compound rule's $d \\cdot w^2 \\cdot r^2$ "
        "{cite:p}`tan2019efficientnet` (§3.3), then measure it.",
        "Explain where prediction and measurement differ.",
        f"Choose depth, width and resolution for a budget of {BUDGET:g} times B0's multiply-adds "
        f"and "
        "justify the choice.",
    ),
    cells=(
        Text(
            "# Assignment 3: Scale B0 to a FLOPs budget\n\n"
            "Compound scaling grows depth, width and resolution together "
            "{cite:p}`tan2019efficientnet` (§3.3): $d = \\alpha^\\phi$, $w = \\beta^\\phi$, "
            "$r = \\gamma^\\phi$ with $\\alpha \\beta^2 \\gamma^2 \\approx 2$, so that the FLOPs "
            "(multiply-adds) grow about as $2^\\phi$. You predict the cost of a scaled B0, measure "
            f"it, then choose your own $d$, $w$ and $r$ for a budget of {BUDGET:g} times B0's "
            "multiply-adds and justify the choice. 8 points: 5 autograded, 3 graded by hand; about "
            "60 minutes.\n\n" + HOW_TO_WORK
        ),
        Setup(),
        Given(
            "import math\n\nfrom effnet_tutorial import compound_coefficients, count_flops, "
            "get_model_config\nfrom effnet_tutorial.config import V1_COEFFICIENTS\n"
            "from effnet_tutorial.exercises.assignments import BUDGET, BUDGET_FLOOR"
        ),
        Text(
            "## 1. Predict (2 points)\n\nWrite `predicted_factor(depth, width, resolution)`: the "
            "factor by which B0's multiply-adds grow when it is scaled by `depth` and `width` "
            "(coefficients) and run at `resolution` pixels instead of 224, by the estimate $d "
            "\\cdot w^2 \\cdot r^2$, where $r$ is the ratio of the image sizes. Chapter 1 uses it "
            "to predict B3:"
        ),
        FromChapter("ch1-ex3"),
        Solution(
            "predicted_factor",
            "def predicted_factor(depth, width, resolution):\n"
            '    """d * w**2 * r**2 with r relative to B0\'s image size (EfficientNet §3.3)."""\n'
            "    ### BEGIN SOLUTION\n"
            '    base = V1_COEFFICIENTS["efficientnet-b0"][2]   # 224\n'
            "    return depth * width ** 2 * (resolution / base) ** 2\n"
            "    ### END SOLUTION",
        ),
        Test(
            "test_predicted_factor",
            1,
            "`predicted_factor` on the published B1-B7",
            "from effnet_tutorial.exercises.assignments import check_predicted_factor\n\n"
            "assert check_predicted_factor(predicted_factor)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_predicted_factor(predicted_factor, hidden_cases("scale"))',
        ),
        Test(
            "test_b3_prediction",
            1,
            "B3's multiply-adds, predicted from B0's",
            "from effnet_tutorial.exercises.assignments import check_b3_from_factor\n\n"
            "assert check_b3_from_factor(predicted_factor)",
        ),
        Text(
            "## 2. Measure (1 point)\n\nWrite `scaled_macs(depth, width, resolution)`: the "
            "multiply-adds of B0 scaled by these coefficients and image size, measured with "
            "`count_flops` on a scaled config (`get_model_config` takes the options "
            "`depth_coefficient`, `width_coefficient` and "
            "`resolution`). `count_flops` counts on the meta device: it costs no memory."
        ),
        Solution(
            "scaled_macs",
            "def scaled_macs(depth, width, resolution):\n"
            '    """Multiply-adds of B0 scaled by d, w and r, counted (not estimated)."""\n'
            "    ### BEGIN SOLUTION\n"
            '    config = get_model_config("efficientnet-b0", depth_coefficient=depth,\n'
            "                              width_coefficient=width, resolution=resolution)\n"
            "    return count_flops(config)\n    ### END SOLUTION",
        ),
        Test(
            "test_scaled_macs",
            1,
            "`scaled_macs` on B0's and B3's coefficients",
            "from effnet_tutorial.exercises.assignments import check_scaled_macs\n\n"
            "assert check_scaled_macs(scaled_macs)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'assert check_scaled_macs(scaled_macs, hidden_cases("scale")[:2])',
        ),
        Text(
            "## 3. Choose (2 points)\n\nChoose `depth` and `width` (coefficients, at least 1) and "
            "`resolution` (whole pixels, "
            f"at least 224) so that the scaled B0 needs at most `BUDGET` = {BUDGET:g} times B0's "
            f"multiply-adds, and at least `BUDGET_FLOOR` = {BUDGET_FLOOR:.0%} of that budget. How "
            "you choose is up to you (the compound rule, a search, a reasoned guess), but you will "
            "justify it in part 4. The cell after yours prints the prediction and the "
            "measurement of your choice."
        ),
        Solution(
            "choice",
            "### BEGIN SOLUTION\n# The compound rule with the largest phi whose MEASURED cost fits "
            "the budget,\n# by bisection: rounding makes the prediction (a * b**2 * g**2)**phi "
            "inexact.\n"
            'b0_macs = count_flops("efficientnet-b0")\n'
            "lo, hi = 0.0, 3.0\nfor _ in range(8):\n    phi = (lo + hi) / 2\n    c = "
            "compound_coefficients(phi)\n"
            '    macs = scaled_macs(c["depth"], c["width"], round(c["resolution"]))\n'
            "    lo, hi = (phi, hi) if macs <= BUDGET * b0_macs else (lo, phi)\n"
            "c = compound_coefficients(lo)\n"
            'depth, width, resolution = c["depth"], c["width"], round(c["resolution"])\n'
            'print(f"phi = {lo:.3f}")\n'
            "### END SOLUTION",
        ),
        Given(
            "from effnet_tutorial.exercises.assignments import show_choice\n\n"
            "show_choice(depth, width, resolution, predicted_factor, scaled_macs);"
        ),
        Test(
            "test_flops_budget",
            2,
            f"the choice needs {BUDGET_FLOOR * 100:.0f}-100 % of {BUDGET:g} times B0's "
            "multiply-adds",
            "from effnet_tutorial.exercises.assignments import check_flops_budget\n\n"
            "assert check_flops_budget(depth, width, resolution, budget=BUDGET)",
        ),
        Answer(
            "justification",
            "justification of the choice",
            "## 4. Justify your choice (3 points, graded by hand)\n\n"
            "In a few paragraphs (about 150-250 words), justify your $d$, $w$ and $r$. Quote the "
            "numbers printed above. The grader uses this rubric:",
            rubric=(
                (
                    1,
                    "Compares the choice with the compound rule: states the $\\phi$ that the "
                    "budget implies (FLOPs grow as $(\\alpha\\beta^2\\gamma^2)^\\phi$, so "
                    "$\\phi = \\ln B / \\ln(\\alpha\\beta^2\\gamma^2)$ for a budget of $B$ times "
                    "B0) and the rule's $d$, $w$ and $r$ at that $\\phi$.",
                ),
                (
                    1,
                    "Justifies scaling all three dimensions rather than one: accuracy saturates "
                    "when a single dimension grows, and balanced scaling gives more accuracy for "
                    "the same FLOPs (the paper's §3.2-3.3 and its scaling figures); a choice that "
                    "departs from the rule says why.",
                ),
                (
                    1,
                    "Explains the gap between the predicted and the measured factor with at least "
                    "two causes: channels rounded to multiples of 8 (and the 10 % rule), blocks "
                    "rounded up, layers that depth does not scale (stem, head, classifier), the "
                    "classifier that resolution does not scale.",
                ),
            ),
            model_answer=lambda: _a3_model_answer(),
        ),
    ),
)

A4 = Assignment(
    id="a4_fused_vs_mbconv",
    title="Fused-MBConv against MBConv: measure and explain",
    minutes=75,
    goals=(
        "Count the parameters and multiply-adds of MBConv and Fused-MBConv "
        "{cite:p}`tan2021efficientnetv2` (§3.2, Fig. 2) by formula.",
        "Build B0 with Fused-MBConv stages and measure parameters, multiply-adds and time.",
        "Explain why time does not follow multiply-adds, and where Fused-MBConv pays off.",
    ),
    cells=(
        Text(
            "# Assignment 4: Fused-MBConv against MBConv\n\n"
            "EfficientNetV2 {cite:p}`tan2021efficientnetv2` replaces the $1\\times1$ expansion and "
            "the depthwise convolution of MBConv by one regular $k\\times k$ convolution in its "
            "early stages: Fused-MBConv (§3.2, Fig. 2). It costs more parameters and "
            "multiply-adds, yet the paper finds it faster to train where it is used. You count "
            "the two blocks by formula, build B0 with fused stages, measure it and explain what "
            "you see. 9 points: 5 autograded, 4 graded by hand; about 75 minutes.\n\n" + HOW_TO_WORK
        ),
        Setup(),
        Given(
            "import dataclasses\nimport logging\n\nimport pandas as pd\nimport torch\n\n"
            "# torch.utils.benchmark warns on import when there is no CUDA; that is fine here.\n"
            'logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)\n'
            "from torch.utils import benchmark  # noqa: E402\n\n"
            "from effnet_tutorial import EfficientNet, count_flops, count_params, "
            "get_model_config\nfrom effnet_tutorial.config import FusedMBConvConfig\n\n"
            'device = "cuda" if torch.cuda.is_available() else "cpu"'
        ),
        Text(
            "## 1. The two blocks by formula (3 points)\n\n"
            "Write four functions of a stride-1 block with `channels` input and output channels, "
            "expansion ratio `expand_ratio`, kernel `kernel_size` and no SE: the multiply-adds of "
            "MBConv and of Fused-MBConv on a `size` x `size` input (batch 1, convolutions only), "
            "and their parameters (convolutions without bias, each followed by a BatchNorm with a "
            "scale and a shift per channel). Chapter 6 does the multiply-adds for one block:"
        ),
        FromChapter("ch6-ex3"),
        Solution(
            "formulas",
            "def mbconv_macs(channels, size, expand_ratio, kernel_size):\n"
            "    ### BEGIN SOLUTION\n    c, e, k, hw = channels, expand_ratio, kernel_size, size * "
            "size\n    return (c * e * c + k * k * e * c + e * c * c) * hw   # expand, depthwise, "
            "project\n    ### END SOLUTION\n\n\ndef fused_macs(channels, size, expand_ratio, "
            "kernel_size):\n    ### BEGIN SOLUTION\n    c, e, k, hw = channels, expand_ratio, "
            "kernel_size, size * size\n    return (k * k * c * e * c + e * c * c) * hw           # "
            "k x k expand, project\n    ### END SOLUTION\n\n\n"
            "def mbconv_params(channels, expand_ratio, kernel_size):\n"
            "    ### BEGIN SOLUTION\n    c, e, k = channels, expand_ratio, kernel_size\n"
            "    return (c * e * c + 2 * e * c) + (k * k * e * c + 2 * e * c) + (e * c * c + 2 * "
            "c)\n    ### END SOLUTION\n\n\ndef fused_params(channels, expand_ratio, kernel_size):\n"
            "    ### BEGIN SOLUTION\n    c, e, k = channels, expand_ratio, kernel_size\n"
            "    return (k * k * c * e * c + 2 * e * c) + (e * c * c + 2 * c)\n"
            "    ### END SOLUTION",
        ),
        Test(
            "test_block_macs",
            2,
            "multiply-adds of both blocks (C = 48, 56x56, e = 4, k = 3)",
            "from effnet_tutorial.exercises.assignments import check_block_macs\n\n"
            "assert check_block_macs(mbconv_macs, fused_macs)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'for case in hidden_cases("block_macs"):\n'
            "    assert check_block_macs(mbconv_macs, fused_macs, **case)",
        ),
        Test(
            "test_block_params",
            1,
            "parameters of both blocks (C = 48, e = 4, k = 3)",
            "from effnet_tutorial.exercises.assignments import check_block_params\n\n"
            "assert check_block_params(mbconv_params, fused_params)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'for case in hidden_cases("block_params"):\n'
            "    assert check_block_params(mbconv_params, fused_params, **case)",
        ),
        Text(
            "## 2. B0 with Fused-MBConv stages (2 points)\n\n"
            "The EfficientNetV2 paper replaced MBConv by Fused-MBConv in the first stages of "
            "EfficientNet-B4 (§3.2, Table 3). Do the same to B0: write `fused_b0(stages)`, which "
            "returns B0's config with the stages numbered `stages` (Table 1 of "
            "{cite:t}`tan2019efficientnet`: 2 to 8) turned into Fused-MBConv stages with the same "
            "fields (`FusedMBConvConfig` takes the same fields as `MBConvConfig`; "
            "`dataclasses.fields` lists them). `config.stage_numbers` and `config.blocks` give "
            "the stages, `config.with_options(blocks=...)` a new config."
        ),
        Solution(
            "fused_b0",
            "def fused_b0(stages):\n"
            '    """B0\'s config with the given stages (Table 1 numbers) made of Fused-MBConv."""\n'
            "    ### BEGIN SOLUTION\n"
            '    config = get_model_config("efficientnet-b0")\n'
            "    blocks = []\n    for number, block in zip(config.stage_numbers, config.blocks):\n"
            "        if number in stages:\n            values = {f.name: getattr(block, f.name) "
            "for f in dataclasses.fields(block)}\n            block = FusedMBConvConfig(**values)\n"
            "        blocks.append(block)\n    return config.with_options(blocks=tuple(blocks))\n"
            "    ### END SOLUTION",
        ),
        Test(
            "test_fused_b0",
            2,
            "`fused_b0((2, 3, 4))`: parameters and multiply-adds",
            "from effnet_tutorial.exercises.assignments import check_fused_b0\n\n"
            "assert check_fused_b0(fused_b0)",
            hidden="from effnet_tutorial.exercises.assignments import hidden_cases\n\n"
            'for stages in hidden_cases("fused_b0"):\n'
            "    assert check_fused_b0(fused_b0, stages=stages)",
        ),
        Text(
            "## 3. Measure\n\n`forward_ms(config)` below times one forward pass of a model built "
            "from a config (batch 4 at 224x224, eval mode, without gradients) with "
            "`torch.utils.benchmark`, on the GPU when there is one. Build a table `table` (a "
            "pandas DataFrame) with one row per variant: B0 (no stage fused), stages 2-4 fused, "
            "2-6 and 2-8 (all), and the columns parameters (millions), multiply-adds (G, at "
            "224x224) and forward time (ms). On a two-core CPU this takes well under a minute."
        ),
        Given(
            "def forward_ms(config, batch=4, image_size=224, min_run_time=0.3):\n"
            '    """Median time (ms) of one forward pass, eval mode, no gradients."""\n'
            "    model = EfficientNet(config).eval().to(device)\n"
            "    x = torch.randn(batch, 3, image_size, image_size, device=device)\n"
            "    with torch.no_grad():\n        model(x)   # warm-up: the first call allocates and "
            "picks kernels\n"
            '    timer = benchmark.Timer("with torch.no_grad(): model(x)",\n'
            '                            globals={"model": model, "x": x, "torch": torch})\n'
            "    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3"
        ),
        Solution(
            "measurements",
            "### BEGIN SOLUTION\nrows = []\nfor stages in [(), (2, 3, 4), (2, 3, 4, 5, 6), (2, 3, "
            "4, 5, 6, 7, 8)]:\n    config = fused_b0(stages)\n"
            '    rows.append({"fused stages": ", ".join(map(str, stages)) or "none",\n'
            '                 "parameters (M)": count_params(config) / 1e6,\n'
            '                 "multiply-adds (G)": count_flops(config) / 1e9,\n'
            '                 "forward (ms)": forward_ms(config)})\n'
            "table = pd.DataFrame(rows).round(2)\n### END SOLUTION\n"
            "table",
        ),
        Answer(
            "explanation",
            "explanation of the measurements",
            "## 4. Explain (4 points, graded by hand)\n\n"
            "In about 200-300 words, explain your table: why Fused-MBConv costs what it costs, "
            "why the time does or does not follow the multiply-adds on your machine, and where in "
            "a network you would use Fused-MBConv. Say which device you measured on. The grader "
            "uses this rubric:",
            rubric=(
                (
                    1,
                    "Reports the measurements (parameters, multiply-adds and time of the four "
                    "variants) and the device they were taken on.",
                ),
                (
                    1,
                    "Explains from the formulas of part 1 why Fused-MBConv costs more: a regular "
                    "$k\\times k$ convolution from $C$ to $eC$ channels costs $k^2 \\cdot C \\cdot "
                    "eC$ per pixel, the $1\\times1$ and depthwise pair $C \\cdot eC + k^2 \\cdot "
                    "eC$; the ratio grows with $C$, so fused blocks are affordable only where $C$ "
                    "is small.",
                ),
                (
                    1,
                    "Explains why time does not follow multiply-adds: a depthwise convolution does "
                    "few multiply-adds per byte it reads and writes (low arithmetic intensity), so "
                    "it runs far below the hardware's peak, while a regular convolution comes "
                    "close to it (the EfficientNetV2 paper, §3.2, notes that depthwise "
                    "convolutions cannot make full use of modern accelerators).",
                ),
                (
                    1,
                    "Concludes where Fused-MBConv pays off (the early, narrow, high-resolution "
                    "stages, as in EfficientNetV2-S) and why not everywhere (parameters and "
                    "multiply-adds grow fast in the wide late stages; in the paper's Table 3, "
                    "fusing all stages trains slower than fusing the early ones only), and says "
                    "where the student's measurements agree or disagree with the paper's "
                    "accelerators.",
                ),
            ),
            model_answer=lambda: _a4_model_answer(),
        ),
    ),
)

def _a5_model_answer() -> str:
    """A model answer for assignment 5. Its multiply-adds are counted from the package; its
    accuracies cannot be (they come from training), so it says how a full answer uses the
    table of the notebook, which the instructors' version shows executed."""
    base = count_flops(BASE)
    limit = A5_BUDGET * base
    got = {d: _reference_scaling(d, A5_BUDGET) for d in ("depth", "width", "resolution", "compound")}
    share = {d: f"{count_flops(c) / limit:.0%}" for d, c in got.items()}
    depth, width, size = got["depth"], got["width"], got["resolution"]
    comp = got["compound"]
    jump = count_flops(size.with_options(resolution=size.resolution + 1)) / base
    phi = math.log(comp.depth_coefficient / BASE.depth_coefficient) / math.log(
        compound_coefficients(1)["depth"])
    return (
        f"**Costs.** The budget is {A5_BUDGET:g} times the base's {base:,} multiply-adds. Depth "
        f"alone reaches it at a depth coefficient of {depth.depth_coefficient:.2f} "
        f"({depth.num_blocks} blocks instead of {BASE.num_blocks}; {share['depth']} of the "
        f"budget), width alone at {width.width_coefficient:.3f} ({share['width']}), resolution "
        f"alone at {size.resolution} pixels ({share['resolution']}), and the compound rule at "
        f"$\\phi = {phi:.2f}$: depth {comp.depth_coefficient:.3f}, width "
        f"{comp.width_coefficient:.3f}, {comp.resolution} pixels ({share['compound']}). The "
        "shares differ because every direction moves in steps: blocks are whole "
        "(`round_repeats` rounds up), channels are multiples of 8 (`round_filters`), and the "
        "feature maps' sides are rounded up at each stride-2 layer, so the cost of resolution "
        f"jumps wherever the last maps grow: {size.resolution + 1} pixels would cost {jump:.1f} "
        "times the base. Depth is cheap here: the blocks it adds mostly work on maps of 1x1 or "
        "2x2 pixels.\n\n"
        "**Accuracy against Fig. 3.** The answer quotes the table: the base's validation "
        "accuracy and each direction's, and says which single dimension helped most per "
        "multiply-add. On 8x8 digits, resolution adds no information (the images are only "
        "upsampled): it helps by giving the late stages larger maps to work on, not more "
        "detail. A single dimension is a single point per direction here; the paper's "
        "saturation (Fig. 3) would show as a smaller gain from the base to the budget than its "
        "cost suggests, which the answer checks with a second budget if it ran one.\n\n"
        "**Compound against Fig. 4.** The paper finds that at equal FLOPs, width scaling gains "
        "more when depth and resolution grow too (Fig. 4, Observation 2 of §3.3). The answer "
        "says whether compound scaling is the most accurate of the four at the same cost in "
        "its table, and why it may not be at this scale: a small, nearly solved data set, "
        "images without extra detail at higher resolution, and short training.\n\n"
        "**Noise.** The differences are compared with the spread between two training seeds "
        "of the same model (the answer ran one, or cites the final test's tolerance, which "
        "the course measured): a difference within that spread is not a finding. Being "
        "within the tolerance of the reference run on the held-out split says the recipe "
        "trains as well as the package's, not that one direction is better."
    )


_A5_RUN = '''\
def run(config, seed=0):
    """Train `config` with your train_model on `train` and measure it on `val`."""
    start = time.perf_counter()
    model = train_model(config, train, seed)
    seconds = time.perf_counter() - start
    accuracy = evaluate(model.cpu(), val, config.resolution, *channel_stats(train))
    return {"depth x": config.depth_coefficient / BASE.depth_coefficient,
            "width x": config.width_coefficient / BASE.width_coefficient,
            "pixels": config.resolution,
            "multiply-adds (k)": count_flops(config) / 1e3,
            "parameters (k)": count_params(config) / 1e3,
            "val accuracy (%)": 100 * accuracy,
            "train seconds": seconds}


configs = {direction: scale_to_budget(direction, BUDGET) for direction in DIRECTIONS}
results = {}'''

A5 = Assignment(
    id="a5_training_project",
    title="A training project: spend a multiply-add budget four ways",
    minutes=600,
    goals=(
        "Scale a tiny EfficientNet to a fixed multiply-add budget along depth, width or "
        "resolution alone, and with the compound rule {cite:p}`tan2019efficientnet` (§3.3, "
        "Eq. 3), counting every candidate.",
        "Write a training recipe, train the four models on an offline data set "
        "{cite:p}`alpaydin1998optdigits` and compare their accuracy at equal cost.",
        "Relate the result to the paper's Figures 3 and 4, and judge it against the noise "
        "of training.",
        "Hand in a model that reaches the reference run's accuracy on digits it never saw.",
    ),
    cells=(
        Text(lambda: (
            "# Assignment 5: a training project\n\n"
            "EfficientNet's paper scaled a baseline one dimension at a time and found that "
            "accuracy saturates (Fig. 3 of {cite:p}`tan2019efficientnet`), then showed that at "
            "equal FLOPs, widening pays more when depth and resolution grow too (Fig. 4, §3.3), "
            "which led to the compound rule. You repeat the argument at a scale that trains in "
            "seconds: a tiny EfficientNet on scikit-learn's 8x8 digits "
            "{cite:p}`alpaydin1998optdigits`, with a budget of "
            f"{A5_BUDGET:g} times its multiply-adds, spent four ways. 11 points: 7 autograded, "
            "4 graded by hand; a week of work, most of it experimenting and writing.\n\n"
            "**How it is graded.** The grader runs your notebook from the top, on a CPU, with a "
            "limit of 300 s for the whole notebook (120 s per cell): keep each training under "
            "about 15 s on two CPU cores, and leave extra experiments out of the notebook you "
            "hand in (or behind `if False:`). The final test trains your final model again, "
            "with your `train_model`, on digits held out by your instructor's secret seed, "
            "turned and relabelled so that the public data set does not help, and compares its "
            "accuracy with the reference run's. You hand in the model as its config and the "
            "function that trains it; weights saved in a file are not graded.\n\n" + HOW_TO_WORK
        )),
        Setup(),
        Given(
            "import time\n\nimport matplotlib.pyplot as plt\nimport pandas as pd\nimport torch\n\n"
            "from effnet_tutorial import EfficientNet, compound_coefficients, count_flops, "
            "count_params\nfrom effnet_tutorial.data import channel_stats, load_digits\n"
            "from effnet_tutorial.train import epoch_plan, evaluate, fit, scaled_lr\n"
            "from effnet_tutorial.exercises.training_project import (BASE, BASE_RESOLUTION, "
            "BUDGET, BUDGET_FLOOR,\n"
            "                                                        DIRECTIONS, REFERENCE_RECIPE)\n\n"
            "# One CPU thread, as in chapter 7: the fastest for models this small, and the\n"
            "# same results on machines with more cores.\ntorch.set_num_threads(1)\n"
            "train, val = load_digits(seed=0)   # chapter 7's public split: 1,437 and 360 digits\n"
            'print(f"base: {count_flops(BASE):,} multiply-adds, {count_params(BASE):,} parameters '
            'at {BASE_RESOLUTION} pixels; "\n'
            '      f"budget: {BUDGET:g} x {count_flops(BASE):,} = {BUDGET * count_flops(BASE):,.0f}")'
        ),
        Text(lambda: (
            "## 1. Spend the budget four ways (3 points)\n\n"
            "`BASE` is chapter 7's model (B0's table with depth and width coefficients 0.25) at "
            f"{BASE_RESOLUTION} pixels, one input channel and ten classes. Write "
            "`scale_to_budget(direction, budget)`: the largest model along `direction` whose "
            "multiply-adds (`count_flops(config)`) are at most `budget` times BASE's, as a "
            "config `BASE.with_options(depth_coefficient=..., width_coefficient=..., "
            "resolution=...)`:\n\n"
            "- `\"depth\"`, `\"width\"`, `\"resolution\"`: that dimension alone, the others as "
            "in BASE (the three panels of Fig. 3 of the paper);\n"
            "- `\"compound\"`: all three from one $\\phi$, BASE's depth and width coefficients "
            "times $\\alpha^\\phi$ and $\\beta^\\phi$ and its image size times "
            "$\\gamma^\\phi$ in whole pixels (Eq. 3, with the $\\alpha, \\beta, \\gamma$ of "
            "§4).\n\n"
            f"Each must use at least `BUDGET_FLOOR` = {A5_FLOOR:.0%} of the budget. The cost "
            "moves in steps (rounding of blocks, channels and feature maps), so search: count "
            "each candidate. Chapter 1 asks what $\\phi$ costs:"
        )),
        FromChapter("ch1-ex1"),
        Solution(
            "scale_to_budget",
            "def scale_to_budget(direction, budget):\n"
            '    """BASE scaled along `direction` to the largest model within `budget` x its '
            'multiply-adds."""\n'
            "    ### BEGIN SOLUTION\n"
            "    limit = budget * count_flops(BASE)\n\n"
            "    def config(x):   # x: a factor, pixels, or phi\n"
            '        if direction == "resolution":\n'
            "            return BASE.with_options(resolution=int(x))\n"
            '        if direction == "compound":\n'
            "            c = compound_coefficients(x, base_resolution=BASE_RESOLUTION)\n"
            '            d, w, r = c["depth"], c["width"], round(c["resolution"])\n'
            "        else:\n"
            '            d, w = (x, 1.0) if direction == "depth" else (1.0, x)\n'
            "            r = BASE_RESOLUTION\n"
            "        return BASE.with_options(depth_coefficient=BASE.depth_coefficient * d,\n"
            "                                 width_coefficient=BASE.width_coefficient * w,\n"
            "                                 resolution=r)\n\n"
            '    if direction == "resolution":   # whole pixels: walk up while it fits\n'
            "        r = BASE_RESOLUTION\n"
            "        while count_flops(config(r + 1)) <= limit:\n"
            "            r += 1\n"
            "        return config(r)\n"
            '    low = 0.0 if direction == "compound" else 1.0   # fits; `high` does not\n'
            "    high = low + 1.0\n"
            "    while count_flops(config(high)) <= limit:\n"
            "        low, high = high, high * 2\n"
            "    for _ in range(30):   # the cost grows with x: bisect the last step\n"
            "        mid = (low + high) / 2\n"
            "        if count_flops(config(mid)) <= limit:\n"
            "            low = mid\n"
            "        else:\n"
            "            high = mid\n"
            "    return config(low)\n"
            "    ### END SOLUTION",
        ),
        Test(
            "test_single_dimension",
            2,
            f"depth, width and resolution alone: {A5_FLOOR * 100:.0f}-100 % of the budget, one "
            "dimension each",
            "from effnet_tutorial.exercises.training_project import check_single_dimension\n\n"
            "assert check_single_dimension(scale_to_budget)",
            hidden="from effnet_tutorial.exercises.training_project import hidden_cases\n\n"
            'for budget in hidden_cases("budgets"):\n'
            "    assert check_single_dimension(scale_to_budget, budget)",
        ),
        Test(
            "test_compound",
            1,
            f"compound scaling: one $\\phi$ for all three, {A5_FLOOR * 100:.0f}-100 % of the budget",
            "from effnet_tutorial.exercises.training_project import check_compound\n\n"
            "assert check_compound(scale_to_budget)",
            hidden="from effnet_tutorial.exercises.training_project import hidden_cases\n\n"
            'for budget in hidden_cases("budgets"):\n'
            "    assert check_compound(scale_to_budget, budget)",
        ),
        Text(
            "## 2. A training recipe\n\n"
            "Write `train_model(config, train_set, seed)`: build `EfficientNet(config)`, train it "
            "on `train_set` (an `ImageData` of 8x8 digits) with the seed `seed`, and return the "
            "trained model. Train it at `config.resolution` pixels and on inputs prepared as "
            "the package's `evaluate` prepares them (resized, then normalised with "
            "`channel_stats(train_set)`); the package's `fit` does both, or write your own loop. "
            "Train on `train_set` only: the final test calls `train_model` with digits that "
            "exclude its held-out ones, and refuses a `train_model` that loads a data set. "
            "`REFERENCE_RECIPE` is how the reference run trains. The largest model of part 1 "
            "should train in about 15 s or less on two CPU cores."
        ),
        Solution(
            "train_model",
            "def train_model(config, train_set, seed):\n"
            '    """A model of `config`, trained on `train_set` from the seed `seed`."""\n'
            "    ### BEGIN SOLUTION\n"
            "    torch.manual_seed(seed)\n"
            "    net = EfficientNet(config)\n"
            "    mean, std = channel_stats(train_set)\n"
            "    every_20th = train_set.subset(range(0, len(train_set), 20))   # fit logs its accuracy\n"
            '    batch, epochs, lr_per_256 = 64, REFERENCE_RECIPE["epochs"], REFERENCE_RECIPE["lr"]\n'
            "    plan = epoch_plan(epochs, config.resolution, dropout=config.dropout_rate)\n"
            "    fit(net, train_set, every_20th, plan, batch_size=batch, lr=scaled_lr(lr_per_256, batch),\n"
            "        mean=mean, std=std, seed=seed, progress=False, log=None)\n"
            "    return net.eval()\n"
            "    ### END SOLUTION",
        ),
        Text(
            "## 3. The experiment\n\n"
            "The cells below train the base model and the four models of the budget with your "
            "`train_model`, on the public split `train`, and measure them on `val`; one model "
            "per cell, so that each cell stays within the grader's time limit."
        ),
        Given(_A5_RUN),
        Given('results["base"] = run(BASE)'),
        *(Given(f'results["{d}"] = run(configs["{d}"])') for d in ("depth", "width", "resolution",
                                                                   "compound")),
        Given(
            "table = pd.DataFrame(results).T.round(2)\n"
            "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
            "for name, row in table.iterrows():\n"
            '    ax.plot(row["multiply-adds (k)"], row["val accuracy (%)"], "o")\n'
            '    ax.annotate(name, (row["multiply-adds (k)"], row["val accuracy (%)"]),\n'
            '                textcoords="offset points", xytext=(5, -10))\n'
            'ax.set_xlabel("multiply-adds per image (thousands)")\n'
            'ax.set_ylabel("validation accuracy (%)")\n'
            "plt.show()\n"
            "table"
        ),
        Text(
            "## 4. Your final model (4 points)\n\n"
            "Choose `final_config`: any config made from BASE with `with_options` whose "
            "multiply-adds fit the budget (one of the four, or your own balance). The final "
            f"test trains it with your `train_model` on {1 - HELD_OUT_FRACTION:.0%} of the digits, "
            f"chosen by your instructor's secret seed, and measures it on the other "
            f"{HELD_OUT_FRACTION:.0%}; it passes when its accuracy is at most "
            f"{TOLERANCE * 100:g} points below the reference run's (the compound model of the "
            "budget, trained with `REFERENCE_RECIPE` on the same digits and seed). A model over "
            "the budget scores 0 in both tests. The visible test does the same on the public "
            "split."
        ),
        Solution(
            "final_config",
            "### BEGIN SOLUTION\n"
            "# The most accurate of the four on the validation split (all four fit the budget).\n"
            'best = max(DIRECTIONS, key=lambda d: results[d]["val accuracy (%)"])\n'
            "final_config = configs[best]\n"
            'print(f"final: {best}")\n'
            "### END SOLUTION",
        ),
        Test(
            "test_final_budget",
            1,
            "the final config fits the budget",
            "from effnet_tutorial.exercises.training_project import check_final_budget\n\n"
            "assert check_final_budget(final_config)",
        ),
        Test(
            "test_final_model",
            3,
            f"held-out accuracy of the final model, retrained with `train_model`: at most "
            f"{TOLERANCE * 100:g} points below the reference run",
            "from effnet_tutorial.exercises.training_project import check_final_model\n\n"
            "assert check_final_model(final_config, train_model)",
            hidden="from effnet_tutorial.exercises.training_project import hidden_cases\n\n"
            'for split in hidden_cases("final_split"):\n'
            "    assert check_final_model(final_config, train_model, split=split)",
        ),
        Answer(
            "analysis",
            "analysis of the experiment",
            "## 5. Analysis (4 points, graded by hand)\n\n"
            "In about 300-500 words, explain your table and figure: what each direction cost and "
            "bought, how your result compares with Figures 3 and 4 of the paper "
            "{cite:p}`tan2019efficientnet`, and how sure you are of it. Quote your numbers. "
            "The grader uses this rubric:",
            rubric=(
                (
                    1,
                    "Reports the four models' multiply-adds (share of the budget), parameters "
                    "and accuracies, and explains why the directions fill the budget unequally "
                    "(whole blocks, channels in multiples of 8, feature maps rounded up at "
                    "stride-2 layers; the late stages' small maps).",
                ),
                (
                    1,
                    "Compares the single-dimension results with Fig. 3 (each dimension helps, "
                    "with diminishing gains), and notes what resolution means for 8x8 digits "
                    "(upsampling adds no detail, only larger feature maps).",
                ),
                (
                    1,
                    "Compares compound scaling with the single dimensions at the same cost, as "
                    "Fig. 4 and Observation 2 of §3.3 do, and explains why the small-scale "
                    "result agrees or not (data set size and difficulty, image size, training "
                    "length).",
                ),
                (
                    1,
                    "Judges the differences against the noise of training: the spread between "
                    "seeds of one model (measured, or the final test's tolerance), and says which "
                    "differences are significant.",
                ),
            ),
            model_answer=lambda: _a5_model_answer(),
        ),
    ),
)

# ======================================================================================
# Assignment 6: a speed lab
# ======================================================================================
def _a6_counts() -> dict:
    """{(block, batch): {layer: FLOP per byte}} of the lab's two folded blocks, counted
    with roofline.layer_table (float32, every tensor read or written once), and the ridge
    points (FLOP per byte) that benchmarks/bench_roofline.py measured on one thread."""
    import json
    from pathlib import Path

    from effnet_tutorial import EfficientNet, get_model_config
    from effnet_tutorial.deploy import fuse_for_inference
    from effnet_tutorial.exercises.speed_lab import BATCHES
    from effnet_tutorial.roofline import layer_table

    specs = get_model_config("efficientnet-b0").block_specs()
    b0 = EfficientNet.from_name("efficientnet-b0").eval()
    out = {}
    for name, index in (("early", 2), ("late", len(specs) - 1)):
        size = math.ceil(224 / 2)
        for spec in specs[:index]:
            size = math.ceil(size / spec.stride)
        block = fuse_for_inference(b0.blocks()[index], channels_last=False)
        for batch in BATCHES:
            table = layer_table(block, (batch, specs[index].in_channels, size, size))
            parts = {
                "expansion": table[table.index.str.startswith("expand.")],
                "depthwise": table[table["role"] == "depthwise"],
                "projection": table[table.index.str.startswith("project.")],
                "block": table,
            }
            out[name, batch] = {k: v["flops"].sum() / v["bytes"].sum() for k, v in parts.items()}
            out[name, "shape"] = (specs[index].in_channels, specs[index].out_channels, size)
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "bench_roofline.json"
    ridge = json.loads(bench.read_text(encoding="utf-8"))["summary"]["ceilings"]["threads 1"]
    out["ridge"] = ridge["ridge_flop_per_byte"]
    return out


def _a6_model_answer() -> str:
    """A model answer for assignment 6; its counts are computed from the package and its
    ridge points read from benchmarks/results/bench_roofline.json."""
    from effnet_tutorial.exercises.speed_lab import BATCHES

    c = _a6_counts()
    lo, hi = BATCHES
    (e_in, _, e_size), (l_in, l_out, l_size) = c["early", "shape"], c["late", "shape"]
    ridge = f"{min(c['ridge']):.0f}-{max(c['ridge']):.0f}"

    def i(block, batch, part):
        return f"{c[block, batch][part]:.1f}"

    def side(intensity):
        return ("below" if intensity < min(c["ridge"]) else "above" if intensity > max(c["ridge"])
                else "near")

    return (
        "I measured on the CPU of my laptop, one thread (the notebook sets it), batch "
        f"{lo} and {hi}; the table above is the result, and I quote its speed-ups per image "
        "below. [A real answer quotes its own numbers here.]\n\n"
        "**Batch size.** A layer's arithmetic intensity is the FLOPs it does per byte it "
        "moves (input, weights, output). Counted with `roofline.layer_table`, the late block "
        f"({l_in} channels in, {l_out} out, {l_size}x{l_size} pixels) does "
        f"{i('late', lo, 'block')} FLOP per byte at batch {lo} and {i('late', hi, 'block')} at "
        f"batch {hi}: its 1x1 convolutions hold many weights for few pixels, so at batch {lo} "
        "the weights are a large share of its bytes, and a larger batch reuses each weight for "
        f"more images (its expansion: {i('late', lo, 'expansion')} and "
        f"{i('late', hi, 'expansion')} FLOP/byte). The early block ({e_in} channels, "
        f"{e_size}x{e_size} pixels) moves mostly feature maps, which grow with the batch as fast "
        f"as the FLOPs: {i('early', lo, 'block')} and {i('early', hi, 'block')} FLOP/byte; its "
        f"depthwise convolution stays near {i('early', lo, 'depthwise')}, since each value it "
        "reads serves only k x k multiply-adds. On one thread of the book's machine the ridge "
        f"point, peak FLOP/s over memory bandwidth, was {ridge} FLOP/byte "
        "(benchmarks/results/bench_roofline.json). So the early block is "
        f"{side(c['early', lo]['block'])} the ridge at any batch: a larger batch does not make "
        "its pixels cheaper, and per image it gains only the fixed cost of each call (Python, "
        "dispatching every operator), shared by more images. The late block is "
        + (f"above the ridge already at batch {lo}, and further above at batch {hi}"
           if side(c["late", lo]["block"]) == side(c["late", hi]["block"]) == "above" else
           f"{side(c['late', lo]['block'])} the ridge at batch {lo} and "
           f"{side(c['late', hi]['block'])} it at batch {hi}")
        + ": its matrix products grow and run "
        "closer to the peak, and the fixed cost is shared too, so it gains more per image, as "
        "my speed-ups show.\n\n"
        "**channels_last.** In NCHW, oneDNN reorders each convolution's input into its blocked "
        "layout and the output back: two more passes over every feature map, bytes that do no "
        "FLOPs and lower the effective intensity. In channels_last the channels of a pixel are "
        "already neighbours, so the convolutions read and write the tensors as they are, and the "
        "depthwise convolution vectorises over channels. The gain is larger where the feature "
        "maps are large (the early block, and a larger batch) and small where the weights "
        "dominate (the late block at batch 1). Where my numbers depart from this (a ratio near 1, "
        "a noisy round), I say so: one thread on a shared machine varies by tens of percent."
    )


A6 = Assignment(
    id="a6_speed_lab",
    title="A speed lab: fold BatchNorm, then measure batch size and memory layout",
    minutes=90,
    goals=(
        "Fold an inference-mode BatchNorm {cite:p}`ioffe2015batchnorm` into the convolution "
        "before it, for any convolution (1x1, grouped, depthwise, with or without a bias), and "
        "check it against eager PyTorch.",
        "Time variants fairly with the package's interleaved timer and compare them round by "
        "round.",
        "Explain the effects of the batch size and of the channels_last layout with arithmetic "
        "intensity and the roofline of chapter 9.",
    ),
    cells=(
        Text(
            "# Assignment 6: a speed lab\n\n"
            "Chapter 9 makes a trained EfficientNet fast for inference. You do two of its steps "
            "yourself: fold BatchNorm {cite:p}`ioffe2015batchnorm` into the convolution before "
            "it, checked against eager PyTorch to $10^{-5}$, then time two blocks of B0 at two "
            "batch sizes and in two memory layouts with the package's interleaved timer, and "
            "explain what you measure with arithmetic intensity. The timings are your machine's "
            "and are not graded for their values, only for being measured and used correctly. "
            "10 points: 6 autograded, 4 graded by hand; about 90 minutes.\n\n" + HOW_TO_WORK
        ),
        Setup(),
        Given(
            "import copy\nimport math\nimport statistics\n\nimport pandas as pd\nimport torch\n"
            "from torch import nn\n\nfrom effnet_tutorial import EfficientNet, get_model_config\n"
            "from effnet_tutorial.deploy import fuse_for_inference\n"
            "from effnet_tutorial.measure import median_ratios, time_interleaved\n"
            "from effnet_tutorial.exercises.speed_lab import BATCHES, LAYOUTS, "
            "VARIANTS, reference_of\n\ntorch.manual_seed(0)"
        ),
        Text(
            "## 1. Fold BatchNorm into the convolution (4 points)\n\n"
            "In inference, BatchNorm uses fixed running statistics, so it is an affine map per "
            "channel, and after a convolution it can be folded into the convolution's weights and "
            "bias. Chapter 9 derives the folded weights; its first exercise folds one channel by "
            "hand:"
        ),
        FromChapter("ch9-ex1"),
        Text(
            "Write `fold_batchnorm(conv, bn)`: it returns one `nn.Conv2d` that computes "
            "`bn(conv(x))` for a BatchNorm in eval mode, and leaves `conv` and `bn` unchanged. It "
            "must work for any `nn.Conv2d`: 1x1 or larger kernels, strides, padding, dilation, "
            "groups (a depthwise convolution has as many groups as channels), with or without "
            "its own bias, and for any BatchNorm `eps`. Do not use the package's "
            "`fold_batchnorm` or PyTorch's `torch.nn.utils.fusion`: the test refuses them."
        ),
        Implement("fold", (fold_batchnorm,), docstrings={"fold_batchnorm": (
            "One ``nn.Conv2d`` that computes ``bn(conv(x))`` for ``bn`` in eval mode: the\n"
            "BatchNorm folded into the convolution's weights and bias (chapter 9).\n"
            "Neither ``conv`` nor ``bn`` is changed.\n\n"
            "Shape: a conv (B, C_in, H, W) -> (B, C_out, H', W'): the same shapes.")}),
        Test(
            "test_fold",
            4,
            "the fold against eager `bn(conv(x))` to 1e-5: 1x1, depthwise, grouped and dilated "
            "convs, with and without bias, several eps",
            "from effnet_tutorial.exercises.speed_lab import check_fold_batchnorm\n\n"
            "assert check_fold_batchnorm(fold_batchnorm)",
            hidden="from effnet_tutorial.exercises.speed_lab import hidden_cases\n\n"
            'assert check_fold_batchnorm(fold_batchnorm, cases=hidden_cases("fold_batchnorm"))',
        ),
        Text(
            "## 2. Measure (2 points)\n\n"
            "The cell below builds two blocks of B0 as they run on 224x224 images: an *early* "
            "block (stage 3, few channels on large feature maps) and the *late* block, B0's last "
            "(stage 8, many channels on 7x7 maps), each made fast by the package's "
            "`fuse_for_inference` (BatchNorm folded, `nn.SiLU`) and stored either in the default "
            "NCHW layout or `channels_last`, and random inputs at batch sizes `BATCHES`. "
            "`VARIANTS` names the eight combinations: `VARIANTS[name]` is `(block, batch, "
            "layout)`. Everything runs on the CPU, on one thread, which times more steadily on a "
            "shared machine."
        ),
        Given(
            "torch.set_num_threads(1)\n"
            'specs = get_model_config("efficientnet-b0").block_specs()\n'
            'b0 = EfficientNet.from_name("efficientnet-b0").eval()\n'
            'BLOCK_INDEX = {"early": 2, "late": len(specs) - 1}\n\n\n'
            "def block_input(index):\n"
            '    """(channels, size) of the input of B0\'s block `index` at 224x224 pixels."""\n'
            "    size = math.ceil(224 / 2)   # after the stem (stride 2)\n"
            "    for spec in specs[:index]:\n"
            "        size = math.ceil(size / spec.stride)\n"
            "    return specs[index].in_channels, size\n\n\n"
            "models = {(block, layout): fuse_for_inference(b0.blocks()[index],\n"
            '                                              channels_last=layout == "channels_last")\n'
            "          for block, index in BLOCK_INDEX.items() for layout in LAYOUTS}\n"
            "inputs = {}\n"
            "for block, index in BLOCK_INDEX.items():\n"
            "    channels, size = block_input(index)\n"
            "    for batch in BATCHES:\n"
            "        inputs[block, batch] = torch.randn(batch, channels, size, size)\n"
            'print(", ".join(f"{b}: input {list(inputs[b, 1].shape[1:])}" for b in BLOCK_INDEX))'
        ),
        Text(
            "Time every variant with `time_interleaved` (one call for all eight, in "
            "`torch.inference_mode()`, at least 3 rounds): `models[block, layout]` on "
            "`inputs[block, batch]`. Keep its result as `times`. Then build `table`, a pandas "
            "DataFrame indexed by the variants' names with two columns: `ms per image`, the "
            "median time of a call in milliseconds divided by the batch size, and `speed-up per "
            "image`, how many times faster per image the variant runs than `reference_of(name)` "
            "(the same block at batch 1 in NCHW), compared round by round with `median_ratios`."
        ),
        Solution(
            "measurements",
            "### BEGIN SOLUTION\nwith torch.inference_mode():\n"
            "    calls = {name: (lambda m=models[block, layout], x=inputs[block, batch]: m(x))\n"
            "             for name, (block, batch, layout) in VARIANTS.items()}\n"
            "    times = time_interleaved(calls, repeats=5)\n"
            "ms = {name: 1e3 * statistics.median(times[name]) / batch\n"
            "      for name, (_, batch, _) in VARIANTS.items()}\n"
            "speed = {name: batch / median_ratios(times, reference_of(name))[name]\n"
            "         for name, (_, batch, _) in VARIANTS.items()}\n"
            'table = pd.DataFrame({"ms per image": ms, "speed-up per image": speed})\n'
            "### END SOLUTION\ntable.round(3)",
        ),
        Test(
            "test_times",
            1,
            "`times` is `time_interleaved`'s result for the eight variants",
            "from effnet_tutorial.exercises.speed_lab import check_interleaved_times\n\n"
            "assert check_interleaved_times(times)",
        ),
        Test(
            "test_table",
            1,
            "`table` is computed from `times`: per image, round by round",
            "from effnet_tutorial.exercises.speed_lab import check_timing_table\n\n"
            "assert check_timing_table(table, times)",
        ),
        Answer(
            "explanation",
            "explanation of the measurements",
            "## 3. Explain (4 points, graded by hand)\n\n"
            "In about 250-350 words, explain your table with arithmetic intensity, the FLOPs a "
            "layer does per byte it moves (chapter 9, section on the roofline; "
            "`effnet_tutorial.roofline.layer_table` counts both for any module and input size). "
            "Say which device you measured on. The grader uses this rubric:",
            rubric=(
                (
                    1,
                    "Reports the measurements (time per image and speed-up of the eight variants) "
                    "and the device and threads they were taken on, and says where they are "
                    "noisy.",
                ),
                (
                    1,
                    "Explains the batch-size effect with arithmetic intensity: the weights are "
                    "read once per call, so a larger batch raises the intensity of layers whose "
                    "bytes are mostly weights (the late block's 1x1 convolutions) and hardly that "
                    "of layers whose bytes are feature maps (the early block, any depthwise "
                    "convolution); with numbers (by formula or `layer_table`); plus the fixed cost "
                    "per call shared by more images.",
                ),
                (
                    1,
                    "Explains the channels_last effect: in NCHW the convolution library (oneDNN on "
                    "a CPU, cuDNN on a GPU) reorders inputs and outputs into its own layout, extra "
                    "passes over memory that do no FLOPs; channels_last avoids them, which matters "
                    "most where feature maps are large.",
                ),
                (
                    1,
                    "Places the layers on the roofline: compares their intensity with the "
                    "machine's ridge point (peak FLOP/s over memory bandwidth, measured in chapter "
                    "9 or quoted from its benchmark), says which are memory-bound, and whether the "
                    "measured speed-ups agree with that.",
                ),
            ),
            model_answer=lambda: _a6_model_answer(),
        ),
    ),
)

#: The course, in the order it is taught.
ASSIGNMENTS: tuple[Assignment, ...] = (A1, A2, A3, A4, A5, A6)
