"""Pure conversion of Telethon TL objects into archive rows (no I/O, no client needed).

``normalize_message`` turns one ``types.Message`` of a channel into a ``posts`` row, a dict whose keys are
exactly `collector._archive.rows.POSTS_SCHEMA`'s names; ``normalize_channel`` and ``normalize_peer`` do the same
for ``channels`` and ``peers``. Service messages and empty messages are not posts and give ``None``.

Choices made here (the raw payload keeps everything, so each can be revisited later):

- ``text`` is the raw ``Message.message`` ('' for media-only posts), never Telethon's markdown ``.text``; a
  poll without a message (the usual case) has its question as its text (so do web previews and exports).
- Entity offsets and lengths count UTF-16 code units (Telegram's rule); `entity_texts` slices accordingly.
- ``hashtags``: hashtag entities without the leading ``#``, case kept as written, duplicates removed
  (exact match), order of first appearance.
- ``mentions``: ``@username`` mention entities without ``@``, lower-cased (usernames are case-insensitive),
  deduplicated, order kept. Mentions of people without a username (``MessageEntityMentionName``) carry a
  user id and are not kept.
- ``urls``: the text of URL entities and the targets of text links, deduplicated, order kept, as written.
  A link preview's URL is not added (it is in ``webpage_url``, and it is usually one of the urls anyway).
- ``domains``: `canonical_domain` of each url (lower-case host without ``www.``, trailing dots or port),
  deduplicated, order kept; urls naming no web host (``tg://``, ``mailto:``) add none.
- ``canonical_urls``: `analysis._urls.canonical_urls` of ``urls``: the canonical form of each url, same
  order, ``''`` for a url naming no web host. Its domain is the one in ``domains`` (one rule for both).
- ``reactions``: the total over all reactions, 0 when the message carries no reactions block (Telegram
  omits it when there are none); ``reactions_by`` lists ``{reaction, count}`` with the emoji itself,
  ``'custom:<document_id>'`` for custom emoji and ``'paid'`` for paid (star) reactions.
- ``fwd_*`` come from the forward header. Only a channel origin keeps its id; a forward from a person keeps
  no id (private individuals are not identified: user ids are never stored), only the displayed name if
  Telegram sends one.
- ``reply_to_message_id`` is set only for replies within the same channel. A reply to a message in another
  chat sets ``reply_to_peer_id`` (that channel's or supergroup's bare id; NULL for a private chat or a basic
  group) and ``reply_to_peer_message_id`` (the message's id there) instead (`reply_fields`).
- ``raw`` is the message as JSON, in the shape of Telethon's ``to_dict()`` (``"_"`` names the TL type),
  with bytes base64-encoded and datetimes in ISO 8601; keys whose value is ``None`` are left out (a missing
  key means None), so are ``true`` flags that are not set (as on the wire), and identifiers of people
  (user ids, a shared contact's phone number) are removed (see `tl_to_jsonable`). ``tl_layer`` and
  ``telethon_version`` say what produced it.

Example::

    row = normalize_message(msg, channel_id=1234567890)
    row["hashtags"], row["domains"], row["reactions"]
"""

from __future__ import annotations

import base64
import inspect
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import telethon
from telethon.tl import types
from telethon.tl.alltlobjects import LAYER
from telethon.tl.tlobject import TLObject

from analysis._urls import canonical_url
from collector._archive.rows import POSTS_SCHEMA

try:  # orjson is ~3x faster than the standard library and gives byte-identical output here.
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is not installed
    orjson = None  # type: ignore[assignment]

#: TL layer of the installed Telethon; stored with every raw payload.
TL_LAYER: int = LAYER
#: Version of the installed Telethon; stored with every raw payload.
TELETHON_VERSION: str = telethon.__version__


# --------------------------------------------------------------------------------------------- raw JSON

# Fields that identify people, removed from raw payloads: (TL type name, field name).
# A ``PeerUser`` stays visible as ``{"_": "PeerUser"}``, so the raw still says "a person", not who.
_SCRUB: dict[str, frozenset[str]] = {
    "PeerUser": frozenset({"user_id"}),
    "MessageEntityMentionName": frozenset({"user_id"}),
    "InputMessageEntityMentionName": frozenset({"user_id"}),
    "MessageMediaContact": frozenset({"user_id", "phone_number", "vcard"}),
    "MessageMediaGiveawayResults": frozenset({"winners"}),
    "ChatInviteExported": frozenset({"admin_id"}),
    "ChannelFull": frozenset({"recent_requesters"}),
}

