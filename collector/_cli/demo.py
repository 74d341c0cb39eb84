"""The demo: two collection passes over the simulated Telegram, two simulated days apart.

Pass 1 archives the whole history of the simulated world's channels; then the world's clock moves on
(new posts appear, counters grow, some posts are edited or deleted) and pass 2 collects what is new and
refreshes what is due. Nothing is contacted: the client is a real ``TelegramClient`` whose network layer
answers from the world (see ``collector._simulated``).

The demo recreates its archive every time. To never destroy someone's data it deletes an existing file
only when the marker it writes beside it (``<archive>.demo.json``) is there; any other existing file is
refused with :class:`DemoError`.

Example::

    world, (first, second) = run_demo("demo-data/demo.duckdb", channels=4, days=3)
    print(second.summary())
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
from rich.table import Table

from collector._archive import Archive
from collector._archive.archive import path_problem
from collector._archive.status import archive_totals
from collector._config import ConfigError, parse_duration
from collector._telegram.collect import ChannelResult, CollectReport, CollectSettings, collect

from . import common as ui
from .progress import CollectProgress, requests_table
from .safe_text import safe
from .words import plural

if TYPE_CHECKING:
    from collector._simulated.world import World


DEFAULT_DEMO_ARCHIVE = Path("demo-data/demo.duckdb")
#: The demo's name in its lake (never 'main': a lake beside a demo archive may be someone's own).
DEMO_COLLECTOR = "demo"


def demo_lake_path(archive_path: Path) -> Path:
    """The lake ``tgspread demo`` publishes to: ``lake`` beside its archive (``demo-data/lake``)."""
    return archive_path.parent / "lake"


class DemoError(ConfigError):
    """The demo cannot run as asked (e.g. its archive path holds data it did not create)."""


class PassObserver(Protocol):
    """Follows collection passes: the CLI's progress display implements it."""

    def begin(self, title: str, channels: Sequence[str]) -> None: ...

    def __call__(self, stage: str, result: ChannelResult) -> None: ...

    def end(self, report: CollectReport) -> None: ...


def marker_path(archive_path: Path) -> Path:
    """``demo.duckdb`` -> ``demo.duckdb.demo.json``: proof that the demo made the archive beside it."""
    return archive_path.with_name(archive_path.name + ".demo.json")


def check_archive_path(path: Path) -> None:
    """Raise :class:`DemoError` when ``path`` holds something the demo did not make (it would be deleted)."""
    problem = path_problem(path)
    if problem is not None:           # refused before the demo makes its folder
        raise DemoError(problem)
    if path.is_dir():
        raise DemoError(f"{path} is a directory; give --archive a file name such as {path / 'demo.duckdb'}")
    if path.exists() and not marker_path(path).exists():
        raise DemoError(f"{path} exists and was not made by `tgspread demo`; the demo recreates its archive, "
                        "so pick another --archive path (or delete that file yourself)")


def _fresh_archive(path: Path) -> None:
    """Remove a previous demo archive (and its WAL); refuse anything else that exists at ``path``."""
    check_archive_path(path)
    for leftover in (path, path.with_name(path.name + ".wal"), marker_path(path)):
        leftover.unlink(missing_ok=True)


async def _one_pass(world: World, archive: Archive, title: str, settings: CollectSettings,
                    progress: PassObserver | None) -> CollectReport:
    from collector._simulated import simulated_client

    client = simulated_client(world)
    if progress is not None:
        progress.begin(title, world.seeds)
    try:
        report = await collect(client, world.seeds, archive, now=world.now, settings=settings, progress=progress)
    finally:
        await client.disconnect()
    if progress is not None:
        progress.end(report)
    return report


#: How far ``--advance`` may move the simulated clock: the world's posts are generated up to there.
MAX_ADVANCE = timedelta(days=365)


