"""The simulated Telegram in its own process (``collector._simulated.remote``) answers exactly as in-process.

``make bench`` measures the collector's peak RSS with the world in another process; this shows that the
remote path archives the same thing as the in-process one, and that server errors cross the pipe.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import pytest
from telethon import errors
from telethon.tl import functions

from collector import Archive, collect
from collector._simulated import generate_world
from collector._simulated.remote import remote_simulated_client
from tests.helpers.simworld import run_pass

SEED, CHANNELS, DAYS = 5, 3, 2.0


def _posts(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT channel_id, message_id, text, views, fwd_channel_id FROM posts "
                           "ORDER BY ALL").fetchall()


def test_remote_world_archives_what_the_in_process_world_does(tmp_path: Path) -> None:
    local = tmp_path / "local.duckdb"
    run_pass(generate_world(SEED, channels=CHANNELS, days=DAYS), local)

    async def remote_pass() -> str:
        client, remote = remote_simulated_client(generate_world, SEED, channels=CHANNELS, days=DAYS)
        try:
            with Archive(tmp_path / "remote.duckdb") as archive:
                report = await collect(client, remote.seeds, archive, now=remote.now)
            return report.status
        finally:
            remote.close()

    asyncio.run(remote_pass())
    assert _posts(tmp_path / "remote.duckdb") == _posts(local)
    assert len(_posts(local)) > 50


def test_server_errors_cross_the_pipe() -> None:
    async def go() -> None:
        client, remote = remote_simulated_client(generate_world, SEED, channels=CHANNELS, days=DAYS)
        try:
            with pytest.raises(errors.UsernameNotOccupiedError):
                await client(functions.contacts.ResolveUsernameRequest(username="no_such_channel_here"))
        finally:
            remote.close()
        assert not remote.process.is_alive()

    asyncio.run(go())
