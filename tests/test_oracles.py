"""Oracle tests: this package against torchvision, timm and efficientnet_pytorch.

The oracles are imported unconditionally: if one is missing the module fails to
import and CI goes red (these tests must never be skipped).
"""
import math

import efficientnet_pytorch
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from effnet_tutorial import EfficientNet, count_flops, count_params, get_model_config
from effnet_tutorial.config import MODEL_NAMES
from effnet_tutorial.layers import MemoryEfficientSwish, Swish
from effnet_tutorial.config import V1_COEFFICIENTS
from effnet_tutorial.weights import (EFFICIENTNET_PYTORCH_URLS, TORCHVISION_BN_EPS, load_source_state_dict,
                                     randomise_batchnorm, source_config)

pytestmark = pytest.mark.oracle

# Parameter counts at 1000 classes: torchvision's metadata for B0-B7 and V2-S/M/L, timm for XL.
EXPECTED_PARAMS = {
    "efficientnet-b0": 5_288_548, "efficientnet-b1": 7_794_184, "efficientnet-b2": 9_109_994,
    "efficientnet-b3": 12_233_232, "efficientnet-b4": 19_341_616, "efficientnet-b5": 30_389_784,
    "efficientnet-b6": 43_040_704, "efficientnet-b7": 66_347_960, "efficientnetv2-s": 21_458_488,
    "efficientnetv2-m": 54_139_356, "efficientnetv2-l": 118_515_272, "efficientnetv2-xl": 208_119_808,
}

def model_for_source(name, source, **options):
    return EfficientNet(source_config(name, source, **options))


def tv_name(name):
    return name.replace("efficientnetv2-", "efficientnet_v2_").replace("efficientnet-", "efficientnet_")


def tv_model(name, device=None):
    with torch.device(device or "cpu"):
        return getattr(torchvision.models, tv_name(name))()


def tv_macs(name, size):
    model = tv_model(name, "meta").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    return counter.get_total_flops() / 2


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_parameter_counts_are_exact(name):
    assert count_params(name) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "efficientnetv2-xl"])
def test_parameter_counts_match_torchvision(name):
    assert count_params(name) == sum(p.numel() for p in tv_model(name, "meta").parameters())
    weights = torchvision.models.get_model_weights(tv_name(name)).DEFAULT
    assert count_params(name) == weights.meta["num_params"]


def test_v2_xl_matches_timm():
    with torch.device("meta"):
        ref = timm.create_model("tf_efficientnetv2_xl", pretrained=False)
    assert count_params("efficientnetv2-xl") == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("i", range(8))
def test_b_models_match_efficientnet_pytorch(i):
    with torch.device("meta"):
        ref = efficientnet_pytorch.EfficientNet.from_name(f"efficientnet-b{i}")
    assert count_params(f"efficientnet-b{i}") == sum(p.numel() for p in ref.parameters())
    # same native resolution
    assert efficientnet_pytorch.EfficientNet.get_image_size(f"efficientnet-b{i}") == \
        EfficientNet.get_image_size(f"efficientnet-b{i}")


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "efficientnetv2-xl"])
def test_multiply_adds_match_torchvision(name):
    size = EfficientNet.get_image_size(name)
    # TF "same" and symmetric padding give the same output sizes, so the counts agree exactly.
    assert count_flops(name) == tv_macs(name, size)


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n.startswith("efficientnet-")])
def test_stage_structure_matches_torchvision(name):
    ref = tv_model(name, "meta")
    with torch.device("meta"):
        ours = EfficientNet.from_name(name)
    assert [len(s) for s in ours.stages] == [len(ref.features[i]) for i in range(1, 8)]
    assert ours.head.conv.out_channels == ref.features[8][0].out_channels



@pytest.mark.parametrize("name, size", [("efficientnet-b0", 224), ("efficientnet-b5", 224), ("efficientnetv2-s", 224),
                                        ("efficientnetv2-m", 128), ("efficientnetv2-l", 128)])
