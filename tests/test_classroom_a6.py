"""Assignment 6 of the classroom course (the speed lab), its checkers, the feedback pages'
offline math, and the released notebooks run as a Colab student runs them.

- The checkers of effnet_tutorial.exercises.speed_lab, directly: a correct fold passes on
  the visible and on drawn hidden cases, each known wrong fold gets its hint, the package's
  fold and PyTorch's are refused; timings from time_interleaved pass and typed-in ones do
  not; a table not computed per image, round by round, gets its hint.
- The assignment graded by nbgrader (tools/classroom.py grade) in a copy of classroom/: the
  reference solution scores every autograded point in well under 5 minutes, each known
  wrong fold loses the fold's 4 points only, with its hint in the feedback, a solution
  written differently scores every point, importing the package's fold scores 0 on that
  test and is flagged; the feedback page renders its math in a browser with no network.
- Every released notebook, with the reference solutions filled in, runs its visible tests
  in a fresh virtual environment that has only what a Colab student installs: torch and
  torchvision (Colab has them), then the book's package installed by the notebook's own
  first cell from a wheel of this checkout.
"""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
import torch
from torch import nn

from effnet_tutorial.deploy import fold_batchnorm
from effnet_tutorial.measure import time_interleaved
from effnet_tutorial.exercises import speed_lab as lab
from effnet_tutorial.exercises.assignments import NOT_ALLOWED

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import project_wheel  # noqa: E402
from test_classroom import (  # noqa: E402
    BY_ID,
    IDS,
    edited,
    feedback_text,
    load,
    new_course,
    replaced,
    scores,
    submit,
    tool,
)

A6 = "a6_speed_lab"


# ======================================================================================
# The checkers, called directly
# ======================================================================================
def my_fold(conv, bn):
    """A correct fold written apart from the package's: a new conv, the scale in float32."""
    scale = bn.weight.detach() / (bn.running_var + bn.eps).sqrt()
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                       conv.padding, conv.dilation, conv.groups, bias=True)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        folded.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return folded


def wrong_fold(scale_rule, bias_rule):
    def fold(conv, bn):
        b = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        s = scale_rule(bn)
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                           conv.padding, conv.dilation, conv.groups, bias=True)
        with torch.no_grad():
            folded.weight.copy_(conv.weight * s.view(-1, 1, 1, 1))
            folded.bias.copy_(bias_rule(bn, b, s))
        return folded
    return fold


def right_scale(bn):
    return bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)


def right_bias(bn, b, s):
    return bn.bias + (b - bn.running_mean) * s


#: (name, fold, the hint it must get): the mistakes of the brief and a few more.
WRONG_FOLDS = [
    ("eps forgotten", wrong_fold(lambda bn: bn.weight / torch.sqrt(bn.running_var), right_bias),
     "you forgot eps"),
    ("variance without sqrt", wrong_fold(lambda bn: bn.weight / (bn.running_var + bn.eps), right_bias),
     "divide gamma by its square root"),
    ("PyTorch's default eps", wrong_fold(lambda bn: bn.weight / torch.sqrt(bn.running_var + 1e-5),
                                         right_bias), "not PyTorch's default 1e-5"),
    ("conv bias not scaled", wrong_fold(right_scale, lambda bn, b, s: bn.bias + b - bn.running_mean * s),
     "BatchNorm scales the conv's bias"),
    ("conv bias dropped", wrong_fold(right_scale, lambda bn, b, s: bn.bias - bn.running_mean * s),
     "the conv's own bias goes through BatchNorm too"),
    ("mean not scaled", wrong_fold(right_scale, lambda bn, b, s: bn.bias + b * s - bn.running_mean),
     "the running mean is subtracted before the scale"),
]


def verdict(capsys, fn, *args, **kwargs) -> tuple[bool, str]:
    ok = fn(*args, **kwargs)
    return ok, " ".join(capsys.readouterr().out.split())


