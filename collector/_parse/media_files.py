"""What media downloads are about, without any I/O: settings, sizes, kinds, file locations, the disk layout.

``collector._telegram.media`` does the downloading; ``collector._config`` reads the ``[media]`` table with these.

Example::

    >>> parse_size("20MB")
    20000000
    >>> str(layout_path("durov", datetime(2024, 5, 1, tzinfo=UTC), 42, "ab" * 32, "jpg"))
    'durov/2024/05/42-abababababab.jpg'
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from telethon.tl import types

#: ``posts.media_type`` values that are files (webpage previews, polls, locations, ... are not).
FILE_KINDS = ("photo", "video", "round_video", "animation", "audio", "voice", "document", "sticker")
#: What is downloaded unless told otherwise: every file kind but stickers.
DEFAULT_KINDS = ("photo", "video", "round_video", "animation", "audio", "voice", "document")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.I)
_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_EXTENSIONS = {"image/jpeg": "jpg", "video/mp4": "mp4", "audio/mpeg": "mp3", "audio/ogg": "ogg",
               "application/octet-stream": "bin", "image/webp": "webp", "application/x-tgsticker": "tgs"}


class MediaError(ValueError):
    """A download cannot start as asked (a channel not in the archive, a bad filter); one line, actionable."""


# -- settings (pure) ---------------------------------------------------------------------------------------
def parse_size(value: str | int) -> int:
    """``"20MB"``, ``"500k"``, ``"1.5GiB"``, ``"4096"`` or an int -> bytes (k/M/G/T are powers of 1000, with an
    ``i`` of 1024). Raises ``ValueError`` for anything else.

    >>> parse_size("20MB"), parse_size("1KiB"), parse_size(300)
    (20000000, 1024, 300)
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a size; write a number of bytes or e.g. 500k, 20MB, 1GB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is not a size: it must not be negative")
        return value
    m = _SIZE.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not a size; write a number of bytes or e.g. 500k, 20MB, 1GB")
    unit = m.group(2).lower()
    base = 1024 if "i" in unit else 1000
    factor = base ** "kmgt".index(unit[0]) * base if unit and unit[0] in "kmgt" else 1
    return int(float(m.group(1)) * factor)


def check_kinds(values: Iterable[str]) -> tuple[str, ...]:
    """Media types to download, validated against :data:`FILE_KINDS` (order kept, duplicates dropped)."""
    kinds = tuple(dict.fromkeys(str(v).strip().lower() for v in values if str(v).strip()))
    if not kinds:
        raise ValueError(f"no media types given; choose from {', '.join(FILE_KINDS)}")
    for kind in kinds:
        if kind not in FILE_KINDS:
            raise ValueError(f"{kind!r} is not a file type (webpage previews, polls and locations have no file); "
                             f"choose from {', '.join(FILE_KINDS)}")
    return kinds


@dataclass(frozen=True)
class MediaSettings:
    """The ``[media]`` table of the config: ``download`` (``tgspread run`` fetches files after collecting;
    ``tgspread media`` always does), ``dir`` (default: ``media/`` beside the archive), ``kinds``, ``max_size``."""

    download: bool = False
    dir: Path | None = None
    kinds: tuple[str, ...] = DEFAULT_KINDS
    max_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", check_kinds(self.kinds))
        if self.max_size is not None and self.max_size < 0:
            raise ValueError("max_size must not be negative")

    def root(self, archive: Path) -> Path:
        """Where files go: ``dir``, or ``media/`` in the archive's folder."""
        return self.dir if self.dir is not None else archive.parent / "media"


# -- file locations (pure) ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileLocation:
    """What ``upload.getFile`` needs for one file: ``kind`` 'photo' or 'document', the photo size ``thumb``
    (the largest; '' for documents), the data centre holding it and its announced ``size``."""

    kind: str
    media_id: int
    access_hash: int
    file_reference: bytes
    thumb: str
    dc_id: int | None
    size: int | None

    def input_location(self) -> types.InputPhotoFileLocation | types.InputDocumentFileLocation:
        if self.kind == "photo":
            return types.InputPhotoFileLocation(self.media_id, self.access_hash, self.file_reference, self.thumb)
        return types.InputDocumentFileLocation(self.media_id, self.access_hash, self.file_reference, "")

    def with_reference(self, reference: bytes) -> FileLocation:
        return FileLocation(self.kind, self.media_id, self.access_hash, reference, self.thumb, self.dc_id, self.size)


def _largest_size(sizes: Iterable[Any]) -> tuple[str, int | None] | None:
    """(type, bytes) of a photo's largest downloadable size; sizes are TL objects or their raw dicts."""
    best: tuple[int, str, int | None] | None = None
    for s in sizes:
        get = s.get if isinstance(s, dict) else (lambda k, o=s: getattr(o, k, None))
        name = get("_") if isinstance(s, dict) else type(s).__name__
        kind, w, h = get("type"), get("w"), get("h")
        if name not in ("PhotoSize", "PhotoSizeProgressive") or not kind or w is None or h is None:
            continue        # stripped, cached (inline bytes) and path sizes are not files to fetch
        size = get("size") if name == "PhotoSize" else max(get("sizes") or [0]) or None
        if best is None or w * h > best[0]:
            best = (w * h, kind, size)
    return None if best is None else (best[1], best[2])


