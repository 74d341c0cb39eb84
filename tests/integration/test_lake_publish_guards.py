"""Publishing refuses what would mix, downgrade or lose a lake's data (issue 14, hardening).

- a publish to another lake clears the change marks: the next publish to the first lake is then full, never one
  that misses that pass's partitions;
- two archives under one collector name, a lake of a newer tgspread, a directory that is not a lake, a file where
  the lake or a folder of it should be: one message, nothing written;
- a DuckDB file that is not a tgspread archive is not migrated into one (nor published);
- with a config, `publish --collector NAME` publishes that collector's archive, as `run --collector` collects it;
- `--collector main` (the config's own collector) keeps the session `tgspread login` wrote.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import analysis
from analysis.lake import connect_lake
from collector import Archive
from collector._archive.export import exportable_tables
from collector._archive.lake import LakeError, publish, read_manifest
from collector._archive.rows import POSTS_SCHEMA
from collector._cli.app import app
from collector._config import ConfigError, load_config
from tests.helpers.simworld import Collected, copy_archive


@pytest.fixture
def archive(collected: Collected, tmp_path: Path) -> Path:
    return copy_archive(collected.path, tmp_path / "archive.duckdb")


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def _edit_one_post(opened: Archive, text: str) -> tuple[int, int]:
    """Change one post's text (a pass's write: it marks its partitions); returns its key."""
    cols = ", ".join(POSTS_SCHEMA.names)
    row = opened.con.sql(f"SELECT {cols} FROM posts WHERE text IS NOT NULL AND deleted_at IS NULL "
                         "ORDER BY channel_id, message_id LIMIT 1").to_arrow_table().cast(POSTS_SCHEMA)
    row = row.set_column(row.schema.get_field_index("text"), "text", pa.array([text], pa.string()))
    later = opened.con.execute("SELECT max(last_seen_at) FROM posts").fetchall()[0][0] + timedelta(hours=1)
    assert opened.write_posts(row, later).edits == 1
    return int(row["channel_id"][0].as_py()), int(row["message_id"][0].as_py())


def _lake_text(lake: Path, key: tuple[int, int]) -> str:
    con = analysis.connect(lake)
    return str(con.execute("SELECT text FROM posts WHERE channel_id = ? AND message_id = ?", list(key))
               .fetchall()[0][0])


def _listing(lake: Path) -> dict[str, int]:
    return {str(p.relative_to(lake)): p.stat().st_mtime_ns for p in lake.rglob("*") if p.is_file()}


def test_a_publish_elsewhere_does_not_take_the_marks_the_lake_needs(archive: Path, tmp_path: Path) -> None:
    lake, other = tmp_path / "lake", tmp_path / "typo-lake"
    with Archive(archive) as opened:
        publish(opened, lake)
        key = _edit_one_post(opened, "edited after the first publish")
        elsewhere = publish(opened, other, collector="main")            # clears the marks
        assert elsewhere.full and "first publish" in elsewhere.why_full
        back = publish(opened, lake)                                     # the marks are gone: full, not nothing
        assert back.full and back.why_full == "this archive published to another lake since"
        assert _lake_text(lake, key) == "edited after the first publish"
        # from then on both are up to date: the next publish to either is incremental
        key = _edit_one_post(opened, "edited again")
        again = publish(opened, lake)
        assert not again.full and again.files_written > 0
        assert publish(opened, other).full                               # the lake took marks other lacks
        assert _lake_text(other, key) == "edited again"
        recorded = dict(opened.con.execute("SELECT lake, marks_through FROM lake_publishes").fetchall())
    assert set(recorded) == {str(lake.resolve()), str(other.resolve())}
    assert read_manifest(other, "main")["marks_through"] == max(recorded.values())    # type: ignore[index]
    exported = set(exportable_tables(duckdb.connect(str(archive), read_only=True)))
    assert not {"lake_publishes", "lake_dirty", "lake_pickups"} & exported
    assert not (other / "lake_publishes").exists() and not (other / "lake_dirty").exists()


def test_a_lake_copied_with_its_archive_stays_incremental(archive: Path, tmp_path: Path) -> None:
    with Archive(archive) as opened:
        publish(opened, tmp_path / "lake")
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "lake", moved / "lake")
    copy = copy_archive(archive, moved / "archive.duckdb")
    with Archive(copy) as opened:
        key = _edit_one_post(opened, "edited in the copy")
        report = publish(opened, moved / "lake")
    assert not report.full and _lake_text(moved / "lake", key) == "edited in the copy"


def test_two_archives_never_publish_under_one_name(archive: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        publish(opened, lake, collector="box")
    before = _listing(lake)
    second = tmp_path / "second.duckdb"
    with Archive(second) as other:
        with pytest.raises(LakeError, match="published from another archive") as refused:
            publish(other, lake, collector="box")
        assert "--replace" in str(refused.value)
        assert _listing(lake) == before
        publish(other, lake, collector="box-2")                          # its own name: fine
    # the CLI says the same in one line (exit 2)
    args = ["publish", "--archive", str(second), "--lake", str(lake), "--collector", "box"]
    before = _listing(lake)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "another archive" in result.stderr and "Traceback" not in result.output
    assert _listing(lake) == before
    # on purpose: --replace makes the (empty) second archive's files the collector's, in a full publish
    result = CliRunner().invoke(app, [*args, "--replace"])
    assert result.exit_code == 0, result.output
    assert "full publish" in result.stdout and "files of another archive replaced" in result.stdout
    assert connect_lake(lake, collectors=["box"]).execute("SELECT count(*) FROM posts").fetchall() == [(0,)]
    # now the first archive is the other one
    with Archive(archive) as opened, pytest.raises(LakeError, match="published from another archive"):
        publish(opened, lake, collector="box")
    # a manifest removed by hand is a first publish: the same replacement
    (lake / "_manifests" / "box.json").unlink()
    with Archive(archive) as opened:
        assert publish(opened, lake, collector="box").why_full == "first publish of 'box' here"


def test_a_lake_of_a_newer_tgspread_is_not_downgraded(archive: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        publish(opened, lake)
    path = lake / "_manifests" / "main.json"
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "schema_version": 99}),
                    encoding="utf-8")
    before = _listing(lake)
    result = CliRunner().invoke(app, ["publish", "--archive", str(archive), "--lake", str(lake)])
    assert result.exit_code == 2 and "newer tgspread" in result.stderr and "upgrade" in result.stderr
    assert _listing(lake) == before


def test_a_directory_that_is_not_a_lake_is_left_alone(archive: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    exported = tmp_path / "exported"
    assert runner.invoke(app, ["export", "--archive", str(archive), "--out", str(exported)]).exit_code == 0
    before = _listing(exported)
    result = runner.invoke(app, ["publish", "--archive", str(archive), "--lake", str(exported)])
    assert result.exit_code == 2 and "holds no lake" in result.stderr
    assert _listing(exported) == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.docx").write_bytes(b"mine")
    assert runner.invoke(app, ["publish", "--archive", str(archive), "--lake", str(notes)]).exit_code == 2
    assert [p.name for p in notes.iterdir()] == ["thesis.docx"]
    # a lake whose first publish was killed before its manifest (partitions and temporaries only) is a lake
    killed = tmp_path / "killed"
    (killed / "posts" / "slot=07" / "month=2024-01").mkdir(parents=True)
    (killed / "posts" / "slot=07" / "month=2024-01" / ".main.parquet.1.tmp").write_bytes(b"partial")
    with Archive(archive) as opened:
        assert publish(opened, killed).full
    assert not list(killed.rglob("*.tmp"))


def test_a_file_in_the_way_is_one_message(archive: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    result = runner.invoke(app, ["publish", "--archive", str(archive), "--lake", str(afile)])
    assert result.exit_code == 2 and "is a file" in result.stderr
    with Archive(archive) as opened, pytest.raises(LakeError, match="is a file, not a lake directory"):
        publish(opened, afile)              # the same from the config's [lake] path
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        publish(opened, lake)
        _edit_one_post(opened, "waiting to be published")
    shutil.rmtree(lake / "posts")
    (lake / "posts").write_text("in the way", encoding="utf-8")
    result = runner.invoke(app, ["publish", "--archive", str(archive), "--lake", str(lake)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(lake / "posts") in result.stderr and "move that file away" in result.stderr
    with Archive(archive, read_only=True) as opened:        # nothing lost: the pass's marks wait for the next
        assert opened.con.execute("SELECT count(*) FROM lake_dirty").fetchall()[0][0] > 0


def test_a_duckdb_file_of_other_tables_is_not_made_an_archive(tmp_path: Path) -> None:
    foreign = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE foo AS SELECT 1 AS secret")
    result = CliRunner().invoke(app, ["publish", "--archive", str(foreign), "--lake", str(tmp_path / "lake")])
    assert result.exit_code != 0 and "not a tgspread archive" in result.stderr and "foo" in result.stderr
    with duckdb.connect(str(foreign), read_only=True) as con:
        assert [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()] == ["foo"]
    assert not (tmp_path / "lake" / "foo").exists()


def test_publish_collector_selects_the_configs_collector(archive: Path, in_tmp: Path) -> None:
    second = copy_archive(archive, in_tmp / "archive-second.duckdb")
    with Archive(second) as opened:
        opened.con.execute("DELETE FROM posts WHERE channel_id <> (SELECT min(channel_id) FROM posts)")
        posts = opened.con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
    (in_tmp / "tgspread.toml").write_text(
        f'archive = "{archive}"\n[lake]\npath = "lake"\ncollector = "main"\n[collectors.second]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["publish", "--collector", "second"])
    assert result.exit_code == 0, result.output
    assert read_manifest(in_tmp / "lake", "second")["tables"]["posts"]["rows"] == posts    # type: ignore[index]
    assert read_manifest(in_tmp / "lake", "main") is None


def test_the_configs_own_collector_keeps_the_login_session(tmp_path: Path) -> None:
    config = tmp_path / "tgspread.toml"
    config.write_text('[lake]\npath = "lake"\ncollector = "main"\n[collectors.second]\n', encoding="utf-8")
    env = {"HOME": str(tmp_path)}
    shared = load_config(config, env=env, cwd=tmp_path).session
    assert load_config(config, env=env, cwd=tmp_path, collector="main").session == shared
    assert load_config(config, env=env, cwd=tmp_path, collector="second").session == \
        shared.with_name("tgspread-second.session")


def test_a_collector_without_slots_is_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from collector._cli.common import ownership

    (tmp_path / "slots.csv").write_text("slot,collector\n0,main\n1,second\n", encoding="utf-8")
    config = tmp_path / "tgspread.toml"
    config.write_text('[lake]\npath = "lake"\ncollector = "main"\nassignment = "slots.csv"\n'
                      '[collectors.second]\n[collectors.third]\n', encoding="utf-8")
    env = {"HOME": str(tmp_path)}
    assert ownership(load_config(config, env=env, cwd=tmp_path, collector="second")) is not None
    assert "owns no slot" not in capsys.readouterr().err
    third = ownership(load_config(config, env=env, cwd=tmp_path, collector="third"))
    assert third is not None and third.slots() == []
    err = capsys.readouterr().err
    assert "collector 'third' owns no slot" in err and "shards --plan" in err


def test_a_collector_name_with_a_trailing_newline_is_refused(archive: Path, tmp_path: Path) -> None:
    # one pattern for every check (analysis.lake.COLLECTOR_NAME), matched whole: ``^...$`` let "main\n" through,
    # which named a manifest and files with a newline in them
    lake = tmp_path / "lake"
    with Archive(archive) as opened, pytest.raises(LakeError, match="collector name"):
        publish(opened, lake, collector="main\n")
    assert not lake.exists()
    with pytest.raises(ConfigError, match="--collector"):
        load_config(None, archive=archive, collector="main\n")


def test_a_publish_never_removes_through_a_link_and_starts_in_a_folder_with_a_placeholder(archive: Path,
                                                                                           tmp_path: Path) -> None:
    # a folder that holds only what a file manager or a version control leaves counts as empty
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / ".DS_Store").write_bytes(b"\0")
    (lake / ".gitkeep").write_text("")
    outside = tmp_path / "outside" / "month=2025-01"
    outside.mkdir(parents=True)
    (outside / "main.parquet").write_bytes(b"someone else's file")
    with Archive(archive) as opened:
        publish(opened, lake)
        # a link named like a partition: a full publish removes this collector's files of partitions it no longer
        # has, never one found through the link
        (lake / "posts" / "slot=05x").symlink_to(outside.parent)
        (lake / "posts" / "slot=99").symlink_to(outside.parent)
        publish(opened, lake, full=True)
    assert (outside / "main.parquet").read_bytes() == b"someone else's file"


def test_a_lake_ahead_of_its_archive_gets_a_full_publish(archive: Path, tmp_path: Path) -> None:
    # an archive restored from a backup: the lake took changes the archive no longer records
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        publish(opened, lake)
        _edit_one_post(opened, "a change")
        publish(opened, lake)
    manifest = lake / "_manifests" / "main.json"
    data = json.loads(manifest.read_text())
    data["marks_through"] += 1000
    manifest.write_text(json.dumps(data))
    with Archive(archive) as opened:
        report = publish(opened, lake)
    assert report.full and "restored from a backup" in report.why_full


def test_files_written_under_other_rules_for_people_are_all_written_again(archive: Path, tmp_path: Path) -> None:
    """A lake published before a field joined the pseudonymised ones (say ``posts.fwd_username`` of a person's
    forward) holds that field as it was: the next publish, however little changed, rewrites every file."""
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        opened.con.execute("UPDATE posts SET fwd_username = 'jane_person_zq', fwd_channel_id = NULL, "
                           "fwd_message_id = NULL WHERE (channel_id, message_id) = "
                           "(SELECT (channel_id, message_id) FROM posts ORDER BY ALL LIMIT 1)")
        publish(opened, lake)
        path = lake / "_manifests" / "main.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        assert manifest["person_rules"]
        # as an older tgspread wrote it: no rules recorded, the person's name in the files
        path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "person_rules"}), encoding="utf-8")
        before = _listing(lake)
        again = publish(opened, lake)
        assert again.full and again.why_full.startswith("the rules for people changed")
        after = _listing(lake)
        assert all(after[f] != before[f] for f in after if f.endswith(".parquet") and f in before)
        assert not publish(opened, lake).full                            # recorded again: incremental
    con = analysis.connect(lake)
    assert con.execute("SELECT count(*) FROM posts WHERE fwd_username = 'jane_person_zq'").fetchone() == (0,)


def test_one_archive_under_a_second_name_is_warned_about(archive: Path, tmp_path: Path) -> None:
    """Readers would see both names' files, the first frozen (a renamed collector, a typo in --collector)."""
    lake = tmp_path / "lake"
    with Archive(archive) as opened:
        assert publish(opened, lake).warnings == []
    result = CliRunner().invoke(app, ["publish", "--archive", str(archive), "--lake", str(lake), "--collector", "box1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "this archive also published to this lake as 'main'" in text and "_manifests/main.json" in text
    with Archive(archive) as opened:                       # and again under its first name: box1 is named
        assert [w.split(":")[0] for w in publish(opened, lake).warnings] == [
            "this archive also published to this lake as 'box1'"]
