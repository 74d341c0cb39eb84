"""Comments under archived posts: the replies in a channel's linked discussion group (optional, off by default).

``collect_comments`` asks Telegram for the comments of archived posts (``messages.getReplies``, peer = the
channel, msg_id = the post) and stores them in ``post_comments``. Only posts worth asking about are asked:
live posts whose ``replies`` counter (kept up to date by ``collect``) is above zero and has grown since their
comments were last fetched; and of those only comments newer than the newest one archived
(``post_comment_cursors``), 100 per request, each page committed with its cursor in one transaction.

Privacy, by construction: a user is never stored, only a keyed pseudonym of their id
(:func:`collector._archive.upsert.pseudonym`, HMAC-SHA256 with the archive's secret key); names, usernames,
phone numbers and the raw payload of comments are dropped. A comment sent as a channel keeps that public
channel's id; one sent by an anonymous admin (the group as itself) has no author at all. While the pass runs,
the client does not write comment authors into its session file either (``session.save_entities``).

Deletions: when Telegram counts fewer comments under a post than the archive holds live, the post's comments
are listed again in full and the missing ones get ``deleted_at``. Edits are seen only then as well.

Example::

    with Archive("archive.duckdb") as archive:
        report = await collect_comments(client, archive, ["@somechannel"], settings=CommentsSettings(max_posts=50))
        print(report.summary())
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from collector._archive.archive import Archive
from collector._archive.comments import DuePost, due_posts
from collector._archive.comments import live_count as _live_count
from collector._archive.comments import mark_deleted as _mark_deleted
from collector._archive.comments import write_page as _write_page
from collector._archive.upsert import pseudonym, pseudonym_key
from collector._parse.channel_ref import ChannelRefError, parse_channel_ref
from collector._parse.normalize import as_utc, media_fields, normalize_peer, reaction_counts, text_fields

from .calls import Budget, Caller, FloodLimited

PAGE = 100                # messages.getReplies returns at most 100 messages per call
# One secret key per archive for every person-level id, shared with the Desktop-export import (which created
# it under this name and hashes "user<id>" the same way): one person has one pseudonym in the archive,
# whichever way they came in. Never exported.
PSEUDONYM_KEY = "export_authors"

@dataclass(frozen=True)
class CommentsSettings:
    """Knobs of a comments pass. ``max_posts``: ask about at most this many posts (the ones whose counter grew
    most first); the rest stay due for the next pass. A connection Telethon could not recover is retried
    ``connection_retries`` times, ``retry_delay`` seconds apart and doubling. ``hold_seconds``: between posts,
    the archive file is released for readers (notebooks, ``tgspread status``) once held that long."""

    max_posts: int | None = None
    connection_retries: int = 3
    retry_delay: float = 1.0
    hold_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_posts is not None and self.max_posts < 1:
            raise ValueError("max_posts must be at least 1")


@dataclass
class CommentsReport:
    """What a comments pass did. ``errors`` holds one line per post or channel it could not fetch."""

    started_at: datetime
    finished_at: datetime | None = None
    posts_due: int = 0
    posts_fetched: int = 0
    new_comments: int = 0
    deleted_comments: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    flood_until: datetime | None = None     # a flood wait (or the run's request budget) stopped the pass until then
    stopped: str | None = None              # ... and why, in a sentence
    not_owned: int = 0                      # archived channels left alone: another collector's slot (issue 15)

    @property
    def status(self) -> str:
        return "ok" if not self.errors and self.flood_until is None else "partial"

    def summary(self) -> str:
        text = (f"comments {self.status}: {self.posts_fetched} of {self.posts_due} due posts fetched, "
                f"{self.new_comments} new comments, {self.deleted_comments} seen deleted, "
                f"{sum(self.requests.values())} requests")
        if self.not_owned:
            text += f", {self.not_owned} channel(s) of other collectors' slots left alone"
        if self.stopped is not None:
            text += f"\n  stopped: {self.stopped}; a later pass continues"
        return text + "".join(f"\n  {e}" for e in self.errors)


# -- rows (pure) -------------------------------------------------------------------------------------------


def _author(msg: types.Message, discussion_id: int, key: bytes) -> tuple[str, str | None, int | None]:
    """(author_kind, author_pseudonym, author_channel_id) of a comment; never a person's id."""
    peer = msg.from_id
    if isinstance(peer, types.PeerUser):
        return "user", pseudonym(key, f"user{peer.user_id}"), None
    if isinstance(peer, types.PeerChannel):
        if peer.channel_id == discussion_id:
            return "anonymous_admin", None, None       # the group posting as itself; its signature is dropped
        return "channel", None, peer.channel_id        # a public channel: not a person
    return "unknown", None, None


