"""Tests of analysis.coordination, analysis.velocity and the assumptions of analysis._trees.

Expectations come from outside the code under test: the simulated world's planted labels
(``World.coordination``), hand-built archives with known answers, brute-force re-implementations of the
pure statistics, and Goel et al.'s closed forms for stars and chains.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import analysis
from analysis._coordination import (
    benjamini_hochberg,
    coordination,
    shift_probabilities,
    upper_tail,
    window_pairs_sql,
    within_probability,
)
from analysis._frames import SCHEMAS
from analysis._trees import compare_assumptions
from collector._simulated.generate import generate_world
from collector._simulated.plant import CoordinationPlan
from tests.helpers.coordworld import world_archive
from tests.helpers.simworld import Collected

MIGRATION = Path(__file__).resolve().parents[2] / "collector" / "_archive" / "migrations" / "0001_initial.sql"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def make_archive(path: Path, posts: list[dict[str, Any]], observations: list[dict[str, Any]] = ()) -> Path:
    """A DuckDB file with the real schema holding exactly these posts (and post observations)."""
    con = duckdb.connect(str(path))
    con.execute(MIGRATION.read_text())
    for table, rows, extra in (("posts", posts, True), ("post_observations", list(observations), False)):
        if not rows:
            continue
        cols = sorted({k for r in rows for k in r})
        types = {"urls": pa.list_(pa.string())}
        con.register("_rows", pa.table({c: pa.array([r.get(c) for r in rows], type=types.get(c)) for c in cols}))
        seen = ", first_seen_at, last_seen_at" if extra else ""
        now = ", now(), now()" if extra else ""
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}{seen}) SELECT {', '.join(cols)}{now} FROM _rows")
        con.unregister("_rows")
    con.close()
    return path


def post(channel: int, message: int, seconds: float, text: str | None = None, **extra: Any) -> dict[str, Any]:
    row = {"channel_id": channel, "message_id": message, "posted_at": T0 + timedelta(seconds=seconds), "text": text}
    row.update(extra)
    return row


def fwd(channel: int, message: int, seconds: float, origin: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return post(channel, message, seconds, "fwd", fwd_channel_id=origin[0], fwd_message_id=origin[1],
                fwd_posted_at=T0 - timedelta(hours=1), **extra)


# -- the pure statistics --------------------------------------------------------------------------------


def test_within_probability_is_the_brute_force_fraction() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 1000, 40).astype(float), rng.integers(0, 1000, 30).astype(float)
    brute = sum(abs(x - y) <= 25 for x in a for y in b) / (len(a) * len(b))
    assert within_probability(a, b, 25) == pytest.approx(brute)
    assert within_probability(np.array([0.0, 100.0]), np.array([0.0]), 10) == 0.5
    assert within_probability(np.zeros(0), b, 10) == 0.0


def test_upper_tail_matches_enumeration() -> None:
    trials = [(3, 0.2), (2, 0.5), (1, 0.9)]
    outcomes = [p for n, p in trials for _ in range(n)]
    for k in range(0, 8):
        brute = 0.0
        for bits in itertools.product((0, 1), repeat=len(outcomes)):
            if sum(bits) >= k:
                brute += math.prod(p if x else 1 - p for x, p in zip(bits, outcomes, strict=True))
        assert upper_tail(trials, k) == pytest.approx(brute, abs=1e-12), k
    assert upper_tail([(2, 0.5)], 2) == pytest.approx(0.25)
    assert upper_tail([(40, 0.01)], 30) == pytest.approx(math.comb(40, 30) * 0.01**30 * 0.99**10, rel=0.01)


def test_shift_probabilities_and_bh() -> None:
    assert shift_probabilities(np.array([0.0, 1e9, 95.0]), 10, 100).tolist() == [0.1, 0.0, 0.075]
    p = np.array([0.01, 0.04, 0.03, 0.2])
    # BH by hand: sorted 0.01, 0.03, 0.04, 0.2 -> 0.04, 0.06, 0.0533.., 0.2 -> step-up minimum
    assert benjamini_hochberg(p).tolist() == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2], abs=1e-6)
    assert benjamini_hochberg(np.array([0.01]), 10).tolist() == pytest.approx([0.1])


@pytest.mark.parametrize("seed", range(4))
def test_window_pairs_are_the_brute_force_pairs(seed: int) -> None:
    """The window join (candidates from one sorted pass, the cap as a lag) gives exactly the pairs of the
    definition: per object and slot the earliest ``cap`` actions, each paired with later ones of other
    channels in its slot and with those of the next slot at most ``w`` later."""
    rng = random.Random(seed)
    w, cap = 100, 3
    rows = []
    for obj in range(6):
        centre = rng.randrange(0, 2000)
        for ch in rng.sample(range(40), rng.randrange(2, 25)):
            t = centre + int(rng.expovariate(1 / (30 if obj % 2 else 400)))
            rows.append((obj % 3, obj, 0, ch, rng.randrange(1, 10**6), t - (1000 if seed % 2 else 0)))
    con = duckdb.connect()
    con.register("occ", pa.table(dict(zip(["kind", "o1", "o2", "channel_id", "message_id", "t_us"],
                                          map(list, zip(*rows, strict=True)), strict=True))))
    got = sorted(con.sql(f"SELECT kind, o1, a_channel, b_channel, a_t, b_t FROM ({window_pairs_sql(w, cap)})")
                 .fetchall())
    slot = {r: int(r[5] / w) if r[5] >= 0 else -int(-r[5] / w) for r in rows}      # DuckDB's // truncates
    kept = []
    for key in {(r[1], slot[r]) for r in rows}:
        group = sorted((r for r in rows if (r[1], slot[r]) == key), key=lambda r: (r[5], r[3], r[4]))
        kept += group[:cap]
    want = sorted((x[0], x[1], x[3], y[3], x[5], y[5]) for x in kept for y in kept
                  if x[1] == y[1] and x[3] != y[3] and (
                      (slot[y] == slot[x] and (x[5], x[3]) < (y[5], y[3]))
                      or (slot[y] == slot[x] + 1 and y[5] - x[5] <= w)))
    assert got == want and len(want) > 10


# -- a designed archive ------------------------------------------------------------------------------------


def test_designed_pairs_window_edges_and_evidence(tmp_path: Path) -> None:
    """A and B co-forward 4 origins 10 s apart (one exactly at the window); C forwards the same origins
    hours later; D posts the same link as A within the window twice (below min_repeats)."""
    A, B, C, D, S = 10, 20, 30, 40, 99
    rows: list[dict[str, Any]] = []
    for k in range(1, 21):
        rows.append(post(S, k, -3600 * k, f"origin {k}"))
    for k in range(1, 5):
        t = 86400 * k
        rows.append(fwd(A, k, t, (S, k)))
        rows.append(fwd(B, k, t + (60 if k == 4 else 10), (S, k)))
        rows.append(fwd(C, k, t + 3 * 3600 + 1000 * k, (S, k)))
    rows.append(fwd(B, 5, 86400 * 6 + 61, (S, 6)))              # 61 s after A: outside a 60 s window
    rows.append(fwd(A, 5, 86400 * 6, (S, 6)))
    for k in range(5, 16):                                        # both forward other origins at other times
        rows.append(fwd(A, 10 + k, 86400 * 8 + 5000 * k, (S, k + 2)))
        rows.append(fwd(B, 10 + k, 86400 * 9 + 7000 * k, (S, k + 2)))
    for k in range(2):
        rows.append(post(A, 40 + k, 86400 * 12 + 3600 * k, "see", urls=[f"https://x.test/a{k}?utm_source=z"]))
        rows.append(post(D, 1 + k, 86400 * 12 + 3600 * k + 30, "see", urls=[f"https://www.x.test/a{k}"]))
    path = make_archive(tmp_path / "d.duckdb", rows)
    with analysis.connect(path) as con:
        r = coordination(con, window=60, min_repeats=3, kinds=("forward", "url"), null_span=timedelta(days=1))
        r1 = coordination(con, window=60, min_repeats=1, kinds=("url",))
        early = coordination(con, window=60, min_repeats=1, kinds=("forward",), until=T0 + timedelta(days=2, hours=1))
    pairs = {(a, b): row for a, b, *_ in r.pairs.rows() for row in [r.pairs.filter(
        (pl.col("channel_a") == a) & (pl.col("channel_b") == b)).row(0, named=True)]}
    assert set(pairs) == {(A, B)}
    ab = pairs[(A, B)]
    assert (ab["weight"], ab["forward"], ab["url"]) == (4, 4, 0)
    assert ab["max_gap_s"] == 60.0 and ab["median_gap_s"] == 10.0
    assert ab["flagged"] and ab["group_id"] == 1
    ev = r.evidence.filter(pl.col("channel_a") == A)
    assert sorted(ev["object"].to_list()) == [f"{S}/{k}" for k in range(1, 5)]
    assert sorted(ev["gap_s"].to_list()) == [10.0, 10.0, 10.0, 60.0]
    assert r.groups.row(0, named=True)["members"] == [A, B]
    # until= keeps the actions posted before it: the co-actions of day 1 and day 2
    assert early.pairs.select("channel_a", "channel_b", "weight").rows() == [(A, B, 2)]
    # the URL pair: canonical URLs match across tracking parameters and www.; 2 co-actions
    assert r1.pairs.select("channel_a", "channel_b", "weight", "url").rows() == [(A, D, 2, 2)]
    assert r1.evidence["object"].to_list() == ["https://x.test/a0", "https://x.test/a1"]
    for name, frame in (("coordination_pairs", r.pairs), ("coordination_groups", r.groups),
                        ("coordination_evidence", r.evidence)):
        assert frame.schema == pl.Schema(SCHEMAS[name]), name


def test_cap_per_window_and_empty(tmp_path: Path) -> None:
    S = 99
    rows = [post(S, 1, -600, "o")] + [fwd(100 + i, 1, i, (S, 1)) for i in range(12)]
    path = make_archive(tmp_path / "c.duckdb", rows)
    with analysis.connect(path) as con:
        full = coordination(con, window=60, min_repeats=1, kinds=("forward",))
        capped = coordination(con, window=60, min_repeats=1, kinds=("forward",), max_per_window=4)
        with pytest.raises(ValueError, match="unknown kinds"):
            coordination(con, kinds=("hashtag",))
        with pytest.raises(ValueError, match="null_span"):
            coordination(con, window=3600, null_span=3600)
    assert full.pairs.height == 12 * 11 // 2
    assert capped.pairs.height == 4 * 3 // 2                  # only the first 4 actions in the slot pair up
    empty = make_archive(tmp_path / "e.duckdb", [post(1, 1, 0, "x")])
    with analysis.connect(empty) as con:
        r = coordination(con)
    assert r.pairs.height == r.groups.height == r.evidence.height == 0
    assert r.groups.schema == pl.Schema(SCHEMAS["coordination_groups"])


# -- the planted world, collected for real ------------------------------------------------------------------


def _labels(world: Any) -> tuple[set[int], set[int], list[set[int]]]:
    planted = {c for g in world.coordination if g.coordinated for c in g.members}
    busy = {c for g in world.coordination if not g.coordinated for c in g.members}
    return planted, busy, [set(g.members) for g in world.coordination if g.coordinated]


def test_planted_groups_are_found_with_precision_and_recall(planted: Collected) -> None:
    truth, busy, groups = _labels(planted.world)
    assert len(groups) == 4 and len(busy) == 2
    with analysis.connect(planted.path) as con:
        r = coordination(con)
    found = {c for members in r.groups["members"].to_list() for c in members}
    precision = len(found & truth) / max(1, len(found))
    recall = len(found & truth) / len(truth)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    assert not found & busy
    # each planted group is one detected group, of its own kind
    detected = [set(m) for m in r.groups["members"].to_list()]
    for g in planted.world.coordination:
        if g.coordinated:
            assert set(g.members) in detected, g
    kinds = {frozenset(m): set(k) for m, k in r.groups.select("members", "kinds").rows()}
    for g in planted.world.coordination:
        if g.coordinated:
            assert g.kind in kinds[frozenset(g.members)]


def test_busy_channels_share_most_but_are_not_flagged(planted: Collected) -> None:
    """Busy channels share more objects than any planted pair; with an hour's window some of their pairs
    pass the repeat count (a count threshold alone would call them coordinated), but the null does not."""
    _truth, busy, _groups = _labels(planted.world)
    with analysis.connect(planted.path) as con:
        r = coordination(con, window=timedelta(hours=1), null_span=timedelta(hours=6))
    pairs = r.pairs
    involves_busy = pl.col("channel_a").is_in(list(busy)) | pl.col("channel_b").is_in(list(busy))
    busy_pairs = pairs.filter(involves_busy)
    assert busy_pairs.height > 0 and busy_pairs["weight"].max() >= 3
    assert not busy_pairs["flagged"].any()
    planted_pairs = pairs.filter(~involves_busy & pl.col("flagged"))
    assert busy_pairs["shared"].max() > planted_pairs["shared"].max()


def test_null_worlds_flag_nothing_in_95_percent_of_seeds(tmp_path: Path) -> None:
    """No planted groups (busy channels only): at the default thresholds nothing is flagged in >= 19 of
    20 seeds. The worlds are written straight from their records (tests.helpers.coordworld), not collected."""
    clean = 0
    tested = 0
    for seed in range(20):
        world = generate_world(seed, channels=10, days=6, future_days=0.2, posts_per_day=20,
                               coordination=CoordinationPlan(forward_groups=0, url_groups=0, text_groups=0,
                                                             busy=3, busy_per_day=30))
        path = world_archive(world, tmp_path / f"null{seed}.duckdb")
        with analysis.connect(path) as con:
            r = coordination(con)
            tested += coordination(con, min_repeats=1).pairs.height
        clean += r.pairs.filter("flagged").height == 0
    assert clean >= 19, clean
    assert tested > 20            # there was something to test: pairs did co-act


# -- velocity ----------------------------------------------------------------------------------------------


def test_velocity_robust_z_against_numpy(tmp_path: Path) -> None:
    rng = random.Random(4)
    posts, obs = [], []
    views = {}
    for k in range(1, 31):
        v = 10_000 if k == 17 else int(100 * math.exp(rng.gauss(0, 0.3)))
        views[k] = v
        posts.append(post(1, k, 3600 * 10 * k, "p"))
        at = T0 + timedelta(seconds=3600 * 10 * k)
        obs.append({"channel_id": 1, "message_id": k, "observed_at": at + timedelta(minutes=70), "views": v})
        obs.append({"channel_id": 1, "message_id": k, "observed_at": at + timedelta(minutes=150), "views": v * 3})
    posts.append(post(2, 1, 0, "p"))      # a channel of one post: no baseline
    obs.append({"channel_id": 2, "message_id": 1, "observed_at": T0 + timedelta(minutes=61), "views": 5})
    path = make_archive(tmp_path / "v.duckdb", posts, obs)
    with analysis.connect(path) as con:
        df = analysis.velocity(con, checkpoints=[timedelta(hours=1)], outliers_only=False)
        late = analysis.velocity(con, checkpoints=[timedelta(hours=1)], stretch=1.1, outliers_only=False)
    assert df.schema == pl.Schema(SCHEMAS["velocity"])
    one = df.filter(pl.col("channel_id") == 1).sort("message_id")
    assert one["value"].to_list() == [views[k] for k in range(1, 31)]      # the 70-min observation, not 150
    lv = np.log1p(np.array([views[k] for k in range(1, 31)], dtype=float))
    med = np.median(lv)
    mad = np.median(np.abs(lv - med))
    assert one["robust_z"].to_list() == pytest.approx(((lv - med) / (1.4826 * mad)).tolist())
    top = df.filter(pl.col("rank") == 1).row(0, named=True)
    assert (top["message_id"], top["outlier"]) == (17, True)
    assert one.filter(pl.col("outlier")).height == 1
    two = df.filter(pl.col("channel_id") == 2).row(0, named=True)
    assert two["robust_z"] is None and two["rank"] is None and not two["outlier"]
    assert late.height == 1                 # only the 61-min observation is within 1.1 x 1 h


def test_velocity_on_the_collected_planted_world(planted: Collected) -> None:
    with analysis.connect(planted.path) as con:
        df = analysis.velocity(con, min_posts=5, outliers_only=False)
        obs = con.execute("SELECT count(*) FROM post_observations").fetchall()[0][0]
    assert obs > 0
    assert df.height > 0 and set(df["checkpoint_s"].unique()) <= {3600, 21600}
    assert (df["observed_age_s"] >= df["checkpoint_s"]).all()
    assert (df["observed_age_s"] < 2 * df["checkpoint_s"]).all()


@pytest.mark.parametrize("batch", [1, 37, 400])
def test_velocity_in_channel_batches_equals_one_query(planted: Collected, batch: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory bounded by the batch: the channels cut into ranges of at most ``batch`` posts (1: a channel per
    query) give the very frame that one query over everything gives, order and ranks included."""
    from analysis import _velocity

    with analysis.connect(planted.path) as con:
        whole = analysis.velocity(con, min_posts=5, outliers_only=False)
        picked = sorted(whole["channel_id"].unique().to_list())[::2]
        whole_picked = analysis.velocity(con, min_posts=5, channels=picked)
        ranges = _velocity.channel_batches(con, None, batch)
        monkeypatch.setattr(_velocity, "BATCH_POSTS", batch)
        batched = analysis.velocity(con, min_posts=5, outliers_only=False)
        batched_picked = analysis.velocity(con, min_posts=5, channels=picked)
    assert len(ranges) > 1 and whole.height > 0
    assert batched.equals(whole) and batched_picked.equals(whole_picked)


