"""Collector benchmarks (issue #3): requests per post, CPU per post, peak memory, demo speed.

Everything runs against the simulated Telegram (a real ``TelegramClient`` whose network layer answers
from a generated world), never the network.

- **Requests per 100 archived posts.** A backfill of one channel of ``BACKFILL_POSTS`` posts, counted by
  the simulated server (``world.requests``), against Telegram's limit of 100 posts per request (ideal:
  ``ceil(posts / 100)``). Then the clock moves on ``REFRESH_ADVANCE`` and a second pass refreshes the
  posts whose age crossed a checkpoint: ``channels.GetMessages`` requests per 100 refreshed posts.
- **CPU per post, end to end**, against Telethon's own TL decoding of the same answers, side by side in
  one process: a backfill of a ``CPU_POSTS`` channel is recorded once (every answer's TL bytes); then
  (a) ``BinaryReader(answer).tgread_object()`` of the ``messages.getHistory`` answers alone and (b) the
  real ``collect()`` replaying that pass from the recorded bytes (Telethon's client path, normalising,
  batched DuckDB upserts with the cursor, the final checkpoint) into a fresh archive are timed with
  ``time.process_time`` (all threads, DuckDB's included). The simulated server's work is in neither
  figure. Target: (b) <= 2 x (a).
- **Peak RSS** of a process that archives one channel of 1,000,000 posts (``collect()`` with default
  settings), and of a process that only builds that simulated world, so the collector's share shows.
  Target: <= 400 MB.
- **tgspread demo**: posts archived per wall-clock second by ``collector._cli.demo.run_demo`` (defaults:
  20 channels, 30 days, two passes).

Usage::

    python -m benchmarks.collector_bench [--quick]          # prints a table
    python -m benchmarks.collector_bench --only cpu         # one part (requests, cpu, demo, rss)
    make bench                                               # every benchmark, writes results.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["RSS_POSTS", "run"]

BACKFILL_POSTS = 50_000
RSS_POSTS = 1_000_000
CPU_POSTS = 20_000                 # the channel recorded and replayed for the CPU comparison
REFRESH_ADVANCE = timedelta(days=1)
SEED = 5
TARGET_REQUESTS_PER_100 = 1.02
TARGET_CPU_RATIO = 2.0
TARGET_RSS_MB = 400.0
ROOT = Path(__file__).resolve().parents[1]


def row(benchmark: str, value: float, unit: str, target: str, ok: bool | None, note: str = "") -> dict[str, Any]:
    """One line of the results table."""
    return {"benchmark": benchmark, "value": value, "unit": unit, "target": target, "ok": ok, "note": note}


# -- requests per post ----------------------------------------------------------------------------------
@dataclass
class Backfill:
    """What a backfill and the refresh pass after it cost."""

    posts: int
    history_requests: int
    other_requests: dict[str, int]
    seconds: float
    refreshed: int
    refresh_requests: int
    refresh_new_posts: int
    refresh_history_requests: int


def backfill(posts: int, folder: Path) -> Backfill:
    """Collect one channel of ``posts`` posts from scratch, then refresh it ``REFRESH_ADVANCE`` later."""
    from collector import Archive, collect
    from collector._simulated import simulated_client
    from collector._simulated.generate import generate_channel_world

    world = generate_channel_world(SEED, posts=posts)
    channel = world.seed_channels()[0]
    path = folder / "backfill.duckdb"

    async def one_pass() -> Any:
        client = simulated_client(world)
        with Archive(path) as archive:
            return await collect(client, [f"@{channel.username_at(world.now)}"], archive, now=world.now)

    started = time.perf_counter()
    first = asyncio.run(one_pass())
    seconds = time.perf_counter() - started
    assert first.status == "ok", first.summary()
    before = dict(world.requests)
    world.advance(REFRESH_ADVANCE)
    second = asyncio.run(one_pass())
    assert second.status == "ok", second.summary()
    delta = {k: world.requests[k] - before.get(k, 0) for k in world.requests}
    return Backfill(
        posts=first.new_posts, history_requests=before.get("messages.GetHistory", 0),
        other_requests={k: v for k, v in before.items() if k != "messages.GetHistory"}, seconds=seconds,
        refreshed=second.refreshed_posts, refresh_requests=delta.get("channels.GetMessages", 0),
        refresh_new_posts=second.new_posts, refresh_history_requests=delta.get("messages.GetHistory", 0),
    )


def request_rows(b: Backfill) -> list[dict[str, Any]]:
    ideal = math.ceil(b.posts / 100)
    per100 = 100 * b.history_requests / b.posts
    others = ", ".join(f"{k} {v}" for k, v in sorted(b.other_requests.items()))
    rows = [
        row("backfill: history requests per 100 posts", round(per100, 4), "req/100 posts",
            f"<= {TARGET_REQUESTS_PER_100}", per100 <= TARGET_REQUESTS_PER_100,
            f"{b.history_requests} messages.getHistory for {b.posts:,} posts (ideal {ideal}); plus {others}"),
        row("backfill: collector posts per second (incl. simulated server)", round(b.posts / b.seconds),
            "posts/s", "-", None, f"{b.posts:,} posts in {b.seconds:.1f} s wall"),
    ]
    if b.refreshed:
        ideal_r = math.ceil(b.refreshed / 100)
        per100_r = 100 * b.refresh_requests / b.refreshed
        rows.append(row(
            f"refresh after {REFRESH_ADVANCE}: requests per 100 refreshed posts", round(per100_r, 4),
            "req/100 posts", f"<= {100 * ideal_r / b.refreshed:.4f} (ideal)", b.refresh_requests <= ideal_r,
            f"{b.refresh_requests} channels.getMessages for {b.refreshed:,} due posts (ideal {ideal_r}); "
            f"new posts: {b.refresh_new_posts} in {b.refresh_history_requests} messages.getHistory"))
    return rows


# -- CPU per post -----------------------------------------------------------------------------------------
def _record_answers(client: Any) -> list[tuple[bool, bytes]]:
    """Record every answer the simulated server sends, in order: (is a messages.getHistory answer, bytes)."""
    from telethon.extensions import BinaryReader
    from telethon.tl.functions.messages import GetHistoryRequest

    sender = client._sender
    original: Callable[[bytes], bytes] = sender.answer_bytes
    answers: list[tuple[bool, bytes]] = []

    def answer_bytes(data: bytes) -> bytes:
        answer = original(data)
        query = BinaryReader(data).tgread_object()
        while hasattr(query, "query"):
            query = query.query
        answers.append((isinstance(query, GetHistoryRequest), answer))
        return answer

    sender.answer_bytes = answer_bytes
    return answers


def _replay_client(world: Any, answers: list[tuple[bool, bytes]]) -> Any:
    """A client whose server answers from the recorded ``answers`` in order: no simulation, no encoding."""
    from collector._simulated import simulated_client

    client = simulated_client(world)
    queue = iter([a for _, a in answers])
    client._sender.answer_bytes = lambda data: next(queue)
    return client


def _decode_all(answers: list[bytes]) -> int:
    from telethon.extensions import BinaryReader

    n = 0
    for data in answers:
        n += len(BinaryReader(data).tgread_object().messages)
    return n


def _collect_replay(world: Any, answers: list[tuple[bool, bytes]], path: Path, now: datetime) -> int:
    """``collect()`` of the recorded pass into ``path`` (migrations already applied); new posts."""
    from collector import Archive, collect

    async def go() -> int:
        client = _replay_client(world, answers)
        with Archive(path) as archive:
            report = await collect(client, world.seeds, archive, now=now)
        assert report.status == "ok", report.summary()
        return report.new_posts

    return asyncio.run(go())


class _GcClock:
    """CPU seconds (this thread) spent in the cyclic garbage collector while active, for the notes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started

    def __enter__(self) -> _GcClock:
        import gc

        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        import gc

        gc.callbacks.remove(self)


