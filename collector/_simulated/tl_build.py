"""Pure builders: simulated records at a moment ``t`` -> Telethon TL objects, as Telegram would send them.

Nothing here does I/O or keeps state; :mod:`collector._simulated.server` calls these to answer requests
and serialises the result. Ids Telegram would invent (access hashes, file references, the account's own
user) are derived deterministically from the record ids, so two runs over one world answer identically.

Example::

    msg = channel.messages[41]
    tl = message_tl(msg, channel, world.now)      # types.Message or types.MessageService
    bytes(tl)                                      # what the wire carries
"""

from __future__ import annotations

import logging
import struct
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlsplit

from telethon.tl import types

from .model import Entity, Media, SimChannel, SimForward, SimMessage, Version

# The simulated account that "logged in". Any positive id works; this one is outside the ranges the
# generator uses for channels (those are > 10^9, like real channel ids).
SELF_USER_ID = 700_000_001
_DC_ID = 2
_MASK63 = (1 << 63) - 1


def derived_hash(value: int, salt: int = 0) -> int:
    """A deterministic positive 63-bit hash of ``value`` (splitmix64), used for access hashes and ids.

    >>> derived_hash(1) == derived_hash(1) and derived_hash(1) != derived_hash(1, salt=1)
    True
    """
    z = (value * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return (z & _MASK63) or 1


# -- channels ------------------------------------------------------------------------------------


def channel_tl(ch: SimChannel, t: datetime, *, forbidden: bool = False) -> types.Channel | types.ChannelForbidden:
    """The ``Chat`` object Telegram sends for ``ch`` at ``t``: a full Channel, or ChannelForbidden when closed.

    We are never a member, so ``left`` is set, as Telegram does for channels one only reads.
    """
    broadcast = not ch.megagroup
    if forbidden:
        return types.ChannelForbidden(
            id=ch.channel_id, access_hash=ch.access_hash, title=ch.title,
            broadcast=broadcast or None, megagroup=ch.megagroup or None,
        )
    return types.Channel(
        id=ch.channel_id,
        title=ch.title,
        photo=types.ChatPhotoEmpty(),
        date=ch.created_at,
        left=True,
        broadcast=broadcast or None,
        megagroup=ch.megagroup or None,
        has_link=True if ch.linked_chat_id else None,
        access_hash=ch.access_hash,
        username=ch.username_at(t),
        participants_count=ch.participants_at(t),
    )


def linked_chat_stub_tl(ch: SimChannel) -> types.Channel:
    """The discussion group of ``ch`` when the world does not model it: a public megagroup named after it."""
    assert ch.linked_chat_id is not None
    return types.Channel(
        id=ch.linked_chat_id,
        title=f"{ch.title} chat",
        photo=types.ChatPhotoEmpty(),
        date=ch.created_at,
        left=True,
        megagroup=True,
        has_link=True,
        access_hash=derived_hash(ch.linked_chat_id, salt=11),
    )


def channel_full_tl(ch: SimChannel, t: datetime, *, pinned_msg_id: int | None, pts: int) -> types.ChannelFull:
    """``channels.getFullChannel``'s ChannelFull for ``ch`` at ``t``."""
    return types.ChannelFull(
        id=ch.channel_id,
        about=ch.about,
        read_inbox_max_id=0,
        read_outbox_max_id=0,
        unread_count=0,
        chat_photo=types.PhotoEmpty(id=0),
        notify_settings=types.PeerNotifySettings(),
        bot_info=[],
        pts=pts,
        participants_count=ch.participants_at(t),
        linked_chat_id=ch.linked_chat_id,
        available_min_id=ch.available_min_id or None,
        pinned_msg_id=pinned_msg_id,
    )


# -- users ---------------------------------------------------------------------------------------


def self_user_tl() -> types.User:
    """The logged-in account, as ``users.getUsers([inputUserSelf])`` returns it."""
    return types.User(
        id=SELF_USER_ID,
        is_self=True,
        access_hash=derived_hash(SELF_USER_ID, salt=3),
        first_name="tgspread",
        last_name="(simulated)",
    )


def bot_user_tl(bot_id: int) -> types.User:
    """An inline bot named by ``via_bot_id``; the world only knows its id, so its name is derived."""
    return types.User(
        id=bot_id,
        bot=True,
        access_hash=derived_hash(bot_id, salt=5),
        first_name=f"Bot {bot_id}",
        username=f"sim{bot_id}_bot",
        bot_info_version=1,
    )


# -- message parts -------------------------------------------------------------------------------


def entities_tl(entities: tuple[Entity, ...]) -> list[types.TypeMessageEntity]:
    """Model entities -> MessageEntity* (offsets stay in UTF-16 code units, as in the model)."""
    out: list[types.TypeMessageEntity] = []
    for e in entities:
        kind = e.kind
        if kind == "hashtag":
            out.append(types.MessageEntityHashtag(e.offset, e.length))
        elif kind == "url":
            out.append(types.MessageEntityUrl(e.offset, e.length))
        elif kind == "text_url":
            out.append(types.MessageEntityTextUrl(e.offset, e.length, e.url or ""))
        elif kind == "mention":
            out.append(types.MessageEntityMention(e.offset, e.length))
        elif kind == "bold":
            out.append(types.MessageEntityBold(e.offset, e.length))
        elif kind == "custom_emoji":
            # The model has no document id field; a numeric ``url`` carries one, else derive a stable id.
            doc_id = int(e.url) if e.url and e.url.isdigit() else derived_hash(e.offset * 131 + e.length, salt=7)
            out.append(types.MessageEntityCustomEmoji(e.offset, e.length, doc_id))
        elif kind == "italic":
            out.append(types.MessageEntityItalic(e.offset, e.length))
        else:
            out.append(types.MessageEntityUnknown(e.offset, e.length))
    return out


_DATED_REF = 0x03                # a file reference with its hour of issue (srv_media checks it)


def file_reference(media_id: int, issued_at: datetime) -> bytes:
    """A file reference issued at ``issued_at``: ``0x03``, the media id, the hour of issue (little endian).

    >>> file_reference(5, datetime(2024, 1, 1, tzinfo=UTC)).hex()
    '03050000000000000008390700'
    """
    hours = int((issued_at - _EPOCH).total_seconds() // 3600)
    return bytes((_DATED_REF,)) + media_id.to_bytes(8, "little") + hours.to_bytes(4, "little")


def _file_reference(media_id: int, issued_at: datetime | None) -> bytes:
    """The reference a file carries in an answer sent at ``issued_at`` (it expires: srv_media.REFERENCE_TTL);
    without a time, an undated one that never expires."""
    if issued_at is None:
        return b"\x02" + media_id.to_bytes(8, "little", signed=False)
    return file_reference(media_id, issued_at)


def _issue_hour(t: datetime) -> datetime:
    """``t`` cut to the hour: references carry the hour they were issued in (and answers cache per hour)."""
    return t.replace(minute=0, second=0, microsecond=0)


def _document(m: Media, date: datetime, mime: str, attributes: list[types.TypeDocumentAttribute],
              issued_at: datetime | None) -> types.Document:
    return types.Document(
        id=m.media_id,
        access_hash=derived_hash(m.media_id, salt=13),
        file_reference=_file_reference(m.media_id, issued_at),
        date=date,
        mime_type=m.mime or mime,
        size=m.size or 0,
        dc_id=_DC_ID,
        attributes=attributes,
    )


def media_tl(m: Media, date: datetime, issued_at: datetime | None = None) -> types.TypeMessageMedia:
    """Model media -> MessageMedia*. ``date`` is the message date (Telegram dates files at upload);
    ``issued_at`` the time of the answer, which dates the file reference (None: an undated reference)."""
    kind = m.kind
    if kind == "photo":
        w, h = m.width or 1280, m.height or 960
        size = m.size or 120_000
        photo = types.Photo(
            id=m.media_id,
            access_hash=derived_hash(m.media_id, salt=13),
            file_reference=_file_reference(m.media_id, issued_at),
            date=date,
            sizes=[
                types.PhotoSize(type="m", w=max(1, w * 320 // max(w, h)), h=max(1, h * 320 // max(w, h)),
                                size=max(1, size // 16)),
                types.PhotoSize(type="y", w=w, h=h, size=size),
            ],
            dc_id=_DC_ID,
        )
        return types.MessageMediaPhoto(photo=photo)
    if kind in ("video", "document", "audio", "voice"):
        attrs: list[types.TypeDocumentAttribute] = []
        if kind == "video":
            attrs.append(types.DocumentAttributeVideo(
                duration=float(m.duration or 0.0), w=m.width or 1280, h=m.height or 720, supports_streaming=True))
            mime = "video/mp4"
        elif kind == "audio":
            attrs.append(types.DocumentAttributeAudio(duration=int(m.duration or 0), title=m.title))
            mime = "audio/mpeg"
        elif kind == "voice":
            attrs.append(types.DocumentAttributeAudio(duration=int(m.duration or 0), voice=True))
            mime = "audio/ogg"
        else:
            mime = "application/octet-stream"
        if m.filename:
            attrs.append(types.DocumentAttributeFilename(file_name=m.filename))
        return types.MessageMediaDocument(
            document=_document(m, date, mime, attrs, issued_at),
            video=True if kind == "video" else None,
            voice=True if kind == "voice" else None,
        )
    if kind == "webpage":
        url = m.url or f"https://example.org/{m.media_id}"
        parts = urlsplit(url)
        display = (parts.netloc + parts.path).rstrip("/") or url
        return types.MessageMediaWebPage(webpage=types.WebPage(
            id=m.media_id, url=url, display_url=display, hash=0, type="article",
            site_name=parts.netloc or None, title=m.title,
        ))
    if kind == "poll":
        poll = types.Poll(
            id=m.media_id,
            question=types.TextWithEntities(text=m.title or "Poll", entities=[]),
            answers=[
                types.PollAnswer(text=types.TextWithEntities(text="Yes", entities=[]), option=b"0"),
                types.PollAnswer(text=types.TextWithEntities(text="No", entities=[]), option=b"1"),
            ],
            hash=0,
        )
        return types.MessageMediaPoll(poll=poll, results=types.PollResults(min=True))
    return types.MessageMediaUnsupported()


def fwd_header_tl(f: SimForward) -> types.MessageFwdHeader:
    """The forward header: names the first source (channel + post id), or only a name for hidden senders."""
    if f.channel_id is None:
        return types.MessageFwdHeader(date=f.posted_at, from_name=f.from_name or "Hidden sender",
                                      post_author=f.post_author)
    return types.MessageFwdHeader(
        date=f.posted_at,
        from_id=types.PeerChannel(f.channel_id),
        channel_post=f.message_id,
        post_author=f.post_author,
    )


def reactions_tl(reactions: tuple[tuple[str, int], ...]) -> types.MessageReactions | None:
    """``(emoji | 'custom:<document id>' | 'paid', count)`` pairs -> MessageReactions (None when none)."""
    if not reactions:
        return None
    results = []
    for key, count in reactions:
        reaction: types.TypeReaction
        if key.startswith("custom:"):
            reaction = types.ReactionCustomEmoji(document_id=int(key[7:]))
        elif key == "paid":
            reaction = types.ReactionPaid()
        else:
            reaction = types.ReactionEmoji(emoticon=key)
        results.append(types.ReactionCount(reaction=reaction, count=count))
    return types.MessageReactions(results=results, can_see_list=None)


def message_replies_tl(ch: SimChannel, replies: int) -> types.MessageReplies | None:
    """Comment/reply counter. Broadcast channels have one only with a linked discussion group (comments);
    megagroups count thread replies. A world that gives replies to a channel without a group still gets
    them, so the counters the tests compare against are never silently dropped."""
    return _replies_tl(ch.linked_chat_id, ch.megagroup, replies)


def _replies_tl(linked_chat_id: int | None, megagroup: bool, replies: int) -> types.MessageReplies | None:
    if linked_chat_id and not megagroup:
        return types.MessageReplies(replies=replies, replies_pts=replies, comments=True, channel_id=linked_chat_id)
    if megagroup or replies > 0:
        return types.MessageReplies(replies=replies, replies_pts=replies)
    return None


def factcheck_tl(msg: SimMessage) -> types.FactCheck | None:
    """The fact-check note under a post. ``country`` and ``text`` travel together (one TL flag); the model
    has no country, so one is fixed."""
    if not msg.factcheck:
        return None
    return types.FactCheck(hash=derived_hash(msg.message_id, salt=msg.channel_id & 0xFFFF), country="US",
                           text=types.TextWithEntities(text=msg.factcheck, entities=[]))


def _action_tl(msg: SimMessage, ch: SimChannel, t: datetime) -> types.TypeMessageAction:
    action = msg.action
    if action == "channel_create":
        return types.MessageActionChannelCreate(title=ch.title)
    if action == "pin":
        return types.MessageActionPinMessage()
    if action == "edit_title":
        return types.MessageActionChatEditTitle(title=msg.version_at(t).text or ch.title)
    if action == "history_clear":
        return types.MessageActionHistoryClear()
    return types.MessageActionCustomAction(message=action or "")


# -- messages ------------------------------------------------------------------------------------


def message_empty_tl(channel_id: int, message_id: int) -> types.MessageEmpty:
    """What ``channels.getMessages`` returns for an id that is gone or never existed."""
    return types.MessageEmpty(id=message_id, peer_id=types.PeerChannel(channel_id))


def reply_header_tl(msg: SimMessage) -> types.MessageReplyHeader | None:
    """The reply header of a post: a reply within its channel, or (``reply_to_peer_id`` set) to another
    channel's post, as Telegram sends a reply to a message in another chat."""
    if not msg.reply_to_message_id:
        return None
    peer = types.PeerChannel(msg.reply_to_peer_id) if msg.reply_to_peer_id else None
    return types.MessageReplyHeader(reply_to_msg_id=msg.reply_to_message_id, reply_to_peer_id=peer)


def message_tl(
    msg: SimMessage, ch: SimChannel, t: datetime, *, pinned_id: int | None = None
) -> types.Message | types.MessageService:
    """The message as Telegram shows it at ``t`` (the caller checks visibility).

    Broadcast posts carry ``post=True`` and no sender; megagroup messages are sent "as the group"
    (``from_id`` = the group), which keeps the world free of invented users.
    """
    peer = types.PeerChannel(ch.channel_id)
    from_id = peer if ch.megagroup else None
    if msg.action is not None:
        reply_to = None
        if msg.action == "pin" and msg.pinned_message_id:
            reply_to = types.MessageReplyHeader(reply_to_msg_id=msg.pinned_message_id)
        return types.MessageService(
            id=msg.message_id,
            peer_id=peer,
            date=msg.posted_at,
            action=_action_tl(msg, ch, t),
            post=True if not ch.megagroup else None,
            from_id=from_id,
            reply_to=reply_to,
        )
    state = msg.state_at(t)
    return types.Message(
        id=msg.message_id,
        peer_id=peer,
        date=msg.posted_at,
        message=state.text,
        post=True if not ch.megagroup else None,
        from_id=from_id,
        pinned=True if pinned_id is not None and pinned_id == msg.message_id else None,
        noforwards=msg.noforwards or None,
        fwd_from=fwd_header_tl(msg.fwd) if msg.fwd is not None else None,
        via_bot_id=msg.via_bot_id,
        reply_to=reply_header_tl(msg),
        media=media_tl(msg.media, msg.posted_at, _issue_hour(t)) if msg.media is not None else None,
        entities=entities_tl(state.entities) if state.entities else None,
        views=state.views,
        forwards=state.forwards,
        replies=message_replies_tl(ch, state.replies),
        edit_date=state.edited_at,
        post_author=msg.post_author,
        grouped_id=msg.grouped_id,
        reactions=reactions_tl(state.reactions),
        restriction_reason=([types.RestrictionReason(platform=p, reason=r, text=x)
                             for p, r, x in msg.restriction_reason] or None),
        factcheck=factcheck_tl(msg),
    )


def message_views_tl(msg: SimMessage, ch: SimChannel, t: datetime) -> types.MessageViews:
    """One entry of ``messages.getMessagesViews``: views, forwards and replies (no reactions)."""
    state = msg.state_at(t)
    return types.MessageViews(views=state.views, forwards=state.forwards,
                              replies=message_replies_tl(ch, state.replies))


# -- the fast path: a post straight to TL bytes ------------------------------------------------------
#
# Answering a 100-message page through ``bytes(message_tl(...))`` costs about as much as Telethon's own
# decode of it, and the benchmarks push a million posts through here. ``message_bytes`` writes the same
# bytes directly: the Message layout of TL layer 229 (telethon 1.45) is spelled out below, every nested
# object comes from Telethon (serialised, or as a template cut from Telethon's serialisation). A
# self-check against ``bytes(message_tl(...))`` runs once; on any difference (another Telethon, another
# layer) the slow, always-correct path is used and a warning logged. Tests compare both on every message.

_log = logging.getLogger(__name__)
_VECTOR = struct.pack("<I", 0x1CB5C415)
_PACK_I = struct.Struct("<i").pack
_PACK_II = struct.Struct("<ii").pack
_PACK_Q = struct.Struct("<q").pack
_PACK_U = struct.Struct("<I").pack
_PACK_FLAGS = struct.Struct("<II").pack
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MESSAGE_CID = struct.pack("<I", types.Message.CONSTRUCTOR_ID)
_PEER_CHANNEL_CID = struct.pack("<I", types.PeerChannel.CONSTRUCTOR_ID)

# flags / flags2 bits of message#7600b9d3 (layer 229)
_F_FWD, _F_REPLY_TO, _F_FROM_ID, _F_MEDIA, _F_ENTITIES, _F_VIEWS = 4, 8, 256, 512, 128, 1024
_F_VIA_BOT, _F_POST, _F_EDIT_DATE, _F_POST_AUTHOR, _F_GROUPED = 2048, 16384, 32768, 65536, 131072
_F_REACTIONS, _F_RESTRICTION, _F_REPLIES, _F_PINNED, _F_NOFORWARDS = 1048576, 4194304, 8388608, 16777216, 67108864
_F2_FACTCHECK = 8


def _tl_string(text: str) -> bytes:
    data = text.encode("utf-8")
    n = len(data)
    if n < 254:
        return b"".join((bytes((n,)), data, b"\0" * (-(n + 1) % 4)))
    return b"".join((b"\xfe", n.to_bytes(3, "little"), data, b"\0" * (-n % 4)))


def _tl_date(d: datetime) -> bytes:
    """Telethon's date rule: seconds since the epoch (naive means UTC), wrapped to 32 bits."""
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return _PACK_U(int((d - _EPOCH).total_seconds()) & 0xFFFFFFFF)


@lru_cache(maxsize=1 << 16)
def _media_bytes(m: Media, date: datetime, issued_at: datetime) -> bytes:
    return bytes(media_tl(m, date, issued_at))


@lru_cache(maxsize=4096)
def _reaction_prefix(key: str) -> bytes:
    """ReactionCount bytes without its trailing count."""
    reactions = reactions_tl(((key, 1),))
    assert reactions is not None
    return bytes(reactions.results[0])[:-4]


_REACTIONS_HEAD = bytes(types.MessageReactions(results=[]))[:-4]   # constructor, flags, vector id


@lru_cache(maxsize=1024)
def _replies_template(linked_chat_id: int | None, megagroup: bool) -> tuple[bytes, bytes]:
    """(head, tail) around the two counters of MessageReplies for a channel of this kind."""
    replies = _replies_tl(linked_chat_id, megagroup, 1)
    assert replies is not None
    probe = bytes(replies)
    return probe[:8], probe[16:]


def _message_bytes_fast(msg: SimMessage, ch: SimChannel, t: datetime, pinned_id: int | None) -> bytes:
    state = msg.state_at(t)
    flags = _F_VIEWS
    flags2 = 0
    head: list[bytes] = [_PACK_I(msg.message_id)]
    peer = _PACK_Q(ch.channel_id)
    peer_b = _PEER_CHANNEL_CID + peer
    if ch.megagroup:
        flags |= _F_FROM_ID
        head.append(peer_b)
    else:
        flags |= _F_POST
    head.append(peer_b)
    if msg.fwd is not None:
        flags |= _F_FWD
        head.append(bytes(fwd_header_tl(msg.fwd)))
    if msg.via_bot_id:
        flags |= _F_VIA_BOT
        head.append(_PACK_Q(msg.via_bot_id))
    reply = reply_header_tl(msg)
    if reply is not None:
        flags |= _F_REPLY_TO
        head.append(bytes(reply))
    head.append(_tl_date(msg.posted_at))
    head.append(_tl_string(state.text))
    if msg.media is not None:
        flags |= _F_MEDIA
        head.append(_media_bytes(msg.media, msg.posted_at, _issue_hour(t)))
    if state.entities:
        flags |= _F_ENTITIES
        ents = entities_tl(state.entities)
        head.append(b"".join((_VECTOR, _PACK_I(len(ents)), *(e._bytes() for e in ents))))
    head.append(_PACK_II(state.views, state.forwards))
    if ch.megagroup or state.replies > 0 or (ch.linked_chat_id and not ch.megagroup):
        flags |= _F_REPLIES
        r_head, r_tail = _replies_template(ch.linked_chat_id, ch.megagroup)
        head.append(b"".join((r_head, _PACK_II(state.replies, state.replies), r_tail)))
    if state.edited_at is not None:
        flags |= _F_EDIT_DATE
        head.append(_tl_date(state.edited_at))
    if msg.post_author:
        flags |= _F_POST_AUTHOR
        head.append(_tl_string(msg.post_author))
    if msg.grouped_id:
        flags |= _F_GROUPED
        head.append(_PACK_Q(msg.grouped_id))
    if state.reactions:
        flags |= _F_REACTIONS
        head.append(_REACTIONS_HEAD + _PACK_I(len(state.reactions)))
        head.extend(_reaction_prefix(k) + _PACK_I(n) for k, n in state.reactions)
    if msg.restriction_reason:
        flags |= _F_RESTRICTION
        head.append(b"".join((_VECTOR, _PACK_I(len(msg.restriction_reason)), *(
            bytes(types.RestrictionReason(platform=p, reason=r, text=x)) for p, r, x in msg.restriction_reason))))
    if msg.factcheck:
        flags2 |= _F2_FACTCHECK
        head.append(bytes(factcheck_tl(msg)))   # type: ignore[arg-type]  # not None: msg.factcheck is set
    if pinned_id is not None and pinned_id == msg.message_id:
        flags |= _F_PINNED
    if msg.noforwards:
        flags |= _F_NOFORWARDS
    return b"".join((_MESSAGE_CID, _PACK_FLAGS(flags, flags2), *head))


_fast_ok: bool | None = None


def _fast_path_ok() -> bool:
    """Whether the fast writer reproduces Telethon's bytes for probe messages covering every field."""
    global _fast_ok
    if _fast_ok is None:
        _fast_ok = all(
            _message_bytes_fast(m, c, at, p) == bytes(message_tl(m, c, at, pinned_id=p)) for m, c, at, p in _probes()
        )
        if not _fast_ok:
            _log.warning("simulated server: fast message encoder disagrees with this Telethon; using the slow path")
    return _fast_ok


def _probes() -> list[tuple[SimMessage, SimChannel, datetime, int | None]]:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    t1 = t0.replace(day=20)
    ents = (Entity("hashtag", 0, 4), Entity("text_url", 5, 3, "https://e.org/ü"), Entity("custom_emoji", 9, 2, "5"))
    full = SimMessage(
        1, 7, t0, [Version(t0, None, "#tag see 👋 " + "x" * 300, ents), Version(t1, t1, "edited ✓", ents[:1])],
        media=Media("photo", 11), fwd=SimForward(2, 3, t0, post_author="A"), reply_to_message_id=5,
        post_author="Ed", via_bot_id=99, noforwards=True, grouped_id=1 << 40,
        restriction_reason=(("all", "spam", "no"),), factcheck="context", final_views=1000, final_forwards=5,
        final_replies=3, final_reactions=(("👍", 50), ("custom:77", 9), ("paid", 4)),
    )
    bare = SimMessage(1, 8, t0, [Version(t0, None, "")])
    hidden = SimMessage(1, 9, t0, [Version(t0, None, "y")], fwd=SimForward(None, None, t0, from_name="N"),
                        media=Media("video", 12, duration=1.5, filename="v.mp4"))
    chans = [
        SimChannel(1, 5, "C", "", t0, [(t0, "chan_a")], 1, 0.0, linked_chat_id=4),
        SimChannel(1, 5, "C", "", t0, [(t0, "chan_a")], 1, 0.0),
        SimChannel(1, 5, "G", "", t0, [(t0, "group_a")], 1, 0.0, megagroup=True),
    ]
    return [(m, c, at, p) for m in (full, bare, hidden) for c in chans for at in (t0, t1) for p in (None, 7)]


def message_bytes(msg: SimMessage, ch: SimChannel, t: datetime, *, pinned_id: int | None = None) -> bytes:
    """``bytes(message_tl(msg, ch, t, pinned_id=...))``, written directly for posts (several times faster)."""
    if msg.action is None and _fast_path_ok():
        return _message_bytes_fast(msg, ch, t, pinned_id)
    return bytes(message_tl(msg, ch, t, pinned_id=pinned_id))