def comment_row(msg: Any, *, channel_id: int, message_id: int, discussion_id: int, key: bytes) -> dict[str, Any] | None:
    """One discussion-group message -> a ``post_comments`` row (without the seen stamps), None if not a comment.

    ``reply_to_comment_id`` is set when the comment answers another comment (Telegram then names the thread's
    top message in ``reply_to_top_id``); ``root_comment_id`` is the post's copy in the group.

    >>> from datetime import datetime, UTC
    >>> m = types.Message(id=9, peer_id=types.PeerChannel(5), date=datetime(2026, 1, 1, tzinfo=UTC), message="hi",
    ...                   from_id=types.PeerUser(6123456789), reply_to=types.MessageReplyHeader(reply_to_msg_id=4))
    >>> row = comment_row(m, channel_id=1, message_id=2, discussion_id=5, key=b"k")
    >>> row["author_kind"], len(row["author_pseudonym"]), row["reply_to_comment_id"], row["root_comment_id"]
    ('user', 16, None, 4)
    """
    if not isinstance(msg, types.Message):
        return None
    text = msg.message or ""
    hashtags, urls, _canonical, domains, _mentions = text_fields(text, msg.entities)
    reactions, reactions_by = reaction_counts(msg.reactions)
    kind, alias, author_channel_id = _author(msg, discussion_id, key)
    root = reply_to = None
    header = msg.reply_to
    if isinstance(header, types.MessageReplyHeader):
        if header.reply_to_top_id:
            root, reply_to = header.reply_to_top_id, header.reply_to_msg_id
        else:
            root = header.reply_to_msg_id
    return {
        "channel_id": channel_id, "message_id": message_id, "discussion_id": discussion_id,
        "comment_id": msg.id, "root_comment_id": root, "reply_to_comment_id": reply_to,
        "posted_at": as_utc(msg.date), "edited_at": as_utc(msg.edit_date), "text": text,
        "author_kind": kind, "author_pseudonym": alias, "author_channel_id": author_channel_id,
        "reactions": reactions, "reactions_by": reactions_by, "hashtags": hashtags, "urls": urls,
        "domains": domains, "media_type": media_fields(msg.media)[0],
    }


# -- the Telegram side -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _entities_not_saved(client: TelegramClient) -> Iterator[None]:
    """Keep comment authors (ids, names, phone numbers) out of the session file while the pass runs."""
    session = client.session
    if not hasattr(session, "save_entities"):
        yield
        return
    before = session.save_entities
    session.save_entities = False
    try:
        yield
    finally:
        session.save_entities = before


