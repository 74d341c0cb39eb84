"""The demo: two collection passes over the simulated Telegram, two simulated days apart.

Pass 1 archives the whole history of the simulated world's channels; then the world's clock moves on
(new posts appear, counters grow, some posts are edited or deleted) and pass 2 collects what is new and
refreshes what is due. Nothing is contacted: the client is a real ``TelegramClient`` whose network layer
answers from the world (see ``collector.simulated``).

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
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .archive import Archive
from .collect import ChannelResult, CollectReport, CollectSettings, collect

if TYPE_CHECKING:
    from .simulated.world import World

__all__ = [
    "DEFAULT_DEMO_ARCHIVE",
    "DEMO_COLLECTOR",
    "DemoError",
    "PassObserver",
    "check_archive_path",
    "demo_lake_path",
    "marker_path",
    "run_demo",
    "run_demo_async",
]

DEFAULT_DEMO_ARCHIVE = Path("demo-data/demo.duckdb")
#: The demo's name in its lake (never 'main': a lake beside a demo archive may be someone's own).
DEMO_COLLECTOR = "demo"


def demo_lake_path(archive_path: Path) -> Path:
    """The lake ``tgspread demo`` publishes to: ``lake`` beside its archive (``demo-data/lake``)."""
    return archive_path.parent / "lake"


class DemoError(Exception):
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
    from .simulated import simulated_client

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
    from .simulated import generate_world

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
        from .summaries import refresh_summaries  # the notebooks read the stored results

        refresh_summaries(archive)
        if lake is not None:     # a new archive: every partition of the demo's lake is written again
            from .lake import publish

            publish(archive, lake, collector=DEMO_COLLECTOR, full=True)
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