# Annotations (as Telethon's generated constructors spell them) of fields holding plain values.
_PLAIN = ("int", "str", "bytes", "float", "bool", "datetime.datetime")
_SCALAR_ANNOTATIONS = frozenset([f"<class '{t}'>" for t in _PLAIN] + [f"typing.Optional[{t}]" for t in _PLAIN])
_LIST_ANNOTATIONS = frozenset(
    [f"typing.List[{t}]" for t in _PLAIN] + [f"typing.Optional[typing.List[{t}]]" for t in _PLAIN]
)


class _Converters(dict[type, Callable[[Any], Any]]):
    """class -> function giving the JSON-ready form of its instances, made on first use.

    TL classes get a compiled dumper (`_make_dumper`), lists convert their items, anything else is
    returned as it is. One ``_CONVERT[v.__class__](v)`` then serves every kind of value.
    """

    def __missing__(self, cls: type) -> Callable[[Any], Any]:
        if issubclass(cls, TLObject):
            return _make_dumper(cls)
        converter = _convert_list if cls is list else _identity
        self[cls] = converter
        return converter


def _identity(value: Any) -> Any:
    return value


def _convert_list(values: list[Any]) -> list[Any]:
    return [_CONVERT[x.__class__](x) for x in values]


_CONVERT = _Converters()


def _tl_name(cls: type) -> tuple[type, str]:
    """The generated TL class behind ``cls`` (Telethon patches some, e.g. Message) and its TL name."""
    generated = next(
        (c for c in cls.__mro__ if c.__module__.startswith(("telethon.tl.types", "telethon.tl.functions"))),
        cls,
    )
    return generated, generated.__name__


_TRUE_FLAG = re.compile(r"^\s*_(\w+) = bool\(flags\d* & \d+\)$", re.MULTILINE)


def _true_flags(generated: type) -> frozenset[str]:
    """Fields of TL type ``flags.N?true``: set or not set, carried by the flags word only.

    Read from the generated ``from_reader`` (``_out = bool(flags & 2)``); empty if its source is
    unavailable, in which case such fields are simply written out as ``false`` too.
    """
    try:
        source = inspect.getsource(generated.from_reader)  # type: ignore[attr-defined]
    except (OSError, TypeError, AttributeError):
        return frozenset()
    return frozenset(_TRUE_FLAG.findall(source))


def _make_dumper(cls: type) -> Callable[[Any], dict[str, Any]]:
    """Compile (once per class) a function TLObject -> dict, like Telethon's generated ``to_dict``.

    Telethon generates ``to_dict`` the same way; ours leaves out None values, unset ``true`` flags and
    scrubbed fields, and does no type test for fields whose annotation says they hold plain values,
    which makes it ~2x faster than a generic walk (see ``benchmarks/normalize_bench.py``).
    """
    generated, name = _tl_name(cls)
    scrub = _SCRUB.get(name, frozenset())
    flags = _true_flags(generated)
    lines = ["def dump(o):", f"    d = {{'_': {name!r}}}"]
    init = generated.__dict__.get("__init__")  # constructors without fields define none
    params = list(inspect.signature(init).parameters.items())[1:] if init is not None else []
    for field, param in params:
        if field in scrub or not field.isidentifier():
            continue
        if field in flags:
            lines.append(f"    if o.{field}: d[{field!r}] = True")
            continue
        annotation = str(param.annotation)
        if annotation in _SCALAR_ANNOTATIONS:
            value = "v"
        elif annotation in _LIST_ANNOTATIONS:
            value = "list(v)"
        else:
            value = "_convert[v.__class__](v)"
        lines.append(f"    v = o.{field}")
        lines.append(f"    if v is not None: d[{field!r}] = {value}")
    lines.append("    return d")
    namespace: dict[str, Any] = {"_convert": _CONVERT}
    exec("\n".join(lines), namespace)  # trusted source: built above from Telethon's own signatures
    dumper: Callable[[Any], dict[str, Any]] = namespace["dump"]
    _CONVERT[cls] = dumper
    return dumper


