"""A collector's side of the hand-over through the lake (issue 15): pick up what others left in its slots.

``tgspread run`` and ``tgspread discover`` call :func:`pick_up` before they plan: channels another collector
found in this collector's slots (the lake's ``candidates``) join its collected set as discovered channels,
and channels of a slot moved here bring their history from the lake (collector._archive.lake_handoff). Nothing
happens without an assignment file or a lake.

Cost in proportion to change: a pick-up lists the other collectors' files in this collector's slots (a directory
listing) and opens none when there are none. After a slot moved here, the old owner's posts of it stay in the
lake; reading them again at every run would make every run pay for that slot's whole history. So the archive
remembers (table ``lake_pickups``, migration 0012) digests of the listing (paths, inodes, sizes, modification
times: a publish installs a new file) of the files its last pick-up read, one for the moved slots' ``posts`` and
``channels`` files, one for the ``candidates``: that pick-up took everything they held. While both are unchanged,
the next pick-up reads nothing; while only the candidates changed (the old owner publishes them after each of its
runs), it reads the candidates alone. What takes a file again would only be skipped (already in the set, removed
by hand, or its cursor already at the lake's). So a process per run (a timer) pays for a moved slot's history once
per change of its files, as a ``--loop`` process does.

Example::

    taken = pick_up(archive, Path("lake"), Ownership("second", assignment), now=now)
    if taken is not None:
        print(taken.line())
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from collector._archive.archive import Archive
from collector._archive.lake_handoff import (
    Taken,
    handoff_files,
    lake_handoffs,
    last_pickup,
    listing_digest,
    remember_pickup,
    take_handoffs,
)

from .channel_set import list_channels, removed_keys
from .ownership import Ownership

#: How often a pick-up is tried when a file it listed vanished before it read it (another collector's publish
#: replaced or removed it in between: each try lists again).
ATTEMPTS = 3


def pick_up(archive: Archive, lake: Path | None, ownership: Ownership | None, *, now: datetime) -> Taken | None:
    """Take what other collectors handed to this one; None when nothing is enforced or nothing was new.

    Other collectors publish into the lake meanwhile: a file listed here may be gone when it is read. The pick-up
    is then tried again from the listing (what it wrote is one transaction, rolled back whole), up to
    :data:`ATTEMPTS` times; a lake that still cannot be read raises ``duckdb.Error`` or ``OSError``.
    """
    if lake is None or ownership is None or not ownership.enforced:
        return None
    for attempt in range(ATTEMPTS):
        try:
            return _pick_up(archive, lake, ownership, now=now)
        except (duckdb.IOException, FileNotFoundError):
            if attempt == ATTEMPTS - 1:
                raise
    return None


def _pick_up(archive: Archive, lake: Path, ownership: Ownership, *, now: datetime) -> Taken | None:
    slots = ownership.slots()
    files = handoff_files(lake, ownership.collector, slots)
    history, candidates = listing_digest(files.history), listing_digest(files.found)
    last = last_pickup(archive, lake, ownership.collector, slots)
    if last is not None and last == (history, candidates):
        return None                    # the same files: nothing new for this collector since it took everything
    read_history = last is None or history is None or last[0] != history
    handoffs = lake_handoffs(lake, ownership.collector, slots, history=read_history)
    taken = None
    if handoffs:
        gone_ids, gone_names = removed_keys(archive)
        active = list_channels(archive)
        taken = take_handoffs(archive, lake, handoffs, now=now, removed_ids=gone_ids, removed_names=gone_names,
                              active_ids={e.channel_id for e in active if e.channel_id is not None},
                              # an entry of a known id is that channel, whatever its name is now (another channel
                              # may have taken its old username): only entries without an id match by name
                              active_names={e.username for e in active if e.username and e.channel_id is None})
    if history is not None and candidates is not None:      # taken now: these files hold nothing more for it
        remember_pickup(archive, lake, ownership.collector, slots, history, candidates, now=now)
    if taken is None:
        return None
    return taken if taken.added or taken.unreachable or taken.copied_posts else None


def line(taken: Taken) -> str:
    """One line for the log: what was taken over from the lake."""
    moved = sum(1 for h in taken.added if h.kind == "moved")
    found = len(taken.added) - moved
    text = (f"from the lake: {found} channel(s) other collectors found in this collector's slots and {moved} of "
            f"moved slots added to the collected set ({taken.copied_posts:,} posts of history copied)")
    if taken.unreachable:
        text += f"; {len(taken.unreachable)} without a username cannot be reached from this account"
    return text
