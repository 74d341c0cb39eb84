"""Reading a lake: the archive's tables as views over Parquet files, no copy and no lock.

A lake (``docs/lake.md``) is what ``tgspread publish`` writes: ``<lake>/<table>/slot=NN/month=YYYY-MM/
<collector>.parquet`` for post-level tables, ``<lake>/<table>/slot=NN/<collector>.parquet`` for the others (rows
without a channel id in slot 0), and ``<lake>/_manifests/<collector>.json`` per collector. Files of the layout
before slots for every table (``<lake>/<table>/<collector>.parquet``, until the collector's next publish) are
read too, each row in its channel's slot (slot 0 without one). :func:`connect_lake` returns an in-memory DuckDB
connection whose views have the archive's table names (plus the partition columns ``slot`` and ``month``, which a
filter can use to skip files):

- nothing is copied and no file is locked: each query reads the files that exist when it runs, so a notebook
  may stay open for days while collectors publish; a file replaced during a query is read whole, old or new;
- the collectors are those with a manifest when the connection opens (reconnect to see a new collector); files
  are matched to the schema by column name only while the lake may mix schema versions (:func:`_mixed_schemas`);
  a manifest that cannot be read (:func:`read_manifests`) warns, and its collector's files are read all the same
  (by column name: their schema version is unknown);
- with more than one collector, rows are de-duplicated on their natural keys (:data:`NATURAL_KEYS`), keeping
  the newest observation (``last_seen_at``, or ``deleted_at`` when later: a deletion seen is an observation;
  else the collector name last): while a slot moves between
  collectors both may hold its rows;
- a table with no files (nothing published yet) is an empty view with the table's schema
  (:data:`analysis._lake_schema.LAKE_SCHEMA`); a folder without ``_manifests/`` is no lake (FileNotFoundError);
  the session time zone is UTC;
- only publish's layout is read (:func:`lake_files`): ``slot=00`` to ``slot=63``, ``month=YYYY-MM`` (or
  ``unknown``), files named ``<collector>.parquet``; no symbolic link inside the lake is followed (the lake's own
  path may be one). The views' globs name the partition folders as narrowly as a glob can, so a folder that would
  break reading is never matched, even one made after the connection opened (``slot=foo``, ``month=2025-03-old``);
  what the globs still match outside the layout when the connection opens (a symbolic link, ``slot=64``) is left
  out by name, and all of it is named in one warning;
- files are not opened before a query needs them: a damaged file (:func:`unreadable_files`) fails the queries that
  read it, with DuckDB's error naming the file (``<collector>.parquet``: that collector republishes it). A view takes
  its columns from its first file: when those are not the schema publish writes (a column of another type, a key
  column missing, fewer columns than the collector's other files), that file is left out with a warning naming it;
- DuckDB works within :data:`MEMORY_LIMIT` and spills to a temporary directory beyond it, so a notebook on a
  lake of 100M posts stays within a few GB (``SET memory_limit = '8GB'`` on the connection to give it more).

Example::

    con = analysis.connect("lake")              # a directory: the lake
    analysis.cascades(con)
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import itertools
import json
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ._lake_schema import LAKE_SCHEMA

#: The lake's slot count and formula: a copy of ``collector._archive.slots`` (analysis imports nothing from collector);
#: tests/unit/test_lake_slots.py pins them equal.
SLOTS = 64

#: Natural key of the tables a reader de-duplicates across collectors (others: whole identical rows).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "channels": ("channel_id",),
    "channel_observations": ("channel_id", "observed_at"),
    "channel_usernames": ("username",),
    "channel_cursors": ("channel_id",),
    "peers": ("channel_id",),
    "posts": ("channel_id", "message_id"),
    "post_observations": ("channel_id", "message_id", "observed_at"),
    "post_versions": ("channel_id", "message_id", "observed_at"),
    "post_comments": ("discussion_id", "comment_id"),
    "post_comment_cursors": ("channel_id", "message_id"),
    "post_media": ("channel_id", "message_id"),
    "media_downloads": ("channel_id", "message_id"),
}
#: DuckDB's memory limit on a lake connection (its default would be 80% of the machine's RAM): the metrics over
#: 100M posts run within it, spilling to :data:`SPILL_DIR` (benchmarks/lake_bench.py, docs/lake.md).
MEMORY_LIMIT = "2GB"
#: DuckDB settings of a lake connection besides the limit. ``allocator_background_threads``: a DuckDB thread
#: returns the memory a finished query freed to the system, where DuckDB's allocator otherwise kept it. A result
#: handed to Polars then reuses it: ``cascades`` over 100M posts peaked at 4.56-4.66 GB without it (DuckDB kept
#: 1.7 GB of its query's memory while Polars sorted the 0.9 GB frame) and at 3.10 GB with it, in the same time
#: (docs/lake.md, "At 100M posts").
CONFIG: dict[str, Any] = {"allocator_background_threads": True}
#: Where a lake connection spills: ``<system temp>/tgspread-spill-<pid>-<n>``, one directory per connection (two
#: DuckDB instances must not share one); DuckDB removes it with its files when the connection closes.
SPILL_DIR = "tgspread-spill"
_spills = itertools.count()
#: The column that says which copy of a row is newest, where a table has one (:func:`newest_column`).
_NEWEST = "last_seen_at"
#: ... and for the keyed tables without ``last_seen_at``: when their row was last written. After a slot moved,
#: the old owner's copy of a cursor stays in the lake; the newest one is the new owner's.
_NEWEST_OF = {"channel_cursors": "updated_at", "post_comment_cursors": "fetched_at", "post_media": "linked_at",
              "media_downloads": "updated_at"}
_TABLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")   # a directory that names a table (never _staging, _manifests)
#: What a collector may be called (it names files in a shared lake): letters, digits, ``-`` and ``_``, at most 64,
#: a letter or digit first. Use ``fullmatch`` (``$`` would let a trailing newline through). The collector's
#: config, assignment files and publish check names with this one pattern.
COLLECTOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_GLOB = re.compile(r"[\[\]*?]")
#: Publish's layout (collector._archive.lake_files.partition_name, collector._archive.slots.month_name): the
#: partition folders and the file names it writes. Anything else in a table's folder is not read.
_SLOT_DIR = re.compile(r"^slot=(?:[0-5][0-9]|6[0-3])$")
_MONTH_DIR = re.compile(r"^month=(?:[0-9]{4}-(?:0[1-9]|1[0-2])|unknown)$")
_FILE = re.compile(COLLECTOR_NAME.pattern + r"\.parquet")   # fullmatch
#: The same as globs (DuckDB's and Python's both read ``[...]``), for the views, which must also see partitions
#: published after the connection opened. A glob cannot say "00 to 63" or "YYYY-MM or unknown" exactly: these match
#: two digits, and ``YYYY-MM`` or ``unknown`` letter by letter (``[0-9u][0-9n]...``). That keeps out every folder
#: that would break reading (a slot that is no number fails the INTEGER cast; ``month=2025-03-old`` would be read
#: beside ``month=2025-03``); the few names they match beyond the layout (``slot=64``, ``month=2025-13``) are found by
#: :func:`lake_files` when the connection opens and left out by name.
_SLOT_GLOB = "slot=[0-9][0-9]"
_MONTH_GLOB = "month=[0-9u][0-9n][0-9k][0-9n][-o][0-9w][0-9n]"
_SHAPE = {"post": "slot=NN/month=YYYY-MM/<collector>.parquet", "slot": "slot=NN/<collector>.parquet",
          "flat": "<collector>.parquet"}
_LINK = "a symbolic link: publish never makes one"
_SPECIAL = "not a regular file: a pipe, a socket or a device"
#: The reason :func:`unreadable_files` gives a file whose footer reads but whose columns are not publish's.
_NOT_SCHEMA = "not the schema publish writes"
#: Partition columns: in the path, not in the files.
_PARTITION_COLUMNS = ("slot", "month")
#: A manifest larger than this is refused unread (a publish writes a few hundred KB at 100M posts).
_MANIFEST_BYTES = 64 * 2**20
#: A Parquet footer claiming more than this is not read (a crafted file could make a reader allocate gigabytes).
_FOOTER_BYTES = 64 * 2**20
_HIVE = {"post": "hive_partitioning = true, hive_types = {'slot': INTEGER, 'month': VARCHAR}",
         "slot": "hive_partitioning = true, hive_types = {'slot': INTEGER}",
         "flat": "hive_partitioning = false"}


def slot(channel_id: int) -> int:
    """The lake slot (0-63) of a bare channel id (``collector._archive.slots.slot``)."""
    return int(hashlib.md5(str(int(channel_id)).encode("ascii")).hexdigest()[:8], 16) % SLOTS


def slot_sql(column: str) -> str:
    """DuckDB SQL for the slot of the BIGINT expression ``column`` (``collector._archive.slots.slot_sql``)."""
    return f"(('0x' || md5(CAST({column} AS VARCHAR))[1:8])::UBIGINT % {SLOTS})::INTEGER"


def is_lake(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory (a lake, possibly empty) rather than an archive file."""
    return Path(path).is_dir()


