"""`tgspread verify`: the archive's integrity report (issue 7).

Exit 0 when no check found an error (warnings are printed but do not fail), 1 when some did; the usual
codes for a busy (3) or unusable (4) archive. The checks and the digest are :mod:`collector._archive.verify`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from collector._archive.archive import Archive
from collector._archive.lake_verify import lake_findings
from collector._archive.verify import CHECKS, GAP_EXPLANATIONS, VerifyReport, report_as_json, verify_archive
from collector._config import load_config
from collector._parse.channel_ref import ChannelRefError, parse_channel_ref

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, WaitOpt
from .safe_text import cell, safe
from .tables import Column, fitted_table
from .words import plural

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _summary_table(report: VerifyReport) -> Table:
    table = Table(title="checks", title_justify="left")
    for name in ("check", "errors", "warnings", "result"):
        table.add_column(name, justify="right" if name in ("errors", "warnings") else "left")
    for check in CHECKS:
        errors = sum(1 for f in report.errors if f.check == check)
        warnings = sum(1 for f in report.warnings if f.check == check)
        result = Text("FAIL", style="bold red") if errors else Text("ok", style="green")
        table.add_row(check, str(errors), str(warnings), result)
    return table


def _gaps_table(report: VerifyReport) -> Table:
    ids: dict[str, int] = {}
    ranges: dict[str, int] = {}
    for g in report.gaps:
        ids[g.explanation] = ids.get(g.explanation, 0) + g.size
        ranges[g.explanation] = ranges.get(g.explanation, 0) + 1
    rows: list[list[str | Text]] = [[key, f"{ids[key]:,}", f"{ranges[key]:,}", meaning]
                                    for key, meaning in GAP_EXPLANATIONS.items() if key in ids]
    return fitted_table([Column("explanation"), Column("ids", "right", keep=9), Column("ranges", "right", keep=8),
                         Column("meaning", keep=5, min_width=20, wrap=True)], rows, width=ui.stdout.width,
                        title="message ids never archived, by what explains them")


def _digests_table(report: VerifyReport) -> Table:
    rows: list[list[str | Text]] = [
        [str(d.channel_id), f"{d.rows['posts']:,}", f"{d.rows['post_versions']:,}",
         f"{d.rows['post_observations']:,}", f"{d.rows['channel_observations']:,}", d.sha256]
        for d in report.digests]
    return fitted_table([Column("channel"), Column("posts", "right", keep=8), Column("versions", "right", keep=5),
                         Column("observations", "right", keep=4), Column("snapshots", "right", keep=3),
                         Column("sha256", keep=9, min_width=16, wrap=True)], rows, width=ui.stdout.width,
                        title=f"content digests (v{report.digest_version}, see docs/verify.md)")


def _print(report: VerifyReport, path: Path) -> None:
    ui.stdout.print(_summary_table(report))
    for f in report.findings:
        if f.severity != "info":
            ui.stdout.print(cell(f"{f.severity}: {f.message}", _STYLE[f.severity]), soft_wrap=True)
    if report.gaps:
        ui.stdout.print(_gaps_table(report))
    ui.stdout.print(_digests_table(report))
    if report.archive_digest is not None:
        ui.stdout.print(f"archive digest: {report.archive_digest}", markup=False, soft_wrap=True)
    verdict = (f"{safe(path)}: clean ({plural(len(report.warnings), 'warning')})" if report.clean
               else f"{safe(path)}: {plural(len(report.errors), 'error')}, {plural(len(report.warnings), 'warning')}")
    ui.stdout.print(Text(verdict, style="bold green" if report.clean else "bold red"), soft_wrap=True)



def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""

    @app.command("verify")
    def verify(
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
        wait: WaitOpt = 10.0,
        channel: Annotated[list[str] | None, typer.Option(
            "--channel", metavar="CHANNEL", help="Only this channel (repeatable; a username, @name, t.me link or "
                                                 "archived id): its findings, gaps and digest.")]
            = None,
        lake: Annotated[Path | None, typer.Option(
            "--lake", metavar="DIR", file_okay=False,
            help="Also compare this lake (default: the config's [lake] path) with the archive.")] = None,
        collector: CollectorOpt = None,
    ) -> None:
        """Check the archive's integrity and print a content digest per channel.

        Checks: keys unique, observations in time order with counters that do not go down, every edit's
        earlier text kept, deleted posts never purged, cursors consistent with the archived ids, id gaps
        with what explains them, stored analysis results equal to computing them from the posts, and with
        a lake (--lake, or the config's [lake] path) that it holds what the archive holds, and that every
        lake file and manifest can be read. --collector NAME checks that collector's archive and lake files.
        Exit 0 when clean (warnings allowed), 1 when a check found an error.
        Opens the archive read-only. Two copies of an archive are the same when their digests are.
        """
        ui.wide_when_piped()
        with ui.errors():
            cfg = load_config(config, archive=archive, collector=collector)
            path = cfg.archive
            try:
                refs = [parse_channel_ref(c) for c in channel or []]
            except ChannelRefError as exc:
                ui.fail(Exit.USAGE, f"--channel: {exc}")
            with Archive(path, read_only=True, wait=wait) as opened:
                ids = [ui.archived_channel(opened, ref, path) for ref in refs]
                report = verify_archive(opened.con, channels=ids if channel else None)
                compared = lake or cfg.lake
                if compared is not None:      # the lake check: does the lake hold what the archive holds
                    report.findings += lake_findings(opened.con, compared, cfg.lake_collector)
            if as_json:
                typer.echo(json.dumps({"archive": str(path), **report_as_json(report)}, indent=2,
                                      ensure_ascii=False))
            else:
                _print(report, path)
        if not report.clean:
            raise typer.Exit(int(Exit.PARTIAL))
