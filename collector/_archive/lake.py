"""Publishing the archive to a lake: Hive-partitioned Parquet that readers use without locks or copies.

``publish(archive, lake, collector="main")`` writes this collector's files under ``lake`` (CONTRACT.md, "The lake"):

- post-level tables (``posts``, ``post_observations``, ``post_versions``, ``post_comments``) as
  ``<table>/slot=NN/month=YYYY-MM/<collector>.parquet``: ``slot`` from :func:`collector._archive.slots.slot` of the
  channel, ``month`` the UTC month of the post's ``posted_at`` (a post's observations, versions and comments
  live with the post, so a post's rows are always published together);
- every other table as ``<table>/slot=NN/<collector>.parquet``: the slot of the row's channel, and for rows without
  a channel id (runs, imports, discovery calls not about a channel, ...) :data:`NO_CHANNEL_SLOT` (0). A
  collector's file of the layout before (``<table>/<collector>.parquet``) is replaced by its next publish.

Files are zstd Parquet sorted by (channel_id, message_id, ...), each replaced whole: a sorted query (for
``posts`` in a full publish, one per run of whole months, :data:`FULL_CHUNK_ROWS`) is streamed into a temporary
file per partition in the partition's own directory, fsynced, renamed over its final name, and the directory
fsynced (:mod:`collector._archive.lake_files`). An incremental publish runs one DuckDB thread under a small
pool (:data:`INCREMENTAL_MEMORY`). A reader sees the old file or the new
one, never a part. Only what changed is rewritten: post-level partitions listed in ``lake_dirty`` (recorded by
every writer in its own transaction, :mod:`collector._archive.lake_marks`), each read by range filters DuckDB
prunes row groups with (:func:`dirty_select`), and the slots of small tables whose content digest moved since the
last publish. The dirty rows are cleared only after the files are in place,
so a publish killed at any point is repaired by the next. ``full=True`` (``tgspread publish --full``) rewrites
every partition of the collector and removes its files of partitions that no longer exist.

People: the export's rules (:mod:`collector._archive.export`): raw payloads and access hashes are dropped, person-level
fields pseudonymised with the archive's key, and the key never leaves the archive. A lake can be handed on.

``<lake>/_manifests/<collector>.json`` (written atomically) gives the schema version, the publish time, rows per
table and per partition, and each partition's lake digest (:func:`partition_digest_sql`), which
``tgspread verify --lake`` recomputes from the archive.

Example::

    with Archive("archive.duckdb") as archive:
        report = publish(archive, Path("lake"), collector="main")
    print(report.files_written, report.seconds)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from analysis.lake import COLLECTOR_NAME, lake_files, read_manifests
from collector._version import __version__

from .archive import Archive
from .export import (
    DERIVED,
    DROPPED_COLUMNS,
    LOCAL_STATE,
    NEVER_EXPORTED,
    PSEUDONYM_KEY,
    _columns,
    _select,
    person_rules,
)
from .lake_files import (
    INCREMENTAL_PENDING,
    PART_SLOT,
    partition_name,
    remove,
    sweep_temporaries,
    write_atomic,
    write_partitions,
)
from .lake_handoff import CANDIDATES, LAKE_SOURCE, publish_candidates
from .lake_marks import POST_LEVEL, clear_marks, has_marks, marks_cleared, marks_taken_elsewhere
from .slots import NO_MONTH, month_index, month_name, month_sql, slot, slot_sql
from .upsert import pseudonym, pseudonym_key, size_bytes

#: Tables never in a lake besides the export's: the bookkeeping of publishing itself.
_NOT_PUBLISHED = LOCAL_STATE
#: Sort order within a file (the key columns a table has, in this order): readers skip row groups by them.
_SORT = ("channel_id", "message_id", "discussion_id", "comment_id", "observed_at", "run_id", "started_at")
_UDF = "tgspread_pseudonym"
MANIFEST_VERSION = 1


class LakeError(Exception):
    """The lake cannot be written as asked; the message says why and what to do."""


@dataclass
class PublishReport:
    """What one publish did."""

    lake: str
    collector: str
    full: bool
    why_full: str = ""      # why it was full ('--full', 'first publish ...'); '' when incremental
    files_written: int = 0
    files_removed: int = 0
    rows_written: int = 0
    partitions: dict[str, list[str]] = field(default_factory=dict)   # table -> partitions written
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)   # what the user should know (printed as warnings)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def manifest_path(lake: Path, collector: str) -> Path:
    return lake / "_manifests" / f"{collector}.json"


def read_manifest(lake: Path, collector: str) -> dict[str, Any] | None:
    """The collector's manifest, or None when there is none (or it cannot be read: the next publish is full)."""
    try:
        data = json.loads(manifest_path(lake, collector).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("manifest_version") == MANIFEST_VERSION else None


# -- what goes into the lake ---------------------------------------------------------------------------
#: The slot of a row of a non-post-level table that has no channel id (a run, an import, a discovery call not
#: about a channel): slot 0, so such a table is one file per collector (``slot=00``), as the contract's layout
#: asks, rather than 64 files of a few rows each; a reader tells them apart by their null ``channel_id``.
NO_CHANNEL_SLOT = 0


def lake_tables(con: duckdb.DuckDBPyConnection,
                columns: dict[str, list[tuple[str, bool]]] | None = None) -> dict[str, str]:
    """Table -> layout (``'post'``: slot and month; ``'slot'``: slot only) of every table a lake holds."""
    out = {}
    for table in columns if columns is not None else _columns(con):
        if table in NEVER_EXPORTED | DERIVED | _NOT_PUBLISHED:
            continue
        out[table] = "post" if table in POST_LEVEL else "slot"
    return out


def _slot_of(columns: list[tuple[str, bool]], alias: str) -> str:
    """SQL for a small table's row slot: its channel's, else :data:`NO_CHANNEL_SLOT`."""
    if not any(c == "channel_id" for c, _ in columns):
        return f"{NO_CHANNEL_SLOT}"
    return f"coalesce({slot_sql(f'{alias}.channel_id')}, {NO_CHANNEL_SLOT})"


def lake_selects(con: duckdb.DuckDBPyConnection,
                 columns: dict[str, list[tuple[str, bool]]] | None = None) -> dict[str, str]:
    """Table -> the SELECT giving all its lake rows (export rules applied; ``slot`` and, for post-level tables,
    ``month`` added). Needs the pseudonym function registered on the connection that runs it
    (:func:`_with_pseudonyms`). ``columns``: the archive's (:func:`collector._archive.export._columns`), when known."""
    columns = columns if columns is not None else _columns(con)
    out = {}
    for table, layout in lake_tables(con, columns).items():
        sql = _base_select(table, columns)
        if table == "posts":      # rows copied from the lake at a slot takeover are another collector's
            sql += f" WHERE {_NOT_COPIED}"
        if layout == "slot":
            out[table] = f"SELECT x.*, {_slot_of(columns[table], 'x')} AS slot FROM ({sql}) x"
        elif table == "posts":
            out[table] = (f"SELECT x.*, {slot_sql('x.channel_id')} AS slot, {month_sql('x.posted_at')} AS month "
                          f"FROM ({sql}) x")
        else:
            out[table] = (f"SELECT x.*, {slot_sql('x.channel_id')} AS slot, {month_sql('p.posted_at')} AS month "
                          f"FROM ({sql}) x LEFT JOIN posts p ON p.channel_id = x.channel_id "
                          f"AND p.message_id = x.message_id")
    return out


#: Posts copied from the lake at a slot takeover (collector._archive.lake_handoff) are another collector's: never
#: published again by this one until it observes them itself.
_NOT_COPIED = f"t.source IS DISTINCT FROM '{LAKE_SOURCE}'"


def _base_select(table: str, columns: dict[str, list[tuple[str, bool]]]) -> str:
    sql, _ = _select(table, columns[table], None)
    return sql.replace("tgspread_pseudonym(", f"{_UDF}(")


def _month_range(month: str, column: str, through: str | None = None) -> str:
    """SQL true exactly for the timestamps of ``column`` in the UTC ``month`` (``YYYY-MM``; ``unknown``: null),
    or from ``month`` through the month ``through``.

    A range on the stored column (never a function of it), so DuckDB skips row groups by their min/max."""
    if month == NO_MONTH:
        return f"{column} IS NULL"
    after = month_name(month_index(through or month) + 1)
    return (f"{column} >= TIMESTAMPTZ '{month}-01 00:00:00+00' AND {column} < TIMESTAMPTZ '{after}-01 00:00:00+00'")


#: SQL for :func:`month_index` of a TIMESTAMPTZ ``{column}`` (the cursor's time zone is UTC): integer
#: arithmetic, cheaper per row than formatting the month as text.
_MONTH_INDEX = "coalesce(year({column}) * 12 + month({column}), 0)"


def full_rows(table: str, columns: dict[str, list[tuple[str, bool]]], months: tuple[str, str] | None = None) -> str:
    """All lake rows of post-level ``table`` with their post's :func:`month_index` as ``_mi`` (no slot: the
    stream joins it from a map of the table's few thousand channels, rather than hashing each row's id).

    ``months``: for ``posts``, only the months from the first through the second (``YYYY-MM``), by a range on
    the stored ``posted_at`` (row groups outside it are skipped); :data:`NO_MONTH` as both: the undated posts."""
    sql = _base_select(table, columns)
    if table == "posts":
        where = _NOT_COPIED
        if months is not None:
            where += f" AND {_month_range(months[0], 't.posted_at', through=months[1])}"
        return f"SELECT x.*, {_MONTH_INDEX.format(column='x.posted_at')} AS _mi FROM ({sql} WHERE {where}) x"
    return (f"SELECT x.*, {_MONTH_INDEX.format(column='p.posted_at')} AS _mi FROM ({sql}) x LEFT JOIN posts p "
            "ON p.channel_id = x.channel_id AND p.message_id = x.message_id")


def dirty_select(con: duckdb.DuckDBPyConnection, table: str, month: str, channels: Iterable[int],
                 columns: dict[str, list[tuple[str, bool]]]) -> str:
    """The lake rows of post-level ``table`` in partitions ``(slot(c), month)`` for ``c`` in ``channels`` (every
    channel with posts of that month in the partitions wanted): exactly those partitions' rows, with the month's
    :func:`month_index` added as ``_mi``, selected so that DuckDB reads little more than them.

    ``posts`` is filtered by a ``posted_at`` range (the month, exactly) and the channel ids, both on stored
    columns: row groups whose min/max fall outside are skipped, whether the archive's rows lie in collection
    order (time) or by channel. The other tables take the keys of those posts (a join on the same filters) and
    their own channel ids. Month ``unknown`` (posts without a date, and rows whose post is not archived) is read
    by the same channels, without a dated post.
    """
    ids = ", ".join(str(int(c)) for c in sorted(set(channels))) or "NULL"
    sql = _base_select(table, columns) + f" WHERE t.channel_id IN ({ids})"
    head = f"SELECT x.*, {month_index(month)} AS _mi"
    if table == "posts":
        return f"{head} FROM ({sql} AND {_month_range(month, 't.posted_at')} AND {_NOT_COPIED}) x"
    if month == NO_MONTH:      # no dated post: the post is undated, or not archived
        return (f"{head} FROM ({sql}) x ANTI JOIN (SELECT channel_id, message_id FROM posts WHERE channel_id IN "
                f"({ids}) AND posted_at IS NOT NULL) p ON p.channel_id = x.channel_id AND p.message_id = x.message_id")
    return (f"{head} FROM ({sql}) x SEMI JOIN (SELECT channel_id, message_id FROM posts WHERE channel_id IN ({ids}) "
            f"AND {_month_range(month, 'posted_at')}) p ON p.channel_id = x.channel_id AND p.message_id = x.message_id")


def row_hash_sql(con: duckdb.DuckDBPyConnection, table: str,
                 columns: dict[str, list[tuple[str, bool]]] | None = None) -> str:
    """SQL for a lake row's 64-bit hash: DuckDB's ``hash`` over the columns a lake file holds, in table order."""
    names = [c for c, _ in (columns if columns is not None else _columns(con))[table] if c not in DROPPED_COLUMNS]
    return "hash(" + ", ".join(f'"{c}"' for c in names) + ")"


def partition_digest_sql(con: duckdb.DuckDBPyConnection, table: str, source: str) -> str:
    """SQL giving ``(slot, month, digest)`` per partition of a post-level ``table`` read from ``source`` (the archive's
    lake rows, or the files): ``<rows>:<sum of row hashes mod 2^64, 16 hex digits>``, as the manifest records it.

    The sum does not depend on row order and any changed field changes it; it is a check for drift between an
    archive and its lake, not a cryptographic seal (``tgspread verify``'s SHA-256 digests are that, for the archive).
    """
    return (f"SELECT slot, month, count(*)::VARCHAR || ':' || lpad(printf('%x', (sum({row_hash_sql(con, table)}"
            f"::HUGEINT) % 18446744073709551616)::UBIGINT), 16, '0') FROM {source} GROUP BY slot, month")


def _our_files(lake: Path, table: str, layout: str, collector: str) -> dict[str, Path]:
    """This collector's files of ``table`` now in the lake: partition name -> path (its one file of the layout
    before every table had slots, ``<table>/<collector>.parquet``, under the name ``''``)."""
    # publish's own layout only, never through a symbolic link (analysis.lake.lake_files): a link named like a
    # partition must not make a publish remove a file outside the lake
    walk = lake_files(lake, [table])
    base = lake / table
    found = {str(p.parent.relative_to(base)): p for p in walk.files.get(table, {}).get(collector, [])}
    legacy = walk.legacy.get(table, {}).get(collector)
    if layout == "slot" and legacy is not None:
        found[""] = legacy
    return found


# -- publishing ----------------------------------------------------------------------------------------------
def _with_pseudonyms(archive: Archive, now: datetime) -> duckdb.DuckDBPyConnection:
    """A cursor of the archive with the pseudonym function registered (the key is created on first use)."""
    with archive.transaction():
        key = pseudonym_key(archive, PSEUDONYM_KEY, now=now)
    cur = archive.con.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    cur.create_function(_UDF, lambda value: pseudonym(key, "name:" + value), [duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("VARCHAR"), side_effects=False)
    return cur


def _order(columns: list[tuple[str, bool]]) -> str:
    names = {c for c, _ in columns}
    return ", ".join(c for c in _SORT if c in names) or "1"


#: The relation of channel id (``_sc``) -> slot (``_ss``) a post-level stream joins (:func:`_register_slots`).
_SLOTS = "__tgs_lake_slots"


def _register_slots(con: duckdb.DuckDBPyConnection, channels: Iterable[int]) -> None:
    """Register the slots of ``channels`` (hashed here, once per channel) as :data:`_SLOTS` on ``con``."""
    ids = sorted({int(c) for c in channels})
    con.register(_SLOTS, pa.table({"_sc": pa.array(ids, pa.int64()),
                                   "_ss": pa.array([slot(c) for c in ids], pa.int32())}))


def _post_stream_sql(con: duckdb.DuckDBPyConnection, table: str, rows: str,
                     columns: dict[str, list[tuple[str, bool]]]) -> str:
    """The sorted query :func:`collector._archive.lake_files.write_partitions` writes a post-level table from:
    ``rows`` (with ``_mi``, :func:`full_rows` or :func:`dirty_select`) and ``_part`` = slot * 10^6 + month index,
    a BIGINT that changes exactly where (slot, month) changes, in their order ('unknown' first); the slot from
    :data:`_SLOTS`, which must hold every channel of ``rows``."""
    return (f"SELECT y.* EXCLUDE (_mi), s._ss::BIGINT * {PART_SLOT} + y._mi AS _part, "
            f"{row_hash_sql(con, table, columns)} AS _h FROM ({rows}) y JOIN {_SLOTS} s ON s._sc = y.channel_id "
            f"ORDER BY _part, {_order(columns[table])}")


def _stream_sql(con: duckdb.DuckDBPyConnection, table: str, select: str,
                columns: dict[str, list[tuple[str, bool]]], where: str = "") -> str:
    """The sorted query a small table (slot only) is written from: ``_part`` is the slot."""
    return f"SELECT x.*, x.slot::BIGINT AS _part FROM ({select}) x {where} ORDER BY _part, {_order(columns[table])}"


def _small_digests(con: duckdb.DuckDBPyConnection, selects: dict[str, str],
                   columns: dict[str, list[tuple[str, bool]]]) -> dict[str, dict[str, str]]:
    """Table -> partition -> an order-free digest (rows and a hash sum) of each small table's lake rows, all in
    one query (one scan of each small table; never the posts). ``selects``: each table's rows as published,
    without the slot (:func:`_base_select`). Rows are summed per channel first and the slot hashed per channel,
    not per row (``md5`` per row was most of the cost on tables of millions of rows)."""
    if not selects:
        return {}
    parts = []
    for table, inner in selects.items():
        if any(c == "channel_id" for c, _ in columns[table]):
            parts.append(f"SELECT '{table}' AS t, {_slot_of(columns[table], 'c')} AS slot, sum(n) AS n, sum(h) AS h "
                         f"FROM (SELECT y.channel_id, count(*) AS n, sum(hash(y)::HUGEINT) AS h FROM ({inner}) y "
                         "GROUP BY y.channel_id) c GROUP BY ALL")
        else:
            parts.append(f"SELECT '{table}' AS t, {NO_CHANNEL_SLOT} AS slot, count(*) AS n, "
                         f"sum(hash(y)::HUGEINT) AS h FROM ({inner}) y")
    out: dict[str, dict[str, str]] = {table: {} for table in selects}
    for table, part, n, h in con.execute(" UNION ALL ".join(parts)).fetchall():
        if n:
            out[str(table)][partition_name(int(part), None)] = f"{n}:{h}"
    return out


def _dirty(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, set[tuple[int, str]]], int]:
    """Post-level partitions recorded as changed, by table, and the highest mark read."""
    if not has_marks(con):
        return {}, 0
    out: dict[str, set[tuple[int, str]]] = {}
    top = 0
    for table, part_slot, month, seq in con.execute("SELECT table_name, slot, month, seq FROM lake_dirty").fetchall():
        out.setdefault(str(table), set()).add((int(part_slot), str(month)))
        top = max(top, int(seq))
    return out, top


def publish(archive: Archive, lake: str | os.PathLike[str], *, collector: str = "main", full: bool = False,
            replace: bool = False, now: datetime | None = None) -> PublishReport:
    """Publish what changed in ``archive`` since this collector's last publish into ``lake``; see the module doc.

    The archive must be open read-write (the pseudonym key may be created, and the dirty marks are cleared).
    The first publish of a collector into a lake, the first after a migration, and the first after a publish of
    this archive to another lake (which cleared the change marks this one needed) are full; the report says why.
    ``replace``: this collector's files there may have come from another archive (a rebuilt one, say), and are
    replaced by this archive's in a full publish; without it that is refused.
    Raises :class:`LakeError` for a bad collector name, a lake that cannot be written, a directory that is not a
    lake, a name another archive publishes under (unless ``replace``), or files of a newer tgspread.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    if not COLLECTOR_NAME.fullmatch(collector):
        raise LakeError(f"collector name {collector!r}: use letters, digits, '-' and '_' (at most 64), e.g. 'main'")
    if archive.read_only:
        raise LakeError(f"{archive.path}: publishing needs the archive open for writing")
    root = Path(lake)
    with _lake_os_errors(root):     # a folder that cannot be listed (no permission): a message, not a traceback
        check_lake_directory(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LakeError(f"{root}: cannot create the lake directory ({exc.strerror or exc})") from None
    with archive.transaction():
        identity = archive_identity(pseudonym_key(archive, PSEUDONYM_KEY, now=now))
    previous = read_manifest(root, collector)
    also = _other_names(root, collector, identity)
    schema_version = archive.schema_version
    theirs = _check_previous(root, collector, previous, identity, schema_version, replace=replace)
    where = str(root.resolve())
    why = ("files of another archive replaced" if theirs else "--full" if full
           else f"first publish of {collector!r} here" if previous is None
           else f"schema {previous.get('schema_version')} -> {schema_version}"
           if previous.get("schema_version") != schema_version
           else "the rules for people changed: every file is written again under the new ones"
           if previous.get("person_rules") != person_rules()
           else _marks_differ(archive, previous.get("marks_through"))
           if marks_taken_elsewhere(archive.con, previous.get("marks_through"))
           else "")
    full = bool(why)
    cap = _memory_cap(archive, full)
    target = _Target(root, where, collector, identity, why)
    with _lake_os_errors(root):
        if previous is not None and previous.get("schema_version") != schema_version:
            # files of two schema versions until this rewrite ends (or the next one, if this one is killed): readers
            # match columns by name meanwhile (analysis.lake)
            write_atomic(manifest_path(root, collector), json.dumps({**previous, "rewriting": True}, indent=1,
                                                                    sort_keys=True) + "\n", root)
        sweep_temporaries(root, collector)      # what a killed publish left: never read, never installed
        try:
            report = _publish_within(archive, target, full, previous, schema_version, now, cap)
        except duckdb.OutOfMemoryException:
            if cap is None:
                raise
            # the small pool was too small for these partitions: again under the archive's own cap. Nothing is
            # recorded yet (the manifest and the marks come last); files written meanwhile are rewritten the same.
            report = _publish_within(archive, target, full, previous, schema_version, now, None)
    report.seconds = time.monotonic() - started
    report.warnings += also
    return report


@contextlib.contextmanager
def _lake_os_errors(root: Path) -> Iterator[None]:
    """An error of the lake's file system inside, as a :class:`LakeError` naming the file and what to do (the
    marks stay for the next publish); other errors as they are."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _LAKE_ERRNOS:
            raise
        raise LakeError(f"{exc.filename or root}: {exc.strerror or exc} while publishing to {root}; nothing that "
                        f"changed is lost: the archive keeps what is not published yet, and the next publish "
                        f"repairs the lake ({_LAKE_ERRNOS[exc.errno]})") from None


