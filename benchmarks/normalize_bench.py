"""How fast `collector._parse.normalize` is compared with Telethon's own TL decoding of the same messages.

Builds a realistic ``messages.ChannelMessages`` answer (100 channel posts: Cyrillic text with emoji and
entities, photos, videos, link previews, polls, forwards, albums, reactions, comments), serialises it to
TL bytes once, then times, per message:

- ``decode``: ``BinaryReader(...).tgread_object()`` of the whole answer (the floor the project is measured
  against),
- ``post_values (no raw)``: every column except ``raw``,
- ``post_values``: the row tuple as the collector makes it (raw JSON included), and ``normalize_message``
  (the same row as a dict),
- ``raw only`` with our serialiser and with Telethon's ``to_json()`` for comparison,
- ``posts_values_table``: the collector's tuples -> Arrow; ``posts_table``: dict rows -> Arrow (columnar)
  and ``pa.Table.from_pylist`` for comparison.

Run: ``PYTHONPATH=. python benchmarks/normalize_bench.py`` (or ``make bench``).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from telethon.extensions import BinaryReader
from telethon.tl import types
from telethon.tl.types import messages as tl_messages

from collector._archive import rows
from collector._parse import normalize

_WORDS = [
    "новости",
    "война",
    "мир",
    "Україна",
    "economy",
    "sanctions",
    "фронт",
    "заявление",
    "официально",
    "срочно",
    "видео",
]
_EMOJI = ["🔥", "❗️", "⚡", "🇺🇦", "👍", "😡", "🙏"]


def _entity_text(rng: random.Random) -> tuple[str, list[Any]]:
    """A post text with emoji (some outside the BMP) and hashtag/url/mention/text-link/bold entities."""
    parts: list[str] = []
    entities: list[Any] = []
    offset = 0  # in UTF-16 units

    def add(s: str, entity: Any = None) -> None:
        nonlocal offset
        if entity is not None:
            entity.offset, entity.length = offset, len(s.encode("utf-16-le")) // 2
            entities.append(entity)
        parts.append(s)
        offset += len(s.encode("utf-16-le")) // 2

    add(rng.choice(_EMOJI) + " ")
    add(" ".join(rng.choices(_WORDS, k=rng.randint(3, 12))), types.MessageEntityBold(0, 0))
    add("\n\n" + " ".join(rng.choices(_WORDS, k=rng.randint(10, 60))) + " ")
    if rng.random() < 0.5:
        add("#" + rng.choice(_WORDS), types.MessageEntityHashtag(0, 0))
        add(" ")
    if rng.random() < 0.4:
        add(f"https://www.example{rng.randint(1, 50)}.com/a/{rng.randint(1, 10**6)}", types.MessageEntityUrl(0, 0))
        add(" ")
    if rng.random() < 0.3:
        add(
            "читать",
            types.MessageEntityTextUrl(0, 0, url=f"https://t.me/chan{rng.randint(1, 99)}/{rng.randint(1, 9999)}"),
        )
        add(" ")
    if rng.random() < 0.3:
        add("@chan" + str(rng.randint(1, 99)), types.MessageEntityMention(0, 0))
    return "".join(parts), entities


def _media(rng: random.Random, i: int) -> Any:
    r = rng.random()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    if r < 0.40:
        sizes: list[Any] = [
            types.PhotoStrippedSize("i", b"\x01" * 40),
            types.PhotoSize("m", 320, 240, 15000),
            types.PhotoSizeProgressive("y", 1280, 960, [10000, 40000, 90000, 130000]),
        ]
        return types.MessageMediaPhoto(photo=types.Photo(10**17 + i, 10**18, b"\x00ref" * 4, now, sizes, 2))
    if r < 0.50:
        attrs = [
            types.DocumentAttributeVideo(duration=37.5, w=1280, h=720, supports_streaming=True),
            types.DocumentAttributeFilename("clip.mp4"),
        ]
        thumbs = [types.PhotoStrippedSize("i", b"\x02" * 40), types.PhotoSize("m", 320, 180, 9000)]
        doc = types.Document(10**17 + i, 10**18, b"\x00ref" * 4, now, "video/mp4", 4_000_000, 2, attrs, thumbs=thumbs)
        return types.MessageMediaDocument(document=doc, video=True)
    if r < 0.55:
        page = types.WebPage(
            10**17 + i,
            "https://news.example.org/story",
            "news.example.org/story",
            0,
            type="article",
            site_name="Example News",
            title="Something happened",
            description="A longer description " * 5,
        )
        return types.MessageMediaWebPage(webpage=page)
    if r < 0.57:
        answers = [types.PollAnswer(types.TextWithEntities(w, []), bytes([k])) for k, w in enumerate(_WORDS[:4])]
        poll = types.Poll(10**17 + i, types.TextWithEntities("Вопрос?", []), answers, 0)
        return types.MessageMediaPoll(poll, types.PollResults(total_voters=123))
    return None


def sample_messages(n: int = 100, *, seed: int = 1, channel_id: int = 1_234_567_890) -> list[types.Message]:
    """``n`` realistic channel posts (deterministic from ``seed``)."""
    rng = random.Random(seed)
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    out: list[types.Message] = []
    for i in range(1, n + 1):
        text, entities = _entity_text(rng)
        media = _media(rng, i)
        if media is not None and rng.random() < 0.5:
            text, entities = "", []
        fwd = None
        if rng.random() < 0.2:
            fwd = types.MessageFwdHeader(
                date=t0 - timedelta(hours=rng.randint(1, 100)),
                from_id=types.PeerChannel(rng.randint(10**9, 2 * 10**9)),
                channel_post=rng.randint(1, 10**5),
            )
        reactions = None
        if rng.random() < 0.7:
            results = [
                types.ReactionCount(types.ReactionEmoji(e), rng.randint(1, 5000))
                for e in rng.sample(_EMOJI, rng.randint(1, 5))
            ]
            if rng.random() < 0.2:
                results.append(types.ReactionCount(types.ReactionCustomEmoji(5_000_000_000 + i), 7))
            reactions = types.MessageReactions(results=results)
        replies = None
        if rng.random() < 0.3:
            replies = types.MessageReplies(rng.randint(0, 300), 1000 + i, comments=True, channel_id=2 * 10**9 + 1)
        views = rng.randint(100, 10**6)
        out.append(
            types.Message(
                id=i,
                peer_id=types.PeerChannel(channel_id),
                date=t0 + timedelta(minutes=7 * i),
                message=text,
                post=True,
                entities=entities or None,
                media=media,
                fwd_from=fwd,
                views=views,
                forwards=rng.randint(0, views // 50),
                replies=replies,
                reactions=reactions,
                edit_date=t0 + timedelta(minutes=7 * i + 3) if rng.random() < 0.1 else None,
                grouped_id=10**17 + i // 3 if media is not None and rng.random() < 0.2 else None,
                post_author="Editor" if rng.random() < 0.1 else None,
            )
        )
    return out


def channel_messages_bytes(n: int = 100, *, seed: int = 1) -> bytes:
    """TL bytes of a ``messages.ChannelMessages`` answer with ``n`` sample posts."""
    chat = types.Channel(
        1_234_567_890,
        "Sample",
        types.ChatPhotoEmpty(),
        datetime(2020, 1, 1, tzinfo=UTC),
        broadcast=True,
        access_hash=42,
        username="sample",
    )
    answer = tl_messages.ChannelMessages(
        pts=1, count=n, messages=sample_messages(n, seed=seed), topics=[], chats=[chat], users=[]
    )
    return bytes(answer)


def _rate(fn: Callable[[], Any], items: int, seconds: float = 1.0) -> float:
    """Items per second of ``fn`` (which processes ``items`` items), best of a few timed rounds."""
    fn()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        if time.perf_counter() > deadline:
            break
    return items / best


def benchmark_normalize(n: int = 100, seconds: float = 1.0) -> dict[str, float]:
    """Messages (or rows) per second for each stage; see the module docstring."""
    data = channel_messages_bytes(n)
    msgs = BinaryReader(data).tgread_object().messages
    cid = 1_234_567_890

    def no_raw() -> None:
        saved = normalize._dumps_utf8
        normalize._dumps_utf8 = lambda data: ""
        try:
            for m in msgs:
                normalize.post_values(m, channel_id=cid)
        finally:
            normalize._dumps_utf8 = saved

    post_rows = [r for r in (normalize.normalize_message(m, channel_id=cid) for m in msgs) if r is not None]
    values = [v for v in (normalize.post_values(m, channel_id=cid) for m in msgs) if v is not None]
    gc.collect()
    return {
        "decode": _rate(lambda: BinaryReader(data).tgread_object(), n, seconds),
        "post_values (no raw)": _rate(no_raw, n, seconds),
        "post_values (the collector's)": _rate(lambda: [normalize.post_values(m, channel_id=cid) for m in msgs], n,
                                               seconds),
        "normalize_message (dicts)": _rate(lambda: [normalize.normalize_message(m, channel_id=cid) for m in msgs],
                                           n, seconds),
        "raw only (tl_to_json)": _rate(lambda: [normalize.tl_to_json(m) for m in msgs], n, seconds),
        "raw only (telethon to_json)": _rate(lambda: [m.to_json() for m in msgs], n, seconds),
        "posts_values_table (the collector's)": _rate(lambda: rows.posts_values_table(values), n, seconds),
        "posts_table (columnar)": _rate(lambda: rows.posts_table(post_rows), n, seconds),
        "posts_table (from_pylist)": _rate(
            lambda: pa.Table.from_pylist(post_rows, schema=rows.POSTS_SCHEMA), n, seconds
        ),
    }


def main() -> None:
    results = benchmark_normalize()
    floor = results["decode"]
    for name, rate in results.items():
        print(f"{name:30s} {rate:>10,.0f} /s   {floor / rate:5.2f} x decode time")


if __name__ == "__main__":
    main()
