"""The four spread metrics on DuckDB and on Spark ``local[2]`` over one lake: time, peak memory, results compared.

On a synthetic archive (:mod:`benchmarks.synth_archive`) published in full to a lake (both built once and cached
under ``$TGSPREAD_BENCH_DATA`` by :func:`benchmarks.lake_data.archive_and_lake`), each metric runs in its
own process per engine: DuckDB through ``analysis.<metric>(analysis.connect(lake))``, Spark
through ``analysis.spark.run`` (a fresh ``local[2]`` session; its start is timed apart). Memory: DuckDB's
process peak RSS; Spark's: the Python driver's peak plus the JVM's RSS at the end (psutil), its peak
  as the JVM's resident high-water mark (``VmHWM``) where Linux gives it. The two frames are
written to Parquet and compared with ``polars.testing.assert_frame_equal``.

Example::

    python -m benchmarks.spark_bench --posts 1000000 --channels 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .lake_data import archive_and_lake, child
from .lake_data import peak_mb as _peak_mb

METRICS = ("cascades", "forward_network", "posting_frequency", "url_spread")


def _jvm_peak_mb(pid: int) -> float:
    """The resident high-water mark of process ``pid`` (the JVM), in MB; 0 when Linux does not say."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _step_duckdb(lake: str, name: str, out: str) -> dict[str, Any]:
    import analysis

    con = analysis.connect(lake)
    fn = getattr(analysis, name)
    kwargs: dict[str, object] = {}
    t = time.perf_counter()
    df = fn(con, **kwargs)
    seconds = time.perf_counter() - t
    df.write_parquet(out)
    return {"seconds": round(seconds, 2), "rows": df.height, "peak_rss_mb": _peak_mb()}


def _step_spark(lake: str, name: str, out: str) -> dict[str, Any]:
    import psutil

    from analysis import spark as aspark

    t = time.perf_counter()
    spark = aspark.session("local[2]", conf={"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "8"})
    start_s = time.perf_counter() - t
    t = time.perf_counter()
    df = aspark.run(spark, lake, name)
    seconds = time.perf_counter() - t
    kids = psutil.Process().children(recursive=True)
    jvm = sum(max(c.memory_info().rss / 2**20, _jvm_peak_mb(c.pid)) for c in kids)
    spark.stop()
    df.write_parquet(out)
    return {"seconds": round(seconds, 2), "start_s": round(start_s, 1), "rows": df.height,
            "peak_rss_mb": round(_peak_mb() + jvm, 1), "jvm_rss_mb": round(jvm, 1)}


#: Longest a Spark metric may run (session start included) before the row says it timed out.
STEP_TIMEOUT_S = float(os.environ.get("TGSPREAD_SPARK_STEP_TIMEOUT", "1800"))


def _child(*args: str) -> dict[str, Any]:
    return child("benchmarks.spark_bench", *args, timeout=STEP_TIMEOUT_S)


def run(posts: int = 10_000_000, channels: int = 5_000, metrics: tuple[str, ...] = METRICS) -> list[dict[str, Any]]:
    """Rows in the ``benchmarks.run`` shape: per metric, DuckDB and Spark time, memory, and whether they agree."""
    import polars as pl
    from polars.testing import assert_frame_equal

    _archive, lake = archive_and_lake(posts, channels)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="spark-bench-", dir=lake.parent) as tmp:
        lake_mb = sum(p.stat().st_size for p in lake.rglob("*.parquet")) / 2**20
        for name in metrics:
            a, b = Path(tmp) / f"{name}-duckdb.parquet", Path(tmp) / f"{name}-spark.parquet"
            duck = _child("duckdb", str(lake), name, str(a))
            try:
                spark = _child("spark", str(lake), name, str(b))
            except subprocess.TimeoutExpired:
                rows.append({"benchmark": f"spark: {name}", "value": "timeout", "unit": "s", "target": "-",
                             "ok": False, "note": f"{posts:,} posts; Spark local[2] ran over {STEP_TIMEOUT_S:.0f} s "
                                                  f"and was stopped; DuckDB {duck['seconds']} s, peak "
                                                  f"{duck['peak_rss_mb']} MB"})
                continue
            except subprocess.CalledProcessError as exc:       # e.g. no Java: the row says what went wrong
                last = ((exc.stderr or "").strip().splitlines() or ["?"])[-1][:160]
                rows.append({"benchmark": f"spark: {name}", "value": "failed", "unit": "s", "target": "-",
                             "ok": False, "note": f"{posts:,} posts; Spark exit {exc.returncode}: {last}"})
                continue
            try:
                assert_frame_equal(pl.read_parquet(a), pl.read_parquet(b))
                same = "equal"
            except AssertionError as exc:
                same = f"DIFFERENT: {str(exc).splitlines()[0]}"
            rows.append({"benchmark": f"spark: {name}", "value": spark["seconds"], "unit": "s", "target": "-",
                         "ok": same == "equal",
                         "note": f"{posts:,} posts, lake {lake_mb:.0f} MB; Spark local[2] {spark['seconds']} s "
                                 f"(+{spark['start_s']} s session start), peak {spark['peak_rss_mb']} MB "
                                 f"(JVM {spark['jvm_rss_mb']} MB); DuckDB {duck['seconds']} s, peak "
                                 f"{duck['peak_rss_mb']} MB; {duck['rows']:,} rows, results {same}"})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=1_000)
    parser.add_argument("--step", nargs="+")
    args = parser.parse_args(argv)
    if args.step:
        step, *rest = args.step
        print(json.dumps({"duckdb": _step_duckdb, "spark": _step_spark}[step](*rest)))
        return
    for row in run(args.posts, args.channels):
        print(f"{row['benchmark']:<28} {row['value']:>8} {row['unit']}  {row['note']}")


if __name__ == "__main__":
    main()
