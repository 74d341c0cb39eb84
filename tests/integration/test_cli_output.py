"""What the CLI prints, seen as a user sees it (issue 17): tables on a real terminal of 80, 100 and 120
columns (item 7), hostile names from Telegram or a file made safe before they reach the terminal (item 16),
counted nouns (item 11).

The terminal tests run the real ``tgspread`` (``python -m collector``) in a pseudo-terminal whose size is set
with ``TIOCSWINSZ``, so rich measures the width as it does for a user; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collector._cli.app import app
from collector._cli.safe_text import safe
from collector._cli.tables import Column, fitted_table
from collector._simulated import generate_world
from tests.helpers.simworld import run_pass
from tests.helpers.terminal import in_terminal

ROOT = Path(__file__).resolve().parents[2]
EVIL = "Chan\x1b]0;PWNED\x07\x1b[2J[red]x[/]\u202etxt.exe"




@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A small simulated world, collected: (archive, the channel names as status shows them)."""
    folder = tmp_path_factory.mktemp("cli_output")
    path = folder / "archive.duckdb"
    world = generate_world(4, channels=3, days=1.0, posts_per_day=10.0)
    report = run_pass(world, path)
    names = [f"@{c.username}" for c in report.channels if c.username]
    assert names
    (folder / "tgspread.toml").write_text(f'archive = "{path}"\nchannels = {json.dumps(world.seeds)}\n')
    return path, names


def _table_lines(output: str) -> list[str]:
    """The lines of the tables (log lines stay whole, one line each, however wide)."""
    return [line for line in output.splitlines() if re.search("[│┃┏┗┡└]", line) or line.startswith("not shown")]


# -- item 7: narrow terminals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("columns", [80, 100, 120])
def test_status_keeps_channel_names_readable(collected: tuple[Path, list[str]], columns: int) -> None:
    path, names = collected
    code, out = in_terminal(["status", "--archive", str(path)], columns, path.parent)
    assert code == 0, out
    lines = _table_lines(out)
    assert all(len(line) <= columns for line in lines), out
    for name in names:
        assert any(name in line for line in lines), f"{name} not readable at {columns} columns:\n{out}"


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_verify_and_dry_run_fit_the_terminal(collected: tuple[Path, list[str]], columns: int) -> None:
    path, names = collected
    code, out = in_terminal(["verify", "--archive", str(path)], columns, path.parent)
    assert code == 0, out
    assert all(len(line) <= columns for line in _table_lines(out)), out
    assert "clean" in out
    code, out = in_terminal(["run", "--dry-run", "--config", "tgspread.toml"], columns, path.parent)
    assert code == 0, out
    lines = _table_lines(out)
    assert all(len(line) <= columns for line in lines), out
    for name in names:    # the dry run names channels as they were given (the config's list)
        assert any(name.lstrip("@") in line for line in lines), f"{name} not readable at {columns}:\n{out}"
    one_word_lines = [line for line in lines if re.fullmatch(r"[│|]\s+[│|]\s+[│|]\s*\w+\s*[│|].*", line)]
    assert len(one_word_lines) < 3, out     # the reason no longer wraps one word per line


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_the_longest_username_stays_on_one_line(collected: tuple[Path, list[str]], tmp_path: Path,
                                                columns: int) -> None:
    """A username has up to 32 characters, so ``@name`` up to 33: neither table of ``status`` cuts or wraps it
    (the first column was kept at 32 wide, and the never-archived table folded the last character)."""
    import duckdb

    path, _ = collected
    copy = tmp_path / "archive.duckdb"
    copy.write_bytes(path.read_bytes())
    longest = "a" + "b2" * 15 + "c"
    assert len(longest) == 32
    con = duckdb.connect(str(copy))
    try:
        channel_id = con.execute("SELECT channel_id FROM posts GROUP BY channel_id ORDER BY count(*) DESC "
                                 "LIMIT 1").fetchall()[0][0]
        con.execute("UPDATE channels SET username = ? WHERE channel_id = ?", [longest, channel_id])
        con.execute("UPDATE channel_usernames SET username = ? WHERE channel_id = ?", [longest, channel_id])
        # a gap in the ids, so that status also prints its table of message ids never archived
        ids = [r[0] for r in con.execute("SELECT message_id FROM posts WHERE channel_id = ? ORDER BY message_id "
                                         "LIMIT 3 OFFSET 2", [channel_id]).fetchall()]
        for table in ("post_observations", "post_versions", "posts"):
            con.execute(f"DELETE FROM {table} WHERE channel_id = ? AND list_contains(?, message_id)",
                        [channel_id, ids])
        con.execute("UPDATE run_channels SET new_posts = new_posts - 3 WHERE channel_id = ? AND new_posts >= 3",
                    [channel_id])
    finally:
        con.close()
    code, out = in_terminal(["status", "--archive", str(copy)], columns, tmp_path)
    assert code == 0, out
    lines = _table_lines(out)
    assert all(len(line) <= columns for line in lines), out
    assert "message ids never archived" in out
    assert sum(f"@{longest}" in line for line in lines) == 2, out     # whole, in both tables


