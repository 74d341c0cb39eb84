"""`tgspread media`: optional media download, deduplicated and resumable (issue 5).

Downloads the files of archived posts (``collector._telegram.media.download_media``) into the media folder, laid out
by channel and date, one copy per distinct content. Settings: the options, else the config's ``[media]``
table, else the defaults (every file type but stickers, no size limit, ``media/`` beside the archive).
Exit 0 when every selected post got its file (or is gone on Telegram), 1 when some did not (a flood wait,
failures: a rerun continues), 2 for bad options, 3/4 for archive problems, 5 when Telegram is unreachable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from collector._archive.archive import Archive
from collector._config import Config, ConfigError, load_config
from collector._parse.media_files import MediaError, MediaSettings, check_kinds, parse_size
from collector._telegram.client import Telegram
from collector._telegram.media import MediaReport, archived_channel_ids, download_media

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, SessionOpt, WaitOpt
from .publish import publish_after_pass
from .safe_text import safe


def _settings(cfg: Config, directory: Path | None, kinds: str | None,
              max_size: str | None) -> tuple[Path, MediaSettings]:
    """Options over the config's ``[media]`` table; (media root, settings). Raises ConfigError on bad values."""
    base = cfg.media
    try:
        chosen_kinds = check_kinds(kinds.split(",")) if kinds is not None else base.kinds
    except ValueError as exc:
        raise ConfigError(f"--kinds: {exc}") from None
    try:
        chosen_size = parse_size(max_size) if max_size is not None else base.max_size
    except ValueError as exc:
        raise ConfigError(f"--max-size: {exc}") from None
    settings = MediaSettings(download=True, dir=directory or base.dir, kinds=chosen_kinds, max_size=chosen_size)
    return settings.root(cfg.archive), settings


async def _download(cfg: Config, root: Path, settings: MediaSettings, channels: list[str], limit: int | None,
                    wait: float, found: Telegram) -> MediaReport:
    client = found.client()
    now = found.now()
    owned = ui.ownership(cfg)
    with Archive(cfg.archive, wait=wait) as archive:
        await ui.connect(found, client, nothing_done="nothing was downloaded")
        try:
            with ui.stderr.status("downloading media (a rerun resumes where this one stops)"):
                report = await download_media(client, archive, root, channels=channels or None, kinds=settings.kinds,
                                              max_size=settings.max_size, limit=limit, now=now,
                                              owns=owned.owns if owned is not None else None)
        finally:
            await client.disconnect()
        publish_after_pass(archive, cfg)
        return report


def _print(report: MediaReport, root: Path) -> None:
    table = Table(title=f"media into {root}: {report.status}", title_justify="left")
    table.add_column("what")
    table.add_column("posts", justify="right")
    for label, value in (("selected (wanted type and size, no file yet)", report.candidates),
                         ("file downloaded and stored", report.stored),
                         ("same media id as a stored file: linked, nothing fetched", report.linked_same_media),
                         ("downloaded, identical to a stored file: linked", report.linked_same_content),
                         ("downloads resumed from a part file", report.resumed),
                         ("failed (tried again next run)", len(report.failed)),
                         ("gone on Telegram (not tried again)", len(report.gone))):
        table.add_row(label, f"{value:,}")
    ui.stdout.print(table)
    requests = ", ".join(f"{n} {name}" for name, n in sorted(report.requests.items())) or "none"
    ui.stdout.print(f"{report.bytes_downloaded / 1e6:,.1f} MB downloaded; {report.references_refreshed} file reference "
                    f"refreshes; requests: {requests}", soft_wrap=True, markup=False)
    for channel_id, message_id, reason in report.failed[:20]:
        ui.stdout.print(f"failed: post {message_id} of channel {channel_id}: {safe(reason)}", soft_wrap=True,
                     markup=False)
    if len(report.failed) > 20:
        ui.stdout.print(f"... and {len(report.failed) - 20} more failures (media_downloads in the archive lists them)",
                        markup=False)
    if report.stopped:
        ui.stdout.print(f"stopped early: {report.stopped}; run again later to continue", style="yellow", soft_wrap=True,
                        markup=False)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""

    @app.command("media")
    def media_command(
        channel: Annotated[list[str] | None, typer.Argument(
            metavar="CHANNEL", help="Only these archived channels (username, @username, t.me link or id); "
                                    "default: every archived channel.", show_default=False)] = None,
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        collector: CollectorOpt = None,
        session: SessionOpt = None,
        wait: WaitOpt = 30.0,
        directory: Annotated[Path | None, typer.Option(
            "--dir", metavar="PATH", file_okay=False,
            help="Media folder (default: the config's [media] dir, or media/ beside the archive).")] = None,
        kinds: Annotated[str | None, typer.Option(
            "--kinds", metavar="TYPE,...",
            help="Media types to download, comma-separated: photo, video, round_video, animation, audio, voice, "
                 "document, sticker (default: all but sticker).")] = None,
        max_size: Annotated[str | None, typer.Option(
            "--max-size", metavar="SIZE", help="Skip files larger than this, e.g. 20MB, 500k (default: no limit).")]
            = None,
        limit: Annotated[int | None, typer.Option(
            "--limit", metavar="N", min=0, help="At most N posts this run.")] = None,
    ) -> None:
        """Download the files of archived posts: photos, videos, documents, ... stored once per content.

        Files go to `DIR/CHANNEL/YYYY/MM/POSTID-SHA256PREFIX.EXT`; a file several posts carry
        (forwards, re-uploads) is stored once and linked to each post in the archive (post_media). Interrupted
        downloads resume where they stopped. Collect the channels first: only archived posts are considered.
        """
        ui.wide_when_piped()
        with ui.errors():
            cfg = load_config(config, archive=archive, session=session, collector=collector)
            root, settings = _settings(cfg, directory, kinds, max_size)
            found = ui.telegram(cfg, "downloading from")
            if not cfg.archive.exists():
                ui.fail(Exit.USAGE, f"{cfg.archive}: no such archive; collect channels first (tgspread collect)")
            if channel:      # check the names before the archive is opened for writing: bad input changes nothing
                with Archive(cfg.archive, read_only=True, wait=wait) as opened:
                    try:
                        archived_channel_ids(opened, channel)
                    except MediaError as exc:
                        ui.fail(Exit.USAGE, str(exc))
            try:
                report = asyncio.run(_download(cfg, root, settings, list(channel or []), limit, wait, found))
            except MediaError as exc:
                ui.fail(Exit.USAGE, str(exc))
            _print(report, root)
            if report.status != "ok":
                raise typer.Exit(int(Exit.PARTIAL))
