"""A lake handed over by someone else, whose layout is not publish's: folders that are not ``slot=NN`` /
``month=YYYY-MM``, symbolic links inside it, files of another schema under a collector's name, a path holding a glob
character. Only publish's layout is read; what is outside it is named (``analysis.connect``'s warning, ``shards``,
``verify --lake``), escaped, and never fails a query with a raw error. Real files, the real CLI; nothing contacts
Telegram. (docs/lake.md, "Handing it to a colleague"; docs/bad-input.md, the third table.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

import analysis
from analysis.lake import lake_files, slot_sql, unreadable_files
from collector import Archive
from collector._archive.lake import publish
from collector._cli.app import app
from collector._telegram.client import SIMULATED_ENV
from tests.helpers.simworld import Collected, copy_archive

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
COUNT = "SELECT count(*), typeof(any_value(channel_id)), sum(views) FROM posts"


@pytest.fixture(scope="module")
def published(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A copy of the shared archive, a lake it published as 'main' alone, and one it published as 'main' and
    'other' (the same rows twice: readers keep one)."""
    base = tmp_path_factory.mktemp("hostile-layout")
    archive = copy_archive(collected.path, base / "archive.duckdb")
    with Archive(archive) as opened:
        publish(opened, base / "one", collector="main", full=True)
        publish(opened, base / "two", collector="main", full=True)
        publish(opened, base / "two", collector="other", full=True)
    return archive, base / "one", base / "two"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory (no tgspread.toml, no env) for the CLI."""
    for name in ("TGSPREAD_ARCHIVE", "TGSPREAD_DEBUG", "TGSPREAD_SESSION", SIMULATED_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def one(published: tuple[Path, Path, Path], env: Path) -> Iterator[Path]:
    """A fresh copy of the one-collector lake (no de-duplication: a file read twice shows)."""
    shutil.copytree(published[1], env / "lake")
    yield env / "lake"


@pytest.fixture
def two(published: tuple[Path, Path, Path], env: Path) -> Iterator[Path]:
    """A fresh copy of the two-collector lake."""
    shutil.copytree(published[2], env / "lake")
    yield env / "lake"


def _posts(lake: Path, index: int = 0) -> Path:
    """The ``index``-th posts file of 'main' in file name order (0: the one a view takes its columns from)."""
    return sorted((lake / "posts").glob("slot=*/month=*/main.parquet"))[index]


def _connect(lake: Path) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        con = analysis.connect(lake)
    return con, [str(w.message) for w in caught]


def _count(lake: Path) -> tuple[tuple[int, str, int], list[str]]:
    con, said = _connect(lake)
    n, kind, views = con.execute(COUNT).fetchall()[0]
    return (int(n), str(kind), int(views)), said


def _shards(lake: Path) -> Result:
    return runner.invoke(app, ["shards", "--lake", str(lake)])


def _verify(archive: Path, lake: Path) -> tuple[Result, list[dict[str, str]]]:
    result = runner.invoke(app, ["verify", "--archive", str(archive), "--lake", str(lake), "--json"])
    findings = json.loads(result.stdout)["findings"] if result.stdout.startswith("{") else []
    return result, [f for f in findings if f["check"] == "lake"]


def _with_text_ids(path: Path, column: str = "channel_id") -> int:
    """Rewrite ``path`` with ``column`` as text that is no number (as another tool might write it); its rows."""
    table = pq.read_table(path)
    at = table.schema.get_field_index(column)
    table = table.set_column(at, column, pa.array([f"x{v}" for v in table.column(column).to_pylist()]))
    pq.write_table(table, path)
    return table.num_rows


# -- 2. folders that are not slot=NN / month=YYYY-MM ------------------------------------------------------------
def test_only_publishs_folders_are_read_and_the_others_are_named(published: tuple[Path, Path, Path],
                                                                  one: Path) -> None:
    before, said = _count(one)
    assert said == [] and unreadable_files(one) == {} and lake_files(one).odd == {}
    real = _posts(one)
    strays = [one / "posts" / "slot=foo" / real.parent.name,                       # fails the INTEGER cast
              real.parent.with_name(real.parent.name + "-old"),                    # read twice beside the real one
              one / "posts" / "slot=64" / real.parent.name,                        # no slot of 64
              real.parent.with_name("month=2025-13"),
              one / "posts" / "slot=\x1b[2J" / real.parent.name]                  # a hostile name
    for folder in strays:
        folder.mkdir(parents=True)
        shutil.copy(real, folder / "main.parquet")
    shutil.copy(real, real.parent.parent / "main.parquet")                          # a file beside the months
    after, said = _count(one)
    assert after == before                                                           # each row once, no cast error
    (warning,) = said
    assert "6 entries outside publish's layout, which no view reads" in warning and "remove them" in warning
    assert "'posts/slot=foo'" in warning and "\x1b" not in warning and "\\x1b[2J" in warning  # escaped, never raw
    shown = _shards(one)
    assert shown.exit_code == 1, shown.output
    assert "\x1b" not in shown.output and shown.stderr.count("not read: ") == 6
    assert f"not read: {strays[1]} (a folder publish does not make: it writes slot=NN/month=YYYY-MM/" in shown.stderr
    result, findings = _verify(published[0], one)
    assert result.exit_code == 1, result.output
    named = [p if p.parent == real.parent.parent else p.parent for p in strays]   # the outermost stray folder
    assert sorted(f["message"].split(" is outside")[0] for f in findings) == sorted(
        f"lake entry {p}" for p in [*named, real.parent.parent / "main.parquet"])
    assert set(lake_files(one).odd) == {*named, real.parent.parent / "main.parquet"}


def test_the_views_still_see_partitions_published_after_they_opened(one: Path) -> None:
    """Globs, not a list of the files there when the connection opened; and a folder that would break reading,
    made after it opened, is still kept out."""
    real = _posts(one, 3)
    aside = one.parent / "aside.parquet"
    real.rename(aside)
    con, _ = _connect(one)
    without = con.execute(COUNT).fetchall()[0][0]
    aside.rename(real)                                                                 # "published" now
    (one / "posts" / "slot=foo" / real.parent.name).mkdir(parents=True)
    shutil.copy(real, one / "posts" / "slot=foo" / real.parent.name / "main.parquet")
    assert con.execute(COUNT).fetchall()[0][0] == without + pq.read_metadata(real).num_rows


# -- 3. symbolic links inside the lake ---------------------------------------------------------------------------
def test_symbolic_links_inside_the_lake_are_not_followed(published: tuple[Path, Path, Path], one: Path) -> None:
    before, _ = _count(one)
    outside = one.parent / "outside"
    (outside / "month=2020-01").mkdir(parents=True)
    shutil.copy(_posts(one), outside / "month=2020-01" / "main.parquet")
    (one / "posts" / "slot=00").symlink_to(outside, target_is_directory=True)         # sorts first: binds no view
    replaced = _posts(one, 2)
    rows = pq.read_metadata(replaced).num_rows
    replaced.unlink()
    replaced.symlink_to(_posts(one, 3))                                                 # a file: another's rows
    (one / "channel_cursors").rename(one.parent / "cursors")
    (one / "channel_cursors").symlink_to(one.parent / "cursors", target_is_directory=True)   # a whole table
    after, said = _count(one)
    assert after[0] == before[0] - rows and after[1] == "BIGINT"                        # neither link was read
    (warning,) = said
    assert "3 entries outside publish's layout" in warning and "a symbolic link: publish never makes one" in warning
    con, _ = _connect(one)
    assert con.execute("SELECT count(*) FROM channel_cursors").fetchall() == [(0,)]
    shown = _shards(one)
    assert shown.exit_code == 1 and shown.stderr.count("(a symbolic link: publish never makes one)") == 3
    result, findings = _verify(published[0], one)
    assert result.exit_code == 1
    linked = [f["message"] for f in findings if "a symbolic link" in f["message"]]
    assert len(linked) == 3 and any(str(replaced) in m for m in linked)
    # the partition the link stood for is missing from the lake as read: verify says so too
    assert any(f"{replaced.parent.relative_to(one / 'posts')}: 0 rows in the lake" in f["message"]
               for f in findings)


def test_a_manifest_that_is_a_symbolic_link_is_not_read(one: Path) -> None:
    manifest = one / "_manifests" / "main.json"
    manifest.rename(one.parent / "main.json")
    manifest.symlink_to(one.parent / "main.json")
    (count, _, _), said = _count(one)
    assert count > 0                                    # the files of 'main' are read all the same
    assert any("unreadable manifest" in m and "a symbolic link" in m and "read all the same" in m for m in said)


def test_a_pipe_named_like_a_partition_file_is_never_opened(one: Path) -> None:
    """A reader that opened it would wait forever: run in a child process with a time limit."""
    pipe = one / "posts" / "slot=00" / "month=2025-01" / "main.parquet"               # the first file by name
    pipe.parent.mkdir(parents=True)
    os.mkfifo(pipe)
    code = ("import warnings, analysis, sys; from pathlib import Path; from analysis.lake import unreadable_files\n"
            "warnings.simplefilter('ignore'); lake = Path(sys.argv[1])\n"
            "print(analysis.connect(lake).execute('SELECT count(*) FROM posts').fetchall()[0][0])\n"
            "print(len(unreadable_files(lake)))\n")
    done = subprocess.run([sys.executable, "-c", code, str(one)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(_count(one)[0][0]), "0"]
    assert lake_files(one).odd == {pipe: "not a regular file: a pipe, a socket or a device"}


def test_a_symbolic_link_to_the_whole_lake_opens_it(one: Path) -> None:
    """The way to open a lake whose path holds a glob character (docs/lake.md)."""
    odd = one.parent / "lake[1]"
    one.rename(odd)
    with pytest.raises(ValueError, match=r"open it through a symbolic link whose path has none"):
        analysis.connect(odd)
    link = odd.parent / "plain"
    link.symlink_to(odd, target_is_directory=True)
    (count, _, _), said = _count(link)
    assert count > 0 and said == []


# -- 1. a file of another schema under a collector's name --------------------------------------------------------
def test_a_first_file_with_text_ids_is_left_out_and_named(one: Path) -> None:
    """The view takes its columns from its first file: ``channel_id`` as text made every channel id text."""
    (count, _, _), _ = _count(one)
    first = _posts(one)
    rows = _with_text_ids(first)
    (after, kind, _), said = _count(one)
    assert (after, kind) == (count - rows, "BIGINT")
    (warning,) = said
    assert warning.startswith("the lake's posts: 1 file left out of the view: ")
    assert (f"{str(first)!r} (not the schema publish writes: its column 'channel_id' holds text, where publish "
            "writes BIGINT): collector 'main' rewrites it with `tgspread publish --full`") in warning


def test_a_first_file_missing_a_column_is_left_out(two: Path) -> None:
    """Without it, every query naming the column failed (a binder error), with one collector or two."""
    first = _posts(two)
    pq.write_table(pq.read_table(first).drop(["views"]), first)
    con, said = _connect(two)
    assert con.execute("SELECT sum(views) FROM posts").fetchall()[0][0] > 0
    (warning,) = said
    assert "it lacks column 'views', which the other files of collector 'main' have" in warning


def test_a_small_table_whose_only_file_is_of_another_schema_is_empty(one: Path) -> None:
    _with_text_ids(one / "runs" / "slot=00" / "main.parquet", "run_id")
    con, said = _connect(one)
    assert con.execute("SELECT count(*), typeof(any_value(run_id)) FROM runs").fetchall() == [(0, "BIGINT")]
    assert [m for m in said if "runs" in m and "'run_id' holds text" in m]


def test_mixed_schema_versions_keep_the_declared_types(two: Path) -> None:
    """Collectors at different schema versions: the views read by column name, where a file of text ids made the
    column text."""
    manifest = two / "_manifests" / "other.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 1}))
    (count, _, _), _ = _count(two)
    _with_text_ids(_posts(two))
    (after, kind, _), said = _count(two)
    assert (after, kind) == (count, "BIGINT")             # 'other' holds the same rows
    assert len(said) == 1 and "'channel_id' holds text" in said[0]


def test_mixed_schema_versions_name_a_file_outside_the_layout_that_breaks_a_view(two: Path) -> None:
    """Reading by column name, a view opens every file its globs match, even one it leaves out by name."""
    manifest = two / "_manifests" / "other.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 1}))
    (two / "posts" / "slot=64" / "month=2025-01").mkdir(parents=True)
    (two / "posts" / "slot=64" / "month=2025-01" / "main.parquet").write_text("not parquet\n")
    with pytest.raises(duckdb.InvalidInputException, match=r"the lake's posts cannot be read: '.*/posts/slot=64' is "
                       r"outside publish's layout \(a folder publish does not make: .*\): remove it"):
        _connect(two)


def test_a_later_file_of_another_schema_is_named_by_the_query_shards_and_verify(
        published: tuple[Path, Path, Path], two: Path) -> None:
    """Not opened when connecting (that would read every footer): the query that reads it fails naming it, and
    ``unreadable_files``, ``shards`` and ``verify`` name it with who rewrites it."""
    mine, theirs = _posts(two, 3), sorted((two / "posts").glob("slot=*/month=*/other.parquet"))[5]
    _with_text_ids(mine)
    pq.write_table(pq.read_table(theirs).drop(["message_id"]), theirs)
    con, said = _connect(two)
    assert said == []
    # either file may be the one the scan meets first (its threads read files in parallel)
    with pytest.raises(duckdb.Error, match=f"{re.escape(str(mine))}|{re.escape(str(theirs))}"):
        con.execute("SELECT sum(channel_id) FROM posts").fetchall()
    found = unreadable_files(two)
    assert found == {mine: "not the schema publish writes: its column 'channel_id' holds text, where publish "
                           "writes BIGINT",
                     theirs: "not the schema publish writes: it has no column 'message_id', which publish always "
                             "writes"}
    shown = _shards(two)
    assert shown.exit_code == 1 and "unreadable file" in shown.stderr and "collector 'other'" in shown.stderr
    assert "Binder Error" not in shown.output and "cannot read the lake's" not in shown.stderr
    result, findings = _verify(published[0], two)
    assert result.exit_code == 1, result.output
    messages = [f["message"] for f in findings]
    assert any(str(mine) in m and "run `tgspread publish --full`" in m for m in messages)
    assert any(str(theirs) in m and "collector 'other', which must republish it" in m for m in messages)


# -- 5. what a second reader found (2026-12-07, seventh session): each failed on the code before ---------------
@pytest.mark.parametrize("lake", ["one", "two"])
@pytest.mark.parametrize("why", ["a first file of text ids", "a stray month folder"])
def test_a_view_that_leaves_a_file_out_loses_no_other_file_under_a_slot_or_month_filter(
        lake: str, why: str, request: pytest.FixtureRequest) -> None:
    """When a view must not take its columns from its first file, another file is listed first and its first copy
    left out. DuckDB numbers the files left after a filter on ``slot`` or ``month`` pruned the list, so leaving out
    "file 0" dropped the first file left instead: a whole partition's rows, under the filter docs/lake.md shows."""
    root: Path = request.getfixturevalue(lake)
    first = _posts(root)
    if why == "a first file of text ids":
        _with_text_ids(first)
    else:                                                            # matched by the glob, left out by name
        (first.parent.with_name("month=2025-13")).mkdir()
        shutil.copy(first, first.parent.with_name("month=2025-13") / "main.parquet")
    expected: dict[tuple[int, str], int] = {}        # (slot, month) -> rows ('other' holds the rows 'main' does)
    lost = first if why == "a first file of text ids" and lake == "one" else None
    for path in sorted((root / "posts").glob("slot=*/month=*/main.parquet")):
        if path != lost and path.parent.name != "month=2025-13":
            expected[(int(path.parent.parent.name[5:]), path.parent.name[6:])] = pq.read_metadata(path).num_rows
    con, said = _connect(root)
    assert said and "SELECT" not in said[0]
    by_slot: dict[int, int] = {}
    for (part, _), n in expected.items():
        by_slot[part] = by_slot.get(part, 0) + n
    for part, n in by_slot.items():
        assert con.execute("SELECT count(*) FROM posts WHERE slot = ?", [part]).fetchall() == [(n,)], part
    month = sorted({m for _, m in expected})[0]
    assert con.execute("SELECT count(*) FROM posts WHERE month = ?", [month]).fetchall() == [
        (sum(n for (_, m), n in expected.items() if m == month),)]
    part, month = min(expected)
    assert con.execute("SELECT count(*) FROM posts WHERE slot = ? AND month >= ?", [part, month]).fetchall() == [
        (sum(n for (p, m), n in expected.items() if p == part and m >= month),)]