def test_torchvision_weights_give_the_same_outputs(name, size):
    torch.manual_seed(0)
    ref = randomise_batchnorm(tv_model(name)).eval()
    ours = load_source_state_dict(model_for_source(name, "torchvision"), ref.state_dict(), "torchvision").eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 1e-2  # the comparison means something
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_timm_v2_xl_gives_the_same_outputs():
    """V2-XL is in neither torchvision nor efficientnet_pytorch: timm's tf_efficientnetv2_xl (TF padding, eps 1e-3).
    The package has no timm converter; both models define the same tensors in the same order, so the
    state dict is matched by position, each pair checked for equal shape."""
    torch.manual_seed(0)
    ref = randomise_batchnorm(timm.create_model("tf_efficientnetv2_xl", pretrained=False)).eval()
    ours = EfficientNet.from_name("efficientnetv2-xl").eval()
    theirs, mine = ref.state_dict(), ours.state_dict()
    assert len(theirs) == len(mine)
    for (k_ours, v_ours), (k_theirs, v_theirs) in zip(mine.items(), theirs.items()):
        assert v_ours.shape == v_theirs.shape, (k_ours, k_theirs)
    ours.load_state_dict(dict(zip(mine, theirs.values())))
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_real_source_files_load_through_weights_path(tmp_path):
    """Files saved by the sources' own models (random init, random BN statistics), 10-class heads included."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    cases = [("torchvision", randomise_batchnorm(torchvision.models.efficientnet_b0(num_classes=10)), 10),
             ("torchvision", randomise_batchnorm(torchvision.models.efficientnet_b0()), 1000),
             ("efficientnet_pytorch", randomise_batchnorm(efficientnet_pytorch.EfficientNet.from_name(
                 "efficientnet-b0", num_classes=10)), 10)]
    for source, ref, classes in cases:
        path = tmp_path / f"{source}-{classes}.pth"
        torch.save(ref.state_dict(), path)
        ours = EfficientNet.from_pretrained("efficientnet-b0", source=source, weights_path=path, num_classes=classes)
        with torch.no_grad():
            expected, got = ref.eval()(x), ours(x)
        assert got.shape == (2, classes)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # Another num_classes than the file's: the head is left random, and a warning names both shapes.
    with pytest.warns(UserWarning, match=r"classifier of shape \[10, 1280\] \(10 classes\), the model has \[5, 1280\]"):
        five = EfficientNet.from_pretrained("efficientnet-b0", source="torchvision",
                                            weights_path=tmp_path / "torchvision-10.pth", num_classes=5)
    ref10 = cases[0][1]
    torch.testing.assert_close(five.stem.conv.weight, ref10.features[0][0].weight)


def test_torchvision_bn_eps_table_matches_torchvision():
    for name, eps in TORCHVISION_BN_EPS.items():
        ref = tv_model(name, "meta")
        assert {m.eps for m in ref.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {eps}, name


def test_efficientnet_pytorch_weights_give_the_same_outputs_with_tf_padding():
    torch.manual_seed(0)
    ref = randomise_batchnorm(efficientnet_pytorch.EfficientNet.from_name("efficientnet-b0", image_size=224)).eval()
    x = torch.randn(2, 3, 224, 224)
    for image_size in (None, 224):  # dynamic and static TF padding
        ours = EfficientNet.from_name("efficientnet-b0", image_size=image_size)
        load_source_state_dict(ours, ref.state_dict(), "efficientnet_pytorch").eval()
        with torch.no_grad():
            expected, got = ref(x), ours(x)
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
            feats = ours.extract_endpoints(x)
            ref_feats = ref.extract_endpoints(x)
        for key in ref_feats:
            torch.testing.assert_close(feats[key], ref_feats[key], atol=1e-5, rtol=1e-5)


def test_symmetric_padding_changes_outputs_of_tf_weights():
    """Why the padding follows the weights: the same weights with the other padding differ."""
    torch.manual_seed(0)
    ref = randomise_batchnorm(efficientnet_pytorch.EfficientNet.from_name("efficientnet-b0", image_size=224)).eval()
    sym = EfficientNet.from_name("efficientnet-b0", padding="symmetric")
    load_source_state_dict(sym, ref.state_dict(), "efficientnet_pytorch").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        # Early features: a random network washes differences out deeper down.
        expected = ref.extract_endpoints(x)["reduction_1"]
        got = sym.extract_endpoints(x)["reduction_1"]
    assert (got - expected).abs().max() > 1e-2 * expected.abs().max()


def test_url_table_matches_efficientnet_pytorch():
    assert EFFICIENTNET_PYTORCH_URLS == efficientnet_pytorch.utils.url_map


def test_efficientnet_pytorch_bn_settings_match():
    ref = efficientnet_pytorch.EfficientNet.from_name("efficientnet-b0")
    cfg = get_model_config("efficientnet-b0")
    assert ref._bn0.eps == cfg.bn_eps and math.isclose(ref._bn0.momentum, cfg.bn_momentum)


@pytest.mark.parametrize("name", ["efficientnetv2-s", "efficientnetv2-m", "efficientnetv2-l"])
def test_v2_batch_norm_momentum_matches_torchvision(name):
    """google/automl's bn_momentum=0.9 (TF) is PyTorch's 0.1, as in torchvision's V2."""
    momenta = {m.momentum for m in tv_model(name, "meta").modules() if isinstance(m, torch.nn.BatchNorm2d)}
    with torch.device("meta"):
        ours = {m.momentum for m in EfficientNet.from_name(name).modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert ours == momenta == {get_model_config(name).bn_momentum}


@pytest.mark.parametrize("name", list(V1_COEFFICIENTS))
def test_v1_coefficients_match_efficientnet_pytorch(name):
    assert efficientnet_pytorch.utils.efficientnet_params(name) == V1_COEFFICIENTS[name]


def test_memory_efficient_swish_equals_silu_in_values_and_gradients():
    torch.manual_seed(0)
    x = (torch.randn(4, 8, 5, 5, dtype=torch.float64) * 4).requires_grad_()
    y = x.detach().clone().requires_grad_()
    out, ref = MemoryEfficientSwish()(x), F.silu(y)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x.grad, y.grad)
    assert torch.autograd.gradcheck(MemoryEfficientSwish(), (x.detach().clone().requires_grad_(),))
    torch.testing.assert_close(Swish()(y.detach()), F.silu(y.detach()))


def test_gradients_match_torchvision():
    """Backward through the blocks (in-place residual, memory-efficient Swish) equals torchvision's."""
    torch.manual_seed(0)
    ref = randomise_batchnorm(tv_model("efficientnet-b0")).eval()
    ours = load_source_state_dict(model_for_source("efficientnet-b0", "torchvision"), ref.state_dict(),
                                  "torchvision").eval()
    x = torch.randn(2, 3, 96, 96)
    ref(x).square().sum().backward()
    ours(x).square().sum().backward()
    expected = dict(ref.named_parameters())["features.0.0.weight"].grad
    got = ours.stem.conv.weight.grad
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
