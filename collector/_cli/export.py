"""`tgspread export`: the archive as partitioned Parquet, person-level fields pseudonymised (issues 7, ARCHITECTURE).

Exit 0 when written, 2 for bad options or an --out that is not a new or empty directory (nothing is
written then), 3/4 for a busy or unusable archive. The work is :func:`collector._archive.export.export_archive`'s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.table import Table

from collector._archive.archive import Archive
from collector._archive.export import (
    FORMATS,
    ExportError,
    check_destination,
    ensure_pseudonym_key,
    export_archive,
    select_tables,
)
from collector._config import load_config

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, WaitOpt
from .safe_text import safe
from .words import plural


def _since(value: str | None) -> datetime | None:
    """``2025-01-31`` or an ISO 8601 time (UTC unless it says otherwise)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        ui.fail(Exit.USAGE, f"--since takes a date like 2025-01-31 (or an ISO 8601 time), not {value!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _export_ids(path: Path, out: Path, dates: bool, since: datetime | None, wait: float) -> None:
    """``export --ids``: ``out/ids.csv``, read-only, streamed (collector._archive.id_export)."""
    from collector._archive.id_export import export_ids

    out.mkdir(parents=True, exist_ok=True)
    with Archive(path, read_only=True, wait=wait) as opened:
        rows = export_ids(opened.con, out / "ids.csv", dates=dates, since=since)
    ui.stdout.print(f"{plural(rows, 'post id')} written to {out / 'ids.csv'}; `tgspread hydrate {out / 'ids.csv'}` "
                    "re-collects them", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""

    @app.command("export")
    def export(
        out: Annotated[Path, typer.Option(
            "--out", "-o", metavar="DIR", file_okay=False,
            help="A new (or empty) directory for the files and manifest.json.")],
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        fmt: Annotated[str, typer.Option(
            "--format", metavar="parquet|csv", help="File format (default parquet).")] = "parquet",
        tables: Annotated[list[str] | None, typer.Option(
            "--tables", metavar="TABLE", help="Only these tables (repeatable; default: all but the pseudonym key and "
                                             "the lake bookkeeping lake_dirty, lake_pickups, lake_publishes).")]
            = None,
        since: Annotated[str | None, typer.Option(
            "--since", metavar="DATE", help="Only posts posted since DATE (with their observations, versions, "
                                            "comments), snapshots and runs since DATE; other tables whole.")]
            = None,
        ids: Annotated[bool, typer.Option(
            "--ids", help="Write only a dehydrated id list, DIR/ids.csv (channel_id, username, message_id) to "
                          "share a dataset; `tgspread hydrate` re-collects it. Deleted posts and groups are left "
                          "out.")] = False,
        with_dates: Annotated[bool, typer.Option(
            "--with-dates", help="With --ids: a posted_at column too (UTC, ISO 8601).")] = False,
        wait: WaitOpt = 30.0,
        collector: CollectorOpt = None,
    ) -> None:
        """Write the archive's tables as Parquet (or CSV) partitioned by channel_id, with a manifest.json.

        Names of people are pseudonymised with a keyed hash (hidden forward senders, authors in groups), raw
        payloads and access hashes are left out, and the pseudonym key is never exported. DuckDB, Polars and
        Spark read the directory in place. The archive is opened read-only (once, to create its pseudonym
        key, read-write). --collector NAME exports that collector's archive.
        """
        ui.wide_when_piped()
        if fmt not in FORMATS:
            ui.fail(Exit.USAGE, f"--format takes {' or '.join(FORMATS)}, not {fmt!r}")
        start = _since(since)
        if with_dates and not ids:
            ui.fail(Exit.USAGE, "--with-dates goes with --ids")
        if ids and (tables or fmt != "parquet"):
            ui.fail(Exit.USAGE, "--ids writes one CSV id list; it takes no --tables or --format")
        with ui.errors():
            path = load_config(config, archive=archive, collector=collector).archive
            if not path.exists():
                ui.fail(Exit.ARCHIVE, f"{path}: no such archive; point --archive at a tgspread archive")
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                ui.fail(Exit.USAGE, f"{out} exists and is not an empty directory; name a new directory with --out")
            if ids:
                _export_ids(path, out, with_dates, start, wait)
                return
            try:
                with Archive(path, read_only=True, wait=wait) as opened:
                    select_tables(opened.con, tables)          # a bad --tables changes nothing, not even the key
                check_destination(out)                         # nor does an --out that cannot be written
                try:
                    ensure_pseudonym_key(path, wait=wait)
                except (duckdb.Error, OSError) as exc:
                    if "Permission denied" not in str(exc) and "Read-only" not in str(exc):
                        raise
                    ui.fail(Exit.ARCHIVE, f"{safe(path)}: the first export stores a pseudonym key in the archive, and "
                                       "the archive's folder cannot be written (Permission denied); export once "
                                       "from a copy you may write, or where the folder is writable; nothing was "
                                       "exported")
                with Archive(path, read_only=True, wait=wait) as opened:
                    manifest = export_archive(opened, out, fmt=fmt, tables=tables, since=start)
            except ExportError as exc:
                ui.fail(Exit.USAGE, str(exc))
        table = Table(title=f"exported to {out} ({fmt})", title_justify="left")
        for name in ("table", "rows", "partitioned by", "pseudonymised"):
            table.add_column(name, justify="right" if name == "rows" else "left")
        for name, info in manifest["tables"].items():
            table.add_row(name, f"{info['rows']:,}", ", ".join(info["partitioned_by"]) or "-",
                          ", ".join(info["pseudonymised"]) or "-")
        ui.stdout.print(table)
        ui.stdout.print(f"manifest: {out / 'manifest.json'} (archive digest {manifest['verify']['archive_digest']})",
                        markup=False, soft_wrap=True)
