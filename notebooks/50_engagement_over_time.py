# %% [markdown]
# # 50 · Engagement over time
#
# **Question.** How do views accumulate after a post is published, how quickly does attention
# fade (half-life), and how do channels' audiences grow?
#
# **What the archive can show.** Each post's counters (views, forwards, replies, reactions) every
# time the collector refreshed it, at ages near the checkpoints 1 h, 6 h, 1 d, 3 d, 7 d and 30 d
# after posting; subscriber counts from the channel snapshots (about daily).
#
# **What it cannot show.**
# - **Continuous curves.** Counters are sampled at the refresh times only; between them the curve is
#   interpolated, so half-lives have the resolution of the checkpoint spacing. The latest count of
#   a young post is not its final count.
# - **People.** Views are Telegram's counters: not unique readers, rounded on web previews, and
#   inflatable by bots and view-buying services. Compare channels with that in mind.
# - Posts first seen old (archived history) start their curve at their age when first collected.
# - Who the subscribers are, or where they came from.

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

# %% [markdown]
# ## View growth curves
#
# `channel_growth` gives, per channel and age bucket (between the refresh checkpoints), the median
# views of the posts observed at that age. Each bucket holds the posts *observed* at that age:
# posts first collected old (archived history) appear only in the late buckets, so compare the
# shape of the curves across channels, and read a dip as a change in which posts are observed.

# %%
from itertools import pairwise

# The age buckets' lower edges in seconds: channel_growth's default, the collector's refresh checkpoints.
AGE_EDGES_S = (0.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 30 * 86400.0)


def age_label(seconds):
    return f"{seconds / 86400:g} d" if seconds >= 86400 else f"{seconds / 3600:g} h"


BUCKETS = [f"{age_label(lo)}–{age_label(hi)}" for lo, hi in pairwise(AGE_EDGES_S)]
BUCKETS.append(f"≥ {age_label(AGE_EDGES_S[-1])}")
position = {edge: i for i, edge in enumerate(AGE_EDGES_S)}

growth = analysis.channel_growth(con, age_edges_s=AGE_EDGES_S)
top = (
    growth.group_by("channel_id").agg(pl.col("posts").sum()).sort("posts", descending=True)["channel_id"].head(8)
)
series = {
    name(c): ([position[a] for a in g["age_s"]], g["median_views"])
    for c in top
    for g in [growth.filter((pl.col("channel_id") == c) & (pl.col("posts") >= 5)).sort("age_s")]
    if g.height
}
fig = plots.lines(series, marker="o", log_y=True,
                  title="Median views by post age (8 largest channels)",
                  xlabel="post age (between refresh checkpoints)", ylabel="median views", legend_title="channel")
fig.axes[0].set_xticks(range(len(BUCKETS)), BUCKETS)

# %% [markdown]
# Normalised: each observation as a share of the post's latest archived views, median over posts by
# age (posts observed at least `MIN_OBSERVATIONS` times; each post's latest observation, 100 % by
# definition, is left out). This shows *when* a post gets its views, independent of channel size.

# %%
# Every post has at least one observation; a scheduled collector adds one per checkpoint reached.
# Raise this on archives collected over weeks for sharper curves and half-lives.
MIN_OBSERVATIONS = 2

vg = analysis.view_growth(con)
hl = analysis.half_life(con)
shares = (
    vg.join(hl.select("channel_id", "message_id", "latest_views", "observations"),
            on=["channel_id", "message_id"])
    .filter((pl.col("observations") >= MIN_OBSERVATIONS) & (pl.col("latest_views") > 0))
    .filter(pl.col("age_s") < pl.col("age_s").max().over("channel_id", "message_id"))
    .with_columns(
        (pl.col("views") / pl.col("latest_views")).alias("share"),
        (pl.col("age_s") / 3600).log(2).floor().alias("log2_hours"),
    )
    .group_by("log2_hours").agg(
        pl.col("share").median().alias("median_share"), pl.len().alias("n"),
        (2 ** pl.col("log2_hours").first()).alias("hours"),
    )
    .filter(pl.col("n") >= 20)
    .sort("hours")
)
fig = plots.lines({"median over posts": (shares["hours"], 100 * shares["median_share"])}, marker="o", log_x=True,
                  title="Share of the latest views reached, by age",
                  xlabel="post age (hours, log2 buckets)", ylabel="views (% of latest observed)")
fig.axes[0].set_ylim(0, 100)

