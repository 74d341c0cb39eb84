"""Export the forward network to GEXF and GraphML, ready for Gephi (or Cytoscape, igraph, networkx).

The graph is directed, origin channel -> forwarding channel (the direction content travels), with the
edges of :func:`analysis._network.forward_network` (named origins only, self-forwards left out).

Node attributes: ``label`` (the channel title; the id as text when no title is known; Gephi shows it),
``username`` (empty when unknown), ``archived`` (True when the channel itself is collected, False when
it is only known as a forward origin, from the ``peers`` table), ``participants_count`` (collected
channels only; -1 when unknown, since GEXF/GraphML have no null).
Edge attributes: ``weight`` (forwards: a forwarded album counts once), ``messages`` (forwarded messages,
album items each), ``first_at``/``last_at`` (ISO 8601 UTC strings).

Node ids are the bare channel ids as strings (both formats store ids as text). Characters XML forbids
(control characters in a title, say) are written as U+FFFD (:func:`xml_text`), so the file always parses.

Example::

    with analysis.connect("archive.duckdb") as con:
        analysis.export_gexf(con, "network.gexf", min_forwards=2)
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import networkx as nx
import polars as pl

from ._network import forward_network


def _nodes(con: duckdb.DuckDBPyConnection, ids: list[int]) -> pl.DataFrame:
    """Title, username, archived flag and size of the channels ``ids`` (collected ones, else peers)."""
    wanted = pl.DataFrame({"channel_id": ids}, schema={"channel_id": pl.Int64}).to_arrow()
    name = "_tgspread_export_nodes"
    con = con.cursor()    # its own connection: a result the caller left unfinished on ``con`` must not block this
    con.register(name, wanted)
    try:
        return con.sql(f"""
            SELECT w.channel_id,
                   coalesce(c.title, p.title) AS title,
                   coalesce(c.username, p.username) AS username,
                   c.channel_id IS NOT NULL AS archived,
                   c.participants_count
            FROM {name} w
            LEFT JOIN channels c ON c.channel_id = w.channel_id
            LEFT JOIN peers p ON p.channel_id = w.channel_id
            ORDER BY w.channel_id
        """).pl()
    finally:
        con.unregister(name)


# Characters XML 1.0 does not allow (C0 controls but tab, newline and return; surrogates; U+FFFE/U+FFFF):
# titles come from Telegram and may hold them, and one makes the whole file unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids replaced by U+FFFD.

    >>> xml_text("News\x1b[31m")
    'News\ufffd[31m'
    """
    return _NOT_XML.sub("\ufffd", text)


def _iso(t: datetime | None) -> str:
    return "" if t is None else t.isoformat()


def network_graph(con: duckdb.DuckDBPyConnection, *, min_forwards: int = 1, **filters: Any) -> nx.DiGraph:
    """The forward network as a ``networkx.DiGraph`` with the attributes described in the module docstring.

    ``min_forwards`` drops lighter edges (and channels left without edges); ``filters`` go to
    :func:`analysis._network.forward_network` (``sources``, ``targets``, ``since``, ``until``).
    """
    edges = forward_network(con, **filters).filter(pl.col("forwards") >= min_forwards)
    ids = sorted(set(edges["source_channel_id"].to_list()) | set(edges["target_channel_id"].to_list()))
    g = nx.DiGraph()
    for row in _nodes(con, ids).iter_rows(named=True):
        count = row["participants_count"]
        g.add_node(
            str(row["channel_id"]),
            label=xml_text(row["title"]) if row["title"] else str(row["channel_id"]),
            username=xml_text(row["username"] or ""),
            archived=bool(row["archived"]),
            participants_count=-1 if count is None else int(count),
        )
    for row in edges.iter_rows(named=True):
        g.add_edge(
            str(row["source_channel_id"]),
            str(row["target_channel_id"]),
            weight=int(row["forwards"]),
            messages=int(row["messages"]),
            first_at=_iso(row["first_at"]),
            last_at=_iso(row["last_at"]),
        )
    return g


def export_gexf(
    con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], *, min_forwards: int = 1, **filters: Any
) -> Path:
    """Write the forward network to a GEXF 1.2 file at ``path`` (Gephi's own format); returns the path."""
    out = Path(path)
    nx.write_gexf(network_graph(con, min_forwards=min_forwards, **filters), out)
    return out


def export_graphml(
    con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], *, min_forwards: int = 1, **filters: Any
) -> Path:
    """Write the forward network to a GraphML file at ``path``; returns the path."""
    out = Path(path)
    nx.write_graphml(network_graph(con, min_forwards=min_forwards, **filters), out)
    return out