async def run_demo_async(
    archive_path: str | Path = DEFAULT_DEMO_ARCHIVE,
    *,
    channels: int = 20,
    days: int = 30,
    seed: int = 7,
    advance: timedelta = timedelta(days=2),
    progress: PassObserver | None = None,
    lake: str | Path | None = None,
) -> tuple[World, list[CollectReport]]:
    """:func:`run_demo` for callers that already run an event loop (Jupyter)."""
    if channels < 1 or days < 1:
        raise DemoError("--channels and --days must be at least 1")
    if advance <= timedelta(0):
        raise DemoError("the clock must advance between the two passes")
    if advance > MAX_ADVANCE:
        raise DemoError(f"--advance is at most {MAX_ADVANCE.days} days (the simulated world is generated up to "
                        f"that far ahead; {advance.days:,} days would take hours)")
    from collector._simulated import generate_world

    path = Path(archive_path)
    _fresh_archive(path)
    # the world only needs to reach as far as the demo advances its clock (plus a day of margin)
    future = advance.total_seconds() / 86400 + 1
    world = generate_world(seed, channels=channels, days=days, future_days=future)
    settings = CollectSettings()
    reports = []
    with Archive(path) as archive:
        marker_path(path).write_text(json.dumps({
            "made_by": "tgspread demo", "seed": seed, "channels": channels, "days": days,
            "advance_s": advance.total_seconds(), "created_at": datetime.now(UTC).isoformat(),
        }, indent=1) + "\n", encoding="utf-8")
        reports.append(await _one_pass(world, archive, f"pass 1 at {world.now:%Y-%m-%d %H:%M} UTC (simulated)",
                                       settings, progress))
        world.advance(advance)
        reports.append(await _one_pass(world, archive, f"pass 2 at {world.now:%Y-%m-%d %H:%M} UTC (simulated, "
                                                       f"{advance} later)", settings, progress))
        if lake is not None:     # a new archive: every partition of the demo's lake is written again
            from collector._archive.lake import publish

            # the demo's files there came from the archive this run replaced: replaced on purpose (a publish
            # refuses a collector name another archive published under, unless told to replace its files)
            publish(archive, lake, collector=DEMO_COLLECTOR, full=True, replace=True)
    return world, reports


def run_demo(
    archive_path: str | Path = DEFAULT_DEMO_ARCHIVE,
    *,
    channels: int = 20,
    days: int = 30,
    seed: int = 7,
    advance: timedelta = timedelta(days=2),
    progress: PassObserver | None = None,
    lake: str | Path | None = None,
) -> tuple[World, list[CollectReport]]:
    """Generate the simulated world (``seed``, ``channels``, ``days`` of history), collect it into
    ``archive_path``, advance its clock by ``advance``, collect again. Returns the world and both reports.

    ``lake``: publish the archive there afterwards (collector ``demo``, :func:`demo_lake_path`; the CLI does).
    Raises :class:`DemoError` when ``archive_path`` holds a file the demo did not create.
    """
    return asyncio.run(run_demo_async(archive_path, channels=channels, days=days, seed=seed, advance=advance,
                                      progress=progress, lake=lake))


# -- the command ----------------------------------------------------------------------------------------
def _print_demo_totals(archive: Path, reports: list[CollectReport]) -> None:
    with Archive(archive, read_only=True) as opened:
        totals = archive_totals(opened.con)
    table = Table(title="the archive after both passes", title_justify="left")
    table.add_column("what")
    table.add_column("rows", justify="right")
    for label, value in (("channels", totals.channels), ("posts", totals.posts),
                         ("  of which seen deleted", totals.deleted), ("post observations", totals.observations),
                         ("earlier versions (edits)", totals.versions),
                         ("channel snapshots", totals.channel_observations), ("collection passes", totals.runs)):
        table.add_row(label, f"{value:,}")
    ui.stdout.print(table)
    requests: dict[str, int] = {}
    for report in reports:
        for name, count in report.requests.items():
            requests[name] = requests.get(name, 0) + count
    ui.stdout.print(requests_table(requests, title="requests sent to the (simulated) Telegram, both passes"))
    for i, report in enumerate(reports, 1):
        seconds = (report.finished_at - report.started_at).total_seconds() if report.finished_at else 0.0
        posts = report.new_posts + report.refreshed_posts
        rate = f"{posts / seconds:,.0f} posts/s" if seconds > 0 else "-"
        noun = "post" if posts == 1 else "posts"
        ui.stdout.print(f"pass {i}: {report.new_posts:,} new and {report.refreshed_posts:,} refreshed {noun} in "
                     f"{seconds:.1f} s ({rate})", soft_wrap=True)
    command = command_name()
    hint = "" if command == "tgspread" else f" (or activate the environment first: source {Path(command).parent}" \
        "/activate, then plain `tgspread` works)" if command.endswith("/tgspread") else ""
    ui.stdout.print(safe(f"Next: {command} status --archive {archive}{hint}"), markup=False, soft_wrap=True)


