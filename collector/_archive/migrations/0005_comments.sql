-- 0005: comments under archived posts, from the channel's linked discussion group (optional, issue 5).
-- Written only by `tgspread comments` / collector.comments.collect_comments; off by default.
-- No person-level id is ever stored: a user is a keyed pseudonym (HMAC-SHA256 with the archive's key in
-- `pseudonym_keys`); no names, usernames, phone numbers or raw payloads of comments are kept.

CREATE TABLE post_comments (
    channel_id          BIGINT NOT NULL,       -- the broadcast channel of the post
    message_id          BIGINT NOT NULL,       -- the post commented on
    discussion_id       BIGINT NOT NULL,       -- the discussion group (bare channel id)
    comment_id          BIGINT NOT NULL,       -- the comment's message id in the discussion group
    root_comment_id     BIGINT,                -- the post's automatic copy in the group (the thread's top)
    reply_to_comment_id BIGINT,                -- the comment this one answers; null: it answers the post
    posted_at           TIMESTAMPTZ NOT NULL,
    edited_at           TIMESTAMPTZ,
    text                VARCHAR,
    author_kind         VARCHAR NOT NULL,      -- 'user', 'channel' (sent as a channel), 'anonymous_admin', 'unknown'
    author_pseudonym    VARCHAR,               -- 'user' only: keyed HMAC of the user id, stable within the archive
    author_channel_id   BIGINT,                -- 'channel' only: the public channel it was sent as
    reactions           BIGINT,                -- total over all reactions
    reactions_by        STRUCT(reaction VARCHAR, count BIGINT)[],
    hashtags            VARCHAR[],
    urls                VARCHAR[],
    domains             VARCHAR[],
    media_type          VARCHAR,
    first_seen_at       TIMESTAMPTZ NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL,
    deleted_at          TIMESTAMPTZ,           -- first seen gone (deleted by its author or a moderator)
    PRIMARY KEY (discussion_id, comment_id)
);

CREATE INDEX post_comments_post ON post_comments (channel_id, message_id);

-- What has been fetched per post: comments up to `max_comment_id` are archived. A post is fetched again
-- when its `replies` counter in `posts` exceeds `replies_seen` (the counter, or Telegram's comment count
-- if higher, when it was last fetched).
CREATE TABLE post_comment_cursors (
    channel_id          BIGINT NOT NULL,
    message_id          BIGINT NOT NULL,
    discussion_id       BIGINT,
    max_comment_id      BIGINT NOT NULL,
    replies_seen        BIGINT NOT NULL,
    comments_count      BIGINT,                -- comments Telegram counted under the post at the last fetch
    fetched_at          TIMESTAMPTZ NOT NULL,
    error               VARCHAR,               -- why the last attempt failed (e.g. comments switched off)
    PRIMARY KEY (channel_id, message_id)
);
