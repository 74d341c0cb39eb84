"""What a collector takes over from the lake: where to continue a channel, and which channel a name is (issue 15).

The lake holds posts a collector did not fetch by paging (``hydrate`` by id, an imported export): posts with gaps
below them. A new owner continues from the old owner's published cursor, never from the newest post, or the posts
in the gap are fetched by nobody. Real parts: the simulated Telegram behind a real TelegramClient, real archives,
a real lake.
"""

from __future__ import annotations

import asyncio
import json
from array import array
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import analysis
from collector import Archive
from collector._archive.lake import publish
from collector._archive.slots import SLOTS, slot
from collector._parse.id_list import ChannelIds
from collector._scheduling.channel_set import add_channels, tracked_inputs
from collector._scheduling.handoff import pick_up
from collector._scheduling.ownership import Ownership
from collector._simulated import World, generate_world, simulated_client
from collector._simulated.generate import collected_channels
from collector._sources.export_import import import_export
from collector._telegram.collect import CollectSettings, collect
from collector._telegram.hydrate import hydrate


def _collect(world: World, inputs: list[str], archive: Archive, owned: Ownership) -> None:
    asyncio.run(collect(simulated_client(world), inputs, archive, now=world.now,
                        settings=CollectSettings(ownership=owned)))


def test_a_moved_slot_continues_from_the_old_owners_cursor_not_from_a_hydrated_post(tmp_path: Path) -> None:
    world = generate_world(6, channels=3, days=3, future_days=3, special_seeds=False, posts_per_day=20)
    chs = {ch.channel_id: ch for ch in collected_channels(world)}
    names = {c: str(ch.username_at(world.now)) for c, ch in chs.items()}
    lake, x = tmp_path / "lake", sorted(chs)[0]
    everything = dict.fromkeys(range(SLOTS), "a")
    with Archive(tmp_path / "a.duckdb") as a:
        _collect(world, list(names.values()), a, Ownership("a", everything))
        cursor = a.cursor(x)
        world.advance(timedelta(hours=12))
        newer = [m.message_id for m in chs[x].posts(world.now) if m.message_id > cursor]
        assert len(newer) > 5
        # one recent post fetched by id (an id list from a paper): the cursor stays, a gap lies below the post
        asyncio.run(hydrate(simulated_client(world), [ChannelIds(x, names[x], array("q", [newer[-1]]))], a,
                            now=world.now, settings=CollectSettings(ownership=Ownership("a", everything))))
        assert a.cursor(x) == cursor
        publish(a, lake, collector="a", now=world.now)
    after = {**everything, slot(x): "b"}
    world.advance(timedelta(hours=1))
    with Archive(tmp_path / "b.duckdb") as b:
        taken = pick_up(b, lake, Ownership("b", after), now=world.now)
        assert taken is not None and [(h.channel_id, h.kind, h.cursor) for h in taken.added] == [(x, "moved", cursor)]
        assert b.cursor(x) == cursor
        _collect(world, tracked_inputs(b), b, Ownership("b", after))
        publish(b, lake, collector="b", now=world.now)
    con = analysis.connect(lake)
    held = {r[0] for r in con.execute("SELECT message_id FROM posts WHERE channel_id = ?", [x]).fetchall()}
    assert held == {m.message_id for m in chs[x].posts(world.now)}


