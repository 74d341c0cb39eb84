"""Render the README's plots (docs/img/*.png) from an archive, by the same calls the notebooks make.

Usage (after ``make demo``)::

    python notebooks/render_readme_plots.py                      # reads demo-data/demo.duckdb
    python notebooks/render_readme_plots.py --archive my.duckdb --out /tmp/img

Writes ``cascade_reach.png`` (notebook 20: how far forwarded posts travel, by reach and by lag) and
``forward_network.png`` (notebook 30: the forward network with its communities).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")

import duckdb  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import polars as pl  # noqa: E402

import analysis  # noqa: E402
from analysis import plots  # noqa: E402
from analysis.export import network_graph  # noqa: E402


def _names(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    out: dict[int, str] = {}
    for table in ("peers", "channels"):
        for cid, username, title in con.sql(f"SELECT channel_id, username, title FROM {table}").fetchall():
            out[cid] = f"@{username}" if username else (title or str(cid))
    return out


def render_cascades(con: duckdb.DuckDBPyConnection, path: Path) -> Path:
    """Two panels: reach of forwarded posts (CCDF) and time to the first forward (CCDF), log-log."""
    casc = analysis.cascades(con)
    fig, axes = plots.subplots(1, 2, title="How far forwarded posts travel (simulated demo archive)",
                               figsize=(12, 4.6))
    plots.ccdf({"origin archived": casc.filter(pl.col("origin_archived"))["reach"],
                "origin not archived": casc.filter(~pl.col("origin_archived"))["reach"]},
               title="reach", xlabel="views (original + archived forwards)", ylabel="share of cascades ≥ x",
               ax=axes[0, 0])
    plots.ccdf({"first forward": casc["first_lag_s"] / 3600, "median forward": casc["median_lag_s"] / 3600},
               title="speed", xlabel="lag after the original post (hours)", ylabel="share of cascades ≥ x",
               ax=axes[0, 1])
    plots.check_figure(fig)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def render_network(con: duckdb.DuckDBPyConnection, path: Path) -> Path:
    """The forward network, Louvain communities (seed 42), heaviest quarter of the edges drawn."""
    graph = network_graph(con)
    undirected = nx.Graph()
    undirected.add_nodes_from(graph.nodes)
    for u, v, w in graph.edges(data="weight"):
        undirected.add_edge(u, v, weight=undirected.get_edge_data(u, v, {"weight": 0})["weight"] + w)
    communities = sorted(nx.community.louvain_communities(undirected, weight="weight", seed=42), key=len,
                         reverse=True)
    weights = sorted(w for _, _, w in graph.edges(data="weight"))
    min_drawn = max(2, weights[(3 * len(weights)) // 4]) if weights else 1
    names = _names(con)
    fig = plots.network(
        graph, communities=communities, min_weight=min_drawn,
        node_size={n: max(d["participants_count"], 0) for n, d in graph.nodes(data=True)},
        labels={n: names.get(int(n), n) for n in graph.nodes},
        title=f"Who forwards whom: edges with ≥ {min_drawn} forwards, node size = subscribers",
    )
    plots.check_figure(fig)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=ROOT / "demo-data" / "demo.duckdb")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plots.use_style()
    con = analysis.connect(args.archive, snapshot=True)
    try:
        for path in (render_cascades(con, args.out / "cascade_reach.png"),
                     render_network(con, args.out / "forward_network.png")):
            print(f"wrote {path}")
    finally:
        con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
