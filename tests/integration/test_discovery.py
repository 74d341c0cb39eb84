"""Snowball discovery and the collected channel set, on the simulated Telegram (issue 5, part 2).

The expected candidates, counts, statuses and paths are computed here from the simulated world's own records
(messages, forward headers, entities, channel flags) and from the documented recommendation rule, never from
the archive or from ``collector._parse.discovery_rank``, so a test that compares the two can fail.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telethon import errors
from telethon.tl import functions, types
from typer.testing import CliRunner

import collector._simulated
from collector import Archive
from collector._cli.app import app
from collector._parse.discovery_rank import Candidate, Evidence, Facts, Member, Thresholds, rank_candidates
from collector._scheduling.channel_set import (
    ChannelSetError,
    add_channels,
    list_channels,
    remove_channels,
    tracked_inputs,
)
from collector._simulated import World, generate_world, simulated_client
from collector._simulated.generate import collected_channels
from collector._simulated.model import Fault, SimChannel, SimMessage
from collector._telegram.client import SIMULATED_ENV
from collector._telegram.discovery import DiscoveryError, DiscoveryReport, DiscoverySettings, discover
from tests.helpers.simworld import run_pass

WORLD_SEED = 4
_SOURCES = ("forward", "link", "mention")      # the documented tie-break order of post evidence
_TME = re.compile(r"^(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?([A-Za-z][A-Za-z0-9_]{3,31})(?:/|$)")


# -- ground truth from the world -------------------------------------------------------------------------------
def _slice(text: str, offset: int, length: int) -> str:
    return text.encode("utf-16-le")[2 * offset: 2 * (offset + length)].decode("utf-16-le")


def _post_key(m: SimMessage) -> int:
    return m.grouped_id if m.grouped_id is not None else -m.message_id


def _named(m: SimMessage, t: datetime) -> list[tuple[str, int | str]]:
    """(source, channel id or lower-cased username) for every way post ``m`` names a channel at ``t``."""
    out: list[tuple[str, int | str]] = []
    if m.fwd is not None and m.fwd.channel_id is not None and m.fwd.channel_id != m.channel_id:
        out.append(("forward", m.fwd.channel_id))
    state = m.state_at(t)
    for e in state.entities:
        piece = _slice(state.text, e.offset, e.length)
        if e.kind == "mention":
            out.append(("mention", piece.lstrip("@").lower()))
        elif e.kind in ("url", "text_url"):
            found = _TME.match(e.url if e.kind == "text_url" and e.url else piece)
            if found:
                out.append(("link", found.group(1).lower()))
    return out


def _target(world: World, value: int | str) -> int | str:
    """A username becomes the id of the channel that has it now; an unknown one stays a name."""
    if isinstance(value, int):
        return value
    ch = world.channel_by_username(value)
    return ch.channel_id if ch is not None else value


def _key(value: int | str) -> str:
    return f"id:{value}" if isinstance(value, int) else f"@{value}"


def _public(ch: SimChannel, t: datetime) -> bool:
    return not ch.megagroup and not ch.closed and not ch.is_private_at(t) and ch.username_at(t) is not None


def similar(world: World, channel_id: int) -> list[int]:
    """The documented rule: forwards between the two either way, plus third channels both forwarded from."""
    now = world.now
    fwd = {cid: Counter(m.fwd.channel_id for m in ch.messages if m.fwd is not None and m.fwd.channel_id is not None
                        and m.fwd.channel_id != cid and m.visible_at(now)) for cid, ch in world.channels.items()}
    scored = []
    for cid, ch in world.channels.items():
        if cid == channel_id or not _public(ch, now):
            continue
        score = fwd[channel_id][cid] + fwd[cid][channel_id] + len(
            (set(fwd[channel_id]) & set(fwd[cid])) - {cid, channel_id})
        if score:
            scored.append((-score, -ch.participants_at(now), cid))
    return [cid for *_, cid in sorted(scored)][:10]


def expected_status(world: World, value: int | str) -> str:
    if isinstance(value, str):
        return "not_found"
    ch = world.channels.get(value)
    if ch is None:
        linked = {c.linked_chat_id for c in world.channels.values()}
        return "group" if value in linked else "unknown"
    if ch.megagroup:
        return "group"
    return "channel" if _public(ch, world.now) else "private"


@dataclass
class Expected:
    """What discovery from ``members`` (id -> (hop, seed id)) must find."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)        # key -> source -> references
    referrers: dict[str, set[int]] = field(default_factory=dict)
    hop: dict[str, int] = field(default_factory=dict)
    first_post: dict[str, tuple[datetime, int, int]] = field(default_factory=dict)   # at, channel, message
    value: dict[str, int | str] = field(default_factory=dict)


