-- stepwise
-- 0002: what the other ways in (t.me/s web previews, Telegram Desktop exports) need.
-- Additive only: new columns default to NULL (or to what API rows mean), new tables are new.
-- Stepwise (collector/_archive/migrations/__init__.py): each ALTER is committed and checkpointed on its own, so
-- the migration stays inside the archive's memory cap on archives of tens of millions of posts (issue 14).

-- Web previews show views rounded ("1.5K"): the label as shown plus the range it stands for.
-- `views` of a web row holds the label's face value (1.5K -> 1500), always inside [views_low, views_high].
ALTER TABLE posts ADD COLUMN IF NOT EXISTS views_label VARCHAR;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS views_low BIGINT;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS views_high BIGINT;
-- Web previews show that a post was edited, not when: the flag. Exports set it from `edited_unixtime`.
ALTER TABLE posts ADD COLUMN IF NOT EXISTS edited BOOLEAN;
-- Forward origin as the preview links it (t.me/<username>/<id>): kept when the archive does not know
-- the username's channel id yet, so `fwd_channel_id` can be filled in later.
ALTER TABLE posts ADD COLUMN IF NOT EXISTS fwd_username VARCHAR;
-- Previews do not show Telegram's album id: web rows of one album get `grouped_id` = minus the id of
-- the album's first message (negative, so never confused with a real id; unique within the channel).
-- Authors of group messages imported from an export: a keyed hash (HMAC-SHA256 with the key in
-- `pseudonym_keys`), never the raw user id or name.
ALTER TABLE posts ADD COLUMN IF NOT EXISTS author_pseudonym VARCHAR;
-- Which export file a row came from (imports.file_sha256), for provenance.
ALTER TABLE posts ADD COLUMN IF NOT EXISTS import_sha256 VARCHAR;

ALTER TABLE post_observations ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT 'api';
ALTER TABLE post_observations ADD COLUMN IF NOT EXISTS views_label VARCHAR;
ALTER TABLE post_observations ADD COLUMN IF NOT EXISTS views_low BIGINT;
ALTER TABLE post_observations ADD COLUMN IF NOT EXISTS views_high BIGINT;

-- Subscriber counts on a preview are rounded too ("27.4K subscribers").
ALTER TABLE channels ADD COLUMN IF NOT EXISTS participants_label VARCHAR;
ALTER TABLE channel_observations ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT 'api';
ALTER TABLE channel_observations ADD COLUMN IF NOT EXISTS participants_label VARCHAR;

-- One row per export file imported (keyed by content): re-importing the same file adds nothing.
CREATE TABLE IF NOT EXISTS imports (
    file_sha256         VARCHAR PRIMARY KEY,
    path                VARCHAR NOT NULL,   -- as given the first time
    root                VARCHAR NOT NULL,   -- 'single_chat' or 'full_account'
    imported_at         TIMESTAMPTZ NOT NULL,
    chats               BIGINT NOT NULL,    -- chats imported from it
    messages            BIGINT NOT NULL     -- messages read (service messages included)
);

-- Secret keys for pseudonyms (HMAC-SHA256). Created once per archive; never exported with the data.
CREATE TABLE IF NOT EXISTS pseudonym_keys (
    name                VARCHAR PRIMARY KEY,    -- e.g. 'export_authors'
    key                 BLOB NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL
);
