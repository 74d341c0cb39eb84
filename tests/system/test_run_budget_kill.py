"""The hourly resolve budget survives a killed run (issue 17, item 27): every resolve is recorded in the
archive before it is sent, so a run SIGKILLed mid-way and rerun in the same hour never resolves more than
``max_resolves_per_hour`` in all.

The killed run is this file as a subprocess (``python -m tests.system.test_run_budget_kill worker ARCHIVE``) that
SIGKILLs itself when the simulated server has received its 2nd ``contacts.ResolveUsername`` (no cleanup, no
``finally``); the rerun runs in this process at the same simulated clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from collector import Archive
from collector._scheduling.plan import RESOLVE, RunSettings
from collector._scheduling.runner import execute_plan, read_plan
from collector._simulated import World, generate_world, simulated_client
from collector._simulated.generate import collected_channels

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 3
KILL_AT = 2


def _world() -> World:
    return generate_world(6, channels=5, days=1, posts_per_day=5, special_seeds=False)


def _run(world: World, path: Path) -> None:
    names = [str(ch.username_at(world.now)) for ch in collected_channels(world)]
    settings = RunSettings(max_resolves_per_hour=LIMIT, max_requests=200)
    with Archive(path) as archive:
        plan = read_plan(archive, names, now=world.now, settings=settings)
        asyncio.run(execute_plan(plan, simulated_client(world), archive))


def test_a_killed_run_does_not_spend_the_resolve_budget_twice(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    proc = subprocess.run([sys.executable, "-m", "tests.system.test_run_budget_kill", "worker", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    world = _world()
    _run(world, path)                             # the rerun, in the same hour
    assert KILLED_RESOLVES + world.requests[RESOLVE] <= LIMIT
    with Archive(path, read_only=True) as archive:
        recorded = archive.con.execute("SELECT sum(requests) FROM run_requests WHERE request = ?",
                                       [RESOLVE]).fetchone()[0]
    assert recorded == KILLED_RESOLVES + world.requests[RESOLVE]


KILLED_RESOLVES = KILL_AT      # the server received this many before the worker died


def _worker(path: Path) -> None:
    class KillAt(Counter[str]):
        def __setitem__(self, key: str, value: int) -> None:
            super().__setitem__(key, value)
            if key == RESOLVE and value == KILL_AT:
                os.kill(os.getpid(), signal.SIGKILL)       # no cleanup, no flush, no close

    world = _world()
    world.requests = KillAt()
    _run(world, path)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _worker(Path(sys.argv[2]))
