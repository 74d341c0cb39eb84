"""The simulated Telegram server, exercised through a real ``telethon.TelegramClient``.

Worlds are built by hand from the model records, so every expectation here is checked against the
records themselves (or against a brute-force reading of Telegram's documented paging rule).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from telethon import TelegramClient, errors, helpers, utils
from telethon.tl import functions, types

from collector._simulated import Fault, SimulatedSender, World, simulated_client, tl_build
from collector._simulated.model import Entity, Media, SimChannel, SimForward, SimMessage, Version
from collector._simulated.server import history_window, is_closed, request_name
from collector._simulated.tl_build import SELF_USER_ID

T = TypeVar("T")
T0 = datetime(2024, 3, 1, tzinfo=UTC)
MAIN, SOURCE, PRIVATE, GROUP = 1_500_000_001, 1_500_000_002, 1_500_000_003, 1_500_000_004
LINKED = 1_600_000_001
BOT = 5_000_000_001


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def post(cid: int, mid: int, *, text: str | None = None, **kw: Any) -> SimMessage:
    at = T0 + timedelta(hours=mid)
    body = f"post {mid} of {cid}" if text is None else text
    entities = kw.pop("entities", ())
    return SimMessage(cid, mid, at, [Version(at, None, body, entities)], final_views=5000,
                      final_forwards=50, final_replies=7, **kw)


def channel(cid: int, username: str, n: int, **kw: Any) -> SimChannel:
    msgs = kw.pop("messages", None) or [post(cid, i) for i in range(1, n + 1)]
    return SimChannel(cid, cid * 7 + 3, f"Channel {username}", f"About {username}", T0 - timedelta(days=1),
                      [(T0 - timedelta(days=1), username)], 1000, 10.0, messages=msgs, **kw)


def build_world() -> World:
    """MAIN: 250 ids (1 = channel created, 3 = pin of 2), deletions, a forward from SOURCE, media, a via-bot."""
    msgs = [post(MAIN, i) for i in range(1, 251)]
    msgs[0] = SimMessage(MAIN, 1, T0 + timedelta(hours=1), [Version(T0, None, "")], action="channel_create")
    msgs[2] = SimMessage(MAIN, 3, T0 + timedelta(hours=3), [Version(T0, None, "")], action="pin",
                         pinned_message_id=2)
    for i in (10, 11, 12, 120, 249):
        msgs[i - 1].deleted_at = T0 + timedelta(hours=i + 1)
    msgs[19].fwd = SimForward(SOURCE, 4, T0 + timedelta(hours=4), post_author="Ann")
    msgs[20].fwd = SimForward(None, None, T0, from_name="Someone hidden")
    msgs[21].via_bot_id = BOT
    msgs[22].grouped_id = 777
    msgs[22].media = Media("photo", 9001, width=800, height=600, size=50_000)
    msgs[23].media = Media("video", 9002, mime="video/mp4", size=10**6, duration=12.5, width=640, height=360,
                           filename="clip.mp4")
    msgs[24].media = Media("document", 9003, mime="application/pdf", size=2048, filename="report.pdf")
    msgs[25].media = Media("audio", 9004, size=4000, duration=180, title="Song")
    msgs[26].media = Media("voice", 9005, size=3000, duration=4)
    msgs[27].media = Media("webpage", 9006, url="https://example.org/a/b", title="Example")
    msgs[28].media = Media("poll", 9007, title="Yes or no?")
    msgs[29].reply_to_message_id = 28
    msgs[30].restriction_reason = (("android", "porn", "Hidden on Android"),)
    msgs[31].factcheck = "Missing context."
    msgs[32].noforwards = True
    msgs[33].post_author = "Editor"
    msgs[34].final_reactions = (("👍", 300), ("custom:5368324170671202286", 40))
    msgs[35].versions.append(Version(T0 + timedelta(hours=40), T0 + timedelta(hours=40), "edited text"))
    main = channel(MAIN, "main_channel", 0, messages=msgs, linked_chat_id=LINKED)
    return World(
        channels={
            MAIN: main,
            SOURCE: channel(SOURCE, "source_ch", 10),
            PRIVATE: channel(PRIVATE, "gone_private", 5, private_from=T0 + timedelta(days=2)),
            GROUP: channel(GROUP, "public_group", 5, megagroup=True),
        },
        now=T0 + timedelta(days=30),
        missing_usernames={"nobody_here"},
    )


def peer(world: World, cid: int = MAIN) -> types.InputPeerChannel:
    return types.InputPeerChannel(cid, world.channels[cid].access_hash)


def history(cid: int, world: World, **kw: Any) -> functions.messages.GetHistoryRequest:
    args: dict[str, Any] = dict(offset_id=0, offset_date=None, add_offset=0, limit=100, max_id=0, min_id=0, hash=0)
    args.update(kw)
    return functions.messages.GetHistoryRequest(peer(world, cid), **args)


def visible_ids(world: World, cid: int = MAIN) -> list[int]:
    return [m.message_id for m in world.channels[cid].visible_messages(world.now)]


# -- round trips -----------------------------------------------------------------------------------


def test_resolve_and_entity_cache() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        ch = await client.get_entity("@main_channel")
        assert isinstance(ch, types.Channel)
        assert (ch.id, ch.access_hash, ch.username, ch.title) == (MAIN, MAIN * 7 + 3, "main_channel",
                                                                  "Channel main_channel")
        assert ch.broadcast and not ch.megagroup
        assert ch.participants_count == world.channels[MAIN].participants_at(world.now)
        # The session cached it: a second lookup by username costs no request.
        await client.get_input_entity("main_channel")
        group = await client.get_entity("https://t.me/public_group")
        assert group.megagroup and not group.broadcast

    run(go)
    assert world.requests["contacts.ResolveUsername"] == 2


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("nobody_here", errors.UsernameNotOccupiedError),       # listed as missing
        ("no_such_chan", errors.UsernameNotOccupiedError),      # never existed
        ("gone_private", errors.UsernameNotOccupiedError),      # private now: its username is gone
        ("ab", errors.UsernameInvalidError),                    # too short
        ("9starts_digit", errors.UsernameInvalidError),
        ("double__under", errors.UsernameInvalidError),
        ("trailing_", errors.UsernameInvalidError),
        ("x" * 33, errors.UsernameInvalidError),
        ("bad-char", errors.UsernameInvalidError),
    ],
)
def test_resolve_errors(name: str, error: type[Exception]) -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        with pytest.raises(error):
            await client(functions.contacts.ResolveUsernameRequest(name))

    run(go)


def test_get_channels_and_full_channel() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        chats = await client(functions.channels.GetChannelsRequest([
            types.InputChannel(MAIN, world.channels[MAIN].access_hash),
            types.InputChannel(SOURCE, world.channels[SOURCE].access_hash),
        ]))
        assert [c.id for c in chats.chats] == [MAIN, SOURCE]
        full = await client(functions.channels.GetFullChannelRequest(peer(world)))
        fc = full.full_chat
        assert (fc.id, fc.about, fc.linked_chat_id, fc.pinned_msg_id) == (MAIN, "About main_channel", LINKED, 2)
        assert fc.participants_count == world.channels[MAIN].participants_at(world.now)
        assert [c.id for c in full.chats] == [MAIN, LINKED]

    run(go)


def test_history_answer_matches_the_records() -> None:
    world = build_world()
    main = world.channels[MAIN]

    async def go() -> None:
        client = simulated_client(world)
        page = await client(history(MAIN, world, offset_id=41))
        assert isinstance(page, types.messages.ChannelMessages)
        assert page.count == len(visible_ids(world))
        ids = [m.id for m in page.messages]
        assert ids == [i for i in range(40, 0, -1) if i not in (10, 11, 12)]
        by_id = {m.id: m for m in page.messages}
        for m in page.messages:
            if isinstance(m, types.Message):
                state = main.messages[m.id - 1].state_at(world.now)
                assert (m.message, m.views, m.forwards, m.post) == (state.text, state.views, state.forwards, True)
                assert m.replies.comments and m.replies.channel_id == LINKED
                assert m.replies.replies == state.replies
        create, pin = by_id[1], by_id[3]
        assert isinstance(create.action, types.MessageActionChannelCreate)
        assert create.action.title == main.title
        assert isinstance(pin.action, types.MessageActionPinMessage) and pin.reply_to.reply_to_msg_id == 2
        assert by_id[2].pinned
        fwd = by_id[20].fwd_from
        assert (fwd.from_id, fwd.channel_post, fwd.post_author) == (types.PeerChannel(SOURCE), 4, "Ann")
        assert fwd.date == T0 + timedelta(hours=4)
        assert by_id[21].fwd_from.from_name == "Someone hidden" and by_id[21].fwd_from.from_id is None
        assert by_id[22].via_bot_id == BOT
        assert [c.id for c in page.chats] == [MAIN, SOURCE]
        assert [u.id for u in page.users] == [BOT] and page.users[0].bot
        assert by_id[23].grouped_id == 777
        assert by_id[30].reply_to.reply_to_msg_id == 28
        assert by_id[31].restriction_reason[0].reason == "porn"
        assert by_id[32].factcheck.text.text == "Missing context."
        assert by_id[33].noforwards
        assert by_id[34].post_author == "Editor"
        counts = {(type(r.reaction).__name__, r.count) for r in by_id[35].reactions.results}
        expected = {("ReactionEmoji", n) for k, n in main.messages[34].state_at(world.now).reactions
                    if not k.startswith("custom:")}
        assert expected <= counts
        custom = [r.reaction for r in by_id[35].reactions.results if isinstance(r.reaction,
                                                                                types.ReactionCustomEmoji)]
        assert custom[0].document_id == 5368324170671202286
        assert (by_id[36].message, by_id[36].edit_date) == ("edited text", T0 + timedelta(hours=40))

    run(go)


def test_media_kinds() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        got = await client.get_messages(peer(world), ids=list(range(23, 30)))
        photo, video, doc, audio, voice, web, poll = (m.media for m in got)
        assert isinstance(photo, types.MessageMediaPhoto) and photo.photo.id == 9001
        assert photo.photo.sizes[-1].w == 800 and photo.photo.sizes[-1].size == 50_000
        assert isinstance(video, types.MessageMediaDocument) and video.video
        v_attr = next(a for a in video.document.attributes if isinstance(a, types.DocumentAttributeVideo))
        assert (v_attr.duration, v_attr.w, v_attr.h, video.document.size) == (12.5, 640, 360, 10**6)
        assert got[1].file.name == "clip.mp4"
        assert doc.document.mime_type == "application/pdf" and got[2].file.name == "report.pdf"
        a_attr = audio.document.attributes[0]
        assert isinstance(a_attr, types.DocumentAttributeAudio) and a_attr.duration == 180 and not a_attr.voice
        assert voice.voice and voice.document.attributes[0].voice
        assert isinstance(web.webpage, types.WebPage)
        assert (web.webpage.url, web.webpage.display_url, web.webpage.title) == (
            "https://example.org/a/b", "example.org/a/b", "Example")
        assert isinstance(poll, types.MessageMediaPoll) and poll.poll.question.text == "Yes or no?"

    run(go)


def test_unicode_and_entities_survive() -> None:
    text = "Привет 👋🏽 #новости see https://t.me/x and **bold** @someone"
    u16 = helpers.add_surrogate(text)
    def span(s: str) -> tuple[int, int]:
        start = u16.index(helpers.add_surrogate(s))
        return start, len(helpers.add_surrogate(s))
    ents = (
        Entity("hashtag", *span("#новости")),
        Entity("url", *span("https://t.me/x")),
        Entity("text_url", *span("see"), url="https://example.org/ü"),
        Entity("bold", *span("**bold**")),
        Entity("mention", *span("@someone")),
        Entity("custom_emoji", *span("👋🏽"), url="5368324170671202286"),
    )
    world = World(channels={MAIN: channel(MAIN, "main_channel", 0,
                                          messages=[post(MAIN, 1, text=text, entities=ents)])},
                  now=T0 + timedelta(days=1))

    async def go() -> None:
        client = simulated_client(world)
        (msg,) = await client.get_messages(peer(world), ids=[1])
        assert msg.message == text
        inner = utils.get_inner_text(msg.message, msg.entities)
        assert inner == ["#новости", "https://t.me/x", "see", "**bold**", "@someone", "👋🏽"]
        kinds = [type(e).__name__ for e in msg.entities]
        assert kinds == ["MessageEntityHashtag", "MessageEntityUrl", "MessageEntityTextUrl", "MessageEntityBold",
                         "MessageEntityMention", "MessageEntityCustomEmoji"]
        assert msg.entities[2].url == "https://example.org/ü"
        assert msg.entities[5].document_id == 5368324170671202286

    run(go)


def test_get_messages_deleted_missing_and_limits() -> None:
    world = build_world()
    main = world.channels[MAIN]
    main.available_min_id = 5

    async def go() -> None:
        client = simulated_client(world)
        got = await client.get_messages(peer(world), ids=[4, 10, 13, 9999, 250, 249])
        assert [m.id if m else None for m in got] == [None, None, 13, None, 250, None]
        raw = await client(functions.channels.GetMessagesRequest(
            peer(world), [types.InputMessageID(i) for i in (11, 13, 0)] + [types.InputMessagePinned()]))
        # The pinned post (2) lies below available_min_id (history cleared up to 5): gone as well.
        assert [type(m).__name__ for m in raw.messages] == ["MessageEmpty", "Message", "MessageEmpty",
                                                            "MessageEmpty"]
        assert raw.messages[0].id == 11
        with pytest.raises(errors.BadRequestError, match="MESSAGE_IDS_TOO_MANY"):
            await client(functions.channels.GetMessagesRequest(peer(world), [types.InputMessageID(i)
                                                                             for i in range(1, 102)]))
        with pytest.raises(errors.MessageIdsEmptyError):
            await client(functions.channels.GetMessagesRequest(peer(world), []))
        # 100 ids is fine.
        ok = await client(functions.channels.GetMessagesRequest(peer(world), [types.InputMessageID(i)
                                                                             for i in range(1, 101)]))
        assert len(ok.messages) == 100
        # A message posted after world.now does not exist yet; advancing the clock reveals it.
        main.messages[-1].posted_at = world.now + timedelta(hours=1)
        main.messages[-1].versions[0] = Version(main.messages[-1].posted_at, None, "later")
        assert (await client.get_messages(peer(world), ids=[250]))[0] is None
        world.advance(timedelta(hours=2))
        assert (await client.get_messages(peer(world), ids=[250]))[0].message == "later"

    run(go)


def test_messages_views() -> None:
    world = build_world()
    main = world.channels[MAIN]

    async def go() -> None:
        client = simulated_client(world)
        res = await client(functions.messages.GetMessagesViewsRequest(peer(world), [13, 10, 5000], False))
        v13 = main.messages[12].state_at(world.now)
        assert (res.views[0].views, res.views[0].forwards, res.views[0].replies.replies) == (
            v13.views, v13.forwards, v13.replies)
        assert res.views[1].views is None and res.views[2].views is None
        with pytest.raises(errors.BadRequestError, match="MUST_NOT_INFLATE_VIEWS"):
            await client(functions.messages.GetMessagesViewsRequest(peer(world), [13], True))

    run(go)
    assert world.requests["messages.GetMessagesViews"] == 2


def test_get_me_and_unknown_request() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        me = await client.get_me()
        assert me.id == SELF_USER_ID and me.is_self
        assert (await client.get_me(input_peer=True)).user_id == SELF_USER_ID
        with pytest.raises(errors.BadRequestError, match="METHOD_NOT_SIMULATED_MESSAGES_SENDMESSAGE"):
            await client(functions.messages.SendMessageRequest(peer(world), "hi"))

    run(go)
    assert world.requests["messages.SendMessage"] == 1


def test_wrapped_requests_and_containers() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        inner = functions.channels.GetMessagesRequest(peer(world), [types.InputMessageID(13)])
        wrapped = functions.InvokeWithLayerRequest(229, functions.InitConnectionRequest(
            1, "pc", "linux", "1.0", "en", "", "en", functions.InvokeWithTakeoutRequest(42, inner)))
        res = await client(wrapped)
        assert res.messages[0].id == 13
        pinned = await client(functions.channels.GetMessagesRequest(peer(world), [types.InputMessagePinned()]))
        assert pinned.messages[0].id == 2 and pinned.messages[0].pinned
        both = await client([inner, functions.users.GetUsersRequest([types.InputUserSelf()])])
        assert both[0].messages[0].id == 13 and both[1][0].is_self
        sender = client._sender
        assert isinstance(sender, SimulatedSender)
        futures = sender.send([inner, inner])
        assert isinstance(futures, list) and len(futures) == 2
        assert [(await f).messages[0].id for f in futures] == [13, 13]

    run(go)
    assert world.requests["channels.GetMessages"] == 5   # wrapped, pinned, in a container, 2 raw
    assert "InvokeWithLayer" not in world.requests


def test_request_name() -> None:
    assert request_name(functions.contacts.ResolveUsernameRequest("x")) == "contacts.ResolveUsername"
    assert request_name(functions.InvokeWithLayerRequest(1, None)) == "InvokeWithLayer"


# -- access ----------------------------------------------------------------------------------------


def test_wrong_hash_private_and_closed() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        bad = types.InputPeerChannel(MAIN, 12345)
        with pytest.raises(errors.ChannelInvalidError):
            await client(functions.channels.GetFullChannelRequest(bad))
        with pytest.raises(errors.ChannelInvalidError):
            await client.get_messages(bad, ids=[13])
        with pytest.raises(errors.ChannelInvalidError):
            await client(functions.channels.GetFullChannelRequest(types.InputPeerChannel(42, 1)))
        with pytest.raises(errors.ChannelPrivateError):
            await client(history(PRIVATE, world))
        with pytest.raises(errors.ChannelPrivateError):
            await client(functions.channels.GetFullChannelRequest(peer(world, PRIVATE)))
        with pytest.raises(errors.PeerIdInvalidError):
            await client(functions.messages.GetHistoryRequest(types.InputPeerUser(1, 2), 0, None, 0, 10, 0, 0, 0))
        # Before it went private, the same hash worked.
        world.now = T0 + timedelta(days=1)
        page = await client(history(PRIVATE, world))
        assert [m.id for m in page.messages] == [5, 4, 3, 2, 1]

    run(go)


def test_closed_field_if_the_model_has_one() -> None:
    class Closed(SimChannel):   # a subclass of a slots dataclass gets a __dict__: room for a new field
        pass

    ch = channel(MAIN, "main_channel", 3)
    closed = Closed(**{f: getattr(ch, f) for f in SimChannel.__dataclass_fields__})
    assert not is_closed(closed, T0)
    setattr(closed, "closed", True)  # noqa: B010  (a field the model may grow)
    assert is_closed(closed, T0)
    world = World(channels={MAIN: closed}, now=T0 + timedelta(days=1))

    async def go() -> None:
        client = simulated_client(world)
        got = await client.get_entity("main_channel")    # still resolvable ...
        assert isinstance(got, types.ChannelForbidden)
        with pytest.raises(errors.ChannelPrivateError):     # ... but closed to us
            await client.get_messages(got, limit=5)

    run(go)


# -- flood waits and faults ----------------------------------------------------------------------------


def test_short_flood_wait_is_slept_by_telethon() -> None:
    world = build_world()
    fault = world.inject(Fault("FLOOD_WAIT", request="messages.GetHistory", seconds=1, at=1))

    async def go() -> float:
        client = simulated_client(world, flood_sleep_threshold=2)
        t = time.monotonic()
        page = await client(history(MAIN, world, limit=5))
        assert len(page.messages) == 5
        return time.monotonic() - t

    elapsed = run(go)
    assert fault.fired == 1 and elapsed >= 0.9
    assert world.requests["messages.GetHistory"] == 2
    assert "messages.GetHistory" not in world.flood_until   # served


def test_long_flood_wait_raises_and_persists_across_clients() -> None:
    world = build_world()
    world.inject(Fault("FLOOD_WAIT", request="contacts.ResolveUsername", seconds=3600, at=2))
    start = world.now

    async def go() -> None:
        client = simulated_client(world, flood_sleep_threshold=10)
        await client.get_entity("main_channel")
        with pytest.raises(errors.FloodWaitError) as info:
            await client.get_entity("source_ch")
        assert info.value.seconds == 3600
        assert world.flood_until["contacts.ResolveUsername"] == start + timedelta(seconds=3600)
        # Other requests are not affected.
        assert (await client(history(MAIN, world, limit=1))).messages
        # A new client (next pass) still gets the remaining wait from the server.
        world.advance(timedelta(minutes=10))
        with pytest.raises(errors.FloodWaitError) as info:
            await simulated_client(world)(functions.contacts.ResolveUsernameRequest("source_ch"))
        assert info.value.seconds == 3000
        world.advance(timedelta(minutes=51))
        resolved = await simulated_client(world)(functions.contacts.ResolveUsernameRequest("source_ch"))
        assert resolved.peer.channel_id == SOURCE
        assert "contacts.ResolveUsername" not in world.flood_until

    run(go)
    assert world.requests["contacts.ResolveUsername"] == 4


def test_disconnect_and_server_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world()
    world.inject(Fault("DISCONNECT", request="channels.GetFullChannel", at=1))
    rpc = world.inject(Fault("RPC_CALL_FAIL", request="messages.GetHistory", every=1, times=2))
    real_sleep = asyncio.sleep

    async def no_wait(delay: float, result: Any = None) -> Any:   # Telethon sleeps 2 s before each retry
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", no_wait)

    async def go() -> None:
        client = simulated_client(world)
        with pytest.raises(ConnectionError):
            await client(functions.channels.GetFullChannelRequest(peer(world)))
        assert (await client(functions.channels.GetFullChannelRequest(peer(world)))).full_chat.id == MAIN
        page = await client(history(MAIN, world, limit=3))     # retried by Telethon after two 500s
        assert len(page.messages) == 3
        world.inject(Fault("INTERNAL", every=1, times=None))
        # Telethon retries 500s, then (raise_last_call_error=False, its default) gives up with ValueError.
        with pytest.raises(ValueError, match="unsuccessful"):
            await client.get_me()
        await client.disconnect()
        assert not client.is_connected()
        with pytest.raises(ConnectionError):
            await client(history(MAIN, world, limit=3))

    run(go)
    assert rpc.fired == 2
    assert world.requests["messages.GetHistory"] == 3
    assert world.requests["users.GetUsers"] == 6   # 1 + 5 retries (request_retries=5)


def test_request_counting() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        ch = await client.get_entity("main_channel")
        ids = [m.id async for m in client.iter_messages(ch, limit=None, wait_time=0)]
        assert ids == sorted(visible_ids(world), reverse=True)

    run(go)
    # 245 visible messages: 3 pages of 100, then one more that comes back empty.
    assert world.requests == {"contacts.ResolveUsername": 1, "messages.GetHistory": 3}
    assert world.total_requests() == 4


# -- getHistory windowing ------------------------------------------------------------------------


def reference_window(world: World, cid: int, *, offset_id: int = 0, offset_date: datetime | None = None,
                     add_offset: int = 0, limit: int = 100, max_id: int = 0, min_id: int = 0,
                     listed_desc: list[int] | None = None) -> list[int]:
    """Telegram's documented rule, the slow way: slice the whole newest-first list, then filter."""
    listed = listed_desc if listed_desc is not None else sorted(visible_ids(world, cid), reverse=True)
    if offset_id > 0:
        offset = sum(1 for i in listed if i >= offset_id)
    elif offset_date is not None:
        ch = world.channels[cid]
        offset = sum(1 for i in listed if ch.messages[i - 1].posted_at >= offset_date)
    else:
        offset = 0
    limit = 20 if limit <= 0 else min(limit, 100)
    start, end = offset + add_offset, offset + add_offset + limit
    out = listed[max(0, start):max(0, end)]
    return [i for i in out if (max_id <= 0 or i < max_id) and (min_id <= 0 or i > min_id)]