def _profile_shares(world: Any, answers: list[tuple[bool, bytes]], path: Path, now: datetime) -> str:
    """Where the pass's time goes (cProfile, cumulative), for the note."""
    import cProfile
    import pstats

    from collector import Archive

    Archive(path).close()
    profiler = cProfile.Profile()
    profiler.enable()
    _collect_replay(world, answers, path, now)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max(v[3] for v in stats.values())
    wanted = {"read_result": "TL decode", "normalize_message": "normalise", "post_values": "normalise",
              "write_posts": "write_posts", "remember_peers": "remember_peers", "posts_table": "Arrow rows",
              "posts_values_table": "Arrow rows", "close": "checkpoint+close"}
    shares: dict[str, float] = {}
    for (_, _, func), v in stats.items():
        if func in wanted:
            shares[wanted[func]] = shares.get(wanted[func], 0.0) + v[3]
    return "profile: " + ", ".join(f"{k} {100 * t / total:.0f}%" for k, t in shares.items())


def cpu_rows(posts: int, folder: Path, rounds: int = 3) -> list[dict[str, Any]]:
    """Telethon's decode of the history answers vs ``collect()`` replaying the same answers, ``rounds`` times.

    The pass is recorded once against the simulated server, and so is a second pass right after it, which
    finds nothing new (the per-pass work alone). The replay answers every request with the recorded bytes,
    so no figure contains the simulated server's work. The replayed pass is the real ``collect()``:
    Telethon's client path, normalising, peers, batched upserts with the cursor, releases and the final
    checkpoint, into a fresh archive whose migrations were applied beforehand.

    What each side contains: the decode side is ``BinaryReader(answer).tgread_object()`` of every
    ``messages.getHistory`` answer, i.e. Telethon's generated ``from_reader`` code including its custom
    ``Message.__init__`` (the collect side runs the very same code in ``read_result``). Neither side runs
    ``Message._finish_init`` (the client only calls it in ``iter_messages``/``get_messages``, which
    ``collect()`` does not use); the collect side also pays Telethon's ``process_entities`` of each answer
    and the garbage collections its live pages and rows cause (the decode loop keeps one answer alive at
    a time). Each round times the decode and the pass back to back, so both see the same machine load;
    the headline is the ratio of the best times, the note gives min and median of the per-round ratios.
    The second row without a target is the marginal cost per post: (pass - empty pass) / posts, i.e.
    without what a pass costs however few posts it brings (opening the archive, resolving, the run's
    bookkeeping), which a small quick-mode channel would otherwise spread over few posts.
    """
    import statistics

    from collector import Archive
    from collector._simulated import simulated_client
    from collector._simulated.generate import generate_channel_world

    world = generate_channel_world(SEED + 1, posts=posts)
    now = world.now

    async def record(path: Path) -> list[tuple[bool, bytes]]:
        client = simulated_client(world)
        answers = _record_answers(client)
        from collector import collect

        with Archive(path) as archive:
            await collect(client, world.seeds, archive, now=now)
        return answers

    answers = asyncio.run(record(folder / "record.duckdb"))
    again = asyncio.run(record(folder / "record.duckdb"))      # nothing new: the per-pass work
    history = [a for is_history, a in answers if is_history]
    decode: list[float] = []
    replay: list[float] = []
    empty: list[float] = []
    gc_decode: list[float] = []
    gc_replay: list[float] = []
    n = archived = 0
    for i in range(rounds):
        with _GcClock() as clock:
            t = time.process_time()
            n = _decode_all(history)
            decode.append(time.process_time() - t)
        gc_decode.append(clock.seconds)
        path = folder / f"replay{i}.duckdb"
        Archive(path).close()
        with _GcClock() as clock:
            t = time.process_time()
            archived = _collect_replay(world, answers, path, now)
            replay.append(time.process_time() - t)
        gc_replay.append(clock.seconds)
        t = time.process_time()
        _collect_replay(world, again, path, now)
        empty.append(time.process_time() - t)
    ratios = [r / d for r, d in zip(replay, decode, strict=True)]
    ratio = min(replay) / min(decode)
    marginal = (min(replay) - min(empty)) / min(decode)
    shares = _profile_shares(world, answers, folder / "profile.duckdb", now)

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:.0f} us/msg"

    return [
        row("CPU: Telethon TL decode alone", round(n / min(decode)), "msgs/s", "-", None,
            f"{us(min(decode))} (median {us(statistics.median(decode))}) over {n:,} messages ({len(history)} "
            f"getHistory answers); garbage collector {us(statistics.median(gc_decode))}"),
        row("CPU: end to end (collect() on the same answers)", round(n / min(replay)), "msgs/s", "-", None,
            f"{us(min(replay))} (median {us(statistics.median(replay))}), {archived:,} posts archived; garbage "
            f"collector {us(statistics.median(gc_replay))}; a pass that finds nothing new costs "
            f"{min(empty) * 1e3:.0f} ms; {shares}"),
        row("CPU: end to end / Telethon decode", round(ratio, 2), "x", f"<= {TARGET_CPU_RATIO}",
            ratio <= TARGET_CPU_RATIO, "process CPU time (all threads, DuckDB's included), best of "
            f"{rounds} each, same answers, same process; per round min {min(ratios):.2f}, median "
            f"{statistics.median(ratios):.2f}"),
        row("CPU: marginal per post / Telethon decode", round(marginal, 2), "x", "-", None,
            "(pass - pass finding nothing new) / posts, best times: the end-to-end ratio without the "
            "fixed per-pass costs"),
    ]


