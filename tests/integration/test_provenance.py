"""Provenance by field (issue 16, item 4; issue 17, item 1): which route gave each group of a post's fields, and when.

The routes are real: the simulated Telegram through the real Telethon client (the API), the fixture preview page
through ``collect_web`` (web), and Desktop exports through ``import_export``. Each scenario checks every group's
recorded route and time, in both orders, and that disagreeing values follow the documented rule
(docs/sources.md, "Provenance by field").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

import analysis
from collector._archive import migrations
from collector._archive.archive import Archive
from collector._archive.provenance import GROUPS, LEADERS, ProvenanceError, check_statement
from collector._archive.status import field_routes
from collector._cli.app import app
from collector._simulated import World, generate_world
from collector._sources.export_import import import_export
from collector._sources.web import PreviewFetcher, collect_web
from tests.helpers.simworld import run_pass
from tests.helpers.terminal import in_terminal

FIXTURES = Path(__file__).parents[1] / "fixtures" / "export"
WEB = Path(__file__).parents[1] / "fixtures" / "web"
NOW = datetime(2024, 6, 2, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
FIXTURE_CHANNEL = 1234567890
PROVENANCE = ("text_source, text_seen_at, counters_source, counters_seen_at, reactions_source, reactions_seen_at, "
              "header_source, header_seen_at")


def _provenance(archive: Archive, channel_id: int) -> dict[int, tuple[Any, ...]]:
    return {int(r[0]): tuple(r[1:]) for r in archive.con.execute(
        f"SELECT message_id, {PROVENANCE} FROM posts WHERE channel_id = ? ORDER BY message_id",
        [channel_id]).fetchall()}


# -- the check in the one writer ------------------------------------------------------------------------------
def test_a_statement_writing_fields_without_their_route_is_refused() -> None:
    with pytest.raises(ProvenanceError, match="counters fields"):
        check_statement("UPDATE posts SET views = 5 WHERE channel_id = 1")
    with pytest.raises(ProvenanceError, match="header_seen_at"):
        check_statement("UPDATE posts SET fwd_channel_id = 5, header_source = 'api' WHERE channel_id = 1")
    with pytest.raises(ProvenanceError, match="text_source"):
        check_statement("INSERT INTO posts (channel_id, message_id, text, text_source, text_seen_at) "
                        "SELECT channel_id, message_id, text, NULL, now() FROM b")
    check_statement("UPDATE posts SET pinned = true WHERE channel_id = 1")            # no group: fine
    check_statement("DELETE FROM posts WHERE channel_id = 1")
    check_statement("INSERT INTO posts (channel_id, message_id, text, text_source, text_seen_at) "
                    "SELECT channel_id, message_id, coalesce(text, 'x'), 'api', now() FROM b")


def test_execute_posts_refuses_before_anything_is_written(tmp_path: Path) -> None:
    from collector._archive.post_writes import execute_posts

    with Archive(tmp_path / "a.duckdb") as archive:
        archive.con.execute("INSERT INTO posts (channel_id, message_id, source, first_seen_at, last_seen_at) "
                            "VALUES (1, 1, 'api', now(), now())")
        with pytest.raises(ProvenanceError):
            execute_posts(archive.con, "UPDATE posts SET views = 9 WHERE channel_id = 1")
        assert archive.con.execute("SELECT views FROM posts").fetchall() == [(None,)]


def test_the_analysis_copy_of_the_groups_matches_the_writers() -> None:
    import importlib

    module = importlib.import_module("analysis._provenance")

    assert tuple(GROUPS) == module.GROUPS
    assert dict(LEADERS) == module._LEADERS


# -- web and export, both orders (the fixture channel) -----------------------------------------------------------
def _web(archive: Archive, now: datetime) -> None:
    pages = {"/s/osint_demo": (WEB / "channel_page1.html").read_text(encoding="utf-8")}
    client = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, text=pages.get(r.url.path, ""))))
    report = collect_web(archive, ["osint_demo"], now=now, max_pages=1,
                         fetcher=PreviewFetcher(client, sleep=lambda s: None, min_interval=0))
    assert report.channels[0].outcome == "ok"


@pytest.mark.parametrize("order", ["export-then-web", "web-then-export"])
def test_export_and_web_record_each_groups_route_and_time(tmp_path: Path, order: str) -> None:
    with Archive(tmp_path / "a.duckdb") as archive:
        if order == "export-then-web":
            import_export(archive, FIXTURES / "channel.json", now=NOW)
            _web(archive, LATER)
            web_at, export_at = LATER, NOW
        else:
            _web(archive, NOW)
            import_export(archive, FIXTURES / "channel.json", now=LATER)
            web_at, export_at = NOW, LATER
        got = _provenance(archive, FIXTURE_CHANNEL)
        # 110: text and reactions from the export (an export outranks a preview), views only the preview shows
        assert got[110] == ("export", export_at, "web", web_at, "export", export_at, None, None)
        # 112: a forward. The export names the origin by name, the preview adds the origin post id
        # (fwd_message_id, from its link): the header is 'export+web' in either order, dated by the later route
        assert got[112][:4] == ("export", export_at, "web", web_at)
        assert got[112][6:] == ("export+web", max(web_at, export_at))
        assert archive.con.execute("SELECT fwd_from_name, fwd_message_id, fwd_username FROM posts "
                                   "WHERE message_id = 112").fetchall() == [("Source Channel", 4521, "Source_Channel")]
        # 113 only the preview shows: every group it has is the web's; 108 only the export holds: no counters
        assert got[113] == ("web", web_at, "web", web_at, "web", web_at, "web", web_at)
        assert got[108][2:] == (None, None, None, None, None, None)
        assert got[108][:2] == ("export", export_at)


def test_an_older_export_after_a_newer_one_never_takes_the_text(tmp_path: Path) -> None:
    """#17 item 3 holds with provenance: the older export fills gaps only, so the text keeps the newer route."""
    with Archive(tmp_path / "a.duckdb") as archive:
        import_export(archive, FIXTURES / "channel_later.json", now=NOW)
        import_export(archive, FIXTURES / "channel.json", now=LATER)
        row = archive.con.execute("SELECT text, text_source, text_seen_at FROM posts WHERE message_id = 111").fetchall()
        assert row == [("Correction: the figure is 12 (confirmed).", "export", NOW)]


