"""Rich progress for collection passes, fed by ``collect()``'s ``progress(stage, result)`` callback.

On a terminal: a live display with the pass overall (channels done of all, posts, posts/s) and the channel
being collected (its posts and posts/s), plus a line for every channel that did not end ok; a long flood
wait names the channel and the time it ends, a short one that Telethon sleeps through shows while it lasts.
Elsewhere (cron, a pipe) the live display is off and one plain line per channel goes to the console.
At the end, :func:`report_table` renders the per-channel summary.

Example::

    progress = CollectProgress(Console(stderr=True))
    with progress.watching_flood_sleeps():
        progress.begin("collect", channels)
        report = await collect(client, channels, archive, progress=progress)
        progress.end(report)
    Console().print(report_table(report))
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from collector._scheduling.ownership import NOT_OWNED
from collector._telegram.collect import ChannelResult, CollectReport

from .safe_text import safe
from .words import plural

OUTCOME_STYLE = {"ok": "green", "flood_wait": "yellow", "not_found": "red", "private": "magenta", "error": "red",
                 "not_owned": "cyan"}
_TELETHON_FLOOD_LOGGER = "telethon.client.users"   # where Telethon logs the flood waits it sleeps through


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} posts/s" if seconds > 0.2 and count else ""


def _label(result: ChannelResult) -> str:
    """The channel's name as printed (made safe: a username or an input line came from outside)."""
    return safe(f"@{result.username}" if result.username else result.input)


class _FloodSleepHandler(logging.Handler):
    """Turns Telethon's "Sleeping for 30s (0:00:30) on GetHistoryRequest flood wait" into a display line."""

    def __init__(self, progress: CollectProgress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if isinstance(record.msg, str) and record.msg.startswith("Sleeping") and len(args) == 4 \
                and isinstance(args[1], int):
            self.progress.flood_sleep(args[1], str(args[3]))


class CollectProgress:
    """A :class:`collector._cli.demo.PassObserver` drawing with rich on ``console`` (use a stderr console)."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self._progress: Progress | None = None
        self._overall: TaskID | None = None
        self._channel: TaskID | None = None
        self._current: str | None = None
        self._done: set[str] = set()
        self._total = 0
        self._posts_before = 0          # posts of finished channels
        self._started = time.monotonic()
        self._channel_started = time.monotonic()

    # -- the pass ------------------------------------------------------------------------------------
    def begin(self, title: str, channels: Sequence[str]) -> None:
        self._total = len(dict.fromkeys(channels))
        self._done.clear()
        self._current = None
        self._posts_before = 0
        self._started = time.monotonic()
        self.console.print(f"[bold]{title}[/]: {plural(self._total, 'channel')}")
        if not self.live:
            return
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}", table_column=None), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[posts]:>9,} posts"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), console=self.console, transient=True,
        )
        self._overall = self._progress.add_task("all channels", total=self._total, posts=0, rate="")
        self._channel = self._progress.add_task("", total=None, posts=0, rate="", visible=False)
        self._progress.start()

    def __call__(self, stage: str, result: ChannelResult) -> None:
        """The ``collect()`` callback: 'resolved', 'posts' (after each committed batch), 'done'."""
        if result.input in self._done:
            return
        if result.input != self._current:
            self._start_channel(result)
        posts = result.new_posts + result.refreshed_posts
        if self._progress is not None and self._channel is not None and self._overall is not None:
            self._progress.update(self._channel, description=escape(_label(result)), posts=posts,
                                  rate=_rate(posts, time.monotonic() - self._channel_started))
            total = self._posts_before + posts
            self._progress.update(self._overall, posts=total, rate=_rate(total, time.monotonic() - self._started))
        if stage == "done":
            self._finish_channel(result)

    def end(self, report: CollectReport) -> None:
        """Close the display; channels that failed before any callback are reported here."""
        for result in report.channels:
            if result.input not in self._done:
                self._finish_channel(result)
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elapsed = time.monotonic() - self._started
        posts = report.new_posts + report.refreshed_posts
        self.console.print(f"{report.summary().splitlines()[0]} in {elapsed:.1f} s ({_rate(posts, elapsed) or '-'})",
                           markup=False, highlight=False)

    # -- flood waits ---------------------------------------------------------------------------------
    def flood_sleep(self, seconds: int, request: str) -> None:
        """A short flood wait Telethon sleeps through (up to ``flood_sleep_threshold``)."""
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        who = safe(self._current or "the pass")
        line = f"{who}: Telegram asked to wait {seconds} s before more {request}; sleeping until {until:%H:%M:%S} UTC"
        if self._progress is not None and self._channel is not None:
            self._progress.update(self._channel, description=f"{escape(who)} [yellow](flood wait {seconds} s, until "
                                                             f"{until:%H:%M:%S} UTC)[/]")
        else:
            self.console.print(line, style="yellow", markup=False)

    @contextlib.contextmanager
    def watching_flood_sleeps(self) -> Iterator[CollectProgress]:
        """While inside, Telethon's short flood-wait sleeps are shown (its logger is hooked, not changed)."""
        logger = logging.getLogger(_TELETHON_FLOOD_LOGGER)
        handler = _FloodSleepHandler(self)
        previous = logger.level
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        try:
            yield self
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous)

    # -- one channel ---------------------------------------------------------------------------------
    def _start_channel(self, result: ChannelResult) -> None:
        self._current = result.input
        self._channel_started = time.monotonic()
        if self._progress is not None and self._channel is not None:
            self._progress.reset(self._channel, total=None, description=escape(_label(result)), posts=0, rate="",
                                 visible=True)

    def _finish_channel(self, result: ChannelResult) -> None:
        self._done.add(result.input)
        self._posts_before += result.new_posts + result.refreshed_posts
        if self._current == result.input:
            self._current = None
        if self._progress is not None and self._overall is not None:
            self._progress.update(self._overall, completed=len(self._done))
        style = OUTCOME_STYLE.get(result.outcome, "red")
        if result.outcome == "flood_wait":      # which channel waits, and until when (the error says)
            self.console.print(Text(f"{_label(result)} waits: {safe(result.error or '')}", style=style))
        elif result.outcome != "ok":            # the details follow in the summary
            self.console.print(Text(f"{_label(result)}: {result.outcome}", style=style))
        elif not self.live:
            self.console.print(
                f"{_label(result)}: ok, {result.new_posts} new, {result.refreshed_posts} refreshed, "
                f"{plural(result.edits, 'edit')}, {plural(result.deletions, 'deletion')}", markup=False)


