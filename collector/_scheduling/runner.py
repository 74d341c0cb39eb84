"""Scheduled collection as a library: what is due now (a plan), and one run that follows it under a budget.

``tgspread run`` (collector/_cli/run.py) is the command around it. A run reads the archive to decide
what is due (:mod:`collector._scheduling.plan`, pure), collects the due channels most overdue first under a
request budget (:mod:`collector._scheduling.budget`) and records what it spent. See docs/scheduling.md.

Example::

    with Archive(path) as archive:
        plan = read_plan(archive, inputs, now=now, settings=RunSettings())
        if plan.scheduled:                  # connect only now: nothing due, no connection
            outcome = await execute_plan(plan, client, archive)
            print(outcome.summary.line())

Outcomes (``run_channels.outcome``: CONTRACT's five values, and ``not_owned`` for a channel of another
collector's slot, issue 15, never a failure): a channel stopped by the request budget,
or due but not started because its first request is flood-limited or the hourly resolve budget is used
up, is recorded as ``flood_wait`` (a rate limit, caught up by the next runs) with an error that says which;
budget errors contain ``budget is used up``. A channel that is not due gets no row: it was not part of
the run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from collector._archive.archive import Archive
from collector._archive.schedule import record_schedule, record_usage, usage_since
from collector._parse.channel_ref import ChannelRefError, parse_channel_ref
from collector._parse.refresh import DEFAULT_CHECKPOINTS, DEFAULT_SNAPSHOT_EVERY, due_post_sql, is_snapshot_due

from .budget import BUDGET_MARK, RequestBudget
from .channel_set import tracked_inputs
from .ownership import NOT_OWNED, Ownership
from .plan import RESOLVE, ChannelFacts, Plan, RunSettings, RunSummary, make_plan, next_due_after

if TYPE_CHECKING:
    from telethon import TelegramClient

    from collector._telegram.collect import CollectReport, CollectSettings

RESOLVE_WINDOW = timedelta(hours=1)
_USAGE_EVERY = 2.0      # seconds between saves of a run's request usage while it runs
_RATE_WINDOW_DAYS = 7


# -- what the archive says (reads only) ----------------------------------------------------------------------
def run_inputs(config_channels: Sequence[str], archive: Archive | None) -> list[str]:
    """The channels a run considers: the config's ``channels``, then the archive's collected set."""
    tracked = tracked_inputs(archive) if archive is not None else []
    return list(dict.fromkeys(n.strip() for n in [*config_channels, *tracked] if n.strip()))


@dataclass(frozen=True)
class _Known:
    """What the archive holds about a reachable channel (one row of ``channels``)."""

    channel_id: int
    username: str | None
    status: str | None
    last_snapshot_at: datetime | None


class _ArchiveView:
    """Everything a plan needs from the archive, read with a handful of set-wise queries (none per channel)."""

    def __init__(self, archive: Archive, now: datetime, checkpoints: Sequence[timedelta]) -> None:
        con = archive.con
        self.by_id: dict[int, _Known] = {}
        for cid, username, status, snap in con.execute(
                "SELECT channel_id, username, status, last_snapshot_at FROM channels WHERE access_hash IS NOT NULL"
        ).fetchall():
            self.by_id[int(cid)] = _Known(int(cid), username, status, snap)
        self.by_name = {str(u): int(c) for u, c in con.execute(
            "SELECT username, channel_id FROM channel_usernames").fetchall() if int(c) in self.by_id}
        self.passes_by_id: dict[int, tuple[datetime | None, bool]] = {}
        self.passes_by_name: dict[str, tuple[datetime | None, bool]] = {}
        for cid, name, last, latest in con.execute(
                "SELECT c.channel_id, CASE WHEN c.channel_id IS NULL THEN lower(c.input) END, "
                "max(r.started_at) FILTER (WHERE c.outcome <> 'flood_wait'), arg_max(c.outcome, r.started_at) "
                "FROM run_channels c JOIN runs r USING (run_id) WHERE r.telethon_version IS NOT NULL "
                "AND c.outcome <> 'not_owned' "
                "GROUP BY ALL").fetchall():
            if cid is not None:
                self.passes_by_id[int(cid)] = (last, latest == "flood_wait")
            else:
                self.passes_by_name[str(name)] = (last, latest == "flood_wait")
        self.cursors = {int(c): int(m) for c, m in con.execute(
            "SELECT channel_id, max_message_id FROM channel_cursors").fetchall()}
        self.recent = {int(c): int(n) for c, n in con.execute(
            "SELECT channel_id, count(*) FROM posts WHERE posted_at > ? AND posted_at <= ? GROUP BY channel_id",
            [now - timedelta(days=_RATE_WINDOW_DAYS), now]).fetchall()}
        # the same rule as Archive.due_posts, counted for every channel at once
        self.due = {int(c): int(n) for c, n in con.execute(
            f"SELECT channel_id, count(*) FROM posts p WHERE deleted_at IS NULL AND {due_post_sql(checkpoints)} "
            "GROUP BY channel_id", {"now": now}).fetchall()}
        self.flood_waits = archive.active_flood_waits(now)
        self.resolves, self.resolve_free_at = 0, None
        if not archive.read_only or archive.has_table("run_requests"):   # read-only: maybe not migrated yet
            self.resolves, earliest = usage_since(archive, RESOLVE, now - RESOLVE_WINDOW, now)
            self.resolve_free_at = earliest + RESOLVE_WINDOW if earliest is not None else None

    def lookup(self, username: str | None, channel_id: int | None) -> _Known | None:
        if channel_id is not None:
            return self.by_id.get(channel_id)
        found = self.by_name.get((username or "").lower())
        return self.by_id.get(found) if found is not None else None

    def passes(self, channel_id: int | None, raw: str) -> tuple[datetime | None, bool]:
        """(start of the last API pass that did not end flood_wait, did its latest one end flood_wait?)."""
        if channel_id is not None and channel_id in self.passes_by_id:
            return self.passes_by_id[channel_id]
        return self.passes_by_name.get(raw.strip().lower(), (None, False))


def _facts(view: _ArchiveView | None, raw: str, now: datetime, settings: RunSettings,
           snapshot_every: timedelta) -> ChannelFacts:
    """One channel's :class:`ChannelFacts` (``view`` None: no archive yet, nothing known)."""
    try:
        ref = parse_channel_ref(raw)
    except ChannelRefError:
        ref = None
    name = f"name:{raw.strip().lower()}"
    if ref is None or ref.invite is not None:           # refused without a request, never blocked
        last, retry = view.passes(None, raw) if view is not None else (None, False)
        return ChannelFacts(raw, name, last_pass_at=last, retry=retry, snapshot_due=False,
                            interval=settings.interval)
    key = view.lookup(ref.username, ref.channel_id) if view is not None else None
    interval = settings.interval_for(ref.username, str(ref.channel_id) if ref.channel_id else None,
                                     key.username if key else None, str(key.channel_id) if key else None)
    if key is None or view is None:
        last, retry = view.passes(None, raw) if view is not None else (None, False)
        return ChannelFacts(raw, name, needs_resolve=ref.username is not None, last_pass_at=last, retry=retry,
                            snapshot_due=ref.username is not None, interval=interval)
    cid = key.channel_id
    last, retry = view.passes(cid, raw)
    reachable = key.status != "group"          # a refused group costs no request
    return ChannelFacts(
        raw, f"id:{cid}", channel_id=cid, known=reachable, last_pass_at=last, retry=retry,
        snapshot_due=reachable and is_snapshot_due(key.last_snapshot_at, now, snapshot_every),
        refresh_due=view.due.get(cid, 0) if reachable else 0,
        posts_per_day=view.recent.get(cid, 0) / _RATE_WINDOW_DAYS if view.cursors.get(cid) else None,
        interval=interval)


