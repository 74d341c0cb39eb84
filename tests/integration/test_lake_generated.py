"""The lake the benchmarks generate directly as Parquet (``benchmarks.lake_data.generate_lake``, 100M posts without
an archive) has the layout, file names and column types that ``tgspread publish`` writes, and reads like one."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import analysis
from collector import Archive
from collector._archive.lake import publish
from tests.helpers.simworld import Collected

connect_module = importlib.import_module("analysis._connect")      # the module (analysis.connect is the function)
ROOT = Path(__file__).resolve().parents[2]
GENERATED = "gen"        # the collector name of a generated lake's files


def generate_lake(posts: int, channels: int, dest: Path) -> Path:
    """``benchmarks.lake_data.generate_lake`` in its own process (tests import nothing from benchmarks)."""
    subprocess.run([sys.executable, "-m", "benchmarks.lake_data", "--generate", str(posts), "--channels",
                    str(channels), "--dest", str(dest), "--memory-limit", "500MB"], check=True, cwd=ROOT,
                   capture_output=True)
    return dest


def _schema(path: Path) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in pq.read_schema(path)]


def test_a_generated_lake_has_the_published_layout_and_types(collected: Collected, tmp_path: Path) -> None:
    shutil.copy2(collected.path, tmp_path / "a.duckdb")
    with Archive(tmp_path / "a.duckdb") as opened:
        publish(opened, tmp_path / "published")
    generated = generate_lake(3_000, 12, tmp_path / "generated")
    for table in ("posts", "channels"):
        ours = sorted(generated.glob(f"{table}/slot=*/**/{GENERATED}.parquet"))
        theirs = sorted((tmp_path / "published").glob(f"{table}/slot=*/**/main.parquet"))
        assert ours and theirs
        assert {_schema(p) == _schema(theirs[0]) for p in ours} == {True}, table
        depth = {len(p.relative_to(generated / table).parts) for p in ours}
        assert depth == {len(p.relative_to(tmp_path / "published" / table).parts) for p in theirs}
    manifest = json.loads((generated / "_manifests" / f"{GENERATED}.json").read_text())
    con = analysis.connect(generated)
    posts = con.execute("SELECT count(*), count(DISTINCT (channel_id, message_id)) FROM posts").fetchall()[0]
    assert posts[0] == posts[1] == manifest["tables"]["posts"]["rows"] > 2_500
    wrong = con.execute(  # every row in the partition of its channel and month, as publish puts it
        f"SELECT count(*) FROM posts WHERE slot <> {analysis.lake.slot_sql('channel_id')} "
        "OR month <> strftime(posted_at, '%Y-%m')").fetchall()[0][0]
    assert wrong == 0
    assert analysis.cascades(con).height > 0 and analysis.url_spread(con).height > 0
    assert len(analysis.channel_names(con)) == 12


def test_snapshot_warns_above_its_measured_size(collected: Collected, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connect_module, "SNAPSHOT_WARN_POSTS", 1)
    with pytest.warns(UserWarning, match="publish a lake"):
        analysis.connect(collected.path, snapshot=True).close()
    monkeypatch.setattr(connect_module, "SNAPSHOT_WARN_POSTS", 10**12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analysis.connect(collected.path, snapshot=True).close()
