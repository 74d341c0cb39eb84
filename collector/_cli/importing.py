"""`tgspread import`: a Telegram Desktop export (result.json) into the archive (source = 'export')."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from collector._archive import Archive
from collector._config import load_config

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, WaitOpt
from .publish import publish_after_pass
from .safe_text import cell, safe
from .tables import Column, fitted_table


def register(app: typer.Typer) -> None:
    """Add ``tgspread import`` to the app."""

    @app.command("import")
    def import_command(
        path: Annotated[Path, typer.Argument(
            metavar="PATH", help="A Telegram Desktop export: its result.json (one chat or the whole account).")],
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        collector: CollectorOpt = None,
        include_non_channels: Annotated[bool, typer.Option(
            "--include-non-channels", help="Also import groups and other non-channel chats of a full-account "
                                           "export (their authors are pseudonymised).")] = False,
        keep_raw: Annotated[bool, typer.Option(
            "--keep-raw", help="Keep each exported message's JSON in posts.raw (about doubles the import time).")]
            = False,
        wait: WaitOpt = 30.0,
    ) -> None:
        """Import a Telegram Desktop export (result.json) into the archive (source = 'export').

        Re-importing the same file changes nothing; over API data an export only fills gaps. With
        `--collector NAME`, into that collector's archive, published under its name (slots are not checked:
        an import sends nothing to Telegram).
        Exit 0 when imported, 2 when the file is not a usable export (the archive is left as it was).
        """
        from collector._sources.export_import import SourceError, import_export

        ui.wide_when_piped()
        with ui.errors():
            cfg = load_config(config, archive=archive, collector=collector)
            new_file = not Path(cfg.archive).exists()
            interrupted = False
            try:
                with Archive(cfg.archive, wait=wait) as store:
                    try:
                        report = import_export(store, path, include_non_channels=include_non_channels,
                                               keep_raw=keep_raw)
                    except BaseException:
                        if new_file:       # a failed import into a new path leaves no empty archive behind
                            store.close()
                            for leftover in (Path(cfg.archive), Path(f"{cfg.archive}.wal")):
                                leftover.unlink(missing_ok=True)
                        raise
                    try:
                        publish_after_pass(store, cfg)   # the lake, when configured
                    except KeyboardInterrupt:     # the import is committed: say so, then exit 130
                        interrupted = True
            except SourceError as exc:
                ui.fail(Exit.USAGE, str(exc))
            columns = [Column("chat"), Column("type", keep=3), Column("outcome", keep=9),
                       Column("messages", "right", keep=8), Column("new posts", "right", keep=7),
                       Column("updated", "right", keep=6), Column("earlier texts", "right", keep=5),
                       Column("reason", keep=4, min_width=12, wrap=True)]
            rows: list[list[str | Text]] = [
                [cell(chat.name or chat.chat_id), cell(chat.type or ""), chat.outcome, str(chat.messages),
                 str(chat.new_posts), str(chat.updated_posts), str(chat.versions), cell(chat.reason or "")]
                for chat in report.chats]
            title = f"import of {safe(path)}" + (" (already imported: nothing changed)" if report.already_imported
                                                  else "")
            ui.stdout.print(fitted_table(columns, rows, width=ui.stdout.width, title=escape(title)))
            if interrupted:
                ui.fail(Exit.INTERRUPTED, f"interrupted after the import of {safe(path)} was committed (it succeeded: "
                                       "see the table above); the lake was not published: `tgspread publish` "
                                       "does it")