def _known_id(f: ChannelFacts) -> int | None:
    """The channel id of an input, when known without a request (archived, or named by its id)."""
    if f.channel_id is not None:
        return f.channel_id
    with contextlib.suppress(ChannelRefError):
        return parse_channel_ref(f.input).channel_id
    return None


def read_plan(archive: Archive | None, inputs: Sequence[str], *, now: datetime, settings: RunSettings,
              checkpoints: Sequence[timedelta] = DEFAULT_CHECKPOINTS,
              snapshot_every: timedelta = DEFAULT_SNAPSHOT_EVERY, ownership: Ownership | None = None) -> Plan:
    """The run's :class:`~collector._scheduling.plan.Plan` at ``now``, from the archive alone (None: no archive yet).

    Reads only: safe on an archive opened read-only (``--dry-run``). Inputs naming the same channel
    (``durov`` and its numeric id) count once, under the first name. ``ownership``: channels whose id is known
    and whose slot another collector owns go to ``plan.not_owned`` instead (an unknown username is resolved
    by the run, which then finds out); a known group or private channel among them is not handed on, and its
    refusal says what it is.
    """
    view = _ArchiveView(archive, now, checkpoints) if archive is not None else None
    facts: dict[str, ChannelFacts] = {}
    refused: dict[int, tuple[str, int, str]] = {}
    for raw in inputs:
        f = _facts(view, raw, now, settings, snapshot_every)
        cid = _known_id(f)
        if ownership is not None and cid is not None and not ownership.owns(cid):
            known = view.by_id.get(cid) if view is not None else None
            refused.setdefault(cid, (raw, cid, ownership.refusal(cid, known.status if known else None)))
            continue
        facts.setdefault(f.key, f)
    plan = make_plan(list(facts.values()), now=now, settings=settings,
                     flood_waits=view.flood_waits if view else None, resolves_used=view.resolves if view else 0,
                     resolve_free_at=view.resolve_free_at if view else None)
    return replace(plan, not_owned=list(refused.values()))


