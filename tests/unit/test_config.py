"""Settings: durations, TOML parsing and its errors, precedence of flags > environment > file > defaults."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from collector._config import (
    CREDENTIALS_HELP,
    ConfigError,
    config_file,
    format_duration,
    load_config,
    parse_duration,
    read_channel_file,
)
from collector._parse.refresh import DEFAULT_CHECKPOINTS
from collector._parse.text_file import UTF16, NotText, decode_text, text_problem
from collector._telegram.login import SessionError, build_client, check_session_file, prepare_session_file

HASH = "0123456789abcdef0123456789abcdef"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("6h", timedelta(hours=6)),
    ("1d", timedelta(days=1)), ("1w", timedelta(weeks=1)), (" 1.5h ", timedelta(minutes=90)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "6", "h", "6 hours", "-1h", "1y", "1h30m"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_format_duration_is_shortest() -> None:
    assert [format_duration(c) for c in DEFAULT_CHECKPOINTS] == ["1h", "6h", "1d", "3d", "1w", "30d"]
    assert format_duration(timedelta(seconds=90)) == "90s"


def test_defaults_without_file(tmp_path: Path) -> None:
    cfg = load_config(env={"XDG_DATA_HOME": str(tmp_path / "data")}, cwd=tmp_path)
    assert cfg.archive == tmp_path / "archive.duckdb"
    assert cfg.session == tmp_path / "data" / "tgspread" / "tgspread.session"
    assert cfg.channels == () and cfg.source is None
    assert cfg.flood_sleep_threshold == 60
    assert cfg.checkpoints == DEFAULT_CHECKPOINTS and cfg.snapshot_every == timedelta(hours=24)


def test_full_file_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    conf = write(tmp_path / "conf" / "x.toml", f"""
archive = "data/a.duckdb"
session = "/abs/s.session"
channels = ["durov", "@telegram", " https://t.me/other "]
[telegram]
api_id = 123
api_hash = "{HASH.upper()}"
flood_sleep_threshold = 120
[refresh]
checkpoints = ["1h", "6h", "12h", "1d", "3d", "7d", "30d"]
snapshot_every = "12h"
""")
    cfg = load_config(conf, env={}, cwd=tmp_path)
    assert cfg.archive == tmp_path / "conf" / "data" / "a.duckdb"
    assert cfg.session == Path("/abs/s.session")
    assert cfg.channels == ("durov", "@telegram", "https://t.me/other")
    assert (cfg.api_id, cfg.api_hash, cfg.flood_sleep_threshold) == (123, HASH, 120)
    assert timedelta(hours=12) in cfg.checkpoints and len(cfg.checkpoints) == 7
    assert cfg.snapshot_every == timedelta(hours=12)
    assert cfg.source == conf


def test_default_file_in_cwd_is_read(tmp_path: Path) -> None:
    write(tmp_path / "tgspread.toml", 'channels = ["durov"]\n')
    assert load_config(env={}, cwd=tmp_path).channels == ("durov",)


def test_config_file_is_the_one_load_config_reads(tmp_path: Path) -> None:
    """``config_file`` (what `publish` asks before choosing how to read --collector) and ``load_config`` agree."""
    assert config_file(None, tmp_path) is None and load_config(env={}, cwd=tmp_path).source is None
    given = write(tmp_path / "elsewhere.toml", "")
    assert config_file(given, tmp_path) == given
    default = write(tmp_path / "tgspread.toml", "")
    assert config_file(None, tmp_path) == default == load_config(env={}, cwd=tmp_path).source


def test_collectors_are_the_files_tables_in_order(tmp_path: Path) -> None:
    """``Config.collectors``: the ``[collectors.NAME]`` tables in file order, whichever collector is loaded; a
    collector of a table gets its own session, the file's own collector (``[lake] collector``) the default one."""
    conf = write(tmp_path / "t.toml", '[lake]\ncollector = "main"\n[collectors.zeta]\n[collectors.alpha]\n')
    env = {"XDG_DATA_HOME": str(tmp_path)}
    assert load_config(conf, env=env).collectors == ("zeta", "alpha")
    zeta = load_config(conf, env=env, collector="zeta")
    assert zeta.collectors == ("zeta", "alpha") and zeta.session.name == "tgspread-zeta.session"
    assert load_config(conf, env=env, collector="main").session.name == "tgspread.session"
    assert load_config(write(tmp_path / "u.toml", ""), env=env).collectors == ()


