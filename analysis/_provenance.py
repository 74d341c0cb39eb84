"""Provenance by field: which route (API, web preview, Desktop export) gave each group of a post's fields, and when.

When the same post came in through more than one route, each group of its fields records the route whose
values the archive keeps (docs/sources.md, "Provenance by field"; migration 0011):

* ``text``: the text, its edit time and flag, and what is read from it (hashtags, links, mentions);
* ``counters``: views (with the web's rounded label and range), forwards, replies;
* ``reactions``: the reaction total and the reactions by kind;
* ``header``: the forward header (origin channel, origin post, origin date, displayed name, username).

A route is ``api``, ``web`` or ``export``, or two joined by ``+`` when the second only filled fields the first
lacked (``export+web``: the export gave the forward header, a web pass added the origin post id).
``unrecorded`` names a group that has values but was written before migration 0011 recorded routes.
The time is when that route observed the values; for an export, when the file was imported (an export
carries no date of its own).

Example::

    with analysis.connect("archive.duckdb") as con:
        by_route = analysis.provenance(con)                 # per channel, group and route: how many posts
        one = analysis.provenance(con, per="post", channels=[1234])   # per post: each group's route and time
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb
import polars as pl

from ._frames import Params, channel_clause, query_frame, time_clauses, where_sql

#: The field groups, in the order frames list them.
GROUPS = ("text", "counters", "reactions", "header")
# Columns that say a post has values in the group (as the writers' collector._archive.provenance.LEADERS).
_LEADERS = {
    "text": ("text",),
    "counters": ("views", "forwards", "replies"),
    "reactions": ("reactions",),
    "header": ("fwd_channel_id", "fwd_message_id", "fwd_posted_at", "fwd_from_name", "fwd_username"),
}


def _route(group: str, recorded: bool) -> str:
    has = " OR ".join(f"{c} IS NOT NULL" for c in _LEADERS[group])
    return f"coalesce({f'{group}_source' if recorded else 'NULL'}, CASE WHEN {has} THEN 'unrecorded' END)"


def _seen(group: str, recorded: bool) -> str:
    return f"{group}_seen_at" if recorded else "NULL::TIMESTAMPTZ"


def provenance(
    con: duckdb.DuckDBPyConnection,
    *,
    per: str = "channel",
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """Which route gave each group of fields, per channel (default) or per post.

    ``per="channel"``: one row per (channel, group, route) with ``posts`` (how many of the channel's posts
    have that group from that route) and ``first_seen_at``/``last_seen_at`` (the range of the routes'
    observation times); groups no route gave a value (a post without a forward header has none) are left out.
    Sorted by channel, group (text, counters, reactions, header), then posts, most first.

    ``per="post"``: one row per post with ``<group>_source`` and ``<group>_seen_at`` for each group
    (``unrecorded`` as above; null: no route gave the group a value), sorted by channel and message id.
    ``since``/``until`` filter by ``posted_at``.
    """
    if per not in ("channel", "post"):
        raise ValueError(f"per={per!r}: use 'channel' or 'post'")
    params: Params = {}
    where = where_sql([channel_clause("channel_id", channels, params, "channels"),
                       *time_clauses("posted_at", since, until, params)])
    # an archive older than migration 0011, opened read-only, has no routes: every group with values is unrecorded
    recorded = "text_source" in con.cursor().sql("SELECT * FROM posts LIMIT 0").columns
    if per == "post":
        cols = ", ".join(f"{_route(g, recorded)} AS {g}_source, {_seen(g, recorded)} AS {g}_seen_at" for g in GROUPS)
        sql = f"SELECT channel_id, message_id, {cols} FROM posts {where}"
        return query_frame(con, sql, params, "provenance_posts", order=[("channel_id", False), ("message_id", False)])
    # one scan of posts: the combinations of routes per channel (a handful), then one row per group and route
    routes = ", ".join(f"{_route(g, recorded)} AS r{i}, min({_seen(g, recorded)}) AS a{i}, "
                       f"max({_seen(g, recorded)}) AS b{i}"
                       for i, g in enumerate(GROUPS))
    keys = ", ".join(f"r{i}" for i in range(len(GROUPS)))
    per_group = " UNION ALL ".join(
        f"SELECT channel_id, {i} AS g, '{g}' AS field_group, r{i} AS route, sum(n) AS posts, "
        f"min(a{i}) AS first_seen_at, max(b{i}) AS last_seen_at FROM combos WHERE r{i} IS NOT NULL "
        f"GROUP BY channel_id, r{i}" for i, g in enumerate(GROUPS))
    sql = f"""
    WITH combos AS (
        SELECT channel_id, {routes}, count(*) AS n FROM posts {where} GROUP BY channel_id, {keys}
    )
    SELECT channel_id, field_group, route, posts, first_seen_at, last_seen_at FROM ({per_group})
    ORDER BY channel_id, g, posts DESC, route
    """
    return query_frame(con, sql, params, "provenance")
