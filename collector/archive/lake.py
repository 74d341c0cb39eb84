"""Publishing the archive to a lake: Hive-partitioned Parquet that readers use without locks or copies.

``publish(archive, lake, collector="main")`` writes this collector's files under ``lake`` (CONTRACT.md, "The lake"):

- post-level tables (``posts``, ``post_observations``, ``post_versions``, ``post_comments``) as
  ``<table>/slot=NN/month=YYYY-MM/<collector>.parquet``: ``slot`` from :func:`collector.archive.slots.slot` of the
  channel, ``month`` the UTC month of the post's ``posted_at`` (a post's observations, versions and comments
  live with the post, so a post's rows are always published together);
- other tables with a channel id as ``<table>/slot=NN/<collector>.parquet``; tables without one (runs,
  imports, ...) as ``<table>/<collector>.parquet``.

Files are zstd Parquet sorted by (channel_id, message_id, ...), each replaced whole: one sorted query is
streamed into a temporary file per partition in the partition's own directory, fsynced, renamed over its final
name, and the directory fsynced (:mod:`collector.archive.lake_files`). A reader sees the old file or the new
one, never a part. Only what changed is rewritten: post-level partitions listed in ``lake_dirty`` (recorded by
every writer in its own transaction, :mod:`collector.archive.lake_marks`), and the slots of small tables whose
content digest moved since the last publish. The dirty rows are cleared only after the files are in place,
so a publish killed at any point is repaired by the next. ``full=True`` (``tgspread publish --full``) rewrites
every partition of the collector and removes its files of partitions that no longer exist.

People: the export's rules (:mod:`collector.archive.export`): raw payloads and access hashes are dropped, person-level
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

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from collector._version import __version__

from .archive import Archive
from .export import DERIVED, DROPPED_COLUMNS, NEVER_EXPORTED, PSEUDONYM_KEY, _columns, _select
from .lake_files import partition_name, remove, sweep_temporaries, write_atomic, write_partitions
from .lake_handoff import CANDIDATES, LAKE_SOURCE, publish_candidates
from .lake_marks import POST_LEVEL, has_marks
from .slots import NO_MONTH, collector_name_problem, month_sql, slot, slot_sql
from .upsert import pseudonym, pseudonym_key

#: What a collector may be called: it names files in a shared lake.
#: Tables never in a lake besides the export's: the bookkeeping of publishing itself.
_NOT_PUBLISHED = frozenset({"lake_dirty"})
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
    files_written: int = 0
    files_removed: int = 0
    rows_written: int = 0
    partitions: dict[str, list[str]] = field(default_factory=dict)   # table -> partitions written
    seconds: float = 0.0

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
#: The archive's columns, read once per publish (the connection's id -> _columns): a publish asks some twenty
#: times, each an information_schema query.
_KNOWN_COLUMNS: dict[int, dict[str, list[tuple[str, bool]]]] = {}


def _table_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, bool]]]:
    known = _KNOWN_COLUMNS.get(id(con))
    return known if known is not None else _columns(con)


def lake_tables(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Table -> layout (``'post'``: slot and month, ``'slot'``, ``'flat'``) of every table a lake holds."""
    out = {}
    for table, columns in _table_columns(con).items():
        if table in NEVER_EXPORTED | DERIVED | _NOT_PUBLISHED:
            continue
        if table in POST_LEVEL:
            out[table] = "post"
        elif any(c == "channel_id" and not nullable for c, nullable in columns):
            out[table] = "slot"
        else:
            out[table] = "flat"
    return out


