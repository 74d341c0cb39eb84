"""Every request the collector sends goes through :class:`Caller`: flood waits and retries live here only.

Why this shape:
- Short flood waits (up to the client's ``flood_sleep_threshold``) are slept and retried by Telethon itself.
- A longer wait is never slept through: it is written to the archive with its end time, dated by the
  pass's own clock (``now`` + seconds), and the request kind stays blocked for the rest of the pass and for
  later passes until that end time. Telegram counts floods per method and per account, so the block is per
  request kind, not per channel: every channel that needs that kind of request waits.
- A dropped connection that Telethon could not recover (``ConnectionError``) is retried a few times with
  backoff. Telegram's internal errors (500, ``RPC_CALL_FAIL``) are retried by Telethon itself (2 s apart,
  ``request_retries`` times); when they persist, Telethon gives up with a bare ``ValueError('Request was
  unsuccessful N time(s)')``, which is turned into :class:`TelegramUnavailable` (a ``ConnectionError``) and
  retried here with the same backoff: a Telegram outage fails one channel with a clear message, not the pass.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from telethon import TelegramClient, errors
from telethon.tl.tlobject import TLObject, TLRequest

T = TypeVar("T")


_NAMES: dict[type, str] = {}


def request_name(request: TLObject) -> str:
    """``messages.GetHistory`` for a ``GetHistoryRequest``: the TL method name, stable across layers.

    The collector keys flood waits by it and the simulated server counts requests by it.

    >>> from telethon.tl import functions
    >>> request_name(functions.contacts.ResolveUsernameRequest("x"))
    'contacts.ResolveUsername'
    """
    cls = type(request)
    name = _NAMES.get(cls)
    if name is None:
        module = cls.__module__.rsplit(".", 1)[-1]          # telethon.tl.functions.messages
        base = cls.__name__.removesuffix("Request")
        name = _NAMES[cls] = base if module == "functions" else f"{module}.{base}"
    return name


class FloodLimited(Exception):
    """A request kind is flood-limited until ``until``; nothing of that kind is sent before then."""

    def __init__(self, request: str, until: datetime) -> None:
        super().__init__(f"Telegram asked to wait before more {request} requests, until {until:%Y-%m-%d %H:%M} UTC")
        self.request = request
        self.until = until


class TelegramUnavailable(ConnectionError):
    """Telegram kept failing a request with internal errors (500, ``RPC_CALL_FAIL``) through every retry."""

    def __init__(self, request: str, detail: str) -> None:
        super().__init__(f"Telegram kept failing {request} with internal errors ({detail}); "
                         "this is on Telegram's side, try again later")
        self.request = request


def _gave_up(exc: ValueError) -> bool:
    """Telethon's way of saying that every retry of a request failed (``TelegramBaseClient._call``)."""
    return str(exc).startswith("Request was unsuccessful")


class Budget(Protocol):
    """A request budget (:class:`collector._scheduling.budget.RequestBudget`): asked before every request is sent."""

    def spend(self, request: str) -> None:
        """Count ``request`` (a :func:`request_name`), or raise :class:`FloodLimited` when it must not be sent."""


class Caller:
    """Sends requests for one pass: honours and records long flood waits, retries dropped connections.

    ``on_flood(request_name, seconds, channel_id) -> until`` persists a long wait (the archive does it);
    ``blocked`` starts with the waits the archive still remembers from earlier passes. ``budget``, when
    given, is spent before every send (retries included) and stops the pass like a flood wait once used up.
    """

    def __init__(
        self,
        client: TelegramClient,
        now: datetime,
        blocked: dict[str, datetime],
        on_flood: Callable[[str, int, int | None], datetime],
        *,
        connection_retries: int = 3,
        retry_delay: float = 0.5,
        budget: Budget | None = None,
    ) -> None:
        self.client = client
        self.now = now
        self.blocked = dict(blocked)
        self._on_flood = on_flood
        self._retries = connection_retries
        self._delay = retry_delay
        self._budget = budget
        self.sent: Counter[str] = Counter()

    def blocked_until(self, name: str) -> datetime | None:
        until = self.blocked.get(name)
        return until if until is not None and until > self.now else None

    async def __call__(self, request: TLRequest, *, channel_id: int | None = None) -> Any:
        name = request_name(request)
        until = self.blocked_until(name)
        if until is not None:
            raise FloodLimited(name, until)
        attempt = 0
        while True:
            if self._budget is not None:
                self._budget.spend(name)          # raises FloodLimited before anything is sent
            try:
                self.sent[name] += 1
                return await self.client(request)
            except errors.FloodWaitError as exc:
                # Telethon raises only waits longer than its flood_sleep_threshold: never sleep through one.
                until = self._on_flood(name, int(exc.seconds), channel_id)
                self.blocked[name] = until
                raise FloodLimited(name, until) from None
            except (ConnectionError, ValueError, errors.ServerError) as exc:
                # a dropped connection, or Telegram's internal errors outlasting Telethon's own retries (a bare
                # ValueError, or the ServerError itself when the client has raise_last_call_error set)
                if isinstance(exc, ValueError) and not _gave_up(exc):
                    raise
                attempt += 1
                if attempt > self._retries:
                    if isinstance(exc, ConnectionError):
                        raise
                    raise TelegramUnavailable(name, str(exc)) from None
                await asyncio.sleep(self._delay * 2 ** (attempt - 1))
