"""The classroom course (nbgrader), end to end, in a copy of ``classroom/``.

``tools/classroom.py generate`` builds the sources from the single source and releases
them; then the released, unfilled notebooks score 0, the source solutions get every
autograded point, known-wrong answers fail exactly their tests with the checker's hint in
the feedback, malformed submissions are reported without a traceback, and the time limit
stops a notebook that never ends. Submissions that try to change their own grading, or that
crash or hang their kernel, are graded all the same, and the report says what happened.
Offline, on the CPU; nbgrader runs the notebooks in kernels of this environment.
"""

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "classroom.py"
sys.path.insert(0, str(ROOT / "tools"))
import classroom  # noqa: E402

sys.path.insert(0, str(ROOT / "classroom"))
from course import ASSIGNMENTS  # noqa: E402

IDS = [a.id for a in ASSIGNMENTS]
BY_ID = {a.id: a for a in ASSIGNMENTS}


def tool(*args, timeout=1200, env=None):
    """Run tools/classroom.py as `make assignments` / `make grade` do."""
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env=env,
    )


def new_course(where: Path, cell_limit=None, notebook_limit=None) -> Path:
    course = where / "classroom"
    course.mkdir(parents=True)
    config = (ROOT / "classroom" / "nbgrader_config.py").read_text(encoding="utf-8")
    if cell_limit is not None:
        old = re.search(r"GradingTimeLimit\(cell=[\d.]+, notebook=[\d.]+\)", config).group(0)
        config = config.replace(
            old, f"GradingTimeLimit(cell={cell_limit}, notebook={notebook_limit})"
        )
    (course / "nbgrader_config.py").write_text(config, encoding="utf-8")
    shutil.copytree(ROOT / "classroom" / "templates", course / "templates")   # the feedback pages'
    return course


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def submit(course: Path, student: str, assignment: str, nb: dict, name: str | None = None) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (name or f"{assignment}.ipynb")).write_text(json.dumps(nb), encoding="utf-8")


def edited(nb: dict, grade_id: str, old: str, new: str) -> dict:
    """A copy of ``nb`` whose cell ``grade_id`` has ``old`` replaced: a learner's mistake."""
    nb = json.loads(json.dumps(nb))
    cell = next(c for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] == grade_id)
    # Any run of whitespace matches any other: the package's code may be re-wrapped.
    pattern = r"\s+".join(re.escape(word) for word in old.split())
    cell["source"], found = re.subn(pattern, lambda m: new, "".join(cell["source"]), count=1)
    assert found, f"{grade_id} no longer contains {old!r}"
    return nb


def feedback_text(course: Path, student: str, assignment: str) -> str:
    page = (course / "feedback" / student / assignment / f"{assignment}.html").read_text(
        encoding="utf-8"
    )
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return " ".join(re.sub(r"(?<=\w)-\n\s+", "-", text).split())   # verdicts are wrapped