@pytest.mark.parametrize(("data", "problem"), [
    (b"durov\ncaf\xe9\n", "line 2: not UTF-8 text (byte 9)"),
    ("durov\n".encode("utf-16"), UTF16),
    ("durov\n".encode("utf-16-le"), "line 1: a NUL byte (byte 1): UTF-16 text or not text at all"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1: not UTF-8 text (byte 0)"),
    (b"ok\nnul\x00 then \xff\n", "line 2: a NUL byte (byte 6): UTF-16 text or not text at all"),
    (b"ok\n\xff then nul\x00\n", "line 2: not UTF-8 text (byte 3)"),
    # a multi-byte character cut at the end of the file
    ("d\u00fcrov".encode()[:2], "line 1: not UTF-8 text (byte 1)"),
])
def test_a_file_that_is_not_text_says_where_and_what(data: bytes, problem: str) -> None:
    """One rule for config, channel list, id list and assignment files: the line and byte where the file stops
    being UTF-8 text, and what it looks like."""
    assert text_problem(data.splitlines(keepends=True)) == text_problem([data]) == problem
    with pytest.raises(NotText) as caught:
        decode_text(data)
    assert str(caught.value) == problem


@pytest.mark.parametrize("data", [
    b"ok\n\xc3\xa9\xe2\x82\xac line\n\xf0\x9f\x98\x80 x\n\xff", "a\u00e9b\n".encode() * 5 + b"\x00",
    "d\u00fcrov".encode()[:2], b"\xef\xbb\xbfa\n\xc3", "ok\u00e9\n".encode() * 3,
])
def test_a_file_read_in_blocks_cut_anywhere_gives_the_same_answer(data: bytes) -> None:
    """``text_problem`` reads a file in blocks (memory bounded by a block): a character cut between two blocks is
    whole, and every cut gives the answer the whole file gives."""
    whole = text_problem([data])
    for cut in range(len(data) + 1):
        for second in range(cut, len(data) + 1):
            assert text_problem([data[:cut], data[cut:second], data[second:]]) == whole, (cut, second)


def test_text_with_a_byte_order_mark_or_none_decodes() -> None:
    assert decode_text("\ufeffd\u00fcrov\n".encode()) == "d\u00fcrov\n" == decode_text("d\u00fcrov\n".encode())
    assert text_problem([b"\xef\xbb\xbfa\n", "\u00fc".encode()]) is None


def test_precedence_flags_env_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "t.toml", f'archive = "file.duckdb"\nsession = "file.session"\n'
                                      f'[telegram]\napi_id = 1\napi_hash = "{HASH}"\n')
    env = {"TG_API_ID": "2", "TGSPREAD_ARCHIVE": "/env/a.duckdb", "TGSPREAD_SESSION": "/env/s.session"}
    cfg = load_config(conf, env=env, cwd=tmp_path)
    assert (cfg.api_id, cfg.api_hash) == (2, HASH)              # id from env, hash from the file
    assert cfg.archive == Path("/env/a.duckdb") and cfg.session == Path("/env/s.session")
    cfg = load_config(conf, env=env, cwd=tmp_path, archive=Path("/flag/a.duckdb"), session=Path("/flag/s"))
    assert cfg.archive == Path("/flag/a.duckdb") and cfg.session == Path("/flag/s")