# -- peak RSS -----------------------------------------------------------------------------------------------
def _rss_child(posts: int, mode: str, folder: Path) -> dict[str, Any]:
    """In a fresh process: the peak RSS of ``mode``.

    ``collect``: this process archives the channel, the simulated Telegram (world and server) runs in a
    process of its own (``collector._simulated.remote``), so the figure is the collector's alone, as on a
    real machine where Telegram is far away. ``world``: building the world only. ``server``: world, server
    and a Telethon client paging through the whole history in this process, nothing archived.
    """
    from collector._simulated.generate import generate_channel_world

    started = time.perf_counter()
    archived, server_mb = 0, None
    if mode == "collect":
        from collector import Archive, collect
        from collector._simulated.remote import remote_simulated_client

        async def go() -> tuple[int, float | None]:
            client, remote = remote_simulated_client(generate_channel_world, SEED, posts=posts)
            try:
                with Archive(folder / "rss.duckdb") as archive:
                    report = await collect(client, remote.seeds, archive, now=remote.now)
                assert report.status == "ok", report.summary()
                return report.new_posts, peak_rss_mb(remote.process.pid)
            finally:
                remote.close()

        archived, server_mb = asyncio.run(go())
    elif mode == "server":
        world = generate_channel_world(SEED, posts=posts)
        archived = asyncio.run(_page_through(world))
    else:
        generate_channel_world(SEED, posts=posts)
    return {"peak_rss_mb": peak_rss_mb(), "posts": archived, "seconds": time.perf_counter() - started,
            "server_peak_rss_mb": server_mb}


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """The peak RSS in MB of this process (or of process ``pid``; None when it cannot be read).

    ``/proc/<pid>/status`` ``VmHWM`` where there is one: ``getrusage(RUSAGE_SELF).ru_maxrss`` keeps the peak of
    the process that forked this one across ``exec`` on Linux, so a child of a big benchmark process would
    report the parent's peak.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if pid != "self":
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _page_through(world: Any) -> int:
    """The simulated server's share: page through the whole history as collect() does, keep nothing."""
    from telethon.tl import functions, types

    from collector._simulated import simulated_client

    client = simulated_client(world)
    resolved = await client(functions.contacts.ResolveUsernameRequest(username=world.seeds[0].lstrip("@")))
    chat = resolved.chats[0]
    peer = types.InputPeerChannel(chat.id, chat.access_hash)
    position, seen = 0, 0
    while True:
        answer = await client(functions.messages.GetHistoryRequest(
            peer=peer, offset_id=position + 1, offset_date=None, add_offset=-100, limit=100, max_id=0,
            min_id=position, hash=0))
        ids = [m.id for m in answer.messages]
        if not ids:
            return seen
        seen += len(ids)
        position = max(ids)


