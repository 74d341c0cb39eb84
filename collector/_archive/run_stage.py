"""Runs staged on disk: a check per run of channels reads its run only, not the whole table (issue 14, item 4).

``tgspread verify`` runs its checks and digests once per range of channel ids (``channel_runs``) to stay inside the
archive's memory cap. Neither a collected archive (each pass appends every channel's new posts) nor a generated one
is clustered by ``channel_id``, so DuckDB cannot skip row groups and every run re-scanned whole tables: quadratic in
the archive (30M posts: 45 runs x several checks x 90M rows, 1,149 s). A :class:`Stage` scans each large table
once and writes the columns the checks read into one Parquet folder per run (``COPY ... PARTITION_BY (run)``,
holding about :data:`BUFFERED_ROWS` rows whatever the number of runs), in a private folder (mode 0700) beside
the archive (in the system's temporary folder when the archive's folder cannot be written, e.g. a copy on
read-only media), removed on exit, even on error. Each run then reads only its own folder: linear in the
archive.

Example::

    with Stage.open(con, [(LOWEST, 9), (10, HIGHEST)]) as stage:
        stage.put("posts", "SELECT channel_id, message_id FROM posts", "channel_id")
        with stage.views(1):              # ``posts`` now names the rows of channels 10 ..
            con.execute("SELECT count(*) FROM posts").fetchone()
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from .upsert import size_bytes

#: Rows buffered for all the runs together, twice: DuckDB buffers each partition's rows until it holds
#: ``partitioned_write_flush_threshold`` of them (524,288 by default: per partition, not in all), and each open
#: file holds its row group until it is full. Both are set to the stage's rows divided by the runs (a row group
#: at least 2,048 rows), so what a stage holds does not grow with the runs. At 30M posts (about 240 digest runs)
#: a fixed threshold of 100,000 rows per partition spilled gigabytes and ran out of memory under the archive's
#: 256 MB cap. A stage holds at most this many rows, and fewer under a smaller cap (:func:`buffered_rows`).
BUFFERED_ROWS = 1_000_000
#: Bytes a staged row is counted for (a digest row: ids, key and a 64-character hash) when the cap sets the rows:
#: an eighth of DuckDB's memory limit at most goes to them; the rest stays for the scan, the open files and the
#: spill. Measured: under the 32 MB cap of ``test_memory_cap.py``, with four such tests at once, a half (125,000
#: rows) ran out of memory every time and 1,000,000 rows once in several runs; an eighth never did. The price at
#: the archive's 256 MB cap (250,000 rows, row groups of 2,048) is time: 30M posts verified in 422 s and 674 MB
#: against 313 s and 606 MB with 1,000,000 rows.
ROW_BYTES = 128


def run_case(expr: str, ranges: Sequence[tuple[int, int]]) -> str:
    """SQL giving the index of the range of ``ranges`` (sorted, disjoint, inclusive ``(first, last)``) that holds
    ``expr``, or NULL (in none, or NULL): a binary search of nested CASEs, a few comparisons per row.

    >>> run_case("x", [(1, 5), (6, 9)])
    'CASE WHEN x <= 5 THEN (CASE WHEN x BETWEEN 1 AND 5 THEN 0 END) ELSE (CASE WHEN x BETWEEN 6 AND 9 THEN 1 END) END'
    """
    def search(lo: int, hi: int) -> str:
        if lo == hi:
            first, last = ranges[lo]
            return f"CASE WHEN {expr} BETWEEN {first} AND {last} THEN {lo} END"
        mid = (lo + hi) // 2
        return f"CASE WHEN {expr} <= {ranges[mid][1]} THEN ({search(lo, mid)}) ELSE ({search(mid + 1, hi)}) END"

    return search(0, len(ranges) - 1) if ranges else "NULL"


class Stage:
    """A private folder of per-run Parquet files and the temporary views that name one run's rows."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ranges: Sequence[tuple[int, int]], folder: Path) -> None:
        self.con = con
        self.ranges = list(ranges)
        self.folder = folder
        self.index = {r: i for i, r in enumerate(self.ranges)}
        self._tables: dict[str, str] = {}     # staged name -> SQL for an empty relation of its columns

    @classmethod
    @contextlib.contextmanager
    def open(cls, con: duckdb.DuckDBPyConnection, ranges: Sequence[tuple[int, int]]) -> Iterator[Stage]:
        """A stage for ``ranges`` in a new folder beside the archive, removed with everything in it when the block
        ends. The system's temporary folder serves for an in-memory database, and when the archive's folder
        cannot be written (verifying an archive needs no write to it)."""
        row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
        beside = Path(row[0]).resolve().parent if row and row[0] else None
        try:
            folder = Path(tempfile.mkdtemp(prefix=".tgspread-runs-", dir=beside))     # mkdtemp: mode 0700
        except OSError:
            folder = Path(tempfile.mkdtemp(prefix=".tgspread-runs-"))
        try:
            yield cls(con, ranges, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def put(self, name: str, select_sql: str, key: str, params: dict[str, Any] | None = None) -> None:
        """Write the rows of ``select_sql`` (with ``params``) into the runs by ``key`` (a channel id column; rows
        whose key lies in no range are left out) in one scan. ``name`` then names them in :meth:`views`."""
        target = self.folder / name
        columns = self.con.execute(f"DESCRIBE SELECT * FROM ({select_sql}) LIMIT 0",
                                   {k: None for k in params or {}}).fetchall()
        nulls = ", ".join(f'CAST(NULL AS {c[1]}) AS "{c[0]}"' for c in columns)
        self._tables[name] = f"SELECT {nulls} WHERE false"
        run = run_case(f'"{key}"', self.ranges)
        share = max(1, buffered_rows(self.con) // max(1, len(self.ranges)))
        group = max(2048, share)       # DuckDB's smallest row group
        with flush_threshold(self.con, share):
            self.con.execute(f"COPY (SELECT * FROM (SELECT *, {run} AS _run FROM ({select_sql})) WHERE _run IS NOT "
                             f"NULL) TO '{_quoted(target)}' (FORMAT parquet, PARTITION_BY (_run), "
                             f"COMPRESSION zstd, WRITE_PARTITION_COLUMNS false, ROW_GROUP_SIZE {group})", params or {})

    def source(self, name: str, run: int) -> str:
        """SQL naming the staged rows ``name`` of run ``run`` (an empty relation when the run has none)."""
        files = self.folder / name / f"_run={run}"
        if not files.is_dir():
            return f"({self._tables[name]})"
        return f"read_parquet('{_quoted(files)}/*.parquet', hive_partitioning = false)"

    @contextlib.contextmanager
    def views(self, run: int) -> Iterator[None]:
        """Within the block, temporary views named as the staged tables hold the rows of run ``run`` only; they
        shadow the archive's tables of the same name in unqualified SQL."""
        made = []
        try:
            for staged in self._tables:
                self.con.execute(f'CREATE OR REPLACE TEMP VIEW "{staged}" AS SELECT * FROM {self.source(staged, run)}')
                made.append(staged)
            yield
        finally:
            for view in made:
                self.con.execute(f'DROP VIEW IF EXISTS temp."{view}"')


def buffered_rows(con: duckdb.DuckDBPyConnection) -> int:
    """Rows a stage on ``con`` buffers for all its runs: :data:`BUFFERED_ROWS`, or fewer under a memory limit that
    gives them less than an eighth of it at :data:`ROW_BYTES` a row (at 256 MB about 250,000 rows, at 32 MB about
    31,000: DuckDB reads a limit back rounded, in MiB).

    >>> 30_000 < buffered_rows(duckdb.connect(config={"memory_limit": "32MB"})) < 33_000
    True
    """
    limit = size_bytes(str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0]))  # type: ignore[index]
    if limit is None:
        return BUFFERED_ROWS
    return max(1, min(BUFFERED_ROWS, int(limit) // 8 // ROW_BYTES))


@contextlib.contextmanager
def flush_threshold(con: duckdb.DuckDBPyConnection, rows: int) -> Iterator[None]:
    """Within the block, a ``COPY ... PARTITION_BY`` on ``con`` writes a partition's rows out once it buffers
    ``rows`` of them. DuckDB's threshold (524,288 rows by default) counts per partition: rows of a wide table that
    large pinned more than the archive's 256 MB cap (a channel of 1.3M posts at 30M posts), and a few hundred
    partitions below it buffered gigabytes."""
    before = con.execute("SELECT current_setting('partitioned_write_flush_threshold')").fetchone()
    con.execute(f"SET partitioned_write_flush_threshold = {int(rows)}")
    try:
        yield
    finally:
        con.execute(f"SET partitioned_write_flush_threshold = {int(before[0]) if before else 524288}")


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