def tl_to_jsonable(obj: Any) -> Any:
    """A TLObject (or list of them) -> plain dicts/lists in the shape of Telethon's ``to_dict()``.

    Differences from ``to_dict()``: keys whose value is None are left out, and so are ``true`` flags
    that are not set (as on the wire: only set flags are sent, ``"post": true``); the person-identifying
    fields listed in ``_SCRUB`` (user ids, a shared contact's phone number) are removed. Bytes and
    datetimes are left as they are (`tl_to_json` encodes them). Other values pass through unchanged.
    """
    return _CONVERT[obj.__class__](obj)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dumps(data: Any) -> str:
    """Compact JSON; orjson when available, the standard library otherwise (the same text)."""
    if orjson is None:
        return json.dumps(data, default=_json_default, separators=(",", ":"), ensure_ascii=False)
    try:
        return orjson.dumps(data, default=_json_default).decode()
    except TypeError:  # an int beyond 64 bits or a lone surrogate: ASCII-escaped standard JSON copes
        return json.dumps(data, default=_json_default, separators=(",", ":"))


def _dumps_utf8(data: Any) -> bytes | str:
    """`_dumps` without turning orjson's UTF-8 bytes into a str (Arrow takes either for a string column,
    and decoding a long non-ASCII text costs more than encoding it as JSON)."""
    if orjson is None:
        return _dumps(data)
    try:
        return orjson.dumps(data, default=_json_default)
    except TypeError:
        return json.dumps(data, default=_json_default, separators=(",", ":"))


def tl_to_json(obj: Any) -> str:
    """A TLObject as a compact JSON string (see `tl_to_jsonable`); bytes base64, datetimes ISO 8601.

    Example: ``tl_to_json(types.PeerChannel(5))`` -> ``'{"_":"PeerChannel","channel_id":5}'``.
    """
    return _dumps(tl_to_jsonable(obj))


# ------------------------------------------------------------------------------------------- text bits


def entity_texts(text: str, entities: Iterable[Any]) -> list[str]:
    """The text each entity covers; offsets and lengths in UTF-16 code units, as Telegram counts them.

    Example: ``entity_texts("😀 #x", [MessageEntityHashtag(offset=3, length=2)])`` -> ``['#x']``
    (the emoji takes two UTF-16 units). Same result as ``telethon.utils.get_inner_text``, faster.
    """
    if text.isascii():
        return [text[e.offset : e.offset + e.length] for e in entities]
    units = text.encode("utf-16-le")
    if len(units) == 2 * len(text):  # no character outside the BMP: str indexes are UTF-16 units
        return [text[e.offset : e.offset + e.length] for e in entities]
    return [units[2 * e.offset : 2 * (e.offset + e.length)].decode("utf-16-le", "ignore") for e in entities]


def canonical_domain(url: str) -> str | None:
    """The domain of ``url``: its lower-cased host without ``www.``, trailing dots or port; None when it
    names no web host. The same domain as `analysis._urls.canonical_url` gives (one rule for both).

    URLs without a scheme (as Telegram detects them in text) are read as web links.
    Examples: ``'https://WWW.Example.org:8080/a'`` -> ``'example.org'``; ``'t.me/durov'`` -> ``'t.me'``;
    ``'mailto:a@b.c'`` and ``'tg://resolve?domain=x'`` -> None (only http, https and ftp name a web host).
    """
    c = canonical_url(url)
    return c[1] if c is not None else None


def text_fields(
    text: str, entities: list[Any] | None
) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """(hashtags, urls, canonical_urls, domains, mentions) of a message text and its entities.

    ``urls`` deduplicated as written; ``canonical_urls`` aligned with them ('' for no web host);
    ``domains`` deduplicated.
    """
    if not entities:
        return [], [], [], [], []
    wanted = [e for e in entities if e.__class__ in _TEXT_ENTITIES]
    if not wanted:
        return [], [], [], [], []
    hashtags: list[str] = []
    urls: list[str] = []
    canonical: list[str] = []
    domains: list[str] = []
    mentions: list[str] = []
    for e, s in zip(wanted, entity_texts(text, wanted), strict=True):
        cls = e.__class__
        if cls is types.MessageEntityHashtag:
            s = s[1:] if s[:1] in _HASH_SIGNS else s
            if s and s not in hashtags:
                hashtags.append(s)
        elif cls is types.MessageEntityMention:
            s = (s[1:] if s[:1] == "@" else s).lower()
            if s and s not in mentions:
                mentions.append(s)
        else:
            url = e.url if cls is types.MessageEntityTextUrl else s
            if url and url not in urls:
                urls.append(url)
                c = canonical_url(url)
                if c is None:
                    canonical.append("")
                else:
                    canonical.append(c[0])
                    if c[1] not in domains:
                        domains.append(c[1])
    return hashtags, urls, canonical, domains, mentions


