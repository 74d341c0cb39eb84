"""A collector process for the crash and concurrency tests: two passes over a small simulated world.

Run from the repository root (tests start it as a subprocess)::

    python tests/helpers/crash_worker.py ARCHIVE SEED [KILLSPEC] [--passes 1,2] [--wait S] [--hold S] [--report F]

It builds the world deterministically from SEED (:func:`build_world`), then runs the passes that the
state file ``ARCHIVE.passes.json`` does not list as done: pass ``k`` runs at the world's clock
``start + (k - 1) * ADVANCE``, so a rerun of an interrupted pass uses the same clock as the first try.
A pass is recorded as done only after ``collect()`` returned and the archive was closed.

KILLSPEC makes the process SIGKILL itself at one precise point (no cleanup, no ``finally``, no flush):

- ``PASS:EVENT:N``: at the ``N``-th ``EVENT`` of pass ``PASS`` (1-based) in this process. Events:
  request names as the simulated server counts them (``contacts.ResolveUsername``,
  ``channels.GetFullChannel``, ``messages.GetHistory``, ``channels.GetMessages``): the kill happens when
  the server has received the request and before it answers; ``write``: inside ``Archive.write_posts``'
  transaction, after the rows are written and before ``COMMIT``; ``commit``: right after a
  ``write_posts`` transaction committed; ``txn``: after any archive transaction committed (migrations,
  channels, peers, posts); ``snapshot``: after a channel's metadata snapshot committed; ``run_channel``:
  after a channel's outcome was recorded; ``finish_run``: after the run was marked finished, before the
  pass is recorded as done.
- ``time:SECONDS``: a timer kills the process that many seconds after the first pass started, wherever it is.

Before killing itself the process writes ``ARCHIVE.kill.json`` (where it died); the archive is not touched.
With ``--report F`` a finished process writes a JSON report: the event trace (counts per pass and event),
the statuses of its passes, and the longest time it waited for the archive file.
Exit status: 0 when every pass finished, 3 with ArchiveBusyError's message on stderr when the archive
stayed busy for longer than ``--wait``, -9 (killed) at the kill point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collector import Archive, CollectSettings, collect
from collector._archive.archive import ArchiveBusyError
from collector._simulated import World, generate_world, simulated_client

#: The world every crash and concurrency test uses: small, yet several batches per channel.
WORLD = {"channels": 3, "days": 2.0, "posts_per_day": 50.0, "future_days": 2.5}
#: Clock distance between pass 1 and pass 2: new posts appear, snapshots and refreshes become due.
ADVANCE = timedelta(days=2)
PASSES = (1, 2)
BATCH_ROWS = 200
REQUESTS = ("contacts.ResolveUsername", "channels.GetFullChannel", "messages.GetHistory", "channels.GetMessages")
ARCHIVE_EVENTS = ("write", "commit", "txn", "snapshot", "run_channel", "finish_run")


def build_world(seed: int) -> World:
    """The deterministic world of the tests (same seed, same world, in every process)."""
    return generate_world(seed, **WORLD)  # type: ignore[arg-type]


def pass_clock(world_start: datetime, number: int) -> datetime:
    """The clock of pass ``number`` (1-based): a rerun of a pass uses the same clock."""
    return world_start + (number - 1) * ADVANCE


def settings(hold_seconds: float) -> CollectSettings:
    # batch_seconds is huge so batches are cut by rows only: the same batches in every run
    return CollectSettings(batch_rows=BATCH_ROWS, batch_seconds=3600.0, hold_seconds=hold_seconds)


#: The modules a collection pass runs (the CLI, status and the other sources are not part of it).
_PASS_MODULES = ("_archive/archive", "_telegram/calls", "_parse/channel_ref", "_telegram/collect", "_parse/normalize",
                 "_parse/refresh", "_archive/rows")


def code_fingerprint() -> str:
    """A digest of the collector's source: processes of one test must all run the same code and world."""
    import hashlib

    root = Path(__file__).resolve().parents[2] / "collector"
    digest = hashlib.sha256()
    files = [root / f"{name}.py" for name in _PASS_MODULES]
    for path in sorted([*files, *root.glob("_simulated/*.py"), *root.glob("_archive/migrations/*.sql")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def state_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".passes.json")


def kill_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".kill.json")


def passes_done(archive: Path) -> list[int]:
    path = state_path(archive)
    return json.loads(path.read_text())["done"] if path.exists() else []


def _mark_done(archive: Path, number: int) -> None:
    done = sorted({*passes_done(archive), number})
    tmp = state_path(archive).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"done": done}))
    os.replace(tmp, state_path(archive))


