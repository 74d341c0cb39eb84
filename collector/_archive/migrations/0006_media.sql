-- 0006: downloaded media files (optional; `tgspread media`). Metadata of every post's media is in `posts`
-- (media_type, media_id, media_mime, media_size, ...) whatever is downloaded; these tables record files.
--
-- Files are content-addressed: one row (and one file on disk) per distinct content, however many posts
-- carry it (a document forwarded to 20 channels, or identical bytes uploaded twice).

-- One stored file per distinct content.
CREATE TABLE media_files (
    sha256              VARCHAR PRIMARY KEY,   -- hex SHA-256 of the bytes
    size                BIGINT NOT NULL,
    mime                VARCHAR,
    path                VARCHAR NOT NULL,      -- relative to the media root, '/'-separated:
                                               -- <channel>/<YYYY>/<MM>/<message_id>-<sha256[:12]>.<ext>
    channel_id          BIGINT NOT NULL,       -- the post whose download stored it (its channel and date
    message_id          BIGINT NOT NULL,       -- name the path)
    stored_at           TIMESTAMPTZ NOT NULL
);

-- Which post carries which stored file.
CREATE TABLE post_media (
    channel_id          BIGINT NOT NULL,
    message_id          BIGINT NOT NULL,
    media_type          VARCHAR NOT NULL,      -- as in posts.media_type: photo, video, document, audio, voice, ...
    media_id            BIGINT NOT NULL,       -- Telegram's photo or document id (posts.media_id)
    file_kind           VARCHAR NOT NULL,      -- 'photo' or 'document': the namespace media_id lives in
    thumb               VARCHAR NOT NULL,      -- photo size type downloaded (the largest, e.g. 'y'); '' for documents
    sha256              VARCHAR NOT NULL,      -- media_files.sha256
    how                 VARCHAR NOT NULL,      -- 'downloaded' (its bytes were fetched for this post),
                                               -- 'same_media' (another post with this media id had them),
                                               -- 'same_content' (fetched, and identical to a stored file)
    linked_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);

-- Downloads that did not finish. Bytes in flight live in <media root>/.partial/*.part (the file is the
-- resume state: a rerun continues from its size); a row here says why a post has no file yet.
CREATE TABLE media_downloads (
    channel_id          BIGINT NOT NULL,
    message_id          BIGINT NOT NULL,
    media_id            BIGINT NOT NULL,
    status              VARCHAR NOT NULL,      -- 'failed' (tried again by later runs, up to 5 attempts),
                                               -- 'gone' (deleted on Telegram or its media replaced: not retried),
                                               -- 'interrupted' (flood wait or lost connection: resumed later)
    error               VARCHAR,
    attempts            INTEGER NOT NULL DEFAULT 0,
    bytes_done          BIGINT NOT NULL DEFAULT 0,   -- size of its .part file when the run stopped
    updated_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);
