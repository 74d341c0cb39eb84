"""Simulated server handlers: ``upload.getFile`` with file references that expire (issue 5).

The world knows each file's kind, size and id (``model.Media``) but not its bytes: they are derived here,
deterministically, from ``(world.seed, content id, photo size type)``, so every process that builds the same
world serves the same bytes and a test can compute what a download must produce (:func:`expected_bytes`).
A copy of a post (``world.copies``) re-uploads the original's file: a new media id, the same bytes.

What Telegram checks, and so does this server (core.telegram.org/api/files, /method/upload.getFile):

- ``offset`` and ``limit`` are multiples of 4096 (1024 with ``precise``), ``limit`` is at most 1 MiB and,
  without ``precise``, divides 1 MiB; no request crosses a 1 MiB boundary (``LIMIT_INVALID``,
  ``OFFSET_INVALID``). Reading at or past the end returns empty bytes, near the end a short part.
- The location names a file the server handed out: id, access hash and kind (``FILE_ID_INVALID``), and a
  photo size the photo has (``LOCATION_INVALID``; documents are fetched whole, ``thumb_size=''``).
- The file reference is the one issued with the message (``FILE_REFERENCE_EMPTY``/``_INVALID``) and still
  fresh (``FILE_REFERENCE_EXPIRED``): a reference made by :func:`file_reference` carries the hour it was
  issued and lives :data:`REFERENCE_TTL`; a message fetched again carries a fresh one. References without
  an issue time (``b"\\x02" + id``, what ``tl_build`` minted before references were dated) never expire.

Every file lives on data centre 2, the simulated sender's (``SimulatedSender.dc_id``), so a client never
needs to borrow a sender for another data centre (which would try to connect).

Example::

    ref = file_reference(media_id, world.now)
    loc = types.InputDocumentFileLocation(media_id, derived_hash(media_id, salt=13), ref, "")
    part = await client(functions.upload.GetFileRequest(loc, offset=0, limit=65536))
"""

from __future__ import annotations

import hashlib
import struct
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from telethon.tl import functions, types

from .model import Media, RpcFailure
from .tl_build import _DATED_REF, _EPOCH, derived_hash

if TYPE_CHECKING:
    from .world import Sender, World

MIB = 1024 * 1024
#: How long a dated file reference stays usable after the hour it was issued in.
REFERENCE_TTL = timedelta(hours=2)
#: Media kinds that are files (webpage previews and polls are not).
FILE_KINDS = frozenset({"photo", "video", "document", "audio", "voice"})
_PHOTO_THUMBS = ("m", "y")      # the sizes tl_build gives a photo: 'm' (a 320 px preview) and 'y' (full)
_LEGACY_REF = 0x02
_ACCESS_SALT = 13                # tl_build's salt for photo/document access hashes


# -- file references (pure) ----------------------------------------------------------------------------
def reference_status(reference: bytes, media_id: int, now: datetime) -> str:
    """``'ok'``, ``'expired'``, ``'invalid'`` (not this file's) or ``'empty'`` for a reference used at ``now``.

    >>> from datetime import UTC
    >>> from collector._simulated.tl_build import file_reference
    >>> t = datetime(2024, 1, 1, tzinfo=UTC)
    >>> [reference_status(file_reference(5, t), 5, t + timedelta(hours=h)) for h in (0, 2, 3)]
    ['ok', 'ok', 'expired']
    """
    if not reference:
        return "empty"
    if len(reference) < 9 or int.from_bytes(reference[1:9], "little") != media_id:
        return "invalid"
    if reference[0] == _LEGACY_REF and len(reference) == 9:
        return "ok"
    if reference[0] != _DATED_REF or len(reference) != 13:
        return "invalid"
    issued = _EPOCH + timedelta(hours=int.from_bytes(reference[9:13], "little"))
    if now < issued:
        return "invalid"                      # issued in the future: not one this server made
    return "ok" if now < issued + timedelta(hours=1) + REFERENCE_TTL else "expired"


# -- the files (pure) ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimFile:
    """A file the world's posts carry: its media record, whose bytes it has, and when it first appeared."""

    media: Media
    content_id: int           # equal for two media ids with identical bytes (a re-uploaded copy)
    first_posted_at: datetime


