"""Three collectors, three simulated accounts with their own flood limits, one world, one lake, a month (issue 15).

Each collector has its own archive, its own account (a :class:`collector._simulated.account.Account`: its own
flood deadlines, faults and rate limits over the shared world) and its own budget; they share only the lake and
the assignment file. Each one runs as ``tgspread run --collector NAME`` runs under its systemd timer
(contrib/systemd/tgspread-run@.timer: every 15 minutes plus a random delay of up to 3 minutes), with its library
calls: pick up what the lake hands it, plan, collect what is due under its budget, publish. It discovers twice.
During the month:

- account ``c`` is blocked by a one-day flood wait on history requests (day 8);
- one slot moves from ``a`` to ``b`` halfway (day 15), by editing the assignment file;
- ``a`` names a channel of ``b``'s slots, and discovery finds channels of the other collectors' slots: they are
  handed on through the lake, never collected by the finder.

The clock is event-driven: every timer firing of every collector happens (2,880 a collector), but a firing whose
run is provably idle is not planned again: nothing was picked up from the lake, nothing changed in the archive or
the assignment since the last plan, and the last run's own "next due" time (the plan's, exactly what the next
plan computes) is still ahead. Such a run would plan "nothing due" and stop before connecting or publishing; the
test checks that on a sample of them (every ``VERIFY_IDLE_EVERY``-th one is planned for real).

Afterwards everything is read through ``analysis.connect(lake)`` and compared with the world's own records.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import analysis
from collector import Archive
from collector._archive.lake import publish
from collector._archive.slots import SLOTS, slot
from collector._cli.app import app
from collector._parse.discovery_rank import Thresholds
from collector._parse.refresh import DEFAULT_CHECKPOINTS
from collector._scheduling.channel_set import add_channels
from collector._scheduling.handoff import pick_up
from collector._scheduling.ownership import Ownership
from collector._scheduling.plan import GET_HISTORY, RunSettings
from collector._scheduling.runner import RunOutcome, execute_plan, read_plan, run_inputs
from collector._scheduling.shards import load, render_toml
from collector._simulated import Fault, World, generate_world, simulated_client
from collector._simulated.account import Account
from collector._simulated.generate import collected_channels
from collector._telegram.collect import CollectSettings
from collector._telegram.discovery import DiscoverySettings, discover
from tests.helpers.simworld import CONTRACT_COLUMNS, expected_post

DAYS = 30
#: each collector's timer (contrib/systemd/tgspread-run@.timer): a run every 15 minutes, each firing delayed by a
#: random 0-3 minutes (RandomizedDelaySec), drawn per collector and firing
TIMER, TIMER_DELAY = timedelta(minutes=15), timedelta(minutes=3)
#: each channel is collected every INTERVAL, no jitter (with a handful of channels there is no minute to spread,
#: and a collector's channels stay in one run). Not hourly, for cost alone: a run that collects costs about 0.45 s
#: of CPU here (the pass, then the publish); hourly passes would be at least 3 x 720 = 2,160 such runs in the month
#: (more once handed-on channels fall out of step), some 1,000 s of CPU against the 90 s this test had with a run
#: every 12-18 hours. Measured whole: 6 h, 447 runs, 198 s of CPU; 8 h, 326 runs, 180 s; 12 h, 270 runs, 123 s.
INTERVAL, JITTER = timedelta(hours=12), timedelta(0)
SETTINGS = RunSettings(interval=INTERVAL, jitter=JITTER, every=TIMER, max_requests=60, max_resolves_per_hour=5)
#: each account's own flood limits: requests of a kind per window (the server answers FLOOD_WAIT beyond them)
LIMITS = {
    "a": {GET_HISTORY: (12, timedelta(hours=1)), "channels.GetMessages": (20, timedelta(hours=1))},
    "b": {GET_HISTORY: (8, timedelta(hours=1)), "channels.GetMessages": (15, timedelta(hours=1))},
    "c": {GET_HISTORY: (10, timedelta(hours=1)), "channels.GetMessages": (20, timedelta(hours=1))},
}
BLOCKED, BLOCKED_AT_DAY, BLOCK = "c", 8, timedelta(days=1)
MOVE_AT_DAY, MOVE_FROM, MOVE_TO = 15, "a", "b"
DISCOVER_AT_DAYS = (1, 16)
#: How late a refresh checkpoint may be observed, from the schedule itself (docs/scheduling.md, "What a run
#: decides"): a channel's pass re-observes every post whose age crossed a checkpoint since the pass before. The
#: checkpoint falls after some pass P; the next pass is due INTERVAL (+- JITTER) after P, and the first timer firing
#: at or after that comes at most TIMER + TIMER_DELAY later. Nothing else delays it in this month (no budget or
#: rate limit cuts a pass: the test checks that no pass ended flood_wait outside the blocked day), so a checkpoint
#: not observed within TOLERANCE (12 h 18 min) is missing. For analysis.velocity's windows [c, 2c): the 1 d, 3 d,
#: 7 d and 30 d checkpoints always land inside theirs; the 6 h one inside [6 h, 18 h 18 min) (its window ends at
#: 12 h) and the 1 h one only for posts first seen within their first hour (the others are first seen after it):
#: this month does not show the 1 h and 6 h views complete. A collector whose 1 h view must be complete needs an
#: interval under about 40 minutes (docs/scheduling.md), which costs ten times this test.
TOLERANCE = INTERVAL + JITTER + TIMER + TIMER_DELAY
#: every so many skipped (provably idle) firings, one is planned for real to check it was idle
VERIFY_IDLE_EVERY = 16

pytestmark = pytest.mark.slow


@dataclass
class Collector:
    name: str
    account: Account
    archive: Archive
    runs: dict[datetime, RunOutcome] = field(default_factory=dict)
    not_owned: list[tuple[datetime, str, int]] = field(default_factory=list)
    next_due: datetime | None = None              # the last plan's next due time (None: plan at the next firing)
    firings: int = 0                              # timer firings: runs, idle ones included
    planned_idle: int = 0                         # firings planned that found nothing due
    skipped_idle: int = 0                         # firings not planned again (provably idle)
    verified_idle: int = 0                        # of those, planned anyway to check: nothing was due


@dataclass
class Month:
    world: World
    lake: Path
    assignment: Path
    collectors: dict[str, Collector]
    channels: dict[int, str]                                   # every public channel of the world -> username
    moved_slot: int
    moved_at: datetime | None = None
    blocked_at: datetime | None = None
    block_fault: Fault | None = None
    ticks: list[datetime] = field(default_factory=list)
    owners: dict[datetime, dict[int, str]] = field(default_factory=dict)   # from then on: slot -> owner
    handed: list[tuple[str, int, str]] = field(default_factory=list)       # (finder, channel, how) handed on
    taken: list[tuple[datetime, str, int, str]] = field(default_factory=list)  # (at, taker, channel, kind)
    explained: list[tuple[int, int, timedelta]] = field(default_factory=list)  # missing checkpoints, explained


def _assignment(slots_of: dict[str, list[int]]) -> dict[int, str]:
    """Every slot to a collector: cut the slot range between the collectors' channels."""
    cuts = sorted((max(s), name) for name, s in slots_of.items())
    out: dict[int, str] = {}
    start = 0
    for i, (top, name) in enumerate(cuts):
        end = SLOTS if i == len(cuts) - 1 else top + 1
        for s in range(start, end):
            out[s] = name
        start = end
    return out


