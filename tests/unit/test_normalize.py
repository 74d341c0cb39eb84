"""collector._parse.normalize and collector._archive.rows: real Telethon types in, archive rows and Arrow tables out."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import telethon
from telethon import utils
from telethon.tl import types
from telethon.tl.alltlobjects import LAYER

from analysis._urls import canonical_url, canonical_urls
from collector._archive import rows
from collector._parse import normalize
from collector._parse.normalize import (
    canonical_domain,
    entity_texts,
    is_post,
    normalize_channel,
    normalize_message,
    normalize_peer,
    tl_to_json,
)
from tests.helpers.messages import CID, T0, decoded, make_message, rich_message


def u16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def row_of(msg: Any) -> dict[str, Any]:
    row = normalize_message(msg, channel_id=CID)
    assert row is not None
    return row


# ------------------------------------------------------------------------------------------- basic post


def test_plain_text_post_has_exactly_the_schema_columns() -> None:
    row = row_of(decoded(make_message(message="Just text", edit_date=T0 + timedelta(hours=1), pinned=True)))
    assert list(row) == rows.POSTS_SCHEMA.names
    assert row["channel_id"] == CID and row["message_id"] == 42
    assert row["posted_at"] == T0 and row["posted_at"].tzinfo is not None
    assert row["posted_at"].utcoffset() == timedelta(0)
    assert row["edited_at"] == T0 + timedelta(hours=1)
    assert row["text"] == "Just text"
    assert (row["views"], row["forwards"], row["replies"]) == (1000, 7, None)
    assert row["reactions"] == 0 and row["reactions_by"] == []
    assert row["hashtags"] == row["urls"] == row["domains"] == row["canonical_urls"] == row["mentions"] == []
    assert row["media_type"] is None and row["fwd_channel_id"] is None and row["fwd_posted_at"] is None
    assert row["pinned"] is True and row["noforwards"] is False
    assert row["restriction_reason"] == [] and row["factcheck"] is None
    assert row["tl_layer"] == LAYER and row["telethon_version"] == telethon.__version__


def test_naive_and_foreign_timezone_datetimes_become_utc() -> None:
    naive = datetime(2025, 1, 2, 3, 4, 5)
    plus2 = datetime(2025, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    row = row_of(make_message(date=naive, edit_date=plus2))
    assert row["posted_at"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert row["edited_at"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert row["edited_at"].tzinfo is UTC


def test_media_only_post_has_empty_text() -> None:
    photo = types.MessageMediaPhoto(photo=None)
    row = row_of(decoded(make_message(message="", media=photo)))
    assert row["text"] == ""
    assert row["media_type"] == "photo"


# ---------------------------------------------------------------------------------------- text entities


def test_utf16_offsets_with_non_bmp_emoji_before_entities() -> None:
    # Each of these emoji is outside the BMP: 2 UTF-16 units, 1 Python character.
    head = "🔥🇺🇦 Срочно "
    tag, url, link, mention = "#Новости", "www.Example.com/a?b=1", "читать", "@SomeChannel"
    text = f"{head}{tag} и {url}, {link} 👍 {mention} #Новости"
    entities: list[Any] = []
    pos = u16(head)
    entities.append(types.MessageEntityHashtag(pos, u16(tag)))
    pos += u16(tag + " и ")
    entities.append(types.MessageEntityUrl(pos, u16(url)))
    pos += u16(url + ", ")
    entities.append(types.MessageEntityTextUrl(pos, u16(link), url="https://t.me/durov/5"))
    pos += u16(link + " 👍 ")
    entities.append(types.MessageEntityMention(pos, u16(mention)))
    pos += u16(mention + " ")
    entities.append(types.MessageEntityHashtag(pos, u16("#Новости")))
    entities.insert(0, types.MessageEntityBold(0, u16(head)))
    assert u16(head) != len(head)  # the test is only meaningful if str indexes and UTF-16 units differ

    row = row_of(decoded(make_message(message=text, entities=entities)))
    assert row["hashtags"] == ["Новости"]  # duplicate removed, case kept
    assert row["urls"] == ["www.Example.com/a?b=1", "https://t.me/durov/5"]
    assert row["domains"] == ["example.com", "t.me"]
    assert row["canonical_urls"] == ["https://example.com/a?b=1", "https://t.me/durov/5"]
    assert row["mentions"] == ["somechannel"]
    assert entity_texts(text, entities) == utils.get_inner_text(text, entities)


@pytest.mark.parametrize(
    "text",
    ["plain ascii #tag", "Кириллица без эмодзи #тег", "emoji 😀 then #tag", "😀😀😀#x😀", "🇩🇪 #a 𝕏 #b 👨‍👩‍👧 #c"],
)
def test_entity_texts_matches_telethon(text: str) -> None:
    starts = [u16(text[:i]) for i in range(len(text) + 1)]  # UTF-16 offsets of character boundaries
    entities = [types.MessageEntityBold(a, b - a) for i, a in enumerate(starts) for b in starts[i + 1 : i + 4]]
    assert u16(text) != len(text) or text.isascii() or "Кириллица" in text
    assert entity_texts(text, entities) == utils.get_inner_text(text, entities)


def test_hashtags_keep_first_occurrence_order_and_mentions_are_lowercased() -> None:
    text = "#b #a #b @Foo @foo"
    entities = [
        types.MessageEntityHashtag(0, 2),
        types.MessageEntityHashtag(3, 2),
        types.MessageEntityHashtag(6, 2),
        types.MessageEntityMention(9, 4),
        types.MessageEntityMention(14, 4),
    ]
    row = row_of(make_message(message=text, entities=entities))
    assert row["hashtags"] == ["b", "a"]
    assert row["mentions"] == ["foo"]


def test_mention_of_a_person_without_username_is_not_kept() -> None:
    entities = [types.MessageEntityMentionName(0, 4, user_id=777)]
    row = row_of(decoded(make_message(message="Anna says hi", entities=entities)))
    assert row["mentions"] == []
    assert "777" not in row["raw"]


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://WWW.Example.org:8080/a", "example.org"),
        ("t.me/durov", "t.me"),
        ("example.com:8080/x", "example.com"),
        ("http://user:pw@Host.com?x=1", "host.com"),
        ("https://www.bbc.co.uk./news", "bbc.co.uk"),
        ("https://a.com#frag", "a.com"),
        ("http://[::1]:80/x", "::1"),
        ("mailto:someone@example.com", None),
        ("tg://resolve?domain=durov", None),
        ("http://[::1", None),
        ("", None),
    ],
)
def test_canonical_domain(url: str, domain: str | None) -> None:
    assert canonical_domain(url) == domain
    c = canonical_url(url)
    assert (c[1] if c else None) == domain  # one rule: posts.domains agree with the canonical URLs


def test_canonical_urls_stay_aligned_with_urls_and_domains_agree() -> None:
    links = ["http://WWW.News.example/a/?utm_source=tg", "tg://resolve?domain=durov", "news.example/a",
             "mailto:x@news.example", "https://other.example:8443/b#c"]
    text = " ".join(["x"] * len(links))
    entities = [types.MessageEntityTextUrl(2 * i, 1, url=u) for i, u in enumerate(links)]
    row = row_of(decoded(make_message(message=text, entities=entities)))
    assert row["urls"] == links
    assert row["canonical_urls"] == ["https://news.example/a", "", "https://news.example/a", "",
                                     "https://other.example:8443/b"]
    assert row["canonical_urls"] == canonical_urls(row["urls"])
    assert row["domains"] == ["news.example", "other.example"]
    assert row["domains"] == list(dict.fromkeys(c[1] for u in links if (c := canonical_url(u))))


# --------------------------------------------------------------------------------------------- forwards


def test_forward_from_channel() -> None:
    fwd = types.MessageFwdHeader(
        date=T0 - timedelta(days=1), from_id=types.PeerChannel(999), channel_post=17, post_author="Ed"
    )
    row = row_of(decoded(make_message(fwd_from=fwd)))
    assert row["fwd_channel_id"] == 999
    assert row["fwd_message_id"] == 17
    assert row["fwd_posted_at"] == T0 - timedelta(days=1)
    assert row["fwd_from_name"] is None
    assert row["fwd_post_author"] == "Ed"


def test_hidden_sender_forward_keeps_only_the_name() -> None:
    fwd = types.MessageFwdHeader(date=T0 - timedelta(hours=3), from_name="Hidden Channel")
    row = row_of(decoded(make_message(fwd_from=fwd)))
    assert row["fwd_channel_id"] is None and row["fwd_message_id"] is None
    assert row["fwd_from_name"] == "Hidden Channel"
    assert row["fwd_posted_at"] == T0 - timedelta(hours=3)


def test_forward_from_a_person_stores_no_user_id() -> None:
    user_id = 5_550_123_456
    fwd = types.MessageFwdHeader(date=T0 - timedelta(hours=1), from_id=types.PeerUser(user_id), from_name="Ann")
    msg = decoded(make_message(fwd_from=fwd, from_id=types.PeerUser(user_id)))
    row = row_of(msg)
    assert row["fwd_channel_id"] is None and row["fwd_message_id"] is None
    assert row["fwd_from_name"] == "Ann"
    assert str(user_id) not in row["raw"]
    raw = json.loads(row["raw"])
    assert raw["fwd_from"]["from_id"] == {"_": "PeerUser"}  # says "a person", not who
    assert raw["from_id"] == {"_": "PeerUser"}


# ------------------------------------------------------------------------------------ albums and replies


def test_album_member_and_reply() -> None:
    replies = types.MessageReplies(replies=12, replies_pts=5, comments=True, channel_id=2_000_000_001)
    msg = decoded(
        make_message(
            grouped_id=13_579_246_801_357_924,
            reply_to=types.MessageReplyHeader(reply_to_msg_id=40),
            replies=replies,
            post_author="Editor",
            via_bot_id=123_456,
            ttl_period=86400,
        )
    )
    row = row_of(msg)
    assert row["grouped_id"] == 13_579_246_801_357_924
    assert row["reply_to_message_id"] == 40
    assert row["replies"] == 12 and row["replies_channel_id"] == 2_000_000_001
    assert row["post_author"] == "Editor" and row["via_bot_id"] == 123_456 and row["ttl_period"] == 86400


def test_reply_to_another_chat_is_not_a_reply_id_here() -> None:
    reply = types.MessageReplyHeader(reply_to_msg_id=40, reply_to_peer_id=types.PeerChannel(31337))
    assert row_of(make_message(reply_to=reply))["reply_to_message_id"] is None
    same = types.MessageReplyHeader(reply_to_msg_id=40, reply_to_peer_id=types.PeerChannel(CID))
    assert row_of(make_message(reply_to=same))["reply_to_message_id"] == 40


def test_a_cross_chat_reply_keeps_the_other_chat_and_message() -> None:
    """Issue 17, item 6: a reply to another channel's post was lost entirely."""
    keys = ("reply_to_message_id", "reply_to_peer_id", "reply_to_peer_message_id")
    other = types.MessageReplyHeader(reply_to_msg_id=40, reply_to_peer_id=types.PeerChannel(31337))
    assert [row_of(make_message(reply_to=other))[k] for k in keys] == [None, 31337, 40]
    same = types.MessageReplyHeader(reply_to_msg_id=40, reply_to_peer_id=types.PeerChannel(CID))
    assert [row_of(make_message(reply_to=same))[k] for k in keys] == [40, None, None]
    plain = types.MessageReplyHeader(reply_to_msg_id=41)
    assert [row_of(make_message(reply_to=plain))[k] for k in keys] == [41, None, None]
    # a person's chat or a basic group: the reply is kept, the chat's id is not (people are not identified)
    for peer in (types.PeerUser(6123456789), types.PeerChat(777)):
        header = types.MessageReplyHeader(reply_to_msg_id=9, reply_to_peer_id=peer)
        row = row_of(make_message(reply_to=header))
        assert [row[k] for k in keys] == [None, None, 9]
        assert "6123456789" not in json.dumps(row["raw"])
    assert [row_of(make_message())[k] for k in keys] == [None, None, None]


