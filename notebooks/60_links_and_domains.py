# %% [markdown]
# # 60 · Links and domains
#
# **Question.** Which links and websites circulate through the channels, how many channels does a
# link reach, and how quickly?
#
# URLs are canonicalised before counting (scheme, `www.`, default ports, trailing slashes,
# tracking parameters such as `utm_*` and fragments removed; see `analysis.canonical_url`).
#
# **What the archive can show.** The URLs in posts' text (URL entities and hidden text links) and
# the link-preview URL, with the post's channel and time.
#
# **What it cannot show.**
# - Links inside images or videos, or in buttons added by bots.
# - Where shortened links (`bit.ly/...`) lead: they are not resolved (no network requests).
# - Domains are hostnames: `m.example.org` and `example.org` count as two, and one outlet may use
#   several domains.
# - Forwards carry their origin's links: by default they count as posts of the forwarding channel
#   (`include_forwards=False` counts only links a channel posted itself).

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
urls = analysis.url_spread(con)
domains = analysis.domain_spread(con)
print(f"{urls.height:,} distinct canonical URLs on {domains.height:,} domains; "
      f"{(urls['channels'] >= 2).sum():,} URLs reached two or more channels")
domains.head(15).pipe(analysis.with_names, con)   # + `first_channel`: @username, else the title

# %%
top_domains = domains.sort("posts", descending=True).head(20)
fig = plots.bars(top_domains["domain"], top_domains["posts"],
                 title="Most linked domains", xlabel="posts linking to the domain",
                 ylabel="domain")

# %% [markdown]
# ## How far a link travels

# %%
own = analysis.url_spread(con, include_forwards=False)
fig = plots.ccdf(
    {"with forwards": urls["channels"], "posted by the channel itself": own["channels"]},
    title="Channels reached by a URL", xlabel="channels posting the URL", ylabel="share of URLs ≥ x",
)

# %%
spread = urls.filter(pl.col("median_lag_s").is_not_null() & (pl.col("median_lag_s") > 0))
fig = plots.histogram(
    spread["median_lag_s"] / 3600, log_x=True, bins=30,
    title="Time for a URL to reach other channels",
    xlabel="median lag after its first post (hours, log-spaced bins)", ylabel="URLs",
)

# %%
(
    urls.head(15)
    .select("url", "domain", named("first_channel_id").alias("first_channel"), "first_posted_at",
            "posts", "channels", (pl.col("median_lag_s") / 3600).round(1).alias("median_lag_h"))
)

# %% [markdown]
# ## Which channels link which domains
#
# Share of each channel's linking posts that go to each of the 12 most linked domains.

# %%
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