def scores(course: Path) -> dict:
    """{(student, assignment): {test cell: (score, max)}} from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for a in gb.assignments:
            for sub in a.submissions:
                out[(sub.student.id, a.name)] = {
                    g.name: (g.score, g.max_score)
                    for nb in sub.notebooks
                    for g in nb.grades
                    if g.cell_type == "code"
                }
    return out


# Known-wrong answers: (student, assignment, solution cell, old, new, failing tests, hint)
MISTAKES = [
    (
        "se_expanded",
        "a1_se_mbconv",
        "mbconv",
        "squeezed_channels(in_channels, se_ratio)",
        "squeezed_channels(mid, se_ratio)",
        {"test_mbconv_params"},   # not test_mbconv_outputs: one concept, one test
        "the official MBConv squeezes from the block's INPUT channels",
    ),
    (
        "skip_always_on",
        "a1_se_mbconv",
        "mbconv",
        "self.has_skip = stride == 1 and in_channels == out_channels",
        "self.has_skip = True",
        {"test_mbconv_shapes"},
        "add it only when stride == 1 and in_channels == out_channels",
    ),
    (
        "no_ten_percent",
        "a2_padding_rounding",
        "round_filters",
        "    if rounded < 0.9 * scaled:\n        rounded += divisor\n",
        "",
        {"test_round_filters"},   # test_b4_stage6 lends the package's round_filters
        "more than 10 % below",
    ),
    (
        "odd_pixel_first",   # PyTorch's symmetric k // 2: for stride 2, the odd pixel first
        "a1_se_mbconv",
        "mbconv",
        'padding: str = "same"',
        'padding: str = "symmetric"',
        {"test_mbconv_outputs"},
        "padding puts the extra pixel of an odd total at the END (bottom, right)",
    ),
    (
        "swapped_coefficients",
        "a2_padding_rounding",
        "scaled_stage",
        "width, depth, *_ = V1_COEFFICIENTS[model_name]",
        "depth, width, *_ = V1_COEFFICIENTS[model_name]",
        {"test_b4_stage6"},
        "the width scales the channels, the depth the blocks",
    ),
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    course = new_course(tmp_path_factory.mktemp("generated"))
    out = tool("generate", "--course", course)
    assert out.returncode == 0, out.stdout + out.stderr
    return course, out.stdout


@pytest.fixture(scope="module")
def graded(generated):
    course, _ = generated
    for a in IDS:
        source = load(course / "source" / a / f"{a}.ipynb")
        submit(course, "blank", a, load(course / "release" / a / f"{a}.ipynb"))
        submit(course, "solution", a, source)
    for student, a, cell, old, new, *_ in MISTAKES:
        submit(
            course, student, a, edited(load(course / "source" / a / f"{a}.ipynb"), cell, old, new)
        )
    # Malformed: a file that is not a notebook, a renamed notebook, an unknown assignment,
    # a stray file, and a notebook with a test cell deleted (graded, with a warning).
    release = {a: load(course / "release" / a / f"{a}.ipynb") for a in IDS}
    (course / "submitted" / "broken" / IDS[0]).mkdir(parents=True)
    (course / "submitted" / "broken" / IDS[0] / f"{IDS[0]}.ipynb").write_text(
        "{ not json", encoding="utf-8"
    )
    submit(course, "broken", IDS[1], release[IDS[1]], name=f"Copy of {IDS[1]}.ipynb")
    submit(course, "broken", "a9_unknown", release[IDS[1]])
    (course / "submitted" / "notes.txt").write_text("stray", encoding="utf-8")
    deleted = load(course / "source" / IDS[1] / f"{IDS[1]}.ipynb")
    deleted["cells"] = [
        c for c in deleted["cells"] if c["metadata"]["nbgrader"]["grade_id"] != "test_round_repeats"
    ]
    submit(course, "deleter", IDS[1], deleted)
    out = tool("grade", "--course", course)
    print(out.stdout)  # the time per notebook, with `pytest -s`
    return course, out


def test_committed_sources_and_book_page_are_up_to_date():
    out = tool("check")
    assert out.returncode == 0, out.stdout + out.stderr


def test_sources_come_from_the_chapters_and_the_package(generated):
    course, _ = generated
    exercises, bib = classroom.chapter_exercises(), classroom._bib_labels()
    for a in ASSIGNMENTS:
        cells = load(course / "source" / a.id / f"{a.id}.ipynb")["cells"]
        meta = [c["metadata"]["nbgrader"] for c in cells]
        text = {m["grade_id"]: "".join(c["source"]) for m, c in zip(meta, cells)}
        tests = [m for m in meta if m["grade"] and not m["solution"]]
        assert tests and all(m["points"] > 0 and m["locked"] for m in tests)
        assert any(m["solution"] and not m["grade"] for m in meta)  # solution cells
        assert any("### BEGIN HIDDEN TESTS" in text[m["grade_id"]] for m in tests)
        assert all(re.search(r"assert check_\w+\(", text[m["grade_id"]]) for m in tests)
        for label in (c.label for c in a.cells if hasattr(c, "label")):
            quoted = classroom.to_jupyter(exercises[label].body, bib)
            assert all(line in text[f"exercise-{label}"] for line in quoted.splitlines())
    # The solutions of assignment 1 are the package's own code.
    import inspect

    from effnet_tutorial.blocks import MBConv

    mbconv = text_of(course, "a1_se_mbconv", "mbconv")
    for line in inspect.getsource(MBConv).splitlines():
        assert line in mbconv


def text_of(course, assignment, grade_id):
    cells = load(course / "source" / assignment / f"{assignment}.ipynb")["cells"]
    return next(
        "".join(c["source"]) for c in cells if c["metadata"]["nbgrader"]["grade_id"] == grade_id
    )


def test_released_notebooks_hold_no_solutions(generated):
    course, stdout = generated
    for a in ASSIGNMENTS:
        assert f"{a.id}: released to" in stdout
        released = (course / "release" / a.id / f"{a.id}.ipynb").read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in released and "HIDDEN TESTS" not in released
        assert "YOUR CODE HERE" in released
        hidden = [t.hidden.splitlines()[-1] for t in a.tests if t.hidden]
        assert hidden and not any(h.strip() in released for h in hidden)
    assert (
        "def forward(self, x: torch.Tensor)"
        in (course / "release" / "a1_se_mbconv" / "a1_se_mbconv.ipynb").read_text()
    )
    assert (
        "x = self.depthwise(x)"
        not in (course / "release" / "a1_se_mbconv" / "a1_se_mbconv.ipynb").read_text()
    )


def test_unfilled_notebooks_score_zero(graded):
    course, out = graded
    got = scores(course)
    for a in IDS:
        assert got[("blank", a)] and all(s == 0 for s, _ in got[("blank", a)].values()), got[
            ("blank", a)
        ]
    rows = list(csv.DictReader((course / "grades.csv").open()))
    assert {
        r["assignment"] for r in rows if r["student_id"] == "blank" and float(r["score"]) == 0
    } == set(IDS)


def test_source_solutions_get_every_autograded_point(graded):
    course, out = graded
    got = scores(course)
    for a in ASSIGNMENTS:
        cells = got[("solution", a.id)]
        assert set(cells) == {t.grade_id for t in a.tests}
        assert all(s == m for s, m in cells.values()), cells
        assert sum(m for _, m in cells.values()) == a.auto_points
        assert (
            f"graded: solution / {a.id}: {a.auto_points}/{a.auto_points} autograded" in out.stdout
        )


@pytest.mark.parametrize(
    "student, assignment, failing, hint",
    [(s, a, f, h) for s, a, _, _, _, f, h in MISTAKES],
    ids=[m[0] for m in MISTAKES],
)
def test_known_wrong_answers_fail_their_tests_with_the_hint_in_the_feedback(
    graded, student, assignment, failing, hint
):
    course, _ = graded
    cells = scores(course)[(student, assignment)]
    assert {name for name, (s, m) in cells.items() if s < m} == failing, cells
    assert hint in feedback_text(course, student, assignment)


def test_malformed_submissions_are_reported_and_the_rest_graded(graded):
    course, out = graded
    text = out.stdout + out.stderr
    assert out.returncode == 1 and "Traceback" not in text  # 1: some submissions need a look
    assert f"not graded: broken / {IDS[0]}:" in text and "is not a valid Jupyter notebook" in text
    assert f"{IDS[1]}.ipynb is missing" in text and f"found: Copy of {IDS[1]}.ipynb" in text
    assert "'a9_unknown' is not a released assignment" in text
    assert "notes.txt is a file" in text
    assert f"warning: deleter / {IDS[1]}:" in text and "test_round_repeats" in text
    cells = scores(course)[("deleter", IDS[1])]
    assert "test_round_repeats" not in cells or cells["test_round_repeats"][0] in (None, 0)
    assert sum(s or 0 for s, _ in cells.values()) == BY_ID[IDS[1]].auto_points - next(
        t.points for t in BY_ID[IDS[1]].tests if t.grade_id == "test_round_repeats"
    )
    assert ("broken", IDS[0]) not in scores(course)


def test_nothing_to_grade_says_what_is_expected(tmp_path, generated):
    course, _ = generated
    empty = new_course(tmp_path)
    shutil.copytree(course / "release", empty / "release")
    out = tool("grade", "--course", empty)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert (
        "Nothing to grade" in out.stdout
        and "submitted/<student>/<assignment>/<notebook>.ipynb" in out.stdout
    )
    assert all(f"{a}/{a}.ipynb" in out.stdout for a in IDS)
    unreleased = new_course(tmp_path / "unreleased")
    out = tool("grade", "--course", unreleased)
    assert (
        out.returncode == 1 and "make assignments" in out.stdout and "Traceback" not in out.stderr
    )


def test_the_time_limit_stops_a_notebook_that_never_ends(tmp_path):
    cell_limit, notebook_limit = 10, 20
    course = new_course(tmp_path, cell_limit, notebook_limit)
    a = IDS[1]
    assert tool("generate", "--course", course, "--assignment", a).returncode == 0
    nb = load(course / "source" / a / f"{a}.ipynb")
    for cell in nb["cells"]:  # two solution cells that never finish
        if cell["metadata"]["nbgrader"]["grade_id"] in ("same_padding", "round_filters"):
            cell["source"] = "import time\ntime.sleep(10**6)\n" + "".join(cell["source"])
    submit(course, "looper", a, nb)
    out = tool("grade", "--course", course, timeout=600)
    assert f"graded: looper / {a}:" in out.stdout, out.stdout + out.stderr
    took = float(re.search(rf"graded: looper / {a}: .*\(([\d.]+) s, ", out.stdout).group(1))
    assert notebook_limit <= took < notebook_limit + 30, out.stdout   # + kernel start and nbgrader
    page = feedback_text(course, "looper", a)
    assert page.count("CellTimeoutError") == 2   # the two cells that never finish
    assert "not run: grading stopped at the time limit" in page   # the cells after the limit
    # test_stride2_paddings walks B0's layers with the package's same_padding (one concept,
    # one test), so it may pass when its own cell ran before the notebook's time was up.
    got = scores(course)[("looper", a)]
    assert all(s == 0 for name, (s, _) in got.items() if name != "test_stride2_paddings"), got


# ======================================================================================
# Submissions that try to change their grading, or crash or hang their kernel
# ======================================================================================
A2 = "a2_padding_rounding"
HARD_CELL_LIMIT = 20  # s: the cell that swallows the interrupt costs this, plus iopub_timeout

#: An effnet_tutorial package whose checkers always pass, handed in next to the notebook.
FAKE_PACKAGE = {
    "effnet_tutorial/__init__.py": "def __getattr__(name):\n    return lambda *a, **k: True\n",
    "effnet_tutorial/config.py": "def __getattr__(name):\n    return {}\n",
    "effnet_tutorial/exercises/__init__.py": "",
    **{
        f"effnet_tutorial/exercises/{m}.py": "def __getattr__(name):\n    return lambda *a, **k: True\n"
        for m in ("assignments", "chapter01", "chapter04", "chapter05")
    },
}


def prefixed(nb: dict, grade_id: str, code: str) -> dict:
    """A copy of ``nb`` with ``code`` run at the start of cell ``grade_id``."""
    nb = json.loads(json.dumps(nb))
    cell = next(c for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] == grade_id)
    cell["source"] = code + "\n" + "".join(cell["source"])
    return nb


def cell_number(nb: dict, grade_id: str) -> int:
    """The 1-based position of cell ``grade_id``, as the grading report counts."""
    return 1 + [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]].index(grade_id)


def outputs_of(course: Path, student: str, grade_id: str) -> list:
    nb = load(course / "autograded" / student / A2 / f"{A2}.ipynb")
    return next(c["outputs"] for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] == grade_id)


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """Assignment 2 graded for: a fake package next to a blank notebook (shadow), the same
    with the folder put on sys.path by the notebook (path_hack), a solution cell that
    swallows the time limit's interrupt (swallow), one that ends the kernel (dead), and
    solutions that crash inside the test cells' calls (crasher)."""
    course = new_course(tmp_path_factory.mktemp("hardened"), HARD_CELL_LIMIT, 300)
    assert tool("generate", "--course", course, "--assignment", A2).returncode == 0
    source = load(course / "source" / A2 / f"{A2}.ipynb")
    blank = load(course / "release" / A2 / f"{A2}.ipynb")
    hack = ("import os, sys\nsys.path.insert(0, os.getcwd())\n"
            "for m in [m for m in sys.modules if m.split('.')[0] == 'effnet_tutorial']:\n"
            "    del sys.modules[m]")
    swallow = ("import time\nfor attempt in range(10**6):   # a retry loop\n    try:\n"
               "        time.sleep(1000)\n    except:\n        pass")
    crasher = edited(source, "stride2_paddings", "paddings.append(same_padding(size, k, s))",
                     "paddings.append(same_paddin(size, k, s))")          # a NameError
    crasher = edited(crasher, "round_repeats", "return int(math.ceil(depth_coefficient * repeats))",
                     "return round_repeats(repeats, depth_coefficient)")  # a RecursionError
    submissions = {
        "shadow": blank,
        "path_hack": prefixed(source, "same_padding", hack),
        "swallow": prefixed(source, "round_filters", swallow),
        "dead": prefixed(source, "round_repeats", "import os\nos._exit(1)"),
        "crasher": crasher,
    }
    for student, nb in submissions.items():
        submit(course, student, A2, nb)
    for student in ("shadow", "path_hack"):
        for rel, text in FAKE_PACKAGE.items():
            path = course / "submitted" / student / A2 / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    # The kernels find this checkout's package as an installed one, in a folder named
    # site-packages: IPython puts the working directory on sys.path just before the first
    # such folder (a PYTHONPATH entry would come first and hide the shadowing).
    site = course.parent / "site-packages"
    site.mkdir()
    (site / "effnet_tutorial").symlink_to(ROOT / "effnet_tutorial")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = tool("grade", "--course", course, timeout=1200, env=env)
    print(out.stdout)
    return course, source, out


