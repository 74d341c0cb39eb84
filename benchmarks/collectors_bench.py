"""Three collectors on three simulated accounts, each with its own flood limits: how close to the limits (issue 15).

One generated world with a long history; its channels are split over three collectors by the lake's slots (an
assignment file, as ``tgspread shards`` shows it). Each collector has its own archive and its own simulated
account (:class:`collector._simulated.account.Account`) whose server answers ``FLOOD_WAIT`` beyond
``HISTORY_LIMIT`` history requests per ``WINDOW`` (each at most 100 posts). Every 1-3 minutes of simulated time
each collector runs as ``tgspread run --collector NAME`` does (its library calls: pick up from the lake, plan,
collect what is due under its budget and the flood waits it recorded, publish to the shared lake), for
``DURATION``: the whole world's backfill is not done by then. (At full size collector ``c``'s channels hold fewer
posts than its limit allows, so ``c`` runs out before the end; the note says how many posts each collector's channels
held at the end. docs/scale.md.)

Measured: posts collected per simulated second by the three together, against what the limits allow
(``3 x HISTORY_LIMIT x 100 posts per WINDOW``). Target: >= 90%. Also the wall-clock posts per second of the
three (one process, one after the other: the CPU cost, not a limit).

Usage::

    python -m benchmarks.collectors_bench [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = ["TARGET", "run"]

TARGET = 0.90
HISTORY = "messages.GetHistory"
HISTORY_LIMIT = 20                 # history requests per account per WINDOW
WINDOW = timedelta(hours=1)
SPACING = (1.0, 3.0)               # minutes between runs (a timer every 2 minutes with a random delay)
SEED = 9


def _world(quick: bool) -> Any:
    from collector._simulated import generate_world

    # channels * days * posts_per_day must exceed what the limits allow in DURATION (the backfill never ends)
    if quick:
        return generate_world(SEED, channels=9, days=6, future_days=1, posts_per_day=300, special_seeds=False,
                              external_channels=0), timedelta(hours=3)
    return generate_world(SEED, channels=12, days=12, future_days=1, posts_per_day=400, special_seeds=False,
                          external_channels=0), timedelta(hours=8)


def run(quick: bool = False) -> list[dict[str, Any]]:
    from collector._archive.archive import Archive
    from collector._archive.lake import publish
    from collector._archive.slots import SLOTS, slot
    from collector._scheduling.channel_set import add_channels
    from collector._scheduling.handoff import pick_up
    from collector._scheduling.ownership import Ownership
    from collector._scheduling.plan import RunSettings
    from collector._scheduling.runner import execute_plan, read_plan, run_inputs
    from collector._simulated import simulated_client
    from collector._simulated.account import Account
    from collector._simulated.generate import collected_channels
    from collector._telegram.collect import CollectSettings

    world, duration = _world(quick)
    names = ("a", "b", "c")
    channels = sorted((ch.channel_id for ch in collected_channels(world)), key=slot)
    per = len(channels) // 3          # a third of the channels each, cut between slots
    cut_a, cut_b = slot(channels[per - 1]), slot(channels[2 * per - 1])
    assignment = {s: "a" if s <= cut_a else "b" if s <= cut_b else "c" for s in range(SLOTS)}
    settings = RunSettings(interval=timedelta(minutes=1), jitter=timedelta(0), every=timedelta(minutes=2),
                           max_requests=1000, max_resolves_per_hour=20)
    rng = random.Random(SEED)
    posts = {n: 0 for n in names}
    wall = 0.0
    with tempfile.TemporaryDirectory(prefix="tgs-collectors-") as tmp:
        root = Path(tmp)
        accounts = {n: Account(world, n, limits={HISTORY: (HISTORY_LIMIT, WINDOW)}) for n in names}
        archives = {n: Archive(root / f"archive-{n}.duckdb") for n in names}
        try:
            for n in names:
                mine = [c for c in channels if assignment[slot(c)] == n]
                add_channels(archives[n], [str(world.channels[c].username_at(world.now)) for c in mine],
                             now=world.now)
            start = world.now
            end = start + duration
            while world.now < end:
                for n in names:
                    owned = Ownership(n, assignment)
                    began = time.perf_counter()
                    pick_up(archives[n], root / "lake", owned, now=world.now)
                    plan = read_plan(archives[n], run_inputs([], archives[n]), now=world.now, settings=settings,
                                     ownership=owned)
                    if plan.scheduled:
                        outcome = asyncio.run(execute_plan(
                            plan, simulated_client(accounts[n], flood_sleep_threshold=0), archives[n],
                            collect_settings=CollectSettings(ownership=owned, refresh=False)))
                        posts[n] += outcome.report.new_posts
                        publish(archives[n], root / "lake", collector=n, now=world.now)
                    wall += time.perf_counter() - began
                world.advance(timedelta(minutes=rng.uniform(*SPACING)))
            elapsed = (world.now - start).total_seconds()
        finally:
            for a in archives.values():
                a.close()
    allowed = sum(accounts[n].allowed(HISTORY, world.now - start) for n in names) * 100
    held = {n: sum(len(world.channels[c].posts(world.now)) for c in channels if assignment[slot(c)] == n)
            for n in names}
    total = sum(posts.values())
    share = total / allowed
    sent = {n: accounts[n].requests[HISTORY] for n in names}
    limited = {n: accounts[n].limited[HISTORY] for n in names}
    note = (f"{total:,} posts in {elapsed / 3600:g} simulated h by 3 accounts of {HISTORY_LIMIT} history requests "
            f"per {WINDOW.total_seconds() / 3600:g} h (<= 100 posts each: {allowed:,.0f} allowed); per collector "
            f"{', '.join(f'{n} {posts[n]:,}' for n in names)} (posts its channels held at the end: "
            f"{', '.join(f'{n} {held[n]:,}' for n in names)}); history requests sent {sent}, refused by the limit "
            f"{limited}; runs every {SPACING[0]:g}-{SPACING[1]:g} min (a flood wait ends between two runs)")
    return [
        {"benchmark": "3 collectors: posts per second against the flood limits", "value": round(100 * share, 1),
         "unit": "%", "target": f">= {100 * TARGET:g}", "ok": share >= TARGET, "note": note},
        {"benchmark": "3 collectors: posts per simulated second", "value": round(total / elapsed, 2),
         "unit": "posts/s", "target": "-", "ok": None,
         "note": f"the limits allow {allowed / elapsed:.2f} posts/s"},
        {"benchmark": "3 collectors: posts per wall-clock second", "value": round(total / wall) if wall else 0,
         "unit": "posts/s", "target": "-", "ok": None,
         "note": f"{wall:.1f} s of runs (plan, collect, publish) in one process"},
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(run(quick=args.quick), indent=1))


if __name__ == "__main__":
    main()