def location_from_media(media: Any) -> FileLocation | None:
    """The file of a Telethon ``MessageMedia*`` (photo: its largest size), or None when it has none."""
    if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
        p = media.photo
        largest = _largest_size(p.sizes or [])
        if largest is None:
            return None
        return FileLocation("photo", p.id, p.access_hash, bytes(p.file_reference), largest[0], p.dc_id, largest[1])
    if isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
        d = media.document
        return FileLocation("document", d.id, d.access_hash, bytes(d.file_reference), "", d.dc_id, d.size)
    return None


def location_from_raw(raw: str | dict[str, Any] | None) -> FileLocation | None:
    """The file of an archived post's ``raw`` JSON (``collector._parse.normalize``: bytes are base64), or None."""
    if raw is None:
        return None
    message = json.loads(raw) if isinstance(raw, str) else raw
    media = message.get("media") or {}
    try:
        if media.get("_") == "MessageMediaPhoto" and (media.get("photo") or {}).get("_") == "Photo":
            p = media["photo"]
            largest = _largest_size(p.get("sizes") or [])
            if largest is None:
                return None
            return FileLocation("photo", int(p["id"]), int(p["access_hash"]), _b64(p.get("file_reference")),
                                largest[0], p.get("dc_id"), largest[1])
        if media.get("_") == "MessageMediaDocument" and (media.get("document") or {}).get("_") == "Document":
            d = media["document"]
            return FileLocation("document", int(d["id"]), int(d["access_hash"]), _b64(d.get("file_reference")),
                                "", d.get("dc_id"), d.get("size"))
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _b64(value: Any) -> bytes:
    return base64.b64decode(value) if isinstance(value, str) else b""


def file_extension(mime: str | None, filename: str | None, media_type: str) -> str:
    """A short lower-case extension for a stored file: the file name's, else the mime type's, else 'bin'.

    >>> file_extension("video/mp4", None, "video"), file_extension(None, "Report.PDF", "document")
    ('mp4', 'pdf')
    """
    if filename and "." in filename:
        ext = filename.rsplit(".", 1)[1].lower()
        if re.fullmatch(r"[a-z0-9]{1,8}", ext):
            return ext
    if media_type == "photo":
        return "jpg"
    if mime:
        known = _EXTENSIONS.get(mime.lower()) or (mimetypes.guess_extension(mime.lower()) or "").lstrip(".")
        if re.fullmatch(r"[a-z0-9]{1,8}", known or ""):
            return known
    return "bin"


def layout_path(channel: str, posted_at: datetime, message_id: int, sha256: str, ext: str) -> PurePosixPath:
    """Where a file lives under the media root: ``<channel>/<YYYY>/<MM>/<message id>-<sha256[:12]>.<ext>``.

    >>> str(layout_path("durov", datetime(2024, 3, 9, tzinfo=UTC), 42, "ab" * 32, "jpg"))
    'durov/2024/03/42-abababababab.jpg'

    A name that could leave the folder (``..``, ``.``, a leading dot or any ``/``) is made harmless:

    >>> str(layout_path("..", datetime(2024, 3, 9, tzinfo=UTC), 42, "ab" * 32, "jpg"))
    '__/2024/03/42-abababababab.jpg'
    """
    when = posted_at.astimezone(UTC)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", channel) or "channel"
    safe = re.sub(r"^\.+", lambda m: "_" * len(m.group()), safe)    # never ".", ".." nor a hidden folder
    return PurePosixPath(safe, f"{when:%Y}", f"{when:%m}", f"{message_id}-{sha256[:12]}.{ext}")


class UnsafeMediaPath(ValueError):
    """A media path that would leave its root folder (absolute, or with a ``..`` part)."""


def under_root(root: Path, rel: PurePosixPath | str) -> Path:
    """``root / rel``, checked to stay under ``root``: every media path (laid out, or read back from the archive,
    which a hostile copy may have written) goes through here before a file is written. Pure (no I/O).

    >>> str(under_root(Path("m/inner"), "durov/2024/03/1-ab.jpg"))
    'm/inner/durov/2024/03/1-ab.jpg'
    >>> under_root(Path("m/inner"), "../2024/03/1-ab.jpg")
    Traceback (most recent call last):
    ...
    collector._parse.media_files.UnsafeMediaPath: media path '../2024/03/1-ab.jpg' leaves the media folder m/inner
    """
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("..", ".", "") or "\\" in p for p in parts):
        raise UnsafeMediaPath(f"media path {str(rel)!r} leaves the media folder {root}")
    return root.joinpath(*parts)
