"""The measured roofline of chapter 9: how close each inference path gets to this machine's limit.

    python benchmarks/bench_roofline.py [--batch-sizes 1 16] [--rounds 3] [--repeats 5]
                                        [--models efficientnet-b0 efficientnetv2-s
                                         efficientnet-lite0] [--threads 1 N]
                                        [--output benchmarks/results/bench_roofline.json]

For each thread count (default: 1 and every core; ONNX Runtime gets as many intra-op threads
as PyTorch), each round measures the two ceilings of the machine (effnet_tutorial.roofline.measure_ceilings:
the fastest float32 matrix product of sides 512, 1024 and 2048, STREAM copy and triad on
256 MiB arrays), then, for every
model and batch size at 224x224 pixels, every path:

eager         the package's model as it is (BatchNorm, Swish and TF padding as separate ops);
folded        fuse_for_inference(model, channels_last=False): BatchNorm folded, nn.SiLU,
              padding in the kernels, in PyTorch's default (NCHW) layout;
fused         fuse_for_inference(model): the same in channels_last (NHWC) layout;
onnxruntime   ONNX Runtime on deploy.export_onnx's file (CPU only).

(B0 runs every path; the other models only fused and onnxruntime.) For each path: the whole
network's time (measure.time_interleaved, all paths of one model and batch taking turns,
median of ``--repeats`` rounds), the per-layer times (roofline.profile_layers, or
profile_onnx for ONNX Runtime), and from them the attained fraction of the roofline (the sum
of the per-layer bound times over the measured time), the shares of time and FLOPs per role,
and the layers that lose most time to their bound. FLOPs are 2 per multiply-add, for the
ceilings and the layers alike. The results, with the machine, the versions and the threads,
go to a JSON file; the summary gives each number's range over the rounds. Every model is
randomly initialised (the package's official initialisers); no weights are downloaded.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from effnet_tutorial import EfficientNet  # noqa: E402
from effnet_tutorial.deploy import export_onnx, fuse_for_inference, onnx_session  # noqa: E402
from effnet_tutorial.measure import time_interleaved  # noqa: E402
from effnet_tutorial.roofline import (attained_fraction, layer_table, measure_ceilings,  # noqa: E402
                                      profile_layers, profile_onnx, role_shares, roofline)
from machine import machine_info  # noqa: E402  (benchmarks/machine.py)

IMAGE_SIZE = 224
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                              "bench_roofline.json")


def build_paths(name: str, device: str, onnx_dir: str, all_paths: bool) -> tuple[torch.nn.Module, dict]:
    """The model and its inference paths: {path: (callable module or session, kind)}."""
    torch.manual_seed(0)
    model = EfficientNet.from_name(name).eval()
    paths = {}
    if all_paths:
        paths["eager"] = model.to(device)
        paths["folded"] = fuse_for_inference(model, channels_last=False)
    paths["fused"] = fuse_for_inference(model)
    if device == "cpu":
        path = os.path.join(onnx_dir, f"{name}.onnx")
        # Unchecked: tests/test_deploy.py checks export_onnx. Random weights make V2-S's
        # activations grow to thousands, and float32 rounding then differs by about 2 % of
        # the output between any two orders of summation (fuse_for_inference's too).
        export_onnx(model.cpu(), path, IMAGE_SIZE, check=False)
        paths["onnxruntime"] = path
    return model.to(device), paths


def run_round(args, device: str, onnx_dir: str, models: dict) -> dict:
    ceilings = measure_ceilings(device)
    record = {"ceilings": {"peak_gflops": ceilings.peak_gflops,
                           "bandwidth_gbs": ceilings.bandwidth_gbs,
                           "copy_gbs": ceilings.copy_gbs, "triad_gbs": ceilings.triad_gbs,
                           "ridge_flop_per_byte": ceilings.ridge, "threads": ceilings.threads,
                           "device": ceilings.device},
              "results": []}
    print(f"ceilings: peak {ceilings.peak_gflops:.1f} GFLOP/s, bandwidth "
          f"{ceilings.bandwidth_gbs:.1f} GB/s (copy {ceilings.copy_gbs:.1f}, triad "
          f"{ceilings.triad_gbs:.1f}), ridge {ceilings.ridge:.1f} FLOP/byte, "
          f"{ceilings.threads} threads", flush=True)
    for name, (model, paths) in models.items():
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, device=device)
            table = layer_table(model, tuple(x.shape))
            sessions = {p: onnx_session(v) for p, v in paths.items() if isinstance(v, str)}
            feed = {"images": x.cpu().numpy()}
            fns = {p: ((lambda s=sessions[p]: s.run(None, feed)) if p in sessions
                       else (lambda m=m: m(x))) for p, m in paths.items()}
            with torch.inference_mode():
                times = time_interleaved(fns, repeats=args.repeats, warmup=1)
            for p, target in paths.items():
                seconds = (profile_onnx(target, x, model, repeats=3) if p in sessions
                           else profile_layers(target, x, repeats=3))
                roof = roofline(table, seconds, ceilings)
                total = statistics.median(times[p])
                shares = role_shares(roof)
                layers = roof[roof["role"] != "other"]
                worst = layers.nlargest(3, "excess_seconds")
                result = {
                    "model": name, "batch": batch, "image_size": IMAGE_SIZE, "path": p,
                    "seconds": total, "seconds_rounds": times[p],
                    "gflops_network": float(table["flops"].sum()) / total / 1e9,
                    "bound_seconds": float(roof["bound_seconds"].sum()),
                    "attained_fraction": attained_fraction(roof, total),
                    "profiled_seconds": float(roof["seconds"].sum()),
                    "role_shares": {role: {k: (None if v != v else float(v)) for k, v in row.items()}
                                    for role, row in shares.iterrows()},
                    "memory_bound_layers": int((layers["bound"] == "memory").sum()),
                    "layers": int(len(layers)),
                    "most_excess": [{"layer": n, "role": r["role"], "excess_seconds": float(r["excess_seconds"]),
                                     "fraction": float(r["fraction"]), "intensity": float(r["intensity"])}
                                    for n, r in worst.iterrows()],
                }
                record["results"].append(result)
                print(f"{name:18s} batch {batch:3d} {p:12s} {1e3 * total:9.1f} ms  "
                      f"{result['gflops_network']:6.1f} GFLOP/s  attained fraction "
                      f"{result['attained_fraction']:.2f}  most excess: "
                      f"{', '.join(w['layer'] for w in result['most_excess'])}", flush=True)
    return record


def summarise(rounds: list[dict]) -> dict:
    """Each number's [min, max] over the rounds."""
    def span(values):
        values = [v for v in values if v is not None]
        return [min(values), max(values)] if values else None

    summary = {"ceilings": {}, "paths": {}}
    for threads in sorted({r["ceilings"]["threads"] for r in rounds}):
        mine = [r for r in rounds if r["ceilings"]["threads"] == threads]
        summary["ceilings"][f"threads {threads}"] = {
            k: span([r["ceilings"][k] for r in mine])
            for k in ("peak_gflops", "bandwidth_gbs", "copy_gbs", "triad_gbs", "ridge_flop_per_byte")}
    keys = {(r["ceilings"]["threads"], res["model"], res["batch"], res["path"])
            for r in rounds for res in r["results"]}
    for threads, model, batch, path in sorted(keys):
        found = [res for r in rounds for res in r["results"] if r["ceilings"]["threads"] == threads
                 and (res["model"], res["batch"], res["path"]) == (model, batch, path)]
        roles = sorted({role for res in found for role in res["role_shares"]})
        summary["paths"][f"{model} batch {batch} {path} threads {threads}"] = {
            "seconds": span([res["seconds"] for res in found]),
            "gflops_network": span([res["gflops_network"] for res in found]),
            "attained_fraction": span([res["attained_fraction"] for res in found]),
            "share_of_time": {role: span([res["role_shares"].get(role, {}).get("share of time")
                                          for res in found]) for role in roles},
            "share_of_flops": {role: span([res["role_shares"].get(role, {}).get("share of FLOPs")
                                           for res in found]) for role in roles},
            "fraction_of_bound": {role: span([res["role_shares"].get(role, {}).get("fraction of bound")
                                              for res in found]) for role in roles},
            "most_excess": sorted({w["layer"] for res in found for w in res["most_excess"]}),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds per timing")
    parser.add_argument("--models", nargs="+",
                        default=["efficientnet-b0", "efficientnetv2-s", "efficientnet-lite0"])
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch.set_num_threads values to run (default: 1 and every core)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    threads = list(dict.fromkeys(args.threads or [1, torch.get_num_threads()]))
    info = machine_info()
    print(json.dumps(info), flush=True)
    start = time.time()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-roofline-") as onnx_dir:
        models = {name: build_paths(name, args.device, onnx_dir, all_paths=(name == args.models[0]))
                  for name in args.models}
        for n in threads:
            torch.set_num_threads(n)
            for r in range(args.rounds):
                print(f"--- {n} thread(s), round {r + 1} of {args.rounds}", flush=True)
                rounds.append(run_round(args, args.device, onnx_dir, models))
    info["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result = {"benchmark": "bench_roofline", "command": " ".join(sys.argv), "machine": info,
              "settings": {"batch_sizes": args.batch_sizes, "rounds": args.rounds,
                           "repeats": args.repeats, "image_size": IMAGE_SIZE,
                           "models": args.models, "device": args.device, "threads": threads,
                           "flops": "2 per multiply-add, for the ceilings and the layers"},
              "wall_seconds": time.time() - start,
              "summary": summarise(rounds), "rounds": rounds}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=1)
    print(f"written {args.output} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
