"""Invariants of the model, the inspection tools and the weights API (no oracle needed)."""
import os
import subprocess
import sys
import urllib.error

import pytest
import torch
from torch import nn

from effnet_tutorial import EfficientNet, count_flops, count_params, get_model_config, summary, trace_shapes
from effnet_tutorial.blocks import FusedMBConv, MBConv
from effnet_tutorial.config import MODEL_NAMES
from effnet_tutorial.inspection import meta_twin
from effnet_tutorial.layers import (DropPath, DynamicSamePad2d, MemoryEfficientSwish, StaticSamePad2d, Swish,
                                    drop_path, same_padding)
from effnet_tutorial.weights import (StateDictMismatchError, WeightsFileError, WeightsUnavailableError,
                                     export_state_dict, load_source_state_dict, source_config)


def model_for_source(name, source, **options):
    return EfficientNet(source_config(name, source, **options))

B0_ENDPOINTS = {"reduction_1": [1, 16, 112, 112], "reduction_2": [1, 24, 56, 56], "reduction_3": [1, 40, 28, 28],
                "reduction_4": [1, 112, 14, 14], "reduction_5": [1, 320, 7, 7], "reduction_6": [1, 1280, 7, 7]}


@pytest.fixture(scope="module")
def b0():
    torch.manual_seed(0)
    return EfficientNet.from_name("efficientnet-b0", image_size=224).eval()


def test_b0_forward_features_and_endpoints(b0):
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert b0(x).shape == (2, 1000)
        assert b0.extract_features(x).shape == (2, 1280, 7, 7)
        eps = b0.extract_endpoints(x[:1])
    assert {k: list(v.shape) for k, v in eps.items()} == B0_ENDPOINTS


def test_layer_trace_shows_tf_padding_and_ends_at_classes(b0, capsys):
    steps = trace_shapes(b0, (1, 3, 224, 224), depth="layer")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[1, 3, 224, 224] -> stem.pad -> [1, 3, 225, 225]"
    assert out[1] == "[1, 3, 225, 225] -> stem.conv -> [1, 32, 112, 112]"
    assert out[-1] == "[1, 1280] -> classifier -> [1, 1000]"
    assert steps[-1] == ("classifier", (1, 1000)) and len(steps) == len(out)


def test_stage_and_block_traces(b0, capsys):
    stages = trace_shapes(b0, depth="stage")
    assert capsys.readouterr().out.splitlines()[0] == "[1, 3, 224, 224] -> stem -> [1, 32, 112, 112]"
    assert [s for _, s in stages][-5:] == [(1, 320, 7, 7), (1, 1280, 7, 7), (1, 1280), (1, 1280), (1, 1000)]
    blocks = trace_shapes(b0, depth="block", print_fn=None)
    assert len(blocks) == 1 + 16 + 4
    assert b0.training is False


