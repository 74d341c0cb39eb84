"""Altering a large table inside the archive's memory cap (issue 14, item 4): the one way migrations add columns.

An archive runs DuckDB with a 256 MB buffer pool. What ``ALTER TABLE ... ADD COLUMN`` costs in DuckDB 2.0.1, measured
(docs/scale.md, "Migrations and memory"):

- the new column is written for every row (8 bytes a row for a BIGINT, NULL or not; the DEFAULT for every row)
  before the statement commits, into blocks the buffer manager evicts to the archive's temporary directory
  (``<archive>.tmp``) under pressure; but one 256 KiB block per row group (122,880 rows) stays held until the
  statement commits: about 2.1 MB per million rows that no setting spills;
- the checkpoint after it compresses the column into the file, one row group per thread at a time; on one thread
  its peak is lowest (a VARCHAR DEFAULT on 10M rows passes in a 28 MB pool on one thread, not on two);
- several ADD COLUMNs in one transaction add up; writing a DEFAULT with ``UPDATE`` in row-id slices needs more
  (each slice's updates are held until its checkpoint) and takes three times as long; rebuilding the table in
  slices is not possible inside the cap for a table with a primary key (DuckDB builds the index in memory).

So :func:`add_column` runs each ``ADD COLUMN`` alone, in its own transaction on one thread, and checkpoints after
it: inside the 256 MB cap up to about 900 row groups (110M rows) per table, i.e. ``posts`` of 100M posts. A
larger table (``post_observations`` at 100M posts holds 200M rows) needs more than the cap whatever is done; then
the cap is raised to :func:`memory_needed` for that one statement, with a warning (and back afterwards).

The migration runner (``Archive._migrate``) sends every ``ALTER TABLE t ADD COLUMN IF NOT EXISTS c TYPE [DEFAULT
x]`` statement of a stepwise migration here (:func:`parse_add_column`), so a migration file needs nothing more
than the statement; each is idempotent (a migration killed half-way runs again from its first statement).
Example::

    add_column(con, "posts", "reply_to_peer_id", "BIGINT")             # True: added
    add_column(con, "post_observations", "source", "VARCHAR", "'api'")
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass

import duckdb

#: DuckDB's rows per row group, and what an ADD COLUMN holds per row group until it commits (one block).
ROW_GROUP_ROWS = 122_880
ROW_GROUP_BYTES = 256 * 1024               # one 256 KiB block
#: What DuckDB needs besides (catalog, the checkpoint's compression buffers on one thread), measured.
BASE_BYTES = 16 * 2**20

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


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The column names of ``table`` in the main schema."""
    return {str(r[0]) for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?",
        [table]).fetchall()}


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    row = con.execute("SELECT current_setting(?)", [name]).fetchone()
    return str(row[0]) if row else ""


def memory_needed(rows: int) -> int:
    """Bytes of buffer pool an ``ADD COLUMN`` on a table of ``rows`` rows needs (measured, DuckDB 2.0.1):
    ``ROW_GROUP_BYTES`` per row group of 122,880 rows, held until it commits, plus ``BASE_BYTES``.

    >>> memory_needed(60_000_000) // 2**20, memory_needed(200_000_000) // 2**20
    (138, 423)
    """
    return -(-rows // ROW_GROUP_ROWS) * ROW_GROUP_BYTES + BASE_BYTES


def add_column(con: duckdb.DuckDBPyConnection, table: str, column: str, type_sql: str,
               default_sql: str | None = None, *, memory_limit: str | None = None) -> bool:
    """Add ``column`` to ``table`` (with ``default_sql`` as its DEFAULT, e.g. ``"'api'"``) inside the connection's
    memory cap where DuckDB can; idempotent. Returns False when the column was there already.

    One statement in its own transaction on one DuckDB thread, then a checkpoint. When the table is too large for
    the cap (:func:`memory_needed`), the cap is raised to what the statement needs for that statement alone and a
    warning says so (see the module docstring), and set back to ``memory_limit`` (the archive's cap, e.g.
    ``'256MB'``; None: the value DuckDB reported, rounded to a tenth of a MiB). Must run outside a transaction
    (it commits its own).
    """
    if column in _columns(con, table):
        return False
    t, c = _quote(table), _quote(column)
    row = con.execute(f"SELECT count(*) FROM {t}").fetchone()
    needed = memory_needed(int(row[0]) if row else 0)
    limit, threads = _setting(con, "memory_limit"), _setting(con, "threads")
    raised = needed > _bytes(con, limit)
    if raised:
        warnings.warn(f"adding column {column} to {table} needs about {needed // 2**20} MB of DuckDB's buffer pool, "
                      f"more than the archive's cap of {limit} (DuckDB 2.0 holds a block per row group until the "
                      "statement commits); the cap is raised for this statement only", RuntimeWarning, stacklevel=2)
        con.execute(f"SET memory_limit = '{needed // 2**20}MB'")
    con.execute("SET threads = 1")       # the checkpoint compresses one row group at a time: the lowest peak
    try:
        default = f" DEFAULT {default_sql}" if default_sql is not None else ""
        _step(con, f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {c} {type_sql}{default}")
    finally:
        con.execute(f"SET threads = {int(threads)}")
        if raised:
            con.execute(f"SET memory_limit = '{memory_limit or limit}'")
    return True


def _bytes(con: duckdb.DuckDBPyConnection, size: str) -> int:
    """DuckDB's size text (``'244.1 MiB'``, ``'256MB'``) in bytes."""
    row = con.execute("SELECT ?::VARCHAR", [size]).fetchone()
    text = str(row[0] if row else size).strip()
    units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 10**3, "MB": 10**6, "GB": 10**9,
             "TB": 10**12, "B": 1, "BYTES": 1}
    number, _, unit = text.partition(" ")
    if not unit:
        digits = len(text) - len(text.lstrip("0123456789."))
        number, unit = text[:digits], text[digits:]
    return int(float(number) * units.get(unit.strip().upper(), 1))


def _step(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """One statement in its own transaction, then a checkpoint: what it wrote goes to the file, not memory."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(sql)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    con.execute("CHECKPOINT")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
