"""`tgspread discover`: snowball discovery of candidate channels (issue 5)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from collector._archive.archive import Archive
from collector._config import Config, load_config
from collector._parse.discovery_rank import Candidate, Thresholds
from collector._telegram.client import Telegram
from collector._telegram.discovery import DiscoveryError, DiscoveryReport, DiscoverySettings, discover

from . import common as ui
from .common import ArchiveOpt, CollectorOpt, ConfigOpt, Exit, SessionOpt, WaitOpt
from .safe_text import cell, safe
from .words import plural

SHOWN = 50   # rows printed when --limit is not given
_DECISION_STYLE = {"added": "green", "queued": "cyan", "unresolved": "yellow", "not_public": "dim",
                   "below_references": "dim", "below_subscribers": "dim", "removed": "magenta", "over_limit": "yellow",
                   "not_owned": "cyan"}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def candidate_json(c: Candidate) -> dict[str, Any]:
    p = c.path
    return {
        "rank": c.rank, "candidate": c.key, "channel_id": c.channel_id, "username": c.username, "title": c.title,
        "status": c.status, "subscribers": c.subscribers, "referrers": c.referrers, "references": c.references,
        "by_source": c.by_source, "decision": c.decision,
        "path": {"hop": p.hop, "seed_channel_id": p.seed_channel_id, "via_source": p.via_source,
                 "via_channel_id": p.via_channel_id, "via_message_id": p.via_message_id, "via_query": p.via_query,
                 "via_at": _iso(p.via_at)},
    }


def _via(c: Candidate, names: dict[int, str]) -> str:
    """``forward in @seed/123``, ``recommendation of @seed``, ``search #tag``."""
    p = c.path
    if p.via_source == "search":
        return f"search {p.via_query}"
    who = f"@{names[p.via_channel_id]}" if p.via_channel_id in names else str(p.via_channel_id)
    if p.via_message_id is not None:
        return f"{p.via_source} in {who}/{p.via_message_id}"
    return f"{p.via_source} of {who}"


def _table(report: DiscoveryReport, shown: list[Candidate]) -> Table:
    table = Table(title=f"discovery run {report.run_id}: {plural(len(report.candidates), 'candidate')} from "
                        f"{plural(report.members, 'set channel')}", title_justify="left")
    for name in ("#", "candidate", "status", "subscribers", "referrers", "refs", "fwd", "link", "@", "rec",
                 "search", "hop", "path", "decision"):
        table.add_column(name, justify="right" if name not in ("candidate", "status", "path", "decision") else "left")
    for c in shown:
        s = c.by_source
        table.add_row(str(c.rank), cell(c.name), cell(c.status),
                      f"{c.subscribers:,}" if c.subscribers is not None else "-",
                      str(c.referrers), str(c.references), str(s["forward"]), str(s["link"]), str(s["mention"]),
                      str(s["recommendation"]), str(s["search"]), str(c.path.hop), cell(_via(c, report.member_names)),
                      Text(c.decision, style=_DECISION_STYLE.get(c.decision, "")))
    return table


def _pick_up(cfg: Config, archive: Archive, settings: DiscoverySettings, now: datetime) -> None:
    """Channels other collectors handed to this one through the lake join the set first (docs/scale.md)."""
    ui.pick_up(archive, cfg, settings.ownership, now)


async def _run(cfg: Config, settings: DiscoverySettings, wait: float, found: Telegram | None) -> DiscoveryReport:
    if found is None:         # --offline: the archive alone
        with Archive(cfg.archive, wait=wait) as archive:
            _pick_up(cfg, archive, settings, datetime.now(UTC))
            return await discover(None, archive, settings)
    client = found.client()
    now = found.now()
    with Archive(cfg.archive, wait=wait) as archive:
        _pick_up(cfg, archive, settings, now or datetime.now(UTC))
        await ui.connect(found, client, nothing_done="nothing was discovered")
        try:
            return await discover(client, archive, settings, now=now)
        finally:
            await client.disconnect()