def test_replies_without_comments_have_no_discussion_channel() -> None:
    row = row_of(make_message(replies=types.MessageReplies(replies=3, replies_pts=1)))
    assert row["replies"] == 3 and row["replies_channel_id"] is None


# ------------------------------------------------------------------------------------------------ media


def _document(mime: str, attributes: list[Any], size: int = 4_000_000) -> types.Document:
    return types.Document(
        id=777,
        access_hash=1,
        file_reference=b"\x00\xffref",
        date=T0,
        mime_type=mime,
        size=size,
        dc_id=2,
        attributes=attributes,
    )


def test_photo_takes_the_largest_size() -> None:
    sizes: list[Any] = [
        types.PhotoStrippedSize("i", b"\x01\x02"),
        types.PhotoSize("m", 320, 240, 15_000),
        types.PhotoSizeProgressive("y", 1280, 960, [10_000, 60_000, 130_000]),
    ]
    photo = types.Photo(id=555, access_hash=1, file_reference=b"ref", date=T0, sizes=sizes, dc_id=2)
    row = row_of(decoded(make_message(message="", media=types.MessageMediaPhoto(photo=photo))))
    assert row["media_type"] == "photo" and row["media_id"] == 555
    assert (row["media_width"], row["media_height"], row["media_size"]) == (1280, 960, 130_000)


