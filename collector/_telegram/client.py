"""The one way a command reaches Telegram: the account's client, or (testing only) the simulated Telegram.

Every ``tgspread`` command that talks to Telegram asks :func:`open_telegram` once. Normally the answer builds
the account's real ``TelegramClient`` from the config and the saved session. With ``TGSPREAD_SIMULATED_SEED``
set (tests and scripted checks, never users), it answers with a simulated world instead (``collector._simulated``:
a real ``TelegramClient`` whose network sender is simulated), sized by ``TGSPREAD_SIMULATED_CHANNELS`` (4),
``TGSPREAD_SIMULATED_DAYS`` (3) and with its clock moved on by ``TGSPREAD_SIMULATED_ADVANCE`` (``0s``).
These variables are read here and nowhere else.

Example::

    telegram = open_telegram(cfg)
    client = telegram.client()          # not connected yet
    await telegram.connect(client)      # ConnectionError / OSError when Telegram cannot be reached
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from collector._config import Config, ConfigError, parse_duration

from .login import build_client, connect_authorized

if TYPE_CHECKING:
    from telethon import TelegramClient

    from collector._simulated import World

# Testing only: collect from the simulated Telegram instead of the real one (see README, "Testing").
SIMULATED_ENV = "TGSPREAD_SIMULATED_SEED"
_CHANNELS_ENV = "TGSPREAD_SIMULATED_CHANNELS"
_DAYS_ENV = "TGSPREAD_SIMULATED_DAYS"
_ADVANCE_ENV = "TGSPREAD_SIMULATED_ADVANCE"


@dataclass
class Telegram:
    """Where a command's clients come from: the account (``world`` None) or a simulated world (testing only)."""

    cfg: Config
    world: World | None = None
    seed: int | None = None

    def client(self) -> TelegramClient:
        """A new client, not connected yet (credential and session problems surface here)."""
        if self.world is None:
            return build_client(self.cfg)
        from collector._simulated import simulated_client

        return simulated_client(self.world, flood_sleep_threshold=self.cfg.flood_sleep_threshold)

    async def connect(self, client: TelegramClient) -> None:
        """Connect and check the account's client; a simulated one needs nothing."""
        if self.world is None:
            await connect_authorized(client)

    def now(self) -> datetime | None:
        """The simulated world's clock, or None (the real time)."""
        return self.world.now if self.world is not None else None

    def notice(self, doing: str) -> str:
        """The line a command prints when it works on the simulated Telegram (``doing``: "collecting from")."""
        return f"{SIMULATED_ENV} is set: {doing} the simulated Telegram (seed {self.seed}), not Telegram"


def open_telegram(cfg: Config) -> Telegram:
    """The account's Telegram, or the simulated one when ``TGSPREAD_SIMULATED_SEED`` is set (testing only)."""
    if not os.environ.get(SIMULATED_ENV):
        return Telegram(cfg)
    try:
        seed = int(os.environ[SIMULATED_ENV])
        channels = int(os.environ.get(_CHANNELS_ENV, "4"))
        days = int(os.environ.get(_DAYS_ENV, "3"))
        advance = parse_duration(os.environ.get(_ADVANCE_ENV, "0s"))
    except ValueError as exc:
        raise ConfigError(f"TGSPREAD_SIMULATED_* (testing only) are malformed: {exc}") from None
    from collector._simulated import generate_world

    world = generate_world(seed, channels=channels, days=days)
    if advance:
        world.advance(advance)
    return Telegram(cfg, world, seed)
