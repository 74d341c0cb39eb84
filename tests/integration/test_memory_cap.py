"""Export and verify stay inside a small memory cap on an archive of many channels (issue 14, item 4).

At 30M posts and 5,000 channels under the archive's 256 MB cap, ``tgspread export`` (one ``COPY ... PARTITION_BY
(channel_id)`` per table) and ``tgspread verify`` (whole-archive joins and windows) ran out of memory. Both now
work in runs of channels. Here the same happens at a small size: 800 channels, 196,000 posts, 392,000
observations under a 32 MB cap, with runs shrunk in proportion. The code before the change ran out of memory
here in both. And the output is the same as one query over the archive gives under a generous cap: the same
findings, gaps and digests, the same files with the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector import Archive
from collector._archive import export as export_module
from collector._archive import verify as verify_module
from collector._archive.export import ensure_pseudonym_key, export_archive
from collector._archive.verify import report_as_json, verify_archive

pytestmark = pytest.mark.slow

CHANNELS, PER_CHANNEL = 800, 250
SMALL_CAP = "32MB"


def _build(path: Path, channels: int) -> Path:
    """An archive of ``channels`` channels: posts with gaps (every 50th id), hidden forwarders and group authors
    (person fields), two observations per post, cursors 3 ids above the newest post; a counter that drops and an
    observation of a purged post (findings)."""
    with Archive(path) as archive:
        con = archive.con
        con.execute(f"""
            INSERT INTO channels (channel_id, username, title, megagroup, first_seen_at, last_seen_at)
            SELECT 1000 + i, 'ch' || i, 'Channel ' || i, i % 7 = 0, TIMESTAMPTZ '2025-01-01',
                   TIMESTAMPTZ '2025-06-01'
            FROM range({channels}) t(i)""")
        con.execute(f"""
            INSERT INTO posts (channel_id, message_id, posted_at, text, views, forwards, fwd_from_name, post_author,
                               first_seen_at, last_seen_at, source)
            SELECT 1000 + c, m, TIMESTAMPTZ '2025-01-01' + to_seconds(m * 600),
                   repeat(md5((c * 100000 + m)::VARCHAR), 4), m * 10, m % 5,
                   CASE WHEN m % 9 = 0 THEN 'Person ' || (m % 13) END,
                   CASE WHEN c % 7 = 0 THEN 'Author ' || (m % 3) END,
                   TIMESTAMPTZ '2025-01-01' + to_seconds(m * 600 + 60), TIMESTAMPTZ '2025-06-01', 'api'
            FROM range({channels}) t(c), range(1, {PER_CHANNEL} + 1) s(m) WHERE m % 50 <> 0""")
        con.execute("""
            INSERT INTO post_observations (channel_id, message_id, observed_at, views, forwards, replies, reactions)
            SELECT channel_id, message_id, posted_at + to_seconds(a), (views * f)::BIGINT, forwards, 0, 0
            FROM posts, (VALUES (4200, 0.3), (23400, 0.8)) v(a, f)""")
        con.execute("""
            INSERT INTO channel_cursors (channel_id, max_message_id, updated_at)
            SELECT channel_id, max(message_id) + 3, TIMESTAMPTZ '2025-06-01' FROM posts GROUP BY 1""")
        con.execute("UPDATE post_observations SET views = 0 WHERE message_id = 7 AND views > 30")
        con.execute("INSERT INTO post_observations (channel_id, message_id, observed_at, views) "
                    "VALUES (1003, 50, TIMESTAMPTZ '2025-02-01', 1)")
        con.execute("CHECKPOINT")
    ensure_pseudonym_key(path, wait=5)
    return path


@pytest.fixture(scope="module")
def many_channels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("memory") / "many.duckdb", CHANNELS)


def _small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs in proportion to the cap: 32 MB is an eighth of the archive's 256 MB."""
    monkeypatch.setattr(verify_module, "CHECK_RUN_ROWS", 20_000)
    monkeypatch.setattr(verify_module, "DIGEST_RUN_ROWS", 20_000)
    monkeypatch.setattr(export_module, "EXPORT_RUN_ROWS", 10_000)


