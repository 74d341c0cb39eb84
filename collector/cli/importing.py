"""`tgspread import`: a Telegram Desktop export (result.json) into the archive (source = 'export')."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from collector.archive import Archive
from collector.config import load_config

from .common import ArchiveOpt, ConfigOpt, Exit, WaitOpt, errors, fail, stdout, wide_when_piped
from .publish import publish_after_pass

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``tgspread import`` to the app."""

    @app.command("import")
    def import_command(
        path: Annotated[Path, typer.Argument(
            metavar="PATH", help="A Telegram Desktop export: its result.json (one chat or the whole account).")],
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        include_non_channels: Annotated[bool, typer.Option(
            "--include-non-channels", help="Also import groups and other non-channel chats of a full-account "
                                           "export (their authors are pseudonymised).")] = False,
        keep_raw: Annotated[bool, typer.Option(
            "--keep-raw", help="Keep each exported message's JSON in posts.raw (about doubles the import time).")]
            = False,
        wait: WaitOpt = 30.0,
    ) -> None:
        """Import a Telegram Desktop export (result.json) into the archive (source = 'export').

        Re-importing the same file changes nothing; over API data an export only fills gaps.
        Exit 0 when imported, 2 when the file is not a usable export (the archive is left as it was).
        """
        from collector.sources.export_import import SourceError, import_export

        wide_when_piped()
        with errors():
            cfg = load_config(config, archive=archive)
            new_file = not Path(cfg.archive).exists()
            try:
                with Archive(cfg.archive, wait=wait) as store:
                    report = import_export(store, path, include_non_channels=include_non_channels, keep_raw=keep_raw)
                    publish_after_pass(store, cfg)   # the lake, when configured
            except BaseException as exc:
                if new_file:       # a failed import into a new path leaves no empty archive behind
                    for leftover in (Path(cfg.archive), Path(f"{cfg.archive}.wal")):
                        leftover.unlink(missing_ok=True)
                if isinstance(exc, SourceError):
                    fail(Exit.USAGE, str(exc))
                raise
            table = Table(title=f"import of {path}" + (" (already imported: nothing changed)"
                                                        if report.already_imported else ""))
            for column in ("chat", "type", "outcome", "messages", "new posts", "updated", "earlier texts", "reason"):
                table.add_column(column)
            for chat in report.chats:
                table.add_row(chat.name or str(chat.chat_id), chat.type or "", chat.outcome, str(chat.messages),
                              str(chat.new_posts), str(chat.updated_posts), str(chat.versions), chat.reason or "")
            stdout.print(table)
