# %% [markdown]
# # 00 · Archive health
#
# **Question.** Is this archive complete enough to analyse? What did each collection pass do, which
# channels failed and why, and where are the holes?
#
# **What the archive can show.** Every pass is recorded (`runs`, `run_channels`: outcome, error,
# new and refreshed posts per channel); every post keeps its first and last sighting, its
# observations over time, earlier text versions and a deletion time.
#
# **What it cannot show.**
# - Message ids in a channel are sequential, but they are shared with service messages (pins,
#   title or photo changes), which are not posts. A missing id is a service message, a post deleted
#   before the first collection, or something the collector missed: the archive cannot tell them apart.
#   A long run of missing ids is the one worth checking.
# - Posts deleted (or edited) before the collector first saw them leave no trace.
# - Counters are known only at the refresh times (1 h, 6 h, 1 d, 3 d, 7 d, 30 d after posting by default).

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
# ## Collection passes
#
# One row per pass. `partial` means at least one channel did not come through as `ok`
# (see the next table); `failed` means the pass itself stopped.

# %%
runs = con.sql("""
    SELECT run_id, started_at, finished_at,
           epoch(finished_at) - epoch(started_at) AS duration_s,
           status, requests, error
    FROM runs ORDER BY run_id
""").pl()
outcomes = con.sql("""
    SELECT run_id, outcome, count(*) AS channels, sum(new_posts) AS new_posts,
           sum(refreshed_posts) AS refreshed_posts
    FROM run_channels GROUP BY ALL ORDER BY run_id, outcome
""").pl()
per_run = outcomes.pivot(on="outcome", index="run_id", values="channels").fill_null(0)
runs.join(per_run, on="run_id", how="left")

# %%
fig = plots.scatter(
    runs["started_at"], runs["duration_s"].fill_null(0), groups=runs["status"], sizes=[60] * runs.height,
    title="Collection passes", xlabel="pass start (UTC)", ylabel="duration (s)", alpha=0.9,
)
fig.axes[0].set_ylim(bottom=0)

# %% [markdown]
# ## Channels that did not come through
#
# Every channel named in a pass gets exactly one outcome: `ok`, `flood_wait` (rate-limited; the next
# pass after the wait catches up), `not_found`, `private` (closed to this account) or `error`.
# The error text says what to do.

# %%
con.sql("""
    SELECT input, outcome, any_value(error) AS error, count(*) AS passes,
           max(run_id) AS last_run, channel_id
    FROM run_channels WHERE outcome <> 'ok'
    GROUP BY input, outcome, channel_id ORDER BY passes DESC, input
""").pl()

# %% [markdown]
# ## Per channel: what is archived
#
# `posts` counts archived messages (album items each, deleted ones included); `newest_post` is the
# newest `posted_at`; `last_snapshot_at` the last metadata snapshot (subscribers, title, ...).

# %%
per_channel = con.sql("""
    SELECT c.channel_id, c.username, c.title, c.status, c.participants_count AS subscribers,
           count(p.message_id) AS posts,
           count(p.deleted_at) AS deleted,
           min(p.posted_at) AS oldest_post, max(p.posted_at) AS newest_post,
           c.last_snapshot_at, k.max_message_id AS cursor
    FROM channels c
    LEFT JOIN posts p USING (channel_id)
    LEFT JOIN channel_cursors k USING (channel_id)
    GROUP BY ALL ORDER BY posts DESC
""").pl()
per_channel

# %%
archived = per_channel.filter(pl.col("posts") > 0)
fig = plots.bars(
    archived.select(named("channel_id"))["channel_id"], archived["posts"],
    title="Archived posts per channel", xlabel="posts (album items each)", ylabel="channel",
)

# %% [markdown]
# ## Id gaps
#
# For each channel, the ids between its first available id (1, or above `available_min_id` when the
# channel cleared its history) and the collector's cursor that are not archived. Missing ids are
# expected (service messages, posts deleted before the first pass); `longest_gap` is the longest run of
# consecutive missing ids, the first place to look if you suspect the collector missed something.

