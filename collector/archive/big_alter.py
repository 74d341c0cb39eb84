"""Altering a large table inside the archive's memory cap (issue 14, item 4): the one way migrations add columns.

An archive runs DuckDB with a 256 MB buffer pool. ``ALTER TABLE ... ADD COLUMN`` writes the new column for every
row before it commits, and DuckDB keeps what it wrote in memory until a checkpoint; several of them in one
transaction at 30M posts needed more than the cap. What DuckDB 2.0 does, measured (docs/scale.md, "Memory"):

- the new column is written uncompressed (8 bytes a row for a BIGINT, NULL or not) into blocks the buffer manager
  may evict to the archive's temporary directory (``<archive>.tmp``); one ``ADD COLUMN`` per transaction,
  checkpointed right after it, therefore stays inside the cap: the checkpoint compresses the column into the file
  and frees the blocks;
- an ``ADD COLUMN ... DEFAULT x`` writes the default for every row the same way.

So :func:`add_column` runs the ``ALTER`` alone in its own transaction with the temporary directory set, and
checkpoints after it; a ``DEFAULT`` that is not NULL is written in row-id slices of ``batch_rows`` rows (one
transaction and one checkpoint each, ``WHERE column IS NULL`` so a rerun continues where a kill stopped), then set
as the column's default for future rows. Every step is idempotent: a migration killed half-way runs again from its
first statement.

The migration runner (``Archive._migrate``) sends every ``ALTER TABLE t ADD COLUMN IF NOT EXISTS c TYPE [DEFAULT
x]`` statement of a stepwise migration here (:func:`parse_add_column`), so a migration file needs nothing more
than the statement. Example::

    add_column(con, "posts", "reply_to_peer_id", "BIGINT")
    add_column(con, "post_observations", "source", "VARCHAR", "'api'")
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import duckdb

__all__ = ["BATCH_ROWS", "AddColumn", "add_column", "parse_add_column"]

#: Rows a DEFAULT is written for per transaction: about 8-16 MB of new column data, far inside the cap.
BATCH_ROWS = 2_000_000

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ADD_COLUMN = re.compile(
    rf"^\s*ALTER\s+TABLE\s+({_NAME})\s+ADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\s+({_NAME})\s+(.+?)"
    r"(?:\s+DEFAULT\s+(.+?))?\s*;?\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class AddColumn:
    """``ALTER TABLE table ADD COLUMN IF NOT EXISTS column type_sql [DEFAULT default_sql]``."""

    table: str
    column: str
    type_sql: str
    default_sql: str | None = None


def parse_add_column(statement: str) -> AddColumn | None:
    """The column a migration statement adds, or None for any other statement (run as it is).

    >>> parse_add_column("ALTER TABLE post_observations ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT 'api'")
    AddColumn(table='post_observations', column='source', type_sql='VARCHAR', default_sql="'api'")
    >>> parse_add_column("ALTER TABLE posts ADD COLUMN IF NOT EXISTS edited BOOLEAN")
    AddColumn(table='posts', column='edited', type_sql='BOOLEAN', default_sql=None)
    >>> parse_add_column("CREATE TABLE x (a INT)") is None
    True
    """
    m = _ADD_COLUMN.match(statement)
    if m is None:
        return None
    default = m.group(4)
    if default is not None and default.strip().upper() == "NULL":
        default = None
    return AddColumn(m.group(1), m.group(2), m.group(3).strip(), default.strip() if default else None)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str | None]:
    """Column name -> its default expression (None: no default), of ``table`` in the main schema."""
    return {str(name): (str(default) if default is not None else None) for name, default in con.execute(
        "SELECT column_name, column_default FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ?", [table]).fetchall()}


def _step(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> None:
    """One statement in its own transaction, then a checkpoint: what it wrote goes to the file, not memory."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(sql, params or [])
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    con.execute("CHECKPOINT")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def add_column(con: duckdb.DuckDBPyConnection, table: str, column: str, type_sql: str,
               default_sql: str | None = None, *, batch_rows: int = BATCH_ROWS) -> int:
    """Add ``column`` to ``table`` inside the connection's memory cap, whatever the table's size; idempotent.

    ``default_sql`` (a SQL expression, e.g. ``"'api'"``) is written into every existing row in slices of
    ``batch_rows`` row ids, each committed and checkpointed, and becomes the column's default. Must run outside a
    transaction (it commits its own). Returns the number of rows the default was written into (0 without one).
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    t, c = _quote(table), _quote(column)
    columns = _columns(con, table)
    if not columns:
        raise ValueError(f"no table {table!r}")
    if column not in columns:
        _step(con, f"ALTER TABLE {t} ADD COLUMN {c} {type_sql}")
    if default_sql is None:
        return 0
    written = 0
    if columns.get(column) is None:     # not yet the default: rows may still be NULL (new, or a run killed half-way)
        bounds = con.execute(f"SELECT min(rowid), max(rowid) FROM {t}").fetchone()
        lo, hi = (bounds or (None, None))
        if lo is not None and hi is not None:
            for start in range(int(lo), int(hi) + 1, batch_rows):
                before = con.execute(f"SELECT count(*) FROM {t} WHERE rowid >= ? AND rowid < ? AND {c} IS NULL",
                                     [start, start + batch_rows]).fetchone()
                if not before or not before[0]:
                    continue
                _step(con, f"UPDATE {t} SET {c} = {default_sql} WHERE rowid >= ? AND rowid < ? AND {c} IS NULL",
                      [start, start + batch_rows])
                written += int(before[0])
        _step(con, f"ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {default_sql}")
    return written
