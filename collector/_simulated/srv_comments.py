"""Simulated discussion groups: the comments under channel posts, and ``messages.getReplies`` answering them.

The generated world gives some channels a discussion group (``SimChannel.linked_chat_id``) and their posts
a comment counter (``SimMessage.final_replies``), but no comments. They are derived here, deterministically
from ``world.seed``, the channel id and the post id, so every run over one world sees the same comments:

* A post has exactly as many comments posted by ``t`` as its replies counter shows at ``t``: comment ``k``
  appears at the first whole second at which the counter reaches ``k``. A few are deleted later by the
  group's moderators (the simulated counter, like the rest of the model, keeps counting them; Telegram's
  would go down) and a few are edited once.
* Authors come from one pool of simulated people per world (ids, names, some usernames and phone numbers,
  everything a real answer would carry), drawn with a heavy tail so that the same people comment under many
  posts and in several channels. Some comments are sent as the channel itself, some as another public
  channel, some by an anonymous admin (the group posting as itself).
* About a third answer an earlier comment of the same post (a thread).
* The group's message ids number the posts' automatic copies (the thread roots) and all comments of the
  channel in time order, as in a real discussion group, so they are fixed whatever the clock reads.

``messages.getReplies(peer=channel, msg_id=post)`` answers with the comments visible at ``world.now`` as a
``messages.channelMessages`` holding the group's messages, the group and sender channels, and the users:
newest first, windowed by ``offset_id``/``offset_date``/``add_offset``/``limit`` and filtered by
``max_id``/``min_id`` as ``messages.getHistory`` is. A post of a channel without a discussion group, a
deleted post or an id never used is ``MSG_ID_INVALID``, as Telegram answers (Telethon issue #3841:
``MsgIdInvalidError ... caused by GetRepliesRequest`` for posts without comments).

Example::

    comments_at(world, channel_id, 42)          # ground truth: what a client could see now, ascending id
    await client(functions.messages.GetRepliesRequest(peer, 42, 0, None, 0, 100, 0, 0, 0))
"""

from __future__ import annotations

import math
import random
import weakref
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon.tl import functions, types

from . import tl_build
from .model import RpcFailure, SimChannel, SimMessage
from .world import Sender, World

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
POOL_SIZE = 300                 # simulated people per world
# Comments are built up to ``world.now`` plus this, and again when the clock passes it. Group ids number
# messages in time order, so the ids of what was built before never change.
HORIZON = timedelta(days=3)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_NAMES = ("Alex", "Maria", "Олег", "Анна", "Ahmad", "Leila", "Sam", "Ivan", "Fatima", "Chris", "Дмитрий",
                "Noor", "Jo", "Kateryna", "Omar", "Lena")
_LAST_NAMES = ("K.", "Petrov", "Smith", "Haddad", "", "Ivanova", "Novak", "Al-Amin", "", "Brown")
_EMOJI = ("👍", "❤", "🔥", "🤬", "😁")
_WORDS = ("agree", "source?", "this is fake", "thanks", "finally", "who said that", "read the thread",
          "not true", "confirmed", "wow", "why", "lol", "exactly", "same here", "link please", "🔥", "🤔", "👍",
          "согласен", "это фейк", "спасибо", "источник?", "правда", "شكرا", "صحيح", "كذب")


@dataclass(frozen=True, slots=True)
class SimUser:
    """A simulated person: everything Telegram would show of them. None of it may reach an archive."""

    user_id: int
    access_hash: int
    first_name: str
    last_name: str | None
    username: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class SimComment:
    """A comment under a channel post, living in the channel's discussion group.

    ``author`` is ``('user', user_id)``, ``('channel', channel_id)`` (sent as a channel: the post's own or
    another one) or ``('anonymous_admin', discussion_id)`` (the group posting as itself).
    ``reply_to_comment_id`` is the comment it answers, None when it answers the post.
    """

    discussion_id: int
    comment_id: int
    channel_id: int
    message_id: int
    root_id: int                        # the post's copy in the group: the thread's top message
    posted_at: datetime
    text: str
    author: tuple[str, int]
    reply_to_comment_id: int | None = None
    edited_at: datetime | None = None
    edited_text: str | None = None
    deleted_at: datetime | None = None
    reactions: tuple[tuple[str, int], ...] = ()

    def visible_at(self, t: datetime) -> bool:
        return self.posted_at <= t and (self.deleted_at is None or self.deleted_at > t)

    def text_at(self, t: datetime) -> str:
        return self.edited_text if self.edited_at is not None and self.edited_at <= t and self.edited_text \
            else self.text

    def edited_at_t(self, t: datetime) -> datetime | None:
        return self.edited_at if self.edited_at is not None and self.edited_at <= t else None


