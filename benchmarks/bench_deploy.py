"""Deployment benchmarks of chapter 9: fused model, ONNX Runtime, training steps, torch.compile.

    python benchmarks/bench_deploy.py [--sections fused onnx train latency compile] [--repeats 10]
                                      [--batch-sizes 1 16] [--batch 16] [--threads N]

fused    fuse_for_inference(B0) (BatchNorm folded, nn.SiLU, channels_last) against
         torchvision's eager B0, with the steps one at a time; goal >= 2.0x at batch 16.
onnx     ONNX Runtime on the exported B0 against the fused PyTorch model, for symmetric
         padding (torchvision's) and TF "same" padding (the package's default).
train    one training step (forward, cross-entropy, backward, SGD step) of B0 at 224
         pixels for each Swish variant against torchvision's: time (interleaved, one
         process) and peak memory (each variant in a fresh subprocess: growth of the peak
         resident set during one step on a CPU, torch.cuda.max_memory_allocated on a GPU),
         next to the bytes autograd saves for backward.
latency  one image (batch 1, channels_last) through B0-B3 and V2-S, each fused
         (fuse_for_inference, symmetric padding), and ResNet-50 fused with torch.fx's
         fuse, interleaved: each model's time over B0's and its multiply-adds per second
         (chapter 9's latency table). Not run by default.
compile  torch.compile of the fused B0: the time of the first call (compiling) with an
         empty Inductor cache (a temporary one, as on a fresh machine) and again with the
         cache that filled, and the compiled model against the fused eager one. Minutes
         on a small CPU; not run by default.

Timed pairs run in one process, interleaved, and are reported as the median of the
per-round ratios, so a change of machine load affects both sides alike. Every model
computes on the same (torchvision-initialised) weights.

Writes benchmarks/results/bench_deploy.json (benchmarks/store.py), one entry per section,
device, batch and thread count; a run replaces only the entries it measured again.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_inference import machine, print_times, section_name, time_pair  # noqa: E402
from store import save, spread, timing_table  # noqa: E402

from effnet_tutorial import EfficientNet, saved_tensors  # noqa: E402
from effnet_tutorial.deploy import (export_onnx, fuse_for_inference,  # noqa: E402
                                    max_relative_error, onnx_session, replace_swish)
from effnet_tutorial.measure import median_ratios, peak_memory_mib, time_interleaved  # noqa: E402
from effnet_tutorial.weights import load_source_state_dict, source_config  # noqa: E402

SWISH_VARIANTS = ("plain", "memory_efficient", "silu")


def shared_models(device: str = "cpu", padding: str = "symmetric"):
    """torchvision's B0 (random init) and ours with the same weights."""
    torch.manual_seed(0)
    tv = torchvision.models.efficientnet_b0()
    ours = load_source_state_dict(EfficientNet(source_config("efficientnet-b0", "torchvision")),
                                  tv.state_dict(), "torchvision")
    if padding != "symmetric":  # the same weights in a TF-"same" model (dynamic padding)
        same = EfficientNet.from_name("efficientnet-b0", padding=padding)
        same.load_state_dict(ours.state_dict())
        ours = same
    return tv.to(device).eval(), ours.to(device).eval()


# --------------------------------------------------------------------------------------
def bench_fused(args, device: str) -> dict:
    tv, ours = shared_models(device)
    fused_name = "ours, fuse_for_inference (+ channels_last)"
    models = {
        "torchvision (eager)": tv,
        "ours (eager)": ours,
        "ours, BN folded + SiLU": fuse_for_inference(ours, channels_last=False),
        fused_name: fuse_for_inference(ours),
        "torchvision, fuse_for_inference": fuse_for_inference(tv),
    }
    results = {}
    for bs in args.batch_sizes:
        x = torch.randn(bs, 3, 224, 224, device=device)
        errors = {}
        with torch.inference_mode():
            ref = tv(x)
            for name in ("ours (eager)", fused_name, "torchvision, fuse_for_inference"):
                errors[name] = err = max_relative_error(models[name](x), ref)
                print(f"{device} batch {bs:3d}  {name}: largest difference to torchvision's "
                      f"eager output {err:.1e} of the largest output")
        times = time_pair(models, x, args.repeats)
        print_times(times, "torchvision (eager)", f"{device} batch {bs:3d}  ")
        speedup = 1 / median_ratios(times, "torchvision (eager)")[fused_name]
        print(f"{device} batch {bs:3d}  fuse_for_inference(B0) is {speedup:.2f}x as fast as "
              "torchvision's eager B0")
        results[section_name(device, f"fused, batch {bs}")] = {
            "batch": bs, "relative_differences_to_torchvision": errors,
            "timings": timing_table(times, "torchvision (eager)")}
    return results


