"""The request budget of a scheduled run (its usage is kept in the archive: :mod:`collector._archive.schedule`).

Telegram limits each account per method, and punishes bursts with flood waits of hours (resolving
usernames most of all). A run therefore sends at most ``max_requests`` requests, and all runs together at
most ``max_resolves_per_hour`` username resolves in any hour. :class:`RequestBudget` is consulted by
:class:`collector._telegram.calls.Caller` before every request it sends (retries included); once a limit is reached
it raises :class:`BudgetExhausted`, a :class:`~collector._telegram.calls.FloodLimited`, so ``collect()`` stops the
rest of the pass exactly as it does for a flood wait: what arrived is committed, the channels it could not
finish are recorded as ``flood_wait`` with an error that names the budget, and the next run continues.

Usage per run and request kind is kept in ``run_requests`` (migration 0004, ``record_usage``): it is how the
hourly resolve limit spans runs. A resolve is recorded there before it is sent (``RequestBudget.persist``), so a
run killed halfway (SIGKILL, power loss) never lets the next run in the same hour resolve past the limit.
Telethon's own resend of a request after sleeping a short flood wait (up to
``flood_sleep_threshold``) happens below the collector and is not counted separately.

Example::

    budget = RequestBudget(now, max_requests=500, limits={"contacts.ResolveUsername": 3})
    report = await collect(client, channels, archive, now=now, budget=budget)
    record_usage(archive, report.run_id, now, budget.used)     # collector._archive.schedule
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from collector._telegram.calls import FloodLimited

#: Words every budget error contains (``run_channels.error``), so summaries can tell budget from flood.
BUDGET_MARK = "budget is used up"
RESOLVE_WINDOW = timedelta(hours=1)


class BudgetExhausted(FloodLimited):
    """The run's request budget (or the hourly budget of one request kind) allows no more of ``request``."""

    def __init__(self, request: str, until: datetime, message: str) -> None:
        Exception.__init__(self, message)
        self.request = request
        self.until = until


class RequestBudget:
    """Requests one run may still send: ``max_requests`` in all, and ``limits`` per request kind.

    ``spend(name)`` is called once for every request right before it is sent; it counts it, or raises
    :class:`BudgetExhausted` without counting when the request must not go out. ``limit_until`` says when a
    per-kind limit frees up again and ``limit_labels`` names it, e.g. ``("resolve", "10 per hour")``, for the
    message. Not thread-safe; one per run.
    """

    def __init__(self, now: datetime, *, max_requests: int | None = None, limits: Mapping[str, int] | None = None,
                 limit_until: Mapping[str, datetime] | None = None,
                 limit_labels: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.now = now
        self.max_requests = max_requests
        self.limits = dict(limits or {})
        self._until = dict(limit_until or {})
        self._labels = dict(limit_labels or {})
        self.used: Counter[str] = Counter()
        self.exhausted: str | None = None       # the first refusal, in words
        #: Called right after a request of a kind with its own limit (resolves: they span runs) is counted and
        #: before it is sent, so a run killed at any point has recorded every such request it may have sent.
        self.persist: Callable[[], None] | None = None

    @property
    def total(self) -> int:
        return sum(self.used.values())

    def remaining(self) -> int | None:
        return None if self.max_requests is None else max(0, self.max_requests - self.total)

    def spend(self, request: str) -> None:
        """Count one ``request`` about to be sent, or raise :class:`BudgetExhausted` (nothing counted)."""
        if self.max_requests is not None and self.total >= self.max_requests:
            self._refuse(BudgetExhausted(request, self.now, (
                f"the request budget is used up ({self.max_requests} requests per run, [run] max_requests)")))
        limit = self.limits.get(request)
        if limit is not None and self.used[request] >= limit:
            until = self._until.get(request, self.now + RESOLVE_WINDOW)
            name, detail = self._labels.get(request, (request, f"{limit} per run"))
            self._refuse(BudgetExhausted(request, until, f"the {name} budget is used up ({detail}) until "
                                                         f"{until:%Y-%m-%d %H:%M} UTC"))
        self.used[request] += 1
        if limit is not None and self.persist is not None:
            self.persist()

    def _refuse(self, exc: BudgetExhausted) -> None:
        if self.exhausted is None:
            self.exhausted = str(exc)
        raise exc
