"""Reading a dehydrated id list (``tgspread export --ids``, ``tgspread hydrate``): pure, no I/O but the file.

The list is UTF-8 CSV with a header naming at least ``message_id`` and one of ``channel_id`` / ``username``
(``posted_at`` and any other named column are ignored); every line has exactly one field per header column.
Everything in it is untrusted: ids must be positive whole numbers (ASCII digits) in Telegram's ranges (a
message id fits in 32 bits), usernames Telegram's spelling (letters, digits, underscores, 4-32 characters),
or the whole file is refused with the line that is wrong. Ids are grouped per channel (8 bytes each: a list
of 10 million ids needs about 80 MB, twice that while a channel's ids are sorted), each channel's ids sorted and
de-duplicated: the rows of one channel_id are
one channel (its first username kept), and rows with a username alone join the channel listed with that
username and an id.

>>> import io
>>> ids = parse_id_list(io.StringIO("channel_id,username,message_id\\n10,durov,3\\n10,durov,1\\n,bbc_news,7\\n"
...                                 ",Durov,2\\n"))
>>> [(c.channel_id, c.username, list(c.message_ids)) for c in ids]
[(10, 'durov', [1, 2, 3]), (None, 'bbc_news', [7])]
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from collector._parse.channel_ref import username_problem
from collector._parse.text_file import text_problem

#: The columns ``tgspread export --ids`` writes (``posted_at`` only with ``--with-dates``).
COLUMNS = ("channel_id", "username", "message_id", "posted_at")
_MAX_MESSAGE_ID = 2**31 - 1      # Telegram's message ids are signed 32-bit integers
_MAX_CHANNEL_ID = 2**53
#: What to do with a file that is not UTF-8 (Excel's "CSV" and "Unicode text" are not).
SAVE_AS_UTF8 = "save it as UTF-8 (in Excel or LibreOffice: CSV UTF-8) and run again"


class IdListError(ValueError):
    """The file is not a usable id list; the message names the file, the line and what is wrong."""


@dataclass
class ChannelIds:
    """One channel's ids in the list: its numeric id and/or its username, as the list gives them."""

    channel_id: int | None
    username: str | None
    message_ids: array[int] = field(default_factory=lambda: array("q"))


def _channel_id(value: str, where: str) -> int:
    """A channel id as the list gives it: digits, or the ``-100<digits>`` form Bot API tools print."""
    text = value.strip()
    if text.startswith("-100") and text[4:].isascii() and text[4:].isdigit():
        return _int(text[4:], "channel_id", _MAX_CHANNEL_ID, where)      # as collect and channels add read it
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise IdListError(f"{where}: channel_id {text[:40]} is negative without the -100 of a channel (Bot API "
                          "ids of channels start with -100; others are users' or small groups'): give the "
                          "channel's id, or its username in the username column")
    return _int(text, "channel_id", _MAX_CHANNEL_ID, where)


def _int(value: str, what: str, top: int, where: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or text.strip("0") == "":
        raise IdListError(f"{where}: {what} must be a positive whole number (digits 0-9), not {text[:40]!r}")
    digits = text.lstrip("0")
    if len(digits) > len(str(top)) or int(digits) > top:   # the length first: int() of 5,000 digits is refused
        shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text):,} digits)"
        limit = (f"Telegram's message ids are 32-bit numbers, at most {top:,}" if what == "message_id" else
                 f"Telegram's channel ids are at most {top:,}")
        raise IdListError(f"{where}: {what} {shown} is too large: {limit}")
    return int(digits)


def parse_id_list(rows: TextIO | Iterable[str], name: str = "<ids>") -> list[ChannelIds]:
    """The channels of an id list in the order they first appear, each with its ids sorted, duplicates
    dropped. Raises :class:`IdListError` for a missing header column, a line whose number of fields differs
    from the header's, text that is not CSV, or any bad value, naming the line."""
    reader = csv.reader(rows)

    def numbered() -> Iterator[tuple[int, list[str]]]:
        """Each row with the line it starts on (a quoted field may hold line breaks)."""
        end = 0
        for row in reader:
            yield end + 1, row
            end = reader.line_num

    try:
        return _parse(numbered(), name)
    except csv.Error as exc:
        raise IdListError(f"{name}: line {max(reader.line_num, 1)}: {_csv_problem(exc)}") from None


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return (f"a field longer than {csv.field_size_limit():,} characters: an id list holds ids and usernames; "
                "is this the right file?")
    if "NUL" in text:
        return f"a NUL byte: UTF-16 text or not text at all; {SAVE_AS_UTF8}"
    return f"not CSV ({text})"


