# %% [markdown]
# # 80 · Coordination: who pushes the same thing at the same time
#
# **Question.** Which groups of channels act together - forwarding the same origin, posting the same
# link, or copying the same text within minutes of each other, again and again? On what? How tightly
# (seconds or minutes)? And how likely is that by chance, given how busy each channel is?
#
# **What the archive can show.** Exact posting times of every collected channel, the origin each
# forward names, canonical links, near-duplicate texts (`analysis.copies`), and each post's counters
# re-observed at the 1 h and 6 h checkpoints.
#
# **What it cannot show - read this before the numbers.**
# - **Coordination is not common control.** One editor running several channels, a shared bot, a
#   news wire or a cross-posting tool all look like a coordinated group. The output is a lead for
#   qualitative checking, not a finding.
# - Only collected channels are seen: a group whose other members are not collected looks smaller,
#   or invisible.
# - The p-values come from a null model (each channel's own timing, reshuffled; and each pair's own
#   gaps, shifted by up to `null_span`): channels that react to the same breaking news at the same
#   minute beat that null too. Read the evidence (which objects, which gaps) before naming a group.
# - Velocity uses the counters Telegram showed at re-observation times; a post observed late has no
#   early value and is left out.

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
from datetime import timedelta

import networkx as nx
from IPython.display import display

WINDOW = timedelta(minutes=5)       # two actions on one object at most this far apart co-act
MIN_REPEATS = 3                     # a pair needs at least this many objects co-acted on
result = analysis.coordination(con, window=WINDOW, min_repeats=MIN_REPEATS)
pairs, groups, evidence = result.pairs, result.groups, result.evidence
flagged = pairs.filter(pl.col("flagged"))
print(f"{pairs.height:,} channel pairs co-acted on >= {MIN_REPEATS} objects within {WINDOW}; "
      f"{flagged.height:,} flagged at FDR 5%, in {groups.height:,} groups")

# %% [markdown]
# ## Which groups act together, on what
#
# One row per group (connected flagged pairs): members, how many objects they co-acted on, of which
# kinds (`forward`: the same origin; `url`: the same canonical link; `text`: the same near-duplicate
# text), the median gap between members' actions and `max_q`, the largest false-discovery q-value
# among the group's pairs.

# %%
member_names = (
    groups.select("group_id", pl.col("members").alias("channel_id")).explode("channel_id")
    .pipe(analysis.with_names, con)   # + `channel`: @username, else the title
    .group_by("group_id", maintain_order=True).agg(pl.col("channel").str.join(", ").alias("member_names"))
)
(
    groups.join(member_names, on="group_id", how="left")
    .with_columns(pl.col("kinds").list.join(", "))
    .select("group_id", "member_names", "objects", "kinds", "weight", pl.col("expected").round(2),
            "median_gap_s", "max_q", "first_at", "last_at")
)

# %%
graph = nx.Graph()
for a, b, w in pairs.select("channel_a", "channel_b", "weight").iter_rows():
    graph.add_edge(a, b, weight=w)
communities = [set(m) for m in groups["members"].to_list()]
fig = plots.network(
    graph, communities=communities or None, labels={c: name(c) for c in graph.nodes},
    title=f"Channel pairs with >= {MIN_REPEATS} co-actions within {WINDOW} (width: co-actions; colour: flagged group)",
    legend_title="group",
)

# %% [markdown]
# ## How tightly
#
# The gap between two members' actions on the same object, for flagged pairs and for the other pairs
# that co-acted as often. Coordinated pushes sit at seconds; coincidences spread over the window.

# %%
gaps = evidence.join(pairs.select("channel_a", "channel_b", "flagged"), on=["channel_a", "channel_b"])
fig, axes = plots.subplots(1, 2, title="Gap between the two channels' actions on one object", figsize=(11, 4))
plots.histogram(gaps.filter(pl.col("flagged"))["gap_s"], bins=20, ax=axes[0, 0],
                title="flagged pairs", xlabel="gap (seconds)", ylabel="co-actions")
plots.histogram(gaps.filter(~pl.col("flagged"))["gap_s"], bins=20, ax=axes[0, 1],
                title="pairs not flagged", xlabel="gap (seconds)", ylabel="co-actions")
plots.check_figure(fig)

# %% [markdown]
# ## How likely by chance
#
# Each pair's observed co-actions against what the null model expects from the two channels' own
# timing. Busy channels share many objects and so expect many co-actions: they sit near the diagonal.
# Flagged pairs sit far above it.

# %%
fig = plots.scatter(
    pairs["expected"] + 0.01, pairs["weight"],
    groups=["flagged" if f else "not flagged" for f in pairs["flagged"].to_list()],
    log_x=True, log_y=True,
    title="Observed against expected co-actions per channel pair",
    xlabel="co-actions expected under the null model (+0.01, log)", ylabel="co-actions observed (log)",
)

# %%
top = groups.row(0, named=True) if groups.height else None
if top is not None:
    members = top["members"]
    show = evidence.filter(pl.col("channel_a").is_in(members) & pl.col("channel_b").is_in(members))
    print(f"Evidence of group {top['group_id']}: {', '.join(name(c) for c in members)}")
    display(show.pipe(analysis.with_names, con, "a_channel_id", "b_channel_id")   # + a_channel, b_channel
            .select("kind", "object", pl.col("a_channel").alias("first"), "a_posted_at",
                    pl.col("b_channel").alias("then"), "gap_s").head(15))

# %% [markdown]
# ## How the answer depends on the window
#
# The same test with narrower and wider windows. CooRTweet's default is 10 seconds (made for retweets);
# on Telegram, admins post by hand or by schedule, so tgspread's default is 5 minutes. A window much
# wider than the real gaps costs power, not false positives (the null model widens with it).

# %%
windows = [timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30)]
counts = []
for w in windows:
    r = analysis.coordination(con, window=w, min_repeats=MIN_REPEATS, null_span=max(timedelta(hours=6), 12 * w))
    counts.append(int(r.pairs["flagged"].sum()) if r.pairs.height else 0)
fig = plots.bars([str(w) for w in windows], counts, horizontal=False,
                 title="Flagged channel pairs by coordination window", xlabel="window (h:mm:ss)",
                 ylabel="flagged pairs")

# %% [markdown]
# ## Early velocity: which posts started far above their channel's usual
#
# Views at the 1 h and 6 h checkpoints against the channel's own posts at the same age, as a robust
# z-score on the log scale (median and MAD; 3.5 flags an outlier). Coordinated pushes often show up
# here too: a post forwarded by a group starts fast.

# %%
fast = analysis.velocity(con, min_posts=5, outliers_only=False)
print(f"{fast.height:,} post-checkpoints observed; {int(fast['outlier'].sum()):,} outliers")
(
    fast.filter(pl.col("outlier")).head(10)
    .pipe(analysis.with_names, con)   # + `channel`
    .select("channel", "message_id", "checkpoint_s", "value", pl.col("channel_median").round(0),
            pl.col("robust_z").round(1))
)

# %%
fig = plots.histogram(fast["robust_z"].drop_nulls(), bins=40,
                      title="Views at a checkpoint against the channel's own posts",
                      xlabel="robust z-score (MAD units above the channel's median, log views)",
                      ylabel="posts at a checkpoint")
