"""`tgspread publish`, and the step every pass that wrote anything ends with: publishing to the lake (issue 14).

``collect``, ``run``, ``import``, ``collect --via web``, ``comments``, ``media`` and ``demo`` call
:func:`publish_after_pass` once their writes are committed: when ``[lake] path`` is configured, what changed is
published (:func:`collector._archive.lake.publish`). A publish that fails warns in one line and keeps what was
collected; the changed partitions stay marked, so the next publish (or ``tgspread publish``) writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from collector._archive.archive import Archive
from collector._archive.lake import LakeError, PublishReport, publish
from collector._config import Config, config_file, load_config

from .common import ArchiveOpt, ConfigOpt, Exit, WaitOpt, errors, fail, is_interrupt, stderr, stdout
from .safe_text import safe
from .words import plural


def _line(report: PublishReport) -> str:
    kind = "full publish" if report.full else "published"
    # why: it may quote the previous manifest's schema version, which is the lake's (outside) data
    why = f" ({safe(report.why_full)})" if report.full and report.why_full else ""
    # the lake's path is the user's text (a config, an argument): shown with control characters escaped
    return (f"{kind} to {safe(report.lake)} as {report.collector!r}{why}: "
            f"{plural(report.files_written, 'file')} written, {report.files_removed:,} removed, "
            f"{plural(report.rows_written, 'row')} in {report.seconds:.1f} s")


def publish_after_pass(archive: Any, cfg: Config) -> PublishReport | None:
    """Publish what the pass changed when a lake is configured; one line on stderr, never an exception."""
    if cfg.lake is None:
        return None
    try:
        report = publish(archive, cfg.lake, collector=cfg.lake_collector)
    except Exception as exc:   # what was collected is committed; the marks stay for the next publish
        if is_interrupt(exc):  # Ctrl-C while publishing: the caller says what was done before it
            raise KeyboardInterrupt from exc
        first = str(exc).splitlines()[0] if str(exc) else ""
        if isinstance(exc, LakeError):   # a refusal: it says what to do, and the next pass would meet it again
            stderr.print(f"[yellow]warning[/]: the lake was not updated: {escape(safe(first))}; what was collected "
                         "is kept in the archive and stays marked for the first publish that succeeds",
                         highlight=False, soft_wrap=True)
            return None
        stderr.print(f"[yellow]warning[/]: the lake {escape(safe(cfg.lake))} was not updated ({type(exc).__name__}: "
                     f"{escape(safe(first))}); "
                   "what was collected is kept, and the next pass (or `tgspread publish`) publishes it",
                   highlight=False, soft_wrap=True)
        return None
    stderr.print(_line(report), style="dim", highlight=False, soft_wrap=True, markup=False)
    _warn(report)
    return report


def _warn(report: PublishReport) -> None:
    for text in report.warnings:    # names from the lake's manifests: outside data, escaped
        stderr.print(f"[yellow]warning[/]: {escape(safe(text))}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""

    @app.command("publish")
    def publish_command(
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        lake: Annotated[Path | None, typer.Option(
            "--lake", metavar="DIR", file_okay=False,
            help="The lake directory (default: the config's [lake] path).")] = None,
        collector: Annotated[str | None, typer.Option(
            "--collector", metavar="NAME",
            help="Publish as collector NAME: with a config, its [collectors.NAME] archive under that name (as on "
                 "`run`); without one, the name the archive publishes under (default: [lake] collector, or "
                 "'main').")] = None,
        full: Annotated[bool, typer.Option("--full", help="Rewrite every partition, not only what changed.")]
            = False,
        replace: Annotated[bool, typer.Option(
            "--replace", help="Replace this collector's files even if another archive published them (a rebuilt "
                              "archive); a full publish.")] = False,
        wait: WaitOpt = 30.0,
    ) -> None:
        """Publish the archive to a lake: Hive-partitioned Parquet that readers use without locking it.

        Only what changed since the last publish is rewritten; each file is replaced whole and atomically.
        People are pseudonymised and raw payloads left out, as in `tgspread export`, so a lake can be handed
        on. `analysis.connect(DIR)` reads it. See docs/lake.md.
        """
        with errors():
            # with a config, --collector selects that collector (its archive), as on every other command: publishing
            # one collector's archive under another's name would replace that collector's files
            source = config_file(config)
            cfg = load_config(source, archive=archive, collector=collector if source is not None else None)
            target = lake if lake is not None else cfg.lake
            if target is None:
                fail(Exit.USAGE, "no lake to publish to: pass --lake DIR or set [lake] path in tgspread.toml")
            if not cfg.archive.exists():    # the same message as every reading command (never create one here)
                with Archive(cfg.archive, read_only=True, wait=wait):
                    pass
            try:
                name = cfg.lake_collector if collector is None else collector
                with Archive(cfg.archive, wait=wait) as opened:
                    report = publish(opened, target, collector=name, full=full, replace=replace)
            except LakeError as exc:
                fail(Exit.USAGE, str(exc))
            # the line on its own (a table's title wraps at the table's width, splitting the lake's path)
            stdout.print(_line(report), soft_wrap=True, highlight=False, markup=False)
            _warn(report)
            if report.partitions:     # nothing changed since the last publish: the line says so, no empty table
                table = Table()
                table.add_column("table")
                table.add_column("partitions written", justify="right")
                for table_name, parts in report.partitions.items():
                    table.add_row(table_name, f"{len(parts):,}")
                stdout.print(table)
