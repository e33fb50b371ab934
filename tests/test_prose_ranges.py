"""The ranges the chapters quote from the benchmarks contain the stored results.

A chapter that quotes a benchmark ("the benchmark finds ONNX Runtime 1.4–2 times as fast")
must say what ``benchmarks/results/`` holds. Each :class:`Claim` below finds one range in
a chapter's text, parses its two ends from the prose, and checks that every stored value it
summarises lies inside, to the precision the prose writes (``1.4–2`` holds 1.35 to 2.5,
``19–30 %`` holds 18.5 % to 30.5 %). Every range in a paragraph that quotes a benchmark
must be covered by a claim (:func:`test_every_benchmark_range_is_claimed`), so a new
unchecked number fails too. The stored results come from ``make benchmark``; after a new
run, this test says which sentences to update.
"""
from __future__ import annotations

import json
import pathlib
import re
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
NUMBER = r"\d+(?:\.\d+)?"
RANGE = re.compile(rf"between {NUMBER} and {NUMBER}|{NUMBER}\s*–\s*{NUMBER}")


def prose(notebook: str) -> str:
    """The markdown of a chapter, whitespace collapsed: one line per paragraph or list item."""
    nb = json.loads((ROOT / "chapters" / f"{notebook}.ipynb").read_text())
    text = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return re.sub(r"[ \t]*\n[ \t]*(?!\n|[-*] |\d+\. )", " ", text)


def results(benchmark: str) -> dict:
    path = RESULTS / f"{benchmark}.json"
    assert path.exists(), f"{path.relative_to(ROOT)} is missing: run `make benchmark`"
    return json.loads(path.read_text())


def section(benchmark: str, name: str) -> dict:
    """The results of one section of a benchmark stored by benchmarks/store.py."""
    sections = results(benchmark)["sections"]
    assert name in sections, (f"{benchmark}.json has no section {name!r}; it has: "
                              + ", ".join(sections))
    return sections[name]["results"]


def quartiles(spread: dict) -> list[float]:
    return [spread["q1"], spread["q3"]]


@dataclass(frozen=True)
class Claim:
    """A range in ``notebook``'s text, found by ``pattern`` (a regular expression whose
    groups ``lo`` and ``hi`` are the two ends; ``hi`` may match nothing, for a single
    number), that must hold ``values(...)`` times ``scale`` (100 for a fraction quoted in
    per cent)."""

    notebook: str
    pattern: str
    values: Callable[[], list[float]]
    scale: float = 1.0

    def __str__(self) -> str:
        return f"{self.notebook}: {self.pattern}"


def _roofline(key: str, *path: str) -> Callable[[], list[float]]:
    """The [min, max] over the rounds of one number of bench_roofline's summary."""
    def get():
        summary = results("bench_roofline")["summary"]
        node = summary["paths"][key] if not key.startswith("threads") else summary["ceilings"][key]
        for p in path:
            node = node[p]
        return list(node)
    return get


def _roofline_many(keys: list[str], *path: str) -> Callable[[], list[float]]:
    return lambda: [v for k in keys for v in _roofline(k, *path)()]


def _lite_speed(threads: int, batch: int, variant: str) -> Callable[[], list[float]]:
    def get():
        speed = results("bench_lite")["speed"][f"{threads} threads"]["batches"][str(batch)]
        return quartiles(speed["variants"][variant]["speedup_over_float32_ort"])
    return get


def _timing(benchmark: str, name: str, entry: str, what: str = "speedup") -> Callable[[], list[float]]:
    return lambda: quartiles(section(benchmark, name)["timings"]["entries"][entry][what])


CLAIMS: list[Claim] = []   # filled below, chapter by chapter


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def _bounds(lo: str, hi: str) -> tuple[float, float]:
    """The interval a written range stands for: each end give or take half its last digit."""
    return (float(lo) - 0.5 * 10 ** -_decimals(lo), float(hi) + 0.5 * 10 ** -_decimals(hi))


def test_bounds_follow_the_written_precision():
    assert _bounds("1.4", "2") == pytest.approx((1.35, 2.5))
    assert _bounds("19", "30") == pytest.approx((18.5, 30.5))


@pytest.mark.parametrize("claim", CLAIMS, ids=str)
def test_prose_range_contains_stored_results(claim: Claim):
    text = prose(claim.notebook)
    match = re.search(claim.pattern, text)
    assert match, f"{claim.notebook}: the sentence {claim.pattern!r} is not in the text any more"
    low, high = _bounds(match["lo"], match["hi"] or match["lo"])   # a single number: hi empty
    values = [v * claim.scale for v in claim.values()]
    outside = [round(v, 4) for v in values if not low <= v <= high]
    assert not outside, (f"{claim.notebook}: the text says {match['lo']}–{match['hi']} "
                         f"({match.group(0)!r}), the stored results are "
                         f"{[round(v, 4) for v in values]}")


