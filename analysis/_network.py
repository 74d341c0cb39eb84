"""The forward network: who forwards whom.

Edges point from the origin channel (``source_channel_id``) to the forwarding channel
(``target_channel_id``), the direction in which content travels. Forward headers always name the
first source, never the intermediate hop, so an edge means "target re-posted source's content",
not necessarily "target saw it in source".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb
import polars as pl

from ._frames import Params, channel_clause, query_frame, time_clauses, warn_use_summary, where_sql


def forward_network(
    con: duckdb.DuckDBPyConnection,
    *,
    sources: Iterable[int] | None = None,
    targets: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_self: bool = False,
    use_summary: bool | None = None,
) -> pl.DataFrame:
    """One row per (origin channel, forwarding channel) pair with at least one archived forward.

    Columns (``SCHEMAS["forward_network"]``): ``source_channel_id`` (origin), ``target_channel_id``
    (forwarder), ``forwards`` (forwarding acts: a forwarded album counts once), ``messages`` (forwarded
    messages, album items each), ``first_at``/``last_at`` (the forwards' ``posted_at``), ``views``
    (their last archived views). Deleted forwards count; hidden-sender forwards name no origin and are
    not part of the network. Self-forwards (a channel re-posting its own post) are loops that say
    nothing about spread and are left out unless ``include_self``.

    ``sources``/``targets`` keep edges from/to these channels; ``since``/``until`` filter the forwards
    by their ``posted_at``. Ordered by ``forwards`` (descending).

    ``use_summary`` is deprecated and ignored (nothing is stored since migration 0009; the result is always
    computed from the posts); passing it warns, and it will be removed in the next release.

    Example::

        import networkx

        edges = analysis.forward_network(con)
        g = networkx.DiGraph()
        g.add_weighted_edges_from(edges.select("source_channel_id", "target_channel_id", "forwards").iter_rows())
        analysis.with_names(edges, con)      # + source_channel, target_channel: @username, else the title

    ``analysis.network_graph(con)`` builds that graph with node and edge attributes (what Gephi gets).
    """
    warn_use_summary(use_summary, "forward_network")
    params: Params = {}
    where = where_sql([
        "fwd_channel_id IS NOT NULL AND fwd_message_id IS NOT NULL",
        None if include_self else "channel_id <> fwd_channel_id",
        channel_clause("fwd_channel_id", sources, params, "sources"),
        channel_clause("channel_id", targets, params, "targets"),
        *time_clauses("posted_at", since, until, params),
    ])
    # Forwarding acts: each single forward is one; the items of a forwarded album (one grouped_id) are
    # one together. One aggregation per pair with plain integer states counts messages and album items;
    # a second one, over album items only (few rows), counts the distinct albums per pair, and
    # forwards = messages - album items + albums. A DISTINCT aggregate over all rows, or grouping
    # every message as its own unit first, would cost more than everything else here. Times are
    # aggregated as epoch microseconds; the ordering is done in Polars (see query_frame).
    sql = f"""
    WITH fw AS (
        SELECT channel_id, fwd_channel_id, grouped_id, epoch_us(posted_at) AS t, views FROM posts {where}
    ),
    pairs AS (
        SELECT fwd_channel_id, channel_id, count(*) AS messages, count(grouped_id) AS album_items,
               min(t) AS first_us, max(t) AS last_us, coalesce(sum(views), 0)::BIGINT AS views
        FROM fw GROUP BY fwd_channel_id, channel_id
    ),
    albums AS (
        SELECT fwd_channel_id, channel_id, count(DISTINCT grouped_id) AS albums
        FROM fw WHERE grouped_id IS NOT NULL GROUP BY fwd_channel_id, channel_id
    )
    SELECT p.fwd_channel_id AS source_channel_id,
           p.channel_id AS target_channel_id,
           p.messages - p.album_items + coalesce(a.albums, 0) AS forwards,
           p.messages,
           make_timestamptz(p.first_us) AS first_at,
           make_timestamptz(p.last_us) AS last_at,
           p.views
    FROM pairs p
    LEFT JOIN albums a ON a.fwd_channel_id = p.fwd_channel_id AND a.channel_id = p.channel_id
    """
    order = [("forwards", True), ("source_channel_id", False), ("target_channel_id", False)]
    return query_frame(con, sql, params, "forward_network", order)