def discover_command(
    depth: Annotated[int, typer.Option("--depth", min=1, metavar="N",
                                       help="How many hops from the seeds (hand-added channels are hop 0).")] = 2,
    min_references: Annotated[int, typer.Option(
        "--min-references", min=1, metavar="N", help="A candidate needs at least N references (posts and calls "
                                                     "naming it, summed over sources).")] = 1,
    min_referrers: Annotated[int, typer.Option(
        "--min-referrers", min=1, metavar="N", help="... from at least N distinct set channels (or searches).")] = 1,
    min_subscribers: Annotated[int, typer.Option(
        "--min-subscribers", min=0, metavar="N", help="A candidate needs at least N subscribers (resolved when "
                                                      "unknown).")] = 0,
    recommendations: Annotated[bool, typer.Option(
        "--recommendations/--no-recommendations", help="Ask Telegram for channels similar to each set channel "
                                                      "(one request per channel, reused for a week).")] = True,
    search: Annotated[list[str] | None, typer.Option(
        "--search", metavar="HASHTAG", help="Also search public posts with this hashtag (repeatable).")] = None,
    auto: Annotated[bool, typer.Option(
        "--auto", help="Add the candidates that pass the thresholds to the collected set.")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, metavar="N", help="Show the top N candidates; with --auto add at most N.")] = None,
    max_resolves: Annotated[int, typer.Option(
        "--max-resolves", min=0, metavar="N", help="Resolve at most N unknown usernames in this run (the most "
                                                   "flood-limited request).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Only what the archive alone can answer (forwards, links and mentions in collected "
                          "posts): no credentials needed, nothing sent to Telegram.")] = False,
    config: ConfigOpt = None,
    collector: CollectorOpt = None,
    archive: ArchiveOpt = None,
    session: SessionOpt = None,
    wait: WaitOpt = 30.0,
) -> None:
    """Build a ranked queue of candidate channels around the collected set (snowball sampling).

    Sources: forward origins, t.me links and @mentions in archived posts of the set, linked discussion groups,
    Telegram's similar-channel recommendations, and optional hashtag searches. Every candidate is recorded
    with its discovery path (seed, hop, the post or call that led to it, when) in the archive.
    Exit 0 when done, 1 when a flood wait cut it short (the next run continues), 2 when the set is empty.
    """
    ui.wide_when_piped()
    with ui.errors():
        cfg = load_config(config, archive=archive, session=session, collector=collector)
        try:
            settings = DiscoverySettings(
                thresholds=Thresholds(depth=depth, min_references=min_references, min_referrers=min_referrers,
                                      min_subscribers=min_subscribers),
                recommendations=recommendations, search=tuple(search or ()), auto=auto, limit=limit,
                max_resolves=max_resolves, ownership=ui.ownership(cfg))
        except ValueError as exc:
            ui.fail(Exit.USAGE, str(exc))
        if not cfg.archive.exists():
            ui.fail(Exit.USAGE, f"{cfg.archive}: no such archive; add seed channels with "
                                "`tgspread channels add NAME...` and collect them first")
        if offline and search:
            ui.fail(Exit.USAGE, "--search asks Telegram: it cannot be combined with --offline")
        found = None if offline else ui.telegram(cfg, "discovering on")
        try:
            report = asyncio.run(_run(cfg, settings, wait, found))
        except DiscoveryError as exc:
            ui.fail(Exit.USAGE, str(exc))
        shown = report.candidates[: limit or SHOWN]
        if as_json:
            typer.echo(json.dumps({
                "archive": str(cfg.archive), "run_id": report.run_id, "status": report.status,
                "started_at": _iso(report.started_at), "members": report.members,
                "candidates": [candidate_json(c) for c in shown], "total_candidates": len(report.candidates),
                "passing": len(report.passing), "added": [candidate_json(c) for c in report.added],
                "requests": report.requests, "notes": report.notes}, indent=2, ensure_ascii=False))
        else:
            ui.stdout.print(_table(report, shown))
            if len(report.candidates) > len(shown):
                ui.stdout.print(f"... and {len(report.candidates) - len(shown)} more (--limit N, or --json; all are in "
                                "the archive's discovery_candidates table)", markup=False, soft_wrap=True)
            what = f"added {len(report.added)} to the collected set" if auto else "use --auto to add them"
            passing = len(report.passing)
            ui.stdout.print(f"run {report.run_id} {report.status}: {plural(passing, 'candidate')} "
                            f"pass{'es' if passing == 1 else ''} the thresholds; {what}", markup=False, soft_wrap=True)
            for note in report.notes:
                ui.stdout.print(safe(note), style="yellow", markup=False, soft_wrap=True)
        if report.status != "ok":
            raise typer.Exit(int(Exit.PARTIAL))


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""
    app.command("discover")(discover_command)
