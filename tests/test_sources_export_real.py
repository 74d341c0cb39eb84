"""Desktop exports as current Telegram Desktop writes them (issue 17, "Real Telegram data").

The fixtures mirror the structure of real exports checked in public repositories (``forwarded_from_id``
next to ``forwarded_from``: ``"channel<N>"``, ``"user<N>"``, ``"chat<N>"``; ``pin_message`` service
messages naming ``message_id``); they are written here, not copied.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analysis.links import url_spread
from collector.archive import Archive
from collector.sources.export_import import import_export
from collector.verify import verify_archive

FIXTURES = Path(__file__).parent / "fixtures" / "export"
NOW = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
RELAY = 4444444444
GROUP = 2222222222


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    a = Archive(tmp_path / "archive.duckdb")
    yield a
    a.close()


def rows(archive: Archive, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    return archive.con.execute(sql, params or []).fetchall()


def everything(archive: Archive) -> str:
    return json.dumps([repr(r) for r in archive.con.execute("SELECT * FROM posts").fetchall()], ensure_ascii=False)


def test_a_forward_keeps_the_origin_channel_id(archive: Archive) -> None:
    import_export(archive, FIXTURES / "forwards.json", now=NOW, keep_raw=True)
    assert rows(archive, "SELECT fwd_channel_id, fwd_from_name, fwd_message_id FROM posts WHERE message_id = 40") == [
        (3397140320, "Source Channel", None)]


def test_forwards_from_people_and_groups_are_pseudonymised_in_a_channel(archive: Archive) -> None:
    import_export(archive, FIXTURES / "forwards.json", now=NOW, keep_raw=True)
    got = dict(rows(archive, "SELECT message_id, fwd_from_name FROM posts WHERE message_id IN (41, 42, 43)"))
    assert all(isinstance(got[m], str) and len(got[m]) == 16 for m in (41, 43)) and got[41] != got[43]
    assert got[42] == "Hidden Dave"           # a hidden sender's name, as the API path keeps it
    text = everything(archive)
    for person in ("Carol Person", "user5550001", "5550001", "Old Friends", "chat6660002", "6660002"):
        assert person not in text
    assert rows(archive, "SELECT name FROM pseudonym_keys") == [("export_authors",)]


def test_a_channel_import_without_person_forwards_creates_no_key(archive: Archive) -> None:
    import_export(archive, FIXTURES / "channel.json", now=NOW)
    assert rows(archive, "SELECT count(*) FROM pseudonym_keys") == [(0,)]


def test_group_forwards_are_pseudonymised(archive: Archive) -> None:
    import_export(archive, FIXTURES / "account.json", now=NOW, include_non_channels=True, keep_raw=True)
    got = dict(rows(archive, "SELECT message_id, fwd_from_name FROM posts WHERE channel_id = ? AND message_id IN (8, 9)",
                    [GROUP]))
    assert all(isinstance(v, str) and len(v) == 16 for v in got.values()) and got[8] != got[9]
    # the same person, forwarded or writing, has one pseudonym: user1003 is not an author here, but Bob is
    authors = dict(rows(archive, "SELECT message_id, author_pseudonym FROM posts WHERE channel_id = ?", [GROUP]))
    assert got[8] not in authors.values()
    text = everything(archive)
    for person in ("Erin Forwarded", "user1003", "1003", "Frank Hidden"):
        assert person not in text


def test_url_spread_without_forwards_leaves_imported_forwards_out(archive: Archive) -> None:
    import_export(archive, FIXTURES / "forwards.json", now=NOW)
    first = url_spread(archive.con, include_forwards=False, use_summary=False)
    assert first.select("url", "first_message_id", "posts").rows() == [("https://news.example.org/story/1", 44, 1)]
    every = url_spread(archive.con, use_summary=False)
    assert every.select("first_message_id", "posts").rows() == [(40, 2)]


def test_an_older_row_from_before_this_release_counts_as_a_forward(archive: Archive) -> None:
    """Rows imported before the origin id was read carry the name only: still forwards."""
    import_export(archive, FIXTURES / "forwards.json", now=NOW)
    archive.con.execute("UPDATE posts SET fwd_channel_id = NULL WHERE message_id = 40")
    first = url_spread(archive.con, include_forwards=False, use_summary=False)
    assert first.select("first_message_id").rows() == [(44,)]


def test_a_later_api_row_fills_the_origin_post_an_export_lacks(archive: Archive) -> None:
    from collector.sources import store

    import_export(archive, FIXTURES / "forwards.json", now=NOW)
    later = datetime(2024, 6, 6, tzinfo=UTC)
    store.upsert_posts(archive, [{
        "channel_id": RELAY, "message_id": 40, "posted_at": datetime(2024, 6, 3, 8, 0, tzinfo=UTC),
        "text": "Via the source: https://news.example.org/story/1", "fwd_channel_id": 3397140320,
        "fwd_message_id": 977, "fwd_posted_at": datetime(2024, 6, 2, tzinfo=UTC), "source": "api",
        "first_seen_at": later, "last_seen_at": later}], now=later)
    assert rows(archive, "SELECT fwd_channel_id, fwd_message_id, fwd_posted_at, source FROM posts "
                         "WHERE message_id = 40") == [(3397140320, 977, datetime(2024, 6, 2, tzinfo=UTC), "api")]
