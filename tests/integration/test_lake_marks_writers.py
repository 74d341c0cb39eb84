"""Every write that changes what a lake shows marks its partitions (issue 14, "one writer"): found by a second reader.

Each test writes through the archive's own path, publishes incrementally, and compares the lake with a full
publish of the same archive: an unmarked write leaves the lake with stale rows, or with a person's name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import analysis
from collector import Archive
from collector._archive.lake import publish
from collector._sources.export_import import import_export
from tests.helpers.simworld import copy_archive

CHANNEL = 1_500_000_777


def _export(path: Path, messages: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"name": "Chan", "type": "public_channel", "id": CHANNEL, "messages": messages}),
                    encoding="utf-8")
    return path


def _message(i: int, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": i, "type": "message", "date": "2025-12-29T10:00:00", "date_unixtime": str(1_767_000_000 + i * 100),
            "from": "Chan", "from_id": f"channel{CHANNEL}", "text": text,
            "text_entities": [{"type": "plain", "text": text}], **extra}


def _rows(lake: Path, table: str) -> list[tuple[Any, ...]]:
    con = analysis.connect(lake)
    return sorted(con.execute(f"SELECT * EXCLUDE (slot) FROM {table} WHERE channel_id = {CHANNEL}").fetchall(),
                  key=repr)


def _same_as_a_full_publish(archive: Path, lake: Path, tables: tuple[str, ...]) -> None:
    copy = copy_archive(archive, archive.parent / "copy.duckdb")
    with Archive(copy) as opened:
        publish(opened, archive.parent / "reference", full=True)
    for table in tables:
        assert _rows(lake, table) == _rows(archive.parent / "reference", table), table


def test_an_export_that_repeats_an_id_publishes_the_text_it_replaced(tmp_path: Path) -> None:
    archive, lake = tmp_path / "archive.duckdb", tmp_path / "lake"
    first = [_message(i, f"post {i}") for i in range(1, 4)]
    with Archive(archive) as opened:
        import_export(opened, _export(tmp_path / "one.json", first))
        publish(opened, lake)
        # a new message twice in one export, edited the second time: the first text becomes a post_versions row
        again = [_message(4, "post 4"), _message(4, "post 4 edited", edited="2025-12-29T11:00:00",
                                                 edited_unixtime=str(1_767_000_000 + 400 + 3600))]
        import_export(opened, _export(tmp_path / "two.json", again))
        assert opened.con.execute("SELECT count(*) FROM post_versions").fetchone() == (1,)
        assert not publish(opened, lake).full
    assert len(_rows(lake, "post_versions")) == 1                 # before: 0, and verify said nothing was pending
    _same_as_a_full_publish(archive, lake, ("posts", "post_versions"))


def test_a_channel_learned_to_be_a_group_has_its_published_authors_pseudonymised(tmp_path: Path) -> None:
    archive, lake = tmp_path / "archive.duckdb", tmp_path / "lake"
    with Archive(archive) as opened:
        import_export(opened, _export(tmp_path / "one.json",
                                      [_message(i, f"post {i}", author="Alice Smith") for i in range(1, 4)]))
        publish(opened, lake)
        assert {r[-1] for r in opened.con.execute(
            "SELECT channel_id, post_author FROM posts WHERE channel_id = ?", [CHANNEL]).fetchall()} == {"Alice Smith"}
        # a resolve through the API records that the channel is a group (a person's messages, authors are people)
        opened.remember_channel({"channel_id": CHANNEL, "megagroup": True}, datetime(2026, 2, 12, tzinfo=UTC))
        assert not publish(opened, lake).full
    con = analysis.connect(lake)
    authors = {r[0] for r in con.execute("SELECT DISTINCT post_author FROM posts WHERE channel_id = ?",
                                         [CHANNEL]).fetchall()}
    assert "Alice Smith" not in authors and len(authors) == 1     # before: the name, in the lake
    _same_as_a_full_publish(archive, lake, ("posts", "channels"))
