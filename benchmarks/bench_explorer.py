"""Speed of the φ explorer: the kernel widget's refresh, and the closed-form counts against
counting a built model.

    python benchmarks/bench_explorer.py [--random 200] [--rounds 3] [--memory]

1. Widget refresh: a :class:`~effnet_tutorial.widgets.ScalingExplorer` without a front end;
   every slider is moved through all of its positions (the others at their defaults), in
   both tables, then ``--random`` seeded points of the whole grid. Each move is timed from
   setting the slider's value to the end of the refresh it triggers (explore(), the HTML
   panel, the plot's PNG, the widget state). Prints the median and the worst.
2. Counting: for each of the 12 published models, ``analytic_params`` + ``analytic_flops``
   of its config against counting the model built on the meta device (building it, then
   ``count_params`` and ``count_flops`` of the module, which runs it under FlopCounterMode:
   what counting a name cost before the closed form), timed in alternation, ``--rounds``
   times; prints the medians and their ratio.
3. ``--memory`` (Linux): the build button's memory estimate against the growth of the peak
   resident memory while building and tracing B0, B4 and B7 for real (each in a fresh
   process, the peak reset through ``/proc/self/clear_refs``).

Writes benchmarks/results/bench_explorer.json (benchmarks/store.py).
"""
from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time

import torch

from effnet_tutorial import MODEL_NAMES, EfficientNet, count_flops, count_params, get_model_config
from effnet_tutorial.analytic import analytic_flops, analytic_params
from effnet_tutorial.explore import SLIDERS
from machine import machine  # noqa: E402  (benchmarks/machine.py)
from store import save, spread  # noqa: E402  (benchmarks/store.py)


def bench_widget(n_random: int) -> list[tuple[float, str]]:
    """(seconds, which move) per slider move, over the sweep in the module docstring."""
    from effnet_tutorial.widgets import ScalingExplorer

    ex = ScalingExplorer()
    times = []

    def move(control, value) -> None:
        if control.value == value:
            return
        start = time.perf_counter()
        control.value = value
        times.append((time.perf_counter() - start, f"{control.description} -> {value}"))

    for table in ("formula", "official"):
        move(ex.table, table)
        names = ("phi", "alpha", "beta", "gamma") if table == "formula" else ("phi",)
        for name in names:
            values = SLIDERS[name].values if table == "formula" else tuple(map(float, range(8)))
            for v in values + (SLIDERS[name].default,):
                move(ex.sliders[name], v)
    move(ex.table, "formula")
    rng = random.Random(0)
    for _ in range(n_random):
        for name in ("phi", "alpha", "beta", "gamma"):
            move(ex.sliders[name], rng.choice(SLIDERS[name].values))
    return times


def bench_counts(rounds: int) -> list[tuple[str, float, float]]:
    """(name, seconds per analytic count, seconds per built count), medians over rounds."""
    rows = []
    for name in MODEL_NAMES:
        config = get_model_config(name)
        size = (1, 3, config.resolution, config.resolution)
        fast, slow = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            a = (analytic_params(config), analytic_flops(config, size))
            fast.append(time.perf_counter() - start)
            start = time.perf_counter()
            with torch.device("meta"):
                model = EfficientNet(config)
            b = (count_params(model), count_flops(model, size))
            slow.append(time.perf_counter() - start)
            assert a == b, (name, a, b)
        rows.append((name, statistics.median(fast), statistics.median(slow)))
    return rows


_PEAK = """
import sys, torch
from effnet_tutorial import EfficientNet, get_model_config, trace_shapes
from effnet_tutorial.measure import peak_memory_mib

config = get_model_config(sys.argv[1])
trace_shapes(EfficientNet(get_model_config("efficientnet-b0")), print_fn=None)  # warm up torch

def build_and_trace():
    model = EfficientNet(config)
    trace_shapes(model, (1, 3, config.resolution, config.resolution), print_fn=None)

print(round(peak_memory_mib(build_and_trace, "cpu") * 2**20))
"""


def bench_memory() -> list[tuple[str, int, int]]:
    """(name, estimated bytes, measured growth of the peak resident memory in bytes)."""
    from effnet_tutorial.widgets import estimate_build_memory

    rows = []
    for name in ("efficientnet-b0", "efficientnet-b4", "efficientnet-b7"):
        config = get_model_config(name)
        estimate = estimate_build_memory(config, (1, 3, config.resolution, config.resolution)).total
        out = subprocess.run([sys.executable, "-c", _PEAK, name], capture_output=True, text=True,
                             check=True)
        rows.append((name, estimate, int(out.stdout.strip().splitlines()[-1])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=200,
                        help="random grid points after the sweep")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timing rounds per model for the counts")
    parser.add_argument("--memory", action="store_true",
                        help="also check the build button's memory estimate")
    args = parser.parse_args()

    print(machine())
    results = {}
    moves = bench_widget(args.random)
    ms = sorted(t * 1e3 for t, _ in moves)
    print(f"widget refresh over {len(ms)} slider moves: median {statistics.median(ms):.1f} ms, "
          f"worst {ms[-1]:.1f} ms (99th percentile {ms[int(0.99 * len(ms))]:.1f} ms)")
    slowest = sorted(moves)[-3:][::-1]
    print("  slowest:", ", ".join(f"{what} {t * 1e3:.1f} ms" for t, what in slowest))
    results["widget refresh"] = {"moves": len(ms), "ms": spread(ms),
                                 "p99_ms": ms[int(0.99 * len(ms))],
                                 "slowest": [[what, t * 1e3] for t, what in slowest]}

    print("\ncounting one model (params + multiply-adds), medians of", args.rounds, "rounds:")
    print(f"{'model':20s} {'closed form':>12s} {'built (meta)':>13s} {'speed-up':>9s}")
    rows = bench_counts(args.rounds)
    for name, fast, slow in rows:
        print(f"{name:20s} {fast * 1e3:9.3f} ms {slow * 1e3:10.1f} ms {slow / fast:8.0f}x")
    fast, slow = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'all 12':20s} {fast * 1e3:9.3f} ms {slow * 1e3:10.1f} ms")
    results["counting"] = {"rounds": args.rounds, "models": {
        name: {"closed_form_ms": f * 1e3, "built_meta_ms": s * 1e3, "speedup": s / f}
        for name, f, s in rows}}

    if args.memory:
        print("\nbuild and trace (float32, batch 1, native size): estimate vs measured peak growth")
        memory = results["build memory"] = {}
        for name, estimate, measured in bench_memory():
            print(f"{name:20s} estimate {estimate / 2**20:6.0f} MiB, measured "
                  f"{measured / 2**20:6.0f} MiB ({estimate / measured:.2f}x)")
            memory[name] = {"estimate_bytes": estimate, "measured_peak_growth_bytes": measured,
                            "ratio": estimate / measured}
    save("bench_explorer", results)


if __name__ == "__main__":
    main()
