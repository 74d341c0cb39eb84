# %% [markdown]
# # 10 · Posting frequency
#
# **Question.** How often does each channel post, when (hour of day, day of week), and how does its
# activity change over time?
#
# **What the archive can show.** Every post a channel published since the collector first read its
# history, with Telegram's own posting time (UTC). `analysis.posting_frequency` counts an album
# (several photos or videos sent together, one `grouped_id`) as **one** post, and counts deleted
# posts (they were posted) and forwards (they are posts of the channel).
#
# **What it cannot show.**
# - Posts deleted before the first collection, and history a channel cleared (`available_min_id`).
# - Who wrote a post or when it was drafted: scheduled posts appear at their publication time.
# - Local time: all times are UTC, so daily rhythms of channels in other time zones are shifted.

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
# ## Posts per day
#
# One row per channel and day, with zero-post days filled in between a channel's first and last
# posting day (so averages see the silences).

# %%
daily = analysis.posting_frequency(con, every="1d")
summary = (
    daily.group_by("channel_id")
    .agg(
        pl.col("posts").sum().alias("posts"),
        pl.len().alias("days"),
        pl.col("posts").mean().alias("mean_per_day"),
        pl.col("posts").median().alias("median_per_day"),
        pl.col("posts").max().alias("max_per_day"),
        (pl.col("posts") == 0).mean().alias("silent_days_share"),
        pl.col("period").min().alias("first_day"),
        pl.col("period").max().alias("last_day"),
    )
    .pipe(analysis.with_names, con)   # adds `channel` (@username, else the title) next to channel_id
    .sort("mean_per_day", descending=True)
)
summary

# %%
fig = plots.bars(
    summary["channel"], summary["mean_per_day"],
    title="Average posting rate (albums count once)", xlabel="posts per day", ylabel="channel",
)

# %%
top = summary["channel_id"].head(6).to_list()
series = {
    name(c): (d["period"], d["posts"])
    for c in top
    for d in [daily.filter(pl.col("channel_id") == c)]
}
fig = plots.lines(series, step=True, title="Posts per day, six most active channels",
                  xlabel="day (UTC)", ylabel="posts per day", legend_title="channel")

# %% [markdown]
# ## Albums
#
# How much album-awareness matters: `messages` counts archived messages, `posts` counts albums once.
# A channel that posts many galleries looks several times more active when messages are counted.

# %%
messages = con.sql("SELECT channel_id, count(*) AS messages FROM posts GROUP BY channel_id").pl()
albums = (
    summary.select("channel_id", "channel", "posts")
    .join(messages, on="channel_id")
    .with_columns((pl.col("messages") / pl.col("posts")).alias("messages_per_post"))
    .sort("messages_per_post", descending=True)
)
albums

# %% [markdown]
# ## When channels post: hour of day × day of week
#
# Hourly counts (UTC) summed over the whole archive. Bright cells are the hours the channels post
# the most.

# %%
hourly = analysis.posting_frequency(con, every="1h", fill_zeros=False).with_columns(
    pl.col("period").dt.weekday().alias("weekday"),   # 1 = Monday
    pl.col("period").dt.hour().alias("hour"),
)
grid = hourly.group_by("weekday", "hour").agg(pl.col("posts").sum())
matrix = [[0] * 24 for _ in range(7)]
for weekday, hour, posts in grid.iter_rows():
    matrix[weekday - 1][hour] = posts
fig = plots.heatmap(
    matrix, row_labels=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], col_labels=[f"{h}" for h in range(24)],
    title="When posts are published (all channels)", xlabel="hour of day (UTC)", ylabel="day of week",
    colorbar_label="posts",
)

# %% [markdown]
# Per channel, as a share of each channel's posts, so small and large channels compare: each row
# sums to 100 %.

# %%
by_hour = hourly.group_by("channel_id", "hour").agg(pl.col("posts").sum())
order = summary["channel_id"].to_list()
shares = []
for c in order:
    row = [0.0] * 24
    rows = by_hour.filter(pl.col("channel_id") == c)
    total = rows["posts"].sum() or 1
    for _, hour, posts in rows.iter_rows():
        row[hour] = 100 * posts / total
    shares.append(row)
fig = plots.heatmap(
    shares, row_labels=[name(c) for c in order], col_labels=[f"{h}" for h in range(24)],
    title="Daily rhythm per channel", xlabel="hour of day (UTC)", ylabel="channel",
    colorbar_label="share of the channel's posts (%)",
)

# %% [markdown]
# ## Weekly totals
#
# `every` takes Polars-style periods (`"1h"`, `"1d"`, `"1w"` starting Mondays, `"1mo"`). Weeks at
# the edges of the archive are partial and left out here.

# %%
from datetime import timedelta

weekly = analysis.posting_frequency(con, every="1w")
first, last = daily.select(pl.col("period").min().alias("first"), pl.col("period").max() + timedelta(days=1)).row(0)
weekly_total = (
    weekly.filter((pl.col("period") >= first) & (pl.col("period") + timedelta(weeks=1) <= last))
    .group_by("period").agg(pl.col("posts").sum()).sort("period")
)
fig = plots.lines({"all channels": (weekly_total["period"], weekly_total["posts"])}, marker="o",
                  title="Posts per week, all archived channels (complete weeks)",
                  xlabel="week starting (UTC)", ylabel="posts per week")
fig.axes[0].set_ylim(bottom=0)
