"""Shared helpers for tests: run passes against the simulated Telegram, and the world's ground truth.

The ground truth here is computed from the simulated world's own records (``SimMessage``, ``Entity``),
independently of ``collector._parse.normalize``, so a test comparing the two can fail.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector import Archive, CollectReport, CollectSettings, collect
from collector._simulated import World, generate_world, simulated_client
from collector._simulated.model import SimMessage
from collector._telegram.client import SIMULATED_ENV

if TYPE_CHECKING:
    import pytest

#: Variables of a user's environment that would point the CLI at something other than the test's simulation.
_CLI_ENV = ("TG_API_ID", "TG_API_HASH", "TGSPREAD_ARCHIVE", "TGSPREAD_SESSION", "TGSPREAD_SIMULATED_ADVANCE")


def simulated_cli(monkeypatch: pytest.MonkeyPatch, where: Path, *, seed: int = 3, channels: int = 2,
                  days: float = 1) -> None:
    """Point the CLI (run in ``where``, the working directory) at a simulated Telegram of ``channels`` channels
    and ``days`` days of history, with no credentials or archive from the user's environment."""
    for name in _CLI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(SIMULATED_ENV, str(seed))
    monkeypatch.setenv("TGSPREAD_SIMULATED_CHANNELS", str(channels))
    monkeypatch.setenv("TGSPREAD_SIMULATED_DAYS", str(days))
    monkeypatch.chdir(where)


def copy_archive(src: Path, dst: Path) -> Path:
    """Copy an archive with its write-ahead log (an archive left open by a module fixture may hold rows there)."""
    shutil.copy(src, dst)
    wal = src.with_name(src.name + ".wal")
    if wal.exists():
        shutil.copy(wal, dst.with_name(dst.name + ".wal"))
    return dst


def run_pass(world: World, path: Path, channels: list[str] | None = None, *,
             settings: CollectSettings | None = None, flood_sleep_threshold: int = 5) -> CollectReport:
    """One collection pass at ``world.now`` with a fresh client, as a scheduled run would do."""

    async def go() -> CollectReport:
        client = simulated_client(world, flood_sleep_threshold=flood_sleep_threshold)
        with Archive(path) as archive:
            return await collect(client, channels if channels is not None else world.seeds, archive,
                                 now=world.now, settings=settings)

    return asyncio.run(go())


@dataclass
class Collected:
    """A world collected in two passes, ``advance`` apart (the shared fixture of the test suite)."""

    world: World
    path: Path
    reports: list[CollectReport] = field(default_factory=list)
    pass_times: list[datetime] = field(default_factory=list)


def collect_twice(path: Path, *, seed: int = 11, channels: int = 8, days: float = 10.0,
                  posts_per_day: float = 30.0, advance: timedelta = timedelta(days=2)) -> Collected:
    world = generate_world(seed, channels=channels, days=days, posts_per_day=posts_per_day)
    done = Collected(world, path)
    for step in (timedelta(0), advance):
        world.advance(step)
        done.pass_times.append(world.now)
        done.reports.append(run_pass(world, path))
    return done


def collect_planted(path: Path, *, seed: int = 5, channels: int = 16, days: float = 8.0,
                    posts_per_day: float = 20.0, hours: int = 8) -> Collected:
    """A world with planted coordination (``CoordinationPlan(acts=8)``) collected ``hours`` before its
    ``now``, then every hour up to ``now`` (re-observations at the 1 h and 6 h checkpoints)."""
    from collector._simulated.plant import CoordinationPlan

    world = generate_world(seed, channels=channels, days=days, future_days=1.0, posts_per_day=posts_per_day,
                           coordination=CoordinationPlan(acts=8))
    world.now -= timedelta(hours=hours)
    done = Collected(world, path)
    for step in [timedelta(0)] + [timedelta(hours=1)] * hours:
        world.advance(step)
        done.pass_times.append(world.now)
        done.reports.append(run_pass(world, path))
    return done


# -- ground truth ------------------------------------------------------------------------------------
def _utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le")
    return data[2 * offset: 2 * (offset + length)].decode("utf-16-le")


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def expected_post(msg: SimMessage, at: datetime, *, comments: bool) -> dict[str, Any]:
    """The CONTRACT columns of ``msg`` as Telegram showed it at ``at``.

    ``comments``: the channel has a discussion group; without one Telegram sends no replies counter
    and the archive keeps it null, not zero.
    """
    state = msg.state_at(at)
    hashtags, urls, mentions = [], [], []
    for e in state.entities:
        piece = _utf16_slice(state.text, e.offset, e.length)
        if e.kind == "hashtag":
            hashtags.append(piece.removeprefix("#"))
        elif e.kind == "url":
            urls.append(piece)
        elif e.kind == "text_url":
            assert e.url is not None
            urls.append(e.url)
        elif e.kind == "mention":
            mentions.append(piece.removeprefix("@").lower())
    fwd = msg.fwd
    return {
        "posted_at": msg.posted_at,
        "edited_at": state.edited_at,
        "text": state.text or (msg.media.title or "Poll" if msg.media is not None and msg.media.kind == "poll" else ""),
        "grouped_id": msg.grouped_id,
        "views": state.views,
        "forwards": state.forwards,
        "replies": state.replies if comments else None,
        "reactions": state.reactions_total,
        "hashtags": _unique(hashtags),
        "urls": _unique(urls),
        "mentions": _unique(mentions),
        "fwd_channel_id": fwd.channel_id if fwd else None,
        "fwd_message_id": fwd.message_id if fwd else None,
        "fwd_posted_at": fwd.posted_at if fwd else None,
        "fwd_from_name": fwd.from_name if fwd else None,
        "reply_to_message_id": msg.reply_to_message_id if msg.reply_to_peer_id is None else None,
        "reply_to_peer_id": msg.reply_to_peer_id,
        "reply_to_peer_message_id": msg.reply_to_message_id if msg.reply_to_peer_id is not None else None,
        "post_author": msg.post_author,
        "via_bot_id": msg.via_bot_id,
        "noforwards": bool(msg.noforwards),
        "media_type": msg.media.kind if msg.media else None,
    }


CONTRACT_COLUMNS = [
    "posted_at", "edited_at", "text", "grouped_id", "views", "forwards", "replies", "reactions", "hashtags",
    "urls", "mentions", "fwd_channel_id", "fwd_message_id", "fwd_posted_at", "fwd_from_name",
    "reply_to_message_id", "reply_to_peer_id", "reply_to_peer_message_id", "post_author", "via_bot_id",
    "noforwards", "media_type",
]


def archived_posts(path: Path) -> dict[tuple[int, int], dict[str, Any]]:
    with Archive(path, read_only=True) as archive:
        cur = archive.con.execute(
            f"SELECT channel_id, message_id, first_seen_at, last_seen_at, deleted_at, "
            f"{', '.join(CONTRACT_COLUMNS)} FROM posts")
        names = [d[0] for d in cur.description]
        return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}