def test_fitted_table_drops_the_least_important_columns_first() -> None:
    from rich.console import Console

    columns = [Column("channel"), Column("posts", "right", keep=9), Column("notes", keep=1),
               Column("when", keep=5)]
    rows = [["@a_rather_long_channel_name", "1,234", "x" * 60, "2024-01-01 10:00"]]
    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(fitted_table(columns, rows, width=80))
    text = console.export_text()
    assert "@a_rather_long_channel_name" in text and "2024-01-01 10:00" in text
    assert "x" * 60 not in text and "not shown at 80 columns: notes" in text


# -- item 16: terminal escapes -----------------------------------------------------------------------------
def test_safe_shows_controls_and_bidi_as_escapes() -> None:
    assert safe(EVIL) == "Chan\\x1b]0;PWNED\\x07\\x1b[2J[red]x[/]\\u202etxt.exe"
    assert safe("line\nnext\ttab\x9b") == "line\\x0anext\\x09tab\\x9b"
    assert safe("канал ✓ 🙂") == "канал ✓ 🙂"


def _evil_export(tmp_path: Path) -> Path:
    data = json.loads((ROOT / "tests/fixtures/export/channel.json").read_text(encoding="utf-8"))
    data["name"] = EVIL
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_hostile_names_never_reach_the_terminal(tmp_path: Path) -> None:
    """A chat name with terminal escapes and rich markup: import, status, channels list and verify print it
    escaped, and it is not taken as markup."""
    from datetime import UTC, datetime

    from collector import Archive

    archive = str(tmp_path / "a.duckdb")
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(_evil_export(tmp_path)), "--archive", archive], env={"COLUMNS": "200"})
    outputs = {"import": result.stdout + result.stderr}
    assert result.exit_code == 0, result.stdout + result.stderr
    with Archive(archive) as store:     # later collected by the API: a username, an access hash, the same title
        store.remember_channel({"channel_id": 1234567890, "access_hash": 5, "username": "osint_demo",
                                "title": EVIL}, datetime.now(UTC))
    for name, argv in (("status", ["status"]), ("add", ["channels", "add", "1234567890"]),
                       ("list", ["channels", "list"]), ("verify", ["verify", "--channel", "@osint_demo"])):
        result = runner.invoke(app, [*argv, "--archive", archive], env={"COLUMNS": "200"})
        outputs[name] = result.stdout + result.stderr
        assert result.exit_code == 0, (argv, result.stdout, result.stderr)
    for name in ("import", "list"):
        out = outputs[name]
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, name
        assert "Chan\\x1b]0;PWNED\\x07\\x1b[2J[red]x[/]\\u202etxt.exe" in out.replace("\n", ""), (name, out)
    assert all("\x1b" not in out for out in outputs.values())


def test_channels_add_by_id_of_an_imported_channel_says_why(tmp_path: Path) -> None:
    """Item 28: an imported channel is in the archive, but without an access hash it cannot be asked for by id."""
    archive = str(tmp_path / "a.duckdb")
    runner = CliRunner()
    runner.invoke(app, ["import", str(ROOT / "tests/fixtures/export/channel.json"), "--archive", archive])
    result = runner.invoke(app, ["channels", "add", "1234567890", "--archive", archive])
    assert result.exit_code == 2
    assert "is in this archive from an import or a web preview only" in result.stderr
    assert "not in this archive" not in result.stderr


