"""What every ``tgspread`` command shares: exit codes, one-line errors, the consoles, the common options.

No SQL and no Telegram types in ``collector/_cli/``: collecting is ``collector._telegram.collect``, the queries
behind ``status`` are ``collector._archive.status``, sessions are ``collector._telegram.login``, and the client a
command talks through comes from ``collector._telegram.client`` (asked once per command, see :func:`telegram`).

Exit codes (for cron and scripts; see :class:`Exit`): 0 ok, 1 some channels not collected, 2 usage,
configuration or credential error, 3 archive busy, 4 archive unusable, 5 Telegram unreachable,
70 a bug in tgspread, 130 interrupted. Every error is one line on stderr that says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
from collections.abc import Iterator
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import duckdb
import typer
from rich.console import Console
from rich.markup import escape

from collector._archive import Archive, ArchiveBusyError, ArchiveError
from collector._config import Config, ConfigError, read_channel_file
from collector._parse.channel_ref import INVITE_REFUSED, ChannelRef, ChannelRefError, parse_channel_ref
from collector._scheduling.ownership import Ownership
from collector._telegram.check import connect_failure
from collector._telegram.client import Telegram, open_telegram
from collector._telegram.login import SessionError

from .progress import report_errors, report_table
from .safe_text import safe

if TYPE_CHECKING:
    from telethon import TelegramClient

    from collector._telegram.collect import CollectReport


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


stdout = Console()


def wide_when_piped() -> None:
    """Cron mail, pipes and files are not 80 columns wide: give tables room there."""
    if not stdout.is_terminal:
        stdout.width = max(stdout.width, 160)


stderr = Console(stderr=True, soft_wrap=True)   # log lines stay whole in cron mail
_debug = False


def set_debug(debug: bool) -> None:
    """``--debug`` (or TGSPREAD_DEBUG): an unexpected error shows its traceback instead of one line."""
    global _debug
    _debug = debug or bool(os.environ.get("TGSPREAD_DEBUG"))


# -- errors -------------------------------------------------------------------------------------------
def fail(code: Exit, message: str) -> NoReturn:
    """One line on stderr (never wrapped, no traceback), then exit with ``code``."""
    typer.echo(f"tgspread: error: {safe(' '.join(message.split()))}", err=True)   # it may quote hostile text
    raise typer.Exit(int(code))


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Map the library's exceptions to one-line messages and exit codes."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except (ConfigError, SessionError) as exc:   # DemoError is a ConfigError
        fail(Exit.USAGE, str(exc))
    except ArchiveBusyError as exc:
        fail(Exit.BUSY, str(exc))
    except ArchiveError as exc:
        fail(Exit.ARCHIVE, str(exc))
    except duckdb.IOException as exc:
        _io_error(exc)
    except KeyboardInterrupt:
        fail(Exit.INTERRUPTED, INTERRUPTED)
    except OSError as exc:
        if exc.errno not in _SYSTEM_ERRNOS:
            if _debug:
                raise
            fail(Exit.INTERNAL, f"unexpected {type(exc).__name__}: {exc} (a bug in tgspread; rerun with --debug "
                                 "for the traceback and report it)")
        cause = os.strerror(exc.errno or 0)
        fail(Exit.ARCHIVE, f"{safe(exc.filename or 'a file')}: {cause}; {_SYSTEM_IO.get(cause, 'check the disk')}; "
                           "the archive itself is not damaged")
    except Exception as exc:
        if is_interrupt(exc):    # Ctrl-C inside a DuckDB query arrives as its own exception, not KeyboardInterrupt
            fail(Exit.INTERRUPTED, INTERRUPTED)
        if isinstance(exc, duckdb.Error) and any(cause in str(exc) for cause in _SYSTEM_IO):
            _io_error(exc)     # e.g. a commit that cannot create the .wal file in a read-only folder
        if _debug:
            raise
        fail(Exit.INTERNAL, f"unexpected {type(exc).__name__}: {exc} (a bug in tgspread; rerun with --debug "
                             "for the traceback and report it)")


INTERRUPTED = "interrupted; everything committed so far is kept and a rerun continues from there"

# Operating-system errors DuckDB reports as IOException: the file system, not the archive, is the problem.
_SYSTEM_IO = {
    "No space left on device": "the disk is full: free some space (or point TMPDIR elsewhere) and run again",
    "File too large": "the file system (or a ulimit -f) refused a file that large: write elsewhere, or raise "
                      "the limit, and run again",
    "Disk quota exceeded": "the disk quota is used up: free some space and run again",
    "Permission denied": "no permission to write there (DuckDB writes a .wal file beside the archive and "
                         "temporary files): run where you may write, or copy the archive somewhere writable",
    "Read-only file system": "the file system is read-only: copy the archive somewhere writable",
    "Input/output error": "the disk reported a read or write error: check the disk, then run again",
    "No such file or directory": "a folder it writes to is gone (removed while it ran?): check the path, run again",
    "Not a directory": "a part of the path is a file, not a folder: check the path and run again",
    "Too many open files": "the process may open no more files (ulimit -n): raise the limit and run again",
    "File name too long": "the path is longer than the file system allows: use a shorter one",
}


_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EMFILE,
                  errno.ENAMETOOLONG}


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, however it arrived: KeyboardInterrupt, DuckDB's InterruptException, or the RuntimeError
    "Query interrupted" DuckDB raises when SIGINT lands inside a query."""
    return isinstance(exc, KeyboardInterrupt | duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and str(exc).startswith("Query interrupted"))


