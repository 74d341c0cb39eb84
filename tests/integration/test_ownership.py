"""Collectors act only on the slots they own; the rest is handed on through the lake (issue 15).

Real parts: the simulated Telegram behind a real TelegramClient, real DuckDB archives, a real lake, the real
``tgspread`` command (``run --collector``, ``collect``, ``shards``).
"""

from __future__ import annotations

import asyncio
import configparser
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from collector import Archive
from collector._archive.lake import publish
from collector._archive.lake_handoff import lake_handoffs, take_handoffs
from collector._archive.slots import SLOTS, slot
from collector._cli.app import app
from collector._config import ConfigError, load_config
from collector._scheduling.handoff import pick_up
from collector._scheduling.ownership import Ownership
from collector._scheduling.shards import render_toml
from collector._simulated import generate_world, simulated_client
from collector._simulated.generate import collected_channels
from collector._telegram.collect import CollectSettings, collect
from tests.helpers.simworld import simulated_cli

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _split(ids: list[int]) -> dict[int, str]:
    """An assignment giving the slots of the first half of ``ids`` (by slot) to a, every other slot to b."""
    ordered = sorted(ids, key=slot)
    half = {slot(c) for c in ordered[: len(ordered) // 2]}
    return {s: "a" if s in half else "b" for s in range(SLOTS)}


def test_collect_refuses_channels_of_other_slots_without_a_content_request(tmp_path: Path) -> None:
    world = generate_world(4, channels=4, days=2, special_seeds=False)
    chans = {ch.channel_id: str(ch.username_at(world.now)) for ch in collected_channels(world)}
    assignment = _split(list(chans))
    owned = Ownership("a", assignment)
    mine = {c for c in chans if owned.owns(c)}
    assert mine and len(mine) < len(chans)
    path = tmp_path / "a.duckdb"
    with Archive(path) as archive:
        report = asyncio.run(collect(simulated_client(world), list(chans.values()), archive, now=world.now,
                                     settings=CollectSettings(ownership=owned)))
        by_id = {c.channel_id: c for c in report.channels}
        assert report.status == "ok"                      # not_owned is no failure
        for cid in chans:
            c = by_id[cid]
            if cid in mine:
                assert c.outcome == "ok" and c.new_posts > 0
            else:
                assert c.outcome == "not_owned" and c.new_posts == 0
                assert f"slot {slot(cid)} belongs to collector 'b'" in (c.error or "")
        posted = {r[0] for r in archive.con.execute("SELECT DISTINCT channel_id FROM posts").fetchall()}
        assert posted == mine
        recorded = dict(archive.con.execute("SELECT channel_id, outcome FROM run_channels").fetchall())
        assert {c for c, o in recorded.items() if o == "not_owned"} == set(chans) - mine
        # the second pass knows the ids: a numeric id of another's slot is refused before any request
        before = world.total_requests()
        again = asyncio.run(collect(simulated_client(world), [str(c) for c in set(chans) - mine], archive,
                                    now=world.now, settings=CollectSettings(ownership=owned)))
        assert {c.outcome for c in again.channels} == {"not_owned"}
        assert world.total_requests() == before
        # handed on: the candidates table of the lake, one file per slot, read by b only
        publish(archive, tmp_path / "lake", collector="a")
    files = sorted((tmp_path / "lake" / "candidates").glob("slot=*/a.parquet"))
    assert {int(p.parent.name.split("=")[1]) for p in files} == {slot(c) for c in set(chans) - mine}
    rows = duckdb.connect().execute(
        f"SELECT channel_id, username, found_by FROM read_parquet({[str(p) for p in files]})").fetchall()
    assert {(r[0], r[2]) for r in rows} == {(c, "named") for c in set(chans) - mine}
    assert all(str(r[1]).lower() == chans[r[0]].lower() for r in rows)
    b_slots = [s for s, n in assignment.items() if n == "b"]
    assert {h.channel_id for h in lake_handoffs(tmp_path / "lake", "b", b_slots)} == set(chans) - mine
    assert lake_handoffs(tmp_path / "lake", "a", [s for s, n in assignment.items() if n == "a"]) == []


def test_a_moved_slot_is_taken_over_from_the_lake_without_fetching_a_post_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = generate_world(6, channels=3, days=3, future_days=3, special_seeds=False, posts_per_day=20)
    chans = {ch.channel_id: str(ch.username_at(world.now)) for ch in collected_channels(world)}
    lake = tmp_path / "lake"
    everything = {s: "a" for s in range(SLOTS)}
    with Archive(tmp_path / "a.duckdb") as a:
        asyncio.run(collect(simulated_client(world), list(chans.values()), a, now=world.now,
                            settings=CollectSettings(ownership=Ownership("a", everything))))
        publish(a, lake, collector="a", now=world.now)
        held = a.con.execute("SELECT channel_id, max(message_id), count(*) FROM posts GROUP BY ALL").fetchall()
    moving = held[0][0]
    after = dict(everything)
    after[slot(moving)] = "b"
    world.advance(timedelta(hours=7))
    with Archive(tmp_path / "b.duckdb") as b:
        taken = pick_up(b, lake, Ownership("b", after), now=world.now)
        assert taken is not None and [(h.channel_id, h.kind, h.by) for h in taken.added] == [(moving, "moved", "a")]
        assert taken.copied_posts == held[0][2]
        assert b.cursor(moving) == held[0][1]
        # cost in proportion to change: while the other collectors' files in b's slots are the same files, the next
        # pick-up lists them and reads none (the old owner's history of the slot is not read again at every run)
        import collector._scheduling.handoff as handoff_module

        reads: list[tuple[str, bool]] = []
        real = handoff_module.lake_handoffs
        monkeypatch.setattr(handoff_module, "lake_handoffs",
                            lambda *a, **k: reads.append((a[1], k.get("history", True))) or real(*a, **k))
        assert pick_up(b, lake, Ownership("b", after), now=world.now) is None and reads == []
        with Archive(tmp_path / "a.duckdb") as a:          # a rewrites its files: b reads them again, takes nothing
            publish(a, lake, collector="a", now=world.now, full=True)
        assert pick_up(b, lake, Ownership("b", after), now=world.now) is None and reads == [("b", True)]
        assert pick_up(b, lake, Ownership("b", after), now=world.now) is None and reads == [("b", True)]
    # what b took is remembered in its archive (lake_pickups), not by the process: a new process per run (a timer)
    # reads nothing either while the files are the same
    with Archive(tmp_path / "b.duckdb") as b:
        assert pick_up(b, lake, Ownership("b", after), now=world.now) is None and reads == [("b", True)]
        assert b.con.execute("SELECT collector, slots FROM lake_pickups").fetchall() == [("b", str(slot(moving)))]
        # a candidates file that changes (the old owner publishes one after each run) is read alone: not the history
        neighbour = next(c for c in range(moving + 1, moving + 100_000) if slot(c) == slot(moving))
        with Archive(tmp_path / "a.duckdb") as a:
            a.con.execute("INSERT INTO run_channels (run_id, input, outcome, channel_id) SELECT max(run_id), "
                          "'@elsewhere', 'not_owned', ? FROM runs", [neighbour])
            publish(a, lake, collector="a", now=world.now)
        assert list((lake / "candidates").glob("slot=*/a.parquet"))
        found = pick_up(b, lake, Ownership("b", after), now=world.now)
        assert reads == [("b", True), ("b", False)]
        assert found is not None and [h.channel_id for h in found.unreachable] == [neighbour]   # no username
        client = simulated_client(world)
        history: list[int] = []
        handler = client._sender._handlers
        from telethon.tl import functions

        inner = handler[functions.messages.GetHistoryRequest]

        def spy(req: Any) -> Any:
            history.append(req.min_id)
            return inner(req)

        handler[functions.messages.GetHistoryRequest] = spy
        inputs = [r[0] for r in b.con.execute("SELECT input FROM channel_set").fetchall()]
        report = asyncio.run(collect(client, inputs, b, now=world.now,
                                     settings=CollectSettings(ownership=Ownership("b", after))))
        (result,) = report.channels
        assert result.outcome == "ok" and result.channel_id == moving
        assert history and min(history) == held[0][1]        # asked only for what is newer than the lake's newest
        assert result.refreshed_posts > 0                    # the copied posts are re-observed at their checkpoints
        publish(b, lake, collector="b", now=world.now)
        # copied rows that b has not observed itself are not published as b's
        lake_rows = duckdb.connect().execute(
            f"SELECT count(*) FROM read_parquet('{lake}/posts/*/*/b.parquet')").fetchone()
        own = b.con.execute("SELECT count(*) FROM posts WHERE source <> 'lake'").fetchone()
        assert lake_rows == own
    import analysis

    con = analysis.connect(lake)
    assert con.execute("SELECT count(*) - count(DISTINCT (channel_id, message_id)) FROM posts").fetchone() == (0,)
    # a no longer acts on it: its next pass says not_owned
    with Archive(tmp_path / "a.duckdb") as a:
        again = asyncio.run(collect(simulated_client(world), [str(moving)], a, now=world.now,
                                    settings=CollectSettings(ownership=Ownership("a", after))))
        assert [c.outcome for c in again.channels] == ["not_owned"]
        # the slot moves back: a holds the channel already, its cursor is behind the lake's (b collected since)
        with Archive(tmp_path / "b.duckdb", read_only=True) as b_read:
            b_top = b_read.cursor(moving)
        assert b_top > a.cursor(moving)
        handoffs = lake_handoffs(lake, "a", [slot(moving)])
        back = take_handoffs(a, lake, handoffs, now=world.now, removed_ids=set(), removed_names=set(),
                             active_ids={moving}, active_names=set())
        assert back.added == [] and back.copied_posts > 0 and a.cursor(moving) == b_top


@pytest.fixture
def two_collectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    simulated_cli(monkeypatch, tmp_path, channels=4)
    world = generate_world(3, channels=4, days=1)
    ids = [ch.channel_id for ch in collected_channels(world)]
    (tmp_path / "slots.toml").write_text(render_toml(_split(ids)), encoding="utf-8")
    (tmp_path / "tgspread.toml").write_text(
        '[lake]\npath = "lake"\ncollector = "a"\nassignment = "slots.toml"\n\n'
        '[run]\nmax_requests = 200\n\n'
        '[collectors.b]\nsession = "b.session"\n[collectors.b.run]\nmax_requests = 150\n', encoding="utf-8")
    return tmp_path


def test_run_collector_runs_each_collector_on_its_own_archive_and_hands_on(two_collectors: Path) -> None:
    cfg_b = load_config(two_collectors / "tgspread.toml", collector="b")
    assert (cfg_b.archive.name, cfg_b.session.name, cfg_b.lake_collector, cfg_b.run.max_requests) == (
        "archive-b.duckdb", "b.session", "b", 150)
    first = runner.invoke(app, ["run", "--collector", "a"])
    assert first.exit_code in (0, 1), first.output
    assert "not owned" in first.stdout
    # a is the config as it is ([lake] collector = "a"): its archive is the default one
    assert (two_collectors / "archive.duckdb").exists() and not (two_collectors / "archive-b.duckdb").exists()
    with Archive(two_collectors / "archive.duckdb", read_only=True) as a:
        refused = dict(a.con.execute("SELECT channel_id, error FROM run_channels WHERE outcome = 'not_owned' "
                                     "AND error NOT LIKE '%not handed on%'").fetchall())   # not a group or private
        posted = {r[0] for r in a.con.execute("SELECT DISTINCT channel_id FROM posts").fetchall()}
    assert refused and not set(refused) & posted
    assert all("belongs to collector 'b'" in e for e in refused.values())
    second = runner.invoke(app, ["run", "--collector", "b"])
    assert second.exit_code in (0, 1), second.output
    assert "from the lake:" in second.stderr
    with Archive(two_collectors / "archive-b.duckdb", read_only=True) as b:
        b_posted = {r[0] for r in b.con.execute("SELECT DISTINCT channel_id FROM posts").fetchall()}
    assert b_posted == set(refused)                       # b collected exactly what a handed on
    shown = runner.invoke(app, ["shards"], env={"COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    assert f"handed on: {len(refused)} channels found in other collectors' slots,\n  {len(refused)} collected" \
        in shown.stdout
    assert "unowned slots: -" in shown.stdout
    # --plan balances by the requests the runs recorded, shared among their channels
    planned = runner.invoke(app, ["shards", "--plan", "3"])
    assert planned.exit_code == 0, planned.output
    assert "balanced by measured requests per day (run_requests, last 30 days)" in planned.stdout
    from analysis.lake import request_cost

    recorded = 0
    for name in ("archive.duckdb", "archive-b.duckdb"):
        with Archive(two_collectors / name, read_only=True) as opened:
            recorded += opened.con.execute("SELECT sum(requests) FROM run_requests").fetchone()[0]  # type: ignore[index]
    cost = request_cost(two_collectors / "lake")
    assert abs(sum(cost.values()) * 30 - recorded) < 1e-6
    assert {slot(c) for c in posted | b_posted} <= set(cost)     # and channels that cost requests, no posts
    # discover and the other commands take --collector too; an unknown one is a one-line usage error
    bad = runner.invoke(app, ["run", "--collector", "zzz"])
    assert bad.exit_code == 2 and "no collector 'zzz'" in bad.output


def test_collectors_config_errors_are_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('[collectors.b]\nlake = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[collectors.b\]: unknown key 'lake'"):
        load_config(cfg, env={}, cwd=tmp_path, collector="b")
    cfg.write_text('session = "s/main.session"\n[collectors.b]\n', encoding="utf-8")
    b = load_config(cfg, env={}, cwd=tmp_path, collector="b")
    assert b.session == tmp_path / "s" / "tgspread-b.session"          # never the shared account's session
    assert b.archive == tmp_path / "archive-b.duckdb"
    assert load_config(cfg, env={}, cwd=tmp_path, collector="main").archive == tmp_path / "archive.duckdb"
    with pytest.raises(ConfigError, match="needs a config file"):
        load_config(None, env={}, cwd=tmp_path / "nowhere", collector="b")


def test_the_environment_never_points_every_collector_at_one_archive(tmp_path: Path) -> None:
    """TGSPREAD_ARCHIVE/TGSPREAD_SESSION override every collector on a host: with --collector they are refused
    when they differ from that collector's own (two collectors writing one archive, or one account's session in
    two processes); equal values and explicit flags are fine, and without --collector nothing changes."""
    cfg = tmp_path / "t.toml"
    cfg.write_text('[collectors.b]\narchive = "b.duckdb"\n', encoding="utf-8")
    for var, key in (("TGSPREAD_ARCHIVE", "archive"), ("TGSPREAD_SESSION", "session")):
        env = {var: str(tmp_path / "shared")}
        for name in ("b", "main"):
            with pytest.raises(ConfigError, match=rf"{var} is set .* collector '{name}' has its own {key}.*Unset"):
                load_config(cfg, env=env, cwd=tmp_path, collector=name)
        flag = {key: tmp_path / "mine"}
        assert getattr(load_config(cfg, env=env, cwd=tmp_path, collector="b", **flag), key) == tmp_path / "mine"
        assert getattr(load_config(cfg, env=env, cwd=tmp_path), key) == tmp_path / "shared"
    same = {"TGSPREAD_ARCHIVE": str(tmp_path / "b.duckdb")}
    assert load_config(cfg, env=same, cwd=tmp_path, collector="b").archive == tmp_path / "b.duckdb"


def test_the_systemd_template_runs_one_collector_per_instance() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read(ROOT / "contrib" / "systemd" / "tgspread-run@.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/tgspread") and argv[1] == "run"
    assert argv[argv.index("--collector") + 1] == "%i"
    timer = configparser.ConfigParser(interpolation=None, strict=False)
    timer.read(ROOT / "contrib" / "systemd" / "tgspread-run@.timer")
    assert timer["Timer"]["Unit"] == "tgspread-run@%i.service"
    # the command line the unit runs is one the app accepts
    result = runner.invoke(app, ["run", "--help"])
    assert "--collector" in result.output


# -- hydrate, import and collect --via web (issue 15 review) --------------------------------------------------------
def _id_list(path: Path, world_seed: int = 3) -> dict[int, str]:
    """An id list naming messages 1-3 of every collected channel of the CLI's simulated world, by id and
    username; returns {channel_id: username}."""
    world = generate_world(world_seed, channels=4, days=1)
    chans = {ch.channel_id: str(ch.username_at(world.now)) for ch in collected_channels(world)}
    lines = ["channel_id,username,message_id"]
    lines += [f"{cid},{name},{m}" for cid, name in chans.items() for m in (1, 2, 3)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return chans


def _posted(archive: Path) -> set[int]:
    with Archive(archive, read_only=True) as opened:
        return {r[0] for r in opened.con.execute("SELECT DISTINCT channel_id FROM posts").fetchall()}


def _lake_collectors(lake: Path, table: str = "posts") -> set[str]:
    return {p.stem for p in (lake / table).rglob("*.parquet")}


def test_hydrate_fetches_only_the_ids_of_its_own_slots(two_collectors: Path) -> None:
    from collector._scheduling.shards import load

    chans = _id_list(two_collectors / "ids.csv")
    owned = Ownership("a", load(two_collectors / "slots.toml"))
    mine = {c for c in chans if owned.owns(c)}
    others = set(chans) - mine
    assert mine and others
    # one channel of b's slots is named by username alone: one resolve tells its slot, nothing of it is fetched
    stranger = sorted(others)[0]
    text = (two_collectors / "ids.csv").read_text(encoding="utf-8").replace(f"{stranger},", ",")
    (two_collectors / "ids.csv").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["hydrate", "ids.csv", "--collector", "a"])
    assert result.exit_code == 0, result.output
    assert (f"{3 * len(others)} ids of {len(others)} channels belong to other collectors' slots (the "
            "assignment file): run hydrate on those collectors") in " ".join(result.stdout.split())
    assert _posted(two_collectors / "archive.duckdb") == mine
    with Archive(two_collectors / "archive.duckdb", read_only=True) as a:
        outcomes = dict(a.con.execute("SELECT channel_id, outcome FROM run_channels").fetchall())
        known = {r[0] for r in a.con.execute("SELECT channel_id FROM channels").fetchall()}
    assert outcomes == {**dict.fromkeys(mine, "ok"), stranger: "not_owned"}
    assert known == mine | {stranger}                  # the others, listed by id, were never asked about
    # b, from the same list, takes exactly the rest, into its own archive, published as b
    second = runner.invoke(app, ["hydrate", "ids.csv", "--collector", "b"])
    assert second.exit_code == 0, second.output
    assert f"{3 * len(mine)} ids of {len(mine)} channels belong to other collectors' slots" \
        in " ".join(second.stdout.split())
    assert _posted(two_collectors / "archive-b.duckdb") == others
    b_files = list((two_collectors / "lake" / "posts").rglob("b.parquet"))
    assert b_files and {int(p.parts[-3].split("=")[1]) for p in b_files} == {slot(c) for c in others}


def test_a_list_entirely_of_other_slots_sends_nothing(two_collectors: Path) -> None:
    from collector._scheduling.shards import load

    _id_list(two_collectors / "all.csv")
    owned = Ownership("a", load(two_collectors / "slots.toml"))
    lines = (two_collectors / "all.csv").read_text().splitlines()
    (two_collectors / "ids.csv").write_text("\n".join([lines[0], *(r for r in lines[1:]
                                                                   if not owned.owns(int(r.split(",")[0])))]) + "\n")
    (two_collectors / "gone.csv").write_text("an earlier run's list\n")
    result = runner.invoke(app, ["hydrate", "ids.csv", "--collector", "a", "--deleted", "gone.csv"])
    assert result.exit_code == 0, result.output
    assert "nothing hydrated;" in result.stdout
    assert (two_collectors / "gone.csv").read_text() == "channel_id,username,message_id\n"   # replaced, as promised
    assert not (two_collectors / "archive.duckdb").exists()


def test_import_collector_writes_that_collectors_archive_and_publishes_under_its_name(two_collectors: Path) -> None:
    from collector._simulated.desktop_export import write_generated_export

    export = write_generated_export(two_collectors / "result.json", 50, channel_id=1_500_000_001)
    result = runner.invoke(app, ["import", str(export), "--collector", "b"])
    assert result.exit_code == 0, result.output
    assert not (two_collectors / "archive.duckdb").exists()
    assert _posted(two_collectors / "archive-b.duckdb") == {1_500_000_001}
    assert _lake_collectors(two_collectors / "lake") == {"b"}
    # without --collector: the config as it is, collector a, its own archive
    again = runner.invoke(app, ["import", str(export)])
    assert again.exit_code == 0, again.output
    assert _posted(two_collectors / "archive.duckdb") == {1_500_000_001}
    assert _lake_collectors(two_collectors / "lake") == {"a", "b"}
    assert "--collector" in runner.invoke(app, ["import", "--help"]).stdout


WEB_PAGES = Path(__file__).parents[1] / "fixtures" / "web"
WEB_CHANNEL_ID = 1234567890          # osint_demo of the fixture pages, in slot 60


def test_collect_via_web_acts_only_on_owned_slots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`collect --via web` refuses another collector's channel as `collect` does: the first page tells its id
    (nothing of it written but the channel's row, handed on through the lake); once the archive knows it, no
    request at all. Pages come from the fixture files through httpx.MockTransport: nothing goes to t.me."""
    import httpx

    import collector._sources.web as web

    requests: list[str] = []
    pages = {None: (WEB_PAGES / "channel_page1.html").read_text(encoding="utf-8"),
             "110": (WEB_PAGES / "channel_page2.html").read_text(encoding="utf-8")}

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        found = pages.get(request.url.params.get("before")) if request.url.path == "/s/osint_demo" else None
        return httpx.Response(200, text=found or (WEB_PAGES / "no_preview.html").read_text(encoding="utf-8"))

    real = httpx.Client
    monkeypatch.setattr(web.httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(answer), **kw))
    monkeypatch.chdir(tmp_path)
    assert slot(WEB_CHANNEL_ID) == 60
    (tmp_path / "slots.toml").write_text('[slots]\na = "0-59, 61-63"\nb = "60"\n', encoding="utf-8")
    (tmp_path / "tgspread.toml").write_text('[lake]\npath = "lake"\ncollector = "a"\nassignment = "slots.toml"\n'
                                            '[collectors.b]\n', encoding="utf-8")
    first = runner.invoke(app, ["collect", "--via", "web", "--max-pages", "1", "osint_demo"])
    assert first.exit_code == 0, first.output
    assert "1 not owned" in first.stdout and "belongs to collector 'b'" in " ".join(first.stdout.split())
    assert len(requests) == 1 and _posted(tmp_path / "archive.duckdb") == set()
    with Archive(tmp_path / "archive.duckdb", read_only=True) as a:
        assert a.con.execute("SELECT channel_id, outcome FROM run_channels").fetchall() == [
            (WEB_CHANNEL_ID, "not_owned")]
    handed = duckdb.connect().execute(
        f"SELECT channel_id, username FROM read_parquet('{tmp_path}/lake/candidates/slot=60/a.parquet')").fetchall()
    assert handed == [(WEB_CHANNEL_ID, "osint_demo")]
    again = runner.invoke(app, ["collect", "--via", "web", "osint_demo"])
    assert again.exit_code == 0 and "1 not owned" in again.stdout
    assert len(requests) == 1                         # known: refused before any request
    # its owner collects it
    owner = runner.invoke(app, ["collect", "--via", "web", "--max-pages", "1", "--collector", "b", "osint_demo"])
    assert owner.exit_code == 0, owner.output
    assert "not owned" not in owner.stdout and _posted(tmp_path / "archive-b.duckdb") == {WEB_CHANNEL_ID}


# -- groups and private channels of other slots (issue 15 review) --------------------------------------------------
def test_a_group_or_private_channel_of_another_slot_is_not_owned_and_never_handed_on(tmp_path: Path) -> None:
    """A private channel and a group met by a collector that does not own their slots: ownership is decided as
    soon as the resolve tells the id, so they end `not_owned` (no failure), and they are recorded as what they
    are (`channels.status`) but never handed on: their owner could not collect them either. Known by id, they
    are refused without a request and with the same text; their owner records them as `private` / a group."""
    world = generate_world(3, channels=4, days=1)
    special = {ch.channel_id: ch.usernames[-1][1] for ch in world.seed_channels() if ch.closed or ch.megagroup}
    public = {ch.channel_id: str(ch.username_at(world.now)) for ch in collected_channels(world)}
    assert len(special) == 2
    mine = sorted(public, key=slot)[0]
    assignment = {s: "b" for s in range(SLOTS)}
    assignment[slot(mine)] = "a"
    assert not set(map(slot, special)) & {slot(mine)}
    names = [public[mine], *special.values()]
    with Archive(tmp_path / "a.duckdb") as a:
        report = asyncio.run(collect(simulated_client(world), names, a, now=world.now,
                                     settings=CollectSettings(ownership=Ownership("a", assignment))))
        assert report.status == "ok", report.summary()          # not_owned is no failure
        by_id = {c.channel_id: c for c in report.channels}
        assert by_id[mine].outcome == "ok"
        for cid in special:
            assert by_id[cid].outcome == "not_owned", by_id[cid]
            assert "not handed on" in (by_id[cid].error or "")
        status = dict(a.con.execute("SELECT channel_id, status FROM channels").fetchall())
        assert {status[c] for c in special} == {"private", "group"}
        # known now: by id or by name, refused before any request, with the same text
        before = world.total_requests()
        again = asyncio.run(collect(simulated_client(world), [*map(str, special), *special.values()], a,
                                    now=world.now, settings=CollectSettings(ownership=Ownership("a", assignment))))
        assert world.total_requests() == before
        assert {c.outcome for c in again.channels} == {"not_owned"}
        assert all("not handed on: it is " in (c.error or "") for c in again.channels)
        # a not_owned row of such a channel from before this rule is not handed on either
        a.con.execute("INSERT INTO run_channels (run_id, input, outcome, channel_id) SELECT max(run_id), 'old', "
                      "'not_owned', ? FROM runs", [next(iter(special))])
        publish(a, tmp_path / "lake", collector="a", now=world.now)
    assert not list((tmp_path / "lake" / "candidates").rglob("*.parquet"))
    assert lake_handoffs(tmp_path / "lake", "b", [s for s, n in assignment.items() if n == "b"]) == []
    # the owner meets them as what they are
    with Archive(tmp_path / "b.duckdb") as b:
        owner = asyncio.run(collect(simulated_client(world), list(special.values()), b, now=world.now,
                                    settings=CollectSettings(ownership=Ownership("b", assignment))))
    assert sorted(c.outcome for c in owner.channels) == ["error", "private"]


def test_collect_via_web_refuses_a_group_of_another_slot_without_handing_it_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`collect --via web` meets a channel of another collector's slot that the archive knows as a group: it is
    refused before any request, as `collect` refuses it, and the refusal says what it is and that it is not
    handed on (not "handed on to it through the lake"); the publish after the pass leaves it out of the lake's
    candidates. A plain channel of the same slot, refused in the same pass, is handed on as before."""
    import httpx

    import collector._sources.web as web

    requests: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(200, text=(WEB_PAGES / "no_preview.html").read_text(encoding="utf-8"))

    real = httpx.Client
    monkeypatch.setattr(web.httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(answer), **kw))
    monkeypatch.chdir(tmp_path)
    plain = 1_500_000_001
    assert slot(WEB_CHANNEL_ID) == slot(plain) == 60
    (tmp_path / "slots.toml").write_text('[slots]\na = "0-59, 61-63"\nb = "60"\n', encoding="utf-8")
    (tmp_path / "tgspread.toml").write_text('[lake]\npath = "lake"\ncollector = "a"\nassignment = "slots.toml"\n'
                                            '[collectors.b]\n', encoding="utf-8")
    with Archive(tmp_path / "archive.duckdb") as a:     # an earlier API pass met both by name
        a.con.execute("INSERT INTO channels (channel_id, username, megagroup, status, first_seen_at, last_seen_at) "
                      "VALUES (?, 'osint_demo', true, 'group', now(), now()), "
                      "(?, 'plain_demo', false, NULL, now(), now())", [WEB_CHANNEL_ID, plain])
    result = runner.invoke(app, ["collect", "--via", "web", "osint_demo", "plain_demo"])
    assert result.exit_code == 0, result.output
    assert "2 not owned" in result.stdout
    assert requests == []                               # known by username: refused before any request
    owned = Ownership("a", {s: "b" if s == 60 else "a" for s in range(SLOTS)})
    with Archive(tmp_path / "archive.duckdb", read_only=True) as a:
        rows = {r[0]: r[1:] for r in a.con.execute("SELECT channel_id, outcome, error FROM run_channels").fetchall()}
    assert rows == {WEB_CHANNEL_ID: ("not_owned", owned.refusal(WEB_CHANNEL_ID, "group")),
                    plain: ("not_owned", owned.refusal(plain))}
    assert rows[WEB_CHANNEL_ID][1] == ("slot 60 belongs to collector 'b' (the assignment file); "
                                       "not handed on: it is a group, not a channel")
    assert rows[plain][1].endswith("; handed on to it through the lake")
    assert _posted(tmp_path / "archive.duckdb") == set()
    # the publish after the pass hands on the plain channel alone
    handed = duckdb.connect().execute(
        f"SELECT channel_id, username FROM read_parquet('{tmp_path}/lake/candidates/*/*.parquet')").fetchall()
    assert handed == [(plain, "plain_demo")]
    assert [h.channel_id for h in lake_handoffs(tmp_path / "lake", "b", [60])] == [plain]


def test_run_on_a_collector_that_meets_a_group_of_another_slot_does_not_fail_on_it(two_collectors: Path) -> None:
    """Through `tgspread run`: the simulated seeds hold a private channel and a group, both in b's slots, and a
    username nobody has. On a they are `not_owned` (not handed on), so a's runs fail only on the missing name;
    b is never handed them, and `shards` shows nothing waiting for ever. Every line `shards` prints fits 80
    columns."""
    world = generate_world(3, channels=4, days=1)
    special = {ch.channel_id for ch in world.seed_channels() if ch.closed or ch.megagroup}
    first = runner.invoke(app, ["run", "--collector", "a"])
    assert first.exit_code == 1, first.output
    assert ", 1 failed," in first.stdout                     # @sim_gone_01 alone: no channel has that name
    with Archive(two_collectors / "archive.duckdb", read_only=True) as a:
        rows = dict(a.con.execute("SELECT channel_id, outcome FROM run_channels WHERE channel_id IS NOT NULL")
                    .fetchall())
    assert {rows[c] for c in special} == {"not_owned"}
    second = runner.invoke(app, ["run", "--collector", "b"])
    assert second.exit_code == 0, second.output
    with Archive(two_collectors / "archive-b.duckdb", read_only=True) as b:
        inputs = {r[0] for r in b.con.execute("SELECT channel_id FROM channels").fetchall()}
    assert not inputs & special
    shown = runner.invoke(app, ["shards"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert "not handed" not in shown.stdout and ", 0 not (yet)" in shown.stdout
    assert max(map(len, shown.stdout.splitlines())) <= 80, shown.stdout


def test_shards_counts_a_handed_on_channel_collected_only_once_its_owner_published_it(tmp_path: Path) -> None:
    """After a slot moved, the finder's own posts of the channel (from before the move) are not its owner's: the
    channel waits until the new owner publishes it. Every line fits 80 columns, long collector names too."""
    first, second = "alpha-collector", "beta-collector"
    world = generate_world(6, channels=3, days=3, future_days=3, special_seeds=False, posts_per_day=20)
    chans = {ch.channel_id: str(ch.username_at(world.now)) for ch in collected_channels(world)}
    lake, before = tmp_path / "lake", dict.fromkeys(range(SLOTS), first)
    moving = sorted(chans)[0]
    after = {**before, slot(moving): second}
    (tmp_path / "after.toml").write_text(render_toml(after), encoding="utf-8")
    with Archive(tmp_path / "a.duckdb") as a:
        for assignment in (before, after):        # collects everything, then hands the moved channel on
            asyncio.run(collect(simulated_client(world), list(chans.values()), a, now=world.now,
                                settings=CollectSettings(ownership=Ownership(first, assignment))))
            publish(a, lake, collector=first, now=world.now)
            world.advance(timedelta(hours=2))

    def shards() -> str:
        result = runner.invoke(app, ["shards", "--lake", str(lake), "--assignment", str(tmp_path / "after.toml")],
                               env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
        return " ".join(result.stdout.split())

    assert "0 collected since, 1 not (yet)" in shards()    # before: "1 collected since" (the finder's old posts)
    with Archive(tmp_path / "b.duckdb") as b:
        pick_up(b, lake, Ownership(second, after), now=world.now)
        inputs = [r[0] for r in b.con.execute("SELECT input FROM channel_set").fetchall()]
        asyncio.run(collect(simulated_client(world), inputs, b, now=world.now,
                            settings=CollectSettings(ownership=Ownership(second, after))))
        publish(b, lake, collector=second, now=world.now)
    text = shards()
    assert "1 collected since, 0 not (yet)" in text
    assert f"slot {slot(moving)}: posts from {first}, {second} (moved to {second}; readers keep one row" in text
