"""`tgspread status`: what the archive holds and how the last passes went, channel by channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from collector.archive import Archive
from collector.archive.status import ArchiveStatus, archive_status, status_as_json
from collector.config import load_config

from . import common as ui
from .common import ArchiveOpt, ConfigOpt, WaitOpt
from .progress import OUTCOME_STYLE
from .safe_text import cell, safe
from .tables import Column, fitted_table
from .words import plural

_STATUS_COLUMNS = [Column("channel"), Column("posts", "right", keep=9), Column("deleted", "right", keep=5),
                   Column("newest post", keep=7), Column("last snapshot", keep=4), Column("last pass", keep=8),
                   Column("failed passes", "right", keep=6), Column("flood wait until", keep=2),
                   Column("never-seen ids", "right", keep=3)]


def _channels_table(status: ArchiveStatus) -> Table:
    rows: list[list[str | Text]] = []
    for ch in [*status.channels, *status.unresolved]:
        outcome = cell(ch.last_outcome or "-", OUTCOME_STYLE.get(ch.last_outcome or "", ""))
        rows.append([cell(ch.name), f"{ch.posts:,}", f"{ch.deleted:,}", ui.stamp(ch.newest_post_at),
                     ui.stamp(ch.last_snapshot_at), outcome, str(ch.failed_passes), ui.stamp(ch.flood_until),
                     f"{ch.never_seen_ids:,}"])
    return fitted_table(_STATUS_COLUMNS, rows, width=ui.stdout.width,
                        title=f"{plural(len(status.channels), 'channel')}, as of {ui.stamp(status.as_of)} UTC")


def _print_status(status: ArchiveStatus, archive: Path) -> None:
    t = status.totals
    ui.stdout.print(f"[bold]{escape(safe(archive))}[/]: {plural(t.posts, 'post')} ({t.deleted:,} seen deleted), "
                 f"{plural(t.observations, 'observation')}, {plural(t.versions, 'earlier version')}, "
                 f"{plural(t.runs, 'pass', 'passes')}", soft_wrap=True)
    if status.last_run is not None:
        r = status.last_run
        error = f", error: {safe(r.error)}" if r.error else ""
        ui.stdout.print(f"last pass: run {r.run_id} {r.status}, started {ui.stamp(r.started_at)} UTC, "
                     f"{plural(r.requests or 0, 'request')}{error}", markup=False, soft_wrap=True)
    ui.stdout.print(_channels_table(status))
    problems = [ch for ch in [*status.channels, *status.unresolved] if ch.last_outcome not in (None, "ok")]
    for ch in problems:
        ui.stdout.print(cell(f"{ch.name}: {ch.last_outcome}: {ch.last_error or ''}",
                          OUTCOME_STYLE.get(ch.last_outcome or "", "")), soft_wrap=True)
    for fw in status.flood_waits:
        who = f" (hit while collecting {'@' + safe(fw.username) if fw.username else fw.channel_id})" \
            if fw.channel_id else ""
        ui.stdout.print(f"pending flood wait: no {fw.request} before {ui.stamp(fw.until)} UTC{who}", style="yellow",
                     markup=False, soft_wrap=True)
    gaps = [ch for ch in status.channels if ch.never_seen_ids or ch.cleared_ids]
    if gaps:
        rows: list[list[str | Text]] = [[cell(ch.name), f"{ch.never_seen_ids:,}",
                 ", ".join(f"{g.first_id}-{g.last_id}" if g.size > 1 else str(g.first_id) for g in ch.largest_gaps),
                 f"{ch.cleared_ids:,}"] for ch in gaps]
        ui.stdout.print(fitted_table([Column("channel"), Column("never seen", "right", keep=9),
                                   Column("largest ranges", keep=5, min_width=12, wrap=True),
                                   Column("history cleared", "right", keep=7)], rows, width=ui.stdout.width,
                                  title="message ids never archived"))
        ui.stdout.print(status.gap_label[0].upper() + status.gap_label[1:] + ".", soft_wrap=True, style="dim")


def register(app: typer.Typer) -> None:
    """Add ``tgspread status`` to the app."""

    @app.command()
    def status(
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
        wait: WaitOpt = 10.0,
    ) -> None:
        """Show what the archive holds and how the last passes went, channel by channel.

        Per channel: posts (and deleted), newest post, last snapshot, last pass outcome and error, failed
        passes, a pending flood wait, and message ids never archived. Opens the archive read-only.
        """
        ui.wide_when_piped()
        with ui.errors():
            path = load_config(config, archive=archive).archive
            with Archive(path, read_only=True, wait=wait) as opened:
                result = archive_status(opened.con)
            if as_json:
                payload: dict[str, Any] = {"archive": str(path), **status_as_json(result)}
                typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
            else:
                _print_status(result, path)