@pytest.mark.parametrize(("text", "fragment"), [
    ("archive = [1", "not valid TOML"),
    ("archive = 3", "archive: expected a file path"),
    ("channels = \"durov\"", "channels must be a list"),
    ("[telegram]\napi_id = \"abc\"", "api_id must be a positive integer"),
    ("[telegram]\napi_id = true", "api_id must be an integer"),
    ("[telegram]\napi_hash = \"xyz\"", "api_hash must be 32 hexadecimal characters"),
    ("[telegram]\nflood_sleep_threshold = -1", "flood_sleep_threshold must be a whole number"),
    ("[telegram]\napi_key = 1", "unknown key 'api_key'"),
    ("[refresh]\ncheckpoints = [\"1h\", \"6h\"]", "may add to the defaults"),
    ("[refresh]\ncheckpoints = [\"1 hour\"]", "expected a duration"),
    ("[refresh]\nsnapshot_every = \"2d\"", "at most 24h"),
    ("refresh = 3", "[refresh] must be a table"),
    ("chanels = []", "unknown key 'chanels'"),
    ("[lake]\ncollector = \"main\\n\"", "collector name 'main\\n'"),    # a `$` let a trailing newline through
    ("[lake]\ncollector = \"" + "x" * 5000 + "\"", "(5,000 characters)"),
])
def test_bad_file_is_one_line_naming_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    conf = write(tmp_path / "bad.toml", text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(conf, env={}, cwd=tmp_path)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(str(conf)) and "\n" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml", env={}, cwd=tmp_path)


@pytest.mark.parametrize(("env", "fragment"), [
    ({}, "no Telegram API credentials"),
    ({"TG_API_HASH": HASH}, "TG_API_ID is not set"),
    ({"TG_API_ID": "5"}, "TG_API_HASH is not set"),
])
def test_missing_credentials_say_where_to_get_them(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    cfg = load_config(env=env, cwd=tmp_path)
    with pytest.raises(ConfigError) as info:
        cfg.credentials()
    assert fragment in str(info.value) and "my.telegram.org" in str(info.value)
    assert CREDENTIALS_HELP in str(info.value)


def test_malformed_env_credentials_are_refused_without_echoing_the_hash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable TG_API_ID: api_id must be a positive integer"):
        load_config(env={"TG_API_ID": "12a"}, cwd=tmp_path)
    secret = "s3cr3t-not-a-hash"
    with pytest.raises(ConfigError) as info:
        load_config(env={"TG_API_HASH": secret}, cwd=tmp_path)
    assert secret not in str(info.value) and "32 hexadecimal" in str(info.value)


def test_config_repr_hides_the_hash(tmp_path: Path) -> None:
    cfg = load_config(env={"TG_API_ID": "5", "TG_API_HASH": HASH}, cwd=tmp_path)
    assert HASH not in repr(cfg) and HASH not in repr(cfg.credentials())


def test_channel_file(tmp_path: Path) -> None:
    f = write(tmp_path / "ch.txt", "# my list\ndurov\n\n  @telegram  # official\nhttps://t.me/s/other\n")
    assert read_channel_file(f) == ["durov", "@telegram", "https://t.me/s/other"]
    with pytest.raises(ConfigError, match="no such channel list"):
        read_channel_file(tmp_path / "missing.txt")


# -- the session file -------------------------------------------------------------------------------------
def test_session_file_is_created_owner_only(tmp_path: Path) -> None:
    path = prepare_session_file(tmp_path / "deep" / "acct")
    assert path.name == "acct.session"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    check_session_file(path)


def test_session_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = prepare_session_file(tmp_path / "s.session")
    os.chmod(path, 0o644)
    with pytest.raises(SessionError, match=f"chmod 600 {path}"):
        check_session_file(path)


def test_collect_never_creates_a_session(tmp_path: Path) -> None:
    cfg = load_config(env={"TG_API_ID": "5", "TG_API_HASH": HASH, "TGSPREAD_SESSION": str(tmp_path / "s.session")},
                      cwd=tmp_path)
    with pytest.raises(SessionError, match="run `tgspread login` first"):
        build_client(cfg)
    assert not (tmp_path / "s.session").exists()


def test_login_client_keeps_session_owner_only(tmp_path: Path) -> None:
    cfg = load_config(env={"TG_API_ID": "5", "TG_API_HASH": HASH, "TGSPREAD_SESSION": str(tmp_path / "s")},
                      cwd=tmp_path)
    client = build_client(cfg, create=True)        # Telethon opens the SQLite session; nothing is connected
    try:
        assert client.flood_sleep_threshold == 60
        path = tmp_path / "s.session"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes().startswith(b"SQLite format 3")
    finally:
        client.session.close()
