"""`tgspread channels add/remove/list`: the collected channel set (issue 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from collector._archive.archive import Archive
from collector._config import load_config
from collector._scheduling.channel_set import (
    ChannelSetError,
    SetEntry,
    add_channels,
    list_channels,
    parse_set_names,
    remove_channels,
)

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, WaitOpt
from .safe_text import cell, safe
from .words import plural

channels_app = typer.Typer(
    name="channels",
    help="Manage the collected channel set: what `tgspread collect` (without channel arguments), `tgspread run` "
         "and `tgspread discover` start from.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

NamesArg = Annotated[list[str], typer.Argument(
    metavar="NAME", help="Channels: username, @username, t.me link, or a numeric id already archived.",
    show_default=False)]


def _archive_path(archive: Path | None, config: Path | None, collector: str | None) -> Path:
    """The archive the options name: ``--archive``, else that of ``--collector NAME`` or of the config."""
    return load_config(config, archive=archive, collector=collector).archive


def _stamp(entry: SetEntry) -> str:
    return f"{entry.added_at:%Y-%m-%d %H:%M}"


@channels_app.command("add")
def add_command(names: NamesArg, archive: ArchiveOpt = None, config: ConfigOpt = None, wait: WaitOpt = 30.0,
                collector: CollectorOpt = None) -> None:
    """Add channels to the collected set (as seeds: hop 0). Every name is checked first; one bad name adds nothing.

    A channel already in the set is left as it is and reported. The next `tgspread collect` collects them.
    """
    with ui.errors():
        path = _archive_path(archive, config, collector)
        try:
            refs = parse_set_names(names)
            unknown_id = next((r for r in refs if r.channel_id is not None), None)
            if unknown_id is not None and not path.exists():
                raise ChannelSetError(f"channel id {unknown_id.channel_id} is not in this archive ({path} does not "
                                      "exist yet); add the channel by its @username or t.me link; nothing was changed")
            with Archive(path, wait=wait) as store:
                changes = add_channels(store, names)
        except ChannelSetError as exc:
            ui.fail(Exit.USAGE, str(exc))
        for change in changes:
            entry = change.entry
            assert entry is not None
            if change.outcome == "added":
                ui.stdout.print(f"added {safe(entry.name)} to the collected set", markup=False, soft_wrap=True)
            else:
                ui.stdout.print(f"{safe(change.input)}: already in the collected set as {safe(entry.name)} "
                             f"(since {_stamp(entry)} UTC, added by {entry.added_by}); nothing changed",
                             markup=False, soft_wrap=True)


@channels_app.command("remove")
def remove_command(names: NamesArg, archive: ArchiveOpt = None, config: ConfigOpt = None,
                   wait: WaitOpt = 30.0, collector: CollectorOpt = None) -> None:
    """Remove channels from the collected set. Their archived posts stay; the membership is kept for the record
    (`tgspread channels list --all`), and discovery never adds them back on its own.

    Exit 1 when a name was not in the set.
    """
    with ui.errors():
        path = _archive_path(archive, config, collector)
        try:
            parse_set_names(names)
            if not path.exists():
                raise ChannelSetError(f"{path}: no such archive, so no collected set to remove from; check --archive")
            with Archive(path, wait=wait) as store:
                changes = remove_channels(store, names)
        except ChannelSetError as exc:
            ui.fail(Exit.USAGE, str(exc))
        for change in changes:
            if change.outcome == "removed":
                assert change.entry is not None
                ui.stdout.print(f"removed {safe(change.entry.name)} from the collected set (its archived posts stay)",
                             markup=False, soft_wrap=True)
            else:
                ui.stdout.print(f"{safe(change.input)}: not in the collected set; nothing changed", markup=False,
                             soft_wrap=True)
        if any(c.outcome == "absent" for c in changes):
            raise typer.Exit(int(Exit.PARTIAL))


@channels_app.command("list")
def list_command(
    archive: ArchiveOpt = None,
    config: ConfigOpt = None,
    include_removed: Annotated[bool, typer.Option(
        "--all", help="Also list channels removed from the set (with when).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    wait: WaitOpt = 10.0,
    collector: CollectorOpt = None,
) -> None:
    """List the collected set: how and when each channel was added (by hand, or by discovery with its seed and
    hop), its posts in the archive, and (with --all) when it was removed. Opens the archive read-only.
    """
    ui.wide_when_piped()
    with ui.errors():
        path = _archive_path(archive, config, collector)
        with Archive(path, read_only=True, wait=wait) as store:
            entries = list_channels(store, include_removed=include_removed, with_posts=True)
        if as_json:
            typer.echo(json.dumps({"archive": str(path), "channels": [e.as_json() for e in entries]}, indent=2,
                                  ensure_ascii=False))
            return
        active = sum(1 for e in entries if e.removed_at is None)
        table = Table(title=escape(f"collected set of {safe(path)}: {plural(active, 'channel')}"), title_justify="left")
        columns = ["channel", "title", "added (UTC)", "by", "hop", "seed", "posts", "state"]
        if include_removed:
            columns.append("removed (UTC)")
        for name in columns:
            table.add_column(name, justify="right" if name in ("hop", "posts") else "left")
        for e in entries:
            row: list[str | Text] = [cell(e.name), cell(e.title or ""), _stamp(e), e.added_by, str(e.hop),
                                     cell(e.seed_input or ("-" if e.added_by == "hand" else "(search)")),
                                     f"{e.posts or 0:,}", cell(e.status or "not collected yet")]
            if include_removed:
                row.append(f"{e.removed_at:%Y-%m-%d %H:%M}" if e.removed_at else "")
            table.add_row(*row)
        ui.stdout.print(table)
        if not entries:
            ui.stdout.print("The set is empty: add channels with `tgspread channels add NAME...`.", markup=False)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""
    app.add_typer(channels_app, name="channels")