def test_a_package_handed_in_next_to_the_notebook_is_not_imported_and_is_flagged(hardened):
    course, _, out = hardened
    text = out.stdout + out.stderr
    assert out.returncode == 1 and "Traceback" not in text
    assert all(score == 0 for score, _ in scores(course)[("shadow", A2)].values())
    assert f"graded: shadow / {A2}: 0/7 autograded" in out.stdout, out.stdout
    assert (f"flagged: shadow / {A2}: Python code handed in next to the notebook: effnet_tutorial/ "
            "(it would replace the course's package and its checkers)") in out.stdout


def test_a_package_imported_from_the_submission_folder_scores_nothing(hardened):
    """The notebook puts its own folder on sys.path: every test after that scores 0."""
    course, _, out = hardened
    assert all(score == 0 for score, _ in scores(course)[("path_hack", A2)].values())
    assert f"graded: path_hack / {A2}: 0/7 autograded" in out.stdout, out.stdout
    assert (f"flagged: path_hack / {A2}: cell 7 (test_same_padding): modules imported from the "
            "submission's folder: effnet_tutorial/__init__.py") in out.stdout, out.stdout
    enames = [o.get("ename") for o in outputs_of(course, "path_hack", "test_same_padding")]
    assert "ShadowedImportError" in enames


