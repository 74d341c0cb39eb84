# %% [markdown]
# # 70 · Diffusion trees and structural virality
#
# **Question.** Do posts spread as a broadcast (many channels forwarding the original directly) or
# through chains of channels forwarding each other? Structural virality (Goel, Anderson, Hofman and
# Watts, *Management Science* 2016) puts a number on it: the mean distance between two posts of
# the cascade tree, about 2 for a broadcast (a star), growing with chains.
#
# **What the archive can show.** Each cascade's forwards by collected channels, their times, and
# which channels each forwarder had forwarded before.
#
# **What it cannot show - read this before the numbers.**
# - **No hop is ever observed.** Telegram's forward header names only the original source. The
#   parent of each forward is *inferred* by `analysis.diffusion_trees` with one explicit rule: the
#   latest earlier holder of the post among the channels the forwarder had forwarded before,
#   otherwise the original. The trees are a model; structural virality is a property of the model
#   (another rule gives other numbers). Report it as such.
# - Hops through uncollected channels or private chats are invisible; their descendants attach
#   elsewhere, which flattens trees.
# - Small cascades have little room for structure: compare structural virality at equal size.

# %% tags=["parameters"]
import os

# What to analyse: a lake directory (docs/lake.md) or an archive file. None: $TGSPREAD_ARCHIVE, else the lake
# of tgspread.toml ([lake] path), else the demo's lake, else the demo archive. Or edit this line; a relative
# path is taken from the repository root (then the working directory).
ARCHIVE = os.environ.get("TGSPREAD_ARCHIVE")

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
from analysis import cascade_virality

trees = analysis.diffusion_trees(con)
sv = cascade_virality(con, min_size=3)
forwards = trees.filter(pl.col("inferred"))
print(f"{trees['origin_message_id'].len() - forwards.height:,} cascades, {forwards.height:,} forwards; "
      f"{sv.height:,} trees with at least 3 nodes")

# %% [markdown]
# ## How parents were chosen
#
# `prior_source`: the forwarder had forwarded the chosen parent's channel before (a proxy for
# following it). `origin`: no earlier holder qualified, so the forward attaches to the original.
# A high `origin` share means the trees are mostly stars by default, not by evidence. The opposite
# holds in a dense network: when every channel has forwarded almost every other before, the rule
# picks the *latest* earlier holder nearly always and trees come out as chains - a property of the
# rule, not evidence of multi-hop spread. Compare with the network density in notebook 30.

# %%
rules = forwards.group_by("rule").len().sort("len", descending=True)
fig = plots.bars(rules["rule"], rules["len"], title="Which rule chose each inferred parent",
                 xlabel="forwards", ylabel="rule")

# %%
depths = forwards.group_by("depth").len().sort("depth")
fig = plots.bars(depths["depth"], depths["len"], horizontal=False,
                 title="Depth of forwards in the inferred trees",
                 xlabel="inferred depth (hops from the original)", ylabel="forwards")

# %% [markdown]
# ## Structural virality against size
#
# Dashed: a star of *n* nodes, 2(n − 1)/n, the least viral shape; dotted: a chain, (n + 1)/3, the most.

# %%
import numpy as np

fig = plots.scatter(sv["nodes"], sv["structural_virality"], log_x=True,
                    title="Structural virality of inferred cascade trees",
                    xlabel="tree size (posts: original + archived forwards)", ylabel="structural virality (hops)")
ax = fig.axes[0]
largest_size, highest_sv = sv.select(pl.col("nodes").max(), pl.col("structural_virality").max()).row(0)
n = np.arange(3, max(int(largest_size or 3), 4) + 1)
ax.plot(n, 2 * (n - 1) / n, "k--", linewidth=1, label="star (broadcast)")
ax.plot(n, (n + 1) / 3, "k:", linewidth=1, label="chain")
ax.set_ylim(1, max(2.5, float(highest_sv or 2) * 1.15))
ax.legend()

# %%
(
    sv.head(10)
    .with_columns(named("origin_channel_id").alias("origin"))
    .select("origin", "origin_message_id", "origin_posted_at", "nodes", "depth_max",
            pl.col("structural_virality").round(2))
)


