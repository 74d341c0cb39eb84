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

from .frames import FORWARDS_SQL, Params, channel_clause, query_frame, time_clauses, where_sql

__all__ = ["forward_network"]


def forward_network(
    con: duckdb.DuckDBPyConnection,
    *,
    sources: Iterable[int] | None = None,
    targets: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_self: bool = False,
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

    Example::

        edges = analysis.forward_network(con)
        g = networkx.from_pandas_edgelist(edges.to_pandas(), "source_channel_id", "target_channel_id",
                                          edge_attr="forwards", create_using=networkx.DiGraph)
    """
    params: Params = {}
    where = where_sql([
        None if include_self else "channel_id <> fwd_channel_id",
        channel_clause("fwd_channel_id", sources, params, "sources"),
        channel_clause("channel_id", targets, params, "targets"),
        *time_clauses("posted_at", since, until, params),
    ])
    # Forwarding acts: each single forward is one; the items of a forwarded album (one grouped_id) are
    # one together. Albums are grouped first (few rows), so the pair totals need no DISTINCT aggregate,
    # which would cost more than everything else here.
    sql = f"""
    WITH fw AS (
        SELECT channel_id, fwd_channel_id, grouped_id, posted_at, views FROM ({FORWARDS_SQL}) f {where}
    ),
    units AS (
        SELECT fwd_channel_id, channel_id, count(*) AS forwards, count(*) AS messages, min(posted_at) AS first_at,
               max(posted_at) AS last_at, sum(coalesce(views, 0)) AS views
        FROM fw WHERE grouped_id IS NULL GROUP BY fwd_channel_id, channel_id
        UNION ALL
        SELECT fwd_channel_id, channel_id, 1, count(*), min(posted_at), max(posted_at), sum(coalesce(views, 0))
        FROM fw WHERE grouped_id IS NOT NULL GROUP BY fwd_channel_id, channel_id, grouped_id
    )
    SELECT fwd_channel_id AS source_channel_id,
           channel_id AS target_channel_id,
           sum(forwards)::BIGINT AS forwards,
           sum(messages)::BIGINT AS messages,
           min(first_at) AS first_at,
           max(last_at) AS last_at,
           sum(views)::BIGINT AS views
    FROM units
    GROUP BY fwd_channel_id, channel_id
    ORDER BY forwards DESC, source_channel_id, target_channel_id
    """
    return query_frame(con, sql, params, "forward_network")
