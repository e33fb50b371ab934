"""Where the benchmarks keep their results: ``benchmarks/results/<benchmark>.json``.

Every benchmark stores what it measured there, with the machine (``machine.machine_info``:
CPU, cores, torch and its thread count, GPU, load average), the command line and the date,
so that the ranges the book quotes can be checked against a stored run
(``tests/test_prose_ranges.py``). A file holds one entry per *section* of a benchmark (for
example ``"fused, cpu, 2 threads"``); a run replaces the entries it measured again and keeps
the others, so that a run of one section does not erase the rest.

Timings are stored as in the book: per-round ratios of interleaved timings
(``effnet_tutorial.measure.time_interleaved``), summarised by their median and quartiles.
"""
from __future__ import annotations

import datetime
import json
import pathlib
import statistics
import sys

from machine import machine_info

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def spread(values: list[float]) -> dict:
    """Median, quartiles, minimum and maximum of a list of numbers (one number: all equal)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("spread() needs at least one value, got an empty list")
    q1, median, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return {"median": median, "q1": q1, "q3": q3, "min": min(values), "max": max(values),
            "n": len(values)}


def timing_table(times: dict[str, list[float]], reference: str) -> dict:
    """Interleaved timings as stored: each entry's seconds per round, their median in
    milliseconds, and the spread of its per-round time ratio to ``reference`` (below 1 is
    faster) and of its speed-up over it."""
    if reference not in times:
        raise KeyError(f"reference {reference!r} is not one of the timed entries: "
                       f"{', '.join(times)}")
    ref = times[reference]
    table = {}
    for name, ts in times.items():
        ratios = [t / r for t, r in zip(ts, ref)]
        table[name] = {"median_ms": statistics.median(ts) * 1e3, "seconds": list(ts),
                       "time_ratio": spread(ratios),
                       "speedup": spread([1 / r for r in ratios])}
    return {"reference": reference, "rounds": len(ref), "entries": table}


def save(benchmark: str, sections: dict[str, dict]) -> pathlib.Path:
    """Store ``sections`` ({section name: results}) in ``results/<benchmark>.json``,
    replacing those sections and keeping the file's other sections."""
    path = RESULTS / f"{benchmark}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    stored = old.get("sections", {}) if old.get("format") == 2 else {}
    run = {"command": " ".join(["python", f"benchmarks/{benchmark}.py", *sys.argv[1:]]),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_info()}
    for name, results in sections.items():
        stored[name] = {**run, "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": f"benchmarks/{benchmark}.py", "format": 2,
                                "sections": dict(sorted(stored.items()))}, indent=1) + "\n")
    print(f"written to {path.relative_to(RESULTS.parent.parent)}")
    return path
