"""Planted coordination for the coordination benchmark: the synthetic archive plus known groups.

The synthetic archive of :mod:`benchmarks.synth_archive` has forwards, links and channel rhythms, but
no channels that act together: on it ``analysis.coordination`` tests no pair at all, and the null model,
the groups and the evidence cost nothing. :func:`derive` copies the archive to a sibling file
(``*.coord.duckdb``, cached like the base) and plants, on top of the organic posts:

- ``groups`` groups (about one per 250,000 posts; 40 at 10M) of 3-6 mid-activity channels each, in turn
  of the three kinds of ``analysis.coordination``: **co-forwarding** (a leader forwards an existing
  post 5 min to 24 h after it was posted, the members the same origin 5-45 s after the leader),
  **co-posting a link** (the same new URL, each member with its own tracking parameters or ``www.``,
  5-90 s apart), **copying a text** (a 40-word text, each member's copy with one word changed, 30-240 s
  after the leader), 10-30 acts per group;
- two re-observations of every planted post (1 h 10 min and 6 h 30 min of age), like
  :func:`benchmarks.analysis_bench.ensure_observations` gives the organic ones.

The base archive is left as it is (the other benchmarks read it); the planted posts are about 0.1% of
the posts. Deterministic (a fixed seed). The labels are in a ``.json`` beside it (:func:`labels`).

Example::

    path = derive(build(1_000_000, 500))
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from analysis._urls import canonical_urls

__all__ = ["PlantedGroup", "derive", "labels", "planted_groups"]

_SEED = 16
_KINDS = ("forward", "url", "text")
_WORDS = ("council", "bridge", "river", "market", "officials", "report", "northern", "station", "repairs",
          "weather", "energy", "prices", "school", "hospital", "election", "minister", "harbour", "festival",
          "traffic", "closed", "opened", "budget", "village", "airport", "police", "court", "railway", "museum",
          "water", "summer", "winter", "storm", "factory", "workers", "farmers", "grain", "export", "border",
          "tunnel", "library")
_START = datetime(2024, 1, 8, tzinfo=UTC)
_SPAN_S = 340 * 86400


@dataclass(frozen=True, slots=True)
class PlantedGroup:
    """One planted group: its kind, its member channel ids (leader first) and how many acts."""

    kind: str
    members: tuple[int, ...]
    acts: int


def planted_groups(posts: int, channel_ids: list[int]) -> list[PlantedGroup]:
    """The groups planted in an archive of ``posts`` posts over ``channel_ids`` (sorted by activity, most
    active first): distinct mid-activity members (never the busiest 5%, where the organic busy channels are)."""
    rng = random.Random(_SEED)
    n_groups = max(4, posts // 250_000)
    lo = max(1, len(channel_ids) // 20)
    pool = channel_ids[lo:]
    rng.shuffle(pool)
    groups = []
    for g in range(n_groups):
        size = rng.randint(3, 6)
        members, pool = pool[:size], pool[size:]
        if len(members) < 3:
            break
        groups.append(PlantedGroup(_KINDS[g % 3], tuple(members), rng.randint(10, 30)))
    return groups


def _text(rng: random.Random) -> list[str]:
    return [rng.choice(_WORDS) for _ in range(40)]


def _rows(con: duckdb.DuckDBPyConnection, groups: list[PlantedGroup]) -> list[dict[str, Any]]:
    """The planted posts (one dict per post), message ids above each channel's newest."""
    rng = random.Random(_SEED + 1)
    members = {c for g in groups for c in g.members}
    next_id = dict(con.execute("SELECT channel_id, max(message_id) + 1 FROM posts GROUP BY channel_id").fetchall())
    n_acts = sum(g.acts for g in groups if g.kind == "forward")
    # origins: existing non-forward posts of channels outside every group
    origins = con.execute(f"""
        SELECT channel_id, message_id, posted_at FROM (
            SELECT channel_id, message_id, posted_at FROM posts
            WHERE fwd_channel_id IS NULL AND fwd_from_name IS NULL AND posted_at < TIMESTAMPTZ '2024-12-20 00:00:00+00'
              AND NOT list_contains(?::BIGINT[], channel_id)
        ) USING SAMPLE reservoir({max(1, 2 * n_acts)} ROWS) REPEATABLE ({_SEED})
        ORDER BY channel_id, message_id
    """, [sorted(members)]).fetchall()
    rng.shuffle(origins)
    rows: list[dict[str, Any]] = []

    def add(channel: int, at: datetime, **extra: Any) -> None:
        message = next_id[channel]
        next_id[channel] = message + 1
        rows.append({"channel_id": channel, "message_id": message, "posted_at": at, **extra})

    for g, group in enumerate(groups):
        for act in range(group.acts):
            if group.kind == "forward":
                o_channel, o_message, o_at = origins.pop()
                lead_at = o_at + timedelta(seconds=rng.uniform(300, 86400))
                for j, ch in enumerate(group.members):
                    at = lead_at + timedelta(seconds=0 if j == 0 else rng.uniform(5, 45))
                    add(ch, at, text=None, fwd_channel_id=o_channel, fwd_message_id=o_message, fwd_posted_at=o_at)
            elif group.kind == "url":
                lead_at = _START + timedelta(seconds=rng.uniform(0, _SPAN_S))
                for j, ch in enumerate(group.members):
                    at = lead_at + timedelta(seconds=0 if j == 0 else rng.uniform(5, 90))
                    host = "https://www." if j % 2 else "http://"
                    url = f"{host}planted{g}.example/story/{act}?utm_source=m{j}&utm_medium=tg"
                    add(ch, at, text=f"read this {act}", urls=[url])
            else:
                words = _text(rng)
                lead_at = _START + timedelta(seconds=rng.uniform(0, _SPAN_S))
                for j, ch in enumerate(group.members):
                    at = lead_at + timedelta(seconds=0 if j == 0 else rng.uniform(30, 240))
                    copy = list(words)
                    if j:
                        copy[rng.randrange(len(copy))] = f"w{g}x{act}x{j}"
                    add(ch, at, text=" ".join(copy).capitalize() + ".")
    return rows


