"""What a scheduled run (``tgspread run``) collects: which channels are due, why, and what that will cost.

Pure: the facts about each channel (read from the archive elsewhere), the pending flood waits, the
budget and the clock are passed in; nothing here touches the archive, the network or the real clock.

- A channel is **due** when it was never collected, when its last pass was cut short (``flood_wait``: a
  flood wait or the request budget stopped it), or once ``interval`` plus a jitter has passed since its
  last pass. The jitter is a pseudo-random offset in ``[-jitter, +jitter]`` derived from the channel and
  the time of its last pass (:func:`channel_jitter`), so channels drift apart instead of all hitting
  Telegram at the same minute, and a ``--dry-run`` predicts exactly what the next run will do.
- A due channel is **blocked** while the request it needs first is flood-limited (``messages.GetHistory``
  for every archived channel, ``contacts.ResolveUsername`` for a name the archive does not know): a run
  does not even start it, and it is caught up by the first run after the wait.
- A due channel that needs a resolve is **deferred** when this hour's resolve budget is used up.
- Due channels run in this order: passes cut short first, then never-collected channels, then the most
  overdue; a run that stops at its request budget leaves the least overdue ones for the next run.

Example::

    >>> from datetime import UTC, datetime, timedelta
    >>> now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> facts = ChannelFacts(input="durov", key="id:1", channel_id=1, known=True,
    ...                      last_pass_at=now - timedelta(hours=3), interval=timedelta(hours=1))
    >>> plan = make_plan([facts], now=now, settings=RunSettings())
    >>> [(c.facts.input, c.state) for c in plan.channels]
    [('durov', 'due')]
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# TL method names as collector._telegram.calls.request_name spells them (the keys of flood waits and budgets).
RESOLVE = "contacts.ResolveUsername"
GET_HISTORY = "messages.GetHistory"
GET_FULL_CHANNEL = "channels.GetFullChannel"
GET_MESSAGES = "channels.GetMessages"
PAGE = 100                    # posts per history request and ids per refresh request
RATE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class RunSettings:
    """The ``[run]`` table of tgspread.toml.

    ``interval``: how often each channel is collected (``intervals`` overrides it per channel, keyed by
    lower-case username or numeric id); ``jitter``: the largest offset either way added to a channel's
    interval (at most half of the shortest interval); ``every``: how long ``--loop`` sleeps between runs
    (plus up to ``jitter``); ``max_requests``: requests one run may send; ``max_resolves_per_hour``:
    usernames resolved through Telegram in any hour, over all runs (0: never resolve a new name).
    """

    interval: timedelta = timedelta(hours=1)
    jitter: timedelta = timedelta(minutes=10)
    every: timedelta = timedelta(minutes=15)
    max_requests: int = 500
    max_resolves_per_hour: int = 10
    intervals: tuple[tuple[str, timedelta], ...] = ()

    def __post_init__(self) -> None:
        shortest = min([self.interval, *(i for _, i in self.intervals)])
        if shortest <= timedelta(0) or self.every <= timedelta(0):
            raise ValueError("interval and every must be positive durations")
        if self.jitter < timedelta(0) or self.jitter * 2 > shortest:
            raise ValueError(f"jitter must be between 0 and half the shortest interval ({shortest / 2})")
        if self.max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if self.max_resolves_per_hour < 0:
            raise ValueError("max_resolves_per_hour must be 0 or more")

    def interval_for(self, *names: str | None) -> timedelta:
        """The interval of the channel known by any of ``names`` (username, id); the default otherwise."""
        wanted = {n.lower().lstrip("@") for n in names if n}
        for name, interval in self.intervals:
            if name.lower().lstrip("@") in wanted:
                return interval
        return self.interval


@dataclass(frozen=True)
class ChannelFacts:
    """What the archive says about one channel a run may collect.

    ``key`` identifies the channel across runs (``id:<channel_id>`` when the archive knows it, else
    ``name:<input>``). ``known``: reachable without resolving (id and access hash archived);
    ``needs_resolve``: a username the archive does not know (the pass starts with a resolve).
    ``last_pass_at``: the start of its last pass that did not end ``flood_wait`` (None: never);
    ``retry``: its latest pass ended ``flood_wait`` (cut short by a flood wait or the budget).
    ``posts_per_day``: its archived posting rate over the last week (None: no history yet).
    """

    input: str
    key: str
    channel_id: int | None = None
    known: bool = False
    needs_resolve: bool = False
    last_pass_at: datetime | None = None
    retry: bool = False
    snapshot_due: bool = True
    refresh_due: int = 0
    posts_per_day: float | None = None
    interval: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class RequestEstimate:
    """Requests a channel's pass is expected to send. ``open_ended``: the whole history, size unknown."""

    resolve: int = 0
    snapshot: int = 0
    history: int = 0
    refresh: int = 0
    open_ended: bool = False

    @property
    def total(self) -> int:
        return self.resolve + self.snapshot + self.history + self.refresh

    def label(self) -> str:
        return f"{self.total}+" if self.open_ended else str(self.total)


