-- 0007: stored results of the heaviest analysis functions, and the counter that says whether they are current.
--
-- Every write to `posts` (collector batches, deletions, web previews, Desktop-export imports, filled-in
-- forward origins) adds one to `archive_generation` ('posts') in its own transaction. `tgspread` commands
-- that wrote posts then store the results of analysis.cascades, forward_network and url_spread (tables
-- `summary_<function>`, created by collector.summaries.refresh_summaries, not here) with the generation they
-- were computed from. The analysis functions read a stored result only while that generation is the
-- current one; otherwise they compute from `posts` as before. A summary is never needed for correctness.

CREATE TABLE archive_generation (
    name        VARCHAR PRIMARY KEY,   -- 'posts'
    generation  BIGINT NOT NULL        -- moves with every transaction that writes the table
);
INSERT INTO archive_generation VALUES ('posts', 0);

CREATE TABLE analysis_summaries (
    name        VARCHAR PRIMARY KEY,   -- the analysis function: 'cascades', 'forward_network', 'url_spread'
    generation  BIGINT NOT NULL,       -- archive_generation('posts') the stored result was computed from
    definition  INTEGER NOT NULL,      -- analysis.summaries.DEFINITION when stored (a code change bumps it)
    built_at    TIMESTAMPTZ NOT NULL,
    seconds     DOUBLE NOT NULL,       -- time taken to compute and store it
    rows        BIGINT NOT NULL
);
