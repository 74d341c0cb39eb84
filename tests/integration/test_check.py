"""`tgspread check` (issue 17, item 30) and the network exit code when something that is not Telegram answers
(item 28). Never Telegram: the simulated Telegram, a closed loopback port, and a loopback server that answers
with HTTP. The live smoke test at the end runs only with ``pytest -m live`` and real credentials.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collector._cli.app import app
from collector._cli.common import Exit
from collector._simulated import generate_world
from collector._simulated.generate import collected_channels
from collector._telegram.client import SIMULATED_ENV
from collector._telegram.login import PhoneFreeSession
from tests.helpers.terminal import in_terminal

ROOT = Path(__file__).resolve().parents[2]
CREDS = {"TG_API_ID": "12345", "TG_API_HASH": "0123456789abcdef0123456789abcdef"}


def _session_at(path: Path, port: int) -> Path:
    """A session file (mode 600) whose data centre address is 127.0.0.1:``port``: the client goes nowhere else."""
    session = PhoneFreeSession(str(path))
    session.set_dc(2, "127.0.0.1", port)
    session.save()
    session.close()
    path.chmod(0o600)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])     # closed again when the block ends: connections are refused


@pytest.fixture
def http_port() -> Iterator[int]:
    """A loopback server that answers everything with an HTTP error page, as a proxy or captive portal would."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    server.close()


def test_check_passes_every_step_on_the_simulated_telegram() -> None:
    world = generate_world(3, channels=2, days=1)
    name = str(collected_channels(world)[0].username_at(world.now))
    env = {SIMULATED_ENV: "3", "TGSPREAD_SIMULATED_CHANNELS": "2", "TGSPREAD_SIMULATED_DAYS": "1",
           "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["check", "--channel", name], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    for step in ("credentials", "session file", "connect", "resolve", "fetch one page"):
        assert step in result.stdout
    assert "FAILED" not in result.stdout and "every step passed" in result.stdout
    assert " s " in result.stdout or " s │" in result.stdout          # each step with its time


def test_check_offline_fails_at_connect_with_the_network_exit_code(tmp_path: Path) -> None:
    session = _session_at(tmp_path / "s.session", _closed_port())
    result = CliRunner().invoke(app, ["check", "--session", str(session)], env={**CREDS, "COLUMNS": "200"})
    assert result.exit_code == Exit.NETWORK, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tgspread: error: check failed at connect: could not reach")
    assert "credentials" in result.stdout and "session file" in result.stdout and "resolve" not in result.stdout


def test_check_and_login_when_something_answers_with_http(tmp_path: Path, http_port: int) -> None:
    session = _session_at(tmp_path / "s.session", http_port)
    result = CliRunner().invoke(app, ["check", "--session", str(session)], env={**CREDS, "COLUMNS": "200"})
    assert result.exit_code == Exit.NETWORK, result.stdout + result.stderr
    assert "not as Telegram does" in result.stderr and "IncompleteRead" not in result.stderr
    code, out = in_terminal(["login", "--session", str(session)], 120, tmp_path,
                            {**CREDS, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)})
    assert code == Exit.NETWORK, out
    assert "not as Telegram does" in out and "unexpected" not in out


@pytest.mark.live
def test_live_check_against_the_real_telegram() -> None:
    """Off by default (``-m live``): runs ``tgspread check`` with the credentials and session of this machine."""
    missing = [name for name in ("TG_API_ID", "TG_API_HASH") if not os.environ.get(name)]
    if missing:
        pytest.skip(f"no Telegram credentials: set {' and '.join(missing)} and run `tgspread login` first")
    proc = subprocess.run([sys.executable, "-m", "collector", "check"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
