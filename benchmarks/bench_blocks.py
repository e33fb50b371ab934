"""Fused-MBConv against MBConv, block by block, at the shapes of EfficientNetV2-S (chapter 6).

    python benchmarks/bench_blocks.py [--repeats 20] [--threads 1]

For the first block of stages 2, 3 and 4 and a later block of stages 5 and 6 of V2-S
(stages numbered as in Table 4 of arXiv 2104.00298v3; the settings of that block with SE
off, as chapter 6's cell builds them, at a 224x224 image, batch 8), times one forward pass
of MBConv and of Fused-MBConv with the same settings, in turns (``time_interleaved``), and
stores the per-round ratio Fused/MBConv with the multiply-adds of both in
benchmarks/results/bench_blocks.json (benchmarks/store.py). Random weights, inference mode.
"""
from __future__ import annotations

import argparse

import torch

from effnet_tutorial import count_flops
from effnet_tutorial.blocks import FusedMBConv, MBConv
from effnet_tutorial.measure import time_interleaved
from machine import machine  # noqa: E402  (benchmarks/machine.py)
from store import save, timing_table  # noqa: E402  (benchmarks/store.py)

# (label, C_in, C_out, stride, expand ratio, input shape [B, C, H, W]): chapter 6's cases
CASES = (
    ("stage 2, first block", 24, 48, 2, 4, (8, 24, 112, 112)),
    ("stage 3, first block", 48, 64, 2, 4, (8, 48, 56, 56)),
    ("stage 4, first block", 64, 128, 2, 4, (8, 64, 28, 28)),
    ("stage 5, later block", 160, 160, 1, 6, (8, 160, 14, 14)),
    ("stage 6, later block", 256, 256, 1, 6, (8, 256, 7, 7)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine())
    torch.manual_seed(0)
    sections = {}
    for label, c_in, c_out, stride, expand, shape in CASES:
        blocks = {"MBConv": MBConv(c_in, c_out, 3, stride, expand, se_ratio=None).eval(),
                  "Fused-MBConv": FusedMBConv(c_in, c_out, 3, stride, expand).eval()}
        x = torch.randn(shape)
        with torch.inference_mode():
            times = time_interleaved({k: (lambda b=b: b(x)) for k, b in blocks.items()},
                                     args.repeats, warmup=2)
        table = timing_table(times, "MBConv")
        ratio = table["entries"]["Fused-MBConv"]["time_ratio"]
        print(f"{label:22s} time Fused/MBConv: median {ratio['median']:.2f} "
              f"(quartiles {ratio['q1']:.2f}-{ratio['q3']:.2f})")
        sections[f"cpu, {label}, batch 8, {torch.get_num_threads()} threads"] = {
            "settings": {"in": c_in, "out": c_out, "stride": stride, "expand": expand,
                         "input": list(shape)},
            "multiply_adds": {k: count_flops(b, shape) for k, b in blocks.items()},
            "timings": table}
    save("bench_blocks", sections)


if __name__ == "__main__":
    main()
