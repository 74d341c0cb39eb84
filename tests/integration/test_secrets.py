"""Secrets and people: the session file, the api_hash and phone number, and chats of private people.

- The session file is created owner-only (0600 in a 0700 directory, whatever the umask) and refused,
  with a one-line ``chmod 600 PATH`` error, when its group or others may read it.
- ``tgspread login`` and ``tgspread collect`` run with a made-up api_hash and phone number against the
  simulated Telegram (the real ``TelegramClient`` on a real session file; only its network sender is
  simulated, plus the few login requests the simulated server lacks, defined here). Then every output is
  scanned for the two secrets: stdout, stderr, every logging record at DEBUG, the live rich progress
  display, the archive's bytes and every file written. Only the config file the user wrote may hold the hash.
- Groups (a public megagroup of the simulated world) are refused unless ``allow_private`` /
  ``--allow-private`` is given; users and bots are refused even then; invite links always.
- ``.gitignore`` keeps session files, archives and ``.env`` out of git.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import io
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer.testing
from rich.console import Console
from telethon import TelegramClient
from telethon.tl import functions, types
from typer.testing import CliRunner

import collector._cli.common as cli_common
import collector._cli.login as cli_login
import collector._telegram.client as telegram_client
from collector import Archive
from collector._cli.app import app
from collector._cli.common import Exit
from collector._config import load_config
from collector._parse.channel_ref import INVITE_REFUSED
from collector._simulated import generate_world, simulated_client, tl_build
from collector._simulated.server import RpcFailure, SimulatedSender
from collector._simulated.world import World
from collector._telegram.collect import CollectSettings, collect
from collector._telegram.login import SessionError, build_client, check_session_file, prepare_session_file

ROOT = Path(__file__).resolve().parents[2]
API_ID = "987654"
API_HASH = "a1b2c3d4e5f60718293a4b5c6d7e8f90"   # made up; what my.telegram.org would show
PHONE = "+447700900123"                        # Ofcom's range for drama: no real person's number
CODE = "24680"
runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TG_API_ID", "TG_API_HASH", "TGSPREAD_ARCHIVE", "TGSPREAD_SESSION", "TGSPREAD_DEBUG",
                 telegram_client.SIMULATED_ENV, "TGSPREAD_SIMULATED_CHANNELS", "TGSPREAD_SIMULATED_DAYS",
                 "TGSPREAD_SIMULATED_ADVANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# -- session file permissions -------------------------------------------------------------------------------
def test_a_new_session_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    with umask(0):
        path = prepare_session_file(tmp_path / "fresh" / "me")
    assert path.name == "me.session"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    check_session_file(path)                       # accepted as it is


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606])
def test_a_session_others_can_read_is_refused(tmp_path: Path, mode: int, monkeypatch: pytest.MonkeyPatch) -> None:
    session = tmp_path / "s.session"
    session.write_bytes(b"")
    session.chmod(mode)
    with pytest.raises(SessionError, match=r"chmod 600 "):
        check_session_file(session)
    monkeypatch.setenv("TG_API_ID", API_ID)
    monkeypatch.setenv("TG_API_HASH", API_HASH)
    result = runner.invoke(app, ["collect", "durov_news", "--session", str(session)])
    assert result.exit_code == Exit.USAGE
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"run `chmod 600 {session}`" in lines[0], result.stderr
    assert stat.S_IMODE(session.stat().st_mode) == mode      # reported, not silently changed
    assert not (tmp_path / "archive.duckdb").exists()


def test_build_client_keeps_an_existing_session_owner_only(tmp_path: Path) -> None:
    cfg = load_config(None, env={"TG_API_ID": API_ID, "TG_API_HASH": API_HASH}, cwd=tmp_path,
                      session=tmp_path / "login")
    with umask(0):
        client = build_client(cfg, create=True)
    client.session.save()
    assert stat.S_IMODE((tmp_path / "login.session").stat().st_mode) == 0o600


# -- the login flow and a collection, scanned for the secrets ---------------------------------------------------
class LoginServer:
    """The login part of Telegram (auth.sendCode, auth.signIn, updates before and after) on a simulated sender.

    Checks that the requests really carry the api_hash and phone number (so the scan below looks for
    values that went through the code), and answers the account's own user with its phone number, as
    Telegram does.
    """

    def __init__(self) -> None:
        self.signed_in = False
        self.codes_sent = 0

    @staticmethod
    def me() -> types.User:
        user = tl_build.self_user_tl()
        user.phone = PHONE.lstrip("+")
        return user

    def install(self, sender: SimulatedSender) -> None:
        state = sender._handlers[functions.updates.GetStateRequest]
        users = sender._handlers[functions.users.GetUsersRequest]

        def get_state(req: Any) -> Any:
            if not self.signed_in:
                raise RpcFailure(401, "AUTH_KEY_UNREGISTERED")
            return state(req)

        def send_code(req: functions.auth.SendCodeRequest) -> types.auth.SentCode:
            assert (req.api_id, req.api_hash, req.phone_number) == (int(API_ID), API_HASH, PHONE.lstrip("+"))
            self.codes_sent += 1
            return types.auth.SentCode(type=types.auth.SentCodeTypeApp(length=len(CODE)), phone_code_hash="c0ffee")

        def sign_in(req: functions.auth.SignInRequest) -> types.auth.Authorization:
            if (req.phone_number, req.phone_code_hash, req.phone_code) != (PHONE.lstrip("+"), "c0ffee", CODE):
                raise RpcFailure(400, "PHONE_CODE_INVALID")
            self.signed_in = True
            return types.auth.Authorization(user=self.me())

        def get_users(req: functions.users.GetUsersRequest) -> list[types.User]:
            if not self.signed_in:
                raise RpcFailure(401, "AUTH_KEY_UNREGISTERED")
            if any(isinstance(u, types.InputUserSelf) for u in req.id):
                return [self.me()]
            return list(users(req))

        def get_difference(req: Any) -> types.updates.DifferenceEmpty:
            return types.updates.DifferenceEmpty(date=sender.world.now, seq=0)

        sender._handlers.update({
            functions.updates.GetStateRequest: get_state,
            functions.auth.SendCodeRequest: send_code,
            functions.auth.SignInRequest: sign_in,
            functions.users.GetUsersRequest: get_users,
            functions.updates.GetDifferenceRequest: get_difference,
        })


def simulated_build_client(world: World, server: LoginServer) -> Callable[..., TelegramClient]:
    """``collector._telegram.login.build_client`` for real (session file, credentials), then the simulated network."""
    real = build_client

    def build(config: Any, *, create: bool = False) -> TelegramClient:
        client = real(config, create=create)
        sender = SimulatedSender(world)
        server.install(sender)
        client._sender = sender

        async def connect() -> None:   # the real connect() opens a socket; the sender is already "connected"
            return None

        client.connect = connect
        return client
    return build


SECRETS = {"api_hash": API_HASH, "phone": PHONE, "phone digits": PHONE.lstrip("+"), "phone local": "7700900123"}


def _forms(value: str) -> set[bytes]:
    """``value`` as UTF-8 and UTF-16 text in either case, and a number as SQLite (big-endian, 6 or 8 bytes)
    and DuckDB (little-endian BIGINT) store it."""
    out = {form.encode(enc) for form in {value, value.upper()} for enc in ("utf-8", "utf-16-le")}
    if value.isdigit():
        number = int(value)
        out |= {number.to_bytes(6, "big"), number.to_bytes(8, "big"), number.to_bytes(8, "little")}
    return out


def _found(data: bytes) -> list[str]:
    """Which of :data:`SECRETS` ``data`` holds, in any form of :func:`_forms`."""
    return [name for name, value in SECRETS.items() if any(form in data for form in _forms(value))]


def _phones(session: Path) -> list[Any]:
    """The phone column of every entity a Telethon session file caches."""
    with contextlib.closing(sqlite3.connect(session)) as con:
        return [row[0] for row in con.execute("SELECT phone FROM entities")]


def test_login_and_collect_leave_the_api_hash_and_phone_number_nowhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Log in and collect twice through the CLI, then scan every output and every file written."""
    world = generate_world(3, channels=2, days=2)
    server = LoginServer()
    build = simulated_build_client(world, server)
    monkeypatch.setattr(cli_login, "build_client", build)         # tgspread login
    monkeypatch.setattr(telegram_client, "build_client", build)   # every command that asks for a client
    monkeypatch.setattr(typer.testing._NamedTextIOWrapper, "isatty", lambda self: True)  # login needs a terminal
    (tmp_path / "tgspread.toml").write_text(f'[telegram]\napi_id = {API_ID}\napi_hash = "{API_HASH}"\n')
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    with umask(0o022):
        login = runner.invoke(app, ["login"], input=f"{PHONE}\n{CODE}\n")
    assert login.exit_code == 0, login.output
    assert server.signed_in and server.codes_sent == 1
    # CliRunner writes what is typed at a visible prompt into stdout, as a terminal shows typing: that
    # echo is the user's own screen, not something tgspread prints. Remove exactly it, once.
    prompt = "(international format, e.g. +441234567890): "
    assert login.stdout.count(prompt + PHONE + "\n") == 1
    texts += [login.stdout.replace(prompt + PHONE + "\n", prompt + "\n", 1), login.stderr]
    session = tmp_path / "xdg" / "tgspread" / "tgspread.session"
    assert _phones(session) and set(_phones(session)) == {None}, "the login left a phone number in the session"

    names = [s for s in world.seeds if "gone" not in s]
    for _ in range(2):
        live = io.StringIO()
        live_display = Console(file=live, force_terminal=True, width=160)
        monkeypatch.setattr(cli_common, "stderr", live_display)
        result = runner.invoke(app, ["collect", "--archive", "archive.duckdb", *names])
        assert result.exit_code in (Exit.OK, Exit.PARTIAL), result.output
        texts += [result.stdout, result.stderr, live.getvalue()]
        world.advance(timedelta(days=1))
    with Archive(tmp_path / "archive.duckdb", read_only=True) as opened:
        row = opened.con.execute("SELECT count(*) FROM posts").fetchone()
    assert row is not None and row[0] > 0
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or "", record.name]
    # Every logger, Telethon's included, was recording at DEBUG (Telethon says little here: its socket
    # layer, the chattiest part, is the simulated sender).
    assert logging.getLogger("telethon.client.users").getEffectiveLevel() == logging.DEBUG
    assert caplog.records and any(r.levelno == logging.DEBUG for r in caplog.records)

    leaks = {name for text in texts for name in _found(text.encode())}
    assert not leaks, f"printed or logged: {leaks}"

    root = tmp_path
    files = [p for p in root.rglob("*") if p.is_file() and p.name != "tgspread.toml"]
    written = {p.name for p in files}
    assert "tgspread.session" in written and "archive.duckdb" in written, written
    leaks_in = {str(p.relative_to(root)): _found(p.read_bytes()) for p in files}
    assert not {k: v for k, v in leaks_in.items() if v}, leaks_in
    assert _found((root / "tgspread.toml").read_bytes()) == ["api_hash"]   # the scan finds what is there

    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    assert stat.S_IMODE(session.parent.stat().st_mode) == 0o700
    phones = _phones(session)
    assert len(phones) > 1 and set(phones) == {None}      # the entity cache works (channels too), without phones