def test_every_benchmark_range_is_claimed():
    """Every range in a paragraph that quotes a benchmark is checked by a claim."""
    unchecked = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        text = prose(path.stem)
        claimed = [m.span() for c in CLAIMS if c.notebook == path.stem
                   for m in re.finditer(c.pattern, text)]
        for paragraph in re.finditer(r"[^\n]+", text):
            if "benchmark" not in paragraph.group(0) or "{exercise}" in paragraph.group(0):
                continue
            for m in RANGE.finditer(paragraph.group(0)):
                start = paragraph.start() + m.start()
                if not any(a <= start < b for a, b in claimed):
                    context = paragraph.group(0)[max(0, m.start() - 60):m.end() + 20]
                    unchecked.append(f"{path.stem}: ...{context}...")
    assert not unchecked, "ranges quoted from a benchmark without a claim:\n" + "\n".join(unchecked)


def test_every_benchmark_has_stored_results():
    """`make benchmark` stores the latest run of every benchmark, with the machine."""
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        data = results(script.stem)
        runs = ([s for s in data["sections"].values()] if "sections" in data
                else [data] + list(data.get("speed", {}).values()))
        for run in runs:
            machine = run["machine"]
            assert machine["torch"] and machine["torch_threads"] >= 1 and machine["cores"] >= 1


# --------------------------------------------------------------------------------------
# 9.2 The roofline: benchmarks/bench_roofline.py (ranges over the rounds)
# --------------------------------------------------------------------------------------
def _b0(batch: int, path: str, model: str = "efficientnet-b0") -> str:
    return f"{model} batch {batch} {path} threads 1"


def _one_by_one_time(keys: list[str]) -> Callable[[], list[float]]:
    """The share of time of the 1×1 convolutions (expand + project) in every round."""
    def get():
        values = []
        for rnd in results("bench_roofline")["rounds"]:
            if rnd["ceilings"]["threads"] != 1:
                continue
            for r in rnd["results"]:
                if f"{r['model']} batch {r['batch']} {r['path']} threads 1" in keys:
                    shares = r["role_shares"]
                    values.append(shares["expand"]["share of time"] + shares["project"]["share of time"])
        assert values, f"no rounds for {keys}"
        return values
    return get


def _depthwise_intensity() -> tuple[float, float]:
    from effnet_tutorial.roofline import layer_table
    table = layer_table("efficientnet-b0", (4, 3, 224, 224))
    intensity = table[table.role == "depthwise"].intensity
    return intensity.min(), intensity.max()