def derive(base: Path, *, force: bool = False, directory: Path | None = None) -> Path:
    """``base`` with planted coordination, as ``<base>.coord.duckdb`` in ``directory`` (default: beside
    ``base``; built once, then reused). ``base`` itself is only read: the organic posts' re-observations
    (when ``base`` has none) are added to the copy."""
    where = directory or base.parent
    where.mkdir(parents=True, exist_ok=True)
    target = where / base.with_suffix(".coord.duckdb").name
    if target.exists() and not force:
        return target
    tmp = where / base.with_suffix(".coord-building.duckdb").name
    shutil.copyfile(base, tmp)
    # 2 observations per post, inserted in one commit: 20M rows at 10M posts need more than 2 GB (heavy lock)
    con = duckdb.connect(str(tmp), config={"memory_limit": "6GB", "preserve_insertion_order": False})
    try:
        if con.execute("SELECT count(*) FROM post_observations").fetchall()[0][0] == 0:
            con.execute(ORGANIC_OBSERVATIONS)
        con.execute("SET memory_limit = '2GB'")
        posts = con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
        by_activity = [c for (c,) in con.execute(
            "SELECT channel_id FROM posts GROUP BY channel_id ORDER BY count(*) DESC, channel_id").fetchall()]
        groups = planted_groups(int(posts), by_activity)
        rows = _rows(con, groups)
        cols = ["channel_id", "message_id", "posted_at", "text", "urls", "fwd_channel_id", "fwd_message_id",
                "fwd_posted_at"]
        table = pa.table({c: pa.array([r.get(c) for r in rows], type=pa.list_(pa.string()) if c == "urls" else None)
                          for c in cols})
        canon = pa.array([canonical_urls(r["urls"]) if r.get("urls") else [] for r in rows], type=pa.list_(pa.string()))
        con.register("_planted", table.append_column("canonical_urls", canon))
        con.execute("""
            INSERT INTO posts (channel_id, message_id, posted_at, text, urls, canonical_urls, fwd_channel_id,
                               fwd_message_id, fwd_posted_at, views, forwards, replies, reactions, hashtags,
                               first_seen_at, last_seen_at, source)
            SELECT channel_id, message_id, posted_at, text, coalesce(urls, []), canonical_urls, fwd_channel_id,
                   fwd_message_id, fwd_posted_at, 500, 5, 0, 10, [], posted_at, posted_at + INTERVAL 7 DAY, 'api'
            FROM _planted
        """)
        con.execute("""
            INSERT INTO post_observations (channel_id, message_id, observed_at, views, forwards, replies, reactions)
            SELECT channel_id, message_id, posted_at + to_microseconds(a::BIGINT * 1000000),
                   (500 * f)::BIGINT, (5 * f)::BIGINT, 0, (10 * f)::BIGINT
            FROM _planted, (VALUES (4200, 0.3), (23400, 0.8)) AS c(a, f)
        """)
        con.unregister("_planted")
        con.execute("UPDATE channel_cursors SET max_message_id = m FROM (SELECT channel_id AS c, max(message_id) AS m "
                    "FROM posts GROUP BY channel_id) WHERE channel_cursors.channel_id = c")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    target.with_suffix(".json").write_text(json.dumps(
        [{"kind": g.kind, "members": list(g.members), "acts": g.acts} for g in groups]))
    tmp.rename(target)
    return target


#: Every organic post observed at 1 h 10 min and at 6 h 30 min of age (views, forwards, reactions growing
#: towards their final value), as a collector running every few minutes would record them.
ORGANIC_OBSERVATIONS = """
    INSERT INTO post_observations (channel_id, message_id, observed_at, views, forwards, replies, reactions)
    SELECT channel_id, message_id, posted_at + to_microseconds(a::BIGINT * 1000000),
           (views * f)::BIGINT, (forwards * f)::BIGINT, replies, (reactions * f)::BIGINT
    FROM posts, (VALUES (4200, 0.3), (23400, 0.8)) AS c(a, f)
"""


def labels(path: Path) -> list[PlantedGroup]:
    """The planted groups of a derived archive (from the ``.json`` written beside it by :func:`derive`)."""
    data = json.loads(path.with_suffix(".json").read_text())
    return [PlantedGroup(g["kind"], tuple(g["members"]), g["acts"]) for g in data]