# -- one run --------------------------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    """What :func:`execute_plan` did: the plan it followed, the collect report, the budget spent, the line."""

    plan: Plan
    report: CollectReport
    budget: RequestBudget
    summary: RunSummary

    @property
    def complete(self) -> bool:
        """True when every due channel was collected (``tgspread run`` exits 0, else 1)."""
        return self.report.status == "ok"


def _skipped_row(plan: Plan) -> Iterator[dict[str, Any]]:
    for c in plan.skipped:
        yield {"input": c.facts.input, "channel_id": c.facts.channel_id, "outcome": "flood_wait",
               "error": c.skipped_error(), "new_posts": 0, "refreshed_posts": 0, "edits": 0, "deletions": 0,
               "snapshot": False}
    for raw, cid, why in plan.not_owned:
        yield {"input": raw, "channel_id": cid, "outcome": NOT_OWNED, "error": why, "new_posts": 0,
               "refreshed_posts": 0, "edits": 0, "deletions": 0, "snapshot": False}


def _run_id_at(archive: Archive, now: datetime) -> int | None:
    row = archive.con.execute("SELECT max(run_id) FROM runs WHERE started_at = ?", [now]).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def summarize(plan: Plan, report: CollectReport | None, budget: RequestBudget | None) -> RunSummary:
    """The one-line summary of a run (``report`` None: nothing was due, no run was made)."""
    results = report.channels if report is not None else []
    flood_wait = [c for c in results if c.outcome == "flood_wait"]
    by_budget = sum(1 for c in flood_wait if BUDGET_MARK in (c.error or ""))
    deferred = sum(1 for c in plan.skipped if c.state == "deferred")
    blocked = sum(1 for c in plan.skipped if c.state == "blocked")
    if report is not None:
        status = report.status
    elif plan.skipped:
        status = "everything due waits for a flood wait or the resolve budget"
    else:
        status = "nothing due"
    used = budget.total if budget is not None else 0
    return RunSummary(
        at=plan.now, run_id=report.run_id if report is not None else None, status=status,
        ok=sum(1 for c in results if c.outcome == "ok"), flood=len(flood_wait) - by_budget + blocked,
        budget=by_budget + deferred,
        failed=sum(1 for c in results if c.outcome not in ("ok", "flood_wait", NOT_OWNED)),
        not_due=len(plan.not_due),
        not_owned=len(plan.not_owned) + sum(1 for c in results if c.outcome == NOT_OWNED),
        new_posts=report.new_posts if report else 0,
        refreshed=report.refreshed_posts if report else 0, requests=used, max_requests=plan.settings.max_requests,
        resolves=plan.resolves_used + (budget.used[RESOLVE] if budget is not None else 0),
        max_resolves=plan.settings.max_resolves_per_hour,
        next_due_at=next_due_after(plan, {c.input: (c.outcome, c.channel_id) for c in results}))


