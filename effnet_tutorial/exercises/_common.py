"""Shared helpers for the exercise checkers: one verdict line, and checkers that never crash."""
from __future__ import annotations

import functools
import inspect
import math
import textwrap
from numbers import Real

#: Characters of the book's output column at 1280 px: verdicts are wrapped to fit it.
WIDTH = 77


def _print(line: str) -> None:
    print(textwrap.fill(line, width=WIDTH, subsequent_indent="    ") if len(line) > WIDTH else line)


def report(ok: bool, what: str, expected=None, got=None, hint: str | None = None) -> bool:
    """Print one verdict line (and a hint on failure) and return ``ok``."""
    if ok:
        _print(f"Correct: {what}.")
    else:
        msg = f"Not yet: {what}."
        if expected is not None or got is not None:
            msg += f" Expected {expected!r}, got {got!r}."
        if hint:
            msg += f" Hint: {hint}"
        _print(msg)
    return ok


#: Wrong tries of an exact answer before :func:`check_equal` shows the expected value.
REVEAL_AFTER = 3
_wrong_tries: dict[str, int] = {}


def check_equal(got, expected, what: str, hint: str | None = None) -> bool:
    """``report`` for an exact answer. A wrong answer gets the hint (and what was given);
    the expected value is shown only after :data:`REVEAL_AFTER` wrong tries of the same
    question (``what``), so that a first mistake is a prompt to think, not the solution.
    A right answer resets the count."""
    ok = type(got) is not bool and got == expected
    if ok:
        _wrong_tries.pop(what, None)
        return report(True, what)
    tries = _wrong_tries[what] = _wrong_tries.get(what, 0) + 1
    if tries >= REVEAL_AFTER:
        return report(False, what, expected, got, hint)
    left = REVEAL_AFTER - tries
    nudge = (f"{hint + ' ' if hint else ''}(The answer is shown after {left} more wrong "
             f"{'try' if left == 1 else 'tries'}.)")
    return report(False, f"{what} (got {got!r})", hint=nudge)


def is_number(x) -> bool:
    """A finite real number (not a bool, not a string)."""
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))


def as_number(answer) -> float | None:
    """``answer`` as a finite float (numbers and numeric strings), or None (bools included)."""
    if isinstance(answer, bool):
        return None
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def verdict(ok: bool, what: str, got, hint: str) -> bool:
    """``report`` that shows the answer only when it is wrong, and never the solution."""
    return report(ok, what if ok else f"{what} (got {got!r})", hint=None if ok else hint)


def never_crashes(checker):
    """Make a checker return a verdict with a hint for ANY answer.

    The checkers validate the answers they expect; this is the net under them: whatever
    a learner's answer makes fail (a string where a number belongs, a model in float64,
    a function that raises), the learner sees one "Not yet" line naming the exception and
    what the checker expects (its signature), never a traceback.
    """
    signature = str(inspect.signature(checker))

    @functools.wraps(checker)
    def wrapper(*args, **kwargs):
        try:
            return bool(checker(*args, **kwargs))
        except Exception as exc:  # a learner's answer may make anything fail
            return report(False, f"{checker.__name__} could not check this answer ({type(exc).__name__}: {exc})",
                          hint=f"it expects {checker.__name__}{signature}; see its docstring")
    return wrapper
