"""Simulated accounts (issue 15): several accounts on one world, each with its own flood limits and state."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from telethon import errors

from collector._simulated import Fault, generate_world, simulated_client
from collector._simulated.account import Account
from collector._simulated.generate import collected_channels

HISTORY = "messages.GetHistory"


def test_each_account_has_its_own_limit_and_flood_waits_over_one_world() -> None:
    world = generate_world(2, channels=2, days=2, special_seeds=False)
    name = str(collected_channels(world)[0].username_at(world.now))
    a = Account(world, "a", limits={HISTORY: (3, timedelta(hours=1))})
    b = Account(world, "b")

    async def history(account: Account) -> None:
        client = simulated_client(account, flood_sleep_threshold=0)
        channel = await client.get_entity(name)
        await client.get_messages(channel, limit=5)

    for _ in range(3):
        asyncio.run(history(a))
    with pytest.raises(errors.FloodWaitError) as hit:
        asyncio.run(history(a))
    assert 3590 <= hit.value.seconds <= 3600 and a.limited[HISTORY] == 1
    asyncio.run(history(b))                           # b is not limited by a's limit, nor by a's flood wait
    assert b.requests[HISTORY] == 1 and a.requests[HISTORY] == 4 and not world.requests
    world.advance(timedelta(hours=1))                 # the window has passed, on the shared clock
    asyncio.run(history(a))
    assert a.allowed(HISTORY, timedelta(hours=2)) == 6 and b.allowed(HISTORY, timedelta(hours=2)) == float("inf")
    # a fault injected into one account fires for that account only
    fault = b.inject(Fault("FLOOD_WAIT", request=HISTORY, seconds=86400, at=1))
    with pytest.raises(errors.FloodWaitError):
        asyncio.run(history(b))
    asyncio.run(history(a))
    assert fault.fired == 1 and a.channels is world.channels and a.now == world.now