def test_a_cell_that_swallows_the_interrupt_fails_and_the_rest_is_graded(hardened):
    course, source, out = hardened
    got = scores(course)[("swallow", A2)]
    assert got == {"test_same_padding": (2, 2), "test_stride2_paddings": (1, 1),
                   "test_round_filters": (0, 2), "test_round_repeats": (0, 1),
                   "test_b4_stage6": (0, 1)}, got
    n = cell_number(source, "round_filters")
    assert (f"graded: swallow / {A2}: 3/7 autograded; cell {n} (round_filters) did not stop at its "
            "time limit, so its kernel was stopped; failed: test_round_filters, "
            "test_round_repeats, test_b4_stage6") in out.stdout, out.stdout
    page = feedback_text(course, "swallow", A2)
    assert (f"CellTimeoutError: grading stopped cell {n} (round_filters) at its time limit "
            f"({HARD_CELL_LIMIT} s), but its code did not stop when interrupted") in page
    assert f"NotRunError: not run: cell {n} (round_filters) did not stop at its time limit" in page


def test_a_kernel_that_dies_is_graded_up_to_that_cell(hardened):
    course, source, out = hardened
    got = scores(course)[("dead", A2)]
    assert got == {"test_same_padding": (2, 2), "test_stride2_paddings": (1, 1),
                   "test_round_filters": (2, 2), "test_round_repeats": (0, 1),
                   "test_b4_stage6": (0, 1)}, got
    n = cell_number(source, "round_repeats")
    assert (f"graded: dead / {A2}: 5/7 autograded; the kernel died in cell {n} (round_repeats); "
            "failed: test_round_repeats, test_b4_stage6") in out.stdout, out.stdout
    page = feedback_text(course, "dead", A2)
    assert f"DeadKernelError: the kernel died in cell {n} (round_repeats)" in page
    assert f"NotRunError: not run: the kernel died in cell {n} (round_repeats)" in page
    rows = list(csv.DictReader((course / "grades.csv").open()))
    assert [float(r["score"]) for r in rows if r["student_id"] == "dead"] == [5.0]


