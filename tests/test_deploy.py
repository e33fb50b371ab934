"""effnet_tutorial.deploy: BatchNorm folding, the fused inference model, ONNX export.

Every equality is checked against something independent of the code under test: the
unfused model with randomised BatchNorm statistics (so that folding really matters),
torchvision's eager B0 (the oracle), and ONNX Runtime run directly here, never through
export_onnx's own check. Speed is measured in benchmarks/bench_deploy.py, not here.
"""
import copy

import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from torch import nn

from effnet_tutorial import EfficientNet
from effnet_tutorial.deploy import (CompilerNotFoundError, InferenceModel, KernelPaddedConv2d,
                                    OnnxExportError, cpp_compiler, export_onnx, fold_batchnorm,
                                    fuse_for_inference, max_relative_error, replace_swish)
from effnet_tutorial.layers import (ConvBNAct, DynamicSamePad2d, MemoryEfficientSwish,
                                    StaticSamePad2d, Swish)
from effnet_tutorial.weights import load_source_state_dict, randomise_batchnorm, source_config

REL = 1e-4  # "equal to 1e-4 relative": largest difference / largest output



def assert_rel_close(got, expected, rel=REL):
    assert got.shape == expected.shape
    scale = expected.abs().max().item()
    assert scale > 1e-3  # the comparison means something
    torch.testing.assert_close(got, expected, rtol=0, atol=rel * scale)


def b0(**options):
    torch.manual_seed(0)
    return randomise_batchnorm(EfficientNet.from_name("efficientnet-b0", **options)).eval()


