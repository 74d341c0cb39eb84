"""``make bench``: every benchmark module, each in its own process, one table, ``benchmarks/results.md``.

Each module's ``run()`` runs in a fresh child process (``python -m benchmarks.run --child NAME``) so that
the peak RSS of one does not inflate another's; its rows come back as JSON and are brought to one shape:
``benchmark, value, unit, target, ok, note``. The table is printed and written to
``benchmarks/results.md`` (``results-quick.md`` with ``--quick``) together with a description of the
machine: CPU model, cores, RAM, Python, DuckDB and Telethon versions, date.

Usage::

    python -m benchmarks.run                  # full sizes (several minutes: 1,000,000-post channel, 10M-post archive)
    python -m benchmarks.run --quick          # small sizes, a smoke check in a minute or two
    python -m benchmarks.run --only collector,normalize   # the other modules' rows are kept from results.json
    TGSPREAD_BENCH_DATA=/big/disk python -m benchmarks.run --only memory   # 30M posts: ~7 GB, ~30 min to generate

Each module's rows are also kept in ``results.json`` beside the markdown, so ``--only`` updates those
modules and keeps the others' last figures; the "Modules" table says when, and at what load, each ran.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["MODULES", "machine", "main", "normalise_rows", "render_markdown"]

ROOT = Path(__file__).resolve().parents[1]
Row = dict[str, Any]


# -- running one module in the child ------------------------------------------------------------------------
def _collector(quick: bool) -> list[Row]:
    from . import collector_bench

    return collector_bench.run(quick=quick)


def _normalize(quick: bool) -> list[Row]:
    from . import normalize_bench

    rates = normalize_bench.benchmark_normalize(seconds=0.5 if quick else 2.0)
    floor = rates["decode"]
    return [{"benchmark": f"normalize: {stage}", "value": round(rate), "unit": "msgs/s", "target": "-",
             "ok": None, "note": f"{floor / rate:.2f} x Telethon decode time (sample answer of 100 posts)"}
            for stage, rate in rates.items()]


def _analysis(quick: bool) -> list[Row]:
    from . import analysis_bench

    return analysis_bench.run(*((200_000, 200) if quick else (10_000_000, 5_000)))


def _sources(quick: bool) -> list[Row]:
    from . import sources_bench

    return sources_bench.run(*((50_000,) if quick else ()))


def _lake(quick: bool) -> list[Row]:
    from . import lake_bench

    # full: 10M posts, and a generated lake of 100M (cached under $TGSPREAD_BENCH_DATA: generating it takes minutes)
    return lake_bench.run(*((200_000, 200, 1_000_000, 1_000) if quick else (10_000_000, 5_000, 100_000_000, 20_000)))


def _publish(quick: bool) -> list[Row]:
    from . import publish_bench

    return publish_bench.run(*((200_000, 200) if quick else (10_000_000, 5_000)))


def _spark(quick: bool) -> list[Row]:
    from . import spark_bench

    return spark_bench.run(*((200_000, 200) if quick else (10_000_000, 5_000)))


def _collectors(quick: bool) -> list[Row]:
    from . import collectors_bench

    return collectors_bench.run(quick=quick)


def _memory(quick: bool) -> list[Row]:
    from . import memory_bench

    return memory_bench.run(*((200_000, 200) if quick else (30_000_000, 5_000)))


MODULES: dict[str, Callable[[bool], list[Row]]] = {
    "collector": _collector, "normalize": _normalize, "analysis": _analysis, "sources": _sources, "lake": _lake,
    "spark": _spark, "collectors": _collectors, "publish": _publish, "memory": _memory,
}


# -- bringing rows to one shape -------------------------------------------------------------------------------
def _row(benchmark: str, value: Any, unit: str, target: str, ok: bool | None, note: str = "") -> Row:
    return {"benchmark": benchmark, "value": value, "unit": unit, "target": target, "ok": ok, "note": note}


def _analysis_rows(r: Row) -> list[Row]:
    from . import analysis_bench as ab

    name, size = r["benchmark"], f"{r.get('posts', 0):,} posts"
    return [
        _row(f"{name}: time", r["seconds"], "s", f"<= {ab.TARGET_S:g}", r["seconds"] <= ab.TARGET_S,
             f"{size}, {r.get('rows', 0):,} result rows"),
        _row(f"{name}: speed-up over pandas", r["speedup"], "x", f">= {ab.TARGET_RATIO:g}",
             r["speedup"] >= ab.TARGET_RATIO, f"pandas {r['pandas_seconds']} s, {r['pandas_peak_rss_mb']} MB"),
        _row(f"{name}: peak RSS", r["peak_rss_mb"], "MB", f"<= {ab.TARGET_RSS_MB:g}",
             r["peak_rss_mb"] <= ab.TARGET_RSS_MB, "computed from posts (nothing is stored since migration 0009)"),
    ]


def _sources_rows(r: Row) -> list[Row]:
    if r.get("name") == "export import":
        rate_ok = r["messages_per_s"] >= 20_000
        return [
            _row("export import: messages per second", r["messages_per_s"], "msgs/s", ">= 20000", rate_ok,
                 f"best of {r.get('runs', 1)}; median {r.get('messages_per_s_median', '-')}; "
                 f"{r['messages']:,} messages, {r.get('file_mb', '?')} MB result.json, {r['seconds']} s"),
            _row("export import: peak RSS", r["peak_rss_mb"], "MB", "<= 300", r["peak_rss_mb"] <= 300, ""),
        ]
    if r.get("name") == "preview parser":
        return [_row("web preview parser", r["posts_per_s"], "posts/s", ">= 2000", r["ok"],
                     f"best of {r.get('runs', 1)}, median {r.get('posts_per_s_median', '-')} posts/s, "
                     f"{r['posts']:,} posts parsed")]
    return [_generic(r)]


def _generic(r: Row) -> Row:
    """A row in an unknown shape: its name, and everything else in the note."""
    name = str(r.get("benchmark") or r.get("name") or "?")
    rest = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("benchmark", "name", "ok", "target"))
    return _row(name, "", "", str(r.get("target", "-")), r.get("ok"), rest)


def normalise_rows(module: str, rows: list[Row]) -> list[Row]:
    """Rows of any benchmark module in the one table shape (rows already in it pass unchanged)."""
    out: list[Row] = []
    for r in rows:
        if {"benchmark", "value", "unit", "target", "ok"} <= r.keys():
            out.append({**_row("", "", "", "", None), **r})
        else:
            try:
                if module == "analysis" and "speedup" in r:
                    out += _analysis_rows(r)
                elif module == "sources":
                    out += _sources_rows(r)
                else:
                    out.append(_generic(r))
            except KeyError:       # a module changed its row shape: show everything rather than fail
                out.append(_generic(r))
    return out


# -- the machine ----------------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    """CPU model, cores, RAM, versions and date: what a reader needs to compare figures."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    versions = {}
    for name in ("duckdb", "telethon", "polars", "pyarrow"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    load = ""
    with contextlib.suppress(OSError):
        load = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "CPU": cpu, "cores": str(os.cpu_count()), "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(), **{k: v for k, v in versions.items()},
        "load average at start (1/5/15 min)": load,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- output ---------------------------------------------------------------------------------------------------
def _mark(ok: bool | None) -> str:
    return {True: "PASS", False: "MISS", None: ""}[ok]


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_table(rows: list[Row]) -> None:
    width = max([len(r["benchmark"]) for r in rows] + [10])
    print(f"{'benchmark':{width}}  {'value':>12} {'unit':14} {'target':>14} result")
    for r in rows:
        print(f"{r['benchmark']:{width}}  {_value(r['value']):>12} {r['unit']:14} {r['target']:>14} {_mark(r['ok'])}")


def render_markdown(rows: list[Row], info: dict[str, str], *, quick: bool, runs: dict[str, dict[str, Any]]) -> str:
    lines = ["# Benchmark results", "",
             "Written by `make bench` (`python -m benchmarks.run`); do not edit by hand."
             + (" **Quick run: smaller sizes than the targets are defined for.**" if quick else ""), "",
             "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "## Results", "", "| benchmark | value | unit | target | result | note |",
              "|---|---:|---|---|---|---|"]
    for r in rows:
        note = str(r.get("note", "")).replace("|", "/")
        lines.append(f"| {r['benchmark']} | {_value(r['value'])} | {r['unit']} | {r['target']} | "
                     f"{_mark(r['ok'])} | {note} |")
    lines += ["", "## Modules", "",
              "| module | wall s | peak RSS of its process (MB) | status | measured (UTC, load) |",
              "|---|---:|---:|---|---|"]
    for name, meta in runs.items():
        lines.append(f"| {name} | {meta['seconds']:.0f} | {meta['peak_rss_mb']:.0f} | {meta['status']} | "
                     f"{meta.get('measured', '')} |")
    missed = [r for r in rows if r["ok"] is False]
    lines += ["", f"{len([r for r in rows if r['ok']])} targets met, {len(missed)} missed"
              + (": " + "; ".join(r["benchmark"] for r in missed) if missed else "") + ".", ""]
    return "\n".join(lines)


def merge_earlier(path: Path, rows: list[Row], runs: dict[str, dict[str, Any]], info: dict[str, str],
                  names: list[str]) -> tuple[list[Row], dict[str, dict[str, Any]]]:
    """Keep the rows of modules this run did not measure (``--only``) from the last run that did, and save
    this run's beside the markdown as JSON. Each module's row in "Modules" says when and at what load it ran,
    so figures measured at different times are never mistaken for one run's."""
    earlier: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        earlier = json.loads(path.read_text(encoding="utf-8"))
    when = f"{info['date']}, load {info['load average at start (1/5/15 min)'].split(' / ')[0]}"
    merged: dict[str, Any] = {}
    for name in MODULES:
        if name in names:
            merged[name] = {"rows": [r for r in rows if r.get("module") == name],
                            "meta": {**runs[name], "measured": when}}
        elif name in earlier:
            merged[name] = earlier[name]
    path.write_text(json.dumps(merged, indent=1, default=str), encoding="utf-8")
    all_rows = [r for m in merged.values() for r in m["rows"]]
    return all_rows, {name: m["meta"] for name, m in merged.items()}


def _run_child(name: str, quick: bool) -> tuple[list[Row], dict[str, Any]]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", name, "--child-out", str(out)]
    if quick:
        cmd.append("--quick")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    meta = {"seconds": time.perf_counter() - started, "peak_rss_mb": usage.ru_maxrss / 1024,
            "status": "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"}
    try:
        rows = normalise_rows(name, json.loads(out.read_text())) if proc.returncode == 0 else []
    finally:
        out.unlink(missing_ok=True)
    if proc.returncode != 0:
        rows = [_row(f"{name} benchmarks", "", "", "-", False, f"the module failed (exit {proc.returncode}); "
                     "see its output above")]
    return rows, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; print a table; write benchmarks/results.md.")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument("--only", default=",".join(MODULES), help=f"comma-separated subset of {', '.join(MODULES)}")
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default benchmarks/results.md)")
    parser.add_argument("--child", choices=list(MODULES), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.child_out.write_text(json.dumps(MODULES[args.child](args.quick), default=str))
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(MODULES)
    if unknown:
        parser.error(f"unknown module(s): {', '.join(sorted(unknown))}")
    info = machine()
    rows: list[Row] = []
    runs: dict[str, dict[str, Any]] = {}
    out = args.out or ROOT / "benchmarks" / ("results-quick.md" if args.quick else "results.md")
    for name in names:
        print(f"== {name} ...", flush=True)
        got, runs[name] = _run_child(name, args.quick)
        for r in got:
            r["module"] = name
        rows += got
        print_table(got)
        # written after every module, so a run stopped later (or a module that crashes) keeps what it measured
        all_rows, all_runs = merge_earlier(out.with_suffix(".json"), rows, runs, info, list(runs))
        out.write_text(render_markdown(all_rows, info, quick=args.quick, runs=all_runs), encoding="utf-8")
    print()
    print_table(rows)
    print(f"\nwritten to {out} (and {out.with_suffix('.json').name})")
    # a missed target is a result, not an error; a module that crashed is an error
    return 0 if all(meta["status"] == "ok" for meta in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