def _one_run(month: Month, col: Collector) -> None:
    """What `tgspread run --collector NAME` does at one firing of its timer, with this collector's account and archive:
    pick up what the lake hands it, plan, and only when something is due connect, collect and publish (a run with
    nothing due stops after planning, as the command does)."""
    now = month.world.now
    col.firings += 1
    owned = Ownership(col.name, load(month.assignment))
    taken = pick_up(col.archive, month.lake, owned, now=now)
    if taken is not None:
        month.taken += [(now, col.name, h.channel_id, h.kind) for h in taken.added]
        col.next_due = None                     # the set changed: plan again
    idle = col.next_due is not None and now < col.next_due
    if idle:
        col.skipped_idle += 1
        if col.skipped_idle % VERIFY_IDLE_EVERY:
            return
        col.verified_idle += 1
    plan = read_plan(col.archive, run_inputs([], col.archive), now=now, settings=SETTINGS, ownership=owned)
    if idle:
        assert not plan.scheduled and plan.next_due_at() == col.next_due, (col.name, now, col.next_due)
        return
    col.not_owned += [(now, raw, cid) for raw, cid, _ in plan.not_owned]
    if not plan.scheduled:
        col.planned_idle += 1
        col.next_due = plan.next_due_at()
        return
    client = simulated_client(col.account, flood_sleep_threshold=0)
    outcome = asyncio.run(execute_plan(plan, client, col.archive, collect_settings=CollectSettings(ownership=owned)))
    col.runs[now] = outcome
    col.next_due = outcome.summary.next_due_at
    for c in outcome.report.channels:
        if c.outcome == "not_owned" and c.channel_id is not None:
            col.not_owned.append((now, c.input, c.channel_id))
            month.handed.append((col.name, c.channel_id, "named"))
    publish(col.archive, month.lake, collector=col.name, now=now)


