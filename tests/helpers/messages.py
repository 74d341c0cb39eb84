"""Telethon messages built by hand for the normalizer's tests (tests/unit/test_normalize*.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from telethon.extensions import BinaryReader
from telethon.tl import types

CID = 1_234_567_890
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_message(**kw: Any) -> types.Message:
    """A channel post with sensible defaults; keyword arguments override any field."""
    fields: dict[str, Any] = {
        "id": 42,
        "peer_id": types.PeerChannel(CID),
        "date": T0,
        "message": "hello",
        "post": True,
        "views": 1000,
        "forwards": 7,
    }
    fields.update(kw)
    return types.Message(**fields)


def decoded(obj: Any) -> Any:
    """``obj`` after a TL round trip: the classes and values the collector really gets from Telethon."""
    return BinaryReader(bytes(obj)).tgread_object()


def rich_message() -> types.Message:
    page = types.WebPage(id=1, url="https://x.org", display_url="x.org", hash=0, title="X")
    return make_message(
        message="🔥 #tag https://x.org",
        entities=[types.MessageEntityHashtag(3, 4), types.MessageEntityUrl(8, 13)],
        media=types.MessageMediaWebPage(webpage=page),
        fwd_from=types.MessageFwdHeader(date=T0, from_id=types.PeerChannel(9), channel_post=3),
        reactions=types.MessageReactions(results=[types.ReactionCount(types.ReactionEmoji("👍"), 2)]),
        replies=types.MessageReplies(replies=1, replies_pts=2, comments=True, channel_id=77),
        restriction_reason=[types.RestrictionReason("all", "spam", "text")],
        grouped_id=2**62 + 1,
        edit_date=T0 + timedelta(minutes=5),
    )