def _parse(rows: Iterator[tuple[int, list[str]]], name: str) -> list[ChannelIds]:
    _, header = next(rows, (0, None))
    if header is None:
        raise IdListError(f"{name}: empty file; an id list starts with a header such as "
                          "channel_id,username,message_id")
    if any("\0" in h for h in header):
        raise IdListError(f"{name}: line 1: NUL bytes: UTF-16 text (Excel's \"Unicode text\") or not text at all; "
                          f"{SAVE_AS_UTF8}")
    names = [h.strip().lstrip("\ufeff").lower() for h in header]       # a byte-order mark
    twice = sorted({h for h in names if h and names.count(h) > 1})
    if twice:
        raise IdListError(f"{name}: line 1: the header names {', '.join(repr(h[:20]) for h in twice[:3])} twice; "
                          "each column once (which one holds the ids?)")
    columns = {h: i for i, h in enumerate(names)}
    if "message_id" not in columns or not ({"channel_id", "username"} & columns.keys()):
        raise IdListError(f"{name}: line 1: the header needs message_id and channel_id or username, "
                          f"not {','.join(h[:20] for h in header[:6])!r}")
    at_message, at_channel, at_user = columns["message_id"], columns.get("channel_id"), columns.get("username")
    channels: dict[int | str, ChannelIds] = {}     # by channel id, else by lower-case username
    for line, row in rows:
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{name}: line {line}"
        if len(row) != len(header):
            raise IdListError(f"{where}: {len(row)} fields, the header has {len(header)}: every line needs one "
                              "field per header column (quote a field that holds a comma)")
        channel_id = (_channel_id(row[at_channel], where)
                      if at_channel is not None and row[at_channel].strip() else None)
        username = row[at_user].strip().lstrip("@") if at_user is not None and row[at_user].strip() else None
        if username is not None and (problem := username_problem(username)) is not None:
            raise IdListError(f"{where}: {username[:40]!r} is not a Telegram username: {problem}")
        if channel_id is None and username is None:
            raise IdListError(f"{where}: neither channel_id nor username")
        key: int | str = channel_id if channel_id is not None else str(username).lower()
        entry = channels.get(key)
        if entry is None:
            entry = channels[key] = ChannelIds(channel_id, username)
        entry.username = entry.username or username
        entry.message_ids.append(_int(row[at_message], "message_id", _MAX_MESSAGE_ID, where))
    return _merged(channels)


def _merged(channels: dict[int | str, ChannelIds]) -> list[ChannelIds]:
    """Each channel once, ids sorted and unique: a username-only entry joins the one channel listed with that
    username and an id (two such channels: it stays apart, the pass resolves the username)."""
    named: dict[str, list[ChannelIds]] = {}
    for entry in channels.values():
        if entry.channel_id is not None and entry.username:
            named.setdefault(entry.username.lower(), []).append(entry)
    out = []
    for key, entry in channels.items():
        twins = named.get(key, []) if isinstance(key, str) else []
        if len(twins) == 1:
            twins[0].message_ids.extend(entry.message_ids)
            continue
        out.append(entry)
    for entry in out:
        entry.message_ids = _sorted_unique(entry.message_ids)
    return out


def _sorted_unique(ids: array[int]) -> array[int]:
    """``ids`` sorted, each once: sorted in place, then the repeats left out. 8 bytes an id and two copies at the
    peak (10 million ids: 101 -> 264 MB), where ``sorted(set(...))`` of Python ints took 728 MB and
    ``numpy.unique`` 646 MB."""
    if len(ids) < 2:
        return ids
    view = np.frombuffer(ids, dtype=np.int64)
    view.sort()
    keep = np.empty(len(view), dtype=bool)
    keep[0] = True
    np.not_equal(view[1:], view[:-1], out=keep[1:])
    return array("q", view[keep].tobytes())


def read_id_list(path: Path) -> list[ChannelIds]:
    """:func:`parse_id_list` of a file (UTF-8; a byte-order mark is allowed). Raises ``FileNotFoundError``
    for a missing file and :class:`IdListError` for one that cannot be read or is not a usable id list."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return parse_id_list(f, str(path))
    except UnicodeDecodeError:
        raise IdListError(_not_utf8(path)) from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IdListError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _not_utf8(path: Path) -> str:
    """Where a file that failed to decode stops being UTF-8: a second, binary read (the text reader decodes in
    chunks, so its error does not say where in the file)."""
    with open(path, "rb") as f:
        problem = text_problem(iter(lambda: f.read(1 << 20), b""))
    return f"{path}: {problem or 'not UTF-8 text'}; {SAVE_AS_UTF8}"