#: Errors of the lake's file system a publish reports as a :class:`LakeError` (errno -> what to do).
_LAKE_ERRNOS = {
    errno.ENOSPC: "free some space on the lake's disk", errno.EDQUOT: "free some of the disk quota",
    errno.EROFS: "the lake's file system is read-only: publish to a writable folder",
    errno.EACCES: "no permission to write there: publish where you may write",
    errno.EPERM: "no permission to write there: publish where you may write",
    errno.ENOTDIR: "a part of the lake that must be a folder is a file: move that file away",
    errno.EISDIR: "a part of the lake that must be a file is a folder: move that folder away",
    errno.EEXIST: "a file is in the way of a folder of the lake: move it away",
    errno.EIO: "the disk reported an error: check it", errno.EFBIG: "the file system refused a file that large",
    errno.ENAMETOOLONG: "use a shorter lake path", errno.EMFILE: "raise the open files limit (ulimit -n)",
}


@dataclass(frozen=True)
class _Target:
    """Where a publish writes: the lake (as given, and resolved), the collector's name, the archive's identity, and
    why the publish is full ('' when incremental)."""

    root: Path
    resolved: str
    collector: str
    identity: str
    why_full: str


def archive_identity(key: bytes) -> str:
    """A stable id of an archive for manifests: a keyed hash (the archive's pseudonym key never leaves it), so two
    archives publishing under one collector name are told apart, and nothing about the key is revealed."""
    return pseudonym(key, "archive:identity")


