-- 0009: the stored analysis results of 0007 are gone (issue 14, item 3).
--
-- Until now `collect`, `run`, `import` and `demo` recomputed cascades, forward_network and url_spread over the
-- whole archive after every pass and stored them here; the cost grew with the archive (7-8 s and 1.5 GB at 10M
-- posts, for a pass that may have added 50 posts), and the results were correct only while every writer of
-- `posts` remembered to move `archive_generation`. The analysis functions compute from the posts (or the lake)
-- every time. Nothing else reads these tables: the lake's record of changed partitions is `lake_dirty` (0008),
-- written by its own calls in the same transactions. The `summary_*` tables were created by the code, not by
-- 0007, so they may be absent.

DROP TABLE IF EXISTS summary_cascades;
DROP TABLE IF EXISTS summary_forward_network;
DROP TABLE IF EXISTS summary_url_spread;
DROP TABLE IF EXISTS analysis_summaries;
DROP TABLE IF EXISTS archive_generation;