def _discover(month: Month, col: Collector) -> None:
    owned = Ownership(col.name, load(month.assignment))
    pick_up(col.archive, month.lake, owned, now=month.world.now)
    client = simulated_client(col.account, flood_sleep_threshold=0)
    report = asyncio.run(discover(client, col.archive, DiscoverySettings(
        thresholds=Thresholds(depth=1), auto=True, ownership=owned, max_resolves=10), now=month.world.now))
    month.handed += [(col.name, c.channel_id, "discovery") for c in report.candidates
                     if c.decision == "not_owned" and c.channel_id is not None]
    publish(col.archive, month.lake, collector=col.name, now=month.world.now)
    col.next_due = None                         # discovery may have added channels: plan at the next firing


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = Path(tmp_path_factory.mktemp("collectors"))
    world = generate_world(31, channels=6, days=2, future_days=DAYS + 2, posts_per_day=4, special_seeds=False,
                           external_channels=3)
    seeds = {ch.channel_id: str(ch.username_at(world.now)) for ch in collected_channels(world)}
    every = {cid: str(ch.username_at(world.now)) for cid, ch in world.channels.items()
             if not ch.megagroup and not ch.closed and ch.username_at(world.now) is not None}
    # the seeds, two per collector by slot order
    ordered = sorted(seeds, key=slot)
    mine = {"a": ordered[0:2], "b": ordered[2:4], "c": ordered[4:6]}
    assignment = _assignment({n: [slot(c) for c in ids] for n, ids in mine.items()})
    assignment_file = root / "slots.toml"
    assignment_file.write_text(render_toml(assignment), encoding="utf-8")
    moved_slot = slot(mine[MOVE_FROM][0])
    assert assignment[moved_slot] == MOVE_FROM and [slot(c) for c in mine[MOVE_FROM]].count(moved_slot) == 1
    lake = root / "lake"
    cols = {n: Collector(n, Account(world, n, limits=LIMITS[n]), Archive(root / f"archive-{n}.duckdb"))
            for n in ("a", "b", "c")}
    month = Month(world, lake, assignment_file, cols, every, moved_slot)
    # a's set names one of b's channels (handed on); b's set lacks it: b learns it from the lake only
    named_of_b = mine["b"][1]
    for n, col in cols.items():
        names = [seeds[c] for c in mine[n] if c != named_of_b] + ([seeds[named_of_b]] if n == "a" else [])
        add_channels(col.archive, names, now=world.now)
    rng = random.Random(15)
    start = world.now
    end = start + timedelta(days=DAYS)
    month.owners[start] = dict(assignment)
    discovered: set[int] = set()
    try:
        firing = start
        while firing < end:
            day = (firing - start) / timedelta(days=1)
            if month.block_fault is None and day >= BLOCKED_AT_DAY:
                month.block_fault = cols[BLOCKED].account.inject(
                    Fault("FLOOD_WAIT", request=GET_HISTORY, seconds=int(BLOCK.total_seconds()), at=1))
                month.blocked_at = firing
            if month.moved_at is None and day >= MOVE_AT_DAY:
                assignment[moved_slot] = MOVE_TO
                assignment_file.write_text(render_toml(assignment), encoding="utf-8")
                month.moved_at = firing
                month.owners[firing] = dict(assignment)
                for col in cols.values():
                    col.next_due = None                 # the assignment changed: every collector plans again
            month.ticks.append(firing)
            # each collector's timer fires at this quarter hour plus its own random delay
            for delay, col in sorted((TIMER_DELAY * rng.random(), col) for col in cols.values()):
                world.advance(firing + delay - world.now)
                _one_run(month, col)
            for at in DISCOVER_AT_DAYS:
                if at not in discovered and day >= at:
                    discovered.add(at)
                    for col in cols.values():
                        _discover(month, col)
            firing += TIMER
            world.advance(firing - world.now)
        month.ticks.append(world.now)
        yield month
    finally:
        for col in cols.values():
            col.archive.close()


# -- helpers ---------------------------------------------------------------------------------------------------
def _owner_at(month: Month, channel_id: int, at: datetime) -> str:
    changes = [t for t in month.owners if t <= at]
    return month.owners[max(changes) if changes else min(month.owners)][slot(channel_id)]