def test_a_correct_fold_passes_visible_and_hidden_cases(capsys, monkeypatch):
    ok, text = verdict(capsys, lab.check_fold_batchnorm, my_fold)
    assert ok and text.startswith("Correct:"), text
    for seed in ("one course", "another course"):
        monkeypatch.setenv("EFFNET_GRADING_SEED", seed)
        cases = lab.hidden_cases("fold_batchnorm")
        assert len(cases) == 6 and cases == lab.hidden_cases("fold_batchnorm")  # same seed, same cases
        ok, text = verdict(capsys, lab.check_fold_batchnorm, my_fold, cases=cases)
        assert ok, text
    # The draws cover what the brief asks for: depthwise and grouped convs, bias or not, eps.
    drawn = [c for i in range(40) for c in lab._DRAWS["fold_batchnorm"](random.Random(i))]
    assert any(c["groups"] == c["in_channels"] == c["out_channels"] > 1 for c in drawn)
    assert any(1 < c["groups"] < c["in_channels"] for c in drawn)
    assert {c["bias"] for c in drawn} == {True, False} and len({c["eps"] for c in drawn}) >= 3


@pytest.mark.parametrize("name, fold, hint", WRONG_FOLDS, ids=[w[0] for w in WRONG_FOLDS])
def test_each_known_wrong_fold_gets_its_hint(capsys, name, fold, hint):
    ok, text = verdict(capsys, lab.check_fold_batchnorm, fold)
    assert not ok and hint in text, text
    assert "Traceback" not in text


def test_other_wrong_folds_get_a_verdict_that_says_what(capsys):
    def in_place(conv, bn):       # right numbers, written into the conv it was given
        folded = my_fold(conv, bn)
        conv.weight.data.copy_(folded.weight)
        return folded

    cases = [
        (lambda conv, bn: nn.Sequential(conv, bn), "still holds a BatchNorm"),
        (lambda conv, bn: conv, "has no bias"),
        (in_place, "changed the conv or the BatchNorm"),
        (lambda conv, bn: my_fold(conv, bn).double(), "keep the conv's dtype"),
        (lambda conv, bn: 1 / 0, "raised ZeroDivisionError"),
        ("fold_batchnorm", "pass the function"),
    ]
    for fold, hint in cases:
        ok, text = verdict(capsys, lab.check_fold_batchnorm, fold)
        assert not ok and hint in text, (hint, text)


def test_the_packages_fold_and_pytorchs_are_refused(capsys):
    from torch.fx.experimental.optimization import fuse
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for fold, what in (
        (fold_batchnorm, "effnet_tutorial.deploy.fold_batchnorm"),
        (lambda conv, bn: fold_batchnorm(conv, bn), "effnet_tutorial.deploy.fold_batchnorm"),
        (fuse_conv_bn_eval, "torch.nn.utils.fusion.fuse_conv_bn_eval"),
        (lambda conv, bn: fuse(nn.Sequential(conv, bn).eval())[0], "fuse_conv_bn"),
    ):
        ok, text = verdict(capsys, lab.check_fold_batchnorm, fold)
        assert not ok and f"Not yet: {NOT_ALLOWED}" in text and what in text, text


@pytest.fixture(scope="module")
def measured():
    """Real timings of eight tiny variants, as time_interleaved returns them."""
    calls = {name: (lambda n=i: sum(range(200 * (n + 1)))) for i, name in enumerate(lab.VARIANTS)}
    return time_interleaved(calls, repeats=3)


def solution_table(times):
    import statistics

    import pandas as pd

    from effnet_tutorial.measure import median_ratios

    ms = {n: 1e3 * statistics.median(times[n]) / b for n, (_, b, _) in lab.VARIANTS.items()}
    speed = {n: b / median_ratios(times, lab.reference_of(n))[n] for n, (_, b, _) in lab.VARIANTS.items()}
    return pd.DataFrame({"ms per image": ms, "speed-up per image": speed})


