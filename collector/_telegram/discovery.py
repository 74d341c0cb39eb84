"""``discover()``: one snowball-discovery run, and the Telegram calls it makes.

Calls (all through :class:`collector._telegram.calls.Caller`, so a long flood wait is recorded and honoured,
never slept):

- ``channels.getChannelRecommendations`` for each set member with ``hop < depth`` (Telegram's "similar
  channels"); an answer is kept in ``discovery_calls`` and reused for a week instead of asking again;
- ``channels.searchPosts`` for each ``--search`` hashtag (a few pages, newest first), also reused for a week;
- ``contacts.resolveUsername`` only for candidates that pass the reference thresholds and are still unknown,
  at most ``max_resolves`` per run, best ranked first; what it tells is kept, so a name is resolved once.

Example::

    async with client:
        with Archive("archive.duckdb") as archive:
            report = await discover(client, archive, DiscoverySettings(thresholds=Thresholds(depth=2), auto=True))
            for c in report.candidates[:10]:
                print(c.rank, c.name, c.decision, c.path.via_source)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from collector._archive import discovery as store
from collector._archive.archive import Archive
from collector._parse.discovery_rank import Candidate, Evidence, Member, Thresholds, rank_candidates, to_resolve
from collector._scheduling.channel_set import Discovered, add_discovered, removed_keys
from collector._scheduling.ownership import NOT_OWNED, Ownership

from .calls import Caller, FloodLimited

_RECOMMEND = "channels.GetChannelRecommendations"
_SEARCH = "channels.SearchPosts"
# Between requests the archive file is released for readers once held this long (as collect does).
_HOLD_SECONDS = 5.0


class DiscoveryError(Exception):
    """Discovery cannot start as asked (e.g. the set is empty); the message says what to do."""


@dataclass(frozen=True)
class DiscoverySettings:
    """The sampling rules and budgets of one run.

    ``search``: hashtags (with or without ``#``). ``limit``: with ``auto``, add at most this many (best
    ranked first). ``max_resolves``: usernames resolved per run. ``reuse``: how long a recorded
    recommendations/search answer is used instead of asking Telegram again.
    """

    thresholds: Thresholds = field(default_factory=Thresholds)
    recommendations: bool = True
    search: tuple[str, ...] = ()
    auto: bool = False
    limit: int | None = None
    max_resolves: int = 20
    search_pages: int = 2
    search_page_size: int = 50
    reuse: timedelta = timedelta(days=7)
    #: the slots this collector owns (issue 15): only owned set members are asked about, and a passing
    #: candidate in another collector's slot is decided ``not_owned`` and handed on through the lake.
    ownership: Ownership | None = None

    def __post_init__(self) -> None:
        tags = tuple(dict.fromkeys(t.strip().lstrip("#＃").lower() for t in self.search))
        for tag in tags:
            if not tag or any(ch.isspace() for ch in tag):
                raise ValueError(f"--search takes one hashtag per option (like 'news' or '#news'), not {tag!r}")
        object.__setattr__(self, "search", tags)
        if self.limit is not None and self.limit < 1:
            raise ValueError("--limit must be at least 1")
        if self.max_resolves < 0:
            raise ValueError("--max-resolves must be 0 or more")


@dataclass
class DiscoveryReport:
    """What one run found: the ranked queue (every candidate, with its decision), what it added, its notes."""

    run_id: int
    started_at: datetime
    members: int
    status: str = "running"
    candidates: list[Candidate] = field(default_factory=list)
    added: list[Candidate] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    member_names: dict[int, str] = field(default_factory=dict)     # set channel id -> username, for display

    @property
    def passing(self) -> list[Candidate]:
        return [c for c in self.candidates if c.passes]


# -- one call each ------------------------------------------------------------------------------------------
def _chat_row(chat: Any) -> dict[str, Any] | None:
    if not isinstance(chat, types.Channel):
        return None
    username = chat.username or next((u.username for u in chat.usernames or () if u.active), None)
    return {"channel_id": chat.id, "username": username, "title": chat.title, "megagroup": bool(chat.megagroup),
            "broadcast": bool(chat.broadcast), "access_hash": None if chat.min else chat.access_hash,
            "participants_count": chat.participants_count}


async def recommendations(call: Caller, channel_id: int, access_hash: int) -> tuple[list[dict[str, Any]], int]:
    """Telegram's similar channels for one channel: (chat rows in Telegram's order, total it says it has)."""
    answer = await call(functions.channels.GetChannelRecommendationsRequest(
        channel=types.InputChannel(channel_id, access_hash)), channel_id=channel_id)
    rows = [r for r in map(_chat_row, answer.chats) if r is not None]
    return rows, int(getattr(answer, "count", len(rows)))


async def search_hashtag(call: Caller, hashtag: str, *, pages: int, page_size: int
                         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Public posts with ``#hashtag``, newest first: (hits, chat rows, total Telegram reports).

    Paging as Telegram documents it: ``offset_rate`` is the answer's ``next_rate`` (or the last post's
    date), ``offset_peer``/``offset_id`` the last post. Stops at an empty page or when the total is reached.
    """
    hits: list[dict[str, Any]] = []
    chats: dict[int, dict[str, Any]] = {}
    rate, peer, offset_id = 0, types.InputPeerEmpty(), 0
    total = 0
    for _ in range(pages):
        answer = await call(functions.channels.SearchPostsRequest(
            offset_rate=rate, offset_peer=peer, offset_id=offset_id, limit=page_size, hashtag=hashtag))
        for chat in getattr(answer, "chats", []):
            row = _chat_row(chat)
            if row is not None:
                chats[row["channel_id"]] = row
        posts = [m for m in getattr(answer, "messages", []) if isinstance(m, types.Message)
                 and isinstance(m.peer_id, types.PeerChannel)]
        total = int(getattr(answer, "count", len(hits) + len(posts)))
        hits += [{"channel_id": m.peer_id.channel_id, "message_id": m.id, "at": m.date} for m in posts]
        if not posts or len(hits) >= total:
            break
        last = posts[-1]
        source = chats.get(last.peer_id.channel_id)
        if source is None or source["access_hash"] is None:
            break
        rate = getattr(answer, "next_rate", None) or int(last.date.timestamp())
        peer = types.InputPeerChannel(last.peer_id.channel_id, source["access_hash"])
        offset_id = last.id
    return hits, list(chats.values()), total