def _lake_posts(month: Month) -> dict[tuple[int, int], dict[str, Any]]:
    con = analysis.connect(month.lake)
    cur = con.execute(f"SELECT channel_id, message_id, last_seen_at, deleted_at, source, "
                      f"{', '.join(CONTRACT_COLUMNS)} FROM posts")
    names = [d[0] for d in cur.description]
    return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _ok_passes(month: Month) -> dict[int, list[datetime]]:
    """Channel -> times of the passes that collected it completely (any collector)."""
    out: dict[int, list[datetime]] = defaultdict(list)
    for col in month.collectors.values():
        for at, outcome in col.runs.items():
            for c in outcome.report.channels:
                if c.outcome == "ok" and c.channel_id is not None:
                    out[c.channel_id].append(at)
    return {c: sorted(ts) for c, ts in out.items()}


# -- the tests -------------------------------------------------------------------------------------------------
def test_every_post_equals_the_world(month: Month) -> None:
    posts = _lake_posts(month)
    ok = _ok_passes(month)
    assert len(ok) >= 7, "the six seeds and some discovered channels were collected"
    for channel_id, times in ok.items():
        ch = month.world.channels[channel_id]
        got = {m for (c, m) in posts if c == channel_id}
        must = {m.message_id for m in ch.messages if not m.is_service and any(m.visible_at(t) for t in times)}
        assert must <= got, (channel_id, sorted(must - got)[:5])
    for key, row in posts.items():
        msg = month.world.message(*key)
        assert msg is not None and row["source"] == "api", key
        comments = month.world.channels[key[0]].linked_chat_id is not None
        want = expected_post(msg, row["last_seen_at"], comments=comments)
        if want["fwd_channel_id"] is None and want["fwd_from_name"] is not None:   # a person: a pseudonym in the lake
            assert row["fwd_from_name"] is not None and len(row["fwd_from_name"]) == 16
            want["fwd_from_name"] = row["fwd_from_name"]
        assert {k: row[k] for k in want} == want, key
        if row["deleted_at"] is not None:
            assert not msg.visible_at(row["deleted_at"]), key


def test_no_row_appears_twice(month: Month) -> None:
    con = analysis.connect(month.lake)
    for table, key in analysis.lake.NATURAL_KEYS.items():
        cols = ", ".join(key)
        dup = con.execute(f"SELECT count(*) - count(DISTINCT ({cols})) FROM {table}").fetchone()
        assert dup == (0,), table
    # the moved slot: both collectors hold rows of it (the old owner's history, the new owner's since)
    files = {p.stem for p in (month.lake / "posts" / f"slot={month.moved_slot:02d}").glob("month=*/*.parquet")}
    assert files == {MOVE_FROM, MOVE_TO}


def test_no_channel_is_collected_by_two_collectors(month: Month) -> None:
    """Only the owner of a channel's slot at the time ever sent a request about its content."""
    for col in month.collectors.values():
        for at, outcome in col.runs.items():
            for c in outcome.report.channels:
                if c.channel_id is not None and c.outcome != "not_owned" and (c.new_posts or c.refreshed_posts):
                    assert _owner_at(month, c.channel_id, at) == col.name, (col.name, at, c.channel_id)
    moved = [cid for cid in _ok_passes(month) if slot(cid) == month.moved_slot]
    assert moved
    assert month.moved_at is not None
    for cid in moved:
        before = [t for t in _ok_passes(month)[cid] if t < month.moved_at]
        after = [t for t in _ok_passes(month)[cid] if t >= month.moved_at]
        assert before and after
        assert all(cid in {c.channel_id for c in month.collectors[MOVE_FROM].runs[t].report.channels}
                   for t in before if t in month.collectors[MOVE_FROM].runs)
        # the new owner took the history over from the lake: it never fetched a post the old owner had
        taken = [t for t in month.taken if t[2] == cid]
        assert taken and taken[0][1] == MOVE_TO and taken[0][3] == "moved"


def test_channels_found_by_others_are_handed_on_and_collected_by_their_owner(month: Month) -> None:
    ok = _ok_passes(month)
    kinds = {how for _, _, how in month.handed}
    assert kinds == {"named", "discovery"}, month.handed
    for finder, cid, _how in month.handed:
        owner = month.owners[max(month.owners)][slot(cid)]
        assert owner != finder
        if month.channels.get(cid):
            assert cid in ok, (finder, cid)
            assert any(t[1] == owner and t[2] == cid for t in month.taken) or cid in {
                c for n, col in month.collectors.items() if n == owner
                for outcome in col.runs.values() for c in (r.channel_id for r in outcome.report.channels)}
    # the finders recorded the refusal in their runs
    a_refused = {cid for _, _, cid in month.collectors["a"].not_owned}
    assert a_refused