def test_an_export_another_collector_imported_does_not_move_the_owners_cursor(tmp_path: Path) -> None:
    world = generate_world(6, channels=3, days=3, future_days=3, special_seeds=False, posts_per_day=20)
    x = collected_channels(world)[0]
    assignment = {s: "b" for s in range(SLOTS)}
    assignment[(slot(x.channel_id) + 1) % SLOTS] = "a"
    lake, name = tmp_path / "lake", str(x.username_at(world.now))
    with Archive(tmp_path / "b.duckdb") as b:
        add_channels(b, [name], now=world.now)
        _collect(world, [name], b, Ownership("b", assignment))
        publish(b, lake, collector="b", now=world.now)
        cursor = b.cursor(x.channel_id)
    world.advance(timedelta(hours=12))
    newer = [m for m in x.posts(world.now) if m.message_id > cursor]
    assert len(newer) > 3
    # a Desktop export of the channel's last three posts, imported by collector a (an import is not slot-bound)
    export = {"name": x.title, "type": "public_channel", "id": x.channel_id, "messages": [
        {"id": m.message_id, "type": "message", "date": m.posted_at.strftime("%Y-%m-%dT%H:%M:%S"),
         "date_unixtime": str(int(m.posted_at.timestamp())), "from": x.title, "from_id": f"channel{x.channel_id}",
         "text": "exported", "text_entities": [{"type": "plain", "text": "exported"}]} for m in newer[-3:]]}
    (tmp_path / "result.json").write_text(json.dumps(export), encoding="utf-8")
    with Archive(tmp_path / "a.duckdb") as a:
        assert import_export(a, tmp_path / "result.json", now=world.now).new_posts == 3
        publish(a, lake, collector="a", now=world.now)
    with Archive(tmp_path / "b.duckdb") as b:
        pick_up(b, lake, Ownership("b", assignment), now=world.now)
        assert b.cursor(x.channel_id) == cursor          # before: the export's newest id, the gap never fetched
        _collect(world, tracked_inputs(b), b, Ownership("b", assignment))
        have = {r[0] for r in b.con.execute("SELECT message_id FROM posts WHERE channel_id = ? AND source = 'api'",
                                            [x.channel_id]).fetchall()}
    assert {m.message_id for m in newer} <= have


def test_a_handed_on_channel_is_taken_when_its_name_once_named_another_channel_of_the_set(tmp_path: Path) -> None:
    world = generate_world(7, channels=4, days=2, future_days=3, special_seeds=False, posts_per_day=10)
    chs = collected_channels(world)
    mine = chs[0]
    p, q = [c for c in chs[1:] if slot(c.channel_id) != slot(mine.channel_id)][:2]
    assignment = {s: "b" for s in range(SLOTS)}
    assignment[slot(mine.channel_id)] = "a"
    t0 = world.now
    p.usernames[:] = [(p.created_at, "foofoo"), (t0 + timedelta(hours=1), "foofoo_old")]   # P gives the name up
    q.usernames[:] = [(q.created_at, "qqqqq"), (t0 + timedelta(hours=2), "foofoo")]        # and Q takes it
    lake = tmp_path / "lake"
    with Archive(tmp_path / "b.duckdb") as b:
        add_channels(b, ["foofoo"], now=t0)
        _collect(world, ["foofoo"], b, Ownership("b", assignment))
        publish(b, lake, collector="b", now=t0)
    world.advance(timedelta(hours=3))
    with Archive(tmp_path / "a.duckdb") as a:                 # a is asked for @foofoo: now Q, of b's slots
        _collect(world, ["foofoo"], a, Ownership("a", assignment))
        publish(a, lake, collector="a", now=world.now)
    with Archive(tmp_path / "b.duckdb") as b:
        taken = pick_up(b, lake, Ownership("b", assignment), now=world.now)
        # before: skipped, as the set "knew" the name (for P, under its id): Q was collected by nobody
        assert taken is not None and [h.channel_id for h in taken.added] == [q.channel_id]
        # and collected as Q: the name, cached for P in this archive, is resolved again for the entry of Q
        _collect(world, tracked_inputs(b), b, Ownership("b", assignment))
        got = {r[0] for r in b.con.execute("SELECT DISTINCT channel_id FROM posts").fetchall()}
    assert {p.channel_id, q.channel_id} <= got


def test_readers_keep_the_new_owners_cursor_not_the_old_owners_that_sorts_last(tmp_path: Path) -> None:
    """After a move both collectors' ``channel_cursors`` rows of a channel are in the lake: the newest one
    (``updated_at``) is kept, not the one whose collector name sorts last (here the old owner's, stale)."""
    world = generate_world(6, channels=3, days=3, future_days=3, special_seeds=False, posts_per_day=20)
    chs = {ch.channel_id: ch for ch in collected_channels(world)}
    names = {c: str(ch.username_at(world.now)) for c, ch in chs.items()}
    lake, x = tmp_path / "lake", sorted(chs)[0]
    everything = dict.fromkeys(range(SLOTS), "zulu")
    after = {**everything, slot(x): "bravo"}
    with Archive(tmp_path / "z.duckdb") as old:
        _collect(world, list(names.values()), old, Ownership("zulu", everything))
        publish(old, lake, collector="zulu", now=world.now)
        stale = old.cursor(x)
    world.advance(timedelta(hours=12))
    with Archive(tmp_path / "b.duckdb") as new:
        pick_up(new, lake, Ownership("bravo", after), now=world.now)
        _collect(world, tracked_inputs(new), new, Ownership("bravo", after))
        publish(new, lake, collector="bravo", now=world.now)
        fresh = new.cursor(x)
    assert fresh > stale
    con = analysis.connect(lake)
    assert con.execute("SELECT max_message_id FROM channel_cursors WHERE channel_id = ?", [x]).fetchall() == [(fresh,)]


