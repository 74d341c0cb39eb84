"""Writes to the collected channel set (``channel_set``): :mod:`collector._scheduling.channel_set` decides what is
added and removed, inside its own transaction, and asks these two functions to write it."""

from __future__ import annotations

from datetime import datetime

from .archive import Archive


def insert_entry(archive: Archive, *, input: str, username: str | None, channel_id: int | None, now: datetime,
                 added_by: str, hop: int = 0, seed_channel_id: int | None = None, seed_input: str | None = None,
                 discovery_run_id: int | None = None) -> None:
    """A new entry of the set (``added_by``: ``hand`` or ``discovery``)."""
    archive.con.execute(
        "INSERT INTO channel_set (entry_id, input, username, channel_id, added_at, added_by, hop, seed_channel_id, "
        "seed_input, discovery_run_id) VALUES (nextval('channel_set_entry_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [input, username, channel_id, now, added_by, hop, seed_channel_id, seed_input, discovery_run_id])


def mark_removed_all(archive: Archive, entry_ids: list[int], now: datetime) -> None:
    """Entries ``entry_ids`` removed by hand at ``now``, in one statement (``channels remove`` with many names)."""
    if entry_ids:
        archive.con.execute("UPDATE channel_set SET removed_at = ?, removed_by = 'hand' WHERE list_contains(?, "
                            "entry_id)", [now, entry_ids])
