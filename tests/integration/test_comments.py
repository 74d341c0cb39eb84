"""Comments under archived posts (issue 5): what the archive holds equals what the simulated server shows,
later passes fetch only what is new, authors are pseudonyms that never reveal a person, and it is all off
by default.

The ground truth is the world-level ``srv_comments.comments_at`` (records), the collector's path is
``messages.getReplies`` through a real TelegramClient and its TL parsing: two different paths.
"""

from __future__ import annotations

import asyncio
import doctest
import json
import re
import shutil
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from telethon import errors
from telethon.sessions import SQLiteSession
from telethon.tl import functions, types
from typer.testing import CliRunner

from collector import Archive
from collector._archive.upsert import pseudonym
from collector._cli.app import app
from collector._config import ConfigError, load_config
from collector._simulated import Fault, World, generate_world, simulated_client
from collector._simulated import srv_comments as sc
from collector._simulated.generate import collected_channels
from collector._telegram.calls import FloodLimited
from collector._telegram.comments import PSEUDONYM_KEY, CommentsReport, CommentsSettings, collect_comments
from tests.helpers.simworld import run_pass

ROOT = Path(__file__).resolve().parents[2]
SEED = 3            # two collected channels with a discussion group; one post with more than 100 comments


def _world() -> World:
    return generate_world(SEED, channels=4, days=3, posts_per_day=10, future_days=4)


def comments_pass(world: World, path: Path, channels: list[str] | None = None, *,
                  settings: CommentsSettings | None = None, session: Any = None) -> CommentsReport:
    """One comments pass at ``world.now`` with a fresh client, as a scheduled run would do."""

    async def go() -> CommentsReport:
        client = simulated_client(world)
        if session is not None:
            client.session = session
        with Archive(path) as archive:
            return await collect_comments(client, archive, channels, now=world.now, settings=settings)

    return asyncio.run(go())