#: What may sit at the top of a lake directory besides the tables: manifests and the files of a killed publish.
_LAKE_ENTRY = re.compile(r"^(_manifests|[a-z][a-z0-9_]*|\..+\.tmp)$")
#: What a directory may hold and still count as empty: a file system's own folder, a file manager's or a version
#: control placeholder.
_IGNORED = frozenset({"lost+found", ".DS_Store", ".gitkeep", ".keep", "Thumbs.db", "desktop.ini"})


def check_lake_directory(root: Path) -> None:
    """Raise :class:`LakeError` when ``root`` is a file, or a non-empty directory that is not a lake: no
    ``_manifests`` and something a publish never writes (an export's ``manifest.json``, someone's files). A
    directory that a first publish was killed in (tables' folders of ``slot=NN`` partitions, no manifest yet) is a
    lake: the next publish repairs it."""
    if root.exists() and not root.is_dir():
        raise LakeError(f"{root} is a file, not a lake directory: give --lake (or [lake] path) a directory")
    if not root.is_dir() or (root / "_manifests").is_dir():
        return
    for entry in root.iterdir():
        if entry.name in _IGNORED:
            continue
        foreign = not _LAKE_ENTRY.match(entry.name) or (entry.is_dir() and not entry.name.startswith(".") and any(
            not (child.name.startswith("slot=") or child.name.endswith((".parquet", ".tmp")))
            for child in entry.iterdir()))
        if foreign:
            raise LakeError(f"{root} is not empty and holds no lake (no _manifests/, and {entry.name!r} is not "
                            "part of one): publish into a new or empty directory, or an existing lake")


