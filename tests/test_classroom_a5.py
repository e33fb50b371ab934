"""Assignment 5, the training project: its checkers, its held-out split and its tolerance,
then the assignment graded end to end by nbgrader in a copy of ``classroom/``.

The reference solution gets every autograded point, in well under the grader's 300 s per
notebook; a final model over the multiply-add budget loses the budget test and the final
test only; a ``train_model`` that does not train loses the final test only; one that
loads the data set itself loses it and is flagged; a correct recipe written without the
package's ``fit`` gets every point. Offline, on the CPU.
"""

import math
import re
import statistics

import pytest
import torch

from test_classroom import cell_number, feedback_text, load, new_course, replaced, scores, submit, tool

import effnet_tutorial.exercises.training_project as a5
from effnet_tutorial import EfficientNet, count_flops

A5 = "a5_training_project"


# ======================================================================================
# The checkers, in this process
# ======================================================================================
def grid_scale(direction, budget):
    """A correct scale_to_budget written for the tests: a plain scan, no bisection."""
    limit = budget * count_flops(a5.BASE)
    best = None
    steps = range(a5.BASE_RESOLUTION, 80) if direction == "resolution" else [1 + k / 200 for k in range(2000)]
    for x in steps:
        if direction == "depth":
            config = a5.BASE.with_options(depth_coefficient=a5.BASE.depth_coefficient * x)
        elif direction == "width":
            config = a5.BASE.with_options(width_coefficient=a5.BASE.width_coefficient * x)
        elif direction == "resolution":
            config = a5.BASE.with_options(resolution=x)
        else:
            phi = (x - 1) * 4
            config = a5.BASE.with_options(depth_coefficient=a5.BASE.depth_coefficient * 1.2 ** phi,
                                          width_coefficient=a5.BASE.width_coefficient * 1.1 ** phi,
                                          resolution=round(a5.BASE_RESOLUTION * 1.15 ** phi))
        if count_flops(config) > limit:
            break
        best = config
    return best


def test_a_correct_scaling_passes_at_the_budget_and_at_hidden_budgets(capsys):
    assert a5.check_single_dimension(grid_scale) and a5.check_compound(grid_scale)
    for budget in a5.hidden_cases("budgets"):
        assert a5.check_single_dimension(grid_scale, budget) and a5.check_compound(grid_scale, budget)


@pytest.mark.parametrize("mistake, hint", [
    (lambda d, b: grid_scale(d, 2 * b), "over the budget"),
    (lambda d, b: grid_scale(d, 0.6 * b), "use at least 80% of it"),
    (lambda d, b: grid_scale("compound", b) if d == "depth" else grid_scale(d, b), "changes width and resolution too"),
    (lambda d, b: grid_scale(d, b).with_options(num_classes=1000), "changed: num_classes"),
    (lambda d, b: a5.BASE, "does not scale depth up"),
    (lambda d, b: (d, b), "return a ModelConfig"),
])
def test_wrong_single_dimension_answers_fail_with_a_hint(capsys, mistake, hint):
    assert not a5.check_single_dimension(mistake)
    assert hint in " ".join(capsys.readouterr().out.split())


def test_a_compound_model_with_two_phis_or_absolute_coefficients_fails(capsys):
    def two_phis(direction, budget):
        c = grid_scale(direction, budget)
        return c.with_options(resolution=c.resolution + 3)

    def absolute(direction, budget):   # alpha^phi as the depth coefficient, forgetting BASE's
        return a5.BASE.with_options(depth_coefficient=1.2 ** 2, width_coefficient=1.1 ** 2,
                                    resolution=round(16 * 1.15 ** 2))

    assert not a5.check_compound(two_phis)
    assert "one phi for all three" in " ".join(capsys.readouterr().out.split())
    assert not a5.check_compound(absolute)
    assert "relative to BASE's" in " ".join(capsys.readouterr().out.split())


def test_the_reference_scaler_itself_is_refused(capsys):
    assert not a5.check_compound(a5._reference_scaling)
    assert "Not yet: not allowed:" in capsys.readouterr().out