def newest_column(table: str) -> str | None:
    """The column whose highest value marks the newest of several collectors' copies of a row of ``table`` (None:
    the table has none; the copy whose file name sorts last is kept). DuckDB's views and Spark's both use it."""
    name = _NEWEST_OF.get(table, _NEWEST)
    columns = {c for c, _ in LAKE_SCHEMA.get(table, ("", ()))[1]}
    return name if name in columns else None


def read_manifests(lake: Path) -> tuple[dict[str, dict[str, object]], dict[Path, str]]:
    """The manifests of ``lake``: (collector -> manifest, for every readable one; path -> why, for every one that
    cannot be read: not JSON, empty, a symbolic link (never followed out of the lake), or not the manifest of the
    collector its file name says).

    A collector's files are named after it, so they are found without its manifest; its next ``tgspread publish``
    (a full one: it cannot read what it published before) writes the manifest again.
    """
    found: dict[str, dict[str, object]] = {}
    bad: dict[Path, str] = {}
    linked = (lake / "_manifests").is_symlink()
    for path in sorted((lake / "_manifests").glob("*.json")):
        if not COLLECTOR_NAME.fullmatch(path.stem):      # never a glob pattern or a path from a file name
            bad[path] = "its name is no collector name (letters, digits, '-' and '_', at most 64)"
            continue
        if linked or path.is_symlink():          # never followed out of the lake
            bad[path] = f"{'the folder _manifests is ' if linked else ''}{_LINK}: not read"
            continue
        try:
            if path.stat().st_size > _MANIFEST_BYTES:
                bad[path] = f"larger than {_MANIFEST_BYTES // 2**20} MB, which no publish writes"
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            bad[path] = exc.strerror or str(exc)
            continue
        try:
            data = json.loads(text)
        except RecursionError:
            bad[path] = "JSON nested too deep"
            continue
        except ValueError as exc:
            bad[path] = f"not JSON ({exc})" if text.strip() else "an empty file"
            continue
        if not isinstance(data, dict):
            bad[path] = "not a JSON object"
        elif data.get("collector") != path.stem:
            bad[path] = f"it names collector {data.get('collector')!r}, not {path.stem!r}"
        else:
            found[path.stem] = data
    return found, bad


@dataclass(frozen=True)
class LakeFiles:
    """What :func:`lake_files` finds in a lake: the files in publish's layout, and what is outside it."""

    #: table -> its layout: ``post`` (slot and month), ``slot``, or ``flat`` (one ``<collector>.parquet``)
    layouts: dict[str, str] = field(default_factory=dict)
    #: table -> collector -> its files in publish's layout, sorted
    files: dict[str, dict[str, list[Path]]] = field(default_factory=dict)
    #: table (of slot layout) -> collector -> its one file of the layout before slots (``<table>/<collector>.parquet``)
    legacy: dict[str, dict[str, Path]] = field(default_factory=dict)
    #: every entry outside publish's layout (a folder, a ``.parquet`` file, a symbolic link, a pipe) -> why
    odd: dict[Path, str] = field(default_factory=dict)

    def of(self, table: str, collector: str | None = None) -> list[Path]:
        """The files of ``table`` in publish's layout (of every collector, or of ``collector``), sorted; files of the
        layout before slots included."""
        files = self.files.get(table, {})
        legacy = self.legacy.get(table, {})
        names = sorted({*files, *legacy}) if collector is None else [collector]
        return sorted([*(p for c in names for p in files.get(c, [])), *(legacy[c] for c in names if c in legacy)])


