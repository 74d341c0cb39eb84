# %% [markdown]
# # 40 · Unattributed copies
#
# **Question.** Which texts appear in several channels *without* a forward header (copied and
# pasted rather than forwarded), which channel had them first, and how quickly do copies follow?
#
# `analysis.copies` compares the normalised text of every post that carries no forward header
# (MinHash + LSH over word 3-grams, every candidate pair verified with the exact Jaccard similarity)
# and clusters near-duplicates across channels.
#
# **What the archive can show.** Texts and posting times of the collected channels.
#
# **What it cannot show.**
# - **That anyone copied anyone.** Similar text can come from a shared wire source, an official
#   statement or a template (automated alerts). Read a cluster as "the same text appeared here",
#   and check samples before calling it coordination.
# - **The true first poster.** "First" is first *among archived channels*: the source may be an
#   uncollected channel, a website or another platform.
# - Media-only posts (no text), texts shorter than `min_chars`, and earlier versions of edited
#   posts (the current text is compared) are not part of it. Translations and paraphrases are not found.

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
from analysis import copy_clusters

THRESHOLD = 0.8   # Jaccard similarity of word 3-gram sets; 1.0 = same normalised text
members = analysis.copies(con, threshold=THRESHOLD)
clusters = copy_clusters(con, threshold=THRESHOLD)
print(f"{clusters.height:,} clusters of copies across channels, {members.height:,} posts in them")

# %% [markdown]
# ## The most widespread texts

# %%
(
    clusters.sort(["channels", "posts"], descending=True).head(15)
    .select(
        "cluster_id", named("first_channel_id").alias("first_channel"), "first_posted_at", "posts", "channels",
        (pl.col("max_lag_s") / 3600).round(1).alias("max_lag_h"),
        pl.col("min_similarity").round(2), pl.col("sample_text").str.slice(0, 90),
    )
)

# %%
sizes = clusters.group_by("channels").len().sort("channels")
fig = plots.bars(
    sizes["channels"], sizes["len"], horizontal=False,
    title="How many channels carry the same text", xlabel="channels in the cluster",
    ylabel="clusters",
)

# %% [markdown]
# ## How quickly copies follow
#
# Lag of every copy after the cluster's first archived post, in hours (log-spaced bins).

# %%
later = members.filter(~pl.col("is_first"))
fig = plots.histogram(
    later["lag_s"] / 3600, log_x=True, bins=30,
    title="Delay of copies after the first archived post", xlabel="lag (hours, log-spaced bins)",
    ylabel="copies",
)

# %%
fig = plots.histogram(
    later["similarity"], bins=20, title="Similarity of copies to the first post",
    xlabel="Jaccard similarity of word 3-grams (1 = same normalised text)", ylabel="copies",
)

# %% [markdown]
# ## Who has it first, who follows
#
# Rows: the channel with the cluster's first archived post; columns: channels whose posts follow
# it. Cells count copies. A bright row is a channel whose texts reappear elsewhere; a bright
# column a channel that (re)posts texts first seen elsewhere.

# %%
firsts = members.filter(pl.col("is_first")).select("cluster_id", pl.col("channel_id").alias("first_channel_id"))
pairs = later.join(firsts, on="cluster_id").group_by("first_channel_id", "channel_id").len()
channels = sorted(set(pairs["first_channel_id"]) | set(pairs["channel_id"]), key=name)
index = {c: i for i, c in enumerate(channels)}
matrix = [[0] * len(channels) for _ in channels]
for first, follower, n in pairs.iter_rows():
    matrix[index[first]][index[follower]] = n
fig = plots.heatmap(
    matrix, row_labels=[name(c) for c in channels], col_labels=[name(c) for c in channels],
    annotate=len(channels) <= 15, rotate_x=True, title="Copies: first poster → later poster",
    xlabel="channel posting the copy", ylabel="channel posting first", colorbar_label="copies",
)
