"""effnet_tutorial.roofline: ceilings, per-layer FLOPs and bytes, per-layer times.

Counts are checked against values computed by hand here from the layer's shapes (a
convolution, a depthwise convolution, a linear layer, and layers of B0), and the FLOPs of
every table against count_flops, which counts the whole model at once. Times cannot be
checked against a known value; the tests check their structure (every layer timed once,
nothing negative, the parts adding up to the whole) on small inputs. Speed is measured in
benchmarks/bench_roofline.py, not here.
"""
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from torch import nn

from effnet_tutorial import EfficientNet, count_flops
from effnet_tutorial.deploy import export_onnx, fuse_for_inference
from effnet_tutorial.roofline import (OTHER, ROLES, Ceilings, attained_fraction, layer_table,
                                      measure_bandwidth, measure_ceilings, measure_peak_gflops,
                                      plot_roofline, profile_layers, profile_onnx, role_shares,
                                      roofline)

matplotlib.use("Agg")
F32 = 4  # bytes per float32


# --------------------------------------------------------------------------------------
# Counting, against hand-computed values
# --------------------------------------------------------------------------------------
def test_conv_by_hand():
    conv = nn.Conv2d(8, 16, 3, padding=1)                 # 3x3, with bias
    row = layer_table(conv, (2, 8, 10, 10)).iloc[0]
    macs = 2 * 16 * 10 * 10 * (8 * 3 * 3)                 # B * C_out * H * W * (C_in k^2)
    moved = F32 * (2 * 8 * 10 * 10 + (16 * 8 * 9 + 16) + 2 * 16 * 10 * 10)
    assert row["role"] == "conv"
    assert row["multiply_adds"] == macs == 230_400
    assert row["flops"] == 2 * macs
    assert (row["input_bytes"], row["weight_bytes"], row["output_bytes"]) == (6400, 4672, 12800)
    assert row["bytes"] == moved == 23_872
    assert row["intensity"] == pytest.approx(2 * macs / moved)      # 19.30 FLOP/byte


def test_depthwise_conv_by_hand():
    dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
    row = layer_table(dw, (1, 16, 8, 8)).iloc[0]
    macs = 16 * 8 * 8 * 9                                 # k^2 per output value
    moved = F32 * (16 * 64 + 16 * 9 + 16 * 64)
    assert row["role"] == "depthwise"
    assert row["multiply_adds"] == macs == 9216
    assert row["bytes"] == moved
    assert row["intensity"] == pytest.approx(2 * 9216 / moved)
    # 2 k^2 FLOPs per output value against 8 bytes read and written per value: at most
    # k^2 / 4 FLOP per byte (less the weights' share), whatever the width.
    assert 0.9 * 9 / 4 < row["intensity"] < 9 / 4


def test_linear_by_hand():
    fc = nn.Linear(32, 10)
    row = layer_table(fc, (4, 32)).iloc[0]
    assert row["role"] == "linear"
    assert row["multiply_adds"] == 4 * 32 * 10
    assert row["bytes"] == F32 * (4 * 32 + (32 * 10 + 10) + 4 * 10)
    assert row["intensity"] == pytest.approx(2 * 1280 / (F32 * 498))


def test_b0_layers_by_hand():
    """B0's layers as units (conv + BN + activation): BatchNorm folds into one bias per
    output channel, the projection of a block with a skip reads the block's input, SE's
    two 1x1 convolutions run on 1x1 maps."""
    b, table = 2, layer_table("efficientnet-b0", (2, 3, 224, 224))
    dw = table.loc["stages.2.0.depthwise"]
    assert dw["output"] == "[2, 32, 112, 112]"
    assert dw["multiply_adds"] == b * 32 * 112 * 112 * 9
    assert dw["bytes"] == F32 * (2 * b * 32 * 112 * 112 + 32 * 9 + 32)
    se = table.loc["stages.2.0.se"]                        # 32 -> 8 -> 32 on (2, 32, 1, 1)
    assert se["multiply_adds"] == b * (32 * 8 + 8 * 32)
    assert se["weight_bytes"] == F32 * (32 * 8 + 8 + 8 * 32 + 32)
    assert se["input_bytes"] == se["output_bytes"] == F32 * b * 32 * 112 * 112
    project = table.loc["stages.3.1.project"]              # 144 -> 24 at 56x56, with skip
    assert project["multiply_adds"] == b * 24 * 56 * 56 * 144
    assert project["input_bytes"] == F32 * b * (144 + 24) * 56 * 56
    assert project["weight_bytes"] == F32 * (24 * 144 + 24)
    stem = table.loc["stem"]                               # 3x3 stride 2, 3 -> 32
    assert stem["multiply_adds"] == b * 32 * 112 * 112 * 27
    assert table.loc["classifier", "multiply_adds"] == b * 1280 * 1000
    assert table.loc["pool", "flops"] == 0 and table.loc["pool", "bytes"] > 0
    # The depthwise convolution does far less work per byte than the 1x1 projection.
    assert dw["intensity"] < 2.5 < 8 < project["intensity"]


