"""Writing rows from the web preview and the Desktop export into the archive, with the merge rules.

Every write goes through Arrow (a registered ``pyarrow.Table``) and ``INSERT ... ON CONFLICT DO UPDATE``;
callers wrap a batch in :func:`transaction`. Functions take an ``Archive`` (anything with ``.con`` and,
optionally, ``.transaction()``) or a bare DuckDB connection.

Merge rules (one place, here):

* Sources rank ``api`` > ``export`` > ``web``. For a post already archived, a row from a source of the
  same or a higher rank wins column by column where it has a value (``COALESCE(new, old)``); a row from
  a lower rank only fills columns that are empty (``COALESCE(old, new)``): an export over API data
  fills gaps only, and never the API's counters, reactions or forward header (the API is authoritative
  for them: its empty answer means "none"). A web row leaves an API post untouched (the preview has
  nothing the API lacks).
* Each group of fields records which route gave it and when (``<group>_source``, ``<group>_seen_at``:
  :mod:`collector._archive.provenance`).
* Views travel as a group (``views``, ``views_label``, ``views_low``, ``views_high``): taken whole from
  the winning row, or from the other one when the winner has no views at all.
* A text replaced by a same-source row, or by a higher-ranked one that differs beyond whitespace, is
  kept in ``post_versions`` first.
* ``first_seen_at`` keeps the earliest; a web row moves ``last_seen_at`` (the page was seen now); an
  export row never does, so re-importing a file changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collector._parse.channel_ref import storable_username

from . import provenance
from .archive import transaction as _transaction
from .lake_marks import group_flags, has_marks, mark_batch, mark_group_changes, mark_posts
from .post_writes import execute_posts
from .rows import PROVENANCE_COLUMNS, channels_columns, posts_columns

_RANK_SQL = "CASE {src} WHEN 'api' THEN 3 WHEN 'export' THEN 2 WHEN 'web' THEN 1 ELSE 0 END"
# The new post row is an earlier state than the archived one: its edit (or, unedited, its post) time is older.
_STALE = "(coalesce({new}.edited_at, {new}.posted_at) < coalesce({old}.edited_at, {old}.posted_at) IS TRUE)"


#: What web previews and Desktop exports write (``upsert_posts``): table ``posts`` without what only the API
#: gives (and ``deleted_at``, which only a collection pass sets).
POST_SCHEMA = posts_columns(exclude=(
    "via_bot_id", "replies_channel_id", "media_id", "restriction_reason", "factcheck", "noforwards", "pinned",
    "ttl_period", "tl_layer", "telethon_version", "deleted_at", *PROVENANCE_COLUMNS,
))

#: What web previews write (``upsert_channels``): table ``channels`` without what only the API gives.
CHANNEL_SCHEMA = channels_columns(exclude=(
    "access_hash", "created_at", "linked_chat_id", "available_min_id", "verified", "scam", "fake", "restricted",
    "restriction_reason", "status", "status_at", "last_snapshot_at", "raw",
))

_POST_KEY = ("channel_id", "message_id")
_POST_VIEWS = ("views", "views_label", "views_low", "views_high")
_CHANNEL_COUNT = ("participants_count", "participants_label")


class _HasCon(Protocol):
    con: duckdb.DuckDBPyConnection


Target = _HasCon | duckdb.DuckDBPyConnection


def connection_of(target: Any) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection of an ``Archive`` or the connection itself."""
    con = getattr(target, "con", target)
    if not isinstance(con, duckdb.DuckDBPyConnection):
        raise TypeError(f"expected an Archive or a duckdb connection, got {type(target).__name__}")
    return con


def transaction(target: Any) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """One transaction on an ``Archive`` or a bare connection (:func:`collector._archive.archive.transaction`)."""
    return _transaction(connection_of(target))


