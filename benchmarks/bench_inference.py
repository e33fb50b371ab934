"""Eager inference time of effnet_tutorial's B0 against torchvision's B0, in one process.

    python benchmarks/bench_inference.py [--repeats 20] [--batch-sizes 1 16] [--threads N]
                                         [--profile] [--fused]
    python benchmarks/bench_inference.py --eager-latency --threads 1 [--repeats 20]

Prints the median time per forward pass of each model and its median ratio to torchvision's
over the rounds (the goal is <= 1.0 with symmetric padding), on the CPU and, when present, on
CUDA. The models are timed in alternation, so a change in machine load affects all alike.

torchvision pads symmetrically. TF "same" padding (the official models, efficientnet_pytorch)
is asymmetric before each stride-2 layer, e.g. (0, 1) for a 3x3 conv on an even size, which
``nn.Conv2d`` cannot express: the package pads with ``F.pad`` first, and that allocates and
writes a padded copy of the layer's input (five times in B0, up to 16x96x113x113 floats =
78 MB at batch 16). ``--profile`` shows that time. The rows marked "pad in kernel" avoid the
copy with ``effnet_tutorial.deploy.KernelPaddedConv2d``, which ``fuse_for_inference`` uses and
which is put into the eager model here: a kxk conv with TF padding (before, after) equals a
(k+d)x(k+d) conv whose kernel has d = after - before leading rows and columns of zeros, with
symmetric padding ``after``. The padded kernel is tiny, the input is not copied, and the
output is the same (checked below); the cost is the multiply-adds of the zero taps (+3 % for
B0), which FlopCounterMode counts. ``--fused`` adds the fused models (chapter 9).

``--eager-latency`` measures only chapter 5's table instead: the latency of B0, B2, B4 and
ResNet-50 (eager, inference mode, in turns at batch 1 and at batch 8), and the peak memory
of one warm forward pass of each, each in a fresh process
(``effnet_tutorial.measure.peak_memory_mib``).

Writes benchmarks/results/bench_inference.json (benchmarks/store.py): per device and batch
size, the timings (median ms, spread of the per-round ratios), the F.pad profile and the
differences of the pad-in-kernel models.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep the profiler's start/stop lines quiet
import torch  # noqa: E402
import torchvision
from torch import nn

from effnet_tutorial import EfficientNet
from effnet_tutorial.deploy import _pad_in_kernels, fuse_for_inference
from effnet_tutorial.measure import median_ratios, time_interleaved
from effnet_tutorial.weights import export_state_dict, load_source_state_dict, source_config
from machine import machine  # noqa: E402  (benchmarks/machine.py)
from store import save, timing_table  # noqa: E402  (benchmarks/store.py)


def time_pair(models: dict[str, nn.Module], x: torch.Tensor, repeats: int,
              warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per forward pass of each model in each round (inference mode), taking turns."""
    fns = {name: (lambda m=m: m(x)) for name, m in models.items()}
    with torch.inference_mode():
        return time_interleaved(fns, repeats, warmup)


def section_name(device: str, what: str) -> str:
    """The key of a stored result: device, what was run, and the CPU's thread count."""
    threads = f", {torch.get_num_threads()} threads" if device == "cpu" else ""
    return f"{device}, {what}{threads}"


def print_times(times: dict[str, list[float]], reference: str, prefix: str = "") -> None:
    """A table: median ms per call and the median per-round ratio to ``reference``."""
    ratios = median_ratios(times, reference)
    print(f"{prefix}{'':44s} {'median ms':>9s}   ratio to {reference}")
    for name, ts in times.items():
        print(f"{prefix}{name:44s} {statistics.median(ts) * 1e3:9.2f} ms   "
              f"ratio {ratios[name]:5.3f}")


