"""`tgspread comments`: optional discussion-group replies, pseudonymised (issue 5)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from collector._archive.archive import Archive
from collector._config import Config, load_config
from collector._telegram.client import Telegram
from collector._telegram.comments import CommentsReport, CommentsSettings, collect_comments

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, SessionOpt, WaitOpt
from .publish import publish_after_pass

DISABLED = ("comments are off: they are messages of private people, so fetching them is an explicit choice; "
            "read docs/comments.md, then set `enabled = true` under [comments] in tgspread.toml (--config)")


async def _run(cfg: Config, channels: list[str] | None, settings: CommentsSettings, wait: float,
               found: Telegram) -> CommentsReport:
    client = found.client()
    now = found.now()
    with Archive(cfg.archive, wait=wait) as archive:
        await ui.connect(found, client, nothing_done="no comments were fetched")
        try:
            owned = ui.ownership(cfg)
            report = await collect_comments(client, archive, channels, now=now, settings=settings,
                                            owns=owned.owns if owned is not None else None)
        finally:
            await client.disconnect()
        publish_after_pass(archive, cfg)
        return report


def _as_json(report: CommentsReport, archive: str) -> dict[str, Any]:
    return {
        "archive": archive, "status": report.status, "started_at": report.started_at.isoformat(),
        "posts_due": report.posts_due, "posts_fetched": report.posts_fetched, "new_comments": report.new_comments,
        "deleted_comments": report.deleted_comments, "requests": report.requests, "errors": report.errors,
        "flood_until": report.flood_until.isoformat() if report.flood_until is not None else None,
        "stopped": report.stopped,
    }


def comments_command(
    channel: Annotated[list[str] | None, typer.Argument(
        metavar="CHANNEL", help="Archived channels (username, @username, t.me link or numeric id); default: all.",
        show_default=False)] = None,
    max_posts: Annotated[int | None, typer.Option(
        "--max-posts", min=1, metavar="N", help="Ask about at most N posts this time (those whose comment counter "
                                                "grew most); the rest stay due.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    config: ConfigOpt = None,
    collector: CollectorOpt = None,
    archive: ArchiveOpt = None,
    session: SessionOpt = None,
    wait: WaitOpt = 30.0,
) -> None:
    """Fetch new comments under archived posts from the channels' discussion groups (off by default).

    Needs `[comments] enabled = true` in the config. Only posts whose comment counter grew since the last
    fetch are asked about, and only comments newer than the archived ones are fetched. Authors are stored
    as keyed pseudonyms, never as ids or names (docs/comments.md).
    Exit 0 when done, 1 when a flood wait or refused posts cut it short (the next run continues), 2 when off.
    """
    ui.wide_when_piped()
    with ui.errors():
        cfg = load_config(config, archive=archive, session=session, collector=collector)
        if not cfg.comments_enabled:
            ui.fail(Exit.USAGE, DISABLED)
        if not cfg.archive.exists():
            ui.fail(Exit.USAGE, f"{cfg.archive}: no such archive; collect the channels first (`tgspread collect`)")
        settings = CommentsSettings(max_posts=max_posts if max_posts is not None else cfg.comments_max_posts)
        found = ui.telegram(cfg, "fetching comments from")
        report = asyncio.run(_run(cfg, list(channel) if channel else None, settings, wait, found))
        if as_json:
            typer.echo(json.dumps(_as_json(report, str(cfg.archive)), indent=2, ensure_ascii=False))
        else:
            table = Table(title=f"comments into {cfg.archive}: {report.status}", title_justify="left")
            for name in ("posts due", "posts fetched", "new comments", "seen deleted", "requests"):
                table.add_column(name, justify="right")
            table.add_row(f"{report.posts_due:,}", f"{report.posts_fetched:,}", f"{report.new_comments:,}",
                          f"{report.deleted_comments:,}", f"{sum(report.requests.values()):,}")
            ui.stdout.print(table)
            if report.stopped is not None:
                ui.stdout.print(f"stopped: {report.stopped}; the next run continues", style="yellow", markup=False,
                                soft_wrap=True)
            for line in report.errors:
                ui.stdout.print(line, style="yellow", markup=False, soft_wrap=True)
        if report.status != "ok":
            raise typer.Exit(int(Exit.PARTIAL))


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""
    app.command("comments")(comments_command)