def expected_from(world: World, members: dict[int, tuple[int, int]], depth: int, *, recommendations: bool = True
                  ) -> Expected:
    now = world.now
    names = {world.channels[cid].username_at(now) for cid in members}
    exp = Expected()
    firsts: dict[str, list[tuple[int, datetime, int, int, int]]] = {}
    for cid, (hop, _seed) in members.items():
        if hop >= depth:
            continue
        ch = world.channels[cid]
        posts: dict[tuple[str, int | str], set[int]] = {}
        for m in ch.posts(now):
            for source, raw in _named(m, now):
                target = _target(world, raw)
                if target == cid or target in members or (isinstance(target, str) and target in names):
                    continue
                posts.setdefault((source, target), set()).add(_post_key(m))
                firsts.setdefault(_key(target), []).append((hop + 1, m.posted_at, _SOURCES.index(source), cid,
                                                            m.message_id))
        refs = [(s, t, len(keys)) for (s, t), keys in posts.items()]
        if ch.linked_chat_id:
            refs.append(("linked_chat", ch.linked_chat_id, 1))
        if recommendations:
            refs += [("recommendation", t, 1) for t in similar(world, cid) if t not in members]
        for source, target, n in refs:
            key = _key(target)
            exp.value[key] = target
            exp.counts.setdefault(key, Counter())[source] += n
            exp.referrers.setdefault(key, set()).add(cid)
            exp.hop[key] = min(exp.hop.get(key, 99), hop + 1)
    for key, items in firsts.items():
        _hop, at, _source, cid, message_id = min(items)
        if _hop == exp.hop[key]:          # a post at the lowest hop is the path
            exp.first_post[key] = (at, cid, message_id)
    return exp


# -- the crawl ---------------------------------------------------------------------------------------------------
def run_discover(world: World, path: Path, **kw: Any) -> DiscoveryReport:
    settings = DiscoverySettings(**kw)

    async def go() -> DiscoveryReport:
        with Archive(path) as archive:
            return await discover(simulated_client(world), archive, settings, now=world.now)

    return asyncio.run(go())


def collect_set(world: World, path: Path) -> None:
    with Archive(path) as archive:
        inputs = tracked_inputs(archive)
    report = run_pass(world, path, inputs)
    assert {c.outcome for c in report.channels} == {"ok"}, report.summary()