B0_PATHS = [_b0(b, p) for b in (1, 16) for p in ("eager", "folded", "fused", "onnxruntime")]
RF = "09_roofline"
CLAIMS += [
    Claim(RF, r"the depthwise points sit between (?P<lo>[\d.]+) and (?P<hi>[\d.]+) FLOP per byte",
          lambda: list(_depthwise_intensity())),   # counted, in the chapter's figure (batch 4)
    Claim(RF, r"a peak of (?P<lo>[\d.]+)–(?P<hi>[\d.]+) GFLOP/s and a bandwidth",
          _roofline("threads 1", "peak_gflops")),
    Claim(RF, r"a bandwidth of (?P<lo>[\d.]+)–(?P<hi>[\d.]+) GB/s",
          _roofline("threads 1", "bandwidth_gbs")),
    Claim(RF, r"a ridge point between (?P<lo>[\d.]+) and (?P<hi>[\d.]+) FLOP per byte",
          _roofline("threads 1", "ridge_flop_per_byte")),
    Claim(RF, r"with both cores, (?P<lo>[\d.]+)–(?P<hi>[\d.]+) GFLOP/s",
          _roofline("threads 2", "peak_gflops")),
    Claim(RF, r"GFLOP/s and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) GB/s",
          _roofline("threads 2", "bandwidth_gbs")),
    Claim(RF, r"\((?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of their bound in the benchmark, one thread\)",
          _roofline_many([_b0(1, "eager"), _b0(16, "eager")], "fraction_of_bound", "depthwise"), 100),
    Claim(RF, r"depthwise layers took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of the eager model's time",
          _roofline(_b0(16, "eager"), "share_of_time", "depthwise"), 100),
    Claim(RF, r"and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of ONNX Runtime's at batch 16",
          _roofline(_b0(16, "onnxruntime"), "share_of_time", "depthwise"), 100),
    Claim(RF, r"for (?P<lo>[\d.]+)(?P<hi>) % of the FLOPs; the SE blocks",
          _roofline(_b0(16, "eager"), "share_of_flops", "depthwise"), 100),
    Claim(RF, r"took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of the time across paths and batch sizes",
          _roofline_many(B0_PATHS, "share_of_time", "se"), 100),
    Claim(RF, r"The 1×1 convolutions, \d+ % of the FLOPs, took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _one_by_one_time(B0_PATHS), 100),
    Claim(RF, r"at batch 16 they took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of V2-S's time",
          _roofline_many([_b0(16, p, "efficientnetv2-s") for p in ("fused", "onnxruntime")],
                         "share_of_time", "fused"), 100),
    Claim(RF, r"the whole V2-S reached (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of its bound",
          _roofline(_b0(16, "fused", "efficientnetv2-s"), "attained_fraction"), 100),
    Claim(RF, r"fused PyTorch model and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % in ONNX Runtime, against",
          _roofline(_b0(16, "onnxruntime", "efficientnetv2-s"), "attained_fraction"), 100),
    Claim(RF, r"against (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % and [\d.]+–[\d.]+ % for B0",
          _roofline(_b0(16, "fused"), "attained_fraction"), 100),
    Claim(RF, r"against [\d.]+–[\d.]+ % and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % for B0",
          _roofline(_b0(16, "onnxruntime"), "attained_fraction"), 100),
    Claim(RF, r"sits between them: (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_b0(16, "fused", "efficientnet-lite0"), "attained_fraction"), 100),
    Claim(RF, r"sits between them: [\d.]+–[\d.]+ % and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_b0(16, "onnxruntime", "efficientnet-lite0"), "attained_fraction"), 100),
    Claim(RF, r"went from (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % \(eager\)",
          _roofline(_b0(1, "eager"), "attained_fraction"), 100),
    Claim(RF, r"to (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % \(BN folded\) at batch 1",
          _roofline(_b0(1, "folded"), "attained_fraction"), 100),
    Claim(RF, r"from (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % to [\d.]+–[\d.]+ % at batch 16",
          _roofline(_b0(16, "eager"), "attained_fraction"), 100),
    Claim(RF, r"from [\d.]+–[\d.]+ % to (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % at batch 16",
          _roofline(_b0(16, "folded"), "attained_fraction"), 100),
    Claim(RF, r"channels_last gained more, (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_b0(1, "fused"), "attained_fraction"), 100),
    Claim(RF, r"channels_last gained more, [\d.]+–[\d.]+ % and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % \(fused\)",
          _roofline(_b0(16, "fused"), "attained_fraction"), 100),
    Claim(RF, r"reached (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of their bound in the eager model",
          _roofline(_b0(16, "eager"), "fraction_of_bound", "depthwise"), 100),
    Claim(RF, r"(?P<lo>[\d.]+)–(?P<hi>[\d.]+) % with BatchNorm folded",
          _roofline(_b0(16, "folded"), "fraction_of_bound", "depthwise"), 100),
    Claim(RF, r"and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % in channels_last",
          _roofline(_b0(16, "fused"), "fraction_of_bound", "depthwise"), 100),
    Claim(RF, r"they reached (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of their bound in the fused PyTorch model",
          _roofline(_b0(16, "fused", "efficientnetv2-s"), "fraction_of_bound", "fused"), 100),
    Claim(RF, r"where B0's depthwise layers reached (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_b0(16, "fused"), "fraction_of_bound", "depthwise"), 100),
]
for _batch, _col in ((1, 1), (16, 2)):   # the table of attained fractions, column by column
    for _path, _row in (("eager", "eager PyTorch"), ("folded", r"BN folded \(NCHW\)"),
                        ("fused", r"fused \(channels_last\)"), ("onnxruntime", "ONNX Runtime")):
        _cells = r"\| [\d.]+–[\d.]+ % " * (_col - 1)
        CLAIMS.append(Claim(RF, rf"\| {_row} {_cells}\| (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
                            _roofline(_b0(_batch, _path), "attained_fraction"), 100))
_ORT16 = _b0(16, "onnxruntime")
CLAIMS += [
    Claim(RF, r"the first round reached (?P<lo>[\d.]+)(?P<hi>) %",
          lambda: [results("bench_roofline")["rounds"][0]["results"][7]["attained_fraction"]], 100),
    Claim(RF, r"the depthwise layers took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of the time at",
          _roofline(_ORT16, "share_of_time", "depthwise"), 100),
    Claim(RF, r"of the time at (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of their bound, the 1×1",
          _roofline(_ORT16, "fraction_of_bound", "depthwise"), 100),
    Claim(RF, r"the 1×1 expansions (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of the time",
          _roofline(_ORT16, "share_of_time", "expand"), 100),
    Claim(RF, r"of the time at (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % of their bound, the projections",
          _roofline(_ORT16, "fraction_of_bound", "expand"), 100),
    Claim(RF, r"the projections (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_ORT16, "share_of_time", "project"), 100),
    Claim(RF, r"the projections [\d.]+–[\d.]+ % at (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_ORT16, "fraction_of_bound", "project"), 100),
    Claim(RF, r"SE (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % at",
          _roofline(_ORT16, "share_of_time", "se"), 100),
    Claim(RF, r"SE [\d.]+–[\d.]+ % at (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_ORT16, "fraction_of_bound", "se"), 100),
    Claim(RF, r"the time between nodes (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_ORT16, "share_of_time", "other"), 100),
    Claim(RF, r"Lite0, without SE, reached (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % at batch 16",
          _roofline(_b0(16, "onnxruntime", "efficientnet-lite0"), "attained_fraction"), 100),
    Claim(RF, r"V2-S, whose early stages are fused, (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          _roofline(_b0(16, "onnxruntime", "efficientnetv2-s"), "attained_fraction"), 100),
    Claim(RF, r"B0's ONNX Runtime path reached (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % at batch 16",
          lambda: list(results("bench_roofline")["summary"]["paths"][
              "efficientnet-b0 batch 16 onnxruntime threads 2"]["attained_fraction"]), 100),
]


def _b0_batch16_rounds(threads: int = 1) -> list[dict]:
    return [r for rnd in results("bench_roofline")["rounds"] if rnd["ceilings"]["threads"] == threads
            for r in rnd["results"] if r["model"] == "efficientnet-b0" and r["batch"] == 16]


def test_roofline_goal_met_in_two_of_three_rounds():
    """9.2 says ONNX Runtime met the 60 % goal at batch 1, and in two of the three rounds at
    batch 16."""
    text = prose(RF)
    assert "in two of the three rounds at batch 16" in text and "It was met at batch 1" in text
    ort16 = [r["attained_fraction"] for r in _b0_batch16_rounds() if r["path"] == "onnxruntime"]
    ort1 = results("bench_roofline")["summary"]["paths"][_b0(1, "onnxruntime")]["attained_fraction"]
    assert len(ort16) == 3 and sum(f >= 0.6 for f in ort16) == 2 and min(ort1) >= 0.6, (ort16, ort1)
    first = results("bench_roofline")["rounds"][0]["results"][7]
    assert (first["model"], first["batch"], first["path"]) == ("efficientnet-b0", 16, "onnxruntime")


def test_roofline_the_two_layers_that_lose_most():
    """9.2 names stage 3's first expansion and stride-2 depthwise convolution as among the
    three layers that lose most time to their bound at batch 16 in every path and every
    round but one."""
    assert "in every path and every round but one" in prose(RF)
    misses = [r["path"] for r in _b0_batch16_rounds()
              if not {"stages.3.0.expand", "stages.3.0.depthwise"}
              <= {m["layer"] for m in r["most_excess"][:3]}]
    assert len(_b0_batch16_rounds()) == 12 and len(misses) == 1, misses


# --------------------------------------------------------------------------------------
# 9.1 Quantization: benchmarks/bench_lite.py (quartiles over the interleaved rounds)
# --------------------------------------------------------------------------------------
def _calibration(**match) -> Callable[[], list]:
    return lambda: [r for r in results("bench_lite")["calibration"]
                    if all(r[k] == v for k, v in match.items())]


def _agreement(fold: int, per_channel: bool) -> Callable[[], list[float]]:
    return lambda: [r["top1_agreement"] for r in _calibration(
        fold=fold, method="minmax", per_channel=per_channel)()]


def _calibration_seconds(method: str) -> Callable[[], list[float]]:
    """Seconds to calibrate on (and quantize with) all 48 views, per fold."""
    return lambda: [r["seconds"] for r in _calibration(method=method, n_calibration=48,
                                                       per_channel=True)()]


def _histogram_over_minmax() -> list[float]:
    minmax = {r["fold"]: r["seconds"] for r in _calibration(method="minmax", n_calibration=48,
                                                            per_channel=True)()}
    return [r["seconds"] / minmax[r["fold"]] for m in ("entropy", "percentile")
            for r in _calibration(method=m, n_calibration=48, per_channel=True)()]


_UINT8, _S8 = "int8 ONNX Runtime, per-channel", "int8 ONNX Runtime, per-channel, int8 activations"
_TENSOR = "int8 ONNX Runtime, per-tensor"
Q = "09_quantization"
CLAIMS += [
    Claim(Q, r"finds per-channel int8 at (?P<lo>[\d.]+)–(?P<hi>[\d.]+) % agreement",
          _agreement(0, True), 100),
    Claim(Q, r"and per-tensor int8 at (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %\.", _agreement(0, False), 100),
    Claim(Q, r"Both took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as long as MinMax", _histogram_over_minmax),
    Claim(Q, r"\((?P<lo>[\d.]+)–(?P<hi>[\d.]+) s against",
          lambda: _calibration_seconds("entropy")() + _calibration_seconds("percentile")()),
    Claim(Q, r"s against (?P<lo>[\d.]+)–(?P<hi>[\d.]+) s on the shared machine",
          _calibration_seconds("minmax")),
    Claim(Q, r"uint8 activations ran (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast as float32 ONNX "
             r"Runtime at batch 1", _lite_speed(1, 1, _UINT8)),
    Claim(Q, r"and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 16; with both cores",
          _lite_speed(1, 16, _UINT8)),
    Claim(Q, r"with both cores, (?P<lo>[\d.]+)–(?P<hi>[\d.]+) and", _lite_speed(2, 1, _UINT8)),
    Claim(Q, r"with both cores, [\d.]+–[\d.]+ and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times",
          _lite_speed(2, 16, _UINT8)),
    Claim(Q, r"ran only (?P<lo>[\d.]+)–(?P<hi>[\d.]+) and", _lite_speed(1, 1, _S8)),
    Claim(Q, r"ran only [\d.]+–[\d.]+ and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast with one",
          _lite_speed(1, 16, _S8)),
    Claim(Q, r"and with both cores (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 1",
          _lite_speed(2, 1, _S8)),
    Claim(Q, r"times at batch 1 and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 16: no faster",
          _lite_speed(2, 16, _S8)),
    Claim(Q, r"with one thread, (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 1 and [\d.]+–[\d.]+ at",
          _lite_speed(1, 1, _TENSOR)),
    Claim(Q, r"times at batch 1 and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) at batch 16: per-channel",
          _lite_speed(1, 16, _TENSOR)),
    Claim(Q, r"Float32 ONNX Runtime itself was (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast",
          lambda: [1 / v for v in _lite_speed(1, 1, "fuse_for_inference")()]),
    Claim(Q, r"int8 ran (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast as float32 ONNX Runtime on one "
             r"thread in the benchmark",
          lambda: _lite_speed(1, 1, _UINT8)() + _lite_speed(1, 16, _UINT8)()),
    Claim(Q, r"the gain shrinks to (?P<lo>[\d.]+)(?P<hi>) times",
          lambda: _lite_speed(1, 1, _S8)() + _lite_speed(1, 16, _S8)()),
]


# --------------------------------------------------------------------------------------
# 9 Making it fast: benchmarks/bench_deploy.py and bench_inference.py
# --------------------------------------------------------------------------------------
def _median(benchmark: str, name: str, entry: str) -> Callable[[], list[float]]:
    return lambda: [section(benchmark, name)["timings"]["entries"][entry]["time_ratio"]["median"]]


def _memory(name: str, variant: str, what: str = "peak_mib") -> Callable[[], list[float]]:
    def get():
        memory = section("bench_deploy", name)["memory_mib"]
        return [memory[variant][what] / memory["torchvision"][what]]
    return get


def _per_round(name: str, f) -> Callable[[], list[float]]:
    """Quartiles of f(entries, round) over the rounds of a stored timing."""
    def get():
        entries = section("bench_deploy", name)["timings"]["entries"]
        rounds = len(next(iter(entries.values()))["seconds"])
        from statistics import quantiles
        q = quantiles([f(entries, i) for i in range(rounds)], n=4)
        return [q[0], q[2]]
    return get


F = "09_making_it_fast"
_N = r"[\d.]+, "   # one number of a list, to skip
TRAIN_SMALL, TRAIN_FULL = "cpu, train, batch 4, 112x112, 1 threads", "cpu, train, batch 16, 224x224, 2 threads"
FUSED8, FUSED16, FUSED1 = ("cpu, fused, batch 8, 1 threads", "cpu, fused, batch 16, 2 threads",
                           "cpu, fused, batch 1, 2 threads")
LATENCY = "cpu, latency, batch 1, 1 threads"
_FUSED = "ours, fuse_for_inference (+ channels_last)"
_TIME = "time_ratio"


def _onnx(padding: str, batch: int, threads: int) -> Callable[[], list[float]]:
    return _timing("bench_deploy", f"cpu, onnx, {padding} padding, batch {batch}, {threads} threads",
                   "ONNX Runtime")


def _seconds_s(what: str) -> Callable[[], list[float]]:
    return lambda: [section("bench_deploy", "cpu, compile, batch 16, 2 threads")["first_call_s"][what]]


def _rate(entries, i, model, reference):
    macs = section("bench_deploy", LATENCY)["multiply_adds"]
    return ((macs[model] / entries[model]["seconds"][i])
            / (macs[reference] / entries[reference]["seconds"][i]))


CLAIMS += [
    # training step, at the cell's size and at full size
    Claim(F, r"a step took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as long with the plain Swish",
          _timing("bench_deploy", TRAIN_SMALL, "plain", _TIME)),
    Claim(F, r"Swish, (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times with the memory-efficient one",
          _timing("bench_deploy", TRAIN_SMALL, "memory_efficient", _TIME)),
    Claim(F, r"and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times with `nn.SiLU` \(quartiles of five rounds\)",
          _timing("bench_deploy", TRAIN_SMALL, "silu", _TIME)),
    *[Claim(F, rf"during a step was {_N * k}(?P<lo>[\d.]+)(?P<hi>)[ ,]", _memory(TRAIN_SMALL, v))
      for k, v in enumerate(("plain", "memory_efficient"))],
    Claim(F, r"during a step was [\d.]+, [\d.]+ and (?P<lo>[\d.]+)(?P<hi>) times torchvision's",
          _memory(TRAIN_SMALL, "silu")),
    *[Claim(F, rf"peak growth was {_N * k}(?P<lo>[\d.]+)(?P<hi>)[ ,]", _memory(TRAIN_FULL, v))
      for k, v in enumerate(("plain", "memory_efficient"))],
    Claim(F, r"peak growth was [\d.]+, [\d.]+ and (?P<lo>[\d.]+)(?P<hi>) times torchvision's",
          _memory(TRAIN_FULL, "silu")),
    Claim(F, r"for saved tensors of (?P<lo>[\d.]+)(?P<hi>),", _memory(TRAIN_FULL, "plain", "saved_mib")),
    *[Claim(F, rf"the median step took {_N * k}(?P<lo>[\d.]+)(?P<hi>)[ ,]",
            _median("bench_deploy", TRAIN_FULL, v)) for k, v in enumerate(("plain", "memory_efficient"))],
    Claim(F, r"the median step took [\d.]+, [\d.]+ and (?P<lo>[\d.]+)(?P<hi>) times as long",
          _median("bench_deploy", TRAIN_FULL, "silu")),
    # TF padding
    Claim(F, r"took (?P<lo>[\d.]+)(?P<hi>) % of the CPU time at batch 1",
          lambda: [section("bench_inference", "cpu, batch 1, 2 threads")["F_pad_profile"]["share_of_cpu_time"]], 100),
    Claim(F, r"and (?P<lo>[\d.]+)(?P<hi>) % at batch 16, and at batch 16 B0",
          lambda: [section("bench_inference", "cpu, batch 16, 2 threads")["F_pad_profile"]["share_of_cpu_time"]], 100),
    Claim(F, r"with TF padding took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times torchvision's time",
          lambda: [v for e in ("ours (TF same, dynamic)", "ours (TF same, static 224)")
                   for v in _median("bench_inference", "cpu, batch 16, 2 threads", e)()]),
    Claim(F, r"against (?P<lo>[\d.]+)(?P<hi>) times with the same model padded symmetrically",
          _median("bench_inference", "cpu, batch 16, 2 threads", "ours (symmetric)")),
    # folding and layout
    Claim(F, r"made B0 (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast as torchvision's eager model",
          _timing("bench_deploy", FUSED8, "ours, BN folded + SiLU")),
    Claim(F, r"the channels_last layout on top brought it to (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times",
          _timing("bench_deploy", FUSED8, _FUSED)),
    Claim(F, r"`fuse_for_inference\(B0\)` ran (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast as "
             r"torchvision's eager B0 at batch 16", _timing("bench_deploy", FUSED16, _FUSED)),
    Claim(F, r"\((?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 1\), with outputs",
          _timing("bench_deploy", FUSED1, _FUSED)),
    Claim(F, r"\((?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 8 on one thread,",
          _timing("bench_deploy", FUSED8, "torchvision, fuse_for_inference")),
    Claim(F, r"thread, (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 16 on two\)",
          _timing("bench_deploy", FUSED16, "torchvision, fuse_for_inference")),
    Claim(F, r"whose eager time was (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times torchvision's on one thread",
          _timing("bench_deploy", FUSED8, "ours (eager)", _TIME)),
    Claim(F, r"on one thread and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times on two",
          _timing("bench_deploy", FUSED16, "ours (eager)", _TIME)),
    # torch.compile
    Claim(F, r"compiling took (?P<lo>[\d.]+)(?P<hi>) s with an empty cache", _seconds_s("empty")),
    Claim(F, r"and (?P<lo>[\d.]+)(?P<hi>) s with a warm one", _seconds_s("warm")),
    Claim(F, r"for a model that ran (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as long as the eager fused",
          _timing("bench_deploy", "cpu, compile, batch 16, 2 threads",
                  "fuse_for_inference(compile=True)", _TIME)),
    # ONNX Runtime
    Claim(F, r"(?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast at the cell's size, with TF padding",
          _onnx("same", 8, 1)),
    Claim(F, r"one thread; (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times with symmetric padding",
          _onnx("symmetric", 8, 1)),
    Claim(F, r"finds ONNX Runtime (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast as the fused PyTorch",
          lambda: [v for p in ("same", "symmetric") for b in (1, 16) for v in _onnx(p, b, 2)()]),
    Claim(F, r"ran the exported file (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast as the fused",
          lambda: [v for p in ("same", "symmetric") for b, t in ((1, 2), (8, 1), (16, 2))
                   for v in _onnx(p, b, t)()]),
    # latency against counts
    Claim(F, r"it took only (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as long",
          _per_round(LATENCY, lambda e, i: e["resnet50"]["seconds"][i] / e["efficientnet-b0"]["seconds"][i])),
    Claim(F, r"and still took (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times its time",
          _per_round(LATENCY, lambda e, i: e["efficientnet-b3"]["seconds"][i] / e["resnet50"]["seconds"][i])),
    Claim(F, r"ResNet-50 got (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as many multiply-adds done per",
          _per_round(LATENCY, lambda e, i: _rate(e, i, "resnet50", "efficientnet-b0"))),
    Claim(F, r"made B0 (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as fast as torchvision's eager B0 in the",
          _timing("bench_deploy", FUSED8, _FUSED)),
    Claim(F, r"and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times at batch 16 on two\.",
          _timing("bench_deploy", FUSED16, _FUSED)),
]


# --------------------------------------------------------------------------------------
# 7.7 DDP against one process: benchmarks/bench_ddp.py (every seed)
# --------------------------------------------------------------------------------------
def _ddp(kind: str, what: str = "val_accuracy") -> dict[str, float]:
    """{seed: the last epoch's validation accuracy (or training loss)} of one way of training."""
    sections = results("bench_ddp")["sections"]
    name = next((n for n in sections if n.endswith(f", {kind}")), None)
    assert name, f"bench_ddp.json has no runs of {kind!r}: {', '.join(sections)}"
    runs = sections[name]["results"]["runs"]
    return {seed: (r[what] if what == "val_accuracy" else r[what][-1]) for seed, r in runs.items()}


D = "07_training_at_scale"
CLAIMS += [
    Claim(D, r"with `--batch-size 128` reached (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          lambda: list(_ddp("one process").values()), 100),
    Claim(D, r"two processes with `--batch-size 64` (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %",
          lambda: list(_ddp("DDP").values()), 100),
    Claim(D, r"`--sync-bn` (?P<lo>[\d.]+)–(?P<hi>[\d.]+) %\.", lambda: list(_ddp("DDP sync-bn").values()), 100),
    Claim(D, r"of the same seed, by (?P<lo>[\d.]+)–(?P<hi>[\d.]+) points",
          lambda: [_ddp("one process")[s] - a for s, a in _ddp("DDP").items()], 100),
    Claim(D, r"a higher training loss \((?P<lo>[\d.]+)–(?P<hi>[\d.]+) against",
          lambda: list(_ddp("DDP", "train_loss").values())),
    Claim(D, r"against (?P<lo>[\d.]+)–(?P<hi>[\d.]+)\)", lambda: list(_ddp("one process", "train_loss").values())),
    Claim(D, r"move the single process by (?P<lo>[\d.]+)(?P<hi>) points",
          lambda: [max(_ddp("one process").values()) - min(_ddp("one process").values())], 100),
]


def test_ddp_direction_holds_for_every_seed():
    """7.7: with every seed DDP ends below one process, and --sync-bn matches or beats it."""
    assert "while `--sync-bn` matched or beat it" in prose(D)
    one, ddp, sync = _ddp("one process"), _ddp("DDP"), _ddp("DDP sync-bn")
    assert len(one) >= 3 and one.keys() == ddp.keys() == sync.keys()
    assert all(ddp[s] < one[s] <= sync[s] for s in one), (one, ddp, sync)


# --------------------------------------------------------------------------------------
# 6 Fused-MBConv against MBConv: benchmarks/bench_blocks.py
# --------------------------------------------------------------------------------------
def _blocks(*stages: str) -> Callable[[], list[float]]:
    """Quartiles of the time ratio Fused/MBConv of the named blocks."""
    return lambda: [v for s in stages for v in _timing(
        "bench_blocks", f"cpu, {s}, batch 8, 1 threads", "Fused-MBConv", _TIME)()]


V2 = "06_efficientnetv2"
CLAIMS += [
    Claim(V2, r"stages 2 and 3 \((?P<lo>[\d.]+)–(?P<hi>[\d.]+) times MBConv's time\)",
          _blocks("stage 2, first block", "stage 3, first block")),
    Claim(V2, r"of stage 4 \((?P<lo>[\d.]+)–(?P<hi>[\d.]+) times\)", _blocks("stage 4, first block")),
    Claim(V2, r"stages 5 and 6 \((?P<lo>[\d.]+)–(?P<hi>[\d.]+) times as long\)",
          _blocks("stage 5, later block", "stage 6, later block")),
]


# --------------------------------------------------------------------------------------
# 5 Latency and memory: benchmarks/bench_inference.py --eager-latency
# --------------------------------------------------------------------------------------
def _eager(batch: int) -> dict:
    return section("bench_inference", "cpu, eager latency (chapter 5), 1 threads")["timings"][
        f"batch {batch}"]["entries"]


def _batching(model: str) -> Callable[[], list[float]]:
    """Images per second at batch 8 over those at batch 1 (medians)."""
    return lambda: [(8 / _eager(8)[model]["median_ms"]) / (1 / _eager(1)[model]["median_ms"])]


def _eager_memory(a: str, b: str) -> Callable[[], list[float]]:
    def get():
        m = section("bench_inference", "cpu, eager latency (chapter 5), 1 threads")["memory_mib"]
        return [m[a] / m[b]]
    return get


B5 = "05_b0_to_b7"
CLAIMS += [
    Claim(B5, r"B4 needed (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times ResNet-50's latency at batch 1",
          lambda: quartiles(_eager(1)["efficientnet-b4"]["time_ratio"])),
    Claim(B5, r"B0 and B2 got through (?P<lo>[\d.]+)(?P<hi>) and", _batching("efficientnet-b0")),
    Claim(B5, r"B0 and B2 got through [\d.]+ and (?P<lo>[\d.]+)(?P<hi>) times", _batching("efficientnet-b2")),
    Claim(B5, r"and ResNet-50 (?P<lo>[\d.]+)(?P<hi>) times \(the medians", _batching("resnet50")),
    Claim(B5, r"B0 needed (?P<lo>[\d.]+)(?P<hi>) times as much at batch 8 as at batch 1",
          _eager_memory("efficientnet-b0, batch 8", "efficientnet-b0, batch 1")),
    Claim(B5, r"B4 needed (?P<lo>[\d.]+)(?P<hi>) times ResNet-50's peak",
          _eager_memory("efficientnet-b4, batch 1", "resnet50, batch 1")),
]


def _fused_over_mbconv_params() -> list[float]:
    """Parameters of Fused-MBConv over MBConv for the blocks of chapter 6's table (the
    settings stored with bench_blocks' results), counted on the meta device."""
    from effnet_tutorial import count_params
    from effnet_tutorial.blocks import FusedMBConv, MBConv
    ratios = []
    for s in results("bench_blocks")["sections"].values():
        c = s["results"]["settings"]
        with torch.device("meta"):
            mb = MBConv(c["in"], c["out"], 3, c["stride"], c["expand"], se_ratio=None)
            fu = FusedMBConv(c["in"], c["out"], 3, c["stride"], c["expand"])
        ratios.append(count_params(fu) / count_params(mb))
    return ratios


CLAIMS += [
    Claim(V2, r"and (?P<lo>[\d.]+)–(?P<hi>[\d.]+) times the parameters everywhere", _fused_over_mbconv_params),
]
