"""Streaming a large JSON document: navigate its structure, decode its big arrays in large batches.

Telegram Desktop exports run to gigabytes; loading one whole is not an option. The reader keeps a rolling
window of bytes (a few MB) and offers two ways through an array:

* :meth:`JsonStream.value` / :meth:`JsonStream.items`: one value at a time. The end of the value is
  found by a regular-expression scan over its strings and brackets, then the slice is decoded by orjson.
* :meth:`JsonStream.batches`: the fast path for arrays of objects (an export's ``messages``). It cuts a
  slice of about ``batch_bytes`` that ends where the next element starts, at a place that looks like the
  boundary between two messages (``}`` ``,`` ``{"id"``), wraps it in ``[`` ``]`` and decodes it with one
  ``orjson.loads``. The guess needs no trust: orjson accepts the wrapped slice only if it is a sequence of
  complete values, which is exactly a correct cut (a cut inside a string or a nested value leaves a
  string or a bracket open). A slice that is refused (a wrong guess, the array's end, a damaged element)
  is read value by value instead, which finds the end of the array or names the damaged place.

Why not a library: ``ijson`` (yajl2_c backend) streams one prefix at C speed, but an export needs each
chat's ``name``/``type``/``id`` together with its messages, in one pass, for one chat or for every chat of
an account export; ``ijson.items(f, "messages.item")`` cannot say which chat a message belongs to, and
``ijson.parse`` events driven from Python run ~25k messages/s. Measured on a generated 100,000-message
export (93 MB), CPU seconds for the decoding alone: ``ijson.items`` 1.1 s, the stdlib decoder value by
value over text 2-4 s, orjson over byte slices 0.45 s (bytes rather than text: 0.5 s less, no UTF-8
decode and re-encode). At the 20,000 messages/s the importer has to reach, that difference is a third of
the time budget.

Slices of 64 KB (about 70 messages) read from a 256 KB window: 2 MB slices from a 4 MB window took 2.5
times the CPU (1.2 s for the same file; the decoded objects of a small slice stay in the CPU's caches)
and 40 MB more memory.

Example::

    with open("result.json", "rb") as f:
        reader = JsonStream(f)
        reader.expect(b"{")
        for key in reader.object_keys():
            if key == "messages":
                reader.expect(b"[")
                for batch in reader.batches():
                    ...                                  # a list of decoded messages
            else:
                reader.value()
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
# A string (escapes included), a bracket, or a lone quote: a string the window cuts (or the text ends in).
# Possessive (``*+``): a long run of escapes must not leave one backtracking point per escape (an 84 MB
# string of backslashes took 2.8 GB with plain ``*``).
_TOKEN = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[\]{}]|"')
_SCALAR = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null")
# Where one message of a Telegram Desktop export ends and the next begins: every message object starts
# with its "id". Cannot occur inside a JSON string (an unescaped quote would end it); a match in a nested
# object is refused by the decoder.
_BOUNDARY = re.compile(rb'\}[ \t\r\n]*,[ \t\r\n]*(?=\{[ \t\r\n]*"id"[ \t\r\n]*:)')


# Limits on what one value may take (its bytes in the file; memory stays within a few times that). No
# Telegram message comes near MAX_ELEMENT (texts are at most 4,096 characters; the JSON of a message with
# the longest text and its entities is well under 100 KB).
MAX_VALUE = 256 << 20
MAX_ELEMENT = 1 << 20


class JsonStreamError(ValueError):
    """Invalid or incomplete JSON; ``truncated`` when the text ended before the document did."""

    def __init__(self, message: str, *, truncated: bool = False, not_utf8_at: int | None = None,
                 too_large: int | None = None) -> None:
        super().__init__(message)
        self.truncated = truncated
        self.not_utf8_at = not_utf8_at
        self.too_large = too_large              # the limit a value went past (bytes), if that was the problem


class JsonStream:
    """A cursor over a JSON document read from a binary file in chunks.

    Navigate with :meth:`peek`, :meth:`expect`, :meth:`object_keys`, :meth:`elements`; decode one whole
    value with :meth:`value`, the items of an array with :meth:`items` or :meth:`batches`.
    """

    def __init__(self, f: BinaryIO, *, chunk: int = 1 << 18, batch_bytes: int = 1 << 16,
                 max_value: int = MAX_VALUE, max_element: int = MAX_ELEMENT) -> None:
        self._f = f
        self._max_value = max_value              # bytes of any one value (memory stays bounded by it)
        self._max_element = max_element          # bytes of one element read by batches() (one message)
        self._chunk = chunk
        self._batch_bytes = batch_bytes
        self._buf = b""
        self._pos = 0
        self._consumed = 0          # bytes dropped from the front of the window
        self._eof = False
        self._started = False

    @property
    def offset(self) -> int:
        """Bytes read so far (for messages)."""
        return self._consumed + self._pos

    def _fill(self, at_least: int = 0) -> bool:
        """Read more (at least ``at_least`` bytes past the current end when the file has them)."""
        if self._eof:
            return False
        data = self._f.read(max(self._chunk, at_least))
        if not data:
            self._eof = True
            return False
        if not self._started:
            self._started = True
            if data.startswith(_BOM):
                data = data[len(_BOM):]
        self._consumed += self._pos
        self._buf = self._buf[self._pos:] + data
        self._pos = 0
        return True

    def peek(self) -> bytes:
        """The next non-blank byte (``b""`` at the end of the text), not consumed."""
        while True:
            buf, pos, n = self._buf, self._pos, len(self._buf)
            while pos < n and buf[pos] in _WS:
                pos += 1
            self._pos = pos
            if pos < n:
                return buf[pos:pos + 1]
            if not self._fill():
                return b""

    def expect(self, char: bytes) -> None:
        """Consume ``char`` (the next non-blank byte) or raise."""
        got = self.peek()
        if got != char:
            if got == b"":
                raise JsonStreamError(f"the text ends where {char.decode()!r} was expected", truncated=True)
            raise JsonStreamError(f"expected {char.decode()!r} at byte {self.offset}, found {_show(got)}")
        self._pos += 1

    def _value_end(self, limit: int | None = None) -> int:
        """The window index just past the value starting at the cursor, reading more as needed.

        A value longer than ``limit`` bytes (default: ``max_value``) raises (``too_large``) instead of
        growing the window further.
        """
        limit = self._max_value if limit is None else limit
        c = self.peek()
        if c == b"":
            raise JsonStreamError("the text ends where a value was expected", truncated=True)
        while True:
            buf, pos = self._buf, self._pos
            end = self._scan(buf, pos) if c in b'{["' else self._scalar_end(buf, pos)
            if end is not None and end - pos <= limit:
                return end
            if end is not None or len(buf) - pos > limit:
                raise JsonStreamError(f"the value at byte {self.offset} is larger than {limit:,} bytes",
                                      too_large=limit)
            if not self._fill(len(self._buf) - self._pos):        # double the window: linear overall
                raise JsonStreamError(f"the text ends inside a value (at byte {self.offset})", truncated=True)

    def _scan(self, buf: bytes, pos: int) -> int | None:
        depth = 0
        for m in _TOKEN.finditer(buf, pos):
            tok = m.group()
            t = tok[0]
            if t == 0x22:                                 # '"'
                if len(tok) == 1:
                    return None                           # a string the window cuts
                if depth == 0:
                    return m.end()
            elif t == 0x7B or t == 0x5B:                  # '{' '['
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return m.end()
                if depth < 0:
                    raise JsonStreamError(f"unbalanced {_show(tok)} at byte {self._consumed + m.start()}")
        return None

    def _scalar_end(self, buf: bytes, pos: int) -> int | None:
        m = _SCALAR.match(buf, pos)
        if m is None and (self._eof or len(buf) - pos >= 64):
            raise JsonStreamError(f"unexpected {_show(buf[pos:pos + 1])} at byte {self.offset}")
        if m is None or (m.end() == len(buf) and not self._eof):
            return None                                   # a number or literal the window may cut
        return m.end()

    def _decode(self, data: bytes, at: int) -> Any:
        """orjson.loads(data); errors name the byte where ``data`` starts in the document."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _decode_error(data, exc, at) from None

    def value(self, limit: int | None = None) -> Any:
        """Decode the next whole value (object, array, string, number, literal) of at most ``limit`` bytes."""
        end = self._value_end(limit)
        start = self._pos
        obj = self._decode(self._buf[start:end], self._consumed + start)
        self._pos = end
        return obj

    def object_keys(self) -> Iterator[str]:
        """The keys of an object whose ``{`` was consumed; the caller consumes each key's value."""
        first = True
        while True:
            c = self.peek()
            if c == b"}":
                self._pos += 1
                return
            if c == b"":
                raise JsonStreamError("the text ends inside an object", truncated=True)
            if not first:
                self.expect(b",")
            if self.peek() != b'"':
                raise JsonStreamError(f"an object key is not a string at byte {self.offset}")
            key = self.value()
            self.expect(b":")
            first = False
            yield key

    def elements(self) -> Iterator[None]:
        """Step through an array whose ``[`` was consumed; the caller consumes each element."""
        first = True
        while True:
            c = self.peek()
            if c == b"]":
                self._pos += 1
                return
            if c == b"":
                raise JsonStreamError("the text ends inside an array", truncated=True)
            if not first:
                self.expect(b",")
            first = False
            yield None

    def items(self) -> Iterator[Any]:
        """The decoded items of an array whose ``[`` was consumed, one by one."""
        for _ in self.elements():
            yield self.value(self._max_element)

    def batches(self) -> Iterator[list[Any]]:
        """The decoded items of an array whose ``[`` was consumed, in lists of about ``batch_bytes`` of text.

        Fast for arrays of export messages (see the module docstring); correct for any array.
        """
        slow_until = 0                                    # document offset before which cuts were refused
        for _ in self.elements():
            if self.offset >= slow_until:
                batch, refused_at = self._batch()
                if batch is not None:
                    yield batch
                    continue
                slow_until = refused_at
            yield [self.value(self._max_element)]

    def _batch(self) -> tuple[list[Any] | None, int]:
        """Decode elements from the cursor up to a boundary ~``batch_bytes`` on; (None, where) if refused."""
        want = self._pos + self._batch_bytes
        while len(self._buf) < want + (1 << 16) and self._fill(0):
            want = self._pos + self._batch_bytes
        m = _BOUNDARY.search(self._buf, min(want, len(self._buf)))
        if m is None:
            m = _BOUNDARY.search(self._buf, self._pos)
            if m is None:
                return None, self._consumed + len(self._buf)
            # fewer than batch_bytes left in the window: take the last boundary of it
            later = deque(_BOUNDARY.finditer(self._buf, m.end()), maxlen=1)
            m = later[0] if later else m
        cut = m.start() + 1                               # just past the '}'
        try:
            batch = orjson.loads(b"[" + self._buf[self._pos:cut] + b"]")
        except orjson.JSONDecodeError:
            return None, self._consumed + cut
        self._pos = cut                                   # elements() consumes the ','
        return batch, 0


def _show(b: bytes) -> str:
    return repr(b.decode("utf-8", "replace"))


def _decode_error(data: bytes, exc: orjson.JSONDecodeError, at: int) -> JsonStreamError:
    if "UTF-8" in exc.msg:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            return JsonStreamError(f"not UTF-8 text at byte {at + bad.start}", not_utf8_at=at + bad.start)
    where = at + len(data.decode("utf-8", "replace")[:exc.pos].encode("utf-8"))   # orjson counts characters
    if exc.msg == "unexpected end of data":
        return JsonStreamError(f"the text ends inside a value (at byte {where})", truncated=True)
    return JsonStreamError(f"{exc.msg} at byte {where}")
