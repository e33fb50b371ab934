"""The helpers that chapters, benchmarks and tests share for measuring (issue 24).

Timing and memory (``effnet_tutorial.measure``), the randomised BatchNorm stand-in for trained
weights (``weights.randomise_batchnorm``), Keras's count of BatchNorm statistics
(``inspection.count_bn_statistics``) and the shell echo of a training run
(``train.format_command``). Each test checks what the helper measures against something known
independently: a block of known size, a sleep of known length, a round trip through a shell.
"""
from __future__ import annotations

import math
import shlex
import shutil
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from effnet_tutorial import EfficientNet, count_bn_statistics, count_params
from effnet_tutorial.layers import ConvBNAct
from effnet_tutorial.measure import (best_ms, median_ms, median_ratios, peak_memory_mib, speedups,
                                     time_interleaved, timing_threads)
from effnet_tutorial.train import format_command
from effnet_tutorial.weights import randomise_batchnorm

LINUX = sys.platform.startswith("linux")


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------
def test_time_interleaved_takes_turns_and_keeps_to_its_budget():
    """What the timer does, not how long anything takes: the calls alternate, warm-up calls
    come first, and no round starts after the budget."""
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = time_interleaved(fns, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4 and [len(t) for t in times.values()] == [3, 3]
    calls.clear()
    times = time_interleaved(fns, repeats=3, warmup=0, budget_s=0.0)
    assert calls == ["a", "b"] and len(times["a"]) == 1
    with pytest.raises(TypeError, match="dict of name -> function"):
        time_interleaved([lambda: None])


def test_median_ratios_compare_round_by_round():
    # b is twice as slow as a in every round although the machine slows down 10-fold.
    times = {"a": [1.0, 10.0, 1.0], "b": [2.0, 20.0, 2.0]}
    assert median_ratios(times, "a") == {"a": 1.0, "b": 2.0}
    assert speedups(times, "b") == {"a": 2.0, "b": 1.0}
    with pytest.raises(KeyError, match="not one of the timed entries"):
        median_ratios(times, "c")


def test_median_and_best_ms_of_known_rounds():
    times = {"a": [0.003, 0.001, 0.002], "b": [0.010, 0.030, 0.020]}
    assert median_ms(times) == pytest.approx({"a": 2.0, "b": 20.0})
    assert best_ms(times) == pytest.approx({"a": 1.0, "b": 10.0})
    for summary in (median_ms, best_ms):
        with pytest.raises(TypeError, match="what time_interleaved returns"):
            summary({"a": []})


def test_median_ms_of_a_sleep_is_its_length():
    """A sleep of 20 ms takes at least 20 ms (the clock and the units are right) and, even on
    a busy machine, far less than 10 times that."""
    times = time_interleaved({"sleep": lambda: time.sleep(0.02), "none": lambda: None},
                             repeats=3, warmup=0)
    ms = median_ms(times)
    assert 20.0 <= ms["sleep"] < 200.0
    assert ms["none"] < 5.0
    assert speedups(times, "sleep")["none"] > 4.0


def test_timing_threads_uses_one_cpu_thread_and_restores():
    before = torch.get_num_threads()
    with timing_threads("cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), timing_threads("cpu"):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before      # restored after an error too
    with timing_threads("cuda"):                   # a GPU: the CPU threads are left alone
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive whole number"), timing_threads("cpu", 0):
        pass


# --------------------------------------------------------------------------------------
# Peak memory
# --------------------------------------------------------------------------------------
@pytest.mark.skipif(not LINUX, reason="the CPU's peak resident memory is read from /proc (Linux)")
def test_peak_memory_on_the_cpu_sees_a_block_that_is_freed_again():
    """64 MiB written and freed inside the call: the peak shows it although the call ends
    with nothing allocated; a call that allocates nothing adds (almost) nothing."""
    mib = 64

    def allocate():
        block = torch.ones(mib * 2**20 // 4)    # float32: mib MiB, every page written
        del block

    allocate()                                   # warm up torch's code paths
    peak = peak_memory_mib(allocate, "cpu")
    assert mib - 1 <= peak <= mib + 16, peak
    assert peak_memory_mib(lambda: None, "cpu") < 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_peak_memory_on_a_gpu_counts_the_allocators_tensors():
    mib = 64
    keep = torch.zeros(2**20, device="cuda")     # allocated before: not counted

    def allocate():
        torch.ones(mib * 2**20 // 4, device="cuda")

    assert peak_memory_mib(allocate, "cuda") == pytest.approx(mib, abs=1)
    del keep


def test_peak_memory_rejects_bad_input_clearly():
    with pytest.raises(TypeError, match="function without arguments"):
        peak_memory_mib(torch.ones(3), "cpu")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda'"):
        peak_memory_mib(lambda: None, "gpu")
    assert math.isnan(peak_memory_mib(lambda: None, "meta"))   # no measure for that device


# --------------------------------------------------------------------------------------
# Randomised BatchNorm statistics
# --------------------------------------------------------------------------------------
def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_randomise_batchnorm_is_random_per_seed_and_the_same_for_one_seed():
    torch.manual_seed(0)
    fresh = ConvBNAct(8, 16, 3)
    conv_before = fresh.conv.weight.detach().clone()
    a = _state(randomise_batchnorm(ConvBNAct(8, 16, 3), seed=1))
    b = _state(randomise_batchnorm(ConvBNAct(8, 16, 3), seed=1))
    c = _state(randomise_batchnorm(ConvBNAct(8, 16, 3), seed=2))
    for key in ("bn.running_mean", "bn.running_var", "bn.weight", "bn.bias"):
        assert torch.equal(a[key], b[key]), key           # same seed: same values
        assert not torch.equal(a[key], c[key]), key       # another seed: others
    bn = randomise_batchnorm(fresh).bn
    assert not torch.equal(bn.running_mean, torch.zeros(16))
    assert not torch.equal(bn.running_var, torch.ones(16))
    assert bool(((bn.running_var >= 0.5) & (bn.running_var < 1.5)).all())   # a variance: > 0
    assert bool(((bn.weight >= 0.5) & (bn.weight < 1.5)).all())
    assert torch.equal(fresh.conv.weight, conv_before)    # only BatchNorm changes


def test_randomise_batchnorm_makes_eval_mode_batchnorm_matter():
    """Fresh BN in eval mode is y = x / sqrt(1 + eps): randomised, it is far from that."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)
    bn = nn.BatchNorm2d(8).eval()
    with torch.no_grad():
        assert torch.allclose(bn(x), x, atol=1e-4)
        assert not torch.allclose(randomise_batchnorm(bn)(x), x, atol=1e-2)


def test_randomise_batchnorm_rejects_what_it_cannot_randomise():
    with pytest.raises(TypeError, match="expects an nn.Module"):
        randomise_batchnorm({"bn.weight": torch.ones(3)})
    with pytest.raises(ValueError, match="no nn.BatchNorm2d layer"):
        randomise_batchnorm(nn.Conv2d(3, 8, 3))


# --------------------------------------------------------------------------------------
# Keras's count: parameters + BatchNorm statistics
# --------------------------------------------------------------------------------------
# google/automl@2fb46e72, efficientnetv2/effnetv2_model_test.py: Keras's model.count_params().
AUTOML_KERAS_COUNTS = {"efficientnet-b0": 5_330_564, "efficientnetv2-s": 21_612_360,
                       "efficientnetv2-xl": 208_896_832}


@pytest.mark.parametrize("name", AUTOML_KERAS_COUNTS)
def test_count_bn_statistics_completes_keras_count(name):
    assert count_params(name) + count_bn_statistics(name) == AUTOML_KERAS_COUNTS[name]


def test_count_bn_statistics_counts_mean_and_variance_only():
    bn = nn.Sequential(nn.BatchNorm2d(16), nn.Conv2d(16, 4, 1), nn.BatchNorm2d(4))
    assert count_bn_statistics(bn) == 2 * (16 + 4)    # not num_batches_tracked, nor weights
    with torch.device("meta"):
        b0 = EfficientNet.from_name("efficientnet-b0")
    assert count_bn_statistics(b0) == count_bn_statistics("efficientnet-b0")
    with pytest.raises(TypeError, match="expected an nn.Module"):
        count_bn_statistics(3)


# --------------------------------------------------------------------------------------
# The shell echo of a training run
# --------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_format_command_runs_in_a_shell_as_given():
    """The wrapped, quoted text, run by a real shell, passes exactly the arguments given,
    spaces, quotes and $ included."""
    argv = ["--data", "digits", "--output", "runs/a b", "--model",
            "efficientnet-b0:width=0.25,depth=0.25", "it's", "$HOME", "--epochs", "4"]
    text = format_command(argv, prefix="printf '%s\\n'", width=30)
    lines = text.splitlines()
    assert len(lines) > 2 and all(line.endswith(" \\") for line in lines[:-1])
    assert all(line.startswith("    ") for line in lines[1:])
    for line in lines:   # at most 30 characters before the " \\", unless one word is longer
        text_part = line.removesuffix(" \\")
        assert len(text_part) <= 30 or len(shlex.split(text_part)) == 1, line
    out = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == argv


def test_format_command_keeps_the_chapters_layout():
    argv = ["--data", "digits", "--epochs", "4"]
    assert format_command(argv) == "python -m effnet_tutorial.train --data digits --epochs 4"
    with pytest.raises(TypeError, match="list of strings"):
        format_command("--data digits")
    with pytest.raises(TypeError, match="list of strings"):
        format_command(["--epochs", 4])
