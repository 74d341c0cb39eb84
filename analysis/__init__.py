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
    from .connect import ArchiveBusyError, connect
    from .coordination import CoordinationResult, coordination
    from .copies import copies, copy_clusters
    from .export import export_gexf, export_graphml, network_graph
    from .frames import SCHEMAS
    from .links import domain_spread, url_spread
    from .names import channel_names, with_names
    from .network import forward_network
    from .provenance import provenance
    from .spread import amplifiers, cascades, coverage, sources
    from .timeseries import channel_growth, half_life, posting_frequency, subscriber_growth, view_growth
    from .trees import (
        ASSUMPTIONS,
        cascade_virality,
        compare_assumptions,
        diffusion_trees,
        structural_virality,
        virality_from_parents,
    )
    from .urls import canonical_url
    from .velocity import velocity

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
# collector can import a small pure module (``analysis.urls``) without loading Polars and every query.
_LAZY = {
    "SCHEMAS": "frames", "ArchiveBusyError": "connect", "connect": "connect", "copies": "copies",
    "copy_clusters": "copies", "export_gexf": "export", "export_graphml": "export", "network_graph": "export",
    "canonical_url": "urls", "domain_spread": "links", "url_spread": "links", "forward_network": "network",
    "channel_names": "names", "with_names": "names",
    "amplifiers": "spread", "cascades": "spread", "coverage": "spread", "sources": "spread",
    "channel_growth": "timeseries", "half_life": "timeseries",
    "posting_frequency": "timeseries", "subscriber_growth": "timeseries", "view_growth": "timeseries",
    "cascade_virality": "trees", "diffusion_trees": "trees", "structural_virality": "trees",
    "virality_from_parents": "trees", "ASSUMPTIONS": "trees", "compare_assumptions": "trees",
    "CoordinationResult": "coordination", "coordination": "coordination", "velocity": "velocity",
    "provenance": "provenance",
}


def __getattr__(name: str) -> Any:
    """Load a public name (``analysis.cascades``) or a submodule (``analysis.export``) on first access."""
    module = _LAZY.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)      # a submodule: ``analysis.export``
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
