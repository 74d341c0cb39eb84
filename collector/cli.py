"""The ``tgspread`` command: parse arguments, build the objects, call the library, print with rich.

No SQL and no Telegram types here: collecting is ``collector.collect``, the queries behind ``status`` are
``collector.status``, the demo is ``collector.demo``, sessions are ``collector.login``.

Exit codes (for cron and scripts; see :class:`Exit`): 0 ok, 1 some channels not collected, 2 usage,
configuration or credential error, 3 archive busy, 4 archive unusable, 5 Telegram unreachable,
70 a bug in tgspread, 130 interrupted. Every error is one line on stderr that says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import duckdb
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer._click.core import Context as ClickContext
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from . import __version__
from .archive import Archive, ArchiveBusyError, ArchiveError
from .channel_ref import INVITE_REFUSED, ChannelRef, ChannelRefError, parse_channel_ref
from .collect import CollectReport, CollectSettings, collect
from .config import Config, ConfigError, load_config, parse_duration, read_channel_file
from .demo import DEFAULT_DEMO_ARCHIVE, DemoError, check_archive_path, demo_lake_path, run_demo
from .login import SessionError, build_client, connect_authorized, interactive_login
from .progress import OUTCOME_STYLE, CollectProgress, report_errors, report_table, requests_table
from .status import ArchiveStatus, archive_status, archive_totals, status_as_json

if TYPE_CHECKING:
    from telethon import TelegramClient

    from .simulated import World

__all__ = ["SIMULATED_ENV", "Exit", "app"]


class Exit(IntEnum):
    """What ``tgspread`` exits with. Cron mails the output of a non-zero exit."""

    OK = 0            # everything asked for was collected
    PARTIAL = 1       # the work ran, but part of it was not done (channels not collected, steps left for the next run),
    #                   or `verify` found an integrity error
    USAGE = 2         # bad arguments, configuration or credentials; or not logged in
    BUSY = 3          # another process holds the archive (a running collector, an open notebook)
    ARCHIVE = 4       # the archive cannot be used (not a DuckDB file, written by a newer tgspread, ...)
    NETWORK = 5       # Telegram could not be reached; nothing was collected
    INTERNAL = 70     # a bug in tgspread (rerun with --debug for the traceback and report it)
    INTERRUPTED = 130  # Ctrl-C / SIGINT; what was committed stays, a rerun continues


# Testing only: collect from the simulated Telegram instead of the real one (see README, "Testing").
SIMULATED_ENV = "TGSPREAD_SIMULATED_SEED"

class _OneLineUsageErrors(TyperGroup):
    """A bad option value, an unknown option or a missing argument: one line on stderr and exit 2, like every
    other error (not click's usage box). ``tgspread`` alone still prints the help."""

    def make_context(self, info_name: str | None, args: list[str], parent: ClickContext | None = None,
                     **extra: Any) -> ClickContext:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            _usage_error(exc)

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _usage_error(exc)


def _usage_error(exc: UsageError) -> NoReturn:
    command = exc.ctx.info_name if exc.ctx is not None and exc.ctx.parent is not None else None
    option = getattr(exc, "option_name", None) or ""
    if option[1:2].isdigit():   # -1001234567890: a Bot API channel id read as options
        _fail(Exit.USAGE, "a negative channel id (-100...) is read as an option: put `--` before the channel ids "
                          "(tgspread collect -- -1001234567890) or drop the -100 prefix")
    _fail(Exit.USAGE, f"{exc.format_message().rstrip('.')} (see `tgspread {command + ' ' if command else ''}--help`)")


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="tgspread",
    help="Archive public Telegram channels, with engagement over time, into one DuckDB file.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,   # a plain traceback (with --debug), never one that shows local values
    context_settings={"help_option_names": ["-h", "--help"]},
)
_out = Console()


def _wide_when_piped() -> None:
    """Cron mail, pipes and files are not 80 columns wide: give tables room there."""
    if not _out.is_terminal:
        _out.width = max(_out.width, 160)
_err = Console(stderr=True, soft_wrap=True)   # log lines stay whole in cron mail
_debug = False