# --------------------------------------------------------------------------------------
def bench_onnx(args, device: str) -> dict:
    results = {}
    for padding in ("symmetric", "same"):
        _, ours = shared_models("cpu", padding)
        fused = fuse_for_inference(ours)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "b0.onnx")
            t0 = time.perf_counter()
            export_onnx(ours, path, 224)  # checked against ONNX Runtime to 1e-4 inside
            export_s, mib = time.perf_counter() - t0, os.path.getsize(path) / 2**20
            print(f"cpu  {padding:9s} export_onnx(B0, 224, dynamic batch) + check: "
                  f"{export_s:.1f} s, {mib:.1f} MiB")
            session = onnx_session(path)
            for bs in args.batch_sizes:
                x = torch.randn(bs, 3, 224, 224)
                feed = {"images": x.numpy()}
                with torch.inference_mode():
                    got = torch.from_numpy(session.run(None, feed)[0])
                    err = max_relative_error(got, fused(x))
                    print(f"cpu  {padding:9s} batch {bs:3d}  ONNX Runtime vs fused: largest "
                          f"difference {err:.1e} of the largest output")
                    times = time_interleaved({"fuse_for_inference (PyTorch)": lambda: fused(x),
                                              "ONNX Runtime": lambda: session.run(None, feed)},
                                             args.repeats, warmup=2)
                print_times(times, "fuse_for_inference (PyTorch)",
                            f"cpu  {padding:9s} batch {bs:3d}  ")
                results[section_name("cpu", f"onnx, {padding} padding, batch {bs}")] = {
                    "batch": bs, "padding": padding, "export_and_check_s": export_s,
                    "file_mib": mib, "relative_difference_to_fused": err,
                    "timings": timing_table(times, "fuse_for_inference (PyTorch)")}
    return results


# --------------------------------------------------------------------------------------
def _training_model(variant: str, device: str):
    tv, ours = shared_models(device)
    model = tv if variant == "torchvision" else replace_swish(ours, variant)
    return model.train()


def _step_fn(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def memory_child(variant: str, batch: int, size: int, device: str) -> None:
    """Run in a fresh process: peak memory of one training step after one warm-up step."""
    torch.manual_seed(0)
    model = _training_model(variant, device)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    step = _step_fn(model, x, y)
    step()  # optimizer state and allocator warm-up
    peak = peak_memory_mib(step, device)   # CUDA allocator's peak, or the CPU's peak RSS growth
    params = list(model.parameters()) + list(model.buffers())
    saved, out = saved_tensors(model, x, exclude=params)
    del out
    print(json.dumps({"variant": variant, "peak_mib": peak, "saved_mib": saved.nbytes / 2**20}))


def bench_train(args, device: str) -> dict:
    bs, size = args.batch, args.size
    print(f"{device} training step of B0, batch {bs}, {size}x{size}, SGD with momentum")
    variants = ["torchvision", *SWISH_VARIANTS]
    memory = {}
    threads = ["--threads", str(args.threads)] if args.threads else []
    for v in variants:
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", v, "--batch", str(bs),
               "--size", str(size), "--device", device, *threads]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        memory[v] = json.loads(out.strip().splitlines()[-1])
    what = "peak CUDA memory" if device == "cuda" else "peak RSS growth"
    ref = memory["torchvision"]
    for v in variants:
        m = memory[v]
        print(f"{device} {v:18s} {what} {m['peak_mib']:7.0f} MiB "
              f"({m['peak_mib'] / ref['peak_mib']:.2f}x torchvision's), "
              f"saved for backward {m['saved_mib']:6.0f} MiB "
              f"({m['saved_mib'] / ref['saved_mib']:.2f}x)")
    torch.manual_seed(0)
    x = torch.randn(bs, 3, size, size, device=device)
    y = torch.randint(0, 1000, (bs,), device=device)
    steps = {v: _step_fn(_training_model(v, device), x, y) for v in variants}
    times = time_interleaved(steps, args.train_repeats, warmup=1)
    print_times(times, "torchvision", f"{device} step time  ")
    return {section_name(device, f"train, batch {bs}, {size}x{size}"): {
        "batch": bs, "image_size": size, "memory_measure": what,
        "memory_mib": memory, "timings": timing_table(times, "torchvision")}}


# --------------------------------------------------------------------------------------
LATENCY_MODELS = ("efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3",
                  "efficientnetv2-s")


