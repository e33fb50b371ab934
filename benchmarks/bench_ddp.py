"""DistributedDataParallel against one process with the same global batch (chapter 7.7).

    python benchmarks/bench_ddp.py [--seeds 0 1 2] [--epochs 5] [--batch 64]

Trains the digits model of chapter 7 (``python -m effnet_tutorial.train``, its default
model, every training image, one thread per process) three ways, for each seed:

one process   ``--batch-size 2*B`` in one process;
DDP           ``torchrun --nproc_per_node=2`` with ``--batch-size B``: the same global
              batch and learning rate, but every BatchNorm layer normalises each
              process's B images with their own statistics;
DDP sync-bn   the same with ``--sync-bn``: BatchNorm statistics over the global batch.

It stores each run's validation accuracy and training loss per epoch, and the accuracies'
spread over the seeds, in benchmarks/results/bench_ddp.json (benchmarks/store.py). The
numbers do not depend on the machine's load (each run is seeded; the time does). A few
minutes on two cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from store import save, spread  # noqa: E402  (benchmarks/store.py)

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
TRAIN = [sys.executable, "-m", "effnet_tutorial.train"]


def run(kind: str, seed: int, args, folder: str) -> dict:
    """One training run; its metrics.json with the wall time."""
    out = os.path.join(folder, f"{kind.replace(' ', '-')}-{seed}")
    common = ["--data", "digits", "--epochs", str(args.epochs), "--seed", str(seed),
              "--device", "cpu", "--threads", "1", "--no-progress", "--output", out]
    if kind == "one process":
        cmd = [*TRAIN, *common, "--batch-size", str(2 * args.batch)]
    else:
        cmd = [*TORCHRUN, "-m", "effnet_tutorial.train", *common, "--batch-size", str(args.batch),
               *(["--sync-bn"] if kind == "DDP sync-bn" else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    metrics = json.loads(open(os.path.join(out, "metrics.json")).read())
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="images per process under DDP")
    args = parser.parse_args()
    kinds = ("one process", "DDP", "DDP sync-bn")
    results = {kind: {"runs": {}} for kind in kinds}
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            for kind in kinds:
                m = run(kind, seed, args, folder)
                results[kind]["runs"][str(seed)] = {
                    "val_accuracy": m["epochs"][-1]["val_accuracy"],
                    "train_loss": [e["train_loss"] for e in m["epochs"]],
                    "val_accuracy_per_epoch": [e["val_accuracy"] for e in m["epochs"]],
                    "world_size": m["world_size"], "global_batch_size": m["global_batch_size"],
                    "lr": m["lr"], "wall_seconds": m["wall_seconds"]}
                print(f"seed {seed}  {kind:12s} world {m['world_size']}, global batch "
                      f"{m['global_batch_size']}: val accuracy "
                      f"{100 * m['epochs'][-1]['val_accuracy']:.1f} %, train loss "
                      f"{m['epochs'][-1]['train_loss']:.3f} ({m['wall_seconds']:.0f} s)", flush=True)
    for kind in kinds:
        results[kind]["val_accuracy"] = spread([r["val_accuracy"]
                                                for r in results[kind]["runs"].values()])
        results[kind]["settings"] = {"epochs": args.epochs, "batch_per_process": args.batch,
                                     "seeds": args.seeds}
    save("bench_ddp", {f"digits, {args.epochs} epochs, global batch {2 * args.batch}, {kind}":
                       results[kind] for kind in kinds})


if __name__ == "__main__":
    main()