def lake_files(lake: Path, tables: Iterable[str] | None = None) -> LakeFiles:
    """Walk the tables of ``lake`` (every folder named like a table, or ``tables``), never following a symbolic
    link: the files in publish's layout, and every entry that is outside it (:class:`LakeFiles`; a manifest that is
    a symbolic link is :func:`read_manifests`' to refuse).

    Publish writes ``<table>/slot=NN/month=YYYY-MM/<collector>.parquet`` (post-level tables) or
    ``<table>/slot=NN/<collector>.parquet``, with ``NN`` 00 to 63 and ``YYYY-MM`` or ``unknown``; a table of slot layout
    may still hold one ``<table>/<collector>.parquet`` of the layout before slots. Outside it: another folder, a
    ``.parquet`` file of another name or place, a symbolic link, a pipe or a device. Hidden entries (``.*``: what a
    killed publish leaves, a file manager's) and files not named ``.parquet`` are no reader's business and ignored.
    It lists each folder once (about 1,000 at 10M posts: some 10 ms) and opens no file.
    """
    out = LakeFiles()
    wanted = None if tables is None else set(tables)
    for name, kind in _entries(lake):
        path = lake / name
        if _TABLE.match(name) and (wanted is None or name in wanted):
            if kind == "link":
                out.odd[path] = _LINK
            elif kind == "dir":
                _walk_table(path, out)
    return out


def _entries(folder: Path) -> list[tuple[str, str]]:
    """(name, kind) of the entries of ``folder`` but hidden ones, sorted; kind: dir, file, link or other (without
    following links: a directory entry's type, no stat). [] when it cannot be listed."""
    found = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                try:
                    kind = ("link" if entry.is_symlink() else "dir" if entry.is_dir(follow_symlinks=False)
                            else "file" if entry.is_file(follow_symlinks=False) else "other")
                except OSError:
                    kind = "other"
                found.append((entry.name, kind))
    except OSError:
        return []
    return sorted(found)


def _odd(out: LakeFiles, path: Path, kind: str, layout: str) -> None:
    """Record ``path`` (of ``kind``) as outside publish's layout, but a file not named ``.parquet`` (no reader's)."""
    if kind == "link":
        out.odd[path] = _LINK
    elif kind == "other":
        out.odd[path] = _SPECIAL
    elif kind == "dir" or path.name.endswith(".parquet"):
        what = "a folder publish does not make" if kind == "dir" else "a file publish does not write"
        out.odd[path] = f"{what}: it writes {_SHAPE[layout]}" + (", NN 00 to 63" if layout != "flat" else "")


def _walk_table(base: Path, out: LakeFiles) -> None:
    table = base.name
    slots: list[Path] = []
    flat: dict[str, Path] = {}
    strays: list[tuple[Path, str]] = []
    for name, kind in _entries(base):
        if kind == "dir" and _SLOT_DIR.match(name):
            slots.append(base / name)
        elif kind == "file" and _FILE.fullmatch(name):
            flat[name[:-len(".parquet")]] = base / name
        else:
            strays.append((base / name, kind))
    inner = {s: _entries(s) for s in slots}
    known = LAKE_SCHEMA.get(table)
    layout = known[0] if known is not None else (
        "post" if any(k == "dir" and _MONTH_DIR.match(n) for found in inner.values() for n, k in found)
        else "slot" if slots else "flat")
    out.layouts[table] = layout
    for path, kind in strays:
        _odd(out, path, kind, layout)
    files: dict[str, list[Path]] = {}
    for folder in slots:
        for name, kind in inner[folder]:
            path = folder / name
            if layout == "post" and kind == "dir" and _MONTH_DIR.match(name):
                for leaf, leaf_kind in _entries(path):
                    if leaf_kind == "file" and _FILE.fullmatch(leaf):
                        files.setdefault(leaf[:-len(".parquet")], []).append(path / leaf)
                    else:
                        _odd(out, path / leaf, leaf_kind, layout)
            elif layout != "post" and kind == "file" and _FILE.fullmatch(name):
                files.setdefault(name[:-len(".parquet")], []).append(path)
            else:
                _odd(out, path, kind, layout)
    if layout == "flat":
        files = {c: [p] for c, p in flat.items()}
    elif layout == "slot":
        out.legacy[table] = flat
    else:                          # post-level tables never were one file
        for path in flat.values():
            _odd(out, path, "file", layout)
    out.files[table] = {c: sorted(paths) for c, paths in files.items()}


def unreadable_files(lake: Path, tables: Iterable[str] | None = None, *, collector: str | None = None,
                     deep: bool = False) -> dict[Path, str]:
    """The Parquet files of ``lake`` in publish's layout (:func:`lake_files`; of every table, or of ``tables``; of
    every collector, or of ``collector``) that cannot be read: path -> why (an empty or truncated file, not Parquet
    at all, or not the schema publish writes: see :func:`_schema_problem`).

    It reads each file's footer, a fraction of a millisecond; ``deep`` reads every row too, to find damage behind
    an intact footer (as long as a query over the files). A file ``<table>/.../<collector>.parquet`` is that
    collector's: its ``tgspread publish --full`` rewrites it. What is outside the layout is not read here (nor by
    any reader of tgspread): :attr:`LakeFiles.odd` names it.
    """
    return {path: why for path, (why, _) in _file_problems(lake, tables, collector=collector, deep=deep).items()}


