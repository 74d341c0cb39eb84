"""The lake (issue 14): reading it (publishing it, and the layout publishing makes: :mod:`benchmarks.publish_bench`).

On a synthetic archive (:mod:`benchmarks.synth_archive`: a real archive, made by the migration runner), each step
runs in its own process so its peak RSS is its own:

- ``migrate``: an archive of the same size made by tgspread 0001 (with two observations per post) opened by the
  current code under the archive's 256 MB cap: every later migration applied (0002 alters ``posts`` and
  ``post_observations``); seconds, peak RSS, and whether it ran out of memory;
- ``status``: ``tgspread status``'s query over the archive under the same cap: seconds and peak RSS;
- ``full``: the lake to read, made by :mod:`benchmarks.publish_bench`'s full publish (whose rows time it);
- ``metrics``: ``cascades``, ``forward_network``, ``posting_frequency``, ``url_spread`` over the lake
  (computed, as everywhere since migration 0009), the same computed on the archive file, and the straightforward
  Polars lazy version (:mod:`benchmarks.lake_polars`, ``scan_parquet`` over the same files) for the ratios;
  wall and CPU seconds (the machine is shared: CPU seconds move less with the load), best of 3;
- ``open``: ``analysis.connect(lake)`` in a fresh process: seconds and the process's RSS after it;
- ``huge``: a lake of ``--huge`` posts (default 100M in ``make bench``) generated directly as Parquet
  (:func:`benchmarks.lake_data.generate_lake`, cached under ``$TGSPREAD_BENCH_DATA``): the four metrics (time,
  peak RSS of the process), the Polars versions under a 6 GB address-space cap, and opening a notebook on it
  (``analysis.connect`` and ``analysis.notebook.open_notebook``: seconds, RSS).

Example::

    python -m benchmarks.lake_bench --posts 1000000 --channels 1000 --huge 0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import publish_bench
from .lake_data import child as _lake_child
from .lake_data import data_dir, generate_lake, peak_mb

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("cascades", "forward_network", "posting_frequency", "url_spread")
#: The issue's targets at 10M posts (checked here against whatever size ran; the note says the size).
TARGET_METRIC_S = 2.0
TARGET_OPEN_S, TARGET_OPEN_MB = 2.0, 300.0
#: At 100M posts (a generated lake): each metric, and its process's peak RSS.
TARGET_HUGE_S, TARGET_HUGE_MB = 30.0, 4096.0
#: The Polars versions' address-space cap (they have no memory limit of their own; the machine is shared).
POLARS_CAP_BYTES = 6 * 2**30

_peak_mb = peak_mb


# -- steps (each in its own process) ---------------------------------------------------------------------------
def _step_old(posts: str, channels: str) -> dict[str, Any]:
    """The archive of migration 0001 of this size (cached), with two observations per post."""
    from .analysis_bench import ensure_observations
    from .synth_archive import build

    path = build(int(posts), int(channels), schema=1)
    ensure_observations(path)
    return {"path": str(path)}


def _step_migrate(old: str, work: str) -> dict[str, Any]:
    """Open a copy of an archive of migration 0001 with the current code (the 256 MB cap): the migrations run."""
    from collector import Archive

    shutil.copy(old, work)
    t = time.perf_counter()
    try:
        with Archive(work) as archive:
            outcome = f"schema {archive.schema_version}"
    except Exception as exc:       # e.g. duckdb.OutOfMemoryException: the measurement is the failure
        outcome = f"failed: {type(exc).__name__}"
    return {"seconds": round(time.perf_counter() - t, 2), "outcome": outcome, "peak_rss_mb": _peak_mb()}


def _step_status(archive: str) -> dict[str, Any]:
    """``tgspread status``'s work (collector._archive.status) on the archive, read-only, under the cap."""
    from collector import Archive
    from collector._archive.status import archive_status

    t = time.perf_counter()
    with Archive(archive, read_only=True) as opened:
        archive_status(opened.con)
    return {"seconds": round(time.perf_counter() - t, 2), "peak_rss_mb": _peak_mb()}








def _step_metric(path: str, name: str, repeat: str = "3") -> dict[str, Any]:
    """``analysis.<name>`` on ``path`` (a lake or an archive file), best of ``repeat``: wall and CPU seconds."""
    import analysis

    con = analysis.connect(path)
    fn = getattr(analysis, name)
    walls, cpus = [], []
    rows = 0
    for _ in range(int(repeat)):
        t, c = time.perf_counter(), time.process_time()
        rows = fn(con).height
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    con.close()
    return {"seconds": round(min(walls), 2), "cpu_seconds": round(min(cpus), 2), "rows": rows,
            "peak_rss_mb": _peak_mb()}


