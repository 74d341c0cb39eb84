"""Malformed id lists (``tgspread hydrate``) and assignment files (``[lake] assignment``, ``shards --assignment``).

Each case runs the real ``tgspread`` command (typer's CliRunner) on a real file, on the simulated Telegram
(``TGSPREAD_SIMULATED_SEED``), and checks: exit 2, exactly one ``tgspread: error:`` line on stderr that names the
file and the line and says what to do, no traceback, and no archive written (nothing was sent).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from collector._cli.app import app
from collector._cli.common import Exit
from collector._telegram.client import SIMULATED_ENV

runner = CliRunner()
SIM = {SIMULATED_ENV: "3", "TGSPREAD_SIMULATED_CHANNELS": "2", "TGSPREAD_SIMULATED_DAYS": "1"}
_CLEARED = ("TG_API_ID", "TG_API_HASH", "TGSPREAD_ARCHIVE", "TGSPREAD_SESSION", "TGSPREAD_DEBUG",
            "TGSPREAD_SIMULATED_ADVANCE")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in SIM.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _one_error(result: Result) -> str:
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("tgspread: error:")]
    assert len(lines) == 1, result.stderr
    assert "\x1b" not in result.stderr            # hostile text stays escaped
    return lines[0]


# -- id lists ------------------------------------------------------------------------------------------------------
HEADER = "channel_id,username,message_id\n"
ID_LISTS: dict[str, tuple[bytes, str]] = {
    "message id above 32 bits": (
        (HEADER + "10,durov,1\n10,durov,99999999999\n").encode(),
        "ids.csv: line 3: message_id 99999999999 is too large: Telegram's message ids are 32-bit numbers, at most "
        "2,147,483,647"),
    "a 10,000-digit id": (
        (HEADER + "10,durov," + "9" * 10_000 + "\n").encode(),
        "ids.csv: line 2: message_id 99999999999999999999... (10,000 digits) is too large"),
    "a superscript digit": ((HEADER + "10,durov,\u00b2\n").encode(),
                            "ids.csv: line 2: message_id must be a positive whole number (digits 0-9), not '\u00b2'"),
    "UTF-16 with a byte-order mark": (
        (HEADER + "10,durov,1\n").encode("utf-16"),
        "ids.csv: UTF-16 text (Excel's \"Unicode text\"), not UTF-8; save it as UTF-8 (in Excel or LibreOffice: "
        "CSV UTF-8) and run again"),
    "UTF-16 without one": (
        (HEADER + "10,durov,1\n").encode("utf-16-le"),
        "ids.csv: line 1: NUL bytes: UTF-16 text (Excel's \"Unicode text\") or not text at all; save it as UTF-8"),
    "Latin-1 on line 3": (
        (HEADER + "10,durov,1\n10,d\xfcrov,2\n").encode("latin-1"),
        "ids.csv: line 3: not UTF-8 text (byte 46); save it as UTF-8 (in Excel or LibreOffice: CSV UTF-8)"),
    "a 5 MB field on line 3": (
        (HEADER + "10,durov,1\n10,durov," + "7" * 5_000_000 + "\n").encode(),
        "ids.csv: line 3: a field longer than 131,072 characters: an id list holds ids and usernames"),
    "four fields under a header of three": (
        (HEADER + "10,durov,1\n10,durov,2,x\n").encode(),
        "ids.csv: line 3: 4 fields, the header has 3: every line needs one field per header column"),
    "one field under a header of three": (
        (HEADER + "10,durov,1\n10\n").encode(),
        "ids.csv: line 3: 1 fields, the header has 3: every line needs one field per header column"),
    "a terminal escape as username": (
        (HEADER + "10,\x1b[2J,1\n").encode(),
        "ids.csv: line 2: '\\x1b[2J' is not a Telegram username"),
}


@pytest.mark.parametrize("case", sorted(ID_LISTS))
def test_a_bad_id_list_is_one_line_naming_the_line_and_nothing_is_sent(case: str, here: Path) -> None:
    data, expected = ID_LISTS[case]
    (here / "ids.csv").write_bytes(data)
    result = runner.invoke(app, ["hydrate", "ids.csv", "-a", "a.duckdb", "--deleted", "gone.csv"])
    assert result.exit_code == Exit.USAGE, result.output
    assert expected in _one_error(result)
    assert sorted(p.name for p in here.iterdir()) == ["ids.csv"]          # no archive, no --deleted file


def test_extra_named_columns_and_a_byte_order_mark_are_accepted(here: Path) -> None:
    """The documented rule: any further *named* column is ignored (e.g. posted_at, a note); every line has one
    field per header column."""
    (here / "ids.csv").write_bytes(("\ufeffchannel_id,username,message_id,note\n,nosuchchannel99,1,a, quoted\n"
                                    .replace("a, quoted", '"a, quoted"')).encode())
    result = runner.invoke(app, ["hydrate", "ids.csv", "-a", "a.duckdb"])
    assert result.exit_code == Exit.PARTIAL, result.output     # parsed and sent: the channel does not exist
    assert "nosuchchannel99" in result.stdout and "1 id listed" in result.stdout


# -- assignment files ----------------------------------------------------------------------------------------------
ASSIGNMENTS: dict[str, tuple[str, bytes, str]] = {
    "a superscript slot": ("slots.csv", b"slot,collector\n\xc2\xb2,demo\n",
                           "slots.csv:2: the slot must be a whole number 0-63 (one slot per line; ranges such as "
                           "0-31 go in the TOML form), not '\u00b2'"),
    "slot -1": ("slots.csv", b"slot,collector\n0,main\n-1,demo\n", "slots.csv:3: the slot must be a whole number "
                "0-63 (one slot per line; ranges such as 0-31 go in the TOML form), not '-1'"),
    "slot 64": ("slots.csv", b"slot,collector\n64,demo\n", "slots.csv:2: the slot must be a whole number 0-63"),
    "slot x": ("slots.csv", b"slot,collector\nx,demo\n", "slots.csv:2: the slot must be a whole number 0-63 "
               "(one slot per line; ranges such as 0-31 go in the TOML form), not 'x'"),
    "an escape as slot": ("slots.csv", b"slot,collector\n\x1b[2J,demo\n",
                          "slots.csv:2: the slot must be a whole number 0-63 (one slot per line; ranges such as "
                          "0-31 go in the TOML form), not '\\x1b[2J'"),
    "no collector": ("slots.csv", b"slot,collector\n5\n",
                     "slots.csv:2: expected 'slot,collector' (e.g. 0,main), not '5'"),
    "no header": ("slots.csv", b"0,main\n",
                  "slots.csv:1: the first line must be the header 'slot,collector', not '0,main'"),
    "Latin-1 CSV": ("slots.csv", b"slot,collector\n0,main\n1,d\xe9mo\n",
                    "slots.csv: line 3: not UTF-8 text (byte 25); save it as UTF-8 text and run again"),
    "UTF-16 CSV": ("slots.csv", "slot,collector\n0,main\n".encode("utf-16"),
                   "slots.csv: UTF-16 text (Excel's \"Unicode text\"), not UTF-8; save it as UTF-8 text and run again"),
    "TOML syntax": ("slots.toml", b'[slots]\nmain = "0-31"\nsecond = "32-63\n',
                    "slots.toml:3: not valid TOML (Illegal character '\\n' at column 16); the form is a [slots] "
                    'table with one line per collector, e.g. main = "0-31" (docs/scale.md)'),
    "TOML superscript": ("slots.toml", '[slots]\nmain = "\u00b2"\n'.encode(),
                         "slots.toml: [slots] main: '\u00b2' is not a slot or a range a-b"),
    "TOML in Latin-1": ("slots.toml", b'# r\xe9partition\n[slots]\nmain = "0-31"\n',
                        "slots.toml: line 1: not UTF-8 text (byte 3); save it as UTF-8 text and run again"),
}


@pytest.mark.parametrize("command", ["shards", "collect", "run"])
@pytest.mark.parametrize("case", sorted(ASSIGNMENTS))
def test_a_bad_assignment_is_one_line_with_the_file_and_line(case: str, command: str, here: Path) -> None:
    name, data, expected = ASSIGNMENTS[case]
    (here / name).write_bytes(data)
    (here / "lake").mkdir()
    (here / "tgspread.toml").write_text(f'[lake]\npath = "lake"\ncollector = "main"\nassignment = "{name}"\n')
    argv = {"shards": ["shards"], "collect": ["collect", "-a", "a.duckdb"], "run": ["run", "-a", "a.duckdb"]}[command]
    result = runner.invoke(app, argv)
    assert result.exit_code == Exit.USAGE, result.output
    assert _one_error(result).startswith(f"tgspread: error: {here / expected}")   # the config's path: absolute
    assert not (here / "a.duckdb").exists()


def test_an_assignment_with_a_byte_order_mark_is_read(here: Path) -> None:
    """Excel's "CSV UTF-8" and Notepad start the file with a byte-order mark: read like any other."""
    (here / "lake").mkdir()
    for name, text in (("slots.csv", "slot,collector\n" + "".join(f"{s},main\n" for s in range(64))),
                       ("slots.toml", '[slots]\nmain = "0-63"\n')):
        (here / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
        result = runner.invoke(app, ["shards", "--lake", "lake", "--assignment", name])
        assert result.exit_code == Exit.OK, result.output
        assert "unowned slots: -" in result.stdout