def test_a_channel_a_collector_handed_on_is_its_own_once_its_slot_moves_to_it(tmp_path: Path) -> None:
    """Discovery hands on what it finds in another collector's slots (the finder's ``candidates`` file). When such
    a slot later moves to the finder, its own file is where the channel waits: before, it read only other
    collectors' files, and the channel was collected by nobody."""
    from collector._parse.discovery_rank import Thresholds
    from collector._telegram.discovery import DiscoverySettings, discover

    world = generate_world(31, channels=6, days=2, future_days=3, posts_per_day=4, special_seeds=False,
                           external_channels=3)
    seeds = collected_channels(world)[:2]
    mine = {slot(c.channel_id) for c in seeds}
    assignment = {s: "a" if s in mine else "b" for s in range(SLOTS)}
    lake = tmp_path / "lake"
    with Archive(tmp_path / "a.duckdb") as a:
        add_channels(a, [str(c.username_at(world.now)) for c in seeds], now=world.now)
        _collect(world, tracked_inputs(a), a, Ownership("a", assignment))
        report = asyncio.run(discover(simulated_client(world), a, DiscoverySettings(
            thresholds=Thresholds(depth=1), auto=True, ownership=Ownership("a", assignment), max_resolves=10),
            now=world.now))
        handed = {c.channel_id for c in report.candidates if c.decision == "not_owned" and c.channel_id is not None}
        assert handed, "discovery found channels of b's slots"
        publish(a, lake, collector="a", now=world.now)
    with Archive(tmp_path / "b.duckdb") as b:       # their owner takes them by name (before: "unreachable", the
        taken = pick_up(b, lake, Ownership("b", assignment), now=world.now)     # candidates held no username)
        assert taken is not None and {h.channel_id for h in taken.added} == handed and not taken.unreachable
    with Archive(tmp_path / "a.duckdb") as a:       # b never ran; the slots move to a
        taken = pick_up(a, lake, Ownership("a", dict.fromkeys(range(SLOTS), "a")), now=world.now)
        assert taken is not None and handed <= {h.channel_id for h in taken.added}
        assert handed <= {e for e, in a.con.execute("SELECT channel_id FROM channel_set WHERE removed_at IS NULL")
                          .fetchall()}


def test_a_file_that_vanishes_between_listing_and_reading_is_listed_again(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Another collector's publish may remove a lake file (a partition left without rows) between the pick-up's
    listing and its read: the pick-up lists again instead of failing the run."""
    import collector._archive.lake_handoff as lake_handoff

    world = generate_world(6, channels=3, days=3, future_days=3, special_seeds=False, posts_per_day=20)
    chs = {ch.channel_id: ch for ch in collected_channels(world)}
    lake, x = tmp_path / "lake", sorted(chs)[0]
    everything = dict.fromkeys(range(SLOTS), "a")
    with Archive(tmp_path / "a.duckdb") as a:
        _collect(world, [str(ch.username_at(world.now)) for ch in chs.values()], a, Ownership("a", everything))
        publish(a, lake, collector="a", now=world.now)
    real, listings = lake_handoff.handoff_files, []

    def stale_once(*args: Any, **kwargs: Any) -> lake_handoff.HandoffFiles:
        files = real(*args, **kwargs)
        listings.append(files)
        if len(listings) == 1:          # listed, then removed by a publish before it was read
            files.posts.append(str(Path(files.posts[0]).with_name("removed-meanwhile.parquet")))
        return files

    monkeypatch.setattr(lake_handoff, "handoff_files", stale_once)
    with Archive(tmp_path / "b.duckdb") as b:
        taken = pick_up(b, lake, Ownership("b", {**everything, slot(x): "b"}), now=world.now)
        assert b.cursor(x) > 0
    assert len(listings) == 2 and taken is not None and [h.channel_id for h in taken.added] == [x]
