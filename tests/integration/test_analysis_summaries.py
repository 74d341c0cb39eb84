"""Stored analysis results (analysis.summaries): the same rows as computing from posts, and used only while current.

- For every parameter combination a stored result answers, the function returns exactly (values and
  order) what it computes from ``posts`` with ``use_summary=False``; the ground-truth tests of
  test_analysis_core check the computed path against the simulated world.
- The stored table is really what is read (a planted change shows through), and stops being read the
  moment any writer touches ``posts``: every posts writer moves the generation in its own transaction.
- The commands that write posts store the results; ``tgspread summarize`` shows and refreshes them; a
  failure to store only warns, and nothing collected is lost.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

import analysis
from analysis.stored import posts_generation, summary_status
from analysis.summaries import SUMMARIZED
from collector import Archive
from collector._simulated import generate_world
from collector.archive import upsert as store
from collector.archive.rows import POSTS_SCHEMA
from collector.archive.summaries import refresh_summaries
from collector.cli.app import app
from collector.cli.common import Exit
from collector.sources.export_import import import_export
from collector.telegram.client import SIMULATED_ENV
from tests.helpers.simworld import Collected, run_pass

FUNCTIONS: dict[str, Callable[..., pl.DataFrame]] = {
    "cascades": analysis.cascades, "forward_network": analysis.forward_network, "url_spread": analysis.url_spread,
}
EXPORT = Path(__file__).parents[1] / "fixtures" / "export" / "channel.json"


@pytest.fixture(scope="module")
def stored_archive(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("summaries") / "archive.duckdb"
    shutil.copy2(collected.path, path)
    built = refresh_summaries(path)
    assert [b.name for b in built] == list(SUMMARIZED)
    return path


@pytest.fixture
def writable(stored_archive: Path, tmp_path: Path) -> Path:
    path = tmp_path / "archive.duckdb"
    shutil.copy2(stored_archive, path)
    return path


def _cases(con: duckdb.DuckDBPyConnection) -> list[tuple[str, dict[str, Any]]]:
    """Parameter combinations the stored results answer, with values taken from the archive itself."""
    casc = analysis.cascades(con, use_summary=False)
    archived = casc.filter(pl.col("origin_archived"))["origin_channel_id"].unique().sort().to_list()
    outside = casc.filter(~pl.col("origin_archived"))["origin_channel_id"].unique().sort().to_list()
    assert archived and outside, "the fixture world forwards from archived and unarchived channels"
    mid = casc["origin_posted_at"].sort()[casc.height // 2]
    edges = analysis.forward_network(con, use_summary=False)
    sources = edges["source_channel_id"].unique().sort().to_list()[:2]
    targets = edges["target_channel_id"].unique().sort().to_list()[-2:]
    return [
        ("cascades", {}),
        ("cascades", {"min_forwards": 2}),
        ("cascades", {"min_forwards": 4}),
        ("cascades", {"channels": [archived[0], outside[0]]}),
        ("cascades", {"since": mid}),
        ("cascades", {"until": mid}),
        ("cascades", {"since": mid - timedelta(days=2), "until": mid + timedelta(days=1), "min_forwards": 2,
                      "channels": archived}),
        ("forward_network", {}),
        ("forward_network", {"include_self": True}),
        ("forward_network", {"sources": sources}),
        ("forward_network", {"targets": targets}),
        ("forward_network", {"sources": sources, "targets": targets, "include_self": True}),
        ("url_spread", {}),
    ]


def test_stored_results_equal_the_computed_ones(stored_archive: Path) -> None:
    with analysis.connect(stored_archive) as con:
        assert {s.name: s.current for s in summary_status(con)} == dict.fromkeys(SUMMARIZED, True)
        cases = _cases(con)
        nonempty = 0
        for name, kwargs in cases:
            got = FUNCTIONS[name](con, **kwargs)
            want = FUNCTIONS[name](con, use_summary=False, **kwargs)
            assert got.schema == want.schema, (name, kwargs)
            assert got.equals(want), (name, kwargs)      # values and order
            nonempty += got.height > 0
        assert nonempty == len(cases)


def test_parameters_a_stored_result_cannot_answer_are_computed(writable: Path) -> None:
    with duckdb.connect(str(writable)) as con:      # plant a visible change in every stored table
        for name in SUMMARIZED:
            con.execute(f"DELETE FROM summary_{name} WHERE rowid > 0")
    since = datetime(2000, 1, 1, tzinfo=UTC)
    with analysis.connect(writable) as con:
        assert analysis.cascades(con).height == 1                                  # the stored table
        assert analysis.cascades(con, include_self=False).height > 1               # computed
        assert analysis.forward_network(con).height == 1
        assert analysis.forward_network(con, since=since).height > 1
        assert analysis.url_spread(con).height == 1
        assert analysis.url_spread(con, include_forwards=False).height > 1
        assert analysis.url_spread(con, since=since).height > 1
        assert analysis.cascades(con, use_summary=False).height > 1


def _post_row(archive: Archive) -> dict[str, Any]:
    cols = ", ".join(POSTS_SCHEMA.names)
    cur = archive.con.execute(f"SELECT {cols} FROM posts WHERE deleted_at IS NULL ORDER BY channel_id, message_id "
                              "LIMIT 1")
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchall()[0], strict=True))


def _writers(collected: Collected) -> dict[str, Callable[[Archive], None]]:
    now = datetime(2030, 1, 1, tzinfo=UTC)

    def edit(archive: Archive) -> None:
        row = _post_row(archive)
        archive.write_posts([{**row, "views": (row["views"] or 0) + 1}], now)

    def delete(archive: Archive) -> None:
        row = _post_row(archive)
        archive.write_posts([], now, deleted=[(row["channel_id"], row["message_id"])])

    def web_row(archive: Archive) -> None:
        store.upsert_posts(archive, [{"channel_id": 42, "message_id": 1, "posted_at": now, "text": "a web post",
                                      "source": "web", "first_seen_at": now, "last_seen_at": now}], now=now)

    def username_origin(archive: Archive) -> None:
        with archive.transaction():
            store.upsert_posts(archive, [{"channel_id": 42, "message_id": 2, "posted_at": now, "source": "web",
                                          "fwd_username": "origin_here", "fwd_message_id": 7,
                                          "first_seen_at": now, "last_seen_at": now}], now=now)
        archive.con.execute("INSERT INTO channel_usernames (username, channel_id, first_seen_at, last_seen_at) "
                            "VALUES ('origin_here', 4242, ?, ?)", [now, now])
        before = posts_generation(archive.con)
        with archive.transaction():
            assert store.resolve_forward_usernames(archive) == 1
        assert posts_generation(archive.con) == (before or 0) + 1

    def export(archive: Archive) -> None:
        import_export(archive, EXPORT, now=now)

    def collect_pass(archive: Archive) -> None:
        archive.close()
        world = generate_world(11, channels=8, days=10.0, posts_per_day=30.0)   # the session world's twin
        world.advance(collected.pass_times[-1] - collected.pass_times[0] + timedelta(hours=1))
        run_pass(world, archive.path)

    return {"edit": edit, "delete": delete, "web_row": web_row, "username_origin": username_origin,
            "export": export, "collect_pass": collect_pass}


@pytest.mark.parametrize("writer", ["edit", "delete", "web_row", "username_origin", "export", "collect_pass"])
def test_every_posts_writer_makes_the_stored_results_stale(writer: str, writable: Path, collected: Collected) -> None:
    with duckdb.connect(str(writable)) as con:
        con.execute("DELETE FROM summary_cascades WHERE rowid > 0")     # planted: visible while current
    with Archive(writable) as archive:
        before = posts_generation(archive.con)
        _writers(collected)[writer](archive)
    with analysis.connect(writable) as con:
        assert posts_generation(con) is not None and before is not None and posts_generation(con) > before
        assert not any(s.current for s in summary_status(con))
        assert analysis.cascades(con).equals(analysis.cascades(con, use_summary=False))
        assert analysis.cascades(con).height > 1                         # not the planted table
    built = refresh_summaries(writable)
    assert [b.name for b in built] == list(SUMMARIZED)                 # all stale, all stored again
    assert refresh_summaries(writable) == []                           # and now current
    with analysis.connect(writable) as con:
        assert analysis.cascades(con).equals(analysis.cascades(con, use_summary=False))


def test_a_write_of_nothing_keeps_them_current(writable: Path) -> None:
    with Archive(writable) as archive:
        before = posts_generation(archive.con)
        archive.write_posts([], datetime(2030, 1, 1, tzinfo=UTC))
        assert posts_generation(archive.con) == before
        assert all(s.current for s in summary_status(archive.con))


def test_a_new_definition_makes_them_stale(writable: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.stored as summaries

    with duckdb.connect(str(writable)) as con:
        con.execute("DELETE FROM summary_cascades WHERE rowid > 0")
    monkeypatch.setattr(summaries, "DEFINITION", summaries.DEFINITION + 1)
    with analysis.connect(writable) as con:
        assert not any(s.current for s in summary_status(con))
        assert analysis.cascades(con).height > 1                         # computed, not the planted table


def test_archives_without_the_counter_compute(collected: Collected, tmp_path: Path) -> None:
    """An archive made before migration 0007, opened read-only (so not migrated): nothing stored, same rows."""
    path = tmp_path / "old.duckdb"
    shutil.copy2(collected.path, path)
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE analysis_summaries")
        con.execute("DROP TABLE archive_generation")
    with analysis.connect(path) as con:
        assert summary_status(con) == []
        assert posts_generation(con) is None
        assert analysis.cascades(con).height > 0
    with duckdb.connect(str(path)) as con:
        assert refresh_summaries(con) == []


def test_verify_finds_a_stored_result_that_posts_changed_by_hand_left_wrong(writable: Path) -> None:
    from collector.archive.verify import verify_archive

    with duckdb.connect(str(writable), read_only=True) as con:
        assert [f for f in verify_archive(con, digests=False).findings if f.check == "summaries"] == []
    with duckdb.connect(str(writable)) as con:      # SQL by hand: the generation does not move
        con.execute("UPDATE posts SET views = views + 1000 WHERE fwd_channel_id IS NOT NULL")
    with duckdb.connect(str(writable), read_only=True) as con:
        found = [f for f in verify_archive(con, digests=False).findings if f.check == "summaries"]
    # the forwards' views are in cascades (forward_views) and the network (views), not in url_spread
    assert [(f.severity, f.table) for f in found] == [("error", "summary_cascades"),
                                                      ("error", "summary_forward_network")]
    assert "tgspread summarize --force" in found[0].message
    assert refresh_summaries(writable, force=True)
    with duckdb.connect(str(writable), read_only=True) as con:
        assert [f for f in verify_archive(con, digests=False).findings if f.check == "summaries"] == []


def test_stored_results_stay_out_of_default_exports() -> None:
    from collector.archive.export import DERIVED

    assert {f"summary_{name}" for name in SUMMARIZED} | {"analysis_summaries", "archive_generation"} == DERIVED


# -- the commands ----------------------------------------------------------------------------------------------

runner = CliRunner()


def _collect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, channels: int = 2) -> Any:
    """``tgspread collect *args`` on a small simulated world, in ``tmp_path``; exit 0 or 1 (partial)."""
    monkeypatch.setenv(SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", str(channels))
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "2")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["collect", *args])
    assert result.exit_code in (Exit.OK, Exit.PARTIAL), result.output
    return result


def test_collect_stores_them_and_summarize_shows_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.duckdb"
    result = _collect(tmp_path, monkeypatch, "--archive", str(path), channels=3)
    assert "stored analysis results: cascades" in result.stderr
    with analysis.connect(path) as con:
        assert {s.name for s in summary_status(con) if s.current} == set(SUMMARIZED)
    shown = runner.invoke(app, ["summarize", "--archive", str(path)])
    assert shown.exit_code == Exit.OK, shown.output
    for name in SUMMARIZED:
        assert name in shown.stdout
    assert "current" in shown.stdout and "stored now" not in shown.stdout
    forced = runner.invoke(app, ["summarize", "--archive", str(path), "--force"])
    assert forced.exit_code == Exit.OK and forced.stdout.count("stored now") == len(SUMMARIZED), forced.output


def test_the_config_can_turn_storing_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tgspread.toml").write_text('archive = "a.duckdb"\n[analysis]\nstore_results = false\n')
    result = _collect(tmp_path, monkeypatch, "--config", "tgspread.toml")
    assert "stored analysis results" not in result.stderr
    with analysis.connect(tmp_path / "a.duckdb") as con:
        assert summary_status(con) == []
        assert analysis.cascades(con).height > 0                          # computed


def test_a_failed_store_warns_and_keeps_the_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.summaries as summaries

    def broken(_con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")

    monkeypatch.setitem(summaries.SUMMARIZED, "cascades", broken)
    path = tmp_path / "a.duckdb"
    result = _collect(tmp_path, monkeypatch, "--archive", str(path))
    assert "warning: analysis results were not stored (OutOfMemoryException: Out of Memory Error" in result.stderr
    assert "`tgspread summarize` stores them" in result.stderr and "Traceback" not in result.output
    with analysis.connect(path) as con:
        assert con.execute("SELECT count(*) FROM posts").fetchall()[0][0] > 0
        assert not any(s.current for s in summary_status(con))
        assert analysis.cascades(con).height > 0                          # computed


def test_summarize_without_an_archive_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["summarize", "--archive", str(tmp_path / "none.duckdb")])
    assert result.exit_code == Exit.ARCHIVE
    assert "no such archive; run 'tgspread collect' or 'tgspread demo' first" in result.stderr
    assert not (tmp_path / "none.duckdb").exists()