@pytest.mark.parametrize("name", ["efficientnet-b0", "efficientnetv2-s", "efficientnet-lite0"])
def test_table_flops_sum_to_count_flops(name):
    size = (2, 3, 96, 128)
    table = layer_table(name, size)
    assert int(table["multiply_adds"].sum()) == count_flops(name, size)
    assert (table["flops"] == 2 * table["multiply_adds"]).all()
    assert OTHER not in table.index      # every FLOP is inside a layer
    assert set(table["role"]) <= set(ROLES)


def test_roles_of_the_three_models():
    roles = {n: layer_table(n, (1, 3, 64, 64))["role"].value_counts().to_dict()
             for n in ("efficientnet-b0", "efficientnetv2-s", "efficientnet-lite0")}
    # B0: 16 blocks, the first without expansion, SE in every block.
    assert roles["efficientnet-b0"] == {"stem": 1, "expand": 15, "depthwise": 16, "se": 16,
                                        "project": 16, "head": 3}
    assert roles["efficientnet-lite0"].get("se", 0) == 0          # Lite: no SE
    v2 = roles["efficientnetv2-s"]
    assert v2["fused"] == 10 and v2["depthwise"] == v2["se"] == 30   # 2 + 4 + 4 fused blocks


def test_fused_model_and_other_models_sum_to_count_flops():
    torch.manual_seed(0)
    fused = fuse_for_inference(EfficientNet.from_name("efficientnet-b0").eval())
    size = (1, 3, 96, 96)
    table = layer_table(fused, size)
    assert int(table["multiply_adds"].sum()) == count_flops(fused, size)
    # The same layer names as the model it came from, so times map onto the same rows.
    assert list(table.index) == list(layer_table("efficientnet-b0", size).index)
    with torch.device("meta"):
        r18 = torchvision.models.resnet18()
    table = layer_table(r18, (1, 3, 64, 64))
    assert int(table["multiply_adds"].sum()) == count_flops(r18, (1, 3, 64, 64))
    assert {"conv", "norm", "activation", "pool", "linear"} <= set(table["role"])


# --------------------------------------------------------------------------------------
# The ceilings
# --------------------------------------------------------------------------------------
def test_ceilings_are_positive_and_plausible():
    c = measure_ceilings(size=(256, 512), mib=32, repeats=3)
    assert c.threads == torch.get_num_threads() and c.device == "cpu"
    # Any CPU of the last 20 years does more than 1 GFLOP/s in float32 matmul, and none
    # that PyTorch runs on does 100 TFLOP/s; bandwidth between 0.5 GB/s and 10 TB/s.
    assert 1 < c.peak_gflops < 1e5
    assert 0.5 < c.copy_gbs < 1e4 and 0.5 < c.triad_gbs < 1e4
    assert c.bandwidth_gbs == max(c.copy_gbs, c.triad_gbs)
    assert c.ridge == pytest.approx(c.peak_gflops / c.bandwidth_gbs)


def test_measurements_reject_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        measure_peak_gflops(size=0)
    with pytest.raises(ValueError, match="size"):
        measure_peak_gflops(size=[512, "big"])
    with pytest.raises(ValueError, match="mib"):
        measure_bandwidth(mib=-1)
    with pytest.raises(ValueError, match="device"):
        measure_ceilings(device="tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            measure_ceilings(device="cuda")
    with pytest.raises(ValueError, match="peak_gflops"):
        Ceilings(peak_gflops=-1.0, bandwidth_gbs=10.0, threads=1, device="cpu")


def test_bound_is_the_larger_of_the_two_times():
    c = Ceilings(peak_gflops=100.0, bandwidth_gbs=10.0, threads=1, device="cpu")
    assert c.ridge == 10.0
    assert c.attainable_gflops(1.0) == 10.0 and c.attainable_gflops(50.0) == 100.0
    assert c.bound_seconds(1e9, 1e8) == pytest.approx(0.01)   # compute: 1 GFLOP at 100 GFLOP/s
    assert c.bound_seconds(1e9, 1e9) == pytest.approx(0.1)    # memory: 1 GB at 10 GB/s


# --------------------------------------------------------------------------------------
# Counts and times together (with times given, so that the arithmetic is checked)
# --------------------------------------------------------------------------------------
def test_roofline_arithmetic():
    table = layer_table(nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()), (2, 8, 10, 10))
    c = Ceilings(peak_gflops=100.0, bandwidth_gbs=10.0, threads=1, device="cpu")
    seconds = pd.Series({"0": 2e-5, "1": 1e-5, OTHER: 1e-5})
    roof = roofline(table, seconds, c)
    conv = roof.loc["0"]
    # 460,800 FLOPs / 100 GFLOP/s = 4.6 us; 23,872 bytes / 10 GB/s = 2.4 us: compute-bound.
    assert conv["bound"] == "compute"
    assert conv["bound_seconds"] == pytest.approx(460_800 / 100e9)
    assert conv["fraction"] == pytest.approx(460_800 / 100e9 / 2e-5)
    assert conv["gflops"] == pytest.approx(460_800 / 2e-5 / 1e9)
    relu = roof.loc["1"]                                   # no FLOPs: the bytes bound it
    assert relu["bound"] == "memory" and relu["flops"] == 0
    assert relu["bound_seconds"] == pytest.approx(F32 * 2 * (2 * 16 * 10 * 10) / 10e9)  # read + write
    assert roof.loc[OTHER, "bound_seconds"] == 0
    total = roof["bound_seconds"].sum()
    assert attained_fraction(roof) == pytest.approx(total / 4e-5)
    assert attained_fraction(roof, 1e-4) == pytest.approx(total / 1e-4)
    shares = role_shares(roof)
    assert shares["share of time"].sum() == pytest.approx(1.0)
    assert shares.loc["conv", "share of FLOPs"] == 1.0
    assert list(shares.index) == ["conv", "activation", OTHER]