def test_an_older_session_holding_a_phone_number_is_cleaned(tmp_path: Path) -> None:
    from telethon.sessions import SQLiteSession

    path = tmp_path / "old.session"
    old = SQLiteSession(str(path))
    old.process_entities(types.contacts.ResolvedPeer(peer=types.PeerUser(5), chats=[], users=[LoginServer.me()]))
    old.save()
    old.close()
    with contextlib.closing(sqlite3.connect(path)) as con:
        assert con.execute("SELECT phone FROM entities").fetchall() == [(int(PHONE.lstrip("+")),)]
    assert "phone digits" in _found(path.read_bytes())          # the scan sees a number stored as SQLite does
    path.chmod(0o600)
    cfg = load_config(None, env={"TG_API_ID": API_ID, "TG_API_HASH": API_HASH}, cwd=tmp_path, session=path)
    build_client(cfg).session.close()
    with contextlib.closing(sqlite3.connect(path)) as con:
        assert con.execute("SELECT phone FROM entities").fetchall() == [(None,)]
    assert _found(path.read_bytes()) == []


# -- private chats and people ----------------------------------------------------------------------------------
USER_NAME, BOT_NAME = "some_person", "helper_bot"


def _resolving_people(world: World) -> TelegramClient:
    """A simulated client on which two usernames resolve to a user and a bot, as on Telegram."""
    client = simulated_client(world)
    sender: SimulatedSender = client._sender
    channels = sender._handlers[functions.contacts.ResolveUsernameRequest]

    def resolve(req: functions.contacts.ResolveUsernameRequest) -> types.contacts.ResolvedPeer:
        people = {USER_NAME: (7001, False), BOT_NAME: (7002, True)}
        if req.username not in people:
            return channels(req)
        user_id, bot = people[req.username]
        user = types.User(id=user_id, access_hash=user_id * 31, first_name="A", username=req.username, bot=bot,
                          bot_info_version=1 if bot else None, phone=None if bot else "447700900999")
        return types.contacts.ResolvedPeer(peer=types.PeerUser(user_id), chats=[], users=[user])

    sender._handlers[functions.contacts.ResolveUsernameRequest] = resolve
    return client


