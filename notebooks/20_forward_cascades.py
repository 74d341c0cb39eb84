# %% [markdown]
# # 20 · Forward cascades
#
# **Question.** When a post is forwarded, how far does it travel among the archived channels: how
# many forwards, how quickly, and how many views do the forwards add?
#
# A *cascade* is an original post together with every archived forward that names it.
#
# **What the archive can show.** Every forward by a collected channel, with the original post its
# header names, the forward's time and its views; the original's own views when its channel is
# collected too.
#
# **What it cannot show.**
# - **The path.** A forward header names only the *first* source, never the channel the forwarder
#   saw it in: a forward of a forward still names the original. Cascades here are flat sets;
#   notebook 70 infers trees, explicitly as a model.
# - **Forwards outside the archive.** Only collected channels' forwards are seen. Shares to private
#   chats, groups and uncollected channels are invisible; Telegram's `forwards` counter includes
#   them (see *coverage* below).
# - **Hidden senders.** Forwards whose original author hides itself name no origin and are left out.
# - **Imported forwards.** Posts from Telegram Desktop exports (`source = 'export'`) name at most the
#   origin *channel*, never its post or date, so they join no cascade until an API (or web) collection
#   of the same channel fills the origin post (docs/sources.md).
# - **Audience.** Reach sums view counters. Audiences overlap, so it is not a count of people;
#   views are Telegram's counters (rounded on web previews, inflatable by bots), as last observed.

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
casc = analysis.cascades(con)
print(f"{casc.height:,} original posts forwarded at least once by an archived channel; "
      f"{casc.select(pl.sum('forwards')).item():,} forwards in all")
print(f"origin archived for {casc.select(pl.mean('origin_archived')).item():.0%} of them "
      "(for the rest, reach counts the forwards' views only: a lower bound)")

# %% [markdown]
# ## Cascade size
#
# Complementary CDF on log-log axes: the share of cascades with at least *x* forwards. Most posts
# are forwarded once or twice; a heavy tail is forwarded widely.

# %%
fig = plots.ccdf(
    {"forwards": casc["forwards"], "distinct forwarding channels": casc["channels"]},
    title="Cascade size", xlabel="forwards of one original post (archived channels)",
    ylabel="share of cascades ≥ x",
)

# %% [markdown]
# ## How fast
#
# Lag from the original post to its first forward and to its median forward, in hours. The header
# carries the original's date, so lags are known even when the origin channel is not archived.

# %%
fig = plots.ccdf(
    {"first forward": casc["first_lag_s"] / 3600, "median forward": casc["median_lag_s"] / 3600},
    title="Forwarding lag", xlabel="lag after the original post (hours)", ylabel="share of cascades ≥ x",
)

# %%
fig = plots.histogram(
    casc["first_lag_s"] / 3600, log_x=True, bins=40,
    title="Time to the first forward", xlabel="lag (hours, log-spaced bins)", ylabel="cascades",
)

# %% [markdown]
# ## Reach
#
# `reach` = the original's views + the forwards' views (last observed). Split by whether the origin
# channel is archived: when it is not, reach is the forwards' views only.

# %%
fig = plots.ccdf(
    {
        "origin archived": casc.filter(pl.col("origin_archived"))["reach"],
        "origin not archived (forwards only)": casc.filter(~pl.col("origin_archived"))["reach"],
    },
    title="Reach of forwarded posts", xlabel="views (original + archived forwards)",
    ylabel="share of cascades ≥ x",
)

# %%
fig = plots.scatter(
    casc["first_lag_s"] / 3600, casc["forward_views"], log_x=True, log_y=True,
    groups=casc["origin_archived"].replace_strict({True: "origin archived", False: "origin not archived"}),
    title="Fast forwards, large audiences?", xlabel="time to the first forward (hours)",
    ylabel="views added by forwards",
)

# %% [markdown]
# ## The largest cascades

# %%
(
    casc.head(15)
    .select(
        named("origin_channel_id").alias("origin"), "origin_message_id", "origin_posted_at",
        "forwards", "channels",
        (pl.col("first_lag_s") / 3600).round(2).alias("first_lag_h"),
        (pl.col("median_lag_s") / 3600).round(2).alias("median_lag_h"),
        "origin_views", "forward_views", "reach", "origin_deleted",
    )
)

# %% [markdown]
# ## Coverage: how much of the spread the archive sees
#
# For each archived original post, Telegram's own `forwards` counter (every share, including private
# chats and uncollected channels) against the archived forwards naming it. Low coverage is normal:
# it measures the archive's view, not the post's spread. Read cascade sizes above as *among the
# archived channels*.

# %%
cov = analysis.coverage(con)
by_channel = (
    cov.group_by("channel_id")
    .agg(pl.col("forwards_counter").sum(), pl.col("archived_forwards").sum(), pl.len().alias("posts"))
    .with_columns(
        (100 * pl.col("archived_forwards") / pl.col("forwards_counter")).alias("coverage_pct"),
        named("channel_id").alias("channel"),
    )
    .sort("coverage_pct", descending=True)
)
seen, counted = by_channel.select(pl.sum("archived_forwards"), pl.sum("forwards_counter")).row(0)
print(f"overall: the archive sees {seen / max(counted, 1):.2%} of the forwards Telegram counts for archived posts")
by_channel

# %%
fig = plots.bars(
    by_channel["channel"], by_channel["coverage_pct"],
    title="Share of Telegram's forward count seen in the archive",
    xlabel="archived forwards / Telegram's forwards counter (%)", ylabel="origin channel",
)

# %% [markdown]
# ## Who is forwarded, who forwards
#
# `sources`: channels ranked by how often archived channels forward them (a forwarded album counts
# once; self-forwards left out). `amplifiers`: archived channels ranked by the views their forwards
# of others' posts collected (`reach_added`).

# %%
src = analysis.sources(con).head(15).pipe(analysis.with_names, con)      # + `channel`, next to channel_id
amp = analysis.amplifiers(con).head(15).pipe(analysis.with_names, con)
fig, axes = plots.subplots(1, 2, title="Sources and amplifiers", figsize=(12, 5.5))
plots.bars(src["channel"], src["forwards"], title="most forwarded sources",
           xlabel="forwards by other archived channels", ylabel="source channel", ax=axes[0, 0],
           colours=[plots.colour(0) if a else plots.colour(10) for a in src["archived"]])
plots.bars(amp["channel"], amp["reach_added"], title="amplifiers", xlabel="views of their forwards",
           ylabel="forwarding channel", ax=axes[0, 1])
plots.check_figure(fig)

# %% [markdown]
# Light bars on the left are sources that are not collected themselves (known only from forward
# headers). Collecting them would show their own posts, views and the rest of their audience.
