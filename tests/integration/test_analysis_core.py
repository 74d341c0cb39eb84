"""The analysis core against independent computations in plain Python.

Two kinds of tests:

- Designed archives: a seeded random set of posts (forwards of archived and unarchived origins,
  hidden senders, self-forwards, albums, deletions, URLs) is written into a real archive file built
  from the collector's migration; every metric is recomputed here from the Python rows, never with
  the library's SQL.
- Ground truth: with the ``collected`` fixture (a simulated World and an archive collected from it),
  the expectations come from the World's own records (``SimMessage.fwd``, ``posted_at``,
  ``grouped_id``, ``deleted_at``, ``state_at``); the archive only says which posts were archived and
  when each was last observed.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

import analysis
from analysis._frames import SCHEMAS
from analysis._urls import _canonical_url_parsed, canonical_url, canonical_urls

MIGRATION = Path(__file__).resolve().parents[2] / "collector" / "_archive" / "migrations" / "0001_initial.sql"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
ARCHIVED = [1_000_000_001, 2_200_000_002, 3_300_000_003, 4_400_000_004]  # > 2**31, like real ids
OUTSIDE = [9_100_000_001, 9_100_000_002]                                  # origins never archived


# --------------------------------------------------------------------------------------------------
# designed archives
# --------------------------------------------------------------------------------------------------

@dataclass
class Post:
    channel_id: int
    message_id: int
    posted_at: datetime
    views: int | None
    forwards: int | None = 0
    grouped_id: int | None = None
    fwd_channel_id: int | None = None
    fwd_message_id: int | None = None
    fwd_posted_at: datetime | None = None
    fwd_from_name: str | None = None
    deleted_at: datetime | None = None
    urls: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, int]:
        return (self.channel_id, self.message_id)

    @property
    def names_origin(self) -> bool:
        return self.fwd_channel_id is not None and self.fwd_message_id is not None


URL_POOL = [
    "https://www.example.org/story/1", "http://example.org/story/1/", "example.org/story/1?utm_source=tg",
    "https://EXAMPLE.org/story/1#comments", "https://news.site.test/a?id=5&fbclid=xyz", "https://news.site.test/a?id=5",
    "https://news.site.test/b", "t.me/somechannel/77", "https://t.me/somechannel/77/", "https://other.test/",
]
#: Added to every 7th post with URLs (without drawing from the RNG): a link with no web host, a port.
URL_EXTRA = ["tg://resolve?domain=somechannel", "https://news.site.test:8443/b", "HTTPS://NEWS.site.test:8443/b/"]


def make_posts(seed: int) -> list[Post]:
    """A seeded archive: originals, albums, forwards of every kind, deletions and URLs."""
    rng = random.Random(seed)
    posts: list[Post] = []
    # origins outside the archive: only their ids and dates appear in forward headers
    outside = [(c, m, T0 + timedelta(hours=rng.uniform(0, 48))) for c in OUTSIDE for m in range(1, 6)]
    for ch in ARCHIVED:
        t = T0 + timedelta(minutes=rng.uniform(0, 60))
        mid = 0
        while t < T0 + timedelta(days=6):
            mid += 1
            t += timedelta(hours=rng.expovariate(1 / 5))
            if rng.random() < 0.04:  # a silent day or two: zero-post periods
                t += timedelta(days=rng.randint(1, 2))
            roll = rng.random()
            views = rng.choice([None, *[rng.randint(0, 5000) for _ in range(9)]])
            urls = rng.sample(URL_POOL, rng.choice([0, 0, 1, 2]))
            deleted = t + timedelta(hours=3) if rng.random() < 0.1 else None
            if roll < 0.12:  # album of 2-4 items, one date
                gid = rng.getrandbits(62)
                for _ in range(rng.randint(2, 4)):
                    posts.append(Post(ch, mid, t, views, rng.randint(0, 9), grouped_id=gid, urls=urls,
                                      deleted_at=deleted))
                    mid += 1
                    urls = []
                mid -= 1
                continue
            if roll < 0.55:
                origin: tuple[int, int, datetime] | None = None
                candidates = [p for p in posts if p.channel_id != ch and not p.names_origin]
                kind = rng.random()
                if kind < 0.1:
                    posts.append(Post(ch, mid, t, views, fwd_posted_at=t - timedelta(hours=2),
                                      fwd_from_name="Hidden Person", urls=urls, deleted_at=deleted))
                    continue
                if kind < 0.35:
                    origin = rng.choice(outside)
                elif kind < 0.45:
                    own = [p for p in posts if p.channel_id == ch and not p.names_origin]
                    if own:
                        o = rng.choice(own)
                        origin = (o.channel_id, o.message_id, o.posted_at)
                elif candidates:
                    o = rng.choice(candidates[-30:])
                    origin = (o.channel_id, o.message_id, o.posted_at)
                if origin is not None and origin[2] < t:
                    # forwarding an album forwards all its items, as a new album
                    src = [p for p in posts if (p.channel_id, p.message_id) == origin[:2]]
                    items = [origin]
                    if src and src[0].grouped_id is not None:
                        items = [(p.channel_id, p.message_id, p.posted_at) for p in posts
                                 if p.grouped_id == src[0].grouped_id]
                    fwd_gid = rng.getrandbits(62) if len(items) > 1 else None
                    for oc, om, ot in items:
                        posts.append(Post(ch, mid, t, views, 0, grouped_id=fwd_gid, fwd_channel_id=oc,
                                          fwd_message_id=om, fwd_posted_at=ot, urls=urls, deleted_at=deleted))
                        mid += 1
                    mid -= 1
                    continue
            posts.append(Post(ch, mid, t, views, rng.randint(0, 9), urls=urls, deleted_at=deleted))
    for i, p in enumerate(posts):
        if p.urls and i % 7 == 0:
            p.urls = [*p.urls, URL_EXTRA[i % len(URL_EXTRA)]]
    return posts


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.register("_rows", frame)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    con.unregister("_rows")


def stored_canonical(p: Post, mode: str) -> list[str] | None:
    """``posts.canonical_urls`` as a writer leaves it: the collector fills it ('stored'), web preview and
    Desktop export rows leave it NULL for now ('null'); 'mixed' is a mix of both, as in a real archive."""
    if mode == "null" or (mode == "mixed" and p.message_id % 3 == 0):
        return None
    return canonical_urls(p.urls)


def write_archive(path: Path, posts: list[Post], observations: list[dict[str, Any]] | None = None,
                  channel_obs: list[dict[str, Any]] | None = None, canonical: str = "mixed") -> Path:
    con = duckdb.connect(str(path))
    con.execute(MIGRATION.read_text())
    now = T0 + timedelta(days=10)
    chans = pl.DataFrame({"channel_id": ARCHIVED, "first_seen_at": [now] * len(ARCHIVED),
                          "last_seen_at": [now] * len(ARCHIVED)})
    insert(con, "channels", chans)
    if posts:
        rows = pl.DataFrame(
            [{**{k: getattr(p, k) for k in Post.__dataclass_fields__}, "first_seen_at": now, "last_seen_at": now,
              "canonical_urls": stored_canonical(p, canonical)}
             for p in posts],
            schema_overrides={"urls": pl.List(pl.String), "canonical_urls": pl.List(pl.String),
                              "views": pl.Int64, "grouped_id": pl.Int64,
                              "fwd_channel_id": pl.Int64, "fwd_message_id": pl.Int64,
                              "fwd_posted_at": pl.Datetime("us", "UTC"), "deleted_at": pl.Datetime("us", "UTC"),
                              "fwd_from_name": pl.String},
        )
        insert(con, "posts", rows)
    if observations:
        insert(con, "post_observations", pl.DataFrame(observations))
    if channel_obs:
        insert(con, "channel_observations", pl.DataFrame(channel_obs))
    con.close()
    return path


@pytest.fixture(scope="module", params=[1, 2])
def designed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Post]]:
    posts = make_posts(request.param)
    path = write_archive(tmp_path_factory.mktemp("designed") / "a.duckdb", posts)
    return path, posts


def rows_by(df: pl.DataFrame, *key: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for r in df.iter_rows(named=True)}


def approx_equal(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < 1e-3


# ---- expectations in plain Python ----------------------------------------------------------------

def expected_cascades(posts: list[Post]) -> dict[tuple[int, int], dict[str, Any]]:
    by_key = {p.key: p for p in posts}
    groups: dict[tuple[int, int], list[Post]] = defaultdict(list)
    for p in posts:
        if p.names_origin:
            groups[(p.fwd_channel_id, p.fwd_message_id)].append(p)  # type: ignore[index]
    out = {}
    for key, fws in groups.items():
        origin = by_key.get(key)
        headers = [f.fwd_posted_at for f in fws if f.fwd_posted_at is not None]
        t0 = origin.posted_at if origin else min(headers)
        lags = [(f.posted_at - t0).total_seconds() for f in fws]
        fv = sum(f.views or 0 for f in fws)
        out[key] = {
            "origin_posted_at": t0, "forwards": len(fws), "channels": len({f.channel_id for f in fws}),
            "first_forward_at": min(f.posted_at for f in fws), "first_lag_s": min(lags),
            "median_lag_s": statistics.median(lags), "origin_views": origin.views if origin else None,
            "forward_views": fv, "reach": (origin.views or 0 if origin else 0) + fv,
            "origin_archived": origin is not None, "origin_deleted": bool(origin and origin.deleted_at),
        }
    return out


def acts(fws: list[Post]) -> int:
    """Forwarding acts: an album (one grouped_id within a channel) counts once."""
    return len({(f.channel_id, f.grouped_id) if f.grouped_id is not None else f.key for f in fws})


def expected_network(posts: list[Post], include_self: bool = False) -> dict[tuple[int, int], dict[str, Any]]:
    pairs: dict[tuple[int, int], list[Post]] = defaultdict(list)
    for p in posts:
        if p.names_origin and (include_self or p.fwd_channel_id != p.channel_id):
            pairs[(p.fwd_channel_id, p.channel_id)].append(p)  # type: ignore[index]
    return {k: {"forwards": acts(v), "messages": len(v), "first_at": min(p.posted_at for p in v),
                "last_at": max(p.posted_at for p in v), "views": sum(p.views or 0 for p in v)}
            for k, v in pairs.items()}


def expected_daily(posts: list[Post]) -> dict[tuple[int, datetime], int]:
    first_of_unit: dict[tuple[int, Any], datetime] = {}
    for p in posts:
        unit = (p.channel_id, ("album", p.grouped_id) if p.grouped_id is not None else ("post", p.message_id))
        first_of_unit[unit] = min(first_of_unit.get(unit, p.posted_at), p.posted_at)
    counts: dict[tuple[int, datetime], int] = defaultdict(int)
    for (ch, _), t in first_of_unit.items():
        counts[(ch, datetime(t.year, t.month, t.day, tzinfo=UTC))] += 1
    out: dict[tuple[int, datetime], int] = {}
    for ch in {c for c, _ in counts}:
        days = sorted(d for c, d in counts if c == ch)
        d = days[0]
        while d <= days[-1]:
            out[(ch, d)] = counts.get((ch, d), 0)
            d += timedelta(days=1)
    return out


# ---- tests on designed archives -------------------------------------------------------------------

def test_designed_archive_has_every_case(designed: tuple[Path, list[Post]]) -> None:
    _, posts = designed
    keys = {p.key for p in posts}
    assert any(p.fwd_from_name for p in posts), "hidden-sender forwards"
    assert any(p.names_origin and (p.fwd_channel_id, p.fwd_message_id) not in keys for p in posts), "unarchived"
    assert any(p.names_origin and p.fwd_channel_id == p.channel_id for p in posts), "self-forwards"
    assert any(p.names_origin and p.grouped_id is not None for p in posts), "forwarded albums"
    assert any(p.deleted_at for p in posts) and any(p.grouped_id for p in posts)


def test_cascades_match_python(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    with analysis.connect(path) as con:
        df = analysis.cascades(con)
    assert df.schema == pl.Schema(SCHEMAS["cascades"])
    want = expected_cascades(posts)
    got = rows_by(df, "origin_channel_id", "origin_message_id")
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        for col in ("origin_posted_at", "forwards", "channels", "first_forward_at", "origin_views",
                    "forward_views", "reach", "origin_archived", "origin_deleted"):
            assert g[col] == w[col], (key, col)
        assert approx_equal(g["first_lag_s"], w["first_lag_s"]) and approx_equal(g["median_lag_s"], w["median_lag_s"])
    assert df["forwards"].to_list() == sorted(df["forwards"].to_list(), reverse=True)


def test_cascades_filters(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    with analysis.connect(path) as con:
        only = analysis.cascades(con, channels=[ARCHIVED[0]])
        late = analysis.cascades(con, since=T0 + timedelta(days=2))
        no_self = analysis.cascades(con, include_self=False)
        big = analysis.cascades(con, min_forwards=2)
    want = expected_cascades(posts)
    assert set(only["origin_channel_id"].to_list()) <= {ARCHIVED[0]}
    assert only.height == sum(1 for k in want if k[0] == ARCHIVED[0])
    assert late.height == sum(1 for w in want.values() if w["origin_posted_at"] >= T0 + timedelta(days=2))
    assert big.height == sum(1 for w in want.values() if w["forwards"] >= 2)
    self_only = {k for k in want if all(p.channel_id == k[0] for p in posts
                                        if p.names_origin and (p.fwd_channel_id, p.fwd_message_id) == k)}
    assert no_self.height == len(want) - len(self_only)


def test_forward_network_match_python(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    with analysis.connect(path) as con:
        df = analysis.forward_network(con)
        with_self = analysis.forward_network(con, include_self=True)
        to_one = analysis.forward_network(con, targets=[ARCHIVED[1]])
    assert df.schema == pl.Schema(SCHEMAS["forward_network"])
    for frame, include in ((df, False), (with_self, True)):
        want = expected_network(posts, include)
        got = rows_by(frame, "source_channel_id", "target_channel_id")
        assert got.keys() == want.keys()
        for k, w in want.items():
            assert {c: got[k][c] for c in w} == w, k
    assert set(to_one["target_channel_id"].to_list()) == {ARCHIVED[1]}


def test_posting_frequency_daily_match_python(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    with analysis.connect(path) as con:
        df = analysis.posting_frequency(con, every="1d")
        sparse = analysis.posting_frequency(con, every="1d", fill_zeros=False)
    assert df.schema == pl.Schema(SCHEMAS["posting_frequency"])
    want = expected_daily(posts)
    assert {(r["channel_id"], r["period"]): r["posts"] for r in df.iter_rows(named=True)} == want
    assert 0 in want.values(), "the designed archive has silent days"
    assert {(r["channel_id"], r["period"]): r["posts"] for r in sparse.iter_rows(named=True)} == {
        k: v for k, v in want.items() if v}


@pytest.mark.parametrize("every", ["6h", "1w", "1mo"])
def test_posting_frequency_other_periods_sum_to_units(designed: tuple[Path, list[Post]], every: str) -> None:
    path, posts = designed
    with analysis.connect(path) as con:
        df = analysis.posting_frequency(con, every=every)
    units = {(p.channel_id, p.grouped_id if p.grouped_id is not None else -p.message_id) for p in posts}
    assert df["posts"].sum() == len(units)
    if every == "1w":
        assert all(t.weekday() == 0 and t.hour == 0 for t in df["period"].to_list())
    if every == "1mo":
        assert all(t.day == 1 for t in df["period"].to_list())


def test_sources_and_amplifiers_match_python(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    fws = [p for p in posts if p.names_origin and p.fwd_channel_id != p.channel_id]
    with analysis.connect(path) as con:
        src = rows_by(analysis.sources(con), "channel_id")
        amp = rows_by(analysis.amplifiers(con), "channel_id")
    by_src: dict[int, list[Post]] = defaultdict(list)
    by_amp: dict[int, list[Post]] = defaultdict(list)
    for p in fws:
        by_src[p.fwd_channel_id].append(p)  # type: ignore[index]
        by_amp[p.channel_id].append(p)
    assert src.keys() == by_src.keys() and amp.keys() == by_amp.keys()
    for ch, v in by_src.items():
        assert src[ch]["forwards"] == acts(v)
        assert src[ch]["forwarded_posts"] == len({p.fwd_message_id for p in v})
        assert src[ch]["forwarding_channels"] == len({p.channel_id for p in v})
        assert src[ch]["forward_views"] == sum(p.views or 0 for p in v)
        assert src[ch]["archived"] == (ch in ARCHIVED)
        assert src[ch]["rank"] == 1 + sum(1 for o in by_src.values() if acts(o) > acts(v))
    for ch, v in by_amp.items():
        reach = sum(p.views or 0 for p in v)
        assert amp[ch]["reach_added"] == reach and amp[ch]["forwards"] == acts(v)
        assert amp[ch]["source_channels"] == len({p.fwd_channel_id for p in v})
        lags = [(p.posted_at - p.fwd_posted_at).total_seconds() for p in v]  # type: ignore[operator]
        assert approx_equal(amp[ch]["median_lag_s"], statistics.median(lags))
        assert amp[ch]["rank"] == 1 + sum(1 for o in by_amp.values() if sum(p.views or 0 for p in o) > reach)


def test_coverage_match_python(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    with analysis.connect(path) as con:
        got = rows_by(analysis.coverage(con), "channel_id", "message_id")
    archived_fwds: dict[tuple[int, int], list[Post]] = defaultdict(list)
    for p in posts:
        if p.names_origin:
            archived_fwds[(p.fwd_channel_id, p.fwd_message_id)].append(p)  # type: ignore[index]
    want = {}
    for p in posts:
        if p.fwd_posted_at is None and ((p.forwards or 0) > 0 or p.key in archived_fwds):
            n = len(archived_fwds.get(p.key, []))
            want[p.key] = (p.forwards, n, len({f.channel_id for f in archived_fwds.get(p.key, [])}),
                           n / p.forwards if p.forwards else None)
    assert got.keys() == want.keys()
    for k, (counter, n, chans, cov) in want.items():
        g = got[k]
        assert (g["forwards_counter"], g["archived_forwards"], g["archived_channels"]) == (counter, n, chans)
        assert approx_equal(g["coverage"], cov)


def expected_urls(posts: list[Post]) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[tuple[int, int], datetime]] = defaultdict(dict)
    for p in posts:
        for u in p.urls:
            c = canonical_url(u)
            if c:
                seen[c[0]][p.key] = p.posted_at
    out = {}
    for url, hits in seen.items():
        first_key, first_t = min(hits.items(), key=lambda kv: (kv[1], kv[0]))
        per_channel: dict[int, datetime] = {}
        for (ch, _), t in hits.items():
            per_channel[ch] = min(per_channel.get(ch, t), t)
        lags = [(t - first_t).total_seconds() for ch, t in per_channel.items() if ch != first_key[0]]
        out[url] = {"first_channel_id": first_key[0], "first_message_id": first_key[1], "first_posted_at": first_t,
                    "last_posted_at": max(hits.values()), "posts": len(hits), "channels": len(per_channel),
                    "median_lag_s": statistics.median(lags) if lags else None}
    return out


def test_url_spread_match_python(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    with analysis.connect(path) as con:
        df = analysis.url_spread(con)
        dom = rows_by(analysis.domain_spread(con), "domain")
    assert df.schema == pl.Schema(SCHEMAS["url_spread"])
    want = expected_urls(posts)
    got = rows_by(df, "url")
    assert got.keys() == want.keys()
    assert "https://example.org/story/1" in want, "variants of one URL fold into one"
    assert "https://news.site.test:8443/b" in want and not any(u.startswith("tg:") for u in want)
    order = [(-w["channels"], w["first_posted_at"], w["first_channel_id"], w["first_message_id"], u)
             for u, w in want.items()]
    assert df["url"].to_list() == [k[-1] for k in sorted(order)]
    assert df["domain"].to_list() == [canonical_url(u)[1] for u in df["url"]]  # type: ignore[index]
    for url, w in want.items():
        for col in ("first_channel_id", "first_message_id", "first_posted_at", "last_posted_at", "posts", "channels"):
            assert got[url][col] == w[col], (url, col)
        assert approx_equal(got[url]["median_lag_s"], w["median_lag_s"])
    for d, row in dom.items():
        urls = [u for u in want if canonical_url(u) == (u, d)]
        assert row["urls"] == len(urls)
        assert row["posts"] == len({p.key for p in posts for u in p.urls if (canonical_url(u) or ("", ""))[1] == d})


CANONICAL_CASES = {
    "HTTP://www.Example.org:80/News/?utm_source=tg&id=3#top": ("https://example.org/News?id=3", "example.org"),
    "t.me/durov/1": ("https://t.me/durov/1", "t.me"),
    "//cdn.x.com/a//": ("https://cdn.x.com/a", "cdn.x.com"),
    "https://user:pw@WWW.x.com:443/": ("https://x.com", "x.com"),
    "https://x.com/?a=1&&UTM_medium=2&b": ("https://x.com?a=1&b", "x.com"),
    "ftp://files.x.org/pub/": ("ftp://files.x.org/pub", "files.x.org"),
    "https://x.com:8080/p": ("https://x.com:8080/p", "x.com"),
    "https://x.com/a?b=1?c=2#d?e": ("https://x.com/a?b=1?c=2", "x.com"),
    "https://x.com#a/b": ("https://x.com", "x.com"),
    "https://x.com/п/Ü?q=Ü": ("https://x.com/п/Ü?q=Ü", "x.com"),
    "  https://x.com/a  ": ("https://x.com/a", "x.com"),
    "http://[::1]:80/x": ("https://[::1]/x", "::1"),
    "https://[2001:DB8::1]:8443/": ("https://[2001:db8::1]:8443", "2001:db8::1"),
    "example.com:8080/x": ("https://example.com:8080/x", "example.com"),
    "example.org/r?to=http://y.com/": ("https://example.org/r?to=http://y.com/", "example.org"),
    "https://a.com\\evil.com/x": ("https://a.com\\evil.com/x", "a.com"),
    "https://www.": None,
    "tg://resolve?domain=x": None,
    "mailto:a@b.c": None,
    "http://[::1": None,
    "": None,
}


def test_canonical_url_rules() -> None:
    assert analysis.canonical_url is canonical_url  # re-exported from analysis._urls
    for url, want in CANONICAL_CASES.items():
        assert canonical_url(url) == want, url
    assert canonical_urls(list(CANONICAL_CASES)) == [w[0] if w else "" for w in CANONICAL_CASES.values()]


def test_canonical_url_fast_path_agrees_with_parsing() -> None:
    """The one-regex fast path gives exactly what splitting the URL gives, on random URL-like strings."""
    rng = random.Random(7)
    parts = ["http", "https", "HTTP", "ftp", "tg", "mailto:", "://", "//", "www.", "WWW.", "x", "y-z", ".", "com",
             ":80", ":8080", ":", "@", "/", "?", "&", "=", "utm_source", "fbclid", "#", "\\", "[::1]", "%41", " ",
             "п", "1"]
    fast_hits = 0
    for _ in range(20_000):
        u = "".join(rng.choice(parts) for _ in range(rng.randint(1, 10)))
        for cand in (u, "https://" + u, "http://" + u):
            got = canonical_url.__wrapped__(cand)
            assert got == _canonical_url_parsed(cand), cand
            fast_hits += got is not None and got[0] == ("https" + cand[4:] if cand.startswith("http:") else cand)
    assert fast_hits > 1000  # the fast path really ran


def test_url_spread_stored_and_computed_canonical_urls_agree(tmp_path: Path) -> None:
    """Rows with canonical_urls NULL (web preview, Desktop export) are canonicalised at query time, the
    same way; the temporary DuckDB function is removed afterwards."""
    posts = make_posts(3)
    frames = {}
    for mode in ("stored", "null", "mixed"):
        path = write_archive(tmp_path / f"{mode}.duckdb", posts, canonical=mode)
        with analysis.connect(path) as con:
            frames[mode] = (analysis.url_spread(con), analysis.domain_spread(con))
            leftover = con.sql("SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE 'tgspread%'")
            assert leftover.fetchall() == [(0,)]
    for mode in ("null", "mixed"):
        assert frames[mode][0].equals(frames["stored"][0]), mode
        assert frames[mode][1].equals(frames["stored"][1]), mode
    assert frames["stored"][0].height > 5
    # Over a lake url_spread first reads only the stored lists; a post without one sends it back to the full
    # query (the URLs canonicalised while it runs). Every mode gives the same frame there too.
    for mode in ("stored", "null", "mixed"):
        lake = as_lake(tmp_path / f"{mode}.duckdb", tmp_path / f"{mode}-lake")
        con = analysis.connect(lake)
        assert analysis.url_spread(con).equals(frames["stored"][0]), mode
        assert analysis.domain_spread(con).equals(frames["stored"][1]), mode
        con.close()


def as_lake(archive: Path, lake: Path) -> Path:
    """The posts of ``archive`` as a lake of collector 'main' (two partition files), for ``analysis.connect``."""
    con = duckdb.connect(str(archive), read_only=True)
    for part, parity in ((0, 0), (1, 1)):
        folder = lake / "posts" / f"slot={part:02d}" / "month=2024-01"
        folder.mkdir(parents=True)
        con.execute(f"COPY (SELECT * FROM posts WHERE channel_id % 2 = {parity}) "
                    f"TO '{folder / 'main.parquet'}' (FORMAT parquet)")
    con.close()
    (lake / "_manifests").mkdir()
    (lake / "_manifests" / "main.json").write_text('{"collector": "main", "schema_version": 1}', encoding="utf-8")
    return lake


def test_empty_archive_gives_typed_empty_frames(tmp_path: Path) -> None:
    path = write_archive(tmp_path / "empty.duckdb", [])
    with analysis.connect(path) as con:
        frames = {
            "cascades": analysis.cascades(con), "forward_network": analysis.forward_network(con),
            "posting_frequency": analysis.posting_frequency(con), "sources": analysis.sources(con),
            "amplifiers": analysis.amplifiers(con), "coverage": analysis.coverage(con),
            "url_spread": analysis.url_spread(con), "domain_spread": analysis.domain_spread(con),
            "view_growth": analysis.view_growth(con), "channel_growth": analysis.channel_growth(con),
            "half_life_post": analysis.half_life(con), "subscriber_growth": analysis.subscriber_growth(con),
        }
    for name, df in frames.items():
        assert df.height == 0 and df.schema == pl.Schema(SCHEMAS[name]), name


# ---- growth ------------------------------------------------------------------------------------------

def test_view_growth_half_life_and_subscribers(tmp_path: Path) -> None:
    posts = [Post(ARCHIVED[0], 1, T0, 100), Post(ARCHIVED[0], 2, T0 + timedelta(hours=1), 0),
             Post(ARCHIVED[1], 1, T0, 50)]
    obs = []
    curves = {(ARCHIVED[0], 1): [(1, 40), (6, 80), (24, 100)], (ARCHIVED[0], 2): [(1, 0)],
              (ARCHIVED[1], 1): [(2, 30), (30, 50)]}
    for (ch, m), pts in curves.items():
        posted = next(p.posted_at for p in posts if p.key == (ch, m))
        obs += [{"channel_id": ch, "message_id": m, "observed_at": posted + timedelta(hours=h), "views": v,
                 "forwards": v // 10, "replies": 0, "reactions": v // 20} for h, v in pts]
    cobs = [{"channel_id": ARCHIVED[0], "observed_at": T0 + timedelta(days=d), "participants_count": n}
            for d, n in ((0, 1000), (1, 1100), (3, 1000))]
    path = write_archive(tmp_path / "g.duckdb", posts, obs, cobs)
    with analysis.connect(path) as con:
        vg = analysis.view_growth(con)
        hl = rows_by(analysis.half_life(con), "channel_id", "message_id")
        hlc = rows_by(analysis.half_life(con, per="channel"), "channel_id")
        cg = rows_by(analysis.channel_growth(con), "channel_id", "age_s")
        sub = analysis.subscriber_growth(con)
    assert vg.height == 6 and vg["age_s"].to_list()[:3] == [3600.0, 6 * 3600.0, 24 * 3600.0]
    # half of 100 = 50 lies between (1 h, 40) and (6 h, 80): 1 h + 10/40 * 5 h
    assert approx_equal(hl[(ARCHIVED[0], 1)]["half_life_s"], 3600 * (1 + 0.25 * 5))
    assert hl[(ARCHIVED[0], 2)]["half_life_s"] is None                       # no views yet
    # half of 50 = 25 lies between (0, 0) and (2 h, 30)
    assert approx_equal(hl[(ARCHIVED[1], 1)]["half_life_s"], 2 * 3600 * 25 / 30)
    assert hlc[ARCHIVED[0]]["posts"] == 1
    assert cg[(ARCHIVED[0], 3600.0)]["posts"] == 2 and cg[(ARCHIVED[0], 3600.0)]["median_views"] == 20.0
    assert cg[(ARCHIVED[1], 86400.0)]["median_views"] == 50.0
    assert sub["change"].to_list() == [None, 100, -100] and sub["per_day"].to_list() == [None, 100.0, -50.0]


# ---- connect -------------------------------------------------------------------------------------

def test_connect_is_read_only_and_snapshot_releases_file(designed: tuple[Path, list[Post]]) -> None:
    path, posts = designed
    with analysis.connect(path) as con, pytest.raises(duckdb.Error):
        con.execute("DELETE FROM posts")
    snap = analysis.connect(path, snapshot=True)
    writer = duckdb.connect(str(path))     # the file is free again: a collector could write now
    writer.close()
    assert analysis.cascades(snap).height == len(expected_cascades(posts))
    snap.close()


def test_connect_waits_then_explains_when_collector_holds_file(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    path = write_archive(tmp_path / "busy.duckdb", [])
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); time.sleep(30)"),
        str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        start = time.monotonic()
        with pytest.raises(analysis.ArchiveBusyError, match="collector"):
            analysis.connect(path, wait=0.6, poll=0.1)
        assert 0.5 <= time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(FileNotFoundError):
        analysis.connect(tmp_path / "missing.duckdb")


# --------------------------------------------------------------------------------------------------
# ground truth from the simulated world (fixture `collected` comes from tests/conftest.py)
# --------------------------------------------------------------------------------------------------

def world_archived(world: Any, con: duckdb.DuckDBPyConnection) -> dict[tuple[int, int], tuple[Any, datetime]]:
    """The archived posts as World records, each with the time the collector last saw it.

    Only the archive's keys and ``last_seen_at`` are read from the file; every value an expectation
    uses (dates, forward headers, albums, deletions, counters) comes from the World.
    """
    out = {}
    for ch, mid, seen in con.execute("SELECT channel_id, message_id, last_seen_at FROM posts").fetchall():
        msg = world.message(ch, mid)
        assert msg is not None, (ch, mid)
        out[(ch, mid)] = (msg, seen)
    return out


def world_expected_cascades(archived: dict[tuple[int, int], tuple[Any, datetime]]) -> dict[tuple[int, int], dict]:
    groups: dict[tuple[int, int], list[tuple[Any, datetime]]] = defaultdict(list)
    for msg, seen in archived.values():
        if msg.fwd is not None and msg.fwd.channel_id is not None and msg.fwd.message_id is not None:
            groups[(msg.fwd.channel_id, msg.fwd.message_id)].append((msg, seen))
    out = {}
    for key, fws in groups.items():
        origin = archived.get(key)
        t0 = origin[0].posted_at if origin else fws[0][0].fwd.posted_at
        lags = [(m.posted_at - t0).total_seconds() for m, _ in fws]
        out[key] = {
            "forwards": len(fws), "channels": len({m.channel_id for m, _ in fws}),
            "first_forward_at": min(m.posted_at for m, _ in fws), "median_lag_s": statistics.median(lags),
            "origin_views": origin[0].state_at(origin[1]).views if origin else None,
            "forward_views": sum(m.state_at(seen).views for m, seen in fws),
            "origin_archived": origin is not None,
        }
    return out


def test_world_cascades(collected: Any) -> None:
    with analysis.connect(collected.path) as con:
        archived = world_archived(collected.world, con)
        got = rows_by(analysis.cascades(con), "origin_channel_id", "origin_message_id")
    want = world_expected_cascades(archived)
    assert want, "the simulated world should produce forwards"
    assert any(not w["origin_archived"] for w in want.values()), "origins outside the archive"
    assert got.keys() == want.keys()
    for k, w in want.items():
        for col, v in w.items():
            if col == "median_lag_s":
                assert approx_equal(got[k][col], v), (k, col)
            else:
                assert got[k][col] == v, (k, col)


def test_world_network_excludes_hidden_and_self(collected: Any) -> None:
    with analysis.connect(collected.path) as con:
        archived = world_archived(collected.world, con)
        got = rows_by(analysis.forward_network(con), "source_channel_id", "target_channel_id")
    pairs: dict[tuple[int, int], set[Any]] = defaultdict(set)
    hidden = 0
    for msg, _ in archived.values():
        if msg.fwd is None:
            continue
        if msg.fwd.channel_id is None:
            hidden += 1
        elif msg.fwd.channel_id != msg.channel_id:
            unit = ("album", msg.grouped_id) if msg.grouped_id is not None else ("msg", msg.message_id)
            pairs[(msg.fwd.channel_id, msg.channel_id)].add(unit)
    assert hidden > 0, "the simulated world should include hidden-sender forwards"
    assert {k: v["forwards"] for k, v in got.items()} == {k: len(v) for k, v in pairs.items()}


def test_world_posting_frequency_counts_albums_once_and_deleted(collected: Any) -> None:
    with analysis.connect(collected.path) as con:
        archived = world_archived(collected.world, con)
        df = analysis.posting_frequency(con, every="1d", fill_zeros=False)
    units: dict[tuple[int, Any], datetime] = {}
    for msg, _ in archived.values():
        u = (msg.channel_id, ("a", msg.grouped_id) if msg.grouped_id is not None else ("m", msg.message_id))
        units[u] = min(units.get(u, msg.posted_at), msg.posted_at)
    want: dict[tuple[int, datetime], int] = defaultdict(int)
    for (ch, _), t in units.items():
        want[(ch, datetime(t.year, t.month, t.day, tzinfo=UTC))] += 1
    assert any(m.deleted_at is not None and m.deleted_at <= collected.world.now for m, _ in archived.values())
    assert {(r["channel_id"], r["period"]): r["posts"] for r in df.iter_rows(named=True)} == dict(want)


def test_world_url_spread(collected: Any) -> None:
    with analysis.connect(collected.path) as con:
        archived = world_archived(collected.world, con)
        got = rows_by(analysis.url_spread(con), "url")
    hits: dict[str, dict[tuple[int, int], datetime]] = defaultdict(dict)
    for (ch, mid), (msg, seen) in archived.items():
        version = msg.version_at(seen)
        for e in version.entities:
            raw = e.url if e.kind == "text_url" else (_utf16_slice(version.text, e.offset, e.length)
                                                      if e.kind == "url" else None)
            c = canonical_url(raw) if raw else None
            if c:
                hits[c[0]][(ch, mid)] = msg.posted_at
    assert got.keys() == hits.keys()
    for url, h in hits.items():
        assert got[url]["posts"] == len(h) and got[url]["channels"] == len({c for c, _ in h})
        assert got[url]["first_posted_at"] == min(h.values())


def _utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le")
    return data[2 * offset: 2 * (offset + length)].decode("utf-16-le")


def test_url_spread_packed_keys_equal_struct_keys(designed: tuple[Path, list[Post]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path packs (time, channel, message) into one HUGEINT; ids too large for it use STRUCT keys."""
    from analysis import _links as links

    path, _ = designed
    built: list[bool] = []
    sql = links._url_spread_sql
    monkeypatch.setattr(links, "_url_spread_sql", lambda packed: built.append(packed) or sql(packed))
    with analysis.connect(path) as con:
        packed = analysis.url_spread(con)
        assert built == [True]                                      # every id fit: one query, packed keys
        monkeypatch.setattr(links, "_fits_sql", lambda: "false")    # as if one did not: the STRUCT query
        exact = analysis.url_spread(con)
        assert built == [True, True, False]
    assert packed.equals(exact)


