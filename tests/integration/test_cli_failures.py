"""How the CLI ends when the machine, not the input, gets in the way (issue 17): Ctrl-C inside DuckDB
(item 23), an operating-system error that is not archive damage (item 25), the hidden folder a killed export
leaves (item 28). Real DuckDB, real signals, a real file-size limit; nothing is mocked but the moment of
the Ctrl-C in the import test.
"""

from __future__ import annotations

import _thread
import errno
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from collector import Archive
from collector._cli.app import app
from collector._cli.common import Exit, errors

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "tests/fixtures/export/channel.json"
ENDLESS = "SELECT count(*) FROM range(100000000000) a, range(10) b"   # never ends on its own


def _exit_of(body: object) -> int:
    with pytest.raises(typer.Exit) as caught, errors():
        body()   # type: ignore[operator]
    return caught.value.exit_code


def test_ctrl_c_inside_a_duckdb_query_is_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    """SIGINT during a query reaches Python as RuntimeError("Query interrupted"), an interrupt as DuckDB's
    InterruptException: both are Ctrl-C (130), not "a bug in tgspread" (70)."""
    con = duckdb.connect()
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    assert _exit_of(lambda: con.execute(ENDLESS).fetchall()) == Exit.INTERRUPTED
    timer = threading.Timer(0.5, con.interrupt)
    timer.start()
    assert _exit_of(lambda: con.execute(ENDLESS).fetchall()) == Exit.INTERRUPTED
    err = capsys.readouterr().err
    assert "a bug in tgspread" not in err and err.count("tgspread: error: interrupted") == 2


def test_ctrl_c_at_the_end_of_an_import_says_the_import_succeeded(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import collector._cli.publish as publishing

    def interrupted(archive: object, lake: object, *, collector: str) -> None:    # Ctrl-C while publishing
        con = duckdb.connect()
        threading.Timer(0.3, con.interrupt).start()       # what DuckDB does on Ctrl-C
        con.execute(ENDLESS).fetchall()

    monkeypatch.setattr(publishing, "publish", interrupted)
    archive = tmp_path / "a.duckdb"
    config = tmp_path / "tgspread.toml"
    config.write_text(f'archive = "{archive}"\n\n[lake]\npath = "{tmp_path / "lake"}"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(EXPORT), "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == Exit.INTERRUPTED, result.stderr
    assert "import of" in result.stdout                    # the table of what was imported
    assert "was committed (it succeeded" in result.stderr and "bug" not in result.stderr
    with Archive(archive, read_only=True) as opened:
        assert opened.con.execute("SELECT count(*) FROM posts").fetchone()[0] > 0


def _limited(megabytes: float) -> None:
    limit = int(megabytes * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_file_size_limit_is_not_called_archive_damage(tmp_path: Path) -> None:
    """``ulimit -f`` (the same error as a full file system for DuckDB): the message names the cause, says the
    archive is fine, and --debug shows DuckDB's own message."""
    archive = tmp_path / "a.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(EXPORT), "--archive", str(archive)]).exit_code == 0
    assert runner.invoke(app, ["export", "--archive", str(archive), "--out", str(tmp_path / "first")]).exit_code == 0
    outputs = []
    for debug in ([], ["--debug"]):
        proc = subprocess.run([sys.executable, "-m", "collector", *debug, "export", "--archive", str(archive),
                               "--out", str(tmp_path / f"limited{len(debug)}")], capture_output=True, text=True,
                              preexec_fn=lambda: _limited(0.001), cwd=tmp_path, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        outputs.append(proc.stderr)
        assert proc.returncode == Exit.ARCHIVE, proc.stderr
        assert "File too large" in proc.stderr and "the archive itself is not damaged" in proc.stderr
        assert "truncated or damaged" not in proc.stderr and "restore it from a backup" not in proc.stderr
    assert "--debug shows" in outputs[0] and "--debug shows" not in outputs[1]
    assert len(outputs[1]) > len(outputs[0])                # the cause, in DuckDB's words


def test_a_killed_exports_hidden_folder_is_removed_by_the_next_export(tmp_path: Path) -> None:
    archive = tmp_path / "a.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(EXPORT), "--archive", str(archive)]).exit_code == 0
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / ".out.k1ll3d"          # what SIGKILL of an export leaves: its staging folder
    (stale / "posts").mkdir(parents=True)
    (stale / ".tgspread-export-pid").write_text(str(gone.pid))
    running = tmp_path / ".out.running"       # another export still writing: left alone
    running.mkdir()
    (running / ".tgspread-export-pid").write_text(str(os.getpid()))
    result = runner.invoke(app, ["export", "--archive", str(archive), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert not stale.exists() and running.exists()
    assert not (tmp_path / "out" / ".tgspread-export-pid").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == [".out.running"]


def test_export_into_a_symlink_to_an_empty_folder_writes_into_that_folder(tmp_path: Path) -> None:
    """Item 24: `export --out LINK`, LINK a symbolic link to an empty folder, exports into that folder and keeps
    the link (it ended with exit 70)."""
    archive = tmp_path / "a.duckdb"
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(EXPORT), "--archive", str(archive)]).exit_code == 0
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target", target_is_directory=True)
    result = runner.invoke(app, ["export", "--archive", str(archive), "--out", str(tmp_path / "link")])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target" / "manifest.json").is_file()
    assert (tmp_path / "target" / "posts").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.duckdb", "link", "target"]


_OS_ERRORS = [("No space left on device", errno.ENOSPC), ("File too large", errno.EFBIG),
              ("Disk quota exceeded", errno.EDQUOT), ("Read-only file system", errno.EROFS),
              ("Input/output error", errno.EIO), ("Too many open files", errno.EMFILE),
              ("File name too long", errno.ENAMETOOLONG)]


@pytest.mark.parametrize(("cause", "number"), _OS_ERRORS, ids=[c for c, _ in _OS_ERRORS])
def test_every_operating_system_error_is_named_and_not_called_damage(cause: str, number: int,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Item 25, each cause DuckDB or Python can meet while writing an export or a temporary file (a real one is
    made above with a file-size limit; a full disk cannot be made here): as DuckDB words it, and as an OSError."""
    message = f'IO Error: Could not write file "/data/out/.tmp/posts.parquet": {cause}'
    assert _exit_of(lambda: (_ for _ in ()).throw(duckdb.IOException(message))) == Exit.ARCHIVE
    assert _exit_of(lambda: (_ for _ in ()).throw(OSError(number, os.strerror(number), "/data/out/x.csv"))) \
        == Exit.ARCHIVE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert cause in line and "the archive itself is not damaged" in line, line
        assert "damaged;" not in line and "restore it from a backup" not in line, line
    assert lines[0].startswith("tgspread: error: /data/out/.tmp/posts.parquet: ")
    assert lines[1].startswith("tgspread: error: /data/out/x.csv: ")
    # an IOException no operating-system error explains is what damage looks like
    damaged = 'IO Error: Could not read from file "/data/a.duckdb": Unexpected end of file'
    assert _exit_of(lambda: (_ for _ in ()).throw(duckdb.IOException(damaged))) == Exit.ARCHIVE
    assert "truncated or damaged" in capsys.readouterr().err
    for gone in ("No such file or directory", "Not a directory"):       # DuckDB's words only: an OSError of
        text = f'IO Error: Cannot open file "/data/out/.tmp/posts.parquet": {gone}'   # these is a bug
        assert _exit_of(lambda: (_ for _ in ()).throw(duckdb.IOException(text))) == Exit.ARCHIVE  # noqa: B023
        err = capsys.readouterr().err
        assert gone in err and "not damaged" in err and "restore" not in err, err
