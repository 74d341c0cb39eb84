"""Inferred diffusion trees of forward cascades, and their structural virality.

**Everything here above the root is an inference.** Telegram's forward header names only the first
source of a post, never the channel the forwarder actually saw it in, so the hops of a cascade are
invisible. :func:`diffusion_trees` guesses each forward's parent with one explicit, documented rule;
treat the trees as a model of the cascade, not as observed paths.

The parent rule, for a forward by channel ``C`` posted at ``t`` of an origin post ``O``:

- the *earlier holders* of ``O`` at ``t`` are the origin post and every archived forward of ``O``
  posted strictly before ``t`` and not deleted by ``t``;
- ``C``'s *known sources* at ``t`` are the channels whose posts ``C`` had forwarded strictly before ``t``
  anywhere in the archive (any origin; the header names the origin channel, so this is "C has
  re-posted X's content before", a proxy for "C follows X");
- the parent is the **latest** earlier holder whose channel is one of ``C``'s known sources
  (``rule = 'prior_source'``; this may be the origin itself); when there is none, the parent is the
  origin (``rule = 'origin'``, the fallback).

Ties in time: holders must be strictly earlier; forwards are ordered by (posted_at, channel_id,
message_id). Only archived forwards are seen: a hop through a channel that is not collected is
invisible and its descendants attach elsewhere. Nodes are posts (the origin and each forward), so a
channel forwarding the same origin twice is two nodes.

Structural virality (Goel, Anderson, Hofman and Watts, "The structural virality of online diffusion",
Management Science 62(1), 2016) is the mean shortest-path distance over all pairs of distinct nodes of
the tree: ``2 W / (n (n - 1))`` with ``W`` the Wiener index. It is computed in O(n) from subtree sizes
(every edge lies on ``s (n - s)`` of the paths, ``s`` the size of the subtree below it). A star of n
nodes (pure broadcast) scores ``2 (n - 1) / n`` (< 2); a chain of n nodes scores ``(n + 1) / 3``.

Example::

    with analysis.connect("archive.duckdb") as con:
        trees = analysis.diffusion_trees(con)          # one row per node, parent inferred
        sv = cascade_virality(con, min_size=10)        # one row per cascade
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from ._frames import conform

_UTC = pl.Datetime("us", "UTC")

TREES_SCHEMA: dict[str, pl.DataType] = {
    "origin_channel_id": pl.Int64(),
    "origin_message_id": pl.Int64(),
    "node": pl.Int64(),
    "channel_id": pl.Int64(),
    "message_id": pl.Int64(),
    "posted_at": _UTC,
    "parent_node": pl.Int64(),
    "parent_channel_id": pl.Int64(),
    "parent_message_id": pl.Int64(),
    "depth": pl.Int64(),
    "inferred": pl.Boolean(),
    "rule": pl.String(),
    "assumption": pl.String(),
}

VIRALITY_SCHEMA: dict[str, pl.DataType] = {
    "origin_channel_id": pl.Int64(),
    "origin_message_id": pl.Int64(),
    "origin_posted_at": _UTC,
    "nodes": pl.Int64(),
    "depth_max": pl.Int64(),
    "structural_virality": pl.Float64(),
    "assumption": pl.String(),
}

_FORWARDS_SQL = """
    SELECT f.channel_id, f.message_id, f.posted_at, f.deleted_at,
           f.fwd_channel_id, f.fwd_message_id, coalesce(o.posted_at, f.fwd_posted_at) AS origin_at
    FROM posts f
    LEFT JOIN posts o ON o.channel_id = f.fwd_channel_id AND o.message_id = f.fwd_message_id
    WHERE f.fwd_channel_id IS NOT NULL AND f.fwd_message_id IS NOT NULL
