-- 0013: which lakes this archive published to, and how far each has taken the change marks (issue 14).
-- A publish clears the `lake_dirty` marks it read, whichever lake it wrote. Without a record per lake, a publish
-- to a second lake (a typo in --lake, a test copy) consumed the marks and the next publish to the real lake
-- missed that pass's partitions. Now a publish is incremental only when no publish to another lake has cleared
-- marks since this lake's last one (its `marks_through` equals the highest of all); otherwise it is full.
-- Local state: never published, and exported only when named (`tgspread export --tables`).
--   lake            the lake directory, resolved
--   collector       the name this archive published under there
--   marks_through   the highest `lake_dirty.seq` cleared by, or before, this lake's last publish
--   published_at    when
CREATE TABLE IF NOT EXISTS lake_publishes (
    lake VARCHAR NOT NULL,
    collector VARCHAR NOT NULL,
    marks_through BIGINT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (lake, collector)
);