def _file_problems(lake: Path, tables: Iterable[str] | None, *, collector: str | None = None,
                   deep: bool = False) -> dict[Path, tuple[str, bool]]:
    """:func:`unreadable_files`, each with whether its problem is its schema only (the footer reads)."""
    walk = lake_files(lake, tables)
    names = sorted(walk.layouts) if tables is None else [t for t in tables if t in walk.layouts]
    manifests, _ = read_manifests(lake) if (lake / "_manifests").is_dir() else ({}, {})
    out: dict[Path, tuple[str, bool]] = {}
    con = duckdb.connect() if deep else None
    try:
        for table in names:
            files = walk.files.get(table, {})
            legacy = walk.legacy.get(table, {})
            for name in sorted({*files, *legacy} if collector is None else {collector}):
                schemas: dict[Path, dict[str, str]] = {}
                for path in [*files.get(name, []), *([legacy[name]] if name in legacy else [])]:
                    problem, columns = _unreadable(path, con)
                    why = problem or (_schema_problem(table, columns) if columns is not None else None)
                    if why is not None:
                        out[path] = (why, problem is None)
                    elif columns is not None and path.parent != lake / table:   # not the old layout's one file
                        schemas[path] = columns
                manifest = manifests.get(name)
                if manifest is not None and not manifest.get("rewriting"):   # one schema version: one set of columns
                    out.update({p: (why, True) for p, why in _fewer_columns(schemas, name).items()})
    finally:
        if con is not None:
            con.close()
    return out


def _unreadable(path: Path, con: duckdb.DuckDBPyConnection | None) -> tuple[str | None, dict[str, str] | None]:
    """(why ``path`` cannot be read (its footer; with ``con``, every row) or None, its columns -> their kind
    (:func:`_kind`) when its footer reads)."""
    import pyarrow as pa  # here: opening a lake (analysis.connect) does not need it
    import pyarrow.parquet as pq

    columns = None
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:         # the footer's length, from the file's last 8 bytes, before reading it
            fh.seek(max(size - 8, 0))
            tail = fh.read(8)
        if len(tail) == 8 and tail[4:] == b"PAR1":
            claimed = int.from_bytes(tail[:4], "little")
            if claimed > min(_FOOTER_BYTES, size - 12):
                return f"its footer claims {claimed:,} bytes (the file has {size:,}); not Parquet a publish wrote", None
        schema = pq.read_metadata(path).schema.to_arrow_schema()
        columns = {f.name: _arrow_kind(f.type) for f in schema}
        if con is not None:    # hash(t): every column of every row, which a count(*) would not decode
            con.execute("SELECT sum(hash(t)) FROM read_parquet(?) t", [str(path)]).fetchall()
    except FileNotFoundError:
        return None, None      # removed meanwhile (a full publish drops partitions without rows)
    except (OSError, ValueError, pa.ArrowException) as exc:
        return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__, None
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.InterruptException | duckdb.OutOfMemoryException):
            raise
        return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__, None
    return None, columns


_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
             "UHUGEINT"}


def _kind(duckdb_type: str) -> str:
    """What a column of DuckDB type ``duckdb_type`` holds, in words: types that read as one another (INTEGER and
    BIGINT, VARCHAR and JSON, a timestamp with or without a time zone) are one kind."""
    t = duckdb_type.upper()
    if t.endswith("[]"):
        return "a list"
    if t in _INTEGERS:
        return "an integer"
    if t in ("VARCHAR", "JSON"):
        return "text"
    if t.startswith("TIMESTAMP"):
        return "a timestamp"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "a fractional number"
    if t == "BOOLEAN":
        return "a boolean"
    return duckdb_type


def _arrow_kind(arrow_type: Any) -> str:
    """:func:`_kind` of an Arrow type (as pyarrow reads a Parquet file's schema)."""
    import pyarrow as pa

    t = arrow_type.storage_type if isinstance(arrow_type, pa.ExtensionType) else arrow_type
    types = pa.types
    if types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t):
        return "a list"
    if types.is_integer(t):
        return "an integer"
    if types.is_string(t) or types.is_large_string(t) or getattr(types, "is_string_view", lambda _: False)(t):
        return "text"
    if types.is_timestamp(t):
        return "a timestamp"
    if types.is_floating(t) or types.is_decimal(t):
        return "a fractional number"
    if types.is_boolean(t):
        return "a boolean"
    return str(t)


def _key_columns(table: str) -> tuple[str, ...]:
    """The columns every file of ``table`` has, whatever its schema version: its natural key, or its first column."""
    if table in NATURAL_KEYS:
        return NATURAL_KEYS[table]
    known = LAKE_SCHEMA.get(table)
    return (known[1][0][0],) if known is not None else ()


def _schema_problem(table: str, columns: dict[str, str]) -> str | None:
    """Why a file (or a view) of ``table`` with ``columns`` (name -> :func:`_kind`) is not of the schema publish
    writes, or None: a column of another kind than publish writes (``channel_id`` as text), or a key column missing.
    Fewer columns alone are no sign (an older tgspread wrote fewer): :func:`_fewer_columns` compares files."""
    known = LAKE_SCHEMA.get(table)
    if known is None:                       # a table of a newer tgspread: nothing to compare with
        return None
    for name, declared in known[1]:
        have = columns.get(name)
        if have is not None and name not in _PARTITION_COLUMNS and have != _kind(declared):
            return f"{_NOT_SCHEMA}: its column {name!r} holds {have}, where publish writes {declared}"
    missing = [k for k in _key_columns(table) if k not in columns]
    if missing:
        return f"{_NOT_SCHEMA}: it has no column {missing[0]!r}, which publish always writes"
    return None


def _fewer_columns(schemas: dict[Path, dict[str, str]], collector: str) -> dict[Path, str]:
    """The files among ``schemas`` (one collector's files of one table, of one schema version) that lack columns
    most of them have (a tie: the wider set): path -> why."""
    if len(schemas) < 2:
        return {}
    counts = Counter(frozenset(columns) for columns in schemas.values())
    usual = max(counts, key=lambda names: (counts[names], len(names)))
    out = {}
    for path, columns in schemas.items():
        missing = sorted(usual - set(columns))
        if missing:
            listed = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                                                else "")
            out[path] = (f"{_NOT_SCHEMA}: it lacks column{'s' if len(missing) > 1 else ''} {listed}, which the "
                         f"other files of collector {collector!r} have")
    return out


