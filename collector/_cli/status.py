"""`tgspread status`: what the archive holds and how the last passes went, channel by channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from collector._archive import Archive
from collector._archive.status import ArchiveStatus, FieldRoute, archive_status, field_routes, status_as_json
from collector._config import load_config
from collector._parse.channel_ref import ChannelRefError, parse_channel_ref

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, WaitOpt
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


def _plain_route(r: FieldRoute) -> dict[str, Any]:
    return {"channel_id": r.channel_id, "group": r.group, "route": r.route, "posts": r.posts,
            "first_seen_at": r.first_seen_at.isoformat() if r.first_seen_at else None,
            "last_seen_at": r.last_seen_at.isoformat() if r.last_seen_at else None}


_GROUP_WORDS = {"text": "text", "counters": "views, forwards, replies", "reactions": "reactions",
                "header": "forward header"}


def _routes_table(name: str, routes: list[FieldRoute]) -> Table:
    """What each route gave one channel, a row per (group of fields, route); readable at 80 columns."""
    rows: list[list[str | Text]] = []
    for r in routes:
        seen = ui.stamp(r.first_seen_at) if r.first_seen_at == r.last_seen_at else \
            f"{ui.stamp(r.first_seen_at)} - {ui.stamp(r.last_seen_at)}"
        rows.append([_GROUP_WORDS.get(r.group, r.group), cell(r.route), f"{r.posts:,}",
                     seen if r.first_seen_at is not None else "-"])
    return fitted_table([Column("fields"), Column("from", keep=9), Column("posts", "right", keep=8),
                         Column("seen (UTC)", keep=5, wrap=True)], rows, width=ui.stdout.width,
                        title=f"{safe(name)}: which route gave each group of fields")


def _print_routes(status: ArchiveStatus, ids: list[int], routes: list[FieldRoute]) -> None:
    names = {ch.channel_id: ch.name for ch in status.channels}
    for cid in ids:
        mine = [r for r in routes if r.channel_id == cid]
        if mine:
            ui.stdout.print(_routes_table(names.get(cid, str(cid)), mine))
        else:
            ui.stdout.print(f"{safe(names.get(cid, str(cid)))}: no posts archived", markup=False, soft_wrap=True)
    ui.stdout.print("Routes: api, web (preview), export (Desktop); 'a+b': b filled what a lacked; 'unrecorded': "
                    "written before migration 0011. An export's time is when it was imported.", style="dim")


def _channel_id(opened: Archive, value: str, path: Path) -> int:
    """The archived id ``value`` names (exit 2 for a channel the archive does not hold)."""
    try:
        ref = parse_channel_ref(value)
    except ChannelRefError as exc:
        ui.fail(Exit.USAGE, f"--channel: {exc}")
    return ui.archived_channel(opened, ref, path)


def register(app: typer.Typer) -> None:
    """Add ``tgspread status`` to the app."""

    @app.command()
    def status(
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
        wait: WaitOpt = 10.0,
        channel: Annotated[list[str] | None, typer.Option(
            "--channel", metavar="CHANNEL", help="Also show, for this channel, which route (API, web preview, "
                                                 "Desktop export) gave each group of fields, and when "
                                                 "(repeatable; a username, @name, t.me link or archived id).")]
            = None,
        collector: CollectorOpt = None,
    ) -> None:
        """Show what the archive holds and how the last passes went, channel by channel.

        Per channel: posts (and deleted), newest post, last snapshot, last pass outcome and error, failed
        passes, a pending flood wait, and message ids never archived. With --channel, also which route gave
        that channel's texts, counters, reactions and forward headers (provenance by field). --collector NAME
        shows that collector's archive. Opens the archive read-only.
        """
        ui.wide_when_piped()
        with ui.errors():
            path = load_config(config, archive=archive, collector=collector).archive
            with Archive(path, read_only=True, wait=wait) as opened:
                ids = list(dict.fromkeys(_channel_id(opened, c, path) for c in channel or []))
                result = archive_status(opened.con)
                routes = field_routes(opened.con, ids)
            if as_json:
                payload: dict[str, Any] = {"archive": str(path), **status_as_json(result)}
                if channel:
                    payload["field_routes"] = [_plain_route(r) for r in routes]
                typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
            else:
                _print_status(result, path)
                if ids:
                    _print_routes(result, ids, routes)
