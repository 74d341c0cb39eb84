"""``tgspread export``: partitioned Parquet (and CSV) that reads back whole, with people pseudonymised.

The archive is a copy of the shared ``collected`` one (the collector's real output from the simulated
Telegram) with a few person-level values planted where the simulated world has none: a group with a
signed post, a raw payload carrying a user id, and a comment row as ``tgspread comments`` writes it.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from collector import Archive
from collector._archive.export import DERIVED, LOCAL_STATE, PSEUDONYM_KEY
from collector._archive.upsert import pseudonym
from collector._archive.verify import channel_digests
from collector._cli.app import app
from collector._cli.common import Exit
from tests.helpers.simworld import Collected

runner = CliRunner()
GROUP_AUTHOR = "Group Author Zq"
HIDDEN_NAME = "Hidden Sender Zq"
PERSON_USERNAME = "jane_person_zq"
USER_ID = 987654321012


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row


def _plant(path: Path) -> dict[str, Any]:
    """Person-level values the export must not show; returns what was planted."""
    con = duckdb.connect(str(path))
    try:
        group, msg = _one(con, "SELECT channel_id, min(message_id) FROM posts GROUP BY 1 ORDER BY 1 LIMIT 1")
        con.execute("UPDATE channels SET megagroup = true WHERE channel_id = ?", [group])
        con.execute("UPDATE posts SET post_author = ? WHERE channel_id = ? AND message_id = ?",
                    [GROUP_AUTHOR, group, msg])
        con.execute("UPDATE posts SET fwd_from_name = ?, fwd_channel_id = NULL, fwd_message_id = NULL, "
                    "raw = ? WHERE channel_id = ? AND message_id = ?",
                    [HIDDEN_NAME, json.dumps({"_": "Message", "from_id": {"_": "PeerUser", "user_id": USER_ID}}),
                     group, msg + 1])
        # a web preview's forward from a person's account: t.me/<username>, no channel, no post id
        con.execute("UPDATE posts SET fwd_username = ?, fwd_channel_id = NULL, fwd_message_id = NULL "
                    "WHERE channel_id = ? AND message_id = ?", [PERSON_USERNAME, group, msg + 2])
        con.execute("INSERT INTO post_comments (channel_id, message_id, discussion_id, comment_id, posted_at, text, "
                    "author_kind, author_pseudonym, first_seen_at, last_seen_at) VALUES (?, ?, 1, 1, now(), 'hi', "
                    "'user', 'a1b2c3d4e5f60718', now(), now())", [group, msg])
        hidden = [r[0] for r in con.execute(
            "SELECT DISTINCT fwd_from_name FROM posts WHERE fwd_channel_id IS NULL AND fwd_from_name IS NOT NULL "
            # the simulated world reuses names: one that is also a public channel signature stays visible there
            "AND fwd_from_name NOT IN (SELECT post_author FROM posts WHERE post_author IS NOT NULL "
            "AND channel_id NOT IN (SELECT channel_id FROM channels WHERE megagroup)) "
            "AND fwd_from_name NOT IN (SELECT fwd_post_author FROM posts WHERE fwd_channel_id IS NOT NULL "
            "AND fwd_post_author IS NOT NULL)").fetchall()]
    finally:
        con.close()
    return {"group": group, "message_id": msg, "hidden_names": hidden}


@pytest.fixture(scope="module")
def exported(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The planted copy exported once as Parquet through the CLI."""
    base = tmp_path_factory.mktemp("export")
    archive = base / "archive.duckdb"
    shutil.copy(collected.path, archive)
    with Archive(archive):      # brings the copy to this tgspread's schema (post_comments is a migration)
        pass
    planted = _plant(archive)
    with Archive(archive, read_only=True) as opened:
        digests, whole = channel_digests(opened.con)
    out = base / "out"
    result = runner.invoke(app, ["export", "--archive", str(archive), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Archive(archive, read_only=True) as opened:
        key = bytes(_one(opened.con, "SELECT key FROM pseudonym_keys WHERE name = ?", [PSEUDONYM_KEY])[0])
        counts = {t: _one(opened.con, f'SELECT count(*) FROM "{t}"')[0]
                  for (t,) in opened.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return {"archive": archive, "out": out, "key": key, "counts": counts, "digests": digests, "whole": whole,
            "manifest": json.loads((out / "manifest.json").read_text()), **planted}


def _query(sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _read(out: Path, table: str, what: str = "*", where: str = "TRUE") -> list[tuple[Any, ...]]:
    """``SELECT what`` over the exported files of ``table``, read in place (hive partitions)."""
    return _query(f"SELECT {what} FROM read_parquet('{out}/{table}/**/*.parquet', hive_partitioning = true, "
                  f"union_by_name = true) WHERE {where}")


def test_round_trip_row_counts(exported: dict[str, Any]) -> None:
    manifest, out = exported["manifest"], exported["out"]
    assert set(manifest["tables"]) == set(exported["counts"]) - {"pseudonym_keys"} - DERIVED - LOCAL_STATE
    assert "lake_pickups" in exported["counts"]          # local bookkeeping: left out unless named
    assert not {"analysis_summaries", "archive_generation"} & set(exported["counts"])   # dropped by 0009
    for table, info in manifest["tables"].items():
        assert info["rows"] == exported["counts"][table], table
        assert _read(out, table, "count(*)") == [(info["rows"],)], table


def test_partition_layout_is_hive_by_channel(exported: dict[str, Any]) -> None:
    out = exported["out"]
    with Archive(exported["archive"], read_only=True) as opened:
        channels = {r[0] for r in opened.con.execute("SELECT DISTINCT channel_id FROM posts").fetchall()}
    dirs = {int(p.name.split("=", 1)[1]) for p in (out / "posts").iterdir()}
    assert dirs == channels and all(re.fullmatch(r"channel_id=\d+", p.name) for p in (out / "posts").iterdir())
    assert exported["manifest"]["tables"]["posts"]["partitioned_by"] == ["channel_id"]
    assert exported["manifest"]["tables"]["runs"]["partitioned_by"] == []
    assert (out / "runs" / "data_0.parquet").exists()
    # each partition holds only its channel's rows
    one = min(channels)
    with Archive(exported["archive"], read_only=True) as opened:
        want = opened.con.execute("SELECT count(*) FROM posts WHERE channel_id = ?", [one]).fetchone()
    assert _query(f"SELECT count(*) FROM read_parquet('{out}/posts/channel_id={one}/*.parquet')") == [want]


def test_polars_reads_the_directory_in_place(exported: dict[str, Any]) -> None:
    frame = pl.scan_parquet(f"{exported['out']}/posts/**/*.parquet", hive_partitioning=True).collect()
    assert frame.height == exported["counts"]["posts"]
    assert frame.schema["channel_id"] == pl.Int64 and frame.schema["posted_at"] == pl.Datetime("us", "UTC")
    assert "raw" not in frame.columns
    obs = pl.scan_parquet(f"{exported['out']}/post_observations/**/*.parquet", hive_partitioning=True)
    assert obs.select(pl.len()).collect().item() == exported["counts"]["post_observations"]


def _all_bytes(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())


def _all_strings(out: Path) -> str:
    """Every value of every exported Parquet file as text (the files are compressed: bytes alone prove little)."""
    return "\n".join(str(pq.read_table(p).to_pylist()) for p in sorted(out.rglob("*.parquet")))


def test_no_person_level_value_is_exported(exported: dict[str, Any]) -> None:
    out, key = exported["out"], exported["key"]
    text = _all_strings(out) + _all_bytes(out).decode("utf-8", "replace")
    names = [GROUP_AUTHOR, HIDDEN_NAME, PERSON_USERNAME, *exported["hidden_names"]]
    assert len(names) > 3, "the simulated world has hidden-sender forwards"
    for name in names:
        assert name not in text, name
    assert str(USER_ID) not in text
    assert key.hex() not in text and key not in _all_bytes(out)
    hidden = _read(out, "posts", "fwd_from_name", "fwd_channel_id IS NULL AND fwd_from_name IS NOT NULL")
    assert hidden and all(re.fullmatch(r"[0-9a-f]{16}", name) for (name,) in hidden)
    planted = _read(out, "posts", "post_author", f"channel_id = {exported['group']} "
                                                 f"AND message_id = {exported['message_id']}")
    assert planted == [(pseudonym(key, "name:" + GROUP_AUTHOR),)]
    person = _read(out, "posts", "fwd_username", f"channel_id = {exported['group']} "
                                                 f"AND message_id = {exported['message_id'] + 2}")
    assert person == [(pseudonym(key, "name:" + PERSON_USERNAME),)]


def test_named_forwards_and_broadcast_signatures_are_kept(exported: dict[str, Any]) -> None:
    with Archive(exported["archive"], read_only=True) as opened:
        named = opened.con.execute("SELECT count(*) FROM posts WHERE fwd_channel_id IS NOT NULL").fetchone()
        signed = opened.con.execute(
            "SELECT DISTINCT post_author FROM posts WHERE post_author IS NOT NULL AND channel_id NOT IN "
            "(SELECT channel_id FROM channels WHERE megagroup)").fetchall()
    assert _read(exported["out"], "posts", "count(*)", "fwd_channel_id IS NOT NULL") == [named]
    exported_signatures = {r[0] for r in _read(exported["out"], "posts", "DISTINCT post_author",
                                               f"channel_id <> {exported['group']} AND post_author IS NOT NULL")}
    assert exported_signatures == {r[0] for r in signed}


def test_same_name_same_pseudonym(exported: dict[str, Any]) -> None:
    with Archive(exported["archive"], read_only=True) as opened:
        name, count = _one(
            opened.con, "SELECT fwd_from_name, count(*) FROM posts WHERE fwd_channel_id IS NULL "
            "AND fwd_from_name IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")
    alias = pseudonym(exported["key"], "name:" + name)
    assert _read(exported["out"], "posts", "count(*)", f"fwd_from_name = '{alias}'") == [(count,)]


def test_key_table_is_never_exported(exported: dict[str, Any], tmp_path: Path) -> None:
    assert not (exported["out"] / "pseudonym_keys").exists()
    assert "pseudonym_keys" not in exported["manifest"]["tables"]
    result = runner.invoke(app, ["export", "--archive", str(exported["archive"]), "--out", str(tmp_path / "x"),
                                 "--tables", "posts", "--tables", "pseudonym_keys"])
    assert result.exit_code == Exit.USAGE and "never exported" in result.stderr
    assert not (tmp_path / "x").exists()


def test_comments_are_exported_as_they_are(exported: dict[str, Any]) -> None:
    rows = _read(exported["out"], "post_comments", "author_kind, author_pseudonym, text")
    assert rows == [("user", "a1b2c3d4e5f60718", "hi")]


def test_manifest_carries_versions_and_the_archive_digests(exported: dict[str, Any]) -> None:
    manifest = exported["manifest"]
    with Archive(exported["archive"], read_only=True) as opened:
        assert manifest["schema_version"] == opened.schema_version
    assert manifest["tgspread_version"] and manifest["format"] == "parquet"
    assert manifest["verify"]["archive_digest"] == exported["whole"]
    assert manifest["verify"]["channels"] == {str(d.channel_id): d.sha256 for d in exported["digests"]}
    assert manifest["tables"]["posts"]["dropped"] == ["raw"]
    assert set(manifest["tables"]["channels"]["dropped"]) == {"raw", "access_hash"}


def test_since_and_tables_and_csv(exported: dict[str, Any], tmp_path: Path) -> None:
    with Archive(exported["archive"], read_only=True) as opened:
        middle = _one(opened.con, "SELECT quantile_disc(posted_at, 0.5) FROM posts")[0]
        want = _one(opened.con, "SELECT count(*) FROM posts WHERE posted_at >= ?", [middle])[0]
        want_obs = _one(opened.con, "SELECT count(*) FROM post_observations o JOIN posts p USING (channel_id, "
                                    "message_id) WHERE p.posted_at >= ?", [middle])[0]
    since = middle.astimezone(UTC).isoformat()
    out = tmp_path / "csv"
    result = runner.invoke(app, ["export", "--archive", str(exported["archive"]), "--out", str(out), "--format",
                                 "csv", "--tables", "posts", "--tables", "post_observations", "--since", since])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["tables"]) == {"posts", "post_observations"}
    assert manifest["tables"]["posts"]["rows"] == want and manifest["tables"]["post_observations"]["rows"] == want_obs
    files = list((out / "posts").rglob("*.csv"))
    assert files and all(f.parent.name.startswith("channel_id=") for f in files)
    [(rows, first)] = _query(f"SELECT count(*), min(posted_at) FROM read_csv('{out}/posts/**/*.csv', "
                             "hive_partitioning = true, union_by_name = true)")
    assert rows == want and first >= middle
    raw = _all_bytes(out).decode("utf-8")
    assert HIDDEN_NAME not in raw and GROUP_AUTHOR not in raw and str(USER_ID) not in raw


@pytest.mark.parametrize(("args", "needle"), [
    (["--format", "xlsx"], "--format"),
    (["--since", "last tuesday"], "--since"),
    (["--tables", "no_such_table"], "no table no_such_table"),
])
def test_bad_options_are_one_line_and_write_nothing(exported: dict[str, Any], tmp_path: Path, args: list[str],
                                                    needle: str) -> None:
    before = exported["archive"].read_bytes()
    result = runner.invoke(app, ["export", "--archive", str(exported["archive"]), "--out", str(tmp_path / "o"),
                                 *args])
    assert result.exit_code == Exit.USAGE, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tgspread: error: ") and needle in lines[0]
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))
    assert exported["archive"].read_bytes() == before


def test_out_must_be_new_or_empty(exported: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    result = runner.invoke(app, ["export", "--archive", str(exported["archive"]), "--out", str(tmp_path / "full")])
    assert result.exit_code == Exit.USAGE and "not an empty directory" in result.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.txt"]


def test_export_leaves_the_archive_content_unchanged(exported: dict[str, Any]) -> None:
    """Only the pseudonym key is added (first export); the digests taken before the export still hold."""
    with Archive(exported["archive"], read_only=True) as opened:
        _digests, whole = channel_digests(opened.con)
    assert whole == exported["whole"]
    assert datetime.fromisoformat(exported["manifest"]["exported_at"]).tzinfo is not None


def test_bad_tables_on_an_archive_without_a_key_changes_nothing(collected: Collected, tmp_path: Path) -> None:
    archive = tmp_path / "fresh.duckdb"
    shutil.copy(collected.path, archive)
    before = archive.read_bytes()
    result = runner.invoke(app, ["export", "--archive", str(archive), "--out", str(tmp_path / "o"),
                                 "--tables", "pseudonym_keys"])
    assert result.exit_code == Exit.USAGE and "never exported" in result.stderr
    assert archive.read_bytes() == before and not (tmp_path / "o").exists()


def _file_rows(out: Path) -> dict[str, list[str]]:
    """Every exported file (the manifest aside) -> its rows, in file order, as text (CSV lines or Parquet rows)."""
    return {str(f.relative_to(out)): (f.read_text(encoding="utf-8").splitlines() if f.suffix == ".csv"
                                      else [repr(r) for r in pq.read_table(f).to_pylist()])
            for f in sorted(out.rglob("*")) if f.is_file() and f.name != "manifest.json"}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_runs_of_channels_write_what_one_copy_writes(exported: dict[str, Any], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """A partitioned table in many runs of channels gives the same files as one ``COPY`` of the table, with the
    same rows and manifest; on the collected archive, whose rows mix channels as collection appends them, with a text
    that is a formula in a CSV, ``--since``, and a group author and a hidden sender to pseudonymise."""
    from collector._archive import export as export_module

    archive = tmp_path / "archive.duckdb"
    shutil.copy(exported["archive"], archive)
    with Archive(archive) as opened:
        con = opened.con
        middle = _one(con, "SELECT quantile_disc(posted_at, 0.25) FROM posts")[0]
        con.execute("UPDATE posts SET text = '=HYPERLINK(\"http://evil.example/\",\"x\")' WHERE posted_at >= ? "
                    "AND message_id % 7 = 0", [middle])
        mixed = _one(con, "SELECT count(DISTINCT channel_id) FROM (SELECT channel_id FROM posts LIMIT 200)")[0]
    assert mixed > 1         # the archive is not clustered by channel: a run's rows are spread through the table
    args = ["export", "--archive", str(archive), "--format", fmt, "--since", middle.astimezone(UTC).isoformat()]
    monkeypatch.setattr(export_module, "EXPORT_RUN_ROWS", 300)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(export_module, "EXPORT_RUN_ROWS", 10**12)
    monkeypatch.setattr(export_module, "EXPORT_RUN_CHANNELS", 10**9)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output

    runs, one = _file_rows(tmp_path / "runs"), _file_rows(tmp_path / "one")
    assert {f: sorted(rows) for f, rows in runs.items()} == {f: sorted(rows) for f, rows in one.items()}
    assert len([f for f in runs if f.startswith("posts/")]) > 5
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("runs", "one")]
    for m in manifests:
        m.pop("exported_at")
    assert manifests[0] == manifests[1] and manifests[0]["tables"]["posts"]["rows"] > 0
    text = "\n".join(line for rows in runs.values() for line in rows)
    assert GROUP_AUTHOR not in text and HIDDEN_NAME not in text
    if fmt == "csv":
        assert text.count("'=HYPERLINK") == text.count("=HYPERLINK") > 0
    assert not [p for p in (tmp_path / "runs").rglob(".*")]