# -- errors -------------------------------------------------------------------------------------------
def _fail(code: Exit, message: str) -> NoReturn:
    """One line on stderr (never wrapped, no traceback), then exit with ``code``."""
    typer.echo(f"tgspread: error: {' '.join(message.split())}", err=True)
    raise typer.Exit(int(code))


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Map the library's exceptions to one-line messages and exit codes."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except (ConfigError, SessionError, DemoError) as exc:
        _fail(Exit.USAGE, str(exc))
    except ArchiveBusyError as exc:
        _fail(Exit.BUSY, str(exc))
    except ArchiveError as exc:
        _fail(Exit.ARCHIVE, str(exc))
    except duckdb.IOException as exc:   # opened, then a read ran past the end: a cut or damaged file
        where = re.search(r'file "([^"]+)"', str(exc))
        _fail(Exit.ARCHIVE, f"{where.group(1) if where else 'the archive'}: the archive is truncated or damaged "
                            "(DuckDB could not read part of it; --debug shows where); restore it from a backup copy")
    except KeyboardInterrupt:
        _fail(Exit.INTERRUPTED, "interrupted; everything committed so far is kept and a rerun continues from there")
    except Exception as exc:
        if _debug:
            raise
        _fail(Exit.INTERNAL, f"unexpected {type(exc).__name__}: {exc} (a bug in tgspread; rerun with --debug "
                             "for the traceback and report it)")


def _version(value: bool) -> None:
    if value:
        import telethon

        typer.echo(f"tgspread {__version__} (telethon {telethon.__version__})")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")] = False,
) -> None:
    """Archive public Telegram channels, with engagement over time, into one DuckDB file.

    Exit codes: 0 ok, 1 some channels not collected, 2 usage/config/credentials, 3 archive busy,
    4 archive unusable, 5 Telegram unreachable.
    """
    global _debug
    _debug = debug or bool(os.environ.get("TGSPREAD_DEBUG"))


# -- shared options -------------------------------------------------------------------------------------
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", metavar="FILE", dir_okay=False,
    help="TOML config file (default: ./tgspread.toml when it exists).")]
ArchiveOpt = Annotated[Path | None, typer.Option(
    "--archive", "-a", metavar="PATH", dir_okay=False,
    help="The DuckDB archive (default: TGSPREAD_ARCHIVE, the config's `archive`, or ./archive.duckdb).")]
SessionOpt = Annotated[Path | None, typer.Option(
    "--session", metavar="PATH", dir_okay=False,
    help="Telegram session file (default: TGSPREAD_SESSION, the config's `session`, or "
         "~/.local/share/tgspread/tgspread.session).")]
WaitOpt = Annotated[float, typer.Option(
    "--wait", metavar="SECONDS", min=0,
    help="How long to wait for an archive another process holds before giving up (exit 3).")]


