"""Shareable datasets (issue 14, item 5): `tgspread export --ids` and `tgspread hydrate`, on the simulated Telegram.

The id list of one archive, hydrated into a new archive, gives exactly the listed posts; posts deleted on
Telegram since are reported (count and ids) and marked deleted where archived; unknown channels are reported
per channel; ``channels.getMessages`` is asked 100 ids at a time; the cursor never moves; a configured lake is
published after the pass. Bad id lists are refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from collector import Archive
from collector._archive.id_export import export_ids
from collector._cli.app import app
from collector._cli.common import Exit
from collector._parse.id_list import ChannelIds, IdListError, parse_id_list, read_id_list
from collector._scheduling.ownership import Ownership
from collector._simulated import World, generate_world, simulated_client
from collector._telegram.client import SIMULATED_ENV
from collector._telegram.collect import CollectReport, CollectSettings
from collector._telegram.hydrate import hydrate
from tests.helpers.simworld import run_pass, simulated_cli

runner = CliRunner()


def _keys(path: Path, where: str = "TRUE") -> set[tuple[int, int]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {(int(a), int(b)) for a, b in con.execute(
            f"SELECT channel_id, message_id FROM posts WHERE {where}").fetchall()}


def _hydrate(world: World, path: Path, listed: list[ChannelIds]) -> CollectReport:
    async def go() -> CollectReport:
        with Archive(path) as archive:
            return await hydrate(simulated_client(world), listed, archive, now=world.now)

    return asyncio.run(go())


@pytest.fixture
def world_and_archive(tmp_path: Path) -> tuple[World, Path]:
    world = generate_world(21, channels=3, days=12, posts_per_day=40, special_seeds=False)
    path = tmp_path / "a.duckdb"
    report = run_pass(world, path)
    assert report.status == "ok", report.summary()
    return world, path


def test_export_ids_lists_every_live_post_in_order(world_and_archive: tuple[World, Path], tmp_path: Path) -> None:
    _, path = world_and_archive
    with Archive(path) as archive:
        archive.con.execute("UPDATE posts SET deleted_at = now() WHERE message_id = 5")   # taken down: left out
        rows = export_ids(archive.con, tmp_path / "ids.csv", dates=True)
    text = (tmp_path / "ids.csv").read_text()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["channel_id", "username", "message_id", "posted_at"] and len(lines) == rows + 1
    listed = [(int(r[0]), int(r[2])) for r in lines[1:]]
    assert listed == sorted(listed) and set(listed) == _keys(path, "deleted_at IS NULL")
    assert all(r[1] and r[3].endswith("+00:00") for r in lines[1:])
    assert not any(m == 5 for _, m in listed)


def test_hydrate_recollects_the_list_and_reports_what_is_gone(world_and_archive: tuple[World, Path],
                                                             tmp_path: Path) -> None:
    world, path = world_and_archive
    with Archive(path, read_only=True) as archive:
        export_ids(archive.con, tmp_path / "ids.csv")
    listed = read_id_list(tmp_path / "ids.csv")
    assert len(listed) == 3 and all(c.username for c in listed)
    # since then: two posts deleted on Telegram; the list also names an id that never existed
    first = listed[0]
    assert first.channel_id is not None
    channel = world.channels[first.channel_id]
    gone = [int(first.message_ids[3]), int(first.message_ids[-1])]
    for message_id in gone:
        channel.messages[message_id - 1].deleted_at = world.now
    world.advance(timedelta(hours=1))
    first.message_ids.append(2_000_000_000)
    listed += [ChannelIds(None, "no_such_channel_here"), ChannelIds(987654321, None)]
    before = dict(world.requests)

    fresh = tmp_path / "b.duckdb"
    report = _hydrate(world, fresh, listed)
    outcomes = {c.input: c.outcome for c in report.channels}
    assert outcomes["@no_such_channel_here"] == "not_found" and outcomes["987654321"] == "not_found"
    assert report.status == "partial"
    hydrated = {c.channel_id: c for c in report.channels if c.outcome == "ok"}
    assert set(hydrated) == {c.channel_id for c in listed[:3]}
    assert hydrated[first.channel_id].deleted_ids == [*gone, 2_000_000_000]
    assert sum(c.deletions for c in report.channels) == 3
    wanted = {(c.channel_id, int(m)) for c in listed[:3] for m in c.message_ids} - \
        {(first.channel_id, m) for m in [*gone, 2_000_000_000]}
    assert _keys(fresh) == wanted
    assert sum(c.new_posts for c in report.channels) == len(wanted)
    asked = world.requests["channels.GetMessages"] - before.get("channels.GetMessages", 0)
    assert asked == sum(math.ceil(len(c.message_ids) / 100) for c in listed[:3]) and asked > 3
    with duckdb.connect(str(fresh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM channel_cursors").fetchall()[0][0] == 0   # never moved
        assert con.execute("SELECT count(*) FROM channels WHERE username IS NOT NULL").fetchall()[0][0] == 3

    # into the archive the list came from: no resolve (the cache), the gone posts marked deleted, kept
    resolves = world.requests["contacts.ResolveUsername"]
    again = _hydrate(world, path, listed[:3])
    assert world.requests["contacts.ResolveUsername"] == resolves
    assert again.status == "ok" and sum(c.new_posts for c in again.channels) == 0
    assert _keys(path, "deleted_at IS NOT NULL") == {(first.channel_id, m) for m in gone}


def test_a_username_that_now_names_another_channel_is_not_fetched(world_and_archive: tuple[World, Path],
                                                                  tmp_path: Path) -> None:
    world, _ = world_and_archive
    name = world.seeds[0].lstrip("@")
    report = _hydrate(world, tmp_path / "b.duckdb", [ChannelIds(42, name, parse_id_list(
        io.StringIO("username,message_id\nabcd,1\n"))[0].message_ids)])
    assert report.channels[0].outcome == "not_found"
    assert "now names channel" in (report.channels[0].error or "")
    assert _keys(tmp_path / "b.duckdb") == set()


def test_a_renamed_username_in_another_collectors_slot_is_the_mismatch(world_and_archive: tuple[World, Path],
                                                                       tmp_path: Path) -> None:
    """The list's channel id is checked before the slot: a username that now names a channel of another
    collector's slot is reported as the mismatch (not as that collector's channel: the list never named it)."""
    world, _ = world_and_archive
    name = world.seeds[0].lstrip("@")
    elsewhere = CollectSettings(ownership=Ownership("a", dict.fromkeys(range(64), "b")))

    async def go() -> CollectReport:
        with Archive(tmp_path / "b.duckdb") as archive:
            listed = [ChannelIds(42, name, [1, 2])]
            return await hydrate(simulated_client(world), listed, archive, now=world.now, settings=elsewhere)

    report = asyncio.run(go())
    assert report.channels[0].outcome == "not_found", report.channels[0].error
    assert "now names channel" in (report.channels[0].error or "")


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("channel_id,text\n1,2\n", "the header needs message_id"),
    ("channel_id,message_id\n1,-4\n", "line 2: message_id must be a positive whole number"),
    ("channel_id,message_id\n1,99999999999\n", "line 2: message_id 99999999999 is too large: Telegram's message "
                                               "ids are 32-bit numbers, at most 2,147,483,647"),
    ("channel_id,message_id\n1,\u00b2\n", "line 2: message_id must be a positive whole number"),
    ("channel_id,message_id\n1,5\n1,7,extra\n", "line 3: 3 fields, the header has 2: every line needs one field"),
    ("channel_id,message_id\n1,5\n\n1,\"x\ny\"\n", "line 4: message_id must be"),   # a quoted line break
    ("username,message_id\nx;DROP TABLE,1\n", "line 2: 'x;DROP TABLE' is not a Telegram username"),
    ("channel_id,username,message_id\n,,3\n", "line 2: neither channel_id nor username"),
    ("channel_id,message_id\n1\n", "line 2: 1 fields, the header has 2"),
    ("username,message_id\nsim__tech,1\n", "line 2: 'sim__tech' is not a Telegram username: usernames never end"),
    ("channel_id,message_id\n-4242,1\n", "line 2: channel_id -4242 is negative without the -100 of a channel"),
    ("channel_id,message_id,message_id\n1,2,3\n", "line 1: the header names 'message_id' twice"),
])
def test_bad_id_lists_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(IdListError, match=message.replace("(", r"\(")):
        parse_id_list(io.StringIO(text))


def test_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "2")
    monkeypatch.chdir(tmp_path)
    collected = runner.invoke(app, ["collect", "--archive", "a.duckdb"])
    assert collected.exit_code in (Exit.OK, Exit.PARTIAL), collected.output
    out = runner.invoke(app, ["export", "--ids", "--with-dates", "--archive", "a.duckdb", "--out", "shared"])
    assert out.exit_code == Exit.OK, out.output
    assert "post ids written to shared/ids.csv" in out.stdout
    ids = tmp_path / "shared" / "ids.csv"
    assert ids.read_text().splitlines()[0] == "channel_id,username,message_id,posted_at"
    with ids.open("a") as f:
        f.write(",no_such_channel_here,1,\n")
    (tmp_path / "tgspread.toml").write_text('archive = "b.duckdb"\n[lake]\npath = "lake"\n')
    done = runner.invoke(app, ["hydrate", str(ids), "--deleted", "gone.csv"])
    assert done.exit_code == Exit.PARTIAL, done.output           # the unknown channel
    assert "no_such_channel_here" in done.stdout and "ids listed;" in done.stdout
    assert (tmp_path / "gone.csv").read_text().splitlines()[0] == "channel_id,username,message_id"
    assert _keys(tmp_path / "b.duckdb") == _keys(tmp_path / "a.duckdb", "deleted_at IS NULL")
    assert any((tmp_path / "lake" / "posts").rglob("*.parquet"))   # published after the pass

    bad = tmp_path / "bad.csv"
    bad.write_text("channel_id,message_id\n1,x\n")
    shutil.copy2(tmp_path / "b.duckdb", tmp_path / "before.duckdb")
    refused = runner.invoke(app, ["hydrate", str(bad)])
    assert refused.exit_code == Exit.USAGE and "line 2: message_id" in refused.stderr
    assert runner.invoke(app, ["export", "--with-dates", "--archive", "a.duckdb", "--out", "x"]).exit_code \
        == Exit.USAGE


# -- --deleted FILE: checked before anything is sent, written whole or not at all -------------------------------
@pytest.fixture
def listed_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A simulated Telegram for the CLI and an id list of it (``ids.csv``), in the working directory."""
    simulated_cli(monkeypatch, tmp_path)
    assert runner.invoke(app, ["collect", "--archive", "a.duckdb"]).exit_code in (Exit.OK, Exit.PARTIAL)
    with Archive(tmp_path / "a.duckdb", read_only=True) as archive:
        export_ids(archive.con, tmp_path / "ids.csv")
    first = (tmp_path / "ids.csv").read_text().splitlines()[1].split(",")
    with (tmp_path / "ids.csv").open("a") as f:
        f.write(f"{first[0]},{first[1]},2000000000\n")     # one id Telegram lacks
    return tmp_path