def _other_names(root: Path, collector: str, identity: str) -> list[str]:
    """A warning for each other collector name this archive has published under into ``root`` (its manifest names
    this archive): readers see both names' files, the old one's frozen at its last publish."""
    manifests, _ = read_manifests(root) if (root / "_manifests").is_dir() else ({}, {})
    return [f"this archive also published to this lake as {name!r}: readers see both names' files, {name!r}'s "
            f"as they were at its last publish. Publish under one name; after renaming a collector, remove the "
            f"old name's files (_manifests/{name}.json and every {name}.parquet) from the lake"
            for name, manifest in sorted(manifests.items())
            if name != collector and manifest.get("archive") == identity]


def _marks_differ(archive: Archive, taken: object) -> str:
    """Why a lake's ``marks_through`` (``taken``) makes the publish full: behind this archive's (another lake took
    the marks it lacks), or ahead of them (the archive is older than the lake: restored from a backup, or a
    publish was stopped between its manifest and its marks)."""
    cleared = marks_cleared(archive.con)
    if isinstance(taken, int) and cleared is not None and taken > cleared:
        return "the lake has taken changes this archive does not record (restored from a backup?)"
    return "this archive published to another lake since"


def _check_previous(root: Path, collector: str, previous: dict[str, Any] | None, identity: str,
                    schema_version: int, *, replace: bool = False) -> bool:
    """Refuse to publish over files that are not this archive's to replace: another archive's (the same collector
    name given to two archives would mix their rows) unless ``replace``, or a newer tgspread's (a downgrade would
    drop columns). True when the files there are another archive's, to be replaced."""
    if previous is None:
        return False
    theirs = previous.get("archive")
    other = isinstance(theirs, str) and theirs != identity
    if other and not replace:
        raise LakeError(
            f"{root}: collector {collector!r} there was published from another archive (id {theirs}; this one is "
            f"{identity}); each archive publishes under its own name: give this one another --collector (or its "
            f"[collectors.NAME] table). To replace that collector's files with this archive's on purpose (say, a "
            f"rebuilt archive), publish with --replace")
    found = previous.get("schema_version")
    if isinstance(found, int) and found > schema_version:
        raise LakeError(
            f"{root}: collector {collector!r} there was published by a newer tgspread (schema {found}; this "
            f"archive is at {schema_version}); upgrade tgspread (pip install -U tgspread), open the archive once "
            f"to migrate it, then publish; the lake was not changed")
    return other