# --------------------------------------------------------------------------------------
# fold_batchnorm
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("groups, bias, stride", [(1, False, 1), (1, True, 2), (8, False, 2)])
def test_fold_batchnorm_equals_conv_then_bn(groups, bias, stride):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, stride, 1, groups=groups, bias=bias).double()
    bn = randomise_batchnorm(nn.Sequential(nn.BatchNorm2d(16, eps=1e-3))).double()[0].eval()
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        expected = bn(conv(x))
        got = fold_batchnorm(conv, bn)(x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_fold_batchnorm_formula():
    """W' = W * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)."""
    conv = nn.Conv2d(1, 2, 1, bias=False)
    bn = nn.BatchNorm2d(2, eps=0.0).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 3.0]).view(2, 1, 1, 1))
        bn.running_mean.copy_(torch.tensor([1.0, -1.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([1.0, 2.0]))
        bn.bias.copy_(torch.tensor([0.5, 0.0]))
    fused = fold_batchnorm(conv, bn)
    # channel 0: s = 1 / 2, W' = 1, b' = 0.5 - 1 / 2 = 0;
    # channel 1: s = 2 / 0.5 = 4, W' = 12, b' = 0 + 4 = 4
    torch.testing.assert_close(fused.weight.flatten(), torch.tensor([1.0, 12.0]))
    torch.testing.assert_close(fused.bias, torch.tensor([0.0, 4.0]))
    assert conv.bias is None  # the input conv is left as it was


@pytest.mark.parametrize("size", [12, 13, 14, 15])
@pytest.mark.parametrize("kernel, stride", [(3, 2), (5, 2), (3, 1), (5, 1)])
def test_kernel_padded_conv_equals_padding_the_input(size, kernel, stride):
    """Moving TF's asymmetric padding into the kernel gives the eager layer's output, for
    every parity of the input size."""
    torch.manual_seed(0)
    layer = ConvBNAct(6, 6, kernel, stride, groups=6, activation=None).eval()  # depthwise
    conv = layer.conv
    moved = KernelPaddedConv2d(6, 6, kernel, stride, groups=6, bias=False)
    moved.load_state_dict(conv.state_dict())
    x = torch.randn(2, 6, size, size)
    with torch.no_grad():
        expected = conv(layer.pad(x))
        assert_rel_close(moved(x), expected, rel=1e-6)


class ScaledInputConv(nn.Conv2d):
    """A conv subclass with its own forward, as a padding-aware conv would have."""

    def forward(self, x):
        return super().forward(2 * x)


def test_fold_batchnorm_keeps_a_conv_subclass():
    torch.manual_seed(0)
    conv = ScaledInputConv(4, 6, 3, padding=1, bias=False)
    bn = randomise_batchnorm(nn.Sequential(nn.BatchNorm2d(6)))[0].eval()
    x = torch.randn(2, 4, 7, 7)
    with torch.no_grad():
        folded = fold_batchnorm(conv, bn)
        assert type(folded) is ScaledInputConv
        assert_rel_close(folded(x), bn(conv(x)), rel=1e-6)


def test_fold_batchnorm_errors():
    with pytest.raises(TypeError, match="nn.Conv2d, nn.BatchNorm2d"):
        fold_batchnorm(nn.Linear(2, 2), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match="normalises 3 channels but the conv has 4"):
        fold_batchnorm(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        fold_batchnorm(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4, track_running_stats=False))


# --------------------------------------------------------------------------------------
# fuse_for_inference
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [dict(), dict(image_size=96), dict(padding="symmetric")],
                         ids=["same-dynamic", "same-static", "symmetric"])
def test_fused_b0_equals_eager(options):
    model = b0(**options)
    before = copy.deepcopy(model.state_dict())
    fused = fuse_for_inference(model)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert_rel_close(fused(x), model(x))
    # What fusing did, and what it left alone.
    gone = (nn.BatchNorm2d, Swish, MemoryEfficientSwish, StaticSamePad2d, DynamicSamePad2d)
    assert not any(isinstance(m, gone) for m in fused.modules())
    pads = sum(isinstance(m, (StaticSamePad2d, DynamicSamePad2d)) for m in model.modules())
    assert sum(isinstance(m, KernelPaddedConv2d) for m in fused.modules()) == pads
    assert pads == (5 if options.get("padding") != "symmetric" else 0)  # B0's stride-2 layers
    assert sum(isinstance(m, nn.SiLU) for m in fused.modules()) == \
        sum(isinstance(m, MemoryEfficientSwish) for m in model.modules())
    assert fused.model.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(p.requires_grad for p in fused.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def calibrate_bn(model, x, seed=0):
    """Random BN scales and shifts, with running statistics measured on ``x`` (as training
    leaves them). A model as deep as V2-S with random statistics (``randomise_batchnorm``) is chaotic:
    its float32 and float64 outputs differ by half their size, so nothing could be compared.
    ``x`` needs a batch of 16 or so: the last stages' maps are 2x2 at 64 pixels, and fewer
    values give statistics so noisy that float32 and float64 still differ by 0.5 %."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # running statistics = this batch's
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    with torch.no_grad():
        model.train()(x)
    return model.eval()


def test_fused_v2_equals_eager():
    """Fused-MBConv blocks (V2) fold as well."""
    torch.manual_seed(0)
    model = calibrate_bn(EfficientNet.from_name("efficientnetv2-s"), torch.randn(16, 3, 64, 64))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_rel_close(fuse_for_inference(model, channels_last=False)(x), model(x))


@pytest.mark.oracle
def test_fused_model_of_torchvision_weights_equals_torchvision():
    """The fused model of weights converted from torchvision gives torchvision's eager output."""
    torch.manual_seed(0)
    ref = randomise_batchnorm(torchvision.models.efficientnet_b0()).eval()
    ours = load_source_state_dict(EfficientNet(source_config("efficientnet-b0", "torchvision")),
                                  ref.state_dict(), "torchvision")
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        expected = ref(x)
        assert_rel_close(fuse_for_inference(ours)(x), expected)
        # torchvision's own Sequential (conv, BN, SiLU) units fold too.
        assert_rel_close(fuse_for_inference(ref)(x), expected)


def test_fused_block_traces_without_graph_breaks():
    """torch.compile (eager backend: tracing only, no code generation) takes the fused block as
    one graph, and gives the same output."""
    torch.manual_seed(0)
    block = randomise_batchnorm(EfficientNet.from_name("efficientnet-b0").stages[4][1]).eval()  # SE, skip
    compiled = fuse_for_inference(block, compile=True,
                                  compile_options={"backend": "eager", "fullgraph": True})
    x = torch.randn(2, 40, 28, 28)
    with torch.no_grad():
        assert_rel_close(compiled(x), block(x))


def test_compile_without_a_cpp_compiler_says_what_to_install():
    """Inductor on a CPU runs a C++ compiler: with none on PATH, fuse_for_inference fails at
    once with what to install, not at the first call deep inside Inductor."""
    from torch._inductor import config as inductor_config
    layer = ConvBNAct(4, 4, 3).eval()
    missing = inductor_config.patch({"cpp.cxx": (None, "no-such-compiler-g++")})
    expected = "no C\\+\\+ compiler was found.*no-such-compiler-g\\+\\+.*apt-get install g\\+\\+"
    with missing, pytest.raises(CompilerNotFoundError, match=expected):
        assert cpp_compiler() is None
        fuse_for_inference(layer, compile=True)
    # Tracing only (the eager backend) needs no compiler.
    fuse_for_inference(layer, compile=True, compile_options={"backend": "eager"})


@pytest.mark.skipif(cpp_compiler() is None,
                    reason="torch.compile's Inductor needs a C++ compiler on a CPU (g++ or $CXX); "
                           "none is installed")
def test_inductor_compiled_layer_equals_eager():
    """A real Inductor compile, of one small fused conv + BN + SiLU so that it stays cheap
    (seconds; the whole B0 takes minutes, see benchmarks/bench_deploy.py --sections compile)."""
    torch.manual_seed(0)
    layer = randomise_batchnorm(nn.Sequential(ConvBNAct(8, 16, 3, 2))).eval()
    compiled = fuse_for_inference(layer, compile=True)
    x = torch.randn(2, 8, 15, 15)
    with torch.no_grad():
        assert_rel_close(compiled(x), layer(x))


def test_fused_model_refuses_training():
    fused = fuse_for_inference(b0())
    assert isinstance(fused, InferenceModel) and not fused.training
    with pytest.raises(RuntimeError, match="cannot be trained"):
        fused.train()
    fused.eval()  # still allowed


def test_fuse_errors():
    with pytest.raises(TypeError, match="expects an nn.Module"):
        fuse_for_inference("efficientnet-b0")
    with torch.device("meta"):
        meta = EfficientNet.from_name("efficientnet-b0")
    with pytest.raises(ValueError, match="meta device"):
        fuse_for_inference(meta)
    with pytest.raises(ValueError, match="cannot pair with a conv: bn1"):
        fuse_for_inference(torchvision.models.resnet18())  # BN called in forward, no Sequential
    with pytest.raises(TypeError, match="before torch.compile"):
        fuse_for_inference(torch.compile(nn.Conv2d(3, 3, 1)))
    with pytest.raises(TypeError, match="compile_options"):
        fuse_for_inference(nn.Conv2d(3, 3, 1), compile=True, compile_options="eager")


def test_replace_swish():
    model = replace_swish(EfficientNet.from_name("efficientnet-b0"), "plain")
    assert not any(isinstance(m, MemoryEfficientSwish) for m in model.modules())
    plain = [m for m in model.modules() if isinstance(m, Swish)]
    assert plain and any(m.inplace for m in plain) and not all(m.inplace for m in plain)
    with pytest.raises(ValueError, match="kind must be one of"):
        replace_swish(model, "relu")


def test_max_relative_error():
    got, expected = torch.tensor([1.0, 2.1]), torch.tensor([1.0, 2.0])
    assert max_relative_error(got, expected) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="shapes differ"):
        max_relative_error(torch.zeros(2), torch.zeros(3))


# --------------------------------------------------------------------------------------
# export_onnx, checked by running ONNX Runtime here
# --------------------------------------------------------------------------------------
def run_onnxruntime(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


@pytest.fixture(scope="module")
def b0_onnx(tmp_path_factory):
    """B0 as the package builds it (TF "same" padding, dynamic), exported once at 96 pixels."""
    model = b0()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "b0.onnx", 96, check=False)
    return model, path


def test_exported_b0_equals_eager_at_any_batch(b0_onnx):
    model, path = b0_onnx
    for batch in (1, 4):
        x = torch.randn(batch, 3, 96, 96)
        with torch.no_grad():
            assert_rel_close(run_onnxruntime(path, x), model(x))


def test_exported_file_is_self_contained_with_a_free_batch(b0_onnx):
    _, path = b0_onnx
    assert [p.name for p in path.parent.iterdir()] == ["b0.onnx"]  # no external weights file
    graph = onnx.load(str(path)).graph
    (inp,) = graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "images" and isinstance(dims[0], str) and dims[1:] == [3, 96, 96]
    assert [o.name for o in graph.output] == ["logits"]
    # The exporter's optimiser folds BatchNorm into the convs and merges the TF padding into
    # the Conv nodes' asymmetric pads (chapter 9 relies on both).
    ops = {node.op_type for node in graph.node}
    assert "Conv" in ops and not ops & {"BatchNormalization", "Pad"}


def mixed_padding_part():
    """B0's stem and first four stages' first blocks, from models with static TF, dynamic TF and
    symmetric padding (each layer at the size it was built for): one small export covers
    all three kinds of stride-2 layer."""
    torch.manual_seed(0)
    options = [dict(image_size=64), dict(padding="symmetric"), {}]
    static, symmetric, dynamic = (
        randomise_batchnorm(EfficientNet.from_name("efficientnet-b0", **o), seed).eval()
        for seed, o in enumerate(options))
    part = nn.Sequential(static.stem, static.stages[2], dynamic.stages[3][0],
                         symmetric.stages[4][0], static.stages[5][0]).eval()
    pads = {type(m).__name__ for m in part.modules()}
    assert {"StaticSamePad2d", "DynamicSamePad2d"} <= pads
    return part


def test_every_padding_mode_exports(tmp_path):
    part = mixed_padding_part()
    path = export_onnx(part, tmp_path / "part.onnx", 64)  # its own check passes too
    for batch in (1, 3):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            assert_rel_close(run_onnxruntime(path, x), part(x))


def test_exported_fused_model_equals_eager(tmp_path):
    """The fused model exports too; its file gives the unfused eager model's output."""
    part = mixed_padding_part()
    path = export_onnx(fuse_for_inference(part), tmp_path / "fused.onnx", 64, check=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_rel_close(run_onnxruntime(path, x), part(x))


def test_export_check_catches_a_wrong_file(tmp_path, monkeypatch):
    """A file that computes something else must fail export_onnx's check: export with ReLU
    swapped in where SiLU belongs."""
    torch.manual_seed(0)
    stem = randomise_batchnorm(EfficientNet.from_name("efficientnet-b0", image_size=32)).stem.eval()
    import effnet_tutorial.deploy as deploy
    monkeypatch.setitem(deploy.SWISH_KINDS, "silu", nn.ReLU)
    with pytest.raises(OnnxExportError, match="disagrees with the eager model"):
        export_onnx(stem, tmp_path / "wrong.onnx", 32, dynamic_batch=False)


def test_export_errors(tmp_path):
    with pytest.raises(TypeError, match="expects an nn.Module"):
        export_onnx(None, tmp_path / "x.onnx", 64)
    with pytest.raises(ValueError, match="image_size must be"):
        export_onnx(nn.Conv2d(3, 3, 1), tmp_path / "x.onnx", 0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(nn.Conv2d(3, 3, 1), tmp_path / "missing" / "x.onnx", 8)
    # Static TF padding computed for 64 pixels cannot be exported at 96: the model says why.
    with pytest.raises(ValueError, match="static TF padding computed for 64x64"):
        model = EfficientNet.from_name("efficientnet-b0", image_size=64).eval()
        export_onnx(model, tmp_path / "x.onnx", 96)
    with pytest.raises(ValueError, match="does not run on an input of shape"):
        export_onnx(nn.Conv2d(3, 3, 5), tmp_path / "x.onnx", 2)


def test_export_to_a_directory_fails_at_once(tmp_path, monkeypatch):
    """A directory as the path: refused before anything is copied, run or exported."""
    def exported(*args, **kwargs):
        raise AssertionError("the export ran")

    monkeypatch.setattr(torch.onnx, "export", exported)
    model = EfficientNet.from_name("efficientnet-b0", image_size=32).eval()
    monkeypatch.setattr(model, "forward", exported)          # nor was the model run
    with pytest.raises(IsADirectoryError) as info:
        export_onnx(model, tmp_path, 32)
    assert str(info.value) == (f"cannot write {str(tmp_path)!r}: it is a directory; give a file "
                               f"name, e.g. {str(tmp_path / 'model.onnx')!r}")


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: torch.export cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y if y.sum() > 0 else -y


def test_untraceable_model_gives_a_clear_error(tmp_path):
    with pytest.raises(OnnxExportError, match="could not export this DataDependent") as info:
        export_onnx(DataDependent(), tmp_path / "x.onnx", 8)
    assert "data-dependent" in str(info.value) and "\x1b[" not in str(info.value)
