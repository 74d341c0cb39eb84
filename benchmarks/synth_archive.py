"""A synthetic archive, generated inside DuckDB in seconds, for benchmarking the analysis library.

The file is a real archive: the real migration runner (``collector._archive.archive.Archive``) creates the
schema and its ``schema_migrations`` rows before the rows are generated, so the CLI opens it as it is
(``schema=1`` instead: an archive of migration 0001 only, for measuring later migrations on large files).
Its shape is close to what a
long collection produces: heavy-tailed channel activity; ~20% forwards, mostly of a few popular
channels, each channel taking 80% of its forwards from ~30 favourite sources, ~10% of origins outside
the archive and ~2% from hidden senders; albums; ~2% deleted posts; URL lists with tracking parameters
and ``www.`` variants, with ``canonical_urls`` filled by ``analysis._urls`` as the collector fills it;
short texts. It is deterministic (``setseed``) and cached under
``benchmarks/.cache/`` (``*.duckdb`` is gitignored). ``order="collected"`` stores the posts in the order a
collector appends them (by ``first_seen_at``: one pass after another), the physical order DuckDB's row-group
min/max pruning meets in a real archive; the default leaves the order to DuckDB's parallel insert (channels
and months mixed in every row group, the worst case for pruning).

Example::

    python -m benchmarks.synth_archive --posts 1000000 --channels 500
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import duckdb

from analysis._urls import canonical_urls_column

__all__ = ["CACHE_DIR", "archive_path", "build"]

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
VERSION = 4  # bump when the generator changes, so cached files are rebuilt

#: Channel ids of the synthetic world: 2_000_000_000 + 13 * index (above 2**31, like real ids).
ID_BASE = 2_000_000_000
ID_STEP = 13

_SETUP = """
SET TimeZone = 'UTC';
SELECT setseed(0.42);
CREATE TEMP TABLE syn_channels AS
    WITH w AS (SELECT i, 1.0 / pow(i + 1, 0.8) AS w FROM range({channels}) t(i))
    SELECT i AS idx, {id_base} + {id_step} * i AS channel_id,
           greatest(1, round({posts} * w / sum(w) OVER ())::BIGINT) AS n_posts
    FROM w;
"""

# One row per post. Times are linear in the message id within a channel (so ids ascend with time),
# with jitter below one spacing; album members (4 consecutive ids) share their first member's time.
_POSTS = """
INSERT INTO posts (channel_id, message_id, posted_at, text, grouped_id, views, forwards, replies, reactions,
                   hashtags, urls, fwd_channel_id, fwd_message_id, fwd_posted_at, fwd_from_name,
                   first_seen_at, last_seen_at, deleted_at, source, canonical_urls)