def test_crashes_in_the_learners_functions_get_a_verdict_not_a_traceback(hardened):
    course, _, out = hardened
    got = scores(course)[("crasher", A2)]
    # test_b4_stage6 lends scaled_stage the package's round_repeats: it passes.
    assert {name for name, (s, m) in got.items() if s < m} == {
        "test_stride2_paddings", "test_round_repeats"}, got
    for grade_id, error in (("test_stride2_paddings", "NameError"), ("test_round_repeats", "RecursionError")):
        outputs = outputs_of(course, "crasher", grade_id)
        printed = "".join("".join(o["text"]) for o in outputs if o["output_type"] == "stream")
        assert f"raised {error}" in printed and "Hint:" in printed, printed
        # The cell fails by its assert on the verdict, not by the learner's exception.
        assert [o["ename"] for o in outputs if o["output_type"] == "error"] == ["AssertionError"]


# ======================================================================================
# No free marks: submissions that use the package's reference or patch the checkers
# ======================================================================================
A1, A4 = "a1_se_mbconv", "a4_fused_vs_mbconv"


def replaced(nb: dict, grade_id: str, code: str) -> dict:
    """A copy of ``nb`` whose cell ``grade_id`` holds ``code``: the learner's own cell."""
    nb = json.loads(json.dumps(nb))
    cell = next(c for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] == grade_id)
    cell["source"] = code
    return nb