def _publish_within(archive: Archive, target: _Target, full: bool, previous: dict[str, Any] | None,
                    schema_version: int, now: datetime, cap: str | None) -> PublishReport:
    """The work of :func:`publish`, with DuckDB's pool capped at ``cap`` (None: the archive's own) and, for an
    incremental publish, one DuckDB thread."""
    root, collector = target.root, target.collector
    report = PublishReport(lake=str(root), collector=collector, full=full, why_full=target.why_full)
    with archive.memory_capped(cap), archive.threads_limited(None if full else 1):
        con = _with_pseudonyms(archive, now)
        try:
            dirty, top = _dirty(con)
            through = max(top, marks_cleared(con) or 0)     # the marks this lake will have taken
            columns = _columns(con)
            layouts = lake_tables(con, columns)
            selects = lake_selects(con, columns)
            tables_manifest: dict[str, Any] = {} if full else dict(previous.get("tables", {})) if previous else {}
            small = _small_digests(con, {t: _base_select(t, columns) for t, layout in layouts.items()
                                         if layout == "slot"}, columns)
            for table, layout in layouts.items():
                entry: dict[str, Any] = {} if full else tables_manifest.get(table, {})
                parts: dict[str, Any] = dict(entry.get("partitions", {}))
                if layout == "post":
                    written = _publish_post_table(con, root, table, selects[table], collector,
                                                  None if full else dirty.get(table, set()), parts, report, columns)
                else:
                    written = _publish_small_table(con, root, table, selects[table], small[table], collector, full,
                                                   parts, report, columns)
                if written:
                    report.partitions[table] = sorted(written)
                tables_manifest[table] = {"layout": layout, "rows": sum(int(p["rows"]) for p in parts.values()),
                                          "partitions": dict(sorted(parts.items()))}
            for table in list(tables_manifest):
                if table not in layouts:
                    del tables_manifest[table]
            handed_on, handed_written = publish_candidates(
                con, root, collector, dict((previous or {}).get(CANDIDATES, {})), full=full)
            if handed_written:
                report.partitions[CANDIDATES] = handed_written
            manifest = {
                "manifest_version": MANIFEST_VERSION,
                "collector": collector,
                "archive": target.identity,
                # the highest of this archive's change marks the lake has taken (collector._archive.lake_marks)
                "marks_through": through,
                "tgspread_version": __version__,
                "schema_version": schema_version,
                "published_at": now.astimezone(UTC).isoformat(),
                "full": full,
                "slot": {"count": 64, "python": "int(md5(str(channel_id).encode()).hexdigest()[:8], 16) % 64",
                         "duckdb": slot_sql("channel_id"),
                         "no_channel": "rows of tables other than posts' without a channel id: slot "
                                       f"{NO_CHANNEL_SLOT}"},
                "digest": "per partition '<rows>:<hash sum>': the sum mod 2^64 of DuckDB's hash() of each row's "
                          "columns (collector._archive.lake.partition_digest_sql); tgspread verify --lake "
                          "recomputes it",
                # which fields are pseudonymised or dropped (export.PERSON_FIELDS): other rules, a full publish
                "person_rules": person_rules(),
                "pseudonyms": {"key": PSEUDONYM_KEY, "scheme": "HMAC-SHA256(key, 'name:' + value), first 16 hex "
                                                               "digits; the key stays in the archive"},
                "tables": tables_manifest,
                # channels this collector met in other collectors' slots, handed on (collector._archive.lake_handoff)
                CANDIDATES: handed_on,
            }
            write_atomic(manifest_path(root, collector), json.dumps(manifest, indent=1, sort_keys=True) + "\n", root)
            # only now, with every file in place; a mark made since stays for the next publish
            clear_marks(con, top, through, target.resolved, collector, now)
        finally:
            con.remove_function(_UDF)    # the function lives in the database's catalog, not the cursor's
            con.close()
    return report


