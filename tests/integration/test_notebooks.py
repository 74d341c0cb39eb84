"""The notebooks run headless against a collected simulated archive, without errors, and every figure is
titled and labelled; the committed notebooks carry no outputs and match their scripts.

The source of each notebook is its percent-format script ``notebooks/NN_name.py``; ``notebooks/build.py``
builds the ``.ipynb`` from it (see notebooks/README.md). Every ``NN_*.py`` there is a notebook: a new script
is built, checked and executed here without being listed.

Each notebook is executed with nbclient in a fresh kernel that runs this very interpreter (a kernelspec
installed into a temporary folder, so no user-installed ``python3`` kernel can point elsewhere), with
``MPLBACKEND=Agg``, ``TGSPREAD_ARCHIVE`` pointing at a copy of the session's ``collected`` archive and
``TGSPREAD_OUTPUT`` at a temporary folder. A last cell appended to each notebook checks every figure
pyplot holds with :func:`analysis.plots.check_figure` and renders it, and reports the count (the runner is
tests/helpers/notebook_helpers.py; the fixtures ``notebook_archive`` and ``kernel_specs`` are in tests/conftest.py).

Checks of one notebook sit here too: 30's network exports, 70's section on assumptions, and 80 both on the
session's world (no coordination planted: no group) and on the ``planted`` world (the planted groups found).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from analysis import plots
from tests.helpers.notebook_helpers import (
    NOTEBOOK_DIR,
    NOTEBOOKS,
    SCRIPTS,
    assert_ran_clean,
    figures_checked,
    run_notebook,
    stream_text,
)
from tests.helpers.simworld import Collected


@pytest.fixture
def closed_figures() -> Iterator[None]:
    yield
    plt.close("all")


# -- the notebooks run ------------------------------------------------------------------------------


def test_every_numbered_notebook_is_present() -> None:
    stems = [p.stem for p in SCRIPTS]
    assert set(stems) >= {
        "00_archive_health", "10_posting_frequency", "20_forward_cascades", "30_channel_network",
        "40_unattributed_copies", "50_engagement_over_time", "60_links_and_domains", "70_diffusion_trees",
        "80_coordination",
    }
    built = sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert built == stems, "every notebook script has its .ipynb and every .ipynb its script"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, notebook_archive: Path, kernel_specs: KernelSpecManager,
                       tmp_path: Path) -> None:
    output = tmp_path / "output"
    nb, _seconds = run_notebook(path, notebook_archive, output, kernel_specs)
    assert_ran_clean(nb)
    stdout = stream_text(nb, "stdout")
    assert f"archive: {notebook_archive}" in stdout
    if path.stem == "30_channel_network":
        gexf = output / "forward_network.gexf"
        assert gexf.exists() and "<gexf" in gexf.read_text(encoding="utf-8")[:500]
        assert (output / "forward_network.graphml").exists()
    if path.stem == "70_diffusion_trees":   # its last section: the influencer ranking under three assumptions
        assert "change rank between first_source and latest_exposure" in stdout
    if path.stem == "80_coordination":      # the session's world plants no coordination: no group, no error
        assert "flagged at FDR 5%, in 0 groups" in stdout, stdout[-2000:]


@pytest.mark.slow
def test_80_coordination_finds_the_planted_groups(planted: Collected, kernel_specs: KernelSpecManager,
                                                  tmp_path: Path) -> None:
    """On a world with planted coordinated groups, notebook 80 reports as many groups as were planted and
    draws every figure (the group network, gaps, observed against expected, windows, velocity)."""
    archive = tmp_path / "archive.duckdb"
    shutil.copy2(planted.path, archive)
    nb, _seconds = run_notebook(NOTEBOOK_DIR / "80_coordination.ipynb", archive, tmp_path / "output", kernel_specs)
    assert_ran_clean(nb)
    stdout = stream_text(nb, "stdout")
    groups = sum(1 for g in planted.world.coordination if g.coordinated)
    assert groups >= 1 and f"in {groups:,} groups" in stdout, stdout[:2000]
    assert "Evidence of group" in stdout
    assert figures_checked(nb) >= 5


# -- the committed notebooks ------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first, params = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "**Question.**" in first.source and "cannot show" in first.source
    assert params.cell_type == "code" and params.metadata.get("tags") == ["parameters"]
    assert 'ARCHIVE = os.environ.get("TGSPREAD_ARCHIVE")' in params.source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs committed"
    code = "".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "open_notebook(ARCHIVE)" in code and "snapshot=" not in code
    assert "sys.path" not in code and "import collector" not in code and "from collector" not in code


def test_notebooks_match_their_scripts() -> None:
    done = subprocess.run([sys.executable, str(NOTEBOOK_DIR / "build.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOK_DIR / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def notebook_copy(tmp_path: Path) -> Path:
    """A copy of the notebooks folder (scripts, .ipynb, jupytext.toml), in step as committed."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for path in [*SCRIPTS, *NOTEBOOKS, NOTEBOOK_DIR / "jupytext.toml"]:
        shutil.copy2(path, folder / path.name)
    return folder


