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

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

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

# Public name -> the module defining it. Loaded on first use (PEP 562), so ``import analysis`` is cheap and the
# collector can import a small pure module (``analysis._urls``) without loading Polars and every query.
_LAZY = {
    "SCHEMAS": "_frames", "ArchiveBusyError": "_connect", "connect": "_connect", "copies": "_copies",
    "copy_clusters": "_copies", "export_gexf": "_export", "export_graphml": "_export", "network_graph": "_export",
    "canonical_url": "_urls", "domain_spread": "_links", "url_spread": "_links", "forward_network": "_network",
    "channel_names": "_names", "with_names": "_names",
    "amplifiers": "_spread", "cascades": "_spread", "coverage": "_spread", "sources": "_spread",
    "channel_growth": "_timeseries", "half_life": "_timeseries",
    "posting_frequency": "_timeseries", "subscriber_growth": "_timeseries", "view_growth": "_timeseries",
    "cascade_virality": "_trees", "diffusion_trees": "_trees", "structural_virality": "_trees",
    "virality_from_parents": "_trees", "ASSUMPTIONS": "_trees", "compare_assumptions": "_trees",
    "CoordinationResult": "_coordination", "coordination": "_coordination", "velocity": "_velocity",
    "provenance": "_provenance",
}


def __getattr__(name: str) -> Any:
    """Load a public name (``analysis.cascades``) or a submodule (``analysis._export``) on first access."""
    module = _LAZY.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)      # a submodule: ``analysis._export``
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Keeps ``analysis.connect`` and ``analysis.copies`` the functions, not their modules of the same name.

    Importing a submodule makes the import system set the package attribute of that name to the module;
    for a public name, that assignment stores the module's function instead (what the eager imports did).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
