"""``tgspread check``: prove a real setup works before a month of scheduled runs (issue 17, item 30).

Five steps, each timed, each stopping the check when it fails: the API credentials are set and well formed;
the session file exists and only its owner can read it; the client connects and the session is logged in;
one public channel resolves; one page of its history is fetched into a temporary archive (deleted after).
At most five requests reach Telegram (resolve, the channel's full info, a page or two of history), under a
request budget, so a check never costs a flood wait.

Example::

    steps = await run_check(open_telegram(cfg), cfg, "telegram")
    for step in steps:
        print(step.name, step.ok, f"{step.seconds:.2f} s", step.detail)
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector._archive.archive import Archive
from collector._config import Config, ConfigError

from .login import SessionError, check_session_file, session_file

if TYPE_CHECKING:
    from .client import Telegram


#: The requests a check may send: resolve, the channel's full info (its snapshot), a page or two of history.
CHECK_REQUESTS = 5
#: Errors that mean something answered at Telegram's address, but not as Telegram does (an HTTP proxy, a
#: captive portal): the network is the problem, as when nothing answers.
NOT_TELEGRAM: tuple[type[BaseException], ...] = (asyncio.IncompleteReadError, EOFError)


@dataclass
class CheckStep:
    """One step of the check: ``kind`` says which exit code a failure means ("usage", "network", "channel")."""

    name: str
    ok: bool
    seconds: float
    detail: str
    kind: str = ""


async def run_check(telegram: Telegram, cfg: Config, channel: str) -> list[CheckStep]:
    """Run the steps in order; the list ends at the first that failed (see the module docstring)."""
    steps: list[CheckStep] = []

    def step(name: str, started: float, ok: bool, detail: str, kind: str = "") -> bool:
        steps.append(CheckStep(name, ok, time.monotonic() - started, detail, kind))
        return ok

    simulated = telegram.world is not None
    t = time.monotonic()
    try:
        creds = cfg.credentials() if not simulated else None
    except ConfigError as exc:
        step("credentials", t, False, str(exc), "usage")
        return steps
    step("credentials", t, True, f"api_id {creds.api_id}, api_hash set (not shown)" if creds else
         "not needed: the simulated Telegram (testing only)")
    t = time.monotonic()
    try:
        if not simulated:
            check_session_file(cfg.session)
    except SessionError as exc:
        step("session file", t, False, str(exc), "usage")
        return steps
    step("session file", t, True, f"{session_file(cfg.session)}: readable by its owner only" if not simulated
         else "not needed: the simulated Telegram (testing only)")
    t = time.monotonic()
    try:
        client = telegram.client()
        await telegram.connect(client)
    except SessionError as exc:
        step("connect", t, False, str(exc), "usage")
        return steps
    except (ConnectionError, OSError, asyncio.IncompleteReadError, EOFError) as exc:    # see NOT_TELEGRAM
        step("connect", t, False, connect_failure(exc), "network")
        return steps
    try:
        step("connect", t, True, "connected; the session is logged in")
        await _resolve_and_fetch(client, telegram, channel, step)
    finally:
        await client.disconnect()
    return steps


def connect_failure(exc: BaseException) -> str:
    """One line for a connection that failed: nothing answered, or something that is not Telegram did."""
    if isinstance(exc, NOT_TELEGRAM):
        return ("something answered at Telegram's address, but not as Telegram does (a proxy, a firewall or a "
                "captive portal in between?); check the network")
    return f"could not reach Telegram ({exc or type(exc).__name__}); check the network"


async def _resolve_and_fetch(client: Any, telegram: Telegram, channel: str, step: Any) -> None:
    from collector._scheduling.budget import RequestBudget

    from .collect import collect

    marks: dict[str, float] = {}
    started = time.monotonic()

    def progress(stage: str, result: Any) -> None:
        marks.setdefault(stage, time.monotonic())

    with tempfile.TemporaryDirectory(prefix="tgspread-check-") as folder:
        now = telegram.now()
        with Archive(Path(folder) / "check.duckdb") as archive:
            budget = RequestBudget(now or datetime.now(UTC), max_requests=CHECK_REQUESTS)
            report = await collect(client, [channel], archive, now=now, progress=progress, budget=budget)
            posts = archive.con.execute("SELECT count(*) FROM posts").fetchone()
        result = report.channels[0]
        resolved_at = marks.get("resolved", time.monotonic())
        if result.outcome not in ("ok", "flood_wait") or "resolved" not in marks:
            step("resolve", started, False, f"{channel}: {result.outcome}: {result.error or 'no details'}",
                 "channel")
            return
        steps_ok = step("resolve", started, True,
                        f"{channel} is @{result.username} (channel id {result.channel_id})")
        fetched = posts[0] if posts else 0
        if steps_ok and fetched:
            step("fetch one page", resolved_at, True, f"{fetched} posts written to a temporary archive (deleted "
                                                       f"again); {budget.total} requests in all")
        else:
            step("fetch one page", resolved_at, False, f"no post arrived: {result.error or result.outcome}",
                 "channel")