# %%
holes = con.sql("""
    WITH ids AS (
        SELECT p.channel_id, p.message_id,
               lag(p.message_id) OVER (PARTITION BY p.channel_id ORDER BY p.message_id) AS prev
        FROM posts p
    ),
    bounds AS (
        SELECT c.channel_id, coalesce(c.available_min_id, 0) AS low, k.max_message_id AS high
        FROM channels c JOIN channel_cursors k USING (channel_id)
    ),
    inner_holes AS (
        SELECT channel_id, prev + 1 AS from_id, message_id - 1 AS to_id
        FROM ids WHERE prev IS NOT NULL AND message_id > prev + 1
    ),
    edge_holes AS (
        SELECT b.channel_id, b.low + 1 AS from_id, min(i.message_id) - 1 AS to_id
        FROM bounds b JOIN ids i USING (channel_id) GROUP BY b.channel_id, b.low
        UNION ALL
        SELECT b.channel_id, max(i.message_id) + 1, b.high
        FROM bounds b JOIN ids i USING (channel_id) GROUP BY b.channel_id, b.high
    )
    SELECT channel_id, from_id, to_id, to_id - from_id + 1 AS missing
    FROM (SELECT * FROM inner_holes UNION ALL SELECT * FROM edge_holes)
    WHERE to_id >= from_id
""").pl()
gaps = (
    per_channel.filter(pl.col("cursor").is_not_null())
    .select("channel_id", "posts", "cursor")
    .join(holes.group_by("channel_id").agg(
        pl.col("missing").sum().alias("missing_ids"),
        pl.len().alias("gaps"),
        pl.col("missing").max().alias("longest_gap"),
    ), on="channel_id", how="left")
    .fill_null(0)
    .with_columns(
        (100 * pl.col("missing_ids") / pl.col("cursor")).alias("missing_pct"),
        named("channel_id").alias("channel"),
    )
    .sort("missing_pct", descending=True)
)
gaps

# %%
fig = plots.bars(
    gaps["channel"], gaps["missing_pct"],
    title="Message ids up to the cursor that are not archived",
    xlabel="missing ids (% of ids up to the cursor)", ylabel="channel",
)

# %% [markdown]
# ## Observations per post
#
# Each refresh of a post's counters adds one observation. A post is refreshed when its age passes
# a checkpoint it had not reached at its last observation, so young posts have few observations and
# posts older than the archive's first pass have one (they were first seen old).

# %%
obs = con.sql("""
    SELECT p.channel_id, p.message_id, count(o.observed_at) AS observations
    FROM posts p LEFT JOIN post_observations o USING (channel_id, message_id)
    GROUP BY ALL
""").pl()
print(f"{obs.height:,} posts; {obs['observations'].mean():.2f} observations per post on average; "
      f"{(obs['observations'] <= 1).mean():.1%} observed at most once")
counts = obs.group_by("observations").len().sort("observations")
fig = plots.bars(
    counts["observations"], counts["len"], horizontal=False,
    title="Observations per post", xlabel="observations of a post's counters", ylabel="posts",
)

# %% [markdown]
# ## Deletions and edits
#
# Deleted posts keep their last archived content and get `deleted_at`; an edit moves the replaced
# text to `post_versions` first. Only deletions and edits that happened after a post was first
# archived can be seen.

# %%
changes = con.sql("""
    SELECT p.channel_id, count(*) AS posts,
           count(p.deleted_at) AS deleted,
           count(DISTINCT v.message_id) AS edited_seen,
           count(p.edited_at) AS edited_flag
    FROM posts p
    LEFT JOIN (SELECT DISTINCT channel_id, message_id FROM post_versions) v USING (channel_id, message_id)
    GROUP BY p.channel_id ORDER BY deleted DESC, edited_seen DESC
""").pl().pipe(analysis.with_names, con)   # + `channel`: @username, else title
print(f"deleted: {changes['deleted'].sum():,} posts; earlier versions archived for "
      f"{changes['edited_seen'].sum():,} posts; {changes['edited_flag'].sum():,} posts carry an edit date")
changes

# %%
fig, axes = plots.subplots(1, 2, title="Deletions and edits seen by the collector",
                           figsize=(11, max(3.0, 0.3 * changes.height + 1.5)), sharey=True)
plots.bars(changes["channel"], changes["deleted"], title="deleted posts", xlabel="posts",
           ylabel="channel", ax=axes[0, 0])
plots.bars(changes["channel"], changes["edited_seen"], title="edited posts (earlier text archived)",
           xlabel="posts", ylabel="channel", ax=axes[0, 1])
plots.check_figure(fig)

# %% [markdown]
# ## Where each field came from
#
# A post can come in through the API (`collect`), a web preview (`collect --via web`) and a Desktop
# export (`import`). Each group of its fields (text, counters, reactions, forward header) records which
# route gave the values the archive keeps, and when that route observed them (`analysis.provenance`; the
# rules are in docs/sources.md, "Provenance by field"): for example views from the API at one time and the
# text from an export imported at another. `export+web` means the export gave the forward header and a web
# pass added what it lacked. On an archive collected only through the API every group says `api`.
#
# **What it cannot show.** When an export was made: its time is when it was imported. Routes of posts
# written before the archive had migration 0011 (`unrecorded`).

# %%
routes = analysis.provenance(con).pipe(analysis.with_names, con)   # per channel, group of fields and route
print(routes.group_by("field_group", "route").agg(pl.col("posts").sum(), pl.col("last_seen_at").max())
      .sort("field_group", "posts", descending=[False, True]))
routes