WITH base AS (
    SELECT c.idx, c.channel_id, c.n_posts, m AS message_id,
           hash(c.channel_id, m // 4) % 25 = 0 AND c.n_posts > 8 AS in_album,
           random() AS r_fwd, random() AS r_origin, random() AS r_lag, random() AS r_q, random() AS r_views,
           random() AS r_url, random() AS r_url2, random() AS r_del, random() AS r_jit
    FROM syn_channels c, range(1, c.n_posts + 1) t(m)
), timed AS (
    SELECT *,
           {span_s} / n_posts AS spacing,
           CASE WHEN in_album THEN ((message_id // 4) * 4 - 1 + 0.5)
                ELSE message_id - 1 + 0.9 * r_jit END AS slot
    FROM base
), shaped AS (
    SELECT *,
           TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((slot * spacing * 1e6)::BIGINT) AS t,
           slot / n_posts AS frac,
           -- ~20% forwards; origin channel skewed towards the most active (low idx) channels
           r_fwd < 0.20 AND NOT in_album AS is_fwd,
           -- 80% from one of the channel's ~30 favourite sources, 20% from anywhere (skewed)
           CASE WHEN r_origin < 0.8
                THEN floor({channels} * pow((hash(idx, floor(r_origin * 37.5)::BIGINT) % 1000000) / 1e6, 3))
                ELSE floor({channels} * pow(r_origin, 3)) END::BIGINT AS o_idx,
           -- lag as a fraction of the year: heavy-tailed, minutes to weeks
           pow(r_lag, 4) * 0.05 AS lag_frac,
           pow(2, floor(r_q * 10))::BIGINT AS q
    FROM timed
), fwd AS (
    SELECT s.*, oc.channel_id AS o_channel_id, oc.n_posts AS o_n,
           greatest(1, (floor(greatest(0.0, frac - lag_frac) * oc.n_posts / s.q) * s.q)::BIGINT) AS o_msg
    FROM shaped s LEFT JOIN syn_channels oc ON oc.idx = s.o_idx
), generated AS (
SELECT channel_id, message_id, t AS posted_at,
       'post ' || message_id AS text,
       CASE WHEN in_album THEN channel_id * 100000 + message_id // 4 END AS grouped_id,
       (floor(50 / pow(r_views + 1e-6, 0.7)) * (1 + 2000.0 / (idx + 10)))::BIGINT AS views,
       floor(10 * pow(r_views, 3))::BIGINT AS forwards,
       0 AS replies, floor(r_views * 20)::BIGINT AS reactions,
       CASE WHEN r_url < 0.05 THEN ['news'] ELSE [] END AS hashtags,
       CASE WHEN r_url < 0.30 THEN list_value(
                CASE WHEN r_url2 < 0.3 THEN 'https://www.' ELSE 'http://' END
                || 'site' || floor(2000 * pow(r_url2, 2))::BIGINT || '.example/a/'
                || floor(50000 * pow(r_url, 3))::BIGINT
                || CASE WHEN r_url2 < 0.5 THEN '/?utm_source=tg&id=' || floor(r_url * 100)::BIGINT
                        ELSE '' END)
            WHEN r_url < 0.35 THEN ['https://t.me/c' || o_idx || '/' || o_msg, 'example.org/' || (o_idx % 97)]
            ELSE [] END AS urls,
       -- 2% of forwards hide the sender, 10% come from channels outside the archive
       CASE WHEN NOT is_fwd OR r_q > 0.98 THEN NULL
            WHEN r_url2 < 0.10 THEN {outside_base} + o_idx
            ELSE o_channel_id END AS fwd_channel_id,
       CASE WHEN NOT is_fwd OR r_q > 0.98 THEN NULL ELSE o_msg END AS fwd_message_id,
       CASE WHEN is_fwd THEN TIMESTAMPTZ '2024-01-01 00:00:00+00'
                             + to_microseconds(((o_msg - 1) * {span_s} / o_n * 1e6)::BIGINT) END AS fwd_posted_at,
       CASE WHEN is_fwd AND r_q > 0.98 THEN 'Hidden sender' END AS fwd_from_name,
       t AS first_seen_at, t + INTERVAL 7 DAY AS last_seen_at,
       CASE WHEN r_del < 0.02 THEN t + INTERVAL 2 DAY END AS deleted_at,
       'api' AS source
FROM fwd
),
-- what the collector writes: posts.canonical_urls = analysis._urls.canonical_urls(urls)
canon AS (
    SELECT *, CASE WHEN len(urls) = 0 THEN urls ELSE syn_canonical_urls(urls) END AS canonical_urls
    FROM generated
)
SELECT channel_id, message_id, posted_at, text, grouped_id, views, forwards, replies, reactions, hashtags, urls,
       fwd_channel_id, fwd_message_id, fwd_posted_at, fwd_from_name, first_seen_at, last_seen_at, deleted_at,
       source, canonical_urls
FROM canon
"""

_CHANNELS = """
INSERT INTO channels (channel_id, username, title, participants_count, first_seen_at, last_seen_at)
SELECT channel_id, 'chan' || idx, 'Channel ' || idx, 1000 + n_posts * 3,
       TIMESTAMPTZ '2024-01-01 00:00:00+00', TIMESTAMPTZ '2025-01-01 00:00:00+00'
FROM syn_channels
"""


def archive_path(posts: int, channels: int) -> Path:
    """Where the cached archive for this size lives: ``$TGSPREAD_BENCH_DATA`` when set (one copy shared by
    every benchmark module, as :func:`benchmarks.lake_data.data_dir`), else :data:`CACHE_DIR`."""
    return Path(os.environ.get("TGSPREAD_BENCH_DATA") or CACHE_DIR) / f"synth-v{VERSION}-{posts}x{channels}.duckdb"


def _schema(path: Path, upto: int | None) -> None:
    """The empty archive's schema: every migration through the real runner (``upto=None``), or only the
    migrations up to ``upto``, recorded in ``schema_migrations`` as the runner records them (an archive made
    by an older tgspread)."""
    from collector._archive import migrations
    from collector._archive.archive import Archive
    from collector._version import __version__

    if upto is None:
        with Archive(path, memory_limit=None):
            return
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                    "applied_at TIMESTAMPTZ NOT NULL, tgspread_version VARCHAR)")
        for mig in migrations.available():
            if mig.version <= upto:
                con.execute(mig.sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, now(), ?)",
                            [mig.version, mig.name, __version__])
    finally:
        con.close()


def build(posts: int, channels: int, *, force: bool = False, path: Path | None = None,
          schema: int | None = None, order: str = "any") -> Path:
    """Build (or reuse) a synthetic archive of about ``posts`` posts across ``channels`` channels; ``schema``:
    stop at that migration (default: the latest, a current archive); ``order``: ``"any"`` (DuckDB's parallel
    insert) or ``"collected"`` (by ``first_seen_at``, as a collector appends them; see the module doc)."""
    if order not in ("any", "collected"):
        raise ValueError(f"order {order!r}: 'any' or 'collected'")
    target = path or (archive_path(posts, channels) if schema is None
                      else archive_path(posts, channels).with_suffix(f".schema{schema}.duckdb"))
    if order != "any" and path is None:
        target = target.with_suffix(f".{order}.duckdb")
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".building.duckdb")
    for stale in (tmp, Path(str(tmp) + ".wal")):
        stale.unlink(missing_ok=True)
    params = {
        "posts": posts, "channels": channels, "id_base": ID_BASE, "id_step": ID_STEP,
        "span_s": 365 * 86400, "outside_base": 9_000_000_000,
    }
    _schema(tmp, schema)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("SET preserve_insertion_order = false")
        con.create_function("syn_canonical_urls", canonical_urls_column, ["VARCHAR[]"], "VARCHAR[]", type="arrow")  # type: ignore[call-overload]
        con.execute(_SETUP.format(**params))
        con.execute(_CHANNELS)
        if order == "collected":      # an ordered insert keeps its order only with insertion order preserved
            con.execute("SET preserve_insertion_order = true")
            con.execute("SET memory_limit = '4GB'")     # the sort spills to disk beyond it
        con.execute(_POSTS.format(**params) + (" ORDER BY first_seen_at, channel_id, message_id"
                                               if order == "collected" else ""))
        # as a collector leaves them: each channel's cursor at its newest archived post (`tgspread verify`)
        con.execute("INSERT INTO channel_cursors SELECT channel_id, max(message_id), max(first_seen_at) FROM posts "
                    "GROUP BY channel_id")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    tmp.rename(target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=5_000)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    path = build(args.posts, args.channels, force=args.force)
    con = duckdb.connect(str(path), read_only=True)
    n = con.execute("SELECT count(*) FROM posts").fetchone()
    con.close()
    print(f"{path}: {n[0] if n else 0:,} posts in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