def test_video_document_with_attributes() -> None:
    attrs = [
        types.DocumentAttributeVideo(duration=37.5, w=1920, h=1080, supports_streaming=True),
        types.DocumentAttributeFilename("clip.mp4"),
    ]
    media = types.MessageMediaDocument(document=_document("video/mp4", attrs), video=True)
    row = row_of(decoded(make_message(media=media)))
    assert row["media_type"] == "video" and row["media_id"] == 777
    assert row["media_mime"] == "video/mp4" and row["media_size"] == 4_000_000
    assert row["media_duration"] == 37.5
    assert (row["media_width"], row["media_height"]) == (1920, 1080)
    assert row["media_filename"] == "clip.mp4"


def test_document_with_filename() -> None:
    media = types.MessageMediaDocument(
        document=_document("application/pdf", [types.DocumentAttributeFilename("report.pdf")], size=1234)
    )
    row = row_of(decoded(make_message(media=media)))
    assert row["media_type"] == "document"
    assert (row["media_mime"], row["media_size"], row["media_filename"]) == ("application/pdf", 1234, "report.pdf")
    assert row["media_duration"] is None and row["media_width"] is None


@pytest.mark.parametrize(
    ("attributes", "flags", "kind"),
    [
        ([types.DocumentAttributeVideo(duration=5, w=384, h=384, round_message=True)], {}, "round_video"),
        ([types.DocumentAttributeAnimated(), types.DocumentAttributeVideo(duration=2, w=320, h=240)], {}, "animation"),
        ([types.DocumentAttributeAudio(duration=61, voice=True)], {"voice": True}, "voice"),
        ([types.DocumentAttributeAudio(duration=200, title="Song", performer="Band")], {}, "audio"),
        (
            [
                types.DocumentAttributeSticker(alt="🙂", stickerset=types.InputStickerSetEmpty()),
                types.DocumentAttributeImageSize(512, 512),
            ],
            {},
            "sticker",
        ),
    ],
)
def test_document_kinds(attributes: list[Any], flags: dict[str, bool], kind: str) -> None:
    media = types.MessageMediaDocument(document=_document("application/octet-stream", attributes), **flags)
    row = row_of(decoded(make_message(media=media)))
    assert row["media_type"] == kind
    if kind in ("voice", "audio"):
        assert row["media_duration"] == float(attributes[0].duration)


