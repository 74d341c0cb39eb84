"""The ``tgspread`` command line, end to end on the simulated Telegram; never contacts Telegram.

Covers: --help everywhere, the demo followed by status (tables and --json), collect on the simulated
world (testing hook), the exit codes for partial passes, usage/config/credential errors (one line, exit 2),
a busy archive (exit 3), an unusable archive (exit 4), and the queries behind status on a hand-built archive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from collector import Archive
from collector._archive.status import archive_status, status_as_json
from collector._cli.app import app
from collector._cli.common import Exit
from collector._cli.demo import marker_path
from collector._telegram.client import SIMULATED_ENV

ROOT = Path(__file__).resolve().parents[2]
HASH = "0123456789abcdef0123456789abcdef"
runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No credentials, no config file, no simulated world and a private data dir, unless a test sets them."""
    for name in ("TG_API_ID", "TG_API_HASH", "TGSPREAD_ARCHIVE", "TGSPREAD_SESSION", "TGSPREAD_DEBUG",
                 SIMULATED_ENV, "TGSPREAD_SIMULATED_CHANNELS", "TGSPREAD_SIMULATED_DAYS",
                 "TGSPREAD_SIMULATED_ADVANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def error_line(result: Any) -> str:
    """The one stderr line of a failed command (asserting there is exactly one and no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("TESTING ONLY")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tgspread: error: ") and "Traceback" not in result.output
    return lines[0]


# -- help --------------------------------------------------------------------------------------------------
def test_help_on_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0 and "collect" in result.stdout
    for name in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        result = run(name, "--help")
        assert result.exit_code == 0, (name, result.output)
        assert "Usage" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("tgspread ")


def test_python_dash_m_collector_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "collector", "--version"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tgspread ")


# -- demo, then status ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    result = runner.invoke(app, ["demo", "--channels", "4", "--days", "3", "--archive", str(path)])
    return path, result


def test_demo_runs_two_passes_and_prints_totals(demo_archive: tuple[Path, Any]) -> None:
    path, result = demo_archive
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "pass 1 (run 1)" in out and "pass 2 (run 2)" in out
    for label in ("post observations", "earlier versions", "seen deleted", "messages.GetHistory", "posts/s"):
        assert label in out, label
    assert path.exists() and marker_path(path).exists()
    with Archive(path, read_only=True) as archive:
        runs = archive.con.execute("SELECT count(*), min(started_at), max(started_at) FROM runs").fetchone()
        posts = archive.con.execute("SELECT count(*) FROM posts").fetchone()
    assert runs is not None and runs[0] == 2 and runs[2] - runs[1] == timedelta(days=2)
    assert posts is not None and posts[0] > 100


def test_status_shows_the_demo_channels(demo_archive: tuple[Path, Any]) -> None:
    path, _ = demo_archive
    result = run("status", "--archive", str(path))
    assert result.exit_code == 0, result.output
    with Archive(path, read_only=True) as archive:
        usernames = [r[0] for r in archive.con.execute(
            "SELECT username FROM channels WHERE username IS NOT NULL").fetchall()]
    assert usernames
    flat = result.stdout.replace("\n", " ")
    for name in usernames:
        assert f"@{name}"[:8] in flat        # rich may shorten a long name in a narrow table
    assert "never seen" in flat


def test_status_json_matches_the_archive(demo_archive: tuple[Path, Any]) -> None:
    path, _ = demo_archive
    result = run("status", "--archive", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    with Archive(path, read_only=True) as archive:
        per_channel = dict(archive.con.execute("SELECT channel_id, count(*) FROM posts GROUP BY 1").fetchall())
    by_id = {c["channel_id"]: c for c in data["channels"]}
    assert {cid: by_id[cid]["posts"] for cid in per_channel} == per_channel
    assert data["totals"]["runs"] == 2 and data["last_run"]["run_id"] == 2
    outcomes = {c["last_outcome"] for c in data["channels"] + data["unresolved"]}
    assert "ok" in outcomes and outcomes - {"ok"}, "the demo world has missing/private channels on purpose"
    datetime.fromisoformat(data["as_of"])


def test_demo_refuses_to_overwrite_a_foreign_file(tmp_path: Path) -> None:
    precious = tmp_path / "mine.duckdb"
    precious.write_text("my data\n")
    result = run("demo", "--archive", str(precious), "--channels", "1", "--days", "1")
    assert result.exit_code == Exit.USAGE
    assert "was not made by `tgspread demo`" in error_line(result)
    assert precious.read_text() == "my data\n"


def test_demo_run_again_rebuilds_its_lake(tmp_path: Path) -> None:
    """`make demo` twice: the second demo makes a new archive (a new pseudonym key, so another archive to the
    lake) and replaces the demo's files in its lake, on purpose; the lake then holds the new archive's posts."""
    import duckdb

    import analysis

    path = tmp_path / "demo.duckdb"
    for _ in range(2):
        result = run("demo", "--archive", str(path), "--channels", "2", "--days", "1")
        assert result.exit_code == Exit.OK, result.output
        assert "published to the lake" in result.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        archived = con.execute("SELECT count(*) FROM posts").fetchall()
    assert analysis.connect(tmp_path / "lake").execute("SELECT count(*) FROM posts").fetchall() == archived


# -- collect on the simulated world (testing hook) -------------------------------------------------------------
def test_collect_simulated_partial_then_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "2")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "2")
    archive = tmp_path / "a.duckdb"
    first = run("collect", "--archive", str(archive))
    # The world holds a closed channel, a group and a missing username: not everything is collected.
    assert first.exit_code == Exit.PARTIAL, first.output
    assert "TESTING ONLY" in first.stderr
    assert "new posts" in first.stdout and "not_found" in first.stdout
    monkeypatch.setenv("TGSPREAD_SIMULATED_ADVANCE", "1d")
    second = run("collect", "--archive", str(archive))
    assert second.exit_code == Exit.PARTIAL, second.output
    with Archive(archive, read_only=True) as opened:
        refreshed = opened.con.execute("SELECT sum(refreshed_posts) FROM run_channels WHERE run_id = 2").fetchone()
    assert refreshed is not None and refreshed[0] > 0


def test_collect_simulated_named_channel_ok_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "2")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "1")
    from collector._simulated import generate_world

    world = generate_world(3, channels=2, days=1)
    good = next(s for s in world.seeds if world.channel_by_username(s.lstrip("@").rsplit("/", 1)[-1]) is not None
                and s.lstrip("@") not in world.missing_usernames and "closed" not in s and "chat" not in s)
    (tmp_path / "channels.txt").write_text(f"# one channel\n{good}  # the good one\n")
    result = run("collect", "--channels", "channels.txt", "--archive", str(tmp_path / "b.duckdb"))
    assert result.exit_code == Exit.OK, result.output


# -- usage, config and credential errors -------------------------------------------------------------------------
def test_collect_without_credentials_is_exit_2_with_where_to_get_them() -> None:
    result = run("collect", "durov")
    assert result.exit_code == Exit.USAGE
    line = error_line(result)
    assert "my.telegram.org" in line and "API development tools" in line


def test_collect_missing_api_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_API_HASH", HASH)
    result = run("collect", "durov")
    assert result.exit_code == Exit.USAGE
    assert "TG_API_ID is not set" in error_line(result)


def test_collect_malformed_api_hash_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_API_ID", "123")
    monkeypatch.setenv("TG_API_HASH", "not-a-real-hash-value")
    result = run("collect", "durov")
    assert result.exit_code == Exit.USAGE
    line = error_line(result)
    assert "32 hexadecimal" in line and "not-a-real-hash-value" not in result.output


def test_collect_bad_toml_is_exit_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "tgspread.toml").write_text("channels = [\"durov\"\n[telegram\n")
    result = run("collect")
    assert result.exit_code == Exit.USAGE
    line = error_line(result)
    assert "tgspread.toml" in line and "not valid TOML" in line


def test_collect_bad_value_names_key(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text("[refresh]\ncheckpoints = [\"2h\"]\n")
    result = run("collect", "--config", str(conf), "durov")
    assert result.exit_code == Exit.USAGE
    assert "[refresh] checkpoints" in error_line(result)


def test_collect_not_logged_in_never_prompts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TG_API_ID", "123")
    monkeypatch.setenv("TG_API_HASH", HASH)
    result = runner.invoke(app, ["collect", "durov", "--archive", str(tmp_path / "a.duckdb")], input="")
    assert result.exit_code == Exit.USAGE
    assert "run `tgspread login` first" in error_line(result)
    assert not (tmp_path / "a.duckdb").exists()


def test_collect_refuses_a_session_others_can_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    session = tmp_path / "s.session"
    session.write_bytes(b"")
    session.chmod(0o644)
    monkeypatch.setenv("TG_API_ID", "123")
    monkeypatch.setenv("TG_API_HASH", HASH)
    result = run("collect", "durov", "--session", str(session))
    assert result.exit_code == Exit.USAGE
    assert f"chmod 600 {session}" in error_line(result)


def test_collect_without_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_API_ID", "123")
    monkeypatch.setenv("TG_API_HASH", HASH)
    result = run("collect")
    assert result.exit_code == Exit.USAGE
    assert "no channels to collect" in error_line(result)


def test_collect_missing_channel_file() -> None:
    result = run("collect", "--channels", "nope.txt")
    assert result.exit_code == Exit.USAGE
    assert "nope.txt" in error_line(result)


def test_login_needs_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_API_ID", "123")
    monkeypatch.setenv("TG_API_HASH", HASH)
    result = run("login")
    assert result.exit_code == Exit.USAGE
    assert "run it in a terminal" in error_line(result)


def test_login_without_credentials() -> None:
    result = run("login")
    assert result.exit_code == Exit.USAGE
    assert "my.telegram.org" in error_line(result)


def test_bad_option_is_a_usage_error() -> None:
    assert run("demo", "--channels", "zero").exit_code == Exit.USAGE
    assert run("status", "--bogus").exit_code == Exit.USAGE


# -- archive errors -------------------------------------------------------------------------------------------------
def test_archive_that_is_a_text_file_is_exit_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = tmp_path / "notes.duckdb"
    text.write_text("these are my notes, not an archive\n" * 100)
    result = run("status", "--archive", str(text))
    assert result.exit_code == Exit.ARCHIVE
    assert "not a DuckDB archive" in error_line(result)
    monkeypatch.setenv(SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "1")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "1")
    result = run("collect", "--archive", str(text))
    assert result.exit_code == Exit.ARCHIVE
    assert "not a DuckDB archive" in error_line(result)
    assert text.read_text().startswith("these are my notes")


def test_status_of_a_missing_archive(tmp_path: Path) -> None:
    result = run("status", "--archive", str(tmp_path / "none.duckdb"))
    assert result.exit_code == Exit.ARCHIVE
    assert "tgspread collect" in error_line(result)


def test_busy_archive_is_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    Archive(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from collector import Archive
            a = Archive({str(path)!r})
            print("held", flush=True)
            sys.stdin.read()
        """)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = run("status", "--archive", str(path), "--wait", "0.3")
        assert result.exit_code == Exit.BUSY
        assert "in use by another process" in error_line(result)
    finally:
        holder.communicate("")


