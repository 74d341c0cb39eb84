"""The posts generation: a counter that every write to ``posts`` moves, inside the write's own transaction.

Stored analysis results (:mod:`analysis.summaries`) record the generation they were computed from and are
used only while it is still the current one, so a missed refresh costs speed, never correctness.

Every statement that writes ``posts`` runs through :func:`execute_posts`, which moves the counter when the
statement changed rows: ``Archive.write_posts`` (collected posts and deletions), ``upsert.upsert_posts`` (web
previews, Desktop exports) and ``upsert.resolve_forward_usernames``. No caller has to remember it (DuckDB 2.0
has no triggers); tests/unit/test_import_graph.py fails when a statement writing ``posts`` bypasses it.

Archives older than migration 0007 have no counter; readers (:func:`analysis.summaries.posts_generation`) then
get ``None`` (nothing is current).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

_BUMP = "UPDATE archive_generation SET generation = generation + 1 WHERE name = 'posts'"


def has_counter(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the archive has the ``archive_generation`` table (migration 0007 or later)."""
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                      "AND table_name = 'archive_generation'").fetchall()
    return bool(row and row[0][0])


def execute_posts(con: duckdb.DuckDBPyConnection, sql: str, params: object = None, *,
                  batch: pa.Table | None = None, checked: bool = True) -> int:
    """Run one statement that writes ``posts``; returns the rows it changed, and moves the posts generation in
    the same transaction when there were any.

    ``batch``: a table the statement reads as ``__tgs_batch`` (DuckDB finds a Python variable of that name in
    the calling scope, here; unlike a registered view it is not kept alive until the transaction ends).
    ``checked=False`` skips the test for the counter (the ``Archive``, which migrated the file itself);
    otherwise a connection without it (a bare schema, an old archive) is written without moving anything.
    """
    __tgs_batch = batch   # read by the statement (DuckDB finds it by name in this scope)
    rows = con.execute(sql, params).fetchall()
    changed = int(rows[0][0]) if rows and rows[0] and rows[0][0] is not None else 0
    if changed and (not checked or has_counter(con)):
        con.execute(_BUMP)
    return changed