@dataclass(slots=True)
class Discussion:
    """A channel's discussion group: the thread root and comment ids of every post; the comments themselves
    are made on first use of a thread (:meth:`thread`), so a group of 10^5 comments costs little until asked."""

    channel_id: int
    discussion_id: int
    size: int                                        # len(channel.messages) it was built from
    horizon: datetime                                # holds everything posted up to here
    roots: dict[int, int] = field(default_factory=dict)
    ids: dict[int, list[int]] = field(default_factory=dict)           # post -> comment ids, ascending
    offsets: dict[int, list[int]] = field(default_factory=dict)       # post -> seconds after the post
    make: Callable[[int], list[SimComment]] | None = None
    _threads: dict[int, list[SimComment]] = field(default_factory=dict)

    def thread(self, message_id: int) -> list[SimComment]:
        """Every comment of the post up to the horizon (deleted ones too), ascending id."""
        found = self._threads.get(message_id)
        if found is None:
            found = self._threads[message_id] = self.make(message_id) if self.make and message_id in self.ids else []
        return found

    def threads(self) -> dict[int, list[SimComment]]:
        """All threads (builds every comment: for tests and small worlds)."""
        return {mid: self.thread(mid) for mid in self.ids}


# -- the people ----------------------------------------------------------------------------------------

_POOLS: dict[int, tuple[int, list[SimUser]]] = {}
_DISCUSSIONS: dict[int, dict[int, Discussion]] = {}


def _per_world(store: dict[int, Any], world: World, make: Callable[[], Any]) -> Any:
    """A cache entry dropped with the world (World is an unhashable dataclass: keyed by id, finalized)."""
    key = id(world)
    if key not in store:
        store[key] = make()
        weakref.finalize(world, store.pop, key, None)
    return store[key]


def user_pool(world: World) -> list[SimUser]:
    """The world's simulated people (``POOL_SIZE``), the same for every call on one seed.

    Ids are 10-digit numbers from 6,000,000,000 up, like user ids Telegram gives out today.
    """
    cached = _per_world(_POOLS, world, lambda: (world.seed, _make_pool(world.seed)))
    if cached[0] != world.seed:
        _POOLS[id(world)] = cached = (world.seed, _make_pool(world.seed))
    return cached[1]


def _make_pool(seed: int) -> list[SimUser]:
    rnd = random.Random(f"tgspread-sim-users:{seed}")
    ids = rnd.sample(range(6_000_000_000, 7_999_999_999), POOL_SIZE)
    out = []
    for uid in ids:
        first = rnd.choice(_FIRST_NAMES)
        last = rnd.choice(_LAST_NAMES) or None
        username = f"{first.lower() if first.isascii() else 'user'}_{rnd.randrange(10**6):06d}" \
            if rnd.random() < 0.6 else None
        phone = f"99966{rnd.randrange(10**5):05d}" if rnd.random() < 0.3 else None   # Telegram's test range
        out.append(SimUser(uid, tl_build.derived_hash(uid, salt=17), first, last, username, phone))
    return out


# -- the comments ------------------------------------------------------------------------------------------


def _grown(final: int, age_s: float, tau_s: float) -> int:
    """The model's counter growth (``model._grown``), repeated so the two can be checked against each other."""
    if age_s <= 0 or final <= 0:
        return 0
    return int(final * (1.0 - math.exp(-age_s / tau_s)))