def test_exit_codes_through_the_real_process(tmp_path: Path) -> None:
    """Cron sees the process's exit status, not CliRunner's: check one for real."""
    env = {k: v for k, v in os.environ.items() if k not in ("TG_API_ID", "TG_API_HASH")}
    proc = subprocess.run([sys.executable, "-c", "from collector._cli.app import app; app()", "collect", "durov"],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "my.telegram.org" in proc.stderr and "Traceback" not in proc.stderr


# -- the queries behind status, on a hand-built archive -----------------------------------------------------------
def _seed_archive(path: Path) -> datetime:
    """Two channels and an unresolved name; the last pass runs ahead of the wall clock (as the demo's does)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=3)
    with Archive(path) as archive:
        con = archive.con
        con.execute("INSERT INTO channels (channel_id, access_hash, username, title, status, available_min_id, "
                    "last_snapshot_at, first_seen_at, last_seen_at) VALUES "
                    "(10, 1, 'alpha', 'Alpha', 'active', 1, $now, $now, $now), "
                    "(20, 2, 'beta', 'Beta', 'private', NULL, NULL, $now, $now)", {"now": now})
        for mid, deleted in ((2, False), (3, True), (7, False), (10, False)):
            con.execute("INSERT INTO posts (channel_id, message_id, posted_at, first_seen_at, last_seen_at, "
                        "deleted_at) VALUES (10, ?, ?, ?, ?, ?)",
                        [mid, now - timedelta(hours=mid), now, now, now if deleted else None])
        con.execute("INSERT INTO channel_cursors VALUES (10, 12, $now), (20, 3, $now)", {"now": now})
        con.execute("INSERT INTO runs (run_id, started_at, finished_at, status) VALUES "
                    "(1, $a, $a, 'ok'), (2, $now, $now, 'partial')", {"a": now - timedelta(days=1), "now": now})
        con.execute("INSERT INTO run_channels (run_id, input, channel_id, outcome, error) VALUES "
                    "(1, 'alpha', 10, 'ok', NULL), (1, 'beta', 20, 'ok', NULL), "
                    "(2, 'alpha', 10, 'flood_wait', 'wait until later'), (2, 'beta', 20, 'private', 'closed'), "
                    "(2, 'nosuchname', NULL, 'not_found', 'no channel is called @nosuchname')")
        con.execute("INSERT INTO flood_waits VALUES ('messages.GetHistory', $now, $until, 7200, 10, 2), "
                    "('channels.GetMessages', $old, $old, 60, 20, 1)",
                    {"now": now, "until": now + timedelta(hours=2), "old": now - timedelta(days=1)})
    return now


def test_status_queries(tmp_path: Path) -> None:
    path = tmp_path / "hand.duckdb"
    now = _seed_archive(path)
    with Archive(path, read_only=True) as archive:
        status = archive_status(archive.con, now=now - timedelta(days=400))    # the last pass's clock wins
    assert status.as_of == now
    alpha, beta = status.channels
    assert (alpha.username, alpha.posts, alpha.deleted, alpha.cursor) == ("alpha", 4, 1, 12)
    assert alpha.newest_post_at == now - timedelta(hours=2)
    assert (alpha.last_outcome, alpha.last_error, alpha.failed_passes) == ("flood_wait", "wait until later", 1)
    assert alpha.flood_until == now + timedelta(hours=2)
    # ids 1..12, archived 2 3 7 10: missing 1 (history cleared below available_min_id=1), 4-6, 8-9, 11-12.
    assert (alpha.cleared_ids, alpha.never_seen_ids) == (1, 7)
    assert [(g.first_id, g.last_id) for g in alpha.largest_gaps] == [(4, 6), (8, 9), (11, 12)]
    # beta: a cursor at 3 and nothing archived: 1-3 never seen.
    assert (beta.posts, beta.never_seen_ids, beta.state, beta.last_outcome) == (0, 3, "private", "private")
    assert beta.flood_until is None
    assert [u.name for u in status.unresolved] == ["nosuchname"]
    assert (alpha.name, alpha.last_input) == ("@alpha", "alpha")
    assert [f.request for f in status.flood_waits] == ["messages.GetHistory"]
    assert status.last_run is not None and status.last_run.status == "partial"
    assert status.totals.posts == 4 and status.totals.deleted == 1
    data = status_as_json(status)
    json.dumps(data)
    assert data["channels"][0]["largest_gaps"][0] == {"first_id": 4, "last_id": 6, "size": 3}
    assert [c["name"] for c in data["channels"] + data["unresolved"]] == ["@alpha", "@beta", "nosuchname"]


def test_status_command_on_hand_built_archive(tmp_path: Path) -> None:
    path = tmp_path / "hand.duckdb"
    now = _seed_archive(path)
    result = run("status", "--archive", str(path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "@alpha" in out and "@beta" in out and "nosuchname" in out
    until = now + timedelta(hours=2)
    assert f"pending flood wait: no messages.GetHistory before {until:%Y-%m-%d %H:%M} UTC" in out
    assert "hit while collecting @alpha" in out
    assert "4-6" in out and "service messages" in out.replace("\n", " ")


# -- login dialogue and progress display (no network: a stand-in client with Telethon's real errors) -------------
class _LoginClient:
    """Answers like Telegram would during a login: one bad phone, one bad code, then a 2FA password."""

    def __init__(self) -> None:
        self.authorized = False
        self.calls: list[str] = []

    async def connect(self) -> None:
        self.calls.append("connect")

    async def is_user_authorized(self) -> bool:
        return self.authorized

    async def send_code_request(self, phone: str) -> None:
        from telethon import errors

        self.calls.append("send_code")
        if phone != "+15550001":
            raise errors.PhoneNumberInvalidError(request=None)

    async def sign_in(self, phone: str | None = None, code: str | None = None, *, password: str | None = None) -> None:
        from telethon import errors

        self.calls.append("sign_in")
        if password is not None:
            if password != "hunter2":
                raise errors.PasswordHashInvalidError(request=None)
            self.authorized = True
            return
        if code != "12345":
            raise errors.PhoneCodeInvalidError(request=None)
        raise errors.SessionPasswordNeededError(request=None)

    async def get_me(self) -> Any:
        from telethon.tl import types

        return types.User(id=1, first_name="Ada", last_name="L", username="ada")


def test_interactive_login_retries_and_asks_for_2fa() -> None:
    import asyncio

    from collector._telegram.login import interactive_login

    answers = {"phone": ["123", "+15550001"], "code": ["999", "12345"], "password": ["wrong", "hunter2"]}
    asked: list[tuple[str, bool]] = []

    def ask(what: str, secret: bool) -> str:
        asked.append((what, secret))
        return answers[what].pop(0)

    client = _LoginClient()
    name = asyncio.run(interactive_login(client, ask))  # type: ignore[arg-type]
    assert name == "Ada L (@ada)" and client.authorized
    assert [w for w, _ in asked] == ["phone", "phone", "code", "code", "password", "password"]
    assert all(secret == (what == "password") for what, secret in asked)


def test_interactive_login_gives_up_after_three_bad_codes() -> None:
    import asyncio

    from collector._telegram.login import SessionError, interactive_login

    def ask(what: str, secret: bool) -> str:
        return "+15550001" if what == "phone" else "000"

    with pytest.raises(SessionError, match="refused 3 times"):
        asyncio.run(interactive_login(_LoginClient(), ask))  # type: ignore[arg-type]


def test_progress_plain_lines_and_flood_waits() -> None:
    import io
    import logging

    from rich.console import Console

    from collector._cli.progress import CollectProgress, report_errors, report_table
    from collector._telegram.collect import ChannelResult, CollectReport

    buf = io.StringIO()
    progress = CollectProgress(Console(file=buf, width=200), live=False)
    ok = ChannelResult(input="durov", channel_id=1, username="durov", new_posts=120, refreshed_posts=5)
    waiting = ChannelResult(input="@slow", channel_id=2, username="slow").fail(
        "flood_wait", "Telegram asked to wait before more messages.GetHistory requests, until 2026-01-02 03:04 UTC")
    missing = ChannelResult(input="nosuch").fail("not_found", "no channel is called @nosuch")
    report = CollectReport(run_id=3, started_at=datetime(2026, 1, 2, tzinfo=UTC), status="partial",
                           channels=[ok, waiting, missing], requests={"messages.GetHistory": 2})
    with progress.watching_flood_sleeps():
        progress.begin("collect", ["durov", "@slow", "nosuch"])
        progress("resolved", ok)
        logging.getLogger("telethon.client.users").info(
            "Sleeping%s for %ds (%s) on %s flood wait", "", 30, timedelta(seconds=30), "GetHistoryRequest")
        progress("posts", ok)
        progress("done", ok)
        progress("resolved", waiting)
        progress("done", waiting)
        progress.end(report)                                 # 'nosuch' never reached a callback
    text = buf.getvalue()
    assert "@durov: ok, 120 new, 5 refreshed" in text
    assert "durov: Telegram asked to wait 30 s before more GetHistoryRequest" in text
    assert "@slow waits: Telegram asked to wait before more messages.GetHistory requests, until 2026-01-02 03:04" \
        in text
    assert "nosuch: not_found" in text
    buf.truncate(0)
    console = Console(file=buf, width=200)
    console.print(report_table(report))
    for line in report_errors(report):
        console.print(line)
    table = buf.getvalue()
    assert "120" in table and "3 channels" in table and "nosuch: not_found: no channel is called @nosuch" in table


def test_the_summary_counts_a_channel_of_another_slot_apart() -> None:
    """A channel handed on to its owner (``not_owned``) is no failure: the table says so in its own count, within
    80 columns."""
    import io

    from rich.console import Console

    from collector._cli.progress import report_table
    from collector._telegram.collect import ChannelResult, CollectReport

    ok = ChannelResult(input="durov", channel_id=1, username="durov", new_posts=120)
    elsewhere = ChannelResult(input="@theirs", channel_id=2, username="theirs").fail("not_owned", "slot 7 is b's")
    missing = ChannelResult(input="nosuch").fail("not_found", "no channel is called @nosuch")
    buf = io.StringIO()
    console = Console(file=buf, width=80)
    for channels, footer in (([ok, elsewhere], "0 not ok"), ([ok, elsewhere, missing], "1 not ok"), ([ok], "0 not ok")):
        buf.truncate(0)
        buf.seek(0)
        console.print(report_table(CollectReport(run_id=3, started_at=datetime(2026, 1, 2, tzinfo=UTC),
                                                 status="ok", channels=channels)))
        text = buf.getvalue()
        assert footer in text and ("1 not owned" in text) == (elsewhere in channels)
        assert max(len(line) for line in text.splitlines()) <= 80


def test_progress_live_display_runs_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from collector._cli.progress import CollectProgress
    from collector._telegram.collect import ChannelResult, CollectReport

    buf = io.StringIO()
    progress = CollectProgress(Console(file=buf, width=120, force_terminal=True))
    assert progress.live
    result = ChannelResult(input="durov", channel_id=1, username="durov", new_posts=50)
    progress.begin("collect", ["durov"])
    progress("posts", result)
    progress("done", result)
    progress.end(CollectReport(run_id=1, started_at=datetime(2026, 1, 1, tzinfo=UTC), status="ok", channels=[result]))
    from rich.text import Text

    assert "run 1 ok: 1 channel, 50 new posts" in Text.from_ansi(buf.getvalue()).plain