# %% [markdown]
# ## Half-life
#
# The age at which a post had half of its latest archived views (linear interpolation between
# observations, starting from 0 views at age 0). The estimate means something only for posts seen
# early and again later: a post first observed days after posting gets "half its age at first
# sight", an artifact of the interpolation. So only posts with at least `MIN_OBSERVATIONS`
# observations whose first observation came within `FIRST_SEEN_WITHIN_H` hours of posting are used.

# %%
FIRST_SEEN_WITHIN_H = 6

seen_early = (
    vg.group_by("channel_id", "message_id").agg(pl.col("age_s").min().alias("first_age_s"))
    .filter(pl.col("first_age_s") <= FIRST_SEEN_WITHIN_H * 3600)
)
sampled = (
    hl.join(seen_early, on=["channel_id", "message_id"])
    .filter((pl.col("observations") >= MIN_OBSERVATIONS) & pl.col("half_life_s").is_not_null())
)
median_h = (sampled.select(pl.col("half_life_s").median()).item() or float("nan")) / 3600
print(f"{sampled.height:,} of {hl.height:,} posts were first seen within {FIRST_SEEN_WITHIN_H} h and observed "
      f"at least {MIN_OBSERVATIONS} times; median half-life {median_h:.1f} h")
fig = plots.histogram(
    sampled["half_life_s"] / 3600, log_x=True, bins=30,
    title="View half-life of posts", xlabel="half-life (hours, log-spaced bins)", ylabel="posts",
)

# %%
per_channel = (
    sampled.group_by("channel_id")
    .agg(pl.len().alias("posts"), (pl.col("half_life_s").median() / 3600).alias("median_half_life_h"))
    .filter(pl.col("posts") >= 5)
    .pipe(analysis.with_names, con)
    .sort("median_half_life_h")
)
fig = plots.bars(per_channel["channel"], per_channel["median_half_life_h"],
                 title="Median view half-life per channel",
                 xlabel=f"median half-life (hours; posts first seen within {FIRST_SEEN_WITHIN_H} h)",
                 ylabel="channel")

# %% [markdown]
# ## Subscribers
#
# From the channel snapshots: `change` since the previous snapshot and `per_day` (that change per
# day). Two snapshots are the minimum for a rate; a longer archive gives a curve.

# %%
subs = analysis.subscriber_growth(con)
largest = subs.group_by("channel_id").agg(pl.col("participants_count").last()).sort(
    "participants_count", descending=True)["channel_id"].head(8)
subscribers = {
    name(c): (s["observed_at"], s["participants_count"])
    for c in largest for s in [subs.filter(pl.col("channel_id") == c)]
}
fig = plots.lines(subscribers, marker="o", log_y=True, title="Subscribers over time (8 largest channels)",
                  xlabel="snapshot time (UTC)", ylabel="subscribers (log scale)", legend_title="channel")

# %%
rates = (
    subs.filter(pl.col("per_day").is_not_null())
    .group_by("channel_id").agg(pl.col("per_day").mean(), pl.col("participants_count").last())
    .with_columns(
        (100 * pl.col("per_day") / pl.col("participants_count")).alias("pct_per_day"),
        named("channel_id").alias("channel"),
    )
    .sort("pct_per_day", descending=True)
)
fig = plots.bars(rates["channel"], rates["pct_per_day"], title="Audience growth rate",
                 xlabel="subscriber change (% of subscribers per day)", ylabel="channel")

# %% [markdown]
# ## Views per subscriber
#
# Median views of posts at least one day old against the channel's subscribers. Channels far above
# the others draw readers from outside their subscribers (forwards, search), or have inflated views.

# %%
day_old = growth.filter(pl.col("age_s") >= 86400).group_by("channel_id").agg(
    pl.col("median_views").max().alias("median_views_1d"))
audience = subs.group_by("channel_id").agg(pl.col("participants_count").last())
ratio = day_old.join(audience, on="channel_id").pipe(analysis.with_names, con)
fig = plots.scatter(ratio["participants_count"], ratio["median_views_1d"], log_x=True, log_y=True,
                    sizes=[50] * ratio.height, alpha=0.85,
                    title="Views against audience size", xlabel="subscribers (latest snapshot)",
                    ylabel="median views of posts ≥ 1 day old")
ax = fig.axes[0]
for channel, subscribers, views in ratio.select("channel", "participants_count", "median_views_1d").iter_rows():
    ax.annotate(channel, (subscribers, views), fontsize=7, xytext=(3, 3), textcoords="offset points")