# -- the simulated API and an export of the same channel -----------------------------------------------------------
@pytest.fixture(scope="module")
def world_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, int, list[tuple[Any, ...]]]]:
    """A small simulated world, one of its channels (username, id) and its posts as the API gives them."""
    world = generate_world(3, channels=3, days=4, posts_per_day=12)
    path = tmp_path_factory.mktemp("api") / "a.duckdb"
    run_pass(world, path)
    with Archive(path, read_only=True) as archive:
        cid, username = archive.con.execute(
            "SELECT c.channel_id, c.username FROM channels c JOIN posts p USING (channel_id) "
            "WHERE c.username IS NOT NULL GROUP BY ALL ORDER BY count(p.fwd_channel_id) DESC, count(*) DESC "
            "LIMIT 1").fetchall()[0]
        posts = archive.con.execute(
            "SELECT message_id, posted_at, edited_at, text, fwd_channel_id FROM posts WHERE channel_id = ? "
            "AND deleted_at IS NULL ORDER BY message_id", [cid]).fetchall()
    assert any(p[4] is not None for p in posts) and len(posts) > 10
    yield world, str(username), int(cid), posts


def _export_of(path: Path, channel_id: int, posts: list[tuple[Any, ...]], *, disagree: dict[int, dict[str, Any]],
               ) -> Path:
    """A Desktop export (result.json) of the channel's posts as the API gave them, with ``disagree`` overriding
    fields of some messages (message id -> export fields)."""
    messages = []
    for mid, posted, edited, text, fwd in posts:
        msg: dict[str, Any] = {"id": mid, "type": "message", "date": posted.strftime("%Y-%m-%dT%H:%M:%S"),
                               "date_unixtime": str(int(posted.timestamp())), "from": "Channel",
                               "from_id": f"channel{channel_id}", "text": text or "",
                               "text_entities": [{"type": "plain", "text": text or ""}]}
        if edited is not None:
            msg["edited"] = edited.strftime("%Y-%m-%dT%H:%M:%S")
            msg["edited_unixtime"] = str(int(edited.timestamp()))
        if fwd is not None:
            msg["forwarded_from"] = "Origin"
            msg["forwarded_from_id"] = f"channel{fwd}"
        msg.update(disagree.get(mid, {}))
        messages.append(msg)
    path.write_text(json.dumps({"name": "Channel", "type": "public_channel", "id": channel_id,
                                "messages": messages}), encoding="utf-8")
    return path