_HASH_SIGNS = frozenset({"#", "＃"})  # Telegram also recognises the full-width number sign
_TEXT_ENTITIES = frozenset(
    {types.MessageEntityHashtag, types.MessageEntityUrl, types.MessageEntityTextUrl, types.MessageEntityMention}
)


# ------------------------------------------------------------------------------------------------ media

# media_type, media_id, media_mime, media_size, media_duration, media_width, media_height, media_filename,
# webpage_url, webpage_title
_MediaFields = tuple[
    str | None,
    int | None,
    str | None,
    int | None,
    float | None,
    int | None,
    int | None,
    str | None,
    str | None,
    str | None,
]
_NO_MEDIA: _MediaFields = (None, None, None, None, None, None, None, None, None, None)


def _largest_photo_size(photo: Any) -> tuple[int | None, int | None, int | None]:
    """(size in bytes, width, height) of the largest stored size of a Photo."""
    best: tuple[int | None, int | None, int | None] = (None, None, None)
    best_area = -1
    for s in getattr(photo, "sizes", None) or ():
        w, h = getattr(s, "w", None), getattr(s, "h", None)
        if w is None or h is None:
            continue  # stripped or path thumbnails
        size = getattr(s, "size", None)
        if size is None and getattr(s, "sizes", None):  # PhotoSizeProgressive: growing prefixes
            size = max(s.sizes)
        if size is None and getattr(s, "bytes", None) is not None:  # PhotoCachedSize
            size = len(s.bytes)
        if w * h > best_area:
            best_area, best = w * h, (size, w, h)
    return best


def _photo_fields(media: Any) -> _MediaFields:
    photo = media.photo
    if not isinstance(photo, types.Photo):
        return ("photo", None, None, None, None, None, None, None, None, None)
    size, w, h = _largest_photo_size(photo)
    return ("photo", photo.id, None, size, None, w, h, None, None, None)


def _document_kind(media: Any, attributes: list[Any]) -> str:
    kinds = {a.__class__ for a in attributes}
    if types.DocumentAttributeSticker in kinds or types.DocumentAttributeCustomEmoji in kinds:
        return "sticker"
    if types.DocumentAttributeAnimated in kinds:
        return "animation"
    video = next((a for a in attributes if a.__class__ is types.DocumentAttributeVideo), None)
    if video is not None:
        return "round_video" if (video.round_message or media.round) else "video"
    audio = next((a for a in attributes if a.__class__ is types.DocumentAttributeAudio), None)
    if audio is not None:
        return "voice" if (audio.voice or media.voice) else "audio"
    if media.round:
        return "round_video"
    if media.voice:
        return "voice"
    if media.video:
        return "video"
    return "document"


def _document_fields(media: Any) -> _MediaFields:
    doc = media.document
    if not isinstance(doc, types.Document):
        kind = "round_video" if media.round else "voice" if media.voice else "video" if media.video else "document"
        return (kind, None, None, None, None, None, None, None, None, None)
    attributes = doc.attributes or []
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    filename: str | None = None
    for a in attributes:
        cls = a.__class__
        if cls is types.DocumentAttributeVideo:
            duration, width, height = float(a.duration), a.w, a.h
        elif cls is types.DocumentAttributeAudio:
            if duration is None:
                duration = float(a.duration)
        elif cls is types.DocumentAttributeImageSize:
            if width is None:
                width, height = a.w, a.h
        elif cls is types.DocumentAttributeFilename:
            filename = a.file_name
    kind = _document_kind(media, attributes)
    return (kind, doc.id, doc.mime_type, doc.size, duration, width, height, filename, None, None)


def _webpage_fields(media: Any) -> _MediaFields:
    page = media.webpage
    url = getattr(page, "url", None)
    title = getattr(page, "title", None)
    page_id = getattr(page, "id", None)
    return ("webpage", page_id or None, None, None, None, None, None, None, url, title)