def test_roofline_rejects_mismatched_inputs():
    table = layer_table(nn.Conv2d(3, 3, 1), (1, 3, 4, 4))
    c = Ceilings(100.0, 10.0, 1, "cpu")
    with pytest.raises(ValueError, match="layers that table does not"):
        roofline(table, pd.Series({"stem": 1.0}), c)
    with pytest.raises(TypeError, match="Ceilings"):
        roofline(table, pd.Series({"Conv2d": 1.0}), {"peak": 1})
    with pytest.raises(ValueError, match="total_seconds"):
        attained_fraction(roofline(table, pd.Series({"Conv2d": 1.0}), c), 0)


def test_layer_table_rejects_bad_input():
    with pytest.raises(ValueError, match="input_size"):
        layer_table("efficientnet-b0", (1, 3, 224))
    with pytest.raises(ValueError, match="input_size"):
        layer_table(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="does not run"):
        layer_table(nn.Linear(3, 3), (2, 4))
    with pytest.raises(TypeError, match="torch.compile"):
        layer_table(torch.compile(nn.Linear(3, 3)), (2, 3))


# --------------------------------------------------------------------------------------
# Timing: structure, on small inputs
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_b0():
    torch.manual_seed(0)
    return EfficientNet.from_name("efficientnet-b0").eval()


def test_profile_layers_times_every_layer(small_b0):
    x = torch.randn(1, 3, 64, 64)
    table = layer_table(small_b0, tuple(x.shape))
    for model in (small_b0, fuse_for_inference(small_b0)):
        seconds = profile_layers(model, x, repeats=2)
        assert list(seconds.index) == list(table.index) + [OTHER]
        assert (seconds >= 0).all() and (seconds.drop(OTHER) > 0).all()
        roof = roofline(table, seconds, Ceilings(100.0, 10.0, 1, "cpu"))
        assert roof["fraction"].drop(OTHER).notna().all()
    assert not small_b0.training          # the model's mode is left as it was


def test_profile_layers_checks_its_arguments(small_b0):
    with pytest.raises(TypeError, match="floating-point tensor"):
        profile_layers(small_b0, torch.zeros(1, 3, 8, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="nn.Module"):
        profile_layers(lambda x: x, torch.zeros(1))
    with pytest.raises(TypeError, match="torch.compile"):
        profile_layers(torch.compile(small_b0), torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="repeats"):
        profile_layers(small_b0, torch.zeros(1, 3, 32, 32), repeats=0)


def test_profile_onnx_times_every_layer(small_b0, tmp_path):
    path = export_onnx(small_b0, tmp_path / "b0.onnx", 64, check=False)
    x = torch.randn(2, 3, 64, 64)
    seconds = profile_onnx(path, x, small_b0, repeats=2, threads=1)
    table = layer_table(small_b0, tuple(x.shape))
    # Every layer of B0 is found in ONNX Runtime's optimised graph, through the module
    # path the exporter recorded: its nodes carry the layer's time.
    assert list(seconds.index) == list(table.index) + [OTHER]
    assert (seconds.drop(["pool"]) > 0).all() and (seconds >= 0).all()
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        profile_onnx(tmp_path / "missing.onnx", x, small_b0)


def test_plot_roofline_draws_every_layer_with_flops():
    table = layer_table(nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 16, 3, padding=1, groups=16)), (1, 8, 16, 16))
    seconds = pd.Series({"0": 1e-5, "1": 1e-6, "2": 1e-5, OTHER: 1e-6})
    c = Ceilings(100.0, 10.0, 1, "cpu")
    ax = plot_roofline(roofline(table, seconds, c), c, label=1)
    offsets = np.concatenate([col.get_offsets() for col in ax.collections])
    assert len(offsets) == 2                              # the ReLU has no FLOPs
    # The layer that loses most time to its bound, numbered and named.
    assert [t.get_text() for t in ax.texts] == ["1", "1 2"]
    xs, ys = ax.lines[0].get_data()
    assert np.allclose(ys, np.minimum(100.0, xs * 10.0))  # the roofline itself
    assert math.isclose(ax.lines[1].get_xdata()[0], 10.0)  # the ridge
