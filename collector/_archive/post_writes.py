"""The one way a statement that writes ``posts`` is run: :func:`execute_posts`.

Every statement that writes ``posts`` goes through it: ``Archive.write_posts`` (collected posts and deletions),
``upsert.upsert_posts`` (web previews, Desktop exports), ``upsert.resolve_forward_usernames`` and
``upsert.mark_pinned``. Whatever must happen on every write of posts belongs here, in the writer's own
transaction, never in each caller (DuckDB 2.0's triggers refuse ``ON CONFLICT DO UPDATE``);
tests/unit/test_import_graph.py fails when a statement writing ``posts`` bypasses it. It refuses a statement
that writes a group of a post's fields (text, counters, reactions, forward header) without recording which route
gave them and when (:func:`collector._archive.provenance.check_statement`, migration 0011), then runs the
statement and returns the rows it changed; the lake's partition marks are recorded by the same writers
(:mod:`collector._archive.lake_marks`). The posts generation counter it moved before migration 0009 went
with the stored analysis results it served.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from .provenance import check_statement


def execute_posts(con: duckdb.DuckDBPyConnection, sql: str, params: object = None, *,
                  batch: pa.Table | None = None, checked: bool = True) -> int:
    """Run one statement that writes ``posts``; returns the rows it changed.

    ``batch``: a table the statement reads as ``__tgs_batch`` (DuckDB finds a Python variable of that name in
    the calling scope, here; unlike a registered view it is not kept alive until the transaction ends).
    ``checked`` is kept for the callers' signatures and changes nothing since migration 0009.
    """
    del checked
    check_statement(sql)   # a write of a group of fields records which route gave it, and when
    __tgs_batch = batch   # read by the statement (DuckDB finds it by name in this scope)
    rows = con.execute(sql, params).fetchall()
    return int(rows[0][0]) if rows and rows[0] and rows[0][0] is not None else 0
