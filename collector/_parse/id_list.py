"""Reading a dehydrated id list (``tgspread export --ids``, ``tgspread hydrate``): pure, no I/O but the file.

The list is CSV with a header naming at least ``message_id`` and one of ``channel_id`` / ``username``
(``posted_at`` and any other column are ignored). Everything in it is untrusted: ids must be positive
integers in Telegram's ranges, usernames Telegram's spelling (letters, digits, underscores, 4-32
characters), or the whole file is refused with the line that is wrong. Ids are grouped per channel
(8 bytes each: a list of 10 million ids needs about 80 MB), each channel's ids sorted and de-duplicated.

>>> import io
>>> ids = parse_id_list(io.StringIO("channel_id,username,message_id\\n10,durov,3\\n10,durov,1\\n,bbc_news,7\\n"))
>>> [(c.channel_id, c.username, list(c.message_ids)) for c in ids]
[(10, 'durov', [1, 3]), (None, 'bbc_news', [7])]
"""

from __future__ import annotations

import csv
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

#: The columns ``tgspread export --ids`` writes (``posted_at`` only with ``--with-dates``).
COLUMNS = ("channel_id", "username", "message_id", "posted_at")
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_MAX_MESSAGE_ID = 2**31 - 1
_MAX_CHANNEL_ID = 2**53


class IdListError(ValueError):
    """The file is not a usable id list; the message names the file, the line and what is wrong."""


@dataclass
class ChannelIds:
    """One channel's ids in the list: its numeric id and/or its username, as the list gives them."""

    channel_id: int | None
    username: str | None
    message_ids: array[int] = field(default_factory=lambda: array("q"))


def _int(value: str, what: str, top: int, where: str) -> int:
    text = value.strip()
    if not text.isdigit() or not 0 < int(text) <= top:
        raise IdListError(f"{where}: {what} must be a positive whole number, not {text[:40]!r}")
    return int(text)


def parse_id_list(rows: TextIO | Iterable[str], name: str = "<ids>") -> list[ChannelIds]:
    """The channels of an id list in the order they first appear, each with its ids sorted, duplicates
    dropped. Raises :class:`IdListError` for a missing header column or any bad value."""
    reader = csv.reader(rows)
    header = next(reader, None)
    if header is None:
        raise IdListError(f"{name}: empty file; an id list starts with a header such as "
                          "channel_id,username,message_id")
    columns = {h.strip().lower(): i for i, h in enumerate(header)}
    if "message_id" not in columns or not ({"channel_id", "username"} & columns.keys()):
        raise IdListError(f"{name}: line 1: the header needs message_id and channel_id or username, "
                          f"not {','.join(h[:20] for h in header[:6])!r}")
    at_message, at_channel, at_user = columns["message_id"], columns.get("channel_id"), columns.get("username")
    channels: dict[tuple[int | None, str | None], ChannelIds] = {}
    for line, row in enumerate(reader, 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{name}: line {line}"
        if len(row) < len(header):
            raise IdListError(f"{where}: {len(row)} fields, the header has {len(header)}")
        channel_id = (_int(row[at_channel], "channel_id", _MAX_CHANNEL_ID, where)
                      if at_channel is not None and row[at_channel].strip() else None)
        username = row[at_user].strip().lstrip("@") if at_user is not None and row[at_user].strip() else None
        if username is not None and not _USERNAME.match(username):
            raise IdListError(f"{where}: {username[:40]!r} is not a Telegram username")
        if channel_id is None and username is None:
            raise IdListError(f"{where}: neither channel_id nor username")
        key = (channel_id, username.lower() if username else None)
        entry = channels.get(key)
        if entry is None:
            entry = channels[key] = ChannelIds(channel_id, username)
        entry.message_ids.append(_int(row[at_message], "message_id", _MAX_MESSAGE_ID, where))
    for entry in channels.values():
        entry.message_ids = array("q", sorted(set(entry.message_ids)))
    return list(channels.values())


def read_id_list(path: Path) -> list[ChannelIds]:
    """:func:`parse_id_list` of a file (UTF-8; a byte-order mark is allowed)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return parse_id_list(f, str(path))
    except UnicodeDecodeError as exc:
        raise IdListError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise IdListError(f"{path}: not CSV ({exc})") from exc
