"""`tgspread run`: the schedule (pure), the request budget, the [run] config, the command and the contrib files.

The month-long scheduled operation is tests/system/test_run_month.py; here each rule is checked on its own, against
the simulated Telegram (a real TelegramClient) where requests are involved.
"""

from __future__ import annotations

import asyncio
import configparser
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer.main
from telethon.tl import functions
from typer.testing import CliRunner

from collector import Archive, CollectSettings, collect
from collector._cli.app import app
from collector._cli.common import Exit
from collector._config import ConfigError, load_config
from collector._scheduling.budget import BUDGET_MARK, BudgetExhausted, RequestBudget
from collector._scheduling.plan import (
    GET_FULL_CHANNEL,
    GET_HISTORY,
    GET_MESSAGES,
    RESOLVE,
    ChannelFacts,
    RunSettings,
    channel_jitter,
    loop_delay,
    make_plan,
    next_due_after,
)
from collector._scheduling.runner import execute_plan, read_plan
from collector._simulated import generate_world, simulated_client
from collector._simulated.generate import collected_channels, generate_channel_world
from collector._telegram.calls import Caller, FloodLimited, request_name
from collector._telegram.client import SIMULATED_ENV
from tests.helpers.simworld import simulated_cli

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
H = timedelta(hours=1)
runner = CliRunner()


def facts(name: str, **kw: Any) -> ChannelFacts:
    known = kw.pop("known", True)
    return ChannelFacts(input=name, key=f"id:{name}" if known else f"name:{name}", known=known,
                        needs_resolve=not known, channel_id=hash(name) % 1000 if known else None, **kw)


# -- the schedule (pure) --------------------------------------------------------------------------------------
def test_request_names_match_the_collector() -> None:
    assert request_name(functions.contacts.ResolveUsernameRequest("x")) == RESOLVE
    assert request_name(functions.messages.GetHistoryRequest(None, 0, None, 0, 0, 0, 0, 0)) == GET_HISTORY
    assert request_name(functions.channels.GetFullChannelRequest(None)) == GET_FULL_CHANNEL
    assert request_name(functions.channels.GetMessagesRequest(None, [])) == GET_MESSAGES