def _check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(NOTEBOOK_DIR / "build.py"), "--check", "--dir", str(folder)],
                          capture_output=True, text=True, check=False)


def test_check_fails_when_a_script_and_its_notebook_drift(notebook_copy: Path) -> None:
    assert _check(notebook_copy).returncode == 0
    script = notebook_copy / SCRIPTS[0].name
    original = script.read_text(encoding="utf-8")
    script.write_text(original.replace("# %%\n", "# %%\nprint('an edit in the script')\n", 1), encoding="utf-8")
    done = _check(notebook_copy)
    assert done.returncode == 1 and "has other cells than" in done.stderr and "make notebooks" in done.stderr
    script.write_text(original, encoding="utf-8")
    ipynb = script.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    code_cell = next(c for c in nb.cells if c.cell_type == "code")
    code_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="an output\n")]
    nbformat.write(nb, ipynb)
    done = _check(notebook_copy)
    assert done.returncode == 1 and "carries outputs" in done.stderr
    ipynb.unlink()
    assert "is missing" in _check(notebook_copy).stderr


def test_an_edit_in_jupyter_is_never_overwritten(notebook_copy: Path) -> None:
    """An .ipynb edited after its script (Jupyter without jupytext) stops the build; --from-ipynb keeps it."""
    build = _build_module()
    script = notebook_copy / SCRIPTS[0].name
    ipynb = script.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("edited_in_jupyter = 42"))
    nbformat.write(nb, ipynb)
    later = script.stat().st_mtime + 10
    os.utime(ipynb, (later, later))
    assert build.main(["--dir", str(notebook_copy)]) == 1
    assert "edited_in_jupyter = 42" in ipynb.read_text(encoding="utf-8"), "the Jupyter edit was overwritten"
    assert build.main(["--dir", str(notebook_copy), "--from-ipynb", script.stem]) == 0
    assert script.read_text(encoding="utf-8").rstrip().endswith("edited_in_jupyter = 42")
    assert _check(notebook_copy).returncode == 0


def test_saving_in_jupyter_writes_the_script(notebook_copy: Path) -> None:
    """The round trip: Jupyter saves a notebook through jupytext's contents manager (what JupyterLab uses when
    jupytext is installed); notebooks/jupytext.toml pairs it, so the edit lands in the script. The saved
    outputs make the check fail until the build drops them."""
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    manager = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(notebook_copy))
    name = NOTEBOOKS[0].name
    nb = manager.get(name)["content"]
    nb.cells.append(nbformat.v4.new_code_cell("added_in_jupyter = 1"))
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    first_code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="an output\n")]
    manager.save({"type": "notebook", "content": nb}, name)
    script = (notebook_copy / name).with_suffix(".py")
    assert script.read_text(encoding="utf-8").rstrip().endswith("added_in_jupyter = 1")
    done = _check(notebook_copy)
    assert done.returncode == 1 and "carries outputs" in done.stderr
    assert _build_module().main(["--dir", str(notebook_copy)]) == 0
    assert _check(notebook_copy).returncode == 0
    assert "an output" not in (notebook_copy / name).read_text(encoding="utf-8")


def test_scripts_are_what_jupyter_pairing_saves() -> None:
    """Saving a notebook in Jupyter (jupytext pairing, notebooks/jupytext.toml) rewrites its script unchanged."""
    build = _build_module()
    for script in SCRIPTS:
        text = build.script_text(nbformat.read(script.with_suffix(".ipynb"), as_version=4))
        assert text == script.read_text(encoding="utf-8"), script.name


# -- analysis.plots ---------------------------------------------------------------------------------


def test_check_figure_refuses_missing_title_and_labels(closed_figures: None) -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    with pytest.raises(plots.UnlabelledFigureError, match="no title"):
        plots.check_figure(fig)
    ax.set_title("t")
    ax.set_xlabel("x (s)")
    with pytest.raises(plots.UnlabelledFigureError, match="no y-axis label"):
        plots.check_figure(fig)
    ax.set_ylabel("y (views)")
    plots.check_figure(fig)
    image = ax.imshow(np.ones((2, 2)))
    bar = fig.colorbar(image, ax=ax)
    with pytest.raises(plots.UnlabelledFigureError, match="colour bar"):
        plots.check_figure(fig)
    bar.set_label("posts")
    plots.check_figure(fig)