def _io_error(exc: duckdb.Error) -> NoReturn:
    """An IOException is archive damage only when no operating-system error explains it (a full disk, a size
    limit or a missing permission is not damage: the archive is fine, and restoring a backup would be wrong)."""
    text = str(exc)
    where = re.search(r'file "([^"]+)"', text)
    path = where.group(1) if where else None
    for cause, advice in _SYSTEM_IO.items():
        if cause in text:
            detail = f" ({' '.join(text.split())})" if _debug else " (--debug shows DuckDB's message)"
            fail(Exit.ARCHIVE, f"{path or 'a file'}: {cause}; {advice}; the archive itself is not damaged{detail}")
    detail = f": {' '.join(text.split())}" if _debug else " (DuckDB could not read part of it; --debug shows where)"
    fail(Exit.ARCHIVE, f"{path or 'the archive'}: the archive is truncated or damaged{detail}; restore it from a "
                       "backup copy")


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
CollectorOpt = Annotated[str | None, typer.Option(
    "--collector", metavar="NAME",
    help="Act as collector NAME of the config's [collectors] (its archive, session and budget; the lake is "
         "shared). See docs/scale.md.")]
WaitOpt = Annotated[float, typer.Option(
    "--wait", metavar="SECONDS", min=0,
    help="How long to wait for an archive another process holds before giving up (exit 3).")]


