"""``tgspread verify``: clean on collected archives, and every planted corruption found where it was planted.

Corruptions are planted in copies of the shared ``collected`` archive (a real DuckDB file written by the
collector from the simulated Telegram), with plain SQL as a hand or a bad merge would do it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from collector import Archive
from collector._archive.verify import (
    CLOCK_SKEW,
    CURSOR_SLACK,
    VerifyReport,
    channel_digests,
    gap_ranges,
    verify_archive,
)
from collector._cli.app import app
from collector._cli.common import Exit
from collector._telegram.client import SIMULATED_ENV
from tests.helpers.simworld import Collected

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def copy(collected: Collected, tmp_path: Path) -> Path:
    """A private copy of the collected archive, free to corrupt."""
    target = tmp_path / "copy.duckdb"
    shutil.copy(collected.path, target)
    return target


def _verify(path: Path, *, digests: bool = False, **kwargs: Any) -> VerifyReport:
    """The report on ``path``; without digests unless asked (the checks are what most tests look at)."""
    with Archive(path, read_only=True) as archive:
        return verify_archive(archive.con, digests=digests, **kwargs)


def _sql(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _drop_key(path: Path, table: str) -> None:
    """Recreate ``table`` without its primary key, as ``CREATE TABLE AS`` in a merge script would."""
    _sql(path, f"CREATE TABLE _t AS SELECT * FROM {table}; DROP TABLE {table}; ALTER TABLE _t RENAME TO {table}")


def _latest_of_a_watched_post(path: Path) -> tuple[int, int, Any]:
    """(channel_id, message_id, observed_at of its latest observation) of a post observed more than once
    with at least 1,000 views each time: room to lower a counter by a little or by half."""
    rows = _sql(path, """
        SELECT channel_id, message_id, max(observed_at) FROM post_observations
        GROUP BY ALL HAVING count(*) > 1 AND min(views) >= 1000 ORDER BY 1, 2 LIMIT 1""")
    assert rows, "the collected world has a post observed twice with >= 1,000 views"
    return rows[0]


def _errors_at(report: VerifyReport) -> set[tuple[str, str, int | None, int | None]]:
    return {(f.check, f.table, f.channel_id, f.message_id) for f in report.errors}


def _only_at(report: VerifyReport, channel_id: int, message_ids: set[int | None]) -> None:
    """Every error names ``channel_id`` and one of ``message_ids`` (None: a channel-level finding)."""
    assert report.errors, "the corruption was not found"
    for f in report.errors:
        assert f.channel_id == channel_id and f.message_id in message_ids, f
        assert str(channel_id) in f.message


# -- clean archives ----------------------------------------------------------------------------------------
def test_collected_archive_is_clean(collected: Collected) -> None:
    report = _verify(collected.path, digests=True)
    assert report.clean and report.errors == [] and report.warnings == [], report.findings
    assert report.gaps, "the simulated channels have service messages: gaps are listed"
    assert {g.explanation for g in report.gaps} <= {"before_first_archive", "service_messages",
                                                    "deleted_before_archiving", "above_newest_post"}
    with Archive(collected.path, read_only=True) as archive:
        posts = dict(archive.con.execute("SELECT channel_id, count(*) FROM posts GROUP BY 1").fetchall())
    assert {d.channel_id: d.rows["posts"] for d in report.digests} == posts
    assert all(re.fullmatch(r"[0-9a-f]{64}", d.sha256) for d in report.digests)


def test_the_gaps_are_the_ones_status_counts(collected: Collected) -> None:
    from collector._archive.status import archive_status

    with Archive(collected.path, read_only=True) as archive:
        status = archive_status(archive.con)
        gaps = gap_ranges(archive.con)
    for ch in status.channels:
        assert sum(g.size for g in gaps if g.channel_id == ch.channel_id) == ch.never_seen_ids + ch.cleared_ids


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("TGSPREAD_ARCHIVE", "TGSPREAD_DEBUG", SIMULATED_ENV, "TGSPREAD_SIMULATED_CHANNELS",
                 "TGSPREAD_SIMULATED_DAYS", "TGSPREAD_SIMULATED_ADVANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_demo_archive_verifies_clean_from_the_cli(cli_env: Path) -> None:
    demo = cli_env / "demo.duckdb"
    made = runner.invoke(app, ["demo", "--archive", str(demo), "--channels", "2", "--days", "1", "--advance", "1d"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["verify", "--archive", str(demo)])
    assert result.exit_code == 0, result.output
    assert "clean" in result.stdout and "archive digest:" in result.stdout
    data = json.loads(runner.invoke(app, ["verify", "--archive", str(demo), "--json"]).stdout)
    assert data["clean"] is True and data["errors"] == 0 and len(data["archive_digest"]) == 64
    assert data["digests"] and all(d["rows"]["posts"] > 0 for d in data["digests"])


# -- planted corruptions -----------------------------------------------------------------------------------
def test_duplicated_observation_is_pinpointed(copy: Path) -> None:
    ch, msg, at = _sql(copy, "SELECT channel_id, message_id, observed_at FROM post_observations "
                             "ORDER BY channel_id, message_id LIMIT 1")[0]
    _drop_key(copy, "post_observations")
    _sql(copy, "INSERT INTO post_observations SELECT * FROM post_observations WHERE channel_id = ? "
               "AND message_id = ? AND observed_at = ?", [ch, msg, at])
    report = _verify(copy)
    assert _errors_at(report) == {("unique_keys", "post_observations", ch, msg)}
    assert "2 rows share the key" in report.errors[0].message


def test_duplicated_version_is_pinpointed(copy: Path) -> None:
    ch, msg = _sql(copy, "SELECT channel_id, message_id FROM post_versions LIMIT 1")[0]
    _drop_key(copy, "post_versions")
    _sql(copy, "INSERT INTO post_versions SELECT * FROM post_versions WHERE channel_id = ? AND message_id = ?",
         [ch, msg])
    assert _errors_at(_verify(copy)) == {("unique_keys", "post_versions", ch, msg)}


def test_purged_deletion_is_pinpointed(copy: Path) -> None:
    rows = _sql(copy, "SELECT channel_id, message_id FROM posts WHERE deleted_at IS NOT NULL LIMIT 1")
    assert rows, "the collected world has a deletion"
    ch, msg = rows[0]
    _sql(copy, "DELETE FROM posts WHERE channel_id = ? AND message_id = ?", [ch, msg])
    report = _verify(copy)
    _only_at(report, ch, {msg, None})
    assert ("deletions", "posts", ch, msg) in _errors_at(report)     # its observations outlive it
    assert ("deletions", "posts", ch, None) in _errors_at(report)    # fewer posts than the passes added
    assert [(g.first_id, g.explanation) for g in report.gaps if g.channel_id == ch and g.first_id <= msg
            <= g.last_id] == [(msg, "purged")]


def test_purge_that_also_removed_the_observations_is_still_found(copy: Path) -> None:
    ch, msg = _sql(copy, "SELECT channel_id, message_id FROM posts WHERE deleted_at IS NOT NULL LIMIT 1")[0]
    for table in ("post_observations", "post_versions", "posts"):
        _sql(copy, f"DELETE FROM {table} WHERE channel_id = ? AND message_id = ?", [ch, msg])
    report = _verify(copy)
    assert _errors_at(report) == {("deletions", "posts", ch, None)}
    assert "purged" in report.errors[0].message


def test_dropped_version_is_pinpointed(copy: Path) -> None:
    rows = _sql(copy, "SELECT v.channel_id, v.message_id FROM post_versions v JOIN posts p USING (channel_id, "
                      "message_id) WHERE p.edited_at > p.first_seen_at + to_seconds(?) LIMIT 1",
                [int(CLOCK_SKEW.total_seconds())])
    assert rows, "the collected world has an edit seen by a refresh"
    ch, msg = rows[0]
    _sql(copy, "DELETE FROM post_versions WHERE channel_id = ? AND message_id = ?", [ch, msg])
    report = _verify(copy)
    assert _errors_at(report) == {("versions", "post_versions", ch, msg)}
    assert "dropped version" in report.errors[0].message


def test_non_monotonic_observation_is_pinpointed(copy: Path) -> None:
    ch, msg, last = _latest_of_a_watched_post(copy)
    _sql(copy, "UPDATE post_observations SET views = views // 2 WHERE channel_id = ? AND message_id = ? "
               "AND observed_at = ?", [ch, msg, last])
    report = _verify(copy)
    assert _errors_at(report) == {("observations", "post_observations", ch, msg)}
    assert "views went down" in report.errors[0].message


def test_small_counter_drop_is_a_warning_only(copy: Path) -> None:
    ch, msg, last = _latest_of_a_watched_post(copy)
    _sql(copy, "UPDATE post_observations o SET views = (SELECT min(views) - 3 FROM post_observations i WHERE "
               "i.channel_id = o.channel_id AND i.message_id = o.message_id) WHERE channel_id = ? AND message_id = ? "
               "AND observed_at = ?", [ch, msg, last])
    report = _verify(copy)
    assert report.clean
    assert [(f.check, f.channel_id, f.message_id) for f in report.warnings] == [("observations", ch, msg)]


def test_observation_before_the_post_existed_is_an_error(copy: Path) -> None:
    ch, msg = _sql(copy, "SELECT channel_id, message_id FROM post_observations ORDER BY 1, 2 LIMIT 1")[0]
    _sql(copy, "UPDATE post_observations SET observed_at = observed_at - INTERVAL 400 DAY WHERE channel_id = ? "
               "AND message_id = ?", [ch, msg])
    assert _errors_at(_verify(copy)) == {("observations", "post_observations", ch, msg)}


def test_cursor_beyond_archived_ids_is_pinpointed(copy: Path) -> None:
    ch, cursor = _sql(copy, "SELECT channel_id, max_message_id FROM channel_cursors ORDER BY 1 LIMIT 1")[0]
    _sql(copy, "UPDATE channel_cursors SET max_message_id = max_message_id + 50 WHERE channel_id = ?", [ch])
    report = _verify(copy)
    assert _errors_at(report) == {("cursors", "channel_cursors", ch, cursor + 50)}
    assert f"cursor {cursor + 50}" in report.errors[0].message


def test_cursor_a_few_ids_beyond_is_a_warning(copy: Path) -> None:
    ch = _sql(copy, "SELECT channel_id FROM channel_cursors ORDER BY 1 LIMIT 1")[0][0]
    _sql(copy, "UPDATE channel_cursors SET max_message_id = max_message_id + ? WHERE channel_id = ?",
         [CURSOR_SLACK, ch])
    report = _verify(copy)
    assert report.clean and [(f.check, f.channel_id) for f in report.warnings] == [("cursors", ch)]
    assert {g.explanation for g in report.gaps if g.channel_id == ch and g.size == CURSOR_SLACK} \
        == {"above_newest_post"}


def test_cursor_set_back_is_an_error(copy: Path) -> None:
    ch, newest = _sql(copy, "SELECT channel_id, max(message_id) FROM posts GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    _sql(copy, "UPDATE channel_cursors SET max_message_id = max_message_id - 10 WHERE channel_id = ?", [ch])
    assert _errors_at(_verify(copy)) == {("cursors", "channel_cursors", ch, newest)}


def test_history_cleared_explains_low_gaps(copy: Path) -> None:
    ch, first = _sql(copy, "SELECT channel_id, min(message_id) FROM posts GROUP BY 1 HAVING min(message_id) > 1 "
                           "ORDER BY 1 LIMIT 1")[0]
    _sql(copy, "UPDATE channels SET available_min_id = ? WHERE channel_id = ?", [first - 1, ch])
    report = _verify(copy)
    assert report.clean
    assert (ch, 1, first - 1, "history_cleared") in {(g.channel_id, g.first_id, g.last_id, g.explanation)
                                                     for g in report.gaps}


def test_channel_filter_keeps_that_channel_only(copy: Path) -> None:
    ch, other = (r[0] for r in _sql(copy, "SELECT DISTINCT channel_id FROM posts ORDER BY 1 LIMIT 2"))
    _sql(copy, "UPDATE channel_cursors SET max_message_id = max_message_id + 100 WHERE channel_id = ?", [other])
    report = _verify(copy, channels=[ch], digests=True)
    assert report.clean and [d.channel_id for d in report.digests] == [ch] and report.archive_digest is None
    assert {g.channel_id for g in report.gaps} <= {ch}


# -- digests ------------------------------------------------------------------------------------------------
def _digests(path: Path) -> tuple[dict[int, str], str]:
    with Archive(path, read_only=True) as archive:
        digests, whole = channel_digests(archive.con)
    return {d.channel_id: d.sha256 for d in digests}, whole


@pytest.fixture(scope="module")
def original(collected: Collected) -> tuple[dict[int, str], str]:
    """The digests of the collected archive, computed once."""
    return _digests(collected.path)


def test_two_copies_have_equal_digests(original: tuple[dict[int, str], str], copy: Path) -> None:
    assert _digests(copy) == original


@pytest.mark.parametrize("change", [
    "UPDATE posts SET text = text || '.' WHERE channel_id = $ch AND message_id = $msg",
    "UPDATE posts SET fwd_from_name = 'x' WHERE channel_id = $ch AND message_id = $msg",
    "UPDATE post_observations SET views = views + 1 WHERE channel_id = $ch AND message_id = $msg",
    "UPDATE posts SET deleted_at = TIMESTAMPTZ '2026-01-01 00:00:00+00' WHERE channel_id = $ch AND message_id = $msg",
])
def test_one_field_changes_exactly_that_channels_digest(original: tuple[dict[int, str], str], copy: Path,
                                                        change: str) -> None:
    ch, msg = _sql(copy, "SELECT channel_id, message_id FROM posts ORDER BY channel_id DESC, message_id LIMIT 1")[0]
    con = duckdb.connect(str(copy))
    con.execute(change, {"ch": ch, "msg": msg})
    con.close()
    before, whole_before = original
    after, whole_after = _digests(copy)
    assert {c for c in before if before[c] != after[c]} == {ch}
    assert whole_after != whole_before


def test_the_documented_sql_recomputes_the_digests(collected: Collected,
                                                   original: tuple[dict[int, str], str]) -> None:
    """docs/verify.md gives plain SQL for the digests; running it gives what verify reports."""
    doc = (ROOT / "docs" / "verify.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", doc, re.S)
    script = next(b for b in blocks if "channel_digest" in b)
    con = duckdb.connect(str(collected.path), read_only=True)
    try:
        *setup, query = [s for s in script.split(";") if s.strip()]
        for statement in setup:
            con.execute(statement)
        documented = dict(con.execute(query).fetchall())
    finally:
        con.close()
    ours, whole = original
    assert {int(k): v for k, v in documented.items() if k != "archive"} == ours
    assert documented["archive"] == whole


# -- the command ---------------------------------------------------------------------------------------------
def test_cli_exits_1_and_names_the_rows(copy: Path, cli_env: Path) -> None:
    ch, msg = _sql(copy, "SELECT channel_id, message_id FROM post_versions LIMIT 1")[0]
    _sql(copy, "DELETE FROM post_versions WHERE channel_id = ? AND message_id = ?", [ch, msg])
    result = runner.invoke(app, ["verify", "--archive", str(copy)])
    assert result.exit_code == Exit.PARTIAL, result.output
    assert f"channel {ch} message {msg}" in result.stdout and "error" in result.stdout
    data = json.loads(runner.invoke(app, ["verify", "--archive", str(copy), "--json", "--channel", str(ch)]).stdout)
    assert data["clean"] is False and [d["channel_id"] for d in data["digests"]] == [ch]
    assert {(f["table"], f["channel_id"], f["message_id"]) for f in data["findings"] if f["severity"] == "error"} \
        == {("post_versions", ch, msg)}


def test_cli_missing_archive_is_one_line(cli_env: Path) -> None:
    result = runner.invoke(app, ["verify", "--archive", str(cli_env / "nope.duckdb")])
    assert result.exit_code == Exit.ARCHIVE
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tgspread: error: ")


def test_verify_does_not_change_the_file(copy: Path, cli_env: Path) -> None:
    before = copy.read_bytes()
    assert runner.invoke(app, ["verify", "--archive", str(copy)]).exit_code == 0
    assert copy.read_bytes() == before



def test_digests_read_in_runs_of_channels_equal_one_pass(collected: Collected, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14, item 4: the digest's ORDER BY over the whole archive ran out of the 256 MB cap at 1M posts; it
    now runs per range of channels. The digests are those of the single ordered query (`digest_sql`)."""
    import hashlib

    from collector._archive import verify as verify_module

    with Archive(collected.path, read_only=True) as archive:
        con = archive.con
        one: dict[int, Any] = {}
        for ch, _part, row_hash in con.execute(verify_module.digest_sql(con)).fetchall():
            one.setdefault(ch, hashlib.sha256()).update(row_hash.encode("ascii"))
        monkeypatch.setattr(verify_module, "DIGEST_RUN_ROWS", 50)      # many runs, a channel above 50 rows alone
        assert len(verify_module.digest_runs(con, run_rows=50)) > 3
        digests, _ = verify_module.channel_digests(con)
        assert {d.channel_id: d.sha256 for d in digests} == {ch: h.hexdigest() for ch, h in one.items()}
