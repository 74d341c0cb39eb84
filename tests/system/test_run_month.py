"""A month of scheduled runs (`tgspread run`'s library calls) against one simulated world with a moving clock.

Runs come every 3-9 hours at random, like a timer with a random delay would start them (few runs keep the
month under 25 s: a pass costs a dozen DuckDB commits); channels are due every 8 h (one every 16 h) give or
take 90 minutes of jitter. Each run plans from the archive,
connects (a fresh real TelegramClient over the simulated sender) only when something is due and collects
under a small request budget. A long flood wait is injected mid-month. What the server saw (a spy on the
simulated sender's handlers, by channel and time) and what the world holds (ground truth from its own
records, tests/helpers/simworld.py) are compared with the archive at the end.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telethon.tl import functions

from collector import Archive
from collector._cli.app import app  # noqa: F401  (collector._cli.app registers the command modules: import it first)
from collector._parse.refresh import DEFAULT_CHECKPOINTS, is_post_due
from collector._scheduling.plan import GET_HISTORY, RESOLVE, Plan, RunSettings
from collector._scheduling.runner import RunOutcome, execute_plan, read_plan
from collector._simulated import Fault, World, generate_world, simulated_client
from collector._simulated.generate import collected_channels
from tests.helpers.simworld import archived_posts, expected_post

DAYS = 30
SPACING_MINUTES = (180, 540)                # a run every 3-9 hours (few runs keep the month under 25 s)
SLOW = "sim_insider_02"                     # collected every 16 h instead of every 8 h
SETTINGS = RunSettings(interval=timedelta(hours=8), jitter=timedelta(minutes=90), every=timedelta(hours=3),
                       max_requests=4, max_resolves_per_hour=1, intervals=((SLOW, timedelta(hours=16)),))
FLOOD_AT_DAY = 12
FLOOD = timedelta(hours=30)
CHANNEL_REQUESTS = {
    functions.messages.GetHistoryRequest: ("messages.GetHistory", "peer"),
    functions.channels.GetFullChannelRequest: ("channels.GetFullChannel", "channel"),
    functions.channels.GetMessagesRequest: ("channels.GetMessages", "channel"),
}


@dataclass
class Month:
    """Everything the month of runs left behind, for the tests below to check."""

    world: World
    path: Path
    public: dict[int, str]                                  # channel id -> seed name
    run_times: list[datetime] = field(default_factory=list)
    plans: dict[datetime, Plan] = field(default_factory=dict)
    outcomes: dict[datetime, RunOutcome] = field(default_factory=dict)
    requests: dict[datetime, dict[str, int]] = field(default_factory=dict)   # per run, as the server counted
    touched: dict[int, list[tuple[datetime, str]]] = field(default_factory=lambda: defaultdict(list))
    flood_fault: Fault | None = None
    flood_fired_at: datetime | None = None
    run_channels: list[tuple[Any, ...]] = field(default_factory=list)     # read once the month is over


def _spy(world: World, month: Month) -> Any:
    """A simulated client whose server records which channel each content request named, and when."""
    client = simulated_client(world, flood_sleep_threshold=5)
    handlers = client._sender._handlers
    for kind, (name, attr) in CHANNEL_REQUESTS.items():
        inner = handlers[kind]

        def spying(req: Any, inner: Any = inner, name: str = name, attr: str = attr) -> Any:
            month.touched[getattr(req, attr).channel_id].append((world.now, name))
            return inner(req)

        handlers[kind] = spying
    return client


def _one_run(month: Month, archive: Archive, inputs: list[str]) -> None:
    """One run as `tgspread run` makes it: plan from the archive; connect and collect only when due."""
    world, now = month.world, month.world.now
    before = dict(world.requests)
    plan = read_plan(archive, inputs, now=now, settings=SETTINGS)
    month.plans[now] = plan
    if plan.scheduled:
        month.outcomes[now] = asyncio.run(execute_plan(plan, _spy(world, month), archive))
    month.requests[now] = {k: v - before.get(k, 0) for k, v in world.requests.items() if v - before.get(k, 0)}
    month.run_times.append(now)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Month:
    world = generate_world(23, channels=2, days=3, future_days=DAYS + 2, posts_per_day=6)
    public = {ch.channel_id: str(ch.username_at(world.now)) for ch in collected_channels(world)}
    done = Month(world, Path(tmp_path_factory.mktemp("month")) / "archive.duckdb", public)
    # the public channels and a name Telegram does not know (resolved again at every pass: the resolve budget)
    inputs = [*public.values(), *sorted(world.missing_usernames)]
    rng = random.Random(8)
    end = world.now + timedelta(days=DAYS)
    flood_day = world.now + timedelta(days=FLOOD_AT_DAY)
    # One Archive object for the month, as in `tgspread run --loop` (the timer's open/close per run is
    # covered by tests/integration/test_run.py); opening and checkpointing the file 250 times would dominate the time.
    with Archive(done.path) as archive:
        while world.now < end:
            if done.flood_fault is None and world.now >= flood_day:
                # the second history request from here on is answered with a 30-hour flood wait
                done.flood_fault = world.inject(Fault("FLOOD_WAIT", request=GET_HISTORY,
                                                      seconds=int(FLOOD.total_seconds()), at=2))
            fired = done.flood_fault.fired if done.flood_fault else 0
            _one_run(done, archive, inputs)
            if done.flood_fault is not None and done.flood_fault.fired > fired:
                done.flood_fired_at = world.now
            world.advance(timedelta(minutes=rng.uniform(*SPACING_MINUTES)))
    return done


# -- helpers ------------------------------------------------------------------------------------------------
def _rows(month: Month) -> list[tuple[Any, ...]]:
    """(run_id, started_at, input, channel_id, outcome, error) of every run_channels row, oldest first."""
    if not month.run_channels:
        with Archive(month.path, read_only=True) as archive:
            month.run_channels = archive.con.execute(
                "SELECT c.run_id, r.started_at, c.input, c.channel_id, c.outcome, c.error FROM run_channels c "
                "JOIN runs r USING (run_id) ORDER BY r.started_at").fetchall()
    return month.run_channels


def _passes(month: Month, channel_id: int) -> dict[datetime, str]:
    """Run time -> outcome of every run_channels row of the channel."""
    return {row[1]: row[4] for row in _rows(month) if row[3] == channel_id}


def _history_times(month: Month, channel_id: int) -> list[datetime]:
    return sorted({t for t, name in month.touched[channel_id] if name == GET_HISTORY})


# -- the budget ---------------------------------------------------------------------------------------------
def test_budget_is_never_exceeded(month: Month) -> None:
    assert len(month.run_times) > 100
    per_run = {t: sum(r.values()) for t, r in month.requests.items()}
    assert max(per_run.values()) <= SETTINGS.max_requests
    assert max(per_run.values()) == SETTINGS.max_requests, "the budget should bind at least once (backfill)"
    resolves = sorted((t, r.get(RESOLVE, 0)) for t, r in month.requests.items())
    for t, _ in resolves:
        window = sum(n for s, n in resolves if t - timedelta(hours=1) < s <= t)
        assert window <= SETTINGS.max_resolves_per_hour, t
    # what the archive counted is what the server counted
    with Archive(month.path, read_only=True) as archive:
        counted = dict(archive.con.execute(
            "SELECT q.run_at, sum(q.requests) FROM run_requests q GROUP BY q.run_at").fetchall())
    assert counted == {t: n for t, n in per_run.items() if n}


def test_budget_stop_is_recorded_and_continued(month: Month) -> None:
    rows = _rows(month)
    stopped = [r for r in rows if r[4] == "flood_wait" and "budget is used up" in (r[5] or "")]
    assert stopped, "two channels due together need more than 4 requests"
    first = min(month.outcomes)
    assert month.outcomes[first].report.status == "partial"
    assert month.outcomes[first].summary.budget > 0
    # every channel stopped by the budget is taken up by the very next run (not after its interval)
    for run_id, at, _inp, channel_id, _o, _e in stopped:
        if channel_id is None:
            continue
        later = [t for t in month.run_times if t > at]
        nxt = month.plans[later[0]]
        states = {c.facts.channel_id: c.state for c in nxt.channels}
        assert states[channel_id] in ("due", "blocked"), (run_id, channel_id)


# -- due and not due ----------------------------------------------------------------------------------------
def test_channels_not_due_are_not_touched(month: Month) -> None:
    for channel_id, name in month.public.items():
        interval = timedelta(hours=16) if name == SLOW else SETTINGS.interval
        passes = _passes(month, channel_id)
        touched = sorted({t for t, _ in month.touched[channel_id]})
        assert set(touched) <= set(passes), "the server saw a request for a channel outside its runs"
        completed = sorted(t for t, outcome in passes.items() if outcome == "ok")
        # at least one pass per interval + jitter + the longest wait for the next run (a flood wait and
        # budget stops cost a few)
        longest = interval + SETTINGS.jitter + timedelta(minutes=SPACING_MINUTES[1])
        assert len(completed) > DAYS * 86400 / longest.total_seconds() * 0.8
        retried = _retried(month, channel_id)
        for t in touched:
            earlier = [c for c in completed if c < t]
            if earlier and passes[earlier[-1]] == "ok" and t not in retried:
                assert t - earlier[-1] >= interval - SETTINGS.jitter, (name, earlier[-1], t)


def _retried(month: Month, channel_id: int) -> set[datetime]:
    """Runs that took the channel up again because its previous pass was cut short."""
    passes = sorted(_passes(month, channel_id).items())
    return {b[0] for a, b in itertools.pairwise(passes) if a[1] == "flood_wait"}


def test_every_channel_due_and_free_is_collected(month: Month) -> None:
    hit = month.flood_fired_at
    assert hit is not None
    until = hit + FLOOD
    for channel_id, name in month.public.items():
        interval = timedelta(hours=16) if name == SLOW else SETTINGS.interval
        passes = _passes(month, channel_id)
        completed = sorted(t for t, outcome in passes.items() if outcome == "ok")
        for t in month.run_times:
            earlier = [c for c in completed if c < t]
            if not earlier or t - earlier[-1] < interval + SETTINGS.jitter:
                continue
            if hit <= t < until:
                assert passes.get(t, "flood_wait") == "flood_wait"
                continue
            assert t in passes, f"{name} was overdue at {t} but not collected"


# -- the flood wait -------------------------------------------------------------------------------------
def test_long_flood_wait_is_honoured_across_runs_and_caught_up(month: Month) -> None:
    assert month.flood_fault is not None and month.flood_fault.fired == 1
    hit = month.flood_fired_at
    assert hit is not None
    until = hit + FLOOD
    with Archive(month.path, read_only=True) as archive:
        waits = archive.con.execute("SELECT request, started_at, until FROM flood_waits").fetchall()
    assert waits == [(GET_HISTORY, hit, until)]
    during = [t for t in month.run_times if hit < t < until]
    assert len(during) >= 3
    for t in during:
        assert month.requests[t].get(GET_HISTORY, 0) == 0, f"history requested at {t} during the flood wait"
        blocked = {c.facts.channel_id for c in month.plans[t].channels if c.state == "blocked"}
        due_public = {c.facts.channel_id for c in month.plans[t].channels
                      if c.facts.channel_id in month.public and c.state != "not_due"}
        assert due_public <= blocked
    # runs during the wait that happened (something else was due) report the blocked channels honestly
    rows = [r for r in _rows(month) if hit < r[1] < until and r[3] in month.public]
    assert rows and all(r[4] == "flood_wait" and "flood-limited until" in (r[5] or "") for r in rows)
    # the first run after the end catches up: history is requested again for every public channel
    after = [t for t in month.run_times if t >= until]
    caught = {cid for t in after[:3] for cid, name in month.public.items() if (t, GET_HISTORY) in month.touched[cid]}
    assert caught == set(month.public)


# -- the archive against the world ------------------------------------------------------------------------
def test_new_posts_archived(month: Month) -> None:
    posts = archived_posts(month.path)
    for channel_id in month.public:
        ch = month.world.channels[channel_id]
        passes = _passes(month, channel_id)
        ok = [t for t, o in passes.items() if o == "ok"]
        fetched = _history_times(month, channel_id)
        got = {m for (c, m) in posts if c == channel_id}
        must = {m.message_id for m in ch.messages if not m.is_service and any(m.visible_at(t) for t in ok)}
        may = {m.message_id for m in ch.messages if not m.is_service and any(m.visible_at(t) for t in fetched)}
        assert must <= got <= may, (sorted(must - got)[:5], sorted(got - may)[:5])
        assert len(got) > 6 * DAYS * 0.5
    for key, row in posts.items():
        msg = month.world.message(*key)
        assert msg is not None
        comments = month.world.channels[key[0]].linked_chat_id is not None
        want = expected_post(msg, row["last_seen_at"], comments=comments)
        assert {k: row[k] for k in want} == want, key


def test_refresh_checkpoints_all_observed(month: Month) -> None:
    with Archive(month.path, read_only=True) as archive:
        obs: dict[tuple[int, int], list[datetime]] = defaultdict(list)
        for c, m, t in archive.con.execute(
                "SELECT channel_id, message_id, observed_at FROM post_observations ORDER BY observed_at").fetchall():
            obs[(c, m)].append(t)
    posts = archived_posts(month.path)
    checked = 0
    for channel_id in month.public:
        touched = {t for t, _ in month.touched[channel_id]}
        ok = sorted(t for t, o in _passes(month, channel_id).items() if o == "ok")
        for (c, m), stamps in obs.items():
            if c != channel_id:
                continue
            assert set(stamps) <= touched
            row = posts[(c, m)]
            msg = month.world.message(c, m)
            assert msg is not None
            for t in ok:
                if t <= stamps[0] or (row["deleted_at"] is not None and row["deleted_at"] < t):
                    continue
                previous = stamps[bisect.bisect_left(stamps, t) - 1]
                due = is_post_due(msg.posted_at, previous, t, DEFAULT_CHECKPOINTS)
                assert (t in stamps or row["deleted_at"] == t) == due, (c, m, t)
                checked += due
            # every checkpoint up to the last ok pass was observed at or after it
            for checkpoint in DEFAULT_CHECKPOINTS:
                at = msg.posted_at + checkpoint
                if at <= ok[-1] and (row["deleted_at"] is None or row["deleted_at"] > at) and at > stamps[0]:
                    assert any(s >= at for s in stamps) or row["deleted_at"] is not None, (c, m, checkpoint)
    assert checked > 500


def test_daily_snapshots(month: Month) -> None:
    with Archive(month.path, read_only=True) as archive:
        for channel_id, name in month.public.items():
            snaps = [r[0] for r in archive.con.execute(
                "SELECT observed_at FROM channel_observations WHERE channel_id = ? ORDER BY observed_at",
                [channel_id]).fetchall()]
            # one a day, plus the wait for the next pass (<= interval + jitter + the longest run spacing)
            assert len(snaps) >= DAYS * 24 / (24 + 16 + 1.5 + 9) - 1, name
            assert all(b - a >= timedelta(hours=24) for a, b in itertools.pairwise(snaps)), name
            assert set(snaps) <= {t for t, kind in month.touched[channel_id] if kind == "channels.GetFullChannel"}
            # at every ok pass a day after the last snapshot, a snapshot was taken
            for t, outcome in _passes(month, channel_id).items():
                before = [s for s in snaps if s < t]
                if outcome == "ok" and before and t - before[-1] >= timedelta(hours=24):
                    assert t in snaps, (name, t)


def test_runs_with_nothing_due_send_nothing(month: Month) -> None:
    idle = [t for t, plan in month.plans.items() if not plan.scheduled]
    assert idle, "with 1-3 h between runs and 3-6 h intervals some runs find nothing due"
    assert all(not month.requests[t] for t in idle)
    with Archive(month.path, read_only=True) as archive:
        started = {r[0] for r in archive.con.execute("SELECT started_at FROM runs").fetchall()}
    assert started == set(month.outcomes)