class Tracer:
    """Counts events per pass and SIGKILLs this process at the one named in the kill spec."""

    def __init__(self, archive: Path, spec: str | None) -> None:
        self.archive = archive
        self.counts: Counter[tuple[int, str]] = Counter()
        self.current_pass = 0
        self.last_event: str | None = None
        self.target: tuple[int, str, int] | None = None
        self.timer: float | None = None
        self.fingerprint = code_fingerprint()
        if spec:
            head, _, rest = spec.partition(":")
            if head == "time":
                self.timer = float(rest)
            else:
                event, _, n = rest.rpartition(":")
                if event not in (*REQUESTS, *ARCHIVE_EVENTS) or not n.isdigit() or int(n) < 1:
                    raise SystemExit(f"bad kill spec {spec!r}: PASS:EVENT:N with N >= 1, or time:SECONDS")
                self.target = (int(head), event, int(n))

    def hit(self, event: str) -> None:
        key = (self.current_pass, event)
        self.counts[key] += 1
        self.last_event = f"{event}#{self.counts[key]}"
        if self.target == (*key, self.counts[key]):
            self.die(f"{self.current_pass}:{event}:{self.counts[key]}")

    def die(self, where: str) -> None:
        """SIGKILL this process: nothing after this line runs, no handler, no flush, no close."""
        kill_path(self.archive).write_text(json.dumps(
            {"pass": self.current_pass, "at": where, "last_event": self.last_event, "pid": os.getpid(),
             "code": self.fingerprint}))
        os.kill(os.getpid(), signal.SIGKILL)

    def start_timer(self) -> None:
        if self.timer is not None:
            timer = threading.Timer(self.timer, self.die, args=(f"time:{self.timer}",))
            timer.daemon = True
            timer.start()


class KillCounter(Counter[str]):
    """``world.requests`` stand-in: the server does ``requests[name] += 1`` once per request it receives."""

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        self.tracer.hit(key)


