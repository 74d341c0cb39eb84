"""The simulated Telegram server behind a real ``TelegramClient``: decode a request, answer it, encode it.

:class:`SimulatedSender` takes the place of Telethon's ``MTProtoSender`` (``client._sender``). Telethon calls
``send(request)`` and awaits the returned future; everything above the socket (entity cache, paging,
flood-wait sleeping and raising, error classes) runs for real. Each request is handled as a server would:

1. serialise it (``bytes(request)``) and parse the bytes back with ``BinaryReader.tgread_object()``;
2. unwrap ``invokeWithLayer`` / ``invokeWithoutUpdates`` / ``initConnection`` / takeout wrappers;
3. count it in ``world.requests`` under its TL name (``'messages.GetHistory'``);
4. refuse it while its flood wait lasts, or when an injected :class:`~collector._simulated.model.Fault` fires;
5. answer from the world at ``world.now``, serialise the answer and let the request parse it
   (``request.read_result``), or turn the error into Telethon's exception class.

Server state that must outlive one client (flood deadlines, request counts, faults) lives in the ``World``.

Example::

    sender = SimulatedSender(world)
    client._sender = sender              # see collector._simulated.simulated_client
    await client(functions.channels.GetFullChannelRequest(InputChannel(cid, access_hash)))
"""

from __future__ import annotations

import asyncio
import math
import re
import struct
import time
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import errors, utils
from telethon.crypto import AuthKey
from telethon.extensions import BinaryReader
from telethon.tl import TLObject, TLRequest, functions, types

from collector._telegram.calls import request_name

from . import tl_build
from .model import Fault, RpcFailure, SimChannel, SimMessage, is_closed
from .world import World

MAX_LIMIT = 100          # messages.getHistory returns at most 100 messages per call
MAX_IDS = 100            # channels.getMessages / messages.getMessagesViews take at most 100 ids
# More is refused with MESSAGE_IDS_TOO_MANY (a name of ours: Telegram's LIMIT_INVALID maps to a Telethon
# class whose text talks about file downloads, which would mislead whoever reads the log).
DEFAULT_LIMIT = 20       # "when 0 is provided the limit will often default to ~20" (core.telegram.org/api/offsets)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_VECTOR = struct.pack("<I", 0x1CB5C415)
_BOOL_TRUE = struct.pack("<I", 0x997275B5)
_BOOL_FALSE = struct.pack("<I", 0xBC799737)

# Requests that only carry another request in ``query``: a server runs the inner one.
_WRAPPERS: tuple[type[TLRequest], ...] = (
    functions.InvokeWithLayerRequest,
    functions.InvokeWithoutUpdatesRequest,
    functions.InitConnectionRequest,
    functions.InvokeWithTakeoutRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
    functions.InvokeWithMessagesRangeRequest,
)

# Basic usernames are 5-32 characters of a-z, 0-9 and "_" (core.telegram.org, account.updateUsername);
# collectible (Fragment) usernames may be as short as 4. Telethon's own check adds: starts with a letter,
# no "__", does not end with "_". Anything else is USERNAME_INVALID.
_USERNAME_RE = re.compile(r"^[A-Za-z](?:(?!__)[A-Za-z0-9_]){2,30}[A-Za-z0-9]$")


# -- per-channel indexes (O(n) once, then O(log n) per request) ----------------------------------