def test_timings_from_the_interleaved_timer_pass_and_typed_ones_do_not(capsys, measured):
    ok, text = verdict(capsys, lab.check_interleaved_times, measured)
    assert ok, text
    typed = {n: [0.012, 0.011 + i / 1000, 0.013] for i, n in enumerate(lab.VARIANTS)}
    first = next(iter(lab.VARIANTS))
    for times, hint in (
        (typed, "measured, not typed in"),
        ({**measured, first: measured[first][:2]}, "time all variants in one call"),
        ({k: v for k, v in measured.items() if k != first}, "time every variant"),
        ({k: v[:2] for k, v in measured.items()}, "at least 3 rounds"),
        ({**measured, first: [-1.0] * len(measured[first])}, "positive"),
        ([1.0, 2.0], "a dict of name -> list of seconds"),
    ):
        ok, text = verdict(capsys, lab.check_interleaved_times, times)
        assert not ok and hint in text, (hint, text)


def test_the_table_must_be_computed_from_the_times(capsys, measured):
    table = solution_table(measured)
    ok, text = verdict(capsys, lab.check_timing_table, table, measured)
    assert ok, text
    ok, text = verdict(capsys, lab.check_timing_table, table.round(2), measured)
    assert ok, text                      # rounded for display is fine
    batch16 = next(n for n, (_, b, _) in lab.VARIANTS.items() if b > 1)
    per_call = table.copy()
    per_call.loc[batch16, "ms per image"] *= lab.VARIANTS[batch16][1]
    inverted = table.copy()
    inverted["speed-up per image"] = 1 / inverted["speed-up per image"]
    for bad, hint in ((per_call, "divide by the batch size"),
                      (inverted, "the speed-up is its inverse"),
                      (table.drop(columns="speed-up per image"), "no column 'speed-up per image'")):
        ok, text = verdict(capsys, lab.check_timing_table, bad, measured)
        assert not ok and hint in text, (hint, text)


# ======================================================================================
# The assignment graded by nbgrader
# ======================================================================================
FOLD_OTHER_WAY = '''\
def fold_batchnorm(conv, bn):
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    scale = bn.weight.double() / std
    old_bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    with torch.no_grad():
        new.weight.copy_((conv.weight.double() * scale[:, None, None, None]).float())
        new.bias.copy_((bn.bias.double() + scale * (old_bias - bn.running_mean.double())).float())
    return new
'''
MEASURE_OTHER_WAY = '''\
calls = {}
for name in VARIANTS:
    block, batch, layout = VARIANTS[name]
    calls[name] = (lambda model, x: (lambda: model(x)))(models[block, layout], inputs[block, batch])
with torch.inference_mode():
    times = time_interleaved(calls, repeats=4)
rows = []
for name, (block, batch, layout) in VARIANTS.items():
    ratio = median_ratios(times, reference_of(name))[name]
    rows.append({"variant": name, "ms per image": statistics.median(times[name]) * 1000 / batch,
                 "speed-up per image": batch / ratio})
table = pd.DataFrame(rows).set_index("variant")
table
'''
#: Times typed in (then used correctly): only test_times may fail.
TYPED_TIMES = MEASURE_OTHER_WAY.replace(
    "with torch.inference_mode():\n    times = time_interleaved(calls, repeats=4)\n",
    "times = {name: [0.01 + i / 1000, 0.012, 0.011] for i, name in enumerate(VARIANTS)}\n")
assert TYPED_TIMES != MEASURE_OTHER_WAY
#: (student, solution cell, old, new, failing tests, hint)
A6_MISTAKES = [
    ("no_eps", "fold", "torch.sqrt(var + bn.eps)", "torch.sqrt(var)", {"test_fold"}, "you forgot eps"),
    ("no_sqrt", "fold", "torch.sqrt(var + bn.eps)", "(var + bn.eps)", {"test_fold"},
     "divide gamma by its square root"),
    ("bias_term", "fold", "((b - mean) * s + beta)", "(b + beta - mean * s)", {"test_fold"},
     "BatchNorm scales the conv's bias"),
    ("per_call", "measurements", "/ batch", "", {"test_table"}, "divide by the batch size"),
]


