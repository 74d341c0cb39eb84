"""How far posts spread by forwarding: cascades, coverage, and the channels that start and carry them.

Definitions used throughout (see CONTRACT.md):

- A *forward* is an archived post whose forward header names its origin (``fwd_channel_id`` and
  ``fwd_message_id`` set). Forwards whose original sender hides itself name no origin and are left out.
- Deleted forwards count: they were posted. Their views are the last archived views.
- Albums: forwarding an album of N items makes N posts, each naming its own origin message. Per origin
  post (cascades, coverage) each item is its own origin; where channels are counted as actors
  (sources, amplifiers, the network) one forwarded album is one forward.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb
import polars as pl

from ._frames import (
    FORWARDS_SQL,
    Params,
    channel_clause,
    is_forward_sql,
    query_frame,
    time_clauses,
    warn_use_summary,
    where_sql,
)


def cascades(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_self: bool = True,
    min_forwards: int = 1,
    use_summary: bool | None = None,
) -> pl.DataFrame:
    """One row per original post named by at least ``min_forwards`` archived forwards.

    The origin's channel need not be archived. Columns (``SCHEMAS["cascades"]``):

    - ``origin_channel_id``, ``origin_message_id``; ``origin_posted_at``: the archived origin's
      ``posted_at``, else the forward header's date of the original.
    - ``forwards``: archived forwards of it (deleted ones included); ``channels``: distinct forwarding
      channels; ``first_forward_at``; ``first_lag_s`` and ``median_lag_s``: seconds from the origin's
      date to the first forward / the median forward.
    - ``origin_views``, ``origin_forwards`` (Telegram's counter): null when the origin is not archived;
      ``forward_views``: sum of the forwards' last archived views (null views count 0).
    - ``reach`` = ``origin_views`` + ``forward_views``; when the origin is not archived (``origin_archived``
      false) reach is ``forward_views`` alone, a lower bound. ``origin_deleted``: the origin was deleted.

    ``channels`` restricts to origins posted by these channels; ``since``/``until`` to origins posted in
    ``[since, until)``. ``include_self=False`` leaves out forwards of a channel's own posts.
    Rows are ordered by ``forwards`` (descending), then origin.

    ``use_summary`` is deprecated and ignored (nothing is stored since migration 0009; the result is always
    computed from the posts); passing it warns, and it will be removed in the next release.

    Example::

        analysis.cascades(con).head(10)      # the ten most forwarded posts
    """
    warn_use_summary(use_summary, "cascades")
    params: Params = {"min_forwards": int(min_forwards)}
    fwd_where = where_sql([
        "fwd_channel_id IS NOT NULL AND fwd_message_id IS NOT NULL",
        channel_clause("fwd_channel_id", channels, params, "channels"),
        None if include_self else "channel_id <> fwd_channel_id",
    ])
    outer_where = where_sql(time_clauses("origin_posted_at", since, until, params))
    # Speed (10M posts, 1.9M forwards, 1M origins): per origin, one aggregation with plain integer
    # states; the holistic parts (median, distinct channels) only where they are not already known,
    # i.e. for origins with 3+ forwards (13% of origins, half the forwards): with 1 forward the median
    # is that forward, with 2 it is their midpoint, and min/max of channel_id tell 1 from 2 channels.
    # The origin posts are joined to the aggregate (built on it, probed by the posts), and the
    # ordering is done in Polars on one packed key (see query_frame).
    sql = f"""
    WITH fw AS (
        SELECT channel_id, fwd_channel_id, fwd_message_id, epoch_us(posted_at) AS t, fwd_posted_at, views
        FROM posts {fwd_where}
    ),
    agg AS (
        SELECT fwd_channel_id, fwd_message_id,
               count(*) AS forwards,
               min(fwd_posted_at) AS header_posted_at,
               min(t) AS first_us, max(t) AS last_us,
               min(channel_id) AS ch_lo, max(channel_id) AS ch_hi,
               coalesce(sum(views), 0)::BIGINT AS forward_views
        FROM fw
        GROUP BY fwd_channel_id, fwd_message_id
        HAVING count(*) >= $min_forwards
    ),
    big AS (
        SELECT fwd_channel_id, fwd_message_id, median(t) AS median_us, count(DISTINCT channel_id) AS channels
        FROM fw SEMI JOIN (SELECT fwd_channel_id, fwd_message_id FROM agg WHERE forwards > 2) k
             USING (fwd_channel_id, fwd_message_id)
        GROUP BY fwd_channel_id, fwd_message_id
    ),
    joined AS (
        SELECT a.*, b.median_us, b.channels AS big_channels,
               coalesce(o.posted_at, a.header_posted_at) AS origin_posted_at,
               o.views AS origin_views,
               o.forwards AS origin_forwards,
               o.channel_id IS NOT NULL AS origin_archived,
               coalesce(o.deleted_at IS NOT NULL, false) AS origin_deleted
        FROM agg a
        LEFT JOIN big b ON b.fwd_channel_id = a.fwd_channel_id AND b.fwd_message_id = a.fwd_message_id
        LEFT JOIN posts o ON o.channel_id = a.fwd_channel_id AND o.message_id = a.fwd_message_id
    )
    SELECT fwd_channel_id AS origin_channel_id,
           fwd_message_id AS origin_message_id,
           origin_posted_at,
           forwards,
           CASE WHEN forwards > 2 THEN big_channels WHEN ch_lo = ch_hi THEN 1 ELSE 2 END AS channels,
           make_timestamptz(first_us) AS first_forward_at,
           (first_us - epoch_us(origin_posted_at)) / 1e6 AS first_lag_s,
           (CASE WHEN forwards > 2 THEN median_us
                 WHEN forwards = 2 THEN first_us + (last_us - first_us) / 2
                 ELSE first_us END - epoch_us(origin_posted_at)) / 1e6 AS median_lag_s,
           origin_views,
           forward_views,
           coalesce(origin_views, 0) + forward_views AS reach,
           origin_archived,
           origin_deleted,
           origin_forwards
    FROM joined
    {outer_where}
    """
    order = [("forwards", True), ("origin_channel_id", False), ("origin_message_id", False)]
    return query_frame(con, sql, params, "cascades", order)


def coverage(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """How much of each archived original post's spread the archive can see.

    One row per archived post that is not itself a forward and that Telegram counts as forwarded
    (``forwards`` counter > 0) or that has archived forwards. ``forwards_counter`` is Telegram's own
    counter at the post's last refresh: it also counts shares to private chats and groups and forwards
    into channels we do not archive. ``archived_forwards``: archived forwards naming it (hidden senders
    cannot be attributed and are not counted); ``archived_channels``: distinct channels among them;
    ``coverage`` = archived_forwards / forwards_counter (null when the counter is 0 or unknown). It can
    exceed 1 when forwards were archived after the origin's counter was last refreshed.

    ``channels``/``since``/``until`` filter the origin posts by channel and ``posted_at``.
    """
    params: Params = {}
    where = where_sql([
        f"NOT {is_forward_sql('p')}",
        channel_clause("p.channel_id", channels, params, "channels"),
        *time_clauses("p.posted_at", since, until, params),
        "(p.forwards > 0 OR f.archived_forwards IS NOT NULL)",
    ])
    sql = f"""
    WITH f AS (
        SELECT fwd_channel_id, fwd_message_id,
               count(*) AS archived_forwards, count(DISTINCT channel_id) AS archived_channels
        FROM ({FORWARDS_SQL})
        GROUP BY fwd_channel_id, fwd_message_id
    )
    SELECT p.channel_id, p.message_id, p.posted_at,
           p.forwards AS forwards_counter,
           coalesce(f.archived_forwards, 0) AS archived_forwards,
           coalesce(f.archived_channels, 0) AS archived_channels,
           CASE WHEN p.forwards > 0 THEN coalesce(f.archived_forwards, 0) / p.forwards END AS coverage
    FROM posts p
    LEFT JOIN f ON f.fwd_channel_id = p.channel_id AND f.fwd_message_id = p.message_id
    {where}
    ORDER BY p.channel_id, p.message_id
    """
    return query_frame(con, sql, params, "coverage")


def _actor_forwards(include_self: bool, since: datetime | None, until: datetime | None, params: Params) -> str:
    """Forwards between channels (one row per forwarded message), filtered by the forward's time."""
    where = where_sql([
        None if include_self else "channel_id <> fwd_channel_id",
        *time_clauses("posted_at", since, until, params),
    ])
    return f"SELECT * FROM ({FORWARDS_SQL}) {where}"


def sources(
    con: duckdb.DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    include_self: bool = False,
) -> pl.DataFrame:
    """Channels ranked by how often archived channels forward them (``rank`` 1 = most forwarded).

    One row per origin channel (archived or not: ``archived`` says whether its own posts are in the
    archive). ``forwards``: forwarding acts by other channels (a forwarded album counts once);
    ``forwarded_posts``: distinct posts of it that were forwarded; ``forwarding_channels``: distinct
    channels that forwarded it; ``forward_views``: views those forwards collected. Self-forwards are
    left out unless ``include_self``. ``since``/``until`` filter the forwards by their ``posted_at``.
    """
    params: Params = {}
    sql = f"""
    WITH fw AS ({_actor_forwards(include_self, since, until, params)}),
    pairs AS (
        SELECT fwd_channel_id, channel_id,
               count(*) FILTER (WHERE grouped_id IS NULL) + count(DISTINCT grouped_id) AS forwards,
               sum(coalesce(views, 0)) AS views
        FROM fw GROUP BY fwd_channel_id, channel_id
    ),
    per_source AS (
        SELECT fwd_channel_id AS channel_id, sum(forwards) AS forwards,
               count(*) AS forwarding_channels, sum(views) AS forward_views
        FROM pairs GROUP BY fwd_channel_id
    ),
    posts_forwarded AS (
        SELECT fwd_channel_id AS channel_id, count(DISTINCT fwd_message_id) AS forwarded_posts
        FROM fw GROUP BY fwd_channel_id
    )
    SELECT s.channel_id,
           s.channel_id IN (SELECT channel_id FROM channels) AS archived,
           s.forwards, p.forwarded_posts, s.forwarding_channels, s.forward_views,
           rank() OVER (ORDER BY s.forwards DESC) AS rank
    FROM per_source s JOIN posts_forwarded p USING (channel_id)
    ORDER BY rank, s.channel_id
    """
    return query_frame(con, sql, params, "sources")


def amplifiers(
    con: duckdb.DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    include_self: bool = False,
) -> pl.DataFrame:
    """Archived channels ranked by the reach they add by forwarding others' posts (``rank`` 1 = most).

    One row per forwarding channel. ``reach_added``: the last archived views of its forwards (what the
    forwarded posts gained from its audience); ``forwards``: forwarding acts (a forwarded album counts
    once); ``source_channels``: distinct channels it forwarded; ``median_lag_s``: median seconds from
    the original post to its forward. Self-forwards are left out unless ``include_self``.
    ``since``/``until`` filter the forwards by their ``posted_at``.
    """
    params: Params = {}
    sql = f"""
    WITH fw AS ({_actor_forwards(include_self, since, until, params)})
    SELECT channel_id,
           count(*) FILTER (WHERE grouped_id IS NULL) + count(DISTINCT grouped_id) AS forwards,
           count(DISTINCT fwd_channel_id) AS source_channels,
           sum(coalesce(views, 0)) AS reach_added,
           median((epoch_us(posted_at) - epoch_us(fwd_posted_at)) / 1e6) AS median_lag_s,
           rank() OVER (ORDER BY sum(coalesce(views, 0)) DESC) AS rank
    FROM fw
    GROUP BY channel_id
    ORDER BY rank, channel_id
    """
    return query_frame(con, sql, params, "amplifiers")