def _one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole archive in one run: one query per check, one COPY per table (what was done before)."""
    monkeypatch.setattr(verify_module, "CHECK_RUN_ROWS", 10**12)
    monkeypatch.setattr(verify_module, "DIGEST_RUN_ROWS", 10**12)
    monkeypatch.setattr(export_module, "EXPORT_RUN_ROWS", 10**12)
    monkeypatch.setattr(export_module, "EXPORT_RUN_CHANNELS", 10**9)


def _verify(path: Path, cap: str) -> dict[str, Any]:
    with Archive(path, read_only=True, memory_limit=cap) as archive:
        archive.con.execute("SET threads = 2")      # the buffers per thread are part of the cap
        report = report_as_json(verify_archive(archive.con))
    report.pop("checked_at")
    return report


def test_verify_inside_a_small_cap_gives_what_one_query_gives(many_channels: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _small_runs(monkeypatch)
    small = _verify(many_channels, SMALL_CAP)
    _one_run(monkeypatch)
    whole = _verify(many_channels, "1GB")
    assert small == whole
    checks = {f["check"] for f in small["findings"] if f["severity"] != "info"}
    assert {"observations", "deletions", "gaps", "cursors"} <= checks
    assert len(small["digests"]) == CHANNELS and small["gap_ids_by_explanation"]


def _export(path: Path, out: Path, cap: str) -> dict[str, Any]:
    with Archive(path, read_only=True, memory_limit=cap) as archive:
        archive.con.execute("SET threads = 2")
        manifest = export_archive(archive, out)
    manifest.pop("exported_at")
    return manifest


def _files(out: Path) -> list[str]:
    """Every Parquet file under ``out``, relative to it, sorted."""
    return sorted(str(f.relative_to(out)) for f in out.rglob("*.parquet"))


def _same_rows(one: Path, other: Path) -> None:
    """Each file under ``one`` holds the rows of the file of the same name under ``other`` (as multisets: every
    row as often), and no file differs: per table folder, each side read once with its file names, then one
    EXCEPT ALL each way (a query per file and a comparison in Python took 11 s for 3,200 files)."""
    assert _files(one) == _files(other)
    con = duckdb.connect()
    for table in sorted({name.split("/", 1)[0] for name in _files(one)}):
        for side, root in (("a", one), ("b", other)):
            paths = [str(f) for f in sorted((root / table).rglob("*.parquet"))]
            con.execute(f"CREATE OR REPLACE TEMP TABLE {side} AS SELECT * EXCLUDE (filename), "
                        f"substr(filename, {len(str(root)) + 2}) AS name "
                        "FROM read_parquet(?, filename = true, hive_partitioning = false)", [paths])
        for a, b in (("a", "b"), ("b", "a")):
            extra = con.execute(f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})").fetchone()
            assert extra == (0,), f"{table}: {extra[0] if extra else '?'} rows of {one if a == 'a' else other} " \
                                  f"are not in {other if a == 'a' else one}"


def test_export_inside_a_small_cap_writes_what_one_copy_writes(many_channels: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _small_runs(monkeypatch)
    small = _export(many_channels, tmp_path / "small", SMALL_CAP)
    _one_run(monkeypatch)
    whole = _export(many_channels, tmp_path / "whole", "1GB")
    assert small == whole
    assert small["tables"]["posts"]["rows"] == CHANNELS * (PER_CHANNEL - PER_CHANNEL // 50)
    files = _files(tmp_path / "small")
    assert len([f for f in files if f.startswith("posts/")]) == CHANNELS
    assert all(f.endswith("/data_0.parquet") for f in files)
    _same_rows(tmp_path / "small", tmp_path / "whole")


def test_a_channel_larger_than_a_digest_run_is_digested_in_key_ranges(many_channels: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel with more rows than a run (the largest channels of a large archive) is read in ranges of message
    ids, part by part, and gives the digest that one query gives."""
    from collector._archive.verify import channel_digests

    some = [1000, 1003, 1799]      # 1003 holds the observation of a purged post
    with Archive(many_channels, read_only=True) as archive:
        monkeypatch.setattr(verify_module, "DIGEST_RUN_ROWS", 10**12)
        whole = channel_digests(archive.con, some)
        monkeypatch.setattr(verify_module, "DIGEST_RUN_ROWS", 100)     # every channel: 736 rows, in pieces
        monkeypatch.setattr(verify_module, "KEY_BUCKET_BITS", 4)       # of 16 message ids
        pieces = channel_digests(archive.con, some)
    assert pieces == whole and len(whole[0]) == 3


def test_a_channel_larger_than_a_check_run_is_checked_in_ranges_of_message_ids(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks split a channel with more rows than a run by message id (the windows are per post, the orphans
    per post): the same findings, gaps and digests, in the same order, as one query per check."""
    path = _build(tmp_path / "few.duckdb", 12)
    monkeypatch.setattr(verify_module, "CHECK_RUN_ROWS", 200)     # every channel: 736 rows, in pieces
    monkeypatch.setattr(verify_module, "KEY_BUCKET_BITS", 4)      # of 16 message ids
    with Archive(path, read_only=True) as archive:
        assert len(verify_module._ranges(archive.con)) > 12 * 3
    pieces = _verify(path, "256MB")
    _one_run(monkeypatch)
    assert pieces == _verify(path, "256MB")
    assert {f["check"] for f in pieces["findings"] if f["severity"] == "error"} >= {"observations", "deletions"}
