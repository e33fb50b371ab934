"""Fixtures and helpers shared by several test files (``from conftest import ...``)."""

import pytest
import torch

from effnet_tutorial import EfficientNet


@pytest.fixture
def conv_output_sizes():
    """A function: (config, input_size) -> (meta model, element counts of every conv output).

    The model is built on the meta device (shapes only), so the sizes cost nothing to get;
    they are the independent measurement that the analytic memory estimates are checked
    against.
    """

    def measure(config, input_size):
        with torch.device("meta"):
            model = EfficientNet(config).eval()
        sizes = []
        hooks = [m.register_forward_hook(lambda m, a, out: sizes.append(out.numel()))
                 for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        try:
            with torch.no_grad():
                model(torch.zeros(input_size, device="meta"))
        finally:
            for h in hooks:
                h.remove()
        return model, sizes

    return measure


def randomise_bn(model, seed=0):
    """Random BN statistics and affine parameters, so eps and statistics really matter."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model
