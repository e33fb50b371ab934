"""effnet_tutorial.feature_maps: stage outputs, SE gates, class variation, activation maps.

Every expected value is computed another way: shapes from trace_shapes, the head's output
from extract_features, gates from the SE layer's own input and output, variances from
numpy's definition of the variance.
"""
import numpy as np
import pytest
import torch

from effnet_tutorial import EfficientNet, trace_shapes
from effnet_tutorial.feature_maps import (ClassVariation, class_means, class_variation,
                                          mean_activation_map, se_gates, stage_outputs)
from effnet_tutorial.layers import SqueezeExcite
from effnet_tutorial.train import DEFAULT_MODEL, build_model


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = build_model(DEFAULT_MODEL, num_classes=10, in_channels=1)
    model.train()           # the functions must restore this mode
    return model


def test_stage_outputs_names_shapes_and_logits(small):
    x = torch.randn(3, 1, 32, 32)
    maps, logits = stage_outputs(small, x)
    assert small.training                                   # mode restored
    traced = trace_shapes(small, (3, 1, 32, 32), print_fn=None)
    expected = [(name, shape) for name, shape in traced if name not in ("pool", "dropout", "classifier")]
    assert [(name, tuple(m.shape)) for name, m in maps.items()] == expected
    assert list(maps)[:3] == ["stem", "stages.2", "stages.3"] and list(maps)[-1] == "head"
    small.eval()
    try:
        with torch.no_grad():
            torch.testing.assert_close(maps["head"], small.extract_features(x))
            torch.testing.assert_close(logits, small(x))
    finally:
        small.train()
    assert not any(m.requires_grad for m in maps.values())


def test_stage_outputs_of_v2_use_its_stage_numbers():
    with torch.device("meta"):
        model = EfficientNet.from_name("efficientnetv2-s")
    maps, _ = stage_outputs(model, torch.zeros(1, 3, 64, 64, device="meta"))
    assert list(maps) == ["stem", *(f"stages.{n}" for n in range(1, 7)), "head"]


def test_se_gates_are_the_factors_the_se_layer_multiplies_by(small):
    x = torch.randn(4, 1, 32, 32)
    gates = se_gates(small, x)
    se_layers = {f"stages.{n}.{j}": b.se for n, s in small.stages.named_children()
                 for j, b in enumerate(s) if isinstance(b.se, SqueezeExcite)}
    assert list(gates) == list(se_layers) and len(gates) == 7
    # Independent measurement: the SE layer's output divided by its input.
    seen = {}
    hooks = [se.register_forward_hook(lambda m, a, out, name=name: seen.__setitem__(name, (a[0], out)))
             for name, se in se_layers.items()]
    small.eval()
    try:
        with torch.no_grad():
            small(x)
    finally:
        small.train()
        for h in hooks:
            h.remove()
    for name, g in gates.items():
        inp, out = seen[name]
        assert g.shape == (4, inp.shape[1])
        assert bool(((g > 0) & (g < 1)).all())
        torch.testing.assert_close(out, inp * g[:, :, None, None])


def test_se_gates_of_a_model_without_se_says_so():
    with torch.device("meta"):
        lite = EfficientNet.from_name("efficientnet-lite0")
    with pytest.raises(ValueError, match="efficientnet-lite0 has no squeeze-and-excitation"):
        se_gates(lite, torch.zeros(1, 3, 224, 224, device="meta"))
    with pytest.raises(TypeError, match="expected an EfficientNet"):
        stage_outputs(torch.nn.Conv2d(3, 3, 1), torch.zeros(1, 3, 8, 8))


def test_class_variation_is_the_law_of_total_variance():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (200,), generator=gen)
    values = torch.randn(200, 7, generator=gen) + labels[:, None].float() * 0.3
    v = class_variation(values, labels)
    a, y = values.double().numpy(), labels.numpy()
    total = a.var(axis=0).mean()                                         # numpy's population variance
    within = np.mean([((a[y == k] - a[y == k].mean(0)) ** 2).sum() for k in range(5)]) * 5 / a.size
    between = sum((y == k).sum() * ((a[y == k].mean(0) - a.mean(0)) ** 2).sum() for k in range(5)) / a.size
    assert v.total_std ** 2 == pytest.approx(total, rel=1e-12)
    assert v.within_std ** 2 == pytest.approx(within, rel=1e-12)
    assert v.between_std ** 2 == pytest.approx(between, rel=1e-12)
    assert v.between_std ** 2 + v.within_std ** 2 == pytest.approx(total, rel=1e-12)
    assert v.class_share == pytest.approx(between / total, rel=1e-12)


def test_class_variation_extremes():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    by_class = torch.eye(3)[labels]                    # a function of the class alone
    assert class_variation(by_class, labels).class_share == pytest.approx(1.0)
    assert class_variation(by_class, labels).within_std == 0
    same_means = torch.tensor([[1.0], [-1.0], [2.0], [-2.0], [0.5], [-0.5]])   # every class mean is 0
    assert class_variation(same_means, labels).between_std == 0
    assert class_variation(same_means, labels).class_share == 0
    flat = class_variation(torch.ones(6, 2), labels)
    assert isinstance(flat, ClassVariation) and flat.total_std == 0 and np.isnan(flat.class_share)


def test_class_means_and_bad_input():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 10.0]])
    labels = torch.tensor([1, 1, 3])
    means = class_means(values, labels, num_classes=4)
    assert means.shape == (4, 2)
    torch.testing.assert_close(means[[1, 3]], torch.tensor([[2.0, 3.0], [10.0, 10.0]]))
    assert bool(means[[0, 2]].isnan().all())                 # classes without images
    with pytest.raises(ValueError, match="labels go up to 3"):
        class_means(values, labels, num_classes=3)
    with pytest.raises(ValueError, match=r"values must be a float tensor of shape \(N, C\)"):
        class_variation(torch.ones(3), labels)
    with pytest.raises(ValueError, match=r"labels must be an integer tensor of shape \(3,\)"):
        class_variation(values, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        class_variation(values, torch.tensor([0, 1]))


def test_mean_activation_map_finds_a_hot_spot():
    fmap = torch.zeros(2, 5, 7, 7)
    fmap[0, :, 1, 5] = -3.0          # absolute values count: a negative spot is active too
    fmap[1, 2, 6, 0] = 4.0
    heat = mean_activation_map(fmap, (224, 224))
    assert heat.shape == (2, 224, 224)
    assert float(heat.min()) == 0.0 and float(heat.max()) == 1.0
    peaks = [divmod(int(h.argmax()), 224) for h in heat]      # (row, column) of the maximum
    assert [(r // 32, c // 32) for r, c in peaks] == [(1, 5), (6, 0)]   # 224 / 7 = 32 px a cell
    assert float(mean_activation_map(torch.ones(1, 3, 4, 4), 8).abs().max()) == 0.0   # flat: all 0
    with pytest.raises(ValueError, match=r"expected a float feature map of shape \(B, C, h, w\)"):
        mean_activation_map(torch.ones(3, 4, 4), 8)