#: DuckDB's buffer pool during an incremental publish (which also runs one DuckDB thread), when the archive's
#: cap is higher: it reads a few partitions, and a pool the size of the archive's cap (256 MB) only filled with
#: cached blocks of the month it read. One thread pins half the scan buffers of two, and leaves the other core
#: to the Parquet writer. At 10M posts (+1,000 posts in 10 partitions of 125,000 posts) 64 MB kept the peak
#: RSS of the publish 40-60 MB under 128 MB's at the same CPU time; if a pass's partitions do not fit, the
#: publish runs again under the archive's cap (:func:`publish`). Measured: docs/lake.md, "Publishing: what it
#: costs".
INCREMENTAL_MEMORY = "64MB"


def _memory_cap(archive: Archive, full: bool) -> str | None:
    """The cap for this publish: :data:`INCREMENTAL_MEMORY` for an incremental one, unless the archive's own is
    lower (None: the archive's cap, unchanged; a full publish sorts and keeps it)."""
    own = size_bytes(archive.memory_limit) if archive.memory_limit else None
    cap = size_bytes(INCREMENTAL_MEMORY)
    if full or cap is None or (own is not None and own <= cap):
        return None
    return INCREMENTAL_MEMORY


def _channels_by_month(con: duckdb.DuckDBPyConnection, table: str, dirty: set[tuple[int, str]]) -> dict[str, set[int]]:
    """Month -> the channels whose partitions of that month are dirty and may hold rows: the channels of the
    month's posts (read by a ``posted_at`` range: DuckDB skips the other row groups), and for month ``unknown``
    those of the table's own rows (rows without a dated post). Slots are computed here, not per row in SQL."""
    slots_by_month: dict[str, set[int]] = {}
    for part_slot, month in dirty:
        slots_by_month.setdefault(month, set()).add(part_slot)
    out: dict[str, set[int]] = {}
    for month, slots in slots_by_month.items():
        source = f"SELECT DISTINCT channel_id FROM posts WHERE {_month_range(month, 'posted_at')}"
        if month == NO_MONTH and table != "posts":
            source = f'SELECT DISTINCT channel_id FROM "{table}"'
        out[month] = {int(c) for (c,) in con.execute(source).fetchall() if slot(int(c)) in slots}
    return out


