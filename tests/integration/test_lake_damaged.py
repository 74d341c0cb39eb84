"""A damaged lake: unreadable Parquet files and manifests, a lake path that is no lake, the candidates view before
any candidates, and `verify --collector`. Real files, the real CLI (typer's CliRunner); nothing contacts Telegram."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner, Result

import analysis
from analysis._lake_schema import LAKE_SCHEMA
from analysis.lake import connect_lake, read_manifests, unreadable_files
from collector import Archive
from collector._archive.lake import publish
from collector._cli.app import app
from collector._telegram.client import SIMULATED_ENV
from tests.helpers.simworld import Collected, copy_archive

runner = CliRunner()


@pytest.fixture(scope="module")
def two_collectors(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the shared archive and a lake it published twice: as collector 'main' and as 'other'."""
    base = tmp_path_factory.mktemp("damaged")
    archive = copy_archive(collected.path, base / "archive.duckdb")
    with Archive(archive) as opened:
        publish(opened, base / "lake", collector="main")
        publish(opened, base / "lake", collector="other", full=True)
    return archive, base / "lake"


@pytest.fixture
def lake(two_collectors: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the lake to damage, the working directory a clean one (no tgspread.toml, no env)."""
    for name in ("TGSPREAD_ARCHIVE", "TGSPREAD_DEBUG", "TGSPREAD_SESSION", SIMULATED_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(two_collectors[1], tmp_path / "lake")
    yield tmp_path / "lake"


def _posts_file(lake: Path, collector: str, index: int = 0) -> Path:
    return sorted((lake / "posts").glob(f"slot=*/month=*/{collector}.parquet"))[index]


def _damage_inside(path: Path) -> None:
    """Flip bytes of the first data pages, keeping the footer: only reading the rows finds it."""
    data = bytearray(path.read_bytes())
    for i in range(8, min(len(data) // 3, 20_000), 3):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _verify(archive: Path, lake: Path, *extra: str) -> tuple[Result, list[dict[str, object]]]:
    result = runner.invoke(app, ["verify", "--archive", str(archive), "--lake", str(lake), "--json", *extra])
    findings = json.loads(result.stdout)["findings"] if result.stdout.startswith("{") else []
    return result, [f for f in findings if f["check"] == "lake"]


def _count(lake: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        con = analysis.connect(lake)
    return int(con.execute("SELECT count(*) FROM posts").fetchall()[0][0])


# -- 1. a file that is not Parquet ----------------------------------------------------------------------------
def test_verify_names_each_unreadable_file_with_who_rewrites_it_and_checks_the_rest(
        two_collectors: tuple[Path, Path], lake: Path) -> None:
    mine, theirs = _posts_file(lake, "main"), _posts_file(lake, "other", 1)
    mine.write_text("garbage\n")
    theirs.write_bytes(b"")
    result, findings = _verify(two_collectors[0], lake)
    assert result.exit_code == 1, result.output            # verify's failure status, not 70 (a bug)
    errors = [str(f["message"]) for f in findings if f["severity"] == "error"]
    assert len(errors) == 2, errors                        # the damaged files only: no drift for the partition
    own = next(m for m in errors if str(mine) in m)
    assert "run `tgspread publish --full`" in own
    other = next(m for m in errors if str(theirs) in m)
    assert "collector 'other', which must republish it" in other
    # the rest was checked: drift elsewhere is still found
    victim = _posts_file(lake, "main", 2)
    shutil.copy(_posts_file(lake, "main", 3), victim)
    result, findings = _verify(two_collectors[0], lake)
    assert result.exit_code == 1
    assert any(str(victim.parent.relative_to(lake / "posts")) in str(f["message"]) for f in findings)


def test_verify_finds_damage_behind_an_intact_footer(two_collectors: tuple[Path, Path], lake: Path) -> None:
    biggest = max((lake / "posts").glob("slot=*/month=*/main.parquet"), key=lambda p: p.stat().st_size)
    _damage_inside(biggest)
    assert unreadable_files(lake) == {}                    # the footer reads
    assert biggest in unreadable_files(lake, ["posts"], collector="main", deep=True)
    result, findings = _verify(two_collectors[0], lake)
    assert result.exit_code == 1, result.output
    assert [f["severity"] for f in findings] == ["error"] and str(biggest) in str(findings[0]["message"])


def test_shards_names_an_unreadable_file_and_shows_the_rest(lake: Path) -> None:
    before = runner.invoke(app, ["shards", "--lake", str(lake)])
    assert before.exit_code == 0, before.output
    bad = _posts_file(lake, "other")
    bad.write_text("garbage\n")
    shown = runner.invoke(app, ["shards", "--lake", str(lake)])
    assert shown.exit_code == 1, shown.output               # partial: not 70, and not silently 0
    assert "unexpected" not in shown.output and "unowned slots: 0-63" in shown.stdout
    (line,) = [x for x in shown.stderr.splitlines() if "warning" in x]
    assert f"unreadable file {bad}" in line and "collector 'other'" in line and "tgspread publish --full" in line
    planned = runner.invoke(app, ["shards", "--lake", str(lake), "--plan", "2"])
    assert planned.exit_code == 1 and "[slots]" in planned.stdout and str(bad) in planned.stderr
    _damage_inside(max((lake / "posts").glob("slot=*/month=*/main.parquet"), key=lambda p: p.stat().st_size))
    deeper = runner.invoke(app, ["shards", "--lake", str(lake)])
    assert deeper.exit_code == 1 and deeper.stderr.count("unreadable file") == 2, deeper.output


def test_a_query_over_a_damaged_file_names_the_file(lake: Path) -> None:
    """The connection stays lazy (docs/lake.md): the query that reads a damaged file fails, naming it; when the
    file a view takes its columns from is damaged, connecting fails, naming the damaged files and what to do."""
    bad = _posts_file(lake, "main")
    bad.write_text("garbage\n")
    with pytest.raises(duckdb.Error, match=re.escape(str(bad))):
        analysis.connect(lake).execute("SELECT count(*) FROM posts").fetchall()
    assert set(unreadable_files(lake)) == {bad}
    (lake / "_manifests" / "other.json").unlink()          # main alone, every posts file of it damaged
    for path in (lake / "posts").glob("slot=*/month=*/main.parquet"):
        path.write_text("garbage\n")
    with pytest.raises(duckdb.InvalidInputException, match=r"the lake's posts cannot be read\. Damaged: .*"
                       r"collector 'main' rewrites it with `tgspread publish --full`"):
        analysis.connect(lake)


# -- 2. a manifest that is not JSON ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]"], ids=["empty", "not-json", "not-an-object"])
def test_an_unreadable_manifest_warns_and_keeps_its_collectors_data(lake: Path, text: str) -> None:
    (lake / "_manifests" / "main.json").unlink()
    alone = _count(lake)                                    # 'other' alone holds the same posts
    (lake / "_manifests" / "other.json").write_text(text)
    with pytest.warns(UserWarning, match=r"unreadable manifest .*other\.json.*tgspread publish"):
        con = analysis.connect(lake)
    assert con.execute("SELECT count(*) FROM posts").fetchall()[0][0] == alone > 0
    assert list(read_manifests(lake)[1]) == [lake / "_manifests" / "other.json"]


def test_shards_and_verify_say_the_manifest_is_unreadable(two_collectors: tuple[Path, Path], lake: Path) -> None:
    manifest = lake / "_manifests" / "main.json"
    manifest.write_text("")
    shown = runner.invoke(app, ["shards", "--lake", str(lake)], env={"COLUMNS": "100"})
    assert shown.exit_code == 1, shown.output
    row = next(x for x in shown.stdout.splitlines() if x.startswith("│ main"))
    assert "unreadable" in row and "never" not in row
    assert f"unreadable manifest {manifest}: an empty file" in shown.stderr
    result, findings = _verify(two_collectors[0], lake)
    assert result.exit_code == 1
    messages = [str(f["message"]) for f in findings]
    assert messages == [f"unreadable manifest {manifest}: an empty file; run `tgspread publish --full` to rewrite it"]
    assert not any("removed" in m for m in messages)


# -- 3. a lake path that is no lake ---------------------------------------------------------------------------
def test_shards_exits_2_when_the_lake_is_no_folder(lake: Path) -> None:
    afile = lake.parent / "afile"
    afile.write_text("x\n")
    for where in (lake.parent / "nosuchdir", afile / "x"):
        result = runner.invoke(app, ["shards", "--lake", str(where)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"tgspread: error: no lake at {where} (no such folder): check --lake or the config's [lake] path; "
            "`tgspread publish` makes the lake"]
    (lake.parent / "tgspread.toml").write_text('[lake]\npath = "afile"\n')
    result = runner.invoke(app, ["shards"])
    assert result.exit_code == 2 and "(a file, not a folder)" in result.stderr and "unowned" not in result.output


# -- 4. a folder that is no lake ------------------------------------------------------------------------------
def test_connect_refuses_a_folder_that_holds_no_lake(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "killed" / "posts").mkdir(parents=True)   # a first publish killed before its manifest
    for folder in (tmp_path / "empty", tmp_path / "killed"):
        with pytest.raises(FileNotFoundError, match=r"no lake at .*no _manifests/.*`tgspread publish --lake "):
            analysis.connect(folder)
        with pytest.raises(FileNotFoundError):
            connect_lake(folder)
    (tmp_path / "empty" / "_manifests").mkdir()            # a lake nobody published to yet: empty views
    assert analysis.connect(tmp_path / "empty").execute("SELECT count(*) FROM posts").fetchall() == [(0,)]


# -- 5. the candidates view -----------------------------------------------------------------------------------
def test_the_candidates_view_has_the_columns_of_a_written_file(two_collectors: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    empty = [(r[0], r[1]) for r in connect_lake(two_collectors[1]).execute("DESCRIBE candidates").fetchall()]
    assert empty == list(LAKE_SCHEMA["candidates"][1]) and ("collector", "VARCHAR") in empty
    archive = copy_archive(two_collectors[0], tmp_path / "a.duckdb")
    with Archive(archive) as opened:
        # a public channel: a group or private one met in another slot is never handed on
        (cid,) = opened.con.execute("SELECT channel_id FROM channels WHERE status = 'active' "
                                    "ORDER BY channel_id LIMIT 1").fetchone() or (0,)
        opened.con.execute("INSERT INTO run_channels (run_id, input, outcome, channel_id) SELECT max(run_id), "
                           "'@elsewhere', 'not_owned', ? FROM runs", [cid])
        publish(opened, tmp_path / "lake", collector="main")
    assert list((tmp_path / "lake" / "candidates").glob("slot=*/main.parquet"))
    con = connect_lake(tmp_path / "lake")
    assert [(r[0], r[1]) for r in con.execute("DESCRIBE candidates").fetchall()] == empty
    assert con.execute("SELECT channel_id, collector FROM candidates").fetchall() == [(cid, "main")]


# -- 6. verify --collector ------------------------------------------------------------------------------------
def test_verify_collector_checks_that_collectors_archive_and_files(two_collectors: tuple[Path, Path],
                                                                   lake: Path) -> None:
    second = copy_archive(two_collectors[0], lake.parent / "archive-second.duckdb")
    with Archive(second) as opened:
        publish(opened, lake, collector="second")
    (lake.parent / "tgspread.toml").write_text(
        f'archive = "{two_collectors[0]}"\n[lake]\npath = "lake"\ncollector = "main"\n'
        '[collectors.second]\narchive = "archive-second.duckdb"\n')
    _posts_file(lake, "second").write_text("garbage\n")
    as_second = runner.invoke(app, ["verify", "--collector", "second", "--json"])
    assert as_second.exit_code == 1, as_second.output
    data = json.loads(as_second.stdout)
    assert data["archive"] == str(second)
    (message,) = [f["message"] for f in data["findings"] if f["check"] == "lake"]
    assert "second.parquet" in message and "run `tgspread publish --full` to rewrite it" in message
    as_main = runner.invoke(app, ["verify", "--json"])
    assert as_main.exit_code == 1
    (message,) = [f["message"] for f in json.loads(as_main.stdout)["findings"] if f["check"] == "lake"]
    assert "collector 'second', which must republish it" in message
    unknown = runner.invoke(app, ["verify", "--collector", "third"])
    assert unknown.exit_code == 2 and "no collector 'third'" in unknown.stderr


# -- 7. a hostile lake: names, nesting, a crafted footer, a path DuckDB reads as a pattern -----------------------
def test_a_hostile_lake_is_escaped_bounded_and_named(lake: Path, tmp_path: Path) -> None:
    escape = "\x1b]52;c;cHduZWQK\x07\x1b[2J"
    (lake / "_manifests" / f"{escape}.json").write_text("not json", encoding="utf-8")
    (lake / "_manifests" / "**.json").write_text(json.dumps({"collector": "**"}), encoding="utf-8")
    (lake / "_manifests" / "deep.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    # a footer claiming 4 GB at the end of a small file: never read into memory
    crafted = _posts_file(lake, "main").with_name("crafted.parquet")
    crafted.write_bytes(b"PAR1" + b"\0" * 4096 + (0xFFFFFFF0).to_bytes(4, "little") + b"PAR1")
    _, bad = read_manifests(lake)
    reasons = {p.name: why for p, why in bad.items()}
    assert "no collector name" in reasons["**.json"] and "nested too deep" in reasons["deep.json"]
    assert "footer claims 4,294,967,280 bytes" in unreadable_files(lake, ["posts"])[crafted]
    with pytest.warns(UserWarning) as caught:
        con = analysis.connect(lake)
    assert con.execute("SELECT count(*) FROM channels").fetchall()[0][0] > 0     # '**' globbed nothing extra
    assert not any("\x1b" in str(w.message) for w in caught)                     # escaped, never raw
    shown = runner.invoke(app, ["shards", "--lake", str(lake)])
    assert shown.exit_code == 1 and "\x1b" not in shown.output and "\\x1b" in shown.stderr
    assert "crafted.parquet" in shown.stderr
    # a path with a glob character: one clear error, not DuckDB's "no files found"
    odd = tmp_path / "lake[1]"
    shutil.copytree(lake, odd)
    with pytest.raises(ValueError, match=r"holds one of \[ \] \* \?"):
        analysis.connect(odd)
