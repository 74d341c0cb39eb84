"""Benchmark data for the lake and Spark benchmarks: where it lives, a synthetic archive and its lake, and a lake
generated directly as Parquet (100M posts without an archive), plus the child-process plumbing both use.

- :func:`data_dir`: ``$TGSPREAD_BENCH_DATA`` when set (e.g. ``/work/benchdata/me``), else ``benchmarks/.cache``.
  Everything built here is cached there by size and reused.
- :func:`archive_and_lake`: the synthetic archive (:mod:`benchmarks.synth_archive`, a real archive) of a size,
  published in full by ``collector._archive.lake.publish`` (cached beside it; a lake of an archive reads the same as
  any lake).
- :func:`generate_lake`: a lake of ``posts`` posts written straight from DuckDB SQL (``range()``), with no archive:
  the synthetic archive's own post generator (:data:`benchmarks.synth_archive._POSTS`, so the shape is the same),
  the lake's partitions and file names, sorted as publish sorts, and the columns and types of
  :data:`analysis._lake_schema.LAKE_SCHEMA` (made from the migrations and pinned to what publish writes by
  ``tests/integration/test_lake.py``): a column the generator does not fill is a typed NULL. ``canonical_urls``
  is computed with plain string functions (https, no ``www.``, no ``utm_`` parameters: what ``analysis._urls`` makes of
  the synthetic URLs) instead of by ``analysis._urls`` in Python, which would take minutes at 100M; hidden senders'
  names are hex strings like the pseudonyms publish writes. One manifest (``_manifests/gen.json``) makes the files
  a collector's. Resumable: a generation stopped midway (``.slots-done`` in the ``.building`` directory) goes on
  with the slots it had not finished.

Example::

    python -m benchmarks.lake_data --generate 100000000 --channels 20000     # prints the lake's path
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["archive_and_lake", "child", "data_dir", "generate_lake", "peak_mb"]

ROOT = Path(__file__).resolve().parents[1]
#: The collector name of a generated lake's files.
GENERATED = "gen"
#: Bump when the generated lake changes, so cached ones are rebuilt.
GENERATOR_VERSION = 1


def data_dir() -> Path:
    """Where benchmark data is built and cached: ``$TGSPREAD_BENCH_DATA``, else ``benchmarks/.cache``."""
    from .synth_archive import CACHE_DIR

    path = Path(os.environ.get("TGSPREAD_BENCH_DATA") or CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def peak_mb() -> float:
    """This process's peak RSS so far, in MB: ``VmHWM`` of ``/proc/self/status`` where there is one.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries it across ``exec``, so a child started by a large parent
    (``subprocess`` forks, or vforks, it) reports at least the parent's peak. ``VmHWM`` belongs to the memory map
    the ``exec`` made, i.e. to the child alone.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def child(module: str, *args: str, env: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run ``python -m <module> --step <args>`` in a fresh process; its last stdout line, parsed as JSON."""
    out = subprocess.run([sys.executable, "-m", module, "--step", *args], check=True, capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def archive_and_lake(posts: int, channels: int) -> tuple[Path, Path]:
    """The synthetic archive of this size and its lake (a full publish, collector ``main``), both cached.

    The archive is never written to after the publish; a benchmark that writes must copy it first.
    """
    from .synth_archive import VERSION, build

    base = data_dir()
    archive = build(posts, channels, path=base / f"synth-v{VERSION}-{posts}x{channels}.duckdb")
    lake = archive.with_suffix(".lake")
    if not lake.exists():
        work = archive.with_suffix(".publishing.duckdb")
        building = archive.with_suffix(".lake-building")
        shutil.rmtree(building, ignore_errors=True)
        shutil.copy(archive, work)           # publish writes the pseudonym key and clears marks: not the cache
        try:
            child("benchmarks.lake_data", "publish", str(work), str(building))
        finally:
            work.unlink(missing_ok=True)
        building.rename(lake)
    return archive, lake


def _step_publish(archive: str, lake: str) -> dict[str, Any]:
    from collector import Archive
    from collector._archive.lake import publish

    with Archive(archive) as opened:
        t = time.perf_counter()
        report = publish(opened, lake, full=True)
    return {"seconds": round(time.perf_counter() - t, 2), "files": report.files_written, "peak_rss_mb": peak_mb()}


# -- a lake generated directly -------------------------------------------------------------------------------
#: ``canonical_urls`` in SQL (what analysis._urls does to the synthetic URLs, near enough for timing).
_CANONICAL = ("CASE WHEN len(urls) = 0 THEN urls ELSE list_transform(urls, lambda u: 'https://' || "
              "split_part(replace(replace(replace(u, 'https://', ''), 'http://', ''), 'www.', ''), '/?utm_', 1)) END")
#: Columns the generator fills beyond the synthetic archive's own (the rest of the lake's columns are NULL).
_EXTRA = {"fwd_from_name": "CASE WHEN fwd_from_name IS NOT NULL THEN md5('name:' || fwd_from_name)[1:16] END",
          "domains": "NULL"}


def _posts_sql(params: dict[str, Any]) -> str:
    """The synthetic archive's posts (its own generator, without the INSERT) with slot, month, and the lake's
    columns in the lake's order and types."""
    from analysis._lake_schema import LAKE_SCHEMA
    from collector._archive.slots import month_sql, slot_sql

    from .synth_archive import _POSTS

    body = _POSTS[_POSTS.index("WITH base AS"):]
    if "syn_canonical_urls(urls)" not in body:
        raise RuntimeError("benchmarks.synth_archive._POSTS changed: update benchmarks.lake_data._posts_sql")
    body = body.replace("syn_canonical_urls(urls)", _CANONICAL.replace("{", "{{").replace("}", "}}"))
    if "FROM syn_channels c, range(" not in body:
        raise RuntimeError("benchmarks.synth_archive._POSTS changed: update benchmarks.lake_data._posts_sql")
    body = body.replace("FROM syn_channels c, range(", "FROM slot_channels c, range(")   # one slot's channels
    generated = body.format(**params)
    layout, columns = LAKE_SCHEMA["posts"]
    assert layout == "post"
    have = {"channel_id", "message_id", "posted_at", "text", "grouped_id", "views", "forwards", "replies",
            "reactions", "hashtags", "urls", "fwd_channel_id", "fwd_message_id", "fwd_posted_at", "fwd_from_name",
            "first_seen_at", "last_seen_at", "deleted_at", "source", "canonical_urls"}
    select = []
    for name, kind in columns:
        if name == "slot":
            select.append(f"{slot_sql('g.channel_id')} AS slot")
        elif name == "month":
            select.append(f"{month_sql('g.posted_at')} AS month")
        elif name in _EXTRA:
            select.append(f"CAST({_EXTRA[name]} AS {kind}) AS \"{name}\"")
        elif name in have:
            select.append(f"CAST(g.\"{name}\" AS {kind}) AS \"{name}\"")
        else:
            select.append(f"NULL::{kind} AS \"{name}\"")
    return f"SELECT {', '.join(select)} FROM ({generated}) g"


def _channels_sql() -> str:
    from analysis._lake_schema import LAKE_SCHEMA
    from collector._archive.slots import slot_sql

    values = {"channel_id": "channel_id", "username": "'chan' || idx", "title": "'Channel ' || idx",
              "participants_count": "1000 + n_posts * 3", "first_seen_at": "TIMESTAMPTZ '2024-01-01 00:00:00+00'",
              "last_seen_at": "TIMESTAMPTZ '2025-01-01 00:00:00+00'", "source": "'api'"}
    select = [f"{slot_sql('channel_id')} AS slot" if n == "slot" else f"CAST({values[n]} AS {k}) AS \"{n}\""
              if n in values else f"NULL::{k} AS \"{n}\"" for n, k in LAKE_SCHEMA["channels"][1]]
    return f"SELECT {', '.join(select)} FROM slot_channels"


def generated_lake_path(posts: int, channels: int) -> Path:
    return data_dir() / f"lake-gen-v{GENERATOR_VERSION}-{posts}x{channels}"


def generate_lake(posts: int, channels: int, *, dest: Path | None = None, memory_limit: str = "2GB",
                  threads: int = 2) -> Path:
    """Write (or reuse) a lake of about ``posts`` posts over ``channels`` channels straight from SQL; see the
    module doc. Slot by slot, each slot's posts are generated into a temporary table sorted by month and key,
    then copied month by month into ``posts/slot=NN/month=YYYY-MM/gen.parquet`` (zstd, row groups as publish
    writes them). Memory is bounded by one slot's posts (``posts / 64``) and ``memory_limit``."""
    import duckdb

    from collector._archive import migrations
    from collector._archive.lake import MANIFEST_VERSION
    from collector._archive.lake_files import ROW_GROUP_ROWS, partition_name

    from .synth_archive import _SETUP, ID_BASE, ID_STEP

    target = dest or generated_lake_path(posts, channels)
    if target.exists():
        return target
    building = target.with_name(target.name + ".building")
    building.mkdir(parents=True, exist_ok=True)
    done_file = building / ".slots-done"           # resumable: a generation stopped midway goes on from here
    done = {int(x) for x in done_file.read_text().split()} if done_file.exists() else set()
    params = {"posts": posts, "channels": channels, "id_base": ID_BASE, "id_step": ID_STEP,
              "span_s": 365 * 86400, "outside_base": 9_000_000_000}
    t = time.perf_counter()
    spill = building / ".spill"
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads,
                                 "temp_directory": str(spill), "preserve_insertion_order": True})
    try:
        con.execute(_SETUP.format(**params))
        con.execute("ALTER TABLE syn_channels ADD COLUMN s INTEGER")
        from collector._archive.slots import slot_sql

        con.execute(f"UPDATE syn_channels SET s = {slot_sql('channel_id')}")
        posts_sql = _posts_sql(params)
        options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}"
        for s in range(64):
            if s in done:
                continue
            for table in ("posts", "channels"):        # what a stopped run left of this slot
                shutil.rmtree(building / table / partition_name(s, None), ignore_errors=True)
            con.execute("DROP TABLE IF EXISTS slot_channels")
            con.execute(f"CREATE TEMP TABLE slot_channels AS SELECT * FROM syn_channels WHERE s = {s}")
            con.execute("DROP TABLE IF EXISTS slot_posts")
            con.execute(f"CREATE TEMP TABLE slot_posts AS SELECT * FROM ({posts_sql}) "
                        "ORDER BY month, channel_id, message_id")
            for (month,) in con.execute("SELECT DISTINCT month FROM slot_posts ORDER BY 1").fetchall():
                part = building / "posts" / partition_name(s, month)
                part.mkdir(parents=True)
                con.execute(f"COPY (SELECT * EXCLUDE (slot, month) FROM slot_posts WHERE month = '{month}' "
                            f"ORDER BY channel_id, message_id) TO '{part / (GENERATED + '.parquet')}' ({options})")
            if con.execute("SELECT count(*) FROM slot_channels").fetchall()[0][0]:   # publish: no empty files
                part = building / "channels" / partition_name(s, None)
                part.mkdir(parents=True)
                con.execute(f"COPY (SELECT * EXCLUDE (slot) FROM ({_channels_sql()}) ORDER BY channel_id) "
                            f"TO '{part / (GENERATED + '.parquet')}' ({options})")
            with done_file.open("a") as fh:
                fh.write(f"{s}\n")
        files = sum(1 for _ in building.glob("posts/*/*/*.parquet"))
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{building}/posts/*/*/*.parquet')").fetchall()[0][0]
    finally:
        con.close()
    shutil.rmtree(spill, ignore_errors=True)
    done_file.unlink()
    manifest = {"manifest_version": MANIFEST_VERSION, "collector": GENERATED,
                "schema_version": max(m.version for m in migrations.available()),
                "published_at": datetime.now(UTC).isoformat(), "full": True,
                "generated": f"benchmarks.lake_data.generate_lake({posts}, {channels}), the last run "
                             f"{time.perf_counter() - t:.0f} s: {rows:,} posts in {files} files",
                "tables": {"posts": {"layout": "post", "rows": rows}}}
    (building / "_manifests").mkdir()
    (building / "_manifests" / f"{GENERATED}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    building.rename(target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", type=int, metavar="POSTS", help="generate a lake directly (cached)")
    parser.add_argument("--channels", type=int, default=20_000)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--dest", type=Path, help="where (default: cached under the data directory by size)")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        kind, *rest = args.step
        print(json.dumps({"publish": _step_publish}[kind](*rest)))
        return
    if args.generate:
        t = time.perf_counter()
        path = generate_lake(args.generate, args.channels, dest=args.dest, memory_limit=args.memory_limit)
        size = sum(p.stat().st_size for p in path.rglob("*.parquet")) / 1e9
        print(json.dumps({"lake": str(path), "seconds": round(time.perf_counter() - t, 1), "gb": round(size, 2),
                          "peak_rss_mb": peak_mb()}))


if __name__ == "__main__":
    main()
