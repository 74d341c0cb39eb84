"""Benchmark of the analysis core against straightforward pandas, on a synthetic archive.

For each of cascades, forward_network, posting_frequency and url_spread: the library call and the
same metric computed the obvious pandas way, each measured in its own subprocess so that its peak
RSS is its own, each repeated (library 5 times, pandas ``--pandas-repeat`` times, default 2); the
best and the median wall time are reported, and the speed-up is best against best.

What each side includes (both start from the same archive file, closed):

- library: ``analysis.connect(path)`` (read-only open), the function call, which reads the columns
  it needs inside DuckDB and returns a Polars frame in the function's schema and order.
- pandas: ``duckdb.connect(path, read_only=True)``, ``SELECT <the columns the metric needs> FROM
  posts`` into a pandas DataFrame (DuckDB -> pandas conversion included: reading is part of the
  job), then filter / merge / groupby / sort in pandas to the same result rows and columns as the
  library (same definitions: origin columns of cascades, album-aware forward counts, canonical URLs
  as stored, median lags) and the same ordering. No SQL aggregation on the pandas side, no
  hand-tuning beyond idiomatic pandas (named aggregations, ``explode``, ``merge``).

Both sides return the number of result rows; a mismatch is reported (``rows_match``). Targets
(issue #4): <= 2 s per function on 10M posts, >= 10x faster than pandas, peak memory <= 2 GB. CPU
seconds (all threads) are reported beside wall seconds because the machine is shared: wall time
depends on what else runs, CPU time much less.

Usage::

    python -m benchmarks.analysis_bench [--posts 10000000 --channels 5000] [--pandas-repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from .synth_archive import build

__all__ = ["FUNCTIONS", "build_url_index", "main", "run", "url_index_prototype"]

FUNCTIONS = ("cascades", "forward_network", "posting_frequency", "url_spread")
TARGET_S = 2.0
TARGET_RATIO = 10.0
TARGET_RSS_MB = 2048.0


# ---- the library ---------------------------------------------------------------------------------

def _library(name: str, path: str) -> int:
    import analysis

    con = analysis.connect(path)
    try:
        return int(getattr(analysis, name)(con).height)
    finally:
        con.close()


# ---- straightforward pandas ----------------------------------------------------------------------

def _read(path: str, sql: str) -> Any:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.sql(sql).df()
    finally:
        con.close()


def _pd_cascades(path: str) -> int:
    posts = _read(path, "SELECT channel_id, message_id, posted_at, views, forwards, deleted_at, fwd_channel_id, "
                       "fwd_message_id, fwd_posted_at FROM posts")
    fw = posts[posts.fwd_channel_id.notna() & posts.fwd_message_id.notna()]
    fw = fw[["channel_id", "posted_at", "views", "fwd_channel_id", "fwd_message_id", "fwd_posted_at"]].copy()
    origins = posts[["channel_id", "message_id", "posted_at", "views", "forwards", "deleted_at"]].rename(columns={
        "channel_id": "fwd_channel_id", "message_id": "fwd_message_id", "posted_at": "o_posted_at",
        "views": "origin_views", "forwards": "origin_forwards"})
    origins["origin_archived"] = True
    origins["origin_deleted"] = origins.pop("deleted_at").notna()
    fw = fw.merge(origins, on=["fwd_channel_id", "fwd_message_id"], how="left")
    fw["origin_posted_at"] = fw.o_posted_at.fillna(fw.groupby(["fwd_channel_id", "fwd_message_id"])
                                                   .fwd_posted_at.transform("min"))
    fw["lag_s"] = (fw.posted_at - fw.origin_posted_at).dt.total_seconds()
    out = fw.groupby(["fwd_channel_id", "fwd_message_id"]).agg(
        origin_posted_at=("origin_posted_at", "first"), forwards=("channel_id", "size"),
        channels=("channel_id", "nunique"), first_forward_at=("posted_at", "min"), first_lag_s=("lag_s", "min"),
        median_lag_s=("lag_s", "median"), origin_views=("origin_views", "first"),
        forward_views=("views", "sum"), origin_archived=("origin_archived", "first"),
        origin_deleted=("origin_deleted", "first"), origin_forwards=("origin_forwards", "first"))
    out["reach"] = out.origin_views.fillna(0) + out.forward_views
    out["origin_archived"] = out.origin_archived.fillna(False).astype(bool)
    out["origin_deleted"] = out.origin_deleted.fillna(False).astype(bool)
    out = out.reset_index().sort_values(["forwards", "fwd_channel_id", "fwd_message_id"],
                                        ascending=[False, True, True])
    return len(out)


def _pd_forward_network(path: str) -> int:
    fw = _read(path, "SELECT channel_id, message_id, posted_at, grouped_id, views, fwd_channel_id, fwd_message_id "
                     "FROM posts")
    fw = fw[fw.fwd_channel_id.notna() & fw.fwd_message_id.notna() & (fw.fwd_channel_id != fw.channel_id)].copy()
    fw["unit"] = fw.grouped_id.fillna(-fw.message_id)
    out = fw.groupby(["fwd_channel_id", "channel_id"]).agg(
        forwards=("unit", "nunique"), messages=("message_id", "size"), first_at=("posted_at", "min"),
        last_at=("posted_at", "max"), views=("views", "sum"))
    out = out.reset_index().sort_values(["forwards", "fwd_channel_id", "channel_id"], ascending=[False, True, True])
    return len(out)


def _pd_posting_frequency(path: str) -> int:
    import pandas as pd

    posts = _read(path, "SELECT channel_id, message_id, posted_at, grouped_id FROM posts")
    posts["unit"] = posts.grouped_id.fillna(-posts.message_id)
    units = posts.groupby(["channel_id", "unit"], sort=False).posted_at.min().reset_index()
    units["period"] = units.posted_at.dt.floor("D")
    counts = units.groupby(["channel_id", "period"]).size()
    spans = counts.reset_index().groupby("channel_id").period.agg(["min", "max"])
    full = pd.MultiIndex.from_tuples(
        [(ch, d) for ch, lo, hi in spans.itertuples() for d in pd.date_range(lo, hi, freq="D")],
        names=["channel_id", "period"])
    return len(counts.reindex(full, fill_value=0))


def _pd_url_spread(path: str) -> int:
    from collector.urls import canonical_urls

    # the stored canonical URLs, like the library; rows written without them get them computed here
    posts = _read(path, "SELECT channel_id, message_id, posted_at, "
                        "coalesce(canonical_urls, CASE WHEN len(urls) > 0 THEN urls END) AS urls, "
                        "canonical_urls IS NULL AS raw FROM posts WHERE len(urls) > 0")
    raw = posts.raw.to_numpy()
    if raw.any():
        posts.loc[raw, "urls"] = posts.loc[raw, "urls"].map(lambda u: canonical_urls(list(u)))
    u = posts.explode("urls").rename(columns={"urls": "url"})
    u = u[u.url.notna() & (u.url != "")].drop_duplicates(["channel_id", "message_id", "url"])
    u = u.sort_values(["posted_at", "channel_id", "message_id"])
    agg = u.groupby("url").agg(first_channel_id=("channel_id", "first"), first_message_id=("message_id", "first"),
                               first_posted_at=("posted_at", "first"), last_posted_at=("posted_at", "max"),
                               posts=("message_id", "size"), channels=("channel_id", "nunique"))
    agg["domain"] = agg.index.str.extract(r"://\[?([^/?\\:\]]*)", expand=False)
    per_channel = u.groupby(["url", "channel_id"]).posted_at.min().reset_index()
    per_channel = per_channel.merge(agg[["first_channel_id", "first_posted_at"]], left_on="url", right_index=True)
    per_channel = per_channel[per_channel.channel_id != per_channel.first_channel_id]
    lag = (per_channel.posted_at - per_channel.first_posted_at).dt.total_seconds()
    agg["median_lag_s"] = lag.groupby(per_channel.url).median()
    agg = agg.reset_index().sort_values(["channels", "first_posted_at", "first_channel_id", "first_message_id", "url"],
                                        ascending=[False, True, True, True, True])
    return len(agg)


PANDAS: dict[str, Callable[[str], int]] = {
    "cascades": _pd_cascades,
    "forward_network": _pd_forward_network,
    "posting_frequency": _pd_posting_frequency,
    "url_spread": _pd_url_spread,
}


# ---- measuring -----------------------------------------------------------------------------------

def _measure_here(impl: str, name: str, path: str, repeat: int) -> dict[str, Any]:
    """Runs in the child process: wall and CPU seconds of each of ``repeat`` runs, rows, peak RSS."""
    fn: Callable[[str], int] = PANDAS[name] if impl == "pandas" else (lambda p: _library(name, p))
    walls: list[float] = []
    cpus: list[float] = []
    rows = 0
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        rows = fn(path)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    best = min(range(repeat), key=walls.__getitem__)
    return {"seconds": walls[best], "median_seconds": statistics.median(walls), "cpu_seconds": cpus[best],
            "runs": repeat, "rows": rows, "peak_rss_mb": peak_mb}


def _measure(impl: str, name: str, path: Path, repeat: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.analysis_bench", "--measure", name, "--impl", impl,
         "--path", str(path), "--repeat", str(repeat)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(posts: int = 10_000_000, channels: int = 5_000, *, pandas_repeat: int = 2,
        repeat: int = 5) -> list[dict[str, Any]]:
    """Build (or reuse) the synthetic archive, measure every function; one dict per function."""
    path = build(posts, channels)
    rows: list[dict[str, Any]] = []
    for name in FUNCTIONS:
        lib = _measure("analysis", name, path, repeat)
        pdm = _measure("pandas", name, path, pandas_repeat)
        ratio = pdm["seconds"] / lib["seconds"] if lib["seconds"] else float("inf")
        rows.append({
            "benchmark": f"analysis.{name}", "posts": posts, "channels": channels,
            "seconds": round(lib["seconds"], 3), "median_seconds": round(lib["median_seconds"], 3),
            "cpu_seconds": round(lib["cpu_seconds"], 3), "runs": lib["runs"],
            "pandas_seconds": round(pdm["seconds"], 3), "pandas_median_seconds": round(pdm["median_seconds"], 3),
            "pandas_cpu_seconds": round(pdm["cpu_seconds"], 3), "pandas_runs": pdm["runs"],
            "load_avg_1m": round(os.getloadavg()[0], 1),
            "speedup": round(ratio, 1), "peak_rss_mb": round(lib["peak_rss_mb"], 1),
            "pandas_peak_rss_mb": round(pdm["peak_rss_mb"], 1), "rows": lib["rows"], "pandas_rows": pdm["rows"],
            "rows_match": lib["rows"] == pdm["rows"],
            "ok": lib["seconds"] <= TARGET_S and ratio >= TARGET_RATIO and lib["peak_rss_mb"] <= TARGET_RSS_MB,
        })
    return rows


# ---- prototype: a write-time URL index (not part of the archive; measures what one would gain) ------------

#: The tables a writer could maintain beside ``posts`` (see the report of issue #4 part 4): one row per
#: canonical URL with a dense integer id and its domain, one row per (post, URL). Built here from the
#: archive into a side file, so that url_spread's aggregations run on integer keys only.
URL_INDEX_SQL = """
ATTACH '{archive}' AS a (READ_ONLY);
SET TimeZone = 'UTC';
CREATE TABLE urls AS
    SELECT row_number() OVER (ORDER BY url) AS url_id, url, {domain} AS domain
    FROM (SELECT DISTINCT unnest(canonical_urls) AS url FROM a.posts WHERE len(canonical_urls) > 0)
    WHERE url <> '';
