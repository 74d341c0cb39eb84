"""The lake (issue 14): publishing what changed, reading it back identically, surviving kills, and drift checks."""

from __future__ import annotations

import inspect
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import networkx as nx
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import analysis
from analysis._lake_schema import LAKE_SCHEMA
from analysis.lake import connect_lake
from collector import Archive
from collector._archive.lake import lake_tables, publish, read_manifest
from collector._archive.lake_verify import lake_findings
from collector._archive.rows import POSTS_SCHEMA
from tests.helpers.lake_schema_render import render
from tests.helpers.simworld import Collected, copy_archive

ROOT = Path(__file__).resolve().parents[2]



@pytest.fixture(scope="module")
def published(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the shared archive and its lake (collector 'main'), published once."""
    base = tmp_path_factory.mktemp("lake")
    archive = copy_archive(collected.path, base / "archive.duckdb")
    with Archive(archive) as opened:
        publish(opened, base / "lake")
    return archive, base / "lake"


def _files(lake: Path, collector: str = "main") -> dict[str, tuple[int, int]]:
    """Relative path -> (inode, mtime_ns) of a collector's data files."""
    return {str(p.relative_to(lake)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in lake.glob(f"*/**/{collector}.parquet")} | {
        str(p.relative_to(lake)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in lake.glob(f"*/{collector}.parquet")}


def _later(archive: Archive) -> Any:
    row = archive.con.execute("SELECT max(last_seen_at) FROM posts").fetchall()
    return row[0][0] + timedelta(hours=1)


def _posts_rows(archive: Archive, where: str, limit: int | None = None) -> pa.Table:
    cols = ", ".join(POSTS_SCHEMA.names)
    table = archive.con.sql(f"SELECT {cols} FROM posts WHERE {where} ORDER BY channel_id, message_id"
                            + (f" LIMIT {limit}" if limit else "")).to_arrow_table()
    return table.cast(POSTS_SCHEMA)


# -- the schema readers fall back on ------------------------------------------------------------------------
def test_the_readers_schema_copy_is_what_a_fresh_archive_publishes() -> None:
    path = ROOT / "analysis" / "_lake_schema.py"
    assert path.read_text(encoding="utf-8") == render(), \
        "analysis/_lake_schema.py is out of date: run `python -m tests.helpers.lake_schema_render`"


def test_layout_and_people_rules(published: tuple[Path, Path]) -> None:
    archive, lake = published
    posts = list((lake / "posts").glob("slot=*/month=*/main.parquet"))
    assert posts and all(len(p.parent.parent.name) == len("slot=07") for p in posts)
    schema = pq.read_schema(posts[0])
    assert "raw" not in schema.names and "slot" not in schema.names and "month" not in schema.names
    assert schema.field("text").type == pa.string()
    assert not (lake / "pseudonym_keys").exists() and not (lake / "lake_dirty").exists()
    assert not (lake / "lake_pickups").exists()
    assert all("access_hash" not in pq.read_schema(p).names for p in (lake / "channels").glob("*/*.parquet"))
    # sorted within the file by (channel_id, message_id)
    for path in posts:
        keys = pq.read_table(path, columns=["channel_id", "message_id"]).to_pylist()
        assert keys == sorted(keys, key=lambda r: (r["channel_id"], r["message_id"]))
    # hidden forward senders are pseudonymised, never written as the name
    con = connect_lake(lake)
    with Archive(archive, read_only=True) as opened:
        names = {r[0] for r in opened.con.execute(
            "SELECT DISTINCT fwd_from_name FROM posts WHERE fwd_channel_id IS NULL AND fwd_from_name IS NOT NULL"
        ).fetchall()}
    lake_names = {r[0] for r in con.execute(
        "SELECT DISTINCT fwd_from_name FROM posts WHERE fwd_channel_id IS NULL AND fwd_from_name IS NOT NULL"
    ).fetchall()}
    assert names and lake_names and not names & lake_names
    assert all(len(n) == 16 for n in lake_names)
    manifest = read_manifest(lake, "main")
    assert manifest is not None and manifest["schema_version"] >= 8
    with Archive(archive, read_only=True) as opened:
        total = opened.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
    assert manifest["tables"]["posts"]["rows"] == total
    assert all(p["digest"].startswith(f"{p['rows']}:") for p in manifest["tables"]["posts"]["partitions"].values())


# -- the same frames on an archive and on its lake ----------------------------------------------------------
def _frame_functions() -> list[str]:
    """Every public analysis function that takes a connection and returns a frame."""
    out = []
    for name in analysis.__all__:
        fn = getattr(analysis, name)
        if not inspect.isfunction(fn):
            continue
        params = list(inspect.signature(fn).parameters)
        if params and params[0] == "con" and inspect.signature(fn).return_annotation in ("pl.DataFrame",
                                                                                         pl.DataFrame):
            out.append(name)
    return out


#: Public functions that take a connection but return something other than a frame: compared their own way.
OTHER = {"network_graph", "export_gexf", "export_graphml", "coordination", "channel_names"}
#: Arguments that make a function return rows on the test world (velocity returns only outliers by default).
ARGS: dict[str, dict[str, Any]] = {"velocity": {"outliers_only": False, "min_posts": 3}}


def test_a_lake_connection_returns_freed_memory_and_keeps_its_limit(tmp_path: Path) -> None:
    """DuckDB's allocator gives a finished query's memory back, so a large frame sorted in Polars does not sit
    beside it (cascades over 100M posts: 4.6 GB -> 3.1 GB, docs/lake.md); the 2 GB limit still applies."""
    (tmp_path / "_manifests").mkdir()         # a lake with nothing in it (a folder without is no lake)
    con = connect_lake(tmp_path)
    background, limit = con.execute("SELECT current_setting('allocator_background_threads'), "
                                    "current_setting('memory_limit')").fetchone()   # type: ignore[misc]
    assert background is True
    assert limit == duckdb.connect(config={"memory_limit": "2GB"}).execute(
        "SELECT current_setting('memory_limit')").fetchone()[0]   # type: ignore[index]


def test_every_public_function_taking_a_connection_is_covered() -> None:
    takes_con = {n for n in analysis.__all__ if inspect.isfunction(getattr(analysis, n))
                 and list(inspect.signature(getattr(analysis, n)).parameters)[:1] == ["con"]}
    assert takes_con == set(_frame_functions()) | OTHER
    assert {"cascades", "forward_network", "posting_frequency", "url_spread"} <= set(_frame_functions())


@pytest.mark.parametrize("name", _frame_functions())
def test_every_analysis_function_gives_identical_frames_on_archive_and_lake(
        name: str, published: tuple[Path, Path]) -> None:
    archive, lake = published
    fn: Callable[..., pl.DataFrame] = getattr(analysis, name)
    kwargs = ARGS.get(name, {})
    with analysis.connect(archive) as on_archive:
        expected = fn(on_archive, **kwargs)
    on_lake = analysis.connect(lake)
    got = fn(on_lake, **kwargs)
    assert expected.height > 0 or name in {"copies", "copy_clusters"}, name
    assert got.schema == expected.schema
    assert got.equals(expected), name


def test_graphs_coordination_and_names_on_a_lake(published: tuple[Path, Path], tmp_path: Path) -> None:
    archive, lake = published
    with analysis.connect(archive) as on_archive:
        g1 = analysis.network_graph(on_archive)
        analysis.export_gexf(on_archive, tmp_path / "a.gexf")
        coordinated = analysis.coordination(on_archive, min_repeats=2, window=timedelta(hours=1))
        names = analysis.channel_names(on_archive)
    on_lake = analysis.connect(lake)
    on_lake_coordinated = analysis.coordination(on_lake, min_repeats=2, window=timedelta(hours=1))
    for part in ("pairs", "groups", "evidence"):
        # the same rows; p- and q-values may differ in the last bits (DuckDB sums floats in parallel, in no
        # fixed order, on a file as on a lake), never more than a relative 1e-9
        assert_frame_equal(getattr(on_lake_coordinated, part), getattr(coordinated, part), rel_tol=1e-9,
                           abs_tol=0.0)
    assert analysis.channel_names(on_lake) == names and names
    g2 = analysis.network_graph(on_lake)
    analysis.export_gexf(on_lake, tmp_path / "b.gexf")
    assert nx.utils.graphs_equal(g1, g2) and g1.number_of_edges() > 0
    assert (tmp_path / "a.gexf").read_bytes().split(b"<graph", 1)[1] == \
        (tmp_path / "b.gexf").read_bytes().split(b"<graph", 1)[1]


def test_an_empty_lake_gives_empty_views_with_the_schema(tmp_path: Path) -> None:
    (tmp_path / "_manifests").mkdir()         # a lake with no collector yet (an empty folder is no lake: raises)
    con = analysis.connect(tmp_path)
    for table, (_layout, columns) in LAKE_SCHEMA.items():
        described = con.execute(f'DESCRIBE "{table}"').fetchall()
        assert [(r[0], r[1]) for r in described] == list(columns), table
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0] == 0
    assert analysis.cascades(con).is_empty() and analysis.posting_frequency(con).is_empty()
    assert con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0] == "UTC"


# -- only what changed ---------------------------------------------------------------------------------------
def test_an_edit_rewrites_only_its_partitions(published: tuple[Path, Path], tmp_path: Path) -> None:
    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    lake = tmp_path / "lake"
    shutil.copytree(published[1], lake)
    before = _files(lake)
    with Archive(archive) as opened:
        assert opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall()[0][0] == 0
        row = _posts_rows(opened, "text IS NOT NULL AND deleted_at IS NULL", 1)
        row = row.set_column(row.schema.get_field_index("text"), "text", pa.array(["edited text"], pa.string()))
        row = row.set_column(row.schema.get_field_index("views"), "views", pa.array([10**9], pa.int64()))
        result = opened.write_posts(row, _later(opened))
        assert result.edits == 1
        marked = opened.con.execute("SELECT table_name, slot, month FROM lake_dirty ORDER BY 1").fetchall()
        assert [m[0] for m in marked] == ["post_observations", "post_versions", "posts"]
        report = publish(opened, lake)
        assert not report.full and report.files_written == 3
        assert opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall()[0][0] == 0
    after = _files(lake)
    changed = {p for p in after if after[p] != before.get(p)}
    expected = {f"{t}/slot={s:02d}/month={m}/main.parquet" for t, s, m in marked}
    assert changed == expected
    assert len(after) > 10 * len(changed)
    con = connect_lake(lake)
    assert con.execute("SELECT count(*) FROM posts WHERE text = 'edited text' AND views = 1000000000").fetchall() \
        == [(1,)]


def test_a_pass_then_publish_leaves_a_lake_equal_to_the_archive(published: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    from collector._simulated import generate_world
    from tests.helpers.simworld import run_pass

    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    lake = tmp_path / "lake"
    shutil.copytree(published[1], lake)
    with Archive(archive, read_only=True) as opened:
        newest = opened.con.execute("SELECT max(started_at) FROM runs").fetchall()[0][0]
    world = generate_world(11, channels=8, days=10.0, posts_per_day=30.0)    # the shared fixture's world
    world.advance(newest - world.now + timedelta(hours=6))
    run_pass(world, archive)
    before = _files(lake)
    with Archive(archive) as opened:
        dirty = opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall()[0][0]
        assert dirty > 0
        report = publish(opened, lake)
        assert 0 < report.files_written < len(before)
        assert [f for f in lake_findings(opened.con, lake, "main") if f.severity != "info"] == []
    on_lake = analysis.connect(lake)
    with analysis.connect(archive) as on_archive:
        for name in ("cascades", "forward_network", "posting_frequency", "url_spread", "view_growth"):
            assert getattr(analysis, name)(on_lake).equals(getattr(analysis, name)(on_archive)), name


def test_an_incremental_publish_over_several_months_and_undated_posts_equals_a_full_one(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    """One pass touching posts of two months and a post without a date (month ``unknown``): the partitions the
    incremental publish rewrites (each month read by its own range query) hold exactly what a full publish of the
    same archive writes, and every other file is untouched."""
    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    lake = tmp_path / "lake"
    shutil.copytree(published[1], lake)
    before = _files(lake)
    with Archive(archive) as opened:
        months = opened.con.execute("SELECT DISTINCT strftime(timezone('UTC', posted_at), '%Y-%m') AS m FROM posts "
                                    "ORDER BY m").fetchall()
        assert len(months) >= 2
        first, last = months[0][0], months[-1][0]
        old = _posts_rows(opened, f"strftime(timezone('UTC', posted_at), '%Y-%m') = '{first}'", 1)
        new = _posts_rows(opened, f"strftime(timezone('UTC', posted_at), '%Y-%m') = '{last}'", 1)
        undated = new.set_column(new.schema.get_field_index("message_id"), "message_id",
                                 pa.array([10**9], pa.int64()))
        undated = undated.set_column(undated.schema.get_field_index("posted_at"), "posted_at",
                                     pa.nulls(1, undated.schema.field("posted_at").type))
        rows = pa.concat_tables([old, new, undated])
        rows = rows.set_column(rows.schema.get_field_index("views"), "views", pa.array([5, 6, 7], pa.int64()))
        opened.write_posts(rows, _later(opened))
        marked = {(t, s, m) for t, s, m in opened.con.execute("SELECT table_name, slot, month FROM lake_dirty")
                  .fetchall()}
        assert {m for _, _, m in marked} == {first, last, "unknown"}
        report = publish(opened, lake)
        assert not report.full
        fresh = tmp_path / "fresh"
        publish(opened, fresh, full=True)
    changed = {p for p in _files(lake) if _files(lake)[p] != before.get(p)}
    assert changed == {f"{t}/slot={s:02d}/month={m}/main.parquet" for t, s, m in marked}
    ours, theirs = _contents(lake), _contents(fresh)
    assert ours.keys() == theirs.keys()
    assert all(ours[k].equals(theirs[k]) for k in ours), [k for k in ours if not ours[k].equals(theirs[k])]
    assert any("month=unknown" in k for k in ours)


# -- the layout of tables other than posts' ------------------------------------------------------------------
def test_every_table_is_in_slot_directories_and_rows_without_a_channel_are_in_slot_00(
        published: tuple[Path, Path]) -> None:
    from analysis.lake import slot_sql

    _archive, lake = published
    files = [p.relative_to(lake) for p in lake.rglob("*.parquet")]
    assert files and all(p.parts[1].startswith("slot=") for p in files), [p for p in files if len(p.parts) < 3]
    assert (lake / "runs" / "slot=00" / "main.parquet").exists()
    assert not list(lake.glob("*/main.parquet"))
    con = connect_lake(lake)
    assert con.execute("SELECT count(*) FROM runs WHERE slot <> 0").fetchall() == [(0,)]
    for table, (_layout, columns) in LAKE_SCHEMA.items():
        if "channel_id" in {c for c, _ in columns}:
            wrong = con.execute(f'SELECT count(*) FROM "{table}" WHERE slot <> '
                                f"coalesce({slot_sql('channel_id')}, 0)").fetchall()
            assert wrong == [(0,)], table
    assert con.execute("SELECT count(*) FROM run_channels").fetchall()[0][0] > 0


def test_a_lake_of_the_layout_before_reads_and_its_next_publish_replaces_it(published: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    """Lakes published before every table had slots hold ``<table>/<collector>.parquet`` for tables without a
    NOT NULL channel id: readers read that file as slot 0, and the next publish (incremental) replaces it."""
    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    lake = tmp_path / "lake"
    shutil.copytree(published[1], lake)
    expected = {t: connect_lake(lake).execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]
                for t in ("runs", "run_channels", "schema_migrations")}
    for table in expected:                 # back to the old layout: one file per collector, no slot
        parts = sorted((lake / table).glob("slot=*/main.parquet"))
        pq.write_table(pa.concat_tables([pq.read_table(p) for p in parts]), lake / table / "main.parquet")
        for part in parts:
            shutil.rmtree(part.parent)
    con = connect_lake(lake)
    for table, rows in expected.items():
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0] == rows, table
    assert con.execute("SELECT count(*) FROM runs WHERE slot = 0").fetchall()[0][0] == expected["runs"]
    with Archive(archive) as opened:
        report = publish(opened, lake)
    assert not report.full and report.files_removed == len(expected)
    assert not list(lake.glob("*/main.parquet"))
    assert _contents(lake).keys() == _contents(published[1]).keys()
    con = connect_lake(lake)
    for table, rows in expected.items():
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0] == rows, table


# -- several collectors --------------------------------------------------------------------------------------
def test_rows_held_by_two_collectors_are_read_once_newest_first(published: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        publish(opened, lake, collector="alpha")
        total = opened.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
        row = _posts_rows(opened, "deleted_at IS NULL", 1)
        key = (row["channel_id"][0].as_py(), row["message_id"][0].as_py())
        row = row.set_column(row.schema.get_field_index("views"), "views", pa.array([777_777_777], pa.int64()))
        opened.write_posts(row, _later(opened))
        publish(opened, lake, collector="beta")        # a slot moving: both collectors hold its rows
    con = analysis.connect(lake)
    assert con.execute("SELECT count(*), count(DISTINCT (channel_id, message_id)) FROM posts").fetchall() == \
        [(total, total)]
    assert con.execute("SELECT views FROM posts WHERE channel_id = ? AND message_id = ?", list(key)).fetchall() == \
        [(777_777_777,)]
    one = connect_lake(lake, collectors=["alpha"])
    assert one.execute("SELECT views FROM posts WHERE channel_id = ? AND message_id = ?", list(key)).fetchall() != \
        [(777_777_777,)]
    with analysis.connect(archive) as on_archive:
        assert analysis.cascades(con).equals(analysis.cascades(on_archive))


# -- verify ----------------------------------------------------------------------------------------------
def test_verify_reports_drift_between_lake_and_archive(published: tuple[Path, Path], tmp_path: Path) -> None:
    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    lake = tmp_path / "lake"
    shutil.copytree(published[1], lake)
    with Archive(archive) as opened:
        assert [f for f in lake_findings(opened.con, lake, "main") if f.severity == "error"] == []
        # a write through tgspread not published yet: a warning, not drift
        row = _posts_rows(opened, "deleted_at IS NULL", 1)
        opened.write_posts(row, _later(opened))
        pending = lake_findings(opened.con, lake, "main")
        assert [f.severity for f in pending] == ["warning"] and "not in the lake yet" in pending[0].message
        publish(opened, lake)
        # posts changed by hand (no mark): drift in exactly that partition
        opened.con.execute("UPDATE posts SET views = views + 1 WHERE (channel_id, message_id) = "
                           "(SELECT (channel_id, message_id) FROM posts ORDER BY channel_id, message_id LIMIT 1)")
    result = subprocess.run([sys.executable, "-m", "collector", "verify", "--archive", str(archive), "--lake",
                             str(lake), "--json"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    findings = [f for f in json.loads(result.stdout)["findings"] if f["check"] == "lake"]
    assert len(findings) == 1 and findings[0]["table"] == "posts" and "content differs" in findings[0]["message"]
    # a lake file removed by hand
    with Archive(archive) as opened:
        publish(opened, lake, full=True)
        victim = sorted((lake / "post_observations").glob("slot=*/month=*/main.parquet"))[0]
        victim.unlink()
        errors = [f for f in lake_findings(opened.con, lake, "main") if f.severity == "error"]
        assert len(errors) == 1 and errors[0].table == "post_observations" and "0 rows in the lake" in \
            errors[0].message
        assert lake_findings(opened.con, tmp_path / "nowhere", "main")[0].severity == "error"


# -- kills and readers ------------------------------------------------------------------------------------------
_PUBLISHER = """
import sys
from collector import Archive
from collector._archive.lake import publish
with Archive(sys.argv[1]) as archive:
    print("publishing", flush=True)      # imports done, archive open: the kill window starts here
    for _ in range(int(sys.argv[3])):
        publish(archive, sys.argv[2], full=sys.argv[4] == "full")
"""


def _publisher(archive: Path, lake: Path, times: int = 1, full: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(archive), str(lake), str(times),
                             "full" if full else "incremental"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _contents(lake: Path) -> dict[str, pa.Table]:
    return {str(p.relative_to(lake)): pq.read_table(p) for p in sorted(lake.glob("*/**/main.parquet"))
            if "_staging" not in p.parts}


def _touch_every_post(archive: Path) -> None:
    """Observe every post again with one more view: every post-level partition changes (and is marked)."""
    with Archive(archive) as opened:
        rows = _posts_rows(opened, "true")
        views = pa.compute.add(rows["views"].fill_null(0), 1)
        rows = rows.set_column(rows.schema.get_field_index("views"), "views", views)
        opened.write_posts(rows, _later(opened))


def test_sigkill_during_publish_leaves_old_or_new_files_and_the_next_publish_repairs(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    old_lake = published[1]
    changed = copy_archive(published[0], tmp_path / "changed.duckdb")
    _touch_every_post(changed)
    # the lake as a publish that is never killed leaves it
    reference = copy_archive(changed, tmp_path / "reference.duckdb")
    new_lake = tmp_path / "new-lake"
    shutil.copytree(old_lake, new_lake)
    # timed as the killed publishes run (a process of its own, from its "publishing" line), so that the kill
    # times below scale with what a publish costs on this machine now, however loaded it is
    proc = _publisher(reference, new_lake)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"publishing"
    started = time.monotonic()
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    duration = time.monotonic() - started
    old, new = _contents(old_lake), _contents(new_lake)
    assert old.keys() == new.keys() and any(not old[k].equals(new[k]) for k in old)
    rng = random.Random(14)
    outcomes = {"old": 0, "new": 0}
    for attempt in range(10):
        archive = copy_archive(changed, tmp_path / f"kill{attempt}.duckdb")
        lake = tmp_path / f"lake{attempt}"
        shutil.copytree(old_lake, lake)
        proc = _publisher(archive, lake)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"publishing"
        # random points, one in each tenth of 1.3 publishes: the first land early, the last after it finished
        time.sleep((attempt + rng.random()) / 10 * duration * 1.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the lake reads, and every file is whole: the old one or the new one
        con = connect_lake(lake)
        assert con.execute("SELECT count(*) FROM posts").fetchall()[0][0] == \
            sum(t.num_rows for k, t in new.items() if k.startswith("posts/"))
        for key, table in _contents(lake).items():
            if table.equals(old[key]):
                outcomes["old"] += 1
            else:
                assert table.equals(new[key]), (attempt, key)
                outcomes["new"] += 1
        # the next publish repairs it: exactly the never-killed result
        with Archive(archive) as opened:
            publish(opened, lake)
            assert opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall()[0][0] == 0
        repaired = _contents(lake)
        assert repaired.keys() == new.keys() and all(repaired[k].equals(new[k]) for k in new), attempt
        shutil.rmtree(lake)
        archive.unlink()
    assert outcomes["old"] and outcomes["new"], outcomes      # the kills landed before, during and after


@pytest.fixture
def reader_errors() -> Iterator[list[BaseException]]:
    yield []


def test_a_reader_polling_while_a_collector_publishes_never_errors_nor_sees_a_row_twice(
        published: tuple[Path, Path], tmp_path: Path, reader_errors: list[BaseException]) -> None:
    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    lake = tmp_path / "lake"
    shutil.copytree(published[1], lake)
    with Archive(archive, read_only=True) as opened:
        total = opened.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
        observations = opened.con.execute("SELECT count(*) FROM post_observations").fetchall()[0][0]
    proc = _publisher(archive, lake, times=6, full=True)
    con = analysis.connect(lake)       # opened once, like a notebook that stays open
    polls = 0
    while proc.poll() is None or polls < 3:
        rows = con.execute("SELECT count(*), count(DISTINCT (channel_id, message_id)) FROM posts").fetchall()
        assert rows == [(total, total)]
        assert con.execute("SELECT count(*) FROM post_observations").fetchall()[0][0] == observations
        assert analysis.posting_frequency(con).height > 0
        polls += 1
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert polls >= 3


def test_publish_command_and_config(published: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from collector._cli.app import app

    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    (tmp_path / "tgspread.toml").write_text(f'archive = "{archive}"\n[lake]\npath = "lake"\ncollector = "box-1"\n',
                                            encoding="utf-8")
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(app, ["publish"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "lake" / "_manifests" / "box-1.json").exists()
        assert "full publish" in result.output
        again = runner.invoke(app, ["publish", "--lake", str(tmp_path / "other"), "--full"])
        assert again.exit_code == 0 and (tmp_path / "other" / "_manifests" / "box-1.json").exists()
        # with a config, --collector selects one of its collectors (as on `run`): never this archive under a name
        # the config does not give it
        unknown = runner.invoke(app, ["publish", "--lake", str(tmp_path / "other"), "--collector", "c2"])
        assert unknown.exit_code == 2 and "no collector 'c2'" in unknown.stderr
        assert not (tmp_path / "other" / "_manifests" / "c2.json").exists()
        bad = runner.invoke(app, ["publish", "--collector", "../x"])
        assert bad.exit_code == 2 and "letters, digits" in bad.stderr
        verify = runner.invoke(app, ["verify", "--json"])
        assert verify.exit_code == 0, verify.output
    finally:
        os.chdir(cwd)
    with Archive(archive, read_only=True) as opened:
        assert set(lake_tables(opened.con)) <= {p.name for p in (tmp_path / "lake").iterdir()} | {
            t for t in lake_tables(opened.con) if opened.con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]
            == 0}


def test_a_failed_publish_after_a_pass_warns_and_keeps_the_collection(published: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    from collector._cli.publish import publish_after_pass
    from collector._config import load_config

    archive = copy_archive(published[0], tmp_path / "a.duckdb")
    blocker = tmp_path / "lake"
    blocker.write_text("a file where the lake should be\n", encoding="utf-8")
    (tmp_path / "t.toml").write_text('[lake]\npath = "lake"\n', encoding="utf-8")
    cfg = load_config(tmp_path / "t.toml", archive=archive)
    with Archive(archive) as opened:
        opened.write_posts(_posts_rows(opened, "deleted_at IS NULL", 1), _later(opened))
        assert publish_after_pass(opened, cfg) is None
        assert opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall()[0][0] > 0   # kept for the next


def test_duckdb_statement_triggers_refuse_upserts() -> None:
    """Why the writers mark partitions themselves (migration 0008): DuckDB's statement triggers with transition
    tables refuse ``ON CONFLICT DO UPDATE``, which the archive's writers use. When this starts passing through,
    a trigger could take over the marking."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a BIGINT PRIMARY KEY, v INT); CREATE TABLE d (a BIGINT)")
    try:
        con.execute("CREATE TRIGGER m AFTER INSERT ON t REFERENCING NEW TABLE AS n FOR EACH STATEMENT "
                    "INSERT INTO d SELECT a FROM n")
    except duckdb.Error:
        return      # no triggers at all
    with pytest.raises(duckdb.Error):
        con.execute("INSERT INTO t VALUES (1, 1) ON CONFLICT DO UPDATE SET v = excluded.v")


def test_files_of_two_schema_versions_read_by_column_name_while_a_rewrite_is_unfinished(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    """After a migration the first publish rewrites every file; killed half-way, the lake mixes old files (fewer
    columns) and new ones until the next publish. The manifest says so, and readers match columns by name."""
    lake = tmp_path / "lake"
    shutil.copytree(published[1], lake)
    old = sorted((lake / "posts").glob("slot=*/month=*/main.parquet"))[-1]
    table = pq.read_table(old)
    pq.write_table(table.drop_columns(["import_sha256"]), old, compression="zstd")   # as an older schema wrote it
    manifest_file = lake / "_manifests" / "main.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest_file.write_text(json.dumps({**manifest, "rewriting": True}), encoding="utf-8")
    con = connect_lake(lake)
    assert con.execute("SELECT count(*), count(DISTINCT (channel_id, message_id)) FROM posts").fetchall() == \
        [(manifest["tables"]["posts"]["rows"],) * 2]
    assert "import_sha256" in [r[0] for r in con.execute("DESCRIBE posts").fetchall()]
    with Archive(copy_archive(published[0], tmp_path / "a.duckdb")) as opened:
        opened.con.execute("UPDATE schema_migrations SET version = version")     # nothing changes: same version
        report = publish(opened, lake, full=True)
    assert report.files_written > 0 and read_manifest(lake, "main") is not None
    assert "rewriting" not in (read_manifest(lake, "main") or {})


def test_collect_publishes_to_the_configured_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from collector._cli.app import app
    from collector._telegram.client import SIMULATED_ENV

    monkeypatch.setenv(SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "2")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "2")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tgspread.toml").write_text('archive = "a.duckdb"\n[lake]\npath = "lake"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["collect"])
    assert result.exit_code in (0, 1), result.output
    assert "full publish to" in result.stderr
    manifest = read_manifest(tmp_path / "lake", "main")
    assert manifest is not None and manifest["tables"]["posts"]["rows"] > 0
    with Archive(tmp_path / "a.duckdb", read_only=True) as opened:
        assert opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall() == [(0,)]
        assert [f for f in lake_findings(opened.con, tmp_path / "lake", "main") if f.severity == "error"] == []
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "1d")
    again = CliRunner().invoke(app, ["collect"])
    assert again.exit_code in (0, 1) and "published to" in again.stderr and "full publish" not in again.stderr