@dataclass
class Crawl:
    world: World
    path: Path
    seeds: list[SimChannel]
    first: DiscoveryReport            # depth 2, no --auto
    auto: DiscoveryReport             # depth 2, --auto, min references 2
    resolves_in_collect: int          # ResolveUsername sent by the collect after --auto
    reachable_added: int              # added channels whose access hash discovery had learnt
    second: DiscoveryReport           # after collecting the hop-1 channels: one hop further, --auto (1 reference)
    third: DiscoveryReport            # after collecting hop 2: nothing beyond depth 2
    rec_calls: list[int]              # GetChannelRecommendations sent by each run


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    world = generate_world(WORLD_SEED, channels=12, days=3, posts_per_day=10, future_days=1)
    by_name = {ch.username_at(world.now): ch for ch in collected_channels(world)}
    seeds = [by_name["sim_tech_01"], by_name["sim_culture_09"]]
    path = Path(tmp_path_factory.mktemp("discovery")) / "archive.duckdb"
    with Archive(path) as archive:
        add_channels(archive, ["sim_tech_01", "https://t.me/sim_culture_09"], now=world.now)
    collect_set(world, path)
    calls = []

    def counted(**kw: Any) -> DiscoveryReport:
        before = world.requests["channels.GetChannelRecommendations"]
        report = run_discover(world, path, **kw)
        calls.append(world.requests["channels.GetChannelRecommendations"] - before)
        return report

    first = counted(thresholds=Thresholds(depth=2))
    auto = counted(thresholds=Thresholds(depth=2, min_references=2), auto=True)
    with Archive(path) as archive:
        reachable = _scalar(archive,
            "SELECT count(*) FROM channel_set s JOIN channels c USING (channel_id) WHERE s.added_by = 'discovery' "
            "AND c.access_hash IS NOT NULL")
    before = world.requests["contacts.ResolveUsername"]
    collect_set(world, path)
    resolves = world.requests["contacts.ResolveUsername"] - before
    second = counted(thresholds=Thresholds(depth=2), auto=True)
    collect_set(world, path)
    third = counted(thresholds=Thresholds(depth=2), auto=True)
    return Crawl(world, path, seeds, first, auto, resolves, reachable, second, third, calls)


def _id(c: Candidate) -> int:
    assert c.channel_id is not None
    return c.channel_id


def _scalar(archive: Archive, sql: str) -> int:
    row = archive.con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _message(world: World, channel_id: int, message_id: int) -> SimMessage:
    m = world.message(channel_id, message_id)
    assert m is not None
    return m


def test_first_hop_reaches_the_expected_channels_with_their_evidence(crawl: Crawl) -> None:
    world = crawl.world
    members = {ch.channel_id: (0, ch.channel_id) for ch in crawl.seeds}
    exp = expected_from(world, members, depth=2)
    got = {c.key: c for c in crawl.first.candidates}
    assert set(got) == set(exp.counts)
    statuses = Counter(expected_status(world, exp.value[k]) for k in exp.counts)
    # the world gives this crawl every kind of candidate, so every branch below is exercised
    assert {"channel", "group", "private", "not_found"} <= set(statuses), statuses
    for key, c in got.items():
        want = exp.counts[key]
        assert {s: n for s, n in c.by_source.items() if n} == dict(+want), key
        assert c.references == sum(want.values())
        assert c.referrers == len(exp.referrers[key])
        assert c.status == expected_status(world, exp.value[key]), key
        assert c.path.hop == 1 and c.path.seed_channel_id == c.path.via_channel_id
        assert c.decision == ("queued" if c.status == "channel" else "not_public")
        if c.status == "channel":
            assert c.subscribers == world.channels[_id(c)].participants_at(world.now), key


def test_paths_name_the_first_post_or_call_that_led_there(crawl: Crawl) -> None:
    world = crawl.world
    exp = expected_from(world, {ch.channel_id: (0, ch.channel_id) for ch in crawl.seeds}, depth=2)
    seen_sources = set()
    for c in crawl.first.candidates:
        p = c.path
        seen_sources.add(p.via_source)
        if c.key in exp.first_post:
            at, channel_id, message_id = exp.first_post[c.key]
            assert (p.via_at, p.via_channel_id, p.via_message_id) == (at, channel_id, message_id), c.key
            post = _message(world, channel_id, message_id)
            assert (p.via_source, exp.value[c.key]) in [(s, _target(world, v)) for s, v in _named(post, world.now)]
        else:                                     # named by no post: the call (or the channel's own data)
            assert p.via_source in ("linked_chat", "recommendation") and p.via_message_id is None
            assert p.via_channel_id in {ch.channel_id for ch in crawl.seeds}
    assert {"forward", "linked_chat"} <= seen_sources
    evidence = {s for run in (crawl.first, crawl.second) for c in run.candidates for s, n in c.by_source.items() if n}
    assert evidence == {"forward", "mention", "link", "linked_chat", "recommendation"}


