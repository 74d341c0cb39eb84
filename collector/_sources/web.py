"""Collecting public channels without an account, from their web previews (``https://t.me/s/<name>``).

The one module here that does network I/O. Politeness and failure handling live in :class:`PreviewFetcher`:
requests are spaced (``min_interval``), a 429 waits for its ``Retry-After``, 5xx answers and network
errors are retried with exponential backoff, and a channel whose retries run out is reported and skipped,
never raised. Each page is written in its own transaction, so an interrupted pass keeps what it read.

Example::

    from collector import Archive
    from .web import collect_web

    with Archive("archive.duckdb") as archive:
        report = collect_web(archive, ["durov", "https://t.me/telegram"], max_pages=5)
    for ch in report.channels:
        print(ch.input, ch.outcome, ch.new_posts, ch.error or "")
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import duckdb
import httpx

from analysis._urls import canonical_urls
from collector._archive import upsert as store
from collector._parse.channel_ref import distinct_channels
from collector._parse.web_page import WebPage, WebPost, parse_page
from collector._scheduling.ownership import NOT_OWNED, Ownership

USER_AGENT = "tgspread (research archiver of public Telegram channels; +https://github.com/) httpx"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_INPUT_RE = re.compile(
    r"^(?:@|(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?)?([A-Za-z][A-Za-z0-9_]{3,31})(?:/\d+)?/?(?:\?.*)?$"
)


class FetchError(Exception):
    """A page could not be fetched after every retry. ``rate_limited``: Telegram asked us to wait longer
    than we are willing to (``retry_after`` seconds)."""

    def __init__(self, message: str, *, rate_limited: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.rate_limited = rate_limited
        self.retry_after = retry_after


class PreviewFetcher:
    """Fetches preview pages politely: spaced, retried, backed off.

    ``sleep`` and ``clock`` are injectable so tests run instantly; ``rng`` adds jitter to backoffs
    (several collectors started together by cron must not retry in lockstep).
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        base_url: str = "https://t.me",
        min_interval: float = 1.5,
        max_attempts: int = 5,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._own_client = client is None
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=True,
                                             headers={"User-Agent": USER_AGENT})
        self.base_url = base_url.rstrip("/")
        self.min_interval = min_interval
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.requests = 0
        self._last_request: float | None = None

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def url(self, username: str, before: int | None = None) -> str:
        return f"{self.base_url}/s/{username}" + (f"?before={before}" if before is not None else "")

    def fetch(self, username: str, before: int | None = None) -> str:
        """The HTML of one page; raises :class:`FetchError` when every attempt failed."""
        url = self.url(username, before)
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            self._space()
            self.requests += 1
            try:
                response = self.client.get(url, follow_redirects=True)
            except httpx.TransportError as exc:          # DNS, connect, read timeout: worth retrying
                last = f"network error: {exc.__class__.__name__}: {exc}"
                self._back_off(attempt)
                continue
            status = response.status_code
            if status == 429:
                # Telegram says how long to wait: honour it when reasonable, else give the channel up for
                # this pass (a later pass will catch up) rather than sleeping for hours.
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is not None and wait > self.max_retry_after:
                    raise FetchError(f"{url}: rate limited by t.me for {wait:.0f} s; try again later",
                                     rate_limited=True, retry_after=wait)
                last = "rate limited (429)"
                if attempt < self.max_attempts:
                    self.sleep(wait if wait is not None else self._backoff_for(attempt))
                continue
            if status >= 500:
                last = f"server error {status}"
                self._back_off(attempt)
                continue
            if status == 404:
                return ""                                  # treated like a page without a preview
            if status >= 400:
                raise FetchError(f"{url}: HTTP {status}")
            return response.text
        raise FetchError(f"{url}: giving up after {self.max_attempts} attempts ({last})",
                         rate_limited=last.startswith("rate limited"))

    def _space(self) -> None:
        now = self.clock()
        if self._last_request is not None:
            wait = self._last_request + self.min_interval - now
            if wait > 0:
                self.sleep(wait)
                now += wait
        self._last_request = now

    def _backoff_for(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * (0.5 + self.rng.random() / 2)

    def _back_off(self, attempt: int) -> None:
        if attempt < self.max_attempts:
            self.sleep(self._backoff_for(attempt))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(slots=True)
class WebChannelReport:
    """The outcome for one channel named by the user. ``outcome`` uses run_channels' words:
    ``ok``, ``not_found`` (no public preview), ``flood_wait`` (rate limited), ``error``, ``not_owned``
    (another collector's slot: nothing of its posts written)."""

    input: str
    username: str | None = None
    channel_id: int | None = None
    title: str | None = None
    outcome: str = "ok"
    error: str | None = None
    pages: int = 0
    new_posts: int = 0
    refreshed_posts: int = 0
    skipped_blocks: list[str] = field(default_factory=list)


@dataclass(slots=True)
class WebReport:
    """What one ``collect_web`` pass did."""

    started_at: datetime
    finished_at: datetime | None = None
    run_id: int | None = None
    requests: int = 0
    channels: list[WebChannelReport] = field(default_factory=list)

    @property
    def new_posts(self) -> int:
        return sum(c.new_posts for c in self.channels)

    @property
    def status(self) -> str:
        bad = sum(c.outcome not in ("ok", NOT_OWNED) for c in self.channels)   # not_owned: handed on, no failure
        return "ok" if bad == 0 else "failed" if bad == len(self.channels) else "partial"


def normalize_channel(value: str) -> str | None:
    """The username in ``name``, ``@name``, ``t.me/name``, ``https://t.me/s/name/123``; None otherwise.

    >>> normalize_channel("https://t.me/s/Durov/42")
    'Durov'
    """
    m = _INPUT_RE.match(value.strip())
    return m.group(1) if m else None


def collect_web(
    archive: Any,
    channels: Sequence[str],
    *,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    max_pages: int | None = None,
    full: bool = False,
    fetcher: PreviewFetcher | None = None,
    ownership: Ownership | None = None,
) -> WebReport:
    """One pass over ``channels`` through their public web previews, written to ``archive``.

    For each channel: read the newest page, then older pages (``?before=<id>``) until the preview has no
    older page, ``max_pages`` pages were read, or (unless ``full``) a page reaches posts the archive
    already holds, whose views are then refreshed. Channels that fail are reported, never raised;
    the pass is recorded in ``runs``/``run_channels``. ``now`` stamps every row (None: the real UTC time).
    ``ownership`` (issue 15), as for ``collect``: a channel in another collector's slot ends ``not_owned`` with
    none of its posts written; when the archive knows its id nothing is fetched, otherwise its first page tells
    the id (the channel's row is kept, as a resolve keeps it, so the lake can hand it on).
    """
    started = now or datetime.now(UTC)
    report = WebReport(started_at=started)
    own = fetcher is None
    fetch = fetcher or PreviewFetcher(client)
    try:
        for raw in distinct_channels(channels):
            rep = WebChannelReport(input=raw)
            try:
                _collect_channel(archive, raw, fetch, now=started, max_pages=max_pages, full=full, rep=rep,
                                 ownership=ownership)
            except (ValueError, ArithmeticError, TypeError, LookupError, UnicodeError, duckdb.Error) as exc:
                # a crafted page the parser or the archive's columns could not take: this channel fails,
                # the pass goes on (what earlier pages wrote stays; the failing page's transaction is undone)
                rep.outcome = "error"
                rep.error = (f"a page could not be read or stored ({type(exc).__name__}: {_short(exc)}); "
                             "the pages before it were kept")
            report.channels.append(rep)
    finally:
        report.requests = fetch.requests
        if own:
            fetch.close()
    report.finished_at = now or datetime.now(UTC)
    with store.transaction(archive):
        report.run_id = store.record_run(
            archive, started_at=started, finished_at=report.finished_at, status=report.status,
            channels=[{"input": c.input, "channel_id": c.channel_id, "outcome": c.outcome, "error": c.error,
                       "new_posts": c.new_posts, "refreshed_posts": c.refreshed_posts}
                      for c in report.channels],
        )
    return report


def _short(exc: BaseException, limit: int = 200) -> str:
    """The first line of an error, at most ``limit`` characters, as repr (hostile text stays inert)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return repr(text[:limit])


def _collect_channel(archive: Any, raw: str, fetch: PreviewFetcher, *, now: datetime,
                     max_pages: int | None, full: bool, rep: WebChannelReport | None = None,
                     ownership: Ownership | None = None) -> WebChannelReport:
    rep = rep if rep is not None else WebChannelReport(input=raw)
    username = _username_for(archive, raw)
    if username is None:
        rep.outcome = "not_found"
        rep.error = (f"{raw!r} is not a channel username, @username or t.me link (numeric ids work only for "
                     "channels the archive already knows by username)")
        return rep
    rep.username = username
    if ownership is not None and ownership.enforced:          # known already: refused before any request
        known = store.channel_ids_for_usernames(archive, [username]).get(username.lower())
        if known is not None and not ownership.owns(known):
            return _not_owned(archive, rep, known, ownership)
    known_max: int | None = None
    before: int | None = None
    while max_pages is None or rep.pages < max_pages:
        try:
            html = fetch.fetch(username, before)
        except FetchError as exc:
            rep.outcome = "flood_wait" if exc.rate_limited else "error"
            rep.error = f"{exc} (kept {rep.pages} page(s) read before it)"
            return rep
        page = parse_page(html)
        if rep.pages == 0 and not page.has_preview:
            rep.outcome = "not_found"
            rep.error = (f"t.me/s/{username} shows no public preview: the channel does not exist, is private, "
                         "is a user or a group, or its owner turned the preview off. Check the name; for private "
                         "channels use the API (tgspread collect) with an account that is a member.")
            return rep
        rep.pages += 1
        rep.skipped_blocks.extend(page.skipped)
        if rep.channel_id is None:
            rep.channel_id = _channel_id(archive, username, page)
            if rep.channel_id is None:
                if not page.posts:
                    return rep                                # an empty channel: nothing to store
                rep.outcome = "error"
                rep.error = (f"t.me/s/{username}: the preview does not show the channel's numeric id and the "
                             "archive does not know it; collect it once with the API (tgspread collect "
                             f"{username}) so its id is known, then the web preview can add to it")
                return rep
            if ownership is not None and not ownership.owns(rep.channel_id):
                with store.transaction(archive):        # the channel row only: its owner is told through the lake
                    _write_channel(archive, page, rep.channel_id, username, now)
                return _not_owned(archive, rep, rep.channel_id, ownership)
            known_max = store.max_message_id(archive, rep.channel_id)
        if page.channel is not None:
            rep.title = page.channel.title
        ours = [p for p in page.posts if p.username.lower() == username.lower()]
        rep.skipped_blocks.extend(f"post {p.username}/{p.message_id} of another channel"
                                  for p in page.posts if p not in ours)
        _write_page(archive, page, ours, rep, username=username, now=now)
        ids = [p.message_id for p in ours]
        next_before = page.before                          # the page's own "load more" link, or the end
        if not ids or next_before is None or (before is not None and next_before >= before):
            break
        if not full and known_max is not None and min(ids) <= known_max:
            break
        before = next_before
    return rep


def _username_for(archive: Any, raw: str) -> str | None:
    text = raw.strip()
    if text.lstrip("-").isdigit():
        found = store.known_channel(archive, abs(int(text)))
        return found[0] if found and found[0] else None
    name = normalize_channel(text)
    return name if name and _NAME_RE.match(name) else None


def _channel_id(archive: Any, username: str, page: WebPage) -> int | None:
    """The channel's id: what its posts' data-view tokens agree on, else what the archive knows."""
    ids = {p.channel_id for p in page.posts if p.channel_id is not None and p.username.lower() == username.lower()}
    if len(ids) == 1:
        return ids.pop()
    return store.channel_ids_for_usernames(archive, [username]).get(username.lower())


def _write_page(archive: Any, page: WebPage, posts: list[WebPost], rep: WebChannelReport, *, username: str,
                now: datetime) -> None:
    assert rep.channel_id is not None
    fwd_ids = store.channel_ids_for_usernames(archive, [name for p in posts for name in (p.fwd_username,
                                                                                          p.reply_to_username) if name])
    rows = web_post_rows(posts, rep.channel_id, now=now, fwd_ids=fwd_ids)
    with store.transaction(archive):
        _write_channel(archive, page, rep.channel_id, username, now)
        counts = store.upsert_posts(archive, rows, now=now)
        store.resolve_forward_usernames(archive)
    rep.new_posts += counts.new
    rep.refreshed_posts += counts.updated


def _write_channel(archive: Any, page: WebPage, channel_id: int, username: str, now: datetime) -> None:
    """The channel's row from the page's header (nothing when the page has none)."""
    if page.channel is None:
        return
    ch = page.channel
    store.upsert_channels(archive, [{
        "channel_id": channel_id, "username": ch.username or username, "title": ch.title,
        "about": ch.description,
        "participants_count": ch.subscribers.value if ch.subscribers else None,
        "participants_label": ch.subscribers.label if ch.subscribers else None,
        "source": "web", "first_seen_at": now, "last_seen_at": now,
    }], now=now)


def _not_owned(archive: Any, rep: WebChannelReport, channel_id: int, ownership: Ownership) -> WebChannelReport:
    """``rep`` refused: another collector's slot. A channel archived as a group, private or deleted channel is
    not handed on, and the refusal says what it is (as for the API passes)."""
    status = store.channel_status(archive, channel_id)
    rep.channel_id, rep.outcome, rep.error = channel_id, NOT_OWNED, ownership.refusal(channel_id, status)
    return rep


def web_post_rows(posts: Sequence[WebPost], channel_id: int, *, now: datetime,
                  fwd_ids: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Archive rows (``store.POST_SCHEMA`` names) for parsed preview posts of one channel.

    ``fwd_ids`` maps lower-cased usernames the archive knows to channel ids, for forward origins and the
    channels of cross-chat replies. A page names the other channel of a cross-chat reply by username only: the
    reply is stored (``reply_to_peer_id``, ``reply_to_peer_message_id``) when the archive knows that channel,
    and is otherwise left out (an API or export pass of the channel brings it).
    """
    fwd_ids = fwd_ids or {}
    rows = []
    for p in posts:
        views = p.views
        fwd_channel_id = fwd_ids.get(p.fwd_username.lower()) if p.fwd_username else None
        reply_peer = fwd_ids.get(p.reply_to_username.lower()) if p.reply_to_username else None
        rows.append({
            "channel_id": channel_id,
            "message_id": p.message_id,
            "posted_at": p.posted_at,
            "text": p.text,
            "grouped_id": -p.album_first_id if p.album_first_id is not None else None,
            "views": views.value if views else None,
            "views_label": views.label if views else None,
            "views_low": views.low if views else None,
            "views_high": views.high if views else None,
            "edited": p.edited,
            "hashtags": list(p.hashtags),
            "urls": list(p.urls),
            "domains": list(p.domains),
            "canonical_urls": canonical_urls(list(p.urls)),
            "mentions": list(p.mentions),
            "reactions": sum(n for _, n in p.reactions_by),
            "reactions_by": [{"reaction": r, "count": n} for r, n in p.reactions_by],
            "fwd_channel_id": fwd_channel_id,
            "fwd_message_id": p.fwd_message_id,
            "fwd_from_name": p.fwd_from_name,
            "fwd_post_author": p.fwd_post_author,
            "fwd_username": p.fwd_username,
            "reply_to_message_id": p.reply_to_message_id,
            "reply_to_peer_id": reply_peer,
            "reply_to_peer_message_id": p.reply_to_peer_message_id if reply_peer is not None else None,
            "post_author": p.post_author,
            "media_type": p.media_type,
            "media_duration": p.media_duration,
            "media_filename": p.media_filename,
            "webpage_url": p.webpage_url,
            "webpage_title": p.webpage_title,
            "source": "web",
            "first_seen_at": now,
            "last_seen_at": now,
        })
    return rows