@pytest.fixture(scope="module")
def graded_a6(tmp_path_factory):
    course = new_course(tmp_path_factory.mktemp("a6"))
    out = tool("generate", "--course", course, "--assignment", A6)
    assert out.returncode == 0, out.stdout + out.stderr
    source = load(course / "source" / A6 / f"{A6}.ipynb")
    submit(course, "solution", A6, source)
    submit(course, "blank", A6, load(course / "release" / A6 / f"{A6}.ipynb"))
    for student, cell, old, new, *_ in A6_MISTAKES:
        submit(course, student, A6, edited(source, cell, old, new))
    submit(course, "other_way", A6,
           replaced(replaced(source, "fold", FOLD_OTHER_WAY), "measurements", MEASURE_OTHER_WAY))
    submit(course, "import_fold", A6,
           replaced(source, "fold", "from effnet_tutorial.deploy import fold_batchnorm\n"))
    submit(course, "typed_times", A6, replaced(source, "measurements", TYPED_TIMES))
    out = tool("grade", "--course", course)
    print(out.stdout)
    return course, source, out


def test_the_reference_solution_scores_every_point_in_under_5_minutes(graded_a6):
    course, _, out = graded_a6
    a = BY_ID[A6]
    got = scores(course)[("solution", A6)]
    assert set(got) == {t.grade_id for t in a.tests} and all(s == m for s, m in got.values()), got
    assert f"graded: solution / {A6}: {a.auto_points}/{a.auto_points} autograded, " \
           f"{a.manual_points} points to grade by hand" in out.stdout, out.stdout
    wall, cpu = map(float, re.search(rf"graded: solution / {A6}: .*\(([\d.]+) s, ([\d.]+) s CPU\)",
                                     out.stdout).groups())
    assert wall < 300, out.stdout         # the brief: under 5 minutes on 2 cores
    print(f"\na6 reference solution graded in {wall:.1f} s ({cpu:.1f} s CPU)")
    assert "flagged: solution" not in out.stdout
    assert all(s == 0 for s, _ in scores(course)[("blank", A6)].values())


@pytest.mark.parametrize("student, cell, old, new, failing, hint", A6_MISTAKES,
                         ids=[m[0] for m in A6_MISTAKES])
def test_a_known_mistake_loses_its_own_points_with_its_hint(graded_a6, student, cell, old, new,
                                                            failing, hint):
    course, _, _ = graded_a6
    got = scores(course)[(student, A6)]
    assert {name for name, (s, m) in got.items() if s < m} == failing, got
    assert hint in feedback_text(course, student, A6)


def test_a_solution_written_differently_scores_every_point(graded_a6):
    course, _, out = graded_a6
    got = scores(course)[("other_way", A6)]
    assert all(s == m for s, m in got.values()), got
    assert "flagged: other_way" not in out.stdout


def test_importing_the_packages_fold_costs_the_fold_and_is_flagged(graded_a6):
    course, source, out = graded_a6
    got = scores(course)[("import_fold", A6)]
    assert {name for name, (s, m) in got.items() if s < m} == {"test_fold"}, got
    n = 1 + [c["metadata"]["nbgrader"]["grade_id"] for c in source["cells"]].index("fold")
    assert (f"flagged: import_fold / {A6}: cell {n} (fold) imports the package's reference "
            "fold_batchnorm from effnet_tutorial.deploy; tests scored 0: test_fold") in out.stdout


def test_typed_in_times_lose_the_times_test_only(graded_a6):
    course, _, _ = graded_a6
    got = scores(course)[("typed_times", A6)]
    assert {name for name, (s, m) in got.items() if s < m} == {"test_times"}, got
    assert "the times must be measured, not typed in" in feedback_text(course, "typed_times", A6)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_the_feedback_page_renders_math_with_no_network(graded_a6, tmp_path):
    course, _, _ = graded_a6
    page = course / "feedback" / "solution" / A6 / f"{A6}.html"
    text = page.read_text(encoding="utf-8")
    assert "cdnjs" not in text and not re.search(r"<script[^>]+src=", text)   # nothing to fetch
    assert '<script id="offline-mathjax">' in text and "MathJax" in text and len(text) > 1_000_000
    assert "$10^{-5}$" in text                  # the intro's math, left for MathJax to typeset
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found ({CHROMIUM}): the page was checked without a browser")
    # Every host name fails to resolve: the page must render from the file alone.
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<mjx-container") >= 3, dom[:2000]
    assert "$10^{-5}$" not in dom               # typeset, not shown raw