def report_table(report: CollectReport, *, title: str | None = None) -> Table:
    """The end-of-pass summary: per channel its outcome, new posts, refreshed, edits and deletions, with totals.

    What went wrong for the channels that are not ok is in :func:`report_errors` (full sentences do not fit
    a table column).
    """
    table = Table(title=title or f"run {report.run_id}: {report.status}", show_footer=True, title_justify="left")
    channels = report.channels
    table.add_column("channel", footer=plural(len(channels), "channel"))
    owned_elsewhere = sum(c.outcome == NOT_OWNED for c in channels)    # handed on to their owner: no failure
    failed = sum(c.outcome not in ("ok", NOT_OWNED) for c in channels)
    table.add_column("outcome", footer=f"{failed} not ok" + (f"\n{owned_elsewhere} not owned" if owned_elsewhere
                                                                else ""))
    for name, attr in (("new posts", "new_posts"), ("refreshed", "refreshed_posts"), ("edits", "edits"),
                       ("deletions", "deletions")):
        table.add_column(name, justify="right", footer=f"{sum(getattr(c, attr) for c in channels):,}")
    for c in channels:
        table.add_row(Text(_label(c)), Text(c.outcome, style=OUTCOME_STYLE.get(c.outcome, "red")), f"{c.new_posts:,}",
                      f"{c.refreshed_posts:,}", f"{c.edits:,}", f"{c.deletions:,}")
    return table


def report_errors(report: CollectReport) -> list[Text]:
    """One line per channel that is not ok: ``@name: outcome: what happened and what to do``."""
    return [Text(f"{_label(c)}: {c.outcome}: {safe(c.error or 'no details')}",
                 style=OUTCOME_STYLE.get(c.outcome, "red"))
            for c in report.channels if c.outcome != "ok"]


def requests_table(requests: dict[str, int], *, title: str = "requests sent") -> Table:
    """Requests by TL method name, most frequent first."""
    table = Table(title=title, title_justify="left", show_footer=True)
    table.add_column("request", footer="total")
    table.add_column("count", justify="right", footer=f"{sum(requests.values()):,}")
    for name, count in sorted(requests.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(name, f"{count:,}")
    return table