def test_channel_batches_cut_contiguous_ranges() -> None:
    from analysis._velocity import channel_batches

    con = duckdb.connect()
    con.execute("CREATE TABLE posts AS SELECT unnest([1, 1, 2, 2, 3, 3, 3, 3, 3]) AS channel_id")

    assert channel_batches(con, None, 4) == [(1, 2), (3, 3)]
    assert channel_batches(con, None, 3) == [(1, 1), (2, 2), (3, 3)]
    assert channel_batches(con, None, 9) == [None]
    assert channel_batches(con, [1, 3], 4) == [(1, 1), (3, 3)]


# -- reconstruction under assumptions -------------------------------------------------------------------------


def _chain_archive(tmp_path: Path, n: int) -> tuple[Path, list[int]]:
    """Origin S, then channels C1..C(n-1) each forwarding S's post; C(k) forwarded from C(k-1) before, so
    latest exposure makes a chain S <- C1 <- C2 ...; the first source makes a star."""
    S = 500
    chans = [S] + [600 + k for k in range(1, n)]
    rows = [post(S, 1, 0, "origin text"), post(S, 2, -7200, "older")]
    for k in range(1, n):
        if k > 1:
            rows.append(fwd(chans[k], 1, -3600 + k, (chans[k - 1], 77)))   # C(k) knows C(k-1)
        rows.append(fwd(chans[k], 2, 60 * k, (S, 1)))
    return make_archive(tmp_path / f"chain{n}.duckdb", rows), chans


