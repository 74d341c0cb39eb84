"""Publishing's cost work (issue 14): a full publish in chunks of months, partitions decoded from one integer,
new directories fsynced once each, and an incremental publish under its own small DuckDB pool."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from collector import Archive
from collector._archive import lake as lake_module
from collector._archive import lake_files
from collector._archive.lake import INCREMENTAL_MEMORY, _month_chunks, publish, read_manifest
from collector._archive.lake_files import PART_SLOT, _partition_of
from collector._archive.rows import POSTS_SCHEMA
from collector._archive.slots import NO_MONTH, month_index, month_sql
from collector._archive.upsert import size_bytes
from tests.helpers.simworld import Collected, copy_archive


def _contents(lake: Path) -> dict[str, list[dict[str, Any]]]:
    """Every data file of collector 'main': relative path -> its rows, in file order."""
    return {str(p.relative_to(lake)): pq.read_table(p).to_pylist() for p in sorted(lake.glob("*/**/main.parquet"))}


def test_the_partition_integer_decodes_to_the_slot_and_utc_month_the_readers_use() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    stamps = ["2024-01-31 23:30:00-02", "2024-12-31 23:59:59+00", "2025-01-01 00:00:00+00", "2023-03-01 00:30:00+03"]
    for slot in (0, 7, 63):
        for stamp in [*stamps, None]:
            part, month = con.execute(
                f"SELECT {slot} * {PART_SLOT} + coalesce(year(t) * 12 + month(t), 0), {month_sql('t')} "
                "FROM (SELECT ?::TIMESTAMPTZ AS t)", [stamp]).fetchone()  # type: ignore[misc]
            assert _partition_of(int(part), "post") == (slot, month)
            assert month_index(month) == int(part) % PART_SLOT
    assert _partition_of(12, "slot") == (12, None)


def test_month_chunks_cover_every_month_once_in_order_and_the_undated_alone() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE posts (posted_at TIMESTAMPTZ)")
    start = datetime(2024, 1, 15, tzinfo=UTC)
    counts = [5, 1, 7, 2, 2, 9]          # rows of six consecutive months
    for i, n in enumerate(counts):
        con.executemany("INSERT INTO posts VALUES (?)", [[start + timedelta(days=31 * i)]] * n)
    con.execute("INSERT INTO posts VALUES (NULL)")
    chunks = _month_chunks(con, 8)
    assert chunks[0] == (NO_MONTH, NO_MONTH)
    # whole months, at most 8 rows a chunk unless one month alone is more
    assert chunks[1:] == [("2024-01", "2024-02"), ("2024-03", "2024-03"), ("2024-04", "2024-05"),
                          ("2024-06", "2024-06")]
    assert _month_chunks(con, 10**9)[1:] == [("2024-01", "2024-06")]


def test_a_full_publish_in_chunks_of_one_month_writes_what_one_chunk_writes(
        collected: Collected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = copy_archive(collected.path, tmp_path / "one.duckdb")
    with Archive(one) as opened:          # the pseudonym key is made here, then both copies share it
        publish(opened, tmp_path / "lake-one", full=True)
    many = copy_archive(one, tmp_path / "many.duckdb")
    monkeypatch.setattr(lake_module, "FULL_CHUNK_ROWS", 1)
    with Archive(many) as opened:
        months = _month_chunks(opened.con)
        report = publish(opened, tmp_path / "lake-many", full=True)
    assert len(months) >= 2 and all(m is not None and m[0] == m[1] for m in months)
    assert report.files_written > len(months)
    a, b = read_manifest(tmp_path / "lake-one", "main"), read_manifest(tmp_path / "lake-many", "main")
    assert a is not None and b is not None and a["tables"] == b["tables"]
    assert _contents(tmp_path / "lake-one") == _contents(tmp_path / "lake-many")


def test_each_new_directory_is_fsynced_once_and_every_directory_that_got_an_entry_is(
        collected: Collected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    real = lake_files.fsync_dir

    def record(path: Path) -> None:
        synced.append(Path(path))
        real(path)

    monkeypatch.setattr(lake_files, "fsync_dir", record)
    archive = copy_archive(collected.path, tmp_path / "archive.duckdb")
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        publish(opened, lake, full=True)
    posts = lake / "posts"
    tables = [p for p in lake.iterdir() if p.is_dir()]
    assert synced.count(posts) == 1                                # once for its 64 new slot directories
    assert synced.count(lake) <= len(tables)                       # once per table written (and _manifests)
    for directory in [lake, *(p for p in lake.rglob("*") if p.is_dir())]:
        assert directory in synced, directory                      # its entries reach the disk
    for directory in {p.parent for p in posts.glob("slot=*/month=*/main.parquet")}:
        assert synced.count(directory) == 1                        # the file renamed into it, nothing more
        assert synced.count(directory.parent) == 1                 # its slot directory: once for all months


def test_an_incremental_publish_runs_under_its_own_small_pool_and_gives_the_archive_its_settings_back(
        collected: Collected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = copy_archive(collected.path, tmp_path / "archive.duckdb")
    seen: list[tuple[str, str]] = []
    real = lake_module.write_partitions

    def record(con: duckdb.DuckDBPyConnection, *args: Any, **kwargs: Any) -> Any:
        row = con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
        seen.append((str(row[0]), str(row[1])))
        return real(con, *args, **kwargs)

    monkeypatch.setattr(lake_module, "write_partitions", record)
    with Archive(archive) as opened:
        publish(opened, tmp_path / "lake")
        before = opened.con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
        full_seen, seen[:] = list(seen), []
        cols = ", ".join(POSTS_SCHEMA.names)
        batch = opened.con.sql(f"SELECT {cols} FROM posts ORDER BY channel_id, message_id LIMIT 3").to_arrow_table()
        newest = opened.con.execute("SELECT max(last_seen_at) FROM posts").fetchall()[0][0]
        opened.write_posts(batch.cast(POSTS_SCHEMA), newest + timedelta(hours=1))
        report = publish(opened, tmp_path / "lake")
        after = opened.con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
    assert report.files_written and seen
    assert all(threads == "1" for _, threads in seen)
    cap, own = size_bytes(INCREMENTAL_MEMORY), size_bytes(str(before[0]))
    assert cap is not None and own is not None and own > cap
    assert all(abs((size_bytes(limit) or 0) - cap) < cap / 100 for limit, _ in seen), seen   # read back in MiB
    assert all(setting == (str(before[0]), str(before[1])) for setting in full_seen)   # full: the archive's own
    assert after == before


def test_an_incremental_publish_that_runs_out_of_its_small_pool_runs_again_under_the_archives_cap(
        collected: Collected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = copy_archive(collected.path, tmp_path / "archive.duckdb")
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        publish(opened, lake)
        cols = ", ".join(POSTS_SCHEMA.names)
        batch = opened.con.sql(f"SELECT {cols} FROM posts ORDER BY channel_id, message_id LIMIT 3").to_arrow_table()
        newest = opened.con.execute("SELECT max(last_seen_at) FROM posts").fetchall()[0][0]
        opened.write_posts(batch.cast(POSTS_SCHEMA), newest + timedelta(hours=1))
    reference = copy_archive(archive, tmp_path / "reference.duckdb")
    shutil.copytree(lake, tmp_path / "lake-reference")
    with Archive(reference) as opened:
        expected = publish(opened, tmp_path / "lake-reference")
    caps: list[float | None] = []
    real = lake_module.write_partitions

    def small_pool_too_small(con: duckdb.DuckDBPyConnection, *args: Any, **kwargs: Any) -> Any:
        limit = size_bytes(str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]))
        caps.append(limit)
        if limit is not None and limit < 200e6:       # what DuckDB raises when a query needs more than the pool
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block (simulated)")
        return real(con, *args, **kwargs)

    monkeypatch.setattr(lake_module, "write_partitions", small_pool_too_small)
    with Archive(archive) as opened:
        report = publish(opened, lake)
        left = opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall()[0][0]
    assert caps[0] is not None and caps[0] < 200e6 and all(c is not None and c > 200e6 for c in caps[1:])
    assert report.partitions == expected.partitions and report.files_written == expected.files_written
    assert left == 0
    a, b = read_manifest(lake, "main"), read_manifest(tmp_path / "lake-reference", "main")
    assert a is not None and b is not None and a["tables"] == b["tables"]
    assert _contents(lake) == _contents(tmp_path / "lake-reference")