async def resolve(call: Caller, username: str) -> tuple[str, dict[str, Any] | None]:
    """What a username is: ('channel' | 'group' | 'private' | 'not_found' | 'not_channel', chat row or None).

    A channel whose answer lacks a subscriber count is asked ``channels.getFullChannel`` for it.
    """
    try:
        answer = await call(functions.contacts.ResolveUsernameRequest(username=username))
    except (errors.UsernameNotOccupiedError, errors.UsernameInvalidError):
        return "not_found", None
    if not isinstance(answer.peer, types.PeerChannel):
        return "not_channel", None
    chat = next((c for c in answer.chats if getattr(c, "id", None) == answer.peer.channel_id), None)
    if isinstance(chat, types.ChannelForbidden):
        return "private", {"channel_id": chat.id, "username": None, "title": chat.title,
                           "megagroup": bool(chat.megagroup), "broadcast": bool(chat.broadcast),
                           "access_hash": chat.access_hash, "participants_count": None}
    row = _chat_row(chat)
    if row is None or chat is None:
        return "private", None
    row["username"] = row["username"] or username
    if row["megagroup"] and not row["broadcast"]:
        return "group", row
    if row["participants_count"] is None and row["access_hash"] is not None:
        with contextlib.suppress(errors.RPCError):
            full = await call(functions.channels.GetFullChannelRequest(
                channel=types.InputChannel(chat.id, row["access_hash"])), channel_id=chat.id)
            row["participants_count"] = getattr(full.full_chat, "participants_count", None)
    return "channel", row