def _disagreements(posts: list[tuple[Any, ...]]) -> tuple[int, int, dict[int, dict[str, Any]]]:
    """A post whose export text differs from the API's, and a post the export calls a forward the API does not."""
    plain = [p for p in posts if p[4] is None and p[3]]
    text_post, header_post = plain[0][0], plain[1][0]
    return text_post, header_post, {
        text_post: {"text": "an export's other text",
                    "text_entities": [{"type": "plain", "text": "an export's other text"}]},
        header_post: {"forwarded_from": "Someone", "forwarded_from_id": "channel777"},
    }


@pytest.mark.parametrize("order", ["export-then-api", "api-then-export"])
def test_api_and_export_record_each_groups_route_and_time(
        tmp_path: Path, order: str, world_channel: tuple[World, str, int, list[tuple[Any, ...]]]) -> None:
    world, username, cid, posts = world_channel
    text_post, header_post, disagree = _disagreements(posts)
    export = _export_of(tmp_path / "result.json", cid, posts, disagree=disagree)
    path = tmp_path / "b.duckdb"
    imported_at = world.now - timedelta(hours=1) if order == "export-then-api" else world.now + timedelta(hours=1)
    if order == "export-then-api":
        with Archive(path) as archive:
            import_export(archive, export, now=imported_at)
        run_pass(world, path, [username])
    else:
        run_pass(world, path, [username])
        with Archive(path) as archive:
            import_export(archive, export, now=imported_at)
    api_at = world.now
    forward = next(p[0] for p in posts if p[4] is not None)
    with Archive(path) as archive:
        got = _provenance(archive, cid)
        # every group from the API at its observation time, whichever came first: the API outranks an export,
        # and it is authoritative for counters, reactions and the forward header
        for mid, _, _, _, _ in posts:
            assert got[mid] == ("api", api_at) * 4, (order, mid, got[mid])
        rows = dict(archive.con.execute(
            "SELECT message_id, (text, fwd_channel_id, fwd_from_name) FROM posts WHERE channel_id = ?",
            [cid]).fetchall())
        api_text = next(p[3] for p in posts if p[0] == text_post)
        assert rows[text_post][0] == api_text                       # the export's other text never wins
        assert rows[header_post][1:] == (None, None)                # the API says: not a forward
        assert rows[forward][1] == next(p[4] for p in posts if p[0] == forward)
        versions = archive.con.execute("SELECT text FROM post_versions WHERE channel_id = ? AND message_id = ?",
                                       [cid, text_post]).fetchall()
        # export first: the API replaced its text and kept it as a version; API first: the older route's
        # text is not recorded (nothing could date it), as for an older export
        assert versions == ([("an export's other text",)] if order == "export-then-api" else [])
        summary = field_routes(archive.con, [cid])
    assert {(r.group, r.route) for r in summary} <= {(g, "api") for g in GROUPS}
    assert {r.group for r in summary} == set(GROUPS)


def test_a_later_api_pass_fills_the_header_an_import_lacked_and_says_so(
        tmp_path: Path, world_channel: tuple[World, str, int, list[tuple[Any, ...]]]) -> None:
    """#17 item 1: an export names the origin channel but not its post or date; the API pass brings both."""
    world, username, cid, posts = world_channel
    export = _export_of(tmp_path / "result.json", cid, posts, disagree={})
    path = tmp_path / "c.duckdb"
    with Archive(path) as archive:
        import_export(archive, export, now=world.now - timedelta(days=1))
        forwards = archive.con.execute(
            "SELECT message_id, header_source, fwd_message_id, fwd_posted_at FROM posts "
            "WHERE channel_id = ? AND fwd_channel_id IS NOT NULL", [cid]).fetchall()
    assert forwards and all(r[1:] == ("export", None, None) for r in forwards)
    run_pass(world, path, [username])
    with Archive(path) as archive:
        after = archive.con.execute(
            "SELECT header_source, header_seen_at, fwd_message_id IS NOT NULL, fwd_posted_at IS NOT NULL FROM posts "
            "WHERE channel_id = ? AND list_contains(?, message_id)", [cid, [r[0] for r in forwards]]).fetchall()
    assert after and all(r == ("api", world.now, True, True) for r in after)


# -- surfaced: status --channel, analysis.provenance ------------------------------------------------------------
@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.duckdb"
    with Archive(path) as archive:
        import_export(archive, FIXTURES / "channel.json", now=NOW)
        _web(archive, LATER)
    return path