# ======================================================================================
# Colab: the released notebooks' visible tests, with only the student-side install
# ======================================================================================
def filled_in(release: dict, source: dict) -> dict:
    """The released notebook with the reference solutions copied into its solution cells
    (what a student who solved it hands in); test cells stay the released ones (visible
    tests only)."""
    solutions = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
                 if c["metadata"].get("nbgrader", {}).get("solution")}
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            cell["source"] = solutions[meta["grade_id"]]
    return nb


def test_released_notebooks_run_their_visible_tests_in_a_fresh_colab_like_venv(tmp_path):
    """A fresh venv with pip, torch and torchvision (a Colab runtime has them; here they
    install from this machine's package mirror) and Jupyter's kernel. The notebook's own
    first cell, in a simulated Colab, installs the book's package (a wheel of this
    checkout, with its dependencies) as it does in Colab; then every visible test must
    print "Correct"."""
    t0 = time.perf_counter()
    course = new_course(tmp_path / "course")
    out = tool("generate", "--course", course)
    assert out.returncode == 0, out.stdout + out.stderr
    where = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.14.1", "torchvision==0.29.1", "ipykernel", "nbclient"],
                   check=True, env=env, capture_output=True, timeout=1800)
    t_runtime = time.perf_counter() - t0
    wheel = project_wheel(tmp_path)   # what the set-up cell installs (EFFNET_TUTORIAL_SOURCE)
    fake = tmp_path / "fake"                       # a stand-in google.colab module
    (fake / "google").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab.py").write_text("")
    env.update(PYTHONPATH=str(fake), EFFNET_TUTORIAL_SOURCE=str(wheel))
    runner = tmp_path / "run.py"
    runner.write_text(
        "import sys, nbformat\nfrom nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "nb.cells.insert(1, nbformat.v4.new_code_cell('import google.colab'))\n"
        "NotebookClient(nb, timeout=600, kernel_name='python3').execute()\n"
        "nbformat.write(nb, sys.argv[2])\n", encoding="utf-8")
    took = {}
    for a in IDS:
        release = load(course / "release" / a / f"{a}.ipynb")
        nb = filled_in(release, load(course / "source" / a / f"{a}.ipynb"))
        path = tmp_path / f"{a}.ipynb"
        path.write_text(json.dumps(nb), encoding="utf-8")
        t1 = time.perf_counter()
        run = subprocess.run([str(python), str(runner), str(path), str(tmp_path / f"{a}.out.ipynb")],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
        took[a] = time.perf_counter() - t1
        assert run.returncode == 0, (a, run.stderr[-3000:])
        done = load(tmp_path / f"{a}.out.ipynb")
        tests = [c for c in done["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
                 and c["cell_type"] == "code"]
        assert tests and all("HIDDEN" not in "".join(c["source"]) for c in tests)
        for cell in tests:
            printed = "".join("".join(o.get("text", "")) for o in cell["outputs"])
            assert "Correct:" in printed and "Not yet" not in printed, (a, printed)
    found = subprocess.run([str(python), "-m", "pip", "show", "effnet_tutorial"], env=env,
                           capture_output=True, text=True).stdout
    assert "Location:" in found and str(where) in found      # installed by the set-up cell
    print(f"\nColab-like venv: runtime (torch, torchvision, kernel) {t_runtime:.0f} s; "
          + ", ".join(f"{a} {s:.0f} s" for a, s in took.items())
          + f"; total {time.perf_counter() - t0:.0f} s")