def rows(path: Path, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with Archive(path, read_only=True) as archive:
        return archive.con.execute(sql, params).fetchall()


@dataclass
class Base:
    """One world collected once; tests start from a copy of its archive and a reset server."""

    world: World
    path: Path
    now: datetime
    collect_requests: dict[str, int]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    world = _world()
    path = tmp_path_factory.mktemp("comments-base") / "base.duckdb"
    run_pass(world, path)
    return Base(world, path, world.now, dict(world.requests))


def start(base: Base, tmp_path: Path, name: str = "a.duckdb", *, now: datetime | None = None) -> tuple[World, Path]:
    """The base world with its clock (``now``, default: as collected) and a fresh server state, and a copy of
    the collected archive."""
    world = base.world
    world.now = base.now if now is None else now
    world.faults.clear()
    world.requests.clear()
    world.flood_until.clear()
    path = tmp_path / name
    shutil.copy(base.path, path)
    return world, path


@dataclass
class Run:
    world: World
    path: Path
    first: Path                      # the archive as the first comments pass left it
    times: list[datetime]
    reports: list[CommentsReport]
    requests: list[dict[str, int]]   # what the server counted during each comments pass
    replies_before: dict[tuple[int, int], tuple[int, int]]   # post -> (replies counter, replies_seen) before pass 2
    seen_after_first: dict[tuple[int, int], datetime]        # comment key -> last_seen_at after pass 1

    def at_end(self) -> World:
        """The world as the second pass saw it (other tests move the shared world's clock)."""
        self.world.now = self.times[-1]
        self.world.faults.clear()
        self.world.flood_until.clear()
        return self.world


@pytest.fixture(scope="module")
def run(base: Base, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Fetch comments after the collection; advance a day, collect, fetch again."""
    tmp = tmp_path_factory.mktemp("comments")
    world, path = start(base, tmp)
    times, reports = [world.now], [comments_pass(world, path)]
    requests = [dict(world.requests)]
    shutil.copy(path, tmp / "first.duckdb")
    seen = {(r[0], r[1]): r[2] for r in rows(path, "SELECT discussion_id, comment_id, last_seen_at FROM post_comments")}
    world.advance(timedelta(days=1))
    run_pass(world, path)
    before = {(r[0], r[1]): (r[2], r[3]) for r in rows(
        path, "SELECT p.channel_id, p.message_id, p.replies, coalesce(k.replies_seen, 0) FROM posts p "
              "LEFT JOIN post_comment_cursors k USING (channel_id, message_id) WHERE p.replies_channel_id IS NOT NULL")}
    world.requests.clear()
    times.append(world.now)
    reports.append(comments_pass(world, path))
    requests.append(dict(world.requests))
    return Run(world, path, tmp / "first.duckdb", times, reports, requests, before, seen)


def _archived(path: Path) -> dict[tuple[int, int], list[tuple[Any, ...]]]:
    out: dict[tuple[int, int], list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows(path, "SELECT channel_id, message_id, comment_id, posted_at, text, edited_at, reply_to_comment_id, "
                        "root_comment_id, author_kind, author_channel_id, reactions, discussion_id, deleted_at "
                        "FROM post_comments ORDER BY comment_id"):
        out[(r[0], r[1])].append(r[2:])
    return out


def _expected(world: World, path: Path) -> dict[tuple[int, int], list[tuple[Any, ...]]]:
    """The visible comments of every archived live post with a discussion group, as the world holds them."""
    out: dict[tuple[int, int], list[tuple[Any, ...]]] = {}
    for cid, mid in rows(path, "SELECT channel_id, message_id FROM posts WHERE replies_channel_id IS NOT NULL "
                               "AND replies > 0 AND deleted_at IS NULL"):
        found = sc.comments_at(world, cid, mid)
        if found:
            out[(cid, mid)] = [
                (c.comment_id, c.posted_at, c.text_at(world.now), c.edited_at_t(world.now), c.reply_to_comment_id,
                 c.root_id, c.author[0], c.author[1] if c.author[0] == "channel" else None,
                 sum(n for _, n in c.reactions), c.discussion_id, None)
                for c in found]
    return out


# -- the simulated server ---------------------------------------------------------------------------------


def test_simulated_comments_follow_the_posts_counter(base: Base, tmp_path: Path) -> None:
    world, _ = start(base, tmp_path)
    checked = 0
    for ch in collected_channels(world):
        for m in ch.posts(world.now):
            disc = sc.discussion(world, ch)
            posted = [c for c in (disc.thread(m.message_id) if disc else []) if c.posted_at <= world.now]
            assert len(posted) == m.state_at(world.now).replies, (ch.channel_id, m.message_id)
            assert all(c.posted_at > m.posted_at for c in posted)
            ids = [c.comment_id for c in posted]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            assert all(c.reply_to_comment_id is None or c.reply_to_comment_id in ids[:i]
                       for i, c in enumerate(posted))
            # comment k appears in the very second the post's counter (the model's own) reaches k
            for k, c in enumerate(posted, 1):
                assert m.state_at(c.posted_at).replies >= k > m.state_at(c.posted_at - timedelta(seconds=1)).replies
            checked += len(posted)
    assert checked > 1000
    # group ids number everything in time order: later comments of any post have higher ids
    for ch in collected_channels(world):
        if (disc := sc.discussion(world, ch)) is not None:
            every = sorted((c.posted_at, c.comment_id) for t in disc.threads().values() for c in t)
            assert [i for _, i in every] == sorted(i for _, i in every)
    kinds = {c.author[0] for ch in collected_channels(world) if (d := sc.discussion(world, ch))
             for t in d.threads().values() for c in t}
    assert kinds == {"user", "channel", "anonymous_admin"}


def test_get_replies_pages_like_telegram(base: Base, tmp_path: Path) -> None:
    world, _ = start(base, tmp_path)
    ch, post = max(((c, m) for c in collected_channels(world) if c.linked_chat_id for m in c.posts(world.now)),
                   key=lambda cm: len(sc.comments_at(world, cm[0].channel_id, cm[1].message_id)))
    truth = [c.comment_id for c in sc.comments_at(world, ch.channel_id, post.message_id)]
    assert len(truth) > 100
    peer = types.InputPeerChannel(ch.channel_id, ch.access_hash)

    async def go() -> None:
        client = simulated_client(world)
        got = [m.id async for m in client.iter_messages(peer, reply_to=post.message_id, wait_time=0)]
        assert got == truth[::-1]
        answer = await client(functions.messages.GetRepliesRequest(
            peer, post.message_id, offset_id=0, offset_date=None, add_offset=0, limit=100, max_id=0,
            min_id=truth[-6], hash=0))
        assert [m.id for m in answer.messages] == truth[-5:][::-1] and answer.count == len(truth)
        assert {type(u) for u in answer.users} <= {types.User}
        assert isinstance(answer.chats[0], types.Channel) and answer.chats[0].id == ch.linked_chat_id
        older = await client(functions.messages.GetRepliesRequest(
            peer, post.message_id, offset_id=truth[10] + 1, offset_date=None, add_offset=-3, limit=5, max_id=0,
            min_id=0, hash=0))
        assert [m.id for m in older.messages] == truth[9:14][::-1]
        plain = next(c for c in collected_channels(world) if not c.linked_chat_id)
        with pytest.raises(errors.MsgIdInvalidError):
            await client(functions.messages.GetRepliesRequest(
                types.InputPeerChannel(plain.channel_id, plain.access_hash), plain.posts(world.now)[-1].message_id,
                0, None, 0, 10, 0, 0, 0))

    asyncio.run(go())


# -- what the archive holds ------------------------------------------------------------------------------


def test_first_pass_archives_every_visible_comment(run: Run) -> None:
    world, path, report = run.world, run.first, run.reports[0]
    world.now = run.times[0]
    expected = _expected(world, path)
    assert _archived(path) == expected
    assert report.new_comments == sum(len(v) for v in expected.values()) > 1000
    with_counter = rows(path, "SELECT count(*) FROM posts WHERE replies > 0 AND replies_channel_id IS NOT NULL")
    assert [(report.posts_fetched,)] == [(report.posts_due,)] == with_counter and report.status == "ok"
    # a post with more than 100 comments took several pages; every other post one request
    assert any(len(v) > 100 for v in expected.values())
    assert report.posts_fetched < run.requests[0]["messages.GetReplies"] == sum(report.requests.values())
    assert rows(path, "SELECT count(*) FROM post_comments WHERE first_seen_at <> $t OR last_seen_at <> $t",
                {"t": run.times[0]}) == [(0,)]


def test_second_pass_fetches_only_what_is_new(run: Run) -> None:
    world, path = run.at_end(), run.path
    second = run.reports[1]
    due = {k for k, (replies, seen) in run.replies_before.items() if replies > seen}
    assert due and second.posts_due == second.posts_fetched == len(due)
    # one request per due post, more only for posts with more than 100 new comments or a deletion rescan
    assert len(due) <= run.requests[1]["messages.GetReplies"] <= len(due) + 10
    new = [r for r in rows(path, "SELECT discussion_id, comment_id, posted_at FROM post_comments")
           if (r[0], r[1]) not in run.seen_after_first]
    assert second.new_comments == len(new) > 0
    assert all(r[2] > run.times[0] for r in new)                  # nothing older than pass 1 was missing
    archived = _archived(path)
    live = {k: [r for r in v if r[-1] is None] for k, v in archived.items()}
    expected = _expected(world, path)
    rescanned = {k for k, v in archived.items() if any(r[-1] is not None for r in v)}
    for key, want in expected.items():
        if key in due:                        # fetched again: exactly what Telegram shows now
            assert live[key] == want, key
    assert rescanned and rescanned <= due and second.deleted_comments == sum(
        1 for v in archived.values() for r in v if r[-1] is not None)
    # comments archived by the first pass were not fetched again, except under posts rescanned for deletions
    last_seen = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows(
        path, "SELECT discussion_id, comment_id, last_seen_at, channel_id, message_id FROM post_comments")}
    for key, first in run.seen_after_first.items():
        seen_at, cid, mid = last_seen[key]
        if (cid, mid) not in rescanned:
            assert seen_at == first
    third = comments_pass(world, path)
    assert third.posts_due == 0 and third.requests == {}


# -- pseudonyms -------------------------------------------------------------------------------------------


def _authors(path: Path) -> dict[tuple[int, int], str]:
    return {(r[0], r[1]): r[2] for r in rows(
        path, "SELECT discussion_id, comment_id, author_pseudonym FROM post_comments WHERE author_kind = 'user'")}


def test_pseudonyms_are_stable_per_person_and_reveal_nobody(run: Run, base: Base, tmp_path: Path) -> None:
    world = run.at_end()
    truth = {(c.discussion_id, c.comment_id): c.author for ch in collected_channels(world)
             if (d := sc.discussion(world, ch)) for t in d.threads().values() for c in t}
    authors = _authors(run.path)
    assert len(authors) > 500
    by_person: dict[int, set[str]] = defaultdict(set)
    by_alias: dict[str, set[int]] = defaultdict(set)
    channels_of: dict[str, set[int]] = defaultdict(set)
    for key, alias in authors.items():
        kind, uid = truth[key]
        assert kind == "user"
        assert re.fullmatch(r"[0-9a-f]{16}", alias) and str(uid) not in alias
        by_person[uid].add(alias)
        by_alias[alias].add(uid)
        channels_of[alias].add(key[0])
    assert all(len(a) == 1 for a in by_person.values())          # one person, one pseudonym (across runs too)
    assert all(len(p) == 1 for p in by_alias.values())           # one pseudonym, one person
    assert any(len(c) > 1 for c in channels_of.values())         # the same person in two discussion groups
    posts_of: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for alias, cid, mid in rows(run.path, "SELECT author_pseudonym, channel_id, message_id FROM post_comments "
                                          "WHERE author_kind = 'user'"):
        posts_of[alias].add((cid, mid))
    assert sum(1 for p in posts_of.values() if len(p) > 1) > 10   # ... and under many posts
    with Archive(run.path, read_only=True) as archive:
        ((key,),) = archive.con.execute("SELECT key FROM pseudonym_keys WHERE name = ?", [PSEUDONYM_KEY]).fetchall()
    assert all(alias == pseudonym(bytes(key), f"user{truth[k][1]}") for k, alias in authors.items())
    # the same comments in another archive (its own key) get other pseudonyms
    world, other_path = start(base, tmp_path, now=run.times[0])
    comments_pass(world, other_path)
    other = _authors(other_path)
    shared = authors.keys() & other.keys()
    assert len(shared) > 500 and all(authors[k] != other[k] for k in shared)


def test_no_person_level_data_anywhere_in_the_archive(run: Run, tmp_path: Path) -> None:
    people = sc.user_pool(run.world)
    needles = {str(u.user_id) for u in people} | {u.username for u in people if u.username} | \
              {u.phone for u in people if u.phone}
    dump = tmp_path / "dump"
    with Archive(run.path, read_only=True) as archive:
        tables = [r[0] for r in archive.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        assert "post_comments" in tables
        texts = []
        for table in tables:
            out = dump / f"{table}.csv"
            dump.mkdir(exist_ok=True)
            archive.con.execute(f"COPY (SELECT * FROM {table}) TO '{out}' (HEADER, DELIMITER ',')")
            texts.append(out.read_text(encoding="utf-8"))
    text = "\n".join(texts)
    assert all(len(str(u.user_id)) == 10 for u in people) and len(needles) > 300
    assert [n for n in needles if n in text] == []
    assert len(_authors(run.path)) > 500                          # and those people did comment


def test_the_session_file_keeps_no_comment_authors(base: Base, tmp_path: Path) -> None:
    world, path = start(base, tmp_path)
    session = SQLiteSession(str(tmp_path / "probe"))
    report = comments_pass(world, path, settings=CommentsSettings(max_posts=5), session=session)
    assert report.new_comments > 0
    session.save()
    session.close()
    with sqlite3.connect(tmp_path / "probe.session") as db:
        ids = {r[0] for r in db.execute("SELECT id FROM entities")}
    assert ids.isdisjoint({u.user_id for u in sc.user_pool(world)})
    assert session.save_entities is True                          # restored after the pass


# -- limits, failures, flood waits ------------------------------------------------------------------------


def test_max_posts_channels_and_refused_posts(base: Base, tmp_path: Path) -> None:
    world, path = start(base, tmp_path)
    linked = [c for c in collected_channels(world) if c.linked_chat_id]
    name = "@" + (linked[0].username_at(world.now) or "")
    first = comments_pass(world, path, [name, "@nobody_here_x"], settings=CommentsSettings(max_posts=3))
    assert first.posts_fetched == 3 and any("not in this archive" in e for e in first.errors)
    assert {r[0] for r in rows(path, "SELECT DISTINCT channel_id FROM post_comments")} == {linked[0].channel_id}
    fault = world.inject(Fault("MSG_ID_INVALID", request="messages.GetReplies", at=1))
    second = comments_pass(world, path, [name])
    assert fault.fired == 1 and second.status == "partial" and len(second.errors) == 1
    assert rows(path, "SELECT count(*) FROM post_comment_cursors WHERE error LIKE 'MSG_ID_INVALID%'") == [(1,)]
    assert comments_pass(world, path, [name]).posts_due == 0      # the refused post waits for its counter to grow


def test_a_long_flood_wait_stops_the_pass_and_is_honoured_later(base: Base, tmp_path: Path) -> None:
    world, path = start(base, tmp_path)
    world.inject(Fault("FLOOD_WAIT", request="messages.GetReplies", seconds=7200, at=3))
    first = comments_pass(world, path)
    assert first.flood_until == world.now + timedelta(seconds=7200) and first.requests == {"messages.GetReplies": 3}
    assert 0 < first.posts_fetched < first.posts_due
    assert "stopped: Telegram asked to wait before more messages.GetReplies requests" in first.summary()
    assert rows(path, "SELECT request, seconds FROM flood_waits") == [("messages.GetReplies", 7200)]
    world.requests.clear()
    blocked = comments_pass(world, path)
    assert world.requests["messages.GetReplies"] == 0 and blocked.flood_until is not None
    world.advance(timedelta(hours=3))
    later = comments_pass(world, path)
    assert later.flood_until is None and later.posts_fetched == first.posts_due - first.posts_fetched
    assert _archived(path) == _expected(world, path)              # caught up, nothing lost or doubled


def test_a_flood_wait_anywhere_loses_no_answered_page(base: Base, tmp_path: Path) -> None:
    """Pages are written as they arrive (oldest first from the cursor), so a flood wait at any request of a
    pass costs nothing already answered: the interrupted pass and the one after the wait together send exactly
    the uninterrupted pass's requests, plus the refused one. (Asking for a post's newest page first and writing
    it last, as before, asked for that page again whenever the wait came while the older pages were read.)
    On the channel of the post with more than 100 comments, so every position is tried in a few seconds."""
    world, path = start(base, tmp_path)
    ch = max((c for c in collected_channels(world) if c.linked_chat_id),
             key=lambda c: max(len(sc.comments_at(world, c.channel_id, m.message_id)) for m in c.posts(world.now)))
    name = ["@" + (ch.username_at(world.now) or "")]
    whole = comments_pass(world, path, name)
    sent = world.requests["messages.GetReplies"]
    assert whole.requests == {"messages.GetReplies": sent} and whole.new_comments > 100
    for at in range(2, sent + 1):
        world, path = start(base, tmp_path, f"cut-{at}.duckdb")
        world.inject(Fault("FLOOD_WAIT", request="messages.GetReplies", seconds=600, at=at))
        cut = comments_pass(world, path, name)
        assert cut.flood_until is not None, at
        world.advance(timedelta(minutes=11))
        comments_pass(world, path, name)
        assert world.requests["messages.GetReplies"] == sent + 1, at
        mine = {k: v for k, v in _expected(world, path).items() if k[0] == ch.channel_id}
        assert _archived(path) == mine, at


def test_a_request_budget_stops_the_pass(base: Base, tmp_path: Path) -> None:
    world, path = start(base, tmp_path)
    until = world.now + timedelta(hours=1)

    class Three:
        spent = 0

        def spend(self, request: str) -> None:
            if self.spent == 3:
                raise FloodLimited(request, until)
            self.spent += 1

    async def go() -> CommentsReport:
        with Archive(path) as archive:
            return await collect_comments(simulated_client(world), archive, now=world.now, budget=Three())

    report = asyncio.run(go())
    assert world.requests["messages.GetReplies"] == 3 and report.flood_until == until and report.status == "partial"
    assert 0 < report.posts_fetched < report.posts_due


# -- off by default, configuration, the command, what is never exported -----------------------------------


def test_off_by_default(base: Base, tmp_path: Path) -> None:
    assert load_config(None, env={}, cwd=tmp_path).comments_enabled is False
    assert base.collect_requests and "messages.GetReplies" not in base.collect_requests   # collect never asks
    path = start(base, tmp_path)[1]
    assert rows(path, "SELECT count(*) FROM post_comments") == [(0,)]
    result = CliRunner().invoke(app, ["comments", "--archive", str(path)], env={"TGSPREAD_SIMULATED_SEED": ""})
    assert result.exit_code == 2 and "enabled = true" in result.output
    assert rows(path, "SELECT count(*) FROM pseudonym_keys") == [(0,)]


@pytest.mark.parametrize(("body", "message"), [
    ("[comments]\nenabled = \"yes\"\n", "enabled: expected true or false"),
    ("[comments]\nmax_posts = 0\n", "max_posts: expected a whole number"),
    ("[comments]\nenable = true\n", "unknown key 'enable'"),
])
def test_bad_comments_settings_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "tgspread.toml"
    config.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(config, env={})
    assert "\n" not in str(info.value) and "[comments]" in str(info.value)


def test_the_command_on_the_simulated_telegram(tmp_path: Path) -> None:
    config = tmp_path / "tgspread.toml"
    config.write_text("archive = \"a.duckdb\"\n[comments]\nenabled = true\nmax_posts = 4\n", encoding="utf-8")
    env = {"TGSPREAD_SIMULATED_SEED": str(SEED), "TGSPREAD_SIMULATED_CHANNELS": "2", "TGSPREAD_SIMULATED_DAYS": "1"}
    runner = CliRunner()
    collected = runner.invoke(app, ["collect", "--config", str(config)], env=env)
    assert collected.exit_code in (0, 1), collected.output
    names = [r[0] for r in rows(tmp_path / "a.duckdb", "SELECT DISTINCT c.username FROM channels c JOIN posts p "
                                                        "USING (channel_id) WHERE p.replies_channel_id IS NOT NULL")]
    assert names
    result = runner.invoke(app, ["comments", "--config", str(config), "--json", "--max-posts", "3", *names,
                                 "NoSuchName"], env=env)
    assert result.exit_code == 1, result.output                   # one name is not in the archive
    payload = json.loads(result.stdout[result.stdout.index("{"):])
    assert payload["posts_fetched"] == 3 and payload["new_comments"] > 0 and payload["status"] == "partial"
    assert [e for e in payload["errors"] if "NoSuchName: not in this archive" in e]
    assert rows(tmp_path / "a.duckdb", "SELECT count(DISTINCT message_id) FROM post_comments") == [(3,)]


def test_doctests() -> None:
    import collector._telegram.comments

    for module in (collector._telegram.comments, sc):
        assert doctest.testmod(module).failed == 0


def test_the_key_never_leaves_the_archive(run: Run, tmp_path: Path) -> None:
    from collector._archive.export import NEVER_EXPORTED, export_archive

    offending = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "analysis").rglob("*.py"))
                 if "pseudonym_key" in p.read_text(encoding="utf-8")]
    assert offending == [] and "pseudonym_keys" in NEVER_EXPORTED
    with Archive(run.path, read_only=True) as archive:
        ((key,),) = archive.con.execute("SELECT key FROM pseudonym_keys WHERE name = ?", [PSEUDONYM_KEY]).fetchall()
        export_archive(archive, tmp_path / "out", fmt="csv", tables=["post_comments", "post_comment_cursors"])
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((tmp_path / "out").rglob("*.csv")))
    assert text.count("\n") > 1000 and next(iter(_authors(run.path).values())) in text
    people = sc.user_pool(run.world)
    assert bytes(key).hex() not in text and [u.user_id for u in people if str(u.user_id) in text] == []


def test_migration_leaves_other_tables_alone(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.duckdb") as archive:
        names = {r[0] for r in archive.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'post_comment%'").fetchall()}
        assert names == {"post_comments", "post_comment_cursors"}
        with pytest.raises(duckdb.ConstraintException):
            archive.con.execute("INSERT INTO post_comments (channel_id, message_id, discussion_id, comment_id, "
                                "posted_at, author_kind, first_seen_at, last_seen_at) VALUES "
                                "(1, 1, 2, 3, now(), 'user', now(), now()), (1, 2, 2, 3, now(), 'user', now(), now())")
