"""The lake's files: writing a stream of sorted rows into one Parquet file per partition, each replaced atomically.

:func:`write_partitions` runs one DuckDB query sorted by partition and key, streams its Arrow batches, and writes
each partition's rows to a temporary file in the partition's own directory (``.<collector>.parquet.<pid>.tmp``,
a name no reader globs: it does not end in ``.parquet``, and Spark skips dot files), then fsyncs it, renames it
over ``<collector>.parquet`` and fsyncs the directory. Memory is bounded by a batch and a row group; DuckDB spills
the sort to disk under the archive's memory cap. A reader sees the old file or the new one, never a part.

The query's helper columns: ``_part`` (a BIGINT that changes exactly where the partition changes), ``slot`` and
``month`` (the partition, not written into the file: it is in the path) and, for post-level tables, ``_h`` (the
row's 64-bit DuckDB hash over its columns): their sum, wrapping, is the partition's digest
(:func:`collector._archive.lake.partition_digest_sql` computes the same from the archive or from the files).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .slots import month_name

_HELPERS = ("_part", "slot", "month", "_h")
#: ``_part`` of a post-level row: ``slot * PART_SLOT + year * 12 + month`` (month index 0: ``unknown``).
PART_SLOT = 1_000_000
_BATCH_ROWS = 16_384   # a small batch pins little memory: a partition's slices keep their batch alive
ROW_GROUP_ROWS = 122_880
_WRITE_THREADS = 2     # encoding and writing finished partitions (CPU: this machine's cores)
_SYNC_THREADS = 16     # fsyncing and renaming written files (each waits on the disk, not the CPU)
_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()
_PENDING = 8           # finished partitions waiting to be written at most (each holds up to a row group) ...
_PENDING_BYTES = 48 << 20   # ... and at most this much Arrow data among them (one partition may be larger)
#: ``max_pending`` of an incremental publish: none. Each finished partition is written before the next is read, so
#: the process holds one partition's rows (a few MB at 10M posts) beside DuckDB's sort, never two or more; at
#: 10M posts that cost no wall time (the writer thread and DuckDB's one thread took turns on the same data),
#: and kept 35-60 MB off the peak (docs/lake.md, "Publishing: what it costs").
INCREMENTAL_PENDING = 0


def _pool(kind: str) -> ThreadPoolExecutor:
    """The threads that write (``'write'``) or fsync and rename (``'sync'``) finished partitions: made once per
    process and kept (a collector publishes after every pass; starting threads each time cost more than a
    small publish's fsyncs). Many fsyncs at once let the file system commit them together."""
    with _POOL_LOCK:
        if kind not in _POOLS:
            _POOLS[kind] = ThreadPoolExecutor(max_workers=_WRITE_THREADS if kind == "write" else _SYNC_THREADS,
                                              thread_name_prefix=f"lake-{kind}")
        return _POOLS[kind]


@dataclass(frozen=True)
class Written:
    """One partition file written: its name (``slot=07/month=2025-03``), rows and digest (None: none kept)."""

    name: str
    rows: int
    digest: str | None


def partition_name(slot: int | None, month: str | None) -> str:
    """``slot=07/month=2025-03``, ``slot=07``, or ``''`` (no slot)."""
    if slot is None:
        return ""
    return f"slot={int(slot):02d}" + (f"/month={month}" if month is not None else "")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path, root: Path, parents: set[Path] | None = None) -> None:
    """Create ``path`` (under ``root``) and fsync each new directory's parent, so its entry survives a crash.

    ``parents``: collect those parents here instead, for the caller to fsync each once (:func:`fsync_dirs`)
    before it records the files as published (a full publish creates some 800 directories under 65 parents)."""
    missing = []
    p = path
    while not p.exists() and p != root:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        if parents is None:
            fsync_dir(d.parent)
        else:
            parents.add(d.parent)


def fsync_dirs(paths: set[Path]) -> None:
    """fsync each directory of ``paths`` once, on the install threads (fsync waits on the disk, not the CPU)."""
    pool = _pool("sync")
    for future in [pool.submit(fsync_dir, p) for p in sorted(paths)]:
        future.result()