def test_trace_of_a_block_and_of_se(capsys):
    block = MBConv(16, 24, 3, 2, 6, input_size=112)
    steps = trace_shapes(block, (1, 16, 112, 112), depth="layer")
    names = [n for n, _ in steps]
    assert names[:4] == ["expand.conv", "expand.bn", "expand.act", "depthwise.pad"]
    assert steps[-1] == ("project.bn", (1, 24, 56, 56))
    se_steps = trace_shapes(block.se, (1, 96, 56, 56), depth="layer", print_fn=None)
    assert [s for _, s in se_steps] == [(1, 96, 1, 1), (1, 4, 1, 1), (1, 4, 1, 1), (1, 96, 1, 1), (1, 96, 1, 1),
                                        (1, 96, 56, 56)]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_variant_builds_on_meta_and_traces(name):
    with torch.device("meta"):
        model = EfficientNet.from_name(name)
    r = EfficientNet.get_image_size(name)
    steps = trace_shapes(model, (1, 3, r, r), print_fn=None)
    assert steps[-1][1] == (1, 1000)
    assert steps[-4][1] == (1, model.config.scaled_head_channels, -(-r // 32), -(-r // 32))
    assert [n for n, _ in steps[1:-4]] == [f"stages.{k}" for k in model.config.stage_numbers]


def test_get_image_size():
    assert [EfficientNet.get_image_size(f"efficientnet-b{i}") for i in range(8)] == \
        [224, 240, 260, 300, 380, 456, 528, 600]
    assert [EfficientNet.get_image_size(f"efficientnetv2-{s}") for s in "s m l xl".split()] == [384, 480, 480, 512]


def test_num_classes_in_channels_and_dropout_overrides():
    m = EfficientNet.from_name("efficientnet-b0", num_classes=10, in_channels=1, dropout_rate=0.5,
                               drop_connect_rate=0.0)
    assert m(torch.randn(1, 1, 64, 64)).shape == (1, 10)
    assert m.dropout.p == 0.5
    assert not any(isinstance(x, DropPath) for x in m.modules())
    # classifier 1280 -> 10 instead of 1000 (weights + bias), stem 3x3 conv over 1 channel instead of 3
    assert count_params(m) == 5_288_548 - 1281 * 990 - 2 * 9 * 32


def _peak_rss_mib(code: str) -> float:
    """Peak resident memory (MiB) of a fresh interpreter that imports the package and runs ``code``."""
    script = ("import resource, torch, effnet_tutorial as et\n" + code +
              "\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def test_counting_needs_no_weights_in_memory():
    # V2-XL's 208M float32 weights would take 794 MiB; counting it by name must not allocate them.
    assert count_params("efficientnetv2-xl") == 208_119_808
    base = _peak_rss_mib("")
    counted = _peak_rss_mib("et.count_params('efficientnetv2-xl'); et.count_flops('efficientnetv2-xl')")
    assert counted - base < 100, (base, counted)
    # A built model is counted on a meta twin: no copy of its weights (B5: 116 MiB of them).
    built = _peak_rss_mib("m = et.EfficientNet.from_name('efficientnet-b5')")
    twin = _peak_rss_mib("m = et.EfficientNet.from_name('efficientnet-b5'); et.count_flops(m)")
    assert twin - built < 60, (built, twin)


def test_count_flops_counts_a_module_as_it_is():
    m = EfficientNet.from_name("efficientnet-b0")
    stock = count_flops(m)
    assert stock == count_flops("efficientnet-b0") == count_flops(get_model_config("efficientnet-b0"))
    m.classifier = nn.Linear(1280, 10)                  # a new head: 1280 x 990 fewer multiply-adds
    assert count_flops(m) == stock - 1280 * 990
    assert count_params(m) == 5_288_548 - 1281 * 990
    del m.stages[8]                                     # a removed stage: the head now sees 192 channels
    m.head = type(m.head)(192, 1280, 1)
    assert count_flops(m) < stock - 1280 * 990
    assert count_flops(m, (1, 3, 448, 448)) == pytest.approx(4 * count_flops(m), rel=0.01)


def test_meta_twin_copies_structure_not_weights():
    m = EfficientNet.from_name("efficientnet-b0", num_classes=7)
    m.classifier = nn.Sequential(nn.Linear(1280, 64), nn.ReLU(), nn.Linear(64, 7))
    twin = meta_twin(m)
    assert all(p.device.type == "meta" for p in twin.parameters())
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in m.named_parameters()]
    assert all(p.device.type == "cpu" for p in m.parameters())   # the original is untouched


def test_summary_uses_torchinfo(b0):
    stats = summary(b0, (1, 3, 224, 224), depth=1)
    assert stats.total_params == 5_288_548
    assert "classifier" in str(stats)


# ------------------------------------------------------------------------ bad input
BAD_INPUTS = {
    "no batch dimension": (lambda m: m(torch.randn(3, 224, 224)),
                           ValueError, r"expected input of shape \[B, 3, H, W\], got \[3, 224, 224\]"),
    "four channels": (lambda m: m(torch.randn(1, 4, 224, 224)), ValueError, r"\[B, 3, H, W\], got \[1, 4, 224, 224\]"),
    "wrong size for static padding": (lambda m: m(torch.randn(1, 3, 256, 256)), ValueError,
                                      "static TF padding computed for 224x224 images, got 256x256"),
    "not a tensor": (lambda m: m([[1.0]]), TypeError, "torch.Tensor"),
    "float64 input": (lambda m: m(torch.randn(1, 3, 224, 224, dtype=torch.float64)), TypeError,
                      r"weights are torch.float32 but the input is torch.float64: convert the input with "
                      r"x.to\(torch.float32\)"),
    "half input": (lambda m: m(torch.randn(1, 3, 224, 224).half()), TypeError, "input is torch.float16"),
    "uint8 input": (lambda m: m(torch.zeros(1, 3, 224, 224, dtype=torch.uint8)), TypeError,
                    r"floating-point image tensor .* got torch.uint8: convert it with x.float\(\)"),
    "unknown name": (lambda m: EfficientNet.from_name("efficientnet-b8"), ValueError, "Valid names: efficientnet-b0"),
    "unknown padding": (lambda m: EfficientNet.from_name("efficientnet-b0", padding="valid"), ValueError,
                        "padding must be one of"),
    "no classes": (lambda m: EfficientNet.from_name("efficientnet-b0", num_classes=0), ValueError,
                   "num_classes must be a positive int"),
    "drop path rate 1": (lambda m: EfficientNet.from_name("efficientnet-b0", drop_connect_rate=1.0), ValueError,
                         "drop_path_rate"),
    "unknown option": (lambda m: EfficientNet(m.config, num_class=10), TypeError, "unknown ModelConfig option"),
    "trace size not 4D": (lambda m: trace_shapes(m, (3, 224, 224)), ValueError, "input_size must be"),
    "trace depth": (lambda m: trace_shapes(m, depth="blocks"), ValueError, "depth must be one of"),
    "trace of a non-module": (lambda m: trace_shapes(42), TypeError, "expected an nn.Module, a ModelConfig"),
    "stage 1 is the stem": (lambda m: m.stages[1], IndexError, "block stages are 2-8"),
    "block with static padding": (lambda m: MBConv(16, 24, 3, 2, 6, input_size=112)(torch.randn(1, 16, 100, 100)),
                                  ValueError, "static TF padding was computed for 112x112"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(b0, case):
    call, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message):
        call(b0)


def test_batch_of_one_in_training_mode_is_explained():
    m = EfficientNet.from_name("efficientnet-b0").train()
    with pytest.raises(ValueError, match="train with a batch of 2 or more, or call model.eval"):
        m(torch.randn(1, 3, 32, 32))
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 1000)     # two images are fine
    assert m(torch.randn(1, 3, 64, 64)).shape == (1, 1000)     # and so is one image with 2x2 maps
    assert m.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_autocast_input_is_not_refused():
    m = EfficientNet.from_name("efficientnet-b0").eval()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        assert m(torch.randn(1, 3, 64, 64).bfloat16()).shape == (1, 1000)


def test_trace_shapes_accepts_names_and_configs_and_uses_the_models_input(capsys):
    by_name = trace_shapes("efficientnet-b0", print_fn=None)
    assert by_name[0] == ("stem", (1, 32, 112, 112)) and by_name[-1] == ("classifier", (1, 1000))
    assert trace_shapes(get_model_config("efficientnet-b0"), print_fn=None) == by_name
    grey = EfficientNet.from_name("efficientnet-b1", in_channels=1, num_classes=10)
    steps = trace_shapes(grey)
    assert capsys.readouterr().out.splitlines()[0] == "[1, 1, 240, 240] -> stem -> [1, 32, 120, 120]"
    assert steps[-1] == ("classifier", (1, 10))
    static = EfficientNet.from_name("efficientnet-b0", image_size=256)
    assert trace_shapes(static, print_fn=None)[0] == ("stem", (1, 32, 128, 128))


def test_dynamic_padding_accepts_any_size():
    m = EfficientNet.from_name("efficientnet-b0").eval()
    with torch.no_grad():
        for s in (33, 224, 257):
            assert m.extract_features(torch.randn(1, 3, s, s)).shape[-1] == -(-s // 32)


def test_state_dict_that_does_not_fit_lists_keys():
    source = EfficientNet.from_name("efficientnet-b1")  # our own names: nothing fits
    with pytest.raises(StateDictMismatchError) as err:
        load_source_state_dict(model_for_source("efficientnet-b0", "torchvision"), source.state_dict(), "torchvision")
    msg = str(err.value)
    assert "missing keys: features.0.0.weight" in msg and "unexpected keys: stem.conv.weight" in msg


def test_state_dict_with_wrong_shapes_lists_them():
    model = model_for_source("efficientnet-b0", "efficientnet_pytorch")
    sd = export_state_dict(model, "efficientnet_pytorch")
    sd["_conv_head.weight"] = torch.zeros(1280, 32, 1, 1)
    with pytest.raises(StateDictMismatchError, match=r"shape mismatches: _conv_head.weight: \[1280, 32, 1, 1\]"):
        load_source_state_dict(model, sd, "efficientnet_pytorch")


# ------------------------------------------------------------------------ layers
def test_static_and_dynamic_same_padding_agree():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 57, 57)
    for k, s in [(3, 2), (5, 2), (3, 1), (5, 1)]:
        assert torch.equal(StaticSamePad2d(k, s, 57)(x), DynamicSamePad2d(k, s)(x))
    static = EfficientNet.from_name("efficientnet-b0", image_size=224).eval()
    dynamic = EfficientNet.from_name("efficientnet-b0").eval()
    dynamic.load_state_dict(static.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(static(x), dynamic(x))


def test_same_padding_values():
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(56, 5, 2) == (1, 2)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(14, 5, 1) == (2, 2)


def test_drop_path_is_identity_in_eval_and_unbiased_in_training():
    x = torch.ones(20000, 1, 1, 1)
    layer = DropPath(0.25).eval()
    assert torch.equal(layer(x), x)
    torch.manual_seed(0)
    y = layer.train()(x)
    assert torch.equal(y.unique(), torch.tensor([0.0, 1 / 0.75]))
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)
    assert drop_path(x, 0.0, training=True) is x


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), "0.2"])
def test_drop_path_refuses_rates_that_are_no_probability(rate):
    with pytest.raises(ValueError, match=r"drop path rate must be a number in \[0, 1\)"):
        drop_path(torch.ones(4, 2), rate, training=True)
    with pytest.raises(ValueError, match="drop path rate"):
        DropPath(rate)


