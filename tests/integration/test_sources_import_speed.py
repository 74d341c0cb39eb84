"""What the export importer does to be fast and small, checked for not changing any result.

- ``collector`` loads its public names lazily, so the importer does not load Telethon; the names stay what
  they were (``collector._telegram.collect`` is the function, whichever import came first).
- A batch whose ids are all above the chat's newest archived id skips the lookup of existing rows; one
  that is not (an archive with API rows, ids out of order, an id repeated across batches) is merged.
- DuckDB settings and the garbage collector's thresholds are restored, after a failed import too.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from collector._archive import upsert as store
from collector._archive.archive import Archive
from collector._parse.json_stream import JsonStream
from collector._simulated.desktop_export import write_generated_export
from collector._sources import export_import
from collector._sources.export_import import SourceError, import_export

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2024, 6, 2, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
CHANNEL = 1_500_000_001


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    a = Archive(tmp_path / "archive.duckdb")
    yield a
    a.close()


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_importer_does_not_load_telethon_and_the_public_names_stay() -> None:
    out = _python(
        "import sys, inspect\n"
        "import collector._archive, collector._sources.export_import\n"
        "print('telethon' in sys.modules)\n"
        "from collector import Archive, ArchiveError, collect, CollectSettings\n"
        "import collector, collector._telegram.collect as m\n"
        "print(inspect.iscoroutinefunction(collect), collector.collect is collect, m.collect is collect,\n"
        "      Archive is collector._archive.Archive, 'telethon' in sys.modules,\n"
        "      sorted(collector.__all__) == sorted(n for n in collector.__all__ if hasattr(collector, n)))\n")
    assert out.splitlines() == ["False", "True True True True True True"]


def test_importing_the_submodule_first_keeps_collect_the_function() -> None:
    out = _python(
        "import inspect\n"
        "import collector._telegram.collect\n"
        "import collector\n"
        "from collector import collect\n"
        "from collector._telegram.collect import collect as direct\n"
        "print(inspect.iscoroutinefunction(collector.collect), collect is direct)\n")
    assert out == "True True"


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Write every ~40 messages (decoded ~8 at a time), so a few hundred make several batches."""
    monkeypatch.setattr(export_import, "_BATCH", 40)
    monkeypatch.setattr(export_import, "JsonStream", partial(JsonStream, batch_bytes=2000))


def _export(path: Path, ids: list[int]) -> Path:
    messages = [{"id": i, "type": "message", "date": "2024-01-01T00:00:00", "date_unixtime": str(1_700_000_000 + i),
                 "text": f"post {i} #n{i % 3}", "text_entities": [{"type": "plain", "text": f"post {i} "},
                                                                   {"type": "hashtag", "text": f"#n{i % 3}"}]}
                for i in ids]
    doc = {"name": "Ordered", "type": "public_channel", "id": CHANNEL, "messages": messages}
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def _posts(archive: Archive) -> list[tuple[object, ...]]:
    return archive.con.execute("SELECT message_id, text, hashtags, source, posted_at FROM posts "
                               "ORDER BY message_id").fetchall()


@pytest.mark.usefixtures("small_batches")
def test_batches_above_the_archive_and_below_it_give_the_same_rows(archive: Archive, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # An API row in the middle: the batches up to it are merged, the later ones are known new.
    archive.con.execute(
        "INSERT INTO posts (channel_id, message_id, text, views, hashtags, urls, source, first_seen_at, last_seen_at)"
        " VALUES (?, 150, 'from the API', 900, [], [], 'api', ?, ?)", [CHANNEL, NOW, NOW])
    seen: list[bool] = []
    real = store.upsert_posts

    def spy(*args: object, known_new: bool = False, **kwargs: object) -> store.UpsertCounts:
        seen.append(known_new)
        return real(*args, known_new=known_new, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "upsert_posts", spy)
    report = import_export(archive, _export(tmp_path / "result.json", list(range(1, 301))), now=LATER)
    assert report.chats[0].new_posts == 299 and report.chats[0].updated_posts == 1
    # the batches up to the API row's id 150 are looked up, all later ones are known new
    assert len(seen) >= 5 and seen[0] is False and seen[-1] is True and seen == sorted(seen)
    got = _posts(archive)
    assert [r[0] for r in got] == list(range(1, 301))
    assert got[149][1:4] == ("from the API", [], "api")
    assert archive.con.execute("SELECT views FROM posts WHERE message_id = 150").fetchone() == (900,)
    # a fresh archive gets the same rows for the other ids
    other = Archive(tmp_path / "other.duckdb")
    try:
        import_export(other, tmp_path / "result.json", now=LATER)
        assert [r for r in _posts(other) if r[0] != 150] == [r for r in got if r[0] != 150]
    finally:
        other.close()


@pytest.mark.usefixtures("small_batches")
def test_ids_out_of_order_or_repeated_across_batches_are_merged(archive: Archive, tmp_path: Path) -> None:
    ids = list(range(200, 100, -1)) + list(range(90, 120))        # descending, then 101-119 again
    report = import_export(archive, _export(tmp_path / "result.json", ids), now=NOW)
    chat = report.chats[0]
    # a repeat in the batch of its first occurrence replaces it there; one in a later batch is merged
    # (a later batch that skipped the lookup would have failed on the primary key instead), and an
    # identical repeat changes nothing (it is not counted as an update)
    assert (chat.messages, chat.new_posts) == (130, 111) and chat.updated_posts <= 19
    assert [r[0] for r in _posts(archive)] == list(range(90, 201))
    before = _posts(archive)
    again = import_export(archive, tmp_path / "result.json", now=LATER)
    assert again.already_imported and again.chats[0].new_posts == 0
    assert _posts(archive) == before


def test_settings_and_gc_thresholds_are_restored_after_an_import_and_a_failed_one(archive: Archive,
                                                                                 tmp_path: Path) -> None:
    con = archive.con
    settings = ("SELECT current_setting('threads'), current_setting('memory_limit'), "
                "current_setting('preserve_insertion_order')")
    before, thresholds = con.execute(settings).fetchone(), gc.get_threshold()
    good = write_generated_export(tmp_path / "result.json", 500)
    import_export(archive, good, now=NOW)
    assert con.execute(settings).fetchone() == before and gc.get_threshold() == thresholds
    text = good.read_text(encoding="utf-8")
    (tmp_path / "cut.json").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(SourceError, match="ends before its JSON does"):
        import_export(archive, tmp_path / "cut.json", now=LATER)
    assert con.execute(settings).fetchone() == before and gc.get_threshold() == thresholds
    with store.bulk_settings(archive):
        assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