def test_webpage_preview() -> None:
    page = types.WebPage(
        id=888,
        url="https://news.example.org/story",
        display_url="news.example.org/story",
        hash=0,
        site_name="Example",
        title="Something happened",
    )
    row = row_of(
        decoded(
            make_message(message="see https://news.example.org/story", media=types.MessageMediaWebPage(webpage=page))
        )
    )
    assert row["media_type"] == "webpage" and row["media_id"] == 888
    assert row["webpage_url"] == "https://news.example.org/story"
    assert row["webpage_title"] == "Something happened"
    assert row["urls"] == []  # only entities give urls; the preview has its own columns


def test_poll() -> None:
    answers = [types.PollAnswer(types.TextWithEntities(t, []), bytes([i])) for i, t in enumerate(["yes", "no"])]
    poll = types.Poll(id=999, question=types.TextWithEntities("Really?", []), answers=answers, hash=0)
    media = types.MessageMediaPoll(poll=poll, results=types.PollResults(total_voters=10))
    row = row_of(decoded(make_message(message="", media=media)))
    assert row["media_type"] == "poll" and row["media_id"] == 999


@pytest.mark.parametrize(
    ("media", "kind"),
    [
        (types.MessageMediaGeo(types.GeoPoint(13.4, 52.5, 0)), "geo"),
        (types.MessageMediaDice(value=3, emoticon="🎲"), "dice"),
        (types.MessageMediaUnsupported(), "unsupported"),
        (types.MessageMediaStory(peer=types.PeerChannel(5), id=9), "story"),
        (types.MessageMediaEmpty(), None),
    ],
)
def test_other_media_kinds(media: Any, kind: str | None) -> None:
    assert row_of(decoded(make_message(media=media)))["media_type"] == kind