#: Rows of ``posts`` a full publish sorts in one query at most (whole months; a month larger goes alone): DuckDB
#: sorts a chunk within the archive's memory cap, or spills less of it, than the whole table at once.
FULL_CHUNK_ROWS = 2_000_000


def _month_chunks(con: duckdb.DuckDBPyConnection, chunk: int | None = None) -> list[tuple[str, str] | None]:
    """Runs of consecutive months of ``posts`` of at most ``chunk`` rows each (a month larger is a run of its
    own), as (first, last) month; the undated posts, if any, alone. One scan of ``posted_at``."""
    chunk = chunk or FULL_CHUNK_ROWS
    counts = con.execute(f"SELECT {_MONTH_INDEX.format(column='posted_at')} AS m, count(*) FROM posts "
                         "GROUP BY m ORDER BY m").fetchall()
    out: list[tuple[str, str] | None] = []
    run: list[int] = []
    rows = 0
    for index, n in counts:
        if index == 0:
            out.append((NO_MONTH, NO_MONTH))
            continue
        if run and rows + n > chunk:
            out.append((month_name(run[0]), month_name(run[-1])))
            run, rows = [], 0
        run.append(int(index))
        rows += int(n)
    if run:
        out.append((month_name(run[0]), month_name(run[-1])))
    return out or [None]


