"""Stored analysis results are gone (issue 14, item 3; migration 0009): nothing is recomputed after a pass.

- Migration 0009 drops the tables of 0007 (and any ``summary_*`` table the code created) from an archive
  that has them; a new archive never has them.
- ``tgspread collect`` ends without storing anything (and still publishes when a lake is configured: the
  lake tests cover that); an old config with ``[analysis] store_results`` still loads.
- ``tgspread summarize`` is a hidden no-op for one release; ``use_summary=`` warns and changes nothing.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import analysis
from collector import Archive
from collector._archive.migrations import available
from collector._archive.verify import CHECKS
from collector._cli.app import app
from collector._cli.common import Exit
from collector._telegram.client import SIMULATED_ENV
from tests.helpers.simworld import Collected

OLD_TABLES = {"archive_generation", "analysis_summaries", "summary_cascades", "summary_forward_network",
              "summary_url_spread"}
runner = CliRunner()


def _tables(path: Path) -> set[str]:
    with Archive(path, read_only=True) as archive:
        return {r[0] for r in archive.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_migration_0009_drops_the_stored_results(collected: Collected, tmp_path: Path) -> None:
    path = tmp_path / "archive.duckdb"
    shutil.copy2(collected.path, path)
    migration_0007 = next(m for m in available() if m.version == 7).sql
    with Archive(path) as archive:    # back to an archive of 0008 with results stored, as the old code left it
        con = archive.con
        con.execute(migration_0007)
        con.execute("CREATE TABLE summary_cascades AS SELECT channel_id FROM posts LIMIT 3")
        con.execute("CREATE TABLE summary_url_spread AS SELECT 'x' AS url")
        con.execute("DELETE FROM schema_migrations WHERE version = 9")
        before = con.execute("SELECT count(*) FROM posts").fetchall()[0][0]
    assert {"archive_generation", "analysis_summaries", "summary_cascades", "summary_url_spread"} <= _tables(path)
    with Archive(path) as archive:    # applies 0009
        assert (9, "drop_summaries") in archive.applied_migrations()
        assert archive.con.execute("SELECT count(*) FROM posts").fetchall()[0][0] == before
    assert not OLD_TABLES & _tables(path)


def _collect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv(SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "2")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["collect", *args])
    assert result.exit_code in (Exit.OK, Exit.PARTIAL), result.output
    return result


def test_collect_stores_nothing_and_old_configs_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tgspread.toml").write_text('archive = "a.duckdb"\n[analysis]\nstore_results = true\n')
    result = _collect(tmp_path, monkeypatch, "--config", "tgspread.toml")
    assert "stored analysis results" not in result.stderr
    path = tmp_path / "a.duckdb"
    assert not OLD_TABLES & _tables(path)
    with analysis.connect(path) as con:
        assert con.execute("SELECT count(*) FROM posts").fetchall()[0][0] > 0
        assert analysis.cascades(con).height > 0          # computed from the posts


def test_summarize_is_a_hidden_no_op(tmp_path: Path) -> None:
    result = runner.invoke(app, ["summarize", "--archive", str(tmp_path / "none.duckdb"), "--force"])
    assert result.exit_code == Exit.OK, result.output
    assert "no longer needed" in result.stderr and result.stdout == ""
    assert not (tmp_path / "none.duckdb").exists()            # it opens nothing
    assert "summarize" not in runner.invoke(app, ["--help"]).stdout


@pytest.mark.parametrize("name", ["cascades", "forward_network", "url_spread"])
def test_use_summary_warns_and_changes_nothing(name: str, collected: Collected) -> None:
    fn = getattr(analysis, name)
    with analysis.connect(collected.path) as con:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            plain = fn(con)                                    # not passed: no warning
        for value in (True, False):
            with pytest.warns(DeprecationWarning, match=rf"analysis\.{name}\(use_summary=\.\.\.\) is deprecated"):
                assert fn(con, use_summary=value).equals(plain)


def test_verify_has_no_summaries_check() -> None:
    assert "summaries" not in CHECKS