class WaitClock:
    """The longest time this process waited to open the archive file (another process held it)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.total = 0.0
        self.opens = 0


def instrument(tracer: Tracer, clock: WaitClock) -> None:
    """Wrap Archive's write and open paths in this process so the tracer sees every step."""

    def after(name: str, event: str | Callable[[Any, Any, dict[str, Any]], str | None]) -> None:
        original = getattr(Archive, name)

        def wrapped(self: Archive, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            label = event(self, args, kwargs) if callable(event) else event
            if label:
                tracer.hit(label)
            return result

        setattr(Archive, name, wrapped)

    after("_write_posts", "write")
    after("write_posts", "commit")
    after("remember_channel", lambda _s, _a, kw: "snapshot" if kw.get("snapshot") else None)
    after("record_run_channel", "run_channel")
    after("finish_run", "finish_run")

    transaction = Archive.transaction

    @contextlib.contextmanager
    def traced_transaction(self: Archive) -> Iterator[Any]:
        with transaction(self) as con:
            yield con
        tracer.hit("txn")

    Archive.transaction = traced_transaction  # type: ignore[method-assign]

    open_ = Archive._open

    def timed_open(self: Archive, read_only: bool, wait: float) -> Any:
        started = time.monotonic()
        try:
            return open_(self, read_only, wait)
        finally:
            waited = time.monotonic() - started
            clock.longest = max(clock.longest, waited)
            clock.total += waited
            clock.opens += 1

    Archive._open = timed_open  # type: ignore[method-assign]


async def _one_pass(world: World, path: Path, wait: float, hold: float) -> str:
    client = simulated_client(world)
    with Archive(path, wait=wait) as archive:
        report = await collect(client, world.seeds, archive, now=world.now, settings=settings(hold))
    return report.status


def read_loop(path: Path, stop: Path, *, wait: float, linger: float) -> dict[str, Any]:
    """What a notebook does while a collector runs: open read-only, query, close; again until ``stop`` exists.

    Every other round opens with ``snapshot=True`` and keeps the in-memory copy ``linger`` seconds (an idle
    notebook kernel holding a connection), which must not keep the collector out. Counts reads, busy
    errors (the wait ran out) and any other exception (a crash of the reader).
    """
    import analysis

    out: dict[str, Any] = {"reads": 0, "snapshot_reads": 0, "busy": 0, "errors": [], "longest_wait_s": 0.0,
                           "posts_seen": []}
    rounds = 0
    while not stop.exists():
        rounds += 1
        snapshot = rounds % 2 == 0
        started = time.monotonic()
        try:
            con = analysis.connect(path, wait=wait, snapshot=snapshot)
        except FileNotFoundError:
            time.sleep(0.05)          # the collector has not created the archive yet
            continue
        except analysis.ArchiveBusyError:
            out["busy"] += 1
            continue
        except Exception as exc:
            out["errors"].append(f"connect: {type(exc).__name__}: {exc}")
            continue
        out["longest_wait_s"] = max(out["longest_wait_s"], time.monotonic() - started)
        try:
            # fetchall, not fetchone: DuckDB 2 refuses further work on a connection with an unfinished result
            out["posts_seen"].append(int(con.execute("SELECT count(*) FROM posts").fetchall()[0][0]))
            analysis.cascades(con)
            analysis.posting_frequency(con, every="1d")
            if snapshot:
                time.sleep(linger)
                analysis.forward_network(con)
            out["snapshot_reads" if snapshot else "reads"] += 1
        except Exception as exc:
            out["errors"].append(f"query: {type(exc).__name__}: {exc}")
        finally:
            con.close()
        time.sleep(0.02)
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--read":
        reader = argparse.ArgumentParser(description="read the archive in a loop, as a notebook would")
        reader.add_argument("--read", dest="archive", type=Path, required=True)
        reader.add_argument("--stop", type=Path, required=True, help="stop once this file exists")
        reader.add_argument("--wait", type=float, default=30.0)
        reader.add_argument("--linger", type=float, default=0.5)
        reader.add_argument("--report", type=Path, required=True)
        opts = reader.parse_args(argv)
        result = read_loop(opts.archive, opts.stop, wait=opts.wait, linger=opts.linger)
        opts.report.write_text(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("seed", type=int)
    parser.add_argument("kill", nargs="?", default=None, help="PASS:EVENT:N or time:SECONDS")
    parser.add_argument("--passes", default="1,2", help="passes this process may run (default 1,2)")
    parser.add_argument("--wait", type=float, default=30.0, help="Archive(wait=...) in seconds")
    parser.add_argument("--hold", type=float, default=5.0, help="CollectSettings.hold_seconds")
    parser.add_argument("--report", type=Path, default=None, help="write a JSON report here when finished")
    args = parser.parse_args(argv)

    tracer = Tracer(args.archive, args.kill)
    clock = WaitClock()
    instrument(tracer, clock)
    world = build_world(args.seed)
    start = world.now
    world.requests = KillCounter(tracer)
    wanted = [int(p) for p in args.passes.split(",")]
    statuses: dict[int, str] = {}
    tracer.start_timer()
    try:
        for number in PASSES:
            if number not in wanted or number in passes_done(args.archive):
                continue
            tracer.current_pass = number
            world.now = pass_clock(start, number)
            statuses[number] = asyncio.run(_one_pass(world, args.archive, args.wait, args.hold))
            _mark_done(args.archive, number)
    except ArchiveBusyError as exc:
        print(f"tgspread: {exc}", file=sys.stderr)
        code = 3
    else:
        code = 0
    if args.report is not None:
        args.report.write_text(json.dumps({
            "statuses": statuses,
            "counts": [[p, e, n] for (p, e), n in sorted(tracer.counts.items())],
            "longest_wait_s": clock.longest, "total_wait_s": clock.total, "opens": clock.opens,
            "exit": code, "code": tracer.fingerprint,
        }))
    return code


# -- used by the tests (in the pytest process) -----------------------------------------------------
WORKER = Path(__file__).resolve()
ROOT = WORKER.parent.parent
#: Tables whose rows must be identical after an interrupted-and-rerun collection and an uninterrupted
#: one. ``runs``/``run_channels`` legitimately differ (a killed pass leaves a 'running' run behind).
COMPARED_TABLES = ("posts", "post_observations", "post_versions", "channels", "channel_observations",
                   "channel_usernames", "channel_cursors", "peers", "flood_waits")


def start_worker(archive: Path, seed: int, kill: str | None = None, *, passes: str = "1,2", wait: float = 30.0,
                 hold: float = 5.0, report: Path | None = None) -> subprocess.Popen[str]:
    """Start this script as a real subprocess (cwd: the repository root)."""
    cmd = [sys.executable, str(WORKER), str(archive), str(seed), *([kill] if kill else []),
           "--passes", passes, "--wait", str(wait), "--hold", str(hold)]
    if report is not None:
        cmd += ["--report", str(report)]
    return _popen(cmd)


def start_reader(archive: Path, stop: Path, report: Path, *, wait: float = 30.0,
                 linger: float = 0.5) -> subprocess.Popen[str]:
    """Start a reader process (:func:`read_loop`); it stops once ``stop`` exists and writes ``report``."""
    return _popen([sys.executable, str(WORKER), "--read", str(archive), "--stop", str(stop), "--wait", str(wait),
                   "--linger", str(linger), "--report", str(report)])


def _popen(cmd: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_worker(archive: Path, seed: int, kill: str | None = None, *, timeout: float = 240.0,
               **options: Any) -> tuple[int, str]:
    """Run the worker to its end; (exit status, stderr). -9 means it SIGKILLed itself at ``kill``."""
    proc = start_worker(archive, seed, kill, **options)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def table_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` (all columns), in a canonical order."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return [tuple(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()]
    finally:
        con.close()


def runs(path: Path) -> list[tuple[datetime, str]]:
    """(started_at, status) of every run, oldest first."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return [(r[0], r[1]) for r in con.execute("SELECT started_at, status FROM runs ORDER BY run_id").fetchall()]
    finally:
        con.close()


def table_differences(got: Path, want: Path) -> dict[str, str]:
    """Tables whose rows differ between two archives, with a short account of the difference."""
    out: dict[str, str] = {}
    for table in COMPARED_TABLES:
        a, b = table_rows(got, table), table_rows(want, table)
        if a == b:
            continue
        extra = [r for r in a if r not in b]
        missing = [r for r in b if r not in a]
        out[table] = (f"{len(a)} rows vs {len(b)}; {len(extra)} extra, e.g. {str(extra[:1])[:300]}; "
                      f"{len(missing)} missing, e.g. {str(missing[:1])[:300]}")
    return out


if __name__ == "__main__":
    sys.exit(main())