@dataclass(slots=True)
class _ChannelIndex:
    """Facts about a channel that would otherwise need a scan of all its messages on every request.

    Built on first use and rebuilt when the channel's message list or ``available_min_id`` changes. Like
    the rest of the model, records are treated as fixed: a ``deleted_at`` edited in place after the
    channel was first served is not seen by ``count`` (the history itself always reads the records).
    """

    channel: SimChannel
    size: int
    available_min_id: int
    deletions: list[datetime]          # sorted deletion times of ids > available_min_id
    pins: list[tuple[datetime, int]]   # (pin service message date, pinned id), ascending

    @classmethod
    def build(cls, ch: SimChannel) -> _ChannelIndex:
        deletions: list[datetime] = []
        pins: list[tuple[datetime, int]] = []
        amin = ch.available_min_id
        lazy_deletions = getattr(ch.messages, "deletions", None)
        if callable(lazy_deletions):
            # a lazy huge channel (benchmarks) knows its deletions without building a million messages
            # and has no pins; deleted_at >= posted_at there by construction
            deletions = sorted(t for mid, t in lazy_deletions().items() if mid > amin)
            return cls(ch, len(ch.messages), amin, deletions, pins)
        for m in ch.messages:
            if m.deleted_at is not None and m.message_id > amin:
                deletions.append(max(m.deleted_at, m.posted_at))
            if m.action == "pin" and m.pinned_message_id:
                pins.append((m.posted_at, m.pinned_message_id))
        deletions.sort()
        return cls(ch, len(ch.messages), amin, deletions, pins)

    def valid_for(self, ch: SimChannel) -> bool:
        return self.channel is ch and self.size == len(ch.messages) and self.available_min_id == ch.available_min_id

    def count(self, top: int, t: datetime) -> int:
        """Messages in the history at ``t``: ids in (available_min_id, top] not deleted by ``t``."""
        return max(0, top - self.available_min_id - bisect_right(self.deletions, t))

    def pinned_at(self, t: datetime) -> int | None:
        i = bisect_right(self.pins, (t, math.inf)) - 1
        return self.pins[i][1] if i >= 0 else None


# Keyed by id(world) and dropped with the world, so a new client per pass reuses them. (World is an
# unhashable dataclass, so a WeakKeyDictionary cannot hold it; weakref.finalize can.)
_INDEXES: dict[int, dict[int, _ChannelIndex]] = {}


def _indexes_for(world: World) -> dict[int, _ChannelIndex]:
    key = id(world)
    found = _INDEXES.get(key)
    if found is None:
        found = _INDEXES[key] = {}
        weakref.finalize(world, _INDEXES.pop, key, None)
    return found


# -- getHistory windowing (pure) -----------------------------------------------------------------


def history_window(
    listed: Callable[[int], bool],
    *,
    top: int,
    floor: int,
    boundary: int,
    add_offset: int,
    limit: int,
    max_id: int,
    min_id: int,
) -> list[int]:
    """Message ids ``messages.getHistory`` returns, newest first, without materialising the history.

    Telegram's rule (core.telegram.org/api/offsets): the history is the list of messages, newest first;
    the slice taken is ``[offset + add_offset, offset + add_offset + limit)`` where ``offset`` is the number
    of messages newer than the offset (``id >= offset_id``, or ``date >= offset_date``); the part of the
    slice outside the list is dropped, not refilled. ``max_id``/``min_id`` then filter the slice (strict).

    ``boundary`` is the newest id at or after position ``offset`` (ids above it are the newer messages),
    ``floor`` the highest id never listed (``available_min_id``), ``listed(i)`` whether an id in
    ``(floor, top]`` is in the history (not deleted). Cost: O(|add_offset| + limit + skipped gaps).

    >>> history_window(lambda i: True, top=10, floor=0, boundary=4, add_offset=-3, limit=3, max_id=0, min_id=0)
    [7, 6, 5]
    """
    newer: list[int] = []                      # ascending: newer[j] sits j + 1 places above ``offset``
    want_up = max(0, -add_offset)
    i = max(boundary + 1, floor + 1)
    while len(newer) < want_up and i <= top:
        if listed(i):
            newer.append(i)
        i += 1
    start, end = add_offset, add_offset + limit  # relative to ``offset``
    out = [newer[j - 1] for j in range(len(newer), 0, -1) if start <= -j < end]
    skip = max(0, start)
    take = end - skip
    i = min(boundary, top)
    while take > 0 and i > floor and i > min_id:
        if listed(i):
            if skip:
                skip -= 1
            else:
                out.append(i)
                take -= 1
        i -= 1
    if max_id > 0:
        out = [m for m in out if m < max_id]
    if min_id > 0:
        out = [m for m in out if m > min_id]
    return out


