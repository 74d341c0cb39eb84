"""The archive as files others can read in place: Parquet (or CSV) partitioned by channel, plus a manifest.

``export_archive(archive, out)`` writes ``out/<table>/channel_id=<id>/data_0.parquet`` for every table with a
``channel_id`` that is never null (``posts``, ``post_observations``, ``channels``, ...) and
``out/<table>/data_0.parquet`` for the others, with DuckDB's ``COPY ... (FORMAT parquet, PARTITION_BY ...)``:
hive-style directories that DuckDB (``read_parquet('out/posts/**/*.parquet', hive_partitioning = true)``),
Polars (``pl.scan_parquet('out/posts/**/*.parquet', hive_partitioning=True)``) and Spark
(``spark.read.parquet('out/posts')``) read without a copy. ``manifest.json`` beside them gives each table's
row count and layout, the schema and tgspread versions, and the archive's ``tgspread verify`` digests.

People in the data are not exported as they are (issue 7). What changes, per :data:`PERSON_FIELDS`:

- ``posts.fwd_from_name`` (and ``fwd_post_author``) of a forward whose sender hid itself
  (``fwd_channel_id`` null): the displayed name is a person's; it becomes a keyed pseudonym.
- ``posts.fwd_username`` of a forward that names no origin channel or post (``fwd_channel_id`` and
  ``fwd_message_id`` null): a web preview links a forward from a person's account as ``t.me/<username>``, with
  no post id; that username becomes a keyed pseudonym too.
- ``posts.post_author`` in groups (``channels.megagroup``): the author of a group message is a person.
- ``raw`` payloads (``posts``, ``post_versions``, ``channels``) are dropped: they repeat those names.
- ``access_hash`` (per account, lets the holder reach the channel as that account) is dropped.
- ``pseudonym_keys`` is never exported, whatever ``tables`` says.

A pseudonym is ``collector._archive.upsert.pseudonym(key, "name:" + value)``: HMAC-SHA256 with the archive's
``export_authors`` key (the one comment authors and Desktop-export authors use), first 16 hex digits. The
same name gives the same pseudonym throughout an archive, so a hidden sender's forwards can still be
grouped; without the key (which stays in the archive) the name cannot be recovered or tested for.
Comments (``post_comments``) already hold ``author_pseudonym`` and are exported as they are.

Example::

    with Archive("archive.duckdb", read_only=True) as archive:
        manifest = export_archive(archive, Path("export"), since=datetime(2025, 1, 1, tzinfo=UTC))
    print(manifest["tables"]["posts"]["rows"])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from collector._version import __version__

from .archive import Archive
from .channel_runs import runs_of
from .run_stage import flush_threshold
from .upsert import pseudonym, pseudonym_key
from .verify import report_as_json, verify_archive

FORMATS = ("parquet", "csv")
PSEUDONYM_KEY = "export_authors"
#: Tables that never leave the archive: the pseudonym key would undo every pseudonym.
NEVER_EXPORTED = frozenset({"pseudonym_keys"})
#: Tables left out unless named: the stored analysis results of archives not yet migrated to 0009 (which drops
#: them; derived from the posts, which the analysis functions compute from) and their generation counter.
DERIVED = frozenset({"summary_cascades", "summary_forward_network", "summary_url_spread", "analysis_summaries",
                     "archive_generation"})
#: Tables of this archive's own bookkeeping, left out unless named (and never published): the partitions changed
#: since the last publish (migration 0008), what it last took from a lake (0012), where it published (0013).
LOCAL_STATE = frozenset({"lake_dirty", "lake_pickups", "lake_publishes"})
#: Columns left out of every table that has them.
DROPPED_COLUMNS = ("raw", "access_hash")
#: (table, column) -> SQL condition under which the value is a person's and is replaced by a pseudonym.
PERSON_FIELDS: dict[tuple[str, str], str] = {
    ("posts", "fwd_from_name"): "fwd_channel_id IS NULL",
    ("posts", "fwd_post_author"): "fwd_channel_id IS NULL",
    # a web preview's forward links t.me/<username> without a post id when the origin is a person's account
    # (a channel's forward links t.me/<channel>/<id>): that username is a person's
    ("posts", "fwd_username"): "fwd_channel_id IS NULL AND fwd_message_id IS NULL",
    ("posts", "post_author"): "channel_id IN (SELECT channel_id FROM channels WHERE megagroup)",
}
_UDF = "tgspread_pseudonym"

#: A partitioned table is written in runs of channels: at most this many rows and this many channels (DuckDB's
#: ``partitioned_write_max_open_files``) per ``COPY``. One ``COPY`` over 5,000 channels buffered every partition
#: until its end and ran out of the 256 MB cap at 30M posts (issue 14); a run's buffers are bounded by the run.
EXPORT_RUN_ROWS = 1_000_000
EXPORT_RUN_CHANNELS = 100
#: Rows of one channel a partitioned ``COPY`` buffers before writing them (DuckDB's default, 524,288, pinned more
#: than the 256 MB cap for a channel of 1.3M posts at 30M posts; 20,000 took 3.8 s and 425 MB): a run buffers at
#: most ``EXPORT_RUN_ROWS`` rows in all.
EXPORT_FLUSH_ROWS = 10_000


def person_rules() -> str:
    """A short digest of :data:`PERSON_FIELDS` (and the dropped columns): a lake's manifest records it, so files
    written under other rules for people are all rewritten by the next publish (``collector._archive.lake``)."""
    text = repr((sorted(PERSON_FIELDS.items()), sorted(DROPPED_COLUMNS)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class ExportError(Exception):
    """The export cannot be made as asked; the message says why and what to do."""


def ensure_pseudonym_key(path: Path, *, wait: float, now: datetime | None = None) -> None:
    """Create the archive's pseudonym key if it has none yet (the only write an export makes)."""
    with Archive(path, read_only=True, wait=wait) as archive:
        if "pseudonym_keys" in _columns(archive.con):     # an archive from before it gets it by migration below
            row = archive.con.execute("SELECT count(*) FROM pseudonym_keys WHERE name = ?",
                                      [PSEUDONYM_KEY]).fetchone()
            if row and row[0]:
                return
    with Archive(path, wait=wait) as archive, archive.transaction():
        pseudonym_key(archive, PSEUDONYM_KEY, now=now or datetime.now(UTC))


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, bool]]]:
    """Base tables -> [(column, nullable)] in table order."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for table, column, nullable in con.execute(
            "SELECT c.table_name, c.column_name, c.is_nullable = 'YES' FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) WHERE c.table_schema = 'main' "
            "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position").fetchall():
        out.setdefault(str(table), []).append((str(column), bool(nullable)))
    return out


def exportable_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table an export contains by default (all but :data:`NEVER_EXPORTED`, :data:`DERIVED` and
    :data:`LOCAL_STATE`), sorted."""
    return sorted(t for t in _columns(con) if t not in NEVER_EXPORTED | DERIVED | LOCAL_STATE)