async def execute_plan(
    plan: Plan,
    client: TelegramClient,
    archive: Archive,
    *,
    collect_settings: CollectSettings | None = None,
    progress: Callable[[str, Any], None] | None = None,
) -> RunOutcome:
    """Collect ``plan.scheduled`` through ``client`` under the plan's budget, at the plan's clock.

    Due channels the plan does not start (flood wait, resolve budget) get ``flood_wait`` rows in the same
    run. The requests sent are kept in ``run_requests`` as the run goes (every ``_USAGE_EVERY`` seconds
    between channels, and at the end), so a killed run still counts nearly all it sent.
    """
    from collector._telegram.collect import CollectSettings, collect

    settings = plan.settings
    collect_settings = collect_settings or CollectSettings()
    budget = RequestBudget(
        plan.now, max_requests=settings.max_requests, limits={RESOLVE: plan.resolves_left},
        limit_until={RESOLVE: plan.resolve_free_at or plan.now + RESOLVE_WINDOW},
        limit_labels={RESOLVE: ("resolve", f"{settings.max_resolves_per_hour} per hour, "
                                           "[run] max_resolves_per_hour")})
    run_id: list[int] = []
    saved = [time.monotonic()]

    def save_usage() -> None:
        saved[0] = time.monotonic()
        if not run_id:
            found = _run_id_at(archive, plan.now)
            if found is None:
                return
            run_id.append(found)
        record_usage(archive, run_id[0], plan.now, budget.used)

    budget.persist = save_usage     # every resolve is in run_requests before it is sent (issue 17, item 27)

    def observe(stage: str, result: Any) -> None:
        if progress is not None:
            progress(stage, result)
        if stage == "done" and time.monotonic() - saved[0] >= _USAGE_EVERY:
            save_usage()

    try:
        report = await collect(client, [c.facts.input for c in plan.scheduled], archive, now=plan.now,
                               settings=collect_settings, progress=observe, budget=budget)
    finally:
        with contextlib.suppress(Exception):       # an archive that failed must not hide the original error
            save_usage()
    for row in _skipped_row(plan):
        archive.record_run_channel(report.run_id, row)
    if plan.skipped and report.status == "ok":
        report.status = "partial"
        assert report.finished_at is not None
        archive.finish_run(report.run_id, status="partial", finished_at=report.finished_at,
                           requests=sum(report.requests.values()))
    summary = summarize(plan, report, budget)
    record_schedule(archive, {
        "run_id": report.run_id, "started_at": plan.now, "channels_due": len(plan.scheduled),
        "channels_skipped": len(plan.skipped), "channels_not_due": len(plan.not_due),
        "max_requests": settings.max_requests, "resolves_allowed": plan.resolves_left, "requests": budget.total,
        "budget_exhausted": budget.exhausted, "next_due_at": summary.next_due_at})
    return RunOutcome(plan, report, budget, summary)
