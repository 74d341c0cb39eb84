"""The staged runs of ``tgspread verify`` (issue 14, item 4): each run's rows, a private folder, removed after."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import duckdb
import pytest

from collector._archive.channel_runs import HIGHEST, LOWEST
from collector._archive.run_stage import Stage, flush_threshold, run_case


def _archive(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE posts AS SELECT (i % 7) - 3 AS channel_id, i AS message_id FROM range(1000) t(i)")
    con.execute("INSERT INTO posts VALUES (NULL, 5000)")
    return con


def test_run_case_finds_the_range_of_every_value() -> None:
    ranges = [(LOWEST, -2), (-1, -1), (0, 2), (5, HIGHEST)]
    con = duckdb.connect()
    values = [LOWEST, -3, -2, -1, 0, 1, 2, 3, 4, 5, HIGHEST, None]
    got = [r[0] for r in con.execute(f"SELECT {run_case('v', ranges)} FROM unnest($v) t(v)", {"v": values})
           .fetchall()]
    assert got == [0, 0, 0, 1, 2, 2, 2, None, None, 3, 3, None]


def test_each_run_reads_its_own_rows_in_a_private_folder_removed_after(tmp_path: Path) -> None:
    con = _archive(tmp_path / "a.duckdb")
    ranges = [(LOWEST, -1), (0, 1), (2, 2), (3, HIGHEST)]
    with Stage.open(con, ranges) as stage:
        folder = stage.folder
        assert folder.parent == tmp_path and stat.S_IMODE(folder.stat().st_mode) == 0o700
        stage.put("posts", "SELECT channel_id, message_id FROM posts", "channel_id")
        for i, (first, last) in enumerate(ranges):
            with stage.views(i):
                staged = con.execute("SELECT * FROM posts ORDER BY ALL").fetchall()
            whole = con.execute("SELECT * FROM posts WHERE channel_id BETWEEN ? AND ? ORDER BY ALL",
                                [first, last]).fetchall()
            assert staged == whole and (staged or i == 3)
    assert not folder.exists()
    assert con.execute("SELECT count(*) FROM posts").fetchone() == (1001,)     # the table again, views dropped


def test_the_folder_goes_on_error_too(tmp_path: Path) -> None:
    con = _archive(tmp_path / "a.duckdb")
    with pytest.raises(duckdb.Error), Stage.open(con, [(LOWEST, HIGHEST)]) as stage:
        folder = stage.folder
        stage.put("posts", "SELECT no_such_column FROM posts", "channel_id")
    assert not folder.exists() and not list(tmp_path.glob(".tgspread-runs-*"))


def test_flush_threshold_is_set_within_the_block_and_restored_after_even_on_error() -> None:
    con = duckdb.connect()
    setting = "SELECT current_setting('partitioned_write_flush_threshold')"
    before = con.execute(setting).fetchone()
    with flush_threshold(con, 2_048):
        assert con.execute(setting).fetchone() == (2_048,)
    assert con.execute(setting).fetchone() == before
    with pytest.raises(RuntimeError), flush_threshold(con, 4_096):
        raise RuntimeError("a COPY failed")
    assert con.execute(setting).fetchone() == before


def test_an_archive_whose_folder_cannot_be_written_stages_in_the_temporary_folder(tmp_path: Path) -> None:
    """Verifying reads only: a copy whose folder refuses new files (read-only media; here the folder is gone,
    which refuses them for root too) stages in the system's temporary folder instead."""
    gone = tmp_path / "gone"
    gone.mkdir()
    con = _archive(gone / "a.duckdb")
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    with Stage.open(con, [(LOWEST, 0), (1, HIGHEST)]) as stage:
        folder = stage.folder
        assert folder.parent == Path(tempfile.gettempdir()) and stat.S_IMODE(folder.stat().st_mode) == 0o700
        stage.put("posts", "SELECT channel_id, message_id FROM posts", "channel_id")
        with stage.views(1):
            assert con.execute("SELECT count(*) FROM posts").fetchone() == (428,)
    assert not folder.exists()