# -- the run ------------------------------------------------------------------------------------------------
class _Run:
    def __init__(self, client: TelegramClient | None, archive: Archive, settings: DiscoverySettings, now: datetime,
                 report: DiscoveryReport) -> None:
        self.archive = archive
        self.settings = settings
        self.now = now
        self.report = report
        self.limited = False          # a flood wait cut the run short
        self.call = Caller(client, now, archive.active_flood_waits(now), self._flood)

    def _flood(self, request: str, seconds: int, channel_id: int | None) -> datetime:
        return self.archive.record_flood_wait(request, started_at=self.now, seconds=seconds, channel_id=channel_id,
                                              run_id=None)

    def note(self, text: str, *, limited: bool = False) -> None:
        self.limited = self.limited or limited
        if text not in self.report.notes:
            self.report.notes.append(text)

    async def recommended(self, members: Sequence[Member]) -> list[Evidence]:
        out: list[Evidence] = []
        since = self.now - self.settings.reuse
        for m in members:
            if m.channel_id is None or m.hop >= self.settings.thresholds.depth:
                continue
            key = self.archive.lookup_id(m.channel_id)
            if key is None or key.status not in (None, "active"):
                continue
            results = store.cached_call(self.archive, _RECOMMEND, channel_id=m.channel_id, query=None, since=since)
            if results is None:
                try:
                    rows, total = await recommendations(self.call, key.channel_id, key.access_hash)
                except FloodLimited as exc:
                    self.note(f"recommendations stopped: {exc}", limited=True)
                    break
                except errors.RPCError as exc:
                    store.record_call(self.archive, self.report.run_id, _RECOMMEND, channel_id=m.channel_id,
                                      query=None, now=self.now, error=exc.message)
                    continue
                store.remember_answer_chats(self.archive, rows, self.now)
                results = [{"channel_id": r["channel_id"], "message_id": None, "at": self.now} for r in rows]
                store.record_call(self.archive, self.report.run_id, _RECOMMEND, channel_id=m.channel_id, query=None,
                                  now=self.now, results=results, total=total)
            out += [Evidence("recommendation", m.channel_id, r["channel_id"], None, 1, None, r["at"])
                    for r in results]
            self.archive.release(held_for=_HOLD_SECONDS)
        return out

    async def searched(self) -> list[Evidence]:
        out: list[Evidence] = []
        since = self.now - self.settings.reuse
        for tag in self.settings.search:
            query = "#" + tag
            results = store.cached_call(self.archive, _SEARCH, channel_id=None, query=query, since=since)
            if results is None:
                try:
                    hits, chats, total = await search_hashtag(self.call, tag, pages=self.settings.search_pages,
                                                              page_size=self.settings.search_page_size)
                except FloodLimited as exc:
                    self.note(f"hashtag search stopped: {exc}", limited=True)
                    break
                except errors.RPCError as exc:
                    store.record_call(self.archive, self.report.run_id, _SEARCH, channel_id=None, query=query,
                                      now=self.now, error=exc.message)
                    self.note(f"search {query} refused by Telegram ({exc.message})")
                    continue
                store.remember_answer_chats(self.archive, chats, self.now)
                store.record_call(self.archive, self.report.run_id, _SEARCH, channel_id=None, query=query,
                                  now=self.now, results=hits, total=total)
                results = hits
            per_channel: dict[int, list[dict[str, Any]]] = {}
            for hit in results:
                per_channel.setdefault(hit["channel_id"], []).append(hit)
            for cid, items in per_channel.items():
                first = min(items, key=lambda h: (h["at"], h["message_id"]))
                out.append(Evidence("search", None, cid, None, len(items), first["message_id"], first["at"], query))
        return out

    def rank(self, evidence: list[Evidence], members: list[Member]) -> list[Candidate]:
        facts, names, failed = store.known_channels(self.archive, self.now)
        gone_ids, gone_names = removed_keys(self.archive)
        return rank_candidates(evidence, members, facts=facts, username_ids=names, resolves=failed,
                               thresholds=self.settings.thresholds, removed_ids=gone_ids, removed_names=gone_names)

    async def resolved(self, ranked: list[Candidate]) -> bool:
        """Resolve what is worth it within the budget; True when anything new was learnt."""
        names = to_resolve(ranked, self.settings.max_resolves)
        waiting = len(to_resolve(ranked, len(ranked)))
        learnt = False
        for name in names:
            try:
                outcome, row = await resolve(self.call, name)
            except FloodLimited as exc:
                self.note(f"resolving stopped: {exc}; the next discover resolves the rest", limited=True)
                break
            except errors.RPCError as exc:
                self.note(f"@{name}: Telegram refused to resolve it ({exc.message})")
                continue
            if row is not None:
                store.remember_answer_chats(self.archive, [row], self.now)
            store.record_resolve(self.archive, name, outcome, row["channel_id"] if row else None, self.now)
            learnt = True
            self.archive.release(held_for=_HOLD_SECONDS)
        if waiting > len(names):
            self.note(f"{waiting - len(names)} candidates still need resolving (at most {self.settings.max_resolves} "
                      "per run, --max-resolves); the next discover continues")
        return learnt

    def hand_on(self, ranked: list[Candidate]) -> None:
        """Passing candidates in another collector's slot: decided ``not_owned`` (the lake hands them on)."""
        owned = self.settings.ownership
        if owned is None or not owned.enforced:
            return
        others = [c for c in ranked if c.decision == "queued" and c.channel_id is not None
                  and not owned.owns(c.channel_id)]
        for c in others:
            c.decision = NOT_OWNED
        if others:
            self.note(f"{len(others)} passing candidate(s) belong to other collectors' slots: handed on through the "
                      "lake (decision not_owned)")

    def add(self, ranked: list[Candidate]) -> None:
        passing = [c for c in ranked if c.decision == "queued"]
        limit = self.settings.limit if self.settings.limit is not None else len(passing)
        chosen, rest = passing[:limit], passing[limit:]
        for c in rest:
            c.decision = "over_limit"
        found = []
        for c in chosen:
            assert c.channel_id is not None          # only channels the archive knows by id pass
            store.make_reachable(self.archive, c.channel_id, self.now)
            found.append(Discovered(c.channel_id, c.username, c.path.hop, c.path.seed_channel_id, self.report.run_id))
            c.decision = "added"
        add_discovered(self.archive, found, now=self.now)
        self.report.added = chosen


