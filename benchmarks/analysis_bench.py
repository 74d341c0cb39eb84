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

__all__ = ["FUNCTIONS", "main", "run"]

FUNCTIONS = ("cascades", "forward_network", "posting_frequency", "url_spread")
#: Issue #16's functions, with their own targets (no speed-up target; velocity has no pandas twin).
SLOW_FUNCTIONS = ("coordination", "velocity")
TARGET_SLOW_S = 10.0
TARGET_S = 2.0
TARGET_RATIO = 10.0
TARGET_RSS_MB = 2048.0


# ---- the library ---------------------------------------------------------------------------------

def _library(name: str, path: str) -> int:
    import analysis

    con = analysis.connect(path)
    try:
        if name == "coordination":          # the default window, kinds and null model; rows = tested pairs
            return int(analysis.coordination(con).pairs.height)
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
    from analysis.urls import canonical_urls

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


def _pd_coordination(path: str) -> int:
    """The candidate pairs of analysis.coordination (default window 5 min, min_repeats 3, cap 50 per object
    and slot) the obvious pandas way: first action per (object, channel), merge with itself on (object,
    slot) and (object, next slot), keep gaps <= window between different channels, count per channel pair.
    Forwards and canonical URLs (the synthetic texts are too short to be copies); no null model (its cost
    is small next to the join), so this side does less than the library."""
    from analysis.urls import canonical_urls

    w = 300 * 1_000_000
    posts = _read(path, "SELECT channel_id, message_id, posted_at, grouped_id, fwd_channel_id, fwd_message_id, "
                        "coalesce(canonical_urls, urls) AS urls, canonical_urls IS NULL AS raw FROM posts")
    posts["t"] = posts.posted_at.dt.as_unit("us").astype("int64")          # epoch microseconds
    fw = posts[posts.fwd_channel_id.notna() & posts.fwd_message_id.notna()].copy()
    album = fw.grouped_id.notna()
    first_item = fw[album].groupby(["channel_id", "grouped_id"]).message_id.transform("min")
    fw = fw[~album | (fw.message_id == first_item.reindex(fw.index))]
    fw["obj"] = ("f" + fw.fwd_channel_id.astype("int64").astype(str) + "/"
                 + fw.fwd_message_id.astype("int64").astype(str))
    nf = posts[posts.fwd_channel_id.isna() & posts.urls.map(len).gt(0)].copy()
    raw = nf.raw.to_numpy()
    if raw.any():
        nf.loc[raw, "urls"] = nf.loc[raw, "urls"].map(lambda u: canonical_urls(list(u)))
    nf = nf.explode("urls").rename(columns={"urls": "obj"})
    nf = nf[nf.obj.notna() & (nf.obj != "")]
    nf["obj"] = "u" + nf.obj
    occ = pd_concat([fw[["obj", "channel_id", "message_id", "t"]], nf[["obj", "channel_id", "message_id", "t"]]])
    occ = occ.sort_values("t").drop_duplicates(["obj", "channel_id"])
    occ = occ[occ.groupby("obj").channel_id.transform("size") >= 2]
    occ["slot"] = occ.t // w
    occ = occ[occ.groupby(["obj", "slot"]).cumcount() < 50]
    same = occ.merge(occ, on=["obj", "slot"], suffixes=("_a", "_b"))
    same = same[(same.t_a < same.t_b) | ((same.t_a == same.t_b) & (same.channel_id_a < same.channel_id_b))]
    nxt = occ.assign(slot=occ.slot + 1).merge(occ, on=["obj", "slot"], suffixes=("_a", "_b"))
    nxt = nxt[nxt.t_b - nxt.t_a <= w]
    pairs = pd_concat([same, nxt])
    pairs = pairs[pairs.channel_id_a != pairs.channel_id_b]
    a = pairs[["channel_id_a", "channel_id_b"]].min(axis=1)
    b = pairs[["channel_id_a", "channel_id_b"]].max(axis=1)
    weight = pairs.groupby([a, b]).size()
    return int((weight >= 3).sum())