def test_shared_contact_keeps_no_phone_or_user_id() -> None:
    media = types.MessageMediaContact(
        phone_number="+49123456789", first_name="Ann", last_name="B", vcard="TEL:+49123456789", user_id=4242
    )
    row = row_of(decoded(make_message(media=media)))
    assert row["media_type"] == "contact"
    assert "+49123456789" not in row["raw"] and "4242" not in row["raw"]


def test_no_user_id_survives_in_raw_anywhere() -> None:
    person = 5_550_999_888
    msg = make_message(
        media=types.MessageMediaGiveawayResults(
            channel_id=9, launch_msg_id=1, winners_count=1, unclaimed_count=0, winners=[person], until_date=T0
        ),
        replies=types.MessageReplies(
            replies=1, replies_pts=1, comments=True, channel_id=77, recent_repliers=[types.PeerUser(person)]
        ),
        reactions=types.MessageReactions(
            results=[types.ReactionCount(types.ReactionEmoji("👍"), 1)],
            recent_reactions=[types.MessagePeerReaction(types.PeerUser(person), T0, types.ReactionEmoji("👍"))],
        ),
    )
    row = row_of(decoded(msg))
    assert row["media_type"] == "giveaway_results"
    assert str(person) not in row["raw"]


# ------------------------------------------------------------------------------------ reactions & flags


def test_reactions_emoji_custom_and_paid() -> None:
    reactions = types.MessageReactions(
        results=[
            types.ReactionCount(types.ReactionEmoji("👍"), 120),
            types.ReactionCount(types.ReactionCustomEmoji(5_368_324_170_671_202_286), 7),
            types.ReactionCount(types.ReactionPaid(), 3),
        ]
    )
    row = row_of(decoded(make_message(reactions=reactions)))
    assert row["reactions"] == 130
    assert row["reactions_by"] == [
        {"reaction": "👍", "count": 120},
        {"reaction": "custom:5368324170671202286", "count": 7},
        {"reaction": "paid", "count": 3},
    ]


def test_restriction_factcheck_and_noforwards() -> None:
    reasons = [types.RestrictionReason("android", "porn", "Not available on Android")]
    factcheck = types.FactCheck(hash=1, country="DE", text=types.TextWithEntities("This is misleading.", []))
    row = row_of(decoded(make_message(restriction_reason=reasons, factcheck=factcheck, noforwards=True)))
    assert row["restriction_reason"] == [{"platform": "android", "reason": "porn", "text": "Not available on Android"}]
    assert row["factcheck"] == "This is misleading."
    assert row["noforwards"] is True


def test_factcheck_pending_without_text_is_none() -> None:
    row = row_of(decoded(make_message(factcheck=types.FactCheck(hash=1, need_check=True))))
    assert row["factcheck"] is None


# ------------------------------------------------------------------------------------------ not posts


def test_service_and_empty_messages_are_not_posts() -> None:
    service = decoded(
        types.MessageService(
            id=1, peer_id=types.PeerChannel(CID), date=T0, action=types.MessageActionChannelCreate("Title")
        )
    )
    empty = decoded(types.MessageEmpty(id=2, peer_id=types.PeerChannel(CID)))
    assert normalize_message(service, channel_id=CID) is None
    assert normalize_message(empty, channel_id=CID) is None
    assert normalize_message(None, channel_id=CID) is None
    assert not is_post(service) and not is_post(empty) and not is_post(None)
    assert is_post(decoded(make_message()))


# ---------------------------------------------------------------------------------------------- raw JSON