def test_ranking_orders_by_referrers_then_references(crawl: Crawl) -> None:
    ranked = crawl.first.candidates
    assert [c.rank for c in ranked] == list(range(1, len(ranked) + 1))
    keys = [(-c.referrers, -c.references) for c in ranked]
    assert keys == sorted(keys)


def test_the_run_and_its_queue_are_recorded(crawl: Crawl) -> None:
    with Archive(crawl.path, read_only=True) as archive:
        con = archive.con
        runs = con.execute("SELECT discovery_run_id, status, depth, min_references, auto, candidates, added "
                           "FROM discovery_runs ORDER BY 1").fetchall()
        assert [r[1] for r in runs] == ["ok"] * 4
        assert runs[0][2:] == (2, 1, False, len(crawl.first.candidates), 0)
        rows = con.execute(
            "SELECT candidate, hop, seed_channel_id, via_source, via_channel_id, via_message_id, decision, rank, "
            "ref_count FROM discovery_candidates WHERE discovery_run_id = 1").fetchall()
        stored = {r[0]: r[1:] for r in rows}
        for c in crawl.first.candidates:
            p = c.path
            assert stored[c.key] == (p.hop, p.seed_channel_id, p.via_source, p.via_channel_id, p.via_message_id,
                                     c.decision, c.rank, c.references)
        evidence = con.execute("SELECT candidate, sum(ref_count) FROM discovery_references WHERE discovery_run_id = 1 "
                               "GROUP BY 1").fetchall()
        assert dict(evidence) == {c.key: c.references for c in crawl.first.candidates}
        found = _scalar(archive, "SELECT count(*) FROM discovery_candidates WHERE first_found_at > "
                                 "(SELECT started_at FROM discovery_runs WHERE discovery_run_id = 1)")
        assert found == 0     # the clock never moved: every candidate was first found by run 1


def test_auto_adds_what_passes_with_its_path(crawl: Crawl) -> None:
    world = crawl.world
    exp = expected_from(world, {ch.channel_id: (0, ch.channel_id) for ch in crawl.seeds}, depth=2)
    passing = {k for k, n in exp.counts.items() if sum(n.values()) >= 2
               and expected_status(world, exp.value[k]) == "channel"}
    assert passing and {c.key for c in crawl.auto.added} == passing
    below = {c.key for c in crawl.auto.candidates if c.decision == "below_references"}
    assert below == {k for k, n in exp.counts.items() if sum(n.values()) < 2}
    with Archive(crawl.path, read_only=True) as archive:
        entries = {e.channel_id: e for e in list_channels(archive) if e.added_by == "discovery"}
    for c in crawl.auto.added:
        entry = entries[c.channel_id]
        assert (entry.hop, entry.seed_channel_id, entry.discovery_run_id) == (1, c.path.seed_channel_id,
                                                                              crawl.auto.run_id)
        assert entry.seed_input in ("sim_tech_01", "https://t.me/sim_culture_09")


def test_a_channel_discovery_resolved_is_never_resolved_again(crawl: Crawl) -> None:
    # recommendations and resolves told discovery the access hashes of (most) added channels; collect uses them
    assert crawl.reachable_added > 0
    assert crawl.resolves_in_collect == len(crawl.auto.added) - crawl.reachable_added


