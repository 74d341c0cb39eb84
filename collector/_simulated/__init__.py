"""The simulated Telegram: a deterministic world of channels behind a real ``telethon.TelegramClient``.

Only the client's network sender is replaced (:class:`SimulatedSender`); Telethon's request building,
answer parsing, entity cache, paging and flood-wait handling all run for real. No network, ever.

Example::

    from . import generate_world, simulated_client

    world = generate_world(seed=7, channels=20, days=30)
    client = simulated_client(world)             # never call connect() / start() on it
    channel = await client.get_entity("some_channel")
    posts = await client.get_messages(channel, limit=100)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from telethon import TelegramClient
from telethon.sessions import MemorySession

from . import tl_build
from .model import Fault as Fault  # (names the tests and the demo use)
from .server import SimulatedSender
from .world import World as World

if TYPE_CHECKING:
    from .account import Account
    from .generate import generate_world as generate_world

# Credentials are never checked: nothing is sent anywhere. They only satisfy TelegramClient's constructor.
FAKE_API_ID = 1
FAKE_API_HASH = "0" * 32


def simulated_client(world: World | Account, *, flood_sleep_threshold: int = 10) -> TelegramClient:
    """A ``TelegramClient`` whose network layer answers from ``world``; ready to use, never connected.

    Waits up to ``flood_sleep_threshold`` seconds are slept (really) and retried by Telethon; longer ones
    raise ``FloodWaitError``. Server state (flood deadlines, faults, request counts) lives in ``world``,
    so a new client per collection pass sees the same server. An :class:`~.account.Account` instead of a
    world: one of several accounts on that world, with its own flood limits.
    """
    client = TelegramClient(
        MemorySession(),
        FAKE_API_ID,
        FAKE_API_HASH,
        flood_sleep_threshold=flood_sleep_threshold,
        # A collector has no use for updates; like a real client built this way, every request then goes
        # out wrapped in invokeWithoutUpdates, which the simulated server unwraps.
        receive_updates=False,
    )
    # Replace the network layer. TelegramClient only calls send()/is_connected()/disconnect() on it once
    # "connected", and __call__ never checks connection state itself.
    client._sender = SimulatedSender(cast(World, world))   # an Account stands in for its world
    # What a logged-in client knows after start(): its own user (get_me(input_peer=True), message `out`
    # flags) and that it is authorised (is_user_authorized() would otherwise send updates.getState).
    client._mb_entity_cache.set_self_user(
        tl_build.SELF_USER_ID, False, tl_build.derived_hash(tl_build.SELF_USER_ID, salt=3)
    )
    client._authorized = True
    return client


def __getattr__(name: str) -> Any:
    # generate_world lives in .generate, which imports heavier generator code; load it on first use so
    # this package imports (and the server works with hand-built worlds) without it.
    if name == "generate_world":
        from .generate import generate_world

        return generate_world
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