def select_tables(con: duckdb.DuckDBPyConnection, tables: Sequence[str] | None) -> list[str]:
    """The tables an export of ``tables`` writes (None or empty: all exportable ones); raises ExportError for a
    table the archive lacks or one that is never exported. Call it before anything is written."""
    if not tables:
        return exportable_tables(con)
    wanted = list(dict.fromkeys(tables))
    refused = [t for t in wanted if t in NEVER_EXPORTED]
    if refused:
        raise ExportError(f"{', '.join(refused)} is never exported: it holds the key behind every pseudonym")
    known = _columns(con)
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise ExportError(f"no table {', '.join(unknown)} in the archive; tables: {', '.join(exportable_tables(con))}")
    return wanted


def _since_filter(table: str, names: set[str], ranged: bool = False) -> str | None:
    """The WHERE clause ``since`` puts on ``table`` (``$since`` bound), or None: the table goes whole.

    Posts posted since then, with everything about them (observations, versions, comments, media);
    snapshots and runs since then, with their rows. Channels, peers, cursors and the like go whole.
    ``ranged``: the rows are read per run of channels (``$first``, ``$last``), and so are the posts they name.
    """
    if table == "posts":
        return "posted_at >= $since"
    if {"channel_id", "message_id"} <= names:
        within = " AND p.channel_id BETWEEN $first AND $last" if ranged else ""
        return ("EXISTS (SELECT 1 FROM posts p WHERE p.channel_id = t.channel_id AND p.message_id = t.message_id "
                f"AND p.posted_at >= $since{within})")
    if table == "channel_observations":
        return "observed_at >= $since"
    if table == "runs":
        return "started_at >= $since"
    if "run_id" in names:
        return "run_id IN (SELECT run_id FROM runs WHERE started_at >= $since)"
    return None


