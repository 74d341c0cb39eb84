"""Coordination: pairs and groups of channels that act on the same object within seconds, again and again.

Three kinds of *object* (``kinds``):

- ``"forward"``: the origin a forward header names (channel, message). An album forwarded whole counts
  once (its first item); hidden-sender forwards name no origin and are left out.
- ``"url"``: a canonical URL (:func:`analysis.canonical_url`) in a post that is not a forward (a
  forward repeats its origin's links; that is the ``"forward"`` kind).
- ``"text"``: a near-duplicate text cluster of :func:`analysis.copies` (posts without forward header).

**Pairs.** Two channels *co-act* on an object when both acted on it within ``window`` of each other
(each channel's first action on the object counts; a channel repeating itself is not a pair).
A pair's ``weight`` is the number of distinct objects it co-acted on. Pairs with ``weight >=
min_repeats`` are tested.

**Bounded work.** The pair search is a window join on sorted times, never a join of every pair of
posts on an object: one sorted pass over each object's actions keeps only those with a neighbour within
``window`` (most actions have none and never reach a join), then times are cut into slots of ``window``
seconds and each kept action is joined only with actions on the same object in its own slot and the
next one, then gaps above ``window`` are dropped.
Within one object and one slot at most ``max_per_window`` actions (the earliest) take part; a burst of
more channels on one object inside one window is capped there (documented, and it is also the case
coordination detection cannot say much about: everybody posted it at once).

**Null model: each channel's own timestamps, reshuffled.** Under the null, every channel keeps the
times at which it acts - its rhythm, its busy hours, its speed - but which object it acts on at which
of those times is independent of the other channel. For forwards the time is measured from the origin's
post (the *delay*), so a fast aggregator stays fast and a news cycle stays in place; links and texts
have no clock outside the channels themselves (the first appearance is usually one of the pair), so
for them the time is the action's own time. Drawing each object's time from the channel's own times
with replacement (the limit of shuffling a channel's timestamps among its own actions), the number
of the ``n`` objects both channels acted on that fall within ``window`` is Binomial(``n``, ``p``), ``p =
P(|T_A - T_B| <= window)`` computed exactly from the two channels' empirical times; kinds add up
(exact convolution). ``expected`` is the null mean, ``p_value`` the upper tail ``P(X >= weight)``.
Busy channels share many objects, so their ``n`` and their ``expected`` are large: they are not
flagged for being busy, only for being synchronised beyond what their own timing explains.

**Multiple testing.** The p-values are adjusted with Benjamini-Hochberg (``q_value``) over the family
of every pair that could have been flagged: all pairs of channels that each acted on at least
``min_repeats`` objects that other channels also acted on (pairs not tested count with p = 1; in a
large archive this is close to Bonferroni, and real coordination still passes: its p-values are
astronomically small); a pair is ``flagged`` when ``weight >= min_repeats`` and ``q_value
<= fdr``. Groups are the connected components of flagged pairs; a group's ``max_q`` is the largest
q-value among its pairs (every pair of the group is significant at that false-discovery rate).

Caveats: the null treats objects as independent and the delay distributions as fixed; objects that
are "hot" for everyone at the same moment make delays of different channels positively correlated,
which the null does not model (use a shorter ``window`` or a smaller ``fdr`` where news breaks fast).
Coordination is not proof of common control: channels run by one editor, a shared bot, or a shared
news wire look the same. Only archived channels are seen.

Defaults, argued in ``docs/analysis.md``: ``window = 5 min``, ``min_repeats = 3``, ``fdr = 0.05``.

Example::

    with analysis.connect("archive.duckdb") as con:
        result = analysis.coordination(con)                 # CoordinationResult
        result.groups                                       # one row per group
        result.pairs.filter(pl.col("flagged"))              # the flagged channel pairs
        result.evidence                                     # the objects and gaps behind each pair
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from ._frames import Params, conform, empty, posts_are_files, time_clauses, where_sql
from ._links import _canonical_function, _has_canonical_column, url_occurrences_sql

KINDS = ("forward", "url", "text")
_US = 1_000_000
_OFFSET = 2**63          # a BIGINT shifted into [0, 2**64): the low half of a packed (high, low) HUGEINT
_MASK = 2**64 - 1


@dataclass(frozen=True, slots=True)
class CoordinationResult:
    """What :func:`coordination` returns: three frames with fixed schemas (``SCHEMAS['coordination_*']``).

    ``pairs``: one row per channel pair with ``weight >= min_repeats``; ``groups``: one row per
    group of flagged pairs; ``evidence``: one row per (pair, object) co-action of the pairs in ``pairs``.
    """

    pairs: pl.DataFrame
    groups: pl.DataFrame
    evidence: pl.DataFrame


# -- occurrences -------------------------------------------------------------------------------------

def _forward_sql(params: Params, since: datetime | None, until: datetime | None) -> str:
    """One row per forward (an album's first item only): kind 0, object = origin ids, t0 = origin date."""
    where = where_sql(["fwd_channel_id IS NOT NULL", "fwd_message_id IS NOT NULL", "posted_at IS NOT NULL",
                       *time_clauses("posted_at", since, until, params, "f")])
    albums = where_sql(["fwd_channel_id IS NOT NULL", "fwd_message_id IS NOT NULL", "posted_at IS NOT NULL",
                        "grouped_id IS NOT NULL", *time_clauses("posted_at", since, until, params, "g")])
    singles = where.replace("WHERE ", "WHERE grouped_id IS NULL AND ", 1)
    return f"""
        SELECT 0::TINYINT AS kind, fwd_channel_id AS o1, fwd_message_id AS o2, channel_id, message_id,
               epoch_us(posted_at) AS t_us, epoch_us(fwd_posted_at) AS t0_us
        FROM posts {singles}
        UNION ALL
        SELECT 0::TINYINT, arg_min(fwd_channel_id, message_id), arg_min(fwd_message_id, message_id), channel_id,
               min(message_id), epoch_us(min(posted_at)), epoch_us(min(fwd_posted_at))
        FROM posts {albums}
        GROUP BY channel_id, grouped_id
    """


def _occurrences(
    con: duckdb.DuckDBPyConnection, kinds: Sequence[str], since: datetime | None, until: datetime | None,
    copies_frame: pl.DataFrame | None,
) -> pl.DataFrame:
    """(kind, o1, o2, channel_id, message_id, t_us, t0_us) of every channel's first action on each object
    that >= 2 channels acted on; ``t0_us`` is the object's first appearance (for forwards the origin's
    date when earlier). A link's ``o1`` is a 63-bit hash of its canonical URL."""
    params: Params = {}
    branches: list[str] = []
    if "forward" in kinds:
        branches.append(_forward_sql(params, since, until))
    if "text" in kinds:
        if copies_frame is None:
            from ._copies import copies

            copies_frame = copies(con)
        cf = copies_frame
        if since is not None:
            cf = cf.filter(pl.col("posted_at") >= since)
        if until is not None:
            cf = cf.filter(pl.col("posted_at") < until)
        con.register("_coordination_copies", cf.select(
            "cluster_id", "channel_id", "message_id", pl.col("posted_at").dt.epoch("us").alias("t_us")))
        branches.append("""
            SELECT 2::TINYINT AS kind, cluster_id::BIGINT AS o1, 0::BIGINT AS o2, channel_id, message_id, t_us,
                   NULL::BIGINT AS t0_us
            FROM _coordination_copies""")
    try:
        if "url" in kinds:
            stored = _has_canonical_column(con)
            with _canonical_function(con) as fn:
                occ = url_occurrences_sql(None, since, until, False, params, canonical_fn=fn, stored=stored,
                                          one_scan=posts_are_files(con))
                branches.append(f"""
                    SELECT 1::TINYINT AS kind, (hash(url) >> 1)::BIGINT AS o1, 0::BIGINT AS o2, channel_id,
                           message_id, t_us, NULL::BIGINT AS t0_us
                    FROM ({occ})""")
                return _first_actions(con, branches, params)
        return _first_actions(con, branches, params)
    finally:
        if "text" in kinds:
            con.unregister("_coordination_copies")


def _first_actions(con: duckdb.DuckDBPyConnection, branches: list[str], params: Params) -> pl.DataFrame:
    if not branches:
        return pl.DataFrame(schema={"kind": pl.Int8, "o1": pl.Int64, "o2": pl.Int64, "channel_id": pl.Int64,
                                    "message_id": pl.Int64, "t_us": pl.Int64, "t0_us": pl.Int64})
    union = "\n        UNION ALL\n".join(branches)
    sql = f"""
    WITH raw AS ({union}),
    packed AS (
        -- (time, message) in one HUGEINT: its minimum is the channel's first action (the lowest message
        -- id among simultaneous ones), one aggregate instead of arg_min and min
        SELECT kind, o1, o2, channel_id, min((t_us::HUGEINT << 64) + (message_id::HUGEINT + {_OFFSET})) AS tm,
               min(t0_us) AS t0_us
        FROM raw GROUP BY kind, o1, o2, channel_id
    ),
    firsts AS (
        SELECT kind, o1, o2, channel_id, ((tm & {_MASK}::HUGEINT) - {_OFFSET})::BIGINT AS message_id,
               (tm >> 64)::BIGINT AS t_us, t0_us
        FROM packed
    ),
    objs AS (
        SELECT kind, o1, o2, min(t_us) AS first_us FROM firsts GROUP BY kind, o1, o2 HAVING count(*) >= 2
    )
    SELECT f.kind, f.o1, f.o2, f.channel_id, f.message_id, f.t_us, least(f.t0_us, o.first_us) AS t0_us
    FROM firsts f JOIN objs o ON f.kind = o.kind AND f.o1 = o.o1 AND f.o2 = o.o2
    """
    return con.sql(sql, params=params or None).pl()


# -- the window join -----------------------------------------------------------------------------------

def window_pairs_sql(window_us: int, max_per_window: int) -> str:
    """SQL over a relation ``occ(kind, o1, o2, channel_id, message_id, t_us)``: every pair of actions on
    the same object by two channels at most ``window_us`` apart, earlier one first (``a_*``), later
    (``b_*``). Bounded: slot join (own slot and next), at most ``max_per_window`` actions per object
    and slot (the earliest).

    One sorted pass first (a window over each object's actions in time order) keeps only the actions
    that can pair: those with a neighbour on the same object within the window (the nearest earlier or
    later action; any partner within the window makes one of the two that close), and drops those past
    the cap (an action is past it when the action ``max_per_window`` places before it on the object is in
    the same slot: slots are runs of that order). The slot joins then see only the few candidates.
    """
    w = int(window_us)
    cap = int(max_per_window)
    return f"""
    WITH s0 AS (
        SELECT kind, o1, o2, channel_id, message_id, t_us, t_us // {w} AS slot,
               t_us - lag(t_us) OVER o AS after_prev, lead(t_us) OVER o - t_us AS before_next,
               lag(t_us, {cap}) OVER o // {w} AS cap_slot
        FROM occ
        WINDOW o AS (PARTITION BY kind, o1, o2 ORDER BY t_us, channel_id, message_id)
    ), s AS (
        SELECT kind, o1, o2, channel_id, message_id, t_us, slot FROM s0
        WHERE (after_prev <= {w} OR before_next <= {w}) AND (cap_slot IS NULL OR cap_slot <> slot)
    ), j AS (
        SELECT x.kind, x.o1, x.o2, x.channel_id AS a_channel, x.message_id AS a_message, x.t_us AS a_t,
               y.channel_id AS b_channel, y.message_id AS b_message, y.t_us AS b_t
        FROM s x JOIN s y ON x.kind = y.kind AND x.o1 = y.o1 AND x.o2 = y.o2 AND y.slot = x.slot
        WHERE (x.t_us, x.channel_id) < (y.t_us, y.channel_id)
        UNION ALL
        SELECT x.kind, x.o1, x.o2, x.channel_id, x.message_id, x.t_us, y.channel_id, y.message_id, y.t_us
        FROM s x JOIN s y ON x.kind = y.kind AND x.o1 = y.o1 AND x.o2 = y.o2 AND y.slot = x.slot + 1
        WHERE y.t_us - x.t_us <= {w}
    )
    SELECT * FROM j WHERE a_channel <> b_channel
    """


# -- the null model (pure) -----------------------------------------------------------------------------

def within_probability(a: np.ndarray, b: np.ndarray, window: float) -> float:
    """``P(|X - Y| <= window)`` for X drawn from the values ``a`` and Y from ``b``, independently.

    Example: ``within_probability(np.array([0, 100]), np.array([0]), 10)`` is 0.5.
    """
    if len(a) == 0 or len(b) == 0:
        return 0.0
    bs = np.sort(np.asarray(b, dtype=np.float64))
    a = np.asarray(a, dtype=np.float64)
    hits = np.searchsorted(bs, a + window, side="right") - np.searchsorted(bs, a - window, side="left")
    return float(hits.sum()) / (len(a) * len(bs))


def _binomial_pmf_below(n: int, p: float, k: int) -> np.ndarray:
    """``P(X = 0..k-1)`` for X ~ Binomial(n, p) (zeros past n)."""
    out = np.zeros(k)
    if k <= 0:
        return out
    if p <= 0.0:
        out[0] = 1.0
        return out
    if p >= 1.0:
        if n < k:
            out[n] = 1.0
        return out
    lp, lq = math.log(p), math.log1p(-p)
    for x in range(min(k, n + 1)):
        out[x] = math.exp(math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1) + x * lp + (n - x) * lq)
    return out