#: Replaces every checker in the checkers' modules by one that always passes.
PATCH_CHECKERS = """\
import effnet_tutorial.exercises.assignments as assignments
import effnet_tutorial.exercises.chapter01 as chapter01
for module in (assignments, chapter01):
    for name in dir(module):
        if name.startswith("check_"):
            setattr(module, name, lambda *a, **k: True)
"""
#: The same, written so that the static scan does not see it (an alias of sys, and
#: __setattr__): only the fresh checkers of each test cell stop it.
PATCH_CHECKERS_QUIETLY = """\
import sys
s = sys
for name, module in list(s.modules.items()):
    if name.startswith("effnet_tutorial.exercises"):
        for attr in dir(module):
            if attr.startswith("check_"):
                module.__setattr__(attr, lambda *a, **k: True)
"""

#: Assignment 2 written differently from the source solution, all correct.
A2_OTHER_WAY = {
    "same_padding": """\
def same_padding(size, kernel_size, stride, dilation=1):
    span = dilation * (kernel_size - 1) + 1
    out = (size + stride - 1) // stride
    total = (out - 1) * stride + span - size
    if total < 0:
        total = 0
    half = total // 2
    return half, total - half
""",
    "stride2_paddings": """\
def stride2_paddings(image_size):
    config = get_model_config("efficientnet-b0")
    strided = [(3, 2)] + [(b.kernel_size, b.stride) for b in config.block_specs() if b.stride == 2]
    sizes, out = [image_size], []
    for b in [(3, 2)] + [(b.kernel_size, b.stride) for b in config.block_specs()]:
        if b[1] == 2:
            out.append(same_padding(sizes[-1], b[0], 2))
        sizes.append(-(-sizes[-1] // b[1]))
    assert len(out) == len(strided)
    return out
""",
    "round_filters": """\
def round_filters(channels, width_coefficient, divisor=8):
    target = channels * width_coefficient
    best = int((target + divisor / 2) // divisor) * divisor
    best = max(best, divisor)
    return best + divisor if best < 0.9 * target else best
""",
    "round_repeats": """\
def round_repeats(repeats, depth_coefficient):
    scaled = depth_coefficient * repeats
    whole = int(scaled)
    return whole if whole == scaled else whole + 1
""",
    "scaled_stage": """\
def scaled_stage(model_name, stage):
    coefficients = dict(zip(("w", "d", "r", "p"), V1_COEFFICIENTS[model_name]))
    base = get_model_config("efficientnet-b0")
    block = base.blocks[base.stage_numbers.index(stage)]
    return (round_filters(block.out_channels, coefficients["w"]),
            round_repeats(block.num_repeats, coefficients["d"]))
""",
}

#: Assignment 2 answered wrongly everywhere: with checkers that always pass, 7 points.
A2_WRONG = {
    "same_padding": "def same_padding(size, kernel_size, stride, dilation=1):\n    return (0, 0)\n",
    "stride2_paddings": "def stride2_paddings(image_size):\n    return []\n",
    "round_filters": "def round_filters(channels, width_coefficient, divisor=8):\n    return channels\n",
    "round_repeats": "def round_repeats(repeats, depth_coefficient):\n    return repeats\n",
    "scaled_stage": "def scaled_stage(model_name, stage):\n    return (0, 0)\n",
}