def command_name(argv0: str | None = None, on_path: str | None = None) -> str:
    """How the user can run tgspread again: ``tgspread`` when that is on PATH and is this one, else the path it
    was started by (``.venv/bin/tgspread`` after ``make demo``), else ``python -m collector``.

    >>> command_name(".venv/bin/tgspread", on_path=None)
    '.venv/bin/tgspread'
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    found = shutil.which("tgspread") if on_path is None and argv0 == sys.argv[0] else on_path
    if Path(argv0).name == "tgspread":
        if found and Path(found).resolve() == Path(argv0).resolve():
            return "tgspread"
        return argv0
    return "python -m collector"


def register(app: typer.Typer) -> None:
    """Add ``tgspread demo`` to the app."""

    @app.command()
    def demo(
        archive: Annotated[Path, typer.Option(
            "--archive", "-a", metavar="PATH", dir_okay=False,
            help="Where the demo writes its archive; recreated each time, never over a file it did not make.")]
            = DEFAULT_DEMO_ARCHIVE,
        channels: Annotated[int, typer.Option("--channels", metavar="N", min=1, max=500,
                                              help="Channels in the simulated world.")]
            = 20,
        days: Annotated[int, typer.Option("--days", metavar="N", min=1, max=365,
                                          help="Days of history before the first pass.")]
            = 30,
        seed: Annotated[int, typer.Option("--seed", metavar="N",
                                          help="Seed of the simulated world (same seed, same world).")] = 7,
        advance: Annotated[str, typer.Option(
            "--advance", metavar="DURATION", help="How far the clock moves between the two passes (e.g. 2d, 12h).")]
            = "2d",
    ) -> None:
        """Collect a simulated Telegram twice (its clock moved on in between) and print what was archived.

        Nothing is contacted: a real Telethon client talks to a simulated world built from --seed.
        Some channels of that world are missing or private on purpose, so the summary shows those outcomes.
        """
        ui.wide_when_piped()
        with ui.errors():
            try:
                step = parse_duration(advance)
            except ValueError as exc:
                raise ConfigError(f"--advance: {exc}") from None
            if step > MAX_ADVANCE:
                raise ConfigError(f"--advance: {advance!r} is more than {MAX_ADVANCE.days} days, as far as the "
                                  "simulated world is generated ahead; write at most 365d")
            check_archive_path(archive)
            progress = CollectProgress(ui.stderr)
            ui.stderr.print(f"Simulated Telegram: seed {seed}, {plural(channels, 'channel')}, {plural(days, 'day')} of "
                         "history; "
                         f"nothing is contacted.")
            lake = demo_lake_path(archive)
            _world, reports = run_demo(archive, channels=channels, days=days, seed=seed, advance=step,
                                       progress=progress, lake=lake)
            ui.stderr.print(f"published to the lake {lake} (collector 'demo'): analysis.connect({str(lake)!r}) reads "
                         "it", style="dim", highlight=False, soft_wrap=True, markup=False)
            for i, report in enumerate(reports, 1):
                ui.print_report(report, title=f"pass {i} (run {report.run_id}): {report.status}")
            _print_demo_totals(archive, reports)