def test_jitter_is_fixed_per_channel_and_pass_and_spreads_channels() -> None:
    j = timedelta(minutes=10)
    offsets = [channel_jitter(f"id:{i}", T0, j) for i in range(200)]
    assert all(-j <= o <= j for o in offsets)
    assert offsets == [channel_jitter(f"id:{i}", T0, j) for i in range(200)]
    assert min(offsets) < -j * 0.8 and max(offsets) > j * 0.8, "spread over the whole range"
    assert len({o.total_seconds() // 60 for o in offsets}) > 15
    assert channel_jitter("id:1", T0, j) != channel_jitter("id:1", T0 + H, j), "a new draw after each pass"
    assert channel_jitter("id:1", T0, timedelta(0)) == timedelta(0)


def test_loop_delay_is_every_plus_up_to_jitter() -> None:
    import random

    rng = random.Random(1)
    delays = [loop_delay(timedelta(minutes=15), timedelta(minutes=5), rng) for _ in range(100)]
    assert all(timedelta(minutes=15) <= d <= timedelta(minutes=20) for d in delays)
    assert len(set(delays)) == 100


def test_plan_states_and_order() -> None:
    s = RunSettings(interval=H, jitter=timedelta(minutes=10))
    never = facts("never", last_pass_at=None)
    retry = facts("retry", last_pass_at=T0 - timedelta(minutes=5), retry=True)
    old = facts("old", last_pass_at=T0 - 3 * H)
    older = facts("older", last_pass_at=T0 - 5 * H)
    fresh = facts("fresh", last_pass_at=T0 - timedelta(minutes=20))
    plan = make_plan([fresh, old, older, retry, never], now=T0, settings=s)
    assert [(c.facts.input, c.state) for c in plan.channels] == [
        ("retry", "due"), ("never", "due"), ("older", "due"), ("old", "due"), ("fresh", "not_due")]
    (not_due,) = plan.not_due
    last = T0 - timedelta(minutes=20)
    assert not_due.due_at == last + H + channel_jitter("id:fresh", last, s.jitter)
    assert "never collected" in plan.channels[1].reason and "cut short" in plan.channels[0].reason
    assert plan.next_due_at() == T0


def test_due_is_interval_plus_jitter_exactly() -> None:
    s = RunSettings(interval=2 * H, jitter=timedelta(minutes=30))
    last = T0 - 2 * H
    due_at = last + 2 * H + channel_jitter("id:c", last, s.jitter)
    f = ChannelFacts("c", "id:c", channel_id=1, known=True, last_pass_at=last, interval=2 * H)
    before = make_plan([f], now=due_at - timedelta(seconds=1), settings=s)
    at = make_plan([f], now=due_at, settings=s)
    assert before.channels[0].state == "not_due" and at.channels[0].state == "due"
    assert before.next_due_at() == due_at


def test_flood_wait_blocks_the_first_request_a_channel_needs() -> None:
    s = RunSettings()
    until = T0 + 5 * H
    known, unknown = facts("known"), facts("new", known=False)
    history = make_plan([known, unknown], now=T0, settings=s, flood_waits={GET_HISTORY: until})
    assert {c.facts.input: c.state for c in history.channels} == {"known": "blocked", "new": "due"}
    blocked = history.skipped[0]
    assert blocked.until == until and "until 2026-03-01T17:00Z" in blocked.skipped_error()
    resolve = make_plan([known, unknown], now=T0, settings=s, flood_waits={RESOLVE: until})
    assert {c.facts.input: c.state for c in resolve.channels} == {"known": "due", "new": "blocked"}
    # a snapshot flood wait does not keep a channel out (collect() skips only that request)
    snap = make_plan([known], now=T0, settings=s, flood_waits={GET_FULL_CHANNEL: until})
    assert snap.channels[0].state == "due"
    over = make_plan([known], now=until, settings=s, flood_waits={GET_HISTORY: until})
    assert over.channels[0].state == "due", "a wait that has ended blocks nothing"


def test_resolve_budget_defers_new_names_in_order() -> None:
    s = RunSettings(max_resolves_per_hour=3)
    names = [facts(f"new{i}", known=False) for i in range(4)]
    plan = make_plan([facts("known"), *names], now=T0, settings=s, resolves_used=1, resolve_free_at=T0 + H / 3)
    states = {c.facts.input: c.state for c in plan.channels}
    assert states == {"known": "due", "new0": "due", "new1": "due", "new2": "deferred", "new3": "deferred"}
    assert plan.resolves_left == 2
    assert all(BUDGET_MARK in c.reason or "used up" in c.reason for c in plan.skipped)
    none_left = make_plan(names, now=T0, settings=RunSettings(max_resolves_per_hour=0), resolves_used=0)
    assert all(c.state == "deferred" for c in none_left.channels)


def test_estimates() -> None:
    s = RunSettings()
    f = facts("c", last_pass_at=T0 - 10 * H, posts_per_day=480.0, refresh_due=250, snapshot_due=True)
    e = make_plan([f], now=T0, settings=s).channels[0].estimate
    # 200 new posts expected: two full pages oldest first, then one answered empty; 250 due posts: 3 refresh requests
    assert (e.resolve, e.snapshot, e.history, e.refresh, e.open_ended) == (0, 1, 3, 3, False)
    new = make_plan([facts("n", known=False)], now=T0, settings=s).channels[0].estimate
    assert (new.resolve, new.snapshot, new.history, new.open_ended, new.label()) == (1, 1, 1, True, "3+")
    bad = ChannelFacts("no spaces", "name:no spaces")
    assert make_plan([bad], now=T0, settings=s).channels[0].estimate.total == 0


def test_next_due_after_a_run() -> None:
    s = RunSettings(interval=H, jitter=timedelta(minutes=10))
    a, b = facts("a", last_pass_at=None), facts("b", last_pass_at=None)
    plan = make_plan([a, b], now=T0, settings=s)
    both_ok = next_due_after(plan, {"a": ("ok", a.channel_id), "b": ("not_found", None)})
    assert both_ok == min(T0 + H + channel_jitter(f"id:{a.channel_id}", T0, s.jitter),
                          T0 + H + channel_jitter("id:b", T0, s.jitter))
    assert next_due_after(plan, {"a": ("ok", a.channel_id), "b": ("flood_wait", None)}) == T0
    # what the run will compute from the archive next time is the same time
    again = make_plan([ChannelFacts("a", f"id:{a.channel_id}", channel_id=a.channel_id, known=True,
                                    last_pass_at=T0, interval=H)], now=T0, settings=s)
    assert again.channels[0].due_at == T0 + H + channel_jitter(f"id:{a.channel_id}", T0, s.jitter)


@pytest.mark.parametrize("kw", [{"jitter": timedelta(minutes=40)}, {"max_requests": 0},
                                {"max_resolves_per_hour": -1}, {"interval": timedelta(0)},
                                {"intervals": (("x", timedelta(minutes=10)),)}])
def test_run_settings_refuse_bad_values(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RunSettings(**kw)


def test_per_channel_interval() -> None:
    s = RunSettings(intervals=(("durov", 6 * H), ("123", 2 * H)))
    assert s.interval_for("Durov") == 6 * H and s.interval_for(None, "123") == 2 * H and s.interval_for("x") == H


# -- the budget -----------------------------------------------------------------------------------------------
def test_request_budget_counts_and_refuses() -> None:
    b = RequestBudget(T0, max_requests=3, limits={RESOLVE: 1}, limit_until={RESOLVE: T0 + H},
                      limit_labels={RESOLVE: ("resolve", "1 per hour")})
    b.spend(RESOLVE)
    with pytest.raises(BudgetExhausted) as exc:
        b.spend(RESOLVE)
    assert isinstance(exc.value, FloodLimited) and BUDGET_MARK in str(exc.value) and "13:00" in str(exc.value)
    b.spend(GET_HISTORY)
    b.spend(GET_HISTORY)
    with pytest.raises(BudgetExhausted, match="3 requests per run"):
        b.spend(GET_MESSAGES)
    assert b.total == 3 and b.remaining() == 0 and b.exhausted is not None and "resolve" in b.exhausted


def test_caller_spends_before_sending_and_sends_nothing_once_exhausted() -> None:
    world = generate_world(2, channels=1, days=1, posts_per_day=5)
    name = collected_channels(world)[0].username_at(world.now)
    budget = RequestBudget(world.now, max_requests=1)

    async def go() -> None:
        client = simulated_client(world)
        call = Caller(client, world.now, {}, lambda *a: world.now, budget=budget)
        await call(functions.contacts.ResolveUsernameRequest(name))
        with pytest.raises(BudgetExhausted):
            await call(functions.contacts.ResolveUsernameRequest(name))

    asyncio.run(go())
    assert world.total_requests() == 1 and budget.total == 1


def test_budget_stops_a_pass_cleanly_and_later_runs_finish_it(tmp_path: Path) -> None:
    """A 2,450-post backfill under 7 requests a run: every run stays in budget, nothing is lost or doubled."""
    world = generate_channel_world(5, posts=2_450)
    path = tmp_path / "a.duckdb"
    sent = []
    reports = []
    for _ in range(8):
        before = world.total_requests()

        async def go() -> Any:
            with Archive(path) as archive:
                return await collect(simulated_client(world), world.seeds, archive, now=world.now,
                                     settings=CollectSettings(refresh=False),
                                     budget=RequestBudget(world.now, max_requests=7))

        reports.append(asyncio.run(go()))
        sent.append(world.total_requests() - before)
        if reports[-1].status == "ok":
            break
        world.advance(timedelta(minutes=1))
    assert max(sent) == 7 and all(n <= 7 for n in sent)
    first = reports[0].channels[0]
    assert first.outcome == "flood_wait" and BUDGET_MARK in (first.error or "") and first.new_posts > 0
    assert reports[-1].status == "ok"
    ch = world.channels[first.channel_id or 0]
    with Archive(path, read_only=True) as archive:
        n, top = archive.con.execute("SELECT count(*), max(message_id) FROM posts").fetchone() or (0, 0)
        assert archive.cursor(ch.channel_id) == top
        rows = archive.con.execute("SELECT outcome, error FROM run_channels ORDER BY run_id").fetchall()
    assert n == len(ch.posts(world.now)) == sum(r.new_posts for r in reports)
    assert [o for o, _ in rows[:-1]] == ["flood_wait"] * (len(rows) - 1) and rows[-1][0] == "ok"
    assert world.requests[GET_HISTORY] <= 26 + len(reports), "a stopped pass repeats at most one request"


def test_resolve_budget_spans_runs(tmp_path: Path) -> None:
    world = generate_world(6, channels=4, days=1, posts_per_day=5, special_seeds=False)
    names = [str(ch.username_at(world.now)) for ch in collected_channels(world)]
    settings = RunSettings(max_resolves_per_hour=2, max_requests=100)
    path = tmp_path / "a.duckdb"

    def one_run() -> Any:
        with Archive(path) as archive:
            plan = read_plan(archive, names, now=world.now, settings=settings)
            if not plan.scheduled:
                return plan, None
            return plan, asyncio.run(execute_plan(plan, simulated_client(world), archive))

    resolves = []
    for step in (timedelta(0), timedelta(minutes=30), timedelta(minutes=31), timedelta(minutes=5)):
        world.advance(step)
        before = world.requests[RESOLVE]
        plan, outcome = one_run()
        resolves.append(world.requests[RESOLVE] - before)
        if step == timedelta(0):
            assert [c.state for c in plan.channels].count("deferred") == 2
            assert outcome.summary.budget == 2 and not outcome.complete
            with Archive(path, read_only=True) as archive:
                errors = [r[0] for r in archive.con.execute(
                    "SELECT error FROM run_channels WHERE outcome = 'flood_wait'").fetchall()]
            assert len(errors) == 2 and all("resolve budget" in e and BUDGET_MARK in e for e in errors)
    # 2 at 0'; none at 30' (the hour is full); 2 at 61' (the first run left the window); nothing left after
    assert resolves == [2, 0, 2, 0]


# -- config -------------------------------------------------------------------------------------------------
def test_run_table_in_config(tmp_path: Path) -> None:
    conf = tmp_path / "t.toml"
    conf.write_text('[run]\ninterval = "2h"\njitter = "0s"\nevery = "20m"\nmax_requests = 50\n'
                    'max_resolves_per_hour = 0\nintervals = { "@Durov" = "6h" }\n')
    cfg = load_config(conf, env={}, cwd=tmp_path)
    assert cfg.run == RunSettings(interval=2 * H, jitter=timedelta(0), every=timedelta(minutes=20), max_requests=50,
                                  max_resolves_per_hour=0, intervals=(("durov", 6 * H),))
    assert load_config(None, env={}, cwd=tmp_path).run == RunSettings()


@pytest.mark.parametrize(("body", "words"), [
    ('[run]\ninterval = "soon"', "[run] interval"),
    ('[run]\nmax_requests = 0', "[run] max_requests"),
    ('[run]\nmax_requests = true', "[run] max_requests"),
    ('[run]\njitter = "2h"', "jitter must be between 0 and half"),
    ('[run]\nbudget = 3', "unknown key 'budget'"),
    ('[run]\nintervals = ["6h"]', "[run] intervals"),
    ('run = 3', "[run] must be a table"),
])
def test_bad_run_table_is_one_line_naming_the_key(tmp_path: Path, body: str, words: str) -> None:
    conf = tmp_path / "t.toml"
    conf.write_text(body + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(conf, env={}, cwd=tmp_path)
    assert words in str(exc.value) and str(conf) in str(exc.value) and "\n" not in str(exc.value)


# -- the command ------------------------------------------------------------------------------------------------
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (run \d+ (ok|partial)|no run \([^)]*\)): channels \d+ ok, "
                  r"\d+ flood, \d+ budget, \d+ failed, \d+ not due; \d+ new posts, \d+ refreshed; requests \d+/\d+, "
                  r"resolves \d+/\d+ per hour; next due (\d{4}-\d\d-\d\dT\d\d:\d\dZ|-)$")


@pytest.fixture
def simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    simulated_cli(monkeypatch, tmp_path)
    return tmp_path / "a.duckdb"


def lines(result: Any) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


def runs(path: Path) -> list[tuple[Any, ...]]:
    with Archive(path, read_only=True) as archive:
        return archive.con.execute("SELECT run_id, started_at, status FROM runs ORDER BY run_id").fetchall()


def test_run_then_nothing_due_then_due_again(simulated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = runner.invoke(app, ["run", "--archive", str(simulated)])
    assert first.exit_code == Exit.PARTIAL, first.output            # a closed channel, a group, a missing name
    (line,) = lines(first)
    assert LINE.match(line), line
    assert " run 1 partial: channels 2 ok, 0 flood, 0 budget, 3 failed, 0 not due;" in line
    assert "not_found" in first.stderr and "TESTING ONLY" in first.stderr
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "30m")
    idle = runner.invoke(app, ["run", "--archive", str(simulated)])
    assert idle.exit_code == Exit.OK, idle.output
    (line,) = lines(idle)
    assert LINE.match(line) and "no run (nothing due)" in line and "5 not due" in line, line
    assert len(runs(simulated)) == 1, "a run with nothing due writes nothing"
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "2h")
    again = runner.invoke(app, ["run", "--archive", str(simulated), "--max-requests", "3"])
    (line,) = lines(again)
    assert LINE.match(line) and "requests 3/3" in line and " budget" in line, line
    assert again.exit_code == Exit.PARTIAL
    with Archive(simulated, read_only=True) as archive:
        (used,) = archive.con.execute("SELECT sum(requests) FROM run_requests WHERE run_id = 2").fetchone() or (0,)
        row = archive.con.execute("SELECT requests, budget_exhausted FROM run_schedule WHERE run_id = 2").fetchone()
    assert used == 3 and row is not None and row[0] == 3 and BUDGET_MARK in row[1]


def test_dry_run_sends_nothing_and_writes_nothing(simulated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = runner.invoke(app, ["run", "--archive", str(simulated), "--dry-run"])
    assert empty.exit_code == Exit.OK, empty.output
    assert not simulated.exists(), "a dry run does not create the archive"
    assert "never collected" in empty.stdout and "No archive yet" in empty.stdout
    assert runner.invoke(app, ["run", "--archive", str(simulated)]).exit_code == Exit.PARTIAL
    before = simulated.stat().st_mtime_ns, runs(simulated)
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "30h")
    dry = runner.invoke(app, ["run", "--archive", str(simulated), "--dry-run", "--max-requests", "4"])
    assert dry.exit_code == Exit.OK, dry.output
    assert (simulated.stat().st_mtime_ns, runs(simulated)) == before
    out = dry.stdout
    assert "last pass 30h00m ago" in out and "budget 4 requests per run" in out
    assert "the budget stops this run after 4 requests" in out
    assert re.search(r"with about \d+\+? requests: 1 resolve, \d+ snapshot", out), out   # the missing name again


def test_dry_run_shows_a_pending_flood_wait(simulated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["run", "--archive", str(simulated)]).exit_code == Exit.PARTIAL
    (started,) = [r[1] for r in runs(simulated)]
    with Archive(simulated) as archive:
        archive.record_flood_wait(GET_HISTORY, started_at=started, seconds=6 * 3600, channel_id=None, run_id=1)
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "2h")
    dry = runner.invoke(app, ["run", "--archive", str(simulated), "--dry-run"])
    until = started + timedelta(hours=6)
    assert f"flood wait: no messages.GetHistory before {until:%Y-%m-%d %H:%M} UTC" in dry.stdout
    assert dry.stdout.count("blocked") >= 2
    real = runner.invoke(app, ["run", "--archive", str(simulated)])
    assert real.exit_code == Exit.PARTIAL
    (line,) = lines(real)
    assert "channels 0 ok, 3 flood" in line, line               # two public channels and the closed one
    assert "flood-limited until" in real.stderr


