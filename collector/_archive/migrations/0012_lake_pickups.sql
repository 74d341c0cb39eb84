-- 0012: what a collector last took from the lake (issue 15), so that a process per run (a timer) pays for a moved
-- slot's history once per change of the lake's files, not at every run. One row per (lake, collector, owned slots):
-- digests of the listing (paths, inodes, sizes, modification times) of the other collectors' files in those slots
-- at the collector's last pick-up, which took everything those files held. Equal digests: the same files, nothing
-- new to take. Local state: never published, and exported only when named (`tgspread export --tables`).
--   lake            the lake directory, resolved
--   collector       this collector's name
--   slots           the slots it owned then, comma-separated
--   history_sha256  digest of the listing of the `posts` and `channels` files (moved slots' history)
--   found_sha256    digest of the listing of the `candidates` files (channels others found)
--   taken_at        when
CREATE TABLE IF NOT EXISTS lake_pickups (
    lake VARCHAR NOT NULL,
    collector VARCHAR NOT NULL,
    slots VARCHAR NOT NULL,
    history_sha256 VARCHAR NOT NULL,
    found_sha256 VARCHAR NOT NULL,
    taken_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (lake, collector, slots)
);
