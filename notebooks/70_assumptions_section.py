# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---
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
# ruff: noqa: F821  (cells spliced into 70_diffusion_trees: con, pl, plots, named come from its setup)
from analysis.trees import compare_assumptions

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
top = max(int(credit["rank_first_source"].max() or 1), int(credit["rank_latest_exposure"].max() or 1), 2)
ax.plot([1, top], [1, top], "k--", linewidth=1, label="same rank")
ax.legend()

# %%
fig = plots.scatter(
    by_cascade["sv_first_source"].fill_null(float("nan")), by_cascade["sv_latest_exposure"].fill_null(float("nan")),
    title="Structural virality of each cascade under two assumptions",
    xlabel="structural virality, first_source (hops; a star: < 2)",
    ylabel="structural virality, latest_exposure (hops)",
)
