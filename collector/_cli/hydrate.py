"""`tgspread hydrate IDS.csv`: re-collect a dehydrated id list (`tgspread export --ids`) into an archive.

Exit 0 when every listed channel was fetched, 1 when some were not (unknown, private, flood wait: the
table and the lines under it say which), 2 for a file that is not a usable id list (nothing is sent or
written then), 3/4/5 as for `collect`. Deleted posts are counted per channel; `--deleted FILE` writes
their full list as CSV (channel_id, username, message_id), otherwise the first few are printed.
"""

from __future__ import annotations

import asyncio
import csv
import os
from pathlib import Path
from typing import Annotated

import typer

from collector._archive import Archive
from collector._archive.lake_files import install
from collector._config import Config, load_config
from collector._parse.id_list import ChannelIds, IdListError, read_id_list
from collector._scheduling.ownership import NOT_OWNED, Ownership
from collector._telegram.client import Telegram
from collector._telegram.collect import CollectReport, CollectSettings
from collector._telegram.hydrate import hydrate

from .common import (
    ArchiveOpt,
    CollectorOpt,
    ConfigOpt,
    Exit,
    SessionOpt,
    WaitOpt,
    connect,
    errors,
    fail,
    ownership,
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
                        found: Telegram, owned: Ownership | None) -> CollectReport:
    client = found.client()
    now = found.now()
    with Archive(cfg.archive, wait=wait) as archive:
        await connect(found, client, nothing_done="nothing was hydrated")
        settings = CollectSettings(checkpoints=cfg.checkpoints, snapshot_every=cfg.snapshot_every, ownership=owned)
        try:
            with progress.watching_flood_sleeps():
                progress.begin(f"hydrating into {cfg.archive}", [str(c.username or c.channel_id) for c in listed])
                report = await hydrate(client, listed, archive, now=now, settings=settings, progress=progress)
                progress.end(report)
        finally:
            await client.disconnect()
        publish_after_pass(archive, cfg)   # the lake, when configured
    return report


def _split_owned(listed: list[ChannelIds], owned: Ownership | None) -> tuple[list[ChannelIds], list[ChannelIds]]:
    """The listed channels this collector owns, and those whose listed channel id is in another collector's slot
    (skipped before anything is sent). A channel listed by username alone is decided by the pass: from the
    archive's cache, or after one resolve (its outcome is then ``not_owned``)."""
    if owned is None or not owned.enforced:
        return listed, []
    mine = [c for c in listed if c.channel_id is None or owned.owns(c.channel_id)]
    return mine, [c for c in listed if c.channel_id is not None and not owned.owns(c.channel_id)]


def _check_deleted_path(out: Path, ids: Path, archive: Path) -> None:
    """Refuse a ``--deleted`` path that could not be written, before anything is sent (exit 2)."""
    folder = out.parent
    if out.is_dir():
        fail(Exit.USAGE, f"--deleted {out}: is a folder; name a file (e.g. {out / 'deleted.csv'}); nothing was sent")
    if not folder.is_dir():
        fail(Exit.USAGE, f"--deleted {out}: the folder {folder} does not exist; create it or name a file in an "
                         "existing folder; nothing was sent")
    if not os.access(folder, os.W_OK | os.X_OK):
        fail(Exit.USAGE, f"--deleted {out}: no permission to write in {folder}; name a file in a folder you may "
                         "write to; nothing was sent")
    for other, what in ((ids, "the id list"), (archive, "the archive")):
        if out.resolve() == other.resolve():
            fail(Exit.USAGE, f"--deleted {out}: that is {what}, which it would replace; name another file")


