"""Optional media download: the files of archived posts, stored once per content, resumable.

Metadata of every post's media (type, id, mime type, size, duration, dimensions, file name) is archived by
``collect`` in ``posts`` whether or not anything is downloaded. ``download_media`` fetches the files of
archived posts that pass the type and size filters and have none yet:

- **Stored once.** A file is identified by the SHA-256 of its bytes (``media_files``). A post whose media id
  another post already brought (a forward carries the original's file) is linked without a request; a file
  fetched and found identical to a stored one (the same bytes uploaded again) is linked and not stored again.
  ``post_media`` says which post carries which file and how it got it.
- **Laid out by channel and date.** The one copy lives at ``<root>/<channel>/<YYYY>/<MM>/<message id>-<sha256
  prefix>.<ext>`` after the post that first brought it (``<channel>``: its username, else its id). Other posts
  carrying the same file find it through the archive (``post_media`` -> ``media_files.path``), not through
  links on disk: hard links do not survive copying the tree to another disk or a zip, symbolic links break
  when it moves; the archive is the index either way.
- **Resumable.** Bytes arrive in ``request_size`` parts and are appended, unbuffered, to
  ``<root>/.partial/<file>.part``; the part file is the resume state. A rerun after a kill continues from its
  size (rounded down to a whole part) and asks Telegram only for what is missing. A finished file is checked
  (size as announced), hashed, hard-linked into place, committed to the archive, and only then is its part
  file removed, so a kill at any moment loses at most the part in flight.
- **Expired file references.** A post's file reference (in its archived ``raw``) is used first: right after
  collecting it is fresh and costs nothing. When Telegram answers ``FILE_REFERENCE_EXPIRED`` the posts of the
  channel still to do are fetched again (``channels.getMessages``, 100 per request, through the archived access
  hash) and the download continues from the same offset with the fresh reference.
- **Flood waits** on ``upload.getFile`` or ``channels.getMessages`` longer than the client's
  ``flood_sleep_threshold`` end the run (recorded in ``flood_waits`` like ``collect`` does): part files stay,
  and the next run resumes them once the wait is over.

Example::

    with Archive("archive.duckdb") as archive:
        report = await download_media(client, archive, Path("media"), kinds=("photo", "video"),
                                      max_size=20 * 1024 * 1024)
    print(report.summary())
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from collector._archive import media as media_store
from collector._archive.archive import Archive
from collector._archive.media import MediaItem as _Item
from collector._parse.channel_ref import ChannelRefError, parse_channel_ref
from collector._parse.media_files import (
    DEFAULT_KINDS,
    FileLocation,
    MediaError,
    UnsafeMediaPath,
    check_kinds,
    file_extension,
    layout_path,
    location_from_media,
    location_from_raw,
    under_root,
)

from .calls import Budget, Caller, FloodLimited

#: Bytes asked per ``upload.getFile`` (Telethon's and Telegram's largest part: it divides 1 MiB).
DEFAULT_REQUEST_SIZE = 512 * 1024
MAX_ATTEMPTS = 5              # a file that failed this often is not tried again (media_downloads.attempts)
_MAX_REFRESHES = 3            # fresh references asked for one file in one run before giving up on it
_SYNC_EVERY = 8 * 1024 * 1024  # fsync the part file every this many bytes (a power cut loses at most that)
_BATCH = 100                  # channels.getMessages takes at most 100 ids
PARTIAL_DIR = ".partial"


# -- the report ----------------------------------------------------------------------------------------------
@dataclass
class MediaReport:
    """What one run did. ``stored``: files new on disk; ``linked_same_media``/``linked_same_content``: posts
    given a file already stored; ``failed``/``gone``: (channel_id, message_id, reason)."""

    started_at: datetime
    finished_at: datetime | None = None
    candidates: int = 0
    stored: int = 0
    linked_same_media: int = 0
    linked_same_content: int = 0
    bytes_downloaded: int = 0
    resumed: int = 0
    references_refreshed: int = 0
    failed: list[tuple[int, int, str]] = field(default_factory=list)
    gone: list[tuple[int, int, str]] = field(default_factory=list)
    stopped: str | None = None          # why the run ended early (a flood wait, the budget, a lost connection)
    flood_until: datetime | None = None
    requests: Counter[str] = field(default_factory=Counter)
    not_owned: int = 0                  # archived channels left alone: another collector's slot (issue 15)

    @property
    def linked(self) -> int:
        """Posts that got a file this run (stored, or linked to one already stored)."""
        return self.stored + self.linked_same_media + self.linked_same_content

    @property
    def status(self) -> str:
        """'ok' when every candidate got its file (or is gone on Telegram), else 'partial'."""
        return "partial" if self.failed or self.stopped else "ok"

    def summary(self) -> str:
        text = (f"media: {self.linked} of {self.candidates} posts got their file ({self.stored} stored, "
                f"{self.linked_same_media + self.linked_same_content} already stored), "
                f"{self.bytes_downloaded / 1e6:.1f} MB downloaded, {self.resumed} resumed, "
                f"{self.references_refreshed} references refreshed, {len(self.failed)} failed, {len(self.gone)} gone")
        if self.not_owned:
            text += f", {self.not_owned} channel(s) of other collectors' slots left alone"
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


# -- the archive side: collector._archive.media ---------------------------------------------------------------
def _archived_locations(archive: Archive, items: Sequence[_Item]) -> dict[tuple[int, int], FileLocation]:
    """File locations from the archived ``raw`` of these posts (one channel)."""
    found = {}
    for message_id, raw in media_store.archived_raw(archive, items):
        loc = location_from_raw(raw)
        if loc is not None:
            found[(items[0].channel_id, message_id)] = loc
    return found


# -- the download ----------------------------------------------------------------------------------------------
class _Stop(Exception):
    """The run must end here (flood wait, budget, lost connection); ``reason`` says why."""

    def __init__(self, reason: str, until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.until = until


class _Gone(Exception):
    """The post or its file is no longer on Telegram."""


class _Run:
    """One ``download_media`` call: the shared state of its steps."""

    def __init__(self, client: TelegramClient, archive: Archive, root: Path, now: datetime, *,
                 max_size: int | None, request_size: int, budget: Budget | None, hold_seconds: float) -> None:
        self.client = client
        self.archive = archive
        self.root = root
        self.now = now
        self.max_size = max_size
        self.request_size = request_size
        self.budget = budget
        self.hold_seconds = hold_seconds
        self.report = MediaReport(started_at=now)
        blocked = archive.active_flood_waits(now)
        self.caller = Caller(client, now, blocked, self._on_flood, budget=budget)
        # Files are fetched from the data centre holding them. A session that does not know its own data
        # centre (never connected: the simulated client) has nothing to compare with: use its one sender.
        self.home_dc: int = int(client.session.dc_id or 0)

    def _on_flood(self, request: str, seconds: int, channel_id: int | None) -> datetime:
        return self.archive.record_flood_wait(request, started_at=self.now, seconds=seconds, channel_id=channel_id,
                                              run_id=None)

    # -- per channel ----------------------------------------------------------------------------------------
    async def channel(self, items: list[_Item]) -> None:
        """The files of one channel's posts, 100 posts (one getMessages, if references expire) at a time."""
        for start in range(0, len(items), _BATCH):
            batch = items[start:start + _BATCH]
            locations = _archived_locations(self.archive, batch)
            refreshed = False
            for item in batch:
                refreshes = 0
                stale: Sequence[_Item] = ()
                while True:
                    try:
                        if stale:
                            locations.update(await self.refresh(stale))
                            stale = ()
                        await self.one(item, locations.get(item.key))
                        break
                    except errors.FileReferenceExpiredError:
                        refreshes += 1
                        if refreshes > _MAX_REFRESHES:
                            self._failed(item, "Telegram kept refusing fresh file references")
                            break
                        # the first expiry refreshes every post still to do in this batch (one request)
                        stale = [item] if refreshed else batch[batch.index(item):]
                        refreshed = True
                    except _Gone as exc:
                        self.report.gone.append((*item.key, str(exc)))
                        media_store.note(self.archive, item, "gone", str(exc), self.now, attempt=False)
                        break
                self.archive.release(held_for=self.hold_seconds)

    async def refresh(self, items: Sequence[_Item]) -> dict[tuple[int, int], FileLocation]:
        """Fresh locations (file references) for these posts of one channel: one channels.getMessages."""
        first = items[0]
        if first.access_hash is None:
            return {}
        channel = types.InputChannel(first.channel_id, first.access_hash)
        request = functions.channels.GetMessagesRequest(channel, [types.InputMessageID(i.message_id) for i in items])
        try:
            answer = await self.caller(request, channel_id=first.channel_id)
        except FloodLimited as exc:
            raise _Stop(str(exc), exc.until) from None
        except (errors.ChannelPrivateError, errors.ChannelInvalidError) as exc:
            raise _Gone(f"the channel is closed to this account ({type(exc).__name__})") from None
        self.report.references_refreshed += 1
        by_id = {m.id: m for m in answer.messages if isinstance(m, types.Message)}
        return {(first.channel_id, i.message_id): loc for i in items
                if (m := by_id.get(i.message_id)) is not None and (loc := location_from_media(m.media)) is not None}

    # -- per file ---------------------------------------------------------------------------------------------
    async def one(self, item: _Item, loc: FileLocation | None) -> None:
        """Give ``item`` its file: linked when already stored, else downloaded (or resumed) and stored."""
        known = media_store.stored_for_media(self.archive, item)
        if known is not None:
            media_store.link_stored(self.archive, item, known[0], "same_media", known[1], self.now)
            self.report.linked_same_media += 1
            return
        if loc is None:
            loc = (await self.refresh([item])).get(item.key)
            if loc is None:
                raise _Gone("the post is deleted on Telegram, or no longer carries this file")
        if loc.media_id != item.media_id or loc.kind != item.file_kind:
            raise _Gone("the post's media was replaced since it was archived; collect the channel again")
        thumb = re.sub(r"[^A-Za-z0-9]", "_", loc.thumb or "")      # a size type from the server: hostile
        part = self.root / PARTIAL_DIR / f"{loc.kind[0]}{loc.media_id}{('-' + thumb) if thumb else ''}.part"
        try:
            size = await self.fetch(loc, part)
        except errors.FileReferenceExpiredError:
            raise
        except (errors.FloodWaitError, FloodLimited) as exc:
            if isinstance(exc, FloodLimited):       # a wait remembered from before, or the request budget
                until, reason = exc.until, str(exc)
            else:                                    # longer than flood_sleep_threshold: remember, never sleep it
                until = self._on_flood("upload.GetFile", int(exc.seconds), item.channel_id)
                reason = (f"Telegram asked to wait before more upload.GetFile requests, until "
                          f"{until:%Y-%m-%d %H:%M} UTC")
            self._interrupted(item, part, reason)
            raise _Stop(reason, until) from None
        except (ConnectionError, errors.TimedOutError) as exc:
            self._interrupted(item, part, f"connection lost: {exc}")
            raise _Stop(f"the connection to Telegram was lost ({exc})") from None
        except errors.RPCError as exc:
            self._failed(item, f"Telegram refused the file: {exc.message or type(exc).__name__}")
            return
        except _TooLarge as exc:
            part.unlink(missing_ok=True)
            self._failed(item, str(exc))
            return
        except OSError as exc:                      # after ConnectionError, which is one too
            raise _Stop(_disk_problem(exc)) from None
        if loc.size is not None and size != loc.size:
            part.unlink(missing_ok=True)
            self._failed(item, f"got {size} bytes where Telegram announced {loc.size}; it is fetched again next run")
            return
        try:
            self.store(item, loc, part, size)
        except UnsafeMediaPath as exc:              # never written outside the media folder
            part.unlink(missing_ok=True)
            self._failed(item, f"{exc}; not stored")
        except OSError as exc:
            raise _Stop(_disk_problem(exc)) from None

    async def fetch(self, loc: FileLocation, part: Path) -> int:
        """Download ``loc`` into ``part``, resuming from what it holds; returns the complete size."""
        part.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        offset = have - have % self.request_size     # resume at a whole part: Telegram wants offset % limit == 0
        if offset:
            self.report.resumed += 1
        dc_id = loc.dc_id if self.home_dc and loc.dc_id else None
        fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            done, unsynced = offset, 0
            stream = self.client.iter_download(loc.input_location(), offset=offset, request_size=self.request_size,
                                               dc_id=dc_id)
            try:
                while True:
                    until = self.caller.blocked_until("upload.GetFile")
                    if until is not None:
                        raise FloodLimited("upload.GetFile", until)
                    if self.budget is not None:
                        self.budget.spend("upload.GetFile")   # raises FloodLimited when the budget is used up
                    self.report.requests["upload.GetFile"] += 1
                    try:
                        chunk = await stream.__anext__()    # one request per part
                    except StopAsyncIteration:
                        break
                    data = memoryview(chunk)
                    while data:                              # unbuffered: a kill keeps every byte written
                        data = data[os.write(fd, data):]
                    done += len(chunk)
                    unsynced += len(chunk)
                    self.report.bytes_downloaded += len(chunk)
                    if self.max_size is not None and done > self.max_size:
                        raise _TooLarge(f"larger than --max-size ({done} bytes and more)")
                    if unsynced >= _SYNC_EVERY:
                        os.fsync(fd)
                        unsynced = 0
                    if len(chunk) < self.request_size:       # a short part (or none) is the end of the file
                        break
            finally:
                # Telethon's iterator sets up its sender on the first request: nothing to close before that
                # (or when setting up failed), and its close() would fail on the missing attribute.
                with contextlib.suppress(AttributeError):
                    await stream.close()
            os.fsync(fd)
        finally:
            os.close(fd)
        return done

    def store(self, item: _Item, loc: FileLocation, part: Path, size: int) -> None:
        """Hash a complete part file, put it in place once per content, link the post, then drop the part."""
        sha = _sha256(part)
        stored = media_store.stored_path(self.archive, sha)
        if stored is not None:
            how, rel = "same_content", PurePosixPath(stored)
            if not under_root(self.root, rel).exists():   # removed by hand: put this copy back in its place
                _place(part, under_root(self.root, rel))
        else:
            how = "downloaded"
            rel = layout_path(item.channel_dir, item.posted_at, item.message_id, sha,
                              file_extension(item.mime, item.filename, item.media_type))
            _place(part, under_root(self.root, rel))
        media_store.record_file(self.archive, item, sha=sha, size=size, path=rel.as_posix(), how=how, thumb=loc.thumb,
                                mime=item.mime or ("image/jpeg" if item.media_type == "photo" else None), now=self.now)
        part.unlink(missing_ok=True)
        if how == "downloaded":
            self.report.stored += 1
        else:
            self.report.linked_same_content += 1

    def _failed(self, item: _Item, reason: str) -> None:
        self.report.failed.append((*item.key, reason))
        media_store.note(self.archive, item, "failed", reason, self.now, attempt=True)

    def _interrupted(self, item: _Item, part: Path, reason: str) -> None:
        done = part.stat().st_size if part.exists() else 0
        media_store.note(self.archive, item, "interrupted", reason, self.now, attempt=False, bytes_done=done)


