"""The simulated world: channels, a clock, injected faults and a request counter.

A ``World`` is what the simulated server answers from and what tests compare the archive against.
Build one with :func:`collector._simulated.generate.generate_world`; move its clock with :meth:`World.advance`.

Example::

    world = generate_world(seed=7, channels=20, days=30)
    world.advance(timedelta(days=2))
    world.requests["messages.GetHistory"]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .model import Fault, SimChannel, SimMessage

if TYPE_CHECKING:
    from .plant import PlantedGroup



@dataclass
class World:
    """Channels plus the state a server keeps: clock, flood deadlines, faults and request counts.

    ``seeds`` are the channel names a user of the world would collect (usernames of public channels,
    of private ones, names that do not exist, invite links): the demo and tests pass them to ``collect``.
    ``missing_usernames`` resolve to USERNAME_NOT_OCCUPIED.
    """

    channels: dict[int, SimChannel]
    now: datetime
    seeds: list[str] = field(default_factory=list)
    missing_usernames: set[str] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    flood_until: dict[str, datetime] = field(default_factory=dict)
    seed: int = 0
    # Ground truth for copy detection: ((channel_id, message_id) of a copy, (channel_id, message_id) of
    # the post it copies with a small change and no forward header).
    copies: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    # Ground truth for coordination detection (collector._simulated.plant): empty unless planted.
    coordination: list[PlantedGroup] = field(default_factory=list)

    def __repr__(self) -> str:
        """Short: the generated repr lists every message of every channel (79 MB and 3 s for the demo's world),
        and Python 3.11's ``asyncio.run`` builds the repr of what its coroutine returned, twice, when it puts the
        SIGINT handler back (so ``run_demo`` paid 6 s for it).

        >>> from datetime import UTC
        >>> World({}, datetime(2024, 1, 2, tzinfo=UTC), seed=7)
        World(seed=7, 0 channels, now=2024-01-02 00:00)
        """
        return f"World(seed={self.seed}, {len(self.channels)} channels, now={self.now:%Y-%m-%d %H:%M})"

    # -- clock -----------------------------------------------------------------------------------
    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward; new posts, growth, edits and deletions up to the new time appear."""
        self.now = self.now + delta
        return self.now

    # -- lookups ---------------------------------------------------------------------------------
    def channel_by_username(self, username: str, at: datetime | None = None) -> SimChannel | None:
        """The channel whose username (case-insensitive) is ``username`` at ``at`` (default: now)."""
        t = self.now if at is None else at
        wanted = username.lower()
        for ch in self.channels.values():
            current = ch.username_at(t)
            if current is not None and current.lower() == wanted:
                return ch
        return None

    def message(self, channel_id: int, message_id: int) -> SimMessage | None:
        """The message record (whatever its visibility), or None when the id was never used."""
        ch = self.channels.get(channel_id)
        if ch is None or not 1 <= message_id <= len(ch.messages):
            return None
        return ch.messages[message_id - 1]

    def seed_channels(self) -> list[SimChannel]:
        """The channels named in ``seeds`` that exist (public or private)."""
        out = []
        for s in self.seeds:
            ch = self.channel_by_username(s.lstrip("@").rsplit("/", 1)[-1])
            if ch is not None:
                out.append(ch)
        return out

    # -- server state ----------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        """Add a fault; returns it so a test can read ``fired`` afterwards."""
        self.faults.append(fault)
        return fault

    def total_requests(self) -> int:
        return sum(self.requests.values())


class Sender(Protocol):
    """What the request handler modules (``srv_*``) use of the simulated sender (``server.SimulatedSender``).

    Named here, below both, so the handlers need not import the server that imports them.
    """

    world: World

    def _channel(self, peer: Any) -> SimChannel: ...

    def _index(self, ch: SimChannel) -> Any: ...

    def _chat(self, ch: SimChannel) -> Any: ...