def _stamp(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


# -- login ------------------------------------------------------------------------------------------------
def _ask(what: str, secret: bool) -> str:
    prompts = {
        "phone": "Phone number of the Telegram account (international format, e.g. +441234567890)",
        "code": "The login code Telegram just sent you (in the Telegram app, or by SMS)",
        "password": "Two-step verification password",
    }
    return str(typer.prompt(prompts[what], hide_input=secret))


@app.command()
def login(config: ConfigOpt = None, session: SessionOpt = None) -> None:
    """Log in to Telegram once (phone, code, 2FA password) and save an owner-only session file.

    Needs TG_API_ID and TG_API_HASH (or [telegram] api_id/api_hash in the config): get them at
    https://my.telegram.org -> API development tools.
    """
    with _errors():
        cfg = load_config(config, session=session)
        cfg.credentials()
        if not sys.stdin.isatty():
            _fail(Exit.USAGE, "`tgspread login` asks for a phone number and a code: run it in a terminal")
        client = build_client(cfg, create=True)

        async def run() -> str:
            try:
                return await interactive_login(client, _ask)
            finally:
                await client.disconnect()

        try:
            name = asyncio.run(run())
        except (ConnectionError, OSError) as exc:
            _fail(Exit.NETWORK, f"could not reach Telegram ({exc}); check the network and try again")
        _out.print(f"Logged in as {name}. Session saved to {cfg.session} (readable by you only). "
                   "`tgspread collect` uses it from now on.", markup=False)


# -- collect ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Simulated:
    """TESTING ONLY: which simulated world ``collect`` uses instead of Telegram."""

    seed: int
    channels: int
    days: int
    advance: timedelta

    @classmethod
    def from_env(cls) -> _Simulated | None:
        if not os.environ.get(SIMULATED_ENV):
            return None
        try:
            return cls(seed=int(os.environ[SIMULATED_ENV]),
                       channels=int(os.environ.get("TGSPREAD_SIMULATED_CHANNELS", "4")),
                       days=int(os.environ.get("TGSPREAD_SIMULATED_DAYS", "3")),
                       advance=parse_duration(os.environ.get("TGSPREAD_SIMULATED_ADVANCE", "0s")))
        except ValueError as exc:
            raise ConfigError(f"TGSPREAD_SIMULATED_* (testing only) are malformed: {exc}") from None

    def world(self) -> World:
        """The simulated world, its clock already moved by ``advance``."""
        from .simulated import generate_world

        world = generate_world(self.seed, channels=self.channels, days=self.days)
        if self.advance:
            world.advance(self.advance)
        return world


def _client(cfg: Config, simulated: _Simulated | None) -> tuple[TelegramClient, World | None]:
    """The client a command talks through, not connected yet, and the simulated world behind it (None: the
    account's real client; credential and session problems surface here, before the archive opens)."""
    if simulated is None:
        return build_client(cfg), None
    from .simulated import simulated_client

    world = simulated.world()
    return simulated_client(world, flood_sleep_threshold=cfg.flood_sleep_threshold), world


async def _connect(client: TelegramClient, world: World | None, *, nothing_done: str) -> None:
    """Connect the account's client (a simulated one needs nothing); unreachable Telegram is exit 5 with
    ``nothing_done`` (e.g. "nothing was collected") in the message."""
    if world is not None:
        return
    try:
        await connect_authorized(client)
    except (ConnectionError, OSError) as exc:
        _fail(Exit.NETWORK, f"could not reach Telegram ({exc}); {nothing_done}; check the network and run again")


def _channel_refs(args: list[str], names: list[str], archive: Path, wait: float) -> list[ChannelRef]:
    """Check every channel name before anything is collected: a typo, an invite link or a numeric id the
    archive does not know stops the command (exit 2) with the archive left exactly as it was."""
    refs = []
    for raw in [*(a for a in args if not a.strip()), *names]:
        try:
            ref = parse_channel_ref(raw)
        except ChannelRefError as exc:
            _fail(Exit.USAGE, str(exc))
        if ref.invite is not None:
            _fail(Exit.USAGE, f"{raw!r} is an invite link: {INVITE_REFUSED}")
        refs.append(ref)
    ids = [r for r in refs if r.channel_id is not None]
    if ids:
        known: set[int] = set()
        if archive.exists():
            with Archive(archive, read_only=True, wait=wait) as opened:
                known = {r.channel_id for r in ids if r.channel_id and opened.lookup_id(r.channel_id)}
        for ref in ids:
            if ref.channel_id not in known:
                _fail(Exit.USAGE, f"channel id {ref.channel_id} ({ref.raw!r}) is not in the archive {archive}: a "
                                  "numeric id only names a channel collected before; name it by its @username or "
                                  "t.me link the first time")
    return refs


def _channel_list(names: list[str] | None, channels_file: Path | None, cfg: Config) -> list[str]:
    found = list(names or [])
    if channels_file is not None:
        found += read_channel_file(channels_file)
    found += cfg.channels
    return list(dict.fromkeys(n.strip() for n in found if n.strip()))


async def _collect_pass(cfg: Config, channels: list[str], progress: CollectProgress, wait: float,
                        simulated: _Simulated | None, allow_private: bool = False) -> CollectReport:
    client, world = _client(cfg, simulated)
    now = world.now if world is not None else None
    if world is not None:
        channels = channels or list(world.seeds)
    with Archive(cfg.archive, wait=wait) as archive:
        await _connect(client, world, nothing_done="nothing was collected")
        settings = CollectSettings(checkpoints=cfg.checkpoints, snapshot_every=cfg.snapshot_every,
                                   allow_private=allow_private)
        try:
            with progress.watching_flood_sleeps():
                progress.begin(f"collecting into {cfg.archive}", channels)
                report = await collect(client, channels, archive, now=now, settings=settings, progress=progress)
                progress.end(report)
        finally:
            await client.disconnect()
        _store_summaries(archive, cfg)
    return report


def _store_summaries(archive: Archive, cfg: Config) -> None:
    """After posts were written: store the analysis results that changed (collector/commands/summaries.py),
    and publish what changed to the lake when one is configured (collector/commands/publish.py)."""
    from .commands.publish import publish_after_pass
    from .commands.summaries import store_summaries

    store_summaries(archive, cfg)
    publish_after_pass(archive, cfg)


@app.command("collect")
def collect_command(
    channel: Annotated[list[str] | None, typer.Argument(
        metavar="CHANNEL", help="Channels: username, @username, t.me link, or a numeric id already archived.",
        show_default=False)] = None,
    channels_file: Annotated[Path | None, typer.Option(
        "--channels", metavar="FILE", dir_okay=False,
        help="A file of channels, one per line; `#` starts a comment.")] = None,
    config: ConfigOpt = None,
    archive: ArchiveOpt = None,
    session: SessionOpt = None,
    wait: WaitOpt = 30.0,
    via: Annotated[str, typer.Option(
        "--via", metavar="api|web",
        help="`api` (default): through your Telegram account. `web`: the public t.me/s preview pages, no "
             "account needed, fewer fields (see docs/sources.md).")] = "api",
    max_pages: Annotated[int | None, typer.Option(
        "--max-pages", min=1, help="With --via web: at most this many preview pages per channel (about 20 "
                                   "posts each).")] = None,
    allow_private: Annotated[bool, typer.Option(
        "--allow-private", help="Also collect groups (their messages are private people's words): only when your "
                                "ethics approval covers it (README, \"Secrets and people\"). Users, bots and "
                                "invite links are refused regardless.")] = False,
) -> None:
    """Run one collection pass: new posts of every channel, and refresh what is due.

    Channels come from the arguments, --channels FILE and the config's `channels`, in that order;
    with none of those, from the archive's collected set (`tgspread channels add`).
    Uses the session `tgspread login` saved; never prompts, so it is safe in cron.
    Exit 0 when every channel was collected, 1 when some were not (the summary says why).
    """
    _wide_when_piped()
    if via not in ("api", "web"):
        _fail(Exit.USAGE, f"--via takes 'api' or 'web', not {via!r}")
    with _errors():
        cfg = load_config(config, archive=archive, session=session)
        names = _channel_list(channel, channels_file, cfg)
        if not names and cfg.archive.exists():     # nothing named: the collected set (tgspread channels add)
            from .channel_set import tracked_inputs

            with Archive(cfg.archive, wait=wait) as opened:
                names = tracked_inputs(opened, usernames=via == "web")
        _channel_refs(list(channel or []), names, cfg.archive, wait)
        if via == "web":
            _collect_web(cfg, names, wait, max_pages)
            return
        simulated = _Simulated.from_env()
        if simulated is not None:
            _err.print(f"[bold yellow]TESTING ONLY[/]: {SIMULATED_ENV} is set: collecting from the simulated "
                       f"Telegram (seed {simulated.seed}), not from Telegram")
        elif not names:
            _fail(Exit.USAGE, "no channels to collect: name them as arguments, in a file given with --channels, "
                              "as channels = [...] in tgspread.toml, or add them with `tgspread channels add`")
        progress = CollectProgress(_err)
        report = asyncio.run(_collect_pass(cfg, names, progress, wait, simulated, allow_private))
        _print_report(report)
        if report.status != "ok":
            raise typer.Exit(int(Exit.PARTIAL))


def _collect_web(cfg: Config, names: list[str], wait: float, max_pages: int | None) -> None:
    """``collect --via web``: the public preview pages into the same archive (source = 'web')."""
    from .sources.web import collect_web

    if not names:
        _fail(Exit.USAGE, "no channels to collect: name them as arguments, in a file given with --channels, "
                          "or as channels = [...] in tgspread.toml")
    with Archive(cfg.archive, wait=wait) as store:
        report = collect_web(store, names, max_pages=max_pages)
        _store_summaries(store, cfg)
    table = Table(title=f"web preview pass into {cfg.archive}")
    for column in ("channel", "outcome", "pages", "new", "refreshed", "error"):
        table.add_column(column)
    for c in report.channels:
        table.add_row(c.input, Text(c.outcome, style=OUTCOME_STYLE.get(c.outcome, "")), str(c.pages),
                      str(c.new_posts), str(c.refreshed_posts), c.error or "")
    _out.print(table)
    if any(c.outcome != "ok" for c in report.channels):
        raise typer.Exit(int(Exit.PARTIAL))


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
    from .sources.export_import import SourceError, import_export

    _wide_when_piped()
    with _errors():
        cfg = load_config(config, archive=archive)
        try:
            with Archive(cfg.archive, wait=wait) as store:
                report = import_export(store, path, include_non_channels=include_non_channels, keep_raw=keep_raw)
                _store_summaries(store, cfg)
        except SourceError as exc:
            _fail(Exit.USAGE, str(exc))
        table = Table(title=f"import of {path}" + (" (already imported: nothing changed)"
                                                    if report.already_imported else ""))
        for column in ("chat", "type", "outcome", "messages", "new posts", "updated", "earlier texts", "reason"):
            table.add_column(column)
        for chat in report.chats:
            table.add_row(chat.name or str(chat.chat_id), chat.type or "", chat.outcome, str(chat.messages),
                          str(chat.new_posts), str(chat.updated_posts), str(chat.versions), chat.reason or "")
        _out.print(table)


def _print_report(report: CollectReport, *, title: str | None = None) -> None:
    _out.print(report_table(report, title=title))
    for line in report_errors(report):
        _out.print(line, soft_wrap=True)


# -- demo ------------------------------------------------------------------------------------------------
@app.command()
def demo(
    archive: Annotated[Path, typer.Option(
        "--archive", "-a", metavar="PATH", dir_okay=False,
        help="Where the demo writes its archive; recreated each time, never over a file it did not make.")]
        = DEFAULT_DEMO_ARCHIVE,
    channels: Annotated[int, typer.Option("--channels", min=1, max=500, help="Channels in the simulated world.")]
        = 20,
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="Days of history before the first pass.")]
        = 30,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated world (same seed, same world).")] = 7,
    advance: Annotated[str, typer.Option(
        "--advance", metavar="DURATION", help="How far the clock moves between the two passes (e.g. 2d, 12h).")]
        = "2d",
) -> None:
    """Collect a simulated Telegram twice (its clock moved on in between) and print what was archived.

    Nothing is contacted: a real Telethon client talks to a simulated world built from --seed.
    Some channels of that world are missing or private on purpose, so the summary shows those outcomes.
    """
    _wide_when_piped()
    with _errors():
        try:
            step = parse_duration(advance)
        except ValueError as exc:
            raise ConfigError(f"--advance: {exc}") from None
        check_archive_path(archive)
        progress = CollectProgress(_err)
        _err.print(f"Simulated Telegram: seed {seed}, {channels} channels, {days} days of history; "
                   f"nothing is contacted.")
        lake = demo_lake_path(archive)
        _world, reports = run_demo(archive, channels=channels, days=days, seed=seed, advance=step, progress=progress,
                                   lake=lake)
        _err.print(f"published to the lake {lake} (collector 'demo'): analysis.connect({str(lake)!r}) reads it",
                   style="dim", highlight=False, soft_wrap=True, markup=False)
        for i, report in enumerate(reports, 1):
            _print_report(report, title=f"pass {i} (run {report.run_id}): {report.status}")
        _print_demo_totals(archive, reports)


