"""`tgspread hydrate IDS.csv`: re-collect a dehydrated id list (`tgspread export --ids`) into an archive.

Exit 0 when every listed channel was fetched, 1 when some were not (unknown, private, flood wait: the
table and the lines under it say which), 2 for a file that is not a usable id list (nothing is sent or
written then), 3/4/5 as for `collect`. Deleted posts are counted per channel; `--deleted FILE` writes
their full list as CSV (channel_id, username, message_id), otherwise the first few are printed.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Annotated

import typer

from collector._archive import Archive
from collector._config import Config, load_config
from collector._parse.id_list import ChannelIds, IdListError, read_id_list
from collector._telegram.client import Telegram
from collector._telegram.collect import CollectReport, CollectSettings
from collector._telegram.hydrate import hydrate

from .common import (
    ArchiveOpt,
    ConfigOpt,
    Exit,
    SessionOpt,
    WaitOpt,
    connect,
    errors,
    fail,
    print_report,
    stderr,
    stdout,
    telegram,
    wide_when_piped,
)
from .progress import CollectProgress
from .publish import publish_after_pass
from .safe_text import safe
from .words import plural

#: Deleted ids printed per channel when no --deleted file is asked for.
SHOWN = 10


async def _hydrate_pass(cfg: Config, listed: list[ChannelIds], progress: CollectProgress, wait: float,
                        found: Telegram) -> CollectReport:
    client = found.client()
    now = found.now()
    with Archive(cfg.archive, wait=wait) as archive:
        await connect(found, client, nothing_done="nothing was hydrated")
        settings = CollectSettings(checkpoints=cfg.checkpoints, snapshot_every=cfg.snapshot_every)
        try:
            with progress.watching_flood_sleeps():
                progress.begin(f"hydrating into {cfg.archive}", [str(c.username or c.channel_id) for c in listed])
                report = await hydrate(client, listed, archive, now=now, settings=settings, progress=progress)
                progress.end(report)
        finally:
            await client.disconnect()
        publish_after_pass(archive, cfg)   # the lake, when configured
    return report


def _write_deleted(report: CollectReport, out: Path) -> int:
    rows = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["channel_id", "username", "message_id"])
        for c in report.channels:
            for message_id in c.deleted_ids:
                writer.writerow([c.channel_id, c.username or "", message_id])
                rows += 1
    return rows


def register(app: typer.Typer) -> None:
    """Add ``tgspread hydrate`` to the app."""

    @app.command("hydrate")
    def hydrate_command(
        ids: Annotated[Path, typer.Argument(
            metavar="IDS.csv", dir_okay=False, show_default=False,
            help="An id list: CSV with channel_id and/or username, and message_id (tgspread export --ids).")],
        config: ConfigOpt = None,
        archive: ArchiveOpt = None,
        session: SessionOpt = None,
        wait: WaitOpt = 30.0,
        deleted: Annotated[Path | None, typer.Option(
            "--deleted", metavar="FILE", dir_okay=False,
            help="Write every listed post Telegram no longer has to FILE (CSV: channel_id, username, "
                 "message_id).")] = None,
    ) -> None:
        """Re-collect the posts of an id list: channels.getMessages, 100 ids per request.

        Channels are resolved as `collect` resolves them (the archive's cache first). Posts Telegram no longer
        has are reported as deleted; unknown or private channels are reported per channel. Publishes to the
        lake afterwards when one is configured. Exit 0 when every channel was fetched, 1 when some were not.
        """
        wide_when_piped()
        with errors():
            cfg = load_config(config, archive=archive, session=session)
            try:
                listed = read_id_list(ids)
            except FileNotFoundError:
                fail(Exit.USAGE, f"{ids}: no such file; give the id list that `tgspread export --ids` wrote")
            except IdListError as exc:
                fail(Exit.USAGE, str(exc))
            if not listed:
                fail(Exit.USAGE, f"{ids}: the id list names no posts")
            found = telegram(cfg, "hydrating from")
            report = asyncio.run(_hydrate_pass(cfg, listed, CollectProgress(stderr), wait, found))
        print_report(report, title=f"hydrate run {report.run_id}: {report.status}")
        gone = sum(len(c.deleted_ids) for c in report.channels)
        asked = sum(len(c.message_ids) for c in listed)
        stdout.print(f"{plural(asked, 'id')} listed; {gone:,} deleted on Telegram", markup=False, highlight=False)
        if deleted is not None:
            written = _write_deleted(report, deleted)
            stdout.print(f"deleted posts listed in {safe(deleted)} ({plural(written, 'row')})", markup=False,
                         soft_wrap=True)
        else:
            for c in report.channels:
                if c.deleted_ids:
                    shown = ", ".join(str(i) for i in c.deleted_ids[:SHOWN])
                    more = f" and {len(c.deleted_ids) - SHOWN:,} more (--deleted FILE lists them all)" \
                        if len(c.deleted_ids) > SHOWN else ""
                    stdout.print(f"  deleted in {safe(c.username or c.channel_id)}: {shown}{more}", markup=False,
                                 highlight=False, soft_wrap=True)
        if report.status != "ok":
            raise typer.Exit(int(Exit.PARTIAL))
