"""Large archives inside their memory cap (issue 14, item 4): every heavy command, run as a user runs it.

On a generated archive (:mod:`benchmarks.synth_archive`, a real archive) made by tgspread at migration 0001, with
two observations per post, each step runs the CLI (``python -m collector ...``) in a child process, one after the
other on the same file, and reports its exit code, wall time and peak RSS (``wait4``: the child's own maximum
resident set). The archive's DuckDB cap is 256 MB (``Archive``'s default); the RSS adds Python, the libraries and
what DuckDB allocates outside its buffer pool.

- ``start``: ``tgspread --help``, what the CLI process holds before it opens anything (the floor of the others);
- ``migrate``: the first command after an upgrade (``tgspread channels add``) opens the old archive read-write:
  every later migration runs (0002 adds columns to ``posts`` and a DEFAULT column to ``post_observations``,
  0010 adds two to ``posts``);
- ``publish --full``: the whole archive to a lake;
- ``export``: every table as Parquet (``tgspread export --out DIR``, which verifies the archive too);
- ``verify``: every check and digest;
- ``status``: the per-channel summary (``--json``).

A step that runs out of memory exits 70 and is reported as missed; the steps after it still run (``migrate``
failing leaves an old archive, on which the others are measured as they are).

Example::

    python -m benchmarks.memory_bench --posts 30000000 --channels 5000 --data /work/benchdata/me
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["STEPS", "old_archive", "run"]

ROOT = Path(__file__).resolve().parent.parent
CAP = "256 MB"
#: (name, CLI arguments after ``tgspread``; {a}: the archive, {d}: the work directory)
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start (--help)", ("--help",)),       # the floor: Python and the libraries the CLI imports
    ("migrate", ("channels", "add", "@memory_bench", "--archive", "{a}")),
    ("publish --full", ("publish", "--archive", "{a}", "--lake", "{d}/lake", "--full")),
    ("export", ("export", "--archive", "{a}", "--out", "{d}/export")),
    ("verify", ("verify", "--archive", "{a}", "--json")),
    ("status", ("status", "--archive", "{a}", "--json")),
)


def data_dir(given: str | Path | None = None) -> Path:
    """Where generated archives go: ``given``, else ``$TGSPREAD_BENCH_DATA``, else ``benchmarks/.cache``."""
    from .synth_archive import CACHE_DIR

    return Path(given or os.environ.get("TGSPREAD_BENCH_DATA") or CACHE_DIR)


def old_archive(posts: int, channels: int, data: Path) -> Path:
    """The archive of migration 0001 of this size with two observations per post (built once, then reused)."""
    from .analysis_bench import ensure_observations
    from .synth_archive import VERSION, build

    path = data / f"old-v{VERSION}-{posts}x{channels}.duckdb"
    if not path.exists():
        tmp = path.with_suffix(".obs.duckdb")
        build(posts, channels, path=tmp, schema=1, force=True)
        ensure_observations(tmp)
        tmp.rename(path)
    return path


# Linux keeps a process's peak RSS across fork and exec: a CLI forked from this process (which holds DuckDB and
# an archive's pages) would report this process's peak as its own. A small launcher forks it instead, so the
# figure is the CLI's (the launcher's own ~10 MB at the fork are the floor).
_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execv(sys.executable, [sys.executable, "-m", "collector", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss]))
"""


def _cli(args: list[str], cwd: Path, code: Path = ROOT) -> dict[str, Any]:
    """Run ``tgspread ARGS`` (the tgspread in ``code``) in a child process: exit code, wall seconds, its peak RSS,
    last stderr line."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *args], cwd=cwd, capture_output=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(code), "COLUMNS": "120"})
    seconds = time.perf_counter() - started
    try:
        status, maxrss_kb = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        status, maxrss_kb = proc.returncode or -1, 0
    lines = [line for line in proc.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return {"exit": status, "seconds": round(seconds, 1), "peak_rss_mb": round(maxrss_kb / 1024),
            "stderr": lines[-1][:200] if lines else ""}


def measure(old: Path, work: Path, code: Path = ROOT, steps: Sequence[str] | None = None
            ) -> dict[str, dict[str, Any]]:
    """Every step (or those named in ``steps``, by their first word) on a fresh copy of ``old`` under ``work``, with
    the tgspread in ``code``; {step: measurement}. ``old`` is only read (copied; the copy is migrated)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    archive = work / "archive.duckdb"
    shutil.copyfile(old, archive)
    out: dict[str, dict[str, Any]] = {}
    chosen = [s for s in STEPS if not steps or s[0].split()[0] in steps]
    if steps:       # in the order given
        chosen.sort(key=lambda s: list(steps).index(s[0].split()[0]))
    for name, template in chosen:
        args = [a.format(a=archive, d=work) for a in template]
        out[name] = _cli(args, work, code)
        print(f"  {name}: {out[name]}", flush=True)
    return out


def _size(path: Path) -> float:
    return round(path.stat().st_size / 1e9, 2)


def run(posts: int = 30_000_000, channels: int = 5_000, *, data: str | Path | None = None,
        keep: bool = False, work: Path | None = None, code: Path = ROOT,
        steps: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows for ``benchmarks.run`` (the table's shape): per step its peak RSS (and exit) and its time.
    ``work``: where the copy is migrated and the lake and export written (default: beside the archive)."""
    where = data_dir(data)
    where.mkdir(parents=True, exist_ok=True)
    old = old_archive(posts, channels, where)
    work = work or where / f"memory-{posts}"
    results = measure(old, work, code, steps)
    size = f"{posts:,} posts, {2 * posts:,} observations, {channels:,} channels; archive {_size(old)} GB at 0001"
    rows: list[dict[str, Any]] = []
    for name, r in results.items():
        ok = r["exit"] == 0
        what = "completed" if ok else f"exit {r['exit']}: {r['stderr']}"
        rows.append({"benchmark": f"memory: {name}, peak RSS", "value": r["peak_rss_mb"], "unit": "MB",
                     "target": f"exit 0 under the {CAP} cap", "ok": ok,
                     "note": f"{what}; {r['seconds']} s; {size}; the whole CLI process"})
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=30_000_000)
    parser.add_argument("--channels", type=int, default=5_000)
    parser.add_argument("--data", type=Path, default=None, help="where archives are generated (default: "
                        "$TGSPREAD_BENCH_DATA or benchmarks/.cache)")
    parser.add_argument("--keep", action="store_true", help="keep the migrated archive, lake and export")
    parser.add_argument("--work", type=Path, default=None, help="where the archive's copy is migrated and the "
                        "steps write (default: beside the archive; give your own folder for a shared archive)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the tgspread checkout to run (default: this one), "
                        "e.g. an older one for before-and-after figures")
    parser.add_argument("--steps", nargs="+", default=None, metavar="STEP",
                        help="only these steps, in this order, by first word: start migrate publish export verify "
                        "status")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.posts, args.channels, data=args.data, keep=args.keep, work=args.work,
                         code=args.code, steps=args.steps), indent=1))


if __name__ == "__main__":
    main()
