"""Streaming a large JSON document value by value with the standard library's C decoder.

Telegram Desktop exports run to gigabytes; loading one whole is not an option. ``ijson`` streams, but
event by event it reads only ~25k export messages/s here; decoding each message as one value with
``json.JSONDecoder.raw_decode`` over a rolling text buffer is several times faster and keeps memory at
one buffer plus one value.

Example::

    with open("result.json", encoding="utf-8") as f:
        reader = JsonStream(f)
        reader.expect("{")
        for key in reader.object_keys():
            if key == "messages":
                reader.expect("[")
                for msg in reader.items():
                    ...
            else:
                reader.value()
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["JsonStream", "JsonStreamError"]

_WS = " \t\r\n"


class JsonStreamError(ValueError):
    """Invalid or incomplete JSON; ``truncated`` when the text ended before the document did."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


class JsonStream:
    """A cursor over a JSON text read in chunks. Navigate with :meth:`expect`, :meth:`keys`, :meth:`items`;
    decode one whole value with :meth:`value`."""

    def __init__(self, f: TextIO, *, chunk: int = 1 << 20) -> None:
        self._f = f
        self._chunk = chunk
        self._buf = ""
        self._pos = 0
        self._consumed = 0          # characters dropped from the front of the buffer
        self._eof = False
        self._decode = json.JSONDecoder().raw_decode

    @property
    def offset(self) -> int:
        """Characters read so far (for messages)."""
        return self._consumed + self._pos

    def _fill(self, at_least: int = 0) -> bool:
        if self._eof:
            return False
        data = self._f.read(max(self._chunk, at_least))
        if not data:
            self._eof = True
            return False
        self._consumed += self._pos
        self._buf = self._buf[self._pos:] + data
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the text), not consumed."""
        while True:
            buf, pos, n = self._buf, self._pos, len(self._buf)
            while pos < n and buf[pos] in _WS:
                pos += 1
            self._pos = pos
            if pos < n:
                return buf[pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        got = self.peek()
        if got != char:
            if got == "":
                raise JsonStreamError(f"the text ends where {char!r} was expected", truncated=True)
            raise JsonStreamError(f"expected {char!r} at character {self.offset}, found {got!r}")
        self._pos += 1

    def value(self) -> Any:
        """Decode the next whole value (object, array, string, number, literal)."""
        if self.peek() == "":
            raise JsonStreamError("the text ends where a value was expected", truncated=True)
        grow = 0
        while True:
            try:
                obj, end = self._decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # Cut by the buffer's end (a literal may be cut short too), or a string still open.
                incomplete = exc.pos >= len(self._buf) - 8 or exc.msg.startswith("Unterminated string")
                if incomplete and self._fill(grow):
                    grow = max(grow * 2, self._chunk)      # a value larger than a chunk: read more each time
                    continue
                if incomplete:
                    raise JsonStreamError(f"the text ends inside a value (at character {self.offset})",
                                          truncated=True) from None
                raise JsonStreamError(f"{exc.msg} at character {self._consumed + exc.pos}") from None
            if end >= len(self._buf) and not self._eof and self._fill():
                continue                                   # a number cut at the buffer's end: read on
            self._pos = end
            return obj

    def object_keys(self) -> Iterator[str]:
        """The keys of an object whose ``{`` was consumed; the caller consumes each key's value."""
        first = True
        while True:
            c = self.peek()
            if c == "}":
                self._pos += 1
                return
            if not first:
                self.expect(",")
            key = self.value()
            if not isinstance(key, str):
                raise JsonStreamError(f"an object key is not a string at character {self.offset}")
            self.expect(":")
            first = False
            yield key

    def elements(self) -> Iterator[None]:
        """Step through an array whose ``[`` was consumed; the caller consumes each element."""
        first = True
        while True:
            c = self.peek()
            if c == "]":
                self._pos += 1
                return
            if c == "":
                raise JsonStreamError("the text ends inside an array", truncated=True)
            if not first:
                self.expect(",")
            first = False
            yield None

    def items(self) -> Iterator[Any]:
        """The decoded items of an array whose ``[`` was consumed."""
        first = True
        while True:
            c = self.peek()
            if c == "]":
                self._pos += 1
                return
            if c == "":
                raise JsonStreamError("the text ends inside an array", truncated=True)
            if not first:
                self.expect(",")
            first = False
            yield self.value()