def _mixed_schemas(manifests: dict[str, dict[str, object]]) -> bool:
    """Whether files of different schema versions may be in the lake: collectors at different versions, or one
    whose rewrite after a migration has not finished (killed). Only then do the views read files by column name
    (``union_by_name``), which costs every query a look at every file's schema."""
    versions = {m.get("schema_version") for m in manifests.values()}
    return len(versions) > 1 or any(m.get("rewriting") for m in manifests.values())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class _Reads:
    """What the view of one table reads (:func:`_reads`)."""

    layout: str
    #: (a collector's glob, or its one file of the layout before slots; which layout it is)
    found: list[tuple[str, str]]
    #: path -> whether it is a folder (or a link, perhaps to one): what the globs match but must not be read
    exclude: dict[Path, bool] = field(default_factory=dict)
    #: a file first in the listing, whose columns the view takes (DuckDB takes them from its first file); its own
    #: rows are left out there (:func:`_left_out`): the glob after it reads them
    anchor: Path | None = None
    #: column -> type, cast to (files read by name, one of which had another kind for it)
    casts: dict[str, str] = field(default_factory=dict)
    #: the globs of collectors without files when the connection opened (read with :func:`_allow_empty`)
    empty: set[str] = field(default_factory=set)


@functools.cache
def _allow_empty() -> str:
    """``, allow_empty = true`` where DuckDB reads a glob that matches nothing as no rows (2.0), else ``""``.

    With it the views list a glob for every collector of the lake, files or not, so a view keeps working while a
    notebook stays open: a collector whose last file of a table a publish removed (its slots handed on) reads as
    no rows, where every query of the view failed ("No files found") until the next connection, and a collector's
    first files of a table appear at the next query, where they were left out until then."""
    nothing = os.path.join(tempfile.gettempdir(), "tgspread-no-such-folder", "*.parquet")
    with duckdb.connect() as con:
        try:
            con.execute(f"SELECT count(*) FROM read_parquet({_quote(nothing)}, allow_empty = true)")
        except duckdb.Error:
            return ""
    return ", allow_empty = true"


def _reads(root: Path, table: str, layout: str, names: list[str], walk: LakeFiles) -> _Reads:
    """The view of ``table``'s sources: a glob per collector with files (per collector of the lake when DuckDB
    allows a glob that matches nothing: :func:`_allow_empty`), its one file of the layout before slots if it has
    one, and what of :attr:`LakeFiles.odd` the globs would match (left out by name)."""
    pattern = {"post": f"{_SLOT_GLOB}/{_MONTH_GLOB}/{{}}.parquet", "slot": f"{_SLOT_GLOB}/{{}}.parquet",
               "flat": "{}.parquet"}[layout]
    files, legacy = walk.files.get(table, {}), walk.legacy.get(table, {})
    reads = _Reads(layout, [])
    first: list[str] = []
    every = bool(_allow_empty()) and any(files.get(name) or name in legacy for name in names)
    for name in names:
        if files.get(name) or (every and layout != "flat"):
            reads.found.append((str(root / table / pattern.format(name)), layout))
            if not files.get(name):
                reads.empty.add(reads.found[-1][0])
            first = first or (pattern.format(name).split("/") if files.get(name) else [])
        if layout == "slot" and name in legacy and (every or not files.get(name)):
            reads.found.append((str(legacy[name]), "flat"))
    globs = [pattern.format(name).split("/") for name in names if files.get(name) or every]
    base = root / table
    for path in walk.odd:
        if base not in path.parents:
            continue
        rel = path.relative_to(base).parts
        hits = [g for g in globs if len(rel) <= len(g) and all(map(fnmatch.fnmatchcase, rel, g))]
        if hits:
            reads.exclude[path] = len(rel) < len(hits[0])
            if first in hits and layout != "flat":    # the view would take its columns from it: bind to another
                reads.anchor = files[next(n for n in names if files.get(n))][0]
    return reads


def _left_out(reads: _Reads, anchored: bool) -> str:
    """The WHERE clause leaving out what ``reads`` excludes, by file name: DuckDB applies it to the list of files
    before it opens any, so a file left out is never read (its footer neither, but the first file's). The anchor's
    first copy is left out by its index and its name together: DuckDB numbers the files left after a filter on
    ``slot`` or ``month`` pruned the list, so index 0 alone would then be another file, whose rows would be lost."""
    conds = [f"NOT (file_index = 0 AND filename = {_quote(str(reads.anchor))})"] if anchored else []
    exact = [_quote(str(p)) for p, folder in reads.exclude.items() if not folder]
    if exact:
        conds.append(f"filename NOT IN ({', '.join(exact)})")
    conds += [f"NOT starts_with(filename, {_quote(str(p) + os.sep)})" for p, folder in reads.exclude.items() if folder]
    return f" WHERE {' AND '.join(conds)}" if conds else ""


def _empty_view(table: str) -> str:
    columns = ", ".join(f"NULL::{ty} AS \"{name}\"" for name, ty in LAKE_SCHEMA[table][1])
    return f"SELECT {columns} WHERE false"


def _files_view(table: str, reads: _Reads, union: bool) -> str:
    layout, found = reads.layout, reads.found
    legacy = [g for g, kind in found if kind != layout]
    globs = [g for g, kind in found if kind == layout]
    anchored = reads.anchor is not None and bool(globs) and not union
    if anchored:    # strict: were the anchor gone, the view would take its columns from the file it leaves out
        globs = [g for g in globs if g not in reads.empty]
        found = [(g, kind) for g, kind in found if g not in reads.empty]
    listing = "[" + ", ".join(_quote(g) for g in ([str(reads.anchor)] if anchored else []) + globs) + "]"
    options = _HIVE[layout] + (", union_by_name = true" if union else "") + ("" if anchored else _allow_empty())
    where = _left_out(reads, anchored)
    replace = (" REPLACE (" + ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in reads.casts.items()) + ")"
               if reads.casts else "")
    if len(found) == 1 and not legacy:
        return f"SELECT *{replace} FROM read_parquet({listing}, {options}){where}"
    source = f"read_parquet({listing}, {options}, filename = true)"
    if where or replace:
        source = f"(SELECT *{replace} FROM {source}{where})"
    columns = {name for name, _ in LAKE_SCHEMA.get(table, ("", ()))[1]}
    if legacy:    # a collector's one file of the old layout beside the others' slot files: its rows in their slots
        of = f"coalesce({slot_sql('channel_id')}, 0)" if "channel_id" in columns else "0"   # no channel: slot 0
        old = (f"SELECT *, {of} AS slot FROM read_parquet([" + ", ".join(_quote(g) for g in legacy)
               + "], hive_partitioning = false, filename = true" + (", union_by_name = true" if union else "") + ")")
        source = f"({old}{f' UNION ALL BY NAME SELECT * FROM {source}' if globs else ''})"
    key = NATURAL_KEYS.get(table)
    if key is None:
        return f"SELECT DISTINCT * EXCLUDE (filename) FROM {source}"
    # the slot too where the key holds the channel (a row's slot is its channel's: the same groups, and a filter on
    # slot still prunes files below the window); not for a key without it (a username moves between channels)
    partition = ", ".join([*(["slot"] if layout != "flat" and "channel_id" in key else []), *key])
    column = newest_column(table)
    newest = f"{column} DESC NULLS LAST, " if column else ""
    if column == _NEWEST and "deleted_at" in columns:   # a deletion seen is the newest observation of a post
        newest = f"greatest({_NEWEST}, deleted_at) DESC NULLS LAST, "
    return (f"SELECT * EXCLUDE (filename) FROM {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {newest}filename DESC) = 1")


