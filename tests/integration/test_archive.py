"""The Archive: migrations applied once, newer files refused untouched, idempotent batched writes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector import Archive, ArchiveError
from collector._archive.migrations import available, latest_version
from collector._archive.rows import POSTS_SCHEMA

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def post(message_id: int, text: str = "hello", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(POSTS_SCHEMA.names)
    row.update(channel_id=2_500_000_001, message_id=message_id, posted_at=T0, text=text, views=10,
               forwards=1, replies=0, reactions=2, hashtags=[], urls=[], domains=[], mentions=[])
    row.update(values)
    return row


def count(archive: Archive, sql: str) -> int:
    row = archive.con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_migrations_applied_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    with Archive(path) as archive:
        assert archive.schema_version == latest_version()
        assert [v for v, _ in archive.applied_migrations()] == [m.version for m in available()]
    with Archive(path) as archive:      # reopening applies nothing again
        assert count(archive, "SELECT count(*) FROM schema_migrations") == len(available())
        tables = {r[0] for r in archive.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"channels", "channel_observations", "posts", "post_observations", "post_versions", "runs",
            "run_channels"} <= tables


def test_newer_schema_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    with Archive(path) as archive:
        archive.con.execute("INSERT INTO schema_migrations VALUES (9999, 'from_the_future', now(), '9.9')")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ArchiveError, match="newer tgspread"):
        Archive(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_not_a_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not an archive\n" * 100)
    with pytest.raises(ArchiveError, match="not a DuckDB archive"):
        Archive(path)
    assert path.read_text().startswith("these are my notes")


def test_missing_archive_read_only(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no such archive"):
        Archive(tmp_path / "nope.duckdb", read_only=True)


def test_write_posts_is_idempotent_and_keeps_history(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.duckdb") as archive:
        first = archive.write_posts([post(1), post(2)], T0, cursor=(2_500_000_001, 2))
        assert (first.new_posts, first.edits) == (2, 0)
        again = archive.write_posts([post(1), post(2)], T0, cursor=(2_500_000_001, 2))
        assert (again.new_posts, again.edits) == (0, 0)
        assert count(archive, "SELECT count(*) FROM posts") == 2
        assert count(archive, "SELECT count(*) FROM post_observations") == 2   # same stamp: one row each
        later = T0 + timedelta(hours=2)
        edited = archive.write_posts([post(1, "hello, edited", edited_at=later, views=50)], later)
        assert edited.edits == 1
        version = archive.con.execute("SELECT text, edited_at, observed_at FROM post_versions").fetchall()
        assert version == [("hello", None, later)]
        assert archive.con.execute("SELECT text, views FROM posts WHERE message_id = 1").fetchone() == (
            "hello, edited", 50)
        assert count(archive, "SELECT count(*) FROM post_observations WHERE message_id = 1") == 2
        first_seen = archive.con.execute("SELECT first_seen_at FROM posts WHERE message_id = 1").fetchone()
        assert first_seen == (T0,)


def test_deletion_keeps_content_and_cursor_never_moves_back(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.duckdb") as archive:
        archive.write_posts([post(1), post(5)], T0, cursor=(2_500_000_001, 5))
        archive.write_posts([], T0 + timedelta(days=1), deleted=[(2_500_000_001, 1)],
                            cursor=(2_500_000_001, 3))
        assert archive.cursor(2_500_000_001) == 5
        assert archive.con.execute("SELECT text, deleted_at FROM posts WHERE message_id = 1").fetchone() == (
            "hello", T0 + timedelta(days=1))
        # marking again later does not move the deletion time
        archive.write_posts([], T0 + timedelta(days=2), deleted=[(2_500_000_001, 1)])
        assert archive.con.execute("SELECT deleted_at FROM posts WHERE message_id = 1").fetchone() == (
            T0 + timedelta(days=1),)


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.duckdb") as archive:
        bad = post(7, views="not a number")
        with pytest.raises(Exception):  # noqa: B017 - any failure: the point is that nothing was written
            archive.write_posts([post(6), bad], T0, cursor=(2_500_000_001, 7))
        assert count(archive, "SELECT count(*) FROM posts") == 0
        assert archive.cursor(2_500_000_001) == 0


def test_due_posts_follow_checkpoints(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.duckdb") as archive:
        archive.write_posts([post(1, posted_at=T0), post(2, posted_at=T0 + timedelta(minutes=50))],
                            T0 + timedelta(minutes=55))
        cps = (timedelta(hours=1), timedelta(hours=6))
        assert archive.due_posts(2_500_000_001, T0 + timedelta(minutes=59), cps) == []
        assert archive.due_posts(2_500_000_001, T0 + timedelta(minutes=61), cps) == [1]
        assert archive.due_posts(2_500_000_001, T0 + timedelta(hours=2), cps) == [1, 2]


def test_the_due_rule_in_sql_is_the_python_rule() -> None:
    """``due_post_sql`` (one CASE per row, what a run's plan and ``due_posts`` use) calls due exactly the posts
    ``is_post_due`` does: on and beside every checkpoint's edge, to the microsecond, and never a post without a
    time."""
    import itertools

    import duckdb

    from collector._parse.refresh import DEFAULT_CHECKPOINTS, due_post_sql, is_post_due

    now = T0 + timedelta(days=40)
    edges = [timedelta(0), *(c + d for c in DEFAULT_CHECKPOINTS for d in (-timedelta(microseconds=1), timedelta(0),
                                                                           timedelta(microseconds=1)))]
    cases = [(now - age, now - age + seen) for age, seen in itertools.product(edges, edges) if seen <= age]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE p (i INTEGER, posted_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?)", [(i, a, b) for i, (a, b) in enumerate(cases)])
    con.execute("INSERT INTO p VALUES (-1, NULL, ?), (-2, ?, NULL)", [now, now])
    due = {i for (i,) in con.execute(f"SELECT i FROM p WHERE {due_post_sql(DEFAULT_CHECKPOINTS)}",
                                     {"now": now}).fetchall()}
    assert due == {i for i, (a, b) in enumerate(cases) if is_post_due(a, b, now, DEFAULT_CHECKPOINTS)}
    assert 0 < len(due) < len(cases)
    assert con.execute(f"SELECT count(*) FROM p WHERE {due_post_sql([])}", {"now": now}).fetchall() == [(0,)]


def test_two_processes_bounded_wait(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "busy.duckdb"
    Archive(path).close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(20)"
    ), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        from collector import ArchiveBusyError

        with pytest.raises(ArchiveBusyError, match="in use by another process"):
            Archive(path, wait=0.5)
    finally:
        holder.kill()
        holder.wait()
    duckdb.connect(str(path)).close()


def test_memory_capped_sets_the_cap_on_reopened_connections_and_restores_it(tmp_path: Path) -> None:
    def cap(archive: Archive) -> str:
        row = archive.con.execute("SELECT current_setting('memory_limit')").fetchone()
        return str(row[0]) if row else ""

    with Archive(tmp_path / "a.duckdb") as archive:
        before = cap(archive)
        with archive.memory_capped("64MB"):
            inside = cap(archive)
            archive.release()                       # a pass releases the file between batches
            reopened = cap(archive)
        after = cap(archive)
    assert inside == reopened == "61.0 MiB" != before       # 64 MB, as DuckDB reads it back
    assert after == before


def test_threads_limited_applies_to_reopened_connections_and_restores_the_default(tmp_path: Path) -> None:
    def threads(archive: Archive) -> int:
        row = archive.con.execute("SELECT current_setting('threads')").fetchone()
        return int(row[0]) if row else 0

    with Archive(tmp_path / "a.duckdb") as archive:
        before = threads(archive)
        archive.con.execute("SET threads = 3")                 # a value set by hand, then the default again
        with archive.threads_limited(1):
            inside = threads(archive)
            archive.release()
            reopened = threads(archive)
        after = threads(archive)
        with archive.threads_limited(None):
            untouched = threads(archive)
    assert inside == reopened == 1
    assert after == before == untouched                    # DuckDB's default (one per core)


def test_a_pass_leaves_duckdb_settings_as_it_found_them(tmp_path: Path) -> None:
    import asyncio

    from collector import ChannelResult, collect
    from collector._simulated import generate_world, simulated_client

    world = generate_world(5, channels=2, days=2)
    settings = "SELECT current_setting('threads'), current_setting('memory_limit')"
    with Archive(tmp_path / "a.duckdb") as archive:
        before = archive.con.execute(settings).fetchone()
        seen: list[tuple[object, ...] | None] = []

        def progress(stage: str, result: ChannelResult) -> None:
            seen.append(archive.con.execute(settings).fetchone())

        async def go() -> None:
            await collect(simulated_client(world), world.seeds, archive, now=world.now, progress=progress)

        asyncio.run(go())
        after = archive.con.execute(settings).fetchone()
    assert before == after
    assert seen and all(s is not None and s[0] == 1 for s in seen)      # one DuckDB thread during the pass


def test_the_posts_schema_is_the_migrated_table(tmp_path: Path) -> None:
    """One definition of the posts columns' Arrow types: the migrated table, column for column; the writers'
    schemas are selections of it (a column added by a migration and not here fails this test)."""
    from collector._archive.rows import POSTS_SCHEMA, POSTS_TABLE_SCHEMA
    from collector._archive.upsert import POST_SCHEMA

    with Archive(tmp_path / "a.duckdb") as archive:
        archive.con.execute("SET TimeZone = 'UTC'")
        migrated = archive.con.sql("SELECT * FROM posts LIMIT 0").to_arrow_table().schema
    assert migrated.names == POSTS_TABLE_SCHEMA.names
    for name in migrated.names:
        assert migrated.field(name).type == POSTS_TABLE_SCHEMA.field(name).type, name
    for writer in (POSTS_SCHEMA, POST_SCHEMA):
        assert all(writer.field(n).type == POSTS_TABLE_SCHEMA.field(n).type for n in writer.names)


def test_the_channels_schema_is_the_migrated_table(tmp_path: Path) -> None:
    """One definition of the channels columns' Arrow types, as for posts: the migrated table, column for column;
    the API writer's and the web writer's schemas are selections of it."""
    from collector._archive.rows import CHANNELS_SCHEMA, CHANNELS_TABLE_SCHEMA
    from collector._archive.upsert import CHANNEL_SCHEMA

    with Archive(tmp_path / "a.duckdb") as archive:
        archive.con.execute("SET TimeZone = 'UTC'")
        migrated = archive.con.sql("SELECT * FROM channels LIMIT 0").to_arrow_table().schema
    assert migrated.names == CHANNELS_TABLE_SCHEMA.names
    for name in migrated.names:
        assert migrated.field(name).type == CHANNELS_TABLE_SCHEMA.field(name).type, name
    for writer in (CHANNELS_SCHEMA, CHANNEL_SCHEMA):
        assert all(writer.field(n).type == CHANNELS_TABLE_SCHEMA.field(n).type for n in writer.names)
