-- 0003: the collected channel set and snowball discovery (issue 5). Additive only.
-- A paper describes its sampling frame from these tables: which channels were collected, since when, added
-- how (by hand or by discovery, from which seed, at which hop, through which post or call), and removed when.

CREATE SEQUENCE channel_set_entry_seq START 1;

-- Which channels the user collects. One row per membership: removing a channel sets `removed_at` and keeps
-- the row; adding it again later starts a new row. The active set is `WHERE removed_at IS NULL`.
CREATE TABLE channel_set (
    entry_id            BIGINT PRIMARY KEY,
    input               VARCHAR NOT NULL,   -- the name as given (by the user, or by discovery)
    username            VARCHAR,            -- lower-cased, when named by a username or known for the id
    channel_id          BIGINT,             -- when known at the time it was added (named by id, or archived)
    added_at            TIMESTAMPTZ NOT NULL,
    added_by            VARCHAR NOT NULL,   -- 'hand' (tgspread channels add) or 'discovery' (discover --auto)
    hop                 INTEGER NOT NULL DEFAULT 0,   -- 0: a seed (added by hand); else its discovery hop
    seed_channel_id     BIGINT,             -- added by discovery: the seed its discovery path starts from
    seed_input          VARCHAR,            -- ... and that seed's name in this table (null for a search hit)
    discovery_run_id    BIGINT,             -- added by discovery: the run that added it
    removed_at          TIMESTAMPTZ,
    removed_by          VARCHAR             -- 'hand'
);

-- What Telegram told discovery about channels met in its answers (resolves, recommendations, search):
-- kept beside what the collector keeps, so a known channel is never resolved again.
ALTER TABLE peers ADD COLUMN access_hash BIGINT;
ALTER TABLE peers ADD COLUMN participants_count BIGINT;
ALTER TABLE peers ADD COLUMN broadcast BOOLEAN;
ALTER TABLE peers ADD COLUMN participants_at TIMESTAMPTZ;  -- when participants_count was seen

-- Usernames discovery resolved through contacts.resolveUsername (lower-cased), with what they turned out to be.
CREATE TABLE discovery_resolves (
    username            VARCHAR PRIMARY KEY,
    outcome             VARCHAR NOT NULL,   -- 'channel', 'group', 'private', 'not_found', 'not_channel'
    channel_id          BIGINT,
    resolved_at         TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE discovery_run_id_seq START 1;

-- One row per `tgspread discover`: its parameters (the sampling rules) and what it did.
CREATE TABLE discovery_runs (
    discovery_run_id    BIGINT PRIMARY KEY,
    started_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ,
    status              VARCHAR NOT NULL,   -- 'running', 'ok', 'partial' (a call flood-limited, budget spent), 'failed'
    depth               INTEGER NOT NULL,
    min_references      INTEGER NOT NULL,
    min_referrers       INTEGER NOT NULL,
    min_subscribers     BIGINT NOT NULL,
    recommendations     BOOLEAN NOT NULL,
    search_hashtags     VARCHAR[] NOT NULL,
    auto                BOOLEAN NOT NULL,
    add_limit           INTEGER,
    members             BIGINT,             -- active set members the run started from
    candidates          BIGINT,
    added               BIGINT,
    requests            JSON,               -- requests sent, by TL method
    notes               VARCHAR[],          -- what limited the run (flood waits, resolve budget)
    tgspread_version    VARCHAR,
    error               VARCHAR
);

-- Every call discovery made (or reused): its answer is kept, so a later run within a week reuses it.
CREATE TABLE discovery_calls (
    discovery_run_id    BIGINT NOT NULL,
    request             VARCHAR NOT NULL,   -- 'channels.GetChannelRecommendations', 'channels.SearchPosts'
    channel_id          BIGINT,             -- the set member asked about (recommendations)
    query               VARCHAR,            -- '#hashtag' (search)
    called_at           TIMESTAMPTZ NOT NULL,
    results             JSON,               -- [{"channel_id", "message_id", "at"}], in Telegram's order
    total               BIGINT,             -- what Telegram said it had (count), may exceed the results
    error               VARCHAR
);

-- The ranked candidate queue of each run, with each candidate's discovery path.
CREATE TABLE discovery_candidates (
    discovery_run_id    BIGINT NOT NULL,
    candidate           VARCHAR NOT NULL,   -- 'id:<channel_id>', or '@<username>' while the id is unknown
    channel_id          BIGINT,
    username            VARCHAR,
    title               VARCHAR,
    status              VARCHAR NOT NULL,   -- channel, group, private, not_found, not_channel, unresolved, unknown
    subscribers         BIGINT,
    rank                INTEGER NOT NULL,
    referrers           INTEGER NOT NULL,   -- distinct set channels (and search queries) naming it
    ref_count           BIGINT NOT NULL,    -- references, summed over the sources below
    forwards            BIGINT NOT NULL,    -- posts forwarding it (an album once)
    links               BIGINT NOT NULL,    -- posts linking to it (t.me)
    mentions            BIGINT NOT NULL,    -- posts @mentioning it
    linked_chats        BIGINT NOT NULL,    -- set channels whose discussion group it is
    recommendations     BIGINT NOT NULL,    -- set channels Telegram called it similar to
    search_hits         BIGINT NOT NULL,    -- posts of it the hashtag searches returned
    hop                 INTEGER NOT NULL,   -- 1 + the hop of the set channel on its path (a search hit: 1)
    seed_channel_id     BIGINT,             -- the seed the path starts from (null for a search hit)
    via_source          VARCHAR NOT NULL,   -- forward, link, mention, linked_chat, recommendation, search
    via_channel_id      BIGINT,             -- the set channel whose post or call named it
    via_message_id      BIGINT,             -- that post (forward, link, mention, search: the hit itself)
    via_query           VARCHAR,            -- the search, '#hashtag'
    via_at              TIMESTAMPTZ,        -- when that post was posted, or the call made
    first_found_at      TIMESTAMPTZ NOT NULL,  -- when a discovery run first listed it
    decision            VARCHAR NOT NULL,   -- added, queued, below_references, below_subscribers, not_public,
                                            -- unresolved, removed, over_limit
    PRIMARY KEY (discovery_run_id, candidate)
);

-- The evidence behind each candidate: one row per run x candidate x source x referrer.
CREATE TABLE discovery_references (
    discovery_run_id    BIGINT NOT NULL,
    candidate           VARCHAR NOT NULL,
    source              VARCHAR NOT NULL,
    referrer            VARCHAR NOT NULL,   -- 'id:<set channel id>' or '#hashtag'
    from_channel_id     BIGINT,
    ref_count           BIGINT NOT NULL,
    hop                 INTEGER NOT NULL,
    first_message_id    BIGINT,             -- its first post naming the candidate (or the search hit)
    first_at            TIMESTAMPTZ,
    PRIMARY KEY (discovery_run_id, candidate, source, referrer)
);