def _select(table: str, columns: list[tuple[str, bool]], since: datetime | None,
            ranged: bool = False) -> tuple[str, list[str]]:
    """The SELECT that exports ``table``, and the columns it pseudonymised; ``ranged``: only the channels
    ``BETWEEN $first AND $last`` (one run of a partitioned table)."""
    names = {c for c, _ in columns}
    parts, changed = [], []
    for column, _ in columns:
        if column in DROPPED_COLUMNS:
            continue
        condition = PERSON_FIELDS.get((table, column))
        if condition is None:
            parts.append(f'"{column}"')
        else:
            parts.append(f'CASE WHEN {condition} THEN {_UDF}("{column}") ELSE "{column}" END AS "{column}"')
            changed.append(column)
    conditions = ["t.channel_id BETWEEN $first AND $last"] if ranged else []
    if since is not None and (where := _since_filter(table, names, ranged)) is not None:
        conditions.append(where)
    sql = f'SELECT {", ".join(parts)} FROM "{table}" t' + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
    return sql, changed


def _partitioned(columns: list[tuple[str, bool]]) -> bool:
    return any(c == "channel_id" and not nullable for c, nullable in columns)


def _copy(con: duckdb.DuckDBPyConnection, sql: str, target: Path, fmt: str, partition: bool,
          params: dict[str, Any]) -> None:
    options = ["FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"]
    if partition:      # runs of distinct channels into one folder: each run adds its channel_id=<id>/data_0 files
        options.append("PARTITION_BY (channel_id), OVERWRITE_OR_IGNORE true")
        destination = str(target)
    else:
        target.mkdir(parents=True, exist_ok=True)
        destination = str(target / f"data_0.{fmt}")
    literal = destination.replace("'", "''")
    if fmt == "csv":
        sql = _formula_safe(con, sql, params)
    with flush_threshold(con, EXPORT_FLUSH_ROWS) if partition else contextlib.nullcontext():
        con.execute(f"COPY ({sql}) TO '{literal}' ({', '.join(options)})", params)


#: A CSV text cell starting with one of these is a formula to a spreadsheet (``=HYPERLINK(...)``, ``+``,
#: ``-``, ``@``, and tab or carriage return before them): it gets a leading apostrophe, as OWASP's CSV
#: injection guidance says. Parquet files keep every text exactly.
FORMULA_START = "=+-@\t\r"
_FORMULA_RE = "^[=+@\t\r-]"


