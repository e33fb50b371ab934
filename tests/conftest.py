"""Fixtures shared by several test files. Helpers that chapters use too live in the package
(randomised BatchNorm statistics: ``effnet_tutorial.weights.randomise_batchnorm``)."""

import shutil
import subprocess
import sys
from pathlib import Path

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

    def conv_sizes(config, input_size):
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

    return conv_sizes


def project_wheel(folder: Path) -> Path:
    """A wheel of the project as pip would install it, built offline from a copy of the
    sources in ``folder`` (a build leaves files next to the sources it builds)."""
    root = Path(__file__).resolve().parents[1]
    project = folder / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, project / name)
    shutil.copytree(root / "effnet_tutorial", project / "effnet_tutorial",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(folder / "dist"), str(project)], check=True,
                   capture_output=True)
    wheel, = (folder / "dist").glob("effnet_tutorial-*.whl")
    return wheel
