"""`tgspread run`: one scheduled run (cron, a systemd timer) or ``--loop``: collect only what is due.

The library part (the plan, one run under a budget) is :mod:`collector._scheduling.runner`; this module parses the
options, connects only when something is due, adds the optional comments and media steps the config turns
on (``[comments] enabled``, ``[media] download``) under the same request budget, and prints one log line.
Channels come from the config's ``channels`` and the archive's collected set (``tgspread channels add``).
See docs/scheduling.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from collector._archive.archive import Archive, ArchiveBusyError
from collector._archive.schedule import record_usage
from collector._config import Config, ConfigError, load_config, parse_duration
from collector._scheduling.ownership import Ownership
from collector._scheduling.plan import Plan, RunSettings, loop_delay
from collector._scheduling.runner import execute_plan, read_plan, run_inputs, summarize
from collector._telegram.client import Telegram

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, SessionOpt, WaitOpt
from .publish import publish_after_pass
from .safe_text import cell, safe
from .tables import Column, fitted_table
from .words import plural

if TYPE_CHECKING:
    from telethon import TelegramClient

    from collector._scheduling.budget import RequestBudget
    from collector._simulated import World


# -- the command ------------------------------------------------------------------------------------------------
@dataclass
class _Clock:
    """Where a run's ``now`` comes from and how ``--loop`` waits: the real clock, or a simulated world's."""

    telegram: Telegram

    @property
    def world(self) -> World | None:
        return self.telegram.world

    def now(self) -> datetime:
        return self.world.now if self.world is not None else datetime.now(UTC)

    async def sleep(self, delay: timedelta) -> None:
        if self.world is not None:          # simulated time: move the world's clock instead of waiting
            self.world.advance(delay)
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(delay.total_seconds())


def _settings(cfg: Config, max_requests: int | None) -> RunSettings:
    run = cfg.run
    if max_requests is not None:
        run = RunSettings(interval=run.interval, jitter=run.jitter, every=run.every, max_requests=max_requests,
                          max_resolves_per_hour=run.max_resolves_per_hour, intervals=run.intervals)
    return run


_NO_CHANNELS = ("no channels to collect: add channels = [...] to tgspread.toml, or add them to the archive's set "
                "with `tgspread channels add`")


def _inputs(cfg: Config, archive: Archive | None, clock: _Clock) -> list[str]:
    """The run's channels; a simulated world (testing only) falls back to its seeds, as `collect` does."""
    inputs = run_inputs(cfg.channels, archive)
    return inputs or (list(clock.world.seeds) if clock.world is not None else [])


async def _connect(clock: _Clock) -> TelegramClient:
    client = clock.telegram.client()
    try:
        await clock.telegram.connect(client)
    except (ConnectionError, OSError) as exc:
        raise _Unreachable(f"could not reach Telegram ({exc}); nothing was collected; check the network") from None
    return client


class _Unreachable(Exception):
    """Telegram could not be reached before the run started (exit 5)."""