def _formula_safe(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> str:
    """``sql`` with every text column's formula-like values prefixed by ``'`` (see :data:`FORMULA_START`).

    Example: ``=HYPERLINK("http://evil.example/","x")`` is written as ``'=HYPERLINK(...)``.
    """
    described = con.execute(f"SELECT * FROM ({sql}) LIMIT 0", params).description or []
    texts = [str(name) for name, kind, *_ in described if str(kind) == "VARCHAR"]
    if not texts:
        return sql
    safe = ", ".join(f"CASE WHEN regexp_matches(\"{c}\", '{_FORMULA_RE}') THEN '''' || \"{c}\" ELSE \"{c}\" END "
                     f"AS \"{c}\"" for c in texts)
    return f"SELECT * REPLACE ({safe}) FROM ({sql})"


_OWNER = ".tgspread-export-pid"    # in a staging folder: the process writing it


def _staging(out: Path) -> Path:
    """A new hidden folder beside ``out`` to write into (moved into place at the end), after removing the ones a
    killed export left (its process is gone); an ``out`` that cannot be written is a one-line ExportError."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for old in out.parent.glob(f".{out.name}.*"):
            owner = old / _OWNER
            if old.is_dir() and owner.is_file() and not _alive(owner.read_text().strip()):
                shutil.rmtree(old, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        (staging / _OWNER).write_text(str(os.getpid()))
    except OSError as exc:
        raise ExportError(f"{out}: cannot write the export there ({exc.strerror or exc}); name a folder you may "
                          "write with --out") from None
    return staging


def check_destination(out: Path) -> None:
    """Refuse (ExportError) an ``--out`` that cannot be written, before anything else is done (the first export
    also writes the archive's pseudonym key; a refused destination must not change the archive)."""
    out = out.resolve() if out.is_symlink() else out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty directory; name a new directory with --out")
    probe = _staging(out)
    (probe / _OWNER).unlink()
    probe.rmdir()


def _alive(pid: str) -> bool:
    """Whether the process ``pid`` (text from a staging folder) still runs; a garbled pid counts as gone."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's process: alive
        return True
    return True


def export_archive(archive: Archive, out: Path, *, fmt: str = "parquet", tables: Sequence[str] | None = None,
                   since: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Write the archive's ``tables`` (default: all exportable ones) under ``out``; returns the manifest.

    ``out`` must not exist or be empty; the files are written beside it first and moved into place at the
    end, so a failed export leaves nothing half-written. The archive needs its pseudonym key
    (:func:`ensure_pseudonym_key`); an archive without one is refused.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format takes {' or '.join(FORMATS)}, not {fmt!r}")
    out = out.resolve() if out.is_symlink() else out      # a link to an empty folder: export into that folder
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty directory; name a new directory with --out")
    con = archive.con
    all_columns = _columns(con)
    wanted = select_tables(con, tables)
    row = con.execute("SELECT key FROM pseudonym_keys WHERE name = ?", [PSEUDONYM_KEY]).fetchone()
    if row is None:
        raise ExportError(f"{archive.path} has no pseudonym key yet; run `tgspread export` (it creates one)")
    key = bytes(row[0])
    con = con.cursor()     # its own connection: the function below lives on it only
    con.create_function(_UDF, lambda value: pseudonym(key, "name:" + value), [duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("VARCHAR"), side_effects=False)
    staging = _staging(out)
    try:
        params: dict[str, Any] = {"since": since} if since is not None else {}
        listed: dict[str, Any] = {}
        for table in wanted:
            columns = all_columns[table]
            sql, changed = _select(table, columns, since)
            table_params = params if "$since" in sql else {}
            if _partitioned(columns):
                counts = con.execute(f"SELECT channel_id, count(*) FROM ({sql}) GROUP BY 1 ORDER BY 1",
                                     table_params).fetchall()
                rows = sum(int(n) for _, n in counts)
            else:
                count_row = con.execute(f"SELECT count(*) FROM ({sql})", table_params).fetchone()
                rows = int(count_row[0]) if count_row else 0
            partition = _partitioned(columns) and rows > 0
            if partition:
                ranged, _ = _select(table, columns, since, ranged=True)
                for first, last in runs_of(((int(c), int(n)) for c, n in counts), EXPORT_RUN_ROWS,
                                           max_channels=EXPORT_RUN_CHANNELS):
                    _copy(con, ranged, staging / table, fmt, True, {**table_params, "first": first, "last": last})
            else:
                _copy(con, sql, staging / table, fmt, False, table_params)
            listed[table] = {
                "rows": rows,
                "files": f"{table}/**/*.{fmt}",
                "partitioned_by": ["channel_id"] if partition else [],
                "pseudonymised": changed,
                "dropped": [c for c, _ in columns if c in DROPPED_COLUMNS],
            }
        report = verify_archive(archive.con)
        verified = report_as_json(report)
        manifest = {
            "tgspread_version": __version__,
            "schema_version": archive.schema_version,
            "exported_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
            "format": fmt,
            "since": since.astimezone(UTC).isoformat() if since is not None else None,
            "tables": listed,
            "pseudonyms": {"key": PSEUDONYM_KEY, "scheme": "HMAC-SHA256(key, 'name:' + value), first 16 hex digits",
                           "fields": [f"{t}.{c} when {cond}" for (t, c), cond in PERSON_FIELDS.items()]},
            "verify": {k: verified[k] for k in ("clean", "errors", "warnings", "digest_version", "archive_digest")}
                      | {"channels": {str(d.channel_id): d.sha256 for d in report.digests}},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        (staging / _OWNER).unlink()
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        con.close()
    return manifest
