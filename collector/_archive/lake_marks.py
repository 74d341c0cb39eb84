"""Recording which lake partitions a write touched, inside the write's own transaction.

Every code path that writes a post-level table calls :func:`mark_posts` in the same transaction as the write:
``Archive.write_posts`` (collected posts, observations, versions, deletions), ``archive.upsert.upsert_posts``
(web previews, Desktop exports), ``archive.upsert.resolve_forward_usernames`` and ``comments`` (comments of a
post). The publish step (:mod:`collector._archive.lake`) rewrites exactly the partitions recorded in ``lake_dirty``
(migration 0008) and clears them once their files are in place. A post's observations, versions and comments
live in the partition of the post itself (the post's slot and the UTC month of its ``posted_at``), so a
post's rows are always published together.

Example (inside a transaction, with ``_batch`` a relation holding channel_id and message_id)::

    mark_posts(con, "_batch", ("posts", "post_observations"))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb
import pyarrow as pa

from .slots import month_sql, slot_sql

#: The lake tables partitioned by slot and month; their rows belong to one post each.
POST_LEVEL = ("posts", "post_observations", "post_versions", "post_comments")


def table_names(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The tables of the database on ``con``, in its main schema (``duckdb_tables()``: half the cost of
    ``information_schema.tables``)."""
    return frozenset(str(r[0]) for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall())


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the database on ``con`` has table ``name`` in its main schema (:func:`table_names`)."""
    return name in table_names(con)


def has_marks(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the archive has ``lake_dirty`` (migration 0008 or later)."""
    return table_exists(con, "lake_dirty")


def mark_posts(con: duckdb.DuckDBPyConnection, relation: str, tables: Iterable[str], *,
               posted_at: str | None = None, checked: bool = False, arrow: pa.Table | None = None) -> None:
    """Record the partitions of ``tables`` holding the posts named by ``relation`` as changed.

    ``relation`` is anything a FROM clause takes with ``channel_id`` and ``message_id`` columns (a registered
    batch, a subquery). The month comes from the archived post (``posts.posted_at``), or, when the caller names
    the relation's own column ``posted_at`` (a batch of posts carries it), from that column without a join.
    ``checked=True`` first checks the table exists (connections of callers that may predate migration 0008).
    ``arrow``: a table to read as ``relation`` (registered for the statement only).
    Runs inside the caller's transaction; an empty relation records nothing.
    """
    names = [t for t in dict.fromkeys(tables) if t in POST_LEVEL]
    if not names or (checked and not has_marks(con)):
        return
    if posted_at is not None:
        source = f"SELECT channel_id, {posted_at} AS posted_at FROM {relation}"
    else:
        source = (f"SELECT r.channel_id, p.posted_at FROM (SELECT DISTINCT channel_id, message_id FROM {relation}) r "
                  "LEFT JOIN posts p ON p.channel_id = r.channel_id AND p.message_id = r.message_id")
    values = ", ".join(f"('{t}')" for t in names)
    if arrow is not None:
        con.register(relation, arrow)
    try:
        _insert_marks(con, source, values)
    finally:
        if arrow is not None:
            con.unregister(relation)


def _insert_marks(con: duckdb.DuckDBPyConnection, source: str, values: str) -> None:
    con.execute(
        "INSERT INTO lake_dirty (table_name, slot, month, seq) "
        "SELECT t.name, k.slot, k.month, nextval('lake_dirty_seq') FROM "
        f"(SELECT DISTINCT {slot_sql('channel_id')} AS slot, {month_sql('posted_at')} AS month FROM ({source})) k "
        f"CROSS JOIN (VALUES {values}) t(name) "
        "ON CONFLICT (table_name, slot, month) DO UPDATE SET seq = excluded.seq"
    )


def mark_batch(con: duckdb.DuckDBPyConnection, batch: pa.Table | None, deleted: Sequence[tuple[int, int]] = (),
               *, versions: bool = False, observations: bool = True, checked: bool = False) -> None:
    """:func:`mark_posts` for one ``Archive.write_posts`` batch: its posts (with observations, and versions when
    ``versions``) by the batch's own ``posted_at``, and the ``deleted`` (channel_id, message_id) pairs."""
    if checked and not has_marks(con):
        return
    if batch is not None and batch.num_rows:
        keys = batch.select(["channel_id", "message_id", "posted_at"])
        tables = ("posts", *(("post_observations",) if observations else ()), *(("post_versions",) if versions else ()))
        mark_posts(con, "__tgs_lake_batch", tables, posted_at="posted_at", arrow=keys)
    if deleted:
        gone = pa.table({"channel_id": [k[0] for k in deleted], "message_id": [k[1] for k in deleted]},
                        schema=pa.schema([("channel_id", pa.int64()), ("message_id", pa.int64())]))
        mark_posts(con, "__tgs_lake_batch", ("posts",), arrow=gone)