def test_the_held_out_split_is_stratified_disguised_and_disjoint():
    split = {"seed": 7, "turn": 1, "transpose": True, "labels": [3, 1, 4, 0, 5, 9, 2, 6, 8, 7]}
    train, held = a5.digits_task(split)
    everything = a5._all_digits()
    assert len(train) + len(held) == len(everything) == 1797
    assert held.class_counts() == [round(a5.HELD_OUT_FRACTION * n) for n in
                                   [everything.class_counts()[split["labels"].index(c)] for c in range(10)]]
    # Every held-out image is an original digit turned and transposed, under its new label.
    originals = {(bytes(img.flatten().tolist()), int(y)) for img, y in zip(everything.images, everything.labels)}
    undo = torch.rot90(held.images.transpose(2, 3), -1, dims=(2, 3))
    back = [split["labels"].index(int(y)) for y in held.labels]
    assert all((bytes(img.flatten().tolist()), y) in originals for img, y in zip(undo, back))
    # Together the two parts are the whole data set, each digit once (a partition).
    disguised = torch.rot90(everything.images, 1, dims=(2, 3)).transpose(2, 3)
    assert sorted(bytes(i.flatten().tolist()) for i in torch.cat([train.images, held.images])) \
        == sorted(bytes(i.flatten().tolist()) for i in disguised)
    assert a5.digits_task(split)[1].images.equal(held.images)       # the same seed, the same split


def test_hidden_splits_never_leave_the_digits_as_they_are():
    import random

    for k in range(50):
        case = a5._DRAWS["final_split"](random.Random(k))[0]
        assert case["turn"] or case["transpose"]
        assert sorted(case["labels"]) == list(range(10))


def untrained(config, train_set, seed):
    torch.manual_seed(seed)
    return EfficientNet(config).eval()


def test_a_model_that_did_not_train_fails_the_final_test(capsys):
    final = grid_scale("width", a5.BUDGET)
    assert not a5.check_final_model(final, untrained)
    out = " ".join(capsys.readouterr().out.split())
    assert "the model did not learn" in out


def test_a_model_over_the_budget_fails_before_training(capsys):
    over = a5.BASE.with_options(width_coefficient=1.0)
    assert not a5.check_final_budget(over)
    assert not a5.check_final_model(over, untrained)
    assert capsys.readouterr().out.count("over the budget") == 2

    def bigger(config, train_set, seed):   # trains a larger model than its config says
        return untrained(config.with_options(width_coefficient=1.0), train_set, seed)

    assert not a5.check_final_model(grid_scale("width", a5.BUDGET), bigger)
    assert "train the model of your final config" in " ".join(capsys.readouterr().out.split())


def test_a_train_model_that_loads_the_data_set_is_refused(capsys):
    from effnet_tutorial.data import load_digits

    def loads(config, train_set, seed):
        load_digits(seed=0)
        return untrained(config, train_set, seed)

    assert not a5.check_final_model(grid_scale("width", a5.BUDGET), loads)
    out = " ".join(capsys.readouterr().out.split())
    assert "Not yet: not allowed:" in out and "load_digits" in out and "held-out digits" in out


def test_a_replaced_evaluate_or_fit_is_refused(capsys, monkeypatch):
    """A notebook that replaced the package's evaluate (to report any accuracy) or fit (to
    weaken the reference run), in a way the scan of its cells does not see."""
    import effnet_tutorial.train as train

    monkeypatch.setattr(train, "evaluate", lambda *args, **kwargs: 1.0)
    assert not a5.check_final_model(grid_scale("width", a5.BUDGET), untrained)
    out = " ".join(capsys.readouterr().out.split())
    assert "Not yet: not allowed: effnet_tutorial.train.evaluate is no longer the package's own" in out


def test_the_tolerance_covers_the_seed_to_seed_spread_of_the_reference_run():
    """TOLERANCE is a design choice; this measures the spread it must cover: the reference
    run on one held-out split with five training seeds. Two independent runs differ with
    the standard deviation sqrt(2) sigma; the tolerance must be three of those."""
    split = {"seed": 11, "turn": 2, "transpose": False, "labels": list(range(9, -1, -1))}
    train, held = a5.digits_task(split)
    accuracies = [a5.reference_run(train, held, seed) for seed in range(5)]
    sigma = statistics.stdev(accuracies)
    print(f"reference run on {len(held)} held-out digits, seeds 0-4: "
          f"{', '.join(f'{a:.2%}' for a in accuracies)}; sigma {sigma:.2%}, "
          f"3 sqrt(2) sigma = {3 * math.sqrt(2) * sigma:.2%}, tolerance {a5.TOLERANCE:.0%}")
    assert min(accuracies) > 0.8          # the reference trains (chance is 10 %)
    assert a5.TOLERANCE >= 3 * math.sqrt(2) * sigma
    assert max(accuracies) - min(accuracies) <= a5.TOLERANCE


