"""Open an archive for analysis: read-only, UTC, and polite to a running collector.

DuckDB lets no other process open a file while one process holds it read-write (the collector
during a pass), and a reader that holds the file keeps the collector out. So:

- :func:`connect` opens the file read-only and, if a collector holds it, retries for up to ``wait``
  seconds before raising :class:`ArchiveBusyError` with a message that says what to do.
- Hold connections briefly. In a notebook, read the lake instead (``analysis.connect("lake")``: no copy, no
  lock, docs/lake.md), or open, query, close (``with analysis.connect(p) as con:``).
- ``snapshot=True`` copies the tables into memory and releases the file at once. The lake replaces it; it is
  kept for one measured case: a small archive without a lake, kept open in a notebook while a scheduled
  collector runs (1M posts: 5 s and 0.85 GB; 10M: 7-17 s and 7.7 GB). It warns above
  :data:`SNAPSHOT_WARN_POSTS` posts.

Example::

    with analysis.connect("archive.duckdb") as con:
        df = analysis.cascades(con)
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import duckdb

#: Columns never copied into a snapshot: the raw TL payloads (large, and not used by the analyses).
_SNAPSHOT_SKIP = {"raw"}
#: Above this many posts ``snapshot=True`` warns: the copy costs about 0.85 GB of RAM per million posts.
SNAPSHOT_WARN_POSTS = 2_000_000


class ArchiveBusyError(TimeoutError):
    """The archive stayed locked (a collector pass holds it read-write) for longer than the wait."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "being used" in text


def _open_read_only(path: str, wait: float, poll: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        try:
            con = duckdb.connect(path, read_only=True)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise ArchiveBusyError(
                    f"{path} is locked by another process (most likely a collector pass is writing to it). "
                    f"Waited {wait:g} s. Retry when the pass has finished, raise `wait=`, or read a copy "
                    f"published after the pass. Original error: {exc}"
                ) from exc
            time.sleep(poll)
            continue
        con.execute("SET TimeZone = 'UTC'")
        return con


def _copy_into_memory(path: str, wait: float, poll: float) -> duckdb.DuckDBPyConnection:
    """An in-memory connection holding a copy of every table of the archive (without raw payloads)."""
    source = _open_read_only(path, wait, poll)   # waits for the collector like connect() does
    try:
        counted = source.execute("SELECT estimated_size FROM duckdb_tables() WHERE table_name = 'posts'").fetchall()
        if counted and (counted[0][0] or 0) > SNAPSHOT_WARN_POSTS:
            warnings.warn(f"snapshot=True copies {counted[0][0]:,} posts into memory (about 0.85 GB per million): "
                          "publish a lake ([lake] path in tgspread.toml, `tgspread publish`) and open it with "
                          "analysis.connect('lake') instead, which copies nothing and locks nothing",
                          UserWarning, stacklevel=3)
        tables = source.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        mem = duckdb.connect(":memory:")
        mem.execute("SET TimeZone = 'UTC'")
        for (table,) in tables:
            columns = [
                name for (name,) in source.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if name not in _SNAPSHOT_SKIP
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            arrow = source.sql(f'SELECT {select} FROM "{table}"').to_arrow_table()
            mem.from_arrow(arrow).create(table)          # a table of the in-memory copy, never of the file
        return mem
    finally:
        source.close()


def connect(
    path: str | os.PathLike[str], *, wait: float = 30.0, snapshot: bool = False, poll: float = 0.25
) -> duckdb.DuckDBPyConnection:
    """Open the archive at ``path`` for the analysis functions; never writes to it.

    ``path`` may also be a lake directory (``tgspread publish``): then the connection is :func:`analysis.lake.
    connect_lake`'s, an in-memory one with views over the Parquet files that copies nothing and locks nothing
    (``wait`` and ``snapshot`` do not apply).

    ``wait``: seconds to keep retrying while a collector holds the file (0: fail at once).
    ``snapshot``: copy the tables (minus raw JSON payloads) into an in-memory database and release
    the file before returning; costs about 0.85 GB and 5 s per million posts (it warns above
    :data:`SNAPSHOT_WARN_POSTS`), but a notebook can then keep the connection as long as it likes. A lake does
    the same without the copy. Without either, close the connection soon after use.

    The session time zone is UTC, so timestamps come out as UTC-aware datetimes.
    Raises ``FileNotFoundError`` for a missing file or a folder that holds no lake (no ``_manifests/``: nothing
    was published there), and :class:`ArchiveBusyError` when the file stays locked.
    """
    p = Path(path)
    if p.is_dir():          # a lake (docs/lake.md): views over its Parquet files, no copy, no lock
        from .lake import connect_lake

        return connect_lake(p)
    if not p.exists():
        raise FileNotFoundError(f"no archive at {p}: run `tgspread collect` (or `tgspread demo`) first")
    if snapshot:
        return _copy_into_memory(str(p), wait, poll)
    return _open_read_only(str(p), wait, poll)