def test_history_window_matches_reference_rule() -> None:
    world = build_world()
    world.channels[MAIN].available_min_id = 7
    rng = random.Random(3)
    cases = []
    for _ in range(300):
        kw: dict[str, Any] = {
            "offset_id": rng.choice([0, 0, rng.randint(1, 260)]),
            "add_offset": rng.choice([0, 0, rng.randint(-150, 150)]),
            "limit": rng.choice([100, 100, rng.randint(-1, 130)]),
            "max_id": rng.choice([0, 0, rng.randint(1, 260)]),
            "min_id": rng.choice([0, 0, rng.randint(1, 260)]),
        }
        if rng.random() < 0.15:
            kw["offset_id"] = 0
            kw["offset_date"] = T0 + timedelta(hours=rng.randint(0, 260), minutes=rng.choice([0, 30]))
        cases.append(kw)

    async def go() -> None:
        client = simulated_client(world)
        listed = sorted(visible_ids(world), reverse=True)
        for kw in cases:
            page = await client(history(MAIN, world, **kw))
            assert [m.id for m in page.messages] == reference_window(world, MAIN, listed_desc=listed, **kw), kw
            assert page.count == len(listed)

    run(go)


def test_history_paging_oldest_first_and_newest_first() -> None:
    world = build_world()
    expected = visible_ids(world)

    async def go() -> None:
        client = simulated_client(world)
        # Oldest first, the way a collector catches up from a cursor.
        cursor, seen = 0, []
        while True:
            page = await client(history(MAIN, world, offset_id=cursor + 1, add_offset=-100, limit=100,
                                        min_id=cursor))
            ids = [m.id for m in page.messages]
            if not ids:
                break
            assert ids == sorted(ids, reverse=True) and min(ids) > cursor
            seen.extend(reversed(ids))
            cursor = max(ids)
        assert seen == expected
        # Newest first.
        offset, seen = 0, []
        while True:
            page = await client(history(MAIN, world, offset_id=offset, limit=100))
            ids = [m.id for m in page.messages]
            if not ids:
                break
            seen.extend(ids)
            offset = ids[-1]
        assert seen == expected[::-1]
        # Bounds: strictly between min_id and max_id.
        page = await client(history(MAIN, world, offset_id=31, add_offset=0, limit=100, min_id=8, max_id=20))
        assert [m.id for m in page.messages] == [i for i in range(19, 8, -1) if i not in (10, 11, 12)]
        # Telethon's own reverse iteration from a min_id.
        got = [m.id async for m in client.iter_messages(peer(world), min_id=200, reverse=True, wait_time=0)]
        assert got == [i for i in expected if i > 200]

    run(go)