def _first_second(final: int, tau_s: float, k: int) -> int:
    """The first whole second of age at which the counter shows ``k`` (1 <= k <= final)."""
    if k < final:
        x = -tau_s * math.log1p(-k / final)
        s = max(1, math.ceil(x))
        if 1e-6 < s - x < 1.0 - 1e-6:
            return s                       # far from a whole second: float rounding cannot move it
        while s > 1 and _grown(final, s - 1, tau_s) >= k:
            s -= 1
        while _grown(final, s, tau_s) < k:
            s += 1
        return s
    lo, hi = 0, math.ceil(30.0 * tau_s)                           # the last one: when 1 - exp(-x) rounds to 1
    while _grown(final, hi, tau_s) < k:
        lo, hi = hi, hi * 2
    while hi - lo > 1:                     # invariant: counter(lo) < k <= counter(hi)
        mid = (lo + hi) // 2
        if _grown(final, mid, tau_s) >= k:
            hi = mid
        else:
            lo = mid
    return hi


def discussion(world: World, ch: SimChannel) -> Discussion | None:
    """The discussion group of ``ch`` with every comment of its whole timeline, or None without a group."""
    if not ch.linked_chat_id or ch.megagroup:
        return None
    cache: dict[int, Discussion] = _per_world(_DISCUSSIONS, world, dict)
    found = cache.get(ch.channel_id)
    if (found is None or found.size != len(ch.messages) or found.discussion_id != ch.linked_chat_id
            or found.horizon < world.now):
        found = cache[ch.channel_id] = _build_discussion(world, ch, world.now + HORIZON)
    return found


def _senders(world: World, ch: SimChannel) -> list[int]:
    """Public broadcast channels other than ``ch`` that may comment as themselves."""
    return sorted(c.channel_id for c in world.channels.values()
                  if c.channel_id != ch.channel_id and not c.megagroup and not c.closed and c.private_from is None
                  and getattr(c, "deleted_from", None) is None)


def _build_discussion(world: World, ch: SimChannel, horizon: datetime) -> Discussion:
    """Ids for every root and comment posted up to ``horizon``, in time order (the group's numbering)."""
    assert ch.linked_chat_id is not None
    end = horizon.timestamp()
    events: list[tuple[float, int, int, int]] = []                     # (time, kind, post id, k)
    offsets: dict[int, list[int]] = {}
    for m in ch.messages:
        if m.posted_at > horizon:
            break                                  # ascending: the rest is later still
        if m.is_service:
            continue
        t0 = m.posted_at.timestamp()
        events.append((t0, 0, m.message_id, 0))
        seconds: list[int] = []
        for k in range(1, m.final_replies + 1):
            s = _first_second(m.final_replies, m.tau_s, k)
            if t0 + s > end:
                break
            seconds.append(s)
            events.append((t0 + s, 1, m.message_id, k))
        if seconds:
            offsets[m.message_id] = seconds
    events.sort()
    disc = Discussion(ch.channel_id, ch.linked_chat_id, len(ch.messages), horizon, offsets=offsets)
    for gid, (_t, kind, mid, _k) in enumerate(events, 2):             # id 1: "group created"
        if kind == 0:
            disc.roots[mid] = gid
        else:
            disc.ids.setdefault(mid, []).append(gid)
    disc.make = _thread_maker(world, ch, disc)
    return disc


