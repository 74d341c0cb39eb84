"""One collection pass: resolve -> snapshot -> new posts -> refresh due posts, channel by channel.

``collect()`` never connects, logs in or disconnects: it talks to Telegram only through the started
client it is given. One channel's failure (missing, private, flood-limited, a dropped connection) is
recorded in ``run_channels`` and the pass goes on; only a failure of the archive itself stops it.

Example::

    async with client:                      # a started, logged-in TelegramClient
        with Archive("archive.duckdb") as archive:
            report = await collect(client, ["durov", "@somechannel"], archive)
            print(report.summary())
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import telethon
from telethon import TelegramClient, errors
from telethon.tl import functions, types
from telethon.tl.alltlobjects import LAYER

from collector._archive.archive import Archive, ArchiveError, ChannelKey
from collector._archive.rows import posts_values_table
from collector._parse.channel_ref import (
    INVITE_REFUSED,
    ChannelRef,
    ChannelRefError,
    distinct_channels,
    parse_channel_ref,
)
from collector._parse.normalize import is_post, normalize_channel, normalize_peer, post_values
from collector._parse.refresh import DEFAULT_CHECKPOINTS, DEFAULT_SNAPSHOT_EVERY, is_snapshot_due, validate_checkpoints
from collector._scheduling.ownership import NOT_OWNED, Ownership

from .calls import Budget, Caller, FloodLimited, TelegramUnavailable

PAGE = 100            # Telegram's maximum for messages.getHistory and channels.getMessages
OUTCOMES = ("ok", "flood_wait", "not_found", "private", "error", NOT_OWNED)
#: Outcomes that leave a pass complete (``ok``): ``not_owned`` is another collector's channel, handed on.
_COMPLETE = ("ok", NOT_OWNED)
_GROUP = ("{name} is a group, not a channel: groups hold private people's messages and tgspread "
          "collects public channels only (unless allow_private is set: `collect --allow-private`, see the ethics "
          "note in the README)")
_USER = ("@{name} is a user or bot, not a channel: one-to-one dialogs are never collected, not even with "
         "--allow-private; tgspread collects public channels only")


@dataclass(frozen=True)
class CollectSettings:
    """Knobs of a pass. ``checkpoints`` may add to the defaults, never drop one; ``snapshot_every`` <= 24 h.

    ``batch_rows``/``batch_seconds`` bound a transaction: pages are committed together with the cursor
    once either is reached, so a crash loses at most that much work. (Larger batches cost less CPU per post,
    each commit having a fixed cost, but batches of 3000 and 8000 rows, built into Arrow 1000 at a time,
    raised the peak RSS of a 1,000,000-post collector from 344 MB to 520 MB.) A connection Telethon could not
    recover is retried ``connection_retries`` times, ``retry_delay`` seconds apart and doubling.
    ``hold_seconds``: the archive file is released for readers between channels and between batches
    once held that long (DuckDB lets no other process open a file while one writes to it).
    ``allow_private``: groups (people's messages) are collected too instead of refused; one-to-one dialogs
    (users, bots) and invite links are refused regardless. ``memory_limit`` caps DuckDB's buffer pool while
    the pass runs: a pass writes a few thousand rows at a time and reads little, so 64 MB costs it little
    speed and keeps a collector archiving a channel of a million posts near 400 MB RSS (``make bench``).
    ``threads``: DuckDB's worker threads while the pass runs. Its statements carry a few thousand rows, too
    few for parallel workers to pay for waking and scheduling them: with one, a post costs ~10 us of CPU
    less (``make bench``), and the final checkpoint takes a little longer in wall time.
    """

    checkpoints: tuple[timedelta, ...] = DEFAULT_CHECKPOINTS
    snapshot_every: timedelta = DEFAULT_SNAPSHOT_EVERY
    batch_rows: int = 2000
    batch_seconds: float = 2.0
    refresh: bool = True
    connection_retries: int = 3
    retry_delay: float = 1.0
    hold_seconds: float = 5.0
    allow_private: bool = False   # also collect groups (megagroups); users, bots and invite links never
    memory_limit: str | None = "64MB"   # DuckDB's buffer pool during the pass (Archive.memory_capped); None: as opened
    threads: int | None = 1   # DuckDB worker threads during the pass; None: DuckDB's default (one per core)
    #: the slots this collector owns (issue 15); a channel in another's slot ends ``not_owned``. None: all.
    ownership: Ownership | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoints", validate_checkpoints(self.checkpoints))
        if not timedelta(0) < self.snapshot_every <= DEFAULT_SNAPSHOT_EVERY:
            raise ValueError("snapshot_every must be positive and at most 24 hours")
        if self.batch_rows < PAGE:
            raise ValueError(f"batch_rows must be at least {PAGE}")


@dataclass
class ChannelResult:
    """What a pass did for one channel as the user named it."""

    input: str
    channel_id: int | None = None
    username: str | None = None
    outcome: str = "ok"
    error: str | None = None
    new_posts: int = 0
    refreshed_posts: int = 0
    edits: int = 0
    deletions: int = 0
    snapshot: bool = False
    #: ``hydrate`` only: the ids asked for that Telegram no longer has (deleted), in the order asked
    deleted_ids: list[int] = field(default_factory=list)

    def fail(self, outcome: str, error: str) -> ChannelResult:
        assert outcome in OUTCOMES
        self.outcome, self.error = outcome, error
        return self

    def as_row(self) -> dict[str, Any]:
        return {
            "input": self.input, "channel_id": self.channel_id, "outcome": self.outcome, "error": self.error,
            "new_posts": self.new_posts, "refreshed_posts": self.refreshed_posts, "edits": self.edits,
            "deletions": self.deletions, "snapshot": self.snapshot,
        }


@dataclass
class CollectReport:
    """The result of one pass: per-channel outcomes and counts, and the requests it sent."""

    run_id: int
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    channels: list[ChannelResult] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def new_posts(self) -> int:
        return sum(c.new_posts for c in self.channels)

    @property
    def refreshed_posts(self) -> int:
        return sum(c.refreshed_posts for c in self.channels)

    def by_input(self) -> dict[str, ChannelResult]:
        return {c.input: c for c in self.channels}

    def summary(self) -> str:
        bad = [c for c in self.channels if c.outcome != "ok"]
        n, requests = len(self.channels), sum(self.requests.values())
        text = (f"run {self.run_id} {self.status}: {n} channel{'' if n == 1 else 's'}, {self.new_posts} new "
                f"post{'' if self.new_posts == 1 else 's'}, {self.refreshed_posts} refreshed, {requests} "
                f"request{'' if requests == 1 else 's'}")
        return text + "".join(f"\n  {c.input}: {c.outcome}: {c.error}" for c in bad)


class _Pass:
    """The state of one pass; one instance per ``collect()`` call."""

    def __init__(self, client: TelegramClient, archive: Archive, now: datetime, settings: CollectSettings,
                 run_id: int, progress: Callable[[str, ChannelResult], None] | None,
                 budget: Budget | None = None) -> None:
        self.archive = archive
        self.now = now
        self.settings = settings
        self.run_id = run_id
        self.progress = progress
        self.call = Caller(client, now, archive.active_flood_waits(now), self._remember_flood,
                           connection_retries=settings.connection_retries, retry_delay=settings.retry_delay,
                           budget=budget)
        self._known_peers: dict[int, dict[str, Any]] = {}
        self._new_peers: dict[int, dict[str, Any]] = {}

    def _remember_flood(self, request: str, seconds: int, channel_id: int | None) -> datetime:
        return self.archive.record_flood_wait(
            request, started_at=self.now, seconds=seconds, channel_id=channel_id, run_id=self.run_id)

    def _notify(self, stage: str, result: ChannelResult) -> None:
        if self.progress is not None:
            self.progress(stage, result)

    # -- one channel ---------------------------------------------------------------------------------
    async def channel(self, raw: str, ids: Sequence[int] | None = None, expect: int | None = None,
                      label: str | None = None) -> ChannelResult:
        """Collect one channel: snapshot when due, new posts, due refreshes; or, with ``ids`` (``hydrate``),
        a snapshot when due and exactly those posts, fetched by id (only when ``raw`` resolves to the
        channel id ``expect``, when given: a username can pass to another channel). ``label``: the result's
        ``input`` when it must differ from ``raw`` (two entries of an id list named alike)."""
        result = ChannelResult(input=label or raw)
        try:
            with _fewer_collections():
                await self._channel(raw, result, ids, expect)
        finally:
            self.archive.remember_peers(self.take_peers(), self.now)
        self._notify("done", result)
        return result

    async def _channel(self, raw: str, result: ChannelResult, ids: Sequence[int] | None = None,
                       expect: int | None = None) -> ChannelResult:
        try:
            ref = parse_channel_ref(raw)
        except ChannelRefError as exc:
            return result.fail("not_found", str(exc))
        if ref.invite is not None:
            return result.fail("private", INVITE_REFUSED)
        try:
            key = await self._resolve(ref, result, expect)
            if key is None:
                return result
            if expect is not None and key.channel_id != expect:    # before the slot: that channel is not listed
                return result.fail("not_found", f"{raw} now names channel {key.channel_id}, not {expect} as the "
                                                "list says (the username passed to another channel); its ids were "
                                                "not fetched")
            if self._not_owned(key.channel_id, key.status, result):
                result.username = key.username
                return result
            result.channel_id, result.username = key.channel_id, key.username
            channel = types.InputChannel(key.channel_id, key.access_hash)
            self._notify("resolved", result)
            await self._step(self._snapshot(channel, key, result), result)
            if ids is not None:
                await self._step(self._hydrate(channel, ids, result), result)
            else:
                await self._step(self._history(channel, result), result)
                if self.settings.refresh:
                    await self._step(self._refresh(channel, result), result)
            if result.outcome == "ok" and key.status in ("private", "gone"):
                # open again (a snapshot, when due, already said so): the mark must not outlive the closure
                self.archive.set_channel_status(key.channel_id, "active", self.now)
        except (errors.ChannelPrivateError, errors.ChannelInvalidError, errors.ChannelBannedError,
                errors.ChannelPublicGroupNaError) as exc:
            # CHANNEL_INVALID for an id and access hash that worked before: Telegram no longer knows the
            # channel (deleted). Either way nothing archived is touched: the posts stay, the channel is marked.
            gone = isinstance(exc, errors.ChannelInvalidError)
            if result.channel_id is not None:
                self.archive.set_channel_status(result.channel_id, "gone" if gone else "private", self.now)
            result.fail("private", "Telegram no longer knows this channel (CHANNEL_INVALID: most likely deleted); "
                                   "its archived posts are kept" if gone else
                                   "the channel is private, banned or closed to this account; "
                                   "its archived posts are kept")
        except errors.RPCError as exc:
            result.fail("error", f"Telegram refused a request ({exc.message}); the rest of the pass went on")
        except TelegramUnavailable as exc:
            result.fail("error", f"{exc}; what arrived before is kept and the rest of the pass went on")
        except (ConnectionError, TimeoutError, OSError) as exc:
            result.fail("error", f"connection to Telegram lost ({exc}); run the collection again to continue")
        return result

    async def _step(self, work: Any, result: ChannelResult) -> None:
        """Run one stage; a flood limit marks the channel and lets the other stages go on."""
        try:
            await work
        except FloodLimited as exc:
            previous = f"{result.error}; " if result.outcome == "flood_wait" and result.error else ""
            result.fail("flood_wait", previous + f"{exc}; this part is caught up by the first pass after that")

    def _not_owned(self, channel_id: int, status: str | None, result: ChannelResult) -> bool:
        """True (and ``result`` is ``not_owned``) when another collector (or nobody) owns ``channel_id``'s slot.

        Asked as soon as the id is known, before what the channel is decides anything else: another collector's
        channel is never a failure here. ``status`` (``channels.status``, as archived or as the resolve just
        found) only changes the text: a group or a private channel is not handed on (nobody can collect it)."""
        owned = self.settings.ownership
        if owned is None or owned.owns(channel_id):
            return False
        result.channel_id = channel_id
        result.fail(NOT_OWNED, owned.refusal(channel_id, status))
        return True

    async def _resolve(self, ref: ChannelRef, result: ChannelResult, expect: int | None = None) -> ChannelKey | None:
        """The archived key, or a resolve through Telegram that is then cached for good. ``expect`` (hydrate: the
        channel id the list gives): a name that now names another channel is not refused as another collector's
        here; the caller reports the mismatch instead (nothing of it is fetched, nothing handed on)."""

        def elsewhere(channel_id: int, status: str | None) -> bool:
            return (expect is None or channel_id == expect) and self._not_owned(channel_id, status, result)

        if ref.channel_id is not None:
            key = self.archive.lookup_id(ref.channel_id)
            if elsewhere(ref.channel_id, key.status if key else None):
                return None                             # the slot is known from the id: nothing is sent
            if key is None:
                result.fail("not_found", f"channel id {ref.channel_id} is not in this archive; name the channel "
                                         "by its @username or t.me link the first time")
        else:
            assert ref.username is not None
            key = self.archive.lookup_username(ref.username)
            if key is not None and expect is None:
                wanted = self.archive.set_channel_by_name(ref.username)
                if wanted is not None and wanted != key.channel_id:
                    # the name was another channel's here, and the set names it for a channel handed on to this
                    # collector: Telegram says which channel it names now (the answer is cached for the name)
                    key = None
            if key is not None and elsewhere(key.channel_id, key.status):
                return None                             # archived: its slot is known, nothing is sent
        if key is not None and key.status == "group" and not self.settings.allow_private:
            result.channel_id = key.channel_id
            result.fail("error", _GROUP.format(name=f"@{ref.username}" if ref.username else ref.channel_id))
            return None
        if key is not None or ref.username is None:   # an archived channel, or an id the archive lacks
            return key
        try:
            resolved = await self.call(functions.contacts.ResolveUsernameRequest(username=ref.username))
        except FloodLimited as exc:
            result.fail("flood_wait", f"{exc}; @{ref.username} will be resolved by the first pass after that")
            return None
        except (errors.UsernameNotOccupiedError, errors.UsernameInvalidError):
            result.fail("not_found", f"no channel is called @{ref.username}; check the spelling or the link")
            return None
        peer = resolved.peer
        if not isinstance(peer, types.PeerChannel):
            result.fail("error", _USER.format(name=ref.username))
            return None
        chat = next((c for c in resolved.chats if getattr(c, "id", None) == peer.channel_id), None)
        if isinstance(chat, types.ChannelForbidden):
            # remembered, so later passes check it again by id without resolving the name again
            self.archive.remember_channel(normalize_channel(chat, None), self.now, alias=ref.username)
            self.archive.set_channel_status(chat.id, "private", self.now)
            if elsewhere(chat.id, "private"):
                return None
            result.channel_id = chat.id
            result.fail("private", f"@{ref.username} is private or banned for this account; tgspread "
                                  "collects public channels only")
            return None
        if not isinstance(chat, types.Channel) or chat.access_hash is None:
            result.fail("private", f"@{ref.username} is not accessible to this account")
            return None
        self.archive.remember_channel(normalize_channel(chat, None), self.now, alias=ref.username)
        if chat.megagroup and not chat.broadcast:
            # remembered so that it is never resolved again, but marked so that it is never collected
            # without allow_private
            self.archive.set_channel_status(chat.id, "group", self.now)
            if elsewhere(chat.id, "group"):
                return None
            if not self.settings.allow_private:
                result.channel_id = chat.id
                result.fail("error", _GROUP.format(name=f"@{ref.username}"))
                return None
        return ChannelKey(chat.id, chat.access_hash, chat.username)

    async def _snapshot(self, channel: types.InputChannel, key: ChannelKey, result: ChannelResult) -> None:
        if not is_snapshot_due(self.archive.last_snapshot_at(key.channel_id), self.now,
                               self.settings.snapshot_every):
            return
        full = await self.call(functions.channels.GetFullChannelRequest(channel=channel),
                               channel_id=key.channel_id)
        chat = next((c for c in full.chats if getattr(c, "id", None) == key.channel_id), None)
        if not isinstance(chat, types.Channel):
            raise errors.ChannelPrivateError(request=None)
        self.archive.remember_channel(normalize_channel(chat, full.full_chat), self.now, snapshot=True)
        if chat.megagroup and not chat.broadcast:    # a snapshot sets 'active'; a group stays marked
            self.archive.set_channel_status(key.channel_id, "group", self.now)
        result.username = chat.username or result.username
        result.snapshot = True

    # -- new posts -----------------------------------------------------------------------------------
    async def _page(self, channel: types.InputChannel, channel_id: int, **window: int) -> list[Any]:
        answer = await self.call(functions.messages.GetHistoryRequest(
            peer=types.InputPeerChannel(channel.channel_id, channel.access_hash), offset_date=None,
            hash=0, limit=PAGE, **{"offset_id": 0, "add_offset": 0, "max_id": 0, "min_id": 0, **window}),
            channel_id=channel_id)
        self._peers(answer.chats, channel_id)
        return [m for m in answer.messages if not isinstance(m, types.MessageEmpty)]

    def take_peers(self) -> list[dict[str, Any]]:
        """Peers met since the last write, to be committed with it; afterwards they count as known."""
        rows = list(self._new_peers.values())
        self._known_peers.update(self._new_peers)
        self._new_peers.clear()
        return rows

    def _peers(self, chats: Sequence[Any], channel_id: int) -> None:
        """Collect forward-origin channels named in an answer; written once per channel and pass."""
        for c in chats:
            if isinstance(c, types.Channel | types.ChannelForbidden) and c.id != channel_id \
                    and c.id not in self._known_peers:
                self._new_peers[c.id] = normalize_peer(c)

    async def _history(self, channel: types.InputChannel, result: ChannelResult) -> None:
        """Every message newer than the cursor, oldest first, committed with the cursor batch by batch.

        Paged oldest first from the cursor (``offset_id`` just above it, ``add_offset=-100``, ``min_id`` the
        cursor) until a page is not full: one request when little is new, ``ceil(new/100)`` requests in all
        (one more, answered empty, when ``new`` is an exact multiple of 100). Every page is kept as it
        arrives, so a flood wait that cuts the pass loses no answered request: the cursor only ever moves
        over ids that are archived, and the next pass goes on from there. (Asking for the newest page first
        and writing it last, as before issue 15, threw that page away whenever a flood wait cut the pass.)
        """
        channel_id = channel.channel_id
        position = self.archive.cursor(channel_id)
        batch = _Batch(self, channel_id, result)
        with batch.keeping_what_arrived():
            while True:
                page = await self._page(channel, channel_id, offset_id=position + 1, add_offset=-PAGE,
                                        min_id=position)
                top = max((m.id for m in page), default=position)
                if top <= position:          # nothing newer (or a server that does not move on)
                    break
                position = top
                batch.add(page, position)
                if len(page) < PAGE:
                    break

    # -- refresh -------------------------------------------------------------------------------------
    async def _refresh(self, channel: types.InputChannel, result: ChannelResult) -> None:
        """Re-fetch due posts by id, 100 per request: counters, edits and deletions in one call."""
        due = self.archive.due_posts(channel.channel_id, self.now, self.settings.checkpoints)
        await self._by_ids(channel, due, _Batch(self, channel.channel_id, result, refresh=True))

    async def _hydrate(self, channel: types.InputChannel, ids: Sequence[int], result: ChannelResult) -> None:
        """Fetch exactly ``ids`` (``tgspread hydrate``): new ones archived, archived ones observed again,
        ids Telegram no longer has marked deleted (when archived) and listed in ``result.deleted_ids``."""
        await self._by_ids(channel, ids, _Batch(self, channel.channel_id, result, hydrate=True))

    async def _by_ids(self, channel: types.InputChannel, ids: Sequence[int], batch: _Batch) -> None:
        """``channels.getMessages`` for ``ids``, 100 per request; an id answered by an empty message (or not
        at all) is gone. The cursor never moves: these are not a contiguous page of history."""
        channel_id = channel.channel_id
        with batch.keeping_what_arrived():
            for start in range(0, len(ids), PAGE):
                page = list(ids[start:start + PAGE])
                answer = await self.call(functions.channels.GetMessagesRequest(
                    channel=channel, id=[types.InputMessageID(i) for i in page]), channel_id=channel_id)
                if batch.hydrate:      # new posts: the forward origins they name (refreshed ones had theirs)
                    self._peers(answer.chats, channel_id)
                found = {m.id: m for m in answer.messages if not isinstance(m, types.MessageEmpty)}
                batch.gone.extend((channel_id, i) for i in page if i not in found)
                batch.add([found[i] for i in page if i in found], None)


class _Batch:
    """Pages normalised and buffered until a transaction's worth, then written with the cursor."""

    def __init__(self, run: _Pass, channel_id: int, result: ChannelResult, *, refresh: bool = False,
                 hydrate: bool = False) -> None:
        self.run = run
        self.channel_id = channel_id
        self.result = result
        self.refresh = refresh
        self.hydrate = hydrate
        self.rows: list[tuple[Any, ...]] = []     # collector._parse.normalize.post_values
        self.gone: list[tuple[int, int]] = []
        self.position: int | None = None
        self.started = time.monotonic()

    @contextlib.contextmanager
    def keeping_what_arrived(self) -> Iterator[None]:
        """Flush at the end, and also when Telegram stops us midway: what arrived is archived."""
        try:
            yield
        except (FloodLimited, errors.RPCError, ConnectionError):
            self.flush()
            raise
        self.flush()

    def add(self, messages: Sequence[Any], position: int | None) -> None:
        for m in sorted(messages, key=lambda m: m.id):
            if is_post(m):
                row = post_values(m, channel_id=self.channel_id)
                if row is not None:
                    self.rows.append(row)
        if position is not None:
            self.position = position if self.position is None else max(self.position, position)
        settings = self.run.settings
        if len(self.rows) >= settings.batch_rows or time.monotonic() - self.started >= settings.batch_seconds:
            self.flush()

    def flush(self) -> None:
        if not self.rows and not self.gone and self.position is None:
            return
        cursor = (self.channel_id, self.position) if self.position is not None else None
        rows = posts_values_table(self.rows) if self.rows else []
        written = self.run.archive.write_posts(rows, self.run.now, cursor=cursor, deleted=self.gone,
                                               peers=self.run.take_peers())
        if self.hydrate:
            self.result.new_posts += written.new_posts
            self.result.refreshed_posts += written.observed - written.new_posts
            self.result.deletions += len(self.gone)
            self.result.deleted_ids.extend(i for _, i in self.gone)
        elif self.refresh:
            self.result.refreshed_posts += written.observed
            self.result.deletions += len(self.gone)
        else:
            self.result.new_posts += written.new_posts
        self.result.edits += written.edits
        self.run._notify("posts", self.result)
        self.rows, self.gone, self.position = [], [], None
        self.started = time.monotonic()
        self.run.archive.release(held_for=self.run.settings.hold_seconds)


_gc_depth = 0   # channels (of one pass or of concurrent passes) inside _fewer_collections
_gc_threshold: tuple[int, ...] = gc.get_threshold()   # what the outermost of them restores


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """While a channel is collected, the cyclic garbage collector leaves the heap that existed before alone.

    A pass allocates many short-lived objects (each decoded page, each row) beside an interpreter heap of
    ~100k long-lived ones (Telethon's TL classes, pyarrow, DuckDB). With CPython's defaults the young
    generation is collected every 700 allocations, promoting the page being normalised, and every few
    pages a full collection walks the whole heap again: 10-15 % of the pass's CPU. Here the heap present
    at the start is frozen (`gc.freeze`: not scanned; reference counting still frees it) and the young
    generation is collected every 50,000 allocations; both are restored at the end. Memory is unaffected
    (the collector's objects are freed by reference counting). Nothing is changed when the garbage
    collector is off or the caller froze objects itself; nested or concurrent uses restore once, at the end.
    """
    global _gc_depth, _gc_threshold
    if _gc_depth == 0 and (not gc.isenabled() or gc.get_freeze_count()):
        yield
        return
    if _gc_depth == 0:
        _gc_threshold = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(50_000, *_gc_threshold[1:])
    _gc_depth += 1
    try:
        yield
    finally:
        _gc_depth -= 1
        if _gc_depth == 0:
            gc.unfreeze()
            gc.set_threshold(*_gc_threshold)


def _write_failed(archive: Archive, exc: duckdb.Error) -> ArchiveError:
    """The one-line error for a DuckDB failure outside the posts writes (which say so themselves)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return ArchiveError(
        f"{archive.path}: a write to the archive failed and was rolled back ({type(exc).__name__}: {first}); "
        "everything committed before it is kept; check free disk space and that the file is writable, "
        "then run the collection again")


async def _channels(run: _Pass, channels: Sequence[str], report: CollectReport) -> None:
    """Each channel once (in the order given), its outcome recorded as soon as it is known."""
    seen: set[str] = set()
    for raw in channels:
        if raw in seen:
            continue
        seen.add(raw)
        result = await run.channel(raw)
        run.archive.record_run_channel(run.run_id, result.as_row())
        report.channels.append(result)
        run.archive.release(held_for=run.settings.hold_seconds)


async def run_pass(client: TelegramClient, archive: Archive, work: Callable[[_Pass, CollectReport], Awaitable[None]],
                   *, now: datetime | None, settings: CollectSettings | None,
                   progress: Callable[[str, ChannelResult], None] | None = None,
                   budget: Budget | None = None, kind: str = "collect") -> CollectReport:
    """One recorded pass (a ``runs`` row of ``kind``, flood waits, the memory cap) doing ``work(run, report)``: the
    frame of :func:`collect` and (``kind='hydrate'``) of :func:`collector._telegram.hydrate.hydrate`."""
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    settings = settings or CollectSettings()
    try:
        run_id = archive.start_run(now, telethon_version=telethon.__version__, tl_layer=LAYER, kind=kind)
    except duckdb.Error as exc:
        raise _write_failed(archive, exc) from exc
    report = CollectReport(run_id=run_id, started_at=now)
    started = time.monotonic()
    run = _Pass(client, archive, now, settings, run_id, progress, budget)
    try:
        with archive.memory_capped(settings.memory_limit), archive.threads_limited(settings.threads):
            await work(run, report)
        report.status = "ok" if all(c.outcome in _COMPLETE for c in report.channels) else "partial"
    except BaseException as exc:
        report.status = "failed"
        report.requests = dict(run.call.sent)
        # the archive itself may be what failed; then the original error is the one to see
        with contextlib.suppress(Exception):
            archive.finish_run(run_id, status="failed", finished_at=now + timedelta(seconds=time.monotonic() - started),
                               requests=sum(run.call.sent.values()), error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, duckdb.Error):     # e.g. the disk filled up during a bookkeeping write
            raise _write_failed(archive, exc) from exc
        raise
    report.finished_at = now + timedelta(seconds=time.monotonic() - started)
    report.requests = dict(run.call.sent)
    try:
        archive.finish_run(run_id, status=report.status, finished_at=report.finished_at,
                           requests=sum(run.call.sent.values()))
    except duckdb.Error as exc:     # everything was collected and committed; only the run's end is not recorded
        raise _write_failed(archive, exc) from exc
    return report


async def collect(
    client: TelegramClient,
    channels: Sequence[str],
    archive: Archive,
    *,
    now: datetime | None = None,
    settings: CollectSettings | None = None,
    progress: Callable[[str, ChannelResult], None] | None = None,
    budget: Budget | None = None,
) -> CollectReport:
    """One collection pass over ``channels`` (usernames, @names, t.me links, archived numeric ids).

    ``now`` is the pass's one clock (default: the real UTC time): it stamps observations and runs, decides
    what is due and dates flood waits. ``progress(stage, result)`` is called as channels advance
    (stages: 'resolved', 'posts', 'done'). ``budget`` (a :class:`collector._scheduling.budget.RequestBudget`) caps the
    requests sent: once used up, the rest of the pass ends as for a flood wait (``flood_wait``, with an
    error naming the budget). Returns a :class:`CollectReport`; never raises for one channel's failure.
    """
    async def work(run: _Pass, report: CollectReport) -> None:
        await _channels(run, distinct_channels(channels), report)

    return await run_pass(client, archive, work, now=now, settings=settings, progress=progress, budget=budget)