def _step_polars(lake: str, name: str, repeat: str = "3") -> dict[str, Any]:
    """The straightforward Polars lazy version of ``name`` over ``lake`` (:mod:`benchmarks.lake_polars`)."""
    import resource

    from .lake_polars import METRICS

    resource.setrlimit(resource.RLIMIT_AS, (POLARS_CAP_BYTES, POLARS_CAP_BYTES))
    walls, cpus = [], []
    rows = 0
    for _ in range(int(repeat)):
        t, c = time.perf_counter(), time.process_time()
        rows = METRICS[name](lake).height
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {"seconds": round(min(walls), 2), "cpu_seconds": round(min(cpus), 2), "rows": rows,
            "peak_rss_mb": _peak_mb()}


def _step_notebook(lake: str) -> dict[str, Any]:
    """``analysis.notebook.open_notebook(lake)`` in a fresh process (imports done first): seconds and RSS."""
    import duckdb  # noqa: F401 - imported before the clock starts
    import matplotlib  # noqa: F401
    import polars  # noqa: F401

    from analysis.notebook import open_notebook

    before = _peak_mb()
    t = time.perf_counter()
    nb = open_notebook(lake, quiet=True)
    seconds = time.perf_counter() - t
    names = len(nb.names)
    nb.close()
    return {"seconds": round(seconds, 3), "peak_rss_mb": _peak_mb(), "rss_before_mb": before, "names": names}


def _step_open(lake: str) -> dict[str, Any]:
    import duckdb  # noqa: F401 - imported before the clock starts: the cost of opening, not of importing
    import polars  # noqa: F401

    import analysis

    before = _peak_mb()
    t = time.perf_counter()
    con = analysis.connect(lake)
    con.execute("SELECT count(*) FROM posts").fetchall()
    seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 3), "peak_rss_mb": _peak_mb(), "rss_before_mb": before}


def _child(*args: str) -> dict[str, Any]:
    return _lake_child("benchmarks.lake_bench", *args)


def _try_child(*args: str) -> dict[str, Any]:
    """:func:`_child`, with a failure (e.g. out of memory under the cap) as ``{"failed": "..."}``."""
    import subprocess

    try:
        return _child(*args)
    except subprocess.CalledProcessError as exc:
        return {"failed": failure_note(exc.returncode, exc.stderr or "")}