def _thread_maker(world: World, ch: SimChannel, disc: Discussion) -> Callable[[int], list[SimComment]]:
    pool = user_pool(world)
    cum: list[float] = []
    total = 0.0
    for i in range(len(pool)):
        total += 1.0 / (i + 1) ** 1.1                                  # a few people comment a lot
        cum.append(total)
    others = _senders(world, ch)

    def make(message_id: int) -> list[SimComment]:
        m = ch.messages[message_id - 1]
        ids, seconds = disc.ids[message_id], disc.offsets[message_id]
        out = []
        for i, f in enumerate(_post_comments(world, ch, m, pool, cum, others, len(ids))):
            answers = f.pop("answers")
            posted = m.posted_at + timedelta(seconds=seconds[i])
            if "edit_after" in f:
                f["edited_at"] = posted + timedelta(seconds=f.pop("edit_after"))
            if "delete_after" in f:
                f["deleted_at"] = posted + timedelta(seconds=f.pop("delete_after"))
            out.append(SimComment(
                discussion_id=disc.discussion_id, comment_id=ids[i], channel_id=ch.channel_id, message_id=message_id,
                root_id=disc.roots[message_id], posted_at=posted,
                reply_to_comment_id=ids[answers - 1] if answers else None, **f))
        return out

    return make


def _post_comments(world: World, ch: SimChannel, m: SimMessage, pool: Sequence[SimUser], cum: list[float],
                   others: list[int], n: int) -> list[dict[str, Any]]:
    """The first ``n`` comments of one post in the order they appear (SimComment fields but the ids and time;
    ``answers``: the number k of the comment answered, 0 for the post). The same for any ``n``."""
    rnd = random.Random(f"tgspread-sim-comments:{world.seed}:{ch.channel_id}:{m.message_id}").random
    assert ch.linked_chat_id is not None
    out: list[dict[str, Any]] = []
    words, n_words, n_others, top = _WORDS, len(_WORDS), len(others), cum[-1]
    for k in range(1, n + 1):
        r = rnd()
        author: tuple[str, int]
        if r < 0.07:
            author = ("channel", ch.channel_id)
        elif r < 0.10:
            author = ("anonymous_admin", ch.linked_chat_id)
        elif r < 0.12 and others:
            author = ("channel", others[int(rnd() * n_others)])
        else:
            author = ("user", pool[min(len(pool) - 1, bisect_left(cum, rnd() * top))].user_id)
        text = " ".join(words[int(rnd() * n_words)] for _ in range(1 + int(rnd() * 6)))
        fields: dict[str, Any] = {"text": text, "author": author,
                                  "answers": 1 + int(rnd() * (k - 1)) if k > 1 and rnd() < 0.3 else 0}
        r = rnd()
        if r < 0.1:
            fields["edit_after"] = 30 + int(rnd() * 3600)
            fields["edited_text"] = text + " (upd)"
        elif r < 0.14:
            fields["delete_after"] = 600 + int(rnd() * 3 * 86400)
        if rnd() < 0.3:
            first = int(rnd() * len(_EMOJI))
            fields["reactions"] = tuple(sorted({_EMOJI[first]: 1 + int(rnd() * 25),
                                                _EMOJI[(first + 1) % len(_EMOJI)]: 1 + int(rnd() * 5)}.items()))
        out.append(fields)
    return out


def comments_at(world: World, channel_id: int, message_id: int, at: datetime | None = None) -> list[SimComment]:
    """The comments under a post that a client could see at ``at`` (default ``world.now``), ascending id.

    Empty for a channel without a discussion group or a post without comments; the post's own visibility
    is not checked (the server answers MSG_ID_INVALID for a deleted post).
    """
    ch = world.channels.get(channel_id)
    disc = discussion(world, ch) if ch is not None else None
    if disc is None:
        return []
    t = world.now if at is None else at
    return [c for c in disc.thread(message_id) if c.visible_at(t)]


# -- the window (pure) ---------------------------------------------------------------------------------