def _publish_post_table(con: duckdb.DuckDBPyConnection, root: Path, table: str, select: str, collector: str,
                        dirty: set[tuple[int, str]] | None, parts: dict[str, Any], report: PublishReport,
                        columns: dict[str, list[tuple[str, bool]]]) -> list[str]:
    """Rewrite the partitions ``dirty`` of a post-level table (None: all of them); update ``parts``.

    An incremental publish reads each dirty month's rows with :func:`dirty_select` (one query per month, all its
    dirty slots at once), so its work follows the partitions it rewrites, not the archive; partitions left
    without rows lose their file. A full one streams the whole table in one sorted query and removes this
    collector's files of partitions that no longer exist."""
    if dirty is not None and not dirty:
        return []
    if dirty is None:
        _register_slots(con, (c for (c,) in con.execute(f'SELECT DISTINCT channel_id FROM "{table}"').fetchall()))
        queries = [_post_stream_sql(con, table, full_rows(table, columns, months), columns)
                   for months in (_month_chunks(con) if table == "posts" else [None])]
    else:
        by_month = {m: c for m, c in sorted(_channels_by_month(con, table, dirty).items()) if c}
        _register_slots(con, (c for channels in by_month.values() for c in channels))
        queries = [_post_stream_sql(con, table, dirty_select(con, table, month, channels, columns), columns)
                   for month, channels in by_month.items()]
    done = []
    try:
        for sql in queries:
            done += write_partitions(con, sql, root / table, root, collector, layout="post",
                                     **({} if dirty is None else {"max_pending": INCREMENTAL_PENDING}))
    finally:
        con.unregister(_SLOTS)
    for w in done:
        parts[w.name] = {"rows": w.rows, **({"digest": w.digest} if w.digest is not None else {})}
        report.files_written += 1
        report.rows_written += w.rows
    written = [w.name for w in done]
    if dirty is None:
        gone = set(_our_files(root, table, "post", collector)) - set(written)
    else:       # a dirty partition with no rows now: its file goes (only those are looked at, not the whole table)
        gone = {partition_name(*k) for k in dirty} - set(written)
    for name in gone:
        if remove(root / table / name / f"{collector}.parquet"):
            report.files_removed += 1
        parts.pop(name, None)
    return written


def _publish_small_table(con: duckdb.DuckDBPyConnection, root: Path, table: str, select: str,
                         now_digests: dict[str, str], collector: str, full: bool, parts: dict[str, Any],
                         report: PublishReport, columns: dict[str, list[tuple[str, bool]]]) -> list[str]:
    """Rewrite the slots of a small table whose digest (``now_digests``: partition -> digest) moved; update
    ``parts``. A file of the layout before slots for every table (``<table>/<collector>.parquet``) makes it
    rewrite every slot, then goes."""
    present = _our_files(root, table, "slot", collector)
    legacy = "" in present
    changed = [name for name, d in now_digests.items()
               if full or legacy or name not in present or parts.get(name, {}).get("digest") != d]
    gone = [name for name in present if name not in now_digests or name == ""]
    written: list[str] = []
    if changed:
        where = f"WHERE x.slot IN ({', '.join(name.split('=', 1)[1] for name in changed)})"
        done = write_partitions(con, _stream_sql(con, table, select, columns, where), root / table, root,
                                collector, layout="slot")
        written = [w.name for w in done]
        report.files_written += len(done)
        report.rows_written += sum(w.rows for w in done)
    for name in written:
        parts[name] = {"rows": int(now_digests[name].split(":", 1)[0]), "digest": now_digests[name]}
    for name in gone:
        if remove(present[name]):
            report.files_removed += 1
        parts.pop(name, None)
    if not now_digests:
        parts.clear()
    return written


def lake_schema(archive: Archive) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """Table -> (layout, ((column, DuckDB type), ...)) of the lake ``archive`` publishes, partition columns last.

    ``analysis/_lake_schema.py`` holds a copy (readers give a table with no files yet this schema);
    tests/integration/test_lake.py pins the two equal. Needs the archive open for writing (the pseudonym key).
    """
    con = _with_pseudonyms(archive, datetime.now(UTC))
    try:
        out = {}
        selects = lake_selects(con)
        for table, layout in lake_tables(con).items():
            sql = selects[table]
            cols = tuple((str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {sql}").fetchall())
            out[table] = (layout, cols)
        return out
    finally:
        con.remove_function(_UDF)
        con.close()