def test_next_runs_go_one_hop_further_until_the_depth(crawl: Crawl) -> None:
    world = crawl.world
    with Archive(crawl.path, read_only=True) as archive:
        entries = list_channels(archive)
    members = {e.channel_id: (e.hop, e.seed_channel_id or e.channel_id) for e in entries
               if e.channel_id is not None and e.discovery_run_id in (None, crawl.auto.run_id)}
    exp = expected_from(world, members, depth=2)
    got = {c.key: c for c in crawl.second.candidates}
    assert set(got) == set(exp.counts)
    hop2 = [c for c in got.values() if c.path.hop == 2]
    assert hop2, "the world should have channels two hops from the seeds"
    for key, c in got.items():
        assert c.path.hop == exp.hop[key], key
        assert {s: n for s, n in c.by_source.items() if n} == dict(+exp.counts[key]), key
        if c.path.hop == 2:
            assert c.path.via_channel_id is not None
            hop, seed = members[c.path.via_channel_id]
            assert hop == 1 and c.path.seed_channel_id == seed
    added2 = {e.channel_id: e for e in entries if e.discovery_run_id == crawl.second.run_id}
    assert {c.channel_id for c in crawl.second.added} == set(added2)
    assert {e.hop for e in added2.values()} <= {1, 2} and 2 in {e.hop for e in added2.values()}
    # members at hop 2 name no one: depth 2 is the limit
    assert all(c.path.hop <= 2 for c in crawl.third.candidates)
    hop2_members = {cid for cid, e in added2.items() if e.hop == 2}
    assert not any(c.path.via_channel_id in hop2_members for c in crawl.third.candidates)


def test_recommendations_are_asked_once_a_week_per_channel(crawl: Crawl) -> None:
    # run 1 asks both seeds; run 2 reuses; the later runs ask only for channels new to the set below the depth
    assert crawl.rec_calls[0] == 2 and crawl.rec_calls[1] == 0
    assert crawl.rec_calls[2] == len(crawl.auto.added)
    assert crawl.rec_calls[3] == len([c for c in crawl.second.added if c.path.hop < 2])