def test_set_swish_swaps_every_activation(b0):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = b0(x)
        b0.set_swish(memory_efficient=False)
        assert not any(isinstance(m, MemoryEfficientSwish) for m in b0.modules())
        n_plain = sum(isinstance(m, Swish) for m in b0.modules())
        after = b0(x)
        b0.set_swish(memory_efficient=True)
    assert n_plain == 1 + 16 * 2 + 15 + 1  # stem, depthwise + SE per block, expand in 15 blocks, head
    torch.testing.assert_close(before, after)


def test_fused_block_structure():
    single = FusedMBConv(24, 24, 3, 1, 1)
    assert isinstance(single.expand, torch.nn.Identity) and single.has_skip
    assert single.project.conv.kernel_size == (3, 3) and not isinstance(single.project.act, torch.nn.Identity)
    assert count_params(single) == 24 * 24 * 9 + 2 * 24
    fused = FusedMBConv(24, 48, 3, 2, 4)
    assert count_params(fused) == 24 * 96 * 9 + 2 * 96 + 96 * 48 + 2 * 48
    assert fused(torch.randn(1, 24, 32, 32)).shape == (1, 48, 16, 16)
    # SE (not in the official tables) goes before the projection, on the block input when e == 1
    with_se = FusedMBConv(24, 24, 3, 1, 1, se_ratio=0.25)
    assert with_se.se.reduce.in_channels == 24 and with_se.se.reduce.out_channels == 6