def group_flags(con: duckdb.DuckDBPyConnection, channel_ids: Iterable[int]) -> dict[int, bool]:
    """``channels.megagroup`` of each archived channel of ``channel_ids`` (unknown: False): read before a write that
    may change it, for :func:`mark_group_changes`."""
    ids = [int(c) for c in channel_ids]
    if not ids:
        return {}
    return {int(c): bool(g) for c, g in con.execute(
        "SELECT channel_id, coalesce(megagroup, false) FROM channels "
        "WHERE channel_id IN (SELECT unnest($ids::BIGINT[]))", {"ids": ids}).fetchall()}


def mark_group_changes(con: duckdb.DuckDBPyConnection, before: dict[int, bool], channel_ids: Iterable[int]) -> None:
    """Mark every ``posts`` partition of the channels whose ``megagroup`` a write changed (``before``: their
    :func:`group_flags` before it). Whether ``post_author`` is a person's, to be pseudonymised where the rows leave
    the archive, follows that flag (``export.PERSON_FIELDS``): published files of such a channel must be written
    again, or a group's authors would stay in the lake by name."""
    after = group_flags(con, channel_ids)
    changed = sorted(c for c, flag in after.items() if flag != before.get(c, False))
    if changed:
        mark_posts(con, f"(SELECT channel_id, message_id FROM posts WHERE channel_id IN "
                        f"({', '.join(str(c) for c in changed)}))", ("posts",), checked=True)


def one_post(channel_id: int, message_id: int) -> str:
    """A relation naming one post, for :func:`mark_posts`."""
    return f"(SELECT {int(channel_id)}::BIGINT AS channel_id, {int(message_id)}::BIGINT AS message_id)"


# -- which lake took the marks (migration 0013) -------------------------------------------------------------
def _has_publishes(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, "lake_publishes")


def marks_cleared(con: duckdb.DuckDBPyConnection) -> int | None:
    """The highest change mark any publish of this archive has cleared (None: none recorded, as before 0013)."""
    if not _has_publishes(con):
        return None
    row = con.execute("SELECT max(marks_through) FROM lake_publishes").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def marks_taken_elsewhere(con: duckdb.DuckDBPyConnection, taken: object) -> bool:
    """True when publishes of this archive cleared change marks that a lake has not taken: its manifest's
    ``marks_through`` (``taken``) differs from the highest cleared, or it has none while some were cleared. Below
    it, the marks no longer list everything that lake lacks (another lake's publish took them); above it, the lake
    holds changes the archive does not record (an archive restored from a backup); either way only a full publish
    brings it up to date. The lake's own manifest says how far it got, so a lake moved or copied with its archive
    stays incremental. False when nothing is recorded yet (an archive publishing as before migration 0013).

    >>> con = duckdb.connect()
    >>> marks_taken_elsewhere(con, None)          # no table: nothing known
    False
    """
    cleared = marks_cleared(con)
    if cleared is None:
        return False
    return not isinstance(taken, int) or taken != cleared


def clear_marks(con: duckdb.DuckDBPyConnection, top: int, through: int, lake: str, collector: str,
                now: object) -> None:
    """After a publish to ``lake`` as ``collector`` that read the marks up to ``top``: delete those marks and record
    that this lake has taken every mark cleared so far (``through``), in one transaction. A mark made since stays."""
    con.begin()
    try:
        if has_marks(con):
            con.execute("DELETE FROM lake_dirty WHERE seq <= ?", [top])
        if _has_publishes(con):
            con.execute("INSERT OR REPLACE INTO lake_publishes (lake, collector, marks_through, published_at) "
                        "VALUES (?, ?, ?, ?)", [lake, collector, through, now])
        con.commit()
    except BaseException:
        con.rollback()
        raise