CREATE TABLE post_urls AS
    SELECT p.channel_id, p.message_id, p.posted_at, p.is_forward, u.url_id
    FROM (SELECT DISTINCT channel_id, message_id, posted_at,
                 fwd_posted_at IS NOT NULL OR fwd_channel_id IS NOT NULL AS is_forward,
                 unnest(canonical_urls) AS url
          FROM a.posts WHERE len(canonical_urls) > 0) p
    JOIN urls u USING (url)
    ORDER BY p.channel_id, p.message_id;
"""

#: url_spread over the index: the same two aggregation levels as analysis.links, keyed by url_id.
URL_INDEX_QUERY = """
WITH pc AS (
    SELECT url_id, min((epoch_us(posted_at)::HUGEINT << 72) + (channel_id::HUGEINT << 32) + message_id) AS fk,
           max(epoch_us(posted_at)) AS last_us, count(*) AS posts
    FROM post_urls GROUP BY url_id, channel_id
),
pc2 AS (SELECT url_id, fk, (fk >> 72)::BIGINT AS first_us, last_us, posts FROM pc),
agg AS (
    SELECT url_id, min(fk) AS fk, max(first_us) AS max_first_us, max(last_us) AS last_us,
           sum(posts)::BIGINT AS posts, count(*) AS channels,
           CASE WHEN count(*) > 2 THEN list_sort(list(first_us)) END AS s
    FROM pc2 GROUP BY url_id
)
SELECT u.url, u.domain, (fk >> 72)::BIGINT AS first_us, ((fk >> 32) & 1099511627775)::BIGINT AS first_channel_id,
       (fk & 4294967295)::BIGINT AS first_message_id, last_us, posts, channels,
       CASE WHEN channels = 2 THEN (max_first_us - (fk >> 72)::BIGINT)::DOUBLE
            WHEN channels > 2 AND channels % 2 = 0 THEN (s[channels // 2 + 1] - (fk >> 72)::BIGINT)::DOUBLE
            WHEN channels > 2 THEN (s[(channels + 1) // 2] + s[(channels + 3) // 2]) / 2 - (fk >> 72)::BIGINT
       END AS median_lag_us
FROM agg JOIN urls u USING (url_id)
"""


def _url_index_path(archive: Path) -> Path:
    return archive.with_name(archive.stem + "-urlindex.duckdb")


def build_url_index(archive: Path) -> Path:
    """The prototype index for ``archive`` in a side file (cached next to it)."""
    from analysis.links import DOMAIN_SQL

    target = _url_index_path(archive)
    if not target.exists():
        tmp = target.with_suffix(".building.duckdb")
        tmp.unlink(missing_ok=True)
        con = duckdb.connect(str(tmp))
        try:
            con.execute(URL_INDEX_SQL.format(archive=str(archive), domain=DOMAIN_SQL))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        tmp.rename(target)
    return target


def _url_spread_indexed(path: str) -> Any:
    """url_spread's frame from the prototype index (timed like the library: open, query, Polars, order)."""
    import polars as pl

    from analysis.frames import conform
    from analysis.links import _ordered

    con = duckdb.connect(path, read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        df = con.sql(URL_INDEX_QUERY).pl()
    finally:
        con.close()
    out = df.with_columns(
        (pl.col("median_lag_us") / 1e6).alias("median_lag_s"),
        pl.from_epoch(pl.col("first_us"), "us").dt.replace_time_zone("UTC").alias("first_posted_at"),
        pl.from_epoch(pl.col("last_us"), "us").dt.replace_time_zone("UTC").alias("last_posted_at"),
    )
    return conform(_ordered(out), "url_spread")


def url_index_prototype(posts: int, channels: int, repeat: int = 3) -> dict[str, Any]:
    """Time url_spread from the prototype index against analysis.url_spread; check both agree."""
    import analysis

    archive = build(posts, channels)
    index = build_url_index(archive)
    times: dict[str, list[float]] = {"library": [], "indexed": []}
    frames: dict[str, Any] = {}
    for _ in range(repeat):
        t = time.perf_counter()
        con = analysis.connect(archive)
        frames["library"] = analysis.url_spread(con)
        con.close()
        times["library"].append(time.perf_counter() - t)
        t = time.perf_counter()
        frames["indexed"] = _url_spread_indexed(str(index))
        times["indexed"].append(time.perf_counter() - t)
    return {
        "library_seconds": min(times["library"]), "library_median": statistics.median(times["library"]),
        "indexed_seconds": min(times["indexed"]), "indexed_median": statistics.median(times["indexed"]),
        "equal": bool(frames["library"].equals(frames["indexed"])), "rows": frames["library"].height,
        "index_mb": round(index.stat().st_size / 2**20, 1),
    }


#: What each side of a comparison includes, printed under the table.
INCLUDES = """both sides start from the closed archive file and are timed from opening it:
  library: analysis.connect (read-only) + the function (DuckDB reads the columns it needs) -> Polars frame,
           in the function's schema and order
  pandas:  duckdb.connect + SELECT <needed columns> FROM posts -> pandas DataFrame, then filter/merge/groupby/
           sort in pandas to the same rows, columns and order (no SQL aggregation on the pandas side)
speed-up = best pandas wall time / best library wall time, measured one after the other in this run"""


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'function':28} {'best s':>7} {'med s':>7} {'cpu s':>6} {'pandas s':>9} {'pd med':>7} {'pd cpu':>7} "
          f"{'speedup':>8} {'peak MB':>8} {'pd MB':>7} {'rows':>10} {'load':>5} ok")
    for r in rows:
        print(f"{r['benchmark']:28} {r['seconds']:7.3f} {r['median_seconds']:7.3f} {r['cpu_seconds']:6.2f} "
              f"{r['pandas_seconds']:9.3f} {r['pandas_median_seconds']:7.3f} {r['pandas_cpu_seconds']:7.2f} "
              f"{r['speedup']:7.1f}x {r['peak_rss_mb']:8.0f} {r['pandas_peak_rss_mb']:7.0f} {r['rows']:10,} "
              f"{r['load_avg_1m']:5.1f} {'yes' if r['ok'] else 'NO'}"
              + ("" if r["rows_match"] else f"  (pandas rows {r['pandas_rows']:,} differ!)"))
    print(f"targets: <= {TARGET_S:g} s, >= {TARGET_RATIO:g}x pandas, peak RSS <= {TARGET_RSS_MB:g} MB "
          f"(times are wall clock, best and median of {rows[0]['runs'] if rows else 0} library runs and "
          f"{rows[0]['pandas_runs'] if rows else 0} pandas runs; 'load' is the 1-minute load average: "
          f"other work on the machine slows both)")
    print(INCLUDES)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description="Benchmark the analysis core against pandas.")
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=5_000)
    parser.add_argument("--pandas-repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--url-index-prototype", action="store_true",
                        help="only time url_spread from a prototype write-time URL index (side file) "
                             "against the library")
    parser.add_argument("--measure", choices=FUNCTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=("analysis", "pandas"), default="analysis", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="library runs per function (default 5)")
    args = parser.parse_args(argv)
    if args.measure:  # child process: one measurement, JSON on stdout
        print(json.dumps(_measure_here(args.impl, args.measure, args.path, args.repeat)))
        return []
    if args.url_index_prototype:
        print(json.dumps(url_index_prototype(args.posts, args.channels)))
        return []
    rows = run(args.posts, args.channels, pandas_repeat=args.pandas_repeat, repeat=args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        _print(rows)
    return rows


if __name__ == "__main__":
    main()