def pd_concat(frames: list[Any]) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


PANDAS: dict[str, Callable[[str], int]] = {
    "coordination": _pd_coordination,
    "cascades": _pd_cascades,
    "forward_network": _pd_forward_network,
    "posting_frequency": _pd_posting_frequency,
    "url_spread": _pd_url_spread,
}


# ---- measuring -----------------------------------------------------------------------------------

def _measure_here(impl: str, name: str, path: str, repeat: int) -> dict[str, Any]:
    """Runs in the child process: wall and CPU seconds of each of ``repeat`` runs, rows, peak RSS."""
    fn: Callable[[str], int] = PANDAS[name] if impl == "pandas" else (
        lambda p: _library(name, p))
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
    """Build (or reuse) the synthetic archive, measure every function (computed from posts); one dict each."""
    path = build(posts, channels)
    rows: list[dict[str, Any]] = []
    for name in FUNCTIONS:
        lib = _measure("analysis", name, path, repeat)
        pdm = _measure("pandas", name, path, pandas_repeat)
        ratio = pdm["seconds"] / lib["seconds"] if lib["seconds"] else float("inf")
        row: dict[str, Any] = {
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
        }
        rows.append(row)
    rows += run_slow(path, posts, repeat=min(repeat, 3), pandas_repeat=min(pandas_repeat, 1))
    return rows


def ensure_observations(path: Path) -> int:
    """Give the synthetic archive re-observations if it has none: every post observed at 1 h 10 min and at
    6 h 30 min of age (views, forwards, reactions growing towards their final value), as a collector
    running every few minutes would record them. Returns the number of observation rows."""
    con = duckdb.connect(str(path))
    try:
        n = con.execute("SELECT count(*) FROM post_observations").fetchall()[0][0]
        if n == 0:
            con.execute("""
                INSERT INTO post_observations (channel_id, message_id, observed_at, views, forwards, replies, reactions)
                SELECT channel_id, message_id, posted_at + to_microseconds(a::BIGINT * 1000000),
                       (views * f)::BIGINT, (forwards * f)::BIGINT, replies, (reactions * f)::BIGINT
                FROM posts, (VALUES (4200, 0.3), (23400, 0.8)) AS c(a, f)
            """)
            n = con.execute("SELECT count(*) FROM post_observations").fetchall()[0][0]
    finally:
        con.close()
    return int(n)


def run_slow(path: Path, posts: int, *, repeat: int = 3, pandas_repeat: int = 1) -> list[dict[str, Any]]:
    """coordination (default window 5 min, default kinds and null model) beside its pandas twin, and velocity
    (1 h and 6 h checkpoints), each in its own process; rows in the table's shape (target <= 10 s, <= 2 GB)."""
    observations = ensure_observations(path)
    out: list[dict[str, Any]] = []
    for name in SLOW_FUNCTIONS:
        lib = _measure("analysis", name, path, repeat)
        extra = f"{observations:,} observations; " if name == "velocity" else ""
        out.append({"benchmark": f"analysis.{name}: time", "value": round(lib["seconds"], 3), "unit": "s",
                    "target": f"<= {TARGET_SLOW_S:g}", "ok": lib["seconds"] <= TARGET_SLOW_S,
                    "note": f"{posts:,} posts, {extra}{lib['rows']:,} result rows; median "
                            f"{lib['median_seconds']:.3f} s, cpu {lib['cpu_seconds']:.2f} s, "
                            f"load {os.getloadavg()[0]:.1f}"})
        out.append({"benchmark": f"analysis.{name}: peak RSS", "value": round(lib["peak_rss_mb"], 1), "unit": "MB",
                    "target": f"<= {TARGET_RSS_MB:g}", "ok": lib["peak_rss_mb"] <= TARGET_RSS_MB, "note": ""})
        if name == "coordination":
            try:
                pdm = _measure("pandas", name, path, pandas_repeat)
                note = (f"{pdm['rows']:,} candidate pairs (library: {lib['rows']:,} tested pairs); peak RSS "
                        f"{pdm['peak_rss_mb']:.0f} MB; {pdm['seconds'] / lib['seconds']:.1f}x the library's time")
                value: Any = round(pdm["seconds"], 3)
            except subprocess.CalledProcessError as exc:      # e.g. killed for memory
                value, note = "failed", f"exit {exc.returncode}: {(exc.stderr or '').strip().splitlines()[-1:]}"
            out.append({"benchmark": "analysis.coordination: straightforward pandas", "value": value, "unit": "s",
                        "target": "-", "ok": None, "note": note})
    return out


