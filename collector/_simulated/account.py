"""Simulated accounts: several Telegram accounts on one world, each with its own flood limits (issue 15).

A :class:`World` holds the server state of one account (``faults``, ``flood_until``, ``requests``). An
:class:`Account` is a view of a world with its own copy of that state and its own rate limits: the channels, the
clock and everything else are the world's, so three collectors with three accounts see one Telegram and one
time, and a flood wait of one account never blocks another. Pass the account where a world is expected:
``simulated_client(account)``.

A rate limit ``"messages.GetHistory": (30, timedelta(hours=1))`` answers the 31st such request within any hour
with ``FLOOD_WAIT_X``, X the seconds until the oldest of the 30 leaves the window (what Telegram does, in
spirit: it never says its limits). Requests refused by a flood wait do not count.

Example::

    world = generate_world(7, channels=6, days=2)
    a = Account(world, "a", limits={"messages.GetHistory": (30, timedelta(hours=1))})
    client = simulated_client(a)
    a.requests["messages.GetHistory"]          # what this account sent
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .model import Fault
from .world import World


class Account:
    """One account's server state over a shared :class:`World` (attributes it lacks are the world's)."""

    def __init__(self, world: World, name: str, *,
                 limits: Mapping[str, tuple[int, timedelta]] | None = None) -> None:
        self.world = world
        self.name = name
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.flood_until: dict[str, datetime] = {}
        self.limits = dict(limits or {})
        self.limited = Counter[str]()        # FLOOD_WAITs the rate limits answered
        self._sent: dict[str, deque[datetime]] = {}

    def __getattr__(self, name: str) -> Any:       # channels, now, seeds, message(), ...: the world's
        return getattr(self.world, name)

    def inject(self, fault: Fault) -> Fault:
        """Add a fault to this account only."""
        self.faults.append(fault)
        return fault

    def total_requests(self) -> int:
        return sum(self.requests.values())

    def rate_wait(self, request: str) -> int:
        """Count ``request`` against its rate limit at the world's ``now``; the seconds to wait when over it (the
        request is then refused and not counted), else 0."""
        limit = self.limits.get(request)
        if limit is None:
            return 0
        most, window = limit
        now = self.world.now
        sent = self._sent.setdefault(request, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) >= most:
            self.limited[request] += 1
            return max(1, math.ceil((sent[0] + window - now).total_seconds()))
        sent.append(now)
        return 0

    def allowed(self, request: str, span: timedelta) -> float:
        """How many ``request`` the rate limit allows in ``span`` (its steady rate); inf without a limit."""
        limit = self.limits.get(request)
        if limit is None:
            return math.inf
        most, window = limit
        return most * span / window