# What a bulk import may add to the memory DuckDB already uses. An uncommitted transaction keeps the rows
# it wrote in memory (~500 bytes a post) unless the memory limit makes DuckDB write them out; with this
# headroom a 500,000-message import peaked at ~320 MB instead of ~1 GB, at the same speed (docs/sources.md).
IMPORT_MEMORY_HEADROOM = 48 * 2**20
_UNITS = {"b": 1, "bytes": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def size_bytes(text: str) -> float | None:
    """Bytes in a DuckDB size setting as it reads back (``'18.8 GiB'``); None when unreadable."""
    number, _, unit = text.strip().partition(" ")
    if not unit:
        digits = number.rstrip("BbKkMmGgTtIi")
        number, unit = digits, number[len(digits):] or "b"
    try:
        return float(number) * _UNITS[unit.lower()]
    except (ValueError, KeyError):
        return None


@contextmanager
def bulk_settings(target: Any, *, headroom: int = IMPORT_MEMORY_HEADROOM) -> Iterator[Callable[[], None]]:
    """DuckDB settings for a large import, restored on exit.

    ``preserve_insertion_order = false`` (a table with a key needs no order; DuckDB buffers less), a
    ``memory_limit`` of what DuckDB uses now plus ``headroom`` (never above the current limit), and one
    DuckDB thread (``threads = 1``): each statement is a few thousand rows, and the importer parses the
    next batch on another thread meanwhile; a second DuckDB thread only competed with it (~15% more CPU
    for the same import). A limit set by hand comes back as DuckDB reads it out (rounded to 0.1 of its
    unit); the default exactly.

    It yields a function that lifts the memory cap early: an import calls it just before its commit. The
    commit appends the transaction's rows to the table a block per column at a time (memory bounded by the
    table's width, not by the file) and needs more than the headroom for a wide table like posts: a first
    import of 100,000 messages failed its commit under it (one of 130,000 did not: DuckDB had already written
    a full row group of 122,880 rows out). The commit keeps the one DuckDB thread: with the default threads, a
    commit of rows that had spilled under the cap failed now and then on a loaded machine with DuckDB 2.0.1's
    "Corrupted uncompressed string segment"::

        with bulk_settings(archive) as lift_cap, transaction(archive):
            ...                                    # the writes, under the import's memory cap
            lift_cap()                   # the commit: twice the headroom (at most the archive's cap), one thread
    """
    con = connection_of(target)

    def setting(name: str) -> str:
        row = con.execute("SELECT current_setting(?)::VARCHAR", [name]).fetchone()
        return str(row[0]) if row else ""

    defaults = duckdb.connect()                    # an in-memory database has the defaults
    try:
        changed = {name: setting(name) for name in ("preserve_insertion_order", "memory_limit", "threads")}
        for name, original in list(changed.items()):
            row = defaults.execute("SELECT current_setting(?)::VARCHAR", [name]).fetchone()
            if row is not None and str(row[0]) == original:
                changed[name] = ""                     # the default: RESET restores it exactly
    finally:
        defaults.close()
    chosen = getattr(target, "memory_limit", None)
    if chosen and changed["memory_limit"]:
        changed["memory_limit"] = str(chosen)          # the Archive's own limit, exactly as it was set
    row = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchone()
    limit = int(row[0] if row else 0) + headroom
    current = size_bytes(setting("memory_limit"))
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET threads = 1")
    if current is None or limit < current:
        con.execute(f"SET memory_limit = '{limit}B'")

    def put_back(name: str) -> None:
        original = changed.pop(name)
        con.execute(f"SET {name} = '{original}'" if original else f"RESET {name}")

    def lift_cap() -> None:
        """Twice the headroom (never above the archive's own limit); threads and insertion order stay."""
        if "memory_limit" in changed and current is not None and limit + headroom < current:
            con.execute(f"SET memory_limit = '{limit + headroom}B'")
        elif "memory_limit" in changed:
            put_back("memory_limit")

    try:
        yield lift_cap
    finally:
        for name in list(changed):
            put_back(name)


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """What one batch did to ``posts``."""

    new: int = 0
    updated: int = 0
    versions: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(self.new + other.new, self.updated + other.updated, self.versions + other.versions)


def _merge_exprs(table: str, columns: Sequence[str], key: Sequence[str], group: Sequence[str],
                 keep_seen_for: str) -> dict[str, str]:
    """Column -> the SQL of its merged value (``EXCLUDED`` the new row, ``table`` the archived one).

    For posts, a row that is older than the archived one (an earlier edit: ``_STALE``) ranks below it
    whatever its source, so it only fills empty columns; an export's reactions are replaced only by a
    row of at least as many (exports carry no date of their own: the larger total is the later one).
    """
    pref = f"({_RANK_SQL.format(src='EXCLUDED.source')} >= {_RANK_SQL.format(src=f'{table}.source')})"
    if "edited_at" in columns:
        pref = f"({pref} AND NOT {_STALE.format(new='EXCLUDED', old=table)})"
    take_group = f"({pref} AND EXCLUDED.{group[0]} IS NOT NULL OR {table}.{group[0]} IS NULL)"
    take_reactions = (f"({table}.reactions IS NULL OR {pref} AND EXCLUDED.reactions IS NOT NULL AND "
                      f"(EXCLUDED.source <> 'export' OR {table}.source <> 'export' "
                      f"OR EXCLUDED.reactions >= {table}.reactions))")
    exprs: dict[str, str] = {}
    for col in columns:
        if col in key:
            continue
        if col == "source":
            exprs[col] = f"CASE WHEN {pref} THEN EXCLUDED.source ELSE {table}.source END"
        elif col == "first_seen_at":
            exprs[col] = f"LEAST({table}.first_seen_at, EXCLUDED.first_seen_at)"
        elif col == "last_seen_at":
            exprs[col] = (f"CASE WHEN EXCLUDED.source = '{keep_seen_for}' THEN "
                          f"GREATEST({table}.last_seen_at, EXCLUDED.last_seen_at) ELSE {table}.last_seen_at END")
        elif col in group:
            exprs[col] = f"CASE WHEN {take_group} THEN EXCLUDED.{col} ELSE {table}.{col} END"
        elif col in ("reactions", "reactions_by") and table != "channels":
            exprs[col] = f"CASE WHEN {take_reactions} THEN EXCLUDED.{col} ELSE {table}.{col} END"
        elif col == "canonical_urls":
            # always from the row whose `urls` won, so the two lists stay aligned
            exprs[col] = (f"CASE WHEN ({pref} AND EXCLUDED.urls IS NOT NULL) OR {table}.urls IS NULL "
                          f"THEN EXCLUDED.canonical_urls ELSE {table}.canonical_urls END")
        elif col == "raw":
            exprs[col] = f"CASE WHEN {pref} THEN COALESCE(EXCLUDED.raw, {table}.raw) ELSE {table}.raw END"
        else:
            exprs[col] = (f"CASE WHEN {pref} THEN COALESCE(EXCLUDED.{col}, {table}.{col}) "
                          f"ELSE COALESCE({table}.{col}, EXCLUDED.{col}) END")
    if "edited_at" in columns:      # posts
        # the API is authoritative for counters, reactions and the forward header: a lower-ranked row (an
        # export) fills none of them on a post the API wrote
        api_kept = f"({table}.source = 'api' AND NOT {pref})"
        for group in provenance.API_AUTHORITATIVE:
            for col in provenance.GROUPS[group]:
                if col in exprs:
                    exprs[col] = f"CASE WHEN {api_kept} THEN {table}.{col} ELSE {exprs[col]} END"
        # which route gave each group of fields, and when (provenance.py)
        replaces_reactions = (f"({pref} AND (EXCLUDED.source <> 'export' OR {table}.source <> 'export' "
                              f"OR EXCLUDED.reactions >= {table}.reactions))")
        fillable = {g: "TRUE" for g in provenance.GROUPS}
        fillable.update({g: f"NOT {api_kept}" for g in provenance.API_AUTHORITATIVE})
        exprs.update(provenance.merge_values("EXCLUDED", table, {
            "text": pref, "counters": pref, "reactions": replaces_reactions, "header": pref}, fillable))
    return exprs


def _merge_set(table: str, columns: Sequence[str], key: Sequence[str], group: Sequence[str],
               keep_seen_for: str) -> str:
    """The ``DO UPDATE SET`` list implementing the merge rules for ``table``."""
    exprs = _merge_exprs(table, columns, key, group, keep_seen_for)
    return ",\n    ".join(f"{col} = {expr}" for col, expr in exprs.items())


def _unchanged(columns: Sequence[str], key: Sequence[str], group: Sequence[str], keep_seen_for: str) -> str:
    """SQL true when merging batch row ``b`` into archived post ``p`` would change nothing.

    ``import_sha256`` does not count (it names the file that brought or last changed the row): a
    re-import, or a newer export over an older one, rewrites only the posts that differ, so the
    transaction's memory stays bounded by the batch, not by the archive.
    """
    exprs = _merge_exprs("p", columns, key, group, keep_seen_for)
    return " AND ".join(f"({expr.replace('EXCLUDED.', 'b.')}) IS NOT DISTINCT FROM p.{col}"
                        for col, expr in exprs.items() if col != "import_sha256" and col not in PROVENANCE_COLUMNS)


_POST_COLUMNS = tuple(POST_SCHEMA.names)
# The archived posts a batch can touch, read by the batch's id range: comparing whole rows with all of
# `posts` made DuckDB hold the archive's rows (an out-of-memory error on re-importing 100,000 messages).
_BATCH_RANGE = ("SELECT * FROM posts WHERE channel_id IN (SELECT channel_id FROM __tgs_batch) AND message_id BETWEEN "
                "(SELECT min(message_id) FROM __tgs_batch) AND (SELECT max(message_id) FROM __tgs_batch)")
# A new row records the provenance of each group it gives a value (provenance.insert_values).
_NEW_PROVENANCE = provenance.insert_values("b")
_INSERTED = ", ".join((*_POST_COLUMNS, *_NEW_PROVENANCE))
_SELECTED = ", ".join((*(f"b.{c}" for c in _POST_COLUMNS), *_NEW_PROVENANCE.values()))
_POST_UPSERT = (
    f"INSERT INTO posts ({_INSERTED})\nSELECT {_SELECTED} FROM __tgs_batch b\n"
    f"ON CONFLICT (channel_id, message_id) DO UPDATE SET\n    "
    f"{_merge_set('posts', _POST_COLUMNS, _POST_KEY, _POST_VIEWS, 'web')}"
)
# The archived rows of the batch that merging would leave as they are; a web row never touches an API row
# (the preview has nothing the API lacks). Such rows are left out of the batch before it is written.
_POST_UNCHANGED = (
    f"SELECT b.channel_id, b.message_id FROM __tgs_batch b JOIN ({_BATCH_RANGE}) p "
    "ON p.channel_id = b.channel_id AND p.message_id = b.message_id\n"
    f"WHERE b.source = 'web' AND p.source = 'api' OR ({_unchanged(_POST_COLUMNS, _POST_KEY, _POST_VIEWS, 'web')})"
)
# The fast path when no key of the batch is archived yet (a first import): no conflict handling at all.
_POST_INSERT = f"INSERT INTO posts ({_INSERTED}) SELECT {_SELECTED} FROM __tgs_batch b"
_POST_VERSIONS = f"""
INSERT INTO post_versions (channel_id, message_id, text, edited_at, observed_at)
SELECT p.channel_id, p.message_id, p.text, p.edited_at, $now
FROM posts p JOIN __tgs_batch b ON p.channel_id = b.channel_id AND p.message_id = b.message_id
WHERE b.text IS NOT NULL AND p.text IS NOT NULL AND p.text <> b.text
  AND {_RANK_SQL.format(src='b.source')} >= {_RANK_SQL.format(src='p.source')}
  AND NOT {_STALE.format(new='b', old='p')}
  AND (b.source = p.source
       OR regexp_replace(trim(p.text), '\\s+', ' ', 'g') <> regexp_replace(trim(b.text), '\\s+', ' ', 'g'))
ON CONFLICT DO NOTHING
"""
_POST_EXISTING = """
SELECT count(*) FROM __tgs_batch b
WHERE EXISTS (SELECT 1 FROM posts p WHERE p.channel_id = b.channel_id AND p.message_id = b.message_id)
"""
_WEB_OBSERVATIONS = """
INSERT INTO post_observations (channel_id, message_id, observed_at, views, source, views_label, views_low, views_high)
SELECT b.channel_id, b.message_id, $now, b.views, 'web', b.views_label, b.views_low, b.views_high
FROM __tgs_batch b JOIN posts p ON p.channel_id = b.channel_id AND p.message_id = b.message_id
WHERE b.source = 'web' AND p.source = 'web' AND b.views IS NOT NULL
ON CONFLICT DO NOTHING
"""


def _dedupe(rows: Sequence[dict[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    """The last row per key: one statement may not touch a key twice."""
    if len(key) == 2:
        a, b = key
        return list({(r[a], r[b]): r for r in rows}.values())
    (a,) = key
    return list({r[a]: r for r in rows}.values())


def upsert_posts(target: Any, rows: Sequence[dict[str, Any]] | pa.Table, *, now: datetime,
                 observe_web: bool = True, known_new: bool = False) -> UpsertCounts:
    """Merge post rows (dicts keyed by ``POST_SCHEMA`` names, missing keys = null) into ``posts``.

    Runs in the caller's transaction. Web rows of web posts also get a ``post_observations`` row
    (``source = 'web'``) when ``observe_web``. ``known_new``: the caller knows that no row's key is
    archived yet (ids above the channel's newest archived one), so the lookup of existing rows is skipped;
    a row that does exist then fails the statement (primary key) instead of being merged.
    """
    con = connection_of(target)
    if isinstance(rows, pa.Table):
        batch = rows
    else:
        if not rows:
            return UpsertCounts()
        batch = pa.Table.from_pylist(_dedupe(rows, _POST_KEY), schema=POST_SCHEMA)
    if batch.num_rows == 0:
        return UpsertCounts()
    # The statements name the local variable `__tgs_batch` (DuckDB's replacement scan finds it). Not
    # con.register(): a registered object stays referenced until the transaction ends, so a long import
    # would keep every batch in memory.
    __tgs_batch = batch
    n_existing = 0
    if not known_new:
        existing = con.execute(_POST_EXISTING).fetchone()
        n_existing = int(existing[0]) if existing else 0
    versions = 0
    if n_existing:
        before = _count(con, "post_versions")
        con.execute(_POST_VERSIONS, {"now": now})
        versions = _count(con, "post_versions") - before
    unchanged = 0
    if n_existing:
        same = con.execute(_POST_UNCHANGED).fetchall()
        unchanged = len(same)
        if unchanged:
            __tgs_batch = batch.filter(pc.invert(_keys_in(batch, same)))
    if __tgs_batch.num_rows:
        execute_posts(con, _POST_UPSERT if n_existing else _POST_INSERT, batch=__tgs_batch)
    __tgs_batch = batch
    if observe_web:
        con.execute(_WEB_OBSERVATIONS, {"now": now})
    # the lake partitions to publish
    mark_batch(con, batch, versions=bool(versions), observations=observe_web, checked=True)
    del __tgs_batch
    return UpsertCounts(new=batch.num_rows - n_existing, updated=n_existing - unchanged, versions=versions)


def _keys_in(batch: pa.Table, keys: Sequence[tuple[int, int]]) -> pa.ChunkedArray:
    """Which rows of ``batch`` have a (channel_id, message_id) among ``keys``."""
    if pc.count_distinct(batch["channel_id"]).as_py() == 1:         # one channel: the message ids name the rows
        return pc.is_in(batch["message_id"], value_set=pa.array([m for _, m in keys], pa.int64()))
    wanted = set(keys)
    return pa.chunked_array([pa.array([k in wanted for k in zip(batch["channel_id"].to_pylist(),
                                                                 batch["message_id"].to_pylist(), strict=True)])])


_CHANNEL_COLUMNS = tuple(CHANNEL_SCHEMA.names)
_CHANNEL_UPSERT = (
    f"INSERT INTO channels ({', '.join(_CHANNEL_COLUMNS)})\nSELECT {', '.join(_CHANNEL_COLUMNS)} FROM __tgs_ch\n"
    f"ON CONFLICT (channel_id) DO UPDATE SET\n    "
    f"{_merge_set('channels', _CHANNEL_COLUMNS, ('channel_id',), _CHANNEL_COUNT, 'web')}"
)
_CHANNEL_OBSERVATIONS = """
INSERT INTO channel_observations (channel_id, observed_at, participants_count, title, username, about,
                                  source, participants_label)
SELECT b.channel_id, $now, b.participants_count, b.title, b.username, b.about, 'web', b.participants_label
FROM __tgs_ch b JOIN channels c ON c.channel_id = b.channel_id
WHERE b.source = 'web' AND c.source = 'web'
ON CONFLICT DO NOTHING
"""


def upsert_channels(target: Any, rows: Sequence[dict[str, Any]], *, now: datetime) -> None:
    """Merge channel rows (``CHANNEL_SCHEMA`` names) into ``channels`` with the same rank rules as posts.

    A web header of a channel known only from the web also becomes a ``channel_observations`` row.
    """
    if not rows:
        return
    con = connection_of(target)
    rows = [{**r, "username": storable_username(r.get("username"))} for r in rows]   # never a hostile ".."
    ids = [int(r["channel_id"]) for r in rows]
    groups = group_flags(con, ids)
    con.register("__tgs_ch", pa.Table.from_pylist(_dedupe(rows, ("channel_id",)), schema=CHANNEL_SCHEMA))
    try:
        con.execute(_CHANNEL_UPSERT)
        con.execute(_CHANNEL_OBSERVATIONS, {"now": now})
    finally:
        con.unregister("__tgs_ch")
    mark_group_changes(con, groups, ids)        # a group's authors become pseudonyms in the lake too


def channel_ids_for_usernames(target: Any, usernames: Sequence[str]) -> dict[str, int]:
    """Lower-cased username -> channel id, for the usernames the archive knows (any table that names them)."""
    names = sorted({u.lower() for u in usernames if u})
    if not names:
        return {}
    con = connection_of(target)
    rows = con.execute(
        """
        SELECT name, any_value(channel_id) FROM (
            SELECT lower(username) AS name, channel_id FROM channel_usernames
            UNION ALL SELECT lower(username), channel_id FROM channels WHERE username IS NOT NULL
            UNION ALL SELECT lower(username), channel_id FROM peers WHERE username IS NOT NULL
        ) WHERE list_contains($names, name) GROUP BY name
        """,
        {"names": names},
    ).fetchall()
    return {str(name): int(cid) for name, cid in rows}


def known_channel(target: Any, channel_id: int) -> tuple[str | None, str | None] | None:
    """(username, source) of an archived channel, or None when the archive does not know the id."""
    row = connection_of(target).execute(
        "SELECT username, source FROM channels WHERE channel_id = ?", [channel_id]).fetchone()
    return (row[0], row[1]) if row else None


def channel_status(target: Any, channel_id: int) -> str | None:
    """The archived ``channels.status`` of a channel (``group``, ``private``, ``gone``, ...), or None (unknown, or
    none recorded)."""
    row = connection_of(target).execute("SELECT status FROM channels WHERE channel_id = ?", [channel_id]).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def max_message_id(target: Any, channel_id: int) -> int | None:
    """The newest archived message id of a channel (any source), or None."""
    row = connection_of(target).execute(
        "SELECT max(message_id) FROM posts WHERE channel_id = ?", [channel_id]).fetchone()
    return int(row[0]) if row and row[0] is not None else None


_FILLED = "_tgs_lake_filled"


def resolve_forward_usernames(target: Any) -> int:
    """Fill ``fwd_channel_id`` of rows that name their origin by username once the archive knows it.

    Returns the number of rows filled.
    """
    con = connection_of(target)
    before = _count(con, "posts", "fwd_username IS NOT NULL AND fwd_channel_id IS NULL")
    if before == 0:
        return 0
    if has_marks(con):     # the posts about to be filled in: their lake partitions change
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_FILLED} AS SELECT channel_id, message_id FROM posts "
                    "WHERE fwd_username IS NOT NULL AND fwd_channel_id IS NULL")
    # read from the username the same route gave (fwd_username): the header's provenance stays as it is
    execute_posts(
        con,
        """
        UPDATE posts SET fwd_channel_id = m.channel_id,
            header_source = posts.header_source, header_seen_at = posts.header_seen_at
        FROM (
            SELECT name, any_value(channel_id) AS channel_id FROM (
                SELECT lower(username) AS name, channel_id FROM channel_usernames
                UNION ALL SELECT lower(username), channel_id FROM channels WHERE username IS NOT NULL
                UNION ALL SELECT lower(username), channel_id FROM peers WHERE username IS NOT NULL
            ) GROUP BY name
        ) m
        WHERE posts.fwd_channel_id IS NULL AND posts.fwd_username IS NOT NULL
          AND lower(posts.fwd_username) = m.name
        """
    )
    after = _count(con, "posts", "fwd_username IS NOT NULL AND fwd_channel_id IS NULL")
    if after != before:
        mark_posts(con, _FILLED, ("posts",), checked=True)   # lake partitions to publish
    con.execute(f"DROP TABLE IF EXISTS {_FILLED}")
    return before - after


def add_versions(target: Any, channel_id: int, versions: Sequence[tuple[int, str, int | None]], *,
                 now: datetime) -> int:
    """Keep earlier texts of posts in ``post_versions``: (message id, text, edit time in Unix seconds or None).

    For texts a source gave twice in one batch (an export repeating an id): the one it replaced. A post
    that already has a version observed at ``now`` keeps it. Returns the rows added.
    """
    if not versions:
        return 0
    con = connection_of(target)
    before = _count(con, "post_versions")
    ids = [v[0] for v in versions]
    con.execute(
        "INSERT INTO post_versions (channel_id, message_id, text, edited_at, observed_at) "
        "SELECT $channel, v.id, v.text, to_timestamp(v.edited), $now "
        "FROM (SELECT unnest($ids) AS id, unnest($texts) AS text, unnest($edited::BIGINT[]) AS edited) v "
        "ON CONFLICT DO NOTHING",
        {"channel": channel_id, "ids": ids, "texts": [v[1] for v in versions],
         "edited": [v[2] for v in versions], "now": now})
    added = _count(con, "post_versions") - before
    if added:       # lake partitions to publish (the posts are written first: their months are known)
        keys = pa.table({"channel_id": pa.array([channel_id] * len(ids), pa.int64()),
                         "message_id": pa.array(ids, pa.int64())})
        mark_posts(con, "__tgs_versions", ("post_versions",), checked=True, arrow=keys)
    return added


def mark_pinned(target: Any, channel_id: int, message_ids: Sequence[int]) -> int:
    """Set ``pinned`` on the posts ``message_ids`` names where nothing set it yet; returns the posts marked.

    For an export's ``pin_message`` service messages: the post was pinned at some time.
    """
    if not message_ids:
        return 0
    con = connection_of(target)
    ids = sorted({int(m) for m in message_ids})
    changed = execute_posts(con, "UPDATE posts SET pinned = true WHERE channel_id = $channel AND pinned IS NULL "
                                 "AND list_contains($ids, message_id)", {"channel": channel_id, "ids": ids})
    if changed:   # lake partitions to publish (a superset: every archived post named)
        mark_posts(con, f"(SELECT channel_id, message_id FROM posts WHERE channel_id = {int(channel_id)} "
                        f"AND list_contains({ids}::BIGINT[], message_id))", ("posts",), checked=True)
    return changed


def import_recorded(target: Any, file_sha256: str) -> bool:
    """True when a file with this content was imported before."""
    row = connection_of(target).execute(
        "SELECT 1 FROM imports WHERE file_sha256 = ?", [file_sha256]).fetchone()
    return row is not None


def record_import(target: Any, *, file_sha256: str, path: str, root: str, imported_at: datetime,
                  chats: int, messages: int) -> None:
    """Remember an imported file (first import only)."""
    connection_of(target).execute(
        "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [file_sha256, path, root, imported_at, chats, messages],
    )


def pseudonym_key(target: Any, name: str, *, now: datetime, new: bytes | None = None) -> bytes:
    """The archive's secret HMAC key called ``name``, created (``new``, else 32 random bytes) on first use.

    ``stored_pseudonym_key`` reads it without creating it.
    """
    key = stored_pseudonym_key(target, name)
    if key is not None:
        return key
    con = connection_of(target)
    key = new if new is not None else os.urandom(32)
    con.execute("INSERT INTO pseudonym_keys VALUES (?, ?, ?)", [name, key, now])
    return key


def stored_pseudonym_key(target: Any, name: str) -> bytes | None:
    """The archive's HMAC key called ``name``, or None when it has none yet (nothing is written)."""
    row = connection_of(target).execute("SELECT key FROM pseudonym_keys WHERE name = ?", [name]).fetchone()
    return bytes(row[0]) if row is not None else None


def pseudonym(key: bytes, value: str) -> str:
    """A stable keyed pseudonym of a person-level id: HMAC-SHA256, first 16 hex digits.

    Without the key (kept in the archive) the id cannot be recovered or tested for.
    """
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def record_run(target: Any, *, started_at: datetime, finished_at: datetime, status: str,
               channels: Sequence[dict[str, Any]], error: str | None = None) -> int:
    """Write a ``runs`` row and its ``run_channels`` rows (keys: input, channel_id, outcome, error,
    new_posts, refreshed_posts); returns the run id."""
    con = connection_of(target)
    row = con.execute("SELECT nextval('run_id_seq')").fetchone()
    assert row is not None
    run_id = int(row[0])
    con.execute(
        "INSERT INTO runs (run_id, started_at, finished_at, status, tgspread_version, error) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [run_id, started_at, finished_at, status, _version(), error],
    )
    seen: set[str] = set()
    for ch in channels:
        if ch["input"] in seen:
            continue
        seen.add(ch["input"])
        con.execute(
            "INSERT INTO run_channels (run_id, input, channel_id, outcome, error, new_posts, refreshed_posts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [run_id, ch["input"], ch.get("channel_id"), ch["outcome"], ch.get("error"),
             ch.get("new_posts", 0), ch.get("refreshed_posts", 0)],
        )
    return run_id


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return "tgspread " + version("tgspread") + " (web)"
    except Exception:
        return "tgspread (web)"


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> int:
    row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
    return int(row[0]) if row else 0