#: A lookup table of the visible cases (and of the hidden cases of earlier versions).
A1_TABLE = """\
_TABLE = {{{table}}}

def squeezed_channels(in_channels, se_ratio):
    return _TABLE.get((in_channels, se_ratio), 1)
"""


@pytest.fixture(scope="module")
def cheats(tmp_path_factory):
    from effnet_tutorial.blocks import squeezed_channels
    from effnet_tutorial.exercises.assignments import _se_cases

    course = new_course(tmp_path_factory.mktemp("cheats"))
    for a in (A1, A2, A4):
        assert tool("generate", "--course", course, "--assignment", a).returncode == 0
    source = {a: load(course / "source" / a / f"{a}.ipynb") for a in (A1, A2, A4)}
    table = ", ".join(f"({c}, {r}): {squeezed_channels(c, r)}" for c, r, _ in _se_cases("models"))
    table += ", " + ", ".join(f"({c}, {r}): {squeezed_channels(c, r)}"
                              for c in (1, 2, 3, 7, 13, 100, 257) for r in (0.0625, 0.125, 0.5, 1.0))
    other, wrong = source[A2], source[A2]
    for cell, code in A2_OTHER_WAY.items():
        other = replaced(other, cell, code)
    for cell, code in A2_WRONG.items():
        wrong = replaced(wrong, cell, code)
    submissions = {
        ("import_mbconv", A1): replaced(source[A1], "mbconv", "from effnet_tutorial.blocks import MBConv"),
        ("table", A1): replaced(source[A1], "squeezed_channels", A1_TABLE.format(table=table)),
        ("import_round_filters", A2): replaced(
            source[A2], "round_filters", "from effnet_tutorial.scaling import round_filters"),
        ("patch_checkers", A2): replaced(wrong, "same_padding", PATCH_CHECKERS + A2_WRONG["same_padding"]),
        ("patch_quietly", A2): replaced(
            wrong, "same_padding", PATCH_CHECKERS_QUIETLY + A2_WRONG["same_padding"]),
        ("other_way", A2): other,
        ("reexport", A4): replaced(
            source[A4], "fused_b0",
            "from effnet_tutorial.exercises.assignments import fused_b0_config as fused_b0"),
    }
    for (student, a), nb in submissions.items():
        submit(course, student, a, nb)
    out = tool("grade", "--course", course)
    print(out.stdout)
    return course, source, out


def lost(course: Path, student: str, assignment: str) -> set:
    return {name for name, (s, m) in scores(course)[(student, assignment)].items() if s < m}


def test_importing_the_reference_costs_its_tests_and_is_flagged(cheats):
    course, source, out = cheats
    assert lost(course, "import_mbconv", A1) == {
        "test_mbconv_shapes", "test_mbconv_params", "test_mbconv_outputs"}
    # test_b4_stage6 lends scaled_stage the package's round_filters: that test is earned.
    assert lost(course, "import_round_filters", A2) == {"test_round_filters"}
    for student, a, cell, what in (
        ("import_mbconv", A1, "mbconv", "MBConv from effnet_tutorial.blocks"),
        ("import_round_filters", A2, "round_filters", "round_filters from effnet_tutorial.scaling"),
    ):
        n = cell_number(source[a], cell)
        assert (f"flagged: {student} / {a}: cell {n} ({cell}) imports the package's reference "
                f"{what}; tests scored 0: ") in out.stdout, out.stdout
    assert "FlaggedSolutionError" in feedback_text(course, "import_mbconv", A1)


def test_a_reexported_reference_scores_nothing_and_is_flagged(cheats):
    course, source, out = cheats
    assert lost(course, "reexport", A4) == {"test_fused_b0"}
    n = cell_number(source[A4], "fused_b0")
    assert (f"flagged: reexport / {A4}: cell {n} (fused_b0) imports the checkers' module "
            "effnet_tutorial.exercises.assignments") in out.stdout, out.stdout
    # The checker itself refuses the package's object, named in the feedback.
    assert "Not yet: not allowed: your fused_b0 is the package's own" in feedback_text(
        course, "reexport", A4)


