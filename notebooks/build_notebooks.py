"""Write the numbered notebooks of this folder from the cell sources below, without outputs.

The ``.ipynb`` files are generated so that they stay reproducible and reviewable: edit this file, run
``python notebooks/build_notebooks.py`` and commit both. Every notebook is written with no outputs,
``execution_count`` null and fixed cell ids, so re-running the script changes nothing unless the
cells changed (``--check`` exits 1 when a committed notebook differs from what this script writes).

Layout of each notebook:

1. a markdown cell: title, the question it answers, what Telegram data can and cannot show for it;
2. the parameter cell, tagged ``parameters`` (papermill convention): ``ARCHIVE`` read from the
   ``TGSPREAD_ARCHIVE`` environment variable, default ``demo-data/demo.duckdb``;
3. a setup cell (shared): resolves the archive path (a relative path against the repository root,
   else the working directory), opens an in-memory snapshot of the archive, channel names;
4. analysis calls, each followed or preceded by a short explanation, figures via ``analysis.plots``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.notebooknode import NotebookNode

HERE = Path(__file__).resolve().parent

Cell = tuple[str, str]   # ("md" | "code", source)


def md(text: str) -> Cell:
    return ("md", dedent(text).strip("\n"))


def code(text: str) -> Cell:
    return ("code", dedent(text).strip("\n"))


PARAMETERS = code('''
    import os

    # The archive to analyse. Point it at your own: set TGSPREAD_ARCHIVE before starting Jupyter,
    # or edit this line. A relative path is taken from the repository root (then the working directory).
    ARCHIVE = os.environ.get("TGSPREAD_ARCHIVE", "demo-data/demo.duckdb")
''')

PARAMETERS_WITH_OUTPUT = code('''
    import os
    from pathlib import Path

    # The archive to analyse. Point it at your own: set TGSPREAD_ARCHIVE before starting Jupyter,
    # or edit this line. A relative path is taken from the repository root (then the working directory).
    ARCHIVE = os.environ.get("TGSPREAD_ARCHIVE", "demo-data/demo.duckdb")
    # Where exported files go (created if missing; notebooks/output/ is ignored by git).
    OUTPUT = Path(os.environ.get("TGSPREAD_OUTPUT", "output"))
''')

SETUP = code('''
    import sys
    from pathlib import Path

    import polars as pl

    # The repository root, when the notebook runs inside a clone (makes `import analysis` work without
    # `pip install -e .`, and lets the default archive path be found from notebooks/).
    ROOT = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "analysis" / "__init__.py").is_file()), None)
    if ROOT is not None and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import analysis  # noqa: E402
    from analysis import plots  # noqa: E402


    def resolve(path):
        """An absolute path as given; a relative one against the repository root, else the working directory."""
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        bases = [b for b in (ROOT, Path.cwd()) if b is not None]
        return next((b / p for b in bases if (b / p).exists()), bases[0] / p)


    ARCHIVE_PATH = resolve(ARCHIVE)
    # snapshot=True copies the tables into memory and releases the file at once:
    # a scheduled collector is never locked out by this notebook.
    con = analysis.connect(ARCHIVE_PATH, snapshot=True)
    plots.use_style()
    pl.Config.set_tbl_rows(15)
    pl.Config.set_fmt_str_lengths(80)

    # Readable channel names: @username, else the title, else the id (collected channels, then forward origins).
    NAMES = {
        cid: f"@{username}" if username else (title or str(cid))
        for table in ("peers", "channels")   # channels last: the archive's own record wins
        for cid, username, title in con.sql(f"SELECT channel_id, username, title FROM {table}").fetchall()
    }


    def name(channel_id):
        return NAMES.get(channel_id, str(channel_id))


    def named(column):
        """A Polars expression: the readable name of the channel id in `column`."""
        return pl.col(column).replace_strict(NAMES, default=pl.col(column).cast(pl.String), return_dtype=pl.String)


    print(f"archive: {ARCHIVE_PATH}")
''')


# -- 00 archive health --------------------------------------------------------------------------------

NB00: list[Cell] = [
    md('''
    # 00 · Archive health

    **Question.** Is this archive complete enough to analyse? What did each collection pass do, which
    channels failed and why, and where are the holes?

    **What the archive can show.** Every pass is recorded (`runs`, `run_channels`: outcome, error,
    new and refreshed posts per channel); every post keeps its first and last sighting, its
    observations over time, earlier text versions and a deletion time.

    **What it cannot show.**
    - Message ids in a channel are sequential, but they are shared with service messages (pins,
      title or photo changes), which are not posts. A missing id is a service message, a post deleted
      before the first collection, or something the collector missed: the archive cannot tell them apart.
      A long run of missing ids is the one worth checking.
    - Posts deleted (or edited) before the collector first saw them leave no trace.
    - Counters are known only at the refresh times (1 h, 6 h, 1 d, 3 d, 7 d, 30 d after posting by default).
    '''),
    PARAMETERS,
    SETUP,
    md('''
    ## Collection passes

    One row per pass. `partial` means at least one channel did not come through as `ok`
    (see the next table); `failed` means the pass itself stopped.
    '''),
    code('''
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
    '''),
    code('''
    fig = plots.scatter(
        runs["started_at"], runs["duration_s"].fill_null(0), groups=runs["status"], sizes=[60] * runs.height,
        title="Collection passes", xlabel="pass start (UTC)", ylabel="duration (s)", alpha=0.9,
    )
    fig.axes[0].set_ylim(bottom=0)
    '''),
    md('''
    ## Channels that did not come through

    Every channel named in a pass gets exactly one outcome: `ok`, `flood_wait` (rate-limited; the next
    pass after the wait catches up), `not_found`, `private` (closed to this account) or `error`.
    The error text says what to do.
    '''),
    code('''
    con.sql("""
        SELECT input, outcome, any_value(error) AS error, count(*) AS passes,
               max(run_id) AS last_run, channel_id
        FROM run_channels WHERE outcome <> 'ok'
        GROUP BY input, outcome, channel_id ORDER BY passes DESC, input
    """).pl()
    '''),
    md('''
    ## Per channel: what is archived

    `posts` counts archived messages (album items each, deleted ones included); `newest_post` is the
    newest `posted_at`; `last_snapshot_at` the last metadata snapshot (subscribers, title, ...).
    '''),
    code('''
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
    '''),
    code('''
    archived = per_channel.filter(pl.col("posts") > 0)
    fig = plots.bars(
        archived.select(named("channel_id"))["channel_id"], archived["posts"],
        title="Archived posts per channel", xlabel="posts (album items each)", ylabel="channel",
    )
    '''),
    md('''
    ## Id gaps

    For each channel, the ids between its first available id (1, or above `available_min_id` when the
    channel cleared its history) and the collector's cursor that are not archived. Missing ids are
    expected (service messages, posts deleted before the first pass); `longest_gap` is the longest run of
    consecutive missing ids, the first place to look if you suspect the collector missed something.
    '''),
    code('''
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
    '''),
    code('''
    fig = plots.bars(
        gaps["channel"], gaps["missing_pct"],
        title="Message ids up to the cursor that are not archived",
        xlabel="missing ids (% of ids up to the cursor)", ylabel="channel",
    )
    '''),
    md('''
    ## Observations per post

    Each refresh of a post's counters adds one observation. A post is refreshed when its age passes
    a checkpoint it had not reached at its last observation, so young posts have few observations and
    posts older than the archive's first pass have one (they were first seen old).
    '''),
    code('''
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
    '''),
    md('''
    ## Deletions and edits

    Deleted posts keep their last archived content and get `deleted_at`; an edit moves the replaced
    text to `post_versions` first. Only deletions and edits that happened after a post was first
    archived can be seen.
    '''),
    code('''
    changes = con.sql("""
        SELECT p.channel_id, count(*) AS posts,
               count(p.deleted_at) AS deleted,
               count(DISTINCT v.message_id) AS edited_seen,
               count(p.edited_at) AS edited_flag
        FROM posts p
        LEFT JOIN (SELECT DISTINCT channel_id, message_id FROM post_versions) v USING (channel_id, message_id)
        GROUP BY p.channel_id ORDER BY deleted DESC, edited_seen DESC
    """).pl().with_columns(named("channel_id").alias("channel"))
    print(f"deleted: {changes['deleted'].sum():,} posts; earlier versions archived for "
          f"{changes['edited_seen'].sum():,} posts; {changes['edited_flag'].sum():,} posts carry an edit date")
    changes
    '''),
    code('''
    fig, axes = plots.subplots(1, 2, title="Deletions and edits seen by the collector",
                               figsize=(11, max(3.0, 0.3 * changes.height + 1.5)), sharey=True)
    plots.bars(changes["channel"], changes["deleted"], title="deleted posts", xlabel="posts",
               ylabel="channel", ax=axes[0, 0])
    plots.bars(changes["channel"], changes["edited_seen"], title="edited posts (earlier text archived)",
               xlabel="posts", ylabel="channel", ax=axes[0, 1])
    plots.check_figure(fig)
    '''),
]


# -- 10 posting frequency -----------------------------------------------------------------------------

NB10: list[Cell] = [
    md('''
    # 10 · Posting frequency

    **Question.** How often does each channel post, when (hour of day, day of week), and how does its
    activity change over time?

    **What the archive can show.** Every post a channel published since the collector first read its
    history, with Telegram's own posting time (UTC). `analysis.posting_frequency` counts an album
    (several photos or videos sent together, one `grouped_id`) as **one** post, and counts deleted
    posts (they were posted) and forwards (they are posts of the channel).

    **What it cannot show.**
    - Posts deleted before the first collection, and history a channel cleared (`available_min_id`).
    - Who wrote a post or when it was drafted: scheduled posts appear at their publication time.
    - Local time: all times are UTC, so daily rhythms of channels in other time zones are shifted.
    '''),
    PARAMETERS,
    SETUP,
    md('''
    ## Posts per day

    One row per channel and day, with zero-post days filled in between a channel's first and last
    posting day (so averages see the silences).
    '''),
    code('''
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
        .with_columns(named("channel_id").alias("channel"))
        .sort("mean_per_day", descending=True)
    )
    summary
    '''),
    code('''
    fig = plots.bars(
        summary["channel"], summary["mean_per_day"],
        title="Average posting rate (albums count once)", xlabel="posts per day", ylabel="channel",
    )
    '''),
    code('''
    top = summary["channel_id"].head(6).to_list()
    series = {
        name(c): (d["period"], d["posts"])
        for c in top
        for d in [daily.filter(pl.col("channel_id") == c)]
    }
    fig = plots.lines(series, step=True, title="Posts per day, six most active channels",
                      xlabel="day (UTC)", ylabel="posts per day", legend_title="channel")
    '''),
    md('''
    ## Albums

    How much album-awareness matters: `messages` counts archived messages, `posts` counts albums once.
    A channel that posts many galleries looks several times more active when messages are counted.
    '''),
    code('''
    messages = con.sql("SELECT channel_id, count(*) AS messages FROM posts GROUP BY channel_id").pl()
    albums = (
        summary.select("channel_id", "channel", "posts")
        .join(messages, on="channel_id")
        .with_columns((pl.col("messages") / pl.col("posts")).alias("messages_per_post"))
        .sort("messages_per_post", descending=True)
    )
    albums
    '''),
    md('''
    ## When channels post: hour of day × day of week

    Hourly counts (UTC) summed over the whole archive. Bright cells are the hours the channels post
    the most.
    '''),
    code('''
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
    '''),
    md('''
    Per channel, as a share of each channel's posts, so small and large channels compare: each row
    sums to 100 %.
    '''),
    code('''
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
    '''),
    md('''
    ## Weekly totals

    `every` takes Polars-style periods (`"1h"`, `"1d"`, `"1w"` starting Mondays, `"1mo"`). Weeks at
    the edges of the archive are partial and left out here.
    '''),
    code('''
    from datetime import timedelta

    weekly = analysis.posting_frequency(con, every="1w")
    first, last = daily["period"].min(), daily["period"].max() + timedelta(days=1)
    total = (
        weekly.filter((pl.col("period") >= first) & (pl.col("period") + timedelta(weeks=1) <= last))
        .group_by("period").agg(pl.col("posts").sum()).sort("period")
    )
    fig = plots.lines({"all channels": (total["period"], total["posts"])}, marker="o",
                      title="Posts per week, all archived channels (complete weeks)",
                      xlabel="week starting (UTC)", ylabel="posts per week")
    fig.axes[0].set_ylim(bottom=0)
    '''),
]


# -- 20 forward cascades ------------------------------------------------------------------------------

NB20: list[Cell] = [
    md('''
    # 20 · Forward cascades

    **Question.** When a post is forwarded, how far does it travel among the archived channels: how
    many forwards, how quickly, and how many views do the forwards add?

    A *cascade* is an original post together with every archived forward that names it.

    **What the archive can show.** Every forward by a collected channel, with the original post its
    header names, the forward's time and its views; the original's own views when its channel is
    collected too.

    **What it cannot show.**
    - **The path.** A forward header names only the *first* source, never the channel the forwarder
      saw it in: a forward of a forward still names the original. Cascades here are flat sets;
      notebook 70 infers trees, explicitly as a model.
    - **Forwards outside the archive.** Only collected channels' forwards are seen. Shares to private
      chats, groups and uncollected channels are invisible; Telegram's `forwards` counter includes
      them (see *coverage* below).
    - **Hidden senders.** Forwards whose original author hides itself name no origin and are left out.
    - **Imported forwards.** Posts from Telegram Desktop exports (`source = 'export'`) name at most the
      origin *channel*, never its post or date, so they join no cascade until an API (or web) collection
      of the same channel fills the origin post (docs/sources.md).
    - **Audience.** Reach sums view counters. Audiences overlap, so it is not a count of people;
      views are Telegram's counters (rounded on web previews, inflatable by bots), as last observed.
    '''),
    PARAMETERS,
    SETUP,
    code('''
    casc = analysis.cascades(con)
    print(f"{casc.height:,} original posts forwarded at least once by an archived channel; "
          f"{casc['forwards'].sum():,} forwards in all")
    print(f"origin archived for {casc['origin_archived'].mean():.0%} of them "
          "(for the rest, reach counts the forwards' views only: a lower bound)")
    '''),
    md('''
    ## Cascade size

    Complementary CDF on log-log axes: the share of cascades with at least *x* forwards. Most posts
    are forwarded once or twice; a heavy tail is forwarded widely.
    '''),
    code('''
    fig = plots.ccdf(
        {"forwards": casc["forwards"], "distinct forwarding channels": casc["channels"]},
        title="Cascade size", xlabel="forwards of one original post (archived channels)",
        ylabel="share of cascades ≥ x",
    )
    '''),
    md('''
    ## How fast

    Lag from the original post to its first forward and to its median forward, in hours. The header
    carries the original's date, so lags are known even when the origin channel is not archived.
    '''),
    code('''
    fig = plots.ccdf(
        {"first forward": casc["first_lag_s"] / 3600, "median forward": casc["median_lag_s"] / 3600},
        title="Forwarding lag", xlabel="lag after the original post (hours)", ylabel="share of cascades ≥ x",
    )
    '''),
    code('''
    fig = plots.histogram(
        casc["first_lag_s"] / 3600, log_x=True, bins=40,
        title="Time to the first forward", xlabel="lag (hours, log-spaced bins)", ylabel="cascades",
    )
    '''),
    md('''
    ## Reach

    `reach` = the original's views + the forwards' views (last observed). Split by whether the origin
    channel is archived: when it is not, reach is the forwards' views only.
    '''),
    code('''
    fig = plots.ccdf(
        {
            "origin archived": casc.filter(pl.col("origin_archived"))["reach"],
            "origin not archived (forwards only)": casc.filter(~pl.col("origin_archived"))["reach"],
        },
        title="Reach of forwarded posts", xlabel="views (original + archived forwards)",
        ylabel="share of cascades ≥ x",
    )
    '''),
    code('''
    fig = plots.scatter(
        casc["first_lag_s"] / 3600, casc["forward_views"], log_x=True, log_y=True,
        groups=casc["origin_archived"].replace_strict({True: "origin archived", False: "origin not archived"}),
        title="Fast forwards, large audiences?", xlabel="time to the first forward (hours)",
        ylabel="views added by forwards",
    )
    '''),
    md('''
    ## The largest cascades
    '''),
    code('''
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
    '''),
    md('''
    ## Coverage: how much of the spread the archive sees

    For each archived original post, Telegram's own `forwards` counter (every share, including private
    chats and uncollected channels) against the archived forwards naming it. Low coverage is normal:
    it measures the archive's view, not the post's spread. Read cascade sizes above as *among the
    archived channels*.
    '''),
    code('''
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
    total = by_channel["archived_forwards"].sum() / max(by_channel["forwards_counter"].sum(), 1)
    print(f"overall: the archive sees {total:.2%} of the forwards Telegram counts for archived posts")
    by_channel
    '''),
    code('''
    fig = plots.bars(
        by_channel["channel"], by_channel["coverage_pct"],
        title="Share of Telegram's forward count seen in the archive",
        xlabel="archived forwards / Telegram's forwards counter (%)", ylabel="origin channel",
    )
    '''),
    md('''
    ## Who is forwarded, who forwards

    `sources`: channels ranked by how often archived channels forward them (a forwarded album counts
    once; self-forwards left out). `amplifiers`: archived channels ranked by the views their forwards
    of others' posts collected (`reach_added`).
    '''),
    code('''
    src = analysis.sources(con).head(15).with_columns(named("channel_id").alias("channel"))
    amp = analysis.amplifiers(con).head(15).with_columns(named("channel_id").alias("channel"))
    fig, axes = plots.subplots(1, 2, title="Sources and amplifiers", figsize=(12, 5.5))
    plots.bars(src["channel"], src["forwards"], title="most forwarded sources",
               xlabel="forwards by other archived channels", ylabel="source channel", ax=axes[0, 0],
               colours=[plots.colour(0) if a else plots.colour(10) for a in src["archived"]])
    plots.bars(amp["channel"], amp["reach_added"], title="amplifiers", xlabel="views of their forwards",
               ylabel="forwarding channel", ax=axes[0, 1])
    plots.check_figure(fig)
    '''),
    md('''
    Light bars on the left are sources that are not collected themselves (known only from forward
    headers). Collecting them would show their own posts, views and the rest of their audience.
    '''),
]


# -- 30 channel network -------------------------------------------------------------------------------

NB30: list[Cell] = [
    md('''
    # 30 · The channel network

    **Question.** Who forwards whom? Which channels form groups that amplify each other?

    The forward network has one edge per (origin channel → forwarding channel) pair, weighted by the
    number of forwards (a forwarded album counts once). Edges point the way content travels.

    **What the archive can show.** Every forward made by a collected channel and the origin channel
    its header names.

    **What it cannot show.**
    - An edge A → B means "B re-posted content first posted by A", **not** "B saw it in A": headers
      name the original source, never the hop.
    - Only collected channels' forwards are seen. Uncollected channels appear only as sources: the
      forwards they make are not archived, so they have no incoming edges.
    - Forwards from hidden senders name no channel; self-forwards are left out.
    - Forwards imported from Telegram Desktop exports name the origin channel but not its post, and
      are not edges here until an API collection fills the origin post (docs/sources.md).
    - Copy-pasted content without a forward header is not an edge (see notebook 40).
    '''),
    PARAMETERS_WITH_OUTPUT,
    SETUP,
    code('''
    edges = analysis.forward_network(con)
    print(f"{edges.height:,} edges, {edges['forwards'].sum():,} forwards between "
          f"{len(set(edges['source_channel_id']) | set(edges['target_channel_id'])):,} channels")
    edges.head(15).select(
        named("source_channel_id").alias("source"), named("target_channel_id").alias("forwarded by"),
        "forwards", "messages", "first_at", "last_at", "views",
    )
    '''),
    md('''
    ## Communities

    Louvain communities (seeded, so the result is reproducible) on the undirected network, where the
    weight between two channels is the sum of their forwards in both directions. Modularity near 0
    means no community structure beyond chance; above about 0.3 is usually read as clear structure.
    Louvain results depend on the seed and the resolution: treat small communities with care.
    '''),
    code('''
    import networkx as nx

    graph = analysis.export.network_graph(con)       # the DiGraph that export_gexf writes
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
    '''),
    code('''
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
    '''),
    md('''
    The smallest nodes are channels known only as forward origins (not collected, so no subscriber
    count).

    ## Who exports and who imports content

    Weighted out-degree: forwards *of* a channel's posts by others (its content travels); weighted
    in-degree: forwards a channel *makes* of others' posts (it relays).
    '''),
    code('''
    strength = pl.DataFrame({
        "channel_id": [int(n) for n in graph.nodes],
        "forwarded_by_others": [graph.out_degree(n, weight="weight") for n in graph.nodes],
        "forwards_of_others": [graph.in_degree(n, weight="weight") for n in graph.nodes],
    }).with_columns(named("channel_id").alias("channel"))
    out_top = strength.sort("forwarded_by_others", descending=True).head(12)
    in_top = strength.filter(pl.col("forwards_of_others") > 0).sort("forwards_of_others", descending=True).head(12)
    fig, axes = plots.subplots(1, 2, title="Weighted degree in the forward network", figsize=(12, 5))
    plots.bars(out_top["channel"], out_top["forwarded_by_others"], title="content forwarded by others",
               xlabel="forwards (out-strength)", ylabel="channel", ax=axes[0, 0])
    plots.bars(in_top["channel"], in_top["forwards_of_others"], title="forwarding others' content",
               xlabel="forwards (in-strength)", ylabel="channel", ax=axes[0, 1])
    plots.check_figure(fig)
    '''),
    md('''
    ## Export for Gephi

    `export_gexf` writes the same graph (node attributes: label, username, archived, subscribers;
    edge attributes: weight = forwards, messages, first and last forward time) to GEXF;
    `export_graphml` to GraphML. `min_forwards` drops light edges.
    '''),
    code('''
    OUTPUT.mkdir(parents=True, exist_ok=True)   # relative: under the working directory (notebooks/output)
    gexf = analysis.export_gexf(con, OUTPUT / "forward_network.gexf")
    graphml = analysis.export_graphml(con, OUTPUT / "forward_network.graphml")
    check = nx.read_gexf(gexf)
    print(f"wrote {gexf} ({check.number_of_nodes()} nodes, {check.number_of_edges()} edges) and {graphml}")
    '''),
]


# -- 40 unattributed copies ---------------------------------------------------------------------------

NB40: list[Cell] = [
    md('''
    # 40 · Unattributed copies

    **Question.** Which texts appear in several channels *without* a forward header (copied and
    pasted rather than forwarded), which channel had them first, and how quickly do copies follow?

    `analysis.copies` compares the normalised text of every post that carries no forward header
    (MinHash + LSH over word 3-grams, every candidate pair verified with the exact Jaccard similarity)
    and clusters near-duplicates across channels.

    **What the archive can show.** Texts and posting times of the collected channels.

    **What it cannot show.**
    - **That anyone copied anyone.** Similar text can come from a shared wire source, an official
      statement or a template (automated alerts). Read a cluster as "the same text appeared here",
      and check samples before calling it coordination.
    - **The true first poster.** "First" is first *among archived channels*: the source may be an
      uncollected channel, a website or another platform.
    - Media-only posts (no text), texts shorter than `min_chars`, and earlier versions of edited
      posts (the current text is compared) are not part of it. Translations and paraphrases are not found.
    '''),
    PARAMETERS,
    SETUP,
    code('''
    from analysis.copies import copy_clusters

    THRESHOLD = 0.8   # Jaccard similarity of word 3-gram sets; 1.0 = same normalised text
    members = analysis.copies(con, threshold=THRESHOLD)
    clusters = copy_clusters(con, threshold=THRESHOLD)
    print(f"{clusters.height:,} clusters of copies across channels, {members.height:,} posts in them")
    '''),
    md('''
    ## The most widespread texts
    '''),
    code('''
    (
        clusters.sort(["channels", "posts"], descending=True).head(15)
        .select(
            "cluster_id", named("first_channel_id").alias("first_channel"), "first_posted_at", "posts", "channels",
            (pl.col("max_lag_s") / 3600).round(1).alias("max_lag_h"),
            pl.col("min_similarity").round(2), pl.col("sample_text").str.slice(0, 90),
        )
    )
    '''),
    code('''
    sizes = clusters.group_by("channels").len().sort("channels")
    fig = plots.bars(
        sizes["channels"], sizes["len"], horizontal=False,
        title="How many channels carry the same text", xlabel="channels in the cluster",
        ylabel="clusters",
    )
    '''),
    md('''
    ## How quickly copies follow

    Lag of every copy after the cluster's first archived post, in hours (log-spaced bins).
    '''),
    code('''
    later = members.filter(~pl.col("is_first"))
    fig = plots.histogram(
        later["lag_s"] / 3600, log_x=True, bins=30,
        title="Delay of copies after the first archived post", xlabel="lag (hours, log-spaced bins)",
        ylabel="copies",
    )
    '''),
    code('''
    fig = plots.histogram(
        later["similarity"], bins=20, title="Similarity of copies to the first post",
        xlabel="Jaccard similarity of word 3-grams (1 = same normalised text)", ylabel="copies",
    )
    '''),
    md('''
    ## Who has it first, who follows

    Rows: the channel with the cluster's first archived post; columns: channels whose posts follow
    it. Cells count copies. A bright row is a channel whose texts reappear elsewhere; a bright
    column a channel that (re)posts texts first seen elsewhere.
    '''),
    code('''
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
    '''),
]


# -- 50 engagement over time --------------------------------------------------------------------------

NB50: list[Cell] = [
    md('''
    # 50 · Engagement over time

    **Question.** How do views accumulate after a post is published, how quickly does attention
    fade (half-life), and how do channels' audiences grow?

    **What the archive can show.** Each post's counters (views, forwards, replies, reactions) every
    time the collector refreshed it, at ages near the checkpoints 1 h, 6 h, 1 d, 3 d, 7 d and 30 d
    after posting; subscriber counts from the channel snapshots (about daily).

    **What it cannot show.**
    - **Continuous curves.** Counters are sampled at the refresh times only; between them the curve is
      interpolated, so half-lives have the resolution of the checkpoint spacing. The latest count of
      a young post is not its final count.
    - **People.** Views are Telegram's counters: not unique readers, rounded on web previews, and
      inflatable by bots and view-buying services. Compare channels with that in mind.
    - Posts first seen old (archived history) start their curve at their age when first collected.
    - Who the subscribers are, or where they came from.
    '''),
    PARAMETERS,
    SETUP,
    md('''
    ## View growth curves

    `channel_growth` gives, per channel and age bucket (between the refresh checkpoints), the median
    views of the posts observed at that age. Each bucket holds the posts *observed* at that age:
    posts first collected old (archived history) appear only in the late buckets, so compare the
    shape of the curves across channels, and read a dip as a change in which posts are observed.
    '''),
    code('''
    from itertools import pairwise

    from analysis.timeseries import DEFAULT_AGE_EDGES_S


    def age_label(seconds):
        return f"{seconds / 86400:g} d" if seconds >= 86400 else f"{seconds / 3600:g} h"


    BUCKETS = [f"{age_label(lo)}–{age_label(hi)}" for lo, hi in pairwise(DEFAULT_AGE_EDGES_S)]
    BUCKETS.append(f"≥ {age_label(DEFAULT_AGE_EDGES_S[-1])}")
    position = {edge: i for i, edge in enumerate(DEFAULT_AGE_EDGES_S)}

    growth = analysis.channel_growth(con)
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
    '''),
    md('''
    Normalised: each observation as a share of the post's latest archived views, median over posts by
    age (posts observed at least `MIN_OBSERVATIONS` times; each post's latest observation, 100 % by
    definition, is left out). This shows *when* a post gets its views, independent of channel size.
    '''),
    code('''
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
    '''),
    md('''
    ## Half-life

    The age at which a post had half of its latest archived views (linear interpolation between
    observations, starting from 0 views at age 0). The estimate means something only for posts seen
    early and again later: a post first observed days after posting gets "half its age at first
    sight", an artifact of the interpolation. So only posts with at least `MIN_OBSERVATIONS`
    observations whose first observation came within `FIRST_SEEN_WITHIN_H` hours of posting are used.
    '''),
    code('''
    FIRST_SEEN_WITHIN_H = 6

    seen_early = (
        vg.group_by("channel_id", "message_id").agg(pl.col("age_s").min().alias("first_age_s"))
        .filter(pl.col("first_age_s") <= FIRST_SEEN_WITHIN_H * 3600)
    )
    sampled = (
        hl.join(seen_early, on=["channel_id", "message_id"])
        .filter((pl.col("observations") >= MIN_OBSERVATIONS) & pl.col("half_life_s").is_not_null())
    )
    median_h = (sampled["half_life_s"].median() or float("nan")) / 3600
    print(f"{sampled.height:,} of {hl.height:,} posts were first seen within {FIRST_SEEN_WITHIN_H} h and observed "
          f"at least {MIN_OBSERVATIONS} times; median half-life {median_h:.1f} h")
    fig = plots.histogram(
        sampled["half_life_s"] / 3600, log_x=True, bins=30,
        title="View half-life of posts", xlabel="half-life (hours, log-spaced bins)", ylabel="posts",
    )
    '''),
    code('''
    per_channel = (
        sampled.group_by("channel_id")
        .agg(pl.len().alias("posts"), (pl.col("half_life_s").median() / 3600).alias("median_half_life_h"))
        .filter(pl.col("posts") >= 5)
        .with_columns(named("channel_id").alias("channel"))
        .sort("median_half_life_h")
    )
    fig = plots.bars(per_channel["channel"], per_channel["median_half_life_h"],
                     title="Median view half-life per channel",
                     xlabel=f"median half-life (hours; posts first seen within {FIRST_SEEN_WITHIN_H} h)",
                     ylabel="channel")
    '''),
    md('''
    ## Subscribers

    From the channel snapshots: `change` since the previous snapshot and `per_day` (that change per
    day). Two snapshots are the minimum for a rate; a longer archive gives a curve.
    '''),
    code('''
    subs = analysis.subscriber_growth(con)
    largest = subs.group_by("channel_id").agg(pl.col("participants_count").last()).sort(
        "participants_count", descending=True)["channel_id"].head(8)
    series = {
        name(c): (s["observed_at"], s["participants_count"])
        for c in largest for s in [subs.filter(pl.col("channel_id") == c)]
    }
    fig = plots.lines(series, marker="o", log_y=True, title="Subscribers over time (8 largest channels)",
                      xlabel="snapshot time (UTC)", ylabel="subscribers (log scale)", legend_title="channel")
    '''),
    code('''
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
    '''),
    md('''
    ## Views per subscriber

    Median views of posts at least one day old against the channel's subscribers. Channels far above
    the others draw readers from outside their subscribers (forwards, search), or have inflated views.
    '''),
    code('''
    day_old = growth.filter(pl.col("age_s") >= 86400).group_by("channel_id").agg(
        pl.col("median_views").max().alias("median_views_1d"))
    audience = subs.group_by("channel_id").agg(pl.col("participants_count").last())
    ratio = day_old.join(audience, on="channel_id").with_columns(named("channel_id").alias("channel"))
    fig = plots.scatter(ratio["participants_count"], ratio["median_views_1d"], log_x=True, log_y=True,
                        sizes=[50] * ratio.height, alpha=0.85,
                        title="Views against audience size", xlabel="subscribers (latest snapshot)",
                        ylabel="median views of posts ≥ 1 day old")
    ax = fig.axes[0]
    for channel, subscribers, views in ratio.select("channel", "participants_count", "median_views_1d").iter_rows():
        ax.annotate(channel, (subscribers, views), fontsize=7, xytext=(3, 3), textcoords="offset points")
    '''),
]


# -- 60 links and domains -----------------------------------------------------------------------------

NB60: list[Cell] = [
    md('''
    # 60 · Links and domains

    **Question.** Which links and websites circulate through the channels, how many channels does a
    link reach, and how quickly?

    URLs are canonicalised before counting (scheme, `www.`, default ports, trailing slashes,
    tracking parameters such as `utm_*` and fragments removed; see `analysis.links`).

    **What the archive can show.** The URLs in posts' text (URL entities and hidden text links) and
    the link-preview URL, with the post's channel and time.

    **What it cannot show.**
    - Links inside images or videos, or in buttons added by bots.
    - Where shortened links (`bit.ly/...`) lead: they are not resolved (no network requests).
    - Domains are hostnames: `m.example.org` and `example.org` count as two, and one outlet may use
      several domains.
    - Forwards carry their origin's links: by default they count as posts of the forwarding channel
      (`include_forwards=False` counts only links a channel posted itself).
    '''),
    PARAMETERS,
    SETUP,
    code('''
    urls = analysis.url_spread(con)
    domains = analysis.domain_spread(con)
    print(f"{urls.height:,} distinct canonical URLs on {domains.height:,} domains; "
          f"{(urls['channels'] >= 2).sum():,} URLs reached two or more channels")
    domains.head(15).with_columns(named("first_channel_id").alias("first_channel"))
    '''),
    code('''
    top_domains = domains.sort("posts", descending=True).head(20)
    fig = plots.bars(top_domains["domain"], top_domains["posts"],
                     title="Most linked domains", xlabel="posts linking to the domain",
                     ylabel="domain")
    '''),
    md('''
    ## How far a link travels
    '''),
    code('''
    own = analysis.url_spread(con, include_forwards=False)
    fig = plots.ccdf(
        {"with forwards": urls["channels"], "posted by the channel itself": own["channels"]},
        title="Channels reached by a URL", xlabel="channels posting the URL", ylabel="share of URLs ≥ x",
    )
    '''),
    code('''
    spread = urls.filter(pl.col("median_lag_s").is_not_null() & (pl.col("median_lag_s") > 0))
    fig = plots.histogram(
        spread["median_lag_s"] / 3600, log_x=True, bins=30,
        title="Time for a URL to reach other channels",
        xlabel="median lag after its first post (hours, log-spaced bins)", ylabel="URLs",
    )
    '''),
    code('''
    (
        urls.head(15)
        .select("url", "domain", named("first_channel_id").alias("first_channel"), "first_posted_at",
                "posts", "channels", (pl.col("median_lag_s") / 3600).round(1).alias("median_lag_h"))
    )
    '''),
    md('''
    ## Which channels link which domains

    Share of each channel's linking posts that go to each of the 12 most linked domains.
    '''),
    code('''
    names_top = top_domains["domain"].head(12).to_list()
    archived_channels = [c for (c,) in con.sql("SELECT channel_id FROM channels").fetchall()]
    rows, labels = [], []
    for c in archived_channels:
        d = analysis.domain_spread(con, channels=[c])
        total = d["posts"].sum()
        if not total:
            continue
        counts = dict(zip(d["domain"].to_list(), d["posts"].to_list(), strict=True))
        rows.append([100 * counts.get(dom, 0) / total for dom in names_top])
        labels.append(name(c))
    fig = plots.heatmap(
        rows, row_labels=labels, col_labels=names_top, title="Domain mix per channel",
        xlabel="domain", ylabel="channel", colorbar_label="share of the channel's linking posts (%)",
        rotate_x=True,
    )
    '''),
]


# -- 70 diffusion trees -------------------------------------------------------------------------------

NB70: list[Cell] = [
    md('''
    # 70 · Diffusion trees and structural virality

    **Question.** Do posts spread as a broadcast (many channels forwarding the original directly) or
    through chains of channels forwarding each other? Structural virality (Goel, Anderson, Hofman and
    Watts, *Management Science* 2016) puts a number on it: the mean distance between two posts of
    the cascade tree, about 2 for a broadcast (a star), growing with chains.

    **What the archive can show.** Each cascade's forwards by collected channels, their times, and
    which channels each forwarder had forwarded before.

    **What it cannot show - read this before the numbers.**
    - **No hop is ever observed.** Telegram's forward header names only the original source. The
      parent of each forward is *inferred* by `analysis.diffusion_trees` with one explicit rule: the
      latest earlier holder of the post among the channels the forwarder had forwarded before,
      otherwise the original. The trees are a model; structural virality is a property of the model
      (another rule gives other numbers). Report it as such.
    - Hops through uncollected channels or private chats are invisible; their descendants attach
      elsewhere, which flattens trees.
    - Small cascades have little room for structure: compare structural virality at equal size.
    '''),
    PARAMETERS,
    SETUP,
    code('''
    from analysis.trees import cascade_virality

    trees = analysis.diffusion_trees(con)
    sv = cascade_virality(con, min_size=3)
    forwards = trees.filter(pl.col("inferred"))
    print(f"{trees['origin_message_id'].len() - forwards.height:,} cascades, {forwards.height:,} forwards; "
          f"{sv.height:,} trees with at least 3 nodes")
    '''),
    md('''
    ## How parents were chosen

    `prior_source`: the forwarder had forwarded the chosen parent's channel before (a proxy for
    following it). `origin`: no earlier holder qualified, so the forward attaches to the original.
    A high `origin` share means the trees are mostly stars by default, not by evidence. The opposite
    holds in a dense network: when every channel has forwarded almost every other before, the rule
    picks the *latest* earlier holder nearly always and trees come out as chains - a property of the
    rule, not evidence of multi-hop spread. Compare with the network density in notebook 30.
    '''),
    code('''
    rules = forwards.group_by("rule").len().sort("len", descending=True)
    fig = plots.bars(rules["rule"], rules["len"], title="Which rule chose each inferred parent",
                     xlabel="forwards", ylabel="rule")
    '''),
    code('''
    depths = forwards.group_by("depth").len().sort("depth")
    fig = plots.bars(depths["depth"], depths["len"], horizontal=False,
                     title="Depth of forwards in the inferred trees",
                     xlabel="inferred depth (hops from the original)", ylabel="forwards")
    '''),
    md('''
    ## Structural virality against size

    Dashed: a star of *n* nodes, 2(n − 1)/n, the least viral shape; dotted: a chain, (n + 1)/3, the most.
    '''),
    code('''
    import numpy as np

    fig = plots.scatter(sv["nodes"], sv["structural_virality"], log_x=True,
                        title="Structural virality of inferred cascade trees",
                        xlabel="tree size (posts: original + archived forwards)", ylabel="structural virality (hops)")
    ax = fig.axes[0]
    n = np.arange(3, max(int(sv["nodes"].max() or 3), 4) + 1)
    ax.plot(n, 2 * (n - 1) / n, "k--", linewidth=1, label="star (broadcast)")
    ax.plot(n, (n + 1) / 3, "k:", linewidth=1, label="chain")
    ax.set_ylim(1, max(2.5, float(sv["structural_virality"].max() or 2) * 1.15))
    ax.legend()
    '''),
    code('''
    (
        sv.head(10)
        .with_columns(named("origin_channel_id").alias("origin"))
        .select("origin", "origin_message_id", "origin_posted_at", "nodes", "depth_max",
                pl.col("structural_virality").round(2))
    )
    '''),
    md('''
    ## Two trees drawn

    Each post at its time after the original (x) and inferred depth (y); dashed lines are inferred
    parent links, colours are channels. First the largest cascade, then the most structurally viral one.
    '''),
    code('''
    def one_tree(row):
        return trees.filter((pl.col("origin_channel_id") == row["origin_channel_id"])
                            & (pl.col("origin_message_id") == row["origin_message_id"]))

    largest = sv.sort("nodes", descending=True).row(0, named=True) if sv.height else None
    if largest is not None:
        fig = plots.tree(one_tree(largest), names=NAMES, log_x=True,
                         title=f"Largest cascade: {name(largest['origin_channel_id'])} "
                               f"#{largest['origin_message_id']} ({largest['nodes']} posts)",
                         xlabel="time after the original post (hours, log scale)")
    '''),
    code('''
    viral = sv.row(0, named=True) if sv.height else None
    if viral is not None:
        fig = plots.tree(one_tree(viral), names=NAMES, log_x=True,
                         title=f"Most viral tree: {name(viral['origin_channel_id'])} #{viral['origin_message_id']} "
                               f"(structural virality {viral['structural_virality']:.2f})",
                         xlabel="time after the original post (hours, log scale)")
    '''),
    md('''
    ## Checking the measure

    `analysis.structural_virality` takes any tree as (parent, child) edges: a star of 5 nodes
    scores 2·4/5 = 1.6, a chain of 5 nodes (5 + 1)/3 = 2.
    '''),
    code('''
    star = [(0, k) for k in range(1, 5)]
    chain = [(k, k + 1) for k in range(4)]
    print(f"star of 5: {analysis.structural_virality(star):.2f}; chain of 5: {analysis.structural_virality(chain):.2f}")
    '''),
]


NOTEBOOKS: dict[str, list[Cell]] = {
    "00_archive_health": NB00,
    "10_posting_frequency": NB10,
    "20_forward_cascades": NB20,
    "30_channel_network": NB30,
    "40_unattributed_copies": NB40,
    "50_engagement_over_time": NB50,
    "60_links_and_domains": NB60,
    "70_diffusion_trees": NB70,
}


def build(stem: str, cells: list[Cell]) -> NotebookNode:
    """The notebook ``stem`` with ``cells``: no outputs, null execution counts, stable cell ids."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, source) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        cell.id = f"{stem[:2]}-{i:02d}"
        if kind == "code" and source.lstrip().startswith("import os\n") and "ARCHIVE = " in source:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(nb: NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from its source here")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write to (default: this folder)")
    args = parser.parse_args(argv)
    stale = []
    for stem, cells in NOTEBOOKS.items():
        path = args.out / f"{stem}.ipynb"
        text = render(build(stem, cells))
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print("out of date (run python notebooks/build_notebooks.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
