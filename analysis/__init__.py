"""tgspread analysis: read-only questions about an archive, answered as Polars frames.

Every function takes a connection from :func:`connect` first and returns a ``polars.DataFrame``
with a fixed schema (``analysis.SCHEMAS``), also when empty. DuckDB does the work; results
reach Polars through Arrow without copies, and only the columns a function needs are read.

Example::

    import analysis

    with analysis.connect("archive.duckdb") as con:      # read-only; close it soon after use
        top = analysis.cascades(con).head(20)
        daily = analysis.posting_frequency(con, every="1d")
        edges = analysis.forward_network(con)
        groups = analysis.coordination(con).groups      # channels acting together (a null model tests them)
        named = analysis.with_names(edges, con)          # + source_channel, target_channel: @username or title
        routes = analysis.provenance(con)                # which route (API, web, export) gave which fields
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from ._connect import ArchiveBusyError, connect
    from ._coordination import CoordinationResult, coordination
    from ._copies import copies, copy_clusters
    from ._export import export_gexf, export_graphml, network_graph
    from ._frames import SCHEMAS
    from ._links import domain_spread, url_spread
    from ._names import channel_names, with_names
    from ._network import forward_network
    from ._provenance import provenance
    from ._spread import amplifiers, cascades, coverage, sources
    from ._timeseries import channel_growth, half_life, posting_frequency, subscriber_growth, view_growth
    from ._trees import (
        ASSUMPTIONS,
        cascade_virality,
        compare_assumptions,
        diffusion_trees,
        structural_virality,
        virality_from_parents,
    )
    from ._urls import canonical_url
    from ._velocity import velocity

__all__ = [
    "ASSUMPTIONS",
    "SCHEMAS",
    "ArchiveBusyError",
    "CoordinationResult",
    "amplifiers",
    "canonical_url",
    "cascade_virality",
    "cascades",
    "channel_growth",
    "channel_names",
    "compare_assumptions",
    "connect",
    "coordination",
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
    "provenance",
    "sources",
    "structural_virality",
    "subscriber_growth",
    "url_spread",
    "velocity",
    "view_growth",
    "virality_from_parents",
    "with_names",
]

# Loaded on first use (lazy_loader, PEP 562), so ``import analysis`` is cheap and the collector can import a small
# pure module (``analysis._urls``) without loading Polars and every query. The public modules users import by name
# (``from analysis import plots``) load the same way.
__getattr__, __dir__, _LAZY_NAMES = lazy_loader.attach(
    __name__,
    submodules=["lake", "notebook", "plots", "portable", "spark"],
    submod_attrs={
        "_connect": ["ArchiveBusyError", "connect"],
        "_coordination": ["CoordinationResult", "coordination"],
        "_copies": ["copies", "copy_clusters"],
        "_export": ["export_gexf", "export_graphml", "network_graph"],
        "_frames": ["SCHEMAS"],
        "_links": ["domain_spread", "url_spread"],
        "_names": ["channel_names", "with_names"],
        "_network": ["forward_network"],
        "_provenance": ["provenance"],
        "_spread": ["amplifiers", "cascades", "coverage", "sources"],
        "_timeseries": ["channel_growth", "half_life", "posting_frequency", "subscriber_growth", "view_growth"],
        "_trees": ["ASSUMPTIONS", "cascade_virality", "compare_assumptions", "diffusion_trees", "structural_virality",
                   "virality_from_parents"],
        "_urls": ["canonical_url"],
        "_velocity": ["velocity"],
    },
)