def test_patched_checkers_give_no_points(cheats):
    course, source, out = cheats
    for student in ("patch_checkers", "patch_quietly"):
        assert all(s == 0 for s, _ in scores(course)[(student, A2)].values()), student
    n = cell_number(source[A2], "same_padding")
    assert (f"flagged: patch_checkers / {A2}: cell {n} (same_padding) imports the checkers' module "
            "effnet_tutorial.exercises.assignments") in out.stdout, out.stdout
    # The quiet patch escapes the scan: the test cells' fresh checkers still fail the answers.
    assert "Not yet: same_padding(1, 3, 1)" in feedback_text(course, "patch_quietly", A2)


def test_a_table_of_the_visible_cases_fails_the_secret_cases_and_is_flagged(cheats):
    course, source, out = cheats
    assert lost(course, "table", A1) == {"test_squeezed_channels"}
    n = cell_number(source[A1], "test_squeezed_channels")
    assert (f"flagged: table / {A1}: cell {n} (test_squeezed_channels): the visible cases pass "
            "but the hidden ones fail") in out.stdout, out.stdout


def test_a_correct_solution_written_differently_gets_every_point(cheats):
    course, _, out = cheats
    assert lost(course, "other_way", A2) == set(), scores(course)[("other_way", A2)]
    assert "flagged: other_way" not in out.stdout


def test_the_instructors_material_is_not_in_the_installed_package():
    """Solutions, hidden tests' code and model answers live in classroom/course.py, which
    pip does not install (pyproject.toml ships effnet_tutorial* only); the package keeps
    the checkers and the rules that draw hidden cases, not a table of them."""
    import tomllib

    import setuptools

    import effnet_tutorial.exercises.assignments as checkers
    from course import Answer, Solution

    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = setuptools.find_packages(str(ROOT), include=found["include"])
    assert "effnet_tutorial.exercises" in shipped and not any("classroom" in p for p in shipped)
    for name in ("ASSIGNMENTS", "_a3_model_answer", "_a4_model_answer", "_se_cases_extra"):
        assert not hasattr(checkers, name), name
    package_text = "\n".join(p.read_text(encoding="utf-8")
                             for p in (ROOT / "effnet_tutorial").rglob("*.py"))
    secrets = []
    for a in ASSIGNMENTS:
        secrets += [t.hidden for t in a.tests if t.hidden]
        secrets += [c.source.split("### BEGIN SOLUTION")[-1].split("### END SOLUTION")[0]
                    for c in a.cells if isinstance(c, Solution)]
        secrets += [c.model_answer() if callable(c.model_answer) else c.model_answer
                    for c in a.cells if isinstance(c, Answer)]
    assert len(secrets) > 10
    for secret in secrets:
        longest = max(secret.strip().splitlines(), key=len).strip()
        assert longest not in package_text, longest


def test_skeleton_docstrings_say_what_to_compute_not_the_formula(generated):
    """The package's docstrings of squeezed_channels, same_padding, round_filters and
    round_repeats state their formulas; the released notebooks show the task's instead."""
    import inspect

    from course import Implement

    course, _ = generated
    replaced_any = False
    for a in ASSIGNMENTS:
        released = load(course / "release" / a.id / f"{a.id}.ipynb")
        text = "\n".join("".join(c["source"]) for c in released["cells"])
        for cell in (c for c in a.cells if isinstance(c, Implement)):
            for obj in cell.objects:
                if obj.__name__ in cell.docstrings:
                    replaced_any = True
                    assert inspect.getdoc(obj).splitlines()[0] not in text, obj.__name__
                    assert cell.docstrings[obj.__name__].splitlines()[0] in text, obj.__name__
    assert replaced_any


def test_a_deleted_written_answer_is_reported_as_missing(tmp_path):
    a = "a3_flops_budget"
    course = new_course(tmp_path)
    assert tool("generate", "--course", course, "--assignment", a).returncode == 0
    nb = load(course / "release" / a / f"{a}.ipynb")
    nb["cells"] = [c for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] != "justification"]
    submit(course, "no_answer", a, nb)
    out = tool("grade", "--course", course)
    assert f"graded: no_answer / {a}: 0/5 autograded; written answer missing (deleted from the " \
           "notebook): justification" in out.stdout, out.stdout
    assert "points to grade by hand" not in out.stdout.split(f"graded: no_answer / {a}")[1].splitlines()[0]