def test_training_steps_give_finite_gradients_and_a_falling_loss():
    torch.manual_seed(0)
    m = EfficientNet.from_name("efficientnetv2-s", num_classes=5, drop_connect_rate=0.2).train()
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    # Adam: SGD with momentum 0.9 at lr 0.05 diverged on some CPUs (7.2 -> 89.9 in 6 steps), a
    # test of the optimiser's luck rather than of the model.
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for step in range(6):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        if step == 0:
            grads = [p.grad for p in m.parameters()]
            assert all(g is not None and torch.isfinite(g).all() for g in grads)
            assert sum(int(g.abs().sum() > 0) for g in grads) == len(grads)  # every tensor gets a gradient
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


# ------------------------------------------------------------------------ weights API
def test_from_pretrained_offline_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match="weights_path"):
        EfficientNet.from_pretrained("efficientnet-b0", source="efficientnet_pytorch")
    with pytest.raises(WeightsUnavailableError, match="efficientnet_b0"):
        EfficientNet.from_pretrained("efficientnet-b0", source="torchvision")


def test_from_pretrained_rejects_what_a_source_does_not_publish():
    with pytest.raises(ValueError, match="torchvision publishes no weights for efficientnetv2-xl"):
        EfficientNet.from_pretrained("efficientnetv2-xl", source="torchvision")
    with pytest.raises(ValueError, match="efficientnet_pytorch publishes no weights for efficientnetv2-s"):
        EfficientNet.from_pretrained("efficientnetv2-s", source="efficientnet_pytorch")
    with pytest.raises(ValueError, match="valid sources: torchvision, efficientnet_pytorch"):
        EfficientNet.from_pretrained("efficientnet-b0", source="keras")


@pytest.fixture(scope="module")
def saved_b0(tmp_path_factory):
    """An efficientnet_pytorch-format B0 file (our model renamed to its keys) and the model it came from."""
    torch.manual_seed(0)
    model = model_for_source("efficientnet-b0", "efficientnet_pytorch").eval()
    path = tmp_path_factory.mktemp("weights") / "b0.pth"
    torch.save(export_state_dict(model, "efficientnet_pytorch"), path)
    return path, model


def _flip_middle_bytes(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 16]) + data[mid + 16:]


