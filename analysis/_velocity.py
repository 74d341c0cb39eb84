"""Early velocity: which posts started far above their own channel's usual, from the re-observations.

The collector re-observes every post when its age crosses a checkpoint (1 h, 6 h, 1 d, ...), one row
per observation in ``post_observations``. :func:`velocity` takes, for each post and each checkpoint in
``checkpoints``, the **first observation at or after the checkpoint and before ``stretch`` times it**
(a post first seen at 1 h 40 min counts for 1 h; one first seen at 2 h 10 min does not): its counter
``metric`` (views, forwards, reactions or replies) is the post's value at that checkpoint, and
``observed_age_s`` says how old the post really was. Posts without such an observation are left out
(the collector did not run in time), never guessed.

The statistic is a robust z-score on the log scale, against the channel's own posts at the same
checkpoint: ``z = (ln(1 + x) - median) / (1.4826 * MAD)``, with the median and the median absolute
deviation (MAD) of ``ln(1 + x)`` over the channel's posts. 1.4826 makes the MAD a consistent estimate
of the standard deviation under normality, so ``z`` reads like a z-score that one viral post cannot
inflate. ``outlier`` is ``z >= threshold``, 3.5 by default (Iglewicz and Hoaglin's cut-off for the
modified z-score, 1993). Channels with fewer than ``min_posts`` posts at a checkpoint, or a MAD of 0,
get no z (null): there is no baseline to be above.

Cost: one query per batch of channels; the observations are joined once with the posts (ids and time
only), each post keeps its first observation in each checkpoint's window in one aggregate, and only the rows
above the threshold leave DuckDB (``outliers_only=False`` returns them all). A channel's baseline needs all
its posts at once (a median does not merge), so the channels are cut into contiguous id ranges of at most
:data:`BATCH_POSTS` posts (a larger channel is a batch of its own), one query each: memory is bounded by
the batch, not by the archive. At 10M posts with 20M observations, each in its own process (load 6): one
query 1,958 MB peak RSS, 12.4-13.6 s CPU; ranges of 2.5M posts 1,067 MB, 12.5 s; of 1M posts (ten
queries) 901-910 MB, 11.0 s. Contiguous ranges matter: DuckDB skips the row groups outside a range.

Caveats: a channel's baseline moves as it grows (its subscribers), so a post of a fast-growing channel
looks faster than it was; views of forwards are the forward's own views; counters are what Telegram
showed (views are approximate, forwards count only public forwards).

Example::

    with analysis.connect("archive.duckdb") as con:
        fast = analysis.velocity(con).filter(pl.col("outlier"))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import duckdb
import polars as pl

from ._frames import Params, channel_clause, conform, empty, time_clauses, where_sql

METRICS = ("views", "forwards", "reactions", "replies")
_US = 1_000_000
#: At most this many posts per query (see the module doc); a channel with more is a query of its own.
BATCH_POSTS = 1_000_000


def velocity_sql(
    checkpoints: Sequence[timedelta], metric: str, stretch: float, min_posts: int, threshold: float,
    include_forwards: bool, outliers_only: bool, channels: Iterable[int] | None, since: datetime | None,
    until: datetime | None, params: Params, channel_range: tuple[int, int] | None = None,
) -> str:
    """The query of :func:`velocity` (its parameters bound into ``params``), over the channels whose id is in
    ``channel_range`` (inclusive; None: all of them)."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: use one of {METRICS}")
    if stretch <= 1.0:
        raise ValueError("stretch must be > 1 (the window after each checkpoint)")
    cps = sorted({int(c.total_seconds() * _US) for c in checkpoints})
    if not cps or cps[0] <= 0:
        raise ValueError("checkpoints must be positive durations")
    post_filters = [
        "p.posted_at IS NOT NULL",
        None if include_forwards else "p.fwd_channel_id IS NULL AND p.fwd_posted_at IS NULL",
        channel_clause("p.channel_id", channels, params, "channels"),
        *time_clauses("p.posted_at", since, until, params),
    ]
    in_range = ""
    if channel_range is not None:
        params["range_lo"], params["range_hi"] = int(channel_range[0]), int(channel_range[1])
        post_filters.append("p.channel_id BETWEEN $range_lo AND $range_hi")
        in_range = " AND o.channel_id BETWEEN $range_lo AND $range_hi"
    windows = [(c, int(c * stretch)) for c in cps]
    in_window = " OR ".join(f"(age >= {lo} AND age < {hi})" for lo, hi in windows)
    # Each observation (age, value) packed into one HUGEINT, age in the high 64 bits: the minimum over a
    # post's observations in a window is its first one there, value and age in one 16-byte aggregate.
    pack = "((age::HUGEINT << 64) + (value::HUGEINT + 9223372036854775808))"
    firsts = ",\n                   ".join(
        f"min({pack}) FILTER (WHERE age >= {lo} AND age < {hi}) AS m{k}" for k, (lo, hi) in enumerate(windows))
    value = "((m{k} & 18446744073709551615::HUGEINT) - 9223372036854775808)::BIGINT"
    lvs = ", ".join(f"ln(1 + greatest({value.format(k=k)}, 0)) AS lv{k}" for k in range(len(windows)))
    stats = ", ".join(f"count(lv{k}) AS n{k}, median(lv{k}) AS med{k}, mad(lv{k}) AS mad{k}"
                      for k in range(len(windows)))
    at_cp = "\n        UNION ALL\n".join(
        f"""        SELECT p.channel_id, p.message_id, p.posted_us, {lo // _US}::BIGINT AS checkpoint_s,
               (p.m{k} >> 64)::BIGINT AS age_us, {value.format(k=k)} AS value, p.lv{k} AS lv,
               b.n{k} AS n, b.med{k} AS med, b.mad{k} AS mad
        FROM lv p JOIN base b ON p.channel_id = b.channel_id WHERE p.m{k} IS NOT NULL"""
        for k, (lo, _hi) in enumerate(windows))
    # One pass: the observations joined once with the posts (only the columns needed), only those inside
    # a checkpoint's window [c, stretch * c) kept, one row per post with its first observation in each
    # window; the channel baselines from that row set in one more pass (DuckDB's median and mad aggregates,
    # mad = median(|x - median(x)|)), without a second table of (post, checkpoint) rows.
    sql = f"""
    WITH p AS (
        SELECT p.channel_id, p.message_id, epoch_us(p.posted_at) AS posted_us FROM posts p {where_sql(post_filters)}
    ), j AS (
        SELECT o.channel_id, o.message_id, p.posted_us, epoch_us(o.observed_at) - p.posted_us AS age,
               o.{metric} AS value
        FROM post_observations o JOIN p ON p.channel_id = o.channel_id AND p.message_id = o.message_id
        WHERE o.{metric} IS NOT NULL{in_range}
    ), lv AS MATERIALIZED (
        SELECT *, {lvs} FROM (
            SELECT channel_id, message_id, min(posted_us) AS posted_us,
                   {firsts}
            FROM j WHERE {in_window}
            GROUP BY channel_id, message_id
        )
    ), base AS (
        SELECT channel_id, {stats} FROM lv GROUP BY channel_id
    ), at_cp AS (
{at_cp}
    ), scored AS (
        SELECT channel_id, message_id, posted_us, checkpoint_s, age_us / {_US}::DOUBLE AS observed_age_s,
               value, n AS channel_posts, exp(med) - 1 AS channel_median,
               CASE WHEN n >= {int(min_posts)} AND mad > 0 THEN (lv - med) / (1.4826 * mad) END AS robust_z
        FROM at_cp
    ), kept AS (
        SELECT * FROM scored {"WHERE robust_z >= " + repr(float(threshold)) if outliers_only else ""}
    )
    SELECT channel_id, message_id, posted_us, checkpoint_s, observed_age_s, value, channel_posts, channel_median,
           robust_z, coalesce(robust_z >= {float(threshold)}, false) AS outlier
    FROM kept
    ORDER BY checkpoint_s, robust_z DESC NULLS LAST, channel_id, message_id
    """
    return sql


