"""Telegram Desktop export messages -> archive post rows, as Arrow columns (pure, no I/O).

The importer feeds every message of a chat to :meth:`PostColumns.add` and turns each batch into one Arrow
table (``store.POST_SCHEMA``) with :meth:`PostColumns.table`. One tuple per message (no row dicts, one
append), transposed into columns per batch, timestamps kept as Unix seconds until Arrow converts them:
that is what lets an import reach 20,000+ messages/s; ``export_import.message_row`` gives the same
result for one message as a dict.

What a message becomes (the export's fields -> ``posts`` columns):

* ``date_unixtime``/``edited_unixtime`` (UTC) -> ``posted_at``/``edited_at``; ``edited`` = an edit time is
  present. The plain ``date`` field is the exporting computer's local time and is never used.
* ``text_entities`` (or ``text``) -> ``text``, ``hashtags`` (without ``#``), ``urls`` (links as written,
  text links by target), ``domains`` (their hosts, without ``www.``), ``mentions`` (without ``@``).
* ``reactions`` -> ``reactions_by`` (emoji, ``custom:<document id>`` or ``paid``, with counts) and
  their total in ``reactions``.
* ``forwarded_from_id`` naming a channel (``"channel3397140320"``) -> ``fwd_channel_id``, and
  ``forwarded_from`` -> ``fwd_from_name`` (a channel's public name). A forward from a person or a group
  (``"user..."``/``"chat..."``) keeps a keyed pseudonym of its id in ``fwd_from_name``, never the name or
  the id; a hidden sender (a name, no id) keeps its name in a channel (as the API does; ``tgspread export``
  pseudonymises it) and a pseudonym of the name in a group. Exports carry no origin message id or date.
* ``reply_to_message_id`` (same chat only) -> itself; with ``reply_to_peer_id`` naming another chat (a cross-chat
  reply) -> ``reply_to_peer_message_id``, and the channel's id -> ``reply_to_peer_id`` (`reply_origin`).
* channels: ``author`` (the signature) -> ``post_author``; groups: the sender id -> ``author_pseudonym``
  (keyed HMAC, see ``store.pseudonym``), never a name or an id.
* media fields -> ``media_type`` (the API's words), ``media_size``, ``media_mime``, ``media_duration``,
  ``media_width``, ``media_height``, ``media_filename``.

Example::

    cols = PostColumns(chat_id=1234567890, key=None, keep_raw=False)
    for msg in messages:
        cols.add(msg)                      # False for a service message
    table = cols.table(now=now, digest=file_sha256)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from analysis._urls import canonical_url
from collector._archive import upsert as store

# Export media_type -> posts.media_type (the API's vocabulary).
MEDIA_TYPES = {
    "video_file": "video", "video_message": "video", "animation": "animation", "voice_message": "voice",
    "audio_file": "audio", "sticker": "sticker",
}
# Keys that name people: dropped from the raw JSON kept with each row.
PERSON_KEYS = ("from", "from_id", "author", "actor", "actor_id", "members", "inviter", "contact_information",
               "contact_vcard", "saved_from", "via_bot", "forwarded_from", "forwarded_from_id")
# Keys that name a forward's origin: dropped from the raw JSON when the origin is a person or a group.
FORWARD_KEYS = ("forwarded_from", "forwarded_from_id")
# Presence of these keys names the media kind, first match wins (after "photo" and "media_type").
_MEDIA_KEYS = (("file", "document"), ("poll", "poll"), ("location_information", "geo"), ("place_name", "geo"),
               ("contact_information", "contact"), ("game_title", "game"), ("invoice_information", "invoice"))

# The Unix times a datetime can hold (years 1-9999): anything else is damage.
_MIN_UNIX, _MAX_UNIX = -62_135_596_800, 253_402_300_799
_SECONDS = pa.timestamp("s", tz="UTC")
_MAX_ID = 2**63 - 1
_EMPTY: tuple[()] = ()                # shared by every row without hashtags (urls, ...): no list per row
_MISSING: Any = object()
# canonical_url without its process-wide cache (PostColumns keeps one per batch).
_canonical_url = canonical_url.__wrapped__
_NO_ID = (" has no numeric 'id'; the file is damaged or not a Telegram Desktop export. Nothing was imported.")
_NO_UNIXTIME = (" has no 'date_unixtime': this export comes from an old Telegram Desktop whose dates are the "
                "exporting computer's local time without an offset. Export again with a current Telegram "
                "Desktop. Nothing was imported.")
# Columns an export never fills.
_ALWAYS_NULL = ("grouped_id", "views", "forwards", "replies", "fwd_message_id", "fwd_posted_at",
                "fwd_post_author", "fwd_username", "webpage_url", "webpage_title", "views_label", "views_low",
                "views_high")


class MessageError(Exception):
    """A message that cannot be read. ``str(exc)`` continues a sentence that names the message."""


def _seconds(value: Any, what: str) -> int:
    try:
        s = int(value)
    except (TypeError, ValueError, OverflowError):
        s = None
    if s is None or not _MIN_UNIX <= s <= _MAX_UNIX:
        raise MessageError(f": {what} {value!r} is not a Unix time; the file is damaged. Nothing was imported.")
    return s


def forward_origin(msg: dict[str, Any]) -> tuple[int | None, str | None]:
    """(origin channel id, person or group key) of an export message's forward; (None, None) for the rest.

    ``forwarded_from_id`` is ``"channel<N>"`` for a channel or supergroup (an id the archive's keys take),
    ``"user<N>"`` for a person and ``"chat<N>"`` for a basic group. A hidden sender has a name and no id:
    its key is ``"name:" + name``. Example: ``{"forwarded_from_id": "channel77"}`` -> ``(77, None)``.
    """
    given = msg.get("forwarded_from_id")
    if isinstance(given, str) and given:
        if given.startswith("channel"):
            digits = given[7:]
            if digits.isascii() and digits.isdigit() and len(digits) <= 18 and int(digits) > 0:
                return int(digits), None
        return None, given
    name = msg.get("forwarded_from")
    if isinstance(name, str) and name:
        return None, "name:" + name
    return None, None


def _channel_number(given: Any) -> int | None:
    """The bare id in an export's ``"channel<N>"`` peer string; None for anything else (``"user..."``, damage)."""
    if isinstance(given, str) and given.startswith("channel"):
        digits = given[7:]
        if digits.isascii() and digits.isdigit() and len(digits) <= 18 and int(digits) > 0:
            return int(digits)
    return None


def reply_origin(msg: dict[str, Any], chat_id: int) -> tuple[int | None, int | None, int | None]:
    """``(reply_to_message_id, reply_to_peer_id, reply_to_peer_message_id)`` of an export message.

    Desktop writes ``reply_to_message_id`` for every reply, and ``reply_to_peer_id`` (``"channel<N>"``,
    ``"chat<N>"``, ``"user<N>"``) beside it when the message replied to is in another chat. A reply within the
    chat fills the first; a cross-chat reply the other two: the channel's or supergroup's bare id (none for a
    person's or a basic group's chat, whose ids are not kept) and the message id there. Example::

        >>> reply_origin({"reply_to_message_id": 5, "reply_to_peer_id": "channel77"}, 42)
        (None, 77, 5)
        >>> reply_origin({"reply_to_message_id": 5, "reply_to_peer_id": "channel42"}, 42)
        (5, None, None)
    """
    target = msg.get("reply_to_message_id")
    if not isinstance(target, int) or isinstance(target, bool) or not 0 < target <= _MAX_ID:
        return None, None, None
    if "reply_to_peer_id" not in msg:
        return target, None, None
    other = _channel_number(msg["reply_to_peer_id"])
    if other == chat_id:
        return target, None, None
    return None, other, target


def raw_json(msg: dict[str, Any], *, person_level: bool) -> str:
    """The message as compact JSON, without what names people: reactors always; senders in groups;
    the origin of a forward from a person or a group always (a hidden sender's name in groups)."""
    clean = msg
    reactions = msg.get("reactions")
    if isinstance(reactions, list) and any(isinstance(r, dict) and "recent" in r for r in reactions):
        clean = dict(msg)
        clean["reactions"] = [{k: v for k, v in r.items() if k != "recent"} if isinstance(r, dict) else r
                              for r in reactions]
    if person_level or "contact_information" in msg:
        clean = {k: v for k, v in clean.items() if k not in PERSON_KEYS}
        for name in ("text", "text_entities"):
            parts = clean.get(name)
            if isinstance(parts, list):
                clean[name] = [{k: v for k, v in e.items() if k != "user_id"} if isinstance(e, dict) else e
                               for e in parts]
    elif "forwarded_from_id" in msg and forward_origin(msg)[0] is None:
        clean = {k: v for k, v in clean.items() if k not in FORWARD_KEYS}
    if "reply_to_peer_id" in clean and _channel_number(clean["reply_to_peer_id"]) is None:
        clean = {k: v for k, v in clean.items() if k != "reply_to_peer_id"}   # a person's or a group's chat
    return orjson.dumps(clean).decode("utf-8")


class PostColumns:
    """Post rows of one chat; ``table()`` makes one Arrow table of them.

    Each message becomes one tuple (the fields of ``_FIELDS``, media included), and ``table()``
    transposes the batch with ``zip``: one append per message instead of one per column. ``key`` set:
    the chat is a group, and senders become keyed pseudonyms. ``forward_key`` (in a channel) makes the
    pseudonyms of forwards from people and groups (without it, their origin is left out). A message id
    seen twice in a batch keeps its later edit as the row (one statement may not touch a key twice) and
    the other text in ``versions``.
    """

    def __init__(self, chat_id: int, *, key: bytes | None, keep_raw: bool,
                 forward_key: bytes | None = None) -> None:
        self.chat_id = chat_id
        self.key = key
        # pseudonymises forwards from people and groups (None: their origin is dropped); a group's own key
        self.forward_key = key if key is not None else forward_key
        self.forward_key_used = False       # a pseudonym was made with forward_key (the key must be stored)
        self.pins: list[int] = []           # ids named by pin_message service messages (not cleared per batch)
        self.keep_raw = keep_raw
        self.clear()

    def clear(self) -> None:
        """Forget the rows added so far (after ``table()``)."""
        self._rows: list[tuple[Any, ...]] = []
        self._index: dict[int, int] = {}
        # (id, text, edit time in Unix seconds or None) of texts a repeated id replaced in this batch
        self.versions: list[tuple[int, str, int | None]] = []
        self._dropped: list[int] = []
        # URL -> canonical_url(URL) for this batch. Not the process-wide cache of urls.py: a bulk import
        # of mostly distinct links would fill its 65,536 entries (~25 MB) for nothing.
        self._urls: dict[str, tuple[str, str] | None] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, msg: Any) -> bool:
        """Add one export message; False (nothing added) for a service message. Raises :class:`MessageError`."""
        if not isinstance(msg, dict):
            raise MessageError(_NO_ID)
        get = msg.get
        mid = get("id")
        if not isinstance(mid, int) or isinstance(mid, bool):
            raise MessageError(_NO_ID)
        if not 0 < mid <= _MAX_ID:
            raise MessageError(f" has message id {mid}; Telegram's message ids are positive: the file is damaged. "
                               "Nothing was imported.")
        if get("type", "message") != "message":
            if get("action") == "pin_message":
                target = get("message_id")
                if isinstance(target, int) and not isinstance(target, bool) and 0 < target <= _MAX_ID:
                    self.pins.append(target)
            return False
        posted = get("date_unixtime", _MISSING)
        if posted is _MISSING:
            raise MessageError(_NO_UNIXTIME)
        if posted is not None:
            posted = _seconds(posted, "date_unixtime")
        edited = get("edited_unixtime")
        if edited is not None:
            edited = _seconds(edited, "edited_unixtime")

        # text and the entities that matter
        entities = get("text_entities")
        raw_text = get("text", "")
        if isinstance(raw_text, int | float) and not isinstance(raw_text, bool):
            raw_text = str(raw_text)                  # a number as text (orjson gave it as a number)
        if not isinstance(entities, list):
            entities = [p if isinstance(p, dict) else {"type": "plain", "text": p}
                        for p in (raw_text if isinstance(raw_text, list) else [raw_text])]
        hashtags: list[str] | tuple[()] = _EMPTY
        urls: list[str] | tuple[()] = _EMPTY
        mentions: list[str] | tuple[()] = _EMPTY
        if entities:
            # appended in place (a copy per entity was quadratic: 400k entities took 122 s)
            tags: list[str] = []
            links: list[str] = []
            names: list[str] = []
            parts: list[str] = []
            for ent in entities:
                if not isinstance(ent, dict):
                    continue
                t = ent.get("text", "")
                if type(t) is not str:
                    t = str(t)
                parts.append(t)
                kind = ent.get("type")
                if kind == "plain":
                    continue
                if kind == "hashtag":
                    tags.append(t[1:] if t.startswith("#") else t)
                elif kind == "link":
                    links.append(t)
                elif kind == "text_link":
                    href = ent.get("href")
                    if isinstance(href, str) and href:
                        links.append(href)
                elif kind == "mention":
                    names.append(t[1:] if t.startswith("@") else t)
            text = "".join(parts)
            hashtags, urls, mentions = tags or _EMPTY, links or _EMPTY, names or _EMPTY
        else:
            text = raw_text if isinstance(raw_text, str) else ""
        if not text and "poll" in msg:              # a poll's words are its question (as the API path has it)
            poll = get("poll")
            question = poll.get("question") if isinstance(poll, dict) else None
            if isinstance(question, str):
                text = question

        # canonical_urls and domains, by analysis._urls' rules (canonical_urls / url_domains)
        canonical: list[str] | tuple[()] = _EMPTY
        domains: list[str] | tuple[()] = _EMPTY
        if urls:
            cache = self._urls
            canonical = []
            seen: dict[str, None] = {}
            for u in urls:
                hit = cache.get(u, _MISSING)
                if hit is _MISSING:
                    hit = cache[u] = _canonical_url(u)
                if hit is None:
                    canonical.append("")
                else:
                    canonical.append(hit[0])
                    seen[hit[1]] = None
            domains = list(seen)

        # reactions
        value = get("reactions")
        reactions_by: list[tuple[Any, int]] | None = None
        total: int | None = None
        if isinstance(value, list):
            reactions_by = []
            total = 0
            for r in value:
                if not isinstance(r, dict):
                    continue
                count = r.get("count")
                if not isinstance(count, int):
                    continue
                kind = r.get("type")
                if kind == "emoji":
                    name = r.get("emoji")
                elif kind == "custom_emoji":
                    name = f"custom:{r.get('document_id')}"
                elif kind == "paid":
                    name = "paid"
                else:
                    name = str(kind)
                reactions_by.append((name, count))
                total += count

        # sender
        if self.key is not None:
            from_id = get("from_id")
            author = (store.pseudonym(self.key, from_id) if isinstance(from_id, str) and from_id
                      and not from_id.startswith("channel") else None)
        else:
            author = get("author")

        # forward origin
        fwd_channel: int | None = None
        fwd_name = get("forwarded_from")
        if fwd_name is not None or "forwarded_from_id" in msg:
            fwd_channel, person = forward_origin(msg)
            if person is not None and (self.key is not None or not person.startswith("name:")):
                fwd_key = self.forward_key
                fwd_name = store.pseudonym(fwd_key, person) if fwd_key is not None else None
                self.forward_key_used = fwd_key is not None
            elif fwd_name is not None and not isinstance(fwd_name, str):
                fwd_name = str(fwd_name)

        index = self._index
        if mid in index:
            # the same id twice in a batch: the later edit is the post, the other text a version
            kept = self._rows[index[mid]]
            if _version_time(edited, posted) < _version_time(kept[2], kept[1]):
                if text != kept[3]:
                    self.versions.append((mid, text, edited))
                return True
            if text != kept[3]:
                self.versions.append((mid, kept[3], kept[2]))
            self._dropped.append(index[mid])
        index[mid] = len(self._rows)
        self._rows.append((
            mid, posted, edited, text, hashtags, urls, canonical, domains, mentions, total, reactions_by,
            fwd_name, fwd_channel, *reply_origin(msg, self.chat_id), author,
            raw_json(msg, person_level=self.key is not None) if self.keep_raw else None,
        ) + (_media(msg) or _NO_MEDIA))
        return True

    def table(self, *, now: datetime, digest: str | None) -> pa.Table:
        """The rows added since the last ``clear()`` as one table of ``store.POST_SCHEMA``."""
        n = len(self._rows)
        schema = store.POST_SCHEMA
        c = dict(zip(_FIELDS, zip(*self._rows, strict=True), strict=True)) if n else dict.fromkeys(_FIELDS, ())
        edited_at = pa.array(c["edited_at"], _SECONDS).cast(schema.field("edited_at").type)
        cols: dict[str, pa.Array] = {
            "channel_id": pa.repeat(pa.scalar(self.chat_id, pa.int64()), n),
            "posted_at": pa.array(c["posted_at"], _SECONDS).cast(schema.field("posted_at").type),
            "edited_at": edited_at,
            "post_author": (pa.array(c["author"], pa.string()) if self.key is None
                            else pa.nulls(n, pa.string())),
            "author_pseudonym": (pa.array(c["author"], pa.string()) if self.key is not None
                                 else pa.nulls(n, pa.string())),
            "edited": pc.is_valid(edited_at),
            "source": pa.repeat(pa.scalar("export", pa.string()), n),
            "raw": pa.array(c["raw"], pa.string()) if self.keep_raw else pa.nulls(n, pa.string()),
            "import_sha256": pa.repeat(pa.scalar(digest, pa.string()), n),
            "first_seen_at": pa.repeat(pa.scalar(now, schema.field("first_seen_at").type), n),
            "last_seen_at": pa.repeat(pa.scalar(now, schema.field("last_seen_at").type), n),
        }
        for name in _DIRECT:
            cols[name] = pa.array(c[name], schema.field(name).type)
        for name in _ALWAYS_NULL:
            cols[name] = pa.nulls(n, schema.field(name).type)
        table = pa.table([cols[f.name] for f in schema], schema=schema)
        if self._dropped:
            keep = [True] * n
            for i in self._dropped:
                keep[i] = False
            table = table.filter(pa.array(keep))
        return table


