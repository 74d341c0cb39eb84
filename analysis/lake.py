"""Reading a lake: the archive's tables as views over Parquet files, no copy and no lock.

A lake (``docs/lake.md``) is what ``tgspread publish`` writes: ``<lake>/<table>/slot=NN/month=YYYY-MM/
<collector>.parquet`` for post-level tables, ``<lake>/<table>/slot=NN/<collector>.parquet`` for the others (rows
without a channel id in slot 0), and ``<lake>/_manifests/<collector>.json`` per collector. Files of the layout
before slots for every table (``<lake>/<table>/<collector>.parquet``, until the collector's next publish) are
read too, as slot 0. :func:`connect_lake` returns an in-memory DuckDB connection whose views have the archive's table
names (plus the partition columns ``slot`` and ``month``, which a filter can use to skip files):

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
- files are not opened before a query needs them: a damaged file (:func:`unreadable_files`) fails the queries that
  read it, with DuckDB's error naming the file (``<collector>.parquet``: that collector republishes it);
- DuckDB works within :data:`MEMORY_LIMIT` and spills to a temporary directory beyond it, so a notebook on a
  lake of 100M posts stays within a few GB (``SET memory_limit = '8GB'`` on the connection to give it more).

Example::

    con = analysis.connect("lake")              # a directory: the lake
    analysis.cascades(con)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tempfile
import warnings
from collections.abc import Collection, Iterable
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
#: The column that says which copy of a row is newest, where a table has one.
_NEWEST = "last_seen_at"
_TABLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")   # a directory that names a table (never _staging, _manifests)
_COLLECTOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")   # a name publish accepts (collector._config's)
_GLOB = re.compile(r"[\[\]*?]")
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


def read_manifests(lake: Path) -> tuple[dict[str, dict[str, object]], dict[Path, str]]:
    """The manifests of ``lake``: (collector -> manifest, for every readable one; path -> why, for every one that
    cannot be read: not JSON, empty, or not the manifest of the collector its file name says).

    A collector's files are named after it, so they are found without its manifest; its next ``tgspread publish``
    (a full one: it cannot read what it published before) writes the manifest again.
    """
    found: dict[str, dict[str, object]] = {}
    bad: dict[Path, str] = {}
    for path in sorted((lake / "_manifests").glob("*.json")):
        if not _COLLECTOR.match(path.stem):      # never a glob pattern or a path from a file name
            bad[path] = "its name is no collector name (letters, digits, '-' and '_', at most 64)"
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


def unreadable_files(lake: Path, tables: Iterable[str] | None = None, *, collector: str | None = None,
                     deep: bool = False) -> dict[Path, str]:
    """The Parquet files of ``lake`` (of every table, or of ``tables``; of every collector, or of ``collector``)
    that cannot be read: path -> why (an empty or truncated file, not Parquet at all).

    It reads each file's footer, a fraction of a millisecond; ``deep`` reads every row too, to find damage behind
    an intact footer (as long as a query over the files). A file ``<table>/.../<collector>.parquet`` is that
    collector's: its ``tgspread publish --full`` rewrites it.
    """
    names = (sorted(p.name for p in lake.iterdir() if p.is_dir() and _TABLE.match(p.name)) if tables is None
             else list(tables))
    out: dict[Path, str] = {}
    con = duckdb.connect() if deep else None
    try:
        for table in names:
            for path in sorted((lake / table).rglob("*.parquet" if collector is None else f"{collector}.parquet")):
                problem = _unreadable(path, con)
                if problem is not None:
                    out[path] = problem
    finally:
        if con is not None:
            con.close()
    return out


def _unreadable(path: Path, con: duckdb.DuckDBPyConnection | None) -> str | None:
    """Why ``path`` cannot be read (its footer; with ``con``, every row), or None."""
    import pyarrow as pa  # here: opening a lake (analysis.connect) does not need it
    import pyarrow.parquet as pq

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:         # the footer's length, from the file's last 8 bytes, before reading it
            fh.seek(max(size - 8, 0))
            tail = fh.read(8)
        if len(tail) == 8 and tail[4:] == b"PAR1":
            claimed = int.from_bytes(tail[:4], "little")
            if claimed > min(_FOOTER_BYTES, size - 12):
                return f"its footer claims {claimed:,} bytes (the file has {size:,}); not Parquet a publish wrote"
        pq.read_metadata(path)
        if con is not None:    # hash(t): every column of every row, which a count(*) would not decode
            con.execute("SELECT sum(hash(t)) FROM read_parquet(?) t", [str(path)]).fetchall()
    except FileNotFoundError:
        return None            # removed meanwhile (a full publish drops partitions without rows)
    except (OSError, ValueError, pa.ArrowException) as exc:
        return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.InterruptException | duckdb.OutOfMemoryException):
            raise
        return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    return None


def _mixed_schemas(manifests: dict[str, dict[str, object]]) -> bool:
    """Whether files of different schema versions may be in the lake: collectors at different versions, or one
    whose rewrite after a migration has not finished (killed). Only then do the views read files by column name
    (``union_by_name``), which costs every query a look at every file's schema."""
    versions = {m.get("schema_version") for m in manifests.values()}
    return len(versions) > 1 or any(m.get("rewriting") for m in manifests.values())


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _layout(root: Path, table: str) -> str:
    known = LAKE_SCHEMA.get(table)
    if known is not None:
        return known[0]
    base = root / table
    first = next(base.glob("slot=*"), None)
    if first is None:
        return "flat"
    return "post" if next(first.glob("month=*"), None) is not None else "slot"