def upper_tail(trials: Sequence[tuple[int, float]], observed: int) -> float:
    """``P(X >= observed)`` for X a sum of independent Binomial(n, p) for each ``(n, p)`` of ``trials``.

    Computed as ``1 - P(X < observed)``; when that is below 1e-6 the tail is summed directly instead
    (the subtraction would lose the digits of a very small p-value). Example: ``upper_tail([(2, 0.5)], 2)``
    is 0.25.
    """
    if observed <= 0:
        return 1.0
    below = np.zeros(observed)
    below[0] = 1.0
    for n, p in trials:
        below = np.convolve(below, _binomial_pmf_below(n, p, observed))[:observed]
    tail = 1.0 - float(below.sum())
    if tail >= 1e-6:
        return min(1.0, tail)
    total = sum(n for n, _ in trials)
    if observed > total:
        return 0.0
    full = np.zeros(1)
    full[0] = 1.0
    for n, p in trials:
        full = np.convolve(full, _binomial_pmf_below(n, p, n + 1))
    return float(min(1.0, max(0.0, full[observed:].sum())))


def benjamini_hochberg(p: np.ndarray, m: int | None = None) -> np.ndarray:
    """BH-adjusted q-values of ``p`` in a family of ``m`` tests (default ``len(p)``; the others p = 1)."""
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    m = n if m is None else max(m, n)
    if n == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