def _stamp(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


def stamp(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


def telegram(cfg: Config, doing: str) -> Telegram:
    """The command's way to Telegram, asked for once: the account's client, or (testing only) the simulated
    Telegram, announced on stderr (``doing``: e.g. "collecting from")."""
    found = open_telegram(cfg)
    if found.world is not None:
        stderr.print(f"[bold yellow]TESTING ONLY[/]: {found.notice(doing)}")
    return found


async def connect(telegram: Telegram, client: TelegramClient, *, nothing_done: str) -> None:
    """Connect the account's client (a simulated one needs nothing); unreachable Telegram is exit 5 with
    ``nothing_done`` (e.g. "nothing was collected") in the message."""
    try:
        await telegram.connect(client)
    except (ConnectionError, OSError, asyncio.IncompleteReadError, EOFError) as exc:   # EOF: not Telegram answered
        fail(Exit.NETWORK, f"{connect_failure(exc).removesuffix('; check the network')}; {nothing_done}; check the "
                           "network and run again")


def ownership(cfg: Config) -> Ownership | None:
    """The slots this collector owns, from ``[lake] assignment`` (issue 15); None without an assignment file
    (one collector owns everything). An unreadable assignment stops the command (exit 2)."""
    if cfg.lake_assignment is None:
        return None
    from collector._scheduling.shards import AssignmentError, load

    try:
        found = Ownership(cfg.lake_collector, load(cfg.lake_assignment))
    except AssignmentError as exc:
        fail(Exit.USAGE, str(exc))
    if not found.slots():     # a typo in the collector's name, or one left out: every channel would be handed on
        stderr.print(f"[yellow]warning[/]: collector {escape(safe(repr(cfg.lake_collector)))} owns no slot in "
                     f"{escape(safe(cfg.lake_assignment))}: it collects nothing and hands every channel on; give it "
                     "slots there (`tgspread shards --plan N` proposes an assignment)", highlight=False, soft_wrap=True)
    return found


def pick_up(archive: Archive, cfg: Config, owned: Ownership | None, now: datetime) -> None:
    """Take what other collectors handed to this one through the lake (docs/scale.md), saying so in one line.

    A lake that cannot be read (after the pick-up's own retries) is a warning, never the end of the run: the
    collected set is collected, and the next run picks up."""
    from collector._scheduling.handoff import line
    from collector._scheduling.handoff import pick_up as take

    try:
        taken = take(archive, cfg.lake, owned, now=now)
    except (duckdb.Error, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        stderr.print(f"[yellow]warning[/]: nothing was picked up from the lake {escape(safe(cfg.lake))} "
                     f"({type(exc).__name__}: {escape(safe(first))}); this run goes on with the collected set, and "
                     "the next one picks up", highlight=False, soft_wrap=True)
        return
    if taken is not None:
        stderr.print(safe(line(taken)), markup=False, highlight=False, soft_wrap=True)


def channel_refs(args: list[str], names: list[str], archive: Path, wait: float) -> list[ChannelRef]:
    """Check every channel name before anything is collected: a typo, an invite link or a numeric id the
    archive does not know stops the command (exit 2) with the archive left exactly as it was."""
    refs = []
    for raw in [*(a for a in args if not a.strip()), *names]:
        try:
            ref = parse_channel_ref(raw)
        except ChannelRefError as exc:
            fail(Exit.USAGE, str(exc))
        if ref.invite is not None:
            fail(Exit.USAGE, f"{raw!r} is an invite link: {INVITE_REFUSED}")
        refs.append(ref)
    ids = [r for r in refs if r.channel_id is not None]
    if ids:
        known: set[int] = set()
        if archive.exists():
            with Archive(archive, read_only=True, wait=wait) as opened:
                known = {r.channel_id for r in ids if r.channel_id and opened.lookup_id(r.channel_id)}
        for ref in ids:
            if ref.channel_id not in known:
                fail(Exit.USAGE, f"channel id {ref.channel_id} ({ref.raw!r}) is not in the archive {archive}: a "
                                  "numeric id only names a channel collected before; name it by its @username or "
                                  "t.me link the first time")
    return refs


def archived_channel(archive: Archive, ref: ChannelRef, path: Path) -> int:
    """The archived id ``ref`` names, for a command that reads one channel of the archive (``status``,
    ``verify``). An invite link, or a channel the archive does not hold, stops the command (exit 2), so that
    a typo is never reported as a clean, empty result."""
    if ref.invite is not None:
        fail(Exit.USAGE, f"{ref.raw!r} is an invite link: {INVITE_REFUSED}")
    found = archive.archived_channel_id(username=ref.username, channel_id=ref.channel_id)
    if found is None:
        fail(Exit.USAGE, f"--channel {ref.raw!r}: no such channel in the archive {path}; `tgspread status` lists "
                         "the archived channels")
    return found


def channel_list(names: list[str] | None, channels_file: Path | None, cfg: Config) -> list[str]:
    found = list(names or [])
    if channels_file is not None:
        found += read_channel_file(channels_file)
    found += cfg.channels
    return list(dict.fromkeys(n.strip() for n in found if n.strip()))


def print_report(report: CollectReport, *, title: str | None = None) -> None:
    stdout.print(report_table(report, title=title))
    for line in report_errors(report):
        stdout.print(line, soft_wrap=True)
