-- 0014: what kind of pass a run was (issue 14, hardening): 'collect' (a pass reading channel history: `collect`,
-- `run`, the demo), 'hydrate' (`tgspread hydrate`: posts fetched by id, no cursor moved). NULL: a run recorded
-- before this migration, or by a writer that reads no history through the API (web previews, Desktop exports).
-- `tgspread verify` holds the cursors to the posts of history passes only; hydrated posts may lie above a cursor.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS kind VARCHAR;