def _print_demo_totals(archive: Path, reports: list[CollectReport]) -> None:
    with Archive(archive, read_only=True) as opened:
        totals = archive_totals(opened.con)
    table = Table(title="the archive after both passes", title_justify="left")
    table.add_column("what")
    table.add_column("rows", justify="right")
    for label, value in (("channels", totals.channels), ("posts", totals.posts),
                         ("  of which seen deleted", totals.deleted), ("post observations", totals.observations),
                         ("earlier versions (edits)", totals.versions),
                         ("channel snapshots", totals.channel_observations), ("collection passes", totals.runs)):
        table.add_row(label, f"{value:,}")
    _out.print(table)
    requests: dict[str, int] = {}
    for report in reports:
        for name, count in report.requests.items():
            requests[name] = requests.get(name, 0) + count
    _out.print(requests_table(requests, title="requests sent to the (simulated) Telegram, both passes"))
    for i, report in enumerate(reports, 1):
        seconds = (report.finished_at - report.started_at).total_seconds() if report.finished_at else 0.0
        posts = report.new_posts + report.refreshed_posts
        rate = f"{posts / seconds:,.0f} posts/s" if seconds > 0 else "-"
        _out.print(f"pass {i}: {report.new_posts:,} new and {report.refreshed_posts:,} refreshed posts in "
                   f"{seconds:.1f} s ({rate})", soft_wrap=True)
    _out.print(f"Next: tgspread status --archive {archive}", markup=False, soft_wrap=True)