def test_url_spread_big_ids_and_same_second_ties(tmp_path: Path) -> None:
    """Ids beyond the packed key's bits, and ties in time: the earliest post is still exact."""
    big = 1 << 45
    posts = [
        Post(big + 1, (1 << 33) + 5, T0, 1, urls=["https://x.test/a"]),
        Post(big + 1, (1 << 33) + 2, T0, 1, urls=["x.test/a/"]),
        Post(ARCHIVED[0], 7, T0 + timedelta(seconds=1), 1, urls=["https://x.test/a", "https://y.test"]),
        Post(ARCHIVED[1], 3, T0, 1, urls=["https://y.test/"]),
        Post(ARCHIVED[0], 9, T0, 1, urls=["https://y.test"]),
    ]
    path = write_archive(tmp_path / "big.duckdb", posts)
    with analysis.connect(path) as con:
        got = rows_by(analysis.url_spread(con), "url")
    x = got["https://x.test/a"]
    assert (x["first_channel_id"], x["first_message_id"], x["first_posted_at"]) == (big + 1, (1 << 33) + 2, T0)
    assert (x["posts"], x["channels"], x["median_lag_s"]) == (3, 2, 1.0)
    assert (got["https://y.test"]["first_channel_id"], got["https://y.test"]["first_message_id"]) == (ARCHIVED[0], 9)
    assert got["https://y.test"]["channels"] == 2 and got["https://y.test"]["median_lag_s"] == 0.0


def test_functions_work_after_a_result_left_unfinished(collected: Any) -> None:
    """DuckDB 2 refuses new work on a connection with an unfinished result; the analysis uses its own cursors."""
    con = analysis.connect(collected.path, snapshot=True)
    for name in ("cascades", "forward_network", "posting_frequency", "url_spread", "view_growth",
                 "diffusion_trees", "copies"):
        con.execute("SELECT * FROM posts").fetchone()          # a notebook user's half-read query
        assert getattr(analysis, name)(con).height > 0, name