@dataclass(frozen=True)
class ChannelPlan:
    """One channel's place in a run: ``state`` is ``due``, ``not_due``, ``blocked`` or ``deferred``.

    ``due_at``: when it is (or was) due, None when it never passed; ``until``: the end of the flood wait
    that blocks it, or when the resolve budget frees up; ``reason``: the same in words.
    """

    facts: ChannelFacts
    state: str
    reason: str
    due_at: datetime | None
    estimate: RequestEstimate
    until: datetime | None = None

    def skipped_error(self) -> str:
        """The ``run_channels.error`` of a due channel this run did not start (blocked or deferred)."""
        return f"not started by this run: {self.reason}; it is collected by the first run after that"


@dataclass(frozen=True)
class Plan:
    """A run's plan at ``now``: every channel with its state, in the order a run would collect them."""

    now: datetime
    channels: list[ChannelPlan]
    settings: RunSettings
    flood_waits: Mapping[str, datetime] = field(default_factory=dict)
    resolves_used: int = 0           # resolves sent in the hour before now
    resolve_free_at: datetime | None = None   # when the hourly window frees a resolve again
    #: (input, channel id, why) of channels in another collector's slot (issue 15): never collected here
    not_owned: list[tuple[str, int, str]] = field(default_factory=list)

    def _with(self, *states: str) -> list[ChannelPlan]:
        return [c for c in self.channels if c.state in states]

    @property
    def scheduled(self) -> list[ChannelPlan]:
        """Channels the run collects, most overdue first."""
        return self._with("due")

    @property
    def skipped(self) -> list[ChannelPlan]:
        """Due channels the run does not start: blocked by a flood wait or deferred by the resolve budget."""
        return self._with("blocked", "deferred")

    @property
    def not_due(self) -> list[ChannelPlan]:
        return self._with("not_due")

    @property
    def resolves_left(self) -> int:
        return max(0, self.settings.max_resolves_per_hour - self.resolves_used)

    def estimate(self) -> RequestEstimate:
        """The scheduled channels' requests together (before the budget cuts them)."""
        parts = [c.estimate for c in self.scheduled]
        return RequestEstimate(resolve=sum(p.resolve for p in parts), snapshot=sum(p.snapshot for p in parts),
                               history=sum(p.history for p in parts), refresh=sum(p.refresh for p in parts),
                               open_ended=any(p.open_ended for p in parts))

    def next_due_at(self) -> datetime | None:
        """When the next run has something to do: now if a channel is due, else the earliest due time."""
        times = [self.now if c.state in ("due", "deferred") else c.until if c.state == "blocked" else c.due_at
                 for c in self.channels]
        known = [t for t in times if t is not None]
        return min(known) if known else None


