"""The nbval sanitizer masks only what varies between runs (nbval_sanitize.cfg), tested with nbval itself.

A notebook's stored output and what its code prints now are given different values; nbval
then runs it with the project's sanitizer: a changed image size must fail, a changed memory
address or timing must pass.
"""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def nbval_passes(tmp_path, printed: str, stored: str) -> bool:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"print({printed!r})", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored + "\n")]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval", str(path), "-q", "-p", "no:cacheprovider",
                          "--nbval-sanitize-with", str(ROOT / "nbval_sanitize.cfg")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    return run.returncode == 0


@pytest.mark.parametrize("printed, stored, passes", [
    ("efficientnet-b1 at 240x256", "efficientnet-b1 at 240x240", False),   # a changed size is a change
    ("[1, 3, 300x300]", "[1, 3, 300x320]", False),
    ("1000x400 figure", "1000x401 figure", False),
    ("<function f at 0x7f3a2c1d5e80>", "<function f at 0x55d1c0ffee00>", True),  # addresses vary
    ("took 12.3 ms", "took 15.9 ms", True),                                      # and so do timings
    ("largest difference 9.5e-07 of the largest output (within 1e-04): True",    # and rounding
     "largest difference 1.2e-06 of the largest output (within 1e-04): True", True),
    ("largest difference 9.5e-07 of the largest output (within 1e-04): True",    # not the check
     "largest difference 9.5e-07 of the largest output (within 1e-04): False", False),
    ("largest difference 9.5e-07 (within 1e-04)", "largest difference 9.5e-07 (within 1e-05)", False),
])
def test_sanitizer_masks_only_what_varies(tmp_path, printed, stored, passes):
    assert nbval_passes(tmp_path, printed, stored) is passes