def _patterns(root: Path, table: str, layout: str, collector: str) -> tuple[str, str] | None:
    """The glob of a collector's files of ``table`` and their layout, or None when it has none now. A table of
    slot layout whose files are still one ``<collector>.parquet`` (a lake published before every table had
    slots) is read from that file (layout ``flat``)."""
    pattern = {"post": f"slot=*/month=*/{collector}.parquet", "slot": f"slot=*/{collector}.parquet",
               "flat": f"{collector}.parquet"}[layout]
    if next((root / table).glob(pattern), None) is not None:
        return str(root / table / pattern), layout
    if layout == "slot" and (root / table / f"{collector}.parquet").is_file():
        return str(root / table / f"{collector}.parquet"), "flat"
    return None


def _empty_view(table: str) -> str:
    columns = ", ".join(f"NULL::{ty} AS \"{name}\"" for name, ty in LAKE_SCHEMA[table][1])
    return f"SELECT {columns} WHERE false"


def _files_view(table: str, layout: str, found: list[tuple[str, str]], union: bool) -> str:
    legacy = [g for g, kind in found if kind != layout]
    globs = [g for g, kind in found if kind == layout]
    listing = "[" + ", ".join(_quote(g) for g in globs) + "]"
    options = _HIVE[layout] + (", union_by_name = true" if union else "")
    if len(found) == 1 and not legacy:
        return f"SELECT * FROM read_parquet({listing}, {options})"
    source = f"read_parquet({listing}, {options}, filename = true)"
    if legacy:    # a collector's one file of the old layout, read as slot 0 beside the others' slot files
        old = ("SELECT *, 0::INTEGER AS slot FROM read_parquet([" + ", ".join(_quote(g) for g in legacy)
               + "], hive_partitioning = false, filename = true" + (", union_by_name = true" if union else "") + ")")
        source = f"({old}{f' UNION ALL BY NAME SELECT * FROM {source}' if globs else ''})"
    key = NATURAL_KEYS.get(table)
    if key is None:
        return f"SELECT DISTINCT * EXCLUDE (filename) FROM {source}"
    columns = {name for name, _ in LAKE_SCHEMA.get(table, ("", ()))[1]}
    partition = ", ".join([*(["slot"] if layout != "flat" else []), *key])
    newest = f"{_NEWEST} DESC NULLS LAST, " if _NEWEST in columns else ""
    if _NEWEST in columns and "deleted_at" in columns:   # a deletion seen is the newest observation of a post
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
    (``[ ] * ?``); warns (``UserWarning``) for each manifest it cannot read.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"no lake at {root}: run `tgspread publish --lake {root}` first")
    if _GLOB.search(str(root.resolve())):     # the views glob under the root, and DuckDB reads these as a pattern
        raise ValueError(f"the lake's path {str(root)!r} holds one of [ ] * ?, which DuckDB reads as a file pattern: "
                         "rename the folder, or open it through a symbolic link whose path has none")
    if not (root / "_manifests").is_dir():
        raise FileNotFoundError(f"no lake at {root}: the folder has no _manifests/ (nothing was published there); "
                                f"make one with `tgspread publish --lake {root}`")
    manifests, unreadable = read_manifests(root)
    for bad, why in unreadable.items():
        # the path as a literal: a file name is hostile data (escape sequences, newlines)
        then = (f"the files of collector {bad.stem!r} are read all the same; its next `tgspread publish` (or "
                "`tgspread publish --full`) writes the manifest again") if _COLLECTOR.match(bad.stem) else \
            "it is left out; remove it"
        warnings.warn(f"unreadable manifest {str(bad)!r}: {why}; {then}", UserWarning, stacklevel=2)
    unnamed = [p.stem for p in unreadable if _COLLECTOR.match(p.stem)]   # never a glob pattern from a file name
    names = [*manifests, *unnamed] if collectors is None else list(collectors)
    union = _mixed_schemas(manifests) or bool(unreadable)
    config = {} if memory_limit is None else {"memory_limit": memory_limit}
    spill = Path(tempfile.gettempdir()) / f"{SPILL_DIR}-{os.getpid()}-{next(_spills)}"
    con = duckdb.connect(":memory:", config={**CONFIG, **config, "temp_directory": str(spill)})
    con.execute("SET TimeZone = 'UTC'")
    tables = set(LAKE_SCHEMA) | {p.name for p in root.iterdir() if p.is_dir() and _TABLE.match(p.name)}
    for table in sorted(tables):
        layout = _layout(root, table)
        found = [g for g in (_patterns(root, table, layout, c) for c in names) if g is not None]
        if found:
            sql = _files_view(table, layout, found, union)
        elif table in LAKE_SCHEMA:
            sql = _empty_view(table)
        else:
            continue
        try:
            con.execute(f'CREATE VIEW "{table}" AS {sql}')
        except duckdb.InvalidInputException as exc:     # the first file, whose columns the view takes, is damaged
            con.close()
            raise _damaged(root, table, exc) from exc
    return con


