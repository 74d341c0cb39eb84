"""Fault injection through the simulated Telegram: what Telegram does wrong, and what the archive keeps.

Every test drives the real ``TelegramClient`` (simulated network layer) into a real DuckDB file, injects
one kind of fault (docs/faults.md lists them), and checks the archive against the world's own records
with :class:`Watch`, the checker the randomised test (tests/system/test_fault_random.py) runs after every pass:

- no duplicate key in any table, no archived post ever lost;
- every archived post equals the world's state at the moment it was last observed, and every
  observation equals the world at its own moment; counters never go down between observations;
- every text replaced between two observations is in ``post_versions``, once, and nothing else is;
- no archived id above a channel's cursor, and no post the world showed missing below it;
- ``deleted_at`` only on posts the world deleted, or whose history the world cleared, and never undone;
- usernames map to the channel that had them; channel snapshots equal the world at their moment.

:func:`assert_complete` adds, after a clean pass, what "caught up" means: every visible post archived,
nothing left due, channel metadata current.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector import Archive, ArchiveError, CollectReport
from collector._simulated import Fault, World
from tests.helpers.faults import (
    FailingConnection,
    Watch,
    assert_complete,
    one_pass,
    public,
    quick_internal_retries,
    scalar,
    small_world,
    table,
)


@dataclass
class Session:
    """A world, an open archive and a checker: one pass after another, checked after each."""

    world: World
    archive: Archive
    watch: Watch
    reports: list[CollectReport] = field(default_factory=list)

    @classmethod
    def start(cls, world: World, path: Path) -> Session:
        return cls(world, Archive(path), Watch(world))

    def run(self, inputs: list[str] | None = None, **kwargs: Any) -> CollectReport:
        report = one_pass(self.world, self.archive, list(self.world.seeds) if inputs is None else inputs, **kwargs)
        self.reports.append(report)
        self.watch.check(self.archive.con, self.world.now)
        return report

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.archive.con


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session.start(small_world(21), tmp_path / "archive.duckdb")
    yield s
    s.archive.close()


def outcomes(report: CollectReport) -> dict[str, str]:
    return {c.input: c.outcome for c in report.channels}


# -- flood waits ---------------------------------------------------------------------------------------
def test_flood_wait_storm_long_waits_are_stored_and_honoured(session: Session) -> None:
    world, con = session.world, session.con
    t0 = world.now
    storm = world.inject(Fault("FLOOD_WAIT", every=3, seconds=2 * 3600, times=None))
    first = session.run()
    assert storm.fired >= 2
    limited = [c for c in first.channels if c.outcome == "flood_wait"]
    assert limited and all("until" in (c.error or "") for c in limited)
    stored = dict(con.execute("SELECT request, until FROM flood_waits").fetchall())
    assert stored and set(stored.values()) == {t0 + timedelta(hours=2)}
    assert set(stored) == set(world.flood_until), "every long wait Telegram gave is remembered, and only those"
    # an hour later the waits still run: nothing of those kinds is sent, the channels needing them wait
    world.faults.clear()
    world.advance(timedelta(hours=1))
    sent = {name: world.requests[name] for name in stored}
    second = session.run()
    assert {name: world.requests[name] for name in stored} == sent
    assert any(c.outcome == "flood_wait" for c in second.channels)
    # the first pass after the end catches up on everything
    world.advance(timedelta(hours=1, minutes=1))
    third = session.run()
    assert set(outcomes(third).values()) == {"ok"}
    assert_complete(world, session.archive, public(world))


def test_flood_wait_storm_short_waits_are_slept(session: Session) -> None:
    world = session.world
    short = world.inject(Fault("FLOOD_WAIT", every=4, seconds=1, times=2))
    started = time.monotonic()
    report = session.run(threshold=5)
    assert short.fired == 2 and time.monotonic() - started >= 2 * 0.95, "Telethon slept both waits"
    assert set(outcomes(report).values()) == {"ok"}
    assert scalar(session.con, "SELECT count(*) FROM flood_waits") == 0, "a slept wait is not a remembered one"
    assert_complete(world, session.archive, public(world))


def test_flood_wait_storm_mixed_short_and_long(session: Session) -> None:
    world = session.world
    world.inject(Fault("FLOOD_WAIT", request="messages.GetHistory", at=2, seconds=1))
    world.inject(Fault("FLOOD_WAIT", request="channels.GetFullChannel", at=3, seconds=900))
    report = session.run(threshold=5)
    by_result = {c.channel_id: c.outcome for c in report.channels}
    assert list(by_result.values()).count("flood_wait") == 1, "only the third snapshot hit the long wait"
    (request,) = [r[0] for r in session.con.execute("SELECT request FROM flood_waits").fetchall()]
    assert request == "channels.GetFullChannel"
    # that channel's history and refresh went on: only its snapshot waits
    (limited,) = [c for c in report.channels if c.outcome == "flood_wait"]
    assert limited.new_posts > 0 and not limited.snapshot
    world.faults.clear()
    world.advance(timedelta(minutes=16))
    assert set(outcomes(session.run()).values()) == {"ok"}
    assert_complete(world, session.archive, public(world))


# -- connections and Telegram's internal errors -------------------------------------------------------
def test_dropped_connections_mid_page_are_retried(session: Session) -> None:
    world = session.world
    # the request fails on the way (no answer), and an answer is lost on the way back (the server did the work)
    down = world.inject(Fault("DISCONNECT", request="messages.GetHistory", at=2, times=2))
    lost = world.inject(Fault("DROP_ANSWER", request="channels.GetFullChannel", at=1))
    first = session.run()
    assert (down.fired, lost.fired) == (2, 1)
    assert set(outcomes(first).values()) == {"ok"}
    world.faults.clear()
    world.advance(timedelta(hours=7))
    lost_refresh = world.inject(Fault("DROP_ANSWER", request="channels.GetMessages", at=1, times=2))
    second = session.run()
    assert lost_refresh.fired == 2 and set(outcomes(second).values()) == {"ok"}
    assert second.refreshed_posts > 0
    assert_complete(world, session.archive, public(world))


def test_connection_lost_for_good_keeps_what_arrived(tmp_path: Path) -> None:
    from collector._simulated.generate import generate_channel_world

    world = generate_channel_world(4, posts=900)
    s = Session.start(world, tmp_path / "a.duckdb")
    # from the 4th history page on, every answer is lost: more than the collector's retries
    world.inject(Fault("DROP_ANSWER", request="messages.GetHistory", at=4, times=None))
    first = s.run()
    (result,) = first.channels
    assert result.outcome == "error" and "run the collection again" in (result.error or "")
    assert 0 < result.new_posts < len(world.channels[result.channel_id].posts(world.now))
    world.faults.clear()
    second = s.run()
    assert second.channels[0].outcome == "ok"
    assert_complete(world, s.archive, [world.channels[result.channel_id]])
    s.archive.close()


def test_internal_errors_are_retried_with_backoff(session: Session) -> None:
    world = session.world
    with quick_internal_retries():
        hiccups = [world.inject(Fault("RPC_CALL_FAIL", request="messages.GetHistory", at=2, times=2)),
                   world.inject(Fault("INTERNAL", request="channels.GetFullChannel", at=1, times=1))]
        report = session.run()
    assert [f.fired for f in hiccups] == [2, 1]
    assert set(outcomes(report).values()) == {"ok"}, "Telethon retried them"
    # Telethon's own retries are invisible to the collector: the server saw two more than it sent
    assert world.requests["messages.GetHistory"] == report.requests["messages.GetHistory"] + 2
    assert_complete(world, session.archive, public(world))


def test_telegram_outage_fails_the_channel_not_the_pass(session: Session) -> None:
    world = session.world
    first = session.run()
    world.advance(timedelta(hours=7))
    outage = world.inject(Fault("INTERNAL", request="channels.GetMessages", at=1, times=None))
    with quick_internal_retries():
        second = session.run()
    assert second.status == "partial"
    refreshing = [c for c in second.channels if c.outcome == "error"]
    assert refreshing, "every channel with posts due for a refresh met the outage"
    for c in refreshing:
        assert "internal errors" in (c.error or "") and "try again later" in (c.error or ""), c.error
    # each failing refresh: Telethon's 1 + 5 (request_retries) tries, for each of the collector's 1 + 2 tries
    assert outage.fired == 6 * 3 * len(refreshing)
    world.faults.clear()
    world.advance(timedelta(minutes=5))
    third = session.run()
    assert set(outcomes(third).values()) == {"ok"}
    assert third.refreshed_posts > 0 and first.new_posts > 0
    assert_complete(world, session.archive, public(world))


# -- renamed, private, deleted, cleared -----------------------------------------------------------------
def test_renamed_channel_keeps_its_id_and_records_the_new_name(tmp_path: Path) -> None:
    world = small_world(22)
    s = Session.start(world, tmp_path / "a.duckdb")
    ch = public(world)[0]
    old = ch.username_at(world.now)
    assert old is not None
    new = f"{old}_renamed"
    s.run()
    ch.usernames.append((world.now + timedelta(hours=1), new))
    world.advance(timedelta(hours=25))              # renamed meanwhile; the snapshot is due again
    assert world.channel_by_username(old) is None, "the old name now resolves to nothing"
    resolves = world.requests["contacts.ResolveUsername"]
    report = s.run()
    assert set(outcomes(report).values()) == {"ok"}
    assert world.requests["contacts.ResolveUsername"] == resolves, "the stored id and access hash keep working"
    assert s.con.execute("SELECT username FROM channels WHERE channel_id = ?", [ch.channel_id]).fetchone() == (new,)
    history = s.con.execute("SELECT username FROM channel_observations WHERE channel_id = ? ORDER BY observed_at",
                            [ch.channel_id]).fetchall()
    assert history == [(old,), (new,)]
    names = dict(s.con.execute("SELECT username, channel_id FROM channel_usernames").fetchall())
    assert names[old.lower()] == names[new.lower()] == ch.channel_id
    # both names, as the user may give them, map to the archived channel without asking Telegram
    again = s.run([f"@{old}", f"https://t.me/{new}", str(ch.channel_id)])
    assert {c.channel_id for c in again.channels} == {ch.channel_id}
    assert set(outcomes(again).values()) == {"ok"}
    assert world.requests["contacts.ResolveUsername"] == resolves
    # another channel takes the freed name: the user's old name still means the archived channel
    other = next(c for c in public(world) if c is not ch)
    other.usernames.append((world.now + timedelta(minutes=1), old))
    world.advance(timedelta(minutes=30))
    taken = s.run([old])
    assert taken.channels[0].channel_id == ch.channel_id
    s.archive.close()


def test_channel_turned_private_is_kept_marked_and_reopens(session: Session) -> None:
    world, con = session.world, session.con
    first = session.run()
    ch = public(world)[0]
    archived = table(con, "posts")
    ch.private_from = world.now + timedelta(minutes=30)
    world.advance(timedelta(hours=2))
    second = session.run()
    result = next(c for c in second.channels if c.channel_id == ch.channel_id)
    assert result.outcome == "private" and "archived posts are kept" in (result.error or "")
    assert con.execute("SELECT status, status_at FROM channels WHERE channel_id = ?",
                       [ch.channel_id]).fetchone() == ("private", world.now)
    kept = [r for r in table(con, "posts") if r[0] == ch.channel_id]
    assert kept == [r for r in archived if r[0] == ch.channel_id], "nothing of it purged, marked or changed"
    assert all(c.outcome == "ok" for c in second.channels if c.channel_id != ch.channel_id)
    # open again a few hours later (no snapshot due): collected again and no longer marked
    ch.private_from = None
    world.advance(timedelta(hours=5))
    third = session.run()
    assert set(outcomes(third).values()) == {"ok"} and first.status == "ok"
    assert con.execute("SELECT status FROM channels WHERE channel_id = ?", [ch.channel_id]).fetchone() == ("active",)
    world.advance(timedelta(hours=20))
    session.run()
    assert_complete(world, session.archive, public(world))


def test_channel_closed_in_the_middle_of_a_page_run(tmp_path: Path) -> None:
    from collector._simulated.generate import generate_channel_world

    world = generate_channel_world(6, posts=700)
    s = Session.start(world, tmp_path / "a.duckdb")
    world.inject(Fault("CHANNEL_PRIVATE", request="messages.GetHistory", at=4, times=None))
    (result,) = s.run().channels
    assert result.outcome == "private"
    assert result.new_posts > 0, "the pages that arrived before are kept, with their cursor"
    assert s.con.execute("SELECT status FROM channels").fetchone() == ("private",)
    world.faults.clear()
    world.advance(timedelta(minutes=10))
    assert s.run().channels[0].outcome == "ok"
    assert s.con.execute("SELECT status FROM channels").fetchone() == ("active",)
    assert_complete(world, s.archive, [world.channels[result.channel_id]])
    s.archive.close()


def test_channel_deleted_mid_archive_is_kept_and_marked_gone(session: Session) -> None:
    world, con = session.world, session.con
    session.run()
    ch = public(world)[1]
    name = ch.username_at(world.now)
    ch.deleted_from = world.now + timedelta(hours=1)
    before = [r for r in table(con, "posts") if r[0] == ch.channel_id]
    world.advance(timedelta(days=1, hours=1))          # snapshot and refreshes due
    report = session.run([*world.seeds, str(ch.channel_id)])
    mine = [c for c in report.channels if c.channel_id == ch.channel_id]
    assert len(mine) == 2 and {c.outcome for c in mine} == {"private"}
    assert all("CHANNEL_INVALID" in (c.error or "") for c in mine)
    assert con.execute("SELECT status FROM channels WHERE channel_id = ?", [ch.channel_id]).fetchone() == ("gone",)
    assert [r for r in table(con, "posts") if r[0] == ch.channel_id] == before, "its posts are never purged"
    # a fresh archive could not even find it any more: its name is free
    fresh = Archive(session.archive.path.with_name("fresh.duckdb"))
    try:
        (lost,) = one_pass(world, fresh, [f"@{name}"]).channels
    finally:
        fresh.close()
    assert lost.outcome == "not_found"


def test_history_cleared_below_available_min_id(session: Session) -> None:
    world, con = session.world, session.con
    session.run()
    ch = public(world)[0]
    posts = ch.posts(world.now)
    level = posts[len(posts) // 2].message_id
    archived_below = [k for k in session.watch.posts if k[0] == ch.channel_id and k[1] <= level]
    world.advance(timedelta(hours=1))
    session.watch.cleared(ch, level)
    world.advance(timedelta(days=1))                    # the snapshot is due: it learns available_min_id first
    session.run()
    assert con.execute("SELECT available_min_id FROM channels WHERE channel_id = ?",
                       [ch.channel_id]).fetchone() == (level,)
    below = dict(con.execute("SELECT message_id, deleted_at FROM posts WHERE channel_id = ? AND message_id <= ?",
                             [ch.channel_id, level]).fetchall())
    assert len(below) == len(archived_below) > 0, "every archived post below the cleared level is kept"
    marked = [m for m, d in below.items() if d is not None]
    assert marked, "the posts due for a refresh came back empty: marked deleted, content kept"
    # the documented way to tell a cleared history from deletions (docs/faults.md)
    by_kind = dict(con.execute("""
        SELECT p.message_id <= coalesce(c.available_min_id, 0) AS cleared, count(*)
        FROM posts p JOIN channels c USING (channel_id)
        WHERE p.deleted_at IS NOT NULL AND p.channel_id = ? GROUP BY ALL""", [ch.channel_id]).fetchall())
    assert by_kind[True] == len(marked)
    for mid, deleted_at in con.execute("SELECT message_id, deleted_at FROM posts WHERE channel_id = ? AND "
                                       "message_id > ? AND deleted_at IS NOT NULL", [ch.channel_id, level]).fetchall():
        msg = world.message(ch.channel_id, mid)
        assert msg is not None and msg.deleted_at is not None and msg.deleted_at <= deleted_at, "a real deletion"
    assert_complete(world, session.archive, public(world))


# -- a write failure inside a transaction ---------------------------------------------------------------
_DATA_TABLES = ["posts", "post_observations", "post_versions", "channel_cursors", "peers", "channels",
                "channel_observations", "channel_usernames", "flood_waits"]


def _fails_at(point: str) -> Callable[[str, list[str]], bool]:
    """The statement of a posts write that fails: the new posts, the re-inserted known posts (after their old
    rows were deleted in the same transaction), the observations, or the cursor."""
    if point == "reinsert":
        return lambda sql, before: sql.startswith("INSERT INTO posts") and any(
            s.startswith("DELETE FROM posts") for s in before)
    prefix = {"posts": "INSERT INTO posts", "observations": "INSERT INTO post_observations",
              "cursor": "INSERT INTO channel_cursors"}[point]
    return lambda sql, before: sql.startswith(prefix)


@pytest.mark.parametrize("point", ["posts", "reinsert", "observations", "cursor"])
def test_write_failure_inside_a_transaction_writes_nothing(session: Session, point: str) -> None:
    world, archive = session.world, session.archive
    session.run()
    world.advance(timedelta(hours=7))                   # new posts, and refreshes due
    failing = FailingConnection(archive.con, _fails_at(point), _DATA_TABLES)
    archive._con = failing  # type: ignore[assignment]
    try:
        with pytest.raises(ArchiveError) as caught:
            one_pass(world, archive, list(world.seeds))
    finally:
        archive._con = failing._real
    assert failing.fired == 1
    if point != "posts":     # the failing transaction had already changed rows when it failed
        assert any(sql.startswith(("INSERT", "DELETE")) for sql in failing.history), failing.history
    message = str(caught.value)
    assert "rolled back" in message and "nothing of it was written" in message and "No space left" in message
    assert "\n" not in message
    # the pass stopped at the failure: the tables are as they were when that transaction began
    after = {name: table(archive.con, name) for name in _DATA_TABLES}
    before = failing.before
    assert after == before, f"half-written: {[n for n in _DATA_TABLES if after[n] != before[n]]}"
    assert archive.con.execute("SELECT status, error FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()[0] == "failed"
    # the next pass goes on as if the failed one had never run
    report = session.run()
    assert set(outcomes(report).values()) == {"ok"}
    assert_complete(world, archive, public(world))



# -- the checker itself --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Watch]:
    """An archive of two passes two days apart (refreshes and edits), closed, and its checker."""
    world = small_world(21)
    s = Session.start(world, tmp_path_factory.mktemp("checked") / "a.duckdb")
    s.run()
    world.advance(timedelta(days=2))
    s.run()
    assert scalar(s.con, "SELECT count(*) FROM post_versions") > 0
    s.archive.close()
    return s.archive.path, s.watch


@pytest.mark.parametrize(("plant", "complaint"), [
    ("DELETE FROM posts WHERE message_id = (SELECT max(message_id) FROM posts)", "disappeared"),
    ("UPDATE posts SET views = views + 1 WHERE message_id = (SELECT max(message_id) FROM posts)", "views"),
    ("UPDATE posts SET deleted_at = last_seen_at WHERE message_id = (SELECT max(message_id) FROM posts)",
     "the world did not"),
    ("DELETE FROM post_versions WHERE observed_at = (SELECT max(observed_at) FROM post_versions)", "edit between"),
    ("UPDATE channel_cursors SET max_message_id = max_message_id + 1000", "cursor"),
    ("UPDATE post_observations SET views = 0 WHERE observed_at = (SELECT max(observed_at) FROM post_observations)",
     "observed at|going down"),
])
def test_watch_catches_planted_corruption(checked: tuple[Path, Watch], tmp_path: Path, plant: str,
                                          complaint: str) -> None:
    """The checker is not vacuous: each kind of damage it exists for makes it fail."""
    path, watch = checked
    copy = tmp_path / "copy.duckdb"
    shutil.copy(path, copy)
    watch = dataclasses.replace(watch, posts=dict(watch.posts), cursors=dict(watch.cursors),
                                usernames=dict(watch.usernames), times=list(watch.times))
    with Archive(copy) as archive:
        watch_again = dataclasses.replace(watch, times=list(watch.times))
        watch_again.check(archive.con, watch.times[-1])          # the copy as it is passes
        archive.con.execute(plant)
        with pytest.raises(AssertionError, match=complaint):
            watch.check(archive.con, watch.times[-1])