def _poll_question(poll: Any) -> tuple[str, Any]:
    """(text, entities) of a poll's question: ``TextWithEntities`` since layer 178, a str before."""
    question = getattr(poll, "question", None)
    if isinstance(question, str):
        return question, None
    return (getattr(question, "text", None) or ""), getattr(question, "entities", None)


def _poll_fields(media: Any) -> _MediaFields:
    return ("poll", media.poll.id, None, None, None, None, None, None, None, None)


def _id_fields(kind: str, attribute: str) -> Callable[[Any], _MediaFields]:
    def fields(media: Any) -> _MediaFields:
        inner = getattr(media, attribute, None)
        return (kind, getattr(inner, "id", None), None, None, None, None, None, None, None, None)

    return fields


def _kind_only(kind: str) -> Callable[[Any], _MediaFields]:
    def fields(media: Any) -> _MediaFields:
        return (kind, None, None, None, None, None, None, None, None, None)

    return fields


def _story_fields(media: Any) -> _MediaFields:
    return ("story", media.id, None, None, None, None, None, None, None, None)


_MEDIA: dict[type, Callable[[Any], _MediaFields]] = {
    types.MessageMediaPhoto: _photo_fields,
    types.MessageMediaDocument: _document_fields,
    types.MessageMediaWebPage: _webpage_fields,
    types.MessageMediaPoll: _poll_fields,
    types.MessageMediaGeo: _kind_only("geo"),
    types.MessageMediaGeoLive: _kind_only("geo_live"),
    types.MessageMediaVenue: _kind_only("venue"),
    types.MessageMediaContact: _kind_only("contact"),
    types.MessageMediaDice: _kind_only("dice"),
    types.MessageMediaGame: _id_fields("game", "game"),
    types.MessageMediaInvoice: _kind_only("invoice"),
    types.MessageMediaStory: _story_fields,
    types.MessageMediaGiveaway: _kind_only("giveaway"),
    types.MessageMediaGiveawayResults: _kind_only("giveaway_results"),
    types.MessageMediaPaidMedia: _kind_only("paid_media"),
    types.MessageMediaUnsupported: _kind_only("unsupported"),
}
if hasattr(types, "MessageMediaToDo"):
    _MEDIA[types.MessageMediaToDo] = _kind_only("todo")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def media_fields(media: Any) -> _MediaFields:
    """(media_type, media_id, mime, size, duration, width, height, filename, webpage_url, webpage_title).

    ``media_type`` is one of photo, video, round_video, animation, audio, voice, sticker, document,
    webpage, poll, geo, geo_live, venue, contact, dice, game, invoice, story, giveaway, giveaway_results,
    paid_media, todo, unsupported; a media class newer than this code gives its name in snake case
    (``MessageMediaFooBar`` -> ``foo_bar``). No media (or ``MessageMediaEmpty``) gives all None.
    """
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return _NO_MEDIA
    handler = _MEDIA.get(media.__class__)
    if handler is None:
        name = _tl_name(media.__class__)[1]
        return (_snake(name.removeprefix("MessageMedia")) or "unknown", *_NO_MEDIA[1:])
    return handler(media)


# -------------------------------------------------------------------------------------------- reactions


def reaction_key(reaction: Any) -> str:
    """How a reaction is written in ``reactions_by``: the emoji, ``'custom:<document_id>'`` or ``'paid'``."""
    cls = reaction.__class__
    if cls is types.ReactionEmoji:
        return str(reaction.emoticon)
    if cls is types.ReactionCustomEmoji:
        return f"custom:{reaction.document_id}"
    if cls is types.ReactionPaid:
        return "paid"
    return _snake(_tl_name(cls)[1].removeprefix("Reaction")) or "unknown"


def reaction_pairs(reactions: Any) -> tuple[int, list[tuple[str, int]]]:
    """(total, ``[(reaction, count)]``) of a message's ``MessageReactions``: `reaction_counts` as pairs."""
    if reactions is None or not reactions.results:
        return 0, []
    pairs = []
    total = 0
    for rc in reactions.results:
        reaction = rc.reaction
        count = rc.count
        total += count
        pairs.append((reaction.emoticon if reaction.__class__ is _EMOJI else reaction_key(reaction), count))
    return total, pairs


_EMOJI = types.ReactionEmoji


