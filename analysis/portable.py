"""One definition of four metrics for DuckDB and Spark: ``cascades``, ``forward_network``,
``posting_frequency`` (daily) and ``url_spread``, with their default parameters.

Each metric is one SQL text in DuckDB's dialect (:data:`SQL`), written in the subset that sqlglot
transpiles to Spark SQL (:func:`spark_sql`), plus one Polars step (:func:`finish`) that both engines'
results go through: times leave SQL as epoch microseconds and become UTC timestamps in Polars, rows
are ordered in Polars. There is no second copy to drift: :mod:`analysis.spark` runs ``spark_sql(name)``,
:func:`run_duckdb` runs ``SQL[name]``, and ``tests/test_spark.py`` checks both equal each other and
the optimised DuckDB functions (``analysis.cascades(con)`` and so on).

Medians: DuckDB's ``median`` and Spark's ``percentile(x, 0.5)`` both interpolate between the two
middle values of an even count (the mean of the two), so they agree; epoch microseconds (< 2^53) and
their halves are exact in doubles.

Example::

    from analysis import portable

    con = analysis.connect("archive.duckdb")           # or a lake: analysis.connect("lake")
    portable.run_duckdb(con, "cascades")               # = analysis.cascades(con)
"""

from __future__ import annotations

import duckdb
import polars as pl

from ._frames import conform
from ._links import _domains, _ordered

__all__ = ["METRICS", "SQL", "finish", "run_duckdb", "spark_sql"]

_FORWARDS = "fwd_channel_id IS NOT NULL AND fwd_message_id IS NOT NULL"
_DAY_US = 86_400_000_000

#: The four metrics' SQL, DuckDB dialect, over a table ``posts`` (the lake's, de-duplicated).
SQL: dict[str, str] = {
    "forward_network": f"""
SELECT fwd_channel_id AS source_channel_id,
       channel_id AS target_channel_id,
       count(*) - count(grouped_id) + count(DISTINCT grouped_id) AS forwards,
       count(*) AS messages,
       min(epoch_us(posted_at)) AS first_us,
       max(epoch_us(posted_at)) AS last_us,
       coalesce(sum(views), 0) AS views
FROM posts
WHERE {_FORWARDS} AND channel_id <> fwd_channel_id
GROUP BY fwd_channel_id, channel_id
""",
    "cascades": f"""
WITH agg AS (
    SELECT fwd_channel_id, fwd_message_id,
           count(*) AS forwards,
           count(DISTINCT channel_id) AS channels,
           min(epoch_us(fwd_posted_at)) AS header_us,
           min(epoch_us(posted_at)) AS first_us,
           median(epoch_us(posted_at)) AS median_us,
           coalesce(sum(views), 0) AS forward_views
    FROM posts
    WHERE {_FORWARDS}
    GROUP BY fwd_channel_id, fwd_message_id
),
joined AS (
    SELECT a.*, coalesce(epoch_us(o.posted_at), a.header_us) AS origin_us,
           o.views AS origin_views, o.forwards AS origin_forwards,
           o.channel_id IS NOT NULL AS origin_archived,
           coalesce(o.deleted_at IS NOT NULL, false) AS origin_deleted
    FROM agg AS a
    LEFT JOIN posts AS o ON o.channel_id = a.fwd_channel_id AND o.message_id = a.fwd_message_id
)
SELECT fwd_channel_id AS origin_channel_id,
       fwd_message_id AS origin_message_id,
       origin_us, forwards, channels, first_us,
       (first_us - origin_us) / 1e6 AS first_lag_s,
       (median_us - origin_us) / 1e6 AS median_lag_s,
       origin_views, forward_views,
       coalesce(origin_views, 0) + forward_views AS reach,
       origin_archived, origin_deleted, origin_forwards
FROM joined
""",
    "posting_frequency": f"""
WITH units AS (
    SELECT channel_id, epoch_us(posted_at) AS t_us FROM posts WHERE grouped_id IS NULL
    UNION ALL
    SELECT channel_id, min(epoch_us(posted_at)) AS t_us FROM posts WHERE grouped_id IS NOT NULL
    GROUP BY channel_id, grouped_id
),
counts AS (
    SELECT channel_id, CAST(floor(t_us / {_DAY_US}) AS BIGINT) AS day, count(*) AS posts
    FROM units WHERE t_us IS NOT NULL GROUP BY channel_id, CAST(floor(t_us / {_DAY_US}) AS BIGINT)
),
spans AS (SELECT channel_id, min(day) AS lo, max(day) AS hi FROM counts GROUP BY channel_id),
grid AS (SELECT channel_id, unnest(generate_series(lo, hi)) AS day FROM spans)
SELECT g.channel_id, g.day * {_DAY_US} AS period_us, coalesce(c.posts, 0) AS posts
FROM grid AS g LEFT JOIN counts AS c ON c.channel_id = g.channel_id AND c.day = g.day
""",
    "url_spread": """
WITH occ AS (
    SELECT DISTINCT channel_id, message_id, t_us, url FROM (
        SELECT channel_id, message_id, epoch_us(posted_at) AS t_us, unnest(canonical_urls) AS url FROM posts
    ) AS u WHERE url <> ''
),
pc AS (
    SELECT url, channel_id, min(t_us) AS first_us, max(t_us) AS last_us, count(*) AS posts
    FROM occ GROUP BY url, channel_id
),
ranked AS (
    SELECT url, channel_id, message_id, t_us,
           row_number() OVER (PARTITION BY url ORDER BY t_us, channel_id, message_id) AS rn
    FROM occ
),
f AS (SELECT url, channel_id AS first_channel_id, message_id AS first_message_id, t_us AS first_us
      FROM ranked WHERE rn = 1),
agg AS (SELECT url, max(last_us) AS last_us, sum(posts) AS posts, count(*) AS channels FROM pc GROUP BY url),
lag AS (
    SELECT pc.url, median(pc.first_us - f.first_us) AS median_lag_us
    FROM pc JOIN f ON pc.url = f.url AND pc.channel_id <> f.first_channel_id
    GROUP BY pc.url
)
SELECT agg.url, f.first_channel_id, f.first_message_id, f.first_us, agg.last_us,
       agg.posts, agg.channels, lag.median_lag_us
FROM agg JOIN f ON f.url = agg.url LEFT JOIN lag ON lag.url = agg.url
""",
}

