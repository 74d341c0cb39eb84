"""A pin set by a Desktop-export import (``upsert.mark_pinned``) changes ``posts``: its lake partition is marked
for the next publish, like every other write of a post-level table (docs/lake.md)."""

from __future__ import annotations

from pathlib import Path

from collector import Archive
from collector._archive import upsert
from collector._archive.slots import slot


def test_mark_pinned_marks_the_lake_partition(tmp_path: Path) -> None:
    with Archive(tmp_path / "a.duckdb") as archive:
        con = archive.con
        con.execute("INSERT INTO posts (channel_id, message_id, posted_at, first_seen_at, last_seen_at, source) "
                    "VALUES (77, 5, TIMESTAMPTZ '2025-03-04 10:00:00+00', now(), now(), 'export')")
        con.execute("DELETE FROM lake_dirty")
        with archive.transaction():
            assert upsert.mark_pinned(archive, 77, [5, 6]) == 1
        assert con.execute("SELECT table_name, slot, month FROM lake_dirty").fetchall() == [
            ("posts", slot(77), "2025-03")]
        con.execute("DELETE FROM lake_dirty")
        with archive.transaction():
            assert upsert.mark_pinned(archive, 77, [5]) == 0      # already pinned: nothing changed, nothing marked
        assert con.execute("SELECT count(*) FROM lake_dirty").fetchall() == [(0,)]