async def _one_run(cfg: Config, settings: RunSettings, clock: _Clock, wait: float, *,
                   allow_private: bool = False) -> Exit:
    """Plan, collect what is due, print the line. Returns the run's exit code."""
    from collector._telegram.collect import CollectSettings

    from .progress import CollectProgress

    now = clock.now()
    collect_settings = CollectSettings(checkpoints=cfg.checkpoints, snapshot_every=cfg.snapshot_every,
                                       allow_private=allow_private)
    ui.channel_refs([], list(cfg.channels), cfg.archive, wait)   # a typo in the config: exit 2, nothing touched
    owned = ui.ownership(cfg)
    collect_settings = replace(collect_settings, ownership=owned)
    with Archive(cfg.archive, wait=wait) as archive:
        ui.pick_up(archive, cfg, owned, now)
        inputs = _inputs(cfg, archive, clock)
        if not inputs:
            ui.fail(Exit.USAGE, _NO_CHANNELS)
        plan = read_plan(archive, inputs, now=now, settings=settings, checkpoints=cfg.checkpoints,
                         snapshot_every=cfg.snapshot_every, ownership=owned)
        if not plan.scheduled:
            ui.stdout.print(summarize(plan, None, None).line(), markup=False, highlight=False, soft_wrap=True)
            _print_skipped(plan)
            return Exit.OK
        client = await _connect(clock)
        progress = CollectProgress(ui.stderr) if ui.stderr.is_terminal else None
        try:
            if progress is not None:
                with progress.watching_flood_sleeps():
                    progress.begin(f"tgspread run into {cfg.archive}", [c.facts.input for c in plan.scheduled])
                    outcome = await execute_plan(plan, client, archive,
                                                 collect_settings=collect_settings, progress=progress)
                    progress.end(outcome.report)
            else:
                outcome = await execute_plan(plan, client, archive, collect_settings=collect_settings)
            try:
                steps = await _optional_steps(cfg, client, archive, now, outcome.budget, owned)
            finally:     # what the optional steps sent counts for the run (and the hourly resolve budget)
                record_usage(archive, outcome.report.run_id, now, outcome.budget.used)
        finally:
            await client.disconnect()
        publish_after_pass(archive, cfg)
    ui.stdout.print(outcome.summary.line(), markup=False, highlight=False, soft_wrap=True)
    for _status, summary in steps:
        ui.stdout.print(f"  {summary}", markup=False, highlight=False, soft_wrap=True)
    for c in outcome.report.channels:
        if c.outcome != "ok":
            ui.stderr.print(safe(f"  {c.input}: {c.outcome}: {c.error}"), markup=False, highlight=False, soft_wrap=True)
    _print_skipped(plan)
    return Exit.OK if outcome.complete and all(status == "ok" for status, _ in steps) else Exit.PARTIAL


async def _optional_steps(cfg: Config, client: TelegramClient, archive: Archive, now: datetime,
                          budget: RequestBudget, owned: Ownership | None) -> list[tuple[str, str]]:
    """After the collect pass, under the run's budget, what the config turns on: discussion-group comments
    (``[comments] enabled``) and media files (``[media] download``), of the channels ``owned`` (None: all).
    Returns (status, summary) per step."""
    done: list[tuple[str, str]] = []
    if cfg.comments_enabled:
        from collector._telegram.comments import CommentsSettings, collect_comments

        comments = await collect_comments(client, archive, now=now, budget=budget,
                                          settings=CommentsSettings(max_posts=cfg.comments_max_posts),
                                          owns=owned.owns if owned is not None else None)
        done.append((comments.status, comments.summary()))
    if cfg.media.download:
        from collector._telegram.media import download_media

        media = await download_media(client, archive, cfg.media.root(cfg.archive), kinds=cfg.media.kinds,
                                     max_size=cfg.media.max_size, now=now, budget=budget,
                                     owns=owned.owns if owned is not None else None)
        done.append((media.status, media.summary()))
    return done


def _print_skipped(plan: Plan) -> None:
    for skipped in plan.skipped:
        ui.stderr.print(safe(f"  {skipped.facts.input}: flood_wait: {skipped.skipped_error()}"), markup=False,
                     highlight=False, soft_wrap=True)
    for raw, _cid, why in plan.not_owned:
        ui.stderr.print(safe(f"  {raw}: not_owned: {why}"), markup=False, highlight=False, soft_wrap=True)


async def _run_forever(cfg: Config, settings: RunSettings, clock: _Clock, wait: float, *, loop: bool,
                       every: timedelta, max_runs: int | None, rng: random.Random, allow_private: bool) -> Exit:
    """One run, or runs ``every`` (+ up to ``jitter``) apart until SIGTERM/SIGINT or ``max_runs``."""
    code, done = Exit.OK, 0
    while True:
        try:
            code = await _one_run(cfg, settings, clock, wait, allow_private=allow_private)
        except (_Unreachable, ArchiveBusyError) as exc:
            busy = isinstance(exc, ArchiveBusyError)
            if not loop:
                ui.fail(Exit.BUSY if busy else Exit.NETWORK, str(exc))
            ui.stderr.print(f"{clock.now():%Y-%m-%dT%H:%M:%SZ} {exc}; trying again at the next run", markup=False,
                            soft_wrap=True)
            code = Exit.BUSY if busy else Exit.NETWORK
        done += 1
        if not loop or (max_runs is not None and done >= max_runs):
            return code
        await clock.sleep(loop_delay(every, settings.jitter, rng))


