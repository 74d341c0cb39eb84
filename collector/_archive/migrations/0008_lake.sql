-- 0008: which lake partitions a write touched (issue 14), recorded in the write's own transaction.
--
-- Every write to a post-level table (posts, post_observations, post_versions, post_comments) adds the
-- (table, slot, month) partitions it touched here (collector._archive.lake_marks.mark_posts), inside the transaction
-- that writes the rows. `tgspread publish` (and the publish step after every pass) rewrites exactly those
-- partitions in the lake and deletes their rows only once the files are in place: a publish killed half-way
-- leaves them here, and the next one repairs the lake. DuckDB 2.0's statement triggers with transition
-- tables would do this in the database, but they refuse `ON CONFLICT DO UPDATE`, which the writers use.

CREATE SEQUENCE lake_dirty_seq START 1;

CREATE TABLE lake_dirty (
    table_name  VARCHAR NOT NULL,   -- 'posts', 'post_observations', 'post_versions', 'post_comments'
    slot        INTEGER NOT NULL,   -- collector._archive.slots.slot(channel_id)
    month       VARCHAR NOT NULL,   -- UTC month of the post's posted_at, 'YYYY-MM' ('unknown': no date)
    seq         BIGINT NOT NULL,    -- moves with every write that marks it: a publish clears only what it read
    PRIMARY KEY (table_name, slot, month)
);