class _CommentsPass:
    def __init__(self, client: TelegramClient, archive: Archive, now: datetime, settings: CommentsSettings,
                 report: CommentsReport, budget: Budget | None) -> None:
        self.archive = archive
        self.now = now
        self.report = report
        self.key = pseudonym_key(archive, PSEUDONYM_KEY, now=now)
        self.call = Caller(client, now, archive.active_flood_waits(now), self._remember_flood,
                           connection_retries=settings.connection_retries, retry_delay=settings.retry_delay,
                           budget=budget)
        self._peers_seen: set[int] = set()

    def _remember_flood(self, request: str, seconds: int, channel_id: int | None) -> datetime:
        return self.archive.record_flood_wait(request, started_at=self.now, seconds=seconds, channel_id=channel_id,
                                              run_id=None)

    async def _page(self, post: DuePost, **window: int) -> Any:
        answer = await self.call(functions.messages.GetRepliesRequest(
            peer=types.InputPeerChannel(post.channel_id, post.access_hash), msg_id=post.message_id,
            offset_date=None, hash=0, limit=PAGE,
            **{"offset_id": 0, "add_offset": 0, "max_id": 0, "min_id": 0, **window}), channel_id=post.channel_id)
        self._remember_peers(answer.chats)
        return answer

    def _remember_peers(self, chats: Sequence[Any]) -> None:
        """Public channels and groups named by an answer (the group, channels that commented as themselves)."""
        rows = [normalize_peer(c) for c in chats
                if isinstance(c, types.Channel | types.ChannelForbidden) and c.id not in self._peers_seen]
        if rows:
            self.archive.remember_peers(rows, self.now)
            self._peers_seen.update(r["channel_id"] for r in rows)

    def _rows(self, post: DuePost, messages: Sequence[Any], discussion_id: int) -> list[dict[str, Any]]:
        out = []
        for m in sorted(messages, key=lambda m: m.id):
            row = comment_row(m, channel_id=post.channel_id, message_id=post.message_id,
                              discussion_id=discussion_id, key=self.key)
            if row is not None:
                out.append(row)
        return out

    async def post(self, post: DuePost) -> None:
        """Fetch the comments of one post newer than its cursor, oldest first, one transaction per page.

        Paged oldest first from the cursor (``offset_id`` just above it, ``add_offset=-100``, ``min_id`` the
        cursor) until a page is not full: one request when little is new, ``ceil(new/100)`` in all (one
        more, answered empty, when ``new`` is an exact multiple of 100). Every page is written as it arrives,
        so a flood wait that cuts the post loses no answered request (the cursor only ever moves over archived
        comments); the last page also records the counter seen, which makes the post no longer due.
        """
        position = post.max_comment_id
        discussion_id = post.discussion_id
        while True:
            page = await self._page(post, offset_id=position + 1, add_offset=-PAGE, min_id=position)
            count = int(getattr(page, "count", len(page.messages)))
            top = max([position, *(m.id for m in page.messages)])
            last = len(page.messages) < PAGE or top <= position
            rows = self._rows(post, [m for m in page.messages if isinstance(m, types.Message)], discussion_id)
            self.report.new_comments += _write_page(
                self.archive, rows, self.now, post, discussion_id=discussion_id, position=top,
                replies_seen=max(post.replies, count) if last else None, count=count if last else None)
            if last:
                break
            position = top
        self.report.posts_fetched += 1
        live = _live_count(self.archive, post)
        if live > count:
            await self._rescan(post, discussion_id)

    async def _rescan(self, post: DuePost, discussion_id: int) -> None:
        """Telegram counts fewer comments than the archive holds: list them all, mark the missing deleted."""
        present: set[int] = set()
        position = 0
        while True:
            page = await self._page(post, offset_id=position + 1, add_offset=-PAGE, min_id=position)
            if not page.messages:
                break
            present.update(m.id for m in page.messages)
            position = max(m.id for m in page.messages)
            self.report.new_comments += _write_page(
                self.archive, self._rows(post, page.messages, discussion_id), self.now, post,
                discussion_id=discussion_id, position=position, update=True)
            if len(page.messages) < PAGE:
                break
        self.report.deleted_comments += _mark_deleted(self.archive, post, present, self.now)

    def unreachable(self, post: DuePost, error: str) -> None:
        """Remember that this post's comments cannot be fetched (until its counter grows again)."""
        _write_page(self.archive, [], self.now, post, discussion_id=post.discussion_id, position=post.max_comment_id,
                    replies_seen=post.replies, error=error)