def thread_window(ids: Sequence[int], dates: Sequence[datetime], *, offset_id: int, offset_date: datetime | None,
                  add_offset: int, limit: int, max_id: int, min_id: int) -> list[int]:
    """The ids a ``messages.getReplies`` page holds, newest first, for a thread ``ids`` (ascending, with
    ``dates`` ascending alongside).

    Telegram's rule (core.telegram.org/api/offsets), as for the history: newest first, the slice
    ``[offset + add_offset, offset + add_offset + limit)`` where ``offset`` counts the messages with an id
    ``>= offset_id`` (or dated ``>= offset_date``); the part outside the list is dropped; ``max_id`` and
    ``min_id`` then filter strictly.

    >>> thread_window([3, 5, 8, 9], [_EPOCH] * 4, offset_id=6, offset_date=None, add_offset=-1, limit=2,
    ...               max_id=0, min_id=0)
    [8, 5]
    """
    n = len(ids)
    if offset_id > 0:
        offset = n - bisect_left(ids, offset_id)
    elif offset_date is not None and offset_date > _EPOCH:
        offset = n - bisect_left(dates, offset_date)
    else:
        offset = 0
    start, end = max(0, offset + add_offset), max(0, offset + add_offset + limit)
    newest_first = ids[::-1]
    out = list(newest_first[start:end])
    if max_id > 0:
        out = [i for i in out if i < max_id]
    if min_id > 0:
        out = [i for i in out if i > min_id]
    return out


# -- the handler ----------------------------------------------------------------------------------------


def _user_tl(u: SimUser) -> types.User:
    return types.User(id=u.user_id, access_hash=u.access_hash, first_name=u.first_name, last_name=u.last_name,
                      username=u.username, phone=u.phone)


def _comment_tl(c: SimComment, t: datetime) -> types.Message:
    kind, author_id = c.author
    from_id: types.TypePeer = types.PeerUser(author_id) if kind == "user" else types.PeerChannel(author_id)
    if c.reply_to_comment_id is not None:
        reply = types.MessageReplyHeader(reply_to_msg_id=c.reply_to_comment_id, reply_to_top_id=c.root_id)
    else:
        reply = types.MessageReplyHeader(reply_to_msg_id=c.root_id)
    return types.Message(
        id=c.comment_id, peer_id=types.PeerChannel(c.discussion_id), date=c.posted_at, message=c.text_at(t),
        from_id=from_id, reply_to=reply, edit_date=c.edited_at_t(t), reactions=tl_build.reactions_tl(c.reactions),
        post_author="Admin" if kind == "anonymous_admin" else None,
    )


def handlers(sender: Sender) -> dict[type, Callable[[Any], Any]]:
    """The request types this module answers, each with its handler bound to ``sender``."""

    def get_replies(req: functions.messages.GetRepliesRequest) -> types.messages.ChannelMessages:
        world = sender.world
        ch = sender._channel(req.peer)
        now = world.now
        msg = world.message(ch.channel_id, req.msg_id)
        disc = discussion(world, ch)
        if (msg is None or msg.is_service or not msg.visible_at(now) or msg.message_id <= ch.available_min_id
                or disc is None):
            raise RpcFailure(400, "MSG_ID_INVALID")
        thread = [c for c in disc.thread(msg.message_id) if c.visible_at(now)]
        limit = DEFAULT_LIMIT if req.limit <= 0 else min(req.limit, MAX_LIMIT)
        ids = thread_window([c.comment_id for c in thread], [c.posted_at for c in thread], offset_id=req.offset_id,
                            offset_date=req.offset_date, add_offset=req.add_offset, limit=limit,
                            max_id=req.max_id, min_id=req.min_id)
        by_id = {c.comment_id: c for c in thread}
        page = [by_id[i] for i in ids]
        linked = world.channels.get(disc.discussion_id)
        chats: dict[int, Any] = {disc.discussion_id: sender._chat(linked) if linked is not None
                                 else tl_build.linked_chat_stub_tl(ch), ch.channel_id: sender._chat(ch)}
        people = {u.user_id: u for u in user_pool(world)}
        users: dict[int, types.User] = {}
        for c in page:
            kind, author_id = c.author
            if kind == "user":
                users[author_id] = _user_tl(people[author_id])
            elif author_id not in chats:
                sender_ch = world.channels.get(author_id)
                if sender_ch is not None:
                    chats[author_id] = sender._chat(sender_ch)
        return types.messages.ChannelMessages(
            pts=max(1, disc.size), count=len(thread), messages=[_comment_tl(c, now) for c in page], topics=[],
            chats=list(chats.values()), users=list(users.values()),
        )

    return {functions.messages.GetRepliesRequest: get_replies}
