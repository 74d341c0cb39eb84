"""Stepwise migrations (issue 14, item 4): each statement committed and checkpointed on its own, so that an
``ALTER TABLE posts`` stays inside the archive's memory cap; a migration killed half-way runs again.

The memory itself is measured in benchmarks (``benchmarks/lake_bench.py``), never asserted here.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from collector import Archive
from collector._archive import migrations
from collector._archive.big_alter import add_column, memory_needed, parse_add_column


def _old_archive(path: Path, upto: int, partial: int = 0) -> None:
    """An archive as tgspread left it at migration ``upto``; plus the first ``partial`` statements of the
    next (stepwise) migration, as a kill half-way through it leaves them."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL, tgspread_version VARCHAR)")
    for mig in migrations.available():
        if mig.version <= upto:
            con.execute(mig.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now(), 'old')", [mig.version, mig.name])
        elif mig.version == upto + 1:
            for statement in mig.statements()[:partial]:
                con.execute(statement)
    con.execute("INSERT INTO posts (channel_id, message_id, posted_at, first_seen_at, last_seen_at, source) "
                "VALUES (1, 1, now(), now(), now(), 'api')")
    con.close()


def test_0002_is_stepwise_and_idempotent() -> None:
    mig = next(m for m in migrations.available() if m.version == 2)
    assert mig.stepwise and len(mig.statements()) > 10
    assert all("IF NOT EXISTS" in s for s in mig.statements())


def test_a_stepwise_migration_killed_half_way_runs_again(tmp_path: Path) -> None:
    for partial in (0, 3, 9):
        path = tmp_path / f"a{partial}.duckdb"
        _old_archive(path, 1, partial)
        with Archive(path) as archive:
            assert archive.schema_version == migrations.latest_version()
            assert [v for v, _ in archive.applied_migrations()] == [m.version for m in migrations.available()]
            columns = {r[0] for r in archive.con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'posts'").fetchall()}
            assert {"views_label", "fwd_username", "import_sha256"} <= columns
            assert archive.con.execute("SELECT count(*) FROM posts").fetchall() == [(1,)]
            assert archive.con.execute("SELECT count(*) FROM imports").fetchall() == [(0,)]


def test_add_column_is_idempotent_gives_old_rows_the_default_and_restores_the_settings(tmp_path: Path) -> None:
    """The helper every migration uses to add a column to a big table (issue 14, item 4)."""
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    con.execute("SET memory_limit = '256MB'")
    con.execute("SET threads = 2")
    con.execute("CREATE TABLE obs (a BIGINT, b BIGINT, PRIMARY KEY (a, b))")
    con.execute("INSERT INTO obs SELECT i, i % 7 FROM range(10000) t(i)")
    assert add_column(con, "obs", "plain", "BIGINT") is True
    assert add_column(con, "obs", "source", "VARCHAR", "'api'") is True
    assert add_column(con, "obs", "source", "VARCHAR", "'api'") is False        # there: nothing again
    assert con.execute("SELECT source, count(*), count(plain) FROM obs GROUP BY ALL").fetchall() == [("api", 10000, 0)]
    con.execute("INSERT INTO obs (a, b) VALUES (-1, -1)")
    assert con.execute("SELECT source FROM obs WHERE a = -1").fetchall() == [("api",)]
    assert con.execute("SELECT current_setting('threads'), current_setting('memory_limit')").fetchone() == (
        2, "244.1 MiB")
    con.close()


def test_add_column_raises_the_cap_for_one_statement_only_when_the_table_needs_it(tmp_path: Path) -> None:
    """A table too large for the cap (here: a 2 MB cap, a 5-row-group table) gets what the statement needs,
    with a warning; the cap comes back afterwards."""
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    con.execute("CREATE TABLE big (a BIGINT)")
    con.execute("INSERT INTO big SELECT i FROM range(600000) t(i)")
    con.execute("SET memory_limit = '2MB'")
    with pytest.warns(RuntimeWarning, match="raised for this statement only"):
        assert add_column(con, "big", "x", "BIGINT", memory_limit="2MB") is True
    assert con.execute("SELECT current_setting('memory_limit')").fetchone() == ("1.9 MiB",)
    assert con.execute("SELECT count(*), count(x) FROM big").fetchone() == (600000, 0)
    assert memory_needed(600000) > 2 * 2**20
    con.close()


def test_every_add_column_of_a_stepwise_migration_goes_through_the_helper() -> None:
    """A migration adding a column to a big table must be stepwise, and each of its ADD COLUMNs parse as one."""
    big = ("posts", "post_observations", "post_versions", "post_comments")
    for mig in migrations.available():
        for statement in mig.statements() if mig.stepwise else [mig.sql]:
            if any(f"ALTER TABLE {t} ADD" in statement.upper().replace("\n", " ") for t in
                   (b.upper() for b in big)):
                assert mig.stepwise and parse_add_column(statement) is not None, (mig.version, statement)


def test_an_old_archive_gets_0002s_default_and_0010s_columns(tmp_path: Path) -> None:
    """Observations written before 0002 read 'api' (what its DEFAULT meant), posts gain 0010's columns (NULL)."""
    path = tmp_path / "old.duckdb"
    _old_archive(path, 1)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO post_observations (channel_id, message_id, observed_at, views) "
                "SELECT 1, 1, TIMESTAMPTZ '2024-01-01' + to_seconds(i), i FROM range(5) t(i)")
    con.close()
    with Archive(path) as archive:
        con = archive.con
        assert con.execute("SELECT source, count(*) FROM post_observations GROUP BY ALL").fetchall() == [("api", 5)]
        assert con.execute("SELECT reply_to_peer_id, reply_to_peer_message_id FROM posts").fetchall() == [
            (None, None)]
        assert archive.schema_version == migrations.latest_version() >= 10