def _in_child(posts: int, mode: str, folder: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.collector_bench", "--rss-child", str(posts), mode, str(folder)],
        check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def rss_rows(posts: int, folder: Path) -> list[dict[str, Any]]:
    world = _in_child(posts, "world", folder)
    server = _in_child(posts, "server", folder)
    full = _in_child(posts, "collect", folder)
    ok = full["peak_rss_mb"] <= TARGET_RSS_MB
    served = full.get("server_peak_rss_mb")
    return [
        row(f"peak RSS archiving one channel of {posts:,} posts", round(full["peak_rss_mb"], 1), "MB",
            f"<= {TARGET_RSS_MB:g}", ok,
            f"the collector's process (the simulated Telegram runs in its own process"
            f"{f', peak {served:.0f} MB' if served else ''}); {full['posts']:,} posts archived in "
            f"{full['seconds']:.0f} s ({full['posts'] / full['seconds']:.0f} posts/s)"),
        row(f"peak RSS of the simulated world alone ({posts:,} posts)", round(world["peak_rss_mb"], 1), "MB", "-",
            None, "interpreter + imports + the lazily built world, nothing collected"),
        row(f"peak RSS of the simulated server paging through {posts:,} posts", round(server["peak_rss_mb"], 1),
            "MB", "-", None, f"world + server + Telethon client in one process, nothing archived: "
            f"{server['posts']:,} messages read"),
    ]


# -- demo -----------------------------------------------------------------------------------------------------
def demo_rows(folder: Path, *, channels: int = 20, days: int = 30) -> list[dict[str, Any]]:
    from collector._cli.demo import run_demo

    started = time.perf_counter()
    _, reports = run_demo(folder / "demo.duckdb", channels=channels, days=days, seed=7)
    seconds = time.perf_counter() - started
    posts = sum(r.new_posts for r in reports)
    passes = sum((r.finished_at - r.started_at).total_seconds() for r in reports if r.finished_at)
    return [row(f"tgspread demo ({channels} channels, {days} days, 2 passes)", round(posts / seconds), "posts/s",
                "-", None, f"{posts:,} posts in {seconds:.1f} s wall including world generation; "
                f"{posts / passes:.0f} posts/s over the two passes alone ({passes:.1f} s); "
                f"{sum(r.refreshed_posts for r in reports):,} refreshes")]


# -- entry points -----------------------------------------------------------------------------------------
PARTS = ("requests", "cpu", "demo", "rss")


def run(*, quick: bool = False, rss_posts: int | None = None, only: tuple[str, ...] = PARTS) -> list[dict[str, Any]]:
    """Every collector benchmark (or the ``only`` ones); one dict per figure (benchmark, value, unit, target,
    ok, note)."""
    posts = 10_000 if quick else BACKFILL_POSTS
    rss = rss_posts if rss_posts is not None else (100_000 if quick else RSS_POSTS)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tgspread-bench-") as tmp:
        folder = Path(tmp)
        if "requests" in only:
            rows += request_rows(backfill(posts, folder))
        if "cpu" in only:
            rows += cpu_rows(5_000 if quick else CPU_POSTS, folder, rounds=2 if quick else 3)
        if "demo" in only:
            rows += demo_rows(folder, **({"channels": 5, "days": 7} if quick else {}))
        if "rss" in only:
            rows += rss_rows(rss, folder)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        mark = {True: "PASS", False: "MISS", None: ""}[r["ok"]]
        print(f"{r['benchmark'][:62]:62} {r['value']:>12,} {r['unit']:14} {r['target']:>12} {mark:4}  {r['note']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Collector benchmarks against the simulated Telegram.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke check")
    parser.add_argument("--rss-posts", type=int, default=None, help="posts of the peak-RSS channel")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--rss-child", nargs=3, metavar=("POSTS", "MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        posts, mode, folder = args.rss_child
        print(json.dumps(_rss_child(int(posts), mode, Path(folder))))
        return
    print_table(run(quick=args.quick, rss_posts=args.rss_posts, only=tuple(args.only or PARTS)))


if __name__ == "__main__":
    main()
