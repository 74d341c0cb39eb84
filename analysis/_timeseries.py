"""Activity and engagement over time: posting frequency, view growth, half-life, subscribers.

All periods are in UTC. Post ages are ``observed_at - posted_at`` in seconds, from the archive's
``post_observations`` (one row each time the collector refreshed a post's counters).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
import polars as pl

from ._frames import Params, channel_clause, conform, posts_are_files, query_frame, time_clauses, where_sql

_US = 1_000_000
_UNIT_US = {"s": _US, "m": 60 * _US, "h": 3600 * _US, "d": 86400 * _US, "w": 7 * 86400 * _US}
#: 1970-01-05 was a Monday: weekly periods start on Mondays, 00:00 UTC.
_MONDAY_US = 4 * 86400 * _US


@dataclass(frozen=True, slots=True)
class Every:
    """A period length: fixed (``width_us``) or calendar months (``months``)."""

    width_us: int = 0
    months: int = 0
    origin_us: int = 0


def parse_every(every: str) -> Every:
    """Parse a period like Polars does: ``"30m"``, ``"1h"``, ``"1d"``, ``"1w"`` (Mondays), ``"1mo"``, ``"1y"``.

    >>> parse_every("2h").width_us
    7200000000
    >>> parse_every("1mo").months
    1
    """
    m = re.fullmatch(r"\s*(\d+)\s*(s|m|h|d|w|mo|y)\s*", every)
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"every={every!r}: use a positive count and a unit s, m, h, d, w, mo or y (e.g. '1d')")
    n, unit = int(m.group(1)), m.group(2)
    if unit == "mo":
        return Every(months=n)
    if unit == "y":
        return Every(months=12 * n)
    return Every(width_us=n * _UNIT_US[unit], origin_us=_MONDAY_US if unit == "w" else 0)


def posting_frequency(
    con: duckdb.DuckDBPyConnection,
    every: str = "1d",
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    fill_zeros: bool = True,
) -> pl.DataFrame:
    """Posts per channel and period: one row per (``channel_id``, ``period``), ``period`` = start, UTC.

    An album (posts sharing a ``grouped_id``) counts once, in the period of its first item. Deleted
    posts count (they were posted); forwards count (they are posts of the channel). With
    ``fill_zeros`` (default) every period between a channel's first and last counted period is present,
    with ``posts`` 0 where it posted nothing, so plots and rolling means see the silences.
    ``since``/``until`` filter by ``posted_at``. Ordered by channel, then period.

    Example::

        analysis.posting_frequency(con, every="1w", channels=[1234567890])
    """
    step = parse_every(every)
    params: Params = {}
    filters = [channel_clause("channel_id", channels, params, "channels"),
               *time_clauses("posted_at", since, until, params)]
    where = where_sql(filters)
    # Fixed periods are integer arithmetic on epoch microseconds (no time-zone library per row);
    # calendar months first go through days, then the (far fewer) day rows are truncated to months.
    if step.months:
        width, origin = 86400 * _US, 0
    else:
        width, origin = step.width_us, step.origin_us

    def bucket(column: str) -> str:
        return f"((epoch_us({column}) - {origin}) // {width}) * {width} + {origin}"

    # Over a lake, one scan of the posts and one aggregation: a post outside an album is counted in its
    # period's group (channel, NULL, period), an album's items meet in the group (channel, album, NULL), whose
    # first item's time gives the album's period. A second scan costs a second opening of every file, most of
    # the time over a lake (docs/lake.md, "Reading speed"). Over a table two scans are cheaper (10M posts:
    # 1.0 s CPU against 1.5 s): posts, then albums.
    singles = where_sql(["grouped_id IS NULL", *filters])
    albums = where_sql(["grouped_id IS NOT NULL", *filters])
    units = f"""
        WITH units AS (
            SELECT channel_id, posted_at FROM posts {singles}
            UNION ALL
            SELECT channel_id, min(posted_at) FROM posts {albums} GROUP BY channel_id, grouped_id
        ),
        fine AS (SELECT channel_id, {bucket('posted_at')} AS bucket_us, count(*) AS posts FROM units GROUP BY ALL)
    """
    if posts_are_files(con):
        units = f"""
        WITH g AS (
            SELECT channel_id, grouped_id, CASE WHEN grouped_id IS NULL THEN {bucket('posted_at')} END AS b,
                   count(*) AS n, min(posted_at) AS first_at
            FROM posts {where} GROUP BY ALL
        ),
        fine AS (
            SELECT channel_id, coalesce(b, {bucket('first_at')}) AS bucket_us,
                   sum(CASE WHEN grouped_id IS NULL THEN n ELSE 1 END)::BIGINT AS posts
            FROM g GROUP BY ALL
        )
    """
    if step.months:
        counts = f"""{units},
        counts AS (
            SELECT channel_id,
                   time_bucket(INTERVAL {step.months} MONTH, make_timestamp(bucket_us)) AS period,
                   sum(posts)::BIGINT AS posts
            FROM fine GROUP BY ALL
        )"""
        series = f"generate_series(lo, hi, INTERVAL {step.months} MONTH)"
    else:
        counts = f"""{units},
        counts AS (SELECT channel_id, make_timestamp(bucket_us) AS period, posts FROM fine)"""
        series = f"generate_series(lo, hi, to_microseconds({width}::BIGINT))"
    if fill_zeros:
        sql = f"""{counts},
        spans AS (SELECT channel_id, min(period) AS lo, max(period) AS hi FROM counts GROUP BY channel_id),
        grid AS (SELECT channel_id, unnest({series}) AS period FROM spans)
        SELECT g.channel_id, g.period, coalesce(c.posts, 0) AS posts
        FROM grid g LEFT JOIN counts c ON c.channel_id = g.channel_id AND c.period = g.period
        ORDER BY g.channel_id, g.period"""
    else:
        sql = f"{counts} SELECT channel_id, period, posts FROM counts ORDER BY channel_id, period"
    # ``period`` is a naive UTC timestamp in SQL (cheap); labelling it UTC in Polars changes metadata only.
    df = con.cursor().sql(sql, params=params or None).pl()
    return conform(df.with_columns(pl.col("period").dt.replace_time_zone("UTC")), "posting_frequency")


def _observations_sql(
    channels: Iterable[int] | None, since: datetime | None, until: datetime | None, params: Params
) -> str:
    where = where_sql([
        channel_clause("p.channel_id", channels, params, "channels"),
        *time_clauses("p.posted_at", since, until, params),
    ])
    return f"""
        SELECT o.channel_id, o.message_id, p.posted_at, o.observed_at,
               (epoch_us(o.observed_at) - epoch_us(p.posted_at)) / 1e6 AS age_s,
               o.views, o.forwards, o.replies, o.reactions
        FROM post_observations o
        JOIN posts p ON p.channel_id = o.channel_id AND p.message_id = o.message_id
        {where}
    """


def view_growth(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """Every archived observation of every post: ``age_s`` (seconds since posting), ``views``,
    ``forwards``, ``replies``, ``reactions`` at that age. ``channels``/``since``/``until`` select posts
    by channel and ``posted_at``. Ordered by post, then age.
    """
    params: Params = {}
    sql = f"{_observations_sql(channels, since, until, params)} ORDER BY channel_id, message_id, observed_at"
    return query_frame(con, sql, params, "view_growth")


#: Default age buckets of :func:`channel_growth`: the collector's refresh checkpoints.
DEFAULT_AGE_EDGES_S: tuple[float, ...] = (0.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 30 * 86400.0)


def _bucket_case(edges: Sequence[float]) -> str:
    """SQL ``CASE`` giving each ``age_s`` the lower edge of its bucket (null below the first edge)."""
    ordered = sorted({float(e) for e in edges})
    if not ordered or any(math.isnan(e) or math.isinf(e) for e in ordered):
        raise ValueError(f"age_edges_s={edges!r}: give finite bucket edges in seconds")
    whens = " ".join(f"WHEN age_s >= {e!r} THEN {e!r}" for e in reversed(ordered))
    return f"CASE {whens} END"


def channel_growth(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    age_edges_s: Sequence[float] = DEFAULT_AGE_EDGES_S,
) -> pl.DataFrame:
    """Median growth curve per channel: one row per (channel, age bucket).

    Ages are bucketed by ``age_edges_s`` (bucket = ``[edge, next edge)``, the last open-ended; the
    default edges are the refresh checkpoints 0, 1 h, 6 h, 1 d, 3 d, 7 d, 30 d). Each post contributes
    its last observation inside a bucket; ``posts`` counts the posts observed in it, and
    ``median_views``/``median_forwards``/``median_reactions`` are medians over those posts.
    ``age_s`` is the bucket's lower edge.
    """
    params: Params = {}
    sql = f"""
    WITH obs AS ({_observations_sql(channels, since, until, params)}),
    b AS (SELECT *, {_bucket_case(age_edges_s)} AS bucket FROM obs),
    per_post AS (
        SELECT channel_id, message_id, bucket,
               max_by(views, observed_at) AS views,
               max_by(forwards, observed_at) AS forwards,
               max_by(reactions, observed_at) AS reactions
        FROM b WHERE bucket IS NOT NULL
        GROUP BY channel_id, message_id, bucket
    )
    SELECT channel_id, bucket AS age_s, count(*) AS posts,
           median(views) AS median_views, median(forwards) AS median_forwards,
           median(reactions) AS median_reactions
    FROM per_post
    GROUP BY channel_id, bucket
    ORDER BY channel_id, age_s
    """
    return query_frame(con, sql, params, "channel_growth")


def half_life(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    per: Literal["post", "channel"] = "post",
) -> pl.DataFrame:
    """Age at which a post had half of its latest archived views.

    Per post: ``latest_views`` (views at its latest observation), ``observations``, and ``half_life_s``,
    found by linear interpolation between the last observation below half and the first at or above
    it, starting from 0 views at age 0 (null when the latest views are 0 or unknown). Observations are
    sparse (the refresh checkpoints), so treat it as an estimate whose resolution is the checkpoint
    spacing; the latest observation of a young post is not its final view count.
    ``per="channel"``: one row per channel with the number of posts and their median half-life.
    """
    if per not in ("post", "channel"):
        raise ValueError(f"per={per!r}: use 'post' or 'channel'")
    params: Params = {}
    sql = f"""
    WITH obs AS (
        SELECT channel_id, message_id, age_s, views
        FROM ({_observations_sql(channels, since, until, params)}) WHERE views IS NOT NULL
    ),
    w AS (
        SELECT *,
               max_by(views, age_s) OVER post AS latest_views,
               count(*) OVER post AS observations,
               coalesce(lag(age_s) OVER ordered, 0.0) AS prev_age_s,
               coalesce(lag(views) OVER ordered, 0) AS prev_views
        FROM obs
        WINDOW post AS (PARTITION BY channel_id, message_id),
               ordered AS (PARTITION BY channel_id, message_id ORDER BY age_s)
    ),
    posts_hl AS (
        SELECT channel_id, message_id,
               any_value(latest_views) AS latest_views,
               any_value(observations) AS observations,
               arg_min(
                   CASE WHEN views = prev_views THEN age_s
                        ELSE prev_age_s + (latest_views / 2.0 - prev_views) * (age_s - prev_age_s)
                                          / (views - prev_views) END,
                   age_s
               ) FILTER (WHERE latest_views > 0 AND views >= latest_views / 2.0) AS half_life_s
        FROM w
        GROUP BY channel_id, message_id
    )
    """
    if per == "post":
        sql += "SELECT * FROM posts_hl ORDER BY channel_id, message_id"
        return query_frame(con, sql, params, "half_life_post")
    sql += """
    SELECT channel_id, count(half_life_s) AS posts, median(half_life_s) AS median_half_life_s
    FROM posts_hl GROUP BY channel_id ORDER BY channel_id
    """
    return query_frame(con, sql, params, "half_life_channel")


def subscriber_growth(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """Subscribers over time from the channel snapshots: one row per (channel, observation).

    ``change``: participants gained since the channel's previous snapshot (null for the first);
    ``per_day``: that change divided by the days between the two snapshots.
    """
    params: Params = {}
    where = where_sql([
        channel_clause("channel_id", channels, params, "channels"),
        *time_clauses("observed_at", since, until, params),
    ])
    sql = f"""
    WITH o AS (SELECT channel_id, observed_at, participants_count FROM channel_observations {where}),
    d AS (
        SELECT *,
               participants_count - lag(participants_count) OVER w AS change,
               (epoch_us(observed_at) - epoch_us(lag(observed_at) OVER w)) / 86400e6 AS days
        FROM o WINDOW w AS (PARTITION BY channel_id ORDER BY observed_at)
    )
    SELECT channel_id, observed_at, participants_count, change,
           CASE WHEN days > 0 THEN change / days END AS per_day
    FROM d ORDER BY channel_id, observed_at
    """
    return query_frame(con, sql, params, "subscriber_growth")