def lake_selects(con: duckdb.DuckDBPyConnection, channels: Iterable[int] | None = None,
                 months: Iterable[str] | None = None) -> dict[str, str]:
    """Table -> the SELECT giving its lake rows (export rules applied; ``slot`` and, for post-level tables,
    ``month`` added). ``channels`` limits the rows to those channels (None: all); ``months`` (``YYYY-MM``) lets
    ``posts`` skip row groups outside them (by ``posted_at``, which decides the month exactly). Needs the
    pseudonym function registered on the connection that runs it (:func:`_with_pseudonyms`)."""
    columns = _table_columns(con)
    ids = None if channels is None else sorted({int(c) for c in channels})
    out = {}
    for table, layout in lake_tables(con).items():
        sql, _ = _select(table, columns[table], None)
        sql = sql.replace("tgspread_pseudonym(", f"{_UDF}(")
        if ids is not None and layout != "flat":
            sql += f" WHERE t.channel_id IN ({', '.join(map(str, ids)) or 'NULL'})"
            if table == "posts" and months:
                sql += _months_filter(months)
        if table == "posts":      # rows copied from the lake at a slot takeover are another collector's
            sql = f"SELECT * FROM ({sql}) l WHERE l.source IS DISTINCT FROM '{LAKE_SOURCE}'"
        if layout == "flat":
            out[table] = sql
        elif layout == "slot":
            out[table] = f"SELECT x.*, {slot_sql('x.channel_id')} AS slot FROM ({sql}) x"
        elif table == "posts":
            out[table] = (f"SELECT x.*, {slot_sql('x.channel_id')} AS slot, {month_sql('x.posted_at')} AS month "
                          f"FROM ({sql}) x")
        else:
            within = "" if ids is None else f" AND p.channel_id IN ({', '.join(map(str, ids)) or 'NULL'})"
            out[table] = (f"SELECT x.*, {slot_sql('x.channel_id')} AS slot, {month_sql('p.posted_at')} AS month "
                          f"FROM ({sql}) x LEFT JOIN posts p ON p.channel_id = x.channel_id "
                          f"AND p.message_id = x.message_id{within}")
    return out


def _months_filter(months: Iterable[str]) -> str:
    """`` AND posted_at`` within the first and last of ``months`` (none when one is ``unknown``)."""
    wanted = sorted(set(months))
    if not wanted or NO_MONTH in wanted:
        return ""
    first, last = wanted[0], wanted[-1]
    year, month = int(last[:4]), int(last[5:7])
    after = f"{year + month // 12:04d}-{month % 12 + 1:02d}"
    return (f" AND t.posted_at >= TIMESTAMPTZ '{first}-01 00:00:00+00' "
            f"AND t.posted_at < TIMESTAMPTZ '{after}-01 00:00:00+00'")