def test_check_figure_accepts_suptitle_and_shared_labels(closed_figures: None) -> None:
    fig, axes = plots.subplots(1, 2, title="both", xlabel="lag (hours)", ylabel="posts")
    axes[0, 0].plot([1], [1])
    plots.check_figure(fig)
    fig2, ax2 = plt.subplots()
    ax2.set_axis_off()
    with pytest.raises(plots.UnlabelledFigureError):
        plots.check_figure(fig2)
    ax2.set_title("a drawing")
    plots.check_figure(fig2)


def test_check_open_figures_counts_and_checks(closed_figures: None, tmp_path: Path) -> None:
    plt.close("all")
    plots.histogram([1, 2, 3], title="h", xlabel="x (s)", ylabel="posts")
    plots.ccdf({"a": [1, 10, 100]}, title="c", xlabel="size (forwards)")
    assert plots.check_open_figures(save_to=tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure-01.png", "figure-02.png"]
    plt.subplots()
    with pytest.raises(plots.UnlabelledFigureError):
        plots.check_open_figures()


def test_helpers_draw_labelled_figures_also_from_empty_data(closed_figures: None) -> None:
    from datetime import UTC, datetime, timedelta

    import networkx as nx
    import polars as pl

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    figures = [
        plots.ccdf([], title="t", xlabel="x (s)"),
        plots.ccdf({"a": [0, 1, 5, float("nan")]}, title="t", xlabel="x (s)"),
        plots.histogram([], title="t", xlabel="x", ylabel="y", log_x=True),
        plots.histogram([0.5, 3, 3, 700], title="t", xlabel="x", ylabel="y", log_x=True, log_y=True),
        plots.lines({"a": ([t0, t0 + timedelta(days=1)], [1, 2])}, title="t", xlabel="day", ylabel="posts"),
        plots.lines({}, title="t", xlabel="x", ylabel="y"),
        plots.scatter([1, 10], [0, 5], log_y=True, groups=["a", "b"], title="t", xlabel="x", ylabel="y"),
        plots.bars(["a", "b"], [3, 0.5], title="t", xlabel="x", ylabel="y"),
        plots.bars([1, 2], [3, 4], horizontal=False, log_scale=True, title="t", xlabel="x", ylabel="y"),
        plots.bars([], [], title="t", xlabel="x", ylabel="y"),
        plots.heatmap([[1, 2], [3, 4]], row_labels=["r1", "r2"], col_labels=["c1", "c2"], annotate=True,
                      title="t", xlabel="x", ylabel="y", colorbar_label="posts"),
        plots.network(nx.DiGraph(), title="empty"),
    ]
    g = nx.DiGraph()
    g.add_edge("1", "2", weight=5)
    g.add_edge("2", "1", weight=1)
    g.add_edge("3", "1", weight=20)
    figures.append(plots.network(g, title="net", communities=[{"1", "2"}, {"3"}], node_size={"1": 10.0},
                                 labels={"1": "one"}))
    nodes = pl.DataFrame({
        "node": [0, 1, 2], "parent_node": [None, 0, 1], "depth": [0, 1, 2], "channel_id": [7, 8, 9],
        "posted_at": [t0, t0 + timedelta(hours=1), t0 + timedelta(hours=5)],
    })
    figures.append(plots.tree(nodes, title="tree", names={7: "@seven"}, log_x=True))
    for fig in figures:
        plots.check_figure(fig)
        assert fig.axes[0].get_title()
    assert plots.check_open_figures() == len(figures)


def test_undirected_network_and_empty_grouped_scatter_draw_without_warnings(closed_figures: None) -> None:
    """Notebook 80 draws channel pairs as an undirected graph (no arrow options may reach networkx: it warns) and
    a grouped scatter that is empty on a world without co-acting pairs (no empty legend: Matplotlib warns)."""
    import warnings

    import networkx as nx

    g = nx.Graph()
    g.add_edge(1, 2, weight=3)
    g.add_edge(2, 3, weight=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.network(g, title="pairs", communities=[{1, 2}], labels={1: "one"})
        empty = plots.scatter([], [], groups=[], log_x=True, title="no pairs", xlabel="x (s)", ylabel="y (s)")
    plots.check_figure(fig)
    plots.check_figure(empty)


def test_helpers_refuse_nothing_but_require_titles() -> None:
    with pytest.raises(TypeError):
        plots.histogram([1, 2], xlabel="x", ylabel="y")  # type: ignore[call-arg]
