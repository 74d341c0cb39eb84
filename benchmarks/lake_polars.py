"""The four spread metrics the straightforward Polars way, lazily over a lake's Parquet files (``scan_parquet``).

What a researcher without tgspread would write: one ``pl.scan_parquet("<lake>/posts/**/*.parquet",
hive_partitioning=True)``, the columns each metric needs, ``filter`` / ``group_by`` / ``join`` / ``explode``, and
``collect()``. Same definitions as ``analysis`` (album-aware forwards, origin columns, zero-filled days, canonical
URLs as stored, median lags) and the same row count, which :mod:`benchmarks.lake_bench` checks; no
de-duplication across collectors (the benchmark's lakes have one collector). The benchmark compares its time
with ``analysis`` over the same lake.

Example::

    from benchmarks import lake_polars
    lake_polars.METRICS["cascades"]("lake").height
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

__all__ = ["METRICS", "posts"]

_FWD = pl.col("fwd_channel_id").is_not_null() & pl.col("fwd_message_id").is_not_null()


def posts(lake: str) -> pl.LazyFrame:
    """The lake's posts, lazily (slot and month from the directories)."""
    return pl.scan_parquet(f"{lake}/posts/**/*.parquet", hive_partitioning=True)


def _us(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("us")


def cascades(lake: str) -> pl.DataFrame:
    p = posts(lake)
    fw = p.filter(_FWD).select("channel_id", "fwd_channel_id", "fwd_message_id", "views",
                               _us("posted_at").alias("t"), _us("fwd_posted_at").alias("header"))
    agg = fw.group_by("fwd_channel_id", "fwd_message_id").agg(
        pl.len().alias("forwards"), pl.col("channel_id").n_unique().alias("channels"),
        pl.col("header").min(), pl.col("t").min().alias("first_us"), pl.col("t").median().alias("median_us"),
        pl.col("views").sum().alias("forward_views"))
    origins = p.select(pl.col("channel_id").alias("fwd_channel_id"), pl.col("message_id").alias("fwd_message_id"),
                       _us("posted_at").alias("o_us"), pl.col("views").alias("origin_views"),
                       pl.col("forwards").alias("origin_forwards"), pl.col("deleted_at").is_not_null().alias("del"),
                       pl.lit(True).alias("origin_archived"))
    out = agg.join(origins, on=["fwd_channel_id", "fwd_message_id"], how="left").with_columns(
        pl.coalesce("o_us", "header").alias("origin_us"))
    out = out.select(
        pl.col("fwd_channel_id").alias("origin_channel_id"), pl.col("fwd_message_id").alias("origin_message_id"),
        pl.from_epoch("origin_us", "us").dt.replace_time_zone("UTC").alias("origin_posted_at"),
        "forwards", "channels",
        pl.from_epoch("first_us", "us").dt.replace_time_zone("UTC").alias("first_forward_at"),
        ((pl.col("first_us") - pl.col("origin_us")) / 1e6).alias("first_lag_s"),
        ((pl.col("median_us") - pl.col("origin_us")) / 1e6).alias("median_lag_s"),
        "origin_views", "forward_views",
        (pl.col("origin_views").fill_null(0) + pl.col("forward_views")).alias("reach"),
        pl.col("origin_archived").fill_null(False), pl.col("del").fill_null(False).alias("origin_deleted"),
        "origin_forwards")
    return out.sort(["forwards", "origin_channel_id", "origin_message_id"],
                    descending=[True, False, False]).collect()


def forward_network(lake: str) -> pl.DataFrame:
    fw = posts(lake).filter(_FWD & (pl.col("channel_id") != pl.col("fwd_channel_id")))
    out = fw.group_by("fwd_channel_id", "channel_id").agg(
        (pl.len() - pl.col("grouped_id").count() + pl.col("grouped_id").drop_nulls().n_unique()).alias("forwards"),
        pl.len().alias("messages"), pl.col("posted_at").min().alias("first_at"),
        pl.col("posted_at").max().alias("last_at"), pl.col("views").sum().alias("views"))
    out = out.rename({"fwd_channel_id": "source_channel_id", "channel_id": "target_channel_id"})
    return out.sort(["forwards", "source_channel_id", "target_channel_id"],
                    descending=[True, False, False]).collect()


def posting_frequency(lake: str) -> pl.DataFrame:
    p = posts(lake).select("channel_id", "grouped_id", "posted_at")
    singles = p.filter(pl.col("grouped_id").is_null()).select("channel_id", "posted_at")
    albums = (p.filter(pl.col("grouped_id").is_not_null()).group_by("channel_id", "grouped_id")
              .agg(pl.col("posted_at").min()).select("channel_id", "posted_at"))
    units = pl.concat([singles, albums]).with_columns(pl.col("posted_at").dt.truncate("1d").alias("period"))
    counts = units.group_by("channel_id", "period").agg(pl.len().cast(pl.Int64).alias("posts"))
    grid = (counts.group_by("channel_id").agg(pl.col("period").min().alias("lo"), pl.col("period").max().alias("hi"))
            .select("channel_id", pl.datetime_ranges("lo", "hi", "1d").alias("period")).explode("period"))
    out = grid.join(counts, on=["channel_id", "period"], how="left").with_columns(pl.col("posts").fill_null(0))
    return out.sort(["channel_id", "period"]).collect()


def url_spread(lake: str) -> pl.DataFrame:
    occ = (posts(lake).select("channel_id", "message_id", _us("posted_at").alias("t"),
                              pl.col("canonical_urls").alias("url"))
           .explode("url").filter(pl.col("url").is_not_null() & (pl.col("url") != ""))
           .unique(["channel_id", "message_id", "url"]))
    pc = occ.group_by("url", "channel_id").agg(pl.col("t").min().alias("first_us"), pl.col("t").max().alias("last"),
                                               pl.len().alias("posts"))
    first = (occ.sort(["t", "channel_id", "message_id"]).group_by("url")
             .agg(pl.col("channel_id").first().alias("first_channel_id"),
                  pl.col("message_id").first().alias("first_message_id"), pl.col("t").first().alias("url_first")))
    agg = pc.group_by("url").agg(pl.col("last").max().alias("last_us"), pl.col("posts").sum(),
                                 pl.len().alias("channels"))
    lag = (pc.join(first, on="url").filter(pl.col("channel_id") != pl.col("first_channel_id"))
           .group_by("url").agg((pl.col("first_us") - pl.col("url_first")).median().alias("median_lag_us")))
    out = (agg.join(first, on="url").join(lag, on="url", how="left")
           .with_columns(pl.col("url").str.extract(r"://\[?([^/?\\:\]]*)").alias("domain"),
                         (pl.col("median_lag_us") / 1e6).alias("median_lag_s")))
    return out.sort(["channels", "url_first", "first_channel_id", "first_message_id", "url"],
                    descending=[True, False, False, False, False]).collect()


METRICS: dict[str, Callable[[str], pl.DataFrame]] = {
    "cascades": cascades, "forward_network": forward_network, "posting_frequency": posting_frequency,
    "url_spread": url_spread,
}
