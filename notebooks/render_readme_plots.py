"""Render the README's figures (docs/img/*.png) from the demo archive, by the same calls the notebooks make.

Usage (``make readme-figures`` builds the demo archive and runs the first)::

    python notebooks/render_readme_plots.py                      # reads demo-data/demo.duckdb
    python notebooks/render_readme_plots.py --check              # exit 1 when a figure is stale
    python notebooks/render_readme_plots.py --archive my.duckdb --out /tmp/img

Writes ``cascade_reach.png`` (notebook 20: how far forwarded posts travel, by reach and by lag) and
``forward_network.png`` (notebook 30: the forward network with its communities), each with a
``<name>.json`` beside it: the SHA-256 of the data the figure plots (every value, rounded to 9 significant
digits, in plotting order) and a short summary of it. ``--check`` recomputes that data from the archive and
compares digests, so a figure is stale when the demo or the analysis changed what it shows; pixels are never
compared (they differ across Matplotlib versions and fonts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import duckdb
import matplotlib.pyplot as plt
import networkx as nx
import polars as pl
from matplotlib.figure import Figure

import analysis
from analysis import network_graph, plots

ROOT = Path(__file__).resolve().parents[1]
#: What the figures are drawn from: the archive `make demo` builds (`tgspread demo`, its defaults).
SOURCE = "make demo (tgspread demo with its defaults)"

Data = dict[str, Any]


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}") if value == value else None   # NaN -> null
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _round(v) for k, v in value.items()}
    return value


def digest(data: Data) -> str:
    """SHA-256 of the plotted data (floats to 9 significant digits, keys sorted)."""
    return hashlib.sha256(json.dumps(_round(data), sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def _summary(values: list[float]) -> dict[str, Any]:
    clean = sorted(v for v in values if v == v)
    if not clean:
        return {"n": 0}
    return {"n": len(clean), "min": clean[0], "median": clean[len(clean) // 2], "max": clean[-1]}


# -- the figures: each returns (what it plots, a function drawing it) -------------------------------------


def cascade_reach(con: duckdb.DuckDBPyConnection) -> tuple[Data, Callable[[], Figure]]:
    """Two panels: reach of forwarded posts (CCDF) and time to the first and median forward (CCDF), log-log."""
    casc = analysis.cascades(con)
    reach = {"origin archived": casc.filter(pl.col("origin_archived"))["reach"].to_list(),
             "origin not archived": casc.filter(~pl.col("origin_archived"))["reach"].to_list()}
    lags = {"first forward": (casc["first_lag_s"] / 3600).to_list(),
            "median forward": (casc["median_lag_s"] / 3600).to_list()}

    def draw() -> Figure:
        fig, axes = plots.subplots(1, 2, title="How far forwarded posts travel (simulated demo archive)",
                                   figsize=(12, 4.6))
        plots.ccdf(reach, title="reach", xlabel="views (original + archived forwards)",
                   ylabel="share of cascades ≥ x", ax=axes[0, 0])
        plots.ccdf(lags, title="speed", xlabel="lag after the original post (hours)",
                   ylabel="share of cascades ≥ x", ax=axes[0, 1])
        return fig

    data = {"reach": {k: sorted(v) for k, v in reach.items()}, "lag_h": {k: sorted(v) for k, v in lags.items()}}
    return data, draw


def forward_network(con: duckdb.DuckDBPyConnection) -> tuple[Data, Callable[[], Figure]]:
    """The forward network, Louvain communities (seed 42), the heaviest quarter of the edges drawn."""
    graph = network_graph(con)
    undirected = nx.Graph()
    undirected.add_nodes_from(graph.nodes)
    for u, v, w in graph.edges(data="weight"):
        undirected.add_edge(u, v, weight=undirected.get_edge_data(u, v, {"weight": 0})["weight"] + w)
    communities = sorted(nx.community.louvain_communities(undirected, weight="weight", seed=42), key=len,
                         reverse=True) if undirected.number_of_edges() else []
    weights = sorted(w for _, _, w in graph.edges(data="weight"))
    min_drawn = max(2, weights[(3 * len(weights)) // 4]) if weights else 1
    names = analysis.channel_names(con)
    labels = {n: names.get(int(n), n) for n in graph.nodes}
    node_size = {n: max(d["participants_count"], 0) for n, d in graph.nodes(data=True)}
    title = f"Who forwards whom: edges with ≥ {min_drawn} forwards, node size = subscribers"

    def draw() -> Figure:
        return plots.network(graph, communities=communities, min_weight=min_drawn, node_size=node_size,
                             labels=labels, title=title)

    data = {
        "title": title,
        "nodes": sorted([labels[n], node_size[n]] for n in graph.nodes),
        "edges_drawn": sorted([labels[u], labels[v], w] for u, v, w in graph.edges(data="weight") if w >= min_drawn),
        "communities": sorted(sorted(labels[n] for n in group) for group in communities),
    }
    return data, draw


FIGURES: dict[str, Callable[[duckdb.DuckDBPyConnection], tuple[Data, Callable[[], Figure]]]] = {
    "cascade_reach": cascade_reach,
    "forward_network": forward_network,
}


def record(name: str, data: Data) -> dict[str, Any]:
    """What ``<name>.json`` holds: the source, the digest of the plotted data and a readable summary."""
    summary: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            summary[key] = {k: _summary(v) for k, v in value.items()}
        elif isinstance(value, list):
            summary[key] = len(value)
        else:
            summary[key] = value
    return {"figure": f"{name}.png", "drawn_from": SOURCE, "by": "notebooks/render_readme_plots.py",
            "data_sha256": digest(data), "summary": _round(summary)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=ROOT / "demo-data" / "demo.duckdb")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--check", action="store_true", help="exit 1 when a figure's data differs from --archive's")
    args = parser.parse_args(argv)
    if not args.archive.exists():
        print(f"no archive at {args.archive}: run `make demo` first", file=sys.stderr)
        return 2
    plots.use_style()
    con = analysis.connect(args.archive, snapshot=True)
    stale = []
    try:
        for name, make in FIGURES.items():
            data, draw = make(con)
            meta = record(name, data)
            meta_path = args.out / f"{name}.json"
            if args.check:
                stored = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
                if stored.get("data_sha256") != meta["data_sha256"] or not (args.out / f"{name}.png").exists():
                    stale.append(name)
                    print(f"stale: {args.out / name}.png; stored summary {stored.get('summary')}, "
                          f"now {meta['summary']}", file=sys.stderr)
                continue
            args.out.mkdir(parents=True, exist_ok=True)
            fig = draw()
            plots.check_figure(fig)
            fig.savefig(args.out / f"{name}.png", dpi=130 if name == "cascade_reach" else 110)
            plt.close(fig)
            meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"wrote {args.out / name}.png and {meta_path.name}")
    finally:
        con.close()
    if stale:
        print("README figures are stale: run `make readme-figures` and commit docs/img/", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