# -- status ------------------------------------------------------------------------------------------------
def _channels_table(status: ArchiveStatus) -> Table:
    table = Table(title=f"{len(status.channels)} channels, as of {_stamp(status.as_of)} UTC", title_justify="left")
    for name, justify in (("channel", "left"), ("posts", "right"), ("deleted", "right"), ("newest post", "left"),
                          ("last snapshot", "left"), ("last pass", "left"), ("failed passes", "right"),
                          ("flood wait until", "left"), ("never-seen ids", "right")):
        table.add_column(name, justify=justify, no_wrap=name != "channel")  # type: ignore[arg-type]
    for ch in [*status.channels, *status.unresolved]:
        outcome = Text(ch.last_outcome or "-", style=OUTCOME_STYLE.get(ch.last_outcome or "", ""))
        table.add_row(ch.name, f"{ch.posts:,}", f"{ch.deleted:,}", _stamp(ch.newest_post_at),
                      _stamp(ch.last_snapshot_at), outcome, str(ch.failed_passes), _stamp(ch.flood_until),
                      f"{ch.never_seen_ids:,}")
    return table


def _print_status(status: ArchiveStatus, archive: Path) -> None:
    t = status.totals
    _out.print(f"[bold]{archive}[/]: {t.posts:,} posts ({t.deleted:,} seen deleted), {t.observations:,} observations, "
               f"{t.versions:,} earlier versions, {t.runs} passes", soft_wrap=True)
    if status.last_run is not None:
        r = status.last_run
        error = f", error: {r.error}" if r.error else ""
        _out.print(f"last pass: run {r.run_id} {r.status}, started {_stamp(r.started_at)} UTC, "
                   f"{r.requests or 0} requests{error}", markup=False, soft_wrap=True)
    _out.print(_channels_table(status))
    problems = [ch for ch in [*status.channels, *status.unresolved] if ch.last_outcome not in (None, "ok")]
    for ch in problems:
        _out.print(Text(f"{ch.name}: {ch.last_outcome}: {ch.last_error or ''}",
                        style=OUTCOME_STYLE.get(ch.last_outcome or "", "")), soft_wrap=True)
    for fw in status.flood_waits:
        who = f" (hit while collecting {'@' + fw.username if fw.username else fw.channel_id})" if fw.channel_id else ""
        _out.print(f"pending flood wait: no {fw.request} before {_stamp(fw.until)} UTC{who}", style="yellow",
                   markup=False, soft_wrap=True)
    gaps = [ch for ch in status.channels if ch.never_seen_ids or ch.cleared_ids]
    if gaps:
        table = Table(title="message ids never archived", title_justify="left")
        for name in ("channel", "never seen", "largest ranges", "history cleared"):
            table.add_column(name, justify="left" if name in ("channel", "largest ranges") else "right")
        for ch in gaps:
            ranges = ", ".join(f"{g.first_id}-{g.last_id}" if g.size > 1 else str(g.first_id)
                               for g in ch.largest_gaps)
            table.add_row(ch.name, f"{ch.never_seen_ids:,}", ranges, f"{ch.cleared_ids:,}")
        _out.print(table)
        _out.print(status.gap_label[0].upper() + status.gap_label[1:] + ".", soft_wrap=True, style="dim")


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
    _wide_when_piped()
    with _errors():
        path = archive if archive is not None else load_config(config).archive
        with Archive(path, read_only=True, wait=wait) as opened:
            result = archive_status(opened.con)
        if as_json:
            payload: dict[str, Any] = {"archive": str(path), **status_as_json(result)}
            typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        else:
            _print_status(result, path)


# -- commands defined in collector/commands/ (they import the shared pieces above) -----------------------
from .commands import register_all  # noqa: E402

register_all(app)
