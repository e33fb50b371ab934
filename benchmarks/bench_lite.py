"""EfficientNet-Lite0 with its ImageNet weights on the CPU, in float32 and int8 (chapter 9).

    python benchmarks/bench_lite.py [--sections speed calibration] [--repeats 20]
                                    [--batch-sizes 1 16] [--threads N]

speed        Lite0 as float32 PyTorch (eager), fuse_for_inference, float32 ONNX Runtime
             and int8 ONNX Runtime (QDQ, per-channel and per-tensor weight scales, uint8
             activations, and per-channel with int8 activations, all calibrated on 48 views
             of four sample photos), timed in one process, interleaved
             (measure.time_interleaved), at each batch size. Each round gives every variant's
             time divided by float32 ONNX Runtime's in the same round; the table keeps the
             median and the quartiles of those ratios over the rounds, and the file sizes.
calibration  Top-1 agreement of int8 with float32 ONNX Runtime on the 48 views of the four
             photos *not* used for calibration (both ways round: photos 0-3 calibrate and
             4-7 evaluate, then the reverse), for calibration sets of 1, 4, 12 and 48 views,
             the three calibration methods and both weight scales. Deterministic on a given
             CPU; it takes a few minutes (the histogram methods are slow).

Writes benchmarks/results/bench_lite.json (with the machine, the versions and the thread
count) and prints it. Speed results are kept per thread count (--threads), so a run with
one thread and a run with all cores can stand side by side; a re-run replaces the entry of
its own thread count and, with --sections speed, keeps the calibration results.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import sys
import tempfile
import time

import torch

from effnet_tutorial import EfficientNet
from effnet_tutorial.deploy import export_onnx, fuse_for_inference, onnx_session
from effnet_tutorial.measure import time_interleaved
from effnet_tutorial.imagenet import sample_photos
from effnet_tutorial.quantize import (CALIBRATION_METHODS, photo_views, quantize_int8,
                                      run_onnx, runtime_op_counts, top1_agreement)
from machine import machine_info  # noqa: E402  (benchmarks/machine.py)
from store import spread  # noqa: E402  (benchmarks/store.py)

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "bench_lite.json"
REFERENCE = "float32 ONNX Runtime"


def views_by_photo() -> dict[str, torch.Tensor]:
    return {name: photo_views(p) for name, p in sample_photos().items()}


def bench_speed(args, model, float_path, views, folder) -> dict:
    names = list(views)
    calibration = torch.cat([views[n] for n in names[:4]])              # (48, 3, 224, 224)
    cache = folder / "ranges.json"
    int8 = {pc: quantize_int8(float_path, folder / f"int8_{pc}.onnx", calibration, pc,
                              calibration_cache=cache) for pc in (True, False)}
    int8_s8 = quantize_int8(float_path, folder / "int8_s8.onnx", calibration, True,
                            activations="int8", calibration_cache=cache)
    sessions = {REFERENCE: onnx_session(float_path),
                "int8 ONNX Runtime, per-channel": onnx_session(int8[True]),
                "int8 ONNX Runtime, per-tensor": onnx_session(int8[False]),
                "int8 ONNX Runtime, per-channel, int8 activations": onnx_session(int8_s8)}
    fused = fuse_for_inference(model)
    sizes = {"float32": float_path.stat().st_size, "int8 per-channel": int8[True].stat().st_size,
             "int8 per-tensor": int8[False].stat().st_size,
             "int8 per-channel, int8 activations": int8_s8.stat().st_size}
    result = {"file_bytes": sizes, "batches": {},
              "runtime_ops": {"int8 per-channel (uint8 activations)": runtime_op_counts(int8[True]),
                              "int8 per-channel, int8 activations": runtime_op_counts(int8_s8)}}
    held_out = torch.cat([views[n] for n in names[4:]])
    for bs in args.batch_sizes:
        x = held_out[:bs].contiguous()                              # real images, (bs, 3, 224, 224)
        feed = x.numpy()
        fns = {"float32 PyTorch (eager)": lambda: model(x),
               "fuse_for_inference": lambda: fused(x)}
        fns.update({name: (lambda s=s: s.run(None, {"images": feed})) for name, s in sessions.items()})
        with torch.inference_mode():
            times = time_interleaved(fns, args.repeats, warmup=2)
        ref = times[REFERENCE]
        rows = {}
        for name, ts in times.items():
            rows[name] = {"median_ms": 1e3 * statistics.median(ts),
                          "time_ratio_to_float32_ort": spread([t / r for t, r in zip(ts, ref)]),
                          "speedup_over_float32_ort": spread([r / t for t, r in zip(ts, ref)])}
        result["batches"][str(bs)] = {"rounds": len(ref), "variants": rows}
        print(f"batch {bs:3d}: " + ", ".join(
            f"{k} {v['median_ms']:.1f} ms ({v['speedup_over_float32_ort']['median']:.2f}x)"
            for k, v in rows.items()), flush=True)
    return result


def bench_calibration(args, float_path, views, folder) -> list[dict]:
    names = list(views)
    folds = [(names[:4], names[4:]), (names[4:], names[:4])]
    f32 = onnx_session(float_path)
    # Each calibration set: (images, the photos they come from).
    sets = {
        "1 view: the centre crop of 1 photo": lambda cal: (views[cal[0]][:1], cal[:1]),
        "4 views: the centre crops of 4 photos": lambda cal: (
            torch.stack([views[n][0] for n in cal]), cal),
        "12 views of 1 photo": lambda cal: (views[cal[0]], cal[:1]),
        "48 views: 12 of each of 4 photos": lambda cal: (torch.cat([views[n] for n in cal]), cal),
    }
    rows = []
    for fold, (cal_names, eval_names) in enumerate(folds):
        held_out = torch.cat([views[n] for n in eval_names])          # (48, 3, 224, 224)
        reference = run_onnx(f32, held_out)
        for set_name, make in sets.items():
            calibration, photos = make(cal_names)
            for method in CALIBRATION_METHODS:
                cache = folder / f"cache_{fold}_{len(calibration)}_{method}.json"
                for per_channel in (True, False):
                    out = folder / "calibrated.onnx"
                    calibrating = not cache.exists()
                    t0 = time.perf_counter()
                    quantize_int8(float_path, out, calibration, per_channel, method=method,
                                  calibration_cache=cache)
                    seconds = time.perf_counter() - t0
                    got = run_onnx(out, held_out)
                    row = {"fold": fold, "calibration_set": set_name,
                           "calibrated_on": photos, "evaluated_on": eval_names,
                           "n_calibration": len(calibration), "n_evaluated": len(held_out),
                           "method": method, "per_channel": per_channel,
                           "top1_agreement": top1_agreement(reference, got),
                           "mean_relative_logit_error": ((got - reference).norm(dim=1)
                                                         / reference.norm(dim=1)).mean().item(),
                           "seconds": seconds, "seconds_include_calibration": calibrating}
                    rows.append(row)
                    print(f"fold {fold} {set_name:38s} {method:10s} "
                          f"{'per-channel' if per_channel else 'per-tensor ':11s} "
                          f"agreement {row['top1_agreement']:.3f} "
                          f"({seconds:.1f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["speed", "calibration"],
                        choices=["speed", "calibration"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    print(json.dumps(info), flush=True)
    results = {"benchmark": "benchmarks/bench_lite.py", "command": " ".join(sys.argv[1:]),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": info, "repeats": args.repeats, "model": "efficientnet-lite0, ImageNet "
               "weights, 224x224, inputs: views of the sample photos (quantize.photo_views)"}
    threads = f"{torch.get_num_threads()} threads"
    if args.output.exists():   # keep what this run does not measure again
        old = json.loads(args.output.read_text())
        if "calibration" in old and "calibration" not in args.sections:
            results["calibration"] = old["calibration"]
        results["speed"] = {k: v for k, v in old.get("speed", {}).items()
                            if k.endswith(" threads")
                            and not (k == threads and "speed" in args.sections)}
    model = EfficientNet.from_pretrained("efficientnet-lite0")
    views = views_by_photo()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        float_path = export_onnx(model, folder / "lite0.onnx", 224)
        if "speed" in args.sections:   # one entry per thread count
            speed = bench_speed(args, model, float_path, views, folder)
            speed["machine"] = info
            results.setdefault("speed", {})[threads] = speed
        if "calibration" in args.sections:
            results["calibration"] = bench_calibration(args, float_path, views, folder)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