def _jsonish(value: Any) -> Any:
    """Telethon's to_dict() output as JSON would carry it, without None / False / [] (raw omits them)."""
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items() if v is not None and v is not False and v != []}
    if isinstance(value, list):
        return [_jsonish(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value




def test_raw_json_round_trips_to_telethon_to_dict() -> None:
    msg = decoded(rich_message())
    row = row_of(msg)
    raw = json.loads(row["raw"])
    assert raw["_"] == "Message" and raw["id"] == 42 and raw["post"] is True
    assert raw["date"] == T0.isoformat() and raw["grouped_id"] == 2**62 + 1
    assert "out" not in raw  # unset true-flags are left out, as on the wire
    assert _jsonish(raw) == _jsonish(msg.to_dict())
    assert row["tl_layer"] == LAYER and row["telethon_version"] == telethon.__version__


def test_raw_json_encodes_bytes_as_base64() -> None:
    photo = types.Photo(id=5, access_hash=1, file_reference=b"\x00\xff\x10", date=T0, sizes=[], dc_id=2)
    raw = json.loads(row_of(decoded(make_message(media=types.MessageMediaPhoto(photo=photo))))["raw"])
    assert base64.b64decode(raw["media"]["photo"]["file_reference"]) == b"\x00\xff\x10"


def test_stdlib_fallback_gives_the_same_json(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = decoded(rich_message())
    fast = tl_to_json(msg)
    monkeypatch.setattr(normalize, "orjson", None)
    assert tl_to_json(msg) == fast


def test_tl_to_json_of_a_simple_object() -> None:
    assert tl_to_json(types.PeerChannel(5)) == '{"_":"PeerChannel","channel_id":5}'


# ------------------------------------------------------------------------------------ channels and peers


def _channel(**kw: Any) -> types.Channel:
    fields: dict[str, Any] = {
        "id": 1_500_000_000,
        "title": "News",
        "photo": types.ChatPhotoEmpty(),
        "date": T0,
        "broadcast": True,
        "access_hash": -987654321,
        "username": "News_Channel",
        "verified": True,
        "participants_count": 10,
    }
    fields.update(kw)
    return types.Channel(**fields)


def test_normalize_channel_with_full() -> None:
    full = types.ChannelFull(
        id=1_500_000_000,
        about="All the news",
        read_inbox_max_id=0,
        read_outbox_max_id=0,
        unread_count=0,
        chat_photo=types.PhotoEmpty(0),
        notify_settings=types.PeerNotifySettings(),
        bot_info=[],
        pts=1,
        participants_count=12_345,
        linked_chat_id=2_000_000_001,
        available_min_id=10,
        requests_pending=1,
        recent_requesters=[31337],
    )
    reasons = [types.RestrictionReason("ios", "terms", "Unavailable")]
    row = normalize_channel(decoded(_channel(restricted=True, restriction_reason=reasons)), decoded(full))
    assert list(row) == rows.CHANNELS_SCHEMA.names
    assert row["channel_id"] == 1_500_000_000 and row["access_hash"] == -987654321
    assert row["username"] == "News_Channel" and row["title"] == "News" and row["about"] == "All the news"
    assert row["participants_count"] == 12_345
    assert row["created_at"] == T0 and row["linked_chat_id"] == 2_000_000_001 and row["available_min_id"] == 10
    assert row["verified"] is True and row["megagroup"] is False and row["restricted"] is True
    assert row["restriction_reason"] == [{"platform": "ios", "reason": "terms", "text": "Unavailable"}]
    raw = json.loads(row["raw"])
    assert raw["channel"]["id"] == 1_500_000_000 and raw["full"]["about"] == "All the news"
    assert raw["tl_layer"] == LAYER and "31337" not in row["raw"]


def test_normalize_channel_without_full_and_collectible_username() -> None:
    chat = _channel(
        username=None, usernames=[types.Username("old", active=False), types.Username("Fresh", active=True)]
    )
    row = normalize_channel(decoded(chat), None)
    assert row["username"] == "Fresh"
    assert row["about"] is None and row["participants_count"] == 10
    assert json.loads(row["raw"])["full"] is None


def test_normalize_peer() -> None:
    assert normalize_peer(decoded(_channel(megagroup=True, broadcast=None))) == {
        "channel_id": 1_500_000_000,
        "username": "News_Channel",
        "title": "News",
        "megagroup": True,
    }
    forbidden = types.ChannelForbidden(id=7, access_hash=1, title="Gone")
    assert normalize_peer(decoded(forbidden)) == {
        "channel_id": 7,
        "username": None,
        "title": "Gone",
        "megagroup": False,
    }


# ------------------------------------------------------------------------------------------ Arrow tables


def _all_kinds_of_rows() -> list[dict[str, Any]]:
    msgs = [
        rich_message(),
        make_message(id=43, message="", media=types.MessageMediaPhoto(photo=None), views=None, forwards=None),
        make_message(id=44, restriction_reason=[types.RestrictionReason("all", "x", "y")], noforwards=True),
    ]
    return [row_of(decoded(m)) for m in msgs]


def test_posts_table_has_exactly_the_schema() -> None:
    post_rows = _all_kinds_of_rows()
    table = rows.posts_table(post_rows)
    assert table.schema == rows.POSTS_SCHEMA
    assert table.num_rows == 3
    assert table.equals(pa.Table.from_pylist(post_rows, schema=rows.POSTS_SCHEMA))
    assert table.column("reactions_by").to_pylist()[0] == [{"reaction": "👍", "count": 2}]
    assert table.column("posted_at").to_pylist()[0] == T0
    assert rows.posts_table([]).schema == rows.POSTS_SCHEMA


def test_channels_and_peers_tables() -> None:
    chat = decoded(_channel())
    assert rows.channels_table([normalize_channel(chat, None)]).schema == rows.CHANNELS_SCHEMA
    assert rows.peers_table([normalize_peer(chat)]).schema == rows.PEERS_SCHEMA


@pytest.fixture(scope="module")
def con() -> Any:
    from collector._archive import migrations

    c = duckdb.connect(":memory:")
    for mig in migrations.available():      # every migration, as the runner applies them (posts gains columns)
        c.execute(mig.sql)
    yield c
    c.close()


def _duck_types(con: Any, sql: str) -> list[tuple[str, str]]:
    return [(name, typ) for name, typ, *_ in con.execute(f"DESCRIBE {sql}").fetchall()]


@pytest.mark.parametrize(
    ("table", "schema", "builder"),
    [
        ("posts", rows.POSTS_SCHEMA, rows.posts_table),
        ("channels", rows.CHANNELS_SCHEMA, rows.channels_table),
        ("peers", rows.PEERS_SCHEMA, rows.peers_table),
    ],
)
def test_schema_matches_duckdb_table(con: Any, table: str, schema: pa.Schema, builder: Any) -> None:
    db = dict(_duck_types(con, table))
    db_order = [name for name, _ in _duck_types(con, table) if name in schema.names]
    assert db_order == schema.names  # same columns, same order
    arrow = builder([])
    con.register("arrow_rows", arrow)
    try:
        from_arrow = _duck_types(con, "SELECT * FROM arrow_rows")
    finally:
        con.unregister("arrow_rows")
    for name, typ in from_arrow:
        assert typ == db[name].replace("JSON", "VARCHAR"), name


def test_posts_rows_insert_into_duckdb(con: Any) -> None:
    table = rows.posts_table(_all_kinds_of_rows())
    con.register("page", table)
    try:
        cols = ", ".join(rows.POSTS_SCHEMA.names)
        con.execute(
            f"INSERT INTO posts ({cols}, first_seen_at, last_seen_at) "
            f"SELECT {cols}, TIMESTAMPTZ '2025-03-02 00:00:00+00', TIMESTAMPTZ '2025-03-02 00:00:00+00' FROM page"
        )
    finally:
        con.unregister("page")
    got = con.execute(
        "SELECT message_id, hashtags, domains, reactions, raw->>'$._', fwd_channel_id FROM posts ORDER BY message_id"
    ).fetchall()
    assert got[0] == (42, ["tag"], ["x.org"], 2, "Message", 9)
    canon = con.execute("SELECT urls, canonical_urls FROM posts WHERE message_id = 42").fetchone()
    assert canon is not None and len(canon[0]) == len(canon[1]) > 0
    assert [g[0] for g in got] == [42, 43, 44]