def _pass(world: World, path: Path, names: list[str], *, allow_private: bool) -> dict[str, Any]:
    async def run() -> Any:
        client = _resolving_people(world)
        with Archive(path) as archive:
            return await collect(client, names, archive, now=world.now,
                                 settings=CollectSettings(allow_private=allow_private))
    return asyncio.run(run()).by_input()


def _posts(path: Path, channel_id: int) -> int:
    with Archive(path, read_only=True) as opened:
        row = opened.con.execute("SELECT count(*) FROM posts WHERE channel_id = ?", [channel_id]).fetchone()
    return int(row[0]) if row else 0


def test_groups_users_bots_and_invites_are_refused_by_default(tmp_path: Path) -> None:
    world = generate_world(3, channels=2, days=2)
    group = next(ch for ch in world.channels.values() if ch.megagroup)
    group_name = group.usernames[-1][1]
    path = tmp_path / "a.duckdb"
    names = [group_name, USER_NAME, BOT_NAME, "https://t.me/+AbCdEf123456"]
    results = _pass(world, path, names, allow_private=False)
    group_result = results[group_name]
    assert group_result.outcome == "error" and "is a group" in (group_result.error or "")
    assert "--allow-private" in (group_result.error or "")
    assert _posts(path, group.channel_id) == 0
    for name in (USER_NAME, BOT_NAME):
        assert results[name].outcome == "error"
        assert "user or bot" in (results[name].error or "") and "never collected" in (results[name].error or "")
    assert results["https://t.me/+AbCdEf123456"].outcome == "private"
    assert results["https://t.me/+AbCdEf123456"].error == INVITE_REFUSED
    with Archive(path, read_only=True) as opened:      # the refusals are on record, with their reasons
        rows = opened.con.execute("SELECT input, outcome, error FROM run_channels").fetchall()
        people = opened.con.execute("SELECT count(*) FROM channels WHERE channel_id IN (7001, 7002)").fetchone()
    assert {r[0] for r in rows} == set(names) and all(r[2] for r in rows)
    assert people == (0,)