def _channel_ids(archive: Archive, channels: Sequence[str], report: CommentsReport) -> list[int]:
    """Archived channel ids for the names given; names the archive does not know are reported, not resolved."""
    ids: list[int] = []
    for raw in channels:
        try:
            ref = parse_channel_ref(raw)
        except ChannelRefError as exc:
            report.errors.append(f"{raw}: {exc}")
            continue
        key = None
        if ref.channel_id is not None:
            key = archive.lookup_id(ref.channel_id)
        elif ref.username is not None:
            key = archive.lookup_username(ref.username)
        if key is None:
            report.errors.append(f"{raw}: not in this archive; collect the channel first (`tgspread collect`), "
                                 "then fetch its comments")
            continue
        ids.append(key.channel_id)
    return ids


async def collect_comments(
    client: TelegramClient,
    archive: Archive,
    channels: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
    settings: CommentsSettings | None = None,
    budget: Budget | None = None,
    owns: Callable[[int], bool] | None = None,
) -> CommentsReport:
    """Fetch new comments of archived posts whose counter grew; all archived channels when ``channels`` is None.

    ``channels`` are names the archive already knows (usernames, @names, t.me links, numeric ids); they are
    never resolved through Telegram. ``now`` is the pass's clock (default: the real UTC time): it stamps
    ``first_seen_at``/``last_seen_at``/``deleted_at`` and dates flood waits. A long flood wait stops the pass
    (every request of it is of the one kind Telegram limited) and is remembered for later passes; a post
    whose comments Telegram refuses (comments switched off, post gone) is recorded and skipped until its
    counter grows again. ``budget`` (a :class:`collector._telegram.calls.Budget`, e.g. the one of a ``tgspread run``) is
    spent before every request; once used up it stops the pass like a flood wait. Never raises for one post's
    or one channel's failure. ``owns`` (``Ownership.owns``): only channels of this collector's slots are asked
    about; the others are counted in ``report.not_owned``.
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    settings = settings or CommentsSettings()
    report = CommentsReport(started_at=now)
    started = time.monotonic()
    ids = _channel_ids(archive, channels, report) if channels is not None else None
    if owns is not None:
        every = ids if ids is not None else [int(r[0]) for r in archive.con.execute(
            "SELECT channel_id FROM channels").fetchall()]
        ids = [i for i in every if owns(i)]
        report.not_owned = len(every) - len(ids)
    due = due_posts(archive, ids, max_posts=settings.max_posts) if ids is None or ids else []
    report.posts_due = len(due)
    run = _CommentsPass(client, archive, now, settings, report, budget)
    closed: set[int] = set()
    with _entities_not_saved(client):
        for post in due:
            if post.channel_id in closed:
                continue
            try:
                await run.post(post)
            except FloodLimited as exc:
                report.flood_until, report.stopped = exc.until, str(exc)
                break
            except errors.MsgIdInvalidError:
                run.unreachable(post, "MSG_ID_INVALID: comments are off for this post, or it is gone")
                report.errors.append(f"channel {post.channel_id} post {post.message_id}: Telegram has no comments "
                                     "for it (comments switched off, or the post is gone); skipped until its "
                                     "counter grows")
            except (errors.ChannelPrivateError, errors.ChannelInvalidError, errors.ChannelBannedError):
                closed.add(post.channel_id)
                report.errors.append(f"channel {post.channel_id}: private, banned or closed to this account; its "
                                     "archived comments are kept")
            except errors.RPCError as exc:
                report.errors.append(f"channel {post.channel_id} post {post.message_id}: Telegram refused "
                                     f"({exc.message}); the rest of the pass went on")
            except (ConnectionError, TimeoutError, OSError) as exc:
                report.errors.append(f"connection to Telegram lost ({exc}); run the command again to continue")
                break
            archive.release(held_for=settings.hold_seconds)
    report.requests = dict(run.call.sent)
    report.finished_at = now + timedelta(seconds=time.monotonic() - started)
    return report
