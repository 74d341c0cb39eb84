"""Simulated server handlers: channels.GetChannelRecommendations and channels.SearchPosts (issue 5).

``handlers(sender)`` maps TL request types to methods answering them from ``sender.world``; the
``SimulatedSender`` adds them to its own table when it is built.

The world has no recommendation engine, so "similar" is derived from its forward graph at ``world.now``
(:func:`similar_channels`): channel X is similar to C by the number of visible posts of either that forward
the other, plus the number of third channels both forwarded from. Only public broadcast channels are
recommended (not closed, not private, not groups, not C itself), best first, ties by subscribers then id; a
non-Premium account sees at most :data:`RECOMMENDATIONS_SHOWN`, with the full count in ``messages.chatsSlice``.

Hashtag search (:func:`search_hits`) returns visible posts of public broadcast channels whose current text
carries the hashtag (case-insensitive), newest first, paged like Telegram's global search: ``offset_rate`` (a
date), ``offset_peer`` and ``offset_id`` name the last post of the previous page; ``next_rate`` is set while
more remain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telethon.tl import functions, types

from . import tl_build
from .model import RpcFailure, SimChannel, SimMessage, is_closed

if TYPE_CHECKING:
    from .world import Sender, World

RECOMMENDATIONS_SHOWN = 10   # what Telegram shows an account without Premium
MAX_SEARCH = 100             # posts per searchPosts page at most


def _public(ch: SimChannel, t: datetime) -> bool:

    return (not ch.megagroup and ch.created_at <= t and not is_closed(ch, t) and ch.username_at(t) is not None)


def _forward_counts(world: World) -> dict[int, Counter[int]]:
    """For every channel: how many of its visible posts at ``world.now`` forward each other channel."""
    now = world.now
    out: dict[int, Counter[int]] = {}
    for cid, ch in world.channels.items():
        counts: Counter[int] = Counter()
        for m in ch.messages:
            if m.fwd is not None and m.fwd.channel_id is not None and m.fwd.channel_id != cid and m.visible_at(now):
                counts[m.fwd.channel_id] += 1
        out[cid] = counts
    return out


def similar_channels(world: World, channel_id: int, counts: dict[int, Counter[int]] | None = None
                     ) -> list[tuple[int, int]]:
    """(channel id, score) of every public channel similar to ``channel_id`` at ``world.now``, best first."""
    counts = counts if counts is not None else _forward_counts(world)
    now = world.now
    mine = counts.get(channel_id, Counter())
    scored = []
    for cid, ch in world.channels.items():
        if cid == channel_id or not _public(ch, now):
            continue
        theirs = counts.get(cid, Counter())
        shared = len((set(mine) & set(theirs)) - {cid, channel_id})
        score = mine.get(cid, 0) + theirs.get(channel_id, 0) + shared
        if score > 0:
            scored.append((cid, score, ch.participants_at(now)))
    scored.sort(key=lambda x: (-x[1], -x[2], x[0]))
    return [(cid, score) for cid, score, _ in scored]


def _has_tag(m: SimMessage, t: datetime, tag: str) -> bool:
    state = m.state_at(t)
    if not state.entities:
        return False
    data = state.text.encode("utf-16-le")
    for e in state.entities:
        if e.kind == "hashtag":
            piece = data[2 * e.offset: 2 * (e.offset + e.length)].decode("utf-16-le")
            if piece.lstrip("#＃").lower() == tag:
                return True
    return False


def search_hits(world: World, *, hashtag: str | None = None, query: str | None = None) -> list[SimMessage]:
    """Visible posts of public broadcast channels matching the hashtag (or, for ``query``, containing the
    text, case-insensitively) at ``world.now``, in Telegram's order: newest first, then channel, then id."""
    now = world.now
    tag = hashtag.lstrip("#＃").lower() if hashtag else None
    needle = query.lower() if query else None
    found = []
    for ch in world.channels.values():
        if not _public(ch, now):
            continue
        for m in ch.posts(now):
            if (tag is not None and _has_tag(m, now, tag)) or (
                    needle is not None and needle in m.state_at(now).text.lower()):
                found.append(m)
    found.sort(key=_order, reverse=True)
    return found


def _order(m: SimMessage) -> tuple[int, int, int]:
    return (int(m.posted_at.timestamp()), m.channel_id, m.message_id)


def handlers(sender: Sender) -> dict[type, Callable[[Any], Any]]:
    """The request types this module answers, each with its handler bound to ``sender``."""

    world = sender.world
    cache: dict[datetime, dict[int, Counter[int]]] = {}
    searched: dict[tuple[datetime, str | None, str | None], list[SimMessage]] = {}

    def counts() -> dict[int, Counter[int]]:
        if world.now not in cache:
            cache.clear()
            cache[world.now] = _forward_counts(world)
        return cache[world.now]

    def recommendations(req: functions.channels.GetChannelRecommendationsRequest) -> Any:
        now = world.now
        if req.channel is None:        # the account-wide list: the biggest public channels
            ranked = sorted((ch for ch in world.channels.values() if _public(ch, now)),
                            key=lambda ch: (-ch.participants_at(now), ch.channel_id))
            ids = [ch.channel_id for ch in ranked]
        else:
            ch = sender._channel(req.channel)
            ids = [cid for cid, _ in similar_channels(world, ch.channel_id, counts())]
        chats = [sender._chat(world.channels[cid]) for cid in ids[:RECOMMENDATIONS_SHOWN]]
        if len(ids) > len(chats):
            return types.messages.ChatsSlice(count=len(ids), chats=chats)
        return types.messages.Chats(chats=chats)

    def search_posts(req: functions.channels.SearchPostsRequest) -> Any:
        if bool(req.hashtag) == bool(req.query):
            raise RpcFailure(400, "SEARCH_QUERY_EMPTY")
        key = (world.now, req.hashtag, req.query)
        hits = searched.get(key)
        if hits is None:              # one scan per search and clock, not per page
            searched.clear()
            hits = searched[key] = search_hits(world, hashtag=req.hashtag, query=req.query)
        if req.offset_rate > 0:
            peer = req.offset_peer
            peer_id = getattr(peer, "channel_id", 0)
            bound = (req.offset_rate, peer_id, req.offset_id)
            hits_after = [m for m in hits if _order(m) < bound]
        else:
            hits_after = hits
        limit = 20 if req.limit <= 0 else min(req.limit, MAX_SEARCH)
        page = hits_after[:limit]
        now = world.now
        messages = []
        chats: dict[int, Any] = {}
        for m in page:
            ch = world.channels[m.channel_id]
            messages.append(tl_build.message_tl(m, ch, now, pinned_id=sender._index(ch).pinned_at(now)))
            chats.setdefault(ch.channel_id, sender._chat(ch))
            if m.fwd is not None and m.fwd.channel_id is not None and m.fwd.channel_id in world.channels:
                src = world.channels[m.fwd.channel_id]
                if src.created_at <= now:
                    chats.setdefault(src.channel_id, sender._chat(src))
        more = len(hits_after) > len(page)
        return types.messages.MessagesSlice(
            count=len(hits), messages=messages, topics=[], chats=list(chats.values()), users=[],
            next_rate=_order(page[-1])[0] if more and page else None,
            search_flood=None if req.hashtag else types.SearchPostsFlood(
                total_daily=10, remains=9, stars_amount=0, query_is_free=True),
        )

    return {
        functions.channels.GetChannelRecommendationsRequest: recommendations,
        functions.channels.SearchPostsRequest: search_posts,
    }