def failure_note(code: int, stderr: str) -> str:
    r"""What a failed child says: its exit (a signal by name) and its first line about memory, else its last line.

    >>> failure_note(-6, "thread panicked\nmemory allocation of 8 bytes failed\nnote: run with RUST_BACKTRACE")
    'exit -6 (SIGABRT): memory allocation of 8 bytes failed'
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()] or ["?"]
    said = next((line for line in lines if "memory" in line.lower()), lines[-1])
    name = f" ({signal.Signals(-code).name})" if code < 0 and -code in signal.valid_signals() else ""
    return f"exit {code}{name}: {said[:120]}"


def _row(benchmark: str, value: Any, unit: str, target: str, ok: bool | None, note: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "value": value, "unit": unit, "target": target, "ok": ok, "note": note}


def _metric_rows(lake: Path, archive: Path | None, size: str, target: float, label: str,
                 repeat: int = 3) -> list[dict[str, Any]]:
    """Per metric: analysis over the lake (and over the archive file), and the Polars lazy version; the ratios.
    Each is the best of ``repeat`` runs in one process."""
    rows = []
    for name in FUNCTIONS:
        on_lake = _child("metric", str(lake), name, str(repeat))
        on_file = _child("metric", str(archive), name, str(repeat)) if archive is not None else None
        polars = _try_child("polars", str(lake), name, str(repeat))
        if "failed" in polars:
            versus = f"Polars lazy {polars['failed']}"
        else:
            same = "same rows" if polars["rows"] == on_lake["rows"] else f"ROWS DIFFER ({polars['rows']:,})"
            versus = (f"Polars lazy {polars['seconds']} s, cpu {polars['cpu_seconds']} s, peak {polars['peak_rss_mb']} "
                      f"MB ({same}; Polars/analysis {polars['seconds'] / max(on_lake['seconds'], 1e-3):.2f})")
        filed = "" if on_file is None else (
            f"archive file {on_file['seconds']} s, cpu {on_file['cpu_seconds']} s (lake/file "
            f"{on_lake['seconds'] / max(on_file['seconds'], 1e-3):.2f}); ")
        rows.append(_row(f"lake{label}: {name} over the lake (computed)", on_lake["seconds"], "s",
                         f"<= {target:g}", on_lake["seconds"] <= target,
                         f"{size}, {on_lake['rows']:,} rows, cpu {on_lake['cpu_seconds']} s, peak RSS "
                         f"{on_lake['peak_rss_mb']} MB; {filed}{versus}; load {os.getloadavg()[0]:.1f}"))
        if label:
            rows.append(_row(f"lake{label}: {name}, peak RSS", on_lake["peak_rss_mb"], "MB", f"<= {TARGET_HUGE_MB:g}",
                             on_lake["peak_rss_mb"] <= TARGET_HUGE_MB, "the whole process (DuckDB spills)"))
    return rows


def _open_rows(lake: Path, size: str, label: str) -> list[dict[str, Any]]:
    opened = _child("open", str(lake))
    notebook = _child("notebook", str(lake))
    return [
        _row(f"lake{label}: opening it (analysis.connect + one count)", opened["seconds"], "s",
             f"<= {TARGET_OPEN_S:g}", opened["seconds"] <= TARGET_OPEN_S, size),
        _row(f"lake{label}: RSS after opening it", opened["peak_rss_mb"], "MB", f"<= {TARGET_OPEN_MB:g}",
             opened["peak_rss_mb"] <= TARGET_OPEN_MB,
             f"the whole process, {opened['rss_before_mb']} MB of it Python, DuckDB and Polars imported"),
        _row(f"lake{label}: open_notebook on it", notebook["seconds"], "s", f"<= {TARGET_OPEN_S:g}",
             notebook["seconds"] <= TARGET_OPEN_S,
             f"{size}; {notebook['names']:,} channel names read; RSS after {notebook['peak_rss_mb']} MB "
             f"({notebook['rss_before_mb']} MB before: imports incl. Matplotlib)"),
        _row(f"lake{label}: RSS after open_notebook", notebook["peak_rss_mb"], "MB", f"<= {TARGET_OPEN_MB:g}",
             notebook["peak_rss_mb"] <= TARGET_OPEN_MB, "the whole process"),
    ]


def run_huge(posts: int = 100_000_000, channels: int = 20_000) -> list[dict[str, Any]]:
    """The rows of a lake of ``posts`` posts generated directly (cached; generating 100M takes minutes)."""
    t = time.perf_counter()
    lake = generate_lake(posts, channels)
    made = time.perf_counter() - t
    size = f"{posts:,} posts (generated lake, {channels:,} channels)"
    gb = sum(p.stat().st_size for p in lake.rglob("*.parquet")) / 1e9
    rows = [_row(f"lake, {posts // 1_000_000}M: the generated lake", round(gb, 2), "GB", "-", None,
                 f"{sum(1 for _ in lake.glob('posts/*/*/*.parquet')):,} posts files; generated in {made:.0f} s "
                 f"(0 when cached in {data_dir()})")]
    rows += _metric_rows(lake, None, size, TARGET_HUGE_S, f", {posts // 1_000_000}M", repeat=1)
    rows += _open_rows(lake, size, f", {posts // 1_000_000}M")
    return rows


def run(posts: int = 10_000_000, channels: int = 5_000, huge: int = 100_000_000,
        huge_channels: int = 20_000) -> list[dict[str, Any]]:
    """Measure every step on a synthetic archive of ``posts`` posts, then the reading of a generated lake of
    ``huge`` posts (0: not); rows in the ``benchmarks.run`` shape."""
    from .synth_archive import VERSION, build

    source = build(posts, channels, path=data_dir() / f"synth-v{VERSION}-{posts}x{channels}.duckdb")
    size = f"{posts:,} posts"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lake-bench-", dir=source.parent) as tmp:
        archive, lake = Path(tmp) / "archive.duckdb", Path(tmp) / "lake"
        shutil.copy(source, archive)
        old = _child("old", str(posts), str(channels))["path"]     # in a child: its memory is not the parent's
        migrated = _child("migrate", old, str(Path(tmp) / "old.duckdb"))
        (Path(tmp) / "old.duckdb").unlink()
        status = _child("status", str(archive))
        rows += [
            _row("archive: migrations 0002-latest on an old archive", migrated["seconds"], "s", "inside 256 MB cap",
                 migrated["outcome"].startswith("schema"),
                 f"{size} and 2 observations each; {migrated['outcome']}; peak RSS {migrated['peak_rss_mb']} MB"),
            _row("archive: status, peak RSS", status["peak_rss_mb"], "MB", "-", None,
                 f"{size}; {status['seconds']} s"),
        ]
        # publishing is publish_bench's (full, +1,000 posts, layout); here only the lake it makes, to read
        _child("full", str(archive), str(lake))
        # reading, before the incremental step writes to the archive (lake and file hold the same posts)
        rows += _metric_rows(lake, archive, size, TARGET_METRIC_S, "")
        rows += _open_rows(lake, size, "")
    if huge:
        rows += run_huge(huge, huge_channels)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=1_000)
    parser.add_argument("--huge", type=int, default=0, help="also a generated lake of this many posts (100000000)")
    parser.add_argument("--huge-channels", type=int, default=20_000)
    parser.add_argument("--only-huge", action="store_true", help="only the generated lake's rows")
    parser.add_argument("--step", nargs="+")
    args = parser.parse_args(argv)
    if args.step:
        kind, *rest = args.step
        steps: dict[str, Callable[..., dict[str, Any]]] = {
                 "old": _step_old, "migrate": _step_migrate, "status": _step_status,
                 "full": publish_bench.STEPS["full"],
                 "metric": _step_metric, "polars": _step_polars, "open": _step_open, "notebook": _step_notebook}
        print(json.dumps(steps[kind](*rest)))
        return
    rows = (run_huge(args.huge, args.huge_channels) if args.only_huge
            else run(args.posts, args.channels, args.huge, args.huge_channels))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
