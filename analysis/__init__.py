"""tgspread analysis: read-only questions about an archive, answered as Polars frames.

Every function takes a connection from :func:`connect` first and returns a ``polars.DataFrame``
with a fixed schema (``analysis.frames.SCHEMAS``), also when empty. DuckDB does the work; results
reach Polars through Arrow without copies, and only the columns a function needs are read.

Example::

    import analysis

    with analysis.connect("archive.duckdb") as con:      # read-only; close it soon after use
        top = analysis.cascades(con).head(20)
        daily = analysis.posting_frequency(con, every="1d")
        edges = analysis.forward_network(con)
        named = analysis.with_names(edges, con)          # + source_channel, target_channel: @username or title
"""

from __future__ import annotations

from .connect import ArchiveBusyError, connect
from .copies import copies, copy_clusters
from .export import export_gexf, export_graphml, network_graph
from .frames import SCHEMAS
from .links import canonical_url, domain_spread, url_spread
from .names import channel_names, with_names
from .network import forward_network
from .spread import amplifiers, cascades, coverage, sources
from .summaries import summary_status
from .timeseries import channel_growth, half_life, posting_frequency, subscriber_growth, view_growth
from .trees import cascade_virality, diffusion_trees, structural_virality, virality_from_parents

__all__ = [
    "SCHEMAS",
    "ArchiveBusyError",
    "amplifiers",
    "canonical_url",
    "cascade_virality",
    "cascades",
    "channel_growth",
    "channel_names",
    "connect",
    "copies",
    "copy_clusters",
    "coverage",
    "diffusion_trees",
    "domain_spread",
    "export_gexf",
    "export_graphml",
    "forward_network",
    "half_life",
    "network_graph",
    "posting_frequency",
    "sources",
    "structural_virality",
    "subscriber_growth",
    "summary_status",
    "url_spread",
    "view_growth",
    "virality_from_parents",
    "with_names",
]
