"""The README's figures (docs/img/*.png) show the demo as it is today.

``notebooks/render_readme_plots.py`` stores, next to each figure, the SHA-256 of the data it plots. Here the
demo archive is built as ``make demo`` builds it, the data is recomputed from it, and the digests must match:
a change to the simulated world, the collector or an analysis function that changes a figure fails this
test until ``make readme-figures`` is run. Pixels are not compared (they differ across Matplotlib versions).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.simworld import Collected

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
RENDER = ROOT / "notebooks" / "render_readme_plots.py"


def _env() -> dict[str, str]:
    return {**os.environ, "MPLBACKEND": "Agg",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}


def _check(archive: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RENDER), "--check", "--archive", str(archive)], env=_env(),
                          capture_output=True, text=True, check=False, timeout=600)


def test_every_figure_has_its_data_digest_and_is_shown() -> None:
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "analysis.md").read_text(
        encoding="utf-8")
    shown = set(re.findall(r"img/([\w-]+\.png)", docs))
    pngs = {p.name for p in IMG.glob("*.png")}
    assert shown <= pngs, f"figures referenced but missing: {shown - pngs}"
    for png in pngs:
        meta = json.loads((IMG / png).with_suffix(".json").read_text(encoding="utf-8"))
        assert meta["figure"] == png and re.fullmatch(r"[0-9a-f]{64}", meta["data_sha256"])


@pytest.mark.slow
def test_readme_figures_match_the_demo(tmp_path: Path) -> None:
    archive = tmp_path / "demo.duckdb"
    subprocess.run([sys.executable, "-m", "collector", "demo", "--archive", str(archive)], env=_env(),
                   capture_output=True, text=True, check=True, timeout=900)
    done = _check(archive)
    assert done.returncode == 0, f"{done.stderr[-3000:]}\nrun `make readme-figures` and commit docs/img/"


def test_check_notices_figures_of_other_data(collected: Collected) -> None:
    """Against another archive (the suite's collected world, not the demo) every figure is reported stale."""
    done = _check(collected.path)
    assert done.returncode == 1
    assert "stale: " in done.stderr and "cascade_reach" in done.stderr and "forward_network" in done.stderr
