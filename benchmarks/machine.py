"""What ran a benchmark: CPU (and its vector extensions), cores, threads, versions, GPU, load.

Every benchmark prints it and stores it with its results, so that numbers from different
machines, thread counts or a loaded machine are never compared by mistake.
"""
from __future__ import annotations

import os
import platform

import torch


def machine_info() -> dict:
    """The machine and the software, as a dict for the results files."""
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = next(line.split(":", 1)[1] for line in lines if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pass
    versions = {}
    for module in ("torchvision", "onnxruntime", "onnx"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "avx512_vnni": "avx512_vnni" in flags,
            "avx2": "avx2" in flags, "python": platform.python_version(), "platform": platform.platform(),
            "torch": torch.__version__, **versions, "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "load_average_at_start": load}


def machine() -> str:
    """The same on one line, for the printed reports."""
    m = machine_info()
    gpu = f", GPU {m['gpu']}" if m["gpu"] else ""
    return (f"torch {m['torch']}, torchvision {m['torchvision']}, {m['cpu']}, {m['cores']} cores, "
            f"torch threads {m['torch_threads']}{gpu}")