def _with_sigterm(work: Callable[[], Awaitable[Exit]]) -> Exit:
    """Run ``work`` with SIGTERM handled like Ctrl-C: the current await is cancelled, committed data stays."""

    async def main() -> Exit:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        stopped: list[int] = []

        def stop() -> None:
            stopped.append(signal.SIGTERM)
            if task is not None:
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, stop)
        try:
            return await work()
        except asyncio.CancelledError:
            if stopped:
                raise KeyboardInterrupt from None
            raise
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())


# -- --dry-run ----------------------------------------------------------------------------------------------------
def _dry_run(cfg: Config, settings: RunSettings, clock: _Clock, wait: float) -> None:
    """Print what a run now would request, from the archive alone (opened read-only, if it exists)."""
    archive = Archive(cfg.archive, read_only=True, wait=wait) if cfg.archive.exists() else None
    try:
        inputs = _inputs(cfg, archive, clock)
        if not inputs:
            ui.fail(Exit.USAGE, _NO_CHANNELS)
        plan = read_plan(archive, inputs, now=clock.now(), settings=settings, checkpoints=cfg.checkpoints,
                         snapshot_every=cfg.snapshot_every, ownership=ui.ownership(cfg))
    finally:
        if archive is not None:
            archive.close()
    _print_plan(plan, cfg.archive if archive is not None else None)


_STATE_STYLE = {"due": "green", "not_due": "dim", "blocked": "yellow", "deferred": "yellow"}


def _print_plan(plan: Plan, archive: Path | None) -> None:
    columns = [Column("channel"), Column("state", keep=9), Column("why", keep=8, min_width=16, wrap=True),
               Column("resolve", "right", keep=3), Column("snapshot", "right", keep=4),
               Column("history", "right", keep=5), Column("refresh", "right", keep=6),
               Column("requests", "right", keep=7)]
    rows: list[list[str | Text]] = []
    for c in plan.channels:
        e = c.estimate
        active = c.state != "not_due"
        rows.append([cell(c.facts.input), cell(c.state, _STATE_STYLE[c.state]), cell(c.reason),
                     *(str(v) if active else "-" for v in (e.resolve, e.snapshot)),
                     (f"{e.history}+" if e.open_ended else str(e.history)) if active else "-",
                     str(e.refresh) if active else "-", e.label() if c.state == "due" else "-"])
    table = fitted_table(columns, rows, width=ui.stdout.width,
                         title=f"tgspread run at {plan.now:%Y-%m-%d %H:%M} UTC (dry run: nothing is sent)")
    ui.stdout.print(table)
    if archive is None:
        ui.stdout.print("No archive yet: every channel is new (its whole history is fetched).", soft_wrap=True)
    for request, until in sorted(plan.flood_waits.items()):
        ui.stdout.print(f"flood wait: no {request} before {until:%Y-%m-%d %H:%M} UTC", style="yellow", markup=False,
                        soft_wrap=True)
    total = plan.estimate()
    s = plan.settings
    requests = f"{total.label()} request{'' if total.label() == '1' else 's'}"
    ui.stdout.print(f"would collect {plural(len(plan.scheduled), 'channel')} ({len(plan.skipped)} due but waiting, "
                 f"{len(plan.not_due)} not due) with about {requests}: {total.resolve} resolve, "
                 f"{total.snapshot} snapshot, {total.history}{'+' if total.open_ended else ''} history, "
                 f"{total.refresh} refresh; budget {plural(s.max_requests, 'request')} per run, resolves "
                 f"{plan.resolves_used} of {s.max_resolves_per_hour} used this hour", markup=False, soft_wrap=True)
    if total.total > s.max_requests:
        ui.stdout.print(f"the budget stops this run after {plural(s.max_requests, 'request')}; the next runs continue",
                        style="yellow", markup=False, soft_wrap=True)
    for raw, _cid, why in plan.not_owned:
        ui.stdout.print(safe(f"not owned: {raw}: {why}"), markup=False, highlight=False, soft_wrap=True)
    nxt = plan.next_due_at()
    ui.stdout.print(f"next due: {nxt:%Y-%m-%d %H:%M} UTC" if nxt else "next due: -", markup=False, soft_wrap=True)