def _damaged(root: Path, table: str, exc: duckdb.Error) -> duckdb.Error:
    """``exc`` (a view that cannot read a file), saying which files of ``table`` cannot be read and what to do."""
    bad = unreadable_files(root, [table])
    named = "; ".join(f"{path} ({why}): collector {path.stem!r} rewrites it with `tgspread publish --full`"
                      for path, why in bad.items())
    return type(exc)(f"{' '.join(str(exc).split())} -- the lake's {table} cannot be read. "
                     + (f"Damaged: {named}" if named else "`tgspread shards` names the damaged file"))


#: ``channels.status`` of channels no collector collects (groups, private or deleted channels), as SQL.
_UNCOLLECTABLE = "('group', 'private', 'gone')"


def slot_usage(lake: Path, *, skip: Collection[Path] = ()) -> dict[int, tuple[int, int, set[str]]]:
    """Per slot of ``lake``: (channels, posts of the lake's last 30 days, collectors whose files hold it).

    What ``tgspread shards`` shows and plans from; reads only the ``channels`` and ``posts`` files, but those in
    ``skip`` (:func:`unreadable_files`). Channels are the public ones (groups, private and deleted channels a
    collector recorded are left out).
    """
    out: dict[int, tuple[int, int, set[str]]] = {}
    con = duckdb.connect()
    try:
        chans = _without(sorted((lake / "channels").glob("slot=*/*.parquet")), skip)
        if chans:
            listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in chans) + "]"
            # a group, private or deleted channel met in a slot (recorded as such, never handed on) is no channel
            # of it: nobody collects it (collector._archive.lake_handoff.NOT_HANDED_ON)
            rows = con.execute(
                f"SELECT {slot_sql('channel_id')} AS s, count(DISTINCT channel_id), "
                f"list(DISTINCT regexp_extract(filename, '([^/]+)\\.parquet$', 1)) "
                f"FROM read_parquet({listing}, filename = true, hive_partitioning = false, union_by_name = true) "
                f"WHERE status IS NULL OR status NOT IN {_UNCOLLECTABLE} GROUP BY s").fetchall()
            for s, n, names in rows:
                out[int(s)] = (int(n), 0, set(names))
        posts = _without(sorted((lake / "posts").glob("slot=*/month=*/*.parquet")), skip)
        if posts:
            listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in posts) + "]"
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
    requests, channels = (_without(_small_table_files(lake / table), skip)
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


def _small_table_files(base: Path) -> list[Path]:
    """A slot-partitioned table's files (``slot=NN/<collector>.parquet``), and those of a lake published before
    every table had a slot (``<collector>.parquet``)."""
    return sorted([*base.glob("slot=*/*.parquet"), *base.glob("*.parquet")])


def handed_on(lake: Path, *, skip: Collection[Path] = ()) -> list[tuple[int, str | None, str, bool]]:
    """Channels collectors met in other collectors' slots and handed on (the lake's ``candidates``):
    (channel id, username, the collector that found it first, whether any collector has published posts of it
    since), by channel id. Files in ``skip`` (:func:`unreadable_files`) are left out."""
    found = _without(_small_table_files(lake / "candidates"), skip)
    if not found:
        return []
    posts = _without(sorted((lake / "posts").glob("slot=*/month=*/*.parquet")), skip)
    name = "regexp_extract(filename, '([^/]+)\\.parquet$', 1)"
    collected = (f"channel_id IN (SELECT DISTINCT channel_id FROM read_parquet({_listing(posts)}, "
                 "hive_partitioning = false))") if posts else "false"
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT channel_id, any_value(username), arg_min({name}, first_found_at), bool_or({collected}) "
            f"FROM read_parquet({_listing(found)}, filename = true, hive_partitioning = false, union_by_name = true) "
            "GROUP BY channel_id ORDER BY channel_id").fetchall()
    finally:
        con.close()
    return [(int(c), u, str(f), bool(done)) for c, u, f, done in rows]
