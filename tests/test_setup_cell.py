"""The set-up cell that opens every chapter (tools/sync_setup_cell.py), run as a reader's kernel would.

Each case runs the cell's source in a fresh virtual environment that does not have the
package: outside Colab (it must say how to install), in a simulated Colab (a stand-in
``google.colab`` module) installing from a local copy of the project, and in a simulated
Colab that cannot install (no network, or the repository not published).
"""
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from conftest import project_wheel  # noqa: E402
from sync_setup_cell import setup_cell_source  # noqa: E402


@pytest.fixture
def bare_python(tmp_path):
    """A venv with pip but without effnet_tutorial (nor torch): the reader's fresh kernel."""
    where = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    return where / "bin" / "python"


def run_cell(python, tmp_path, colab: bool, source: str | None):
    fake = tmp_path / "fake"
    (fake / "google").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab.py").write_text("")
    prelude = "import google.colab\n" if colab else ""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(fake), PIP_NO_DEPS="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")
    if source is not None:
        env["EFFNET_TUTORIAL_SOURCE"] = source
    return subprocess.run([str(python), "-c", prelude + setup_cell_source()], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)


def test_outside_colab_it_says_how_to_install(bare_python, tmp_path):
    out = run_cell(bare_python, tmp_path, colab=False, source=None)
    assert out.returncode == 1
    assert "effnet_tutorial is not installed in this kernel" in out.stderr and "make lab" in out.stderr
    assert "Traceback" not in out.stderr


def test_in_colab_it_installs_the_package(bare_python, tmp_path):
    wheel = project_wheel(tmp_path)
    out = run_cell(bare_python, tmp_path, colab=True, source=str(wheel))
    assert out.returncode == 0, out.stderr
    found = subprocess.run([str(bare_python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('effnet_tutorial').origin)"], capture_output=True, text=True)
    assert found.stdout.strip().endswith("effnet_tutorial/__init__.py")


def test_in_colab_a_failed_install_gives_one_clear_message(bare_python, tmp_path):
    out = run_cell(bare_python, tmp_path, colab=True, source=str(tmp_path / "no-such-project"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "Could not install effnet_tutorial from" in out.stderr and "Is the runtime online?" in out.stderr


def test_every_chapter_opens_with_the_setup_cell():
    check = subprocess.run([sys.executable, str(ROOT / "tools" / "sync_setup_cell.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        first = next(c for c in cells if c["cell_type"] == "code")
        assert "remove-cell" in first["metadata"]["tags"], path.name
