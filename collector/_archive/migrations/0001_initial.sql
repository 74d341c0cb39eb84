-- 0001: the archive as CONTRACT.md defines it, plus the collector's own bookkeeping.
-- Ids are Telegram's bare channel ids (no -100 prefix) as BIGINT; every *_at is TIMESTAMPTZ (UTC).

CREATE TABLE channels (
    channel_id          BIGINT PRIMARY KEY,
    access_hash         BIGINT,            -- lets the collector reach the channel without resolving again
    username            VARCHAR,
    title               VARCHAR,
    about               VARCHAR,
    participants_count  BIGINT,
    created_at          TIMESTAMPTZ,       -- when the channel was created (Channel.date)
    linked_chat_id      BIGINT,            -- discussion group, when there is one
    available_min_id    BIGINT,            -- history cleared below this id
    megagroup           BOOLEAN,
    verified            BOOLEAN,
    scam                BOOLEAN,
    fake                BOOLEAN,
    restricted          BOOLEAN,
    restriction_reason  STRUCT(platform VARCHAR, reason VARCHAR, text VARCHAR)[],
    status              VARCHAR,           -- 'active', 'private' (closed to us), 'not_found' (username gone)
    status_at           TIMESTAMPTZ,
    last_snapshot_at    TIMESTAMPTZ,       -- last channels.GetFullChannel
    first_seen_at       TIMESTAMPTZ NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL,
    source              VARCHAR NOT NULL DEFAULT 'api',
    raw                 JSON               -- last full snapshot (ChannelFull + Channel) as Telethon JSON
);

CREATE TABLE channel_observations (
    channel_id          BIGINT NOT NULL,
    observed_at         TIMESTAMPTZ NOT NULL,
    participants_count  BIGINT,
    title               VARCHAR,
    username            VARCHAR,
    about               VARCHAR,
    PRIMARY KEY (channel_id, observed_at)
);

-- Every username a channel has been known by: the resolve cache (lower-cased).
CREATE TABLE channel_usernames (
    username            VARCHAR PRIMARY KEY,
    channel_id          BIGINT NOT NULL,
    first_seen_at       TIMESTAMPTZ NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL
);

-- Channels seen only as forward origins or in answers (not necessarily collected).
CREATE TABLE peers (
    channel_id          BIGINT PRIMARY KEY,
    username            VARCHAR,
    title               VARCHAR,
    megagroup           BOOLEAN,
    first_seen_at       TIMESTAMPTZ NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE posts (
    channel_id          BIGINT NOT NULL,
    message_id          BIGINT NOT NULL,
    posted_at           TIMESTAMPTZ,
    edited_at           TIMESTAMPTZ,
    text                VARCHAR,
    grouped_id          BIGINT,
    views               BIGINT,
    forwards            BIGINT,
    replies             BIGINT,
    reactions           BIGINT,            -- total over all reactions
    reactions_by        STRUCT(reaction VARCHAR, count BIGINT)[],  -- emoji, 'custom:<id>' or 'paid'
    hashtags            VARCHAR[],
    urls                VARCHAR[],
    domains             VARCHAR[],
    canonical_urls      VARCHAR[],         -- collector.urls.canonical_urls(urls): same order, '' = no web host;
                                           -- NULL on rows written before a source filled it (analysis re-derives)
    mentions            VARCHAR[],
    fwd_channel_id      BIGINT,
    fwd_message_id      BIGINT,
    fwd_posted_at       TIMESTAMPTZ,
    fwd_from_name       VARCHAR,
    fwd_post_author     VARCHAR,
    reply_to_message_id BIGINT,
    post_author         VARCHAR,
    via_bot_id          BIGINT,
    replies_channel_id  BIGINT,            -- linked discussion group holding the comments
    media_type          VARCHAR,           -- photo, video, audio, voice, sticker, animation, document, webpage, poll, geo, ...
    media_id            BIGINT,
    media_mime          VARCHAR,
    media_size          BIGINT,
    media_duration      DOUBLE,
    media_width         INTEGER,
    media_height        INTEGER,
    media_filename      VARCHAR,
    webpage_url         VARCHAR,
    webpage_title       VARCHAR,
    restriction_reason  STRUCT(platform VARCHAR, reason VARCHAR, text VARCHAR)[],
    factcheck           VARCHAR,
    noforwards          BOOLEAN,
    pinned              BOOLEAN,
    ttl_period          INTEGER,
    source              VARCHAR NOT NULL DEFAULT 'api',   -- 'api', 'web', 'export'
    raw                 JSON,              -- the TL object as Telethon JSON
    tl_layer            INTEGER,
    telethon_version    VARCHAR,
    first_seen_at       TIMESTAMPTZ NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL,
    deleted_at          TIMESTAMPTZ,
    PRIMARY KEY (channel_id, message_id)
);

CREATE TABLE post_observations (
    channel_id          BIGINT NOT NULL,
    message_id          BIGINT NOT NULL,
    observed_at         TIMESTAMPTZ NOT NULL,
    views               BIGINT,
    forwards            BIGINT,
    replies             BIGINT,
    reactions           BIGINT,
    PRIMARY KEY (channel_id, message_id, observed_at)
);

CREATE TABLE post_versions (
    channel_id          BIGINT NOT NULL,
    message_id          BIGINT NOT NULL,
    text                VARCHAR,
    edited_at           TIMESTAMPTZ,       -- edit date of that earlier version (null: the original)
    observed_at         TIMESTAMPTZ NOT NULL,  -- when the collector saw it replaced
    raw                 JSON,
    PRIMARY KEY (channel_id, message_id, observed_at)
);

-- Newest message id archived per channel: everything at or below it has been fetched.
CREATE TABLE channel_cursors (
    channel_id          BIGINT PRIMARY KEY,
    max_message_id      BIGINT NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE run_id_seq START 1;

CREATE TABLE runs (
    run_id              BIGINT PRIMARY KEY,
    started_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ,
    status              VARCHAR NOT NULL,  -- 'running', 'ok', 'partial', 'failed'
    tgspread_version    VARCHAR,
    telethon_version    VARCHAR,
    tl_layer            INTEGER,
    requests            BIGINT,
    error               VARCHAR
);

CREATE TABLE run_channels (
    run_id              BIGINT NOT NULL,
    input               VARCHAR NOT NULL,
    channel_id          BIGINT,
    outcome             VARCHAR NOT NULL,  -- ok, flood_wait, not_found, private, error
    error               VARCHAR,
    new_posts           BIGINT NOT NULL DEFAULT 0,
    refreshed_posts     BIGINT NOT NULL DEFAULT 0,
    edits               BIGINT NOT NULL DEFAULT 0,
    deletions           BIGINT NOT NULL DEFAULT 0,
    snapshot            BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (run_id, input)
);

-- Long flood waits, remembered across passes: no request of this kind before `until`.
CREATE TABLE flood_waits (
    request             VARCHAR NOT NULL,  -- TL request name, e.g. 'messages.GetHistory'
    started_at          TIMESTAMPTZ NOT NULL,
    until               TIMESTAMPTZ NOT NULL,
    seconds             BIGINT NOT NULL,
    channel_id          BIGINT,            -- the channel whose request hit it, if any
    run_id              BIGINT,
    PRIMARY KEY (request, started_at)
);