def test_checkpoints_are_observed_except_those_the_blocked_day_explains(month: Month) -> None:
    con = analysis.connect(month.lake)
    obs: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for c, m, t in con.execute("SELECT channel_id, message_id, observed_at FROM post_observations "
                               "ORDER BY observed_at").fetchall():
        obs[(c, m)].append(t)
    posts = _lake_posts(month)
    assert month.blocked_at is not None
    blocked = (month.blocked_at, month.blocked_at + BLOCK)
    end = month.ticks[-1]
    # TOLERANCE holds only while nothing but the blocked day cuts a pass: no other pass ended flood_wait
    for name, col in month.collectors.items():
        for run_at, outcome in col.runs.items():
            cut = [c.input for c in outcome.report.channels if c.outcome == "flood_wait"]
            assert not cut or (name == BLOCKED and blocked[0] <= run_at < blocked[1]), (name, run_at, cut)
    checked: dict[timedelta, int] = defaultdict(int)
    for key, row in posts.items():
        stamps = obs[key]
        assert stamps, key
        first = stamps[0]
        for checkpoint in DEFAULT_CHECKPOINTS:
            at = row["posted_at"] + checkpoint
            gone = row["deleted_at"] is not None and row["deleted_at"] <= at + TOLERANCE
            if at <= first or at + TOLERANCE > end or gone:
                continue
            checked[checkpoint] += 1
            if any(at <= s <= at + TOLERANCE for s in stamps):
                continue
            # not observed in time: only the blocked account's channels, during its blocked day
            owner = _owner_at(month, key[0], at)
            assert owner == BLOCKED and at < blocked[1] and at + TOLERANCE > blocked[0], (key, checkpoint, owner, at)
            month.explained.append((key[0], key[1], checkpoint))
    assert sum(checked.values()) > 300 and all(checked[c] > 0 for c in DEFAULT_CHECKPOINTS[:-1]), checked
    runs = ", ".join(f"{n}: {c.firings} firings, {len(c.runs)} runs that collected, {c.planned_idle} planned idle, "
                     f"{c.skipped_idle} idle not planned ({c.verified_idle} checked)"
                     for n, c in month.collectors.items())
    print(f"\n{runs}\ncheckpoints checked within {TOLERANCE}: "
          f"{', '.join(f'{c}: {n}' for c, n in sorted(checked.items()))}\n"
          f"{len(month.explained)} checkpoint observation(s) missing, all of collector {BLOCKED!r}'s channels "
          f"during its blocked day {blocked[0]:%Y-%m-%d %H:%M} to {blocked[1]:%Y-%m-%d %H:%M}: "
          f"{month.explained[:10]}")
    assert month.explained, "the blocked day should cost some checkpoints"


def test_each_account_kept_within_its_own_limits_and_the_block_hit_one(month: Month) -> None:
    for name, col in month.collectors.items():
        assert col.account.requests[GET_HISTORY] > 0
        assert set(col.account.limits) == set(LIMITS[name])
    assert month.block_fault is not None and month.block_fault.fired == 1
    # the block is the blocked account's alone: the others kept collecting history meanwhile
    assert month.blocked_at is not None
    for name, col in month.collectors.items():
        during = [t for t in col.runs if month.blocked_at < t < month.blocked_at + BLOCK]
        history = [t for t in during if any(c.new_posts for c in col.runs[t].report.channels)]
        assert (not history) if name == BLOCKED else history, name


def test_shards_says_what_happened(month: Month) -> None:
    from typer.testing import CliRunner

    shown = CliRunner().invoke(app, ["shards", "--lake", str(month.lake), "--assignment", str(month.assignment)],
                               env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    print(shown.output)
    lines = {line.split()[1]: line for line in shown.output.splitlines() if line.startswith("│")}
    assert set(lines) >= {"a", "b", "c"}
    assert "unowned slots: -" in shown.output
    assert "slots with channels the owner has not published: -" in shown.output      # every move taken over
    # the moved slot: posts of both collectors, now owned by the new one
    assert f"slot {month.moved_slot}: posts from {MOVE_FROM}, {MOVE_TO} (moved to {MOVE_TO};" in shown.output
    # what was handed on (named, found by discovery, and a's refusals of the moved slot's channel), and that
    # every one of them was collected by its owner since
    found = re.search(r"handed on: (\d+) channels? found in other collectors' slots, (\d+) collected since, "
                      r"(\d+) not \(yet\)", " ".join(shown.output.split()))
    assert found is not None, shown.output
    total, collected, waiting = map(int, found.groups())
    assert total >= len({cid for _, cid, _ in month.handed}) and collected == total and waiting == 0
