"""`tgspread verify`: the archive's integrity report (issue 7).

Exit 0 when no check found an error (warnings are printed but do not fail), 1 when some did; the usual
codes for a busy (3) or unusable (4) archive. The checks and the digest are :mod:`collector.archive.verify`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from collector.archive.archive import Archive
from collector.archive.verify import CHECKS, GAP_EXPLANATIONS, VerifyReport, report_as_json, verify_archive
from collector.config import load_config

from . import common as ui
from .common import ArchiveOpt, ConfigOpt, Exit, WaitOpt

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
    table = Table(title="message ids never archived, by what explains them", title_justify="left")
    for name in ("explanation", "ids", "ranges", "meaning"):
        table.add_column(name, justify="right" if name in ("ids", "ranges") else "left")
    for key, meaning in GAP_EXPLANATIONS.items():
        if key in ids:
            table.add_row(key, f"{ids[key]:,}", f"{ranges[key]:,}", meaning)
    return table


def _digests_table(report: VerifyReport) -> Table:
    table = Table(title=f"content digests (v{report.digest_version}, see docs/verify.md)", title_justify="left")
    for name in ("channel", "posts", "versions", "observations", "snapshots", "sha256"):
        table.add_column(name, justify="left" if name in ("channel", "sha256") else "right", no_wrap=True)
    for d in report.digests:
        table.add_row(str(d.channel_id), f"{d.rows['posts']:,}", f"{d.rows['post_versions']:,}",
                      f"{d.rows['post_observations']:,}", f"{d.rows['channel_observations']:,}", d.sha256)
    return table


def _print(report: VerifyReport, path: Path) -> None:
    ui.stdout.print(_summary_table(report))
    for f in report.findings:
        if f.severity != "info":
            ui.stdout.print(Text(f"{f.severity}: {f.message}", style=_STYLE[f.severity]), soft_wrap=True)
    if report.gaps:
        ui.stdout.print(_gaps_table(report))
    ui.stdout.print(_digests_table(report))
    if report.archive_digest is not None:
        ui.stdout.print(f"archive digest: {report.archive_digest}", markup=False, soft_wrap=True)
    verdict = (f"{path}: clean ({len(report.warnings)} warning(s))" if report.clean
               else f"{path}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    ui.stdout.print(Text(verdict, style="bold green" if report.clean else "bold red"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""

    @app.command("verify")
    def verify(
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
        wait: WaitOpt = 10.0,
        channel: Annotated[list[int] | None, typer.Option(
            "--channel", metavar="ID", help="Only this channel id (repeatable): its findings, gaps and digest.")]
            = None,
    ) -> None:
        """Check the archive's integrity and print a content digest per channel.

        Checks: keys unique, observations in time order with counters that do not go down, every edit's
        earlier text kept, deleted posts never purged, cursors consistent with the archived ids, id gaps
        with what explains them, and stored analysis results equal to computing them from the posts.
        Exit 0 when clean (warnings allowed), 1 when a check found an error.
        Opens the archive read-only. Two copies of an archive are the same when their digests are.
        """
        ui.wide_when_piped()
        with ui.errors():
            path = archive if archive is not None else load_config(config).archive
            with Archive(path, read_only=True, wait=wait) as opened:
                report = verify_archive(opened.con, channels=channel)
            if as_json:
                typer.echo(json.dumps({"archive": str(path), **report_as_json(report)}, indent=2,
                                      ensure_ascii=False))
            else:
                _print(report, path)
        if not report.clean:
            raise typer.Exit(int(Exit.PARTIAL))
