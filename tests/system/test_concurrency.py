"""Two collectors on one archive, and a notebook reading while a collector writes: real processes.

DuckDB lets one process write a file and no other process open it meanwhile. The collector therefore
holds the file in short stretches (it closes it between channels, and between batches once held
``hold_seconds``), every opener waits a bounded time (``Archive(wait=...)``, ``analysis.connect(wait=...)``)
and then fails with a message that says what to do. See docs/concurrency.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.crash_worker import (
    ROOT,
    passes_done,
    run_worker,
    start_reader,
    start_worker,
    table_differences,
)

SEED = 3
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "archive.duckdb"
    code, err = run_worker(path, SEED)
    assert code == 0, err
    return path


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_two_collectors_started_together(tmp_path: Path, reference: Path) -> None:
    """Both run pass 1 at once (a cron job firing twice): both finish, taking turns; nothing is doubled."""
    path = tmp_path / "archive.duckdb"
    reports = [tmp_path / "a.json", tmp_path / "b.json"]
    procs = [start_worker(path, SEED, passes="1", wait=120, hold=0.5, report=r) for r in reports]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    waits = [_report(r)["longest_wait_s"] for r in reports]
    print(f"two collectors: longest waits for the file {waits[0]:.2f} s and {waits[1]:.2f} s")
    code, err = run_worker(path, SEED, passes="1,2")          # pass 2 once, as the next scheduled run
    assert code == 0, err[-2000:]
    assert passes_done(path) == [1, 2]
    assert table_differences(path, reference) == {}


_HOLDER = """
import sys, time
from collector import Archive
archive = Archive(sys.argv[1])
archive.con.execute("SELECT count(*) FROM posts").fetchone()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
archive.close()
"""


def test_second_collector_gives_up_after_its_wait_with_a_clear_message(tmp_path: Path, reference: Path) -> None:
    """While another process holds the file, a collector waits ``wait`` seconds, exits 3, changes nothing."""
    path = tmp_path / "archive.duckdb"
    assert run_worker(path, SEED, passes="1")[0] == 0
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), "60"], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        code, err = run_worker(path, SEED, wait=1.5, report=tmp_path / "second.json")
        took = time.monotonic() - started
        report = _report(tmp_path / "second.json")
    finally:
        holder.kill()
        holder.wait()
    assert code == 3, err
    assert "is in use by another process" in err and "try again when it has finished" in err
    assert "Traceback" not in err
    assert 1.5 <= report["longest_wait_s"] < 1.5 + 5, report
    print(f"busy archive: the second collector gave up after {report['longest_wait_s']:.2f} s "
          f"(process ran {took:.1f} s)")
    assert passes_done(path) == [1]
    code, err = run_worker(path, SEED)                         # the next run does pass 2
    assert code == 0, err[-2000:]
    assert table_differences(path, reference) == {}


def test_reader_while_collecting(tmp_path: Path, reference: Path) -> None:
    """A notebook loop of analysis.connect + queries while both passes run: neither side fails."""
    path = tmp_path / "archive.duckdb"
    stop = tmp_path / "stop"
    reader = start_reader(path, stop, tmp_path / "reader.json", wait=30.0, linger=0.2)
    try:
        collector = start_worker(path, SEED, wait=30.0, hold=0.25, report=tmp_path / "collector.json")
        _, err = collector.communicate(timeout=300)
    finally:
        stop.touch()
        _, reader_err = reader.communicate(timeout=120)
    assert collector.returncode == 0, err[-2000:]
    assert reader.returncode == 0, reader_err[-2000:]
    seen = _report(tmp_path / "reader.json")
    wrote = _report(tmp_path / "collector.json")
    print(f"reader: {seen['reads']} reads + {seen['snapshot_reads']} snapshot reads, {seen['busy']} busy, "
          f"longest wait {seen['longest_wait_s']:.2f} s; collector: longest wait {wrote['longest_wait_s']:.2f} s "
          f"over {wrote['opens']} opens")
    assert seen["errors"] == []
    assert seen["busy"] == 0
    # The reader starts first and reads until the collector is done; a fast pass may leave room for one read
    # only (it then waited for the collector's hold, bounded by --hold plus one batch), never for none.
    assert seen["reads"] + seen["snapshot_reads"] >= 1
    assert seen["longest_wait_s"] < 10, "a reader waited longer than a hold plus one batch"
    # the reader saw the archive grow while the collector worked, never shrink
    counts = seen["posts_seen"]
    assert counts == sorted(counts), counts
    # the reader never kept the collector out for long: one query or one snapshot copy at most
    assert wrote["longest_wait_s"] < 10.0
    assert table_differences(path, reference) == {}