@pytest.mark.parametrize(("where", "message"), [
    ("nodir/gone.csv", "--deleted nodir/gone.csv: the folder nodir does not exist; create it or name a file in an "
                       "existing folder; nothing was sent"),
    ("ids.csv", "--deleted ids.csv: that is the id list, which it would replace; name another file"),
    ("b.duckdb", "--deleted b.duckdb: that is the archive, which it would replace; name another file"),
])
def test_a_deleted_file_that_cannot_be_written_is_refused_before_anything_is_sent(
        listed_here: Path, where: str, message: str) -> None:
    before = sorted(p.name for p in listed_here.iterdir())
    result = runner.invoke(app, ["hydrate", "ids.csv", "-a", "b.duckdb", "--deleted", where])
    assert result.exit_code == Exit.USAGE, result.output
    assert "Traceback" not in result.output and result.stderr.strip() == f"tgspread: error: {message}"
    assert sorted(p.name for p in listed_here.iterdir()) == before          # no archive b.duckdb: nothing was sent


def test_the_deleted_file_replaces_an_existing_one_whole_or_not_at_all(
        listed_here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "an existing FILE is replaced" in runner.invoke(app, ["hydrate", "--help"], env={"COLUMNS": "400"}).stdout
    gone = listed_here / "gone.csv"
    gone.write_text("an older list\n" * 1000)
    done = runner.invoke(app, ["hydrate", "ids.csv", "-a", "b.duckdb", "--deleted", "gone.csv"])
    assert done.exit_code == Exit.OK, done.output
    lines = gone.read_text().splitlines()
    assert lines[0] == "channel_id,username,message_id" and lines[1].endswith(",2000000000") and len(lines) == 2
    # a failure while writing (here: the disk fills up at the rename) leaves the earlier file as it was and no
    # temporary file; the error is one line, the pass itself committed
    import errno

    import collector._cli.hydrate as command

    def full(tmp: Path, final: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(final))

    monkeypatch.setattr(command, "install", full)
    gone.write_text("an older list\n")
    failed = runner.invoke(app, ["hydrate", "ids.csv", "-a", "b.duckdb", "--deleted", "gone.csv"])
    assert failed.exit_code == Exit.PARTIAL, failed.output
    assert "Traceback" not in failed.output
    assert failed.stderr.splitlines()[-1] == (
        "tgspread: error: --deleted gone.csv: could not be written (No space left on device); the pass itself is "
        "committed; the deleted ids are printed above (the first 10 of each channel)")
    assert "2000000000" in failed.stdout                                    # printed instead
    assert gone.read_text() == "an older list\n"
    assert sorted(p.name for p in listed_here.iterdir() if p.name.startswith(".")) == []


def test_the_rows_of_one_channel_are_one_channel_however_they_name_it(listed_here: Path) -> None:
    """By id and username, by id alone, by username alone: one channel, so one fetch and one result (before, a
    second hydrate into the archive that knew the id reported the id-only rows as an unparsable `not_found`)."""
    listed = parse_id_list(io.StringIO("channel_id,username,message_id\n10,durov,3\n,Durov,1\n10,,2\n,other_one,4\n"))
    assert [(c.channel_id, c.username, list(c.message_ids)) for c in listed] == [
        (10, "durov", [1, 2, 3]), (None, "other_one", [4])]
    rows = (listed_here / "ids.csv").read_text().splitlines()
    channel_id, name = rows[1].split(",")[:2]
    with (listed_here / "ids.csv").open("a") as f:
        f.write(f"{channel_id},,1\n,{name},2\n")
    for _ in range(2):             # into a new archive, then into the one that now knows the channel
        done = runner.invoke(app, ["hydrate", "ids.csv", "-a", "b.duckdb"])
        assert done.exit_code == Exit.OK, done.output
        assert "not_found" not in done.output


def test_a_bot_api_channel_id_is_read_as_collect_reads_it() -> None:
    listed = parse_id_list(io.StringIO("channel_id,message_id\n-1002201847156,5\n2201847156,6\n"))
    assert [(c.channel_id, list(c.message_ids)) for c in listed] == [(2201847156, [5, 6])]


def test_two_channels_listed_under_one_username_and_the_name_alone_are_each_fetched(
        world_and_archive: tuple[World, Path], tmp_path: Path) -> None:
    """A username that passed from one channel to another, listed with both ids and alone: the entry of the name
    alone is fetched under that name (before: under a label the collector could not parse)."""
    world, _ = world_and_archive
    seed = next(iter(world.seed_channels()))
    name = seed.username_at(world.now)
    listed = parse_id_list(io.StringIO(f"channel_id,username,message_id\n777,{name},1\n"
                                       f"{seed.channel_id},{name},2\n,{name},3\n"))
    assert len(listed) == 3                          # two ids share the name: the name alone stays apart
    report = _hydrate(world, tmp_path / "b.duckdb", listed)
    by_input = {c.input: c for c in report.channels}
    assert by_input[f"@{name}"].outcome == "not_found"                  # 777: the name names another channel now
    alone = by_input[f"@{name} (by name)"]
    assert alone.outcome == "ok" and alone.new_posts == 1, alone.error
    assert _keys(tmp_path / "b.duckdb") == {(seed.channel_id, 2), (seed.channel_id, 3)}


@pytest.mark.parametrize("ids_first", [True, False])
def test_a_channel_named_by_id_on_some_rows_and_by_username_on_others_is_fetched_whole(
        world_and_archive: tuple[World, Path], tmp_path: Path, ids_first: bool) -> None:
    """No row names both, so the list cannot join them; the bare id, unknown to a new archive, waits until the
    username resolved it (before: with the id rows first, their ids were all reported not found)."""
    world, _ = world_and_archive
    seed = next(iter(world.seed_channels()))
    by_id = [f"{seed.channel_id},,{i}" for i in range(1, 21)]
    by_name = [f",{seed.username_at(world.now)},{i}" for i in range(21, 41)]
    rows = by_id + by_name if ids_first else by_name + by_id
    listed = parse_id_list(io.StringIO("channel_id,username,message_id\n" + "\n".join(rows) + "\n"))
    report = _hydrate(world, tmp_path / "b.duckdb", listed)
    assert report.status == "ok" and {c.outcome for c in report.channels} == {"ok"}
    live = {m.message_id for m in seed.posts(world.now) if m.message_id <= 40}
    assert _keys(tmp_path / "b.duckdb") == {(seed.channel_id, m) for m in live}
