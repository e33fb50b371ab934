r"""Timing and peak memory on the device that runs the code (chapters 5, 6, 7 and 9).

Counts (parameters, multiply-adds, saved bytes) are the same on every machine; time and
memory are not. The helpers here measure them the same way wherever they are used, in the
chapters, the benchmarks and the tests:

* :func:`time_interleaved` times several functions in rounds where they take turns, and
  :func:`median_ratios`, :func:`speedups`, :func:`median_ms` and :func:`best_ms` summarise
  its rounds.
* :func:`peak_memory_mib` measures the peak memory a call adds: the CUDA caching
  allocator's statistics on a GPU, the process's peak resident memory on a Linux CPU.
* :func:`timing_threads` times CPU code with one thread, so that a shared machine gives
  comparable numbers.

Timings vary from run to run and machine to machine: compare entries timed together, round
by round, never raw times of different runs. A cell that prints them is not checked by nbval.
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import statistics
import time
from typing import Callable, Iterator

import torch

__all__ = ["time_interleaved", "median_ratios", "speedups", "median_ms", "best_ms",
           "peak_memory_mib", "timing_threads"]


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int = 5,
                     warmup: int = 1, budget_s: float | None = None) -> dict[str, list[float]]:
    """Seconds per call of each function, in rounds where the functions take turns, so that
    a change of machine load (a shared CPU, a GPU clocking down) affects all of them alike.

    CUDA work is waited for (``torch.cuda.synchronize``) before each clock reading. With
    ``budget_s`` no new round starts after that many seconds (at least one round runs).
    Compare with :func:`median_ratios`, not with the raw times of different runs.

    Shape: {name: fn} -> {name: [seconds per round]}.
    """
    if not isinstance(fns, dict) or not fns or not all(callable(f) for f in fns.values()):
        raise TypeError("fns must be a non-empty dict of name -> function without arguments, "
                        f"got {type(fns).__name__}")

    def sync():
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
        if budget_s is not None and time.perf_counter() - start > budget_s:
            break
    return times


def _check_times(times) -> None:
    if (not isinstance(times, dict) or not times
            or not all(isinstance(ts, (list, tuple)) and ts for ts in times.values())):
        raise TypeError("times must be what time_interleaved returns, a non-empty dict of "
                        f"name -> [seconds per round], got {type(times).__name__}")


def median_ratios(times: dict[str, list[float]], reference: str) -> dict[str, float]:
    """Median over rounds of each entry's time divided by ``reference``'s time in the same
    round: a ratio below 1 is faster than the reference. Slow drifts of the machine cancel.

    Shape: {name: [seconds]} -> {name: ratio}.
    """
    _check_times(times)
    if reference not in times:
        raise KeyError(f"reference {reference!r} is not one of the timed entries: "
                       f"{', '.join(times)}")
    ref = times[reference]
    return {name: statistics.median(t / r for t, r in zip(ts, ref)) for name, ts in times.items()}


def speedups(times: dict[str, list[float]], reference: str) -> dict[str, float]:
    """How many times as fast as ``reference`` each entry is: the inverse of
    :func:`median_ratios` (2.0 is twice as fast, 0.5 half as fast).

    Shape: {name: [seconds]} -> {name: speed-up}.
    """
    return {name: 1 / ratio for name, ratio in median_ratios(times, reference).items()}


def median_ms(times: dict[str, list[float]]) -> dict[str, float]:
    """Median milliseconds per call of each entry of :func:`time_interleaved`'s rounds: the
    typical time on this machine, load included.

    Shape: {name: [seconds]} -> {name: milliseconds}.
    """
    _check_times(times)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def best_ms(times: dict[str, list[float]]) -> dict[str, float]:
    """Fastest round of each entry, in milliseconds: the time least disturbed by other work
    on the machine, and so an optimistic one. Use it where each entry runs only a few
    rounds on a busy machine; prefer :func:`median_ms` and :func:`median_ratios` otherwise.

    Shape: {name: [seconds]} -> {name: milliseconds}.
    """
    _check_times(times)
    return {name: 1e3 * min(ts) for name, ts in times.items()}


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024


def _host_peak_growth_mib(fn: Callable[[], object]) -> float:
    try:   # hand memory that glibc's malloc keeps after free() back to the system first
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass   # not glibc: the measurement stays valid, the baseline may be higher
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")   # Linux >= 4.0: the peak (VmHWM) := the current RSS
        before = _status_mib("VmRSS:")
    except (OSError, StopIteration):
        return math.nan
    fn()
    return _status_mib("VmHWM:") - before


def peak_memory_mib(fn: Callable[[], object], device) -> float:
    """Peak memory (MiB) that ``fn()`` adds while it runs on ``device`` ("cpu", "cuda",
    "cuda:1", a ``torch.device``); ``fn``'s result is discarded. Warm ``fn`` up first:
    a first call also loads kernels and libraries.

    * **GPU**: the peak of the memory occupied by tensors, from PyTorch's CUDA caching
      allocator (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``),
      minus what was allocated before the call. Not counted: blocks the allocator keeps
      cached for reuse (``torch.cuda.memory_reserved``), the CUDA context and what
      libraries allocate outside PyTorch's allocator.
    * **CPU (Linux)**: the growth of the process's peak resident memory: ``VmHWM`` of
      ``/proc/self/status``, reset to the current resident memory before the call by
      writing ``5`` to ``/proc/self/clear_refs`` (Linux man-pages 6.9.1,
      proc_pid_clear_refs(5): "since Linux 4.0"). It counts the pages the whole process
      touches (every thread, the allocator's own overhead, libraries loaded during the
      call), not only tensors; memory freed earlier but kept by ``malloc`` is handed back
      first (glibc's ``malloc_trim``) so that it is not reused unseen.
    * ``nan`` where neither is available (another operating system or device type).

    The two measures differ, so compare numbers of the same device only.

    Shape: function without arguments -> MiB (float).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function without arguments, got {type(fn).__name__}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or a torch.device, got {device!r}") from None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - start) / 2**20
    if device.type == "cpu":
        return _host_peak_growth_mib(fn)
    return math.nan


@contextlib.contextmanager
def timing_threads(device, threads: int = 1) -> Iterator[None]:
    """Inside the ``with`` block, PyTorch's CPU work uses ``threads`` threads when
    ``device`` is the CPU; the previous number is restored afterwards. On a machine shared
    with other jobs, PyTorch's worker threads wait for one another and timings become
    erratic, while one-thread timings compare models fairly. On a GPU nothing changes.

    Shape: a context manager; no value.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive whole number, got {threads!r}")
    before = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
