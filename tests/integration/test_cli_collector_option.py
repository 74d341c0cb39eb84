"""``--collector NAME`` on ``status``, ``channels`` and ``export`` (the archive of that collector of the config's
``[collectors]``, as for ``run`` and ``verify``), and usage errors that name the whole command in their hint.

The two archives are written by the collector from the simulated Telegram; nothing contacts Telegram.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from collector._cli.app import app
from collector._cli.common import Exit
from collector._simulated import generate_world
from tests.helpers.simworld import run_pass

runner = CliRunner()


def _channels(path: Path) -> set[int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {int(r[0]) for r in con.execute("SELECT DISTINCT channel_id FROM posts").fetchall()}


def _posts(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM posts").fetchall()[0][0])


@pytest.fixture
def two_collectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """``tgspread.toml`` with the main archive and ``[collectors.second]``'s, each collected from its own world."""
    for name in ("TGSPREAD_ARCHIVE", "TGSPREAD_SESSION", "TGSPREAD_SIMULATED", "TG_API_ID", "TG_API_HASH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    main, second = tmp_path / "archive.duckdb", tmp_path / "archive-second.duckdb"
    assert run_pass(generate_world(4, channels=2, days=2, posts_per_day=20, special_seeds=False), main).status == "ok"
    assert run_pass(generate_world(9, channels=3, days=2, posts_per_day=20, special_seeds=False), second).status == "ok"
    assert _channels(main) != _channels(second)
    (tmp_path / "tgspread.toml").write_text('archive = "archive.duckdb"\n'
                                            '[collectors.second]\narchive = "archive-second.duckdb"\n')
    return main, second


def test_status_collector_shows_that_collectors_archive(two_collectors: tuple[Path, Path]) -> None:
    main, second = two_collectors
    for args, path in ((["--collector", "second"], second), ([], main)):
        done = runner.invoke(app, ["status", "--json", *args])
        assert done.exit_code == Exit.OK, done.output
        data = json.loads(done.stdout)
        assert Path(data["archive"]).resolve() == path.resolve()
        assert {c["channel_id"] for c in data["channels"]} == _channels(path)
    shown = runner.invoke(app, ["status", "--collector", "second"], env={"COLUMNS": "200"})
    assert shown.exit_code == Exit.OK and "archive-second.duckdb" in shown.stdout
    unknown = runner.invoke(app, ["status", "--collector", "third"])
    assert unknown.exit_code == Exit.USAGE and "no collector 'third'" in unknown.stderr


def test_export_collector_exports_that_collectors_archive(two_collectors: tuple[Path, Path]) -> None:
    main, second = two_collectors
    done = runner.invoke(app, ["export", "--collector", "second", "--out", "out", "--tables", "posts"])
    assert done.exit_code == Exit.OK, done.output
    manifest = json.loads(Path("out/manifest.json").read_text())
    assert manifest["tables"]["posts"]["rows"] == _posts(second) != _posts(main)
    ids = runner.invoke(app, ["export", "--ids", "--collector", "second", "--out", "ids"])
    assert ids.exit_code == Exit.OK, ids.output
    with Path("ids/ids.csv").open(newline="") as f:
        assert {int(r["channel_id"]) for r in csv.DictReader(f)} == _channels(second)


def test_channels_collector_manages_that_collectors_set(two_collectors: tuple[Path, Path]) -> None:
    def listed(*args: str) -> set[str]:
        done = runner.invoke(app, ["channels", "list", "--json", *args])
        assert done.exit_code == Exit.OK, done.output
        return {c["username"] for c in json.loads(done.stdout)["channels"]}

    before = listed()
    added = runner.invoke(app, ["channels", "add", "--collector", "second", "@only_second"])
    assert added.exit_code == Exit.OK, added.output
    assert "only_second" in listed("--collector", "second") and listed() == before == set()
    removed = runner.invoke(app, ["channels", "remove", "@only_second", "--collector", "second"])
    assert removed.exit_code == Exit.OK, removed.output
    assert listed("--collector", "second") == set()
    assert runner.invoke(app, ["channels", "add", "@only_second"]).exit_code == Exit.OK     # without: the main one
    assert listed() == {"only_second"}


@pytest.mark.parametrize(("args", "hint"), [
    (["channels", "list", "--bogus"], "tgspread channels list --help"),
    (["channels", "list", "--wait"], "tgspread channels list --help"),          # an option missing its value
    (["channels", "add"], "tgspread channels add --help"),                      # a missing argument
    (["channels", "remove", "--nope", "x"], "tgspread channels remove --help"),
    (["channels", "frob"], "tgspread channels --help"),                         # no such subcommand
    (["status", "--bogus"], "tgspread status --help"),
    (["status", "--wait"], "tgspread status --help"),
    (["frob"], "tgspread --help"),
])
def test_a_usage_error_names_the_whole_command_in_its_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           args: list[str], hint: str) -> None:
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, args)
    assert done.exit_code == Exit.USAGE, done.output
    (line,) = [x for x in done.stderr.splitlines() if x.strip()]
    assert line.startswith("tgspread: error: ") and line.endswith(f"(see `{hint}`)"), line
