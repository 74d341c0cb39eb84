"""The posts generation: a counter that every write to ``posts`` moves, inside the write's own transaction.

Stored analysis results (:mod:`analysis.summaries`) record the generation they were computed from and are
used only while it is still the current one, so a missed refresh costs speed, never correctness. Every
code path that writes ``posts`` calls :func:`bump_posts` in the same transaction:
``Archive.write_posts`` (collected posts and deletions), ``sources.store.upsert_posts`` (web previews,
Desktop exports) and ``sources.store.resolve_forward_usernames``. tests/test_analysis_summaries.py checks
each of them.

Archives older than migration 0007 have no counter; readers (:func:`analysis.summaries.posts_generation`) then
get ``None`` (nothing is current).
"""

from __future__ import annotations

import duckdb

__all__ = ["bump_posts", "has_counter"]

_BUMP = "UPDATE archive_generation SET generation = generation + 1 WHERE name = 'posts'"


def has_counter(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the archive has the ``archive_generation`` table (migration 0007 or later)."""
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                      "AND table_name = 'archive_generation'").fetchall()
    return bool(row and row[0][0])


def bump_posts(con: duckdb.DuckDBPyConnection, *, checked: bool = True) -> None:
    """Move the posts generation on; call inside the transaction that writes ``posts``.

    ``checked=False`` skips the existence check (callers that know the archive is migrated, like
    ``Archive``); otherwise a connection without the counter (a bare schema) is left alone.
    """
    if checked and not has_counter(con):
        return
    con.execute(_BUMP)
