"""The simulated world generator: determinism, invariants, realistic structure, growth over time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from bisect import bisect_right
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from collector._simulated.generate import (
    LazyMessages,
    collected_channels,
    fingerprint,
    generate_channel_world,
    generate_world,
    utf16_len,
    utf16_slice,
)
from collector._simulated.model import SimChannel, SimMessage
from collector._simulated.world import World

ROOT = Path(__file__).resolve().parents[2]
URL_TEXT = re.compile(r"^(https?://)?[\w.-]+\.[a-z]{2,}(/\S*)?$")


@pytest.fixture(scope="module")
def demo() -> World:
    """The default demo world (20 channels, 30 days, 30 days ahead), built once for this module."""
    return generate_world(1)


def all_messages(world: World) -> list[SimMessage]:
    return [m for ch in world.channels.values() for m in ch.messages]


def small(seed: int) -> World:
    return generate_world(seed, channels=5, days=4, future_days=2, posts_per_day=40)


# -- determinism -------------------------------------------------------------------------------------

def test_same_seed_same_world_different_seed_different_world() -> None:
    a, b, c = small(3), small(3), small(4)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)
    assert a.seeds != c.seeds or [ch.channel_id for ch in a.channels.values()] != list(c.channels)


def test_same_world_in_another_process() -> None:
    """No hash() of strings, no global random state: another interpreter builds the same world."""
    code = ("from collector._simulated.generate import fingerprint, generate_world;"
            "print(fingerprint(generate_world(3, channels=5, days=4, future_days=2, posts_per_day=40)))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fingerprint(small(3))


# -- invariants ----------------------------------------------------------------------------------------

def test_ids_dense_and_times_ascending(demo: World) -> None:
    for ch in demo.channels.values():
        msgs = ch.messages
        assert all(m.message_id == i + 1 for i, m in enumerate(msgs))
        assert all(m.channel_id == ch.channel_id for m in msgs)
        assert all(a.posted_at <= b.posted_at for a, b in pairwise(msgs))
        assert msgs[0].action == "channel_create" and msgs[0].posted_at == ch.created_at
        assert ch.top_id(demo.now) == bisect_right([m.posted_at for m in msgs], demo.now)


def test_channels_look_like_telegram_channels(demo: World) -> None:
    ids = list(demo.channels)
    assert len(set(ids)) == len(ids) and all(i > 2**31 for i in ids)
    assert all(-(2**63) <= ch.access_hash < 2**63 for ch in demo.channels.values())
    assert len({ch.access_hash for ch in demo.channels.values()}) == len(ids)
    start = demo.now - timedelta(days=30)
    assert all(ch.created_at < start for ch in demo.channels.values())
    assert any(ch.linked_chat_id for ch in demo.channels.values())
    assert any(not ch.linked_chat_id for ch in collected_channels(demo))
    for ch in demo.channels.values():
        assert ch.participants_at(demo.now + timedelta(days=5)) >= ch.participants_at(demo.now) > 0


def test_seeds_and_special_channels(demo: World) -> None:
    now = demo.now
    collected = collected_channels(demo)
    assert len(collected) == 20
    assert any(s.startswith("@") for s in demo.seeds) and any(s.startswith("https://t.me/") for s in demo.seeds)
    assert any(re.fullmatch(r"\w+", s) for s in demo.seeds)
    closed = [ch for ch in demo.seed_channels() if ch.closed]
    assert len(closed) == 1 and closed[0].username_at(now) is not None
    assert len([ch for ch in demo.seed_channels() if ch.megagroup]) == 1
    assert demo.missing_usernames and all(demo.channel_by_username(u) is None for u in demo.missing_usernames)
    assert any(u in s for u in demo.missing_usernames for s in demo.seeds)
    external = [ch for ch in demo.channels.values() if ch not in demo.seed_channels()]
    assert len(external) == 10 and all(demo.channel_by_username(ch.username_at(now) or "") is ch for ch in external)
    # One channel is renamed after `now`: its old name resolves until then, the new one after.
    renamed = [ch for ch in collected if ch.usernames[-1][0] > now]
    assert len(renamed) == 1
    since, new = renamed[0].usernames[-1]
    old = renamed[0].username_at(now)
    assert old is not None and old != new
    assert demo.channel_by_username(old, at=since) is None
    assert demo.channel_by_username(new, at=since) is renamed[0]


def test_activity_is_heavy_tailed_with_a_daily_rhythm(demo: World) -> None:
    counts = sorted((len(ch.posts(demo.now)) for ch in collected_channels(demo)), reverse=True)
    assert counts[0] > 4 * counts[-1]
    hours = Counter(m.posted_at.hour for ch in collected_channels(demo) for m in ch.messages if not m.is_service)
    assert max(hours.values()) > 3 * min(hours.values())


def test_the_default_world_posts_at_its_rate(demo: World) -> None:
    """The world `make demo` collects (generate_world's defaults): 20 collected channels posting about
    ``posts_per_day`` (80) posts a day each over their history, so a rate off by a factor fails."""
    channels = collected_channels(demo)
    assert len(channels) == 20
    channel_days = sum((demo.now - min(m.posted_at for m in ch.messages)).total_seconds() / 86400 for ch in channels)
    visible = sum(len(ch.posts(demo.now)) for ch in channels)
    assert 0.75 * 80 <= visible / channel_days <= 1.35 * 80


# -- text and entities -----------------------------------------------------------------------------------

def check_entities(text: str, entities: tuple) -> int:
    """Assert every entity covers what its kind says; return how many sit after a non-BMP character."""
    shifted = 0
    end = 0
    for e in entities:
        assert e.offset >= end and e.length > 0 and e.offset + e.length <= utf16_len(text)
        end = e.offset + e.length
        covered = utf16_slice(text, e.offset, e.length)
        assert covered == covered.strip() and covered
        if e.kind == "hashtag":
            assert re.fullmatch(r"#\w+", covered), covered
        elif e.kind == "mention":
            assert re.fullmatch(r"@\w+", covered), covered
        elif e.kind == "url":
            assert URL_TEXT.match(covered), covered
        elif e.kind == "text_url":
            assert e.url and URL_TEXT.match(e.url)
        else:
            assert e.kind == "bold"
        if text.find(covered) != e.offset:
            shifted += 1
    return shifted


def test_entity_offsets_count_utf16_units(demo: World) -> None:
    kinds: Counter[str] = Counter()
    shifted = 0
    for m in all_messages(demo):
        for v in m.versions:
            shifted += check_entities(v.text, v.entities)
            kinds.update(e.kind for e in v.entities)
    assert set(kinds) == {"hashtag", "mention", "url", "text_url", "bold"}
    assert shifted > 1000            # many entities sit after an emoji: Python indexes would be wrong


def test_texts_mix_scripts_domains_and_emoji(demo: World) -> None:
    texts = [m.versions[0].text for m in all_messages(demo)[:20000]]
    joined = "\n".join(texts)
    assert re.search("[а-я]", joined) and re.search("[\u0600-\u06ff]", joined)
    assert any(ord(c) > 0xFFFF for c in joined)
    domains = {re.sub(r"^www\.", "", u.split("/")[2 if "://" in u else 0])
               for u in re.findall(r"(?:https://)?[\w.-]+\.[a-z]{2,}/\S*", joined)}
    assert len(domains) >= 25 and "t.me" in domains and "youtube.com" in domains


# -- media, albums, service messages -----------------------------------------------------------------------

def test_media_kinds_and_fields(demo: World) -> None:
    media = [m.media for m in all_messages(demo) if m.media is not None]
    kinds = Counter(x.kind for x in media)
    assert {"photo", "video", "document", "webpage", "poll"} <= set(kinds)
    for x in media:
        if x.kind == "video":
            assert x.mime == "video/mp4" and x.size and x.duration and x.width and x.height
        elif x.kind == "document":
            assert x.filename and "." in x.filename and x.mime
        elif x.kind == "webpage":
            assert x.url and x.title


def test_albums_are_consecutive_with_one_caption(demo: World) -> None:
    albums = 0
    for ch in demo.channels.values():
        groups: dict[int, list[SimMessage]] = defaultdict(list)
        for m in ch.messages:
            if m.grouped_id is not None:
                groups[m.grouped_id].append(m)
        for items in groups.values():
            ids = [m.message_id for m in items]
            assert 2 <= len(items) <= 5 and ids == list(range(ids[0], ids[0] + len(items)))
            assert all(m.media is not None and m.media.kind in ("photo", "video") for m in items)
            assert all(m.versions[0].text == "" for m in items[1:])
            assert len({m.posted_at for m in items}) == 1
        albums += len(groups)
    assert albums > 100


def test_service_messages(demo: World) -> None:
    pins = cross = 0
    for ch in demo.channels.values():
        for m in ch.messages[1:]:
            assert m.action in (None, "pin")
            if m.action == "pin":
                pins += 1
                assert m.pinned_message_id is not None
                target = ch.messages[m.pinned_message_id - 1]
                assert not target.is_service and target.posted_at <= m.posted_at
            elif m.reply_to_peer_id is not None:        # a reply to another channel's earlier post
                other = demo.channels[m.reply_to_peer_id]
                assert other.channel_id != ch.channel_id and m.reply_to_message_id is not None
                target = other.messages[m.reply_to_message_id - 1]
                assert not target.is_service and target.posted_at <= m.posted_at
                cross += 1
            elif m.reply_to_message_id is not None:
                assert m.reply_to_message_id < m.message_id
    assert pins >= 20
    assert cross >= 3


def test_rare_post_features_occur(demo: World) -> None:
    msgs = [m for m in all_messages(demo) if not m.is_service]
    assert any(m.post_author for m in msgs) and any(m.via_bot_id for m in msgs)
    assert any(m.noforwards for m in msgs) and any(m.restriction_reason for m in msgs)
    assert any(m.factcheck for m in msgs) and any(m.reply_to_message_id for m in msgs)


# -- forwards, cascades, copies --------------------------------------------------------------------------------

def test_forward_headers_name_the_first_source(demo: World) -> None:
    forwards = [m for m in all_messages(demo) if m.fwd is not None and m.fwd.channel_id is not None]
    assert forwards
    for m in forwards:
        fwd = m.fwd
        assert fwd is not None and fwd.channel_id is not None and fwd.message_id is not None
        assert fwd.channel_id != m.channel_id
        origin = demo.message(fwd.channel_id, fwd.message_id)
        assert origin is not None and not origin.is_service
        assert origin.fwd is None                              # never the intermediate hop
        assert origin.posted_at == fwd.posted_at < m.posted_at
        assert origin.post_author == fwd.post_author
        # The origin's text at the forward or, for a forward of a forward, at the hop's time.
        assert m.versions[0].text in {v.text for v in origin.versions if v.effective_at <= m.posted_at}
        assert m.media == origin.media and len(m.versions) == 1


def test_forwards_form_cascades(demo: World) -> None:
    posts = [m for ch in collected_channels(demo) for m in ch.posts(demo.now)]
    share = sum(1 for m in posts if m.fwd is not None) / len(posts)
    assert 0.12 <= share <= 0.28
    roots: dict[tuple[int, int], set[int]] = defaultdict(set)
    lags = []
    for m in all_messages(demo):
        if m.fwd is not None and m.fwd.channel_id is not None and m.fwd.message_id is not None:
            roots[(m.fwd.channel_id, m.fwd.message_id)].add(m.channel_id)
            lags.append((m.posted_at - m.fwd.posted_at).total_seconds())
    sizes = sorted((len(v) for v in roots.values()), reverse=True)
    assert sizes[0] >= 8 and sum(1 for s in sizes if s >= 3) >= 50
    lags.sort()
    assert lags[len(lags) // 10] < 3600 and lags[-len(lags) // 20] > 86400   # minutes .. days
    # A network with preferences: each channel forwards some sources far more than others.
    pairs = Counter((roots_ch, m.channel_id) for m in all_messages(demo)
                    if m.fwd is not None and (roots_ch := m.fwd.channel_id) is not None)
    per_target: dict[int, list[int]] = defaultdict(list)
    for (_, target), n in pairs.items():
        per_target[target].append(n)
    skewed = sum(1 for v in per_target.values() if len(v) > 2 and max(v) > 3 * sorted(v)[len(v) // 2])
    assert skewed >= len(per_target) // 2


def test_hidden_sender_forwards(demo: World) -> None:
    hidden = [m for m in all_messages(demo) if m.fwd is not None and m.fwd.channel_id is None]
    assert len(hidden) > 50
    for m in hidden:
        assert m.fwd is not None and m.fwd.message_id is None and m.fwd.from_name
        assert m.fwd.posted_at < m.posted_at


def test_unattributed_copies(demo: World) -> None:
    assert len(demo.copies) > 200
    for (cc, cm), (oc, om) in demo.copies:
        copy, orig = demo.message(cc, cm), demo.message(oc, om)
        assert copy is not None and orig is not None and cc != oc
        assert copy.fwd is None and orig.fwd is None and orig.posted_at < copy.posted_at
        a, b = copy.versions[0].text, orig.version_at(copy.posted_at).text
        assert a != b
        wa, wb = set(a.split()), set(b.split())
        assert len(wa & wb) / len(wa | wb) >= 0.6
        check_entities(a, copy.versions[0].entities)


# -- counters, edits, deletions, the clock -------------------------------------------------------------------

def test_counters_grow_monotonically(demo: World) -> None:
    msgs = [m for ch in collected_channels(demo) for m in ch.messages[1::97]]
    for m in msgs:
        prev = None
        for hours in (0, 0.5, 2, 6, 24, 72, 24 * 30):
            s = m.state_at(m.posted_at + timedelta(hours=hours))
            if prev is not None:
                assert s.views >= prev.views and s.forwards >= prev.forwards and s.replies >= prev.replies
                assert s.reactions_total >= prev.reactions_total
            prev = s
    views = sorted(m.final_views for m in msgs if not m.is_service)
    assert views[-1] > 20 * views[len(views) // 2]               # heavy-tailed
    assert any(r.startswith("custom:") for m in all_messages(demo) for r, _ in m.final_reactions)
    for ch in collected_channels(demo):
        if ch.linked_chat_id is None:
            assert all(m.final_replies == 0 for m in ch.messages)


def test_edits_and_deletions(demo: World) -> None:
    posts = [m for m in all_messages(demo) if not m.is_service]
    edited = [m for m in posts if len(m.versions) > 1]
    deleted = [m for m in posts if m.deleted_at is not None]
    assert 0.02 < len(edited) / len(posts) < 0.08 and 0.01 < len(deleted) / len(posts) < 0.04
    for m in edited:
        assert m.fwd is None
        for a, b in pairwise(m.versions):
            assert b.edited_at == b.effective_at and a.effective_at < b.effective_at and a.text != b.text
        assert m.deleted_at is None or m.versions[-1].effective_at < m.deleted_at
    assert any(m.deleted_at and m.deleted_at <= demo.now for m in posts)


def test_two_day_advance_brings_new_posts_edits_and_deletions(demo: World) -> None:
    now, later = demo.now, demo.now + timedelta(days=2)
    channels = collected_channels(demo)
    new = sum(1 for ch in channels for m in ch.messages if not m.is_service and now < m.posted_at <= later)
    visible = [m for ch in channels for m in ch.messages if not m.is_service and m.visible_at(now)]
    edits = sum(1 for m in visible if any(now < v.effective_at <= later for v in m.versions))
    gone = sum(1 for m in visible if not m.visible_at(later))
    assert new >= 36 and edits >= 5 and gone >= 5
    assert sum(ch.top_id(later) - ch.top_id(now) for ch in channels) >= new


def test_two_day_advance_for_other_seeds() -> None:
    for seed in (2, 3):
        world = generate_world(seed, days=3, future_days=2.5)
        now, later = world.now, world.now + timedelta(days=2)
        visible = [m for ch in collected_channels(world) for m in ch.messages
                   if not m.is_service and m.visible_at(now)]
        assert sum(1 for m in visible if any(now < v.effective_at <= later for v in m.versions)) >= 5
        assert sum(1 for m in visible if not m.visible_at(later)) >= 5


# -- the lazy million-post channel ---------------------------------------------------------------------------------

def test_lazy_world_is_a_consistent_channel() -> None:
    world = generate_channel_world(5, posts=200_000, days=60)   # its speed is for benchmarks, not a test
    big: SimChannel = collected_channels(world)[0]
    msgs = big.messages
    assert isinstance(msgs, LazyMessages) and len(msgs) == 200_001
    assert msgs[0].action == "channel_create" and msgs[-1].message_id == 200_001
    page = msgs[100_000:100_300]
    assert [m.message_id for m in page] == list(range(100_001, 100_301))
    assert all(a.posted_at <= b.posted_at for a, b in pairwise(page))
    assert big.top_id(world.now) == msgs.top_id(world.now)
    top = big.top_id(world.now)
    assert msgs[top - 1].posted_at <= world.now < msgs[top].posted_at
    assert any(m.fwd for m in page) and any(m.grouped_id for m in page) and any(m.media for m in page)
    for m in page:
        check_entities(m.versions[0].text, m.versions[0].entities)
        if m.fwd is not None and m.fwd.channel_id is not None:
            origin = world.message(m.fwd.channel_id, m.fwd.message_id or 0)
            assert origin is not None and origin.posted_at == m.fwd.posted_at < m.posted_at
    deletions = msgs.deletions()               # known without building the messages
    assert 0.01 < len(deletions) / len(msgs) < 0.03
    for mid in sorted(deletions)[::100]:
        assert msgs[mid - 1].deleted_at == deletions[mid] > msgs[mid - 1].posted_at
    assert all(m.deleted_at is None for m in page if m.message_id not in deletions)
    same = generate_channel_world(5, posts=200_000, days=60)
    assert repr(same.seed_channels()[0].messages[123_456]) == repr(msgs[123_456])


def test_lazy_million_posts_stays_small() -> None:
    code = (
        "import resource\n"
        "from collector._simulated.generate import generate_channel_world\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "w = generate_channel_world(1, posts=1_000_000)\n"
        "ch = w.seed_channels()[0]\n"
        "assert len(ch.messages) == 1_000_001 and ch.messages[999_999].message_id == 1_000_000\n"
        "ch.top_id(w.now)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    megabytes = float(out.stdout)
    assert megabytes < 100          # lazy: a million posts, not a million objects (speed: benchmarks)