def test_history_window_pure_examples() -> None:
    every = lambda i: True  # noqa: E731
    assert history_window(every, top=10, floor=0, boundary=10, add_offset=0, limit=3, max_id=0, min_id=0) == [
        10, 9, 8]
    assert history_window(every, top=10, floor=0, boundary=4, add_offset=-3, limit=5, max_id=0, min_id=0) == [
        7, 6, 5, 4, 3]
    # Fewer newer messages than asked for: the slice is not refilled from older ones.
    assert history_window(every, top=10, floor=0, boundary=8, add_offset=-5, limit=5, max_id=0, min_id=0) == [
        10, 9]
    assert history_window(every, top=10, floor=6, boundary=10, add_offset=0, limit=10, max_id=0, min_id=0) == [
        10, 9, 8, 7]


def test_history_sees_the_clock_move() -> None:
    world = build_world()
    world.now = T0 + timedelta(hours=50, minutes=30)

    async def go() -> None:
        client = simulated_client(world)
        first = await client(history(MAIN, world, limit=1))
        assert first.messages[0].id == 50
        views_then = first.messages[0].views
        world.advance(timedelta(hours=5))
        later = await client(history(MAIN, world, limit=10))
        assert later.messages[0].id == 55
        assert next(m for m in later.messages if m.id == 50).views > views_then

    run(go)