# --------------------------------------------------------------------------------------
# TF "same" padding without the padded copy, in the eager model
# --------------------------------------------------------------------------------------
def pad_in_kernel(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose TF-padded convs pad the kernel instead of the input
    (what ``fuse_for_inference`` does, here without the other fusions)."""
    model = copy.deepcopy(model)
    _pad_in_kernels(model)
    return model


def _efficientnet_pytorch_b0(ours: EfficientNet) -> dict:
    """efficientnet_pytorch's B0 (if installed) with the same weights as ``ours``."""
    try:
        from efficientnet_pytorch import EfficientNet as Reference
    except ImportError:
        return {}
    model = Reference.from_name("efficientnet-b0", image_size=224)
    model.load_state_dict(export_state_dict(ours, "efficientnet_pytorch"))
    return {"efficientnet_pytorch (TF same, static)": model}


def shared_weight_models(with_pad_in_kernel: bool = True,
                         fused: bool = False) -> dict[str, nn.Module]:
    """torchvision's B0 and ours in every padding mode, all on torchvision's random weights.

    Every model computes on the same weights: random weights of different initialisations
    give activations of different sizes, and tiny (denormal) floats are slow on CPUs, which
    would time the initialiser, not the model.
    """
    reference = torchvision.models.efficientnet_b0().eval()
    ours = load_source_state_dict(EfficientNet(source_config("efficientnet-b0", "torchvision")),
                                  reference.state_dict(), "torchvision").eval()
    same_dynamic = EfficientNet.from_name("efficientnet-b0")
    same_static = EfficientNet.from_name("efficientnet-b0", image_size=224)
    for m in (same_dynamic, same_static):
        m.load_state_dict(ours.state_dict())
    models = {
        "torchvision": reference,
        **_efficientnet_pytorch_b0(ours),
        "ours (TF same, dynamic)": same_dynamic,
        "ours (TF same, static 224)": same_static,
        "ours (symmetric)": ours,
    }
    if with_pad_in_kernel:
        models["ours (TF same, static 224, pad in kernel)"] = pad_in_kernel(same_static)
        models["ours (TF same, dynamic, pad in kernel)"] = pad_in_kernel(same_dynamic)
    if fused:  # the fast path of chapter 9, where the padded copy weighs more
        models["fused: ours (symmetric)"] = fuse_for_inference(ours)
        models["fused: ours (TF same, static 224)"] = fuse_for_inference(same_static)
    return {name: m.eval() for name, m in models.items()}


def profile_padding(model: nn.Module, x: torch.Tensor, rounds: int = 3) -> dict:
    """Share of the forward time spent in F.pad (aten::constant_pad_nd and what it calls)."""
    from torch.profiler import ProfilerActivity, profile
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(rounds):
                model(x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    pad = sum(e.cpu_time_total for e in events if e.key == "aten::constant_pad_nd")
    calls = sum(e.count for e in events if e.key == "aten::constant_pad_nd") // rounds
    return {"calls_per_forward": calls, "ms_per_forward": pad / rounds / 1e3,
            "share_of_cpu_time": pad / total}


# --------------------------------------------------------------------------------------
# Chapter 5: eager latency and peak memory of B0, B2, B4 and ResNet-50, one thread
# --------------------------------------------------------------------------------------
EAGER_MODELS = {"efficientnet-b0": (1, 8), "efficientnet-b2": (1, 8),
                "efficientnet-b4": (1,), "resnet50": (1, 8)}


def _eager_model(name: str) -> tuple[nn.Module, int]:
    if name == "resnet50":
        return torchvision.models.resnet50().eval(), 224
    return EfficientNet.from_name(name).eval(), EfficientNet.get_image_size(name)


def memory_child(name: str, batch: int) -> None:
    """In a fresh process: the peak memory one warm inference forward pass adds."""
    from effnet_tutorial.measure import peak_memory_mib
    torch.manual_seed(0)
    model, size = _eager_model(name)
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        model(x)   # warm-up: kernels, libraries, allocator
        peak = peak_memory_mib(lambda: model(x), "cpu")
    print(json.dumps({"model": name, "batch": batch, "peak_mib": peak}))


def bench_eager_latency(repeats: int) -> dict:
    """Chapter 5's measurement, at its settings: one thread, each batch size in turns."""
    torch.manual_seed(0)
    models = {name: _eager_model(name) for name in EAGER_MODELS}
    result = {"memory_mib": {}, "timings": {}}
    for batch in (1, 8):
        names = [n for n, sizes in EAGER_MODELS.items() if batch in sizes]
        inputs = {n: torch.randn(batch, 3, models[n][1], models[n][1]) for n in names}
        with torch.inference_mode():
            times = time_interleaved({n: (lambda m=models[n][0], x=inputs[n]: m(x)) for n in names},
                                     repeats, warmup=1)
        print_times(times, "resnet50", f"cpu  batch {batch:3d}  ")
        result["timings"][f"batch {batch}"] = timing_table(times, "resnet50")
        for n in names:
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", n, str(batch),
                   "--threads", str(torch.get_num_threads())]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            mib = json.loads(out.strip().splitlines()[-1])["peak_mib"]
            result["memory_mib"][f"{n}, batch {batch}"] = mib
            print(f"cpu  batch {batch:3d}  {n:18s} peak memory growth {mib:6.0f} MiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--profile", action="store_true",
                        help="time F.pad inside the TF-same model")
    parser.add_argument("--fused", action="store_true",
                        help="also time fuse_for_inference of the padding variants")
    parser.add_argument("--eager-latency", action="store_true",
                        help="only chapter 5's latency and memory of B0, B2, B4 and ResNet-50")
    parser.add_argument("--memory-child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    if args.eager_latency:
        print(machine())
        save("bench_inference", {section_name("cpu", "eager latency (chapter 5)"):
                                 bench_eager_latency(args.repeats)})
        return
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{machine()}; devices {devices}")
    torch.manual_seed(0)
    sections = {}
    for device in devices:
        models = {name: m.to(device)
                  for name, m in shared_weight_models(fused=args.fused).items()}
        for bs in args.batch_sizes:
            result = {"batch": bs, "image_size": 224, "differences_to_F_pad_model": {}}
            x = torch.randn(bs, 3, 224, 224, device=device)
            with torch.inference_mode():
                static = models["ours (TF same, static 224)"](x)
                for name in [n for n in models if "pad in kernel" in n]:
                    diff = (models[name](x) - static).abs().max().item() / static.abs().max().item()
                    result["differences_to_F_pad_model"][name] = diff
                    print(f"{device:4s} batch {bs:3d}  {name}: largest difference to the F.pad "
                          f"model {diff:.1e} of the largest output")
            if args.profile and device == "cpu":
                pad = profile_padding(models["ours (TF same, static 224)"], x)
                result["F_pad_profile"] = pad
                print(f"{device:4s} batch {bs:3d}  TF same, static 224: F.pad: "
                      f"{pad['calls_per_forward']} calls per forward, {pad['ms_per_forward']:.1f} "
                      f"ms per forward, {pad['share_of_cpu_time']:.1%} of the CPU time")
            times = time_pair(models, x, args.repeats)
            print_times(times, "torchvision", f"{device:4s} batch {bs:3d}  ")
            result["timings"] = timing_table(times, "torchvision")
            sections[section_name(device, f"batch {bs}")] = result
    save("bench_inference", sections)


if __name__ == "__main__":
    main()
