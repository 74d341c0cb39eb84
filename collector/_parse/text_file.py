"""Text files that users hand over (config, channel lists, id lists, slot assignments): UTF-8, or a message.

One rule for every such file: UTF-8 text, a byte-order mark allowed. A file that is not says where it stops
being text (line and byte) and what it looks like (UTF-16, as Excel's "Unicode text" saves, or a binary file),
so the user knows which file to re-save and how. Pure: callers read the bytes and add what to do.

Example::

    >>> decode_text(b"\\xef\\xbb\\xbfdurov\\n")
    'durov\\n'
    >>> text_problem([b"a\\n", b"caf\\xe9\\n"])
    'line 2: not UTF-8 text (byte 5)'
"""

from __future__ import annotations

import io
from collections.abc import Iterable

#: What a file that starts with a UTF-16 byte-order mark is.
UTF16 = "UTF-16 text (Excel's \"Unicode text\"), not UTF-8"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class NotText(ValueError):
    """Bytes that are not UTF-8 text; the message says where and what they look like (no advice)."""


def text_problem(lines: Iterable[bytes]) -> str | None:
    """Where a file's ``lines`` (bytes, in order, each with its line end) stop being UTF-8 text; None when they
    are text. A NUL byte is not text either (UTF-16 without a byte-order mark decodes as UTF-8 but holds NULs).

    Linear, one line in memory at a time: a file object opened in binary mode is such an iterable.

    >>> text_problem(["x".encode("utf-16")])
    'UTF-16 text (Excel\\'s "Unicode text"), not UTF-8'
    >>> text_problem(["x\\n".encode("utf-16-le")])
    'line 1: a NUL byte (byte 1): UTF-16 text or not text at all'
    """
    offset = 0
    for number, raw in enumerate(lines, 1):
        if number == 1 and raw.startswith(_UTF16_BOMS):
            return UTF16
        try:
            raw.decode("utf-8")      # a line end never splits a character: line by line is exact
            bad = -1
        except UnicodeDecodeError as exc:
            bad = exc.start
        nul = raw.find(b"\0")
        if nul >= 0 and (bad < 0 or nul < bad):
            return f"line {number}: a NUL byte (byte {offset + nul:,}): UTF-16 text or not text at all"
        if bad >= 0:
            return f"line {number}: not UTF-8 text (byte {offset + bad:,})"
        offset += len(raw)
    return None


def decode_text(data: bytes) -> str:
    """``data`` as text: UTF-8, a leading byte-order mark dropped. Raises :class:`NotText` (its message from
    :func:`text_problem`) for anything else, NUL bytes included."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        raise NotText(text_problem(io.BytesIO(data)) or "not UTF-8 text")
    return text
