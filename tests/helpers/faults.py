"""Fault-injection helpers shared by tests/system/test_faults.py and test_fault_random.py: short retries, a
killed connection, one pass, and the watch that checks the archive's invariants after every page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from collector import Archive, CollectReport, CollectSettings, collect
from collector._parse.refresh import DEFAULT_CHECKPOINTS
from collector._simulated import World, generate_world, simulated_client
from collector._simulated.model import SimChannel
from tests.helpers.simworld import CONTRACT_COLUMNS, expected_post

POST_COLUMNS = ["channel_id", "message_id", "first_seen_at", "last_seen_at", "deleted_at", *CONTRACT_COLUMNS]


STATUSES = {"active", "private", "gone", "group"}


#: Fast but otherwise ordinary settings: batches of one page, retries without real waiting.
SETTINGS = CollectSettings(batch_rows=100, batch_seconds=3600.0, connection_retries=2, retry_delay=0.001,
                           hold_seconds=3600.0)


_UNIQUE = {
    "posts": "channel_id, message_id",
    "post_observations": "channel_id, message_id, observed_at",
    "post_versions": "channel_id, message_id, observed_at",
    "channel_observations": "channel_id, observed_at",
    "channel_usernames": "username",
    "channel_cursors": "channel_id",
    "channels": "channel_id",
}


# -- running passes ------------------------------------------------------------------------------------
@contextlib.contextmanager
def quick_internal_retries() -> Iterator[None]:
    """Shorten the fixed 2 s pause Telethon takes after each internal error (500, RPC_CALL_FAIL).

    ``TelegramBaseClient._call`` retries those errors itself, ``request_retries`` times, sleeping a literal
    ``asyncio.sleep(2)`` in between (telethon/client/users.py); there is no setting for it. Only that pause
    is shortened: the retries, their number and Telethon's giving up are unchanged. Flood waits slept in
    the same function keep their real length (tests use 1 s short waits, never 2 s).
    """
    import telethon.client.users as users

    real = users.asyncio

    class _Asyncio:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        async def sleep(delay: float, result: Any = None) -> Any:
            return await real.sleep(0.001 if delay == 2 else delay, result)

    users.asyncio = _Asyncio()  # type: ignore[assignment]
    try:
        yield
    finally:
        users.asyncio = real


class Killed(Exception):
    """The pass died (in-process kill) before it finished."""


def arm_kill(client: Any, at: int, *, answered: bool) -> None:
    """Make the ``at``-th request of this client the last thing the pass does, as if the process died there.

    The pass's task gets ``CancelledError`` at that request, either before the server sees it or after the
    server carried it out (``answered``: the answer is lost). Writes are synchronous between requests, so no
    transaction is open at that point: like a SIGKILL there, nothing uncommitted can reach the file.
    """
    sender = client._sender
    real = sender.send
    count = 0

    def send(request: Any, ordered: bool = False) -> Any:
        nonlocal count
        count += 1
        if count == at:
            if answered:   # carried out by the server; its answer (or error) is never read
                sent = real(request, ordered)
                for future in sent if isinstance(sent, list) else [sent]:
                    future.exception()      # already settled: mark it read, so asyncio does not warn
            raise asyncio.CancelledError(f"killed at request {at}")
        return real(request, ordered)

    sender.send = send


class FailingConnection:
    """A DuckDB connection that raises ``duckdb.IOException`` (disk full) at one statement of a write.

    ``fail(sql, history)`` decides from the statement and the statements before it in the current
    transaction; everything else goes to the real connection. ``before`` holds the contents of ``tables``
    as they were when the failing transaction began.
    """

    def __init__(self, real: duckdb.DuckDBPyConnection, fail: Callable[[str, list[str]], bool],
                 tables: list[str] | None = None) -> None:
        self._real = real
        self._fail = fail
        self._tables = tables or []
        self.history: list[str] = []
        self.before: dict[str, list[tuple[Any, ...]]] = {}
        self.fired = 0

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql.startswith("BEGIN") and not self.fired:
            self.history = []
            self.before = {name: table(self._real, name) for name in self._tables}
        if not self.fired and self._fail(sql, self.history):
            self.fired += 1
            raise duckdb.IOException("simulated: could not write to the database file: No space left on device")
        self.history.append(sql)
        return self._real.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def one_pass(world: World, archive: Archive, inputs: list[str], *, settings: CollectSettings = SETTINGS,
             threshold: int = 5, kill: tuple[int, bool] | None = None) -> CollectReport:
    """One pass at ``world.now`` with a fresh client on an open archive; raises :class:`Killed` on a kill."""

    async def go() -> CollectReport:
        client = simulated_client(world, flood_sleep_threshold=threshold)
        if kill is not None:
            arm_kill(client, kill[0], answered=kill[1])
        return await collect(client, inputs, archive, now=world.now, settings=settings)

    try:
        return asyncio.run(go())
    except asyncio.CancelledError:
        raise Killed(f"killed at request {kill}") from None


def scalar(con: Any, sql: str, params: Any = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    return row[0] if row else None


def table(con: Any, name: str) -> list[tuple[Any, ...]]:
    return sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr)


# -- the checker ---------------------------------------------------------------------------------------
@dataclass
class Watch:
    """Checks an archive against the world after every pass; incremental, so hundreds of passes stay cheap.

    Call :meth:`cleared` when the world's history of a channel is cleared (``available_min_id`` raised) and
    :meth:`check` after each pass with that pass's clock.
    """

    world: World
    posts: dict[tuple[int, int], tuple[Any, ...]] = field(default_factory=dict)
    cursors: dict[int, int] = field(default_factory=dict)
    usernames: dict[str, int] = field(default_factory=dict)
    levels: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)
    times: list[datetime] = field(default_factory=list)
    checks: int = 0

    def __post_init__(self) -> None:
        # a history cleared before the archive began counts from the beginning of time
        for cid, ch in self.world.channels.items():
            if ch.available_min_id:
                self.levels.setdefault(cid, []).insert(0, (datetime.min.replace(tzinfo=UTC), ch.available_min_id))

    def cleared(self, ch: SimChannel, level: int) -> None:
        ch.available_min_id = level
        self.levels.setdefault(ch.channel_id, []).append((self.world.now, level))

    def level_at(self, channel_id: int, t: datetime) -> int:
        level = 0
        for since, lv in self.levels.get(channel_id, []):
            if since <= t:
                level = lv
        return level

    def check(self, con: duckdb.DuckDBPyConnection, t: datetime) -> None:
        since = self.times[-1] if self.times else t
        if not self.times or self.times[-1] != t:
            self.times.append(t)
        counts = con.execute("SELECT " + ", ".join(
            f"(SELECT count(*) - count(DISTINCT ({key})) FROM {name})" for name, key in _UNIQUE.items())).fetchone()
        assert counts is not None
        duplicated = [name for name, n in zip(_UNIQUE, counts, strict=True) if n]
        assert not duplicated, f"duplicate keys in {duplicated}"
        cursors = {int(c): int(m) for c, m in con.execute(
            "SELECT channel_id, max_message_id FROM channel_cursors").fetchall()}
        self._check_posts(con, t, cursors)
        self._check_cursors(con, since, t, cursors)
        self._check_observations(con, since, t)
        self._check_channels(con, since)
        self.cursors = cursors
        self.checks += 1

    def _check_posts(self, con: duckdb.DuckDBPyConnection, t: datetime, cursors: dict[int, int]) -> None:
        rows = {(r[0], r[1]): r for r in con.execute(f"SELECT {', '.join(POST_COLUMNS)} FROM posts").fetchall()}
        lost = self.posts.keys() - rows.keys()
        assert not lost, f"archived posts disappeared: {sorted(lost)[:5]}"
        for key, row in rows.items():
            prev = self.posts.get(key)
            if prev == row:
                continue
            rec = dict(zip(POST_COLUMNS, row, strict=True))
            msg = self.world.message(*key)
            assert msg is not None and not msg.is_service, f"{key}: not a post of the world"
            assert key[1] <= cursors.get(key[0], 0), f"{key}: archived above its channel's cursor"
            assert rec["first_seen_at"] <= rec["last_seen_at"] <= t and rec["last_seen_at"] in self.times, key
            assert msg.visible_at(rec["first_seen_at"]) and msg.visible_at(rec["last_seen_at"]), \
                f"{key}: archived at a moment the world did not show it"
            if prev is not None:
                old = dict(zip(POST_COLUMNS, prev, strict=True))
                assert old["deleted_at"] is None, f"{key}: a post marked deleted changed afterwards: {old} -> {rec}"
                assert rec["first_seen_at"] == old["first_seen_at"] and rec["last_seen_at"] >= old["last_seen_at"]
            deleted = rec["deleted_at"]
            if deleted is not None:
                assert deleted in self.times and rec["last_seen_at"] <= deleted, key
                assert (msg.deleted_at is not None and msg.deleted_at <= deleted) or \
                    key[1] <= self.level_at(key[0], deleted), f"{key}: marked deleted at {deleted}, the world did not"
            comments = self.world.channels[key[0]].linked_chat_id is not None
            want = expected_post(msg, rec["last_seen_at"], comments=comments)
            got = {k: rec[k] for k in want}
            assert got == want, f"{key}: " + ", ".join(
                f"{k}: {got[k]!r} != {want[k]!r}" for k in want if got[k] != want[k])
        self.posts = rows

    def _check_cursors(self, con: duckdb.DuckDBPyConnection, since: datetime, t: datetime,
                       cursors: dict[int, int]) -> None:
        for cid, cursor in cursors.items():
            before = self.cursors.get(cid, 0)
            ch = self.world.channels[cid]
            assert before <= cursor <= ch.top_id(t), f"channel {cid}: cursor {before} -> {cursor}"
            if cursor == before:
                continue
            level = self.level_at(cid, t)
            # moved during (since, t]: every post the world showed throughout that interval is archived
            wanted = {m.message_id for m in ch.messages[before:cursor]
                      if not m.is_service and m.message_id > level and m.visible_at(since) and m.visible_at(t)}
            missing = wanted - {k[1] for k in self.posts if k[0] == cid}
            assert not missing, f"channel {cid}: cursor {before} -> {cursor} over missing posts {sorted(missing)[:5]}"

    def _check_observations(self, con: duckdb.DuckDBPyConnection, since: datetime, t: datetime) -> None:
        problems = con.execute("""
            SELECT (SELECT count(*) FROM post_observations WHERE observed_at > $t) AS "observations in the future",
                   (SELECT count(*) FROM posts p FULL JOIN (
                        SELECT channel_id, message_id, min(observed_at) AS lo, max(observed_at) AS hi
                        FROM post_observations GROUP BY ALL) o USING (channel_id, message_id)
                    WHERE o.lo IS DISTINCT FROM p.first_seen_at OR o.hi IS DISTINCT FROM p.last_seen_at)
                       AS "observations disagreeing with posts.first_seen_at/last_seen_at",
                   (SELECT count(*) FROM (
                        SELECT views < lag(views) OVER w OR forwards < lag(forwards) OVER w
                               OR reactions < lag(reactions) OVER w OR replies < lag(replies) OVER w AS down
                        FROM post_observations WINDOW w AS (PARTITION BY channel_id, message_id ORDER BY observed_at))
                    WHERE down) AS "counters going down between two observations",
                   (SELECT count(*) FROM post_versions v ANTI JOIN post_observations o
                    USING (channel_id, message_id, observed_at)) AS "versions without their observation",
                   (SELECT count(*) FROM flood_waits WHERE until <> started_at + to_seconds(seconds))
                       AS "flood waits whose end is not start + seconds"
            """, {"t": t})
        names = [d[0] for d in problems.description]
        found = {n: v for n, v in zip(names, problems.fetchone() or (), strict=True) if v}
        assert not found, found
        rows = con.execute("""
            SELECT o.channel_id, o.message_id, o.observed_at, o.views, o.forwards, o.replies, o.reactions,
                   (SELECT max(q.observed_at) FROM post_observations q WHERE q.channel_id = o.channel_id
                      AND q.message_id = o.message_id AND q.observed_at < o.observed_at) AS prev,
                   v.text, v.edited_at, v.observed_at IS NOT NULL AS has_version
            FROM post_observations o LEFT JOIN post_versions v USING (channel_id, message_id, observed_at)
            WHERE o.observed_at >= ?""", [since]).fetchall()
        for cid, mid, at, views, forwards, replies, reactions, prev, text, edited_at, has_version in rows:
            msg = self.world.message(cid, mid)
            assert msg is not None
            comments = self.world.channels[cid].linked_chat_id is not None
            state = msg.state_at(at)
            assert (views, forwards, replies, reactions) == (
                state.views, state.forwards, state.replies if comments else None, state.reactions_total), \
                f"{(cid, mid)} observed at {at}"
            if prev is None:
                assert not has_version, f"{(cid, mid)}: a version at its first observation"
                continue
            old, new = msg.version_at(prev), msg.version_at(at)
            changed = old.text != new.text or old.edited_at != new.edited_at
            assert has_version == changed, f"{(cid, mid)} at {at}: edit between {prev} and {at} = {changed}"
            if changed:
                assert (text, edited_at) == (old.text, old.edited_at), f"{(cid, mid)}: wrong earlier text kept"

    def _check_channels(self, con: duckdb.DuckDBPyConnection, since: datetime) -> None:
        for status, in con.execute("SELECT DISTINCT status FROM channels").fetchall():
            assert status in STATUSES, status
        for name, cid in con.execute("SELECT username, channel_id FROM channel_usernames").fetchall():
            ch = self.world.channels.get(cid)
            assert ch is not None and name in {u.lower() for _, u in ch.usernames}, \
                f"@{name} recorded for channel {cid}, which never had that name"
            assert self.usernames.setdefault(name, cid) == cid, f"@{name} moved to another channel"
        for cid, at, participants, title, username in con.execute(
                "SELECT channel_id, observed_at, participants_count, title, username FROM channel_observations "
                "WHERE observed_at >= ?", [since]).fetchall():
            ch = self.world.channels[cid]
            assert (participants, title, username) == (ch.participants_at(at), ch.title, ch.username_at(at)), \
                f"channel {cid} snapshot at {at}"


def assert_complete(world: World, archive: Archive, channels: list[SimChannel]) -> None:
    """After a clean pass at ``world.now``: every visible post of each (accessible) channel is archived,
    nothing is left due (by the collector's own definition), and the channel's last snapshot is less than a
    day old and equals the world at its moment."""
    t = world.now
    con = archive.con
    for ch in channels:
        archived = {int(r[0]) for r in con.execute(
            "SELECT message_id FROM posts WHERE channel_id = ?", [ch.channel_id]).fetchall()}
        visible = {m.message_id for m in ch.posts(t)}
        assert visible <= archived, f"channel {ch.channel_id}: not archived {sorted(visible - archived)[:5]}"
        due = archive.due_posts(ch.channel_id, t, DEFAULT_CHECKPOINTS)
        assert due == [], f"channel {ch.channel_id}: still due after a clean pass: {due[:5]}"
        row = con.execute("SELECT username, title, participants_count, status, last_snapshot_at FROM channels "
                          "WHERE channel_id = ?", [ch.channel_id]).fetchone()
        assert row is not None and t - timedelta(hours=24) < row[4] <= t, (ch.channel_id, row)
        at = row[4]
        assert row[:4] == (ch.username_at(at), ch.title, ch.participants_at(at), "active"), (ch.channel_id, row)


def public(world: World) -> list[SimChannel]:
    """The seed channels that are public broadcast channels now."""
    t = world.now
    found = [world.channel_by_username(s.lstrip("@").rsplit("/", 1)[-1], at=t) for s in world.seeds]
    return [ch for ch in found if ch is not None and not ch.megagroup and not ch.closed and not ch.is_private_at(t)]


def small_world(seed: int, **kwargs: Any) -> World:
    options: dict[str, Any] = {"channels": 3, "days": 2.0, "posts_per_day": 15.0, "future_days": 6.0,
                               "special_seeds": False}
    options.update(kwargs)
    return generate_world(seed, **options)