def test_thresholds_subscribers_and_depth(crawl: Crawl, tmp_path: Path) -> None:
    world = crawl.world
    path = tmp_path / "copy.duckdb"
    path.write_bytes(crawl.path.read_bytes())
    with Archive(path) as archive:       # back to the two seeds
        archive.con.execute("DELETE FROM channel_set WHERE added_by = 'discovery'")
    sizes = sorted(world.channels[_id(c)].participants_at(world.now) for c in crawl.first.candidates
                   if c.status == "channel")
    floor = sizes[len(sizes) // 2]
    report = run_discover(world, path, thresholds=Thresholds(depth=1, min_referrers=2, min_subscribers=floor))
    exp = expected_from(world, {ch.channel_id: (0, ch.channel_id) for ch in crawl.seeds}, depth=1)
    assert {c.key for c in report.candidates} == set(exp.counts)
    for c in report.candidates:
        assert c.path.hop == 1
        if len(exp.referrers[c.key]) < 2:
            assert c.decision == "below_references"
        elif c.status != "channel":
            assert c.decision == "not_public"
        else:
            big = world.channels[_id(c)].participants_at(world.now) >= floor
            assert c.decision == ("queued" if big else "below_subscribers"), c.key


def test_hashtag_search_pages_through_every_hit(crawl: Crawl, tmp_path: Path) -> None:
    world = crawl.world
    path = tmp_path / "copy.duckdb"
    path.write_bytes(crawl.path.read_bytes())
    members = set()
    with Archive(path) as archive:
        archive.con.execute("DELETE FROM channel_set WHERE added_by = 'discovery'")
        members = {e.channel_id for e in list_channels(archive)}
    hits = sorted(((m.posted_at, m.channel_id, m.message_id) for ch in world.channels.values()
                   if _public(ch, world.now) for m in ch.posts(world.now)
                   if any(e.kind == "hashtag" and _slice(m.state_at(world.now).text, e.offset, e.length).lower()
                          == "#news" for e in m.state_at(world.now).entities)), reverse=True)
    assert len(hits) > 10
    before = world.requests["channels.SearchPosts"]
    report = run_discover(world, path, thresholds=Thresholds(depth=1), recommendations=False, search=("#News",),
                          search_pages=50, search_page_size=4)
    assert world.requests["channels.SearchPosts"] - before == -(-len(hits) // 4)
    per_channel = Counter(cid for _, cid, _ in hits if cid not in members)
    got = {c.channel_id: c for c in report.candidates if c.by_source["search"]}
    assert {cid: c.by_source["search"] for cid, c in got.items()} == dict(per_channel)
    for cid, c in got.items():
        if not any(r.from_channel_id is not None for r in c.refs):       # found by the search alone
            first = min(h for h in hits if h[1] == cid)
            assert (c.path.via_source, c.path.via_query, c.path.seed_channel_id) == ("search", "#news", None)
            assert (c.path.via_at, c.path.via_message_id) == (first[0], first[2])


def test_removed_channels_are_never_added_back(crawl: Crawl, tmp_path: Path) -> None:
    path = tmp_path / "copy.duckdb"
    path.write_bytes(crawl.path.read_bytes())
    victim = crawl.auto.added[0]
    with Archive(path) as archive:
        changes = remove_channels(archive, [str(victim.channel_id)], now=crawl.world.now)
        assert [c.outcome for c in changes] == ["removed"]
    report = run_discover(crawl.world, path, thresholds=Thresholds(depth=2, min_references=2), auto=True)
    again = {c.key: c for c in report.candidates}[victim.key]
    assert again.decision == "removed" and victim.key not in {c.key for c in report.added}


def test_a_long_flood_wait_is_recorded_and_honoured(crawl: Crawl, tmp_path: Path) -> None:
    world = crawl.world
    path = tmp_path / "copy.duckdb"
    path.write_bytes(crawl.path.read_bytes())
    fault = world.inject(Fault("FLOOD_WAIT", request="channels.GetChannelRecommendations", seconds=3600, at=1))
    try:
        before = world.requests["channels.GetChannelRecommendations"]
        report = run_discover(world, path, thresholds=Thresholds(depth=2), reuse=timedelta(0))
        assert fault.fired == 1 and report.status == "partial"
        assert any("recommendations stopped" in n for n in report.notes)
        again = run_discover(world, path, thresholds=Thresholds(depth=2), reuse=timedelta(0))
        assert again.status == "partial"
        assert world.requests["channels.GetChannelRecommendations"] - before == 1     # never sent again
        with Archive(path, read_only=True) as archive:
            assert _scalar(archive, "SELECT count(*) FROM flood_waits WHERE request = "
                                    "'channels.GetChannelRecommendations'") == 1
            assert _scalar(archive, "SELECT count(*) FROM discovery_runs WHERE status = 'partial'") == 2
    finally:
        world.faults.remove(fault)
        world.flood_until.clear()


def test_the_simulated_server_answers_like_telegram(crawl: Crawl) -> None:
    world = crawl.world
    seed = crawl.seeds[0]

    async def go() -> tuple[Any, Any, Any, Any]:
        client = simulated_client(world)
        channel = types.InputChannel(seed.channel_id, seed.access_hash)
        similar_ = await client(functions.channels.GetChannelRecommendationsRequest(channel=channel))
        overall = await client(functions.channels.GetChannelRecommendationsRequest())
        text = await client(functions.channels.SearchPostsRequest(
            offset_rate=0, offset_peer=types.InputPeerEmpty(), offset_id=0, limit=5, query="the"))
        with pytest.raises(errors.SearchQueryEmptyError):
            await client(functions.channels.SearchPostsRequest(
                offset_rate=0, offset_peer=types.InputPeerEmpty(), offset_id=0, limit=5))
        return similar_, overall, text, None

    similar_, overall, text, _ = asyncio.run(go())
    assert [c.id for c in similar_.chats] == similar(world, seed.channel_id)
    public = [ch for ch in world.channels.values() if _public(ch, world.now)]
    assert isinstance(overall, types.messages.ChatsSlice) and overall.count == len(public) > 10
    assert [c.id for c in overall.chats] == [ch.channel_id for ch in sorted(
        public, key=lambda ch: (-ch.participants_at(world.now), ch.channel_id))][:10]
    assert all(c.participants_count is not None and c.access_hash for c in overall.chats)
    assert len(text.messages) == 5 and text.next_rate is not None and text.search_flood is not None
    assert all("the" in m.message.lower() for m in text.messages)
    dates = [m.date for m in text.messages]
    assert dates == sorted(dates, reverse=True)


# -- the pure ranking -------------------------------------------------------------------------------------------
def test_rank_candidates_by_hand() -> None:
    t = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    later = datetime.fromisoformat("2026-01-02T00:00:00+00:00")
    members = [Member(1, "seed", 0, 1), Member(2, "hop_one", 1, 1), Member(3, "deep", 2, 1)]
    evidence = [
        Evidence("forward", 1, 10, None, 3, 7, later),
        Evidence("mention", 2, None, "Ten_Name", 1, 4, t),        # the same channel by name, from hop 1
        Evidence("link", 2, None, "nobody_here", 2, 5, t),
        Evidence("forward", 3, 11, None, 9, 1, t),                # from hop 2: beyond depth 2
        Evidence("forward", 1, 2, None, 5, 1, t),                 # a member: never a candidate
        Evidence("search", None, 12, None, 2, 8, t, "#tag"),
    ]
    ranked = rank_candidates(evidence, members, facts={10: Facts(10, "ten_name", "Ten", "channel", 500)},
                             username_ids={"ten_name": 10}, resolves={"nobody_here": "not_found"},
                             thresholds=Thresholds(depth=2, min_references=2))
    by_key = {c.key: c for c in ranked}
    assert list(by_key) == ["id:10", "@nobody_here", "id:12"]
    ten = by_key["id:10"]
    assert (ten.referrers, ten.references, ten.decision) == (2, 4, "queued")
    assert (ten.path.hop, ten.path.via_channel_id, ten.path.via_message_id) == (1, 1, 7)   # the lower hop wins
    assert by_key["@nobody_here"].decision == "not_public"
    assert (by_key["id:12"].status, by_key["id:12"].path.seed_channel_id) == ("unknown", None)
    with pytest.raises(ValueError):
        Thresholds(depth=0)


# -- the channel set and the CLI --------------------------------------------------------------------------------
runner = CliRunner()


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("TG_API_ID", "TG_API_HASH", "TGSPREAD_ARCHIVE", "TGSPREAD_SESSION", SIMULATED_ENV,
                 "TGSPREAD_SIMULATED_CHANNELS", "TGSPREAD_SIMULATED_DAYS", "TGSPREAD_SIMULATED_ADVANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    yield tmp_path / "archive.duckdb"


def _one_error(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("TESTING ONLY")]
    assert len(lines) == 1 and lines[0].startswith("tgspread: error: "), result.stderr
    return lines[0]


def test_channels_add_remove_list_via_the_cli(cli_env: Path) -> None:
    archive = str(cli_env)
    bad = runner.invoke(app, ["channels", "add", "good_name", "no spaces allowed", "--archive", archive])
    assert bad.exit_code == 2 and "not a valid channel username" in _one_error(bad)
    assert not cli_env.exists()                                   # nothing was created
    bad = runner.invoke(app, ["channels", "add", "https://t.me/+AbCdEf", "--archive", archive])
    assert bad.exit_code == 2 and "invite link" in _one_error(bad)
    bad = runner.invoke(app, ["channels", "add", "1234567890", "--archive", archive])
    assert bad.exit_code == 2 and "not in this archive" in _one_error(bad)

    ok = runner.invoke(app, ["channels", "add", "@First_Channel", "t.me/second_channel", "--archive", archive])
    assert ok.exit_code == 0, ok.output
    assert "added @first_channel" in ok.stdout and "added @second_channel" in ok.stdout
    again = runner.invoke(app, ["channels", "add", "https://t.me/FIRST_channel", "--archive", archive])
    assert again.exit_code == 0 and "already in the collected set" in again.stdout
    with Archive(cli_env) as opened:
        assert tracked_inputs(opened) == ["first_channel", "second_channel"]
        with pytest.raises(ChannelSetError):
            add_channels(opened, ["third_channel", "@"])
        assert len(list_channels(opened)) == 2                  # all or nothing

    gone = runner.invoke(app, ["channels", "remove", "second_channel", "never_added", "--archive", archive])
    assert gone.exit_code == 1 and "removed @second_channel" in gone.stdout
    assert "never_added: not in the collected set" in gone.stdout
    listed = runner.invoke(app, ["channels", "list", "--json", "--archive", archive])
    assert listed.exit_code == 0
    assert [c["username"] for c in json.loads(listed.stdout)["channels"]] == ["first_channel"]
    everything = json.loads(runner.invoke(app, ["channels", "list", "--all", "--json", "--archive", archive]).stdout)
    removed = [c for c in everything["channels"] if c["removed_at"]]
    assert [c["username"] for c in removed] == ["second_channel"] and removed[0]["added_by"] == "hand"
    table = runner.invoke(app, ["channels", "list", "--all", "--archive", archive])
    assert table.exit_code == 0 and "first_channel" in table.stdout and "removed" in table.stdout
    readd = runner.invoke(app, ["channels", "add", "second_channel", "--archive", archive])
    assert "added @second_channel" in readd.stdout
    with Archive(cli_env, read_only=True) as opened:
        assert len(list_channels(opened, include_removed=True)) == 3   # the old membership stays on record


def test_collect_falls_back_to_the_set_and_discover_runs_via_the_cli(cli_env: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    archive = str(cli_env)
    monkeypatch.setenv(SIMULATED_ENV, "5")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "2")
    world = generate_world(5, channels=3, days=2)
    # every command of this test builds the same world from the environment: build it once
    monkeypatch.setattr(collector._simulated, "generate_world", lambda *args, **kw: world)
    seed = collected_channels(world)[1].username_at(world.now)
    assert seed is not None
    assert runner.invoke(app, ["channels", "add", seed, "--archive", archive]).exit_code == 0
    collected = runner.invoke(app, ["collect", "--archive", archive])
    assert collected.exit_code == 0, collected.output
    with Archive(cli_env, read_only=True) as opened:
        inputs = opened.con.execute("SELECT input FROM run_channels").fetchall()
    assert len(inputs) == 1                                     # the set, not the world's seeds
    result = runner.invoke(app, ["discover", "--archive", archive, "--json", "--auto", "--limit", "1",
                                 "--no-recommendations", "--search", "news"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok" and len(payload["added"]) <= 1 and len(payload["candidates"]) <= 1
    assert payload["requests"].get("channels.GetChannelRecommendations") is None
    assert payload["requests"]["channels.SearchPosts"] >= 1
    table = runner.invoke(app, ["discover", "--archive", archive, "--depth", "1", "--min-references", "1",
                                "--min-subscribers", "0", "--min-referrers", "1", "--max-resolves", "0"])
    assert table.exit_code == 0 and "discovery run 2" in table.stdout
    bad = runner.invoke(app, ["discover", "--archive", archive, "--search", "two words"])
    assert bad.exit_code == 2 and "one hashtag" in _one_error(bad)


def test_discover_needs_a_set(tmp_path: Path) -> None:
    world = generate_world(3, channels=2, days=1)
    with pytest.raises(DiscoveryError, match="channels add"):
        run_discover(world, tmp_path / "empty.duckdb")


def test_discover_offline_needs_no_credentials_and_sends_nothing(cli_env: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17, item 14: what the archive alone can answer (forwards, links, mentions already collected)."""
    archive = str(cli_env)
    world = generate_world(5, channels=3, days=2)
    seed = collected_channels(world)[1].username_at(world.now)
    assert seed is not None
    assert runner.invoke(app, ["channels", "add", seed, "--archive", archive]).exit_code == 0
    run_pass(world, cli_env, [seed])                      # collected earlier, on another machine
    without = runner.invoke(app, ["discover", "--archive", archive])
    assert without.exit_code == 2 and "credentials" in _one_error(without)       # online needs them
    result = runner.invoke(app, ["discover", "--offline", "--json", "--archive", archive])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok" and payload["requests"] == {}
    assert payload["total_candidates"] > 0
    assert any("offline" in note for note in payload["notes"])
    bad = runner.invoke(app, ["discover", "--offline", "--search", "news", "--archive", archive])
    assert bad.exit_code == 2 and "--offline" in _one_error(bad)