# ======================================================================================
# The assignment graded by nbgrader
# ======================================================================================
#: A correct recipe written without the package's fit: AdamW and a one-cycle schedule.
OWN_LOOP = """\
def train_model(config, train_set, seed):
    torch.manual_seed(seed)
    model = EfficientNet(config).train()
    mean, std = channel_stats(train_set)
    epochs, batch = 8, 64
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3,
                                                total_steps=epochs * (len(train_set) // batch))
    order_gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(train_set), generator=order_gen)
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start:start + batch]
            x = torch.nn.functional.interpolate(train_set.images[idx].float() / 255,
                                                size=config.resolution, mode="bilinear")
            x = (x - mean[0]) / std[0]
            loss = torch.nn.functional.cross_entropy(model(x), train_set.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()
"""

UNTRAINED = """\
def train_model(config, train_set, seed):
    torch.manual_seed(seed)
    return EfficientNet(config).eval()   # forgot to train it
"""

LOADS_DATA = """\
def train_model(config, train_set, seed):
    more, _ = load_digits(seed=seed, val_fraction=0.05)   # "more data": the held-out digits too
    torch.manual_seed(seed)
    net = EfficientNet(config)
    mean, std = channel_stats(more)
    plan = epoch_plan(REFERENCE_RECIPE["epochs"], config.resolution)
    fit(net, more, more.subset(range(0, len(more), 20)), plan, batch_size=64,
        lr=scaled_lr(REFERENCE_RECIPE["lr"], 64), mean=mean, std=std, progress=False, log=None)
    return net.eval()
"""

OVER_BUDGET = 'final_config = configs["width"].with_options(resolution=24)   # more is better?\n'


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = new_course(tmp_path_factory.mktemp("a5"))
    out = tool("generate", "--course", course, "--assignment", A5)
    assert out.returncode == 0, out.stdout + out.stderr
    source = load(course / "source" / A5 / f"{A5}.ipynb")
    submissions = {
        "solution": source,
        "own_loop": replaced(source, "train_model", OWN_LOOP),
        "untrained": replaced(source, "train_model", UNTRAINED),
        "loads_data": replaced(source, "train_model", LOADS_DATA),
        "over_budget": replaced(source, "final_config", OVER_BUDGET),
    }
    for student, nb in submissions.items():
        submit(course, student, A5, nb)
    out = tool("grade", "--course", course, timeout=3600)
    print(out.stdout)
    return course, source, out


def lost(course, student) -> set:
    return {name for name, (s, m) in scores(course)[(student, A5)].items() if s < m}


def seconds(out, student) -> tuple[float, float]:
    m = re.search(rf"graded: {student} / {A5}: .*\(([\d.]+) s, ([\d.]+) s CPU\)", out.stdout)
    return float(m.group(1)), float(m.group(2))


def test_the_reference_solution_gets_every_point_within_the_time_limit(graded):
    course, _, out = graded
    assert lost(course, "solution") == set(), scores(course)[("solution", A5)]
    assert f"graded: solution / {A5}: 7/7 autograded, 4 points to grade by hand" in out.stdout
    wall, cpu = seconds(out, "solution")
    print(f"grading the reference solution: {wall:.1f} s, {cpu:.1f} s CPU")
    assert wall < 300, out.stdout     # the grader's limit per notebook, and the brief's 5 minutes
    assert "timed out" not in out.stdout.split(f"graded: solution / {A5}")[1].splitlines()[0]


def test_a_recipe_written_without_fit_gets_every_point(graded):
    course, _, out = graded
    assert lost(course, "own_loop") == set(), scores(course)[("own_loop", A5)]
    assert "flagged: own_loop" not in out.stdout


def test_a_model_that_did_not_train_loses_the_final_test_only(graded):
    course, _, _ = graded
    assert lost(course, "untrained") == {"test_final_model"}
    assert "the model did not learn" in feedback_text(course, "untrained", A5)


def test_a_final_model_over_the_budget_loses_the_budget_and_final_tests(graded):
    course, _, _ = graded
    assert lost(course, "over_budget") == {"test_final_budget", "test_final_model"}
    assert "over the budget" in feedback_text(course, "over_budget", A5)


def test_a_train_model_that_loads_the_data_is_flagged_and_loses_the_final_test(graded):
    course, source, out = graded
    assert lost(course, "loads_data") == {"test_final_model"}
    n = cell_number(source, "test_final_model")
    assert (f"flagged: loads_data / {A5}: cell {n} (test_final_model): the checker found the "
            "package's own code") in out.stdout, out.stdout