def test_a_lake_path_spelled_with_dot_dot_leaves_out_what_it_names(one: Path) -> None:
    """What is outside the layout is left out by file name, and DuckDB names the files of ``x/../lake`` as those of
    ``lake``: given so, a symbolic link named like a partition file was read, its rows twice."""
    before, _ = _count(one)
    linked = _posts(one).parent.with_name("month=2099-01") / "main.parquet"
    linked.parent.mkdir()
    linked.symlink_to(_posts(one))
    (one.parent / "notebooks").mkdir()
    for spelling in (one.parent / "notebooks" / ".." / one.name, Path(os.path.relpath(one)), Path(".") / one.name):
        after, said = _count(spelling)
        assert after == before, spelling
        assert len(said) == 1 and "a symbolic link" in said[0]


def test_a_key_without_the_channel_is_kept_once_across_slots(two: Path) -> None:
    """A username that moved to a channel of another slot: 'main' saw it on the old channel, 'other' since on the
    new one. The views kept a row per slot and key, so the username twice; now once, the newest."""
    files = sorted((two / "channel_usernames").glob("slot=*/other.parquet"))
    old_file, new_file = files[0], files[1]
    moved = pq.read_table(old_file).slice(0, 1).to_pylist()[0]
    new_channel = pq.read_table(new_file).column("channel_id")[0].as_py()
    table = pq.read_table(new_file)
    row = {**moved, "channel_id": new_channel, "last_seen_at": moved["last_seen_at"].replace(year=2099)}
    pq.write_table(pa.concat_tables([table, pa.Table.from_pylist([row], schema=table.schema)]), new_file)
    old = pq.read_table(old_file)
    pq.write_table(old.filter(pa.compute.not_equal(old.column("username"), moved["username"])), old_file)
    con, _ = _connect(two)
    assert con.execute("SELECT channel_id FROM channel_usernames WHERE username = ?",
                       [moved["username"]]).fetchall() == [(new_channel,)]
    assert con.execute("SELECT count(*) = count(DISTINCT username) FROM channel_usernames").fetchall() == [(True,)]