def make_bad_file(case: str, d, good):
    """Write the bad file of ``case`` into the folder ``d`` and return its path."""
    path = d / "weights.pth"
    if case == "a directory":
        return d
    if case == "an empty file":
        path.write_bytes(b"")
    elif case == "a text file":
        path.write_text("101 dalmatians\n")
    elif case == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif case == "a corrupted archive":
        path.write_bytes(_flip_middle_bytes(good.read_bytes()))
    elif case == "a dict with a string":
        torch.save({"_conv_stem.weight": "oops"}, path)
    elif case == "a list":
        torch.save([torch.zeros(1)], path)
    return path   # "a missing file": never written


BAD_FILES = {
    "a directory": "is a directory; expected a .pth file",
    "a missing file": "does not exist; expected a .pth file",
    "an empty file": "is an empty file",
    "a text file": "is not a PyTorch weights file that can be loaded safely",
    "random bytes": "is not a PyTorch weights file that can be loaded safely",
    "a corrupted archive": "is corrupted: the checksum of its record",
    "a dict with a string": "entry '_conv_stem.weight' is a str, not a tensor",
    "a list": "holds a list, not a state dict",
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_weights_files_get_clear_errors(tmp_path, saved_b0, case):
    path = make_bad_file(case, tmp_path, saved_b0[0])
    with pytest.raises(WeightsFileError, match=BAD_FILES[case]) as err:
        EfficientNet.from_pretrained("efficientnet-b0", source="efficientnet_pytorch", weights_path=path)
    assert str(path) in str(err.value) and "weights_only=False" not in str(err.value)


def test_weights_file_sha256(saved_b0):
    import hashlib
    path, _ = saved_b0
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    EfficientNet.from_pretrained("efficientnet-b0", source="efficientnet_pytorch", weights_path=path, sha256=digest)
    with pytest.raises(WeightsFileError, match="has SHA-256 .* expected 00"):
        EfficientNet.from_pretrained("efficientnet-b0", source="efficientnet_pytorch", weights_path=path,
                                     sha256="00" * 32)


def test_from_pretrained_with_a_local_file(saved_b0):
    path, model = saved_b0
    loaded = EfficientNet.from_pretrained("efficientnet-b0", source="efficientnet_pytorch", weights_path=path)
    assert not loaded.training
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    with pytest.warns(UserWarning, match=r"classifier of shape \[1000, 1280\].*model has \[10, 1280\]"):
        ten = EfficientNet.from_pretrained("efficientnet-b0", source="efficientnet_pytorch", weights_path=path,
                                           num_classes=10, in_channels=1)
    assert ten(torch.randn(1, 1, 224, 224)).shape == (1, 10)
    torch.testing.assert_close(ten.stem.conv.weight, model.stem.conv.weight.sum(1, keepdim=True))


def test_initialisation_follows_the_official_fan_out():
    """TF's depthwise kernel [k, k, C, 1] has fan-out k*k; PyTorch's kaiming would use k*k*C."""
    torch.manual_seed(0)
    block = EfficientNet.from_name("efficientnet-b0").stages[7][0]  # 5x5 depthwise over 672 channels
    w = block.depthwise.conv.weight
    assert w.shape == (672, 1, 5, 5)
    assert w.std().item() == pytest.approx((2 / 25) ** 0.5, rel=0.02)
    w = block.expand.conv.weight                                     # 1x1, 112 -> 672
    assert w.std().item() == pytest.approx((2 / 672) ** 0.5, rel=0.02)


def test_saved_tensors_and_activation_memory():
    from effnet_tutorial import activation_memory, saved_tensors
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    naive, _ = saved_tensors(Swish(), x)
    efficient, _ = saved_tensors(MemoryEfficientSwish(), x)
    assert (naive.saves, naive.distinct, naive.nbytes) == (3, 2, 2 * x.numel() * 4)
    assert (efficient.saves, efficient.distinct, efficient.nbytes) == (1, 1, x.numel() * 4)
    with torch.no_grad():
        assert saved_tensors(MemoryEfficientSwish(), x)[0].saves == 0
    cpu = EfficientNet.from_name("efficientnet-b0")
    meta = meta_twin(cpu)
    a, b = activation_memory(cpu), activation_memory(meta)
    assert a == b == activation_memory("efficientnet-b0") and a.nbytes == sum(a.by_unit.values())
    assert list(a.by_unit)[:2] == ["stem", "stages.2"]
    cpu.eval()
    activation_memory(cpu)
    assert not cpu.training  # the mode is restored
    # Activations grow with the batch; only BN's per-channel statistics do not.
    assert activation_memory(meta, (4, 3, 224, 224)).nbytes == pytest.approx(4 * a.nbytes, rel=0.01)
    assert activation_memory(meta.set_swish(memory_efficient=False)).nbytes > 1.2 * a.nbytes