def bench_latency(args, device: str) -> dict:
    """Chapter 9's latency table: batch 1 at each model's native size, fastest form."""
    from torch.fx.experimental.optimization import fuse as fx_fuse

    from effnet_tutorial import count_flops
    torch.manual_seed(0)
    models, inputs, macs = {}, {}, {}
    for name in LATENCY_MODELS:
        size = EfficientNet.get_image_size(name)
        models[name] = fuse_for_inference(EfficientNet.from_name(name, padding="symmetric").to(device))
        inputs[name] = torch.randn(1, 3, size, size, device=device).contiguous(
            memory_format=torch.channels_last)
        macs[name] = count_flops(name)
    resnet = torchvision.models.resnet50().eval()
    macs["resnet50"] = count_flops(resnet, (1, 3, 224, 224))
    models["resnet50"] = fx_fuse(resnet.to(device)).to(memory_format=torch.channels_last)
    inputs["resnet50"] = torch.randn(1, 3, 224, 224, device=device).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode():
        times = time_interleaved({n: (lambda m=m, x=inputs[n]: m(x)) for n, m in models.items()},
                                 args.repeats, warmup=2)
    print_times(times, "efficientnet-b0", f"{device} batch   1  ")
    table = timing_table(times, "efficientnet-b0")
    gmacs = {}
    for name, ts in times.items():
        rates = [macs[name] / t / 1e9 for t in ts]
        gmacs[name] = spread(rates)
        print(f"{device} {name:18s} {gmacs[name]['median']:6.2f} G multiply-adds per second")
    b0_rates = [macs["efficientnet-b0"] / t for t in times["efficientnet-b0"]]
    rate_over_b0 = {n: spread([macs[n] / t / r for t, r in zip(ts, b0_rates)])
                    for n, ts in times.items()}
    return {section_name(device, "latency, batch 1"): {
        "multiply_adds": macs, "timings": table, "g_multiply_adds_per_s": gmacs,
        "rate_over_b0": rate_over_b0}}


# --------------------------------------------------------------------------------------
def bench_compile(args, device: str) -> dict:
    """Compile time with an empty Inductor cache (a fresh machine) and with the cache the
    first compile filled, then the compiled model against the fused eager one."""
    import logging
    import shutil
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA" noise
    cache = tempfile.mkdtemp(prefix="inductor-cache-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # read at each use: nothing compiled yet
    _, ours = shared_models(device)
    fused = fuse_for_inference(ours)
    x = torch.randn(args.batch, 3, 224, 224, device=device)
    first_call_s, errors = {}, {}
    try:
        for cache_state in ("empty", "warm"):
            torch._dynamo.reset()  # forget in-memory compiled code; the disk cache stays
            compiled = fuse_for_inference(ours, compile=True)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = compiled(x)
                seconds = time.perf_counter() - t0
                err = max_relative_error(out, fused(x))
            first_call_s[cache_state], errors[cache_state] = seconds, err
            print(f"{device} batch {args.batch:3d}  first call of fuse_for_inference(B0, "
                  f"compile=True), Inductor cache {cache_state}: {seconds:.1f} s; largest "
                  f"difference to the eager fused model {err:.1e} of the largest output")
        models = {"fuse_for_inference (eager)": fused,
                  "fuse_for_inference(compile=True)": compiled}
        times = time_pair(models, x, args.repeats)
        print_times(times, "fuse_for_inference (eager)", f"{device} batch {args.batch:3d}  ")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {section_name(device, f"compile, batch {args.batch}"): {
        "batch": args.batch, "first_call_s": first_call_s,
        "relative_difference_to_fused": errors,
        "timings": timing_table(times, "fuse_for_inference (eager)")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["fused", "onnx", "train"],
                        choices=["fused", "onnx", "train", "latency", "compile"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--train-repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16],
                        help="inference batch sizes")
    parser.add_argument("--batch", type=int, default=16, help="training and compile batch")
    parser.add_argument("--size", type=int, default=224, help="training image size")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.batch, args.size, args.device)
        return
    print(f"{machine()}; device {args.device}")
    sections = {"fused": bench_fused, "onnx": bench_onnx, "train": bench_train,
                "latency": bench_latency, "compile": bench_compile}
    results = {}
    for section in args.sections:
        print(f"--- {section}")
        results.update(sections[section](args, "cpu" if section == "onnx" else args.device))
    print(f"(medians over {args.repeats} interleaved rounds for inference, "
          f"{args.train_repeats} for training steps)")
    save("bench_deploy", results)


if __name__ == "__main__":
    main()
