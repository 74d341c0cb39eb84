"""kill -9 at many points of a real collection process; a rerun must give the uninterrupted archive.

Each kill point starts ``tests/helpers/crash_worker.py`` (two passes over a small simulated world, two simulated
days apart), which SIGKILLs itself at a precise point: a request received by the server and not yet
answered (resolve, snapshot, history pages, refresh), inside a write transaction before its COMMIT,
right after a COMMIT, between channels, after the run was marked finished. Then:

- the killed archive opens read-only (DuckDB replays its write-ahead log) and holds no row the
  uninterrupted run does not, and no gap: every post at or below a channel's cursor is there;
- a rerun (the same passes at the same clocks, as a scheduler would start them) finishes, and every
  table of the archive equals the uninterrupted run's, row for row: no duplicate, no gap, no lost
  observation; the runs left by a kill say 'running', never 'failed', and the final status is the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import analysis
from tests.helpers.crash_worker import kill_path, passes_done, run_worker, runs, table_differences, table_rows

SEED = 3
pytestmark = pytest.mark.slow

#: (spec, what it interrupts). N = -1 means the last such event of the pass (taken from the reference run).
KILL_POINTS: list[tuple[str, str]] = [
    ("1:txn:1", "first migration committed, the next one not yet applied"),
    ("1:contacts.ResolveUsername:1", "first resolve sent, a run row 'running' and nothing else"),
    ("1:contacts.ResolveUsername:2", "resolve of the second channel (first channel done)"),
    ("1:channels.GetFullChannel:1", "first snapshot request: channel resolved and cached, no snapshot"),
    ("1:messages.GetHistory:1", "first history page (the oldest page above the cursor) of the first channel"),
    ("1:messages.GetHistory:5", "a middle history page: pages written oldest first as they arrive"),
    ("1:messages.GetHistory:11", "the first channel's last, partial history page"),
    ("1:write:2", "inside a posts transaction, rows written, before COMMIT"),
    ("1:commit:3", "right after a posts batch and its cursor committed"),
    ("1:messages.GetHistory:-1", "last history page of pass 1"),
    ("1:run_channel:3", "between channels, after a channel's outcome was recorded"),
    ("1:finish_run:1", "pass 1 finished in the archive, not yet known to the scheduler: rerun at same clock"),
    ("2:channels.GetFullChannel:1", "pass 2 snapshot due: request sent"),
    ("2:snapshot:2", "pass 2 second snapshot committed"),
    ("2:messages.GetHistory:1", "pass 2 first history page (new posts since pass 1)"),
    ("2:channels.GetMessages:1", "first refresh request (due posts re-fetched by id)"),
    ("2:write:-1", "inside the last refresh write (edits to post_versions, deletions), before COMMIT"),
    ("2:channels.GetMessages:-1", "last refresh request of pass 2"),
    ("2:commit:4", "after a refresh batch committed"),
]
#: Timer kills land wherever the process happens to be (DuckDB checkpoint, encoding, normalising):
#: fractions of the reference run's duration.
TIMER_FRACTIONS = (0.45, 0.8)


@dataclass
class Reference:
    path: Path
    counts: dict[tuple[int, str], int]
    runs: list[tuple[object, str]]
    seconds: float
    code: str


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The uninterrupted run: two passes, no kill."""
    import time

    folder = tmp_path_factory.mktemp("reference")
    report = folder / "report.json"
    started = time.monotonic()
    code, err = run_worker(folder / "archive.duckdb", SEED, report=report)
    seconds = time.monotonic() - started
    assert code == 0, err
    data = json.loads(report.read_text())
    counts = {(p, e): n for p, e, n in data["counts"]}
    return Reference(folder / "archive.duckdb", counts, runs(folder / "archive.duckdb"), seconds, data["code"])


def resolve_spec(spec: str, counts: dict[tuple[int, str], int]) -> str:
    """'2:write:-1' -> '2:write:13' using the reference run's event counts."""
    number, event, n = spec.split(":", 1)[0], spec.split(":", 1)[1].rpartition(":")[0], spec.rpartition(":")[2]
    total = counts.get((int(number), event), 0)
    index = total + 1 + int(n) if int(n) < 0 else int(n)
    assert 1 <= index <= total, f"{spec}: the reference run has only {total} such events"
    return f"{number}:{event}:{index}"


@dataclass
class Outcome:
    spec: str
    killed: bool
    kill_info: dict[str, object] | None
    partial_ok: str | None          # None when the killed archive passed its checks, else why not
    reruns: int
    rerun_code: int
    rerun_err: str
    path: Path
    codes: set[str]                 # code fingerprints of every process that ran (one, unless edited meanwhile)