# -- the sender ----------------------------------------------------------------------------------


class SimulatedSender:
    """A stand-in for Telethon's ``MTProtoSender`` that answers from a :class:`World`.

    Only the parts of the sender interface that ``TelegramClient`` uses once connected are provided:
    ``send``, ``is_connected``, ``disconnect``, ``disconnected``, ``auth_key``. ``connect`` must never
    be reached (the client is never connected); it raises to make a wrong setup obvious.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.auth_key = AuthKey(None)
        self.dc_id = 2
        self._connection = None
        self._user_connected = True
        self._disconnected: asyncio.Future[None] | None = None
        # A client that really slept out a flood wait has served it even though world.now has not moved:
        # name -> (the world deadline it served, monotonic time when it is served).
        self._served: dict[str, tuple[datetime, float]] = {}
        self._drop_answer = False      # set by a DROP_ANSWER fault: lose the answer of the request in hand
        self._handlers: dict[type, Callable[[Any], Any]] = {
            functions.contacts.ResolveUsernameRequest: self._resolve_username,
            functions.channels.GetChannelsRequest: self._get_channels,
            functions.channels.GetFullChannelRequest: self._get_full_channel,
            functions.messages.GetHistoryRequest: self._get_history,
            functions.channels.GetMessagesRequest: self._get_messages,
            functions.messages.GetMessagesViewsRequest: self._get_messages_views,
            functions.users.GetUsersRequest: self._get_users,
            functions.updates.GetStateRequest: self._get_state,
        }
        from . import srv_comments, srv_discovery, srv_media  # they import this module

        for module in (srv_discovery, srv_comments, srv_media):
            self._handlers.update(module.handlers(self))

    # -- what TelegramClient touches ------------------------------------------------------------
    def is_connected(self) -> bool:
        return self._user_connected

    async def connect(self, *args: object, **kwargs: object) -> bool:
        raise RuntimeError("a simulated client is never connected: build it with simulated_client(world)")

    async def disconnect(self) -> None:
        self._user_connected = False
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(None)

    @property
    def disconnected(self) -> asyncio.Future[None]:
        if self._disconnected is None:
            self._disconnected = asyncio.get_running_loop().create_future()
            if not self._user_connected:
                self._disconnected.set_result(None)
        return self._disconnected

    def send(self, request: Any, ordered: bool = False) -> asyncio.Future[Any] | list[asyncio.Future[Any]]:
        """Answer ``request`` (or each request of a container list) now; return futures holding the result."""
        if not self._user_connected:
            raise ConnectionError("Cannot send requests while disconnected")
        if utils.is_list_like(request):
            return [self._send_one(r) for r in request]
        return self._send_one(request)

    # -- one request ------------------------------------------------------------------------------
    def _send_one(self, request: TLRequest) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            answer = self.answer_bytes(bytes(request))
            future.set_result(request.read_result(BinaryReader(answer)))
        except RpcFailure as e:
            rpc = types.RpcError(error_code=e.code, error_message=e.message)
            future.set_exception(errors.rpc_message_to_error(rpc, request))
        except ConnectionError as e:
            future.set_exception(e)
        return future

    def answer_bytes(self, data: bytes) -> bytes:
        """The server side: TL request bytes in, TL answer bytes out (raises RpcFailure/ConnectionError)."""
        query = BinaryReader(data).tgread_object()
        while isinstance(query, _WRAPPERS):
            query = query.query
        name = request_name(query)
        self.world.requests[name] += 1
        self._drop_answer = False
        self._gate(name)
        handler = self._handlers.get(type(query))
        if handler is None:
            raise RpcFailure(400, "METHOD_NOT_SIMULATED_" + name.upper().replace(".", "_"))
        answer = _encode(handler(query))
        if self._drop_answer:
            self._drop_answer = False
            raise ConnectionError(f"simulated connection drop while the answer to {name} was in flight")
        return answer

    # -- flood waits and faults -------------------------------------------------------------------
    def _gate(self, name: str) -> None:
        world = self.world
        remaining = self._flood_remaining(name)
        if remaining > 0:
            raise RpcFailure(420, f"FLOOD_WAIT_{remaining}")
        for fault in world.faults:
            if fault.matches(name) and fault.should_fire():
                self._fire(fault, name)
        rate_wait = getattr(world, "rate_wait", None)     # a simulated Account's own limits (account.py)
        if rate_wait is not None:
            seconds = rate_wait(name)
            if seconds:
                self._fire(Fault("FLOOD_WAIT", seconds=seconds), name)

    def _flood_remaining(self, name: str) -> int:
        """Seconds left of ``name``'s flood wait: the world's deadline vs ``world.now``, unless this client
        already waited it out in real time (Telethon sleeps short waits, world.now stays put meanwhile)."""
        until = self.world.flood_until.get(name)
        if until is None:
            return 0
        remaining = math.ceil((until - self.world.now).total_seconds())
        served = self._served.get(name)
        if remaining <= 0 or (served is not None and served[0] == until and time.monotonic() >= served[1]):
            del self.world.flood_until[name]
            self._served.pop(name, None)
            return 0
        if served is None or served[0] != until:
            # 50 ms of slack: asyncio.sleep(s) may wake a hair early on a coarse clock.
            self._served[name] = (until, time.monotonic() + remaining - 0.05)
        return remaining

    def _fire(self, fault: Fault, name: str) -> None:
        error = fault.error.upper()
        if error == "FLOOD_WAIT":
            self.world.flood_until[name] = self.world.now + timedelta(seconds=fault.seconds)
            self._served.pop(name, None)
            self._flood_remaining(name)   # start the real-time clock of this wait
            raise RpcFailure(420, f"FLOOD_WAIT_{fault.seconds}")
        if error == "DISCONNECT":
            # What Telethon's sender raises to a waiting request when reconnecting fails.
            raise ConnectionError(f"simulated disconnect during {name}")
        if error == "DROP_ANSWER":
            self._drop_answer = True      # carried out by the server; answer_bytes loses the answer
            return
        if error == "RPC_CALL_FAIL":
            raise RpcFailure(500, "RPC_CALL_FAIL")
        if error == "INTERNAL":
            raise RpcFailure(500, "INTERNAL")
        raise RpcFailure(400, error)   # any other Telegram error name, e.g. Fault("CHANNEL_PRIVATE")

    # -- access -----------------------------------------------------------------------------------
    def _channel(self, peer: Any) -> SimChannel:
        """The channel an InputChannel/InputPeerChannel names, checked like Telegram checks it."""
        if isinstance(peer, types.InputChannel | types.InputPeerChannel):
            ch = self.world.channels.get(peer.channel_id)
            if ch is None or ch.access_hash != peer.access_hash or ch.created_at > self.world.now \
                    or ch.is_deleted_at(self.world.now):
                raise RpcFailure(400, "CHANNEL_INVALID")
            if is_closed(ch, self.world.now):
                raise RpcFailure(406, "CHANNEL_PRIVATE")
            return ch
        if isinstance(peer, types.InputChannelEmpty | types.InputPeerEmpty):
            raise RpcFailure(400, "CHANNEL_INVALID")
        raise RpcFailure(400, "PEER_ID_INVALID")

    def _index(self, ch: SimChannel) -> _ChannelIndex:
        indexes = _indexes_for(self.world)
        idx = indexes.get(ch.channel_id)
        if idx is None or not idx.valid_for(ch):
            idx = indexes[ch.channel_id] = _ChannelIndex.build(ch)
        return idx

    def _chat(self, ch: SimChannel) -> types.Channel | types.ChannelForbidden:
        return tl_build.channel_tl(ch, self.world.now, forbidden=is_closed(ch, self.world.now))

    # -- handlers ---------------------------------------------------------------------------------
    def _resolve_username(self, req: functions.contacts.ResolveUsernameRequest) -> types.contacts.ResolvedPeer:
        name = req.username
        if not _USERNAME_RE.match(name):
            raise RpcFailure(400, "USERNAME_INVALID")
        if name.lower() in {m.lower().lstrip("@") for m in self.world.missing_usernames}:
            raise RpcFailure(400, "USERNAME_NOT_OCCUPIED")
        ch = self.world.channel_by_username(name)
        if ch is None or ch.created_at > self.world.now:
            raise RpcFailure(400, "USERNAME_NOT_OCCUPIED")
        return types.contacts.ResolvedPeer(peer=types.PeerChannel(ch.channel_id), chats=[self._chat(ch)], users=[])

    def _get_channels(self, req: functions.channels.GetChannelsRequest) -> types.messages.Chats:
        if len(req.id) > MAX_IDS:
            raise RpcFailure(400, "CHANNEL_IDS_TOO_MANY")
        return types.messages.Chats(chats=[self._chat(self._channel(c)) for c in req.id])

    def _get_full_channel(self, req: functions.channels.GetFullChannelRequest) -> types.messages.ChatFull:
        ch = self._channel(req.channel)
        now = self.world.now
        full = tl_build.channel_full_tl(ch, now, pinned_msg_id=self._index(ch).pinned_at(now),
                                        pts=max(1, ch.top_id(now)))
        chats: list[Any] = [self._chat(ch)]
        if ch.linked_chat_id:
            linked = self.world.channels.get(ch.linked_chat_id)
            chats.append(self._chat(linked) if linked is not None else tl_build.linked_chat_stub_tl(ch))
        return types.messages.ChatFull(full_chat=full, chats=chats, users=[])

    def _get_history(self, req: functions.messages.GetHistoryRequest) -> types.messages.ChannelMessages:
        ch = self._channel(req.peer)
        now = self.world.now
        top = ch.top_id(now)
        if req.offset_id > 0:
            boundary = req.offset_id - 1
        elif req.offset_date is not None and req.offset_date > _EPOCH:
            boundary = bisect_left(ch.messages, req.offset_date, key=_posted_at)   # ids dated < offset_date
        else:
            boundary = top
        limit = DEFAULT_LIMIT if req.limit <= 0 else min(req.limit, MAX_LIMIT)
        ids = history_window(
            _listed_fn(ch, now), top=top, floor=ch.available_min_id, boundary=boundary,
            add_offset=req.add_offset, limit=limit, max_id=req.max_id, min_id=req.min_id,
        )
        idx = self._index(ch)
        return self._messages_answer(ch, [ch.messages[i - 1] for i in ids], idx.count(top, now), top)

    def _get_messages(self, req: functions.channels.GetMessagesRequest) -> types.messages.ChannelMessages:
        ch = self._channel(req.channel)
        if not req.id:
            raise RpcFailure(400, "MESSAGE_IDS_EMPTY")
        if len(req.id) > MAX_IDS:
            raise RpcFailure(400, "MESSAGE_IDS_TOO_MANY")
        now = self.world.now
        visible = _visible_fn(ch, now)
        found: list[SimMessage | int] = []
        for item in req.id:
            if isinstance(item, types.InputMessageID):
                wanted = item.id
            elif isinstance(item, types.InputMessagePinned):
                wanted = self._index(ch).pinned_at(now) or 0
            elif isinstance(item, types.InputMessageReplyTo) and visible(item.id):
                replied = ch.messages[item.id - 1]     # a reply to another channel's post names none here
                wanted = (replied.reply_to_message_id or 0) if replied.reply_to_peer_id is None else 0
            else:
                wanted = 0
            found.append(ch.messages[wanted - 1] if visible(wanted) else wanted)
        return self._messages_answer(ch, found, len(found), ch.top_id(now))

    def _get_messages_views(self, req: functions.messages.GetMessagesViewsRequest) -> types.messages.MessageViews:
        if req.increment:
            raise RpcFailure(400, "VIEWS_INCREMENT_REFUSED_A_RESEARCH_TOOL_MUST_NOT_INFLATE_VIEWS")
        ch = self._channel(req.peer)
        if len(req.id) > MAX_IDS:
            raise RpcFailure(400, "MESSAGE_IDS_TOO_MANY")
        now = self.world.now
        visible = _visible_fn(ch, now)
        views = [
            tl_build.message_views_tl(ch.messages[i - 1], ch, now) if visible(i) else types.MessageViews()
            for i in req.id
        ]
        return types.messages.MessageViews(views=views, chats=[self._chat(ch)], users=[])

    def _get_users(self, req: functions.users.GetUsersRequest) -> list[types.User]:
        out = []
        for u in req.id:
            if isinstance(u, types.InputUserSelf) or (
                isinstance(u, types.InputUser) and u.user_id == tl_build.SELF_USER_ID
            ):
                out.append(tl_build.self_user_tl())
            elif isinstance(u, types.InputUser) and u.access_hash == tl_build.derived_hash(u.user_id, salt=5):
                out.append(tl_build.bot_user_tl(u.user_id))   # a via-bot this server handed out
        return out

    def _get_state(self, req: functions.updates.GetStateRequest) -> types.updates.State:
        return types.updates.State(pts=1, qts=0, date=self.world.now, seq=0, unread_count=0)

    # -- answers ----------------------------------------------------------------------------------
    def _messages_answer(
        self, ch: SimChannel, found: list[SimMessage | int] | list[SimMessage], count: int, top: int
    ) -> types.messages.ChannelMessages:
        """messages.channelMessages for ``found`` (records, or bare ids that come back as MessageEmpty),
        with the channel, every channel a forward on the page names, and every via-bot."""
        now = self.world.now
        pinned = self._index(ch).pinned_at(now)
        messages: list[Any] = []
        sources: dict[int, None] = {}
        bots: dict[int, None] = {}
        for m in found:
            if isinstance(m, int):
                messages.append(tl_build.message_empty_tl(ch.channel_id, m))
                continue
            messages.append(_Raw(tl_build.message_bytes(m, ch, now, pinned_id=pinned)))
            if m.fwd is not None and m.fwd.channel_id is not None and m.fwd.channel_id != ch.channel_id:
                sources[m.fwd.channel_id] = None
            if m.via_bot_id:
                bots[m.via_bot_id] = None
        chats: list[Any] = [self._chat(ch)]
        for cid in sources:
            src = self.world.channels.get(cid)
            if src is not None and src.created_at <= now:
                chats.append(self._chat(src))
        return types.messages.ChannelMessages(
            pts=max(1, top), count=count, messages=messages, topics=[], chats=chats,
            users=[tl_build.bot_user_tl(b) for b in bots],
        )


class _Raw(TLObject):
    """An already serialised TL object inside a Telethon object being serialised (only ``_bytes`` is used)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _bytes(self) -> bytes:
        return self.data


def _posted_at(m: SimMessage) -> datetime:
    return m.posted_at


def _visible_fn(ch: SimChannel, t: datetime) -> Callable[[int], bool]:
    """``visible(i)`` for any id: in the history at ``t`` (posted, not deleted, above available_min_id)."""
    top = ch.top_id(t)
    floor = ch.available_min_id
    listed = _listed_fn(ch, t)

    def visible(i: int) -> bool:
        return floor < i <= top and listed(i)

    return visible


def _listed_fn(ch: SimChannel, t: datetime) -> Callable[[int], bool]:
    """``listed(i)`` for ids already known to be in ``(available_min_id, top_id(t)]``: not deleted by ``t``."""
    messages = ch.messages

    def listed(i: int) -> bool:
        d = messages[i - 1].deleted_at
        return d is None or d > t

    return listed


def _encode(answer: Any) -> bytes:
    """TL bytes of an answer: objects as themselves, lists as vectors, booleans as boolTrue/boolFalse."""
    if answer is True:
        return _BOOL_TRUE
    if answer is False:
        return _BOOL_FALSE
    if isinstance(answer, list):
        return b"".join((_VECTOR, struct.pack("<i", len(answer)), *(bytes(x) for x in answer)))
    return bytes(answer)
