"""Text files that users hand over (config, channel lists, id lists, slot assignments): UTF-8, or a message.

One rule for every such file: UTF-8 text, a byte-order mark allowed. A file that is not says where it stops
being text (line and byte) and what it looks like (UTF-16, as Excel's "Unicode text" saves, or a binary file),
so the user knows which file to re-save and how. Pure: callers read the bytes and add what to do.

Example::

    >>> decode_text(b"\\xef\\xbb\\xbfdurov\\n")
    'durov\\n'
    >>> text_problem([b"a\\ncaf\\xe9\\n"])
    'line 2: not UTF-8 text (byte 5)'
"""

from __future__ import annotations

from collections.abc import Iterable

#: What a file that starts with a UTF-16 byte-order mark is.
UTF16 = "UTF-16 text (Excel's \"Unicode text\"), not UTF-8"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_NEWLINE = b"\n"


class NotText(ValueError):
    """Bytes that are not UTF-8 text; the message says where and what they look like (no advice)."""


def text_problem(blocks: Iterable[bytes]) -> str | None:
    r"""Where a file's bytes (``blocks``, in order, cut anywhere) stop being UTF-8 text; None when they are text. A
    NUL byte is not text either (UTF-16 without a byte-order mark decodes as UTF-8 but holds NULs).

    Linear, and memory bounded by a block: ``iter(lambda: f.read(1 << 20), b"")`` over a file opened in binary mode.

    >>> text_problem(["x".encode("utf-16")])
    'UTF-16 text (Excel\'s "Unicode text"), not UTF-8'
    >>> text_problem(["x\n".encode("utf-16-le")])
    'line 1: a NUL byte (byte 1): UTF-16 text or not text at all'
    >>> text_problem([b"ok\n\xc3", b"\xa9 \xff"])       # a character cut between two blocks is whole
    'line 2: not UTF-8 text (byte 6)'
    """
    offset, line, pending, first = 0, 1, b"", True
    for block in blocks:
        data = pending + block
        if first and len(data) >= 2:
            if data.startswith(_UTF16_BOMS):
                return UTF16
            first = False
        try:
            data.decode("utf-8")
            good, bad = len(data), -1
        except UnicodeDecodeError as exc:
            cut = exc.end == len(data) and exc.reason == "unexpected end of data"     # the block ended mid-character
            good, bad = exc.start, (-1 if cut else exc.start)
        nul = data.find(b"\0", 0, good if bad < 0 else bad)
        if nul >= 0:
            where = line + data.count(_NEWLINE, 0, nul)
            return f"line {where}: a NUL byte (byte {offset + nul:,}): UTF-16 text or not text at all"
        if bad >= 0:
            return f"line {line + data.count(_NEWLINE, 0, bad)}: not UTF-8 text (byte {offset + bad:,})"
        line += data.count(_NEWLINE, 0, good)
        offset += good
        pending = data[good:]
    if pending:                                             # the file ends mid-character
        return f"line {line}: not UTF-8 text (byte {offset:,})"
    return None


def decode_text(data: bytes) -> str:
    """``data`` as text: UTF-8, a leading byte-order mark dropped. Raises :class:`NotText` (its message from
    :func:`text_problem`) for anything else, NUL bytes included."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        raise NotText(text_problem([data]) or "not UTF-8 text")
    return text