def check_partial(path: Path, ref: Path) -> str | None:
    """The killed archive: readable, nothing the reference lacks, nothing missing below a cursor."""
    if not path.exists():
        return None                              # killed before the file was created
    try:
        with analysis.connect(path, wait=10) as con:
            keys = set(con.execute("SELECT channel_id, message_id FROM posts").fetchall())
            cursors = dict(con.execute("SELECT channel_id, max_message_id FROM channel_cursors").fetchall())
    except Exception as exc:  # the point of the check: a reader must cope with a killed archive
        return f"read-only open after the kill failed: {type(exc).__name__}: {exc}"
    ref_keys = {(r[0], r[1]) for r in table_rows(ref, "posts")}
    if keys - ref_keys:
        return f"posts the uninterrupted run does not have: {sorted(keys - ref_keys)[:3]}"
    gap = {k for k in ref_keys if k[0] in cursors and k[1] <= cursors[k[0]]} - keys
    if gap:
        return f"cursor moved over posts that are not archived: {sorted(gap)[:3]}"
    return None


def kill_and_rerun(spec: str, folder: Path, ref: Path) -> Outcome:
    path = folder / "archive.duckdb"
    code, err = run_worker(path, SEED, spec)
    killed = code == -9
    assert killed or spec.startswith("time:"), f"{spec}: expected a SIGKILL, got exit {code}: {err[-2000:]}"
    info = json.loads(kill_path(path).read_text()) if kill_path(path).exists() else None
    partial = check_partial(path, ref) if killed else None
    codes = {str(info["code"])} if info else set()
    reruns, code, err = 0, -1, ""
    while passes_done(path) != [1, 2] and reruns < 3:
        reruns += 1
        report = folder / f"rerun{reruns}.json"
        code, err = run_worker(path, SEED, report=report)
        if report.exists():
            codes.add(json.loads(report.read_text())["code"])
    return Outcome(spec, killed, info, partial, reruns, code, err, path, codes)


@pytest.fixture(scope="module")
def outcomes(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    specs = [resolve_spec(s, reference.counts) for s, _ in KILL_POINTS]
    specs += [f"time:{reference.seconds * f:.2f}" for f in TIMER_FRACTIONS]
    folders = [tmp_path_factory.mktemp("kill") for _ in specs]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda a: kill_and_rerun(a[0], a[1], reference.path), zip(specs, folders, strict=True))
        return {o.spec: o for o in done}


def _points() -> Iterator[str]:
    yield from (s for s, _ in KILL_POINTS)


def test_kill_points_cover_every_stage() -> None:
    events = {s.split(":")[1] for s in _points()}
    assert {"contacts.ResolveUsername", "channels.GetFullChannel", "messages.GetHistory",
            "channels.GetMessages", "write", "commit"} <= events
    assert len(KILL_POINTS) >= 12 and {s[0] for s in _points()} == {"1", "2"}


@pytest.mark.parametrize("spec", [s for s, _ in KILL_POINTS] + [f"time@{f}" for f in TIMER_FRACTIONS])
def test_rerun_after_kill_equals_uninterrupted_run(spec: str, reference: Reference,
                                                   outcomes: dict[str, Outcome]) -> None:
    if spec.startswith("time@"):
        key = f"time:{reference.seconds * float(spec[5:]):.2f}"
    else:
        key = resolve_spec(spec, reference.counts)
    out = outcomes[key]
    if key.startswith("time:") and not out.killed:
        pytest.skip("the timer fired after the process had finished (a slow start on a loaded machine)")
    assert out.killed and out.kill_info is not None
    if not key.startswith("time:"):
        assert out.kill_info["at"] == key and out.kill_info["pass"] == int(key[0])
    assert out.rerun_code == 0 and out.reruns == 1, f"rerun exit {out.rerun_code}: {out.rerun_err[-2000:]}"
    differences = table_differences(out.path, reference.path)
    if (differences or out.partial_ok) and not out.codes <= {reference.code}:
        pytest.fail("the collector's code or the simulated world changed while the test ran (an edit in "
                    f"progress?), rerun the test: {out.partial_ok}; {differences}")
    assert out.partial_ok is None, out.partial_ok
    assert differences == {}
    statuses = runs(out.path)
    assert all(s in ("ok", "partial", "running") for _, s in statuses), statuses
    # the last run of each pass clock ends as the uninterrupted run's did
    final = {at: s for at, s in statuses if s != "running"}
    assert final == dict(reference.runs)
