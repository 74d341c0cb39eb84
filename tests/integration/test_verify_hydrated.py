"""``tgspread verify`` on archives filled by ``tgspread hydrate``, on the simulated Telegram.

A hydrate pass fetches posts by id: it moves no cursor and counts as deleted every listed id Telegram no longer
has, archived or not. So an archive made by ``hydrate`` has API posts and no cursors, and more deletions in
``run_channels`` than posts marked deleted: neither is an inconsistency, and verify is clean. The same checks
still fail on a cursor set back, moved beyond the archived ids or lost after a pass that read history, and on a
deletion a collection pass recorded that no post holds.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from collector import Archive
from collector._archive.id_export import export_ids
from collector._archive.verify import VerifyReport, verify_archive
from collector._cli.app import app
from collector._cli.common import Exit
from collector._parse.id_list import ChannelIds, read_id_list
from collector._scheduling.budget import RequestBudget
from collector._simulated import World, generate_world, simulated_client
from collector._telegram.collect import CollectReport, collect
from collector._telegram.hydrate import hydrate
from tests.helpers.simworld import run_pass, simulated_cli

runner = CliRunner()
NEVER = 2_000_000_000      # a listed id no channel ever had: a deletion hydrate counts and no archive holds


def _verify(path: Path) -> VerifyReport:
    with Archive(path, read_only=True) as archive:
        return verify_archive(archive.con, digests=False)


def _sql(path: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path)) as con:
        return con.execute(sql, params or []).fetchall()


def _hydrate(world: World, path: Path, listed: list[ChannelIds]) -> CollectReport:
    async def go() -> CollectReport:
        with Archive(path) as archive:
            return await hydrate(simulated_client(world), listed, archive, now=world.now)

    return asyncio.run(go())


def _collect(world: World, path: Path, names: list[str], budget: RequestBudget | None = None) -> CollectReport:
    async def go() -> CollectReport:
        with Archive(path) as archive:
            return await collect(simulated_client(world), names, archive, now=world.now, budget=budget)

    return asyncio.run(go())


def _problems(report: VerifyReport) -> list[str]:
    return [f"{f.severity} {f.check}: {f.message}" for f in report.findings if f.severity != "info"]


@pytest.fixture
def hydrated(tmp_path: Path) -> tuple[World, Path, list[ChannelIds]]:
    """A world whose list (of a first archive) is hydrated an hour later into a new archive, two listed posts
    deleted on Telegram since and one listed id that never existed."""
    world = generate_world(21, channels=3, days=12, posts_per_day=40, special_seeds=False)
    assert run_pass(world, tmp_path / "a.duckdb").status == "ok"
    with Archive(tmp_path / "a.duckdb", read_only=True) as archive:
        export_ids(archive.con, tmp_path / "ids.csv")
    listed = read_id_list(tmp_path / "ids.csv")
    first = listed[0]
    assert first.channel_id is not None
    for message_id in (int(first.message_ids[3]), int(first.message_ids[-1])):
        world.channels[first.channel_id].messages[message_id - 1].deleted_at = world.now
    first.message_ids.append(NEVER)
    world.advance(timedelta(hours=1))
    report = _hydrate(world, tmp_path / "fresh.duckdb", listed)
    assert report.status == "ok" and sum(c.deletions for c in report.channels) == 3
    return world, tmp_path / "fresh.duckdb", listed


def test_an_archive_made_by_hydrate_verifies_clean(hydrated: tuple[World, Path, list[ChannelIds]]) -> None:
    _, fresh, listed = hydrated
    assert _sql(fresh, "SELECT count(*) FROM channel_cursors") == [(0,)]
    assert _sql(fresh, "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL") == [(0,)]
    report = _verify(fresh)
    assert report.clean and _problems(report) == []
    # the hydrated channels are named, as notes: no cursor, the history never read
    notes = {f.channel_id for f in report.findings if f.check == "cursors"}
    assert notes == {c.channel_id for c in listed} and all(
        f.severity == "info" and "tgspread hydrate" in f.message for f in report.findings if f.check == "cursors")


def test_hydrating_again_and_then_collecting_stays_clean(hydrated: tuple[World, Path, list[ChannelIds]],
                                                         tmp_path: Path) -> None:
    world, fresh, listed = hydrated
    world.advance(timedelta(hours=1))
    assert _hydrate(world, fresh, listed).status == "ok"              # the same list again (a re-run)
    assert _problems(_verify(fresh)) == []
    names = [f"@{c.username}" for c in listed]
    # a first collection cut short by its budget: the cursors stop below hydrated posts (fetched by id: a note)
    world.advance(timedelta(hours=2))
    cut = shutil.copy(fresh, tmp_path / "cut.duckdb")
    assert _collect(world, Path(cut), names, RequestBudget(world.now, max_requests=8)).status == "partial"
    below = _sql(Path(cut), "SELECT count(*) FROM channel_cursors c WHERE max_message_id < "
                            "(SELECT max(message_id) FROM posts p WHERE p.channel_id = c.channel_id)")
    assert below != [(0,)], "the cut pass left a cursor below hydrated posts"
    assert _problems(_verify(Path(cut))) == []
    # the whole history read: cursors for every channel, still clean
    assert _collect(world, fresh, names).status == "ok"
    assert _sql(fresh, "SELECT count(*) FROM channel_cursors") == [(len(listed),)]
    assert _problems(_verify(fresh)) == []


@pytest.mark.parametrize(("plant", "severity"), [
    ("UPDATE channel_cursors SET max_message_id = max_message_id - 10", "error"),          # set back
    ("UPDATE channel_cursors SET max_message_id = max_message_id + 50", "error"),          # beyond the posts
    ("DELETE FROM channel_cursors WHERE channel_id = $ch", "error"),                        # lost
])
def test_a_wrong_cursor_still_fails_after_hydrate(hydrated: tuple[World, Path, list[ChannelIds]], tmp_path: Path,
                                                  plant: str, severity: str) -> None:
    world, fresh, listed = hydrated
    world.advance(timedelta(days=1))             # new posts: the collection pass archives some of its own
    assert _collect(world, fresh, [f"@{c.username}" for c in listed]).status == "ok"
    assert _verify(fresh).clean          # (a service message at a channel's top is a warning: not the point here)
    ch = listed[0].channel_id
    copy = Path(shutil.copy(fresh, tmp_path / "copy.duckdb"))
    with duckdb.connect(str(copy)) as con:
        con.execute(plant, {"ch": ch} if "$ch" in plant else {})
    report = _verify(copy)
    assert not report.clean
    assert {(f.check, f.severity) for f in report.errors} == {("cursors", severity)}
    assert ch in {f.channel_id for f in report.errors}


def test_a_cursor_set_back_over_an_earlier_passs_posts_fails(tmp_path: Path) -> None:
    """Every pass but hydrate's is held to the cursors (``runs.kind``), not only the last that moved them: a cursor
    set back below posts of the first of three passes, in a channel the later two archived nothing new of (their
    time is the cursor's, and none of the posts'), is an error."""
    world = generate_world(21, channels=3, days=12, posts_per_day=40, special_seeds=False)
    path = tmp_path / "a.duckdb"
    assert run_pass(world, path).status == "ok"
    for _ in range(2):
        world.advance(timedelta(minutes=1))
        assert run_pass(world, path).status == "ok"
    assert _sql(path, "SELECT count(DISTINCT kind), min(kind) FROM runs") == [(1, "collect")]
    quiet = _sql(path, "SELECT channel_id, max(message_id) FROM posts GROUP BY 1 HAVING max(first_seen_at) = "
                       "(SELECT min(started_at) FROM runs) ORDER BY 1")
    assert quiet, "every channel posted within the minutes between the passes"
    ch, first_top = quiet[0]
    _sql(path, "UPDATE channel_cursors SET max_message_id = ? WHERE channel_id = ?", [int(first_top) - 5, ch])
    report = _verify(path)
    assert not report.clean and ch in {f.channel_id for f in report.errors if f.check == "cursors"}


def test_a_deletion_a_collection_pass_recorded_that_no_post_holds_still_warns(tmp_path: Path) -> None:
    world = generate_world(21, channels=3, days=12, posts_per_day=40, special_seeds=False)
    path = tmp_path / "a.duckdb"
    assert run_pass(world, path).status == "ok"
    # a recent post deleted on Telegram; the next pass (a day later: new posts, refreshes due) marks it deleted
    ch, msg = _sql(path, "SELECT channel_id, max(message_id) FROM posts GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    assert isinstance(ch, int) and isinstance(msg, int)
    world.channels[ch].messages[msg - 1].deleted_at = world.now
    world.advance(timedelta(days=1))
    assert run_pass(world, path).status == "ok"
    assert _sql(path, "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL AND message_id = ?", [msg]) == [(1,)]
    # a hydrate pass with an id it never archived: its deletion is not compared
    with Archive(path, read_only=True) as archive:
        export_ids(archive.con, tmp_path / "ids.csv")
    listed = read_id_list(tmp_path / "ids.csv")
    listed[0].message_ids.append(NEVER)
    world.advance(timedelta(hours=1))
    assert _hydrate(world, path, listed).status == "ok"
    report = _verify(path)
    assert report.clean and [f for f in report.warnings if f.check == "deletions"] == []
    # the deletion the collection pass marked, undone by hand: a warning naming the channel
    _sql(path, "UPDATE posts SET deleted_at = NULL WHERE channel_id = ? AND message_id = ?", [ch, msg])
    report = _verify(path)
    (warned,) = [f for f in report.warnings if f.check == "deletions"]
    assert report.clean and warned.channel_id == ch and "0 posts marked deleted" in warned.message


def test_the_cli_verifies_a_hydrated_archive_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reviewer's commands: `hydrate ids.csv --archive fresh.duckdb`, then `verify -a fresh.duckdb`."""
    simulated_cli(monkeypatch, tmp_path)
    assert runner.invoke(app, ["collect", "--archive", "a.duckdb"]).exit_code in (Exit.OK, Exit.PARTIAL)
    assert runner.invoke(app, ["export", "--ids", "-a", "a.duckdb", "--out", "shared"]).exit_code == Exit.OK
    first = (tmp_path / "shared" / "ids.csv").read_text().splitlines()[1].split(",")
    with (tmp_path / "shared" / "ids.csv").open("a") as f:
        f.write(f"{first[0]},{first[1]},{NEVER}\n")                  # gone on Telegram, never archived
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "1h")
    done = runner.invoke(app, ["hydrate", "shared/ids.csv", "--archive", "fresh.duckdb"])
    assert done.exit_code == Exit.OK, done.output
    checked = runner.invoke(app, ["verify", "-a", "fresh.duckdb"], env={"COLUMNS": "200"})
    assert checked.exit_code == Exit.OK, checked.output
    assert "warning:" not in checked.stdout and "FAIL" not in checked.stdout
    assert ": clean (0 warnings)" in checked.stdout
    data = json.loads(runner.invoke(app, ["verify", "-a", "fresh.duckdb", "--json"]).stdout)
    assert data["clean"] and data["errors"] == 0 and data["warnings"] == 0
