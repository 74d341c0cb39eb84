"""The comments tables: which posts are due for their comments, and the pages of comments fetched.

``post_comments`` holds the comments (authors pseudonymised before they get here), ``post_comment_cursors`` how far
each post was read. :mod:`collector._telegram.comments` fetches them from Telegram and asks these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from .archive import Archive
from .lake_marks import mark_posts, one_post

_TS = pa.timestamp("us", tz="UTC")
_LIST = pa.list_(pa.string())
COMMENT_SCHEMA = pa.schema([
    ("channel_id", pa.int64()), ("message_id", pa.int64()), ("discussion_id", pa.int64()),
    ("comment_id", pa.int64()), ("root_comment_id", pa.int64()), ("reply_to_comment_id", pa.int64()),
    ("posted_at", _TS), ("edited_at", _TS), ("text", pa.string()), ("author_kind", pa.string()),
    ("author_pseudonym", pa.string()), ("author_channel_id", pa.int64()), ("reactions", pa.int64()),
    ("reactions_by", pa.list_(pa.struct([("reaction", pa.string()), ("count", pa.int64())]))),
    ("hashtags", _LIST), ("urls", _LIST), ("domains", _LIST), ("media_type", pa.string()),
])
_UPDATED = ("edited_at", "text", "reactions", "reactions_by", "hashtags", "urls", "domains", "media_type",
            "root_comment_id", "reply_to_comment_id")


@dataclass(frozen=True)
class DuePost:
    """An archived post whose comments are to be fetched."""

    channel_id: int
    message_id: int
    access_hash: int
    discussion_id: int            # the linked discussion group named by the post's counter
    replies: int                  # the post's counter as archived
    max_comment_id: int           # newest comment archived (0: none yet)
    replies_seen: int             # the counter at the last fetch (0: never fetched)


def due_posts(archive: Archive, channel_ids: Sequence[int] | None = None, *,
              max_posts: int | None = None) -> list[DuePost]:
    """Live archived posts with comments whose counter grew since their last fetch, most grown first."""
    where = ""
    params: dict[str, Any] = {}
    if channel_ids is not None:
        where = "AND p.channel_id IN (SELECT unnest($ids::BIGINT[]))"
        params["ids"] = list(channel_ids)
    limit = f"LIMIT {int(max_posts)}" if max_posts is not None else ""
    rows = archive.con.execute(
        "SELECT p.channel_id, p.message_id, c.access_hash, p.replies_channel_id, p.replies, "
        "coalesce(k.max_comment_id, 0), coalesce(k.replies_seen, 0) "
        "FROM posts p JOIN channels c ON c.channel_id = p.channel_id "
        "LEFT JOIN post_comment_cursors k ON k.channel_id = p.channel_id AND k.message_id = p.message_id "
        "WHERE p.replies > 0 AND p.replies_channel_id IS NOT NULL AND p.deleted_at IS NULL "
        "AND c.access_hash IS NOT NULL AND coalesce(c.status, 'active') = 'active' "
        f"AND p.replies > coalesce(k.replies_seen, 0) {where} "
        f"ORDER BY p.replies - coalesce(k.replies_seen, 0) DESC, p.channel_id, p.message_id {limit}",
        params,
    ).fetchall()
    return [DuePost(*(int(v) for v in r)) for r in rows]


def write_page(archive: Archive, rows: list[dict[str, Any]], now: datetime, post: DuePost, *,
                discussion_id: int | None, position: int, replies_seen: int | None = None,
                count: int | None = None, error: str | None = None, update: bool = False) -> int:
    """Comments and the post's cursor in one transaction; returns how many comments were new.

    Comments already archived are left alone, unless ``update`` (a full re-listing): then their text, edit
    time, reactions and ``last_seen_at`` are refreshed and a ``deleted_at`` is cleared.
    """
    new = 0
    with archive.transaction() as con:
        if rows:
            table = pa.Table.from_pylist(rows, schema=COMMENT_SCHEMA)
            con.register("_comments", table)
            try:
                if update:
                    sets = ", ".join(f"{c} = c.{c}" for c in _UPDATED)
                    con.execute(f"UPDATE post_comments SET {sets}, last_seen_at = $now, deleted_at = NULL "
                                "FROM _comments c WHERE post_comments.discussion_id = c.discussion_id "
                                "AND post_comments.comment_id = c.comment_id", {"now": now})
                # an anti-join and a plain insert: about half the cost of INSERT ... ON CONFLICT here
                new = _scalar(con,
                    f"INSERT INTO post_comments ({', '.join(COMMENT_SCHEMA.names)}, first_seen_at, last_seen_at) "
                    "SELECT c.*, $now, $now FROM _comments c ANTI JOIN post_comments p "
                    "ON p.discussion_id = c.discussion_id AND p.comment_id = c.comment_id", {"now": now})
            finally:
                con.unregister("_comments")
            mark_posts(con, one_post(post.channel_id, post.message_id), ("post_comments",))   # lake partition
        con.execute(
            "INSERT INTO post_comment_cursors (channel_id, message_id, discussion_id, max_comment_id, replies_seen, "
            "comments_count, fetched_at, error) VALUES ($ch, $msg, $disc, $pos, coalesce($seen, $old_seen), $count, "
            "$now, $error) ON CONFLICT (channel_id, message_id) DO UPDATE SET "
            "discussion_id = coalesce(excluded.discussion_id, post_comment_cursors.discussion_id), "
            "max_comment_id = greatest(post_comment_cursors.max_comment_id, excluded.max_comment_id), "
            "replies_seen = coalesce($seen, post_comment_cursors.replies_seen), "
            "comments_count = coalesce(excluded.comments_count, post_comment_cursors.comments_count), "
            "fetched_at = excluded.fetched_at, error = excluded.error",
            {"ch": post.channel_id, "msg": post.message_id, "disc": discussion_id, "pos": position,
             "seen": replies_seen, "old_seen": post.replies_seen, "count": count, "now": now, "error": error},
        )
    return new


def live_count(archive: Archive, post: DuePost) -> int:
    """Comments of ``post`` archived and not seen deleted."""
    return _scalar(archive.con, "SELECT count(*) FROM post_comments WHERE channel_id = ? AND message_id = ? "
                   "AND deleted_at IS NULL", [post.channel_id, post.message_id])


def _scalar(con: Any, sql: str, params: Any = None) -> int:
    rows = con.execute(sql, params).fetchall()      # fetchall: DuckDB 2 leaves a fetchone() result open
    return int(rows[0][0]) if rows else 0


def mark_deleted(archive: Archive, post: DuePost, present: set[int], now: datetime) -> int:
    """Comments of ``post`` archived live but not among ``present`` get ``deleted_at``; returns how many."""
    with archive.transaction() as con:
        live = [int(r[0]) for r in con.execute(
            "SELECT comment_id FROM post_comments WHERE channel_id = ? AND message_id = ? AND deleted_at IS NULL",
            [post.channel_id, post.message_id]).fetchall()]
        gone = [c for c in live if c not in present]
        if gone:
            con.execute(
                "UPDATE post_comments SET deleted_at = $now WHERE channel_id = $ch AND message_id = $msg "
                "AND comment_id IN (SELECT unnest($gone::BIGINT[])) AND deleted_at IS NULL",
                {"now": now, "ch": post.channel_id, "msg": post.message_id, "gone": gone},
            )
            mark_posts(con, one_post(post.channel_id, post.message_id), ("post_comments",))   # lake partition
    return len(gone)