METRICS = tuple(SQL)


def spark_sql(name: str) -> str:
    """``SQL[name]`` in Spark SQL, transpiled by sqlglot (``read="duckdb", write="spark"``).

    sqlglot leaves DuckDB's ``epoch_us`` as it is; it becomes Spark's ``unix_micros`` (the same value for
    a timestamp: microseconds since 1970-01-01 UTC), the one mapping added here.
    """
    import sqlglot
    from sqlglot import exp

    def epoch_us(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "epoch_us":
            return exp.Anonymous(this="unix_micros", expressions=node.expressions)
        return node

    tree = sqlglot.parse_one(SQL[name], read="duckdb").transform(epoch_us)
    return tree.sql(dialect="spark")


def _utc(column: str, alias: str) -> pl.Expr:
    return pl.from_epoch(pl.col(column).cast(pl.Int64), "us").dt.replace_time_zone("UTC").alias(alias)


def finish(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``SQL[name]`` from either engine as the analysis function's frame (types, order)."""
    if name == "forward_network":
        out = df.with_columns(_utc("first_us", "first_at"), _utc("last_us", "last_at"))
        out = conform(out, name)
        return out.sort(["forwards", "source_channel_id", "target_channel_id"], descending=[True, False, False])
    if name == "cascades":
        out = df.with_columns(_utc("origin_us", "origin_posted_at"), _utc("first_us", "first_forward_at"))
        out = conform(out, name)
        return out.sort(["forwards", "origin_channel_id", "origin_message_id"], descending=[True, False, False])
    if name == "posting_frequency":
        out = conform(df.with_columns(_utc("period_us", "period")), name)
        return out.sort(["channel_id", "period"])
    if name == "url_spread":
        out = df.with_columns(
            _domains(df["url"]),
            (pl.col("median_lag_us") / 1e6).alias("median_lag_s"),
            _utc("first_us", "first_posted_at"), _utc("last_us", "last_posted_at"),
        ).with_columns(pl.col("first_us", "first_channel_id", "first_message_id", "channels").cast(pl.Int64))
        return conform(_ordered(out), name)
    raise ValueError(f"unknown metric {name!r}; one of {', '.join(METRICS)}")


def run_duckdb(con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame:
    """``SQL[name]`` on DuckDB connection ``con`` (an archive or ``analysis.connect(lake)``), finished."""
    return finish(name, con.cursor().sql(SQL[name]).pl())