def reaction_counts(reactions: Any) -> tuple[int, list[dict[str, Any]]]:
    """(total, per-reaction ``[{reaction, count}]``) of a message's ``MessageReactions`` (posts and comments)."""
    if reactions is None or not reactions.results:
        return 0, []
    by = [{"reaction": reaction_key(rc.reaction), "count": rc.count} for rc in reactions.results]
    return sum(r["count"] for r in by), by


# ------------------------------------------------------------------------------------------------- rows


def as_utc(dt: datetime | None) -> datetime | None:
    """``dt`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if dt is None or dt.tzinfo is UTC:
        return dt
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _restrictions(reasons: list[Any] | None) -> list[dict[str, str]]:
    return [{"platform": r.platform, "reason": r.reason, "text": r.text} for r in reasons or ()]


def is_post(msg: Any) -> bool:
    """True for a real message (``types.Message``); False for service messages, empty ones and None."""
    return isinstance(msg, types.Message)


def normalize_message(msg: Any, *, channel_id: int) -> dict[str, Any] | None:
    """One channel message -> a ``posts`` row (keys exactly `POSTS_SCHEMA`'s), or None if not a post.

    ``channel_id`` is the bare id of the channel the message was fetched from (``msg.peer_id`` is not
    trusted for it: the caller knows which channel it asked).
    """
    values = post_values(msg, channel_id=channel_id)
    if values is None:
        return None
    row = dict(zip(POST_COLUMNS, values, strict=True))
    row["reactions_by"] = [{"reaction": r, "count": n} for r, n in row["reactions_by"]]
    raw = row["raw"]
    if raw.__class__ is bytes:
        row["raw"] = raw.decode()
    return row


#: The columns of a ``posts`` row in `POSTS_SCHEMA` order: the order of `post_values`.
POST_COLUMNS: tuple[str, ...] = tuple(POSTS_SCHEMA.names)


def post_values(msg: Any, *, channel_id: int) -> tuple[Any, ...] | None:
    """`normalize_message` as a tuple in `POST_COLUMNS` order, in the forms `posts_values_table` takes.

    The same values, two of them in a cheaper form: ``reactions_by`` as ``(reaction, count)`` pairs and
    ``raw`` as the JSON's UTF-8 bytes (a str where orjson is missing or gave up). The collector builds
    its Arrow batches from these without a dict per row.
    """
    if not isinstance(msg, types.Message):
        return None
    text = msg.message or ""
    entities = msg.entities
    if not text and isinstance(msg.media, types.MessageMediaPoll):
        text, entities = _poll_question(msg.media.poll)     # a poll's words are its question
    hashtags, urls, canonical, domains, mentions = text_fields(text, entities)

    fwd_channel_id = fwd_message_id = fwd_posted_at = fwd_from_name = fwd_post_author = None
    fwd = msg.fwd_from
    if fwd is not None:
        if isinstance(fwd.from_id, types.PeerChannel):
            fwd_channel_id = fwd.from_id.channel_id
            fwd_message_id = fwd.channel_post
        fwd_posted_at = as_utc(fwd.date)
        fwd_from_name = fwd.from_name
        fwd_post_author = fwd.post_author

    reply_to_message_id, reply_to_peer_id, reply_to_peer_message_id = reply_fields(msg.reply_to, channel_id)

    replies = msg.replies
    reactions_total, reactions_by = reaction_pairs(msg.reactions)
    factcheck = msg.factcheck
    media = msg.media
    media_type, media_id, mime, size, duration, width, height, filename, webpage_url, webpage_title = (
        _NO_MEDIA if media is None else media_fields(media)
    )
    reasons = msg.restriction_reason

    return (
        channel_id,
        msg.id,
        as_utc(msg.date),
        as_utc(msg.edit_date),
        text,
        msg.grouped_id,
        msg.views,
        msg.forwards,
        replies.replies if replies is not None else None,
        reactions_total,
        reactions_by,
        hashtags,
        urls,
        domains,
        canonical,
        mentions,
        fwd_channel_id,
        fwd_message_id,
        fwd_posted_at,
        fwd_from_name,
        fwd_post_author,
        reply_to_message_id,
        msg.post_author,
        msg.via_bot_id,
        replies.channel_id if replies is not None and replies.comments else None,
        media_type,
        media_id,
        mime,
        size,
        duration,
        width,
        height,
        filename,
        webpage_url,
        webpage_title,
        _restrictions(reasons) if reasons else [],
        factcheck.text.text if factcheck is not None and factcheck.text is not None else None,
        bool(msg.noforwards),
        bool(msg.pinned),
        msg.ttl_period,
        _dumps_utf8(_CONVERT[msg.__class__](msg)),
        TL_LAYER,
        TELETHON_VERSION,
        reply_to_peer_id,
        reply_to_peer_message_id,
    )


def reply_fields(reply: Any, channel_id: int) -> tuple[int | None, int | None, int | None]:
    """``(reply_to_message_id, reply_to_peer_id, reply_to_peer_message_id)`` of a message's reply header.

    A reply within the channel fills the first; a reply to a message in another chat (the header names
    ``reply_to_peer_id``) fills the other two: the bare id of that channel or supergroup, and the message's
    id there. A reply to a private chat or a basic group keeps the message id but not the chat (a person or
    a small group; their ids are not stored). A story reply, or a header without a message id, gives nothing::

        >>> reply_fields(types.MessageReplyHeader(reply_to_msg_id=7), 100)
        (7, None, None)
        >>> reply_fields(types.MessageReplyHeader(reply_to_msg_id=7, reply_to_peer_id=types.PeerChannel(200)), 100)
        (None, 200, 7)
        >>> reply_fields(types.MessageReplyHeader(reply_to_msg_id=7, reply_to_peer_id=types.PeerUser(5)), 100)
        (None, None, 7)
    """
    if not isinstance(reply, types.MessageReplyHeader) or reply.reply_to_msg_id is None:
        return None, None, None
    peer = reply.reply_to_peer_id
    if peer is None or (isinstance(peer, types.PeerChannel) and peer.channel_id == channel_id):
        return reply.reply_to_msg_id, None, None
    other = peer.channel_id if isinstance(peer, types.PeerChannel) else None
    return None, other, reply.reply_to_msg_id


def _username(chat: Any) -> str | None:
    """The channel's username: the main one, else the first active collectible username."""
    if getattr(chat, "username", None):
        return str(chat.username)
    for u in getattr(chat, "usernames", None) or ():
        if u.active:
            return str(u.username)
    return None


def normalize_channel(chat: Any, full: Any = None) -> dict[str, Any]:
    """A ``types.Channel`` (+ its ``types.ChannelFull``, or ``messages.ChatFull`` holding one) -> a
    ``channels`` row with `CHANNELS_SCHEMA`'s keys.

    Without ``full`` the fields only the full channel has (``about``, ``linked_chat_id``,
    ``available_min_id``) are None and ``participants_count`` is the one the channel object carries, if any.
    ``raw`` is ``{"channel": ..., "full": ..., "tl_layer": ..., "telethon_version": ...}``.
    """
    if full is not None and not isinstance(full, types.ChannelFull):
        full = getattr(full, "full_chat", None)
    participants = getattr(full, "participants_count", None)
    if participants is None:
        participants = getattr(chat, "participants_count", None)
    raw = {
        "channel": tl_to_jsonable(chat),
        "full": tl_to_jsonable(full) if full is not None else None,
        "tl_layer": TL_LAYER,
        "telethon_version": TELETHON_VERSION,
    }
    return {
        "channel_id": chat.id,
        "access_hash": getattr(chat, "access_hash", None),
        "username": _username(chat),
        "title": getattr(chat, "title", None),
        "about": getattr(full, "about", None),
        "participants_count": participants,
        "created_at": as_utc(getattr(chat, "date", None)),
        "linked_chat_id": getattr(full, "linked_chat_id", None),
        "available_min_id": getattr(full, "available_min_id", None),
        "megagroup": bool(getattr(chat, "megagroup", False)),
        "verified": bool(getattr(chat, "verified", False)),
        "scam": bool(getattr(chat, "scam", False)),
        "fake": bool(getattr(chat, "fake", False)),
        "restricted": bool(getattr(chat, "restricted", False)),
        "restriction_reason": _restrictions(getattr(chat, "restriction_reason", None)),
        "raw": _dumps(raw),
    }


def normalize_peer(chat: Any) -> dict[str, Any]:
    """A ``types.Channel`` or ``types.ChannelForbidden`` met in an answer -> a ``peers`` row."""
    return {
        "channel_id": chat.id,
        "username": _username(chat),
        "title": getattr(chat, "title", None),
        "megagroup": bool(getattr(chat, "megagroup", False)),
    }