INCLUDES = """both sides start from the closed archive file and are timed from opening it:
  library: analysis.connect (read-only) + the function with its defaults -> Polars frame, in the function's
           schema and order, computed from posts (DuckDB reads the columns it needs; nothing is stored since
           migration 0009)
  pandas:  duckdb.connect + SELECT <needed columns> FROM posts -> pandas DataFrame, then filter/merge/groupby/
           sort in pandas to the same rows, columns and order (no SQL aggregation on the pandas side)
speed-up = best pandas wall time / best library wall time, measured one after the other in this run"""


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'function':28} {'best s':>7} {'med s':>7} {'cpu s':>6} {'pandas s':>9} {'pd med':>7} {'pd cpu':>7} "
          f"{'speedup':>8} {'peak MB':>8} {'pd MB':>7} {'rows':>10} {'load':>5} ok")
    for r in rows:
        if "speedup" not in r:             # issue #16's rows, already in the table's shape
            print(f"{r['benchmark']:45} {r['value']!s:>9} {r['unit']:3} {r['target']:>7} "
                  f"{'' if r['ok'] is None else 'yes' if r['ok'] else 'NO'}  {r['note']}")
            continue
        print(f"{r['benchmark']:28} {r['seconds']:7.3f} {r['median_seconds']:7.3f} {r['cpu_seconds']:6.2f} "
              f"{r['pandas_seconds']:9.3f} {r['pandas_median_seconds']:7.3f} {r['pandas_cpu_seconds']:7.2f} "
              f"{r['speedup']:7.1f}x {r['peak_rss_mb']:8.0f} {r['pandas_peak_rss_mb']:7.0f} {r['rows']:10,} "
              f"{r['load_avg_1m']:5.1f} {'yes' if r['ok'] else 'NO'}"
              + ("" if r["rows_match"] else f"  (pandas rows {r['pandas_rows']:,} differ!)"))
    runs = next((r for r in rows if "runs" in r), {"runs": 0, "pandas_runs": 0})
    print(f"targets: <= {TARGET_S:g} s, >= {TARGET_RATIO:g}x pandas, peak RSS <= {TARGET_RSS_MB:g} MB "
          f"(times are wall clock, best and median of {runs['runs']} library runs and "
          f"{runs['pandas_runs']} pandas runs; 'load' is the 1-minute load average: "
          f"other work on the machine slows both)")
    print(INCLUDES)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description="Benchmark the analysis core against pandas.")
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=5_000)
    parser.add_argument("--pandas-repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--measure", choices=FUNCTIONS + SLOW_FUNCTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=("analysis", "pandas"), default="analysis",
                        help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="library runs per function (default 5)")
    args = parser.parse_args(argv)
    if args.measure:  # child process: one measurement, JSON on stdout
        print(json.dumps(_measure_here(args.impl, args.measure, args.path, args.repeat)))
        return []
    rows = run(args.posts, args.channels, pandas_repeat=args.pandas_repeat, repeat=args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        _print(rows)
    return rows


if __name__ == "__main__":
    main()