def _disk_problem(exc: OSError) -> str:
    return (f"cannot write to the media folder ({exc.strerror or exc}: {exc.filename or ''}); free some space or "
            "fix its permissions, then run again: what was downloaded is kept")


class _TooLarge(Exception):
    """More bytes arrived than ``max_size`` allows (the size was not announced)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _place(part: Path, final: Path) -> None:
    """Make ``final`` hold the part file's bytes, durably; the part file stays until the archive knows."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        final.unlink()               # a leftover of a run killed before its commit: the same name, same bytes
    try:
        os.link(part, final)
    except OSError:                  # a file system without hard links
        tmp = final.with_name(final.name + ".tmp")
        shutil.copyfile(part, tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _sweep_partials(archive: Archive, root: Path) -> None:
    """Remove part files whose file the archive already has (a run killed between commit and cleanup)."""
    folder = root / PARTIAL_DIR
    if not folder.is_dir():
        return
    for part in folder.glob("*.part"):
        m = re.fullmatch(r"([pd])(\d+)(?:-\w+)?\.part", part.name)
        if m is None:
            continue
        kind = "photo" if m.group(1) == "p" else "document"
        if media_store.has_file(archive, int(m.group(2)), kind):
            part.unlink(missing_ok=True)


def archived_channel_ids(archive: Archive, names: Sequence[str]) -> list[int]:
    """Archived channel ids for what the user typed; a channel the archive does not know is a :class:`MediaError`.

    Reads only (works on an archive opened read-only).
    """
    out = []
    for name in names:
        try:
            ref = parse_channel_ref(name)
        except ChannelRefError as exc:
            raise MediaError(str(exc)) from None
        key = (archive.lookup_id(ref.channel_id) if ref.channel_id is not None
               else archive.lookup_username(ref.username) if ref.username else None)
        if key is None:
            raise MediaError(f"{name!r} is not in the archive; collect it first (tgspread collect {name})")
        out.append(key.channel_id)
    return list(dict.fromkeys(out))


async def download_media(
    client: TelegramClient,
    archive: Archive,
    root: Path,
    *,
    channels: Sequence[str] | None = None,
    kinds: Sequence[str] = DEFAULT_KINDS,
    max_size: int | None = None,
    limit: int | None = None,
    now: datetime | None = None,
    request_size: int = DEFAULT_REQUEST_SIZE,
    budget: Budget | None = None,
    hold_seconds: float = 5.0,
    owns: Callable[[int], bool] | None = None,
) -> MediaReport:
    """Download the files of archived posts into ``root`` (see the module docstring); returns what it did.

    ``channels``: names or ids of archived channels (default: all); ``kinds``: ``posts.media_type`` values
    (:data:`FILE_KINDS`); ``max_size``: skip files announced larger (bytes); ``limit``: at most this many posts
    this run; ``now``: the run's clock (flood waits are dated by it; default the real UTC time);
    ``request_size``: bytes per ``upload.getFile`` (a multiple of 4096 dividing 1 MiB); ``budget``: spent
    before every request, like ``collect``'s. Raises :class:`MediaError` before touching anything when the
    channels or filters are unusable. Never connects or disconnects the client.
    """
    if request_size <= 0 or request_size % 4096 or (1024 * 1024) % request_size:
        raise MediaError(f"request_size must be a multiple of 4096 that divides 1 MiB, not {request_size}")
    try:
        kinds = check_kinds(kinds)
    except ValueError as exc:
        raise MediaError(str(exc)) from None
    if max_size is not None and max_size < 0:
        raise MediaError("max_size must not be negative")
    if limit is not None and limit < 0:
        raise MediaError("limit must not be negative")
    now = now if now is not None else datetime.now(UTC)
    ids = archived_channel_ids(archive, channels) if channels else None
    not_owned = 0
    if owns is not None:        # only this collector's slots (Ownership.owns); the rest is another's
        every = ids if ids is not None else [int(r[0]) for r in archive.con.execute(
            "SELECT channel_id FROM channels").fetchall()]
        ids = [i for i in every if owns(i)]
        not_owned = len(every) - len(ids)
    run = _Run(client, archive, root, now, max_size=max_size, request_size=request_size, budget=budget,
               hold_seconds=hold_seconds)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(f"{root}: cannot create the media folder ({exc.strerror or exc}); choose another with "
                         "--dir or [media] dir") from None
    _sweep_partials(archive, root)
    items = media_store.pending(archive, ids, kinds, max_size, limit, max_attempts=MAX_ATTEMPTS)
    run.report.candidates = len(items)
    run.report.not_owned = not_owned
    by_channel: dict[int, list[_Item]] = {}
    for item in items:
        by_channel.setdefault(item.channel_id, []).append(item)
    started = time.monotonic()
    try:
        for channel_items in by_channel.values():
            await run.channel(channel_items)
    except _Stop as stop:
        run.report.stopped = stop.reason
        run.report.flood_until = stop.until
    run.report.requests.update(run.caller.sent)
    run.report.finished_at = now + timedelta(seconds=time.monotonic() - started)
    return run.report