def connect_lake(path: str | os.PathLike[str], *, collectors: list[str] | None = None,
                 memory_limit: str | None = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per lake table; see the module doc.

    ``collectors`` limits the views to those collectors' files (default: every collector with a manifest).
    ``memory_limit``: DuckDB's (None: DuckDB's default, 80% of RAM); it spills to the system's temporary
    directory beyond it. Raises ``FileNotFoundError`` when ``path`` is not a directory or holds no
    ``_manifests/`` (nothing was ever published there), ``ValueError`` when its path holds a glob character
    (``[ ] * ?``: open it through a symbolic link whose path has none); warns (``UserWarning``) for each manifest it
    cannot read, once for what is outside publish's layout (:func:`lake_files`), and for each file left out because
    a view would have taken its columns from it (:func:`_check_columns`).
    """
    # absolute, `.` and `..` resolved by name as DuckDB spells the files a glob lists: what is left out by name must
    # be spelled so (a symbolic link to the lake, or in its path, stays as given and is followed by the system)
    root = Path(os.path.abspath(path))
    if not root.is_dir():
        raise FileNotFoundError(f"no lake at {root}: run `tgspread publish --lake {root}` first")
    problem = pattern_in_path(root)
    if problem is not None:
        raise ValueError(f"{problem}: rename the folder, or open it through a symbolic link whose path has none")
    if not (root / "_manifests").is_dir():
        raise FileNotFoundError(f"no lake at {root}: the folder has no _manifests/ (nothing was published there); "
                                f"make one with `tgspread publish --lake {root}`")
    manifests, unreadable = read_manifests(root)
    for bad, why in unreadable.items():
        # the path as a literal: a file name is hostile data (escape sequences, newlines)
        then = (f"the files of collector {bad.stem!r} are read all the same; its next `tgspread publish` (or "
                "`tgspread publish --full`) writes the manifest again") if COLLECTOR_NAME.fullmatch(bad.stem) else \
            "it is left out; remove it"
        warnings.warn(f"unreadable manifest {str(bad)!r}: {why}; {then}", UserWarning, stacklevel=2)
    walk = lake_files(root)
    if walk.odd:
        warnings.warn(_odd_warning(root, walk.odd), UserWarning, stacklevel=2)
    unnamed = [p.stem for p in unreadable if COLLECTOR_NAME.fullmatch(p.stem)]   # never a glob pattern from a file name
    names = [*manifests, *unnamed] if collectors is None else list(collectors)
    union = _mixed_schemas(manifests) or bool(unreadable)
    config = {} if memory_limit is None else {"memory_limit": memory_limit}
    spill = Path(tempfile.gettempdir()) / f"{SPILL_DIR}-{os.getpid()}-{next(_spills)}"
    con = duckdb.connect(":memory:", config={**CONFIG, **config, "temp_directory": str(spill)})
    con.execute("SET TimeZone = 'UTC'")
    built: dict[str, _Reads] = {}
    for table in sorted(set(LAKE_SCHEMA) | set(walk.layouts)):
        layout = walk.layouts.get(table) or LAKE_SCHEMA[table][0]
        reads = _reads(root, table, layout, names, walk)
        if reads.found:
            sql = _files_view(table, reads, union)
            built[table] = reads
        elif table in LAKE_SCHEMA:
            sql = _empty_view(table)
        else:
            continue
        try:
            con.execute(f'CREATE VIEW "{table}" AS {sql}')
        except duckdb.InvalidInputException as exc:     # the first file, whose columns the view takes, is damaged
            con.close()
            raise _damaged(root, table, exc, walk.odd) from exc
    try:
        _check_columns(con, root, built, names, union, walk)
    except BaseException:
        con.close()
        raise
    return con


def _odd_warning(root: Path, odd: dict[Path, str]) -> str:
    shown = "; ".join(f"{str(p.relative_to(root))!r} ({why})" for p, why in itertools.islice(odd.items(), 5))
    more = f"; and {len(odd) - 5:,} more" if len(odd) > 5 else ""
    entries = f"{len(odd):,} entr{'y' if len(odd) == 1 else 'ies'}"
    return (f"the lake {str(root)!r} holds {entries} outside publish's layout, which no view reads: {shown}{more}; "
            "remove them, or ask who handed over the lake (`tgspread shards --lake` names them all)")


def _check_columns(con: duckdb.DuckDBPyConnection, root: Path, built: dict[str, _Reads], names: list[str],
                   union: bool, walk: LakeFiles) -> None:
    """Check the columns each view of files took (from its first file; by name from all, with ``union``) against
    what publish writes, and rebuild a view whose columns a file not of that schema gave, without that file.

    Costs one catalog query, and where a view lacks columns publish writes now (a lake of an older tgspread, or a
    first file with fewer columns than the rest), one footer: nothing else is read unless a view is wrong."""
    if not built:
        return
    bound: dict[str, dict[str, str]] = {}
    for table, column, type_ in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main'").fetchall():
        bound.setdefault(str(table), {})[str(column)] = _kind(str(type_))
    for table, reads in built.items():
        known = LAKE_SCHEMA.get(table)
        columns = bound.get(table, {})
        if known is None:
            continue
        wrong = _schema_problem(table, columns) is not None
        missing = {name for name, _ in known[1]} - set(columns)
        if not wrong and missing and not union:      # the first file, or a lake of an older tgspread?
            last = [p for name in names for p in walk.of(table, name)][-1:]
            try:
                other = {str(r[0]) for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)",
                                                        [str(last[0])]).fetchall()} if last else set()
            except duckdb.Error as exc:
                if isinstance(exc, duckdb.InterruptException | duckdb.OutOfMemoryException):
                    raise
                other = set()                          # damaged: the queries that read it name it
            wrong = bool(missing & other)
        if wrong:
            _leave_out_wrong_schema(con, root, table, reads, names, union, walk, columns)


def _leave_out_wrong_schema(con: duckdb.DuckDBPyConnection, root: Path, table: str, reads: _Reads, names: list[str],
                            union: bool, walk: LakeFiles, columns: dict[str, str]) -> None:
    """Rebuild the view of ``table`` without its files that are not of publish's schema (:func:`unreadable_files`:
    every footer of the table is read), warning once, naming each with who rewrites it."""
    read = {p for name in names for p in walk.of(table, name)}
    problems = _file_problems(root, [table])
    bad = {p: why for p, (why, schema_only) in problems.items() if schema_only and p in read}
    if not bad:
        return
    files = walk.files.get(table, {})
    kept, readable = [], False
    for glob, kind in reads.found:
        if kind != reads.layout:                    # a collector's one file of the old layout
            if Path(glob) not in bad:
                kept.append((glob, kind))
                readable = True
            continue
        mine = files.get(Path(glob).name[:-len(".parquet")], [])
        good = any(p not in bad for p in mine)
        if good or not mine:           # a glob matching only files left out would match none but them; one without
            kept.append((glob, kind))  # files stays for the files its collector publishes later (_allow_empty)
            readable = readable or good
    reads.found = kept
    reads.exclude.update(dict.fromkeys((p for p in bad if p.parent != root / table), False))
    usable = [p for g, kind in kept if kind == reads.layout for p in files.get(Path(g).name[:-len(".parquet")], [])
              if p not in problems]
    reads.anchor = usable[0] if usable and not union else None
    if union:       # by name, the file that holds another kind still gives its column a type: cast it back
        reads.casts = {name: declared for name, declared in LAKE_SCHEMA[table][1]
                       if name in columns and name not in _PARTITION_COLUMNS and columns[name] != _kind(declared)}
    sql = _files_view(table, reads, union) if readable else _empty_view(table)
    named = "; ".join(f"{str(p)!r} ({why}): collector {p.stem!r} rewrites it with `tgspread publish --full`"
                      for p, why in bad.items())
    # the view took its columns from one of them: every query of the table was wrong or failed (``channel_id`` as
    # text, a column missing); left out, the view reads the rest
    warnings.warn(f"the lake's {table}: {len(bad):,} file{'s' if len(bad) > 1 else ''} left out of the view: {named}",
                  UserWarning, stacklevel=4)
    con.execute(f'CREATE OR REPLACE VIEW "{table}" AS {sql}')


def _damaged(root: Path, table: str, exc: duckdb.Error, odd: dict[Path, str] | None = None) -> duckdb.Error:
    """``exc`` (a view that cannot read a file), saying which files of ``table`` cannot be read and what to do."""
    text = str(exc)
    for path, why in (odd or {}).items():   # by columns' names, a view opens all it globs, even what it leaves out
        if f"{path}{os.sep}" in text or f"{path}'" in text or f'{path}"' in text:
            return type(exc)(f"{' '.join(text.split())} -- the lake's {table} cannot be read: {str(path)!r} is "
                             f"outside publish's layout ({why}): remove it. While the lake's collectors are at "
                             "different schema versions, a view opens every file its globs match")
    bad = unreadable_files(root, [table])
    named = "; ".join(f"{str(path)!r} ({why}): collector {path.stem!r} rewrites it with `tgspread publish --full`"
                      for path, why in bad.items())
    return type(exc)(f"{' '.join(str(exc).split())} -- the lake's {table} cannot be read. "
                     + (f"Damaged: {named}" if named else "`tgspread shards` names the damaged file"))


#: ``channels.status`` of channels no collector collects (groups, private or deleted channels): they count in no
#: slot, and a collector never hands them on through the lake (``collector._archive.lake_handoff``).
UNCOLLECTABLE = ("group", "private", "gone")
_UNCOLLECTABLE = "(" + ", ".join(f"'{s}'" for s in UNCOLLECTABLE) + ")"


def slot_usage(lake: Path, *, skip: Collection[Path] = ()) -> dict[int, tuple[int, int, set[str]]]:
    """Per slot of ``lake``: (channels, posts of the lake's last 30 days, collectors whose files hold it).

    What ``tgspread shards`` shows and plans from; reads only the ``channels`` and ``posts`` files in publish's
    layout (:func:`lake_files`), but those in ``skip`` (:func:`unreadable_files`). Channels are the public ones
    (groups, private and deleted channels a collector recorded are left out).
    """
    out: dict[int, tuple[int, int, set[str]]] = {}
    con = duckdb.connect()
    try:
        chans = _without(_layout_files(lake, "channels", legacy=False), skip)
        if chans:
            listing = _listing(chans)
            # a group, private or deleted channel met in a slot (recorded as such, never handed on) is no channel
            # of it: nobody collects it (UNCOLLECTABLE)
            rows = con.execute(
                f"SELECT {slot_sql('channel_id')} AS s, count(DISTINCT channel_id), "
                f"list(DISTINCT regexp_extract(filename, '([^/]+)\\.parquet$', 1)) "
                f"FROM read_parquet({listing}, filename = true, hive_partitioning = false, union_by_name = true) "
                f"WHERE status IS NULL OR status NOT IN {_UNCOLLECTABLE} GROUP BY s").fetchall()
            for s, n, names in rows:
                out[int(s)] = (int(n), 0, set(names))
        posts = _without(_layout_files(lake, "posts"), skip)
        if posts:
            listing = _listing(posts)
            rows = con.execute(
                "SELECT slot, count(DISTINCT (channel_id, message_id)) FROM ("
                f"SELECT slot, channel_id, message_id, posted_at FROM read_parquet({listing}, "
                "hive_partitioning = true, hive_types = {'slot': INTEGER, 'month': VARCHAR}) "
                "QUALIFY posted_at >= max(posted_at) OVER () - INTERVAL 30 DAY) GROUP BY slot").fetchall()
            for s, n in rows:
                c, _, names = out.get(int(s), (0, 0, set()))
                out[int(s)] = (c, int(n), names)
    finally:
        con.close()
    return out


def _listing(paths: list[Path]) -> str:
    return "[" + ", ".join(_quote(str(p)) for p in paths) + "]"


def read_files_sql(paths: list[Path], layout: str) -> str:
    """DuckDB's ``read_parquet`` of exactly ``paths``, partitioned as ``layout`` says (``post``, ``slot`` or
    ``flat``), columns matched by name. Listed one by one: DuckDB takes a path that exists as it is, where it would
    read ``[`` in a glob as a pattern."""
    return f"read_parquet({_listing(paths)}, {_HIVE[layout]}, union_by_name = true)"


def pattern_in_path(root: Path) -> str | None:
    """What is wrong with a lake at ``root`` whose path holds one of ``[ ] * ?`` (the views glob under it, and
    DuckDB would read those as a pattern); None when it holds none."""
    if _GLOB.search(str(root)) is None:
        return None
    return f"the lake's path {str(root)!r} holds one of [ ] * ?, which DuckDB reads as a file pattern"


def _without(paths: list[Path], skip: Collection[Path]) -> list[Path]:
    return [p for p in paths if p not in skip] if skip else paths


def request_cost(lake: Path, *, days: int = 30, skip: Collection[Path] = ()) -> dict[int, float]:
    """Per slot of ``lake``: the requests per day its channels cost, as the collectors recorded them; {} when no
    collector published ``run_requests`` yet.

    Each run's recorded requests (``run_requests``) are shared among the channels of that run (``run_channels``)
    in proportion to what each pass did (one request, plus one per 100 new and per 100 refreshed posts, plus a
    snapshot), over the ``days`` before the newest run. What ``tgspread shards --plan`` balances by. Files in
    ``skip`` (:func:`unreadable_files`) are left out.
    """
    requests, channels = (_without(_layout_files(lake, table), skip)
                          for table in ("run_requests", "run_channels"))
    if not requests or not channels:
        return {}
    name = "regexp_extract(filename, '([^/]+)\\.parquet$', 1)"
    con = duckdb.connect()
    try:
        rows = con.execute(f"""
            WITH rq AS (
                SELECT {name} AS collector, run_id, sum(requests) AS n, max(run_at) AS last_at
                FROM read_parquet({_listing(requests)}, filename = true, hive_partitioning = false,
                                  union_by_name = true) GROUP BY ALL),
            rc AS (
                SELECT {name} AS collector, run_id, channel_id,
                       1 + ceil(coalesce(new_posts, 0) / 100) + ceil(coalesce(refreshed_posts, 0) / 100)
                         + CASE WHEN snapshot THEN 1 ELSE 0 END AS w
                FROM read_parquet({_listing(channels)}, filename = true, hive_partitioning = false,
                                  union_by_name = true)
                WHERE channel_id IS NOT NULL AND outcome <> 'not_owned'),
            shared AS (
                SELECT rc.channel_id, rq.last_at,
                       rq.n * rc.w / sum(rc.w) OVER (PARTITION BY rc.collector, rc.run_id) AS cost
                FROM rc JOIN rq USING (collector, run_id))
            SELECT {slot_sql('channel_id')} AS s, sum(cost) / {int(days)}
            FROM shared WHERE last_at >= (SELECT max(last_at) FROM shared) - INTERVAL {int(days)} DAY GROUP BY s
        """).fetchall()
    finally:
        con.close()
    return {int(s): float(c) for s, c in rows}


def _layout_files(lake: Path, table: str, *, legacy: bool = True) -> list[Path]:
    """The files of ``table`` in publish's layout (:func:`lake_files`: nothing outside it, no symbolic link), sorted;
    with ``legacy``, those of a lake published before every table had a slot (``<table>/<collector>.parquet``)."""
    walk = lake_files(lake, [table])
    if legacy:
        return walk.of(table)
    return sorted(p for names in walk.files.get(table, {}).values() for p in names)


def handed_on(lake: Path, *, skip: Collection[Path] = (),
              owner_of: Callable[[int], str | None] | None = None) -> list[tuple[int, str | None, str, bool]]:
    """Channels collectors met in other collectors' slots and handed on (the lake's ``candidates``):
    (channel id, username, the collector that found it first, whether its owner has published posts of it), by
    channel id. ``owner_of``: the collector that owns a channel (the assignment); without it, any collector that
    did not hand it on counts as its owner (a finder's own posts of it, from before its slot moved, never count).
    Files in ``skip`` (:func:`unreadable_files`) are left out."""
    found = _without(_layout_files(lake, "candidates"), skip)
    if not found:
        return []
    posts = _without(_layout_files(lake, "posts"), skip)
    name = "regexp_extract(filename, '([^/]+)\\.parquet$', 1)"
    by = (f"(SELECT channel_id, list(DISTINCT {name}) AS who FROM read_parquet({_listing(posts)}, filename = true, "
          "hive_partitioning = false) WHERE channel_id IN (SELECT channel_id FROM f) GROUP BY channel_id)"
          ) if posts else "(SELECT NULL::BIGINT AS channel_id, NULL::VARCHAR[] AS who)"
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"WITH f AS (SELECT channel_id, any_value(username) AS username, arg_min({name}, first_found_at) AS "
            f"first, list(DISTINCT {name}) AS finders FROM read_parquet({_listing(found)}, filename = true, "
            "hive_partitioning = false, union_by_name = true) GROUP BY channel_id) "
            f"SELECT f.channel_id, f.username, f.first, f.finders, coalesce(p.who, []) FROM f LEFT JOIN {by} p "
            "USING (channel_id) ORDER BY f.channel_id").fetchall()
    finally:
        con.close()
    out = []
    for c, u, first, finders, who in rows:
        owner = owner_of(int(c)) if owner_of is not None else None
        done = owner in who if owner is not None else bool(set(who) - set(finders))
        out.append((int(c), u, str(first), done))
    return out
