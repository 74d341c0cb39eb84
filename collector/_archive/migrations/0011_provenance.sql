-- stepwise
-- 0011: provenance by field (issue 16, item 4). When a post came in through more than one route (the API, a web
-- preview, a Desktop export), each group of its fields records which route gave its stored values and when that
-- route observed them. Four groups, two columns each (collector/_archive/provenance.py names their fields):
--   text       text, edited_at, edited and what is read from the text (hashtags, urls, domains, canonical_urls,
--              mentions)
--   counters   views (and the web's views_label/low/high), forwards, replies
--   reactions  reactions, reactions_by
--   header     the forward header: fwd_channel_id, fwd_message_id, fwd_posted_at, fwd_from_name,
--              fwd_post_author, fwd_username
-- `<group>_source` is 'api', 'web' or 'export', or two routes joined by '+' when the second only filled fields the
-- first lacked ('export+web': the export gave the header, a web pass added the origin post id). NULL: no route
-- gave the group a value, or the post was written before this migration. `<group>_seen_at` is when that route
-- observed the values (an export: when the file was imported; the file carries no date of its own).
-- Eight NULL-default columns rather than one per field per route, or a side table keyed by (post, group):
-- docs/sources.md, "Provenance by field", argues the choice. Stepwise (migrations/__init__.py): each ALTER is
-- committed and checkpointed on its own, so the migration stays inside the archive's memory cap at tens of
-- millions of posts. Nothing is backfilled: an UPDATE of every post would rewrite the table.
ALTER TABLE posts ADD COLUMN IF NOT EXISTS text_source VARCHAR;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS text_seen_at TIMESTAMPTZ;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS counters_source VARCHAR;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS counters_seen_at TIMESTAMPTZ;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS reactions_source VARCHAR;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS reactions_seen_at TIMESTAMPTZ;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS header_source VARCHAR;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS header_seen_at TIMESTAMPTZ;