def channel_jitter(key: str, last_pass_at: datetime, jitter: timedelta) -> timedelta:
    """A pseudo-random offset in ``[-jitter, +jitter]``, fixed for one channel and one last pass. Pure.

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> channel_jitter("id:1", t, timedelta(minutes=10)) == channel_jitter("id:1", t, timedelta(minutes=10))
    True
    >>> abs(channel_jitter("id:1", t, timedelta(minutes=10))) <= timedelta(minutes=10)
    True
    """
    digest = hashlib.blake2b(f"{key}|{last_pass_at.isoformat()}".encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64          # [0, 1)
    return jitter * (2 * fraction - 1)


def loop_delay(every: timedelta, jitter: timedelta, rng: random.Random) -> timedelta:
    """How long ``--loop`` sleeps between runs: ``every`` plus up to ``jitter``."""
    return every + jitter * rng.random()


def estimate(facts: ChannelFacts, now: datetime) -> RequestEstimate:
    """The requests a pass over the channel would send, from what the archive knows. Pure."""
    if not facts.known and not facts.needs_resolve:
        return RequestEstimate()           # an invalid name or an unknown id: refused without a request
    if facts.posts_per_day is None or facts.last_pass_at is None:
        history, open_ended = 1, True
    else:
        new = facts.posts_per_day * (now - facts.last_pass_at).total_seconds() / 86400
        history, open_ended = 1 + int(new) // PAGE, False
    return RequestEstimate(resolve=int(facts.needs_resolve), snapshot=int(facts.snapshot_due or not facts.known),
                           history=history, refresh=math.ceil(facts.refresh_due / PAGE), open_ended=open_ended)


def _due(facts: ChannelFacts, settings: RunSettings, now: datetime) -> tuple[datetime | None, str | None]:
    """(due time, reason it is due now) for one channel; reason None when it is not due yet."""
    if facts.last_pass_at is None:
        return None, "never collected"
    due_at = facts.last_pass_at + facts.interval + channel_jitter(facts.key, facts.last_pass_at, settings.jitter)
    if facts.retry:
        return due_at, "its last pass was cut short (flood wait or request budget)"
    if due_at <= now:
        ago = _human(now - facts.last_pass_at)
        return due_at, f"last pass {ago} ago (interval {_human(facts.interval)})"
    return due_at, None


def make_plan(
    facts: Sequence[ChannelFacts],
    *,
    now: datetime,
    settings: RunSettings,
    flood_waits: Mapping[str, datetime] | None = None,
    resolves_used: int = 0,
    resolve_free_at: datetime | None = None,
) -> Plan:
    """Decide each channel's state at ``now``. Pure.

    ``flood_waits``: request name -> end of a flood wait still running; ``resolves_used``: resolves sent
    in the hour before ``now`` (all runs); ``resolve_free_at``: when that hourly window frees a resolve.
    """
    waits = {k: v for k, v in (flood_waits or {}).items() if v > now}
    resolves_left = max(0, settings.max_resolves_per_hour - resolves_used)
    rows: list[tuple[tuple[int, datetime], ChannelPlan]] = []
    for f in facts:
        due_at, why = _due(f, settings, now)
        cost = estimate(f, now)
        if why is None:
            rows.append(((3, due_at or now), ChannelPlan(f, "not_due", f"due at {_stamp(due_at)}", due_at, cost)))
            continue
        first = RESOLVE if f.needs_resolve else GET_HISTORY if f.known else None
        order = (0 if f.retry else 1 if due_at is None else 2, due_at or now)
        if first is not None and first in waits:
            until = waits[first]
            reason = f"{first} is flood-limited until {_stamp(until)}"
            rows.append((order, ChannelPlan(f, "blocked", reason, due_at, cost, until)))
        else:
            rows.append((order, ChannelPlan(f, "due", why, due_at, cost)))
    rows.sort(key=lambda r: r[0])
    channels = []
    for _, plan in rows:
        if plan.state == "due" and plan.facts.needs_resolve:
            if resolves_left <= 0:
                free = resolve_free_at or now + timedelta(hours=1)
                reason = (f"the resolve budget is used up ({settings.max_resolves_per_hour} per hour, [run] "
                          f"max_resolves_per_hour) until {_stamp(free)}")
                plan = ChannelPlan(plan.facts, "deferred", reason, plan.due_at, plan.estimate, free)
            else:
                resolves_left -= 1
        channels.append(plan)
    return Plan(now=now, channels=channels, settings=settings, flood_waits=waits, resolves_used=resolves_used,
                resolve_free_at=resolve_free_at)


def next_due_after(plan: Plan, results: Mapping[str, tuple[str, int | None]]) -> datetime | None:
    """When the next run has something to do, once the plan's run ended with ``results``. Pure.

    ``results``: input -> (outcome, channel id) of every channel the run started. A channel that ended
    ``flood_wait`` (or was not reached) is due again at once; any other is due ``interval`` +- jitter after
    this run, exactly as :func:`make_plan` will compute it from the archive.
    """
    times: list[datetime | None] = []
    for c in plan.channels:
        if c.state != "due":
            times.append(c.until if c.state in ("blocked", "deferred") else c.due_at)
            continue
        outcome, channel_id = results.get(c.facts.input, ("flood_wait", None))
        if outcome == "flood_wait":
            times.append(plan.now)
            continue
        key = f"id:{channel_id}" if channel_id is not None else c.facts.key
        times.append(plan.now + c.facts.interval + channel_jitter(key, plan.now, plan.settings.jitter))
    known = [t for t in times if t is not None]
    return min(known) if known else None


# -- the one-line summary -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSummary:
    """What one scheduled run did, for its one log line (cron mail, journalctl).

    ``flood``: channels a flood wait stopped or kept out; ``budget``: channels the request budget stopped
    or deferred, or the hourly resolve budget deferred (each channel's own line says which); ``failed``:
    not_found, private or error.
    """

    at: datetime
    run_id: int | None
    status: str
    ok: int = 0
    flood: int = 0
    budget: int = 0
    failed: int = 0
    not_due: int = 0
    not_owned: int = 0
    new_posts: int = 0
    refreshed: int = 0
    requests: int = 0
    max_requests: int = 0
    resolves: int = 0
    max_resolves: int = 0
    next_due_at: datetime | None = None

    def line(self) -> str:
        """``2026-01-01T12:00:00Z run 7 ok: channels 4 ok, 0 flood, ...; next due 2026-01-01T12:41Z``."""
        head = f"{self.at:%Y-%m-%dT%H:%M:%SZ} " + (f"run {self.run_id} {self.status}" if self.run_id is not None
                                                   else f"no run ({self.status})")
        return (f"{head}: channels {self.ok} ok, {self.flood} flood, {self.budget} budget, {self.failed} failed, "
                f"{self.not_due} not due{f', {self.not_owned} not owned' if self.not_owned else ''}; "
                f"{self.new_posts} new posts, {self.refreshed} refreshed; requests "
                f"{self.requests}/{self.max_requests}, resolves {self.resolves}/{self.max_resolves} per hour; "
                f"next due {_stamp(self.next_due_at)}")


def _stamp(t: datetime | None) -> str:
    return f"{t:%Y-%m-%dT%H:%MZ}" if t is not None else "-"


def _human(delta: timedelta) -> str:
    """``timedelta(hours=2, minutes=5)`` -> ``'2h05m'``; days above 48 h."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes >= 48 * 60:
        return f"{minutes // 1440}d{(minutes % 1440) // 60:02d}h"
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