def test_a_file_of_the_layout_before_slots_is_read_in_its_channels_slots(two: Path) -> None:
    """'other' published its channels before tables had slots (one ``channels/other.parquet``), 'main' in slots:
    its rows were read as slot 0, so every channel of another slot twice."""
    files = sorted((two / "channels").glob("slot=*/other.parquet"))
    pq.write_table(pa.concat_tables([pq.read_table(f) for f in files]), two / "channels" / "other.parquet")
    for f in files:
        f.unlink()
    con, _ = _connect(two)
    rows = con.execute(f"SELECT count(*), count(DISTINCT channel_id), bool_and(slot = {slot_sql('channel_id')}) "
                       "FROM channels").fetchall()
    assert rows == [(rows[0][1], rows[0][1], True)] and rows[0][1] > 1


def test_a_view_open_for_days_follows_a_collector_that_loses_or_gains_its_files(two: Path) -> None:
    """The views list a glob per collector of the lake. A collector whose last posts file a publish removed (its
    slots handed on) made every query fail ("No files found") until the next connection; one that had no posts
    file when the connection opened was left out until then, though docs/lake.md says that a known collector's new
    partitions appear at the next query."""
    theirs = sorted((two / "posts").glob("slot=*/month=*/other.parquet"))
    moved = two.parent / "other-posts"
    moved.mkdir()
    for i, path in enumerate(theirs):               # 'other' has published no posts yet
        path.rename(moved / f"{i}.parquet")
    con, _ = _connect(two)
    (before,) = con.execute("SELECT count(*) FROM posts").fetchall()[0]
    first = pq.read_table(moved / "0.parquet")      # its first posts: new ones, and a copy of one of 'main'
    new = first.set_column(first.schema.get_field_index("message_id"), "message_id",
                           pa.compute.add(first.column("message_id"), 10_000_000))
    pq.write_table(pa.concat_tables([first, new]), theirs[0])
    assert con.execute("SELECT count(*) FROM posts").fetchall() == [(before + new.num_rows,)]
    for path in sorted((two / "posts").glob("slot=*/month=*/main.parquet")):   # 'main' hands every slot on
        path.unlink()
    assert con.execute("SELECT count(*) FROM posts").fetchall() == [(first.num_rows + new.num_rows,)]


# -- 4. verify --lake on a path holding a glob character -------------------------------------------------------
def test_verify_checks_a_lake_whose_path_holds_a_glob_character(published: tuple[Path, Path, Path],
                                                                 one: Path) -> None:
    """It said "the archive is truncated or damaged" (exit 4): DuckDB read the path as a pattern."""
    odd = one.parent / "lake[1]"
    one.rename(odd)
    result, findings = _verify(published[0], odd)
    assert result.exit_code == 0, result.output          # compared, and the same as the archive
    assert [(f["severity"], f["message"]) for f in findings] == [
        ("warning", f"the lake's path {str(odd)!r} holds one of [ ] * ?, which DuckDB reads as a file pattern: "
                    "analysis.connect refuses it; rename the folder, or open it through a symbolic link whose path "
                    "has none")]
    drifted = sorted((odd / "posts").glob("slot=*/month=*/main.parquet"))[1]
    shutil.copy(sorted((odd / "posts").glob("slot=*/month=*/main.parquet"))[2], drifted)
    result, findings = _verify(published[0], odd)
    assert result.exit_code == 1 and any("no publish is pending" in f["message"] for f in findings)