def _write_deleted(report: CollectReport | None, out: Path) -> int:
    """Write the deleted posts as CSV to ``out``, atomically: a temporary file beside it, then a rename (an
    existing file is replaced whole, or not at all). ``report`` None (nothing hydrated): the header alone."""
    rows = 0
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["channel_id", "username", "message_id"])
            for c in report.channels if report is not None else ():
                for message_id in c.deleted_ids:
                    writer.writerow([c.channel_id, c.username or "", message_id])
                    rows += 1
        install(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def _print_deleted(report: CollectReport) -> None:
    for c in report.channels:
        if c.deleted_ids:
            shown = ", ".join(str(i) for i in c.deleted_ids[:SHOWN])
            more = f" and {len(c.deleted_ids) - SHOWN:,} more (--deleted FILE lists them all)" \
                if len(c.deleted_ids) > SHOWN else ""
            stdout.print(f"  deleted in {safe(c.username or c.channel_id)}: {shown}{more}", markup=False,
                         highlight=False, soft_wrap=True)


def _not_owned_line(skipped: list[ChannelIds], report: CollectReport | None, listed: list[ChannelIds]) -> str | None:
    """"N ids of M channels belong to other collectors' slots ...", or None when every channel was owned."""
    refused = {c.input for c in report.channels if c.outcome == NOT_OWNED} if report is not None else set()
    by_input = {f"@{c.username}": c for c in listed if c.channel_id is None and c.username}
    others = skipped + [by_input[i] for i in refused if i in by_input]
    if not others:
        return None
    ids = sum(len(c.message_ids) for c in others)
    return (f"{plural(ids, 'id')} of {plural(len(others), 'channel')} belong to other collectors' slots\n"
            "(the assignment file): run hydrate on those collectors")


def register(app: typer.Typer) -> None:
    """Add ``tgspread hydrate`` to the app."""

    @app.command("hydrate")
    def hydrate_command(
        ids: Annotated[Path, typer.Argument(
            metavar="IDS.csv", dir_okay=False, show_default=False,
            help="An id list: CSV with channel_id and/or username, and message_id (tgspread export --ids).")],
        config: ConfigOpt = None,
        collector: CollectorOpt = None,
        archive: ArchiveOpt = None,
        session: SessionOpt = None,
        wait: WaitOpt = 30.0,
        deleted: Annotated[Path | None, typer.Option(
            "--deleted", metavar="FILE", dir_okay=False,
            help="Write every listed post Telegram no longer has to FILE (CSV: channel_id, username, "
                 "message_id); an existing FILE is replaced. Its folder must exist.")] = None,
    ) -> None:
        """Re-collect the posts of an id list: channels.getMessages, 100 ids per request.

        Channels are resolved as `collect` resolves them (the archive's cache first). Posts Telegram no longer
        has are reported as deleted; unknown or private channels are reported per channel. With an assignment
        file, ids of channels in other collectors' slots are skipped (one line says how many). Publishes to the
        lake afterwards when one is configured. Exit 0 when every channel was fetched, 1 when some were not.
        """
        wide_when_piped()
        with errors():
            cfg = load_config(config, archive=archive, session=session, collector=collector)
            try:
                listed = read_id_list(ids)
            except FileNotFoundError:
                fail(Exit.USAGE, f"{ids}: no such file; give the id list that `tgspread export --ids` wrote")
            except IdListError as exc:
                fail(Exit.USAGE, str(exc))
            if not listed:
                fail(Exit.USAGE, f"{ids}: the id list names no posts")
            if deleted is not None:
                _check_deleted_path(deleted, ids, cfg.archive)
            owned = ownership(cfg)
            mine, skipped = _split_owned(listed, owned)
            if not mine:
                stdout.print(f"nothing hydrated; {_not_owned_line(skipped, None, listed)}", markup=False,
                             highlight=False, soft_wrap=True)
                if deleted is not None:     # replaced as promised: an earlier run's list must not pass for this one's
                    try:
                        _write_deleted(None, deleted)
                    except OSError as exc:
                        fail(Exit.PARTIAL, f"--deleted {deleted}: could not be written ({exc.strerror or exc})")
                return
            found = telegram(cfg, "hydrating from")
            report = asyncio.run(_hydrate_pass(cfg, mine, CollectProgress(stderr), wait, found, owned))
            print_report(report, title=f"hydrate run {report.run_id}: {report.status}")
            gone = sum(len(c.deleted_ids) for c in report.channels)
            asked = sum(len(c.message_ids) for c in listed)
            stdout.print(f"{plural(asked, 'id')} listed; {gone:,} deleted on Telegram", markup=False,
                         highlight=False)
            elsewhere = _not_owned_line(skipped, report, listed)
            if elsewhere is not None:
                stdout.print(elsewhere, markup=False, highlight=False, soft_wrap=True)
            if deleted is not None:
                try:
                    written = _write_deleted(report, deleted)
                except OSError as exc:
                    _print_deleted(report)
                    fail(Exit.PARTIAL, f"--deleted {deleted}: could not be written ({exc.strerror or exc}); the "
                                       "pass itself is committed; the deleted ids are printed above (the first "
                                       f"{SHOWN} of each channel)")
                stdout.print(f"deleted posts listed in {safe(deleted)} ({plural(written, 'row')})", markup=False,
                             soft_wrap=True)
            else:
                _print_deleted(report)
            if report.status != "ok":
                raise typer.Exit(int(Exit.PARTIAL))