def _version_time(edited: int | None, posted: int | None) -> float:
    """What orders two states of one message: its edit time, else its post time (unknown: earliest)."""
    value = edited if edited is not None else posted
    return float("-inf") if value is None else float(value)


_MEDIA_COLUMNS = ("media_type", "media_size", "media_mime", "media_duration", "media_width", "media_height",
                  "media_filename")
_NO_MEDIA: tuple[Any, ...] = (None,) * len(_MEDIA_COLUMNS)
# Any of these keys means media (see _media).
_MEDIA_ANY = frozenset({"photo", "media_type", *(name for name, _ in _MEDIA_KEYS)})
# The fields of a row tuple, in order.
_FIELDS = ("message_id", "posted_at", "edited_at", "text", "hashtags", "urls", "canonical_urls", "domains",
           "mentions", "reactions", "reactions_by", "fwd_from_name", "fwd_channel_id", "reply_to_message_id",
           "reply_to_peer_id", "reply_to_peer_message_id", "author", "raw",
           *_MEDIA_COLUMNS)
# The fields that are posts columns as they are.
_DIRECT = ("message_id", "text", "reactions", "reactions_by", "hashtags", "urls", "canonical_urls", "domains",
           "mentions", "fwd_from_name", "fwd_channel_id", "reply_to_message_id", "reply_to_peer_id",
           "reply_to_peer_message_id", *_MEDIA_COLUMNS)


def _media(msg: dict[str, Any]) -> tuple[Any, ...] | None:
    """(media_type, size, mime, duration, width, height, filename) of a message; None without media."""
    if _MEDIA_ANY.isdisjoint(msg):                    # most messages: one pass over the keys in C
        return None
    size: Any = None
    if "photo" in msg:
        kind = "photo"
        size = msg.get("photo_file_size", msg.get("file_size"))
    elif "media_type" in msg:
        given = msg["media_type"]
        kind = MEDIA_TYPES.get(given, given) if isinstance(given, str) else str(given)
    else:
        for name, found in _MEDIA_KEYS:
            if name in msg:
                kind = found
                break
        else:
            return None
    if kind != "photo":
        size = msg.get("file_size")
    duration = msg.get("duration_seconds")
    width = msg.get("width")
    height = msg.get("height")
    return (kind, size if isinstance(size, int) else None, msg.get("mime_type"),
            float(duration) if isinstance(duration, int | float) else None,
            width if isinstance(width, int) else None, height if isinstance(height, int) else None,
            msg.get("file_name"))