@pytest.mark.parametrize("n", [3, 5, 8])
def test_star_and_chain_closed_forms(tmp_path: Path, n: int) -> None:
    path, chans = _chain_archive(tmp_path, n)
    with analysis.connect(path) as con:
        star = analysis.cascade_virality(con, assumption="first_source").filter(pl.col("origin_channel_id") == 500)
        chain = analysis.cascade_virality(con, assumption="latest_exposure").filter(pl.col("origin_channel_id") == 500)
        trees = analysis.diffusion_trees(con, assumption="latest_exposure").filter(pl.col("origin_channel_id") == 500)
    assert star.row(0, named=True)["nodes"] == n
    assert star.row(0, named=True)["structural_virality"] == pytest.approx(2 * (n - 1) / n)
    assert chain.row(0, named=True)["structural_virality"] == pytest.approx((n + 1) / 3)
    assert chain.row(0, named=True)["depth_max"] == n - 1
    parents = dict(zip(trees["channel_id"].to_list(), trees["parent_channel_id"].to_list(), strict=True))
    assert parents == {500: None, **{chans[k]: chans[k - 1] for k in range(1, n)}}
    assert set(star["assumption"]) == {"first_source"}


def test_with_copies_joins_copy_clusters(tmp_path: Path) -> None:
    """S posts a text; A forwards it; B copies it without a header (B has forwarded from A before, so the
    copy hangs on A's forward); C forwards B's copy. A second cluster nobody forwarded: a cascade of copies."""
    S, A, B, C, X, Y = 1, 2, 3, 4, 5, 6
    text = ("Officials confirmed on Tuesday that the northern bridge will stay closed for repairs until the "
            "end of the month, according to the regional transport office.")
    other = ("Heavy rain flooded the central market district overnight and the city council opened two "
             "emergency shelters for residents who had to leave their homes.")
    rows = [
        post(S, 1, 0, text), post(A, 9, -9000, "a's old post"),
        fwd(B, 1, -8000, (A, 9)),                       # B has forwarded from A before
        fwd(A, 1, 100, (S, 1)),
        post(B, 2, 200, text.replace("Tuesday", "Wednesday")),
        fwd(C, 1, 300, (B, 2)),
        post(X, 1, 0, other), post(Y, 1, 50, other.replace("overnight", "last night")),
    ]
    path = make_archive(tmp_path / "wc.duckdb", rows)
    with analysis.connect(path) as con:
        plain = analysis.diffusion_trees(con)
        merged = analysis.diffusion_trees(con, assumption="with_copies")
        comp = compare_assumptions(con, by="cascade")
        credit = compare_assumptions(con, by="channel")
    assert set(plain["origin_channel_id"]) == {S, A, B}
    tree = merged.filter(pl.col("origin_channel_id") == S)
    got = {(r["channel_id"], r["message_id"]): ((r["parent_channel_id"], r["parent_message_id"]), r["rule"])
           for r in tree.iter_rows(named=True)}
    assert got == {(S, 1): ((None, None), "root"), (A, 1): ((S, 1), "origin"), (B, 2): ((A, 1), "copy"),
                   (C, 1): ((B, 2), "origin")}
    assert (B, 2) not in set(zip(merged["origin_channel_id"], merged["origin_message_id"], strict=True))
    copies_only = merged.filter(pl.col("origin_channel_id") == X)
    assert copies_only["rule"].to_list() == ["root", "copy"] and copies_only["channel_id"].to_list() == [X, Y]
    row = comp.filter(pl.col("origin_channel_id") == S).row(0, named=True)
    assert (row["nodes_first_source"], row["nodes_latest_exposure"], row["nodes_with_copies"]) == (2, 2, 4)
    assert row["sv_with_copies"] == pytest.approx(5 / 3)          # a chain of 4
    by = {r["channel_id"]: r for r in credit.iter_rows(named=True)}
    assert by[S]["credited_first_source"] == 1 and by[A]["credited_with_copies"] == 2     # B's copy, B's forward
    assert by[B]["credited_with_copies"] == 1 and by[X]["credited_with_copies"] == 1
    assert comp.schema == pl.Schema(SCHEMAS["virality_comparison"])
    assert credit.schema == pl.Schema(SCHEMAS["influence_comparison"])