# %% [markdown]
# ## Two trees drawn
#
# Each post at its time after the original (x) and inferred depth (y); dashed lines are inferred
# parent links, colours are channels. First the largest cascade, then the most structurally viral one.

# %%
def one_tree(row):
    return trees.filter((pl.col("origin_channel_id") == row["origin_channel_id"])
                        & (pl.col("origin_message_id") == row["origin_message_id"]))

largest = sv.sort("nodes", descending=True).row(0, named=True) if sv.height else None
if largest is not None:
    fig = plots.tree(one_tree(largest), names=NAMES, log_x=True,
                     title=f"Largest cascade: {name(largest['origin_channel_id'])} "
                           f"#{largest['origin_message_id']} ({largest['nodes']} posts)",
                     xlabel="time after the original post (hours, log scale)")

# %%
viral = sv.row(0, named=True) if sv.height else None
if viral is not None:
    fig = plots.tree(one_tree(viral), names=NAMES, log_x=True,
                     title=f"Most viral tree: {name(viral['origin_channel_id'])} #{viral['origin_message_id']} "
                           f"(structural virality {viral['structural_virality']:.2f})",
                     xlabel="time after the original post (hours, log scale)")

# %% [markdown]
# ## Checking the measure
#
# `analysis.structural_virality` takes any tree as (parent, child) edges: a star of 5 nodes
# scores 2·4/5 = 1.6, a chain of 5 nodes (5 + 1)/3 = 2.

# %%
star = [(0, k) for k in range(1, 5)]
chain = [(k, k + 1) for k in range(4)]
print(f"star of 5: {analysis.structural_virality(star):.2f}; chain of 5: {analysis.structural_virality(chain):.2f}")

# %% [markdown]
# ## How the influencer ranking changes with the assumption
#
# Every tree above is an inference. DeVerna et al. (2024, arXiv 2410.21554) show that different
# reconstructions of the same cascades crown different "influencers". Here the same cascades are
# rebuilt under three stated assumptions (`analysis.diffusion_trees(con, assumption=...)`):
#
# - `first_source`: every forward hangs on the original, as the forward header says (a star);
# - `latest_exposure`: the rule used above (latest earlier holder among the channels the forwarder
#   had forwarded from);
# - `with_copies`: `latest_exposure`, plus unattributed near-copies (`analysis.copies`) joined as
#   inferred nodes.
#
# A channel's **credit** is the number of nodes whose inferred parent is one of its posts. Under
# `first_source` only originals earn credit; intermediaries earn it under the other two.

# %%
from analysis import compare_assumptions

credit = compare_assumptions(con, by="channel")
by_cascade = compare_assumptions(con, by="cascade", min_size=3)
moved = credit.filter(pl.col("rank_first_source") != pl.col("rank_latest_exposure"))
print(f"{credit.height:,} channels credited under some assumption; {moved.height:,} change rank between "
      "first_source and latest_exposure")
(
    credit.head(15).with_columns(named("channel_id").alias("channel"))
    .select("channel", "credited_first_source", "rank_first_source", "credited_latest_exposure",
            "rank_latest_exposure", "credited_with_copies", "rank_with_copies")
)

# %%
fig = plots.scatter(
    credit["rank_first_source"], credit["rank_latest_exposure"], log_x=True, log_y=True,
    title="Influencer rank under two assumptions (1 = most credited)",
    xlabel="rank, every forward credited to the original (first_source)",
    ylabel="rank, latest exposure",
)
ax = fig.axes[0]
highest_rank = max(2, *(int(r or 1) for r in credit.select(
    pl.col("rank_first_source", "rank_latest_exposure").max()).row(0)))
ax.plot([1, highest_rank], [1, highest_rank], "k--", linewidth=1, label="same rank")
ax.legend()

# %%
fig = plots.scatter(
    by_cascade["sv_first_source"].fill_null(float("nan")), by_cascade["sv_latest_exposure"].fill_null(float("nan")),
    title="Structural virality of each cascade under two assumptions",
    xlabel="structural virality, first_source (hops; a star: < 2)",
    ylabel="structural virality, latest_exposure (hops)",
)