def install(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` (same directory) atomically: fsync the data, rename, fsync the directory."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def remove(final: Path) -> bool:
    """Remove a file (a partition that has no rows any more); True when there was one."""
    try:
        final.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(final.parent)
    return True


def write_atomic(path: Path, text: str, root: Path) -> None:
    """Write a small text file (a manifest) atomically."""
    make_dirs(path.parent, root)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def sweep_temporaries(base: Path, collector: str) -> int:
    """Remove what killed publishes of ``collector`` left under ``base`` (never read by anyone); returns how many.

    One ``os.walk`` over the lake's directories (a few thousand: partitions do not grow with the posts)."""
    found = 0
    prefix = f".{collector}.parquet."
    for folder, _dirs, files in os.walk(base):
        for name in files:
            if name.startswith(prefix) and name.endswith(".tmp"):
                Path(folder, name).unlink(missing_ok=True)
                found += 1
    return found


class _Partition:
    """The file of one partition being written: buffered slices, written a row group at a time."""

    def __init__(self, final: Path, digest: bool) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[pa.RecordBatch] = []
        self.buffered = 0
        self.nbytes = 0      # of the batches buffered now
        self.rows = 0
        self.digest: np.uint64 | None = np.uint64(0) if digest else None

    def add(self, batch: pa.RecordBatch) -> None:
        if self.digest is not None:      # a sum of 64-bit row hashes, wrapping: independent of row order
            with np.errstate(over="ignore"):
                self.digest += np.sum(batch.column("_h").to_numpy(zero_copy_only=False).astype(np.uint64),
                                      dtype=np.uint64)
        data = batch.drop_columns([c for c in _HELPERS if c in batch.schema.names])
        self.buffer.append(data)
        self.buffered += data.num_rows
        self.nbytes += data.nbytes
        self.rows += data.num_rows
        if self.buffered >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_batches(self.buffer)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression="zstd")
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.buffer, self.buffered, self.nbytes = [], 0, 0

    def hexdigest(self) -> str | None:
        """``<rows>:<sum of row hashes mod 2^64 as 16 hex digits>`` (None: the table has no digest)."""
        return None if self.digest is None else f"{self.rows}:{int(self.digest):016x}"

    def close(self, syncs: list[Future[None]]) -> None:
        """Write what is buffered and close the file, then hand its fsync and rename to the sync threads
        (their future appended to ``syncs``)."""
        self._flush()
        if self.writer is not None:
            self.writer.close()
        syncs.append(_pool("sync").submit(install, self.tmp, self.final))


def _partition_of(part: int, layout: str) -> tuple[int, str | None]:
    """(slot, month) of a ``_part`` value: ``slot * PART_SLOT + year * 12 + month`` (0: ``unknown``) for
    post-level tables, the slot itself for the others."""
    if layout != "post":
        return part, None
    return part // PART_SLOT, month_name(part % PART_SLOT)


def _runs(batch: pa.RecordBatch) -> Iterator[tuple[int, int]]:
    """(start, length) of each run of equal ``_part`` in a batch."""
    part = batch.column("_part").to_numpy(zero_copy_only=False)
    cuts = np.flatnonzero(np.diff(part)) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), len(part)]
    for s, e in zip(starts, ends, strict=True):
        yield s, e - s


def write_partitions(con: duckdb.DuckDBPyConnection, sql: str, directory: Path, root: Path, collector: str, *,
                     layout: str, max_pending: int = _PENDING, pending_bytes: int = _PENDING_BYTES) -> list[Written]:
    """Write the rows of ``sql`` (sorted by ``_part`` then key, with the helper columns) as one file per partition
    under ``directory`` (a table's directory); returns what was written, in order.

    A finished partition is written by :data:`_WRITE_THREADS` threads, then fsynced and renamed into place by
    :data:`_SYNC_THREADS` others (both kept for the process), while the next is read; at most ``max_pending``
    finished partitions (:data:`_PENDING`; 0: each is written before the next is read), and ``pending_bytes``
    of their data, wait to be written. Every one is waited for
    before this returns or raises (the first failure), and the directories made here are fsynced before it
    returns.
    """
    written: list[Written] = []
    pending: deque[tuple[Future[None], int]] = deque()     # partitions handed to the writers, and their bytes
    syncs: list[Future[None]] = []
    current: _Partition | None = None
    current_key: tuple[int | None, str | None] = (None, None)

    def finish(part: _Partition, key: tuple[int | None, str | None]) -> None:
        written.append(Written(partition_name(*key), part.rows, part.hexdigest()))
        pending.append((pool.submit(part.close, syncs), part.nbytes))
        while len(pending) > max_pending or (len(pending) > 1 and sum(n for _, n in pending) > pending_bytes):
            pending.popleft()[0].result()

    pool = _pool("write")
    parents: set[Path] = set()      # of directories made here: fsynced once each, before this returns
    try:
        for batch in con.sql(sql).to_arrow_reader(_BATCH_ROWS):
            if batch.num_rows == 0:
                continue
            for start, length in _runs(batch):
                piece = batch.slice(start, length)
                slot, month = _partition_of(int(piece.column("_part")[0].as_py()), layout)
                if current is None or (slot, month) != current_key:
                    if current is not None:
                        finish(current, current_key)
                    final_dir = directory / partition_name(slot, month)
                    make_dirs(final_dir, root, parents)
                    current = _Partition(final_dir / f"{collector}.parquet", "_h" in piece.schema.names)
                    current_key = (slot, month)
                current.add(piece)
        if current is not None:
            finish(current, current_key)
    finally:
        failure: BaseException | None = None
        while pending:                     # every one waited for; the first failure is raised
            try:
                pending.popleft()[0].result()
            except BaseException as exc:   # re-raised below, once the others have finished
                failure = failure or exc
        for sync in syncs:                 # complete now: each write appended its sync before it finished
            try:
                sync.result()
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
    fsync_dirs(parents)     # a file renamed into a new directory is reachable after a crash once these are done
    return written
