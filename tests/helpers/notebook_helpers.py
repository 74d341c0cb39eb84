"""Running the numbered notebooks headless, shared by the tests that run them (tests/integration/test_notebooks.py,
tests/integration/test_notebooks_lake.py, tests/integration/test_hostile_input.py); their fixtures ``kernel_specs`` and
``notebook_archive`` are in tests/conftest.py.

Each notebook is executed with nbclient in a fresh kernel that runs this very interpreter (a kernelspec
installed into a temporary folder, so no user-installed ``python3`` kernel can point elsewhere), with
``MPLBACKEND=Agg``, ``TGSPREAD_ARCHIVE`` pointing at the archive given and ``TGSPREAD_OUTPUT`` at a folder
given. A last cell appended to each notebook checks every figure pyplot holds with
:func:`analysis.plots.check_figure` and renders it, and prints the count (:func:`figures_checked` reads it).

Example::

    specs = install_kernel(tmp / "kernel")
    nb, seconds = run_notebook(NOTEBOOK_DIR / "20_forward_cascades.ipynb", archive, tmp / "out", specs)
    assert figures_checked(nb) >= 1
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat.notebooknode import NotebookNode

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
SCRIPTS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
NOTEBOOKS = [p.with_suffix(".ipynb") for p in SCRIPTS]
KERNEL = "tgspread-test"
CELL_TIMEOUT_S = 180

CHECK_CELL = """
import os as _os
import sys as _sys

from analysis.plots import check_open_figures as _check

_expected = _os.environ["TGSPREAD_TEST_PYTHON"]
assert _os.path.realpath(_sys.executable) == _os.path.realpath(_expected), (_sys.executable, _expected)
print(f"TGSPREAD_FIGURES_CHECKED={_check(draw=True, save_to=_os.environ.get('TGSPREAD_FIGURES') or None)}")
"""


def install_kernel(prefix: Path) -> KernelSpecManager:
    """A kernelspec named ``tgspread-test`` for this interpreter under ``prefix``, and a manager seeing it."""
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL, display_name="tgspread tests", prefix=str(prefix))
    kernels = prefix / "share" / "jupyter" / "kernels"
    spec = KernelSpecManager(kernel_dirs=[str(kernels)]).get_kernel_spec(KERNEL)
    assert os.path.realpath(spec.argv[0]) == os.path.realpath(sys.executable), spec.argv
    return KernelSpecManager(kernel_dirs=[str(kernels)])


def run_notebook(path: Path, archive: Path, output: Path, specs: KernelSpecManager,
                 figures: Path | None = None) -> tuple[NotebookNode, float]:
    """Execute the notebook at ``path`` against ``archive`` (cwd: the notebooks folder); returns the
    executed notebook and the seconds it took. ``figures``: also save every figure there as PNG.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell.
    """
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL.strip()))
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "TGSPREAD_ARCHIVE": str(archive),
        "TGSPREAD_OUTPUT": str(output),
        "TGSPREAD_FIGURES": str(figures) if figures else "",
        "TGSPREAD_TEST_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    client.execute(env=env)
    return nb, time.perf_counter() - start


def stream_text(nb: NotebookNode, name: str) -> str:
    """Everything the executed notebook printed to the stream ``name`` (``stdout`` or ``stderr``)."""
    return "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out.get("name") == name
    )


def figures_checked(nb: NotebookNode) -> int:
    """How many figures the appended check cell found titled and labelled; fails when it did not run."""
    stdout = stream_text(nb, "stdout")
    found = re.search(r"TGSPREAD_FIGURES_CHECKED=(\d+)", stdout)
    assert found is not None, stdout[-2000:]
    return int(found.group(1))


def assert_ran_clean(nb: NotebookNode) -> None:
    """No traceback and no warning printed to stderr, and at least one figure checked."""
    stderr = stream_text(nb, "stderr")
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr[-3000:]
    assert figures_checked(nb) >= 1, "the notebook drew no figure"