def test_megagroup_answers_like_a_channel() -> None:
    world = build_world()

    async def go() -> None:
        client = simulated_client(world)
        page = await client(history(GROUP, world))
        assert [m.id for m in page.messages] == [5, 4, 3, 2, 1]
        m = page.messages[0]
        assert not m.post and m.from_id == types.PeerChannel(GROUP)
        assert m.replies is not None and not m.replies.comments

    run(go)


def test_client_is_a_real_telegram_client() -> None:
    client = simulated_client(build_world())
    assert isinstance(client, TelegramClient)
    assert isinstance(client._sender, SimulatedSender)
    assert client.is_connected()


# -- the fast encoder -------------------------------------------------------------------------------


def assert_fast_equals_reference(world: World, times: list[datetime]) -> int:
    checked = 0
    for ch in world.channels.values():
        for t in times:
            for m in ch.messages:
                if m.visible_at(t):
                    for pinned in (None, m.message_id):
                        fast = tl_build.message_bytes(m, ch, t, pinned_id=pinned)
                        assert fast == bytes(tl_build.message_tl(m, ch, t, pinned_id=pinned)), (ch.channel_id, m)
                    checked += 1
    return checked


def test_fast_encoder_writes_telethons_bytes() -> None:
    assert tl_build._fast_path_ok(), "the fast encoder no longer matches this Telethon: see tl_build.py"
    world = build_world()
    assert assert_fast_equals_reference(world, [T0 + timedelta(hours=h) for h in (30, 45, 24 * 30)]) > 300


def test_fast_encoder_on_a_generated_world() -> None:
    generate = pytest.importorskip("collector._simulated.generate")
    world = generate.generate_world(seed=5, channels=3, days=4, future_days=1, posts_per_day=20)
    assert assert_fast_equals_reference(world, [world.now - timedelta(days=2), world.now]) > 100


def test_slow_path_answers_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world()
    data = bytes(history(MAIN, world, offset_id=60))
    fast = SimulatedSender(world).answer_bytes(data)
    monkeypatch.setattr(tl_build, "_fast_ok", False)
    assert SimulatedSender(world).answer_bytes(data) == fast


def test_docstring_examples() -> None:
    import doctest

    from collector._simulated import server

    for module in (server, tl_build):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
