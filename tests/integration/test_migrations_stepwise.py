"""Stepwise migrations (issue 14, item 4): each statement committed and checkpointed on its own, so that an
``ALTER TABLE posts`` stays inside the archive's memory cap; a migration killed half-way runs again.

The memory itself is measured in benchmarks (``benchmarks/lake_bench.py``), never asserted here.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from collector import Archive
from collector.archive import migrations


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
