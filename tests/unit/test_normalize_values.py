"""The collector's fast path: `post_values` tuples and `posts_values_table` give exactly what
`normalize_message` rows and `posts_table` give, for every kind of message the simulated world serves."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
from telethon.tl import functions, types

from collector._archive import rows
from collector._parse import normalize
from collector._parse.normalize import POST_COLUMNS, normalize_message, post_values, reaction_counts, reaction_pairs
from collector._simulated import simulated_client
from collector._simulated.generate import generate_channel_world
from tests.helpers.messages import CID, decoded, make_message, rich_message


def _world_messages(posts: int = 600) -> list[Any]:
    """Decoded messages of a generated channel (media, forwards, reactions, replies, service messages)."""
    world = generate_channel_world(11, posts=posts)

    async def page_through() -> list[Any]:
        client = simulated_client(world)
        resolved = await client(functions.contacts.ResolveUsernameRequest(username=world.seeds[0].lstrip("@")))
        chat = resolved.chats[0]
        peer = types.InputPeerChannel(chat.id, chat.access_hash)
        found: list[Any] = []
        position = 0
        while True:
            answer = await client(functions.messages.GetHistoryRequest(
                peer=peer, offset_id=position + 1, offset_date=None, add_offset=-100, limit=100, max_id=0,
                min_id=position, hash=0))
            if not answer.messages:
                return found
            found += answer.messages
            position = max(m.id for m in answer.messages)

    return asyncio.run(page_through())


@pytest.fixture(scope="module")
def messages() -> list[Any]:
    return [
        *_world_messages(),
        decoded(rich_message()),
        decoded(make_message(id=43, message="", media=types.MessageMediaPhoto(photo=None), views=None, forwards=None)),
        decoded(make_message(id=44, restriction_reason=[types.RestrictionReason("all", "x", "y")], noforwards=True)),
        decoded(make_message(id=45, reactions=types.MessageReactions(results=[
            types.ReactionCount(types.ReactionCustomEmoji(document_id=9), 3),
            types.ReactionCount(types.ReactionPaid(), 1)]))),
        decoded(make_message(id=46, message="😀 café ф")),
    ]


def test_post_columns_are_the_schema_order() -> None:
    assert list(POST_COLUMNS) == rows.POSTS_SCHEMA.names


def test_values_are_the_row_in_column_order(messages: list[Any]) -> None:
    kinds = set()
    for msg in messages:
        row = normalize_message(msg, channel_id=CID)
        values = post_values(msg, channel_id=CID)
        if row is None:
            assert values is None
            continue
        assert values is not None and len(values) == len(POST_COLUMNS)
        as_row = dict(zip(POST_COLUMNS, values, strict=True))
        raw = as_row.pop("raw")
        assert (raw.decode() if isinstance(raw, bytes) else raw) == row["raw"] == normalize.tl_to_json(msg)
        assert as_row.pop("reactions_by") == [(r["reaction"], r["count"]) for r in row["reactions_by"]]
        assert as_row == {k: v for k, v in row.items() if k not in ("raw", "reactions_by")}
        kinds.add(row["media_type"])
    assert len(kinds) >= 4      # the generated world really served several media kinds


def test_values_table_equals_posts_table(messages: list[Any]) -> None:
    post_rows = [r for r in (normalize_message(m, channel_id=CID) for m in messages) if r is not None]
    values = [v for v in (post_values(m, channel_id=CID) for m in messages) if v is not None]
    assert len(values) == len(post_rows) > 100
    table = rows.posts_values_table(values)
    assert table.schema == rows.POSTS_SCHEMA
    assert table.equals(rows.posts_table(post_rows))
    assert rows.posts_values_table(values[:1]).equals(rows.posts_table(post_rows[:1]))
    empty = rows.posts_values_table([])
    assert empty.schema == rows.POSTS_SCHEMA and empty.num_rows == 0


def test_values_table_takes_null_lists_and_str_raw() -> None:
    values = list(post_values(decoded(rich_message()), channel_id=CID) or ())
    values[POST_COLUMNS.index("hashtags")] = None
    values[POST_COLUMNS.index("raw")] = '{"_":"Message"}'
    table = rows.posts_values_table([tuple(values)])
    assert table.column("hashtags").to_pylist() == [None]
    assert table.column("raw").to_pylist() == ['{"_":"Message"}']
    assert table.column("reactions_by").to_pylist() == [[{"reaction": "👍", "count": 2}]]
    with pytest.raises(ValueError, match="columns"):
        rows.posts_values_table([tuple(values[:-1])])


def test_values_table_rejects_invalid_utf8_raw() -> None:
    values = list(post_values(decoded(rich_message()), channel_id=CID) or ())
    values[POST_COLUMNS.index("raw")] = b"\xff"
    with pytest.raises(pa.ArrowInvalid):
        rows.posts_values_table([tuple(values)])


def test_reaction_pairs_match_reaction_counts() -> None:
    reactions = types.MessageReactions(results=[
        types.ReactionCount(types.ReactionEmoji("👍"), 5),
        types.ReactionCount(types.ReactionCustomEmoji(document_id=77), 2),
        types.ReactionCount(types.ReactionPaid(), 1),
    ])
    total, pairs = reaction_pairs(reactions)
    assert (total, [{"reaction": r, "count": n} for r, n in pairs]) == reaction_counts(reactions)
    assert pairs == [("👍", 5), ("custom:77", 2), ("paid", 1)]
    assert reaction_pairs(None) == (0, []) == reaction_pairs(types.MessageReactions(results=[]))


def test_write_posts_takes_a_built_table(tmp_path: Any) -> None:
    from collector import Archive

    msgs = [decoded(make_message(id=i, message=f"post {i}")) for i in (1, 2, 3)]
    values = [v for v in (post_values(m, channel_id=CID) for m in msgs) if v is not None]
    now = make_message().date + timedelta(days=1)
    with Archive(tmp_path / "a.duckdb") as archive:
        written = archive.write_posts(rows.posts_values_table(values), now, cursor=(CID, 3))
        assert (written.new_posts, written.observed) == (3, 3)
        assert archive.write_posts(rows.posts_values_table([]), now).observed == 0
        got = archive.con.execute("SELECT message_id, text, raw::VARCHAR FROM posts ORDER BY 1").fetchall()
        assert got == [(m.id, m.message, normalize.tl_to_json(m)) for m in msgs]
        assert archive.cursor(CID) == 3
