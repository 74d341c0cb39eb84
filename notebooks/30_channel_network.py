# %% [markdown]
# # 30 · The channel network
#
# **Question.** Who forwards whom? Which channels form groups that amplify each other?
#
# The forward network has one edge per (origin channel → forwarding channel) pair, weighted by the
# number of forwards (a forwarded album counts once). Edges point the way content travels.
#
# **What the archive can show.** Every forward made by a collected channel and the origin channel
# its header names.
#
# **What it cannot show.**
# - An edge A → B means "B re-posted content first posted by A", **not** "B saw it in A": headers
#   name the original source, never the hop.
# - Only collected channels' forwards are seen. Uncollected channels appear only as sources: the
#   forwards they make are not archived, so they have no incoming edges.
# - Forwards from hidden senders name no channel; self-forwards are left out.
# - Forwards imported from Telegram Desktop exports name the origin channel but not its post, and
#   are not edges here until an API collection fills the origin post (docs/sources.md).
# - Copy-pasted content without a forward header is not an edge (see notebook 40).

# %% tags=["parameters"]
import os
from pathlib import Path

# What to analyse: a lake directory (docs/lake.md) or an archive file. None: $TGSPREAD_ARCHIVE, else the lake
# of tgspread.toml ([lake] path), else the demo's lake, else the demo archive. Or edit this line; a relative
# path is taken from the repository root (then the working directory).
ARCHIVE = os.environ.get("TGSPREAD_ARCHIVE")
# Where exported files go (created if missing; notebooks/output/ is ignored by git).
OUTPUT = Path(os.environ.get("TGSPREAD_OUTPUT", "output"))

# %%
import polars as pl

import analysis
from analysis import plots
from analysis.notebook import open_notebook

# A lake is read in place (no copy, no lock: collectors keep publishing); an archive file without a lake is
# copied into memory so that a scheduled collector is never locked out. NAMES: {channel_id: "@username" or
# title}; name(id) and named(column) give the readable name of one id and of an id column (analysis/notebook.py).
nb = open_notebook(ARCHIVE)
con, NAMES, name, named = nb.con, nb.names, nb.name, nb.named

# %%
edges = analysis.forward_network(con)
print(f"{edges.height:,} edges, {edges['forwards'].sum():,} forwards between "
      f"{len(set(edges['source_channel_id']) | set(edges['target_channel_id'])):,} channels")
edges.head(15).select(
    named("source_channel_id").alias("source"), named("target_channel_id").alias("forwarded by"),
    "forwards", "messages", "first_at", "last_at", "views",
)

# %% [markdown]
# ## Communities
#
# Louvain communities (seeded, so the result is reproducible) on the undirected network, where the
# weight between two channels is the sum of their forwards in both directions. Modularity near 0
# means no community structure beyond chance; above about 0.3 is usually read as clear structure.
# Louvain results depend on the seed and the resolution: treat small communities with care.

# %%
import networkx as nx

graph = analysis.network_graph(con)       # the DiGraph that export_gexf writes
undirected = nx.Graph()
undirected.add_nodes_from(graph.nodes)
for u, v, w in graph.edges(data="weight"):
    previous = undirected.get_edge_data(u, v, {"weight": 0})["weight"]
    undirected.add_edge(u, v, weight=previous + w)
communities = sorted(
    nx.community.louvain_communities(undirected, weight="weight", seed=42), key=len, reverse=True
) if undirected.number_of_edges() else []
modularity = nx.community.modularity(undirected, communities, weight="weight") if communities else float("nan")
print(f"{len(communities)} communities, modularity {modularity:.2f}; reciprocity {nx.reciprocity(graph):.2f} "
      "(share of edges whose reverse edge exists)")
membership = pl.DataFrame(
    [{"community": i + 1, "channel": graph.nodes[n]["label"], "channel_id": int(n),
      "archived": graph.nodes[n]["archived"]}
     for i, group in enumerate(communities) for n in sorted(group)]
)
membership

# %%
# Dense networks are unreadable with every edge: draw the heaviest quarter (the layout uses all edges).
weights = sorted(w for _, _, w in graph.edges(data="weight"))
MIN_DRAWN = max(2, weights[(3 * len(weights)) // 4]) if weights else 1
node_size = {n: max(d["participants_count"], 0) for n, d in graph.nodes(data=True)}
labels = {n: name(int(n)) for n in graph.nodes}
fig = plots.network(
    graph, communities=communities, node_size=node_size, labels=labels, min_weight=MIN_DRAWN,
    title=f"Forward network: edges with ≥ {MIN_DRAWN} forwards (width: forwards, log), "
          "node size: subscribers",
)

# %% [markdown]
# The smallest nodes are channels known only as forward origins (not collected, so no subscriber
# count).
#
# ## Who exports and who imports content
#
# Weighted out-degree: forwards *of* a channel's posts by others (its content travels); weighted
# in-degree: forwards a channel *makes* of others' posts (it relays).

# %%
strength = pl.DataFrame({
    "channel_id": [int(n) for n in graph.nodes],
    "forwarded_by_others": [graph.out_degree(n, weight="weight") for n in graph.nodes],
    "forwards_of_others": [graph.in_degree(n, weight="weight") for n in graph.nodes],
}).pipe(analysis.with_names, con)
out_top = strength.sort("forwarded_by_others", descending=True).head(12)
in_top = strength.filter(pl.col("forwards_of_others") > 0).sort("forwards_of_others", descending=True).head(12)
fig, axes = plots.subplots(1, 2, title="Weighted degree in the forward network", figsize=(12, 5))
plots.bars(out_top["channel"], out_top["forwarded_by_others"], title="content forwarded by others",
           xlabel="forwards (out-strength)", ylabel="channel", ax=axes[0, 0])
plots.bars(in_top["channel"], in_top["forwards_of_others"], title="forwarding others' content",
           xlabel="forwards (in-strength)", ylabel="channel", ax=axes[0, 1])
plots.check_figure(fig)

# %% [markdown]
# ## Export for Gephi
#
# `export_gexf` writes the same graph (node attributes: label, username, archived, subscribers;
# edge attributes: weight = forwards, messages, first and last forward time) to GEXF;
# `export_graphml` to GraphML. `min_forwards` drops light edges.

# %%
OUTPUT.mkdir(parents=True, exist_ok=True)   # relative: under the working directory (notebooks/output)
gexf = analysis.export_gexf(con, OUTPUT / "forward_network.gexf")
graphml = analysis.export_graphml(con, OUTPUT / "forward_network.graphml")
check = nx.read_gexf(gexf)
print(f"wrote {gexf} ({check.number_of_nodes()} nodes, {check.number_of_edges()} edges) and {graphml}")
