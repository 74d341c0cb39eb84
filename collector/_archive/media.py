"""The media tables: which archived posts still want their file, and what was stored and linked.

``post_media`` links a post to a stored file, ``media_files`` holds one row per stored content (SHA-256),
``media_downloads`` keeps failed and interrupted attempts. :mod:`collector._telegram.media` does the downloading
and asks these functions; every write here runs in the caller's transaction or its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .archive import Archive


@dataclass(frozen=True)
class MediaItem:
    """An archived post whose file is wanted."""

    channel_id: int
    message_id: int
    media_type: str
    media_id: int
    size: int | None
    mime: str | None
    filename: str | None
    posted_at: datetime
    channel_dir: str
    access_hash: int | None

    @property
    def key(self) -> tuple[int, int]:
        return (self.channel_id, self.message_id)

    @property
    def file_kind(self) -> str:
        return "photo" if self.media_type == "photo" else "document"


def pending(archive: Archive, channel_ids: Sequence[int] | None, kinds: Sequence[str], max_size: int | None,
            limit: int | None, *, max_attempts: int) -> list[MediaItem]:
    """Posts with a wanted file and none linked yet, not given up on; by channel, then message id."""
    params: dict[str, Any] = {"kinds": list(kinds), "max_size": max_size, "attempts": max_attempts}
    where = ""
    if channel_ids is not None:
        where = "AND p.channel_id IN (SELECT unnest($ids))"
        params["ids"] = list(channel_ids)
    rows = archive.con.execute(
        "SELECT p.channel_id, p.message_id, p.media_type, p.media_id, p.media_size, p.media_mime, p.media_filename, "
        "p.posted_at, coalesce(lower(c.username), CAST(p.channel_id AS VARCHAR)), c.access_hash FROM posts p "
        "LEFT JOIN channels c USING (channel_id) "
        "WHERE p.media_id IS NOT NULL AND list_contains($kinds, p.media_type) "
        "AND ($max_size IS NULL OR p.media_size <= $max_size) "
        f"{where} "
        "AND NOT EXISTS (SELECT 1 FROM post_media m WHERE m.channel_id = p.channel_id "
        "AND m.message_id = p.message_id) "
        "AND NOT EXISTS (SELECT 1 FROM media_downloads d WHERE d.channel_id = p.channel_id "
        "AND d.message_id = p.message_id AND (d.status = 'gone' OR d.attempts >= $attempts)) "
        "ORDER BY p.channel_id, p.message_id" + (f" LIMIT {int(limit)}" if limit is not None else ""),
        params,
    ).fetchall()
    return [MediaItem(int(r[0]), int(r[1]), str(r[2]), int(r[3]), r[4], r[5], r[6], r[7], str(r[8]),
                  None if r[9] is None else int(r[9])) for r in rows]


def archived_raw(archive: Archive, items: Sequence[MediaItem]) -> list[tuple[int, Any]]:
    """(message id, archived ``raw``) of these posts (one channel)."""
    if not items:
        return []
    rows = archive.con.execute(
        "SELECT message_id, raw FROM posts WHERE channel_id = $ch AND list_contains($ids, message_id)",
        {"ch": items[0].channel_id, "ids": [i.message_id for i in items]},
    ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]


def stored_for_media(archive: Archive, item: MediaItem) -> tuple[str, str] | None:
    """(sha256, photo size type) of the file another post with the same media id already has."""
    row = archive.con.execute(
        "SELECT sha256, thumb FROM post_media WHERE media_id = ? AND file_kind = ? LIMIT 1",
        [item.media_id, item.file_kind],
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def link(con: Any, item: MediaItem, sha: str, how: str, thumb: str, now: datetime) -> None:
    """Record that ``item`` carries the stored file ``sha`` (inside the caller's transaction)."""
    con.execute(
        "INSERT INTO post_media (channel_id, message_id, media_type, media_id, file_kind, thumb, sha256, how, "
        "linked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [item.channel_id, item.message_id, item.media_type, item.media_id, item.file_kind, thumb, sha, how, now],
    )
    con.execute("DELETE FROM media_downloads WHERE channel_id = ? AND message_id = ?", list(item.key))


def note(archive: Archive, item: MediaItem, status: str, error: str, now: datetime, *, attempt: bool,
         bytes_done: int = 0) -> None:
    """Record a failed (``attempt``) or interrupted download of ``item``."""
    archive.con.execute(
        "INSERT INTO media_downloads (channel_id, message_id, media_id, status, error, attempts, bytes_done, "
        "updated_at) VALUES ($ch, $msg, $media, $status, $error, $inc, $done, $now) ON CONFLICT DO UPDATE SET "
        "media_id = excluded.media_id, status = excluded.status, error = excluded.error, "
        "attempts = media_downloads.attempts + $inc, bytes_done = excluded.bytes_done, "
        "updated_at = excluded.updated_at",
        {"ch": item.channel_id, "msg": item.message_id, "media": item.media_id, "status": status, "error": error,
         "inc": 1 if attempt else 0, "done": bytes_done, "now": now},
    )


def link_stored(archive: Archive, item: MediaItem, sha: str, how: str, thumb: str, now: datetime) -> None:
    """Link ``item`` to the file ``sha`` another post already has (one transaction)."""
    with archive.transaction() as con:
        link(con, item, sha, how, thumb, now)


def stored_path(archive: Archive, sha: str) -> str | None:
    """Where the content ``sha`` is stored (relative to the media folder), if it is."""
    row = archive.con.execute("SELECT path FROM media_files WHERE sha256 = ?", [sha]).fetchone()
    return None if row is None else str(row[0])


def record_file(archive: Archive, item: MediaItem, *, sha: str, size: int, mime: str | None, path: str, how: str,
                thumb: str, now: datetime) -> None:
    """A stored file and the post's link to it, in one transaction."""
    with archive.transaction() as con:
        con.execute(
            "INSERT INTO media_files (sha256, size, mime, path, channel_id, message_id, stored_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [sha, size, mime, path, item.channel_id, item.message_id, now],
        )
        link(con, item, sha, how, thumb, now)


def has_file(archive: Archive, media_id: int, kind: str) -> bool:
    """True when some post is linked to the stored file of ``media_id`` (``kind``: photo or document)."""
    row = archive.con.execute("SELECT 1 FROM post_media WHERE media_id = ? AND file_kind = ? LIMIT 1",
                              [media_id, kind]).fetchone()
    return row is not None

