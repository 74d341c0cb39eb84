"""analysis.channel_names / with_names, and analysis.notebook (the notebooks' shared setup)."""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import polars as pl
import pytest

import analysis
from analysis import notebook
from tests.helpers.simworld import Collected

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("CREATE TABLE channels (channel_id BIGINT, username VARCHAR, title VARCHAR)")
    c.execute("CREATE TABLE peers (channel_id BIGINT, username VARCHAR, title VARCHAR)")
    c.execute("INSERT INTO channels VALUES (1, 'one', 'One'), (2, NULL, 'Two\x1b]0;PWNED\x07'), (3, NULL, NULL)")
    # a forward header said something older about channel 1; channel 7 is known from headers only
    c.execute("INSERT INTO peers VALUES (1, 'old_one', 'Old'), (7, NULL, 'Seven\u2028')")
    return c


def test_channel_names_prefers_the_channels_own_record(con: duckdb.DuckDBPyConnection) -> None:
    assert analysis.channel_names(con) == {1: "@one", 2: "Two\ufffd]0;PWNED\ufffd", 3: "3", 7: "Seven\ufffd"}


def test_with_names_names_every_channel_id_column(con: duckdb.DuckDBPyConnection) -> None:
    edges = pl.DataFrame({"source_channel_id": [7, 99], "target_channel_id": [1, 2], "forwards": [3, 1]})
    out = analysis.with_names(edges, con)
    assert out.columns == ["source_channel_id", "source_channel", "target_channel_id", "target_channel", "forwards"]
    assert out["source_channel"].to_list() == ["Seven\ufffd", "99"]
    assert out["target_channel"].to_list() == ["@one", "Two\ufffd]0;PWNED\ufffd"]
    detailed = analysis.with_names(edges, con, "target_channel_id", details=True)
    assert detailed.columns == ["source_channel_id", "target_channel_id", "target_channel", "target_username",
                                "target_title", "forwards"]
    assert detailed.row(0, named=True)["target_username"] == "one"
    assert detailed.row(1, named=True)["target_username"] is None


def test_with_names_refuses_an_unknown_column_and_keeps_a_frame_without_ids(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        analysis.with_names(pl.DataFrame({"channel_id": [1]}), con, "nope")
    plain = pl.DataFrame({"domain": ["a.org"]})
    assert analysis.with_names(plain, con).equals(plain)
    empty = pl.DataFrame({"channel_id": []}, schema={"channel_id": pl.Int64})
    assert analysis.with_names(empty, con).columns == ["channel_id", "channel"]


def test_names_on_a_collected_archive(collected: Collected) -> None:
    with analysis.connect(collected.path) as c:
        names = analysis.channel_names(c)
        sources = analysis.with_names(analysis.sources(c), c)
        usernames = {u for (u,) in c.execute("SELECT username FROM channels WHERE username IS NOT NULL").fetchall()}
    assert sources.height > 0 and sources["channel"].null_count() == 0
    assert all(names.get(cid, str(cid)) == label for cid, label in sources.select("channel_id", "channel").rows())
    assert usernames and {f"@{u}" for u in usernames} <= set(names.values())


# -- analysis.notebook ---------------------------------------------------------------------------------


def test_archive_path_from_argument_environment_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TGSPREAD_ARCHIVE", raising=False)
    assert notebook.archive_path("/abs/a.duckdb") == Path("/abs/a.duckdb")
    demo = ROOT / "demo-data" / ("lake" if (ROOT / "demo-data" / "lake").is_dir() else "demo.duckdb")
    assert notebook.archive_path(start=ROOT / "notebooks") == demo
    monkeypatch.setenv("TGSPREAD_ARCHIVE", str(tmp_path / "env.duckdb"))
    assert notebook.archive_path() == tmp_path / "env.duckdb"
    (tmp_path / "here.duckdb").touch()
    # relative: the repository root first, then the working directory (where it exists)
    assert notebook.archive_path("here.duckdb", start=tmp_path) == tmp_path / "here.duckdb"
    assert notebook.archive_path("pyproject.toml", start=tmp_path) == ROOT / "pyproject.toml"


def test_archive_path_prefers_the_configured_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No argument and no TGSPREAD_ARCHIVE: the [lake] path of tgspread.toml once it has been published."""
    monkeypatch.delenv("TGSPREAD_ARCHIVE", raising=False)
    (tmp_path / "tgspread.toml").write_text('[lake]\npath = "shared/lake"\n', encoding="utf-8")
    assert notebook.configured_lake(tmp_path) is None                 # not published yet: not a lake
    (tmp_path / "shared" / "lake").mkdir(parents=True)
    assert notebook.configured_lake(tmp_path) == tmp_path / "shared" / "lake"
    assert notebook.archive_path(start=tmp_path) == tmp_path / "shared" / "lake"
    assert notebook.archive_path(tmp_path / "x.duckdb", start=tmp_path) == tmp_path / "x.duckdb"   # a name wins
    (tmp_path / "tgspread.toml").write_text('\ufeff[lake]\npath = "shared/lake"\n', encoding="utf-8")
    assert notebook.configured_lake(tmp_path) == tmp_path / "shared" / "lake"   # a BOM, as the collector reads it
    monkeypatch.setenv("TGSPREAD_ARCHIVE", str(tmp_path / "env.duckdb"))
    assert notebook.archive_path(start=tmp_path) == tmp_path / "env.duckdb"


def test_open_notebook_on_a_lake(collected: Collected, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from collector import Archive
    from collector._archive.lake import publish

    shutil.copy2(collected.path, tmp_path / "a.duckdb")
    with Archive(tmp_path / "a.duckdb") as opened:
        publish(opened, tmp_path / "lake")
    nb = notebook.open_notebook(tmp_path / "lake", style=False)
    try:
        assert f"lake: {tmp_path / 'lake'}" in capsys.readouterr().out
        with analysis.connect(collected.path) as con:
            assert nb.names == analysis.channel_names(con)
        writer = duckdb.connect(str(tmp_path / "a.duckdb"))     # nothing of the archive is held
        writer.close()
    finally:
        nb.close()


def test_open_notebook(collected: Collected, capsys: pytest.CaptureFixture[str]) -> None:
    nb = notebook.open_notebook(collected.path, snapshot=True, style=False)
    try:
        assert f"archive: {collected.path}" in capsys.readouterr().out
        assert nb.names == analysis.channel_names(nb.con)
        cid = next(iter(nb.names))
        assert nb.name(cid) == nb.names[cid] and nb.name(-5) == "-5"
        frame = pl.DataFrame({"channel_id": [cid, -5]}).select(nb.named("channel_id"))
        assert frame["channel_id"].to_list() == [nb.names[cid], "-5"]
        assert nb.con.execute("SELECT count(*) FROM posts").fetchall()[0][0] > 0
    finally:
        nb.close()


def test_open_notebook_says_what_to_do_without_an_archive(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make demo"):
        notebook.open_notebook(tmp_path / "missing.duckdb", quiet=True)


def test_the_notebook_helper_imports_nothing_from_collector() -> None:
    for name in ("notebook.py", "_names.py"):
        tree = ast.parse((ROOT / "analysis" / name).read_text(encoding="utf-8"))
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.split(".")[0] in {"collector", "sys"}], (name, imported)