# -- registration ---------------------------------------------------------------------------------------------
def _duration_option(value: str | None, name: str) -> timedelta | None:
    if value is None:
        return None
    try:
        delta = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if delta <= timedelta(0):
        raise ConfigError(f"{name}: expected a positive duration, not {value!r}")
    return delta


def register(app: typer.Typer) -> None:
    """Add ``tgspread run`` to the app."""

    @app.command("run")
    def run_command(
        config: ConfigOpt = None,
        collector: CollectorOpt = None,
        archive: ArchiveOpt = None,
        session: SessionOpt = None,
        wait: WaitOpt = 30.0,
        loop: Annotated[bool, typer.Option(
            "--loop", help="Keep running: a run, then sleep --every (plus up to [run] jitter), until Ctrl-C or "
                           "SIGTERM.")] = False,
        every: Annotated[str | None, typer.Option(
            "--every", metavar="DURATION", help="With --loop: time between runs (default: [run] every, 15m).")]
            = None,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Print what a run would request (channels due and why, estimated requests, flood "
                              "waits, budget) from the archive alone; nothing is sent or written.")] = False,
        max_requests: Annotated[int | None, typer.Option(
            "--max-requests", metavar="N", min=1,
            help="Requests this run may send (default: [run] max_requests, 500).")] = None,
        allow_private: Annotated[bool, typer.Option(
            "--allow-private", help="Also collect groups (private people's messages); only with an ethics approval "
                                    "(see the README). Users, bots and invite links are always refused.")] = False,
        max_runs: Annotated[int | None, typer.Option("--max-runs", min=1, hidden=True,
                                                     help="Testing: stop --loop after N runs.")] = None,
    ) -> None:
        """Collect what is due: channels whose interval has passed, due refreshes and snapshots.

        Meant for cron or a systemd timer (see docs/scheduling.md). Channels: the config's `channels`
        and the archive's set (`tgspread channels add`). With `--collector NAME`, one collector of several
        (its own archive, session and budget; they share the lake) that collects only the slots the
        assignment gives it (docs/scale.md). Honours flood waits recorded by earlier runs
        and a request budget ([run] in tgspread.toml). Prints one line per run. Exit 0 when every due
        channel was collected (or nothing was due), 1 when some were not (the line says why).
        """
        ui.wide_when_piped()
        with ui.errors():
            if every is not None and not loop:
                raise ConfigError("--every only makes sense with --loop (a timer or cron sets the spacing otherwise)")
            if loop and dry_run:
                raise ConfigError("--dry-run prints one run's plan; it cannot be combined with --loop")
            spacing = _duration_option(every, "--every")
            cfg = load_config(config, archive=archive, session=session, collector=collector)
            settings = _settings(cfg, max_requests)
            found = ui.telegram(cfg, "running against")
            clock = _Clock(found)
            if dry_run:
                _dry_run(cfg, settings, clock, wait)
                return
            if found.world is None:
                cfg.credentials()                 # a credential problem shows before anything else
            rng = random.Random(found.seed) if found.seed is not None else random.Random()
            code = _with_sigterm(lambda: _run_forever(
                cfg, settings, clock, wait, loop=loop, every=spacing or settings.every, max_runs=max_runs, rng=rng,
                allow_private=allow_private))
        if code != Exit.OK:
            raise typer.Exit(int(code))

