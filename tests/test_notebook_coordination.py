"""Notebook 80_coordination (a jupytext percent-format script) and the 70 section on assumptions run
headless against the collected planted world, with every figure titled and labelled.

The scripts are converted with jupytext and executed with nbclient through ``tests.test_notebooks``'s
runner (a kernel of this interpreter, ``MPLBACKEND=Agg``, a final cell that checks every figure).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from tests.simworld import Collected
from tests.test_notebooks import NOTEBOOK_DIR, install_kernel, run_notebook, stream_text


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    return install_kernel(tmp_path_factory.mktemp("kernel80"))


@pytest.fixture(scope="module")
def archive(planted: Collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("nb80") / "archive.duckdb"
    shutil.copy2(planted.path, target)
    return target


def _figures(nb: nbformat.NotebookNode) -> int:
    out = stream_text(nb, "stdout")
    return int(out.rsplit("TGSPREAD_FIGURES_CHECKED=", 1)[1].split()[0])


def test_80_coordination_runs_and_finds_the_planted_groups(archive: Path, specs: KernelSpecManager,
                                                           planted: Collected, tmp_path: Path) -> None:
    nb = jupytext.read(NOTEBOOK_DIR / "80_coordination.py")
    assert nb.cells[0].cell_type == "markdown" and "cannot show" in nb.cells[0].source
    path = tmp_path / "80_coordination.ipynb"
    nbformat.write(nb, path)
    done, _seconds = run_notebook(path, archive, tmp_path / "out", specs)
    text = stream_text(done, "stdout")
    groups = sum(1 for g in planted.world.coordination if g.coordinated)
    assert f"in {groups:,} groups" in text, text[:2000]
    assert _figures(done) >= 5


def test_70_assumptions_section_runs_after_notebook_70(archive: Path, specs: KernelSpecManager,
                                                       tmp_path: Path) -> None:
    base = nbformat.read(NOTEBOOK_DIR / "70_diffusion_trees.ipynb", as_version=4)
    section = jupytext.read(NOTEBOOK_DIR / "70_assumptions_section.py")
    assert section.cells[0].source.startswith("## How the influencer ranking changes")
    base.cells += section.cells
    path = tmp_path / "70_with_section.ipynb"
    nbformat.write(base, path)
    done, _seconds = run_notebook(path, archive, tmp_path / "out", specs)
    assert "change rank between first_source and latest_exposure" in stream_text(done, "stdout")
    assert _figures(done) >= 2