# -- the function ----------------------------------------------------------------------------------

def _seconds(window: timedelta | float) -> float:
    s = window.total_seconds() if isinstance(window, timedelta) else float(window)
    if not s > 0:
        raise ValueError(f"window must be positive, got {window!r}")
    return s


def coordination(
    con: duckdb.DuckDBPyConnection,
    *,
    window: timedelta | float = timedelta(minutes=5),
    min_repeats: int = 3,
    kinds: Iterable[str] = KINDS,
    fdr: float = 0.05,
    max_per_window: int = 50,
    null_span: timedelta | float = timedelta(hours=6),
    since: datetime | None = None,
    until: datetime | None = None,
    copies_frame: pl.DataFrame | None = None,
) -> CoordinationResult:
    """Channel pairs that acted on the same objects within ``window`` (a timedelta or seconds) at least
    ``min_repeats`` times, tested against the null model of the module docstring, and their groups.

    ``kinds``: any of ``"forward"``, ``"url"``, ``"text"``. ``"text"`` runs :func:`analysis.copies`
    with its defaults (minutes on millions of posts) unless ``copies_frame`` passes its result.
    ``fdr``: the Benjamini-Hochberg level at which pairs are flagged. ``since``/``until`` filter
    actions by ``posted_at``.

    ``pairs`` columns: ``channel_a < channel_b``; ``weight`` (objects co-acted on within the window) and
    its split ``forward``/``url``/``text``; ``shared`` (objects both acted on, at any time);
    ``expected`` (null mean of ``weight``); ``p_value``, ``q_value``; ``median_gap_s``,
    ``max_gap_s`` (over the co-actions); ``flagged``; ``group_id`` (null unless flagged). Sorted by
    flagged first, then q-value, then weight descending.
    """
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown kinds {bad}: use any of {KINDS}")
    if min_repeats < 1:
        raise ValueError("min_repeats must be >= 1")
    w_s = _seconds(window)
    span_s = _seconds(null_span)
    if span_s < 4 * w_s:
        raise ValueError(f"null_span ({span_s:g} s) must be at least 4 windows ({4 * w_s:g} s): the shift null "
                         "compares the pair's gaps within the window with its gaps up to null_span")
    w_us = round(w_s * _US)
    con = con.cursor()
    occ = _occurrences(con, kinds, since, until, copies_frame)
    if occ.height == 0:
        return CoordinationResult(empty("coordination_pairs"), empty("coordination_groups"),
                                  empty("coordination_evidence"))
    con.register("occ", occ)
    try:
        acts = con.sql(window_pairs_sql(w_us, max_per_window)).pl()
    finally:
        con.unregister("occ")
    acts = acts.with_columns(
        pl.min_horizontal("a_channel", "b_channel").alias("channel_a"),
        pl.max_horizontal("a_channel", "b_channel").alias("channel_b"),
        ((pl.col("b_t") - pl.col("a_t")) / _US).alias("gap_s"),
    )
    per = acts.group_by("channel_a", "channel_b").agg(
        pl.len().alias("weight"),
        *((pl.col("kind") == i).sum().alias(k) for i, k in enumerate(KINDS)),
        pl.col("gap_s").median().alias("median_gap_s"),
        pl.col("gap_s").max().alias("max_gap_s"),
    )
    # the family of the multiple-testing correction: every pair of channels that could have reached
    # min_repeats (both acted on at least min_repeats objects that other channels also acted on)
    active = occ.group_by("channel_id").len().filter(pl.col("len") >= min_repeats).height
    family = max(per.height, active * (active - 1) // 2)
    tested = per.filter(pl.col("weight") >= min_repeats)
    if tested.height == 0:
        return CoordinationResult(empty("coordination_pairs"), empty("coordination_groups"),
                                  empty("coordination_evidence"))
    tested = _null_model(occ, tested, w_s, span_s)
    q = benjamini_hochberg(tested["p_value"].to_numpy(), family)
    tested = tested.with_columns(pl.Series("q_value", q))
    tested = tested.with_columns(((pl.col("q_value") <= fdr)).alias("flagged"))
    tested, groups = _groups(tested, acts)
    pairs = conform(tested.sort(["flagged", "q_value", "weight", "channel_a", "channel_b"],
                                descending=[True, False, True, False, False]), "coordination_pairs")
    evidence = _evidence(con, acts, pairs)
    return CoordinationResult(pairs, groups, evidence)


def _null_model(occ: pl.DataFrame, tested: pl.DataFrame, window_s: float, span_s: float) -> pl.DataFrame:
    """``shared``, ``expected`` and ``p_value`` for each tested pair (see the module docstring)."""
    chans = pl.concat([tested["channel_a"], tested["channel_b"]]).unique()
    # forwards: delay since the origin's post; links and texts: the action's own time (no outside clock)
    mine = occ.filter(pl.col("channel_id").is_in(chans.implode())).with_columns(
        (pl.when(pl.col("kind") == 0).then(pl.col("t_us") - pl.col("t0_us")).otherwise(pl.col("t_us")) / _US)
        .alias("delay_s"))
    delays: dict[tuple[int, int], np.ndarray] = {}
    for (kind, channel), part in mine.group_by(["kind", "channel_id"]):
        delays[(int(kind), int(channel))] = np.sort(part["delay_s"].to_numpy())
    # objects both channels acted on, with the signed gap between their actions
    inc = mine.select("kind", "o1", "o2", "channel_id", "t_us")
    shared = (
        tested.select("channel_a", "channel_b")
        .join(inc.rename({"channel_id": "channel_a", "t_us": "ta"}), on="channel_a")
        .join(inc.rename({"channel_id": "channel_b", "t_us": "tb"}), on=["channel_b", "kind", "o1", "o2"])
        .group_by("channel_a", "channel_b", "kind")
        .agg(pl.len().alias("n"), ((pl.col("tb") - pl.col("ta")) / _US).alias("gaps"))
    )
    by_pair: dict[tuple[int, int], list[tuple[int, int, list[float]]]] = {}
    # in a fixed order (kinds ascending, gaps sorted): the sums below are then the same on every run
    for a, b, kind, n, gaps in shared.sort("channel_a", "channel_b", "kind").iter_rows():
        by_pair.setdefault((a, b), []).append((int(kind), int(n), sorted(gaps)))
    total, mean, pv = [], [], []
    for a, b, weight in tested.select("channel_a", "channel_b", "weight").iter_rows():
        timing, shift = [], []
        for kind, n, gaps in by_pair.get((a, b), []):
            p = within_probability(delays.get((kind, a), np.zeros(0)), delays.get((kind, b), np.zeros(0)), window_s)
            timing.append((n, p))
            shift += [(1, q) for q in shift_probabilities(np.asarray(gaps), window_s, span_s) if q > 0]
        total.append(sum(n for n, _ in timing))
        m_timing, m_shift = sum(n * p for n, p in timing), sum(q for _, q in shift)
        mean.append(max(m_timing, m_shift))
        pv.append(max(upper_tail(timing, int(weight)), upper_tail(shift, int(weight))))
    return tested.with_columns(pl.Series("shared", total, dtype=pl.Int64),
                               pl.Series("expected", mean, dtype=pl.Float64),
                               pl.Series("p_value", pv, dtype=pl.Float64))


def shift_probabilities(gaps: np.ndarray, window: float, span: float) -> np.ndarray:
    """Per shared object, the chance that its two actions fall within ``window`` when one channel's timeline
    is shifted by a uniform amount in ``[-span, span]``: ``|[g - window, g + window] ∩ [-span, span]| / 2 span``
    for each signed gap ``g``.

    Example: ``shift_probabilities(np.array([0.0, 1e9]), 10, 100)`` is ``[0.1, 0.0]``.
    """
    g = np.asarray(gaps, dtype=np.float64)
    lo = np.maximum(g - window, -span)
    hi = np.minimum(g + window, span)
    return np.clip(hi - lo, 0.0, None) / (2.0 * span)


def _groups(tested: pl.DataFrame, acts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Connected components of the flagged pairs: ``group_id`` on ``tested`` and one row per group."""
    flagged = tested.filter("flagged")
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in flagged.select("channel_a", "channel_b").iter_rows():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for x in list(parent):
        members.setdefault(find(x), []).append(x)
    # group ids: by size, then by smallest member, from 1
    order = sorted(members, key=lambda r: (-len(members[r]), min(members[r])))
    gid = {r: i + 1 for i, r in enumerate(order)}
    channel_group = {x: gid[find(x)] for x in parent}
    tested = tested.with_columns(
        pl.when(pl.col("flagged")).then(pl.col("channel_a").replace_strict(channel_group, default=None))
        .otherwise(None).cast(pl.Int64).alias("group_id"))
    if not members:
        return tested, empty("coordination_groups")
    fl = tested.filter("flagged")
    ev = acts.join(fl.select("channel_a", "channel_b", "group_id"), on=["channel_a", "channel_b"])
    per = fl.group_by("group_id").agg(
        pl.len().alias("pairs"), pl.col("weight").sum().alias("weight"), pl.col("q_value").max().alias("max_q"),
        pl.col("expected").sum().alias("expected"))
    objs = ev.group_by("group_id").agg(
        pl.struct("kind", "o1", "o2").n_unique().alias("objects"),
        pl.col("kind").unique().sort().alias("_kinds"),
        pl.col("gap_s").median().alias("median_gap_s"),
        pl.col("a_t").min().cast(pl.Datetime("us", "UTC")).alias("first_at"),
        pl.col("b_t").max().cast(pl.Datetime("us", "UTC")).alias("last_at"),
    ).with_columns(pl.col("_kinds").list.eval(pl.element().replace_strict(dict(enumerate(KINDS)),
                                                                          return_dtype=pl.String)).alias("kinds"))
    mem = pl.DataFrame({"group_id": [gid[r] for r in order],
                        "members": [sorted(members[r]) for r in order]},
                       schema={"group_id": pl.Int64, "members": pl.List(pl.Int64)})
    groups = (mem.with_columns(pl.col("members").list.len().cast(pl.Int64).alias("channels"))
              .join(per, on="group_id").join(objs, on="group_id").sort("group_id"))
    return tested, conform(groups, "coordination_groups")


def _url_labels(con: duckdb.DuckDBPyConnection, posts: pl.DataFrame) -> dict[int, str]:
    """The canonical URLs of these posts (``a_channel``, ``a_message``), by their 63-bit hash."""
    if posts.height == 0:
        return {}
    params: Params = {"chans": posts["a_channel"].to_list(), "msgs": posts["a_message"].to_list()}
    stored = _has_canonical_column(con)
    with _canonical_function(con) as fn:
        occ = url_occurrences_sql(None, None, None, False, {}, canonical_fn=fn, stored=stored)
        occ = occ.replace("FROM posts", "FROM (SELECT * FROM posts WHERE (channel_id, message_id) IN "
                          "(SELECT (unnest($chans::BIGINT[]), unnest($msgs::BIGINT[]))))")
        rows = con.sql(f"SELECT DISTINCT (hash(url) >> 1)::BIGINT, url FROM ({occ})", params=params).fetchall()
    return {int(h): str(u) for h, u in rows}


def _evidence(con: duckdb.DuckDBPyConnection, acts: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    ev = acts.join(pairs.select("channel_a", "channel_b"), on=["channel_a", "channel_b"])
    if ev.height == 0:
        return empty("coordination_evidence")
    urls = _url_labels(con, ev.filter(pl.col("kind") == 1).select("a_channel", "a_message"))
    label = (
        pl.when(pl.col("kind") == 0).then(pl.format("{}/{}", pl.col("o1"), pl.col("o2")))
        .when(pl.col("kind") == 1).then(pl.col("o1").replace_strict(urls, default=None, return_dtype=pl.String))
        .otherwise(pl.format("copies cluster {}", pl.col("o1")))
    )
    ev = ev.with_columns(
        pl.col("kind").replace_strict(dict(enumerate(KINDS)), return_dtype=pl.String).alias("kind"),
        label.alias("object"),
        pl.col("a_t").cast(pl.Datetime("us", "UTC")).alias("a_posted_at"),
        pl.col("b_t").cast(pl.Datetime("us", "UTC")).alias("b_posted_at"),
        pl.col("a_message").alias("a_message_id"), pl.col("b_message").alias("b_message_id"),
        pl.col("a_channel").alias("a_channel_id"), pl.col("b_channel").alias("b_channel_id"),
    )
    # a total order (the same post may act on an origin, a URL and a text): the same frame on any engine or run
    return conform(ev.sort(["channel_a", "channel_b", "a_t", "kind", "object", "a_message_id", "b_message_id",
                            "b_posted_at"]), "coordination_evidence")