def test_allow_private_collects_a_group_but_never_users_and_the_group_stays_marked(tmp_path: Path) -> None:
    world = generate_world(3, channels=2, days=2)
    group = next(ch for ch in world.channels.values() if ch.megagroup)
    group_name = group.usernames[-1][1]
    path = tmp_path / "a.duckdb"
    refused = _pass(world, path, [group_name], allow_private=False)[group_name]
    assert refused.outcome == "error" and _posts(path, group.channel_id) == 0
    allowed = _pass(world, path, [group_name, USER_NAME, BOT_NAME], allow_private=True)
    assert allowed[group_name].outcome == "ok" and allowed[group_name].new_posts > 0
    assert _posts(path, group.channel_id) == allowed[group_name].new_posts
    assert allowed[USER_NAME].outcome == "error" and allowed[BOT_NAME].outcome == "error"
    world.advance(timedelta(days=2))   # a snapshot is due: it must not turn the group into a plain channel
    again = _pass(world, path, [group_name, str(group.channel_id)], allow_private=False)
    assert again[group_name].outcome == "error" and again[str(group.channel_id)].outcome == "error"
    assert _posts(path, group.channel_id) == allowed[group_name].new_posts     # refused again: nothing new


def test_allow_private_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(telegram_client.SIMULATED_ENV, "3")
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", "2")
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", "1")
    world = generate_world(3, channels=2, days=1)
    group = next(ch for ch in world.channels.values() if ch.megagroup).usernames[-1][1]
    refused = runner.invoke(app, ["collect", group])
    assert refused.exit_code == Exit.PARTIAL and "--allow-private" in refused.stdout.replace("\n", "")
    allowed = runner.invoke(app, ["collect", "--allow-private", group])
    assert allowed.exit_code == Exit.OK, allowed.output


# -- .gitignore ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tgspread.session", "x/y/me.session", "me.session-journal", "archive.duckdb",
                                  "data/archive.duckdb.wal", ".env"])
def test_gitignore_keeps_secrets_and_archives_out_of_git(name: str) -> None:
    patterns = [p.strip() for p in (ROOT / ".gitignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    base = name.rsplit("/", 1)[-1]
    assert any(fnmatch.fnmatch(base, p) or fnmatch.fnmatch(name, p) for p in patterns), name