def test_loop_runs_every_duration_in_simulated_time(simulated: Path) -> None:
    result = runner.invoke(app, ["run", "--archive", str(simulated), "--loop", "--every", "2h", "--max-runs", "3"])
    assert result.exit_code in (Exit.OK, Exit.PARTIAL), result.output
    out = lines(result)
    assert len(out) == 3 and all(LINE.match(line) for line in out), out
    times = [r[1] for r in runs(simulated)]
    assert len(times) >= 2
    assert all(b - a >= timedelta(hours=2) for a, b in itertools.pairwise(times))
    assert all(b - a <= timedelta(hours=2, minutes=20) * 2 for a, b in itertools.pairwise(times))


@pytest.mark.parametrize(("args", "words"), [
    (["--every", "1h"], "--every only makes sense with --loop"),
    (["--loop", "--dry-run"], "cannot be combined with --loop"),
    (["--loop", "--every", "soon"], "--every"),
    (["--max-requests", "0"], "--max-requests"),
])
def test_usage_errors(simulated: Path, args: list[str], words: str) -> None:
    result = runner.invoke(app, ["run", "--archive", str(simulated), *args])
    assert result.exit_code == Exit.USAGE, result.output
    assert words in result.stderr and not simulated.exists()


def test_without_channels_or_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (SIMULATED_ENV, "TG_API_ID", "TG_API_HASH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    result = runner.invoke(app, ["run", "--archive", str(tmp_path / "a.duckdb")])
    assert result.exit_code == Exit.USAGE and "my.telegram.org" in result.stderr
    monkeypatch.setenv("TG_API_ID", "1234")
    monkeypatch.setenv("TG_API_HASH", "0123456789abcdef0123456789abcdef")
    result = runner.invoke(app, ["run", "--archive", str(tmp_path / "a.duckdb")])
    assert result.exit_code == Exit.USAGE and "no channels to collect" in result.stderr


def test_sigterm_stops_a_loop_cleanly(tmp_path: Path) -> None:
    """A real process: SIGTERM while looping exits 130 and leaves no run marked running."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TG_", "TGSPREAD_"))},
           "PYTHONPATH": str(ROOT), SIMULATED_ENV: "4", "TGSPREAD_SIMULATED_CHANNELS": "2",
           "TGSPREAD_SIMULATED_DAYS": "1"}
    path = tmp_path / "a.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", "from collector._cli.app import app; app()", "run", "--archive",
                             str(path), "--loop", "--every", "1h"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()             # the first run's line: the loop is going
        assert LINE.match(first.strip()), first
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == Exit.INTERRUPTED, err
    assert "interrupted" in err and "Traceback" not in err
    statuses = {r[2] for r in runs(path)}
    assert "running" not in statuses and statuses <= {"ok", "partial", "failed"}


# -- contrib: systemd units and the crontab -------------------------------------------------------------------
CONTRIB = ROOT / "contrib"


def _run_args(command: str) -> list[str]:
    """The arguments after the tgspread executable in a shell command line (up to a shell operator)."""
    words = shlex.split(command)
    start = next(i for i, w in enumerate(words) if w.endswith("/tgspread") or w == "tgspread")
    args = []
    for w in words[start + 1:]:
        if w in ("&&", "||", ";", "|", ">>", ">", "2>&1") or w.startswith((">", "2>")):
            break
        args.append(w)
    return args


def _parse_with_the_real_app(args: list[str]) -> dict[str, Any]:
    """Parse ``args`` as the installed command line would, without running anything."""
    group = typer.main.get_command(app)
    assert args[0] == "run", args
    command = group.commands["run"]  # type: ignore[attr-defined]
    return dict(command.make_context("run", list(args[1:])).params)


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_systemd_units_parse_and_run_a_valid_command() -> None:
    service = _unit(CONTRIB / "systemd" / "tgspread-run.service")
    timer = _unit(CONTRIB / "systemd" / "tgspread-run.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert "1" in service["Service"]["SuccessExitStatus"].split(), "exit 1 (some channels waiting) is not a failure"
    params = _parse_with_the_real_app(_run_args(service["Service"]["ExecStart"]))
    assert params["config"] is not None and not params["loop"] and not params["dry_run"]
    assert timer["Timer"]["Unit"] == "tgspread-run.service" and timer["Install"]["WantedBy"] == "timers.target"
    assert timer["Timer"]["Persistent"] == "true" and timer["Timer"]["RandomizedDelaySec"]


def test_crontab_lines_are_valid_run_invocations() -> None:
    entries = []
    for raw in (CONTRIB / "cron" / "tgspread.crontab").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("# @reboot"):
            line = line[2:]                          # the commented alternative must be valid too
        if not line or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        if line.startswith("@"):
            when, command = line.split(None, 1)
            assert when in ("@reboot", "@hourly", "@daily")
        else:
            fields = line.split(None, 5)
            assert len(fields) == 6, line
            for field_text in fields[:5]:
                assert re.fullmatch(r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*", field_text), field_text
            command = fields[5]
        entries.append(_parse_with_the_real_app(_run_args(command)))
    assert len(entries) == 2
    assert entries[1]["loop"] and entries[1]["every"] == "15m"


def test_the_command_line_parser_catches_a_bad_invocation() -> None:
    with pytest.raises(Exception, match="No such option"):
        _parse_with_the_real_app(_run_args("tgspread run --config x.toml --evry 15m"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` with %h pointing at a home where tgspread is installed as the unit expects."""
    home = tmp_path / "home"
    (home / "research").mkdir(parents=True)
    exe = home / "tgspread" / ".venv" / "bin" / "tgspread"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    units = tmp_path / "units"
    shutil.copytree(CONTRIB / "systemd", units)
    env = {**os.environ, "HOME": str(home)}
    names = ["tgspread-run.service", "tgspread-run.timer"]
    ok = subprocess.run(["systemd-analyze", "verify", *names], cwd=units, env=env, capture_output=True, text=True,
                        timeout=60)
    if "Failed to initialize manager" in ok.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {ok.stderr.strip()}")
    assert ok.returncode == 0, ok.stderr
    exe.unlink()                                     # the same check fails when the command is missing
    bad = subprocess.run(["systemd-analyze", "verify", *names], cwd=units, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "tgspread" in bad.stderr


def test_run_adds_comments_and_media_when_the_config_turns_them_on(simulated: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "4")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "2")
    plain = runner.invoke(app, ["run", "--archive", str(simulated)])
    assert len(lines(plain)) == 1, plain.output                     # off by default: one line, no extra steps
    with Archive(simulated, read_only=True) as archive:
        counts = archive.con.execute("SELECT (SELECT count(*) FROM post_comments), "
                                     "(SELECT count(*) FROM media_files)").fetchone()
    assert counts == (0, 0)
    config = simulated.parent / "tgspread.toml"
    config.write_text('[comments]\nenabled = true\n\n[media]\ndownload = true\ndir = "files"\nkinds = ["photo"]\n')
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "2h")
    result = runner.invoke(app, ["run", "--archive", str(simulated), "--config", str(config)])
    out = lines(result)
    assert LINE.match(out[0]), result.output
    assert any(line.strip().startswith("comments ") for line in out[1:]), result.output
    assert any(line.strip().startswith("media: ") for line in out[1:]), result.output
    with Archive(simulated, read_only=True) as archive:
        comments, files, linked = archive.con.execute(
            "SELECT (SELECT count(*) FROM post_comments), (SELECT count(*) FROM media_files), "
            "(SELECT count(*) FROM post_media)").fetchone() or (0, 0, 0)
        kinds = dict(archive.con.execute("SELECT request, requests FROM run_requests WHERE run_id = 2").fetchall())
    assert comments > 0 and files > 0 and linked >= files, (comments, files, linked)
    stored = [p for p in (simulated.parent / "files").rglob("*") if p.is_file() and ".partial" not in p.parts]
    assert len(stored) == files
    assert kinds.get("messages.GetReplies", 0) > 0 and kinds.get("upload.GetFile", 0) > 0, kinds  # budgeted, counted