async def discover(client: TelegramClient | None, archive: Archive, settings: DiscoverySettings | None = None, *,
                   now: datetime | None = None) -> DiscoveryReport:
    """One discovery run from the collected set; records it and its ranked queue in the archive.

    ``client`` None: offline (``discover --offline``): only what the archive alone can answer (forward origins,
    t.me links and @mentions in collected posts, discussion groups it knows); no recommendations, no searches,
    no resolves, no request sent, and no credentials needed. A note in the report says what was left out.

    ``now`` stamps the run (default: the real UTC time). Raises :class:`DiscoveryError` when the set is
    empty. A flood wait makes the run ``partial``; it and a spent resolve budget are explained in
    ``report.notes``, and a later run continues.
    """
    settings = settings or DiscoverySettings()
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    members = store.set_members(archive)
    if settings.ownership is not None and settings.ownership.enforced:
        members = [m for m in members if m.channel_id is None or settings.ownership.owns(m.channel_id)]
    if not members:
        raise DiscoveryError("the collected set is empty: add seed channels with `tgspread channels add NAME...`, "
                             "collect them (`tgspread collect`), then run discover")
    run_id = store.start_run(archive, now, settings.thresholds, recommendations=settings.recommendations,
                             search=settings.search, auto=settings.auto, limit=settings.limit, members=len(members))
    report = DiscoveryReport(run_id=run_id, started_at=now, members=len(members),
                             member_names={m.channel_id: m.username for m in members if m.channel_id and m.username})
    run = _Run(client, archive, settings, now, report)     # its Caller is never called offline
    started = time.monotonic()

    def finished() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    try:
        evidence = store.archive_evidence(archive, members, depth=settings.thresholds.depth)
        if client is not None:
            if settings.recommendations:
                evidence += await run.recommended(members)
            evidence += await run.searched()
        ranked = run.rank(evidence, members)
        if client is None:
            run.note("offline: candidates from the archive alone (forwards, links and mentions in collected "
                     "posts); recommendations, searches and resolving unknown usernames wait for an online run")
        elif await run.resolved(ranked):
            ranked = run.rank(evidence, members)
        run.hand_on(ranked)
        if settings.auto:
            run.add(ranked)
        store.write_candidates(archive, run_id, ranked, now)
        report.candidates = ranked
        report.requests = dict(run.call.sent)
        report.status = "partial" if run.limited else "ok"
        store.finish_run(archive, run_id, status=report.status, finished_at=finished(), candidates=len(ranked),
                         added=len(report.added), requests=report.requests, notes=report.notes)
    except BaseException as exc:
        report.status = "failed"
        with contextlib.suppress(Exception):
            store.finish_run(archive, run_id, status="failed", finished_at=finished(), candidates=0, added=0,
                             requests=dict(run.call.sent), notes=report.notes, error=f"{type(exc).__name__}: {exc}")
        raise
    return report