def file_size(media: Media, thumb: str = "") -> int:
    """Bytes of the file (photos: of size type ``thumb``), exactly as ``tl_build`` announces them."""
    if media.kind == "photo":
        size = media.size or 120_000
        return max(1, size // 16) if thumb == "m" else size
    return media.size or 0


def file_bytes(seed: int, content_id: int, thumb: str, size: int, offset: int, limit: int) -> bytes:
    """Bytes ``[offset, offset + limit)`` of a file (cut at ``size``), without building the rest of it.

    Each 1 MiB segment is a SHAKE-128 stream keyed by (seed, content, size type, segment); a request never
    crosses a segment boundary on Telegram, and this function joins segments when asked to.
    """
    end = min(size, offset + limit)
    out = []
    while offset < end:
        segment, within = divmod(offset, MIB)
        take = min(end - offset, MIB - within)
        out.append(_segment(seed, content_id, thumb, segment, min(MIB, size - segment * MIB))[within:within + take])
        offset += take
    return b"".join(out)


@lru_cache(maxsize=8)
def _segment(seed: int, content_id: int, thumb: str, segment: int, length: int) -> bytes:
    """One whole 1 MiB segment (shorter at the end of the file); cached, as downloads read it in parts."""
    key = struct.pack("<qq4sq", seed, content_id, thumb.encode()[:4], segment)
    return hashlib.shake_128(key).digest(length)


def expected_bytes(world: World, media: Media, thumb: str = "") -> bytes:
    """The whole file a download of ``media`` must produce (photos: size type ``thumb``, default the largest)."""
    if media.kind == "photo" and not thumb:
        thumb = _PHOTO_THUMBS[-1]
    found = file_index(world).get(media.media_id)
    content = found.content_id if found is not None else media.media_id
    size = file_size(media, thumb)
    return file_bytes(world.seed, content, thumb, size, 0, size)


# Per world, rebuilt when its channels or their message lists change. (World is an unhashable dataclass,
# so a WeakKeyDictionary cannot hold it; weakref.finalize drops the entry with the world.)
_INDEXES: dict[int, tuple[tuple[int, ...], dict[int, SimFile]]] = {}


def file_index(world: World) -> dict[int, SimFile]:
    """media id -> :class:`SimFile` for every file any message of the world carries (built once, O(messages))."""
    shape = tuple(len(ch.messages) for ch in world.channels.values())
    cached = _INDEXES.get(id(world))
    if cached is not None and cached[0] == shape:
        return cached[1]
    index: dict[int, SimFile] = {}
    for ch in world.channels.values():
        for m in ch.messages:
            media = m.media
            if media is None or media.kind not in FILE_KINDS:
                continue
            known = index.get(media.media_id)
            if known is None or m.posted_at < known.first_posted_at:
                index[media.media_id] = SimFile(media, media.media_id, m.posted_at)
    for (copy_cid, copy_mid), (orig_cid, orig_mid) in world.copies:
        copy, orig = world.message(copy_cid, copy_mid), world.message(orig_cid, orig_mid)
        if copy is None or orig is None or copy.media is None or orig.media is None:
            continue
        mine, theirs = index.get(copy.media.media_id), index.get(orig.media.media_id)
        if mine is not None and theirs is not None and file_size(mine.media) == file_size(theirs.media):
            index[copy.media.media_id] = SimFile(mine.media, theirs.content_id, mine.first_posted_at)
    if id(world) not in _INDEXES:
        weakref.finalize(world, _INDEXES.pop, id(world), None)
    _INDEXES[id(world)] = (shape, index)
    return index


# -- the handler -----------------------------------------------------------------------------------------
def _check_range(offset: int, limit: int, precise: bool) -> str | None:
    """The error Telegram gives for this offset/limit, or None when it is a valid request."""
    align = 1024 if precise else 4096
    if limit <= 0 or limit > MIB or limit % align or (not precise and MIB % limit):
        return "LIMIT_INVALID"
    if offset < 0 or offset % align or offset // MIB != (offset + limit - 1) // MIB:
        return "OFFSET_INVALID"
    return None


def _storage_type(media: Media) -> Any:
    if media.kind == "photo":
        return types.storage.FileJpeg()
    if (media.mime or "") == "video/mp4" or media.kind == "video":
        return types.storage.FileMp4()
    return types.storage.FileUnknown()


def handlers(sender: Sender) -> dict[type, Callable[[Any], Any]]:
    """The request types this module answers, each with its handler bound to ``sender``."""

    def get_file(req: functions.upload.GetFileRequest) -> types.upload.File:
        world = sender.world
        problem = _check_range(req.offset, req.limit, bool(req.precise))
        if problem is not None:
            raise RpcFailure(400, problem)
        loc = req.location
        if not isinstance(loc, types.InputPhotoFileLocation | types.InputDocumentFileLocation):
            raise RpcFailure(400, "LOCATION_INVALID")
        found = file_index(world).get(loc.id)
        is_photo = isinstance(loc, types.InputPhotoFileLocation)
        if (found is None or found.first_posted_at > world.now or (found.media.kind == "photo") != is_photo
                or loc.access_hash != derived_hash(loc.id, salt=_ACCESS_SALT)):
            raise RpcFailure(400, "FILE_ID_INVALID")
        thumb = loc.thumb_size
        if (is_photo and thumb not in _PHOTO_THUMBS) or (not is_photo and thumb != ""):
            raise RpcFailure(400, "LOCATION_INVALID")
        status = reference_status(loc.file_reference, loc.id, world.now)
        if status != "ok":
            raise RpcFailure(400, f"FILE_REFERENCE_{status.upper()}")
        media = found.media
        data = file_bytes(world.seed, found.content_id, thumb, file_size(media, thumb), req.offset, req.limit)
        mtime = int((found.first_posted_at - _EPOCH).total_seconds())
        return types.upload.File(type=_storage_type(media), mtime=mtime, bytes=data)

    return {functions.upload.GetFileRequest: get_file}
