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

from .frames import Params, channel_clause, conform, empty, time_clauses, where_sql

METRICS = ("views", "forwards", "reactions", "replies")
_US = 1_000_000


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
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: use one of {METRICS}")
    if stretch <= 1.0:
        raise ValueError("stretch must be > 1 (the window after each checkpoint)")
    cps = sorted({int(c.total_seconds() * _US) for c in checkpoints})
    if not cps or cps[0] <= 0:
        raise ValueError("checkpoints must be positive durations")
    params: Params = {}
    filters = [
        "p.posted_at IS NOT NULL",
        f"o.{metric} IS NOT NULL",
        None if include_forwards else "p.fwd_channel_id IS NULL AND p.fwd_posted_at IS NULL",
        channel_clause("p.channel_id", channels, params, "channels"),
        *time_clauses("p.posted_at", since, until, params),
    ]
    # One query per checkpoint, each aggregating only the observations in its window [c, stretch * c)
    # (half the memory of doing all at once); the channel baselines come from DuckDB's median and mad
    # aggregates in one pass (mad = median(|x - median(x)|), no second pass over the posts).
    con = con.cursor()
    age = "(epoch_us(o.observed_at) - epoch_us(p.posted_at))"
    frames = []
    for lo, hi in [(c, int(c * stretch)) for c in cps]:
        sql = f"""
        WITH at_cp AS MATERIALIZED (
            SELECT o.channel_id, o.message_id, epoch_us(p.posted_at) AS posted_us,
                   arg_min(o.{metric}, o.observed_at) AS value, min({age}) AS age_us,
                   ln(1 + greatest(arg_min(o.{metric}, o.observed_at), 0)) AS lv
            FROM post_observations o
            JOIN posts p ON p.channel_id = o.channel_id AND p.message_id = o.message_id
            {where_sql([*filters, f"{age} >= {lo}", f"{age} < {hi}"])}
            GROUP BY o.channel_id, o.message_id, p.posted_at
        ), base AS (
            SELECT channel_id, count(*) AS n, median(lv) AS med, mad(lv) AS mad FROM at_cp GROUP BY channel_id
        ), scored AS (
            SELECT l.channel_id, l.message_id, l.posted_us, {lo // _US} AS checkpoint_s,
                   l.age_us / {_US}::DOUBLE AS observed_age_s, l.value, b.n AS channel_posts,
                   exp(b.med) - 1 AS channel_median,
                   CASE WHEN b.n >= {int(min_posts)} AND b.mad > 0
                        THEN (l.lv - b.med) / (1.4826 * b.mad) END AS robust_z
            FROM at_cp l JOIN base b ON l.channel_id = b.channel_id
        )
        SELECT *, coalesce(robust_z >= {float(threshold)}, false) AS outlier FROM scored
        {"WHERE robust_z >= " + repr(float(threshold)) if outliers_only else ""}
        ORDER BY robust_z DESC NULLS LAST, channel_id, message_id
        """
        part = con.sql(sql, params=params or None).pl()
        if part.height:
            frames.append(part)
    if not frames:
        return empty("velocity")
    df = pl.concat(frames, how="vertical_relaxed")
    df = df.rechunk().with_columns(pl.col("posted_us").cast(pl.Datetime("us", "UTC")).alias("posted_at"))
    # rank: the position within the checkpoint (DuckDB sorted the rows), for posts with a z-score
    parts = []
    for part in df.partition_by("checkpoint_s", maintain_order=True):
        ranked = pl.int_range(1, part.height + 1, dtype=pl.Int64, eager=True)
        parts.append(part.with_columns(
            pl.when(pl.col("robust_z").is_not_null()).then(ranked).otherwise(None).alias("rank")))
    df = pl.concat(parts)
    return conform(df, "velocity")
