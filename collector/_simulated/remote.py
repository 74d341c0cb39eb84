"""The simulated Telegram in a process of its own: a client here, the world and its server over a pipe.

Used where the collector's own resources must be measured apart from the simulation's (``make bench``:
the peak RSS of archiving a channel of 1,000,000 posts is the collector's, not that of a simulated world
of a million messages held in the same process). The bytes crossing the pipe are exactly the TL bytes a
real connection would carry: the client encodes each request, the server process decodes, answers and
encodes, the client decodes the answer with Telethon's own ``read_result``.

Example::

    client, remote = remote_simulated_client(generate_channel_world, 7, posts=1_000_000)
    try:
        report = await collect(client, remote.seeds, archive, now=remote.now)
    finally:
        remote.close()
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from telethon import TelegramClient

from .server import RpcFailure, SimulatedSender
from .world import World

_OK, _RPC, _CONNECTION, _CRASH = "ok", "rpc", "connection", "crash"


def _serve(conn: Connection, factory: Callable[..., World], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The server process: build the world, announce its clock and seeds, then answer requests until EOF."""
    world = factory(*args, **kwargs)
    sender = SimulatedSender(world)
    conn.send((world.now, list(world.seeds)))
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        try:
            conn.send((_OK, sender.answer_bytes(data)))
        except RpcFailure as e:
            conn.send((_RPC, (e.code, e.message)))
        except ConnectionError as e:
            conn.send((_CONNECTION, str(e)))
        except Exception as e:  # a bug in the simulation: surface it in the client, not as a hang
            conn.send((_CRASH, f"{type(e).__name__}: {e}"))


@dataclass
class RemoteWorld:
    """The server process of a remote simulation: its world's clock and seeds at start; ``close()`` ends it."""

    now: datetime
    seeds: list[str]
    process: Any
    conn: Connection

    def close(self) -> None:
        self.conn.close()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


class RemoteSender(SimulatedSender):
    """A :class:`SimulatedSender` whose server side runs in another process (see :func:`remote_simulated_client`)."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        super().__init__(World(channels={}, now=now))   # an empty local world: nothing is answered from it
        self._conn = conn

    def answer_bytes(self, data: bytes) -> bytes:
        self._conn.send_bytes(data)
        kind, payload = self._conn.recv()
        if kind == _OK:
            answer: bytes = payload
            return answer
        if kind == _RPC:
            raise RpcFailure(*payload)
        if kind == _CONNECTION:
            raise ConnectionError(payload)
        raise RuntimeError(f"the simulated server failed: {payload}")


def remote_simulated_client(factory: Callable[..., World], *args: Any, flood_sleep_threshold: int = 10,
                            **kwargs: Any) -> tuple[TelegramClient, RemoteWorld]:
    """A client answered by ``factory(*args, **kwargs)``'s world living in a fresh (spawned) process.

    ``factory`` must be importable by name (a module-level function) since the server process is spawned.
    """
    from . import simulated_client

    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(there, factory, args, kwargs), daemon=True,
                          name="tgspread-simulated-telegram")
    process.start()
    there.close()
    try:
        now, seeds = here.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"the simulated server process exited ({process.exitcode}) before answering") from None
    client = simulated_client(World(channels={}, now=now), flood_sleep_threshold=flood_sleep_threshold)
    client._sender = RemoteSender(here, now)
    return client, RemoteWorld(now=now, seeds=seeds, process=process, conn=here)
