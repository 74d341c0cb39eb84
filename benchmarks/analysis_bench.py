"""Benchmark of the analysis core against straightforward pandas, on a synthetic archive.

For each of cascades, forward_network, posting_frequency and url_spread: the library call (best of
3, each with a fresh connection, connect included) and the same metric computed the obvious pandas
way (read only the needed columns into pandas, then filter, merge and group), each measured in its
own subprocess so that its peak RSS is its own. Both sides are timed from opening the archive: pandas
reads only the columns its metric needs (DuckDB -> pandas) and that read is part of its time, as
connecting and reading are part of the library's. Targets (issue #4): <= 2 s per function on 10M posts,
>= 10x faster than pandas, peak memory <= 2 GB. CPU seconds (all threads) are reported beside wall
seconds because the machine is shared: wall time depends on what else runs, CPU time much less.

Usage::

    python -m benchmarks.analysis_bench [--posts 10000000 --channels 5000] [--pandas-repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from .synth_archive import build

__all__ = ["FUNCTIONS", "main", "run"]

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
    posts = _read(path, "SELECT channel_id, message_id, posted_at, views, fwd_channel_id, fwd_message_id, "
                       "fwd_posted_at FROM posts")
    fw = posts[posts.fwd_channel_id.notna() & posts.fwd_message_id.notna()].copy()
    origins = posts[["channel_id", "message_id", "posted_at", "views"]].rename(columns={
        "channel_id": "fwd_channel_id", "message_id": "fwd_message_id", "posted_at": "o_posted_at",
        "views": "origin_views"})
    fw = fw.merge(origins, on=["fwd_channel_id", "fwd_message_id"], how="left")
    fw["origin_posted_at"] = fw.o_posted_at.fillna(fw.fwd_posted_at)
    fw["lag_s"] = (fw.posted_at - fw.origin_posted_at).dt.total_seconds()
    out = fw.groupby(["fwd_channel_id", "fwd_message_id"]).agg(
        origin_posted_at=("origin_posted_at", "min"), forwards=("channel_id", "size"),
        channels=("channel_id", "nunique"), first_forward_at=("posted_at", "min"), first_lag_s=("lag_s", "min"),
        median_lag_s=("lag_s", "median"), origin_views=("origin_views", "first"),
        forward_views=("views", "sum"))
    out["reach"] = out.origin_views.fillna(0) + out.forward_views
    return len(out.sort_values("forwards", ascending=False))


def _pd_forward_network(path: str) -> int:
    fw = _read(path, "SELECT channel_id, message_id, posted_at, grouped_id, views, fwd_channel_id, fwd_message_id "
                     "FROM posts")
    fw = fw[fw.fwd_channel_id.notna() & fw.fwd_message_id.notna() & (fw.fwd_channel_id != fw.channel_id)].copy()
    fw["unit"] = fw.grouped_id.fillna(-fw.message_id)
    out = fw.groupby(["fwd_channel_id", "channel_id"]).agg(
        forwards=("unit", "nunique"), messages=("message_id", "size"), first_at=("posted_at", "min"),
        last_at=("posted_at", "max"), views=("views", "sum"))
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
    """Runs in the child process: best time over ``repeat`` runs, rows, and this process's peak RSS."""
    fn: Callable[[str], int] = PANDAS[name] if impl == "pandas" else (lambda p: _library(name, p))
    best, cpu, rows = float("inf"), float("inf"), 0
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        rows = fn(path)
        wall = time.perf_counter() - t
        if wall < best:
            best, cpu = wall, time.process_time() - c
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return {"seconds": best, "cpu_seconds": cpu, "rows": rows, "peak_rss_mb": peak_mb}


def _measure(impl: str, name: str, path: Path, repeat: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.analysis_bench", "--measure", name, "--impl", impl,
         "--path", str(path), "--repeat", str(repeat)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(posts: int = 10_000_000, channels: int = 5_000, *, pandas_repeat: int = 1) -> list[dict[str, Any]]:
    """Build (or reuse) the synthetic archive, measure every function; one dict per function."""
    path = build(posts, channels)
    rows: list[dict[str, Any]] = []
    for name in FUNCTIONS:
        lib = _measure("analysis", name, path, 3)
        pdm = _measure("pandas", name, path, pandas_repeat)
        ratio = pdm["seconds"] / lib["seconds"] if lib["seconds"] else float("inf")
        rows.append({
            "benchmark": f"analysis.{name}", "posts": posts, "channels": channels,
            "seconds": round(lib["seconds"], 3), "cpu_seconds": round(lib["cpu_seconds"], 3),
            "pandas_seconds": round(pdm["seconds"], 3), "pandas_cpu_seconds": round(pdm["cpu_seconds"], 3),
            "load_avg_1m": round(os.getloadavg()[0], 1),
            "speedup": round(ratio, 1), "peak_rss_mb": round(lib["peak_rss_mb"], 1),
            "pandas_peak_rss_mb": round(pdm["peak_rss_mb"], 1), "rows": lib["rows"], "pandas_rows": pdm["rows"],
            "ok": lib["seconds"] <= TARGET_S and ratio >= TARGET_RATIO and lib["peak_rss_mb"] <= TARGET_RSS_MB,
        })
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'function':28} {'seconds':>8} {'cpu s':>7} {'pandas s':>9} {'pd cpu':>7} {'speedup':>8} "
          f"{'peak MB':>8} {'pd MB':>7} {'rows':>10} {'load':>5} ok")
    for r in rows:
        print(f"{r['benchmark']:28} {r['seconds']:8.3f} {r['cpu_seconds']:7.2f} {r['pandas_seconds']:9.3f} "
              f"{r['pandas_cpu_seconds']:7.2f} {r['speedup']:7.1f}x {r['peak_rss_mb']:8.0f} "
              f"{r['pandas_peak_rss_mb']:7.0f} {r['rows']:10,} {r['load_avg_1m']:5.1f} {'yes' if r['ok'] else 'NO'}")
    print(f"targets: <= {TARGET_S:g} s, >= {TARGET_RATIO:g}x pandas, peak RSS <= {TARGET_RSS_MB:g} MB "
          f"(times are wall clock; 'load' is the 1-minute load average: other work on the machine slows both)")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description="Benchmark the analysis core against pandas.")
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=5_000)
    parser.add_argument("--pandas-repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--measure", choices=FUNCTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=("analysis", "pandas"), default="analysis", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # child process: one measurement, JSON on stdout
        print(json.dumps(_measure_here(args.impl, args.measure, args.path, args.repeat)))
        return []
    rows = run(args.posts, args.channels, pandas_repeat=args.pandas_repeat)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        _print(rows)
    return rows


if __name__ == "__main__":
    main()