def test_status_channel_says_which_route_gave_what_at_80_columns(mixed: Path) -> None:
    code, output = in_terminal(["status", "--archive", str(mixed), "--channel", "osint_demo"], 80, mixed.parent)
    assert code == 0, output
    lines = output.splitlines()
    section = lines[next(i for i, line in enumerate(lines) if "which route gave" in line):]
    assert max(len(line.rstrip()) for line in section) <= 80
    table = "\n".join(section)
    assert "@osint_demo" in table
    for words in ("text", "export", "web", "export+web", "forward header", "views, forwards, replies",
                  "2024-06-02", "2024-06-04"):
        assert words in table, (words, table)
    runner = CliRunner()
    as_json = runner.invoke(app, ["status", "--archive", str(mixed), "--channel", "@osint_demo", "--json"])
    assert as_json.exit_code == 0, as_json.output
    routes = json.loads(as_json.stdout)["field_routes"]
    assert {"channel_id": FIXTURE_CHANNEL, "group": "header", "route": "export+web", "posts": 1,
            "first_seen_at": LATER.isoformat(), "last_seen_at": LATER.isoformat()} in routes
    unknown = runner.invoke(app, ["status", "--archive", str(mixed), "--channel", "nosuchchannel"])
    assert unknown.exit_code == 2 and "no such channel" in unknown.output


def test_analysis_provenance_per_channel_and_per_post(mixed: Path) -> None:
    with analysis.connect(mixed) as con:
        per_channel = analysis.provenance(con)
        per_post = analysis.provenance(con, per="post", channels=[FIXTURE_CHANNEL])
        routes = field_routes(con, [FIXTURE_CHANNEL])
    assert per_channel.columns == list(analysis.SCHEMAS["provenance"])
    # the same counts as status gives
    assert sorted(per_channel.select("field_group", "route", "posts").rows()) == sorted(
        (r.group, r.route, r.posts) for r in routes)
    header = per_channel.filter(per_channel["field_group"] == "header")
    assert sorted(header.select("route", "posts").rows()) == [("export+web", 1), ("web", 1)]
    assert per_post.height == 15 and per_post["message_id"].is_sorted()
    row = per_post.filter(per_post["message_id"] == 112).row(0, named=True)
    assert (row["text_source"], row["counters_source"], row["header_source"]) == ("export", "web", "export+web")
    assert row["text_seen_at"] == NOW and row["header_seen_at"] == LATER
    with pytest.raises(ValueError, match="per="):
        analysis.provenance(duckdb.connect(), per="group")


def test_posts_written_before_migration_0011_read_as_unrecorded(tmp_path: Path) -> None:
    """Migration 0011 adds NULL columns (no backfill): older posts that have a group's values say 'unrecorded'.
    Tolerates migration 0010 (another branch) arriving at merge: the old archive stops at 0009."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL, tgspread_version VARCHAR)")
    for mig in migrations.available():
        if mig.version <= 9:
            con.execute(mig.sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now(), 'old')", [mig.version, mig.name])
    con.execute("INSERT INTO channels (channel_id, username, first_seen_at, last_seen_at, source) "
                "VALUES (5, 'old_one', now(), now(), 'api')")
    con.execute("INSERT INTO posts (channel_id, message_id, posted_at, text, views, first_seen_at, last_seen_at, "
                "source) VALUES (5, 1, now(), 'old text', 10, now(), now(), 'api')")
    con.close()
    with Archive(path, read_only=True) as archive:           # an older file read as it is: no columns yet
        assert {(r.group, r.route) for r in field_routes(archive.con, [5])} == {
            ("text", "unrecorded"), ("counters", "unrecorded")}
    with analysis.connect(path) as con:
        assert sorted(analysis.provenance(con).select("field_group", "route").rows()) == [
            ("counters", "unrecorded"), ("text", "unrecorded")]
        assert analysis.provenance(con, per="post").row(0)[2:4] == ("unrecorded", None)
    with Archive(path) as archive:
        assert 11 in {v for v, _ in archive.applied_migrations()}
        assert {(r.group, r.route) for r in field_routes(archive.con, [5])} == {
            ("text", "unrecorded"), ("counters", "unrecorded")}
    with analysis.connect(path) as con:
        frame = analysis.provenance(con)
    assert sorted(frame.select("field_group", "route").rows()) == [("counters", "unrecorded"),
                                                                   ("text", "unrecorded")]