def velocity(
    con: duckdb.DuckDBPyConnection,
    *,
    checkpoints: Sequence[timedelta] = (timedelta(hours=1), timedelta(hours=6)),
    metric: str = "views",
    stretch: float = 2.0,
    min_posts: int = 20,
    threshold: float = 3.5,
    include_forwards: bool = True,
    outliers_only: bool = True,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """One row per (post, checkpoint) with the post's ``metric`` at that checkpoint and how far above
    its channel's own baseline that is (see the module docstring). By default only the outliers
    (``robust_z >= threshold``); ``outliers_only=False`` returns every post observed at a checkpoint
    (two rows per post on a whole archive: large).

    Columns: ``channel_id``, ``message_id``, ``posted_at``, ``checkpoint_s``, ``observed_age_s``,
    ``value``, ``channel_posts`` (the channel's posts at that checkpoint), ``channel_median`` (of the
    metric, on its own scale), ``robust_z`` (null without a baseline), ``outlier`` and ``rank``
    (1 = highest z within the checkpoint; null without z). Sorted by checkpoint, then rank.
    ``since``/``until`` filter by ``posted_at``.
    """
    con = con.cursor()
    frames = []
    for channel_range in channel_batches(con, channels, BATCH_POSTS):
        params: Params = {}
        sql = velocity_sql(checkpoints, metric, stretch, min_posts, threshold, include_forwards, outliers_only,
                           channels, since, until, params, channel_range)
        frames.append(con.sql(sql, params=params or None).pl())
    df = pl.concat(frames) if len(frames) > 1 else frames[0]
    if df.height == 0:
        return empty("velocity")
    if len(frames) > 1:       # each batch came sorted; the whole in the one query's order
        df = df.sort(["checkpoint_s", "robust_z", "channel_id", "message_id"],
                     descending=[False, True, False, False], nulls_last=True)
    # rank: the position within the checkpoint (DuckDB sorted the rows, z-scores first), for posts with a z-score
    position = pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("checkpoint_s")
    df = df.with_columns(pl.col("posted_us").cast(pl.Datetime("us", "UTC")).alias("posted_at"),
                         pl.when(pl.col("robust_z").is_not_null()).then(position).otherwise(None).alias("rank"))
    return conform(df, "velocity")


def channel_batches(con: duckdb.DuckDBPyConnection, channels: Iterable[int] | None,
                    limit: int) -> list[tuple[int, int] | None]:
    """Contiguous channel-id ranges (inclusive) of at most ``limit`` posts each, in id order; a channel with
    more posts is a range of its own. ``[None]`` (one query over everything) when all the posts fit in one.
    Example: channels 1, 2 and 3 with 2, 2 and 5 posts, limit 4: ``[(1, 2), (3, 3)]``."""
    counts = con.execute("SELECT channel_id, count(*) FROM posts GROUP BY channel_id ORDER BY channel_id").fetchall()
    if channels is not None:
        wanted = {int(c) for c in channels}
        counts = [(c, n) for c, n in counts if c in wanted]
    if sum(n for _, n in counts) <= limit:
        return [None]
    ranges: list[tuple[int, int] | None] = []
    first, last, total = counts[0][0], counts[0][0], 0
    for channel_id, n in counts:
        if total and total + n > limit:
            ranges.append((first, last))
            first, total = channel_id, 0
        last, total = channel_id, total + n
    ranges.append((first, last))
    return ranges