def test_one_channel_is_singular(tmp_path: Path) -> None:
    archive = str(tmp_path / "a.duckdb")
    runner = CliRunner()
    runner.invoke(app, ["import", str(ROOT / "tests/fixtures/export/channel.json"), "--archive", archive])
    out = runner.invoke(app, ["status", "--archive", archive], env={"COLUMNS": "200"}).stdout
    assert "1 channel," in out and "1 channels" not in out


_NOUNS = ("posts|observations|versions|candidates|requests|rows|ids|files|channels|deletions|warnings|errors|"
          "slots|passes|names|edits")
_BARE_COUNT = re.compile(r"\{(?:len\([^{}]*\)|[a-z_.]+(?: or 0)?)(?::,)?\}\s+(?:[a-z]+ )?(?:" + _NOUNS + r")\b(?!/)")


def test_counted_nouns_go_through_plural() -> None:
    """Item 11 ("1 channels", "1 deletions"): a count the CLI prints before a noun goes through ``words.plural``;
    no f-string of collector/_cli puts a bare count before a plural noun or writes "warning(s)"."""
    found = []
    for path in sorted((ROOT / "collector" / "_cli").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ('f"' in line or "f'" in line) and ("(s)" in line or _BARE_COUNT.search(line)):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


# -- item 11: help texts ----------------------------------------------------------------------------------------
def _all_commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    found: list[list[str]] = [[]]
    for name, command in group.commands.items():   # type: ignore[attr-defined]
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


def test_help_shows_no_type_labels_and_keeps_the_media_path() -> None:
    runner = CliRunner()
    for argv in _all_commands():
        out = runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "120"}).stdout
        assert "<bool>" not in out, argv
        # nor any other of typer's type labels (<list[str]>, <int range>, <path>, ...): names and metavars say it
        assert re.search(r"<[a-z][a-z \[\]]*>", out) is None, (argv, re.findall(r"<[a-z][a-z \[\]]*>", out))
    out = runner.invoke(app, ["media", "--help"], env={"COLUMNS": "200"}).stdout
    assert "DIR/CHANNEL/YYYY/MM/POSTID-SHA256PREFIX.EXT" in out and "////" not in out


def test_channels_add_many_names_at_once(tmp_path: Path) -> None:
    """Item 20: 2,000 names in one call (the time is measured by hand, see CHANGELOG; linear since one lookup,
    one insert and one read serve them all), with repeats inside the call reported as already there."""
    from collector import Archive
    from collector._scheduling.channel_set import add_channels, list_channels

    names = [f"chan_{i:05d}x" for i in range(2000)]
    with Archive(tmp_path / "a.duckdb") as store:
        changes = add_channels(store, [*names, "@CHAN_00007X", "t.me/chan_00008x"])
        assert [c.outcome for c in changes] == ["added"] * 2000 + ["already", "already"]
        assert changes[-1].entry is not None and changes[-1].entry.username == "chan_00008x"
        assert [e.username for e in list_channels(store)] == names
        again = add_channels(store, names[:3])
        assert [c.outcome for c in again] == ["already"] * 3


def test_the_demo_names_a_command_that_works_here(tmp_path: Path) -> None:
    """Item 9: after `make demo`, `tgspread` is in .venv/bin, not on PATH: the last line says so."""
    from collector._cli.demo import command_name

    assert command_name(".venv/bin/tgspread", on_path="") == ".venv/bin/tgspread"
    assert command_name("/usr/bin/python3", on_path="") == "python -m collector"
    script = tmp_path / "bin" / "tgspread"
    script.parent.mkdir()
    script.write_text("")
    assert command_name(str(script), on_path=str(script)) == "tgspread"
    installed = Path(sys.executable).parent / "tgspread"      # as `make demo` runs it: .venv/bin/tgspread
    out = subprocess.run([str(installed), "demo", "--channels", "2", "--days", "1", "--archive",
                          str(tmp_path / "demo.duckdb")], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={k: v for k, v in os.environ.items() if k != "PATH"} | {"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith(f"Next: {installed} status --archive") and "activate" in last
