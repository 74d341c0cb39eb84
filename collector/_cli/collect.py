"""`tgspread collect`: one collection pass over the named channels (through the API, or the web preview)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from collector._archive import Archive
from collector._config import Config, load_config
from collector._scheduling.ownership import NOT_OWNED, Ownership
from collector._telegram.client import Telegram
from collector._telegram.collect import CollectReport, CollectSettings, collect

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, SessionOpt, WaitOpt
from .progress import OUTCOME_STYLE, CollectProgress
from .publish import publish_after_pass
from .safe_text import cell, safe


async def _collect_pass(cfg: Config, channels: list[str], progress: CollectProgress, wait: float,
                        telegram: Telegram, allow_private: bool = False, owned: Ownership | None = None
                        ) -> CollectReport:
    client = telegram.client()
    now = telegram.now()
    if telegram.world is not None:
        channels = channels or list(telegram.world.seeds)
    with Archive(cfg.archive, wait=wait) as archive:
        await ui.connect(telegram, client, nothing_done="nothing was collected")
        settings = CollectSettings(checkpoints=cfg.checkpoints, snapshot_every=cfg.snapshot_every,
                                   allow_private=allow_private, ownership=owned)
        try:
            with progress.watching_flood_sleeps():
                progress.begin(f"collecting into {cfg.archive}", channels)
                report = await collect(client, channels, archive, now=now, settings=settings, progress=progress)
                progress.end(report)
        finally:
            await client.disconnect()
        publish_after_pass(archive, cfg)   # the lake, when configured
    return report


def _collect_web(cfg: Config, names: list[str], wait: float, max_pages: int | None, owned: Ownership | None) -> None:
    """``collect --via web``: the public preview pages into the same archive (source = 'web'); with an
    assignment file only the channels of this collector's slots, as for the API (the others end ``not_owned``)."""
    from collector._sources.web import collect_web

    if not names:
        ui.fail(Exit.USAGE, "no channels to collect: name them as arguments, in a file given with --channels, "
                            "or as channels = [...] in tgspread.toml")
    with Archive(cfg.archive, wait=wait) as store:
        report = collect_web(store, names, max_pages=max_pages, ownership=owned)
        publish_after_pass(store, cfg)   # the lake, when configured
    table = Table(title=escape(f"web preview pass into {safe(cfg.archive)}"))
    for column in ("channel", "outcome", "pages", "new", "refreshed", "error"):
        table.add_column(column)
    for c in report.channels:
        table.add_row(cell(c.input), cell(c.outcome, OUTCOME_STYLE.get(c.outcome, "")), str(c.pages),
                      str(c.new_posts), str(c.refreshed_posts), cell(c.error or ""))
    ui.stdout.print(table)
    refused = sum(c.outcome == NOT_OWNED for c in report.channels)
    if refused:
        ui.stdout.print(f"{refused:,} not owned (other collectors' slots: handed on to them through the lake)",
                        markup=False, highlight=False, soft_wrap=True)
    if report.status != "ok":
        raise typer.Exit(int(Exit.PARTIAL))


def register(app: typer.Typer) -> None:
    """Add ``tgspread collect`` to the app."""

    @app.command("collect")
    def collect_command(
        channel: Annotated[list[str] | None, typer.Argument(
            metavar="CHANNEL", help="Channels: username, @username, t.me link, or a numeric id already archived.",
            show_default=False)] = None,
        channels_file: Annotated[Path | None, typer.Option(
            "--channels", metavar="FILE", dir_okay=False,
            help="A file of channels, one per line; `#` starts a comment.")] = None,
        config: ConfigOpt = None,
        collector: CollectorOpt = None,
        archive: ArchiveOpt = None,
        session: SessionOpt = None,
        wait: WaitOpt = 30.0,
        via: Annotated[str, typer.Option(
            "--via", metavar="api|web",
            help="`api` (default): through your Telegram account. `web`: the public t.me/s preview pages, no "
                 "account needed, fewer fields (see docs/sources.md).")] = "api",
        max_pages: Annotated[int | None, typer.Option(
            "--max-pages", metavar="N", min=1,
            help="With --via web: at most this many preview pages per channel (about 20 posts each).")] = None,
        allow_private: Annotated[bool, typer.Option(
            "--allow-private", help="Also collect groups (their messages are private people's words): only when your "
                                    "ethics approval covers it (README, \"Secrets and people\"). Users, bots and "
                                    "invite links are refused regardless.")] = False,
    ) -> None:
        """Run one collection pass: new posts of every channel, and refresh what is due.

        Channels come from the arguments, --channels FILE and the config's `channels`, in that order;
        with none of those, from the archive's collected set (`tgspread channels add`).
        Uses the session `tgspread login` saved; never prompts, so it is safe in cron.
        Exit 0 when every channel was collected, 1 when some were not (the summary says why).
        """
        ui.wide_when_piped()
        if via not in ("api", "web"):
            ui.fail(Exit.USAGE, f"--via takes 'api' or 'web', not {via!r}")
        with ui.errors():
            cfg = load_config(config, archive=archive, session=session, collector=collector)
            owned = ui.ownership(cfg)       # a bad assignment file stops the command before the archive is opened
            names = ui.channel_list(channel, channels_file, cfg)
            if not names and cfg.archive.exists():     # nothing named: the collected set (tgspread channels add)
                from collector._scheduling.channel_set import tracked_inputs

                with Archive(cfg.archive, wait=wait) as opened:
                    names = tracked_inputs(opened, usernames=via == "web")
            ui.channel_refs(list(channel or []), names, cfg.archive, wait)
            if via == "web":
                _collect_web(cfg, names, wait, max_pages, owned)
                return
            found = ui.telegram(cfg, "collecting from")
            if found.world is None and not names:
                ui.fail(Exit.USAGE, "no channels to collect: name them as arguments, in a file given with --channels, "
                                    "as channels = [...] in tgspread.toml, or add them with `tgspread channels add`")
            progress = CollectProgress(ui.stderr)
            report = asyncio.run(_collect_pass(cfg, names, progress, wait, found, allow_private, owned))
            ui.print_report(report)
            if report.status != "ok":
                raise typer.Exit(int(Exit.PARTIAL))
