"""The simulated world's data model: channels and messages whose visible state is a pure function of time.

Everything a simulated Telegram would answer at a moment ``t`` is derived from these records, so the
world never needs to be "stepped": ``World.now`` moves and the answers change (new posts appear, counters
grow, edits and deletions take effect). Tests use the same records as ground truth.

Example::

    msg.state_at(t).views       # the view counter Telegram would show at t
    msg.visible_at(t)           # posted and not yet deleted at t
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Entity:
    """A message entity. ``offset``/``length`` count UTF-16 code units, as Telegram does.

    ``kind`` is one of ``hashtag``, ``url``, ``text_url``, ``mention``, ``bold``, ``custom_emoji``;
    ``url`` is set for ``text_url``.
    """

    kind: str
    offset: int
    length: int
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Version:
    """One text of a message: the original (``edited_at`` None) or an edit, effective from ``effective_at``."""

    effective_at: datetime
    edited_at: datetime | None
    text: str
    entities: tuple[Entity, ...] = ()


@dataclass(frozen=True, slots=True)
class Media:
    """Media attached to a post. ``kind``: photo, video, document, audio, voice, webpage, poll."""

    kind: str
    media_id: int
    mime: str | None = None
    size: int | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    filename: str | None = None
    url: str | None = None        # webpage
    title: str | None = None      # webpage


@dataclass(frozen=True, slots=True)
class SimForward:
    """The forward header: always the first source. Hidden senders have ids None and a ``from_name``."""

    channel_id: int | None
    message_id: int | None
    posted_at: datetime
    from_name: str | None = None
    post_author: str | None = None


@dataclass(frozen=True, slots=True)
class MessageState:
    """What Telegram shows of a message at one moment."""

    text: str
    entities: tuple[Entity, ...]
    edited_at: datetime | None
    views: int
    forwards: int
    replies: int
    reactions: tuple[tuple[str, int], ...]   # (emoji or 'custom:<id>', count), counts > 0 only

    @property
    def reactions_total(self) -> int:
        return sum(c for _, c in self.reactions)


def _grown(final: int, age_s: float, tau_s: float) -> int:
    """A counter that grows from 0 towards ``final`` with time constant ``tau_s``; monotonic in age."""
    if age_s <= 0 or final <= 0:
        return 0
    return int(final * (1.0 - math.exp(-age_s / tau_s)))


@dataclass(slots=True)
class SimMessage:
    """A channel message over its whole life. ``action`` set means a service message (not a post)."""

    channel_id: int
    message_id: int
    posted_at: datetime
    versions: list[Version]
    action: str | None = None               # 'channel_create', 'pin', ...: service message
    deleted_at: datetime | None = None
    grouped_id: int | None = None
    media: Media | None = None
    fwd: SimForward | None = None
    reply_to_message_id: int | None = None
    reply_to_peer_id: int | None = None     # set: reply_to_message_id is a post of this other channel
    post_author: str | None = None
    via_bot_id: int | None = None
    noforwards: bool = False
    restriction_reason: tuple[tuple[str, str, str], ...] = ()   # (platform, reason, text)
    factcheck: str | None = None
    pinned_message_id: int | None = None    # for action == 'pin'
    final_views: int = 0
    final_forwards: int = 0
    final_replies: int = 0
    final_reactions: tuple[tuple[str, int], ...] = ()
    tau_s: float = 6 * 3600.0               # growth time constant of all counters

    @property
    def is_service(self) -> bool:
        return self.action is not None

    def visible_at(self, t: datetime) -> bool:
        """Posted at or before ``t`` and not deleted by then."""
        return self.posted_at <= t and (self.deleted_at is None or self.deleted_at > t)

    def version_at(self, t: datetime) -> Version:
        current = self.versions[0]
        for v in self.versions[1:]:
            if v.effective_at <= t:
                current = v
        return current

    def state_at(self, t: datetime) -> MessageState:
        v = self.version_at(t)
        age = (t - self.posted_at).total_seconds()
        reactions = tuple(
            (r, n) for r, n in ((r, _grown(c, age, self.tau_s)) for r, c in self.final_reactions) if n > 0
        )
        return MessageState(
            text=v.text,
            entities=v.entities,
            edited_at=v.edited_at,
            views=_grown(self.final_views, age, self.tau_s),
            forwards=_grown(self.final_forwards, age, self.tau_s),
            replies=_grown(self.final_replies, age, self.tau_s),
            reactions=reactions,
        )


@dataclass(slots=True)
class SimChannel:
    """A channel. ``private_from``: from then on it is closed to us (CHANNEL_PRIVATE), username gone.

    ``usernames`` is the username history as (effective_from, username); the last one effective at ``t``
    is the current username. ``megagroup`` channels are public groups, not broadcast channels.
    """

    channel_id: int
    access_hash: int
    title: str
    about: str
    created_at: datetime
    usernames: list[tuple[datetime, str]]
    base_participants: int
    participants_per_day: float
    megagroup: bool = False
    private_from: datetime | None = None
    linked_chat_id: int | None = None
    available_min_id: int = 0
    # Every message id ever used, posts and service messages, deleted ones included, so that
    # ``messages[i].message_id == i + 1`` always holds and ``posted_at`` ascends with the id.
    # A huge channel may hold a lazy sequence that builds messages on access.
    messages: Sequence[SimMessage] = field(default_factory=list)
    # Resolvable by username, but every content request fails with CHANNEL_PRIVATE (a channel we were
    # banned from, or one that restricts access): unlike ``private_from`` the username stays.
    closed: bool = False
    # Deleted by its owner at this moment: from then on its username resolves to nothing
    # (USERNAME_NOT_OCCUPIED) and requests naming its id and access hash fail with CHANNEL_INVALID.
    deleted_from: datetime | None = None

    def __repr__(self) -> str:
        """Short, without the messages (the generated repr lists every one of them)."""
        return f"SimChannel({self.channel_id}, {self.title!r}, {len(self.messages)} messages)"

    def username_at(self, t: datetime) -> str | None:
        if self.is_private_at(t) or self.is_deleted_at(t):
            return None
        name = None
        for since, u in self.usernames:
            if since <= t:
                name = u
        return name

    def is_private_at(self, t: datetime) -> bool:
        return self.private_from is not None and self.private_from <= t

    def is_deleted_at(self, t: datetime) -> bool:
        return self.deleted_from is not None and self.deleted_from <= t

    def participants_at(self, t: datetime) -> int:
        days = max(0.0, (t - self.created_at).total_seconds() / 86400.0)
        return int(self.base_participants + self.participants_per_day * days)

    def top_id(self, t: datetime) -> int:
        """The highest message id posted at or before ``t`` (0 if none); O(log n)."""
        return bisect_right(self.messages, t, key=lambda m: m.posted_at)

    def visible_messages(self, t: datetime) -> list[SimMessage]:
        """Messages (posts and service messages) Telegram would return at ``t``, ascending id."""
        return [m for m in self.messages if m.visible_at(t) and m.message_id > self.available_min_id]

    def posts(self, t: datetime) -> list[SimMessage]:
        """Visible channel posts (no service messages) at ``t``."""
        return [m for m in self.visible_messages(t) if not m.is_service]


@dataclass(slots=True)
class Fault:
    """A fault the simulated server injects.

    ``request``: TL request name it applies to (e.g. 'messages.GetHistory'), or None for any request.
    ``error``: 'FLOOD_WAIT' (with ``seconds``), 'DISCONNECT', 'RPC_CALL_FAIL', 'INTERNAL' (a 500),
    'DROP_ANSWER' (the server answers, the connection drops while the answer is in flight: the client
    gets ConnectionError for a request the server did carry out), or any other Telegram error name.
    ``at``: 1-based index among matching requests from which on it fires (``times`` requests in a row:
    ``at=20, times=4`` fails the 20th to 23rd); ``every``: fire on every Nth matching request;
    ``times``: how many times it may fire at most (None: unlimited).
    """

    error: str
    request: str | None = None
    seconds: int = 0
    at: int | None = None
    every: int | None = None
    times: int | None = 1
    fired: int = 0
    seen: int = 0

    def matches(self, request_name: str) -> bool:
        return self.request is None or self.request == request_name

    def should_fire(self) -> bool:
        """Called once per matching request; True when this request must fail."""
        self.seen += 1
        if self.times is not None and self.fired >= self.times:
            return False
        hit = (self.at is not None and self.seen >= self.at) or (
            self.every is not None and self.seen % self.every == 0
        )
        if hit:
            self.fired += 1
        return hit


def utc_hours(t: datetime, hours: float) -> datetime:
    """``t`` plus ``hours``; a small helper for generators and tests."""
    return t + timedelta(hours=hours)


class RpcFailure(Exception):
    """An RPC error the simulated server answers with (``code``, ``message`` as Telegram sends them)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def is_closed(ch: SimChannel, t: datetime) -> bool:
    """Closed to our account at ``t``: private (``private_from``) or, if the model has such a field,
    banned/closed while still resolvable (``closed`` as a bool or a datetime, ``closed_from``, or a
    method ``is_closed_at(t)``)."""
    if ch.is_private_at(t):
        return True
    method = getattr(ch, "is_closed_at", None)
    if callable(method):
        return bool(method(t))
    for attr in ("closed", "closed_from", "banned_from", "deleted_from"):
        value = getattr(ch, attr, None)
        if isinstance(value, datetime):
            if value <= t:
                return True
        elif value is True:
            return True
    return False
