"""The numbered notebooks run against a lake too (issue 14): ``TGSPREAD_ARCHIVE`` names the lake directory that the
session's collected archive was published to, and every notebook runs without errors and draws its figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from collector import Archive
from collector._archive.lake import publish
from tests.helpers.notebook_helpers import NOTEBOOKS, assert_ran_clean, run_notebook
from tests.helpers.simworld import Collected


@pytest.fixture(scope="session")
def notebook_lake(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's collected archive (a copy), published to a lake."""
    base = tmp_path_factory.mktemp("notebook-lake")
    archive = base / "archive.duckdb"
    shutil.copy2(collected.path, archive)
    with Archive(archive) as opened:
        publish(opened, base / "lake")
    return base / "lake"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_lake(path: Path, notebook_lake: Path, kernel_specs: KernelSpecManager,
                                 tmp_path: Path) -> None:
    nb, _seconds = run_notebook(path, notebook_lake, tmp_path / "output", kernel_specs)
    assert_ran_clean(nb)