def row_hash_sql(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SQL for a lake row's 64-bit hash: DuckDB's ``hash`` over the columns a lake file holds, in table order."""
    names = [c for c, _ in _table_columns(con)[table] if c not in DROPPED_COLUMNS]
    return "hash(" + ", ".join(f'"{c}"' for c in names) + ")"


def partition_digest_sql(con: duckdb.DuckDBPyConnection, table: str, source: str) -> str:
    """SQL giving ``(slot, month, digest)`` per partition of a post-level ``table`` read from ``source`` (the archive's
    lake rows, or the files): ``<rows>:<sum of row hashes mod 2^64, 16 hex digits>``, as the manifest records it.

    The sum does not depend on row order and any changed field changes it; it is a check for drift between an
    archive and its lake, not a cryptographic seal (``tgspread verify``'s SHA-256 digests are that, for the archive).
    """
    return (f"SELECT slot, month, count(*)::VARCHAR || ':' || lpad(printf('%x', (sum({row_hash_sql(con, table)}"
            f"::HUGEINT) % 18446744073709551616)::UBIGINT), 16, '0') FROM {source} GROUP BY slot, month")


def _partition_dir(lake: Path, table: str, layout: str, part: tuple[int, str] | int | None) -> Path:
    if layout == "post":
        assert isinstance(part, tuple)
        return lake / table / partition_name(*part)
    if layout == "slot":
        assert isinstance(part, int)
        return lake / table / partition_name(part, None)
    return lake / table


def _our_files(lake: Path, table: str, layout: str, collector: str) -> dict[str, Path]:
    """This collector's files of ``table`` now in the lake: partition name -> path."""
    base = lake / table
    pattern = {"post": f"slot=*/month=*/{collector}.parquet", "slot": f"slot=*/{collector}.parquet",
               "flat": f"{collector}.parquet"}[layout]
    return {str(p.parent.relative_to(base)) if layout != "flat" else "": p for p in base.glob(pattern)}


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


def _order(con: duckdb.DuckDBPyConnection, table: str) -> str:
    names = {c for c, _ in _table_columns(con)[table]}
    return ", ".join(c for c in _SORT if c in names) or "1"


#: A BIGINT that changes exactly where (slot, month) changes, in their order ('unknown' sorts first).
_POST_PART = ("slot::BIGINT * 1000000 + CASE WHEN month = 'unknown' THEN 0 "
              "ELSE left(month, 4)::BIGINT * 12 + right(month, 2)::BIGINT END")
_PART = {"post": _POST_PART, "slot": "slot::BIGINT", "flat": "0::BIGINT"}


def _stream_sql(con: duckdb.DuckDBPyConnection, table: str, layout: str, select: str, where: str = "") -> str:
    """The sorted query :func:`collector.archive.lake_files.write_partitions` writes from."""
    extra = f", {row_hash_sql(con, table)} AS _h" if layout == "post" else ""
    return (f"SELECT x.*, {_PART[layout]} AS _part{extra} FROM ({select}) x {where} "
            f"ORDER BY _part, {_order(con, table)}")


def _small_digests(con: duckdb.DuckDBPyConnection, sql: str, layout: str) -> dict[str, str]:
    """Partition -> an order-free digest (rows and a hash sum) of a small table's lake rows."""
    by = "slot" if layout == "slot" else "NULL"
    rows = con.execute(f"SELECT {by} AS part, count(*), sum(hash(x)::HUGEINT) FROM ({sql}) x GROUP BY ALL").fetchall()
    return {partition_name(None if p is None else int(p), None): f"{n}:{h}" for p, n, h in rows if n}


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
            now: datetime | None = None) -> PublishReport:
    """Publish what changed in ``archive`` since this collector's last publish into ``lake``; see the module doc.

    The archive must be open read-write (the pseudonym key may be created, and the dirty marks are cleared).
    The first publish of a collector into a lake, and the first after a migration, are full.
    Raises :class:`LakeError` for a bad collector name or a lake that cannot be written.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    problem = collector_name_problem(collector)
    if problem is not None:
        raise LakeError(f"{problem}, e.g. 'main'")
    if archive.read_only:
        raise LakeError(f"{archive.path}: publishing needs the archive open for writing")
    root = Path(lake)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LakeError(f"{root}: cannot create the lake directory ({exc.strerror or exc})") from None
    previous = read_manifest(root, collector)
    schema_version = archive.schema_version
    if previous is None or previous.get("schema_version") != schema_version:
        full = True
    if previous is not None and previous.get("schema_version") != schema_version:
        # files of two schema versions until this rewrite ends (or the next one, if this one is killed): readers
        # match columns by name meanwhile (analysis.lake)
        write_atomic(manifest_path(root, collector), json.dumps({**previous, "rewriting": True}, indent=1,
                                                                sort_keys=True) + "\n", root)
    report = PublishReport(lake=str(root), collector=collector, full=full)
    sweep_temporaries(root, collector)      # what a killed publish left: never read, never installed
    con = _with_pseudonyms(archive, now)
    _KNOWN_COLUMNS[id(con)] = _columns(con)
    try:
        dirty, top = _dirty(con)
        layouts = lake_tables(con)
        selects = lake_selects(con)
        tables_manifest: dict[str, Any] = {} if full else dict(previous.get("tables", {})) if previous else {}
        for table, layout in layouts.items():
            entry: dict[str, Any] = {} if full else tables_manifest.get(table, {})
            parts: dict[str, Any] = dict(entry.get("partitions", {}))
            if layout == "post":
                written = _publish_post_table(con, root, table, selects[table], collector,
                                              None if full else dirty.get(table, set()), parts, report)
            else:
                written = _publish_small_table(con, root, table, layout, selects[table], collector, full, parts,
                                               report)
            if written:
                report.partitions[table] = sorted(written)
            tables_manifest[table] = {"layout": layout, "rows": sum(int(p["rows"]) for p in parts.values()),
                                      "partitions": dict(sorted(parts.items()))}
        for table in list(tables_manifest):
            if table not in layouts:
                del tables_manifest[table]
        handed_on, handed_written = publish_candidates(con, root, collector, dict((previous or {}).get(CANDIDATES, {})),
                                                       full=full)
        if handed_written:
            report.partitions[CANDIDATES] = handed_written
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "collector": collector,
            "tgspread_version": __version__,
            "schema_version": schema_version,
            "published_at": now.astimezone(UTC).isoformat(),
            "full": full,
            "slot": {"count": 64, "python": "int(md5(str(channel_id).encode()).hexdigest()[:8], 16) % 64",
                     "duckdb": slot_sql("channel_id")},
            "digest": "per partition '<rows>:<hash sum>': the sum mod 2^64 of DuckDB's hash() of each row's columns "
                      "(collector.archive.lake.partition_digest_sql); tgspread verify --lake recomputes it",
            "pseudonyms": {"key": PSEUDONYM_KEY, "scheme": "HMAC-SHA256(key, 'name:' + value), first 16 hex "
                                                           "digits; the key stays in the archive"},
            "tables": tables_manifest,
            # channels this collector met in other collectors' slots, handed on (collector.archive.lake_handoff)
            CANDIDATES: handed_on,
        }
        write_atomic(manifest_path(root, collector), json.dumps(manifest, indent=1, sort_keys=True) + "\n", root)
        if has_marks(con):     # only now, with every file in place; a mark made since stays for the next publish
            con.execute("DELETE FROM lake_dirty WHERE seq <= ?", [top])
    finally:
        _KNOWN_COLUMNS.pop(id(con), None)
        con.remove_function(_UDF)    # the function lives in the database's catalog, not the cursor's
        con.close()
    report.seconds = time.monotonic() - started
    return report


def _publish_post_table(con: duckdb.DuckDBPyConnection, root: Path, table: str, select: str, collector: str,
                        dirty: set[tuple[int, str]] | None, parts: dict[str, Any], report: PublishReport) -> list[str]:
    """Rewrite the partitions ``dirty`` of a post-level table (None: all of them); update ``parts``."""
    if dirty is not None and not dirty:
        return []
    where = ""
    if dirty is not None:
        slots = {s for s, _ in dirty}
        ids = [int(r[0]) for r in con.execute(f"SELECT DISTINCT channel_id FROM {table}").fetchall()]
        select = lake_selects(con, [c for c in ids if slot(c) in slots], [m for _, m in dirty])[table]
        values = ", ".join(f"({s}, '{m}')" for s, m in sorted(dirty))
        where = f"SEMI JOIN (VALUES {values}) v(s, m) ON x.slot = v.s AND x.month = v.m"
    done = write_partitions(con, _stream_sql(con, table, "post", select, where), root / table, root, collector,
                            layout="post")
    for w in done:
        parts[w.name] = {"rows": w.rows, **({"digest": w.digest} if w.digest is not None else {})}
        report.files_written += 1
        report.rows_written += w.rows
    written = [w.name for w in done]
    gone = set(_our_files(root, table, "post", collector)) - set(written)
    if dirty is not None:
        gone &= {partition_name(*k) for k in dirty}
    for name in gone:
        if remove(root / table / name / f"{collector}.parquet"):
            report.files_removed += 1
        parts.pop(name, None)
    return written


def _publish_small_table(con: duckdb.DuckDBPyConnection, root: Path, table: str, layout: str, select: str,
                         collector: str, full: bool, parts: dict[str, Any], report: PublishReport) -> list[str]:
    """Rewrite the slots (or the single file) of a small table whose digest moved; update ``parts``."""
    now_digests = _small_digests(con, select, layout)
    present = _our_files(root, table, layout, collector)
    changed = [name for name, d in now_digests.items()
               if full or name not in present or parts.get(name, {}).get("digest") != d]
    gone = [name for name in present if name not in now_digests]
    written: list[str] = []
    if changed:
        where = ""
        if layout == "slot":
            where = f"WHERE x.slot IN ({', '.join(name.split('=', 1)[1] for name in changed)})"
        done = write_partitions(con, _stream_sql(con, table, layout, select, where), root / table, root, collector,
                                layout=layout)
        written = [w.name for w in done]
        report.files_written += len(done)
        report.rows_written += sum(w.rows for w in done)
    for name in written:
        parts[name] = {"rows": int(now_digests[name].split(":", 1)[0]), "digest": now_digests[name]}
    for name in gone:
        path = (root / table / name / f"{collector}.parquet") if name else root / table / f"{collector}.parquet"
        if remove(path):
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
        for table, layout in lake_tables(con).items():
            sql = lake_selects(con)[table]
            cols = tuple((str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {sql}").fetchall())
            out[table] = (layout, cols)
        return out
    finally:
        con.remove_function(_UDF)
        con.close()