"""


# -- structural virality (pure) ----------------------------------------------------------------------


def virality_from_parents(parents: Sequence[int]) -> float:
    """Structural virality of a tree given as parent indexes: ``parents[0]`` is the root (its value is
    ignored) and ``parents[i] < i`` for every other node (nodes listed parents first, e.g. by time).

    A single node has no pairs: the result is NaN. Example: ``virality_from_parents([-1, 0, 0])`` is
    ``4/3`` (a star of three nodes).
    """
    n = len(parents)
    if n < 2:
        return math.nan
    size = [1] * n
    wiener = 0
    for i in range(n - 1, 0, -1):
        p = parents[i]
        if not 0 <= p < i:
            raise ValueError(f"parents[{i}] = {p}: every parent must come before its child")
        wiener += size[i] * (n - size[i])
        size[p] += size[i]
    return 2.0 * wiener / (n * (n - 1))


def structural_virality(edges: Iterable[tuple[Hashable, Hashable]]) -> float:
    """Structural virality (mean pairwise shortest-path distance) of the tree with these edges.

    Edges are (parent, child) pairs of any hashable node ids; direction does not matter. Raises
    ``ValueError`` when the edges do not form one tree. No edges: NaN (a one-node tree has no pairs).

    Example: ``structural_virality([(0, 1), (1, 2), (2, 3)])`` is ``5/3`` (a chain of 4: (4 + 1) / 3).
    """
    index: dict[Hashable, int] = {}
    adjacency: list[list[int]] = []
    m = 0
    for u, v in edges:
        for node in (u, v):
            if node not in index:
                index[node] = len(adjacency)
                adjacency.append([])
        iu, iv = index[u], index[v]
        adjacency[iu].append(iv)
        adjacency[iv].append(iu)
        m += 1
    n = len(adjacency)
    if n == 0:
        return math.nan
    if m != n - 1:
        raise ValueError(f"not a tree: {n} nodes but {m} edges")
    parents = [-1] * n
    order = [0]
    seen = [False] * n
    seen[0] = True
    for u in order:   # breadth-first: parents before children
        for v in adjacency[u]:
            if not seen[v]:
                seen[v] = True
                parents[v] = u
                order.append(v)
    if len(order) != n:
        raise ValueError("not a tree: the edges are not connected")
    position = {node: i for i, node in enumerate(order)}
    return virality_from_parents([-1] + [position[parents[v]] for v in order[1:]])


# -- inferred trees ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    channel_id: int
    message_id: int
    at: int          # posted_at, microseconds since the epoch
    gone: float      # deleted_at in microseconds, or +inf


def _infer_cascade(
    origin: _Node, forwards: list[tuple[int, int, int, float]], known: dict[int, dict[int, int]]
) -> list[tuple[int, str]]:
    """(parent index, rule) for each of ``forwards`` (channel, message, at, gone), sorted by time.

    Node 0 is the origin; forward ``k`` is node ``k + 1``. ``known[C][X]`` is when C first forwarded X.
    """
    nodes = [origin]
    by_channel: dict[int, list[int]] = defaultdict(list)
    by_channel[origin.channel_id].append(0)
    out: list[tuple[int, str]] = []
    for channel, message, at, gone in forwards:
        sources = known.get(channel, {})
        best = -1
        if len(sources) < len(nodes):
            for source, since in sources.items():
                if since >= at:
                    continue
                for i in reversed(by_channel.get(source, ())):
                    if nodes[i].at < at and (i == 0 or nodes[i].gone > at):
                        best = max(best, i)
                        break
        else:
            for i in range(len(nodes) - 1, -1, -1):
                h = nodes[i]
                if h.at < at and (i == 0 or h.gone > at) and sources.get(h.channel_id, at) < at:
                    best = i
                    break
        parent, rule = (best, "prior_source") if best >= 0 else (0, "origin")
        out.append((parent, rule))
        nodes.append(_Node(channel, message, at, gone))
        by_channel[channel].append(len(nodes) - 1)
    return out


ASSUMPTIONS = ("first_source", "latest_exposure", "with_copies")


def _check_assumption(assumption: str) -> None:
    if assumption not in ASSUMPTIONS:
        raise ValueError(f"assumption={assumption!r}: use one of {ASSUMPTIONS}")


def _forward_nodes(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple], dict[int, dict[int, int]]]:
    """The forwards sorted by origin then time (as row tuples), and ``known[C][X]`` = when C first
    forwarded a post of X."""
    fw = con.cursor().sql(_FORWARDS_SQL).pl()
    if fw.height == 0:
        return [], {}
    fw = fw.with_columns(
        pl.col(c).dt.epoch("us").alias(c) for c in ("posted_at", "deleted_at", "origin_at")
    ).sort(["fwd_channel_id", "fwd_message_id", "posted_at", "channel_id", "message_id"])
    known: dict[int, dict[int, int]] = defaultdict(dict)
    firsts = fw.group_by("channel_id", "fwd_channel_id").agg(pl.col("posted_at").min())
    for c, x, t in firsts.iter_rows():
        known[c][x] = t
    cols = fw.select(
        "fwd_channel_id", "fwd_message_id", "channel_id", "message_id", "posted_at", "deleted_at", "origin_at",
    ).rows()
    return cols, known


# A cascade as built here: (channel, message, at, parent index or None, rule), node 0 the root,
# every parent listed before its child.
_Cascade = list[tuple[int, int, int, int | None, str]]


def _cascades(cols: list[tuple], known: dict[int, dict[int, int]], assumption: str) -> dict[tuple[int, int], _Cascade]:
    out: dict[tuple[int, int], _Cascade] = {}
    start = 0
    while start < len(cols):
        oc, om = cols[start][0], cols[start][1]
        end = start
        while end < len(cols) and cols[end][0] == oc and cols[end][1] == om:
            end += 1
        group = cols[start:end]
        origin = _Node(oc, om, min(r[6] for r in group), math.inf)
        forwards = [(r[2], r[3], r[4], math.inf if r[5] is None else r[5]) for r in group]
        if assumption == "first_source":
            parents = [(0, "origin")] * len(forwards)
        else:
            parents = _infer_cascade(origin, forwards, known)
        nodes: _Cascade = [(oc, om, origin.at, None, "root")]
        nodes += [(f[0], f[1], f[2], p, rule) for f, (p, rule) in zip(forwards, parents, strict=True)]
        out[(oc, om)] = nodes
        start = end
    return out


def _merge_copies(
    cascades: dict[tuple[int, int], _Cascade], clusters: pl.DataFrame, known: dict[int, dict[int, int]],
) -> dict[tuple[int, int], _Cascade]:
    """Join each copy cluster into one cascade rooted at its first post: the other members become
    inferred ``copy`` nodes (parent: the latest earlier node whose channel the copier has forwarded
    from before, else the root), each bringing the forwards of it as its subtree."""
    members: dict[int, list[tuple[int, int, int, bool]]] = defaultdict(list)
    for cid, ch, msg, at, first in clusters.select(
        "cluster_id", "channel_id", "message_id", pl.col("posted_at").dt.epoch("us"), "is_first").iter_rows():
        members[cid].append((ch, msg, at, first))
    out = dict(cascades)
    for rows in members.values():
        rows.sort(key=lambda r: (not r[3], r[2], r[0], r[1]))
        head = rows[0]
        # every node of the merged cascade: (at, tiebreak, channel, message, parent key, rule)
        merged: list[tuple[int, int, int, int, tuple[int, int] | None, str]] = []
        for k, (ch, msg, at, _first) in enumerate(rows):
            own = out.pop((ch, msg), None) or [(ch, msg, at, None, "root")]
            for i, (c, m, t, p, rule) in enumerate(own):
                parent = None if p is None else (own[p][0], own[p][1])
                if i == 0:
                    rule = "root" if k == 0 else "copy"
                merged.append((t if i else at, 0 if i == 0 else 1, c, m, parent, rule))
        merged.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
        root_pos = next(i for i, r in enumerate(merged) if (r[2], r[3]) == (head[0], head[1]))
        merged.insert(0, merged.pop(root_pos))
        index: dict[tuple[int, int], int] = {}
        nodes: _Cascade = []
        for at, _tb, c, m, parent, rule in merged:
            if rule == "root":
                p = None
            elif rule == "copy":
                p = 0
                sources = known.get(c, {})
                for j in range(len(nodes) - 1, 0, -1):
                    h = nodes[j]
                    if h[2] < at and sources.get(h[0], at) < at:
                        p = j
                        break
            else:
                p = index[parent] if parent is not None else 0
            index[(c, m)] = len(nodes)
            nodes.append((c, m, at, p, rule))
        out[(head[0], head[1])] = nodes
    return out


def diffusion_trees(
    con: duckdb.DuckDBPyConnection, *, assumption: str = "latest_exposure", copies_frame: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per node of every cascade's inferred tree: the origin post (depth 0) and each archived
    forward naming it (hidden-sender forwards name no origin and are left out; deleted forwards count).

    ``assumption`` says how the parents are inferred (each is a model, none is observed):

    - ``"latest_exposure"`` (default): the rule of the module docstring (the latest earlier holder among
      the channels the forwarder has forwarded from; else the origin).
    - ``"first_source"``: every forward hangs on the origin, as the forward header says: a star.
    - ``"with_copies"``: ``latest_exposure``, and every near-duplicate text cluster of
      :func:`analysis.copies` (or ``copies_frame``) joins one cascade rooted at the cluster's first post:
      the other members are ``copy`` nodes (parent: the latest earlier node of a channel the copier has
      forwarded from, else the root), each with the forwards of it below. A cluster whose first post
      nobody forwarded is a cascade of copies.

    Columns: ``origin_channel_id``, ``origin_message_id``; ``node`` (0 for the origin, then 1.. in
    order of time) and the node's post ``channel_id``, ``message_id``, ``posted_at`` (for the origin:
    its archived time, else the time in the forward header); ``parent_node``, ``parent_channel_id``,
    ``parent_message_id`` (null for the origin) and ``depth`` - all **inferred**; ``inferred`` is True on
    every row but the origin's, because Telegram never says which channel a forwarder saw a post in;
    ``rule`` is ``'root'``, ``'prior_source'``, ``'origin'`` or ``'copy'`` (which rule chose the
    parent); ``assumption``. Sorted by origin, then node.
    """
    _check_assumption(assumption)
    cols, known = _forward_nodes(con)
    cascades = _cascades(cols, known, assumption)
    if assumption == "with_copies":
        if copies_frame is None:
            from ._copies import copies

            copies_frame = copies(con)
        cascades = _merge_copies(cascades, copies_frame, known)
    if not cascades:
        return pl.DataFrame(schema=TREES_SCHEMA)
    rows: dict[str, list[object]] = {name: [] for name in TREES_SCHEMA if name != "assumption"}
    for (oc, om) in sorted(cascades):
        nodes = cascades[(oc, om)]
        depth = [0] * len(nodes)
        for k, (channel, message, at, p, rule) in enumerate(nodes):
            if p is not None:
                depth[k] = depth[p] + 1
            rows["origin_channel_id"].append(oc)
            rows["origin_message_id"].append(om)
            rows["node"].append(k)
            rows["channel_id"].append(channel)
            rows["message_id"].append(message)
            rows["posted_at"].append(at)
            rows["parent_node"].append(p)
            rows["parent_channel_id"].append(None if p is None else nodes[p][0])
            rows["parent_message_id"].append(None if p is None else nodes[p][1])
            rows["depth"].append(depth[k])
            rows["inferred"].append(k > 0)
            rows["rule"].append(rule)
    times = rows.pop("posted_at")
    out = pl.DataFrame(rows, schema={k: v for k, v in TREES_SCHEMA.items() if k not in ("posted_at", "assumption")})
    out = out.with_columns(pl.Series("posted_at", times, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
                           pl.lit(assumption, pl.String).alias("assumption"))
    return out.select(list(TREES_SCHEMA))


def _virality(trees: pl.DataFrame, min_size: int) -> pl.DataFrame:
    per = trees.group_by("origin_channel_id", "origin_message_id", maintain_order=True).agg(
        pl.col("posted_at").first().alias("origin_posted_at"),
        pl.len().cast(pl.Int64).alias("nodes"),
        pl.col("depth").max().alias("depth_max"),
        pl.col("parent_node").fill_null(-1).alias("parents"),
        pl.col("assumption").first(),
    ).filter(pl.col("nodes") >= min_size)
    sv = [virality_from_parents(p) for p in per["parents"].to_list()]
    out = per.with_columns(pl.Series("structural_virality", sv, dtype=pl.Float64))
    return out.select(list(VIRALITY_SCHEMA)).sort(
        ["structural_virality", "origin_channel_id", "origin_message_id"], descending=[True, False, False]
    )


def cascade_virality(
    con: duckdb.DuckDBPyConnection, *, min_size: int = 2, assumption: str = "latest_exposure",
    copies_frame: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per cascade whose inferred tree has at least ``min_size`` nodes (origin included).

    Columns: ``origin_channel_id``, ``origin_message_id``, ``origin_posted_at``, ``nodes``,
    ``depth_max``, ``structural_virality`` (of the tree :func:`diffusion_trees` infers under
    ``assumption``; another assumption gives other numbers: ``first_source`` always gives a star,
    ``2 (n - 1) / n``) and ``assumption``. Sorted by structural virality, descending.
    """
    trees = diffusion_trees(con, assumption=assumption, copies_frame=copies_frame)
    if trees.height == 0:
        return pl.DataFrame(schema=VIRALITY_SCHEMA)
    return _virality(trees, min_size)


def compare_assumptions(
    con: duckdb.DuckDBPyConnection, *, by: str = "cascade", min_size: int = 2,
    copies_frame: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """How the answer moves between assumptions: one row per cascade (``by="cascade"``) or channel
    (``by="channel"``), with a column per assumption.

    - ``by="cascade"`` (schema ``virality_comparison``): nodes, structural virality (``sv_*``) and rank by
      structural virality (1 = most viral; ties share the lowest rank) under each assumption, for every
      cascade with at least ``min_size`` nodes under any assumption. A cascade absorbed into a copy
      cluster's cascade under ``with_copies`` has nulls there.
    - ``by="channel"`` (schema ``influence_comparison``): the **credit** of each channel under each
      assumption - how many nodes have one of its posts as their inferred parent (the "influencer"
      measure of DeVerna et al. 2024: reposts attributed to it) - and its rank by credit (1 = most).
      Under ``first_source`` only origins get credit; under ``latest_exposure`` intermediaries take
      some; ``with_copies`` adds the copies.

    Example::

        moved = compare_assumptions(con, by="channel").filter(
            pl.col("rank_first_source") != pl.col("rank_latest_exposure"))
    """
    if by not in ("cascade", "channel"):
        raise ValueError("by must be 'cascade' or 'channel'")
    frames: dict[str, pl.DataFrame] = {}
    if copies_frame is None:
        from ._copies import copies

        copies_frame = copies(con)
    for assumption in ASSUMPTIONS:
        frames[assumption] = diffusion_trees(con, assumption=assumption, copies_frame=copies_frame)
    if by == "cascade":
        key = ["origin_channel_id", "origin_message_id"]
        out: pl.DataFrame | None = None
        for a, trees in frames.items():
            sv = _virality(trees, 1) if trees.height else pl.DataFrame(schema=VIRALITY_SCHEMA)
            part = sv.select(
                *key, pl.col("nodes").alias(f"nodes_{a}"), pl.col("structural_virality").alias(f"sv_{a}"),
                pl.col("structural_virality").rank("min", descending=True).cast(pl.Int64).alias(f"rank_{a}"),
            )
            out = part if out is None else out.join(part, on=key, how="full", coalesce=True)
        assert out is not None
        size = pl.max_horizontal(*(pl.col(f"nodes_{a}") for a in ASSUMPTIONS))
        out = out.filter(size >= min_size)
        return conform(out.sort(["rank_latest_exposure", *key], nulls_last=True), "virality_comparison")
    out = None
    for a, trees in frames.items():
        credit = (trees.filter(pl.col("parent_channel_id").is_not_null())
                  .group_by("parent_channel_id").len()
                  .select(pl.col("parent_channel_id").alias("channel_id"),
                          pl.col("len").cast(pl.Int64).alias(f"credited_{a}")))
        out = credit if out is None else out.join(credit, on="channel_id", how="full", coalesce=True)
    assert out is not None
    out = out.with_columns(pl.col(f"credited_{a}").fill_null(0) for a in ASSUMPTIONS)
    out = out.with_columns(pl.col(f"credited_{a}").rank("min", descending=True).cast(pl.Int64).alias(f"rank_{a}")
                           for a in ASSUMPTIONS)
    return conform(out.sort(["rank_latest_exposure", "channel_id"]), "influence_comparison")
